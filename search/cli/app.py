"""`search`, the command line: each command parses its options, calls one library function and prints.

The library raises `DigitPairError` (`SearchError`, `ModelsError`); only the CLI turns it into one red
line on stderr and exit code 1 (`search.cli.common.user_errors`). This module holds the app and the search's own
commands (run, studies, show, speed, dashboard, proxy); the commands that train and read results
live in `search.cli.results` and are registered here; what commands share is in `search.cli.common`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.metadata
import logging
from typing import Annotated, Optional

import optuna
import typer
from rich.table import Table
from rich.text import Text

from search.cli import results as cli_results
from search.cli.common import (
    DataDirOption,
    GraceOption,
    HeartbeatOption,
    JsonOption,
    StorageOption,
    StudyOption,
    ThreadsOption,
    WorkersOption,
    definition_from_args,
    exit_on_interrupt,
    print_table,
    stored_definition_from_args,
    study_name_arg,
    user_errors,
    warn,
)
from search.cli.display import OneLineUsageErrors, RunProgressView, console, err_console, log_to
from search.describe import fmt_number
from search.storage.retrying import DEFAULT_MAX_OUTAGE

app = typer.Typer(
    help="Hyperparameter search for the MNIST digit-pair comparison study.",
    context_settings={"help_option_names": ["-h", "--help"]},
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    cls=OneLineUsageErrors,
)


def _print_version(value: bool) -> None:
    if value:
        console.print(f"digit-pair-search {importlib.metadata.version('digit-pair-search')}", highlight=False)
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool,
        typer.Option("--version", help="Print the version and exit.", callback=_print_version, is_eager=True),
    ] = False,
) -> None:
    """Hyperparameter search for the MNIST digit-pair comparison study."""
    log_to(err_console, level=logging.WARNING)
    optuna.logging.set_verbosity(optuna.logging.WARNING)


@app.command()
def run(
    study: StudyOption,
    trials: Annotated[
        Optional[int],
        typer.Option(
            "--trials",
            help="New finished trials (complete or pruned) to add, over all workers; optional with --timeout "
            "(then trials start until it runs out).",
            show_default=False,
        ),
    ] = None,
    storage: StorageOption = None,
    workers: WorkersOption = None,
    epochs: Annotated[Optional[int], typer.Option("--epochs", help="Override the definition's epochs.")] = None,
    folds: Annotated[
        Optional[int], typer.Option("--folds", help="Override the definition's cross-validation folds.")
    ] = None,
    data_dir: DataDirOption = None,
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
    threads: ThreadsOption = None,
    heartbeat_interval: HeartbeatOption = None,
    grace_period: GraceOption = None,
    max_outage: Annotated[
        Optional[float],
        typer.Option(
            "--max-outage",
            help="Seconds a lost database connection (a restart, a failover) is retried before the run stops; finished "
            f"trials are kept either way (default {DEFAULT_MAX_OUTAGE:g}).",
            show_default=False,
        ),
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", help="Log per-fold results.")] = False,
    stored_definition: Annotated[
        bool,
        typer.Option(
            "--stored-definition",
            help="Resume the study from the definition it was created with (stored in it), not from its TOML "
            "as it is now: for a study whose TOML was edited since.",
        ),
    ] = False,
) -> None:
    """Run (or resume) a study: add TRIALS new finished trials, or as many as TIMEOUT allows, with WORKERS processes."""
    with _stop_on_startup_interrupt():
        from search.run.runner import run_study  # torch & co.: seconds, during which Ctrl-C is answered too

    if verbose:
        log_to(console)
    logging.getLogger("search.run.speed").setLevel(logging.INFO)  # say once which compute settings the run uses
    with user_errors(), _stop_on_startup_interrupt():
        definition = (
            stored_definition_from_args(study, storage, epochs=epochs, folds=folds)
            if stored_definition
            else definition_from_args(study, epochs=epochs, folds=folds)
        )
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
                on_warning=warn,
            )
    console.print(summary.describe(), soft_wrap=True, highlight=False)
    if summary.interrupted:
        raise typer.Exit(130)


@app.command()
def studies(
    storage: StorageOption = None,
    as_json: JsonOption = False,
    reference: Annotated[
        bool,
        typer.Option(
            "--reference",
            help="Print the study-definition reference instead: every key a definition accepts, with its type, "
            "default and allowed values, as Markdown (docs/study-definition.md is this output).",
        ),
    ] = False,
) -> None:
    """List the study definitions shipped with the tool, and the studies in a storage (none before the first run)."""
    from search.errors import StorageMissing
    from search.storage.studies import list_studies
    from search.study.loader import available_definitions
    from search.study.reference import render_reference

    if reference:
        console.out(render_reference(), highlight=False, end="")
        return
    missing = None
    with user_errors():
        names = available_definitions()
        try:
            rows = list_studies(storage)
        except StorageMissing as error:  # a fresh directory: the definitions are all there is to list
            rows, missing = [], str(error)
    if as_json:
        console.print_json(data={"definitions": names, "studies": [dataclasses.asdict(row) for row in rows]})
        return
    console.print(Text("definitions: ", style="bold") + Text(", ".join(names) or "(none)"), soft_wrap=True)
    if missing is not None:
        console.print(Text(f"no studies yet: {missing}"), soft_wrap=True)
        return
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
    as_json: JsonOption = False,
) -> None:
    """Show a study's best trials: value, fold std, key parameters, parameter count."""
    from search.evaluation.ranking import stored_selection
    from search.reporting.tables import selection_table
    from search.storage.studies import best_trials, load_study
    from search.study.record import TrialRecord

    with user_errors():
        name = study_name_arg(study)
        rows = best_trials(storage, name, top=top)
        selection = stored_selection(load_study(storage, name))
    records = [TrialRecord.from_trial(t) for t in rows]
    if as_json:
        trials = [
            {
                "number": t.number,
                "values": t.values,
                "fold_std": r.fold_std,
                "n_params": r.n_params,
                "params": t.params,
                "net_config": r.net_config,
                "train_config": r.train_config,
            }
            for t, r in zip(rows, records, strict=True)
        ]
        console.print_json(
            data={"study": name, "best_trials": trials, "selection": selection.to_dict() if selection else None}
        )
        return
    table = Table(title=f"best trials of {name}")
    for column in ("trial", "value", "fold std", "n_params", "params"):
        table.add_column(column, justify="left" if column == "params" else "right")
    for trial, record in zip(rows, records, strict=True):
        params = ", ".join(f"{key}={_fmt_param(value)}" for key, value in sorted(trial.params.items()))
        table.add_row(
            str(trial.number),
            ", ".join(fmt_number(v) for v in trial.values),
            fmt_number(record.fold_std),
            str(record.n_params) if record.n_params is not None else "-",
            params,
        )
    console.print(table)
    if selection is not None:  # what evaluate-best chose among the finalists, and how
        print_table(selection_table(selection))


@app.command()
def delete(
    study: StudyOption,
    storage: StorageOption = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Delete without asking.")] = False,
) -> None:
    """Delete a study: its trials and its evaluated draws (e.g. to start a study again after editing its TOML)."""
    from search.evaluation.store import delete_study

    name = study_name_arg(study)
    if not yes and not typer.confirm(f"Delete study {name!r}, its trials and its evaluations?", default=False):
        err_console.print(Text("nothing deleted."))
        raise typer.Exit(1)
    with user_errors():
        n_trials, n_rows = delete_study(storage, name)
    console.print(f"deleted study {name}: {n_trials} trials, {n_rows} evaluated draws.", highlight=False)


def _stop_on_startup_interrupt() -> contextlib.AbstractContextManager[None]:
    """Ctrl-C before `run_study` has its own handler (loading, opening the storage, starting workers)."""
    return exit_on_interrupt(
        "interrupted while starting: no trial was started by this run; run the command again to start."
    )


# The commands that train and read results (search.cli.results), in the order `search --help` lists them.
app.command("evaluate-best")(cli_results.evaluate_best)
app.command()(cli_results.predict)
app.command()(cli_results.reproduce)
app.command("presets")(cli_results.list_presets)
app.command("lr-find")(cli_results.lr_find)
app.command()(cli_results.report)


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
    from search.reporting.dashboard import exposure_warning, open_dashboard

    if (warning := exposure_warning(host)) is not None:
        warn(warning)
    with user_errors():
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
    heartbeat_interval: HeartbeatOption = None,
    grace_period: GraceOption = None,
) -> None:
    """Serve the storage through Optuna's gRPC proxy; workers then run with --storage grpc://HOST:PORT."""
    from search.storage.proxy import serve_proxy

    def ready() -> None:
        console.print(
            f"gRPC storage proxy on {host}:{port}: workers use --storage grpc://{host}:{port} "
            "(their trials' leases are checked here: a dead worker's trial is failed and retried). Ctrl-C to stop.",
            soft_wrap=True,
            highlight=False,
        )

    with user_errors(), contextlib.suppress(KeyboardInterrupt):
        serve_proxy(
            storage,
            host=host,
            port=port,
            heartbeat_interval=heartbeat_interval,
            grace_period=grace_period,
            on_ready=ready,
        )


def _fmt_param(value: object) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


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
            help="Torch threads per process for the compute settings; default that of the fastest layout.",
            show_default=False,
        ),
    ] = None,
    remeasure: Annotated[
        bool, typer.Option("--remeasure", help="Measure again even when this machine's choice is cached.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Show how training runs fastest on this machine: each compute setting's µs per pair-step and each worker
    layout's pairs per second, with the winners."""
    from search.run.speed import layout_table, machine_choices, speed_table

    with user_errors():
        choice, layout = machine_choices(definition_from_args(study), threads=threads, remeasure=remeasure)
    if as_json:
        console.print_json(data={**choice.to_dict(), "layout": layout.to_dict()})
        return
    print_table(speed_table(choice))
    print_table(layout_table(layout))
