"""Static checks of docker/ (no Docker daemon here): the compose file, the Dockerfile, the
entry point and health checks agree with each other and with the code they configure."""

from __future__ import annotations

import fnmatch
import re
import shlex
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DOCKER = REPO / "docker"
APP_SERVICES = ("api", "worker")
RAY_NODES = ("ray-head", "ray-worker", "ray-worker-gpu")
#: Variables compose requires (``${NAME:?...}``), as a deployment sets them.
REQUIRED = {"NAS_API_KEY": "secret", "RAY_AUTH_TOKEN": "token"}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((DOCKER / "compose.yaml").read_text())


def _interpolate(value: str, env: dict[str, str] | None = None) -> str:
    """Compose's ``${VAR:-default}`` / ``${VAR:?message}`` with ``env`` (defaults otherwise)."""
    env = env or {}

    def repl(match: re.Match[str]) -> str:
        name, op, arg = match.group(1), match.group(2), match.group(3) or ""
        if name in env:
            return env[name]
        if op == ":?":
            raise KeyError(f"{name} is required: {arg}")
        return arg if op == ":-" else ""

    return re.sub(r"\$\{(\w+)(?:(:-|:\?)([^}]*))?\}", repl, str(value))


def _env(service: dict[str, Any], given: dict[str, str] = REQUIRED) -> dict[str, str]:
    return {k: _interpolate(v, given) for k, v in (service.get("environment") or {}).items()}


def _entrypoint_roles() -> set[str]:
    text = (DOCKER / "entrypoint.sh").read_text()
    roles: set[str] = set()
    for label in re.findall(r"^  ([a-z][a-z -|]*)\)$", text, flags=re.MULTILINE):
        roles.update(part.strip() for part in label.split("|"))
    return roles


# --- compose ---------------------------------------------------------------------------------


def test_compose_has_the_documented_services_and_named_volumes(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == {"postgres", "mlflow", *RAY_NODES, *APP_SERVICES}
    assert set(compose["volumes"]) == {"postgres-data", "mlflow-artifacts", "nas-home"}
    used = set()
    for service in services.values():
        for mount in service.get("volumes", []):
            source = mount.split(":", 1)[0]
            if not source.startswith((".", "/")):
                used.add(source)
    assert used == set(compose["volumes"]), "every named volume is declared and used"
    bind = [m for s in services.values() for m in s.get("volumes", []) if m.startswith(".")]
    for mount in bind:  # bind mounts are relative to docker/ and must exist
        assert (DOCKER / mount.split(":", 1)[0]).is_file(), mount


def test_every_service_has_a_health_check(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        check = service.get("healthcheck")
        assert check and check["test"][0] in ("CMD", "CMD-SHELL"), name
        assert check.get("interval") and check.get("retries"), name


def test_health_checks_use_modes_the_check_script_has(compose: dict[str, Any]) -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("healthcheck", DOCKER / "healthcheck.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for name, service in compose["services"].items():
        test = service["healthcheck"]["test"]
        words = test[1:] if test[0] == "CMD" else shlex.split(test[1].replace("$$", "$"))
        for i, word in enumerate(words):
            if word.endswith("healthcheck.py"):
                assert word == "/opt/nas/bin/healthcheck.py", name
                mode = words[i + 1]
                assert mode in ("http", "raylet", "database"), (name, mode)
        if "raylet" in words:
            # Its real answer here: no raylet of ours is asserted, only that it runs cleanly.
            assert module.main(["raylet"]) in (0, 1)
    assert module.main(["no-such-check"]) == 2
    assert module.main(["http", "http://127.0.0.1:9/health"]) == 1


def test_dependencies_wait_for_healthy_services(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name, service in services.items():
        for dep, cond in (service.get("depends_on") or {}).items():
            assert dep in services, (name, dep)
            assert cond["condition"] == "service_healthy", (name, dep)
    for name in APP_SERVICES:
        assert set(services[name]["depends_on"]) == {"postgres", "mlflow", "ray-head"}
    for name in ("ray-worker", "ray-worker-gpu"):
        assert set(services[name]["depends_on"]) == {"ray-head"}
    assert set(services["mlflow"]["depends_on"]) == {"postgres"}


def test_gpu_worker_reserves_a_gpu(compose: dict[str, Any]) -> None:
    gpu = compose["services"]["ray-worker-gpu"]
    devices = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["driver"] == "nvidia" and "gpu" in devices[0]["capabilities"]
    assert int(_interpolate(devices[0]["count"])) >= 1
    assert gpu["profiles"] == ["gpu"], "opt-in, so CPU-only hosts start without it"
    assert "RAY_NUM_GPUS" not in _env(gpu), "Ray detects the reserved GPUs itself"


def test_configuration_is_wired_through_environment_variables(compose: dict[str, Any]) -> None:
    services = compose["services"]
    postgres = _env(services["postgres"])
    init_sql = (DOCKER / "postgres-init.sql").read_text()
    databases = {postgres["POSTGRES_DB"], *re.findall(r"CREATE DATABASE (\w+);", init_sql)}
    ray_port = _env(services["ray-head"])["RAY_PORT"]
    mlflow = _env(services["mlflow"])
    for name in APP_SERVICES:
        env = _env(services[name])
        assert env["RAY_ADDRESS"] == f"ray-head:{ray_port}", name
        assert env["MLFLOW_TRACKING_URI"] == f"http://mlflow:{mlflow['MLFLOW_PORT']}", name
        assert env["NAS_RAY_JOIN"] == "1", "a Ray driver must run on a node of the cluster"
        urls = [env["DATABASE_URL"], env["NAS_OPTUNA_STORAGE"]]
        for url in urls:
            parts = urlsplit(url)
            assert parts.scheme == "postgresql+psycopg" and parts.hostname == "postgres", url
            assert parts.username == postgres["POSTGRES_USER"], url
            assert parts.password == postgres["POSTGRES_PASSWORD"], url
            assert parts.path.lstrip("/") in databases, url
        assert len({urlsplit(u).path for u in urls}) == 2, "Optuna and the service: two DBs"
    with pytest.raises(KeyError, match="NAS_API_KEY"):
        _env(services["api"], {"RAY_AUTH_TOKEN": "t"})  # no API key, no deployment
    backend = urlsplit(mlflow["MLFLOW_BACKEND_STORE_URI"])
    assert backend.scheme == "postgresql+psycopg" and backend.path.lstrip("/") in databases
    assert len({backend.path, *(urlsplit(u).path for u in urls)}) == 3
    mounts = {m.split(":")[1] for m in services["mlflow"]["volumes"]}
    assert mlflow["MLFLOW_ARTIFACTS_DESTINATION"] in mounts, "artifacts on a named volume"
    assert "mlflow" in mlflow["MLFLOW_SERVER_ALLOWED_HOSTS"].split(",")
    for name in (*RAY_NODES, *APP_SERVICES):
        assert "/data/nas" in {m.split(":")[1] for m in services[name]["volumes"]}, name
        env = _env(services[name])
        assert env.get("NAS_HOME", "/data/nas") == "/data/nas", name
        # One Ray token for every node and driver; none of them starts without it.
        assert env["RAY_AUTH_MODE"] == "token" and env["RAY_AUTH_TOKEN"] == "token", name
        with pytest.raises(KeyError, match="RAY_AUTH_TOKEN"):
            _env(services[name], {"NAS_API_KEY": "k"})
    for name in ("ray-worker", "ray-worker-gpu"):
        assert _env(services[name])["RAY_ADDRESS"] == f"ray-head:{ray_port}", name


def test_the_code_reads_the_variables_compose_sets(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The api container's environment, given to the service's settings and the workspace,
    ends up in the SearchConfig a worker runs."""
    from nas import workspace
    from service.core.config import get_settings
    from service.worker import make_search_config

    env = _env(compose["services"]["api"])
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("NAS_HOME", str(workspace.home()))  # not /data/nas on this machine
    settings = get_settings()
    assert settings.database_url == env["DATABASE_URL"]
    assert settings.api_key == "secret"
    assert settings.ray_address == env["RAY_ADDRESS"]
    assert settings.optuna_storage == workspace.optuna_storage_url() == env["NAS_OPTUNA_STORAGE"]
    assert settings.mlflow_uri == workspace.mlflow_tracking_uri() == env["MLFLOW_TRACKING_URI"]
    config = make_search_config({"space": "tiny", "budget": 2, "gpus_per_trial": 0.5}, settings)
    assert config.storage == env["NAS_OPTUNA_STORAGE"]
    assert config.mlflow_uri == env["MLFLOW_TRACKING_URI"]
    assert config.ray_address == env["RAY_ADDRESS"]
    assert config.gpus_per_trial == 0.5


def test_services_run_roles_of_the_entry_point(compose: dict[str, Any]) -> None:
    roles = _entrypoint_roles()
    assert {"ray-head", "ray-worker", "mlflow", "serve", "worker"} <= roles
    for name, service in compose["services"].items():
        if name == "postgres":
            assert service["image"].startswith("postgres:")
            continue
        assert service["command"][0] in roles, name
        assert service["image"] == "${NAS_IMAGE:-nas:latest}", "one image for every role"
        assert service["build"]["dockerfile"] == "docker/Dockerfile", name
        assert (DOCKER / service["build"]["context"]).resolve() == REPO, name
    assert compose["services"]["api"]["command"] == ["serve"]
    assert compose["services"]["worker"]["command"] == ["worker"]


# --- Dockerfile -------------------------------------------------------------------------------


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of docker/Dockerfile, continuation lines joined."""
    lines: list[str] = []
    pending = ""
    for raw in (DOCKER / "Dockerfile").read_text().splitlines():
        stripped = raw.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if pending and stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        lines.append(pending + stripped)
        pending = ""
    out = []
    for line in lines:
        word, _, rest = line.partition(" ")
        out.append((word.upper(), rest.strip()))
    return out


def _args() -> dict[str, str]:
    args = {}
    for word, rest in _instructions():
        if word == "ARG" and "=" in rest:
            name, _, default = rest.partition("=")
            args[name] = default.strip('"')
    return args


def test_dockerfile_installs_torch_first_then_the_package_the_readme_way() -> None:
    instructions = _instructions()
    runs = [rest for word, rest in instructions if word == "RUN"]
    torch_run = next(i for i, r in enumerate(runs) if "${TORCH_SPEC}" in r)
    package_run = next(i for i, r in enumerate(runs) if re.search(r"pip install \.(\s|$)", r))
    assert torch_run < package_run
    assert '--index-url "${TORCH_INDEX_URL}"' in runs[torch_run]
    args = _args()
    assert args["TORCH_INDEX_URL"] == "https://download.pytorch.org/whl/cpu", "CPU by default"
    readme = (REPO / "README.md").read_text()
    pinned = re.search(r"pip install (torch==[\w.]+)", readme)
    assert pinned and args["TORCH_SPEC"] == pinned.group(1), "the README's torch"
    assert args["BASE_IMAGE"].startswith("python:3.11"), "CPU base; CUDA via the argument"
    assert instructions[[w for w, _ in instructions].index("FROM")][1] == "${BASE_IMAGE}"
    # The package's sources are what `pip install .` sees.
    copied = {rest.split()[0] for word, rest in instructions if word == "COPY"}
    assert {"pyproject.toml", "nas", "service", "search_spaces"} <= copied


def test_image_runs_as_an_unprivileged_user_with_the_search_spaces() -> None:
    instructions = _instructions()
    words = [w for w, _ in instructions]
    users = [rest for word, rest in instructions if word == "USER"]
    assert users and users[-1] not in ("root", "0"), users
    last_run = max(i for i, w in enumerate(words) if w == "RUN")
    assert words.index("USER") > last_run, "nothing runs as root after USER"
    env = " ".join(rest for word, rest in instructions if word == "ENV")
    spaces = re.search(r"NAS_SPACES_PATH=(\S+)", env)
    assert spaces, "shipped spaces are found through NAS_SPACES_PATH"
    assert any(f"search_spaces {spaces.group(1)}" in r for w, r in instructions if w == "RUN")
    assert sorted(p.name for p in (REPO / "search_spaces").glob("*.yaml")), "spaces to ship"
    assert any("list_spaces" in r for w, r in instructions if w == "RUN"), "checked at build"


def test_entrypoint_and_cmd_refer_to_what_exists() -> None:
    import json

    instructions = dict(_instructions())
    entrypoint = json.loads(instructions["ENTRYPOINT"])
    cmd = json.loads(instructions["CMD"])
    copies = [rest.split() for word, rest in _instructions() if word == "COPY"]
    copied_to = {
        dest.rstrip("/") + "/" + Path(src).name: src for *srcs, dest in copies for src in srcs
    }
    assert entrypoint == ["/opt/nas/bin/entrypoint.sh"]
    assert copied_to[entrypoint[0]] == "docker/entrypoint.sh"
    assert copied_to["/opt/nas/bin/healthcheck.py"] == "docker/healthcheck.py"
    assert cmd[0] in _entrypoint_roles()


def test_dockerignore_keeps_what_the_image_copies() -> None:
    patterns = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert ".venv" in patterns and ".git" in patterns
    for word, rest in _instructions():
        if word != "COPY":
            continue
        for src in rest.split()[:-1]:
            assert (REPO / src).exists(), src
            for pattern in patterns:
                assert not fnmatch.fnmatch(src, pattern.lstrip("*/")), (src, pattern)


# --- the entry point ----------------------------------------------------------------------------


def test_entrypoint_is_valid_shell_and_uses_real_console_commands() -> None:
    script = DOCKER / "entrypoint.sh"
    subprocess.run(["sh", "-n", str(script)], check=True)
    text = script.read_text()
    execs = set(re.findall(r"exec (\w[\w-]*) ", text)) - {"$role"}
    assert execs == {"ray", "mlflow", "nas"}, execs
    from nas.cli import build_parser

    parser = build_parser()
    parser.parse_args(["serve", "--host", "0.0.0.0", "--port", "8000", "--workers", "1"])
    parser.parse_args(["worker"])


def _options(command: Any) -> set[str]:
    return {opt for param in command.params for opt in getattr(param, "opts", [])}


def test_entrypoint_options_exist_in_the_installed_ray_and_mlflow() -> None:
    text = (DOCKER / "entrypoint.sh").read_text()
    from mlflow.cli import server
    from ray.scripts.scripts import start

    ray_part = text[text.index("ray-head | ray-worker)") : text.index("  mlflow)")]
    join_part = text[text.index("join_ray() {") : text.index("role=")]
    mlflow_part = text[text.index("  mlflow)") : text.index("  serve)")]
    for part, command in ((ray_part + join_part, start), (mlflow_part, server)):
        used = set(re.findall(r"(--[a-z][a-z-]+)", part))
        assert used, part
        assert used <= _options(command), used - _options(command)


def test_entrypoint_says_what_is_missing(tmp_path: Path) -> None:
    script = DOCKER / "entrypoint.sh"
    env = {"PATH": "/usr/bin:/bin"}
    for role, variable in (("ray-worker", "RAY_ADDRESS"), ("mlflow", "MLFLOW_BACKEND_STORE_URI")):
        done = subprocess.run(
            ["sh", str(script), role], env=env, capture_output=True, text=True, cwd=tmp_path
        )
        assert done.returncode == 2 and variable in done.stderr, done
    done = subprocess.run(["sh", str(script), "help"], capture_output=True, text=True)
    assert done.returncode == 0
    for role in ("ray-head", "ray-worker", "mlflow", "serve", "worker"):
        assert role in done.stdout
    argv = ["sh", str(script), "echo", "as", "given"]
    done = subprocess.run(argv, capture_output=True, text=True)
    assert done.stdout == "as given\n"


def test_env_example_documents_every_variable_compose_reads() -> None:
    compose_vars = set(re.findall(r"\$\{(\w+)", (DOCKER / "compose.yaml").read_text()))
    example = (DOCKER / "env.example").read_text()
    documented = set(re.findall(r"^(\w+)=", example, flags=re.MULTILINE))
    assert compose_vars == documented, compose_vars ^ documented
