"""One base error for the service: the library raises it, the CLI prints it as one line."""

from __future__ import annotations


class SearchError(Exception):
    """Base of every error `search` raises on purpose; its message is what the user reads."""


class DefinitionError(SearchError):
    """A study definition file that is missing, malformed or asks for something unknown."""


class StorageError(SearchError):
    """A storage URL that is malformed, unreachable, unwritable or holds an incompatible study."""


class StorageOutage(StorageError):
    """The database stayed unreachable for longer than the run rides out (`--max-outage`)."""


class EvaluationError(SearchError):
    """An evaluation that cannot run: no completed trial, unknown preset, bad draw count."""
