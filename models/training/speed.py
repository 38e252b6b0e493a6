"""Compute settings chosen by measurement on the machine that trains, and remembered per machine.

Which `Speed` is fastest depends on the CPU: channels_last made a training step 1.5-1.8x faster on
both 2-core machines we measured, but bfloat16 autocast was 1.3x faster where the CPU has
AVX512-BF16 and 6x slower where bf16 is emulated (AVX2 only). So nothing is assumed: every
candidate, the plain setting included, trains a few warm steps of a probe network, interleaved
round by round, and the fastest median wins. The fast path is therefore never slower than the
plain loop on the probe.

The choice is cached as JSON in `$XDG_CACHE_HOME/digit-pair-search/speed.json` (default
`~/.cache/...`) under the machine's key (CPU model, the flags that matter, torch version) and
the torch thread count it was measured with; it is reused until the key changes.

Nothing here runs a torch op at import time: a process that forks workers must not have started
torch's OpenMP pool (see models/nets/heads.py).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from models.data.draws import PairSet
from models.nets.configs import NetConfig, TrainConfig
from models.training.train import ModelTrainer, Speed

log = logging.getLogger(__name__)

RELEVANT_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx")  # what decides fp32 / bf16 kernel speed
CACHE_VERSION = 1  # bump when the probe or the file layout changes: older files are measured anew
CANDIDATES = (
    Speed(),
    Speed(channels_last=True),
    Speed(bf16=True),
    Speed(channels_last=True, bf16=True),
)

# The probe: the siamese study's recipe (its first starting point; benchmarks/bench_training.py).
RECIPE_NET = NetConfig(
    family="siamese",
    weight_sharing=True,
    head="prob",
    batch_norm=True,
    activation="leaky_relu",
    conv_channels=(32, 64),
    kernel_size=3,
    fc_width=128,
)
RECIPE_TRAIN = TrainConfig(
    optimizer="sgd", lr=0.1, momentum=0.9, gamma=0.95, batch_size=100, epochs=25, aux_loss="alpha", alpha=1.0, shift=1
)
PROBE_STEPS = 1  # training steps per timed run (batch_size pairs): emulated bf16 takes seconds a step
PROBE_ROUNDS = 5  # timed runs per candidate, interleaved; the median counts
DROP_SLOWER = 2.0  # after the first round, a candidate this much slower than the best is not timed again


@dataclass(frozen=True)
class Machine:
    """What the speed of a setting depends on: the cache key."""

    cpu: str  # model name, e.g. "AMD EPYC" or "Intel(R) Xeon(R) Platinum 8488C"
    flags: tuple[str, ...]  # the RELEVANT_FLAGS this CPU has
    torch: str  # torch version
    cores: int  # logical CPUs (reported, not part of the key: a thread count is)

    def key(self) -> dict[str, object]:
        return {"cpu": self.cpu, "flags": list(self.flags), "torch": self.torch, "version": CACHE_VERSION}

    def describe(self) -> str:
        """One line for benchmark output: 'AMD EPYC, 2 cores, avx2 (no avx512f, avx512_bf16, amx), torch 2.13.0'."""
        missing = [f for f in RELEVANT_FLAGS if f not in self.flags]
        has = ", ".join(self.flags) or "none of " + ", ".join(RELEVANT_FLAGS)
        lacks = f" (no {', '.join(missing)})" if missing and self.flags else ""
        return f"{self.cpu}, {self.cores} cores, {has}{lacks}, torch {self.torch}"


def this_machine() -> Machine:
    """The CPU model and flags from /proc/cpuinfo (Linux), else what `platform` knows; no torch op."""
    cpu, flags = "", set()
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                name, _, value = line.partition(":")
                name = name.strip()
                if name == "model name":
                    cpu = value.strip()
                elif name == "flags":
                    flags = set(value.split())
                if cpu and flags and name == "":  # the end of the first processor's block
                    break
    except OSError:
        pass
    cpu = cpu or platform.processor() or platform.machine()  # not Linux, or no model name (e.g. ARM)
    present = tuple(f for f in RELEVANT_FLAGS if f in flags or (f == "amx" and any(g.startswith("amx") for g in flags)))
    return Machine(cpu=cpu, flags=present, torch=torch.__version__, cores=os.cpu_count() or 1)


def label(speed: Speed) -> str:
    """'plain', 'channels_last', 'bf16' or 'channels_last+bf16'."""
    parts = [name for name in ("channels_last", "bf16") if getattr(speed, name)]
    return "+".join(parts) or "plain"


@dataclass(frozen=True)
class SpeedChoice:
    """The chosen setting and what every candidate measured."""

    speed: Speed
    us_per_pair_step: dict[str, float]  # candidate label -> median µs per training pair (forward + backward + step)
    threads: int  # torch threads it was measured with
    probe: str  # the network and batch it was measured on
    machine: Machine
    clock: str = "wall"  # what was timed: "cpu" (one thread: the process's CPU time) or "wall"
    load: float | None = None  # the 1-minute load average when it was measured (None where unknown)
    cached: bool = False  # read from the cache rather than measured now

    def describe(self) -> str:
        """'channels_last (1.50x the plain loop on AMD EPYC, 1 thread(s); from the cache)'."""
        plain = self.us_per_pair_step.get("plain")
        best = self.us_per_pair_step.get(label(self.speed))
        ratio = f"{plain / best:.2f}x the plain loop " if plain and best else ""
        source = "from the cache" if self.cached else "measured now"
        return f"{label(self.speed)} ({ratio}on {self.machine.cpu}, {self.threads} thread(s); {source})"

    def to_dict(self) -> dict[str, object]:
        return {
            "speed": dataclasses.asdict(self.speed),
            "winner": label(self.speed),
            "us_per_pair_step": self.us_per_pair_step,
            "threads": self.threads,
            "probe": self.probe,
            "clock": self.clock,
            "load": self.load,
            "cached": self.cached,
            "machine": {**self.machine.key(), "cores": self.machine.cores},
        }


def fastest(timings: dict[Speed, list[float]]) -> Speed:
    """The candidate with the lowest median time; ties go to the earlier (simpler) candidate."""
    if not timings:
        raise ValueError("fastest needs at least one candidate's timings, but got none.")
    return min(timings, key=lambda speed: statistics.median(timings[speed]))


def measure(
    candidates: Sequence[Speed],
    time_once: Callable[[Speed], float],
    *,
    rounds: int = PROBE_ROUNDS,
    drop_slower: float = DROP_SLOWER,
) -> dict[Speed, list[float]]:
    """Time every candidate `rounds` times, interleaved (ABCD ABCD ...) so that a burst of load on a shared
    machine hits them all alike. A candidate `drop_slower` times slower than the best in the first round is
    not timed again (emulated bf16 is 6-10x slower: seconds per run) and keeps its one timing."""
    timings: dict[Speed, list[float]] = {speed: [] for speed in candidates}
    timed = list(candidates)
    for round_ in range(rounds):
        for speed in timed:
            timings[speed].append(time_once(speed))
        if round_ == 0:
            best = min(timings[speed][0] for speed in timed)
            timed = [speed for speed in timed if timings[speed][0] <= drop_slower * best]
    return timings


def probe_timer(
    net: NetConfig, train: TrainConfig, *, steps: int = PROBE_STEPS, clock: Callable[[], float] = time.perf_counter
) -> Callable[[Speed], float]:
    """time_once(speed) -> seconds per training pair of `steps` warm training steps of `net` under `train`
    (augmentation included, no evaluation), on random inputs of the digits' shape: speed does not depend
    on the pixels. Each setting keeps its own model, warmed by one untimed run before its first timing.
    `clock`: wall time, or this process's CPU time (one thread: unaffected by other processes' load)."""
    n = steps * train.batch_size
    data = torch.Generator().manual_seed(0)
    pairs = PairSet(
        input=torch.randn(n, 2, 14, 14, generator=data),
        target=torch.randint(0, 2, (n,), generator=data),
        classes=torch.randint(0, 10, (n, 2), generator=data),
    )
    # A small learning rate keeps random labels from diverging (which would end a run early); an epoch
    # count far beyond the runs keeps the schedule and the trainer from finishing.
    train = dataclasses.replace(train, lr=min(train.lr, 1e-3), epochs=10_000)
    trainers: dict[Speed, ModelTrainer] = {}

    def time_once(speed: Speed) -> float:
        if speed not in trainers:
            trainers[speed] = ModelTrainer(net, train, pairs, seed=0, device="cpu", speed=speed)
            trainers[speed].run_epoch(evaluate=False)  # warm: kernels chosen, buffers allocated
        began = clock()
        trainers[speed].run_epoch(evaluate=False)
        return (clock() - began) / n

    return time_once


def cache_path() -> Path:
    """$XDG_CACHE_HOME/digit-pair-search/speed.json, default ~/.cache/digit-pair-search/speed.json."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "digit-pair-search" / "speed.json"


def choose_speed(
    net: NetConfig = RECIPE_NET,
    train: TrainConfig = RECIPE_TRAIN,
    *,
    threads: int | None = None,
    remeasure: bool = False,
    time_once: Callable[[Speed], float] | None = None,
) -> SpeedChoice:
    """The fastest of CANDIDATES with `threads` torch threads (default: the current count) on this machine:
    from the cache when it holds a choice for this machine and thread count (unless `remeasure`), else
    measured on `net`/`train` (or with `time_once`, seconds per pair of a setting) and cached."""
    machine = this_machine()
    threads = threads or torch.get_num_threads()
    if not remeasure and (cached := _read_cache(machine, threads)) is not None:
        return cached
    # One thread: CPU time, which other processes' load hardly moves. More: wall time (CPU time would count
    # the threads' spinning at barriers), which needs the cores to itself.
    clock = time.process_time if threads == 1 else time.perf_counter
    load = load_average()
    if time_once is None and threads > 1 and load is not None and load > machine.cores - threads + 0.5:
        log.warning(
            "measuring compute settings for %d threads while other processes load the machine (load average %.1f on "
            "%d cores): the choice may be off; run `search speed --remeasure` when the machine is quiet",
            threads,
            load,
            machine.cores,
        )
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        timings = measure(CANDIDATES, time_once or probe_timer(net, train, clock=clock))
    finally:
        torch.set_num_threads(previous)
    choice = SpeedChoice(
        speed=fastest(timings),
        us_per_pair_step={label(s): round(statistics.median(t) * 1e6, 1) for s, t in timings.items()},
        threads=threads,
        probe=f"{net.family} {'x'.join(map(str, net.conv_channels))} batch {train.batch_size}",
        machine=machine,
        clock="cpu" if clock is time.process_time else "wall",
        load=load,
    )
    _write_cache(choice)
    log.info("compute settings measured: %s", choice.describe())
    return choice


@functools.cache
def _measured_speed(threads: int) -> Speed:
    return choose_speed(threads=threads).speed


def measured_speed() -> Speed:
    """The cached (or, the first time on a machine, measured) fastest setting for this process's thread
    count; what `models.training.fast.fit_many` uses unless told otherwise. Reads the cache once per process."""
    return _measured_speed(torch.get_num_threads())


def load_average() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):  # Windows
        return None


def cached_entry(path: Path, machine: Machine, section: str, key: str) -> dict | None:
    """`section[key]` of a cache file written by `store_entry` for this machine's key; None when the file is
    missing or unreadable, of another CPU, flags or torch version, or lacks the entry: measure anew."""
    try:
        stored = json.loads(path.read_text())
        if stored["machine"] != machine.key():
            return None
        entry = stored[section][key]
        return entry if isinstance(entry, dict) else None
    except (OSError, ValueError, KeyError, TypeError):
        return None


def store_entry(path: Path, machine: Machine, section: str, key: str, entry: dict, *, what: str) -> None:
    """Add `entry` (stamped with when it was measured) as `section[key]`; entries of another machine key are
    dropped. Written atomically (a temporary file renamed), so processes measuring at once never leave a torn
    file; a cache that cannot be written (a read-only home) is warned about, and training goes on."""
    try:
        stored = json.loads(path.read_text())
        entries = stored[section] if stored.get("machine") == machine.key() else {}
        entries = entries if isinstance(entries, dict) else {}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        entries = {}
    entries[key] = {**entry, "measured": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=path.parent, suffix=".tmp", delete=False) as out:
            json.dump({"machine": machine.key(), section: entries}, out, indent=1)
        os.replace(out.name, path)
    except OSError as error:
        log.warning("could not cache the %s in %s: %s", what, path, error)


def _read_cache(machine: Machine, threads: int) -> SpeedChoice | None:
    entry = cached_entry(cache_path(), machine, "choices", str(threads))
    if entry is None:
        return None
    try:
        return SpeedChoice(
            speed=Speed(**entry["speed"]),
            us_per_pair_step=dict(entry["us_per_pair_step"]),
            threads=threads,
            probe=entry["probe"],
            machine=machine,
            clock=entry["clock"],
            load=entry["load"],
            cached=True,
        )
    except (ValueError, KeyError, TypeError):
        return None  # an entry of another layout: measure anew


def _write_cache(choice: SpeedChoice) -> None:
    """Add the choice for its thread count."""
    entry = {
        "speed": dataclasses.asdict(choice.speed),
        "us_per_pair_step": choice.us_per_pair_step,
        "probe": choice.probe,
        "clock": choice.clock,
        "load": choice.load,
    }
    store_entry(cache_path(), choice.machine, "choices", str(choice.threads), entry, what="compute settings")
