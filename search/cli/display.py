"""What the `search` command line shows besides its tables: one-line usage errors, log records, and the
progress of `search run`. Plain rich and typer; the commands themselves are in search.cli.app."""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.text import Text
from typer.core import TyperGroup, TyperOption

from search.describe import fmt_number

if TYPE_CHECKING:
    from search.run.tickets import RunProgress

__all__ = ["PLAIN_PROGRESS_SECONDS", "OneLineUsageErrors", "RunProgressView", "console", "err_console", "log_to"]

console = Console(markup=False)  # names and paths are printed as given: a variant's "[lr=0.05]" is not a style
err_console = Console(stderr=True, markup=False)
PLAIN_PROGRESS_SECONDS = 60.0  # without a terminal, a progress line at least this often


class OneLineUsageErrors(TyperGroup):
    """Usage errors (a missing option, a value of the wrong type, an unknown command) as one line on
    stderr, like the library's errors, instead of click's framed panel; exit code 2 as click's."""

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        *a: Any,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, *a, standalone_mode=False, **extra)
        try:
            code = super().main(args, prog_name, *a, standalone_mode=False, **extra)
        except typer.Abort:
            err_console.print(Text("aborted.", style="yellow"))
            sys.exit(1)
        except typer.TyperException as error:  # typer's (vendored) click usage errors
            context = getattr(error, "ctx", None)
            where = f" See `{context.command_path} --help`." if context is not None else ""
            line = (
                " ".join((error.format_message() if hasattr(error, "format_message") else str(error)).split()).rstrip(
                    "."
                )
                + "."
            )
            err_console.print(Text.assemble(("error: ", "bold red"), (line + where, "red")), soft_wrap=True)
            sys.exit(getattr(error, "exit_code", 2))
        sys.exit(code if isinstance(code, int) else 0)  # an int: the code of a typer.Exit

    def get_command(self, ctx: typer.Context, cmd_name: str) -> Any:
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            flags_as_flags(command, ctx)
        return command

    def format_help(self, ctx: typer.Context, formatter: Any) -> None:
        flags_as_flags(self, ctx)
        super().format_help(ctx, formatter)


def flags_as_flags(command: Any, ctx: typer.Context) -> None:
    """Help shows a flag (`--verbose`, `--help`) bare, as it is typed, not with typer's `<bool>` type column."""
    for param in command.get_params(ctx):
        if isinstance(param, TyperOption) and param.is_flag:
            param.metavar = ""


def log_to(target: Console, *, level: int = logging.INFO) -> None:
    """Send the library's log records (logger "search") to `target`, above any live progress display."""
    search_logger = logging.getLogger("search")
    if target.is_terminal:
        handler: logging.Handler = RichHandler(console=target, show_path=False, show_time=False, markup=False)
    else:  # a log file or a pipe: one plain line per record, never wrapped
        handler = logging.StreamHandler(target.file)
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    search_logger.handlers = [handler]
    search_logger.setLevel(level)
    search_logger.propagate = False


class RunProgressView:
    """Progress of `search run`: a live bar on a terminal; otherwise (a log file, `nohup`, compose logs)
    one plain line per finished trial, and one a minute while none finishes."""

    def __init__(self, console: Console, study_name: str) -> None:
        self._console = console
        self._name = study_name
        self._live = console.is_terminal
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("trials · {task.fields[running]} running · best {task.fields[best]}"),
            TimeElapsedColumn(),
            TextColumn("ETA {task.fields[eta]}"),  # from the trials asked for and the timeout, whichever ends first
            console=console,
            transient=True,
        )
        self._task = self._progress.add_task(study_name, total=None, running=0, best="-", eta="-")
        self._printed: tuple[int, float] | None = None  # (n_done, elapsed) of the last plain line

    def __enter__(self) -> RunProgressView:
        if self._live:
            self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live:
            self._progress.stop()

    def update(self, progress: RunProgress) -> None:
        if not self._live:
            self._plain_line(progress)
            return
        self._progress.update(
            self._task,
            completed=progress.n_done,
            total=progress.n_trials,
            running=progress.n_running,
            best=fmt_number(progress.best_value),
            eta=_eta(progress),
        )

    def _plain_line(self, progress: RunProgress) -> None:
        last_done, last_time = self._printed if self._printed is not None else (0, 0.0)
        if progress.n_done == last_done and progress.elapsed - last_time < PLAIN_PROGRESS_SECONDS:
            return
        self._printed = (progress.n_done, progress.elapsed)
        eta = _eta(progress)
        asked = "" if progress.n_trials is None else f"/{progress.n_trials}"
        self._console.print(
            f"{self._name}: {progress.n_done}{asked} trials, {progress.n_running} running, "
            f"best {fmt_number(progress.best_value)}, elapsed {_duration(progress.elapsed)}, ETA {eta}",
            soft_wrap=True,
            highlight=False,
        )


def _eta(progress: RunProgress) -> str:
    left = progress.seconds_left
    return "-" if left is None else _duration(left)


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes // 60}:{minutes % 60:02d}:{secs:02d}"
