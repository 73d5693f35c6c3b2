"""What a search needs from its surroundings: the Ray cluster (start, resources per trial),
the evaluation settings every trial and confirmation run trains with, and the space."""

from __future__ import annotations

import logging
import os
import signal
import threading
from typing import Any

from nas.errors import NasError
from nas.search.config import SearchConfig

__all__ = [
    "check_resources",
    "ensure_ray",
    "eval_settings",
    "load_space",
    "preflight",
    "resolve_resources",
    "versions",
]


def ensure_ray(address: str | None = None) -> None:
    """Start local Ray once per process (all cores), or connect to ``address``/``RAY_ADDRESS``."""
    import ray

    if ray.is_initialized():
        return
    address = address or os.environ.get("RAY_ADDRESS") or None
    kwargs: dict[str, Any] = {
        "include_dashboard": False,
        "log_to_driver": bool(os.environ.get("NAS_RAY_LOG_TO_DRIVER")),
        "logging_level": logging.WARNING,
    }
    previous = signal.getsignal(signal.SIGTERM)
    if address:
        ray.init(address=address, **kwargs)
    else:
        _quiet_local_token_notice()
        ray.init(num_cpus=os.cpu_count() or 1, **kwargs)
    _own_sigterm(previous)


def _own_sigterm(previous: Any) -> None:
    """After ``ray.init``: SIGTERM goes to this process's own handler again, or else to Ray's
    ``sys.exit`` handler, without the crash report (``*** SIGTERM received ... PC: @``) that
    Ray's native failure-signal handler prints for it. A stop request is not a crash; the
    native handler keeps the signals of real crashes (SIGSEGV, SIGABRT, ...). Main thread only.
    """
    if threading.current_thread() is not threading.main_thread():
        return
    handler = previous if callable(previous) else signal.getsignal(signal.SIGTERM)
    if handler is not None:  # None: a handler not installed from Python, left as it is
        signal.signal(signal.SIGTERM, handler)  # also puts Python's own native handler back


#: Ray's notice, on every local start, that it turned on its default token authentication.
TOKEN_NOTICE = "Token authentication is enabled for this Ray cluster."
_TOKEN_LOGGER = "ray._private.authentication.authentication_token_setup"


class _DropMessage(logging.Filter):
    """Drops the records whose message starts with ``prefix``; passes every other one."""

    def __init__(self, prefix: str) -> None:
        super().__init__()
        self.prefix = prefix

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(self.prefix)


def _quiet_local_token_notice() -> None:
    """Hide Ray's token notice for a cluster this process starts for itself: it only says
    Ray's default is in force. Ray's other authentication warnings (a cluster started without
    tokens, a missing token) still show."""
    logger = logging.getLogger(_TOKEN_LOGGER)
    if not any(isinstance(f, _DropMessage) for f in logger.filters):
        logger.addFilter(_DropMessage(TOKEN_NOTICE))


def versions() -> dict[str, str]:
    """Versions of Python and the libraries a search depends on (stored with the search)."""
    import importlib.metadata as md
    import platform

    out = {"python": platform.python_version()}
    for pkg in ("nas", "torch", "ray", "optuna", "mlflow", "numpy"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            continue
    return out


def load_space(spec: str | dict[str, Any]) -> Any:
    """A :class:`nas.space.SearchSpace` from a shipped name, a YAML path or a document."""
    import nas.space

    return nas.space.parse_space(spec) if isinstance(spec, dict) else nas.space.load_space(spec)


def eval_settings(config: SearchConfig, device: str) -> Any:
    """The :class:`nas.evaluation.EvalSettings` of every trial of a search."""
    from pydantic import ValidationError

    from nas.evaluation import EvalSettings

    fields: dict[str, Any] = {
        "dataset": config.dataset,
        "data_dir": config.data_dir,
        "epochs": config.epochs,
        "batch_size": config.batch_size,
        "lr": config.lr,
        "seed": config.seed,
        "split_seed": config.split_seed,
        "threads": config.cpus_per_trial,
        "device": device,
        "latency_device": config.latency_device,
        "latency_backend": config.latency_backend,
    }
    try:
        return EvalSettings(**{k: v for k, v in fields.items() if v is not None})
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']} (got {e.get('input')!r})"
            for e in exc.errors()
        )
        raise NasError(f"invalid evaluation settings: {problems}") from exc


def preflight(space: Any, config: SearchConfig) -> None:
    """Check that a trial fits the cluster and load the dataset once in the driver, so a
    wrong dataset or resource fails the search, not each trial (nor waits for ever)."""
    from nas.evaluation.datasets import dataset_for
    from nas.evaluation.latency import check_backend

    check_resources(config)
    check_backend(config.latency_backend)  # the [onnx] extra, before any trial starts
    dataset_for(space, eval_settings(config, "cpu"))


def _have(cpus: float, gpus: float) -> str:
    return f"it has {cpus:g} CPU{'s' * (cpus != 1)} and {gpus:g} GPU{'s' * (gpus != 1)}"


def _fit(config: SearchConfig, cpus: float, gpus: float) -> tuple[str, float]:
    """(device, gpus per trial) for a cluster of ``cpus`` and ``gpus``, or a NasError naming
    the resource a trial needs and what the cluster has."""
    have = _have(cpus, gpus)
    device = config.device
    if device == "auto":
        device = "cuda" if gpus > 0 else "cpu"
    gpt = config.gpus_per_trial
    if device == "cuda" or config.latency_device == "cuda":
        if gpus <= 0:
            if device == "cuda":
                raise NasError(
                    f"device 'cuda' was asked for but the Ray cluster has no GPU ({have}): "
                    "train on the CPU (--device cpu) or connect to a cluster with GPUs "
                    "(--ray-address)"
                )
            raise NasError(
                f"latency_device 'cuda' was asked for but the Ray cluster has no GPU ({have}): "
                "measure latency on the CPU (--latency-device cpu) or connect to a cluster "
                "with GPUs (--ray-address)"
            )
        gpt = gpt or 1.0
    if gpt > gpus:
        raise NasError(
            f"gpus_per_trial={gpt} but the Ray cluster has only {gpus:g} GPUs ({have}): no "
            "trial could start; ask for fewer (0 trains on the CPU) or connect to a cluster "
            "with GPUs (--ray-address)"
        )
    if config.cpus_per_trial > cpus:
        raise NasError(
            f"cpus_per_trial={config.cpus_per_trial} but the Ray cluster has only {cpus:g} "
            f"CPUs ({have}): no trial could start; ask for at most {cpus:g}"
        )
    return device, gpt


def check_resources(config: SearchConfig) -> None:
    """Fail before anything is stored when a trial cannot fit the cluster the search will
    use: the running Ray cluster, or for a local one not started yet this machine's CPUs and
    GPUs. A remote cluster not connected yet is checked by :func:`resolve_resources`."""
    import ray

    if ray.is_initialized():
        cluster = ray.cluster_resources()
        _fit(config, float(cluster.get("CPU", 1)), float(cluster.get("GPU", 0)))
    elif not (config.ray_address or os.environ.get("RAY_ADDRESS")):
        import torch

        gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
        _fit(config, float(os.cpu_count() or 1), float(gpus))


def resolve_resources(config: SearchConfig) -> tuple[str, float, int]:
    """(device, gpus per trial, concurrency) from the config and the Ray cluster.

    A trial that trains or measures latency on CUDA gets ``gpus_per_trial`` GPUs, one when
    that is 0 (Ray hides the GPUs from a trial that reserves none). A trial the cluster cannot
    hold (more GPUs or CPUs than it has, CUDA without a GPU) fails here with one line naming
    the resource and what the cluster has, before any trial runs: Ray would otherwise wait
    for it for ever, every trial pending.
    """
    import ray

    cluster = ray.cluster_resources()
    gpus = float(cluster.get("GPU", 0))
    cpus = float(cluster.get("CPU", 1))
    device, gpt = _fit(config, cpus, gpus)
    if config.concurrency:
        concurrency = config.concurrency
    else:
        concurrency = max(1, int(cpus // config.cpus_per_trial))
        if gpt > 0:
            concurrency = max(1, min(concurrency, int(gpus // gpt)))
    return device, gpt, concurrency
