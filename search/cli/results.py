"""The commands that train and read results: evaluate-best, reproduce, presets, lr-find, report.

Registered on the app in `search.cli.app`; each parses its options, calls one library function and prints.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from models.data.sizes import DEFAULT_N_PAIRS
from search.cli.common import (
    DataDirOption,
    DrawsOption,
    EvalEpochsOption,
    JsonOption,
    StorageOption,
    StudyOption,
    ThreadsOption,
    WorkersOption,
    draw_progress,
    print_table,
    progress_bars,
    stop_on_interrupt,
    study_name_arg,
    user_errors,
)
from search.cli.display import console, err_console
from search.defaults import DEFAULT_DRAWS, DEFAULT_FINALISTS, DEFAULT_PRESET_DRAWS, DEFAULT_REPEATS
from search.errors import EvaluationError


def evaluate_best(
    study: StudyOption,
    storage: StorageOption = None,
    top: Annotated[int, typer.Option("--top", help="How many of the best complete trials to evaluate.")] = 1,
    draws: DrawsOption = DEFAULT_DRAWS,
    epochs: Annotated[
        Optional[int],
        typer.Option(
            "--epochs",
            help="Training epochs; default the study definition's evaluate_epochs, else the trial's own.",
            show_default=False,
        ),
    ] = None,
    data_dir: DataDirOption = None,
    workers: WorkersOption = None,
    threads: ThreadsOption = None,
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
    ] = DEFAULT_FINALISTS,
    repeats: Annotated[
        int, typer.Option("--repeats", help="Selection stage: fresh training draws of K-fold per finalist, at most.")
    ] = DEFAULT_REPEATS,
    race: Annotated[
        bool,
        typer.Option(
            "--race/--no-race",
            help="Selection stage: drop a finalist after a repeat once a paired test over its folds puts it behind the leader.",
        ),
    ] = True,
    save: Annotated[
        Optional[Path],
        typer.Option(
            "--save",
            help="Keep the chosen configuration's trained network of every draw in this directory (model.json "
            "beside them; read by `search predict --model DIR`).",
            show_default=False,
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Retrain the best trials on fresh draws and print mean ± std test accuracy with a 95 % CI (ablation: per cell, with paired tests)."""
    from search.evaluation.evaluate import evaluate_best as evaluate
    from search.reporting.tables import comparison_table, configuration_table, selection_table

    logging.getLogger("search.run.speed").setLevel(logging.INFO)  # one line while the machine is measured
    with user_errors(), stop_on_interrupt():
        name = study_name_arg(study)
        stages = ((f"selecting among the finalists of {name}", "K-fold runs"), (f"evaluating {name}", "draws"))
        with progress_bars(*stages, quiet=as_json) as (selecting, progress):
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
                race=race,
                selection_progress=selecting,
                save_dir=save,
            )
    if as_json:
        console.print_json(data=summary.to_dict())
        return
    if summary.selection is not None:
        print_table(selection_table(summary.selection))
    print_table(
        configuration_table(
            summary, title=f"{name}: fresh-draw test accuracy ({summary.n_trained} draws trained now)", compact=True
        )
    )
    if summary.comparisons:
        print_table(comparison_table(summary))


def predict(
    images: Annotated[
        list[Path],
        typer.Argument(
            help="Two digit images (PNG, 28x28 or 14x14, white on black) a and b, or one .npy/IDX file of pairs "
            "shaped (N, 2, 28, 28) or (N, 2, 14, 14).",
            show_default=False,
        ),
    ],
    model: Annotated[
        Path, typer.Option("--model", help="A directory `search evaluate-best --save DIR` wrote.", show_default=False)
    ],
    draw: Annotated[
        Optional[int],
        typer.Option(
            "--draw", help="Answer with this draw's network alone (default: all draws' averaged).", show_default=False
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Answer "is digit a <= digit b?" for pairs of images with a saved model, and name both digits."""
    from models.data.inputs import read_pairs
    from search.evaluation.export import load_models

    with user_errors():
        pairs = read_pairs(images)
        saved = load_models(model)
        answer = saved.predict(pairs, draw=draw)
    digits = answer.digits.tolist() if answer.digits is not None else [None] * len(pairs)
    rows = [
        {"pair": i, "p_a_le_b": round(float(p), 6), "a_le_b": bool(p >= 0.5), "digits": d}
        for i, (p, d) in enumerate(zip(answer.probability.tolist(), digits, strict=True))
    ]
    if as_json:
        console.print_json(data={"model": str(model), "draws": sorted(saved.models), "pairs": rows})
        return
    table = Table(title=f"{model}: {len(saved.models) if draw is None else 1} network(s)")
    for column in ("pair", "a <= b", "P(a <= b)", "digits a, b"):
        table.add_column(column, justify="right")
    for row in rows:
        shown = "-" if row["digits"] is None else f"{row['digits'][0]}, {row['digits'][1]}"
        table.add_row(str(row["pair"]), "yes" if row["a_le_b"] else "no", f"{row['p_a_le_b']:.4f}", shown)
    console.print(table)


def reproduce(
    report: Annotated[
        Optional[str],
        typer.Option("--report", help="One source report's rows (000-004, or 3) or 'all'.", show_default=False),
    ] = None,
    draws: DrawsOption = DEFAULT_PRESET_DRAWS,
    presets: Annotated[
        Optional[str],
        typer.Option("--presets", help="Comma-separated preset names (seedNNN/row); default all.", show_default=False),
    ] = None,
    storage: StorageOption = None,
    epochs: EvalEpochsOption = None,
    data_dir: DataDirOption = None,
    workers: WorkersOption = None,
    pairs: Annotated[
        int,
        typer.Option(
            "--pairs", help=f"Training pairs (and test pairs) per draw; the reports used {DEFAULT_N_PAIRS:,}."
        ),
    ] = DEFAULT_N_PAIRS,
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
    from search.reporting.published import report_tables, with_stored_rows
    from search.reproduction.reproduce import reproduce as reproduce_presets

    names = None if presets is None else [name.strip() for name in presets.split(",") if name.strip()]

    def row_done(label: str, done: int, total: int) -> None:
        if not as_json:
            err_console.print(f"[{done}/{total}] {label}: draws stored", soft_wrap=True, highlight=False)

    with user_errors(), stop_on_interrupt(), draw_progress("reproducing presets", quiet=as_json) as progress:
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
    for table in report_tables(with_stored_rows(summary, storage)):
        if markdown:
            print(table.markdown(), end="\n\n")
        else:
            print_table(table)


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


def list_presets(
    report: Annotated[
        Optional[str], typer.Option("--report", help="One source report (000-004) or 'all'.", show_default=False)
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """List the published models: name, the report's row, parameters, the published figure and our unstated choices."""
    from models.nets.families import count_parameters
    from search.reporting.published import published_figure
    from search.reproduction.presets import REPORTS, select_presets

    with user_errors():
        chosen = select_presets(report=report or "all")
    if as_json:
        rows = [
            {
                "name": p.name,
                "report": p.report,
                "row": p.row,
                "n_params": count_parameters(p.net),
                "published_mean": p.published_mean,
                "published_std": p.published_std,
                "published": published_figure(p),
                "description": p.description,
                "unstated": list(p.unstated),
                "net_config": p.net.to_dict(),
                "train_config": p.train.to_dict(),
            }
            for p in chosen
        ]
        console.print_json(data={"presets": rows})
        return
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
    from models.data.draws import make_draw
    from models.data.pools import load_pools
    from models.training.lr_find import LRRange, find_lr
    from search.reproduction.presets import select_presets

    with user_errors():
        chosen = select_presets([preset])[0]
        pairs = make_draw(load_pools(data_dir), seed=0).train  # DEFAULT_N_PAIRS pairs, as the reports trained on
        finding = find_lr(chosen.net, chosen.train, pairs, rounds=rounds, span=LRRange(lr_min, lr_max, steps))
    for r in finding.rounds:
        console.print(f"round {r.seed}: lowest loss {min(r.losses):.4f} at lr {r.best_lr:.4g}", highlight=False)
    console.print(
        f"{chosen.name} ({chosen.train.optimizer}): estimated lr {finding.mean_lr:.4g} over {rounds} rounds; "
        f"the preset trains at {chosen.train.lr:.4g}",
        soft_wrap=True,
        highlight=False,
    )


def report(
    out: Annotated[Path, typer.Option("--out", help="Directory for report.md and its PNG plots (created if missing).")],
    study: Annotated[
        str | None,
        typer.Option(
            "--study",
            help="A study name from studies/ or the path of a TOML definition; "
            "without it, the reproduced presets alone (`search reproduce`).",
        ),
    ] = None,
    storage: StorageOption = None,
    published: Annotated[
        bool,
        typer.Option("--published", help="With --study: add the reproduced published models (`search reproduce`)."),
    ] = False,
) -> None:
    """Write a Markdown report with tables and PNG plots of a study and its evaluations, or of the reproduced presets."""
    from search.reporting.report import write_report

    with user_errors():
        name = None if study is None else study_name_arg(study)
        path = write_report(name, storage_url=storage, out_dir=out, with_published=published)
    console.print(f"report written to {path}", soft_wrap=True, highlight=False)
