"""benchmarks/bench_roofline.py: the step's FLOPs, counted, against the arithmetic of the recipe's layers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from models.training.speed import RECIPE_NET, this_machine

REPO = Path(__file__).resolve().parents[3]


def recipe_step_flops(pairs: int) -> int:
    """FLOPs of one training step of the recipe, by hand: each convolution and linear layer costs 2·MACs
    forward and the same again for each gradient, the weights' and (but for the first layer, whose input
    needs none) the input's."""
    images = 2 * pairs  # weight sharing: both digits through one tower
    c1, c2 = RECIPE_NET.conv_channels
    conv1 = 2 * images * c1 * 14 * 14 * 1 * 9  # 'same' 3x3 on 14x14, then a 2x2 pool
    conv2 = 2 * images * c2 * 7 * 7 * c1 * 9  # on 7x7, then a pool to 3x3
    fc1 = 2 * images * (c2 * 3 * 3) * RECIPE_NET.fc_width
    fc2 = 2 * images * RECIPE_NET.fc_width * 10
    return 2 * conv1 + 3 * (conv2 + fc1 + fc2)


@pytest.mark.slow
def test_the_roofline_counts_the_recipe_s_flops_and_bounds_the_speed_up() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_roofline", "--batch", "20", "--steps", "10", "--json"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["cpu"] == this_machine().cpu and summary["peak_gflops"] > 0 and summary["batch"] == 20
    rows = {row["setting"]: row for row in summary["rows"]}
    assert set(rows) == {"plain", "channels_last"}
    for row in rows.values():
        assert row["gflop_per_step"] == pytest.approx(recipe_step_flops(20) / 1e9, rel=1e-3)
        assert 0 < row["flop_work_share"] < 1 and row["us_per_pair_step"] > row["other_us_per_pair_step"] > 0
        # Everything but the FLOPs free is the looser bound; FLOP work alone at the peak, the tighter one.
        assert row["bound_all_free"] > row["bound_flops_at_peak"] > 0
        shares = row["layer_kind_shares"]
        assert sum(shares.values()) == pytest.approx(1, abs=0.01) and shares["convolution"] > 0
        assert shares["batch norm"] > 0 and shares["pooling"] > 0  # the recipe has both
        assert row["bound_bn_pool_free"] == pytest.approx(1 / (1 - shares["batch norm"] - shares["pooling"]), rel=0.02)
    assert "| channels_last |" in done.stdout and "fp32 peak (one thread" in done.stdout
