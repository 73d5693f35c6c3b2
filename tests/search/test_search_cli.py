"""`nas search/searches/pareto/trials/export` on tiny and synthetic data (real training)."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from nas.cli import main


def _run(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def cli_search(ray_session: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One real search run through the CLI, shared by this module's tests."""
    home = tmp_path_factory.mktemp("cli_home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("NAS_HOME", str(home))
        argv = ["search", "--space", "tiny", "--dataset", "synthetic", "--budget", "3"]
        argv += ["--epochs", "1", "--concurrency", "2", "--name", "cli test", "--seed", "1"]
        argv += ["--confirm-seeds", "1", "--confirm-max", "2"]
        code, out, err = _run(argv)
        match = re.search(r"search (s[0-9a-f]+) completed", out)
        assert code == 0, out + err
        assert match, out
        yield {"home": home, "id": match.group(1), "out": out}


@pytest.fixture
def shared(cli_search: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The shared search's workspace as this test's $NAS_HOME."""
    monkeypatch.setenv("NAS_HOME", str(cli_search["home"]))
    return cli_search


def test_search_prints_progress_front_and_where_to_look(shared: Any) -> None:
    out = shared["out"]
    for done in (1, 2, 3):
        assert f"[{done}/3] trial" in out  # plain progress lines when not a TTY
    assert "failed 0, front" in out and "ETA" in out
    assert "[confirming 0/" in out and "[confirming 1/" in out  # then the confirmation runs
    assert "over 2 seeds" in out
    assert "Pareto front (" in out and "ACCURACY (MEAN ± SD)" in out and "TEST_ACCURACY" in out
    assert " ± " in out and "2*" in out
    assert "mlflow ui --backend-store-uri sqlite:///" in out
    assert f"optuna-dashboard sqlite:///{shared['home']}" in out
    assert f"(all trials: nas trials {shared['id']})" in out
    assert f"study cli-test-{shared['id']}" in out


def test_searches_lists_it(shared: Any) -> None:
    code, out, _ = _run(["searches"])
    assert code == 0
    assert re.search(rf"{shared['id']}\s+cli test\s+completed\s+tiny\s+3/3", out)
    code, out, _ = _run(["searches", "--format", "json"])
    assert json.loads(out)[0]["search_id"] == shared["id"]


def test_pareto_and_trials_formats(shared: Any) -> None:
    from nas.search import load_search

    result = load_search(shared["id"])
    code, out, _ = _run(["pareto", shared["id"], "--format", "json"])
    assert code == 0
    front = json.loads(out)
    assert [t["number"] for t in front] == [t.number for t in result.pareto]
    assert all(set(t["values"]) == {"accuracy", "latency_ms"} for t in front)
    confirmed = [t for t in front if t["confirmed"]]
    assert confirmed  # real training: seeds 1 (the trial's) and 2
    for t in confirmed:
        assert t["n_seeds"] == 2 and t["accuracy_sd"] is not None
        assert 0 <= t["test_accuracy"] <= 1 and 0 <= t["accuracy_mean"] <= 1
        assert t["confirm_error"] is None
    for t in front:
        assert {"confirmed", "accuracy_mean", "accuracy_sd", "n_seeds", "test_accuracy"} <= set(t)

    code, out, _ = _run(["pareto", shared["id"], "--format", "csv"])
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [int(r["number"]) for r in rows] == [t.number for t in result.pareto]
    assert [float(r["accuracy"]) for r in rows] == [t.values["accuracy"] for t in result.pareto]

    code, out, _ = _run(["trials", shared["id"], "--format", "csv"])
    assert len(list(csv.DictReader(io.StringIO(out)))) == 3
    code, out, _ = _run(["trials", shared["id"]])
    assert code == 0 and "Trials of search" in out and "COMPLETE" in out


def test_export_and_reload(shared: Any, tmp_path: Path) -> None:
    import torch

    from nas.search import load_search
    from nas.space import Arch, build_model, parse_space

    result = load_search(shared["id"])
    member = result.pareto[0]
    weights = shared["home"] / "searches" / shared["id"] / "trials" / f"{member.number}.pt"
    trained = torch.load(weights, weights_only=True)
    x = torch.randn(2, 1, 8, 8)

    code, _, err = _run(
        ["export", shared["id"], str(member.number), "--output", str(tmp_path / "m.ts")]
    )
    assert code == 0, err
    scripted = torch.jit.load(str(tmp_path / "m.ts"))

    number, output = str(member.number), str(tmp_path / "m.pt")
    code, _, err = _run(
        ["export", shared["id"], number, "--format", "state_dict", "--output", output]
    )
    assert code == 0, err
    saved = torch.load(tmp_path / "m.pt", weights_only=False)
    model = build_model(
        parse_space(saved["space"]), Arch.from_dict(saved["arch"]), saved["num_classes"]
    )
    model.load_state_dict(saved["state_dict"])
    model.eval()
    for key, value in trained.items():  # the weights the trial trained, not fresh ones
        assert torch.equal(saved["state_dict"][key], value)
    with torch.no_grad():
        assert torch.allclose(scripted(x), model(x), atol=1e-5)


def test_export_retrains_when_weights_are_missing(shared: Any, tmp_path: Path) -> None:
    import torch

    from nas.search import load_search

    result = load_search(shared["id"])
    member = result.pareto[-1]
    folder = shared["home"] / "searches" / shared["id"] / "trials"
    original = folder / f"{member.number}.pt"
    keep = tmp_path / "original.pt"
    shutil.move(original, keep)
    try:
        output = str(tmp_path / "re.pt")
        number = str(member.number)
        code, _, err = _run(
            ["export", shared["id"], number, "--format", "state_dict", "--output", output]
        )
        assert code == 0, err
        retrained = torch.load(tmp_path / "re.pt", weights_only=False)["state_dict"]
        before = torch.load(keep, weights_only=True)
        assert retrained.keys() == before.keys()
        for key, value in before.items():  # same seed and settings: the same weights
            assert torch.allclose(retrained[key], value, atol=1e-4), key
    finally:
        shutil.move(keep, original)


def test_resume_of_a_finished_search_runs_nothing(shared: Any) -> None:
    code, out, _ = _run(["search", "--resume", shared["id"]])
    assert code == 0
    assert f"search {shared['id']} completed: 3/3 trials" in out
    assert "[1/3]" not in out and "[confirming" not in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["pareto", "snothere"], "no search 'snothere'"),
        (["trials", "snothere", "--format", "json"], "no search 'snothere'"),
        (["export", "snothere", "0", "--output", "x.pt"], "no search 'snothere'"),
        (["export", "{id}", "7", "--output", "x.pt"], "has no trial 7"),
        (["search", "--resume", "snothere"], "no search 'snothere'"),
        (["search", "--resume", "{id}", "--epochs", "3"], "only --budget"),
        (["search", "--resume", "{id}", "--latency-device", "cpu"], "--latency-device)"),
        (["search", "--objectives", "accuracy,speed"], "unknown objective 'speed'"),
        (["search", "--budget", "0"], "--budget"),
        (["search", "--confirm-seeds", "-1"], "--confirm-seeds: Input should be greater than"),
        (["search", "--confirm-max", "0"], "--confirm-max"),
        (["search", "--space", "tiny", "--dataset", "nodata"], "--dataset: Input should be"),
    ],
)
def test_errors_exit_2_with_a_message(shared: Any, argv: list[str], message: str) -> None:
    argv = [a.replace("{id}", shared["id"]) for a in argv]
    code, _, err = _run(argv)
    assert code == 2
    assert message in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_unknown_space_fails_before_the_search_starts(nas_home: Path) -> None:
    code, out, err = _run(["search", "--space", "nope"])
    assert code == 2
    assert "not a space" in err and "available: mobile, resnet, tiny" in err
    assert "starting search" not in out


def test_cuda_latency_on_a_cluster_without_a_gpu_exits_2_before_any_trial(
    ray_session: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ray

    monkeypatch.setattr(ray, "cluster_resources", lambda: {"CPU": 2.0})  # whatever this host has
    argv = ["search", "--space", "tiny", "--dataset", "synthetic", "--budget", "2"]
    code, out, err = _run([*argv, "--latency-device", "cuda", "--epochs", "1"])
    assert code == 2, out + err
    assert "latency_device 'cuda' was asked for but the Ray cluster has no GPU" in err
    assert "--latency-device cpu" in err and "Traceback" not in err
    assert "[1/2] trial" not in out
