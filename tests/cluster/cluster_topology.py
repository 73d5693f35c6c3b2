"""The docker/compose.yaml topology on loopback, started by hand, for the integration tests.

Every process is started through ``docker/entrypoint.sh`` with the role and environment
variables its container gets, so the test exercises the commands the containers run: a Ray
head and a second Ray node (``ray start --block``, distinct ports, ``--node-ip-address
127.0.0.1``, a temp dir of their own), an MLflow server on a scratch PostgreSQL database and
``nas serve`` on another one. Each process runs in a session of its own; stopping it signals
that process group and every descendant recorded by PID (Ray workers start their own
sessions), so nothing else on the machine (another Ray cluster, say) is touched.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
DOCKER = REPO / "docker"
ENTRYPOINT = DOCKER / "entrypoint.sh"
#: Admin connection to the local PostgreSQL (trust auth); scratch databases are made there.
PG_ADMIN = os.environ.get("NAS_TEST_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")
PG_BASE = os.environ.get("NAS_TEST_PG_BASE", "postgresql+psycopg://postgres@127.0.0.1:5432")

#: Variables of the developer's shell that must not leak into the started processes.
_CLEARED = (
    "RAY_ADDRESS",
    "DATABASE_URL",
    "NAS_OPTUNA_STORAGE",
    "MLFLOW_TRACKING_URI",
    "NAS_API_KEY",
    "NAS_RAY_JOIN",
    "RAY_AUTH_MODE",
    "RAY_AUTH_TOKEN",
    "RAY_AUTH_TOKEN_PATH",
)


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def process_env(**extra: str) -> dict[str, str]:
    """This environment with the venv's ``bin`` first and the deployment variables cleared.

    Ray token authentication is on with a fresh token, as in docker/compose.yaml: every
    process of the topology (nodes, drivers, queries) gets the same RAY_AUTH_TOKEN.
    """
    env = {k: v for k, v in os.environ.items() if k not in _CLEARED}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONUNBUFFERED"] = "1"
    env["RAY_USAGE_STATS_ENABLED"] = "0"
    env["RAY_AUTH_MODE"] = "token"
    env["RAY_AUTH_TOKEN"] = uuid.uuid4().hex + uuid.uuid4().hex
    env.update(extra)
    return env


def wait_for(
    check: Callable[[], bool],
    timeout: float,
    what: str,
    watched: Proc | None = None,
    interval: float = 0.5,
) -> None:
    """Poll ``check`` until true; fail with ``watched``'s log when it times out or dies."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():
                return
        except Exception:  # not up yet
            pass
        if watched is not None and not watched.alive():
            raise RuntimeError(f"{watched.name} exited, waiting for {what}:\n{watched.tail()}")
        if time.monotonic() > deadline:
            log = f":\n{watched.tail()}" if watched is not None else ""
            raise TimeoutError(f"{what}: not ready after {timeout:.0f} s{log}")
        time.sleep(interval)


def http_ok(url: str, headers: dict[str, str] | None = None) -> bool:
    """Whether ``url`` answers 2xx."""
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return 200 <= response.status < 300
    except (urllib.error.URLError, OSError):
        return False


# --- processes -------------------------------------------------------------------------------


def _stat(pid: int) -> tuple[int, int] | None:
    """(parent pid, start time) of ``pid`` from /proc, or None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text.rpartition(")")[2].split()
    return int(fields[1]), int(fields[19])


def _descendants(root: int) -> list[tuple[int, int]]:
    """(pid, start time) of every descendant of ``root``, from a scan of /proc."""
    children: dict[int, list[tuple[int, int]]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        stat = _stat(int(entry.name))
        if stat is not None:
            children.setdefault(stat[0], []).append((int(entry.name), stat[1]))
    found: list[tuple[int, int]] = []
    todo = [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child[0])
    return found


@dataclass
class Proc:
    """A process started in a session of its own, with its output in a log file."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    popen: subprocess.Popen[bytes] = field(init=False)

    def __post_init__(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("wb") as log:
            self.popen = subprocess.Popen(
                self.argv,
                env=self.env,
                cwd=self.log_path.parent,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def _signal_all(self, sig: signal.Signals, tree: list[tuple[int, int]]) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, sig)
        for pid, started in tree:
            stat = _stat(pid)
            if stat is not None and stat[1] == started:  # still the same process
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, sig)

    def tree(self) -> list[tuple[int, int]]:
        """(pid, start time) of the process's descendants now (Ray workers included)."""
        return _descendants(self.pid) if self.alive() else []

    def kill(self) -> None:
        """SIGKILL the process, its group and its descendants at once (a crash)."""
        self._signal_all(signal.SIGKILL, self.tree())
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=10)

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM, then SIGKILL whatever is left after ``timeout`` seconds."""
        stop_all([self], timeout)


def _gone(tree: list[tuple[int, int]]) -> bool:
    return all((_stat(pid) or (0, -1))[1] != started for pid, started in tree)


def stop_all(procs: list[Proc], timeout: float = 20.0) -> None:
    """Stop ``procs`` together: SIGTERM to each one's group and descendants, then SIGKILL
    to whatever is still there after ``timeout`` seconds. Other processes are never signalled.
    """
    trees = [(proc, proc.tree()) for proc in procs]
    for proc, tree in trees:
        proc._signal_all(signal.SIGTERM, tree)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not all(
        proc.popen.poll() is not None and _gone(tree) for proc, tree in trees
    ):
        time.sleep(0.2)
    for proc, tree in trees:
        proc._signal_all(signal.SIGKILL, tree)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.popen.wait(timeout=5)


def sweep(marker: str) -> list[int]:
    """SIGKILL every process whose command line contains ``marker`` (a folder of this run,
    such as a Ray temp dir); returns their pids. Catches daemons that left their parent, like
    the Ray node ``ray start`` (without ``--block``) leaves behind."""
    killed = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            raw = (entry / "cmdline").read_bytes()
            cmdline = raw.replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if marker in cmdline:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(int(entry.name), signal.SIGKILL)
                killed.append(int(entry.name))
    return killed


def start_role(role: str, env: dict[str, str], log_path: Path, *args: str) -> Proc:
    """``docker/entrypoint.sh ROLE ARGS...`` as its container runs it (``sh`` execs the role)."""
    return Proc(role, ["sh", str(ENTRYPOINT), role, *args], env, log_path)


# --- PostgreSQL --------------------------------------------------------------------------------


class ScratchDatabases:
    """Databases ``nas_it_<random>_<purpose>`` on the local PostgreSQL, dropped by ``drop``."""

    def __init__(self) -> None:
        self.prefix = f"nas_it_{uuid.uuid4().hex[:10]}"
        self.names: list[str] = []

    def _admin(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=10) as conn:
            conn.execute(sql)

    def create(self, purpose: str) -> str:
        """A new empty database; returns its SQLAlchemy URL (psycopg 3 driver)."""
        name = f"{self.prefix}_{purpose}"
        self._admin(f'CREATE DATABASE "{name}"')
        self.names.append(name)
        return f"{PG_BASE}/{name}"

    def drop(self) -> None:
        """Drop every database made here, disconnecting its clients."""
        for name in reversed(self.names):
            with contextlib.suppress(Exception):
                self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.names.clear()


# --- Ray ---------------------------------------------------------------------------------------


def _ray_port_args() -> tuple[list[str], int]:
    """Explicit free ports for every Ray node process, so no default port is shared; and the
    node manager's port, which tells this node apart in the GCS node table."""
    args: list[str] = []
    for flag in (
        "--node-manager-port",
        "--object-manager-port",
        "--dashboard-agent-listen-port",
        "--dashboard-agent-grpc-port",
        "--runtime-env-agent-port",
        "--metrics-export-port",
    ):
        args += [flag, str(free_port())]
    return args, int(args[1])


@dataclass
class RayNode:
    """One Ray node (``ray start --block`` through the entrypoint) and its temp dir."""

    proc: Proc
    gcs_address: str
    temp_dir: Path
    node_id: str


def ray_env(base: dict[str, str], num_cpus: int, workspace: Path, **extra: str) -> dict[str, str]:
    """The environment of a Ray node container, scaled down for a shared 2-core machine."""
    env = dict(base)
    env.update(
        RAY_NODE_IP="127.0.0.1",
        RAY_NUM_CPUS=str(num_cpus),
        RAY_NUM_GPUS="0",
        RAY_DASHBOARD="false",
        RAY_OBJECT_STORE_MEMORY=str(100 * 1024 * 1024),
        NAS_HOME=str(workspace),
        # A dead node is noticed in ~5 s rather than ~30 s (not faster: a node that is only
        # slow on a loaded machine must not be declared dead).
        RAY_health_check_initial_delay_ms="1000",
        RAY_health_check_period_ms="1000",
        RAY_health_check_timeout_ms="2000",
        RAY_health_check_failure_threshold="5",
    )
    env.update(extra)
    return env


def node_id_of(gcs_address: str, env: dict[str, str], node_manager_port: int) -> str | None:
    """The id of the alive node whose node manager listens on ``node_manager_port``."""
    for node in alive_nodes(gcs_address, env):
        if int(node.get("NodeManagerPort", -1)) == node_manager_port:
            return str(node["NodeID"])
    return None


def _start_node(
    role: str, name: str, env: dict[str, str], work: Path, gcs_address: str
) -> RayNode:
    """Start a node through the entry point; return once the GCS lists it alive."""
    temp_dir = work / name
    ports, manager_port = _ray_port_args()
    proc = start_role(
        role, env, work / "logs" / f"{name}.log", "--temp-dir", str(temp_dir), *ports
    )
    found: list[str] = []

    def listed() -> bool:
        node_id = node_id_of(gcs_address, env, manager_port)
        if node_id:
            found.append(node_id)
        return bool(node_id)

    try:
        wait_for(lambda: "Ray runtime started" in proc.tail(400), 90, name, proc)
        wait_for(listed, 30, f"{name} listed by the head", proc, interval=1.0)
    except BaseException:
        proc.stop()
        raise
    return RayNode(proc, gcs_address, temp_dir, found[0])


def start_ray_head(
    work: Path,
    env: dict[str, str],
    num_cpus: int = 1,
    *,
    port: int | None = None,
    **extra: str,
) -> RayNode:
    """A Ray head on this machine (GCS on ``port``, default a free one); returns once it runs."""
    port = port or free_port()
    head_env = ray_env(env, num_cpus, work / "home-head", RAY_PORT=str(port), **extra)
    return _start_node("ray-head", "ray-head", head_env, work, f"127.0.0.1:{port}")


def start_ray_worker(
    work: Path, env: dict[str, str], head: RayNode, num_cpus: int = 1, name: str = "ray-worker"
) -> RayNode:
    """A second Ray node joining ``head`` (RAY_ADDRESS, as in compose); returns once alive."""
    node_env = ray_env(env, num_cpus, work / f"home-{name}", RAY_ADDRESS=head.gcs_address)
    return _start_node("ray-worker", name, node_env, work, head.gcs_address)


def _query(what: str, gcs_address: str, env: dict[str, str]) -> list[dict[str, Any]]:
    """Run :func:`_gcs_query` in a fresh interpreter: Ray's client settings (the auth token)
    are fixed per process, and this test process may hold other settings from other tests."""
    done = subprocess.run(
        [sys.executable, __file__, what, gcs_address],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"GCS query {what} failed: {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _gcs_query(what: str, gcs_address: str) -> list[dict[str, Any]]:
    from ray._private import services, state

    global_state = state.GlobalState()
    global_state._initialize_global_state(services._get_gcs_client_options(gcs_address))
    try:
        if what == "nodes":
            return [n for n in global_state.node_table() if n.get("Alive")]
        rows = global_state.actor_table(None).values()
        return [
            {
                "ActorID": a["ActorID"],
                "ActorClassName": a["ActorClassName"],
                "State": a["State"],
                "NodeID": a["Address"]["NodeID"],
                "Pid": a.get("Pid"),
            }
            for a in rows
        ]
    finally:
        global_state.disconnect()


def alive_nodes(gcs_address: str, env: dict[str, str]) -> list[dict[str, Any]]:
    """The cluster's alive nodes as the GCS lists them (no Ray driver is started)."""
    return _query("nodes", gcs_address, env)


def actors(gcs_address: str, env: dict[str, str]) -> list[dict[str, Any]]:
    """Every actor the GCS knows (alive or dead): id, class name, state, node id."""
    return _query("actors", gcs_address, env)


# --- MLflow and the service ----------------------------------------------------------------


@dataclass
class Server:
    """A started HTTP server process and its base URL."""

    proc: Proc
    url: str


def _serving(proc: Proc, url: str, what: str, timeout: float) -> Server:
    """``Server(proc, url)`` once ``url/health`` answers; ``proc`` is stopped if it never does."""
    try:
        wait_for(lambda: http_ok(f"{url}/health"), timeout, what, proc)
    except BaseException:
        proc.stop()
        raise
    return Server(proc, url)


def start_mlflow(
    work: Path, env: dict[str, str], backend_url: str, *, port: int | None = None
) -> Server:
    """``mlflow server`` on ``backend_url`` with proxied artifacts in ``work``."""
    port = port or free_port()
    env = dict(env)
    env.update(
        MLFLOW_BACKEND_STORE_URI=backend_url,
        MLFLOW_ARTIFACTS_DESTINATION=str(work / "mlartifacts"),
        MLFLOW_HOST="127.0.0.1",
        MLFLOW_PORT=str(port),
        MLFLOW_WORKERS="1",
    )
    proc = start_role("mlflow", env, work / "logs" / "mlflow.log")
    return _serving(proc, f"http://127.0.0.1:{port}", "MLflow server", 120)


def start_service(
    work: Path,
    env: dict[str, str],
    *,
    api_key: str,
    workers: int = 1,
    port: int | None = None,
    **settings: str,
) -> Server:
    """``nas serve`` with ``workers`` worker processes, configured as the ``api`` container:
    with ``RAY_ADDRESS`` in ``settings`` it first joins that cluster as a node without CPUs."""
    port = port or free_port()
    env = dict(env)
    env.update(
        NAS_HOST="127.0.0.1",
        NAS_PORT=str(port),
        NAS_WORKERS=str(workers),
        NAS_API_KEY=api_key,
        NAS_HOME=str(work / "home-api"),
        **settings,
    )
    if "RAY_ADDRESS" in settings:
        memory = ["--object-store-memory", str(100 * 1024 * 1024)]
        join_args = " ".join(_ray_port_args()[0] + memory)
        env.update(NAS_RAY_JOIN="1", RAY_NODE_IP="127.0.0.1", RAY_JOIN_ARGS=join_args)
    proc = start_role("serve", env, work / "logs" / "api.log")
    return _serving(proc, f"http://127.0.0.1:{port}", "nas serve", 120)


def api(server: Server, method: str, path: str, api_key: str, body: Any = None) -> Any:
    """One JSON request to the service; raises with the response text on a non-2xx status."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        f"{server.url}{path}",
        data=data,
        method=method,
        headers={"X-API-Key": api_key, "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace")
        raise AssertionError(f"{method} {path}: {exc.code} {detail}") from exc


# --- the whole topology -----------------------------------------------------------------


@dataclass
class Cluster:
    """Handles on the running topology."""

    work: Path
    env: dict[str, str]
    head: RayNode
    worker: RayNode
    mlflow: Server
    service: Server
    api_key: str
    optuna_url: str
    service_db_url: str
    marks: Path
    procs: list[Proc]
    api_node_id: str | None = None

    def logs(self, lines: int = 30) -> str:
        """The last lines of every process's log, for failure messages."""
        return "\n".join(f"--- {p.name} ---\n{p.tail(lines)}" for p in self.procs)


if __name__ == "__main__":  # the GCS queries run by _query
    print(json.dumps(_gcs_query(sys.argv[1], sys.argv[2]), default=str))
