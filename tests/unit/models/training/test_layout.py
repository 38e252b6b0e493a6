"""The worker-layout chooser: every layout that fills the cores, the fastest by measurement, cached per machine."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from models.nets.configs import NetConfig, TrainConfig
from models.training.layout import (
    Layout,
    choose_layout,
    fastest_layout,
    layout_cache_path,
    layout_candidates,
    layout_rater,
    usable_cores,
)
from models.training.speed import this_machine
from models.training.train import Speed

TINY_NET = NetConfig(head="prob", batch_norm=True, activation="leaky_relu", conv_channels=(4, 8), fc_width=16)
TINY_TRAIN = TrainConfig(lr=0.1, batch_size=20, aux_loss="alpha", shift=1)
CL = Speed(channels_last=True)


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    return tmp_path / "digit-pair-search"


class FakeRates:
    """A table of pairs per second per layout and round; records which layouts were measured."""

    def __init__(self, table: dict[str, list[float]]) -> None:
        self.table = table
        self.calls: list[str] = []

    def __call__(self, layout: Layout, rounds: int) -> list[float]:
        self.calls.append(layout.label())
        return self.table[layout.label()][:rounds]


def test_the_candidates_are_every_way_to_fill_the_cores() -> None:
    assert [c.label() for c in layout_candidates(1)] == ["1x1"]
    assert [c.label() for c in layout_candidates(2)] == ["2x1", "1x2"]
    assert [c.label() for c in layout_candidates(4)] == ["4x1", "2x2", "1x4"]
    assert [c.label() for c in layout_candidates(6)] == ["6x1", "3x2", "2x3", "1x6"]
    with pytest.raises(ValueError, match="at least one core"):
        layout_candidates(0)


def test_fastest_layout_takes_the_best_median_and_breaks_ties_towards_more_workers() -> None:
    rates = {Layout(2, 1): [100.0, 10.0, 100.0], Layout(1, 2): [90.0, 500.0, 90.0]}  # one burst each way
    assert fastest_layout(rates) == Layout(2, 1)
    assert fastest_layout({Layout(2, 1): [5.0], Layout(1, 2): [5.0]}) == Layout(2, 1)
    with pytest.raises(ValueError, match="at least one"):
        fastest_layout({})


def test_the_chooser_picks_the_fastest_layout_and_caches_it_per_core_count(cache_dir: Path) -> None:
    # Four cores where threads pay: 2 workers of 2 threads train the most pairs per second.
    rates = FakeRates({"4x1": [3000.0, 3100.0, 2900.0], "2x2": [3500.0, 3600.0, 3400.0], "1x4": [2000.0] * 3})
    choice = choose_layout(TINY_NET, TINY_TRAIN, cores=4, rate=rates, settings=lambda threads: CL, rounds=3)
    assert choice.layout == Layout(2, 2) and not choice.cached
    assert choice.pairs_per_second == {"4x1": 3000.0, "2x2": 3500.0, "1x4": 2000.0}
    assert choice.settings == {"4x1": "channels_last", "2x2": "channels_last", "1x4": "channels_last"}
    assert rates.calls == ["4x1", "2x2", "1x4"]
    assert "2 worker(s) x 2 thread(s) (1.17x the 4x1 layout" in choice.describe()

    again = choose_layout(TINY_NET, TINY_TRAIN, cores=4, rate=rates, settings=lambda threads: CL)
    assert again.cached and again.layout == Layout(2, 2) and rates.calls == ["4x1", "2x2", "1x4"]  # not timed again
    assert again.pairs_per_second == choice.pairs_per_second

    # Another core count (a smaller container on the same CPU) is measured on its own and kept beside.
    two = FakeRates({"2x1": [1800.0] * 3, "1x2": [1500.0] * 3})
    assert choose_layout(TINY_NET, TINY_TRAIN, cores=2, rate=two, settings=lambda threads: CL).layout == Layout(2, 1)
    assert set(json.loads(layout_cache_path().read_text())["layouts"]) == {"2", "4"}
    assert layout_cache_path().parent == cache_dir


def test_a_cache_of_another_machine_or_unreadable_is_measured_anew(cache_dir: Path) -> None:
    rates = FakeRates({"2x1": [10.0] * 5, "1x2": [20.0] * 5})
    choose_layout(TINY_NET, TINY_TRAIN, cores=2, rate=rates, settings=lambda threads: CL)
    stored = json.loads(layout_cache_path().read_text())
    stored["machine"]["torch"] = "0.0.1"
    layout_cache_path().write_text(json.dumps(stored))
    assert not choose_layout(TINY_NET, TINY_TRAIN, cores=2, rate=rates, settings=lambda threads: CL).cached
    assert json.loads(layout_cache_path().read_text())["machine"] == this_machine().key()
    layout_cache_path().write_text("{not json")
    choice = choose_layout(TINY_NET, TINY_TRAIN, cores=2, rate=rates, settings=lambda threads: CL)
    assert not choice.cached and choice.layout == Layout(1, 2) and len(rates.calls) == 6


def test_one_core_has_one_layout_and_nothing_to_time(cache_dir: Path) -> None:
    rates = FakeRates({})
    choice = choose_layout(TINY_NET, TINY_TRAIN, cores=1, rate=rates, settings=lambda threads: CL)
    assert choice.layout == Layout(1, 1) and rates.calls == []


@pytest.mark.e2e  # starts worker processes
def test_the_rater_trains_in_every_process_at_once(cache_dir: Path) -> None:
    """Real processes, spawned as the workers are: two 1-thread workers and one 2-thread process."""
    rate = layout_rater(TINY_NET, TINY_TRAIN, lambda threads: CL, steps=1)
    both = rate(Layout(2, 1), 2)
    single = rate(Layout(1, 2), 2)
    assert len(both) == len(single) == 2 and all(r > 0 for r in both + single)


def test_a_probe_that_fails_in_a_worker_process_is_an_error_not_a_hang(cache_dir: Path) -> None:
    # Four unpadded 5x5 convolutions leave no pixel of a 14x14 digit: the network cannot be built.
    broken = NetConfig(conv_channels=(4, 4, 4, 4), kernel_size=5, padding="valid", fc_width=8)
    began = time.monotonic()
    with pytest.raises(RuntimeError, match="layout probe process failed: .*no pixels"):
        layout_rater(broken, TINY_TRAIN, lambda threads: CL, steps=1)(Layout(2, 1), 2)
    assert time.monotonic() - began < 120


def test_usable_cores_is_this_process_s_cpu_set() -> None:
    assert 1 <= usable_cores() <= (this_machine().cores or 1)


def test_usable_cores_respects_a_cpu_quota(tmp_path) -> None:
    """A pod limited to 1.5 CPUs sees every core of its node; the quota file says how many it may use."""
    quota = tmp_path / "cpu.max"
    every = usable_cores(tmp_path / "missing")
    for text, expected in (("150000 100000\n", 1), ("max 100000\n", every), ("50000 100000\n", 1), ("junk", every)):
        quota.write_text(text)
        assert usable_cores(quota) == min(expected, every)
    quota.write_text(f"{(every + 8) * 100000} 100000\n")  # a quota above the cores it may run on
    assert usable_cores(quota) == every
