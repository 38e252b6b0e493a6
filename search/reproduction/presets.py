"""Every published row of the five source reports as a named preset: network, that report's own
training recipe, the figure it printed, and the choices we had to make where it is silent.

The reports are in the repository's shared material (seeds 000-004); each preset is named
`seedNNN/row`. Where a report leaves a detail unstated we choose a value and say so in the
preset's `unstated`, so that it is shown beside every number. Rules for those choices, in order:
the report's own other rows; PyTorch's default (an unstated momentum is 0); the closest common
practice. Published figures are copied as printed (error converted to accuracy) with what they
measure: a test mean over fresh draws, a validation figure, a maximum over epochs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from models.errors import ConfigError
from models.nets.configs import NetConfig, TrainConfig
from search import variants
from search.reproduction.preset import FIGURES, REPORT_RUNS, REPORTS, Preset, Published
from search.reproduction.reports import seed000, seed001, seed002, seed003, seed004

__all__ = [
    "FIGURES",
    "PRESETS",
    "REPORTS",
    "REPORT_RUNS",
    "Preset",
    "Published",
    "report_key",
    "select_presets",
    "vary",
]


PRESETS: dict[str, Preset] = {
    p.name: p for report in (seed000, seed001, seed002, seed003, seed004) for p in report.presets()
}


def report_key(report: str) -> str:
    """'3', '03', '003' or 'seed003' -> '003'; an unknown report is a ConfigError naming the known ones."""
    key = report.strip().lower().removeprefix("seed")
    key = key.zfill(3) if key.isdigit() else key
    if key not in REPORTS:
        raise ConfigError(f"Unknown report {report!r}; the reports are {', '.join(REPORTS)} (or 'all').")
    return key


def select_presets(names: Sequence[str] | None = None, *, report: str | None = None) -> list[Preset]:
    """The presets named, or those of one report ('all': every report), or all of them, in report order."""
    if names is not None and report is not None:
        raise ConfigError("Give preset names or a report, not both.")
    if report is not None:
        if report.strip().lower() == "all":
            return list(PRESETS.values())
        key = report_key(report)
        return [p for p in PRESETS.values() if p.report == key]
    if names is None:
        return list(PRESETS.values())
    chosen = list(dict.fromkeys(names))
    unknown = [name for name in chosen if name not in PRESETS]
    if unknown or not chosen:
        raise ConfigError(
            f"Unknown preset(s) {', '.join(map(repr, unknown)) or '(none given)'}; "
            f"the presets are seedNNN/row, e.g. {', '.join(list(PRESETS)[:3])}; `search presets` lists them."
        )
    return [PRESETS[name] for name in chosen]


def vary(preset: Preset, changes: Mapping[str, Any]) -> Preset:
    """The preset with some of its NetConfig/TrainConfig fields changed: one factor at a time, to test
    what explains a gap to the published figure. The variant is named `name [field=value, ...]` and
    keeps the published figure it is compared with (search.variants writes and reads the name)."""
    if not changes:
        return preset
    net_fields = {f.name for f in dataclasses.fields(NetConfig)}
    train_fields = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(changes) - net_fields - train_fields)
    if unknown:
        raise ConfigError(
            f"Unknown field(s) {', '.join(unknown)} to vary; a NetConfig or TrainConfig field is needed, e.g. momentum=0.9."
        )
    net = NetConfig.from_dict({**preset.net.to_dict(), **{k: v for k, v in changes.items() if k in net_fields}})
    train = TrainConfig.from_dict({**preset.train.to_dict(), **{k: v for k, v in changes.items() if k in train_fields}})
    name = variants.format(preset.name, changes)
    return dataclasses.replace(preset, name=name, net=net, train=train)
