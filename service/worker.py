"""Workers: take searches from the service database and run them with the library function.

Several workers (``nas serve`` starts some, ``nas worker`` adds one) can share a database. A
worker claims a queued search atomically (:func:`service.queue.claim_next`), renews a lease
while it runs it, and calls ``run_search(config, search_id=..., on_trial=..., on_progress=...,
should_stop=...)`` (``nas.search.run_search`` unless ``NAS_SEARCH_FUNCTION`` names another).
Passing the search id makes a restarted search resume from its Optuna study: finished trials
are kept and the search continues to its budget. When a worker dies, its lease runs out (or,
on the same host, its process is seen to be gone) and another worker takes the search over.
"""

from __future__ import annotations

import importlib
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine

from nas.errors import NasError
from service import crud, queue
from service.core.config import Settings, get_settings
from service.db import create_db_engine, init_db, make_sessionmaker

__all__ = ["Worker", "load_function", "make_search_config", "new_worker_id"]

log = logging.getLogger(__name__)

SearchFunction = Callable[..., Any]


def new_worker_id() -> str:
    """``host:pid:nonce``: the host and pid let a worker on the same host see it is gone."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def load_function(path: str) -> Callable[..., Any]:
    """The function named by ``'package.module:function'``."""
    module_name, _, attribute = path.partition(":")
    if not module_name or not attribute:
        raise NasError(f"{path!r} is not 'module:function'")
    try:
        return getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise NasError(f"cannot load {path!r}: {exc}") from exc


def make_search_config(config: dict[str, Any], settings: Settings) -> Any:
    """A ``nas.search.SearchConfig`` for the stored request, with the service's stores."""
    from nas.search import SearchConfig

    full = dict(config)
    full.setdefault("storage", settings.optuna_storage)
    full.setdefault("mlflow_uri", settings.mlflow_uri)
    full.setdefault("ray_address", settings.ray_address)
    return SearchConfig(**{k: v for k, v in full.items() if v is not None})


class Worker:
    """Claims searches one at a time and runs them to the end (or until stopped).

    ``search_fn`` and ``config_factory`` can be injected (tests); by default they come from
    the settings (``NAS_SEARCH_FUNCTION``) and :func:`make_search_config`.
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        search_fn: SearchFunction | None = None,
        config_factory: Callable[[dict[str, Any], Settings], Any] | None = None,
        engine: Engine | None = None,
        worker_id: str | None = None,
    ) -> None:
        self.settings = settings or get_settings()
        self.engine = engine or create_db_engine(self.settings.database_url)
        init_db(self.engine)
        self.sessions = make_sessionmaker(self.engine)
        self._search_fn = search_fn
        self.config_factory = config_factory or make_search_config
        self.worker_id = worker_id or new_worker_id()
        self.shutdown = threading.Event()

    @property
    def search_fn(self) -> SearchFunction:
        if self._search_fn is None:
            self._search_fn = load_function(self.settings.search_function)
        return self._search_fn

    # ------------------------------------------------------------------ loop

    def run_forever(self, *, max_searches: int | None = None, exit_when_idle: bool = False) -> int:
        """Run searches until :attr:`shutdown` is set; returns how many it ran."""
        ran = 0
        log.info("worker %s polling %s", self.worker_id, self.settings.database_url)
        while not self.shutdown.is_set():
            if max_searches is not None and ran >= max_searches:
                break
            try:
                search_id = self.run_once()
            except Exception:  # keep the worker alive through database hiccups
                log.exception("worker %s: claim failed", self.worker_id)
                search_id = None
            if search_id is not None:
                ran += 1
                continue
            if exit_when_idle:
                break
            self.shutdown.wait(self.settings.poll_seconds)
        return ran

    def run_once(self) -> str | None:
        """Claim one search and run it; returns its id, or None when nothing was claimed."""
        claim = queue.claim_next(
            self.engine,
            worker_id=self.worker_id,
            lease_seconds=self.settings.lease_seconds,
            max_running=self.settings.max_running,
            max_attempts=self.settings.max_attempts,
        )
        if claim is None:
            return None
        log.info("worker %s runs %s", self.worker_id, claim)
        self._run(claim)
        return claim.search_id

    # ------------------------------------------------------------------ one search

    def _run(self, claim: queue.Claim) -> None:
        state = _RunState()
        heartbeat = threading.Thread(
            target=self._heartbeat, args=(claim.search_id, state), daemon=True
        )
        heartbeat.start()
        started = time.monotonic()
        status, error, result = "failed", None, None
        try:
            if claim.resumed:
                self._reconcile(claim.search_id)
            kwargs: dict[str, Any] = {
                "search_id": claim.search_id,
                "on_trial": lambda record: self._on_trial(claim.search_id, record, state),
                "on_progress": lambda progress: self._on_progress(claim.search_id, progress),
                "should_stop": lambda: state.stop(self.shutdown),
            }
            if self.settings.trial_function:
                kwargs["trial_fn"] = load_function(self.settings.trial_function)
            config = self.config_factory(claim.config, self.settings)
            result = self.search_fn(config, **kwargs)
            status = str(getattr(result, "state", "completed"))
            error = getattr(result, "error", None) if status == "failed" else None
        except NasError as exc:
            error = str(exc)
        except Exception as exc:
            log.exception("search %s failed", claim.search_id)
            error = f"{type(exc).__name__}: {exc}"
        finally:
            state.done.set()
            heartbeat.join(timeout=5)
        elapsed = time.monotonic() - started
        self._finish(claim, state, status, error, result, elapsed)

    def _finish(
        self,
        claim: queue.Claim,
        state: _RunState,
        status: str,
        error: str | None,
        result: Any,
        elapsed: float,
    ) -> None:
        with self.sessions() as session:
            if result is not None:
                trials = list(getattr(result, "trials", None) or [])
                crud.upsert_trials(session, search_id=claim.search_id, records=trials)
                crud.refresh_front(session, search_id=claim.search_id)
                session.commit()
            if state.lost:
                log.warning("worker %s lost the lease of %s", self.worker_id, claim.search_id)
                return
            interrupted = status == "cancelled" or (error is not None and self.shutdown.is_set())
            if interrupted and not state.cancel:
                # Stopped by this process (SIGTERM, Ctrl-C), not by the user: resume later.
                self.shutdown.set()
                queue.requeue_search(
                    session,
                    search_id=claim.search_id,
                    worker_id=self.worker_id,
                    run_seconds=elapsed,
                )
                log.info("search %s put back in the queue", claim.search_id)
                return
            if status not in ("completed", "failed", "cancelled"):
                error = error or f"the search ended in an unknown state {status!r}"
                status = "failed"
            if status == "failed" and error is None:
                error = "the search failed; see the worker's log"
            queue.finish_search(
                session,
                search_id=claim.search_id,
                worker_id=self.worker_id,
                status=status,
                run_seconds=elapsed,
                error=error,
                mlflow_run_id=getattr(result, "mlflow_run_id", None),
                study_name=getattr(result, "study_name", None),
            )

    def _reconcile(self, search_id: str) -> None:
        """Copy trials the previous worker finished but did not store (killed in between)."""
        try:
            from nas.search import load_search

            previous = load_search(search_id, storage=self.settings.optuna_storage)
        except Exception as exc:  # nothing stored yet, or another search function
            log.info("search %s: nothing to reconcile (%s)", search_id, exc)
            return
        with self.sessions() as session:
            crud.upsert_trials(session, search_id=search_id, records=previous.trials)
            crud.refresh_front(session, search_id=search_id)
            session.commit()
        self._set_run_info(search_id, previous)

    def _on_trial(self, search_id: str, record: Any, state: _RunState) -> None:
        try:
            with self.sessions() as session:
                crud.upsert_trial(session, search_id=search_id, record=record)
        except Exception:  # the trial is in the Optuna study; the end of the run copies it
            log.exception("search %s: could not store a trial", search_id)
        if not state.run_info_stored:
            state.run_info_stored = True
            self._store_run_info(search_id)

    def _store_run_info(self, search_id: str) -> None:
        """The MLflow parent run and Optuna study, as soon as the search has stored them."""
        try:
            from nas.search import load_search

            self._set_run_info(
                search_id, load_search(search_id, storage=self.settings.optuna_storage)
            )
        except Exception as exc:  # another search function, or nothing stored yet
            log.info("search %s: run info not available yet (%s)", search_id, exc)

    def _set_run_info(self, search_id: str, stored: Any) -> None:
        """Store the MLflow parent run and Optuna study of a search read back (if it has them)."""
        with self.sessions() as session:
            queue.set_run_info(
                session,
                search_id=search_id,
                mlflow_run_id=getattr(stored, "mlflow_run_id", None),
                study_name=getattr(stored, "study_name", None),
            )

    def _on_progress(self, search_id: str, progress: Any) -> None:
        try:
            with self.sessions() as session:
                queue.record_progress(
                    session,
                    search_id=search_id,
                    worker_id=self.worker_id,
                    eta_s=getattr(progress, "eta_s", None),
                    phase=getattr(progress, "phase", None),
                    confirm_done=getattr(progress, "confirm_done", None),
                    confirm_total=getattr(progress, "confirm_total", None),
                )
        except Exception:
            log.exception("search %s: could not store progress", search_id)

    def _heartbeat(self, search_id: str, state: _RunState) -> None:
        interval = self.settings.heartbeat_interval
        while not state.done.wait(interval):
            try:
                held, cancel = queue.renew_lease(
                    self.engine,
                    search_id=search_id,
                    worker_id=self.worker_id,
                    lease_seconds=self.settings.lease_seconds,
                )
            except Exception:
                log.exception("search %s: lease renewal failed", search_id)
                continue
            state.cancel = state.cancel or cancel
            if not held:
                state.lost = True


class _RunState:
    """What the heartbeat learned: cancel requested, lease lost; and when the run ended."""

    def __init__(self) -> None:
        self.cancel = False
        self.lost = False
        self.run_info_stored = False
        self.done = threading.Event()

    def stop(self, shutdown: threading.Event) -> bool:
        return self.cancel or self.lost or shutdown.is_set()
