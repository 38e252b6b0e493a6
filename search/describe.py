"""Short texts for configurations and numbers, and the plain table they fill: shared by every layer that shows
results (the report, the tables, the CLI, the speed measurement).

`describe_fields` tells configurations apart in a few words (family, weight sharing, auxiliary loss,
head, the other key settings); `describe` joins them in one line.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from models.nets.configs import NetConfig, TrainConfig

__all__ = ["TextTable", "describe", "describe_fields", "fmt_number", "percent"]


def fmt_number(value: float | None, digits: int = 4) -> str:
    """`value` with `digits` decimals, "-" for None (a trial without a value, a fold without a score)."""
    return "-" if value is None else f"{value:.{digits}f}"


def describe_fields(net: NetConfig, train: TrainConfig) -> dict[str, str]:
    """The settings that tell configurations apart, as short texts: family, ws, aux, head, details."""
    if net.family == "mlp":
        family, shape = "mlp", f"hidden {'-'.join(map(str, net.hidden))}"
    elif net.family == "cnn2ch" or net.tower == "conv":
        family = net.family if net.family == "cnn2ch" else "siamese conv"
        family += " predicting the digits" if net.predict_digits else ""
        shape = f"conv {'-'.join(map(str, net.conv_channels))} k{net.kernel_size} fc {net.fc_width}"
    else:
        family, shape = "siamese fc", f"hidden {'-'.join(map(str, net.hidden))}"
    siamese = net.family == "siamese"
    if train.aux_loss == "none":
        aux = "no"
    else:
        weight = {"alpha": f" α={train.alpha:.3g}", "ratio": f" ratio={train.ratio:.3g}"}.get(train.aux_loss, "")
        aux = f"{train.aux_loss}{weight}"
    details = [shape, net.activation]
    details += [("BN after the activation" if net.batch_norm_at == "activation" else "BN")] if net.batch_norm else []
    details += [f"dropout {net.dropout:.2g}"] if net.dropout else []
    schedule = {
        "cosine": " cosine",
        "geometric": f" lr ×{train.decay_to:.2g} over the run",
        "exponential": f" γ {train.gamma:.3g}" if train.gamma != 1 else "",
    }[train.schedule]
    details.append(f"{train.optimizer} lr {train.lr:.3g}{schedule}")
    details += [f"wd {train.weight_decay:.2g}"] if train.weight_decay else []
    details.append(f"bs {train.batch_size}, {train.epochs} ep")
    details += [f"shift ±{train.shift}"] if train.shift else []
    details += [f"rotate ±{train.rotate:.3g}°"] if train.rotate else []
    details += [f"zoom ±{train.scale:.2g}"] if train.scale else []
    details += ["test-time shifts"] if train.tta == "shift" else []
    details += [f"staged {train.staged_epochs} ep"] if train.staged_epochs else []
    return {
        "family": family,
        "ws": ("yes" if net.weight_sharing else "no") if siamese else "-",
        "aux": aux,
        "head": (net.head + (f" {net.head_hidden}" if net.head == "mlp" else ""))
        if net.has_digit_outputs or siamese
        else "-",
        "details": ", ".join(details),
    }


def describe(net: NetConfig, train: TrainConfig) -> str:
    """One line: family, weight sharing, auxiliary loss, head and the other key settings."""
    f = describe_fields(net, train)
    return f"{f['family']}, WS {f['ws']}, aux {f['aux']}, head {f['head']}, {f['details']}"


@dataclass(frozen=True)
class TextTable:
    """A table of already formatted cells, for Markdown (the report) or rich (the CLI)."""

    title: str
    headers: tuple[str, ...]
    rows: list[tuple[str, ...]]
    notes: list[str] = field(default_factory=list)

    def markdown(self) -> str:
        def line(cells: Sequence[str]) -> str:
            return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

        parts = [f"**{self.title}**", "", line(self.headers), line(["---"] * len(self.headers))]
        parts += [line(row) for row in self.rows]
        parts += [""] + [f"_{note}_" for note in self.notes] if self.notes else []
        return "\n".join(parts)


def percent(value: float | None, digits: int = 2) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{100 * value:.{digits}f}"
