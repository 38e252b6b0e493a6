"""The name of a preset's variant, `name [field=value, ...]`: written by `reproduce --vary`, stored in the
evaluations table, and read back by the reproduction tables to put each variant under its preset.

A preset trained with some of its fields changed keeps the preset's name and says what it changed in
brackets, e.g. 'seed003/sgd [momentum=0.9, lr=0.05]'; a name without brackets is the preset itself.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from models.errors import ConfigError

__all__ = ["MAX_NAME", "base_name", "format", "order_key", "parse", "varied_fields"]

MAX_NAME = 128  # characters of a preset's (or a variant's) name, as the evaluations table stores it
_OPEN, _SEPARATOR, _CLOSE = " [", ", ", "]"


def format(name: str, changes: Mapping[str, Any]) -> str:
    """`name [field=value, ...]` in the order of `changes` (none: `name` itself). A float is written short
    (0.93), a sequence joined by '-' (16-32, '[]' when empty); a name longer than MAX_NAME is a ConfigError."""
    if not changes:
        return name
    variant = name + _OPEN + _SEPARATOR.join(f"{key}={_short(value)}" for key, value in changes.items()) + _CLOSE
    if len(variant) > MAX_NAME:
        raise ConfigError(
            f"The variant name {variant!r} is longer than {MAX_NAME} characters; vary fewer fields at once."
        )
    return variant


def parse(name: str) -> tuple[str, dict[str, str]]:
    """The preset and the changes a name holds, as written: 'seed003/sgd [head=prob, lr=0.05]' ->
    ('seed003/sgd', {'head': 'prob', 'lr': '0.05'}); a preset's own name has no changes."""
    base, _, changes = name.partition(_OPEN)
    pairs = (change.partition("=") for change in changes.removesuffix(_CLOSE).split(_SEPARATOR) if change)
    return base, {field: value for field, _, value in pairs}


def base_name(name: str) -> str:
    """The preset a variant's name comes from: 'seed003/sgd [momentum=0.9]' -> 'seed003/sgd'."""
    return parse(name)[0]


def varied_fields(name: str) -> set[str]:
    """The fields a variant's name says it changed: 'seed003/sgd [head=prob, lr=0.05]' -> {'head', 'lr'}."""
    return set(parse(name)[1])


def order_key(name: str) -> tuple[bool, tuple[str | float, ...]]:
    """A sort key: the preset first, then its variants with their values in numeric order (gamma 0.9 before 0.93)."""
    parts = re.split(r"(\d+(?:\.\d+)?)", name)  # text at even places, numbers at odd ones
    return name != base_name(name), tuple(float(p) if i % 2 else p for i, p in enumerate(parts))


def _short(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return "-".join(map(str, value)) if value else "[]"  # an empty one, e.g. no pooling: not an empty name
    return f"{value:g}" if isinstance(value, float) else str(value)
