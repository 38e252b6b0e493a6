"""Fresh-draw evaluation: retrain chosen configurations on R new draws and keep every draw's result.

`evaluate_best` takes the best complete trials of a study (for a study with cells, such as `ablation`,
the best trial of each cell), `reproduce` takes the published presets of `models.presets`. Each
configuration is trained on the same draw seeds (DRAW_SEED_BASE, DRAW_SEED_BASE + 1, ...), on all
training pairs of the draw, and scored on its test pairs, so configurations are compared draw by draw.

Every draw's result is one row of the product's own `evaluations` table, in the same database as the
Optuna study. Rows are committed after each chunk of draws, and a configuration only trains the draws
it has no row for: re-running adds nothing, and a crash loses at most the draws in progress. A unique
index keeps concurrent runs from storing one draw twice.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import datetime
import hashlib
import itertools
import json
import logging
import multiprocessing
import sys
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy
import sqlalchemy.exc
from optuna.trial import FrozenTrial
from sqlalchemy import CheckConstraint, DateTime, Index, String, Text, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from models.configs import NetConfig, TrainConfig, check_compatible
from search.errors import EvaluationError
from search.selection import DEFAULT_FINALISTS, DEFAULT_REPEATS, Selection, select_finalists
from search.stats import PairedTests, Summary, paired_tests, summarize
from search.storage import best_trials, is_grpc_url, load_study, mask_url, open_storage, resolve_storage_url

if TYPE_CHECKING:
    from search.definitions import StudyDefinition

logger = logging.getLogger(__name__)

DRAW_SEED_BASE = 1000  # draw r uses seed DRAW_SEED_BASE + r: fixed, and apart from the studies' data seeds
MAX_DRAWS = 100  # more would take hours on a CPU; 10-25 is the usual range
DRAWS_PER_CHUNK = 5  # draws trained batched at once, and committed together
DEFAULT_N_PAIRS = 1000  # training and test pairs per draw, as in the published reports

Progress = Callable[[int, int], None]  # (draws trained so far, draws to train in this run)
ConfigurationDone = Callable[[str, int, int], None]  # (label, configurations done, configurations to train)


# ---------------------------------------------------------------------------------------------------
# The `evaluations` table.


class _Base(DeclarativeBase):
    pass


class EvaluationRow(_Base):
    """One configuration trained and scored on one draw."""

    __tablename__ = "evaluations"
    __table_args__ = (
        CheckConstraint("(study_name IS NULL) <> (preset IS NULL)", name="ck_evaluations_study_or_preset"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    study_name: Mapped[str | None] = mapped_column(String(512))  # the Optuna study; None on a preset's row
    trial_number: Mapped[int | None]  # the first trial seen with this configuration; None for a preset
    preset: Mapped[str | None] = mapped_column(String(128))  # a models.presets name; None on a study's row
    config_key: Mapped[str] = mapped_column(String(64))  # config_key(net, train)
    config_json: Mapped[str] = mapped_column(Text)  # {"net": NetConfig.to_dict(), "train": TrainConfig.to_dict()}
    draw_seed: Mapped[int]
    n_pairs: Mapped[int]  # training pairs (= test pairs) of the draw
    data_source: Mapped[str] = mapped_column(String(1024))  # models' DigitPools.source: "embedded" or "idx:<dir>"
    epochs: Mapped[int]
    status: Mapped[str] = mapped_column(String(16))  # "completed" | "diverged": diverged rows stay out of the stats
    message: Mapped[str | None] = mapped_column(Text)  # why a draw diverged
    test_accuracy: Mapped[float | None]  # pair accuracy on the draw's test pairs
    test_digit_accuracy: Mapped[float | None]  # digit accuracy, for networks with digit outputs
    best_epoch_accuracy: Mapped[float | None]  # the best test accuracy over epochs, where every epoch was scored (report 004)
    train_seconds: Mapped[float]
    n_params: Mapped[int]
    created_at: Mapped[datetime.datetime] = mapped_column(DateTime(timezone=True))  # UTC


# One row per (study or preset, configuration, draw, data). NULLs never collide in a unique index, so the
# nullable owner columns enter it through coalesce (an expression index, on SQLite and PostgreSQL alike).
Index(
    "uq_evaluations_draw",
    func.coalesce(EvaluationRow.study_name, ""),
    func.coalesce(EvaluationRow.preset, ""),
    EvaluationRow.config_key,
    EvaluationRow.draw_seed,
    EvaluationRow.n_pairs,
    EvaluationRow.data_source,
    unique=True,
)


def config_key(net: NetConfig, train: TrainConfig) -> str:
    """A stable hash of the full configuration: equal configurations share their evaluation rows."""
    return hashlib.sha256(_config_json(net, train).encode()).hexdigest()[:24]


def _config_json(net: NetConfig, train: TrainConfig) -> str:
    return json.dumps({"net": net.to_dict(), "train": train.to_dict()}, sort_keys=True)


def database_url(storage_url: str | None) -> str:
    """The resolved storage URL, refused when it is a gRPC proxy (which serves Optuna's tables only)."""
    url = resolve_storage_url(storage_url)
    if is_grpc_url(url):
        raise EvaluationError(
            f"The evaluations table needs a direct database URL, but the storage is the gRPC proxy {mask_url(url)}; "
            "pass --storage with the database URL the proxy serves (sqlite:///FILE or postgresql+psycopg://...)."
        )
    return url


@contextmanager
def open_evaluations(storage_url: str | None, *, reading: bool = False) -> Iterator[Engine]:
    """The engine of the storage's database with the `evaluations` table created if missing.

    The engine is the one `open_storage` builds for Optuna (SQLite busy timeout, PostgreSQL pre-ping),
    so the table sits next to the study. `reading`: an existing storage, possibly read-only, where
    the table is not created (callers check `has_table`).
    """
    engine: Engine = open_storage(database_url(storage_url), reading=reading).engine
    try:
        if not reading:
            _create_table(engine)
        yield engine
    finally:
        engine.dispose()


def _create_table(engine: Engine) -> None:
    try:
        _Base.metadata.create_all(engine)
    except sqlalchemy.exc.DatabaseError:  # another process created it between our check and our CREATE
        _Base.metadata.create_all(engine)
    _add_missing_columns(engine)


def _add_missing_columns(engine: Engine) -> None:
    """A table made by an earlier version lacks the nullable columns added since: add them (old rows keep NULL)."""
    present = {column["name"] for column in sqlalchemy.inspect(engine).get_columns(EvaluationRow.__tablename__)}
    for column in EvaluationRow.__table__.columns:
        if column.name in present:
            continue
        kind = column.type.compile(dialect=engine.dialect)
        try:
            with engine.begin() as connection:
                connection.execute(sqlalchemy.text(f"ALTER TABLE {EvaluationRow.__tablename__} ADD COLUMN {column.name} {kind}"))
        except sqlalchemy.exc.DatabaseError:  # another process added it first
            pass


# ---------------------------------------------------------------------------------------------------
# What an evaluation reports.


@dataclass(frozen=True)
class Candidate:
    """A configuration to evaluate, and where it came from."""

    label: str  # "trial 12", a cell such as "weight_sharing=True, aux_loss=alpha", or a preset name
    net: NetConfig
    train: TrainConfig
    trial_number: int | None = None
    trial_value: float | None = None  # the trial's cross-validation value (first objective)
    preset: str | None = None
    cell: Mapping[str, Any] | None = None
    published_mean: float | None = None  # presets: the published accuracy (fraction)
    published_std: float | None = None
    score_every_epoch: bool = False  # also keep the best test accuracy over epochs (report 004's figure)

    @property
    def key(self) -> str:
        return config_key(self.net, self.train)


@dataclass(frozen=True)
class ConfigurationResult:
    """One configuration's results over the draws of an evaluation."""

    candidate: Candidate
    n_params: int
    accuracies: dict[int, float]  # draw seed -> test accuracy, completed draws only
    digit_accuracies: dict[int, float]  # draw seed -> test digit accuracy, where the network has digit outputs
    n_diverged: int  # draws that diverged: stored, but excluded from the statistics
    train_seconds: float  # mean per draw
    accuracy: Summary
    digit_accuracy: Summary | None
    best_epoch_accuracies: dict[int, float] = dataclasses.field(default_factory=dict)  # draw seed -> max over epochs
    best_epoch_accuracy: Summary | None = None  # where every epoch was scored

    @property
    def difference(self) -> float | None:
        """Mean accuracy minus the published one (presets), None where either is missing."""
        if self.candidate.published_mean is None or self.accuracy.n == 0:
            return None
        return self.accuracy.mean - self.candidate.published_mean

    def to_dict(self) -> dict[str, Any]:
        c = self.candidate
        return {
            "label": c.label,
            "description": describe(c.net, c.train),
            "trial_number": c.trial_number,
            "trial_value": c.trial_value,
            "preset": c.preset,
            "cell": dict(c.cell) if c.cell is not None else None,
            "published_mean": c.published_mean,
            "published_std": c.published_std,
            "difference": self.difference,
            "config_key": c.key,
            "net_config": c.net.to_dict(),
            "train_config": c.train.to_dict(),
            "n_params": self.n_params,
            "accuracy": self.accuracy.to_dict(),
            "digit_accuracy": None if self.digit_accuracy is None else self.digit_accuracy.to_dict(),
            "best_epoch_accuracy": None if self.best_epoch_accuracy is None else self.best_epoch_accuracy.to_dict(),
            "n_diverged": self.n_diverged,
            "train_seconds": self.train_seconds,
            "per_draw": {str(seed): acc for seed, acc in sorted(self.accuracies.items())},
        }


@dataclass(frozen=True)
class Comparison:
    """Paired tests of configuration `a` against `b` over the draws both completed."""

    a: str
    b: str
    tests: PairedTests

    def to_dict(self) -> dict[str, Any]:
        return {"a": self.a, "b": self.b, **self.tests.to_dict()}


@dataclass(frozen=True)
class EvaluationSummary:
    """What `evaluate_best` and `reproduce` return, and what the CLI prints (as a table or JSON)."""

    study_name: str | None  # None for `reproduce`
    data_source: str
    n_pairs: int
    draw_seeds: tuple[int, ...]
    configurations: tuple[ConfigurationResult, ...]
    comparisons: tuple[Comparison, ...] = ()  # between the cells of a study with cells
    n_trained: int = 0  # draws trained by this call (the others were already stored)
    selection: Selection | None = None  # how evaluate_best chose what it evaluated (None: the search's ranking)

    def to_dict(self) -> dict[str, Any]:
        return {
            "study_name": self.study_name,
            "selection": None if self.selection is None else self.selection.to_dict(),
            "data_source": self.data_source,
            "n_pairs": self.n_pairs,
            "draws": len(self.draw_seeds),
            "draw_seeds": list(self.draw_seeds),
            "n_trained": self.n_trained,
            "configurations": [r.to_dict() for r in self.configurations],
            "comparisons": [c.to_dict() for c in self.comparisons],
        }


def describe_fields(net: NetConfig, train: TrainConfig) -> dict[str, str]:
    """The settings that tell configurations apart, as short texts: family, ws, aux, head, details."""
    if net.family == "mlp":
        family, shape = "mlp", f"hidden {'-'.join(map(str, net.hidden))}"
    elif net.family == "cnn2ch" or net.tower == "conv":
        family = net.family if net.family == "cnn2ch" else "siamese conv"
        shape = f"conv {'-'.join(map(str, net.conv_channels))} k{net.kernel_size} fc {net.fc_width}"
    else:
        family, shape = "siamese fc", f"hidden {'-'.join(map(str, net.hidden))}"
    siamese = net.family == "siamese"
    if train.aux_loss == "none":
        aux = "no"
    else:
        weight = {"alpha": f" α={train.alpha:.3g}", "ratio": f" ratio={train.ratio:.3g}"}.get(train.aux_loss, "")
        aux = f"{train.aux_loss}{weight}"
    details = [shape, net.activation]
    details += ["BN"] if net.batch_norm else []
    details += [f"dropout {net.dropout:.2g}"] if net.dropout else []
    schedule = {
        "cosine": " cosine",
        "geometric": f" lr ×{train.decay_to:.2g} over the run",
        "exponential": f" γ {train.gamma:.3g}" if train.gamma != 1 else "",
    }[train.schedule]
    details.append(f"{train.optimizer} lr {train.lr:.3g}{schedule}")
    details += [f"wd {train.weight_decay:.2g}"] if train.weight_decay else []
    details.append(f"bs {train.batch_size}, {train.epochs} ep")
    details += [f"shift ±{train.shift}"] if train.shift else []
    details += [f"rotate ±{train.rotate:.3g}°"] if train.rotate else []
    details += [f"zoom ±{train.scale:.2g}"] if train.scale else []
    details += ["test-time shifts"] if train.tta == "shift" else []
    details += [f"staged {train.staged_epochs} ep"] if train.staged_epochs else []
    return {
        "family": family,
        "ws": ("yes" if net.weight_sharing else "no") if siamese else "-",
        "aux": aux,
        "head": (net.head + (f" {net.head_hidden}" if net.head == "mlp" else "")) if siamese else "-",
        "details": ", ".join(details),
    }


def describe(net: NetConfig, train: TrainConfig) -> str:
    """One line: family, weight sharing, auxiliary loss, head and the other key settings."""
    f = describe_fields(net, train)
    return f"{f['family']}, WS {f['ws']}, aux {f['aux']}, head {f['head']}, {f['details']}"


# ---------------------------------------------------------------------------------------------------
# The two entry points.


def evaluate_best(
    study_name: str,
    *,
    storage_url: str | None = None,
    top: int = 1,
    draws: int = 25,
    epochs: int | None = None,
    data_dir: Path | None = None,
    workers: int = 1,
    threads: int | None = None,
    n_pairs: int = DEFAULT_N_PAIRS,
    cells: Sequence[Mapping[str, Any]] | None = None,
    progress: Progress | None = None,
    selection_stage: bool = True,
    finalists: int = DEFAULT_FINALISTS,
    repeats: int = DEFAULT_REPEATS,
    selection_progress: Progress | None = None,
) -> EvaluationSummary:
    """Retrain the `top` best complete trials of a study on `draws` fresh draws and summarise them.

    With `selection_stage` (a single-objective study without cells), "best" is the selection stage's ranking
    (search.selection): the `finalists` best trials by search CV are first retrained at the evaluation
    length on `repeats` fresh training draws of K-fold, and the `top` best by that score are evaluated.
    Test pairs never take part in choosing. Without it, the search's own CV ranking is used.

    For a study with cells (the `ablation` study; `cells` None: those of the definition named like
    the study), the best trial of each cell is evaluated instead of the top N, and every pair of
    cells gets paired significance tests.
    """
    _check_counts(top=top, draws=draws, epochs=epochs, workers=workers, threads=threads)
    if selection_stage and not (1 <= finalists <= 100 and 1 <= repeats <= 20):
        raise EvaluationError(
            f"finalists must be between 1 and 100 and repeats between 1 and 20, but got {finalists=}, {repeats=}."
        )
    database_url(storage_url)
    named = study_definition(study_name)  # its cells, and its evaluate_epochs: searched at a cheap
    # fidelity (e.g. 20 epochs), evaluated at the full one; without it each trial keeps its own epochs
    cells = tuple(cells) if cells is not None else (tuple(dict(c) for c in named.cells) if named else ())
    epochs = epochs if epochs is not None else (named.evaluate_epochs if named else None)
    # Best first; an unknown study is a StorageError naming the studies there. With cells: all trials.
    selection_stage = selection_stage and not cells
    ranked = best_trials(storage_url, study_name, top=sys.maxsize if cells else max(top, finalists) if selection_stage else top)
    ranked = [t for t in ranked if {"net_config", "train_config"} <= t.user_attrs.keys()]
    if not ranked:
        raise EvaluationError(
            f"The study {study_name!r} has no completed trial with a stored configuration to evaluate; "
            f"run `search run --study {study_name} --trials N` until one completes."
        )
    selection = None
    if selection_stage:
        study = load_study(storage_url, study_name)
        if len(study.directions) == 1:
            selection = select_finalists(
                study, ranked, repeats=repeats, epochs=epochs, n_pairs=n_pairs, data_dir=data_dir,
                workers=workers, threads=threads, progress=selection_progress,
            )  # fmt: skip
            by_number = {t.number: t for t in ranked}
            ranked = [by_number[f.trial_number] for f in selection.finalists][:top]
        else:
            logger.info("%s has two objectives: evaluated in the search's order, without a selection stage", study_name)
    candidates = _cell_candidates(ranked, cells, epochs) if cells else [_trial_candidate(t, epochs) for t in ranked]
    if not candidates:
        cell_keys = sorted({key for cell in cells for key in cell})
        raise EvaluationError(
            f"No completed trial of the study {study_name!r} lies in any of its {len(cells)} cells "
            f"(matched on {', '.join(cell_keys)}); run more trials of the study."
        )
    summary = _evaluate(
        candidates,
        study_name=study_name,
        storage_url=storage_url,
        draws=draws,
        data_dir=data_dir,
        workers=workers,
        threads=threads,
        n_pairs=n_pairs,
        progress=progress,
    )
    if cells:
        summary = dataclasses.replace(summary, comparisons=compare_all(summary.configurations))
    return dataclasses.replace(summary, selection=selection)


def reproduce(
    presets: Sequence[str] | None = None,
    *,
    report: str | None = None,
    storage_url: str | None = None,
    draws: int = 10,
    epochs: int | None = None,
    data_dir: Path | None = None,
    workers: int = 1,
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
    from models.presets import select_presets, vary

    _check_counts(top=1, draws=draws, epochs=epochs, workers=workers, threads=threads)
    database_url(storage_url)
    candidates = [
        Candidate(
            label=preset.name,
            net=preset.net,
            train=_with_epochs(preset.train, epochs),
            preset=preset.name,
            published_mean=preset.published_mean,
            published_std=preset.published_std,
            score_every_epoch=preset.scoring == "max_over_epochs",
        )
        for preset in (vary(p, changes or {}) for p in select_presets(presets, report=report))
    ]
    return _evaluate(
        candidates,
        study_name=None,
        storage_url=storage_url,
        draws=draws,
        data_dir=data_dir,
        workers=workers,
        threads=threads,
        n_pairs=n_pairs,
        progress=progress,
        on_configuration=on_configuration,
    )


def compare_all(results: Sequence[ConfigurationResult]) -> tuple[Comparison, ...]:
    """Paired tests between every two configurations, over the draws both completed."""
    comparisons = []
    for a, b in itertools.combinations(results, 2):
        seeds = sorted(a.accuracies.keys() & b.accuracies.keys())
        tests = paired_tests([a.accuracies[s] for s in seeds], [b.accuracies[s] for s in seeds])
        comparisons.append(Comparison(a=a.candidate.label, b=b.candidate.label, tests=tests))
    return tuple(comparisons)


def _check_counts(*, top: int, draws: int, epochs: int | None, workers: int, threads: int | None) -> None:
    if not 1 <= draws <= MAX_DRAWS:
        raise EvaluationError(f"draws must be between 1 and {MAX_DRAWS}, but got {draws=}; 10-25 is the usual range.")
    if top < 1:
        raise EvaluationError(f"top must be at least 1, but got {top=}.")
    if epochs is not None and epochs < 1:
        raise EvaluationError(f"epochs must be at least 1, but got {epochs=}; leave it out to keep the configuration's epochs.")
    if workers < 1:
        raise EvaluationError(f"workers must be at least 1, but got {workers=}.")
    if threads is not None and threads < 1:
        raise EvaluationError(f"threads must be at least 1, but got {threads=}.")


# ---------------------------------------------------------------------------------------------------
# Trials -> candidates.


def _with_epochs(train: TrainConfig, epochs: int | None) -> TrainConfig:
    return train if epochs is None else dataclasses.replace(train, epochs=epochs)


def _trial_candidate(
    trial: FrozenTrial, epochs: int | None, *, label: str | None = None, cell: Mapping[str, Any] | None = None
) -> Candidate:
    net = NetConfig.from_dict(trial.user_attrs["net_config"])
    train = _with_epochs(TrainConfig.from_dict(trial.user_attrs["train_config"]), epochs)
    return Candidate(
        label=label or f"trial {trial.number}",
        net=net,
        train=train,
        trial_number=trial.number,
        trial_value=trial.values[0] if trial.values else None,
        cell=cell,
    )


def study_definition(study_name: str) -> StudyDefinition | None:
    """The definition in studies/ named like the study, or None (a study from the user's own file)."""
    from search.definitions import available_definitions, load_definition

    return load_definition(study_name) if study_name in available_definitions() else None


def study_cells(study_name: str) -> tuple[dict[str, Any], ...]:
    """The cells of the definition named like the study (empty when it has none, or there is no such definition)."""
    definition = study_definition(study_name)
    return tuple(dict(cell) for cell in definition.cells) if definition is not None else ()


def cell_label(cell: Mapping[str, Any]) -> str:
    return ", ".join(f"{key}={value}" for key, value in cell.items())


def _cell_candidates(ranked: list[FrozenTrial], cells: Sequence[Mapping[str, Any]], epochs: int | None) -> list[Candidate]:
    """The best trial of each cell (`ranked` is best first); cells without a complete trial are left out."""
    candidates = []
    for cell in cells:
        best = next((t for t in ranked if in_cell(t, cell)), None)
        label = cell_label(cell)
        if best is None:
            logger.warning("cell %s has no complete trial; it is left out of the comparison", label)
            continue
        candidates.append(_trial_candidate(best, epochs, label=label, cell=dict(cell)))
    return candidates


def in_cell(trial: FrozenTrial, cell: Mapping[str, Any]) -> bool:
    """Whether the trial's parameters (or, for fixed ones, its configuration) have the cell's values."""
    config = {**trial.user_attrs["net_config"], **trial.user_attrs["train_config"]}
    for key, value in cell.items():
        actual = trial.params.get(key, config.get(key))
        if actual != value:
            return False
    return True


# ---------------------------------------------------------------------------------------------------
# Training the missing draws and reading the rows back.


def _evaluate(
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
) -> EvaluationSummary:
    from models.pools import load_pools

    for candidate in candidates:
        check_compatible(candidate.net, candidate.train)
    seeds = tuple(range(DRAW_SEED_BASE, DRAW_SEED_BASE + draws))
    data_source = load_pools(data_dir).source
    with open_evaluations(storage_url) as engine:
        # A configuration that appears twice (two trials with one configuration) trains once; two presets
        # with one configuration (two rows of a report) keep their own rows.
        unique: dict[tuple[str | None, str], Candidate] = {}
        for candidate in candidates:
            unique.setdefault((candidate.preset, candidate.key), candidate)
        chunks = []
        for candidate in unique.values():
            done = _stored_seeds(engine, candidate, study_name=study_name, n_pairs=n_pairs, data_source=data_source)
            missing = [s for s in seeds if s not in done]
            chunks += [(candidate, missing[i : i + DRAWS_PER_CHUNK]) for i in range(0, len(missing), DRAWS_PER_CHUNK)]
        total = sum(len(chunk) for _, chunk in chunks)
        remaining = Counter(candidate.label for candidate, _ in chunks)
        n_configurations, n_done = len(remaining), 0
        trained = 0
        if progress is not None:
            progress(0, total)
        for candidate, results in _train_chunks(chunks, data_dir=data_dir, n_pairs=n_pairs, workers=workers, threads=threads):
            _store(engine, candidate, results, study_name=study_name, n_pairs=n_pairs, data_source=data_source)
            trained += len(results)
            if progress is not None:
                progress(trained, total)
            remaining[candidate.label] -= 1
            if remaining[candidate.label] == 0:
                n_done += 1
                if on_configuration is not None:
                    on_configuration(candidate.label, n_done, n_configurations)
        configurations = tuple(
            _result(candidate, _rows(engine, candidate, study_name=study_name, n_pairs=n_pairs, data_source=data_source, seeds=seeds))
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


def load_evaluations(storage_url: str | None, *, study_name: str | None = None) -> list[EvaluationSummary]:
    """What is stored for a study (or, with `study_name` None, for the presets), without training anything.

    One summary per data setting (data source, pairs per draw); in each, one configuration result per
    stored configuration over all the draws stored for it. Configurations come back in trial (or
    preset) order, without comparisons.
    """
    owner = EvaluationRow.preset.is_not(None) if study_name is None else EvaluationRow.study_name == study_name
    with open_evaluations(storage_url, reading=True) as engine, Session(engine) as session:
        if not sqlalchemy.inspect(engine).has_table(EvaluationRow.__tablename__):
            return []  # nothing evaluated in this storage yet
        rows = list(session.scalars(select(EvaluationRow).where(owner).order_by(EvaluationRow.id)))
        session.expunge_all()
    groups: dict[tuple[str, int, str | None, str], list[EvaluationRow]] = {}
    for row in rows:
        groups.setdefault((row.data_source, row.n_pairs, row.preset, row.config_key), []).append(row)
    settings: dict[tuple[str, int], list[ConfigurationResult]] = {}
    for (source, n_pairs, _, _), members in groups.items():
        members.sort(key=lambda r: r.draw_seed)
        settings.setdefault((source, n_pairs), []).append(_result(_stored_candidate(members), members))
    summaries = []
    for (source, n_pairs), results in settings.items():
        results.sort(key=lambda r: (r.candidate.preset or "", r.candidate.trial_number or 0))
        results = _distinct_labels(results)
        seeds = sorted({seed for r in results for seed in r.accuracies})
        summaries.append(EvaluationSummary(study_name, source, n_pairs, tuple(seeds), tuple(results)))
    return summaries


def _distinct_labels(results: list[ConfigurationResult]) -> list[ConfigurationResult]:
    """One trial evaluated at several --epochs gets the epochs in its label, so tables and plots tell them apart."""
    counts = Counter(r.candidate.label for r in results)
    return [
        dataclasses.replace(r, candidate=dataclasses.replace(r.candidate, label=f"{r.candidate.label} ({r.candidate.train.epochs} ep)"))
        if counts[r.candidate.label] > 1
        else r
        for r in results
    ]


def _stored_candidate(rows: Sequence[EvaluationRow]) -> Candidate:
    """The candidate a group of stored rows (one configuration) was evaluated as."""
    config = json.loads(rows[0].config_json)
    preset = rows[0].preset
    numbers = [r.trial_number for r in rows if r.trial_number is not None]
    published = _published(preset) if preset is not None else None
    return Candidate(
        label=preset if preset is not None else f"trial {min(numbers)}" if numbers else rows[0].config_key,
        net=NetConfig.from_dict(config["net"]),
        train=TrainConfig.from_dict(config["train"]),
        trial_number=min(numbers) if numbers else None,
        preset=preset,
        published_mean=published.published_mean if published else None,
        published_std=published.published_std if published else None,
    )


def _published(preset: str):
    from models.presets import PRESETS, base_name

    return PRESETS.get(base_name(preset))


@dataclass(frozen=True)
class _DrawResult:
    """What one draw's training gives back (picklable, to return from a worker process)."""

    seed: int
    status: str
    message: str
    accuracy: float | None
    digit_accuracy: float | None
    best_epoch_accuracy: float | None
    seconds: float
    n_params: int


def _train_chunks(
    chunks: list[tuple[Candidate, list[int]]], *, data_dir: Path | None, n_pairs: int, workers: int, threads: int | None
) -> Iterator[tuple[Candidate, list[_DrawResult]]]:
    """Yield each chunk's results as soon as it is trained: in this process, or in `workers` processes."""
    if workers == 1 or len(chunks) <= 1:
        for candidate, seeds in chunks:
            yield candidate, _train_draws(
                candidate.net, candidate.train, seeds, data_dir=data_dir, n_pairs=n_pairs, threads=threads,
                score_every_epoch=candidate.score_every_epoch,
            )  # fmt: skip
        return
    # spawn, not fork: a forked copy of a process that already ran torch can deadlock in its thread pools.
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(max_workers=min(workers, len(chunks)), mp_context=context) as pool:
        futures = {
            pool.submit(
                _train_draws, candidate.net, candidate.train, seeds, data_dir=data_dir, n_pairs=n_pairs, threads=threads or 1,
                score_every_epoch=candidate.score_every_epoch,
            ): candidate
            for candidate, seeds in chunks
        }
        try:
            for future in concurrent.futures.as_completed(futures):
                yield futures[future], future.result()
        except BaseException:
            for future in futures:
                future.cancel()
            raise


def _train_draws(
    net: NetConfig,
    train: TrainConfig,
    seeds: Sequence[int],
    *,
    data_dir: Path | None,
    n_pairs: int,
    threads: int | None,
    score_every_epoch: bool = False,
) -> list[_DrawResult]:
    """Train one configuration on the draws `seeds`, batched: all training pairs, scored on the test pairs."""
    import torch

    from models.draws import make_draw
    from models.fast import fit_many
    from models.pools import load_pools

    if threads is not None:
        torch.set_num_threads(threads)
    pools = load_pools(data_dir)
    draws = [make_draw(pools, seed=seed, n_pairs=n_pairs) for seed in seeds]
    # The draw seed also seeds the initialisation: each draw is new pairs and a new network.
    jobs = [(draw.train, draw.test) for draw in draws]
    results = fit_many(net, train, jobs, seeds=list(seeds), score_every_epoch=score_every_epoch)
    return [
        _DrawResult(
            seed=seed,
            status="completed" if r.status == "completed" and r.accuracy is not None else "diverged",
            message=r.message,
            accuracy=r.accuracy,
            digit_accuracy=r.digit_accuracy,
            best_epoch_accuracy=r.best_epoch_accuracy if score_every_epoch else None,
            seconds=r.seconds,
            n_params=r.n_params,
        )
        for seed, r in zip(seeds, results, strict=True)
    ]


def _where(candidate: Candidate, *, study_name: str | None, n_pairs: int, data_source: str) -> list[Any]:
    owner = EvaluationRow.preset == candidate.preset if study_name is None else EvaluationRow.study_name == study_name
    return [
        owner,
        EvaluationRow.config_key == candidate.key,
        EvaluationRow.n_pairs == n_pairs,
        EvaluationRow.data_source == data_source,
    ]


def _stored_seeds(engine: Engine, candidate: Candidate, *, study_name: str | None, n_pairs: int, data_source: str) -> set[int]:
    query = select(EvaluationRow.draw_seed).where(*_where(candidate, study_name=study_name, n_pairs=n_pairs, data_source=data_source))
    with engine.connect() as connection:
        return set(connection.scalars(query))


def _rows(engine: Engine, candidate: Candidate, *, study_name, n_pairs, data_source, seeds) -> list[EvaluationRow]:
    query = (
        select(EvaluationRow)
        .where(*_where(candidate, study_name=study_name, n_pairs=n_pairs, data_source=data_source))
        .where(EvaluationRow.draw_seed.in_(seeds))
        .order_by(EvaluationRow.draw_seed)
    )
    with Session(engine) as session:
        rows = list(session.scalars(query))
        session.expunge_all()
    return rows


def _store(
    engine: Engine, candidate: Candidate, results: list[_DrawResult], *, study_name: str | None, n_pairs: int, data_source: str
) -> None:
    """Insert one chunk's rows in one transaction; a draw another run stored meanwhile is skipped."""
    now = datetime.datetime.now(datetime.timezone.utc)
    values = [
        {
            "study_name": study_name,
            "preset": candidate.preset if study_name is None else None,
            "trial_number": candidate.trial_number,
            "config_key": candidate.key,
            "config_json": _config_json(candidate.net, candidate.train),
            "draw_seed": r.seed,
            "n_pairs": n_pairs,
            "data_source": data_source,
            "epochs": candidate.train.epochs,
            "status": r.status,
            "message": r.message or None,
            "test_accuracy": r.accuracy,
            "test_digit_accuracy": r.digit_accuracy,
            "best_epoch_accuracy": r.best_epoch_accuracy,
            "train_seconds": r.seconds,
            "n_params": r.n_params,
            "created_at": now,
        }
        for r in results
    ]
    dialect = engine.dialect.name
    if dialect in ("sqlite", "postgresql"):
        insert = sqlite.insert if dialect == "sqlite" else postgresql.insert
        with engine.begin() as connection:
            connection.execute(insert(EvaluationRow).on_conflict_do_nothing(), values)
        return
    for row in values:  # other backends: row by row, a duplicate is simply not inserted
        try:
            with engine.begin() as connection:
                connection.execute(sqlalchemy.insert(EvaluationRow), [row])
        except sqlalchemy.exc.IntegrityError:
            pass


def _result(candidate: Candidate, rows: Sequence[EvaluationRow]) -> ConfigurationResult:
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
    from models.nets import count_parameters

    return count_parameters(net)
