"""The worker layout (processes x torch threads) that trains fastest on this machine, chosen by measurement.

Trials are independent, so a search can fill the cores with many single-threaded processes or with fewer
processes of several threads each. Which is faster depends on the machine: small convolutions scale
poorly across threads, but processes share the caches and the memory bandwidth. So every layout that
fills the cores (workers x threads = cores) trains the probe network in all its processes at once, for a
few synchronised rounds, and the one that trains the most pairs per second, all processes together, wins.

The choice is cached beside the compute settings (`layout.json` next to `models.training.speed.cache_path()`),
under the same machine key plus the core count, and reused until one of them changes.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import queue
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from models.nets.configs import NetConfig, TrainConfig
from models.training.speed import (
    RECIPE_NET,
    RECIPE_TRAIN,
    Machine,
    cache_path,
    cached_entry,
    choose_speed,
    label,
    load_average,
    probe_timer,
    store_entry,
    this_machine,
)
from models.training.train import Speed

log = logging.getLogger(__name__)

LAYOUT_STEPS = 2  # training steps per timed run in each process
LAYOUT_ROUNDS = 5  # synchronised timed runs per layout; the median counts


@dataclass(frozen=True)
class Layout:
    workers: int  # processes, each training its own trial
    threads: int  # torch threads per process

    def label(self) -> str:
        """'2x1': 2 workers of 1 thread."""
        return f"{self.workers}x{self.threads}"


@dataclass(frozen=True)
class LayoutChoice:
    """The chosen layout and what every candidate measured."""

    layout: Layout
    pairs_per_second: dict[str, float]  # layout label -> training pairs per second, all processes together
    settings: dict[str, str]  # layout label -> the compute setting its processes trained with
    cores: int
    probe: str
    machine: Machine
    load: float | None = None  # the 1-minute load average when it was measured
    cached: bool = False

    def describe(self) -> str:
        """'2 worker(s) x 1 thread(s) (1.12x the 1x2 layout on AMD EPYC, 2 cores; from the cache)'."""
        best = self.pairs_per_second.get(self.layout.label(), 0.0)
        others = {name: rate for name, rate in self.pairs_per_second.items() if name != self.layout.label()}
        runner_up = max(others, key=others.__getitem__, default=None)
        against = f"{best / others[runner_up]:.2f}x the {runner_up} layout " if runner_up and others[runner_up] else ""
        source = "from the cache" if self.cached else "measured now"
        return (
            f"{self.layout.workers} worker(s) x {self.layout.threads} thread(s) "
            f"({against}on {self.machine.cpu}, {self.cores} cores; {source})"
        )

    def to_dict(self) -> dict[str, object]:
        return {
            "winner": self.layout.label(),
            "workers": self.layout.workers,
            "threads": self.layout.threads,
            "pairs_per_second": self.pairs_per_second,
            "settings": self.settings,
            "cores": self.cores,
            "probe": self.probe,
            "load": self.load,
            "cached": self.cached,
        }


CPU_QUOTA = Path("/sys/fs/cgroup/cpu.max")  # cgroup v2: "QUOTA PERIOD", or "max PERIOD" without a limit


def usable_cores(quota_file: Path = CPU_QUOTA) -> int:
    """The CPUs this process may use: those it may run on (taskset, cpusets), capped by a CPU quota (a
    Kubernetes pod's or `docker run --cpus`'s limit, which leaves every core visible but throttles past it)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    try:
        quota, period = quota_file.read_text().split()[:2]
    except (OSError, ValueError):
        return cores
    if quota == "max" or not quota.isdigit() or not period.isdigit() or int(period) == 0:
        return cores
    return max(1, min(cores, int(quota) // int(period)))


def layout_candidates(cores: int) -> tuple[Layout, ...]:
    """Every layout that fills `cores` exactly, most workers first: 4 -> 4x1, 2x2, 1x4."""
    if cores < 1:
        raise ValueError(f"a layout needs at least one core, but got {cores}.")
    return tuple(Layout(cores // threads, threads) for threads in range(1, cores + 1) if cores % threads == 0)


def fastest_layout(rates: dict[Layout, list[float]]) -> Layout:
    """The layout with the highest median rate (pairs per second); ties go to the earlier (more workers)."""
    if not rates:
        raise ValueError("fastest_layout needs at least one layout's rates, but got none.")
    return max(rates, key=lambda layout: statistics.median(rates[layout]))


def layout_rater(
    net: NetConfig, train: TrainConfig, settings: Callable[[int], Speed], *, steps: int = LAYOUT_STEPS
) -> Callable[[Layout, int], list[float]]:
    """rate(layout, rounds) -> pairs per second of each synchronised round, all the layout's processes
    together. Each process (spawned: a fresh torch, as a worker has) warms its own probe model, then all
    start each round at a barrier and time `steps` training steps in wall time."""

    def rate(layout: Layout, rounds: int) -> list[float]:
        speed = settings(layout.threads)
        if layout.workers == 1:  # no process to start: time it here, as a single worker would run
            return [1.0 / seconds for seconds in _time_rounds(net, train, speed, layout.threads, steps, rounds, None)]
        context = multiprocessing.get_context("spawn")
        barrier, results = context.Barrier(layout.workers), context.Queue()
        args = (net, train, speed, layout.threads, steps, rounds, barrier, results)
        processes = [context.Process(target=_time_rounds, args=args, daemon=True) for _ in range(layout.workers)]
        for process in processes:
            process.start()
        per_worker = []
        for _ in processes:
            per_worker.append(_next_result(results, processes))
            if isinstance(per_worker[-1], str):
                break  # the others may wait at the barrier for the one that failed
        for process in processes:
            if isinstance(per_worker[-1], str):
                process.terminate()
            process.join()
        if isinstance(per_worker[-1], str):
            raise RuntimeError(f"a layout probe process failed: {per_worker[-1]}")
        return [sum(1.0 / seconds for seconds in round_) for round_ in zip(*per_worker, strict=True)]

    return rate


def _next_result(results, processes: list) -> list[float] | str:
    """The next process's times (or error text); a process that died without a word is an error too."""
    while True:
        try:
            return results.get(timeout=1.0)
        except queue.Empty:
            dead = [p for p in processes if p.exitcode not in (None, 0)]
            if dead:
                return f"process {dead[0].pid} exited with code {dead[0].exitcode}"


def _time_rounds(
    net: NetConfig, train: TrainConfig, speed: Speed, threads: int, steps: int, rounds: int, barrier, results=None
) -> list[float]:
    """Seconds per training pair of each round, in one process with `threads` torch threads; with `results`
    (a spawned process) the times, or the error's text, go there instead."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        time_once = probe_timer(net, train, steps=steps, clock=time.perf_counter)
        time_once(speed)  # the first call builds and warms the model
        times = []
        for _ in range(rounds):
            if barrier is not None:
                barrier.wait()
            times.append(time_once(speed))
    except Exception as error:
        if results is None:
            raise
        if barrier is not None:
            barrier.abort()  # the other processes stop waiting for this one
        results.put(f"{type(error).__name__}: {error}")
        return []
    finally:
        torch.set_num_threads(previous)
    if results is not None:
        results.put(times)
    return times


def choose_layout(
    net: NetConfig = RECIPE_NET,
    train: TrainConfig = RECIPE_TRAIN,
    *,
    cores: int | None = None,
    remeasure: bool = False,
    rate: Callable[[Layout, int], list[float]] | None = None,
    settings: Callable[[int], Speed] | None = None,
    rounds: int = LAYOUT_ROUNDS,
) -> LayoutChoice:
    """The fastest layout for `cores` (default: the usable cores): from the cache unless `remeasure`, else
    measured on `net`/`train` (or with `rate`, pairs per second of each round) and cached. Each layout's
    processes train with the compute setting chosen for their thread count (`models.training.speed`, or `settings`)."""
    machine = this_machine()
    cores = cores or usable_cores()
    if not remeasure and (cached := _read_cache(machine, cores)) is not None:
        return cached
    candidates = layout_candidates(cores)
    settings = settings or (lambda threads: choose_speed(net, train, threads=threads).speed)
    chosen = {layout.label(): label(settings(layout.threads)) for layout in candidates}
    load = load_average()
    if rate is None and len(candidates) > 1 and load is not None and load > 1.0:  # a core kept busy elsewhere
        log.warning(
            "measuring the worker layout while other processes load the machine (load average %.1f on %d cores): "
            "the choice may be off; run `search speed --remeasure` when the machine is quiet",
            load,
            cores,
        )
    rates = measure_layouts(candidates, rate or layout_rater(net, train, settings), rounds=rounds)
    choice = LayoutChoice(
        layout=fastest_layout(rates),
        pairs_per_second={layout.label(): round(statistics.median(r), 1) for layout, r in rates.items()},
        settings=chosen,
        cores=cores,
        probe=f"{net.family} {'x'.join(map(str, net.conv_channels))} batch {train.batch_size}",
        machine=machine,
        load=load,
    )
    _write_cache(choice)
    log.info("worker layout measured: %s", choice.describe())
    return choice


def measure_layouts(
    candidates: Sequence[Layout], rate: Callable[[Layout, int], list[float]], *, rounds: int = LAYOUT_ROUNDS
) -> dict[Layout, list[float]]:
    """Each layout's per-round rates; a single candidate (one core) is not measured at all."""
    if len(candidates) == 1:
        return {candidates[0]: [0.0]}
    return {layout: rate(layout, rounds) for layout in candidates}


def layout_is_cached(cores: int | None = None) -> bool:
    """Whether `choose_layout` answers from the cache (no measuring) for `cores` (default: the usable cores)."""
    return _read_cache(this_machine(), cores or usable_cores()) is not None


def layout_cache_path() -> Path:
    return cache_path().with_name("layout.json")


def _read_cache(machine: Machine, cores: int) -> LayoutChoice | None:
    entry = cached_entry(layout_cache_path(), machine, "layouts", str(cores))
    if entry is None:
        return None
    try:
        return LayoutChoice(
            layout=Layout(int(entry["workers"]), int(entry["threads"])),
            pairs_per_second=dict(entry["pairs_per_second"]),
            settings=dict(entry["settings"]),
            cores=cores,
            probe=entry["probe"],
            machine=machine,
            load=entry["load"],
            cached=True,
        )
    except (ValueError, KeyError, TypeError):
        return None  # an entry of another layout: measure anew


def _write_cache(choice: LayoutChoice) -> None:
    """Add the choice for its core count."""
    entry = {key: value for key, value in choice.to_dict().items() if key not in ("cached", "cores")}
    store_entry(layout_cache_path(), choice.machine, "layouts", str(choice.cores), entry, what="worker layout")


__all__ = [
    "Layout",
    "LayoutChoice",
    "choose_layout",
    "fastest_layout",
    "layout_cache_path",
    "layout_candidates",
    "layout_rater",
    "measure_layouts",
    "usable_cores",
]
