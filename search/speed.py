"""The compute settings a study trains with: measured (or read from the cache) on the study's own network.

`models.speed` measures the candidates on a probe; here the probe is the study's first starting point
(`[[enqueue]]`: for `siamese`, the recipe), else the recipe itself. `search run` calls `study_speed`
once in the parent, before its workers start, and hands the choice to them; `search speed` prints
`speed_table`. The cache holds one choice per machine and thread count, not per study: another
study reuses it (`search speed --study NAME --remeasure` measures on that study's network instead).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from models.configs import NetConfig, TrainConfig
from models.errors import ConfigError
from models.speed import CANDIDATES, RECIPE_NET, RECIPE_TRAIN, SpeedChoice, choose_speed, label
from search.space import configs_for_point
from search.specs import StudyDefinition

if TYPE_CHECKING:
    from search.tables import TextTable

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


def speed_table(choice: SpeedChoice) -> TextTable:
    """The candidates' µs per pair-step and their speed against the plain loop, the winner marked."""
    from search.tables import TextTable  # here: a worker imports this module, and must not load matplotlib

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
