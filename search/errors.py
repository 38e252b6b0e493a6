"""The service's errors: the library raises them, the CLI prints them as one line.

Their root, `DigitPairError`, is also the root of the errors models/ raises (models.errors), so that
the CLI and a worker catch one class for both.
"""

from __future__ import annotations

from models.errors import DigitPairError

__all__ = [
    "DefinitionError",
    "DigitPairError",
    "EvaluationError",
    "SearchError",
    "StorageError",
    "StorageMissing",
    "StorageOutage",
    "check_at_least",
    "one_line",
]


class SearchError(DigitPairError):
    """Base of every error `search` raises on purpose; its message is what the user reads."""


class DefinitionError(SearchError):
    """A study definition file that is missing, malformed or asks for something unknown."""


class StorageError(SearchError):
    """A storage URL that is malformed, unreachable, unwritable or holds an incompatible study."""


class StorageMissing(StorageError):
    """A SQLite storage to read that does not exist yet: nothing was run there."""


class StorageOutage(StorageError):
    """The database stayed unreachable for longer than the run rides out (`--max-outage`)."""


class EvaluationError(SearchError):
    """An evaluation that cannot run: no completed trial, unknown preset, bad draw count."""


def one_line(error: BaseException) -> str:
    """An error's message as the one line the CLI prints (whitespace and line breaks collapsed)."""
    return " ".join(str(error).split()) or type(error).__name__


def check_at_least(
    name: str,
    value: int | None,
    minimum: int = 1,
    *,
    error: type[SearchError] = SearchError,
    why: str = "",
    hint: str = "",
) -> None:
    """The one count check: `value` (None: not given, fine) must be at least `minimum`, else `error` with the rule,
    the value and the fix, e.g. "--workers must be at least 1, but got 0."."""
    if value is not None and value < minimum:
        raise error(f"{name} must be at least {minimum}{why}, but got {value}{hint}.")
