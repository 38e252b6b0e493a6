"""What the CLI's commands share: their common options, one-line errors, tables, progress and Ctrl-C."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

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

from search.cli.display import console, err_console
from search.defaults import MAX_DRAWS
from search.errors import DigitPairError, one_line
from search.run.interrupts import is_interrupt, mark_began, raise_if_interrupted
from search.storage.studies import (
    DEFAULT_GRACE_PERIOD,
    DEFAULT_HEARTBEAT_INTERVAL,
    DEFAULT_STORAGE_URL,
    STORAGE_ENVVAR,
)

if TYPE_CHECKING:
    from search.describe import TextTable

# Options several commands share; a new command reuses these instead of redeclaring them.
# Options several commands share; a new command reuses these instead of redeclaring them.
StorageOption = Annotated[
    Optional[str],
    typer.Option(
        "--storage",
        envvar=STORAGE_ENVVAR,
        help="Optuna storage URL (sqlite:///file.db, postgresql+psycopg://user:pw@host/db, grpc://host:port); "
        f"default {DEFAULT_STORAGE_URL} in the current directory.",
        show_default=False,
    ),
]


StudyOption = Annotated[
    str, typer.Option("--study", help="A study name from studies/ or the path of a TOML definition.")
]


DrawsOption = Annotated[
    int,
    typer.Option(
        "--draws", help=f"Fresh draws (new train/test pairs and initialisation) per configuration, 1-{MAX_DRAWS}."
    ),
]


EvalEpochsOption = Annotated[
    Optional[int], typer.Option("--epochs", help="Override the configuration's training epochs.", show_default=False)
]


DataDirOption = Annotated[
    Optional[Path],
    typer.Option("--data-dir", help="Directory with the four MNIST IDX files; default the embedded digits."),
]


JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON document instead of tables.")]
# One meaning wherever a command trains (run, evaluate-best, reproduce): neither given, the layout
# `search speed` measured fastest on this machine (search.run.speed.run_layout).
WorkersOption = Annotated[
    Optional[int],
    typer.Option(
        "--workers",
        help="Processes training in parallel; default the layout measured fastest here (`search speed`).",
        show_default=False,
    ),
]
ThreadsOption = Annotated[
    Optional[int],
    typer.Option(
        "--threads",
        help="Torch threads per process; default 1 with --workers, else the layout measured fastest here.",
        show_default=False,
    ),
]
HeartbeatOption = Annotated[
    Optional[float],
    typer.Option(
        "--heartbeat-interval",
        help="Seconds between a running trial's heartbeats (a lease renewal behind the gRPC proxy) "
        f"(default {DEFAULT_HEARTBEAT_INTERVAL:g}).",
        show_default=False,
    ),
]
GraceOption = Annotated[
    Optional[float],
    typer.Option(
        "--grace-period",
        help="Seconds without a heartbeat before a trial is failed and retried once; more than twice the interval "
        f"(default {DEFAULT_GRACE_PERIOD:g}).",
        show_default=False,
    ),
]


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Turn the library's deliberate errors into one red line on stderr and exit code 1 (no traceback)."""
    try:
        yield
    except DigitPairError as exc:
        line = one_line(exc)
        err_console.print(Text.assemble(("error: ", "bold red"), (line, "red")), soft_wrap=True)
        raise typer.Exit(1) from None


def warn(message: str) -> None:
    """One yellow line on stderr."""
    err_console.print(Text(f"warning: {message}", style="yellow"), soft_wrap=True)


def print_table(table: TextTable) -> None:
    """A report table (search.reporting.report.TextTable) as a rich table, its notes below it."""
    shown = Table(title=table.title)
    for header in table.headers:
        shown.add_column(header, overflow="fold")  # a long name wraps instead of ending in "…"
    for row in table.rows:
        shown.add_row(*row)
    console.print(shown)
    for note in table.notes:
        console.print(Text(note, style="dim"), soft_wrap=True)


@contextlib.contextmanager
def exit_on_interrupt(message: str) -> Iterator[None]:
    """Ctrl-C: one yellow line saying what was kept, and exit code 130, without a traceback.

    A Ctrl-C that Python dropped inside the block, or turned into another error (search.run.interrupts),
    counts as one.
    """
    mark_began()
    try:
        yield
        raise_if_interrupted()
    except BaseException as error:
        if not is_interrupt(error):
            raise
        err_console.print(Text(message, style="yellow"), soft_wrap=True)
        raise typer.Exit(130) from None


def stop_on_interrupt() -> contextlib.AbstractContextManager[None]:
    """Ctrl-C while draws train: what was trained is committed already; say so."""
    return exit_on_interrupt(
        "interrupted: the draws trained so far are stored; run the command again to train the rest."
    )


@contextlib.contextmanager
def draw_progress(description: str, *, quiet: bool = False) -> Iterator[Callable[[int, int], None] | None]:
    """A progress bar over the draws being trained, on a terminal; no display otherwise."""
    with progress_bars((description, "draws"), quiet=quiet) as (update,):
        yield update


@contextlib.contextmanager
def progress_bars(
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


def definition_from_args(study: str, *, epochs: int | None = None, folds: int | None = None):
    from search.study.loader import load_definition, with_overrides

    return with_overrides(load_definition(study), epochs=epochs, n_folds=folds)


def stored_definition_from_args(study: str, storage: str | None, *, epochs: int | None, folds: int | None):
    """`--stored-definition`: the definition the stored study was made from; it fixes epochs and folds too."""
    from search.errors import SearchError
    from search.storage.studies import created_definition

    if epochs is not None or folds is not None:
        raise SearchError("--stored-definition resumes a study as it was created: drop --epochs and --folds.")
    return created_definition(storage, study_name_arg(study))


def study_name_arg(study: str) -> str:
    """`--study` of a reading command: a definition name/path gives its name; any other text is taken as a study name."""
    from search.study.loader import available_definitions

    if study.endswith(".toml") or study in available_definitions():
        return definition_from_args(study).name
    return study
