"""The evaluations store: one row per configuration trained and scored on one draw, in the study's
database. `schema` defines the table, `migrations` brings a database to it, `queries` reads and writes
it, `mapping` turns rows into results."""

from search.evaluation.store.mapping import draw_result, result_from_rows
from search.evaluation.store.queries import (
    database_url,
    delete_study,
    load_evaluations,
    open_evaluations,
    store_draws,
    stored_rows,
    stored_seeds,
)
from search.evaluation.store.schema import EvaluationRow

__all__ = [
    "EvaluationRow",
    "database_url",
    "delete_study",
    "draw_result",
    "load_evaluations",
    "open_evaluations",
    "result_from_rows",
    "store_draws",
    "stored_rows",
    "stored_seeds",
]
