"""The product's one error root, and the errors the learning core raises for bad input.

`DigitPairError` is the root of every error the product raises on purpose, here and in search/
(search.errors.SearchError derives from it): whoever shows errors to a user catches this one class.
It lives in the lowest layer because models/ imports nothing of search/.
"""


class DigitPairError(Exception):
    """Root of every error models/ and search/ raise on purpose; its message is what the user reads."""


class ModelsError(DigitPairError):
    """Base of every error `models` raises on purpose (bad data files, bad configs): what a trial's own
    configuration or data causes, so that a search fails that trial alone and goes on."""


class ConfigError(ModelsError, ValueError):
    """A network or training configuration that cannot be built or trained."""


class DataError(ModelsError):
    """A data source that cannot be read: missing file, bad IDX header, too few digits."""
