"""The plain data of a study definition: `ParamSpec` and `StudyDefinition`, and the stored form a study keeps.

A leaf: it imports nothing of the service's, so the builders (sampling, space) and the loader
(definitions) can all stand above it. `prepare_study` stores the resolved definition as the study's
user attr DEFINITION_ATTR (`to_stored`); every later command reads it back from the study alone
(`stored_definition`), never from the file in studies/ that has the same name.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["DEFINITION_ATTR", "ParamSpec", "StudyDefinition", "display_path", "stored_definition"]

DEFINITION_ATTR = "definition"  # study user attr: the resolved definition the study was created from (JSON)
_STORED_VERSION = 1


@dataclass(frozen=True)
class ParamSpec:
    """One searched parameter: its Optuna name, the field it sets, its range and its condition."""

    name: str  # the Optuna parameter name (a key of trial.params)
    field: str  # the NetConfig/TrainConfig field or derived parameter (space.DERIVED) it sets
    type: str  # float | int | categorical
    low: float | int | None = None  # float/int: inclusive bounds
    high: float | int | None = None
    log: bool = False  # float/int: sample on a log scale
    step: float | int | None = None  # float/int: spacing of the values (int: 1 unless given)
    choices: tuple[Any, ...] = ()  # categorical: the values
    when: tuple[tuple[str, tuple[Any, ...]], ...] = ()  # (param name, allowed values): all must hold

    def is_active(self, values: Mapping[str, Any]) -> bool:
        """Whether this parameter is suggested, given the values of the parameters suggested before it."""
        return all(name in values and values[name] in allowed for name, allowed in self.when)


@dataclass(frozen=True)
class StudyDefinition:
    """A validated study file. `params` lists the [[cells]] parameters first, then [params] in file order."""

    name: str
    path: Path
    description: str
    n_folds: int
    epochs: int
    n_pairs: int
    data_seed: int
    seed: int
    directions: tuple[str, ...]
    sampler: str
    sampler_options: dict[str, Any]
    pruner: str
    pruner_options: dict[str, Any]
    params: tuple[ParamSpec, ...]
    fixed: dict[str, Any]  # field or derived parameter -> value (lists as tuples)
    cells: tuple[dict[str, Any], ...] = ()  # each: cell parameter -> value
    enqueue: tuple[dict[str, Any], ...] = ()  # starting points run first: param name -> value (others sampled)
    evaluate_epochs: int | None = None  # `search evaluate-best` trains this long unless --epochs; None: as searched
    screen_folds: int | None = None  # folds trained while the pruner may stop a trial, the rest only for a trial
    # that survives every rung; None: every fold from the first epoch
    scored_folds: int | None = None  # of the K folds, the first this many are trained and scored in the search
    # (each keeps the K-fold sizes); `evaluate-best` selects on all K. None: all K

    @property
    def search_folds(self) -> int:
        """How many of the K folds a trial trains: `scored_folds`, or all K."""
        return self.n_folds if self.scored_folds is None else self.scored_folds

    @property
    def source(self) -> str:
        """The file as error messages name it (relative to the working directory when inside it)."""
        return display_path(self.path)

    def fingerprint(self) -> str:
        """sha256 of what decides the value a trial gets: space, fixed, cells, directions, data and fidelity.

        Included: params (order-free), fixed, cells (in order: it assigns trials to cells),
        directions, n_pairs, data_seed, epochs, n_folds, and screen_folds and scored_folds when set. Trials scored with other epochs or folds
        measure something else, so `with_overrides` changes the fingerprint and a stored study whose
        fingerprint differs is not resumed: give a quick run its own study name. Left out: name and
        description (labels), seed (another seed adds samples of the same experiment), sampler,
        pruner and enqueue (how points are picked, not what a point scores; switching them on resume is
        fine), evaluate_epochs (what happens after the search).
        """
        content = {
            "version": 1,
            "params": sorted((dataclasses.asdict(p) for p in self.params), key=lambda p: p["name"]),
            "fixed": self.fixed,
            "cells": list(self.cells),
            "directions": list(self.directions),
            "n_pairs": self.n_pairs,
            "data_seed": self.data_seed,
            "epochs": self.epochs,
            "n_folds": self.n_folds,
        }
        if self.screen_folds is not None:  # what the pruner compares: one fold's accuracy, not the mean of all
            content["screen_folds"] = self.screen_folds
        if self.scored_folds is not None:  # a trial's value: the mean of these folds, not of all K
            content["scored_folds"] = self.scored_folds
        text = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
        return hashlib.sha256(text.encode()).hexdigest()

    def to_stored(self) -> dict[str, Any]:
        """The definition as JSON-ready data (tuples become lists), for the study's DEFINITION_ATTR."""
        return {"version": _STORED_VERSION, **dataclasses.asdict(self), "path": str(self.path)}

    @classmethod
    def from_stored(cls, data: Mapping[str, Any]) -> StudyDefinition:
        """The definition `to_stored` wrote: lists become tuples again (values of [fixed], cells and choices
        are scalars or tuples of ints, see space.coerce), so the copy equals the original and has its fingerprint."""
        fields = {f.name for f in dataclasses.fields(cls)}
        values = {key: value for key, value in data.items() if key in fields}
        params = tuple(
            ParamSpec(
                **{
                    **spec,
                    "choices": tuple(_tuples(c) for c in spec.get("choices", ())),
                    "when": tuple((name, tuple(allowed)) for name, allowed in spec.get("when", ())),
                }
            )
            for spec in values.pop("params", ())
        )
        return cls(
            **{
                **values,
                "path": Path(values["path"]),
                "directions": tuple(values["directions"]),
                "params": params,
                "fixed": {key: _tuples(value) for key, value in values["fixed"].items()},
                "cells": tuple({key: _tuples(v) for key, v in cell.items()} for cell in values.get("cells", ())),
                "enqueue": tuple(dict(point) for point in values.get("enqueue", ())),
            }
        )


def stored_definition(study_attrs: Mapping[str, Any]) -> StudyDefinition | None:
    """The definition a study was created from, read from its user attrs; None for a study created before
    studies stored their definition (or by something other than `search run`)."""
    data = study_attrs.get(DEFINITION_ATTR)
    return StudyDefinition.from_stored(data) if isinstance(data, Mapping) else None


def display_path(path: Path) -> str:
    """A file as messages name it: relative to the working directory when inside it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _tuples(value: Any) -> Any:
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value
