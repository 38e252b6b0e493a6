"""Errors the learning core raises for bad input; callers show them as one line."""


class ModelsError(Exception):
    """Base of every error `models` raises on purpose (bad data files, bad configs)."""


class ConfigError(ModelsError, ValueError):
    """A network or training configuration that cannot be built or trained."""


class DataError(ModelsError):
    """A data source that cannot be read: missing file, bad IDX header, too few digits."""
