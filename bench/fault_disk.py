"""Storage fault scenarios of bench/faults.py: ``NAS_HOME`` on a full file system (a small
tmpfs) and on a read-only one (a read-only bind mount). Both need root; without it the rows
say ``skipped``. Every mount made here is unmounted at the end."""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import sqlite3
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
from fault_common import SEARCH, Row, Server, free_port, service_env


@contextlib.contextmanager
def mounted(target: Path, *commands: list[str]) -> Iterator[Path]:
    """Run the mount ``commands`` on ``target``; unmount it afterwards (as often as mounted)."""
    target.mkdir(parents=True, exist_ok=True)
    done = 0
    try:
        for command in commands:
            subprocess.run(command, check=True, capture_output=True, timeout=30)
            done += command[:2] != ["mount", "-o"]  # a remount adds no mount
        yield target
    finally:
        for _ in range(done):
            subprocess.run(["umount", str(target)], check=False, capture_output=True, timeout=30)


def _integrity(db: Path) -> tuple[str, int]:
    """SQLite's integrity check and the number of searches, read-only."""
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        check = conn.execute("PRAGMA integrity_check").fetchone()[0]
        return check, conn.execute("SELECT count(*) FROM nas_searches").fetchone()[0]


def _fill(folder: Path) -> Path:
    """A file that takes every free byte of ``folder``'s file system."""
    filler = folder / "filler"
    with open(filler, "wb") as out:
        try:
            while True:
                out.write(b"\0" * 65536)
                out.flush()
        except OSError as exc:
            if exc.errno != errno.ENOSPC:
                raise
    return filler


def full_disk(home: Path) -> Row:
    """The service database on a 4 MB tmpfs that fills up while the API runs."""
    name = "NAS_HOME on a full file system (4 MB tmpfs)"
    expected = "POST 507 naming the full disk; GETs 200; database intact; 202 once freed"
    if os.geteuid() != 0:
        return Row(name, expected, "skipped: needs root to mount a tmpfs", "-", "-", None)
    volume = home / "tmpfs"
    with mounted(volume, ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(volume)]):
        env = service_env(volume)
        with (
            Server(env, workers=0, log=home / "serve.log") as server,
            httpx.Client(base_url=server.url, timeout=30) as client,
        ):
            first = client.post("/searches", json={**SEARCH, "budget": 2}).json()["id"]
            filler = _fill(volume)
            answers = [client.post("/searches", json={**SEARCH, "budget": 2}) for _ in range(5)]
            codes = Counter(r.status_code for r in answers)
            details = {r.json().get("detail", "") for r in answers}
            read = client.get(f"/searches/{first}").status_code
            filler.unlink()
            again = client.post("/searches", json={**SEARCH, "budget": 2}).status_code
        check, searches = _integrity(volume / "service.db")
    observed = (
        f"full: {dict(codes)} {sorted(details)}; GET {read}; freed: POST {again}; "
        f"integrity {check}, {searches} searches"
    )
    passed = (
        codes == Counter({507: 5})
        and all("disk is full" in d for d in details)
        and read == 200
        and again == 202
        and (check, searches) == ("ok", 2)
    )
    return Row(name, expected, observed, 0 if searches == 2 else 2 - searches, 0, passed)


def read_only(home: Path) -> Row:
    """``nas serve`` started on a NAS_HOME that turned read-only after a search was stored."""
    name = "NAS_HOME read-only (read-only bind mount)"
    expected = "nas serve exits 2 with one line; database intact"
    if os.geteuid() != 0:
        return Row(name, expected, "skipped: needs root for a bind mount", "-", "-", None)
    folder = home / "ro"
    folder.mkdir()
    with Server(service_env(folder), workers=0, log=home / "serve.log") as server:
        httpx.post(f"{server.url}/searches", json={**SEARCH, "budget": 2}, timeout=30)
    bind = ["mount", "--bind", str(folder), str(folder)]
    remount = ["mount", "-o", "remount,bind,ro", str(folder)]
    with mounted(folder, bind, remount):
        port = str(free_port())
        proc = subprocess.Popen(
            [sys.executable, "-m", "nas", "serve", "--workers", "0", "--port", port],
            env=service_env(folder),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        try:
            _out, err = proc.communicate(timeout=90)
        except subprocess.TimeoutExpired:  # it started serving: stop it, the row fails
            os.killpg(proc.pid, signal.SIGTERM)
            _out, err = proc.communicate(timeout=60)
    err = err.strip()
    check, searches = _integrity(folder / "service.db")
    observed = f"exit {proc.returncode}: {err[-300:]!r}; integrity {check}, {searches} searches"
    passed = (
        proc.returncode == 2
        and err.count("\n") == 0
        and err.startswith("error: ")
        and (check, searches) == ("ok", 1)
    )
    return Row(name, expected, observed, 0 if searches == 1 else 1, 0, passed)
