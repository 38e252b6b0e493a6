"""search/run/speed.py (named apart from tests/models/test_speed.py: pytest needs distinct basenames here): what the compute
settings are measured on, and how `search speed` shows them."""

from __future__ import annotations

from models.training.speed import CANDIDATES, RECIPE_NET, RECIPE_TRAIN, SpeedChoice, this_machine
from search.run.speed import probe_configs, speed_table
from search.study.loader import load_definition


def test_the_probe_is_the_studys_first_starting_point() -> None:
    net, train = probe_configs(load_definition("siamese"))
    assert net == RECIPE_NET  # the siamese study starts from the recipe
    assert (train.batch_size, train.shift, train.optimizer, train.epochs) == (100, 1, "sgd", 20)


def test_without_a_starting_point_the_probe_is_the_recipe() -> None:
    assert load_definition("smoke").enqueue == ()
    assert probe_configs(load_definition("smoke")) == (RECIPE_NET, RECIPE_TRAIN)
    assert probe_configs(None) == (RECIPE_NET, RECIPE_TRAIN)


def test_the_table_gives_every_candidate_against_plain_and_marks_the_winner() -> None:
    choice = SpeedChoice(
        speed=CANDIDATES[1],
        us_per_pair_step={"plain": 640.0, "channels_last": 400.0, "bf16": 4000.0, "channels_last+bf16": 3200.0},
        threads=1,
        probe="siamese 32x64 batch 100",
        machine=this_machine(),
        clock="cpu",
        load=3.5,
        cached=True,
    )
    table = speed_table(choice)
    assert table.title == "compute settings, 1 thread(s): channels_last"
    assert table.rows == [
        ("plain", "640", "1.00x", ""),
        ("channels_last", "400", "1.60x", "winner"),
        ("bf16", "4,000", "0.16x", ""),
        ("channels_last+bf16", "3,200", "0.20x", ""),
    ]
    assert "timed in CPU time, load average 3.5 then; read from the cache" in table.notes[0]
