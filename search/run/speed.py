"""The compute settings a study trains with: measured (or read from the cache) on the study's own network.

`models.training.speed` measures the candidates on a probe; here the probe is the study's first starting point
(`[[enqueue]]`: for `siamese`, the recipe), else the recipe itself. `search run` calls `study_speed`
once in the parent, before its workers start, and hands the choice to them; `search speed` prints
`speed_table`. The cache holds one choice per machine and thread count, not per study: another
study reuses it (`search speed --study NAME --remeasure` measures on that study's network instead).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from models.errors import ConfigError
from models.nets.configs import NetConfig, TrainConfig
from models.training.layout import (
    Layout,
    LayoutChoice,
    choose_layout,
    layout_candidates,
    layout_is_cached,
    usable_cores,
)
from models.training.speed import CANDIDATES, RECIPE_NET, RECIPE_TRAIN, SpeedChoice, choose_speed, label
from models.training.train import Speed
from search.study.definition import StudyDefinition
from search.study.space import configs_for_point

if TYPE_CHECKING:
    from search.describe import TextTable

logger = logging.getLogger(__name__)


def probe_configs(definition: StudyDefinition | None) -> tuple[NetConfig, TrainConfig]:
    """The network and training settings to measure on: the study's first starting point, else the recipe."""
    if definition is not None and definition.enqueue:
        try:
            return configs_for_point(definition, definition.enqueue[0])
        except (ConfigError, KeyError):  # a starting point the space cannot build is reported when it runs
            pass
    return RECIPE_NET, RECIPE_TRAIN


def study_speed(definition: StudyDefinition | None, *, threads: int, remeasure: bool = False) -> SpeedChoice:
    """The fastest compute settings for `threads` torch threads per process on this machine; logged once."""
    net, train = probe_configs(definition)
    choice = choose_speed(net, train, threads=threads, remeasure=remeasure)
    logger.info("compute settings: %s", choice.describe())
    return choice


def study_layout(definition: StudyDefinition | None) -> LayoutChoice:
    """The fastest worker layout (processes x threads) filling this machine's usable cores; logged once."""
    if not layout_is_cached():
        logger.info("measuring this machine once (compute settings and worker layout, about 30 s); then cached")
    choice = choose_layout(*probe_configs(definition))
    logger.info("worker layout: %s", choice.describe())
    return choice


def machine_choices(
    definition: StudyDefinition | None, *, threads: int | None = None, remeasure: bool = False
) -> tuple[SpeedChoice, LayoutChoice]:
    """What `search speed` shows: the compute settings for `threads` (default: the fastest layout's) and the
    worker layout. With `remeasure` both are measured again, each thread count's settings once: the layouts
    are timed with the settings just measured."""
    net, train = probe_configs(definition)
    speeds: dict[int, SpeedChoice] = {}

    def setting(count: int) -> Speed:
        if count not in speeds:
            speeds[count] = choose_speed(net, train, threads=count, remeasure=remeasure)
        return speeds[count].speed

    layout = choose_layout(net, train, remeasure=remeasure, settings=setting)
    count = threads or layout.layout.threads
    setting(count)
    return speeds[count], layout


def run_layout(definition: StudyDefinition | None, workers: int | None, threads: int | None) -> Layout:
    """`search run`'s layout: the measured one when neither is given; `--threads T` alone fills the
    cores with T-thread workers; `--workers N` alone gives each worker one thread."""
    if workers is None and threads is None:
        return study_layout(definition).layout
    if workers is None:
        return Layout(max(1, usable_cores() // threads), threads)
    return Layout(workers, threads or 1)


def layout_table(choice: LayoutChoice) -> TextTable:
    """Each layout's training pairs per second, all its processes together, against the winner."""
    from search.describe import TextTable

    best = choice.pairs_per_second.get(choice.layout.label())
    rows = []
    for layout in layout_candidates(choice.cores):
        rate = choice.pairs_per_second.get(layout.label())
        if rate is None:
            continue
        ratio = f"{rate / best:.2f}x" if best else "-"
        setting = choice.settings.get(layout.label(), "")
        rows.append(
            (
                layout.label(),
                str(layout.workers),
                str(layout.threads),
                setting,
                f"{rate:,.0f}",
                ratio,
                "winner" if layout == choice.layout else "",
            )
        )
    source = "read from the cache (--remeasure to measure again)" if choice.cached else "measured now"
    load = "" if choice.load is None else f", load average {choice.load:g} then"
    single = " (one core: nothing to measure)" if len(rows) == 1 else ""
    return TextTable(
        title=f"worker layout, {choice.cores} core(s): {choice.layout.label()}{single}",
        headers=("layout", "workers", "threads", "setting", "pairs / s", "vs winner", ""),
        rows=rows,
        notes=[
            f"probe {choice.probe}, trained in every worker at once, timed in wall time{load}; {source}. "
            "`search run` uses it when given neither --workers nor --threads."
        ],
    )


def speed_table(choice: SpeedChoice) -> TextTable:
    """The candidates' µs per pair-step and their speed against the plain loop, the winner marked."""
    from search.describe import TextTable  # here: a worker imports this module, and must not load matplotlib

    plain = choice.us_per_pair_step.get("plain")
    rows = []
    for name in (label(speed) for speed in CANDIDATES):
        us = choice.us_per_pair_step.get(name)
        if us is None:
            continue
        ratio = f"{plain / us:.2f}x" if plain else "-"
        rows.append((name, f"{us:,.0f}", ratio, "winner" if name == label(choice.speed) else ""))
    source = "read from the cache (--remeasure to measure again)" if choice.cached else "measured now"
    clock = "CPU time" if choice.clock == "cpu" else "wall time"
    load = "" if choice.load is None else f", load average {choice.load:g} then"
    return TextTable(
        title=f"compute settings, {choice.threads} thread(s): {label(choice.speed)}",
        headers=("setting", "µs per pair-step", "vs plain", ""),
        rows=rows,
        notes=[f"{choice.machine.describe()}; probe {choice.probe}; timed in {clock}{load}; {source}."],
    )
