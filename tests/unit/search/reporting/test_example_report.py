"""docs/example-report is what `search report` writes today from the example database beside it: a
report whose tables or sections change fails here until the example is regenerated."""

from __future__ import annotations

import shutil
from pathlib import Path

from search.reporting.report import write_report

EXAMPLE = Path(__file__).parents[4] / "docs" / "example-report"
REGENERATE = (
    "cp docs/example-report/search.db /tmp/example-report.db && search report --study siamese "
    "--storage sqlite:////tmp/example-report.db --out docs/example-report"
)


def _without_date(text: str) -> list[str]:
    return [line for line in text.splitlines() if not line.startswith("Written ")]


def test_the_example_report_is_current(tmp_path):
    database = tmp_path / "example-report.db"
    shutil.copyfile(EXAMPLE / "search.db", database)  # the report may migrate what it opens: never the shipped file

    path = write_report("siamese", storage_url=f"sqlite:///{database}", out_dir=tmp_path / "out")

    written, shipped = path.read_text(), (EXAMPLE / "report.md").read_text()
    assert _without_date(written) == _without_date(shipped), f"regenerate it: {REGENERATE}"
    assert "Written " in written and "Published models" not in written  # a user's study: no presets unless asked
    assert sorted(p.name for p in path.parent.glob("*.png")) == sorted(p.name for p in EXAMPLE.glob("*.png"))


def test_the_docs_give_the_command_that_regenerates_it():
    assert REGENERATE in (EXAMPLE.parent / "results.md").read_text().replace("\n", " ")
