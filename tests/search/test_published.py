import dataclasses

import sqlalchemy
import torch
from evaluation_helpers import N_PAIRS
from sqlalchemy import select

from models.presets import PRESETS
from search.evaluation import reproduce
from search.evaluation_store import EvaluationRow, load_evaluations, open_evaluations
from search.published import report_tables
from search.results import config_json, config_key

torch.set_num_threads(1)


def _table_presets(url: str) -> list[str]:
    (summary,) = load_evaluations(url)
    (table,) = report_tables(summary)
    return [row[1] for row in table.rows]


def test_a_preset_defined_otherwise_before_is_left_out_of_its_report(sqlite_url):
    reproduce(["seed002/mlp"], storage_url=sqlite_url, draws=2, epochs=1, n_pairs=N_PAIRS)
    reproduce(["seed002/mlp"], storage_url=sqlite_url, draws=2, epochs=1, n_pairs=N_PAIRS, changes={"lr": 0.05})
    preset = PRESETS["seed002/mlp"]
    # the rows the preset had when it was read otherwise (here: another width), still in the database
    old_net = dataclasses.replace(preset.net, hidden=(64,))
    old_train = dataclasses.replace(preset.train, epochs=1)
    # and a variant named for lr alone whose configuration differs in another field too
    odd_train = dataclasses.replace(preset.train, epochs=1, lr=0.05, batch_size=7)
    with open_evaluations(sqlite_url) as engine, engine.begin() as connection:
        (row,) = connection.execute(select(EvaluationRow).where(EvaluationRow.preset == "seed002/mlp").limit(1)).all()
        base = {c.name: getattr(row, c.name) for c in EvaluationRow.__table__.columns if c.name != "id"}
        for name, net, train in (
            ("seed002/mlp", old_net, old_train),
            ("seed002/mlp [lr=0.05]", preset.net, odd_train),
            # a variant whose change the preset has taken since: the preset's own configuration
            ("seed002/mlp [lr=0.01]", preset.net, old_train),
        ):
            connection.execute(
                sqlalchemy.insert(EvaluationRow).values(
                    **{
                        **base,
                        "preset": name,
                        "config_key": config_key(net, train),
                        "config_json": config_json(net, train),
                    }
                )
            )
    assert preset.train.lr == 0.01 and len(load_evaluations(sqlite_url)[0].configurations) == 5

    assert _table_presets(sqlite_url) == ["seed002/mlp", "seed002/mlp [lr=0.05]"]
    (summary,) = load_evaluations(sqlite_url)
    (table,) = report_tables(summary)
    assert [row[6] for row in table.rows] == ["2", "2"]  # the current rows, with both their draws
