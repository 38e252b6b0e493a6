"""The defaults the commands show in their help, in a module that imports nothing heavy: the owners of
each rule (evaluation, selection, reproduction) read them from here, and so does the CLI, without
loading torch, scipy or Optuna to print `--help`."""

from __future__ import annotations

__all__ = ["DEFAULT_DRAWS", "DEFAULT_FINALISTS", "DEFAULT_PRESET_DRAWS", "DEFAULT_REPEATS", "MAX_DRAWS"]

MAX_DRAWS = 100  # more would take hours on a CPU; 10-25 is the usual range
DEFAULT_DRAWS = 25  # fresh draws per configuration evaluate-best trains
DEFAULT_PRESET_DRAWS = 10  # fresh draws per preset: its table's figures, a few minutes a row on a CPU
DEFAULT_FINALISTS = 10  # the selection stage's candidates: the best trials by search CV
DEFAULT_REPEATS = 3  # the selection stage's K-fold repeats per finalist, on fresh training draws
