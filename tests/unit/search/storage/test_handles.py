"""search/storage/handles.py: the installed Optuna still keeps a study's storage and a trial's storage id
where the run reads them, for a running trial and a finished one."""

from __future__ import annotations

import optuna
from optuna.trial import TrialState

from search.storage.handles import storage_of, trial_id


def test_a_running_and_a_finished_trial_are_found_in_the_storage_by_their_ids(sqlite_url: str) -> None:
    study = optuna.create_study(study_name="handles", storage=sqlite_url)
    study.tell(study.ask(), 0.5)
    running = study.ask()
    storage = storage_of(study)

    assert storage.get_trial(trial_id(running)).number == running.number == 1
    assert storage.get_trial(trial_id(running)).state == TrialState.RUNNING
    (finished,) = study.get_trials(states=(TrialState.COMPLETE,))
    assert storage.get_trial(trial_id(finished)).value == 0.5
    # Another study's trials count from 0 again: the id is the storage's, the number the study's.
    other = optuna.create_study(study_name="other", storage=sqlite_url).ask()
    assert other.number == 0 and trial_id(other) not in (trial_id(running), trial_id(finished))
