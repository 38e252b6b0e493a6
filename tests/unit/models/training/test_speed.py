"""The compute-settings chooser picks the fastest candidate and caches it per machine key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from models.nets.configs import NetConfig, TrainConfig
from models.training.speed import (
    CANDIDATES,
    RELEVANT_FLAGS,
    cache_path,
    choose_speed,
    fastest,
    label,
    measure,
    this_machine,
)
from models.training.train import Speed

PLAIN, CL, BF16, CL_BF16 = CANDIDATES
TINY_NET = NetConfig(head="prob", batch_norm=True, activation="leaky_relu", conv_channels=(4, 8), fc_width=16)
TINY_TRAIN = TrainConfig(lr=0.1, batch_size=20, aux_loss="alpha", shift=1)


class FakeTimings:
    """A timing table: seconds per pair of each candidate, round by round; records every call."""

    def __init__(self, table: dict[Speed, list[float]]) -> None:
        self.table = {speed: list(times) for speed, times in table.items()}
        self.calls: list[Speed] = []

    def __call__(self, speed: Speed) -> float:
        self.calls.append(speed)
        return self.table[speed][sum(s == speed for s in self.calls) - 1]


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    return tmp_path / "digit-pair-search"


# Emulated bf16 (AVX2 only), as the issue measured it: channels_last wins, bf16 is 6x slower.
AVX2_TABLE = {
    PLAIN: [637e-6, 640e-6, 700e-6, 630e-6, 650e-6],
    CL: [392e-6, 900e-6, 395e-6, 390e-6, 401e-6],  # one noisy round: the median ignores it
    BF16: [4078e-6],
    CL_BF16: [3055e-6],
}


def test_the_chooser_picks_the_fastest_median_and_times_slow_candidates_once(cache_dir: Path) -> None:
    timer = FakeTimings(AVX2_TABLE)
    choice = choose_speed(threads=1, time_once=timer)
    assert choice.speed == CL and not choice.cached
    assert choice.us_per_pair_step == {
        "plain": 640.0,
        "channels_last": 395.0,
        "bf16": 4078.0,
        "channels_last+bf16": 3055.0,
    }
    assert timer.calls[:4] == list(CANDIDATES)  # interleaved: every candidate once per round
    assert timer.calls[4:] == [PLAIN, CL] * 4  # bf16 runs, > 2x the best in round 1, are not timed again


def test_the_plain_setting_wins_when_nothing_is_faster(cache_dir: Path) -> None:
    table = {PLAIN: [1.0, 1.0, 1.0], CL: [1.2, 0.9, 1.1], BF16: [1.4, 1.3, 1.5], CL_BF16: [1.3, 1.3, 1.3]}
    assert measure(CANDIDATES, FakeTimings(table), rounds=3, drop_slower=2.0) == table
    assert fastest(table) == PLAIN


def test_bf16_is_chosen_where_it_is_faster(cache_dir: Path) -> None:
    table = {PLAIN: [4.0] * 5, CL: [2.5] * 5, BF16: [3.0] * 5, CL_BF16: [1.9] * 5}  # AVX512-BF16-like
    assert choose_speed(threads=1, time_once=FakeTimings(table)).speed == CL_BF16


def test_fastest_needs_a_candidate() -> None:
    with pytest.raises(ValueError, match="at least one candidate"):
        fastest({})


def test_the_choice_is_cached_per_machine_and_thread_count(cache_dir: Path) -> None:
    first = choose_speed(threads=1, time_once=FakeTimings(AVX2_TABLE))
    stored = json.loads(cache_path().read_text())
    assert cache_path().parent == cache_dir
    assert stored["machine"] == this_machine().key() and stored["choices"]["1"]["speed"] == {
        "channels_last": True,
        "bf16": False,
    }

    untouched = FakeTimings({})  # any timing would fail: the cached choice is reused
    again = choose_speed(threads=1, time_once=untouched)
    assert again.cached and again.speed == first.speed and again.us_per_pair_step == first.us_per_pair_step
    assert untouched.calls == []

    two_threads = FakeTimings({PLAIN: [1.0] * 5, CL: [2.0] * 5, BF16: [3.0] * 5, CL_BF16: [3.0] * 5})
    assert choose_speed(threads=2, time_once=two_threads).speed == PLAIN  # another thread count: its own entry
    assert set(json.loads(cache_path().read_text())["choices"]) == {"1", "2"}
    assert choose_speed(threads=1, time_once=untouched).speed == CL

    remeasured = FakeTimings({PLAIN: [1.0] * 5, CL: [2.0] * 5, BF16: [3.0] * 5, CL_BF16: [3.0] * 5})
    assert choose_speed(threads=1, remeasure=True, time_once=remeasured).speed == PLAIN and remeasured.calls


def _another_machine_value(field: str) -> object:
    """A key field as another machine would have written it: always unlike this machine's own (a fixed
    value such as an AMX flag set is this machine's own on a CI machine with AMX, and proves nothing)."""
    here = this_machine()
    if field == "torch":
        return "2.0.0" if here.torch != "2.0.0" else "2.1.0"
    if field == "cpu":
        return f"not {here.cpu}"  # e.g. a home directory copied from an "Intel(R) Xeon(R) Platinum 8488C"
    flags = set(here.flags) ^ {"amx"}  # one relevant flag more or less than this CPU has
    return [f for f in RELEVANT_FLAGS if f in flags]


@pytest.mark.parametrize("field", ["torch", "cpu", "flags"])
def test_a_cache_of_another_machine_key_is_measured_anew(cache_dir: Path, field: str) -> None:
    choose_speed(threads=1, time_once=FakeTimings(AVX2_TABLE))
    stored = json.loads(cache_path().read_text())
    value = _another_machine_value(field)
    assert value != stored["machine"][field]
    stored["machine"][field] = value  # as written by another torch version / CPU (a copied home directory)
    cache_path().write_text(json.dumps(stored))

    timer = FakeTimings({PLAIN: [1.0] * 5, CL: [2.0] * 5, BF16: [3.0] * 5, CL_BF16: [3.0] * 5})
    choice = choose_speed(threads=1, time_once=timer)
    assert not choice.cached and choice.speed == PLAIN and len(timer.calls) > 4
    assert json.loads(cache_path().read_text())["machine"] == this_machine().key()  # the stale entry is replaced


def test_an_unreadable_cache_is_measured_anew(cache_dir: Path) -> None:
    cache_dir.mkdir(parents=True)
    cache_path().write_text("{not json")
    assert choose_speed(threads=1, time_once=FakeTimings(AVX2_TABLE)).speed == CL
    assert choose_speed(threads=1, time_once=FakeTimings({})).cached


def test_a_real_measurement_times_every_candidate(cache_dir: Path) -> None:
    threads = torch.get_num_threads()
    choice = choose_speed(TINY_NET, TINY_TRAIN, threads=1)
    assert set(choice.us_per_pair_step) == {label(s) for s in CANDIDATES}
    assert all(0 < us < 1e6 for us in choice.us_per_pair_step.values())
    assert choice.us_per_pair_step[label(choice.speed)] == min(choice.us_per_pair_step.values())
    assert choice.probe == "siamese 4x8 batch 20" and torch.get_num_threads() == threads  # the count is restored
    assert choice.clock == "cpu"  # one thread: CPU time, which other processes' load hardly moves


def test_this_machine_names_the_cpu_and_its_relevant_flags() -> None:
    machine = this_machine()
    assert machine.cpu and machine.torch == torch.__version__ and machine.cores >= 1
    assert set(machine.flags) <= set(RELEVANT_FLAGS)
    assert machine.cpu in machine.describe() and f"torch {torch.__version__}" in machine.describe()
