"""`search evaluate-best`, `search reproduce` and `search report` from the command line (1,000 pairs per draw)."""

import json
import re

import torch
from evaluation_helpers import add_trials
from typer.testing import CliRunner

from search.cli.app import app
from search.study.loader import load_definition

torch.set_num_threads(1)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def invoke(*args: str):
    return CliRunner().invoke(app, list(args))


def test_evaluate_best_then_report_with_the_installed_executable(sqlite_url, run_search, tmp_path):
    add_trials(
        sqlite_url,
        "tiny",
        [{"lr": 0.05, "value": 0.6, "curve": {0: 0.5, 1: 0.6}}, {"lr": 0.1, "value": 0.7, "curve": {0: 0.6, 1: 0.7}}],
    )

    done = run_search(
        "evaluate-best",
        "--study",
        "tiny",
        "--storage",
        sqlite_url,
        "--top",
        "2",
        "--draws",
        "2",
        "--epochs",
        "1",
        "--threads",
        "1",
        "--no-race",
        "--json",
    )

    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert (data["study_name"], data["draws"], data["n_pairs"], data["n_trained"]) == ("tiny", 2, 1000, 4)
    # The selection stage chose the order: both trials retrained on 3 fresh training draws x 4 folds.
    selection = data["selection"]
    assert [f["n_folds"] for f in selection["finalists"]] == [12, 12] and selection["n_trained"] == 6
    assert [c["trial_number"] for c in data["configurations"]] == [f["trial_number"] for f in selection["finalists"]]
    assert selection["chosen_trial"] == data["configurations"][0]["trial_number"]
    for configuration in data["configurations"]:
        assert list(configuration["per_draw"]) == ["1000", "1001"]  # the same draws for both
        assert configuration["accuracy"]["n"] == 2 and 0.3 <= configuration["accuracy"]["mean"] <= 1.0
        assert configuration["train_config"]["epochs"] == 1

    done = run_search("report", "--study", "tiny", "--storage", sqlite_url, "--out", "report")

    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "report written to report/report.md"
    text = (tmp_path / "report" / "report.md").read_text()
    assert "| trial 1 | 1 | siamese conv |" in text
    assert "## Selection stage" in text and f"| trial {selection['chosen_trial']} (chosen) |" in text
    for name in ("optimization_history.png", "learning_curves.png", "accuracy_distribution.png"):
        assert (tmp_path / "report" / name).read_bytes().startswith(PNG_SIGNATURE)


def test_evaluate_best_in_a_log_shows_both_stages_as_plain_lines(sqlite_url, run_search):
    add_trials(sqlite_url, "tiny", [{"lr": 0.05, "value": 0.6}])

    done = run_search(
        "evaluate-best",
        "--study",
        "tiny",
        "--storage",
        sqlite_url,
        "--repeats",
        "2",
        "--draws",
        "1",
        "--epochs",
        "1",
        "--threads",
        "1",
    )

    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert [line for line in lines if line.startswith("selecting")] == [
        "selecting among the finalists of tiny: 0/2 K-fold runs",
        "selecting among the finalists of tiny: 1/2 K-fold runs",
        "selecting among the finalists of tiny: 2/2 K-fold runs",
    ]
    assert "evaluating tiny: 1/1 draws" in lines
    assert "tiny: selection stage" in done.stdout and "trial 0 (chosen)" in done.stdout
    shown = run_search("show", "--study", "tiny", "--storage", sqlite_url)  # the stored choice, read back
    assert shown.returncode == 0, shown.stderr
    assert "best trials of tiny" in shown.stdout and "tiny: selection stage" in shown.stdout
    assert "trial 0 (chosen)" in shown.stdout


def test_evaluate_best_on_the_ablation_prints_cells_and_paired_tests(sqlite_url):
    cells = [(False, "none"), (True, "none"), (False, "alpha"), (True, "alpha")]
    add_trials(
        sqlite_url,
        "ablation",
        [{"weight_sharing": ws, "aux_loss": aux, "value": 0.5 + k / 10} for k, (ws, aux) in enumerate(cells)],
        definition=load_definition("ablation"),
    )

    result = invoke(
        "evaluate-best",
        "--study",
        "ablation",
        "--storage",
        sqlite_url,
        "--draws",
        "2",
        "--epochs",
        "1",
        "--threads",
        "1",
    )

    assert result.exit_code == 0, result.output
    assert "ablation: fresh-draw test accuracy (8 draws trained now)" in result.stdout
    assert "paired significance tests between cells" in result.stdout
    assert result.stdout.count("siamese conv, WS") == 4


def test_reproduce_two_presets_prints_published_and_reproduced(sqlite_url, tmp_path):
    args = (
        "reproduce",
        "--presets",
        "seed002/mlp, seed003/fnn-ws-al",
        "--draws",
        "1",
        "--epochs",
        "1",
        "--storage",
        sqlite_url,
    )

    result = invoke(*args, "--markdown")

    assert result.exit_code == 0, result.output
    assert "**report 002: EE590: Deep Learning - Mini-project1 (Zhou, Li, Luo)**" in result.stdout
    assert "| Tables I-II, MLP | seed002/mlp | 133,762 | 76.50 % |" in result.stdout
    assert "| Table I, FNN + WS + AL | seed003/fnn-ws-al | 35,596 | 93.56 ± 0.71 % |" in result.stdout
    assert "momentum 0 (unstated; PyTorch's default)" in result.stdout  # the choices made where the report is silent
    progress = sorted(line.split("] ", 1)[1] for line in result.stderr.splitlines() if line.startswith("["))
    assert progress == ["seed002/mlp: draws stored", "seed003/fnn-ws-al: draws stored"]  # a line per row, as each ends
    assert "[2/2] " in result.stderr
    again = invoke(*args, "--json")  # stored: nothing trained again
    data = json.loads(again.stdout)
    assert data["n_trained"] == 0
    assert [(c["preset"], c["published_mean"], c["accuracy"]["n"]) for c in data["configurations"]] == [
        ("seed002/mlp", 0.765, 1),
        ("seed003/fnn-ws-al", 0.9356, 1),
    ]
    variant = invoke(*args, "--vary", "lr=0.05", "--markdown")  # trains the variants alone, shows them beside
    assert variant.exit_code == 0, variant.output
    assert "seed003/fnn-ws-al [lr=0.05]: draws stored" in variant.stderr
    plain = invoke(*args, "--markdown")
    for shown in (variant.stdout, plain.stdout):
        rows = [line.split(" | ")[1] for line in shown.splitlines() if line.startswith("| ") and " | seed00" in line]
        assert rows == ["seed002/mlp", "seed002/mlp [lr=0.05]", "seed003/fnn-ws-al", "seed003/fnn-ws-al [lr=0.05]"]

    # No search run: `report` without --study writes the reproduced presets' part alone.
    written = invoke("report", "--out", str(tmp_path / "presets"), "--storage", sqlite_url)
    assert written.exit_code == 0, written.output
    text = (tmp_path / "presets" / "report.md").read_text()
    assert text.startswith("# The published models, reproduced") and "# Study" not in text
    assert "| Tables I-II, MLP | seed002/mlp | 133,762 | 76.50 % |" in text and "seed003/fnn-ws-al [lr=0.05]" in text
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert images == ["published_002.png", "published_003.png", "preset_distribution.png"]
    for name in images:
        assert (tmp_path / "presets" / name).read_bytes().startswith(PNG_SIGNATURE)


def test_presets_lists_every_row_of_a_report_with_its_figure():
    result = invoke("presets", "--report", "003")

    assert result.exit_code == 0, result.output
    assert result.stdout.count("seed003/") == 19 and "seed002/" not in result.stdout
    assert "97.96" in result.stdout and "0.27 %" in result.stdout  # the final model, error 2.04 ± 0.27 %


def test_lr_find_prints_each_round_and_the_mean():
    result = invoke(
        "lr-find",
        "--preset",
        "seed003/fnn-ws-al",
        "--rounds",
        "2",
        "--steps",
        "12",
        "--lr-min",
        "0.001",
        "--lr-max",
        "5",
    )

    assert result.exit_code == 0, result.output
    rounds = [line for line in result.stdout.splitlines() if line.startswith("round ")]
    assert [line.split(":")[0] for line in rounds] == ["round 0", "round 1"]
    assert "seed003/fnn-ws-al (sgd): estimated lr " in result.stdout and "the preset trains at 0.1" in result.stdout
