"""The trial record: what the service stores on an Optuna trial besides its value, in one schema.

The storage writes who runs a trial when it starts (`search.storage.retrying`), the objective writes
its fold scores, size, timings and configurations when it has trained (`search.run.objective`), and
whoever fails a trial writes why; the evaluation, the report, the cells, the CLI and the benchmarks
read it back. Each part is written as a partial record: Optuna merges them in the trial's user attrs.

A trial stored by an older version may lack any key: its field reads None, and each reader shows "-"
or skips the trial, as it always has. Values are read as they were stored, without coercion, and the
configurations stay the dicts the trial stored until `configs()` decodes them: a reader that only
matches or prints values (the cells, the CLI's JSON) still reads a trial whose configuration names a
field this version no longer knows.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import optuna
from optuna.trial import FrozenTrial

if TYPE_CHECKING:
    from models.nets.configs import NetConfig, TrainConfig

__all__ = ["TrialRecord", "enqueued_params"]

# Written with the fold scores even when None (no fold finished, no digit outputs): a trained trial has them all.
_WITH_FOLD_SCORES = ("fold_std", "digit_accuracy")


@dataclass(frozen=True)
class TrialRecord:
    """A trial's user attrs, one field per key (the field's name is the key); None: not stored."""

    fold_accuracies: tuple[float | None, ...] | None = None  # each fold's validation accuracy; None: it diverged
    fold_std: float | None = None  # std of the folds that have an accuracy
    digit_accuracy: float | None = None  # mean digit accuracy over the folds, for networks with digit outputs
    n_params: int | None = None  # trainable parameters of the network
    train_seconds: float | None = None  # wall time of the K-fold training
    report_seconds: float | None = None  # the part of it spent reporting to the pruner (storage reads and writes)
    worker_host: str | None = None  # the host of the process that runs the trial, written when it starts
    worker_pid: int | None = None  # that process's pid, written when it starts and again with the scores
    worker_rss_mib: float | None = None  # the worker's peak resident memory so far
    net_config: Mapping[str, Any] | None = None  # NetConfig.to_dict(), as stored
    train_config: Mapping[str, Any] | None = None  # TrainConfig.to_dict(), as stored
    worker_rss_start_mib: float | None = None  # the worker's resident memory when the trial started
    failure_reason: str | None = None  # why a failed (or diverged, pruned) trial ended: one line

    @classmethod
    def from_trial(cls, trial: FrozenTrial) -> TrialRecord:
        """The record a trial stored, whatever version stored it: a key it lacks reads None."""
        attrs = trial.user_attrs
        values = {field.name: attrs.get(field.name) for field in dataclasses.fields(cls)}
        if isinstance(values["fold_accuracies"], list):  # JSON gives a list back; the record is frozen
            values["fold_accuracies"] = tuple(values["fold_accuracies"])
        return cls(**values)

    def to_user_attrs(self) -> dict[str, Any]:
        """The user attrs this (partial) record sets: every field that is not None, in field order."""
        scored = self.fold_accuracies is not None
        attrs: dict[str, Any] = {}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if value is None and not (scored and field.name in _WITH_FOLD_SCORES):
                continue
            if isinstance(value, tuple):
                value = list(value)
            elif isinstance(value, Mapping):
                value = dict(value)
            attrs[field.name] = value
        return attrs

    def write(self, trial: optuna.Trial) -> None:
        """Set this record's user attrs on a running trial."""
        for key, value in self.to_user_attrs().items():
            trial.set_user_attr(key, value)

    @property
    def has_configs(self) -> bool:
        """Whether the trial stored both configurations (a trial that failed before training did not)."""
        return self.net_config is not None and self.train_config is not None

    def configs(self) -> tuple[NetConfig, TrainConfig]:
        """The trial's network and training configurations, decoded (ConfigError for a field this version lacks)."""
        if self.net_config is None or self.train_config is None:
            raise ValueError("This trial stored no configuration; check has_configs before decoding one.")
        # Imported here: the `models` package imports torch, which the storage and the cells never need.
        from models.nets.configs import NetConfig, TrainConfig

        return NetConfig.from_dict(dict(self.net_config)), TrainConfig.from_dict(dict(self.train_config))

    def config_values(self) -> dict[str, Any]:
        """Both configurations as stored, in one mapping (field -> value; the training's win a shared name)."""
        return {**(self.net_config or {}), **(self.train_config or {})}


def enqueued_params(trial: FrozenTrial) -> dict[str, Any]:
    """The parameters a trial was enqueued with (a retry, a starting point): Optuna keeps them as the
    system attr `fixed_params`, and a trial still waiting to run has no params of its own yet."""
    return dict(trial.system_attrs.get("fixed_params", {}))
