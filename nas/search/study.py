"""The Optuna study of a search: create it or load it for a resume, own it, end its leftovers.

A search is one study in the SQL storage whose user attributes (:data:`nas.search.store.ATTR`)
hold its id, config, resolved space, versions and state. Only Optuna's public API is used:
``create_study``/``load_study``, study and trial user attributes, ``tell``, and the
:class:`optuna.storages.BaseStorage` interface for the trials no ``Trial`` object is held for.
"""

from __future__ import annotations

import logging
import warnings
from typing import Any, NamedTuple

from nas.search.attrs import ATTR
from nas.search.config import SearchConfig
from nas.search.mirror import MirroredStorage
from nas.search.resources import load_space, preflight, versions
from nas.search.store import (
    find_study_name,
    jsonable,
    new_search_id,
    now_iso,
    study_name_for,
)

__all__ = ["RESUME_OVERRIDES", "OpenedStudy", "mark_interrupted", "open_study", "own_study"]

log = logging.getLogger(__name__)

#: Fields a resumed search takes from the caller's config; the stored config defines the rest.
RESUME_OVERRIDES = ("budget", "concurrency", "cpus_per_trial", "gpus_per_trial", "ray_address")

INTERRUPTED = "interrupted: the search stopped before it finished"


class OpenedStudy(NamedTuple):
    """A search's study, ready to run: its id, study, effective config and space."""

    search_id: str
    study: Any
    config: SearchConfig
    space: Any


def open_study(
    config: SearchConfig,
    search_id: str | None,
    storage: Any,
    *,
    check: bool = True,
) -> OpenedStudy:
    """Load the study of ``search_id`` for a resume, or create a new search's study.

    A resume takes its config from the stored one, with :data:`RESUME_OVERRIDES` (and
    ``storage``) from ``config``, and ends the trials a crash left RUNNING. A new search
    (``search_id`` unknown or None) gets its attributes written; ``check`` runs the
    preflight of the space and the evaluation settings first.
    """
    import optuna

    study_name = find_study_name(search_id, storage) if search_id else None
    if study_name is not None:
        assert search_id is not None
        study = optuna.load_study(study_name=study_name, storage=storage)
        stored = SearchConfig.model_validate(study.user_attrs[ATTR["config"]])
        config = stored.model_copy(
            update={k: getattr(config, k) for k in RESUME_OVERRIDES} | {"storage": config.storage}
        )
        space_doc = study.user_attrs.get(ATTR["space"])
        space = load_space(space_doc if space_doc is not None else config.space)
        mark_interrupted(study, storage)
        study.set_user_attr(ATTR["config"], config.model_dump(mode="json"))
    else:
        search_id = search_id or new_search_id()
        space = load_space(config.space)
        if check:
            preflight(space, config)
        study = optuna.create_study(
            storage=storage,
            study_name=study_name_for(search_id, config.name),
            directions=config.directions(),
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # experimental since Optuna 3.2, stable enough
            study.set_metric_names(list(config.objectives))
        study.set_user_attr(ATTR["id"], search_id)
        study.set_user_attr(ATTR["config"], config.model_dump(mode="json"))
        study.set_user_attr(ATTR["space"], jsonable(space.to_dict()))
        study.set_user_attr(ATTR["created"], now_iso())
        study.set_user_attr(ATTR["versions"], versions())
    study.set_user_attr(ATTR["state"], "running")
    return OpenedStudy(search_id, study, config, space)


def own_study(study: Any, storage: Any) -> tuple[Any, MirroredStorage]:
    """The study again, on a :class:`MirroredStorage` of ``storage``: this process now owns
    its trials, served from memory and written through to ``storage``."""
    import optuna

    mirror = MirroredStorage(storage, storage.get_study_id_from_name(study.study_name))
    return optuna.load_study(study_name=study.study_name, storage=mirror), mirror


def mark_interrupted(study: Any, storage: Any) -> None:
    """Trials left RUNNING (by a stop or a crash) become FAIL + interrupted.

    ``storage`` is the study's storage: no ``Trial`` object is held for these trials, so
    their attributes are set through the public :class:`~optuna.storages.BaseStorage` calls.
    """
    import optuna

    running = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
    if not running:
        return
    study_id = storage.get_study_id_from_name(study.study_name)
    for t in running:
        try:
            trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, t.number)
            storage.set_trial_user_attr(trial_id, ATTR["interrupted"], True)
            storage.set_trial_user_attr(trial_id, ATTR["error"], INTERRUPTED)
            study.tell(t.number, state=optuna.trial.TrialState.FAIL, skip_if_finished=True)
        except Exception as exc:
            log.warning("could not mark trial %s interrupted: %s", t.number, exc)
