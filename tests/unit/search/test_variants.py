"""search.variants: the one grammar of a variant's name, `preset [field=value, ...]`, written and read back."""

from __future__ import annotations

import pytest

from models.errors import ConfigError
from search import variants


@pytest.mark.parametrize(
    ("changes", "name"),
    [
        ({}, "seed003/sgd"),
        ({"momentum": 0.9}, "seed003/sgd [momentum=0.9]"),
        ({"head": "prob", "lr": 0.05}, "seed003/sgd [head=prob, lr=0.05]"),
        ({"conv_channels": [16, 32], "pool_after": []}, "seed003/sgd [conv_channels=16-32, pool_after=[]]"),
    ],
)
def test_a_name_is_written_and_read_back(changes, name):
    assert variants.format("seed003/sgd", changes) == name
    base, written = variants.parse(name)
    assert base == "seed003/sgd" and list(written) == list(changes)
    assert variants.format(base, written) == name  # the texts read back write the same name
    assert variants.base_name(name) == "seed003/sgd" and variants.varied_fields(name) == set(changes)


def test_a_preset_name_with_spaces_is_read_whole():
    assert variants.parse("Deep AL+WS [epochs=25]") == ("Deep AL+WS", {"epochs": "25"})
    assert variants.parse("Deep AL+WS") == ("Deep AL+WS", {})


def test_a_name_longer_than_the_table_stores_is_refused():
    with pytest.raises(ConfigError, match=f"longer than {variants.MAX_NAME} characters; vary fewer fields"):
        variants.format("seed003/sgd", {f"field_{k}": 0.5 for k in range(20)})


def test_variants_sort_after_their_preset_in_numeric_order():
    names = ["seed003/sgd [gamma=0.93]", "seed003/sgd [gamma=0.9]", "seed003/sgd"]
    assert sorted(names, key=variants.order_key) == [
        "seed003/sgd",
        "seed003/sgd [gamma=0.9]",
        "seed003/sgd [gamma=0.93]",
    ]
