"""Fresh-draw evaluation: retrain chosen configurations on R new draws and keep every draw's result.

`evaluate_best` takes the best complete trials of a study (for a study with cells, such as `ablation`,
the best trial of each cell), `reproduce` takes the published presets of `search.reproduction.presets`. Each
configuration is trained on the same draw seeds (DRAW_SEED_BASE, DRAW_SEED_BASE + 1, ...), on all
training pairs of the draw, and scored on its test pairs, so configurations are compared draw by draw.

Every draw's result is one row of the product's own `evaluations` table, in the same database as the
Optuna study. Rows are committed after each chunk of draws, and a configuration only trains the draws
it has no row for: re-running adds nothing, and a crash loses at most the draws in progress. A unique
index keeps concurrent runs from storing one draw twice. Presets that are one configuration under
several published rows share their draws: each draw is trained once and stored under every row.
"""

from __future__ import annotations

import dataclasses
import logging
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from optuna.trial import FrozenTrial

from models.data.sizes import DEFAULT_N_PAIRS
from models.nets.configs import TrainConfig, check_compatible
from search.defaults import DEFAULT_DRAWS, DEFAULT_FINALISTS, DEFAULT_REPEATS, MAX_DRAWS
from search.errors import EvaluationError, check_at_least
from search.evaluation.claims import Claims
from search.evaluation.draw_training import train_chunks
from search.evaluation.export import INDEX, ModelFolder
from search.evaluation.results import Candidate, EvaluationSummary, compare_all
from search.evaluation.selection import select_finalists
from search.evaluation.store import (
    database_url,
    draw_result,
    open_evaluations,
    result_from_rows,
    store_draws,
    stored_rows,
    stored_seeds,
)
from search.run.process_pool import JobPool, own_pool
from search.run.speed import run_layout
from search.storage.artifacts import upload_files
from search.storage.studies import best_trials, load_study
from search.study.cells import cell_label, in_cell
from search.study.definition import stored_definition
from search.study.record import TrialRecord

logger = logging.getLogger(__name__)

DRAW_SEED_BASE = 1000  # draw r uses seed DRAW_SEED_BASE + r: fixed, and apart from the studies' data seeds
DRAWS_PER_CHUNK = 5  # draws trained batched at once, and committed together
CLAIM_POLL = 5.0  # seconds between looks at the database while other processes train the remaining draws

Progress = Callable[[int, int], None]  # (draws trained so far, draws to train in this run)
ConfigurationDone = Callable[[str, int, int], None]  # (label, configurations done, configurations to train)


# ---------------------------------------------------------------------------------------------------
# The two entry points.


def evaluate_best(
    study_name: str,
    *,
    storage_url: str | None = None,
    top: int = 1,
    draws: int = DEFAULT_DRAWS,
    epochs: int | None = None,
    data_dir: Path | None = None,
    workers: int | None = None,
    threads: int | None = None,
    n_pairs: int = DEFAULT_N_PAIRS,
    progress: Progress | None = None,
    selection_stage: bool = True,
    finalists: int = DEFAULT_FINALISTS,
    repeats: int = DEFAULT_REPEATS,
    race: bool = True,
    selection_progress: Progress | None = None,
    save_dir: Path | None = None,
) -> EvaluationSummary:
    """Retrain the `top` best complete trials of a study on `draws` fresh draws and summarise them.

    With `selection_stage` (a single-objective study without cells), "best" is the selection stage's
    ranking (search.evaluation.selection): the `finalists` best trials by search CV are first retrained at the
    evaluation length on `repeats` fresh training draws of K-fold, and the `top` best by that score are
    evaluated. Test pairs never take part in choosing. Without it, the search's own CV ranking is used.

    `workers` and `threads` left out take the layout `search run` measured fastest on this machine.
    `save_dir` keeps the first configuration's network of every draw there (search.evaluation.export).
    The study's own definition (stored in it when it was created) gives its cells and evaluate_epochs.
    For a study with cells (the `ablation` study) the best trial of each cell is evaluated instead of
    the top N, and every pair of cells gets paired significance tests.
    """
    check_counts(top=top, draws=draws, epochs=epochs, workers=workers, threads=threads)
    if save_dir is not None and Path(save_dir).is_file():
        raise EvaluationError(f"--save {save_dir}: it is a file; name a directory for the models.")
    if selection_stage and not (1 <= finalists <= 100 and 1 <= repeats <= 20):
        raise EvaluationError(
            f"finalists must be between 1 and 100 and repeats between 1 and 20, but got {finalists=}, {repeats=}."
        )
    database_url(storage_url)
    # Its cells, and its evaluate_epochs: searched at a cheap fidelity (e.g. 20 epochs), evaluated at the
    # full one. A study created before studies stored their definition has neither: each trial keeps its epochs.
    study = load_study(storage_url, study_name)
    definition = stored_definition(study.user_attrs)
    cells = definition.cells if definition is not None else ()
    epochs = epochs if epochs is not None else (definition.evaluate_epochs if definition is not None else None)
    selection_stage = selection_stage and not cells and len(study.directions) == 1
    # Best first; an unknown study is a StorageError naming the studies there. With cells: all trials.
    ranked = best_trials(
        storage_url, study_name, top=sys.maxsize if cells else max(top, finalists) if selection_stage else top
    )
    ranked = [t for t in ranked if TrialRecord.from_trial(t).has_configs]
    if not ranked:
        raise EvaluationError(
            f"The study {study_name!r} has no completed trial with a stored configuration to evaluate; "
            f"run `search run --study {study_name} --trials N` until one completes."
        )
    layout = run_layout(definition, workers, threads)  # after every check: a bad call measures nothing
    with JobPool(workers=layout.workers, threads=layout.threads) as pool:  # the same processes for both stages
        selection = None
        if selection_stage:
            with open_evaluations(storage_url) as engine, Claims(engine) as claims:  # shared with other processes
                selection = select_finalists(
                    study,
                    ranked,
                    repeats=repeats,
                    race=race,
                    epochs=epochs,
                    n_pairs=n_pairs,
                    data_dir=data_dir,
                    workers=layout.workers,
                    threads=layout.threads,
                    progress=selection_progress,
                    claims=claims,
                    pool=pool,
                )
            by_number = {t.number: t for t in ranked}
            ranked = [by_number[f.trial_number] for f in selection.finalists][:top]
        candidates = _cell_candidates(ranked, cells, epochs) if cells else [trial_candidate(t, epochs) for t in ranked]
        if not candidates:
            cell_keys = sorted({key for cell in cells for key in cell})
            raise EvaluationError(
                f"No completed trial of the study {study_name!r} lies in any of its {len(cells)} cells "
                f"(matched on {', '.join(cell_keys)}); run more trials of the study."
            )
        save = ModelFolder(save_dir, candidates[0], study_name=study_name) if save_dir is not None else None
        summary = evaluate_candidates(
            candidates,
            study_name=study_name,
            storage_url=storage_url,
            draws=draws,
            data_dir=data_dir,
            workers=layout.workers,
            threads=layout.threads,
            n_pairs=n_pairs,
            progress=progress,
            save=save,
            pool=pool,
        )
    if save is not None and save.written:
        # The networks in the dashboard, as the study's Optuna artifacts (search.storage.artifacts).
        upload_files(storage_url, study_name, [*save.written, save.directory / INDEX])
    if cells:
        summary = dataclasses.replace(summary, comparisons=compare_all(summary.configurations))
    return dataclasses.replace(summary, selection=selection)


def check_counts(*, top: int, draws: int, epochs: int | None, workers: int, threads: int | None) -> None:
    if not 1 <= draws <= MAX_DRAWS:
        raise EvaluationError(f"draws must be between 1 and {MAX_DRAWS}, but got {draws=}; 10-25 is the usual range.")
    check_at_least("top", top, error=EvaluationError)
    check_at_least("epochs", epochs, error=EvaluationError, hint="; leave it out to keep the configuration's epochs")
    check_at_least("workers", workers, error=EvaluationError)
    check_at_least("threads", threads, error=EvaluationError)


# ---------------------------------------------------------------------------------------------------
# Trials -> candidates.


def with_epochs(train: TrainConfig, epochs: int | None) -> TrainConfig:
    return train if epochs is None else dataclasses.replace(train, epochs=epochs)


def trial_candidate(
    trial: FrozenTrial, epochs: int | None, *, label: str | None = None, cell: Mapping[str, Any] | None = None
) -> Candidate:
    """A trial's configuration as a candidate, at `epochs` (None: the trial's own)."""
    net, train = TrialRecord.from_trial(trial).configs()
    train = with_epochs(train, epochs)
    return Candidate(
        label=label or f"trial {trial.number}",
        net=net,
        train=train,
        trial_number=trial.number,
        trial_value=trial.values[0] if trial.values else None,
        cell=cell,
    )


def _cell_candidates(
    ranked: list[FrozenTrial], cells: Sequence[Mapping[str, Any]], epochs: int | None
) -> list[Candidate]:
    """The best trial of each cell (`ranked` is best first); cells without a complete trial are left out."""
    candidates = []
    for cell in cells:
        best = next((t for t in ranked if in_cell(t, cell)), None)
        label = cell_label(cell)
        if best is None:
            logger.warning("cell %s has no complete trial; it is left out of the comparison", label)
            continue
        candidates.append(trial_candidate(best, epochs, label=label, cell=dict(cell)))
    return candidates


def evaluate_candidates(
    candidates: Sequence[Candidate],
    *,
    study_name: str | None,
    storage_url: str | None,
    draws: int,
    data_dir: Path | None,
    workers: int,
    threads: int | None,
    n_pairs: int,
    progress: Progress | None,
    on_configuration: ConfigurationDone | None = None,
    save: ModelFolder | None = None,
    poll: float = CLAIM_POLL,
    pool: JobPool | None = None,
) -> EvaluationSummary:
    """Train every candidate's missing draws and store them; with `save`, its candidate's networks of every
    draw are written there too (a draw stored earlier but not saved is trained again, for its network only).

    Shared through the database: round by round, this process claims up to `workers` chunks of draws
    nobody else holds (search.evaluation.claims), trains and stores them, and waits while the rest are
    trained elsewhere; so any number of processes, on any machines, split the draws between them and
    each ends with the same table, read from the stored rows."""
    from models.data.pools import load_pools

    for candidate in candidates:
        check_compatible(candidate.net, candidate.train)
    seeds = tuple(range(DRAW_SEED_BASE, DRAW_SEED_BASE + draws))
    data_source = load_pools(data_dir).source
    with (
        open_evaluations(storage_url) as engine,
        Claims(engine) as claims,
        own_pool(pool, workers=workers, threads=threads) as pool,
    ):
        where = dict(study_name=study_name, n_pairs=n_pairs, data_source=data_source)
        owner = study_name if study_name is not None else "presets"

        def key(candidate: Candidate, seed: int, saving: bool) -> str:
            kind = "save" if saving else "draw"
            return f"{kind}|{owner}|{candidate.key}|{n_pairs}|{data_source}|{seed}"

        def still_to_do(taken: Sequence[str]) -> set[str]:
            """Of the keys just claimed, those whose draws are still missing, read again after the claim."""
            fresh, _ = _plan(engine, candidates, seeds, where)
            to_do = {key(candidate, seed, False) for candidate, chunk in fresh for seed in chunk}
            if save is not None:
                to_do |= {key(save.candidate, seed, True) for seed in save.missing(seeds)}
            return to_do & set(taken)

        n_configurations = 0

        n_done, trained, total = 0, 0, None
        waiting: dict[str, list[tuple[Candidate, set[int]]]] = {}  # configurations not yet announced as done
        while True:
            chunks, sharers = _plan(engine, candidates, seeds, where)
            for label in [label for label in waiting if label not in sharers]:  # every draw stored now
                for sharer, _ in waiting.pop(label):
                    n_done += 1
                    if on_configuration is not None:
                        on_configuration(sharer.label, n_done, n_configurations)
            work = [(candidate, chunk, False) for candidate, chunk in chunks]
            if save is not None:
                planned = {s for candidate, chunk in chunks if candidate.key == save.candidate.key for s in chunk}
                unsaved = [s for s in save.missing(seeds) if s not in planned]
                work += [
                    (save.candidate, unsaved[i : i + DRAWS_PER_CHUNK], True)
                    for i in range(0, len(unsaved), DRAWS_PER_CHUNK)
                ]
            if total is None:
                total = sum(len(chunk) for _, chunk, _ in work)
                n_configurations = sum(len(group) for group in sharers.values())
                if progress is not None:
                    progress(0, total)
            waiting.update(sharers)
            if not work:
                break
            mine = []
            for candidate, chunk, saving in work:
                taken = claims.take([key(candidate, seed, saving) for seed in chunk], still_to_do=still_to_do)
                if taken:
                    mine.append((candidate, [int(k.rsplit("|", 1)[1]) for k in taken], saving))
                if len(mine) == workers:
                    break
            if not mine:  # every missing draw is being trained elsewhere: wait for its rows
                lost = claims.lost([key(c, s, saving) for c, chunk, saving in work for s in chunk])
                if lost:
                    raise EvaluationError(
                        f"{len(lost)} draw(s) were claimed by processes that died, twice each "
                        f"({', '.join(k.split('|', 2)[2] for k in lost[:3])}); run the command again to train them."
                    )
                time.sleep(poll)
                continue
            saving_draws = {(c.key, s) for c, chunk, saving in mine if saving for s in chunk}
            keep = save.candidate.key if save is not None else None
            for candidate, results in train_chunks(
                [(c, chunk) for c, chunk, _ in mine],
                data_dir=data_dir,
                n_pairs=n_pairs,
                pool=pool,
                keep_models_of=keep,
            ):
                if save is not None and candidate.key == keep:
                    for result in results:
                        save.write(result)
                saving = (candidate.key, results[0].seed) in saving_draws
                if not saving:  # a chunk trained to save its networks has its rows stored already
                    for sharer, seeds_missing in sharers[candidate.label]:
                        store_draws(engine, sharer, [r for r in results if r.seed in seeds_missing], **where)
                claims.release([key(candidate, r.seed, saving) for r in results])
                trained += len(results)
                if progress is not None:
                    progress(trained, max(total, trained))
        configurations = tuple(
            result_from_rows(candidate, stored_rows(engine, candidate, seeds=seeds, **where))
            for candidate in candidates
        )
    return EvaluationSummary(
        study_name=study_name,
        data_source=data_source,
        n_pairs=n_pairs,
        draw_seeds=seeds,
        configurations=configurations,
        n_trained=trained,
    )


def _plan(
    engine, candidates: Sequence[Candidate], seeds: Sequence[int], where: Mapping[str, Any]
) -> tuple[list[tuple[Candidate, list[int]]], dict[str, list[tuple[Candidate, set[int]]]]]:
    """The chunks to train, and for each trained candidate's label the candidates its draws are stored under.

    A configuration that appears twice (two trials with one configuration) trains once. Two presets with
    one configuration (report 000 prints one network in three rows) keep their own rows, but a draw is
    trained once for all of them: training is deterministic in the configuration and the draw seed, so a
    draw one of them has stored is copied to the others, and one missing in several is trained once."""
    unique: dict[tuple[str | None, str], Candidate] = {}
    for candidate in candidates:
        unique.setdefault((candidate.preset, candidate.key), candidate)
    groups: dict[tuple[str, bool], list[Candidate]] = {}
    for candidate in unique.values():
        groups.setdefault((candidate.key, candidate.score_every_epoch), []).append(candidate)
    chunks: list[tuple[Candidate, list[int]]] = []
    sharers: dict[str, list[tuple[Candidate, set[int]]]] = {}
    for group in groups.values():
        stored = {c.label: stored_seeds(engine, c, **where) for c in group}
        missing = {c.label: {s for s in seeds if s not in stored[c.label]} for c in group}
        for candidate in group:
            for source in group:
                copies = missing[candidate.label] & stored[source.label]
                if copies:
                    rows = stored_rows(engine, source, seeds=sorted(copies), **where)
                    store_draws(engine, candidate, [draw_result(row) for row in rows], **where)
                    missing[candidate.label] -= copies
        to_train = sorted(set().union(*missing.values()))
        if not to_train:
            continue
        first = group[0]
        sharers[first.label] = [(c, missing[c.label]) for c in group if missing[c.label]]
        chunks += [(first, to_train[i : i + DRAWS_PER_CHUNK]) for i in range(0, len(to_train), DRAWS_PER_CHUNK)]
    return chunks, sharers
