"""benchmarks/reference.py: the machine line and `--against REF` (a temporary git worktree of REF)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import reference
from models.training.speed import this_machine

REPO = Path(__file__).resolve().parents[3]


def _worktrees() -> str:
    return subprocess.run(["git", "worktree", "list"], cwd=REPO, capture_output=True, text=True, check=True).stdout


def test_the_reference_tree_holds_ref_and_is_removed_afterwards() -> None:
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.strip()
    committed = subprocess.run(
        ["git", "show", "HEAD:pyproject.toml"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout
    with reference.reference_tree("HEAD") as tree:
        assert (tree / "pyproject.toml").read_text() == committed
        assert str(tree) in _worktrees()
        checked_out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=tree, capture_output=True, text=True, check=True)
        assert checked_out.stdout.strip() == head
    assert not tree.exists() and str(tree) not in _worktrees()


def test_an_unknown_ref_is_refused_with_gits_reason() -> None:
    with (
        pytest.raises(SystemExit, match="--against no-such-ref: not a commit"),
        reference.reference_tree("no-such-ref"),
    ):
        pass


def test_run_json_runs_the_trees_own_code(tmp_path: Path) -> None:
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "__init__.py").write_text("WHERE = 'the other tree'\n")
    (tmp_path / "bench.py").write_text(
        "import json, sys, models\nprint('a line')\nprint(json.dumps({'where': models.WHERE, 'args': sys.argv[1:]}))\n"
    )
    result = reference.run_json(tmp_path, "bench.py", ["--epochs", "1"])
    assert result.pop("run_cpu_seconds") > 0  # the child's CPU time: an interpreter start at least
    assert result == {"where": "the other tree", "args": ["--epochs", "1", "--json"]}


def test_the_machine_line_names_cpu_flags_and_torch() -> None:
    machine = this_machine()
    line = reference.machine_line()
    assert line.startswith(f"machine: {machine.cpu}, {machine.cores} cores") and machine.torch in line
    assert reference.ratio([2.0, 4.0, 3.0], [1.0, 1.5, 2.0]) == pytest.approx(2.0)


@pytest.mark.slow
def test_bench_training_against_head_prints_ratios() -> None:
    """The whole plumbing at a tiny size: one epoch, one draw, one thread; this commit and HEAD in turns."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.bench_training",
            "--draws",
            "1",
            "--epochs",
            "1",
            "--threads",
            "1",
            "--against",
            "HEAD",
            "--json",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["ref"] == "HEAD" and summary["rounds"] == 1 and len(summary["this"]) == len(summary["against"]) == 1
    assert (
        0.05 < summary["fast_vs_ref"] < 20
        and 0.05 < summary["plain_vs_ref"] < 20
        and 0.2 < summary["run_cpu_vs_ref"] < 5
    )
    assert summary["machine_info"]["cpu"] == this_machine().cpu
    assert "this commit against HEAD" in done.stdout and "machine: " in done.stdout
    assert 0.5 < summary["accuracy_this"] <= 1 and 0.5 < summary["accuracy_ref"] <= 1
