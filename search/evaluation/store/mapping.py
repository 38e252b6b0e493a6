"""Stored rows as results: a configuration's rows as its ConfigurationResult, a row as the DrawResult
training gave, and the candidate a group of rows was evaluated as (with the label tables show)."""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from collections.abc import Sequence

from models.nets.configs import NetConfig, TrainConfig
from search.evaluation.results import Candidate, ConfigurationResult, DrawResult
from search.evaluation.stats import summarize
from search.evaluation.store.schema import EvaluationRow

__all__ = ["distinct_labels", "draw_result", "result_from_rows", "stored_candidate"]


def distinct_labels(results: list[ConfigurationResult]) -> list[ConfigurationResult]:
    """One trial evaluated at several --epochs gets the epochs in its label, so tables and plots tell them apart."""
    counts = Counter(r.candidate.label for r in results)
    return [
        dataclasses.replace(
            r, candidate=dataclasses.replace(r.candidate, label=f"{r.candidate.label} ({r.candidate.train.epochs} ep)")
        )
        if counts[r.candidate.label] > 1
        else r
        for r in results
    ]


def stored_candidate(rows: Sequence[EvaluationRow]) -> Candidate:
    """The candidate a group of stored rows (one configuration) was evaluated as."""
    config = json.loads(rows[0].config_json)
    preset = rows[0].preset
    numbers = [r.trial_number for r in rows if r.trial_number is not None]
    return Candidate(
        label=preset if preset is not None else f"trial {min(numbers)}" if numbers else rows[0].config_key,
        net=NetConfig.from_dict(config["net"]),
        train=TrainConfig.from_dict(config["train"]),
        trial_number=min(numbers) if numbers else None,
        preset=preset,
    )


def draw_result(row: EvaluationRow) -> DrawResult:
    """A stored draw as training gave it back, to store it again under another preset of one configuration."""
    return DrawResult(
        seed=row.draw_seed,
        status=row.status,
        message=row.message or "",
        accuracy=row.test_accuracy,
        digit_accuracy=row.test_digit_accuracy,
        best_epoch_accuracy=row.best_epoch_accuracy,
        seconds=row.train_seconds,
        n_params=row.n_params,
    )


def result_from_rows(candidate: Candidate, rows: Sequence[EvaluationRow]) -> ConfigurationResult:
    completed = [r for r in rows if r.status == "completed" and r.test_accuracy is not None]
    accuracies = {r.draw_seed: r.test_accuracy for r in completed}
    digits = {r.draw_seed: r.test_digit_accuracy for r in completed if r.test_digit_accuracy is not None}
    best = {r.draw_seed: r.best_epoch_accuracy for r in completed if r.best_epoch_accuracy is not None}
    return ConfigurationResult(
        candidate=candidate,
        n_params=rows[0].n_params if rows else _count_parameters(candidate.net),
        accuracies=accuracies,
        digit_accuracies=digits,
        n_diverged=len(rows) - len(completed),
        train_seconds=sum(r.train_seconds for r in rows) / len(rows) if rows else 0.0,
        accuracy=summarize(list(accuracies.values())),
        digit_accuracy=summarize(list(digits.values())) if digits else None,
        best_epoch_accuracies=best,
        best_epoch_accuracy=summarize(list(best.values())) if best else None,
    )


def _count_parameters(net: NetConfig) -> int:
    from models.nets.families import count_parameters

    return count_parameters(net)
