"""search/study/record.py: the one schema of a trial's user attrs, its keys pinned, written and read back."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest
from optuna.distributions import FloatDistribution

from models.errors import ConfigError
from models.nets.configs import NetConfig, TrainConfig
from search.study.record import TrialRecord, enqueued_params

NET = NetConfig()
TRAIN = TrainConfig(epochs=3, lr=0.05)
NET_STORED, TRAIN_STORED = (json.loads(json.dumps(c.to_dict())) for c in (NET, TRAIN))  # JSON: tuples come back lists
TRAINED = TrialRecord(
    fold_accuracies=(0.8, None, 0.9),
    fold_std=0.05,
    digit_accuracy=None,
    n_params=1234,
    train_seconds=1.5,
    report_seconds=0.01,
    worker_host="host-a",
    worker_pid=4321,
    worker_rss_mib=512.5,
    net_config=NET_STORED,
    train_config=TRAIN_STORED,
    worker_rss_start_mib=400.0,
    failure_reason="diverged: fold 1 of 3: loss is nan",
)


def _stored(url: str, record: TrialRecord) -> optuna.trial.FrozenTrial:
    """`record` written on a trial of a real SQLite study, read back by a fresh load."""
    study = optuna.create_study(study_name="record", storage=url, direction="maximize")
    trial = study.ask()
    record.write(trial)
    study.tell(trial, 0.85)
    return optuna.load_study(study_name="record", storage=url).trials[0]


def test_the_user_attr_keys_are_the_ones_older_versions_wrote_and_read(tmp_path: Path) -> None:
    """The keys are the storage format: trials written before the record existed are read by these names."""
    trial = _stored(f"sqlite:///{tmp_path / 'study.db'}", TRAINED)
    assert trial.user_attrs == {
        "fold_accuracies": [0.8, None, 0.9],
        "fold_std": 0.05,
        "digit_accuracy": None,
        "n_params": 1234,
        "train_seconds": 1.5,
        "report_seconds": 0.01,
        "worker_host": "host-a",
        "worker_pid": 4321,
        "worker_rss_mib": 512.5,
        "net_config": NET_STORED,
        "train_config": TRAIN_STORED,
        "worker_rss_start_mib": 400.0,
        "failure_reason": "diverged: fold 1 of 3: loss is nan",
    }


def test_a_record_round_trips_through_a_sqlite_study(tmp_path: Path) -> None:
    record = TrialRecord.from_trial(_stored(f"sqlite:///{tmp_path / 'study.db'}", TRAINED))
    assert record == TRAINED
    assert record.configs() == (NET, TRAIN) and record.has_configs


def test_a_partial_record_writes_only_its_own_keys() -> None:
    """Who runs a trial, and why it failed, are written apart from its scores and must not blank them."""
    assert TrialRecord(worker_host="h", worker_pid=7).to_user_attrs() == {"worker_host": "h", "worker_pid": 7}
    assert TrialRecord(failure_reason="abandoned: gone").to_user_attrs() == {"failure_reason": "abandoned: gone"}
    assert TrialRecord(fold_std=0.01).to_user_attrs() == {"fold_std": 0.01}


def test_fold_scores_are_written_with_their_std_and_digit_accuracy_even_when_none() -> None:
    attrs = TrialRecord(fold_accuracies=(None, None), n_params=10).to_user_attrs()
    assert attrs == {"fold_accuracies": [None, None], "fold_std": None, "digit_accuracy": None, "n_params": 10}


def test_a_trial_from_an_older_version_reads_with_its_missing_keys_none() -> None:
    """A trial stored before timings, memory and digit accuracy were recorded, with a key no longer written."""
    old = optuna.trial.create_trial(
        value=0.7,
        params={"lr": 0.01},
        distributions={"lr": FloatDistribution(1e-4, 1.0, log=True)},
        user_attrs={"fold_accuracies": [0.7, 0.7], "fold_std": 0.0, "n_params": 99, "some_old_key": 1},
    )
    record = TrialRecord.from_trial(old)
    assert record == TrialRecord(fold_accuracies=(0.7, 0.7), fold_std=0.0, n_params=99)
    assert not record.has_configs and record.config_values() == {}
    with pytest.raises(ValueError, match="has_configs"):
        record.configs()


def test_a_configuration_with_a_field_this_version_lacks_is_read_as_stored_and_refused_when_decoded() -> None:
    """The cells and the CLI's JSON read it as it was stored; building the network from it fails as before."""
    old = optuna.trial.create_trial(
        value=0.7, user_attrs={"net_config": {**NET.to_dict(), "retired": 1}, "train_config": TRAIN.to_dict()}
    )
    record = TrialRecord.from_trial(old)
    assert record.has_configs and record.config_values()["retired"] == 1
    assert record.config_values()["lr"] == TRAIN.lr  # the training's fields are there too
    with pytest.raises(ConfigError, match="retired"):
        record.configs()


def test_enqueued_params_are_those_the_trial_was_enqueued_with() -> None:
    study = optuna.create_study()
    study.enqueue_trial({"lr": 0.05})
    waiting = study.get_trials(deepcopy=False)[0]
    assert enqueued_params(waiting) == {"lr": 0.05}
    assert enqueued_params(optuna.trial.create_trial(value=0.1)) == {}
