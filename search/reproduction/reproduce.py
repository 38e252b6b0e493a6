"""Reproduce the published reports: each preset trained on fresh draws and stored like any evaluation."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from models.data.sizes import DEFAULT_N_PAIRS
from search.defaults import DEFAULT_PRESET_DRAWS
from search.evaluation.evaluate import (
    ConfigurationDone,
    Progress,
    check_counts,
    evaluate_candidates,
    with_epochs,
)
from search.evaluation.results import Candidate, EvaluationSummary
from search.evaluation.store import database_url
from search.reproduction.presets import select_presets, vary
from search.run.speed import run_layout

__all__ = ["reproduce"]


def reproduce(
    presets: Sequence[str] | None = None,
    *,
    report: str | None = None,
    storage_url: str | None = None,
    draws: int = DEFAULT_PRESET_DRAWS,
    epochs: int | None = None,
    data_dir: Path | None = None,
    workers: int | None = None,
    threads: int | None = None,
    n_pairs: int = DEFAULT_N_PAIRS,
    progress: Progress | None = None,
    on_configuration: ConfigurationDone | None = None,
    changes: Mapping[str, Any] | None = None,
) -> EvaluationSummary:
    """Train published presets on `draws` fresh draws: those named, those of one report ("003", or
    "all"), or all of them when neither is given. Presets whose figure is a maximum over epochs are
    scored after every epoch, and that maximum is kept beside the final accuracy. `changes` (field ->
    value) trains each preset's variant instead, stored under its own name, to test one factor."""
    check_counts(top=1, draws=draws, epochs=epochs, workers=workers, threads=threads)
    database_url(storage_url)
    candidates = [
        Candidate(
            label=preset.name,
            net=preset.net,
            train=with_epochs(preset.train, epochs),
            preset=preset.name,
            published_mean=preset.published_mean,
            published_std=preset.published_std,
            score_every_epoch=preset.best_over_epochs,
        )
        for preset in (vary(p, changes or {}) for p in select_presets(presets, report=report))
    ]
    layout = run_layout(None, workers, threads)  # after every check; neither given: the layout measured here
    return evaluate_candidates(
        candidates,
        study_name=None,
        storage_url=storage_url,
        draws=draws,
        data_dir=data_dir,
        workers=layout.workers,
        threads=layout.threads,
        n_pairs=n_pairs,
        progress=progress,
        on_configuration=on_configuration,
    )
