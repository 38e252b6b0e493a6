"""One root for every error the product raises on purpose: the CLI and a worker catch DigitPairError alone."""

from __future__ import annotations

import inspect

import pytest
import typer

import models.errors
import search.errors
from models.errors import ConfigError, DataError, DigitPairError, ModelsError
from search.cli.common import user_errors
from search.errors import DefinitionError, SearchError, StorageOutage


def _error_classes(module) -> list[type[Exception]]:
    return [
        value
        for value in vars(module).values()
        if inspect.isclass(value) and issubclass(value, Exception) and value.__module__ == module.__name__
    ]


def test_every_error_of_search_and_models_has_the_one_root():
    classes = _error_classes(search.errors) + _error_classes(models.errors)
    assert {SearchError, StorageOutage, ModelsError, ConfigError, DataError} <= set(classes)
    assert [cls.__name__ for cls in classes if not issubclass(cls, DigitPairError)] == []
    assert search.errors.DigitPairError is DigitPairError  # the search layer names the same root


def test_a_search_error_is_not_a_models_error():
    """A ModelsError fails the trial alone; a SearchError (a bad definition, a storage outage) stops the worker."""
    assert not issubclass(SearchError, ModelsError) and not issubclass(ModelsError, SearchError)


@pytest.mark.parametrize("error", [DefinitionError("bad\n  definition"), DataError("bad\n  data")])
def test_the_cli_prints_either_layers_error_as_one_line(error, capsys):
    with pytest.raises(typer.Exit) as exit_info, user_errors():
        raise error
    assert exit_info.value.exit_code == 1
    assert " ".join(str(error).split()) in capsys.readouterr().err.replace("\n", " ")
