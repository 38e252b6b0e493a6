"""`search speed` end to end: the installed executable measures, caches and shows the compute settings."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from typer.testing import CliRunner

from models.training.layout import layout_candidates, usable_cores
from search.cli.app import app

LABELS = {"plain", "channels_last", "bf16", "channels_last+bf16"}
REPO = Path(__file__).resolve().parents[2]
STARTING_POINT = """
[[enqueue]]
weight_sharing = true
aux_loss = "alpha"
alpha = 1.0
lr = 0.1
conv_width = 8
"""


def test_speed_measures_once_then_reads_the_cache(run_search: Callable, tmp_path: Path) -> None:
    """On a study's first starting point (here the smoke study's space with an 8-wide tower, to keep it short)."""
    study = tmp_path / "tiny.toml"
    study.write_text(
        (REPO / "studies" / "smoke.toml").read_text().replace('name = "smoke"', 'name = "tiny"') + STARTING_POINT
    )
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache")}
    first = run_search("speed", "--study", str(study), "--threads", "1", "--json", env=env, timeout=180)
    assert first.returncode == 0, first.stderr
    measured = json.loads(first.stdout)
    assert not measured["cached"] and measured["threads"] == 1 and set(measured["us_per_pair_step"]) == LABELS
    assert measured["clock"] == "cpu"
    timings = measured["us_per_pair_step"]
    assert timings[measured["winner"]] == min(timings.values())  # never slower than the plain loop
    assert measured["probe"] == "siamese 8x16 batch 50"  # the study's first starting point
    assert (tmp_path / "cache" / "digit-pair-search" / "speed.json").exists()
    layout = measured["layout"]  # every way to fill the cores, trained in all processes at once
    rates = layout["pairs_per_second"]
    assert not layout["cached"] and layout["cores"] == usable_cores()
    assert set(rates) == {c.label() for c in layout_candidates(usable_cores())}
    assert layout["winner"] == f"{layout['workers']}x{layout['threads']}"
    if len(rates) > 1:
        assert rates[layout["winner"]] == max(rates.values()) and min(rates.values()) > 0
    assert (tmp_path / "cache" / "digit-pair-search" / "layout.json").exists()

    table = run_search("speed", "--study", str(study), "--threads", "1", env=env)
    assert table.returncode == 0, table.stderr
    assert "winner" in table.stdout and "read from the cache" in table.stdout and "timed in CPU time" in table.stdout
    assert measured["winner"] in table.stdout and "µs per pair-step" in table.stdout
    assert f"torch {measured['machine']['torch']}" in table.stdout
    assert f"worker layout, {usable_cores()} core(s): {layout['winner']}" in table.stdout

    # `search run` takes the same choice from the cache and says so once, before its workers start
    run = run_search(
        "run",
        "--study",
        str(study),
        "--trials",
        "1",
        "--workers",
        "1",
        "--storage",
        f"sqlite:///{tmp_path / 's.db'}",
        env=env,
    )
    assert run.returncode == 0, run.stderr
    logged = [line for line in run.stderr.splitlines() if "compute settings:" in line]
    assert (
        len(logged) == 1 and f"compute settings: {measured['winner']} (" in logged[0] and "from the cache" in logged[0]
    )
    assert "worker layout:" not in run.stderr  # --workers given: no layout is chosen

    # Given neither --workers nor --threads, `search run` takes the measured layout and says so once.
    default = run_search(
        "run", "--study", str(study), "--trials", "2", "--storage", f"sqlite:///{tmp_path / 'd.db'}", env=env
    )
    assert default.returncode == 0, default.stderr
    said = [line for line in default.stderr.splitlines() if "worker layout:" in line]
    workers, threads = layout["workers"], layout["threads"]
    assert len(said) == 1 and f"{workers} worker(s) x {threads} thread(s)" in said[0] and "from the cache" in said[0]


def test_speed_rejects_a_thread_count_below_one() -> None:
    result = CliRunner().invoke(app, ["speed", "--threads", "0"])
    assert result.exit_code == 2 and "--threads" in result.output
