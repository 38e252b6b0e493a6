"""`search`, the command line: each command parses its options, calls one library function and prints.

The library raises `SearchError` / `ModelsError`; only this module turns them into one red line on
stderr and exit code 1 (see `_user_errors`). Options shared by several commands are declared once below.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import optuna
import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from models.errors import ModelsError
from search.cli_display import OneLineUsageErrors, RunProgressView, console, err_console, log_to
from search.describe import fmt_number
from search.errors import EvaluationError, SearchError

if TYPE_CHECKING:
    from search.tables import TextTable


app = typer.Typer(
    help="Hyperparameter search for the MNIST digit-pair comparison study.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    cls=OneLineUsageErrors,
)

# Options several commands share; a new command reuses these instead of redeclaring them.
StorageOption = Annotated[
    Optional[str],
    typer.Option(
        "--storage",
        envvar="SEARCH_STORAGE",
        help="Optuna storage URL (sqlite:///file.db, postgresql+psycopg://user:pw@host/db, grpc://host:port); "
        "default sqlite:///search.db in the current directory.",
        show_default=False,
    ),
]
StudyOption = Annotated[
    str, typer.Option("--study", help="A study name from studies/ or the path of a TOML definition.")
]


@app.callback()
def main() -> None:
    """Hyperparameter search for the MNIST digit-pair comparison study."""
    log_to(err_console, level=logging.WARNING)
    optuna.logging.set_verbosity(optuna.logging.WARNING)


@contextlib.contextmanager
def _user_errors() -> Iterator[None]:
    """Turn the library's deliberate errors into one red line on stderr and exit code 1 (no traceback)."""
    try:
        yield
    except (SearchError, ModelsError) as exc:
        line = " ".join(str(exc).split()) or type(exc).__name__
        err_console.print(Text.assemble(("error: ", "bold red"), (line, "red")), soft_wrap=True)
        raise typer.Exit(1) from None


def _warn(message: str) -> None:
    """One yellow line on stderr."""
    err_console.print(Text(f"warning: {message}", style="yellow"), soft_wrap=True)


@app.command()
def run(
    study: StudyOption,
    trials: Annotated[
        int, typer.Option("--trials", help="New finished trials (complete or pruned) to add, over all workers.")
    ],
    storage: StorageOption = None,
    workers: Annotated[
        Optional[int],
        typer.Option(
            "--workers",
            help="Worker processes on this machine; default: the measured best layout (search.runner.DEFAULT_WORKERS).",
            show_default=False,
        ),
    ] = None,
    epochs: Annotated[Optional[int], typer.Option("--epochs", help="Override the definition's epochs.")] = None,
    folds: Annotated[
        Optional[int], typer.Option("--folds", help="Override the definition's cross-validation folds.")
    ] = None,
    data_dir: Annotated[
        Optional[Path],
        typer.Option("--data-dir", help="Directory with the four MNIST IDX files; default the embedded digits."),
    ] = None,
    seed: Annotated[
        Optional[int],
        typer.Option(
            "--seed",
            help="Sampler seed for a reproducible run (default: a fresh seed per process, so workers never replay each other).",
        ),
    ] = None,
    timeout: Annotated[
        Optional[float], typer.Option("--timeout", help="Stop starting new trials after this many seconds.")
    ] = None,
    threads: Annotated[
        Optional[int],
        typer.Option(
            "--threads",
            help="Torch threads per worker; default 1 with --workers, else search.runner.DEFAULT_THREADS.",
            show_default=False,
        ),
    ] = None,
    heartbeat_interval: Annotated[
        Optional[float],
        typer.Option("--heartbeat-interval", help="Seconds between a running trial's heartbeats.", show_default="30"),
    ] = None,
    grace_period: Annotated[
        Optional[float],
        typer.Option(
            "--grace-period",
            help="Seconds without a heartbeat before a trial is failed and retried once; more than twice the interval.",
            show_default="90",
        ),
    ] = None,
    max_outage: Annotated[
        Optional[float],
        typer.Option(
            "--max-outage",
            help="Seconds a lost database connection (a restart, a failover) is retried before the run stops; finished trials are kept either way.",
            show_default="120",
        ),
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", help="Log per-fold results.")] = False,
) -> None:
    """Run (or resume) a study: add TRIALS new finished trials with WORKERS processes."""
    with _stop_on_startup_interrupt():
        from search.runner import run_study  # torch & co.: seconds, during which Ctrl-C is answered too

    if verbose:
        log_to(console)
    logging.getLogger("search.speed").setLevel(logging.INFO)  # say once which compute settings the run uses
    with _user_errors(), _stop_on_startup_interrupt():
        definition = _load_definition(study, epochs=epochs, folds=folds)
        with RunProgressView(console, definition.name) as view:
            summary = run_study(
                definition,
                storage_url=storage,
                n_trials=trials,
                n_workers=workers,
                data_dir=data_dir,
                seed=seed,
                timeout=timeout,
                threads=threads,
                heartbeat_interval=heartbeat_interval,
                grace_period=grace_period,
                max_outage=max_outage,
                verbose=verbose,
                on_progress=view.update,
                on_warning=_warn,
            )
    console.print(summary.describe(), soft_wrap=True, highlight=False)
    if summary.interrupted:
        raise typer.Exit(130)


@app.command()
def studies(storage: StorageOption = None) -> None:
    """List the available study definitions and the studies in a storage."""
    from search.definitions import available_definitions
    from search.storage import list_studies

    with _user_errors():
        names = available_definitions()
        rows = list_studies(storage)
    console.print(Text("definitions: ", style="bold") + Text(", ".join(names) or "(none)"), soft_wrap=True)
    table = Table(title="studies in storage")
    for column in ("study", "complete", "pruned", "failed", "running", "best value"):
        table.add_column(column, justify="left" if column == "study" else "right")
    for row in rows:
        table.add_row(
            row.name,
            str(row.n_complete),
            str(row.n_pruned),
            str(row.n_failed),
            str(row.n_running),
            fmt_number(row.best_value),
        )
    console.print(table if rows else Text("no studies in this storage yet"))


@app.command()
def show(
    study: StudyOption,
    storage: StorageOption = None,
    top: Annotated[int, typer.Option("--top", min=1, help="How many best trials to show.")] = 10,
) -> None:
    """Show a study's best trials: value, fold std, key parameters, parameter count."""
    from search.storage import best_trials

    with _user_errors():
        name = _study_name(study)
        rows = best_trials(storage, name, top=top)
    table = Table(title=f"best trials of {name}")
    for column in ("trial", "value", "fold std", "n_params", "params"):
        table.add_column(column, justify="left" if column == "params" else "right")
    for trial in rows:
        params = ", ".join(f"{key}={_fmt_param(value)}" for key, value in sorted(trial.params.items()))
        table.add_row(
            str(trial.number),
            ", ".join(fmt_number(v) for v in trial.values),
            fmt_number(trial.user_attrs.get("fold_std")),
            str(trial.user_attrs.get("n_params", "-")),
            params,
        )
    console.print(table)


DrawsOption = Annotated[
    int, typer.Option("--draws", help="Fresh draws (new train/test pairs and initialisation) per configuration, 1-100.")
]
EvalEpochsOption = Annotated[
    Optional[int], typer.Option("--epochs", help="Override the configuration's training epochs.", show_default=False)
]
DataDirOption = Annotated[
    Optional[Path],
    typer.Option("--data-dir", help="Directory with the four MNIST IDX files; default the embedded digits."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON document instead of tables.")]


@app.command("evaluate-best")
def evaluate_best(
    study: StudyOption,
    storage: StorageOption = None,
    top: Annotated[int, typer.Option("--top", help="How many of the best complete trials to evaluate.")] = 1,
    draws: DrawsOption = 25,
    epochs: Annotated[
        Optional[int],
        typer.Option(
            "--epochs",
            help="Training epochs; default the definition's evaluate_epochs (siamese: 40), else the trial's own.",
            show_default=False,
        ),
    ] = None,
    data_dir: DataDirOption = None,
    workers: Annotated[int, typer.Option("--workers", help="Processes training chunks of draws in parallel.")] = 1,
    threads: Annotated[
        Optional[int], typer.Option("--threads", help="Torch threads per process.", show_default=False)
    ] = None,
    selection_stage: Annotated[
        bool,
        typer.Option(
            "--select/--no-select",
            help="Choose what to evaluate by the selection stage (the finalists retrained at the evaluation length on "
            "repeated K-fold of fresh training draws), not by the search's one-draw CV.",
        ),
    ] = True,
    finalists: Annotated[
        int, typer.Option("--finalists", help="Selection stage: the best trials by search CV to retrain.")
    ] = 5,
    repeats: Annotated[
        int, typer.Option("--repeats", help="Selection stage: fresh training draws of K-fold per finalist.")
    ] = 3,
    as_json: JsonOption = False,
) -> None:
    """Retrain the best trials on fresh draws and print mean ± std test accuracy with a 95 % CI (ablation: per cell, with paired tests)."""
    from search.evaluation import evaluate_best as evaluate
    from search.report import comparison_table, configuration_table, selection_table

    with _user_errors(), _stop_on_interrupt():
        name = _study_name(study)
        stages = ((f"selecting among the finalists of {name}", "K-fold runs"), (f"evaluating {name}", "draws"))
        with _progress_bars(*stages, quiet=as_json) as (selecting, progress):
            summary = evaluate(
                name,
                storage_url=storage,
                top=top,
                draws=draws,
                epochs=epochs,
                data_dir=data_dir,
                workers=workers,
                threads=threads,
                progress=progress,
                selection_stage=selection_stage,
                finalists=finalists,
                repeats=repeats,
                selection_progress=selecting,
            )
    if as_json:
        console.print_json(data=summary.to_dict())
        return
    if summary.selection is not None:
        _print_table(selection_table(summary.selection))
    _print_table(
        configuration_table(
            summary, title=f"{name}: fresh-draw test accuracy ({summary.n_trained} draws trained now)", compact=True
        )
    )
    if summary.comparisons:
        _print_table(comparison_table(summary))


@app.command()
def reproduce(
    report: Annotated[
        Optional[str],
        typer.Option("--report", help="One source report's rows (000-004, or 3) or 'all'.", show_default=False),
    ] = None,
    draws: DrawsOption = 10,
    presets: Annotated[
        Optional[str],
        typer.Option("--presets", help="Comma-separated preset names (seedNNN/row); default all.", show_default=False),
    ] = None,
    storage: StorageOption = None,
    epochs: EvalEpochsOption = None,
    data_dir: DataDirOption = None,
    workers: Annotated[
        int, typer.Option("--workers", help="Processes training chunks of draws in parallel (one torch thread each).")
    ] = 2,
    pairs: Annotated[
        int, typer.Option("--pairs", help="Training pairs (and test pairs) per draw; the reports used 1,000.")
    ] = 1000,
    as_json: JsonOption = False,
    markdown: Annotated[
        bool, typer.Option("--markdown", help="Print the tables as Markdown (for a README or a report).")
    ] = False,
    vary: Annotated[
        Optional[list[str]],
        typer.Option(
            "--vary",
            help="FIELD=VALUE (repeatable): train each preset with this NetConfig/TrainConfig field changed, "
            "stored as a variant beside it, e.g. --vary momentum=0.9.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Train the published models (presets) on fresh draws and print each report's table: published vs reproduced."""
    from search.evaluation import reproduce as reproduce_presets
    from search.published import report_tables

    names = None if presets is None else [name.strip() for name in presets.split(",") if name.strip()]

    def row_done(label: str, done: int, total: int) -> None:
        if not as_json:
            err_console.print(f"[{done}/{total}] {label}: draws stored", soft_wrap=True, highlight=False)

    with _user_errors(), _stop_on_interrupt(), _draw_progress("reproducing presets", quiet=as_json) as progress:
        summary = reproduce_presets(
            names,
            report=report,
            storage_url=storage,
            draws=draws,
            epochs=epochs,
            data_dir=data_dir,
            workers=workers,
            n_pairs=pairs,
            progress=progress,
            on_configuration=row_done,
            changes=_changes(vary or []),
        )
    if as_json:
        console.print_json(data=summary.to_dict())
        return
    for table in report_tables(summary):
        if markdown:
            print(table.markdown(), end="\n\n")
        else:
            _print_table(table)


def _changes(pairs: list[str]) -> dict[str, object]:
    """--vary FIELD=VALUE pairs -> {field: value}; VALUE is read as JSON where it parses (0.9, true, [64, 64]), else text."""
    changes: dict[str, object] = {}
    for pair in pairs:
        field, sep, text = pair.partition("=")
        if not sep or not field.strip():
            raise EvaluationError(f"--vary {pair!r} is not FIELD=VALUE (e.g. --vary momentum=0.9).")
        try:
            changes[field.strip()] = json.loads(text)
        except json.JSONDecodeError:
            changes[field.strip()] = text.strip()
    return changes


@app.command("presets")
def list_presets(
    report: Annotated[
        Optional[str], typer.Option("--report", help="One source report (000-004) or 'all'.", show_default=False)
    ] = None,
) -> None:
    """List the published models: name, the report's row, parameters, the published figure and our unstated choices."""
    from models.nets import count_parameters
    from models.presets import REPORTS, select_presets
    from search.published import published_figure

    with _user_errors():
        chosen = select_presets(report=report or "all")
    for key, title in REPORTS.items():
        rows = [p for p in chosen if p.report == key]
        if not rows:
            continue
        table = Table(title=f"report {key}: {title}")
        for column in ("preset", "row", "params", "published", "network and recipe", "unstated, chosen here"):
            table.add_column(column, overflow="fold")
        for p in rows:
            table.add_row(
                p.name, p.row, f"{count_parameters(p.net):,}", published_figure(p), p.description, "; ".join(p.unstated)
            )
        console.print(table)


@app.command("lr-find")
def lr_find(
    preset: Annotated[
        str, typer.Option("--preset", help="The preset whose network and recipe the range test uses (seedNNN/row).")
    ],
    rounds: Annotated[
        int,
        typer.Option("--rounds", help="Range tests (fresh model and batch order each); the estimate is their mean."),
    ] = 10,
    lr_min: Annotated[float, typer.Option("--lr-min", help="Learning rate of the first step.")] = 1e-4,
    lr_max: Annotated[float, typer.Option("--lr-max", help="Learning rate of the last step.")] = 1.0,
    steps: Annotated[int, typer.Option("--steps", help="Steps per range test.")] = 100,
    data_dir: DataDirOption = None,
) -> None:
    """Report 003's learning-rate finder: the mean over rounds of the rate at which the training loss is lowest."""
    from models.draws import make_draw
    from models.lr_find import LRRange, find_lr
    from models.pools import load_pools
    from models.presets import select_presets

    with _user_errors():
        chosen = select_presets([preset])[0]
        pairs = make_draw(load_pools(data_dir), seed=0, n_pairs=1000).train
        finding = find_lr(chosen.net, chosen.train, pairs, rounds=rounds, span=LRRange(lr_min, lr_max, steps))
    for r in finding.rounds:
        console.print(f"round {r.seed}: lowest loss {min(r.losses):.4f} at lr {r.best_lr:.4g}", highlight=False)
    console.print(
        f"{chosen.name} ({chosen.train.optimizer}): estimated lr {finding.mean_lr:.4g} over {rounds} rounds; "
        f"the preset trains at {chosen.train.lr:.4g}",
        soft_wrap=True,
        highlight=False,
    )


@app.command()
def report(
    study: StudyOption,
    out: Annotated[Path, typer.Option("--out", help="Directory for report.md and its PNG plots (created if missing).")],
    storage: StorageOption = None,
) -> None:
    """Write a Markdown report with tables and PNG plots of a study and its evaluations."""
    from search.report import write_report

    with _user_errors():
        path = write_report(_study_name(study), storage_url=storage, out_dir=out)
    console.print(f"report written to {path}", soft_wrap=True, highlight=False)


def _print_table(table: TextTable) -> None:
    """A report table (search.report.TextTable) as a rich table, its notes below it."""
    shown = Table(title=table.title)
    for header in table.headers:
        shown.add_column(header, overflow="fold")  # a long name wraps instead of ending in "…"
    for row in table.rows:
        shown.add_row(*row)
    console.print(shown)
    for note in table.notes:
        console.print(Text(note, style="dim"), soft_wrap=True)


@contextlib.contextmanager
def _stop_on_interrupt() -> Iterator[None]:
    """Ctrl-C while draws train: what was trained is committed already; say so, without a traceback."""
    try:
        yield
    except KeyboardInterrupt:
        err_console.print(
            Text(
                "interrupted: the draws trained so far are stored; run the command again to train the rest.",
                style="yellow",
            ),
            soft_wrap=True,
        )
        raise typer.Exit(130) from None


@contextlib.contextmanager
def _stop_on_startup_interrupt() -> Iterator[None]:
    """Ctrl-C before `run_study` has its own handler (loading, opening the storage, starting workers)."""
    try:
        yield
    except KeyboardInterrupt:
        err_console.print(
            Text(
                "interrupted while starting: no trial was started by this run; run the command again to start.",
                style="yellow",
            ),
            soft_wrap=True,
        )
        raise typer.Exit(130) from None


@contextlib.contextmanager
def _draw_progress(description: str, *, quiet: bool = False) -> Iterator[Callable[[int, int], None] | None]:
    """A progress bar over the draws being trained, on a terminal; no display otherwise."""
    with _progress_bars((description, "draws"), quiet=quiet) as (update,):
        yield update


@contextlib.contextmanager
def _progress_bars(
    *stages: tuple[str, str], quiet: bool = False
) -> Iterator[tuple[Callable[[int, int], None] | None, ...]]:
    """One progress bar per (description, unit) stage on a terminal, each shown once it starts; elsewhere
    (a log file, a pipe) one plain line on stderr per step."""
    if quiet:
        yield tuple(None for _ in stages)
        return
    if not console.is_terminal:

        def plain(description: str, unit: str) -> Callable[[int, int], None]:
            def line(done: int, total: int) -> None:
                if total:
                    err_console.print(f"{description}: {done}/{total} {unit}", soft_wrap=True, highlight=False)

            return line

        yield tuple(plain(description, unit) for description, unit in stages)
        return
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[unit]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=True) as bar:
        tasks = [bar.add_task(description, total=None, unit=unit, visible=False) for description, unit in stages]

        def updater(task: TaskID) -> Callable[[int, int], None]:
            return lambda done, total: bar.update(task, completed=done, total=total, visible=True)

        yield tuple(updater(task) for task in tasks)


@app.command()
def dashboard(
    storage: StorageOption = None,
    host: Annotated[
        str,
        typer.Option(
            "--host", help="Address to bind. The dashboard has no authentication: keep loopback unless it is protected."
        ),
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 8080,
) -> None:
    """Serve optuna-dashboard over the storage: every study, its trials and plots in the browser."""
    from search.dashboard import exposure_warning, open_dashboard

    if (warning := exposure_warning(host)) is not None:
        _warn(warning)
    with _user_errors():
        server = open_dashboard(storage, host=host, port=port)
    console.print(f"optuna-dashboard at {server.url} (Ctrl-C to stop)", soft_wrap=True, highlight=False)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()


@app.command()
def proxy(
    storage: StorageOption = None,
    host: Annotated[
        str, typer.Option("--host", help="Address to bind (the proxy has no authentication).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 13000,
) -> None:
    """Serve the storage through Optuna's gRPC proxy; workers then run with --storage grpc://HOST:PORT."""
    from search.proxy import serve_proxy

    console.print(
        f"gRPC storage proxy on {host}:{port}: workers use --storage grpc://{host}:{port} "
        "(trials behind the proxy send no heartbeats, so a killed worker's trial is not retried). Ctrl-C to stop.",
        soft_wrap=True,
        highlight=False,
    )
    with _user_errors(), contextlib.suppress(KeyboardInterrupt):
        serve_proxy(storage, host=host, port=port)


def _fmt_param(value: object) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _load_definition(study: str, *, epochs: int | None = None, folds: int | None = None):
    from search.definitions import load_definition, with_overrides

    return with_overrides(load_definition(study), epochs=epochs, n_folds=folds)


def _study_name(study: str) -> str:
    """`--study` of a reading command: a definition name/path gives its name; any other text is taken as a study name."""
    from search.definitions import available_definitions

    if study.endswith(".toml") or study in available_definitions():
        return _load_definition(study).name
    return study


@app.command()
def speed(
    study: Annotated[
        str,
        typer.Option(
            "--study", help="Measure on this study's first starting point (a name from studies/ or a TOML path)."
        ),
    ] = "siamese",
    threads: Annotated[
        Optional[int],
        typer.Option(
            "--threads",
            min=1,
            help="Torch threads per process; default that of `search run`'s default layout.",
            show_default=False,
        ),
    ] = None,
    remeasure: Annotated[
        bool, typer.Option("--remeasure", help="Measure again even when this machine's choice is cached.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Show the compute settings training uses on this machine: each candidate's µs per pair-step, and the winner."""
    from search.runner import DEFAULT_THREADS
    from search.speed import speed_table, study_speed

    with _user_errors():
        choice = study_speed(_load_definition(study), threads=threads or DEFAULT_THREADS, remeasure=remeasure)
    if as_json:
        console.print_json(data=choice.to_dict())
        return
    _print_table(speed_table(choice))
