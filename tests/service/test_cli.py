"""``nas serve`` and ``nas worker`` argument handling (the processes run in test_end_to_end)."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import pytest

from nas.cli import main


def test_worker_exits_when_idle_and_creates_the_tables(nas_home: Path) -> None:
    previous = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    try:
        assert main(["worker", "--exit-when-idle", "--log-level", "warning"]) == 0
    finally:
        signal.signal(signal.SIGTERM, previous[0])
        signal.signal(signal.SIGINT, previous[1])
    assert (nas_home / "service.db").exists()


def test_serve_refuses_a_negative_worker_count(capsys: pytest.CaptureFixture[Any]) -> None:
    assert main(["serve", "--workers", "-1"]) == 2
    assert "--workers -1" in capsys.readouterr().err


def test_help_lists_both_commands(capsys: pytest.CaptureFixture[Any]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "serve" in out and "worker" in out
