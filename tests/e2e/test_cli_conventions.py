"""The CLI's conventions, through the installed executable: --version, -h, --json, a fresh directory, delete,
and `studies --reference`, which prints docs/study-definition.md."""

from __future__ import annotations

import json
from pathlib import Path

from evaluation_helpers import add_trials

ROOT = Path(__file__).resolve().parents[2]


def test_version_and_short_help(run_search):
    version = run_search("--version")
    assert version.returncode == 0 and version.stdout.startswith("digit-pair-search ")
    for args in (("-h",), ("run", "-h"), ("evaluate-best", "-h")):
        shown = run_search(*args)
        assert shown.returncode == 0 and "Usage: search" in shown.stdout
    run_help = run_search("run", "-h").stdout
    assert "<bool>" not in run_help and "(30)" not in run_help  # flags shown as flags, defaults as values
    assert "--verbose" in run_help and "default 30" in run_help


def test_studies_in_a_fresh_directory_lists_the_definitions(run_search):
    listed = run_search("studies")
    assert listed.returncode == 0, listed.stderr
    assert "siamese" in listed.stdout and "no studies yet" in listed.stdout
    data = json.loads(run_search("studies", "--json").stdout)
    assert {"siamese", "smoke"} <= set(data["definitions"]) and data["studies"] == []


def test_studies_reference_prints_the_study_definition_page(run_search):
    printed = run_search("studies", "--reference")
    assert printed.returncode == 0, printed.stderr
    assert printed.stdout == (ROOT / "docs" / "study-definition.md").read_text(encoding="utf-8")


def test_show_and_presets_print_json(sqlite_url, run_search):
    add_trials(sqlite_url, "tiny", [{"lr": 0.05, "value": 0.6}, {"lr": 0.1, "value": 0.7}])
    shown = json.loads(run_search("show", "--study", "tiny", "--storage", sqlite_url, "--json").stdout)
    assert [t["number"] for t in shown["best_trials"]] == [1, 0] and shown["selection"] is None
    assert shown["best_trials"][0]["train_config"]["lr"] == 0.1
    presets = json.loads(run_search("presets", "--report", "002", "--json").stdout)["presets"]
    assert [p["name"] for p in presets][:2] == ["seed002/mlp", "seed002/cnn"] and presets[0]["n_params"] > 0


def test_delete_asks_first_and_removes_trials_and_evaluations(sqlite_url, run_search):
    add_trials(sqlite_url, "tiny", [{"lr": 0.05, "value": 0.6}])
    evaluated = run_search(
        "evaluate-best", "--study", "tiny", "--storage", sqlite_url, "--draws", "1", "--epochs", "1", "--no-select"
    )
    assert evaluated.returncode == 0, evaluated.stderr

    refused = run_search("delete", "--study", "tiny", "--storage", sqlite_url)  # no one to answer: nothing done
    assert refused.returncode == 1 and "aborted" in refused.stderr
    kept = json.loads(run_search("studies", "--storage", sqlite_url, "--json").stdout)["studies"]
    assert [s["name"] for s in kept] == ["tiny"]
    deleted = run_search("delete", "--study", "tiny", "--storage", sqlite_url, "--yes")
    assert deleted.returncode == 0 and "1 trials, 1 evaluated draws" in deleted.stdout
    listed = json.loads(run_search("studies", "--storage", sqlite_url, "--json").stdout)
    assert listed["studies"] == []
    again = run_search("delete", "--study", "tiny", "--storage", sqlite_url, "--yes")
    assert again.returncode == 1 and "No study named 'tiny'" in again.stderr
