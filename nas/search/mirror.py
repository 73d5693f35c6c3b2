"""An Optuna storage that serves one study's trials from memory and writes them through to SQL.

Samplers read every trial of the study several times per proposal (grouped TPE once per
parameter group, the distinct-proposal wrapper once per parameter): against an RDB storage each
read is a round of SQL queries for the unfinished trials, the bulk of the driver's time per
trial. A search's driver is the only writer of its study, so it can keep the trials in memory:
every write goes to the backend first (the SQL study stays complete and current for the
service, ``optuna-dashboard`` and a resume) and then to the in-memory copy; reads of the study's
trials never touch the backend. Everything else (studies, other studies' trials) is delegated.

Only :class:`optuna.storages.BaseStorage`'s public interface is used. A trial's storage id is
not public on a :class:`~optuna.trial.FrozenTrial`, so the mirror learns the ids of the trials
it creates, and those of trials stored before it, from the backend the first time one is used
(``get_trial_id_from_study_id_trial_number``).
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Container, Sequence
from typing import Any

from optuna.distributions import BaseDistribution
from optuna.storages import BaseStorage
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

__all__ = ["MirroredStorage"]


class MirroredStorage(BaseStorage):
    """``backend`` with the trials of study ``study_id`` mirrored in memory (see module doc).

    Only valid while this process is the only writer of that study's trials.
    """

    def __init__(self, backend: BaseStorage, study_id: int) -> None:
        self._backend = backend
        self._own = study_id
        self._lock = threading.RLock()
        self._trials: list[FrozenTrial] = list(backend.get_all_trials(study_id, deepcopy=False))
        self._index: dict[int, int] = {}  # trial id -> number, of the study's trials seen so far
        self._ids: dict[int, int] = {}  # trial number -> trial id, the same trials
        self._foreign: set[int] = set()  # trial ids of other studies

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        del state["_lock"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.RLock()

    # -- the mirrored study's trials ------------------------------------------------------

    def _learn(self, trial_id: int, number: int) -> None:
        self._index[trial_id] = number
        self._ids[number] = trial_id

    def _mirrored(self, trial_id: int) -> bool:
        """Whether ``trial_id`` is a trial of the mirrored study (asks the backend once)."""
        if trial_id in self._index:
            return True
        if trial_id in self._foreign:
            return False
        number = self._backend.get_trial(trial_id).number
        with self._lock:
            if number < len(self._trials) and self._id_of(number) == trial_id:
                return True
            self._foreign.add(trial_id)
        return False

    def _id_of(self, number: int) -> int:
        """The id of the mirrored study's trial ``number`` (< ``len(self._trials)``)."""
        if number not in self._ids:
            self._learn(
                self._backend.get_trial_id_from_study_id_trial_number(self._own, number), number
            )
        return self._ids[number]

    def _get(self, trial_id: int) -> FrozenTrial:
        return self._trials[self._index[trial_id]]

    def _replace(self, trial: FrozenTrial) -> None:
        # Copy-on-write: lists handed out by get_all_trials(deepcopy=False) keep old objects.
        self._trials[trial.number] = trial

    def create_new_trial(self, study_id: int, template_trial: FrozenTrial | None = None) -> int:
        trial_id = self._backend.create_new_trial(study_id, template_trial)
        if study_id == self._own:
            with self._lock:
                trial = self._backend.get_trial(trial_id)
                # Trial numbers are dense per study; fill any gap (never expected) safely.
                while len(self._trials) < trial.number:
                    missing_id = self._backend.get_trial_id_from_study_id_trial_number(
                        study_id, len(self._trials)
                    )
                    self._learn(missing_id, len(self._trials))
                    self._trials.append(self._backend.get_trial(missing_id))
                self._learn(trial_id, trial.number)
                if trial.number == len(self._trials):
                    self._trials.append(trial)
                else:
                    self._replace(trial)
        return trial_id

    def _merge(self, trial_id: int, **fields: dict[Any, Any]) -> None:
        """Merge entries into the mirrored trial's dict ``fields`` (params, user_attrs, ...)."""
        if not self._mirrored(trial_id):
            return
        with self._lock:
            trial = copy.copy(self._get(trial_id))
            for name, entries in fields.items():
                setattr(trial, name, {**getattr(trial, name), **entries})
            self._replace(trial)

    def set_trial_param(
        self,
        trial_id: int,
        param_name: str,
        param_value_internal: float,
        distribution: BaseDistribution,
    ) -> None:
        self._backend.set_trial_param(trial_id, param_name, param_value_internal, distribution)
        self._merge(
            trial_id,
            params={param_name: distribution.to_external_repr(param_value_internal)},
            distributions={param_name: distribution},
        )

    def set_trial_state_values(
        self, trial_id: int, state: TrialState, values: Sequence[float] | None = None
    ) -> bool:
        changed = self._backend.set_trial_state_values(trial_id, state, values)
        if changed and self._mirrored(trial_id):
            with self._lock:  # the backend sets the timestamps: read the trial back once
                self._replace(self._backend.get_trial(trial_id))
        return changed

    def set_trial_intermediate_value(
        self, trial_id: int, step: int, intermediate_value: float
    ) -> None:
        self._backend.set_trial_intermediate_value(trial_id, step, intermediate_value)
        self._merge(trial_id, intermediate_values={step: intermediate_value})

    def set_trial_user_attr(self, trial_id: int, key: str, value: Any) -> None:
        self._backend.set_trial_user_attr(trial_id, key, value)
        self._merge(trial_id, user_attrs={key: copy.deepcopy(value)})

    def set_trial_system_attr(self, trial_id: int, key: str, value: Any) -> None:
        self._backend.set_trial_system_attr(trial_id, key, value)
        self._merge(trial_id, system_attrs={key: copy.deepcopy(value)})

    def get_trial(self, trial_id: int) -> FrozenTrial:
        with self._lock:
            if self._mirrored(trial_id):
                return self._get(trial_id)
        return self._backend.get_trial(trial_id)

    def get_all_trials(
        self,
        study_id: int,
        deepcopy: bool = True,
        states: Container[TrialState] | None = None,
    ) -> list[FrozenTrial]:
        if study_id != self._own:
            return self._backend.get_all_trials(study_id, deepcopy=deepcopy, states=states)
        with self._lock:
            if states is None:
                trials = list(self._trials)
            else:
                trials = [t for t in self._trials if t.state in states]
        return copy.deepcopy(trials) if deepcopy else trials

    def get_trial_id_from_study_id_trial_number(self, study_id: int, trial_number: int) -> int:
        if study_id == self._own:
            with self._lock:
                if trial_number < len(self._trials):
                    return self._id_of(trial_number)
        return self._backend.get_trial_id_from_study_id_trial_number(study_id, trial_number)

    # -- delegated ------------------------------------------------------------------------

    def create_new_study(
        self, directions: Sequence[StudyDirection], study_name: str | None = None
    ) -> int:
        return self._backend.create_new_study(directions, study_name)

    def delete_study(self, study_id: int) -> None:
        self._backend.delete_study(study_id)

    def set_study_user_attr(self, study_id: int, key: str, value: Any) -> None:
        self._backend.set_study_user_attr(study_id, key, value)

    def set_study_system_attr(self, study_id: int, key: str, value: Any) -> None:
        self._backend.set_study_system_attr(study_id, key, value)

    def get_study_id_from_name(self, study_name: str) -> int:
        return self._backend.get_study_id_from_name(study_name)

    def get_study_name_from_id(self, study_id: int) -> str:
        return self._backend.get_study_name_from_id(study_id)

    def get_study_directions(self, study_id: int) -> list[StudyDirection]:
        return self._backend.get_study_directions(study_id)

    def get_study_user_attrs(self, study_id: int) -> dict[str, Any]:
        return self._backend.get_study_user_attrs(study_id)

    def get_study_system_attrs(self, study_id: int) -> dict[str, Any]:
        return self._backend.get_study_system_attrs(study_id)

    def get_all_studies(self) -> list[Any]:  # FrozenStudy: not exported by optuna.study
        return self._backend.get_all_studies()

    def remove_session(self) -> None:
        self._backend.remove_session()
