import re

import pytest
import torch
from evaluation_helpers import N_PAIRS, OWN_ABLATION_TRIALS, add_trials, own_ablation, tiny_configs

from search.errors import StorageError
from search.evaluation.evaluate import evaluate_best
from search.evaluation.results import Candidate, ConfigurationResult, EvaluationSummary
from search.evaluation.stats import summarize
from search.reporting.report import write_report
from search.reporting.tables import configuration_table
from search.reproduction.reproduce import reproduce
from search.study.loader import load_definition

torch.set_num_threads(1)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
ALL_PLOTS = {
    "optimization_history.png",
    "param_importances.png",
    "accuracy_vs_alpha.png",
    "learning_curves.png",
    "accuracy_distribution.png",
    "preset_distribution.png",
    "published_001.png",
}


def _images(markdown: str) -> list[str]:
    return re.findall(r"!\[[^\]]*\]\(([^)]+)\)", markdown)


def test_report_writes_markdown_and_every_plot(sqlite_url, tmp_path):
    trials = [
        {
            "weight_sharing": k % 2 == 0,
            "aux_loss": "alpha" if k % 3 else "none",
            "alpha": 0.5 + k / 4,
            "lr": 0.02 + 0.01 * k,
            "value": 0.6 + 0.01 * ((k * 3) % 8),  # best: trial 5, then trial 2
            "curve": {0: 0.5, 1: 0.55 + 0.01 * k},
        }
        for k in range(8)
    ]
    add_trials(sqlite_url, "tiny", trials)
    evaluate_best(
        "tiny", storage_url=sqlite_url, top=2, draws=3, n_pairs=N_PAIRS, selection_stage=False, workers=1
    )  # the search's order
    reproduce(["seed001/fc_1"], storage_url=sqlite_url, draws=2, epochs=1, n_pairs=N_PAIRS, workers=1)

    path = write_report("tiny", storage_url=sqlite_url, out_dir=tmp_path / "out", with_published=True)

    assert path == tmp_path / "out" / "report.md"
    text = path.read_text()
    assert set(_images(text)) == ALL_PLOTS
    for name in ALL_PLOTS:
        data = (path.parent / name).read_bytes()
        assert data.startswith(PNG_SIGNATURE) and len(data) > 5_000, name
    assert "Not drawn" not in text
    assert text.index("| trial 5 | 5 | siamese conv |") < text.index("| trial 2 | 2 | siamese conv |")  # best first
    assert "8 complete, 0 pruned" in text
    # the reproduced report's section: its row beside the published figure, with the gap and the CI check
    assert "### report 001: EE559 Project 1" in text and "### report 003" not in text
    row = re.search(
        r"\| Table I, fc_1 \| seed001/fc_1 \| 96,433 \| 76\.50 ± 0\.70 % \(validation\) \| (\d+\.\d\d) ± \d+\.\d\d % \| \[.*\] % \| 2 \| ([+-]\d+\.\d\d) \| (yes|no) \|",
        text,
    )
    assert row is not None, text
    assert float(row.group(2)) == pytest.approx(float(row.group(1)) - 76.50, abs=0.011)
    assert "Unstated in the report, chosen here for every row: batch size: 16 (unstated; " in text

    own = write_report("tiny", storage_url=sqlite_url, out_dir=tmp_path / "own").read_text()  # not asked for
    assert "Published models" not in own and "published_001.png" not in own and "| trial 5 | 5 |" in own


def test_report_of_an_ablation_study_has_the_paired_tests(storage_url, tmp_path):
    cells = [(False, "none"), (True, "none"), (False, "alpha"), (True, "alpha")]
    add_trials(
        storage_url,
        "ablation",
        [{"weight_sharing": ws, "aux_loss": aux, "value": 0.5 + k / 10} for k, (ws, aux) in enumerate(cells)],
        definition=load_definition("ablation"),
    )
    evaluate_best("ablation", storage_url=storage_url, draws=2, n_pairs=N_PAIRS, workers=1)

    text = write_report("ablation", storage_url=storage_url, out_dir=tmp_path).read_text()

    assert "paired significance tests between cells" in text
    table = text.split("paired significance tests between cells")[1]
    assert len(re.findall(r"^\| weight_sharing=", table, flags=re.M)) == 6
    assert "| trial 3 (weight_sharing=True, aux_loss=alpha) | 3 |" in text


def test_report_of_a_study_from_the_users_own_file_has_its_own_cells(sqlite_url, tmp_path):
    """Named like the shipped ablation (four cells), created from a file with two: the report pairs those two."""
    add_trials(sqlite_url, "ablation", OWN_ABLATION_TRIALS, definition=own_ablation(tmp_path))
    evaluate_best("ablation", storage_url=sqlite_url, draws=2, n_pairs=N_PAIRS, workers=1)

    text = write_report("ablation", storage_url=sqlite_url, out_dir=tmp_path / "out").read_text()

    table = text.split("paired significance tests between cells")[1]
    assert re.findall(r"^\| (weight_sharing=\w+) \| (weight_sharing=\w+) \|", table, flags=re.M) == [
        ("weight_sharing=True", "weight_sharing=False")
    ]
    assert "| trial 2 (weight_sharing=True) | 2 |" in text and "| trial 1 (weight_sharing=False) | 1 |" in text
    assert "aux_loss=" not in table


def test_plots_without_data_are_left_out_with_a_note(sqlite_url, tmp_path):
    add_trials(sqlite_url, "tiny", [{"aux_loss": "none", "value": 0.7}])
    (tmp_path / "param_importances.png").write_bytes(b"stale")

    path = write_report("tiny", storage_url=sqlite_url, out_dir=tmp_path, with_published=True)

    text = path.read_text()
    assert _images(text) == ["optimization_history.png"]
    assert "parameter importances need at least 2 complete trials, and the study has 1" in text
    assert "no complete trial trained with the alpha-weighted auxiliary loss" in text
    assert "run `search evaluate-best`" in text and "run `search reproduce`" in text
    assert not (tmp_path / "param_importances.png").exists()  # no stale picture beside a new report
    assert "_No preset reproduced yet: run `search reproduce --report all`._" in text


def test_report_of_an_unknown_study_names_the_studies(sqlite_url, tmp_path):
    add_trials(sqlite_url, "tiny", [])
    with pytest.raises(StorageError, match="no study 'nope'; it holds: tiny"):
        write_report("nope", storage_url=sqlite_url, out_dir=tmp_path)


def test_configuration_table_formats_percentages() -> None:
    """Built from results as the evaluation returns them (nothing trained): the numbers as percentages."""
    net, train = tiny_configs()
    accuracies = {1000: 0.91234, 1001: 0.88766}
    result = ConfigurationResult(
        candidate=Candidate(label="trial 0", net=net, train=train, trial_number=0),
        n_params=4321,
        accuracies=accuracies,
        digit_accuracies={},
        n_diverged=1,
        train_seconds=0.5,
        accuracy=summarize(list(accuracies.values())),
        digit_accuracy=None,
    )
    summary = EvaluationSummary("tiny", "embedded", N_PAIRS, (1000, 1001), (result,))

    table = configuration_table(summary)

    (row,) = table.rows
    assert row[:6] == ("trial 0", "0", "siamese conv", "yes", "alpha α=1", "mlp 8")
    assert row[7:] == (
        "4,321",
        "90.00 ± 1.75 %",
        f"[{100 * result.accuracy.ci_low:.2f}, {100 * result.accuracy.ci_high:.2f}] %",
        "2 (+1 diverged)",
    )
    assert "draw seeds 1000-1001" in table.notes[0]
    assert table.markdown().count("\n| ") == 3  # header, separator, one row
