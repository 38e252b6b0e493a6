"""README.md and docs/: every relative link resolves, the README stays a short guide, and the pages name
CPUs rather than machine letters, with no issue numbers and no paths outside the repository."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
README_MAX_LINES = 250
PAGES = [README, *sorted((ROOT / "docs").rglob("*.md"))]
# The pages we write; docs/example-report/ is `search report`'s own output, checked for links only.
WRITTEN = [README, *sorted((ROOT / "docs").glob("*.md"))]

FENCE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.MULTILINE | re.DOTALL)
CODE_SPAN = re.compile(r"`[^`\n]*`")
# [text](target) or [text](target "title"); the text may hold one level of brackets, "[96.1 % [95.6, 96.7]]".
LINK = re.compile(r"\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
EXTERNAL = re.compile(r"^(?:https?:|mailto:)", re.IGNORECASE)
HEADING = re.compile(r"^#{1,6}[ \t]+(.+?)[ \t#]*$", re.MULTILINE)

# What a page must not say: which machine a figure ran on goes by its CPU model, not a letter.
FORBIDDEN = {
    "a machine letter": re.compile(r"\b[Mm]achines? [A-E]′?(?![\w′])|\b[Oo]n [A-E]′?(?![\w′])"),
    "an issue number": re.compile(r"\bissues? #?\d+|(?<![\w&/])#\d+\b", re.IGNORECASE),
    "a path outside the repository": re.compile(r"\.\./shared"),
}


def _prose(text: str) -> str:
    """The page without code blocks and code spans, where a bracket is code, not a link."""
    return CODE_SPAN.sub("code", FENCE.sub("", text))


def _links(page: Path) -> list[str]:
    return [target for target in LINK.findall(_prose(page.read_text())) if not EXTERNAL.match(target)]


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).replace("`", "")
    return re.sub(r"[^\w\- ]", "", text.lower()).replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    seen: dict[str, int] = {}
    anchors = set()
    for heading in HEADING.findall(FENCE.sub("", page.read_text())):
        slug = _slug(heading)
        anchors.add(slug if slug not in seen else f"{slug}-{seen[slug]}")
        seen[slug] = seen.get(slug, 0) + 1
    return anchors


def test_the_pages_are_found() -> None:
    names = {page.relative_to(ROOT).as_posix() for page in PAGES}
    assert {"README.md", "docs/results.md", "docs/reproduction.md", "docs/performance.md"} <= names
    assert {"docs/architecture.md"} <= names


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.relative_to(ROOT).as_posix())
def test_every_relative_link_resolves(page: Path) -> None:
    missing = []
    for target in _links(page):
        path = target.split("#", 1)[0]
        if path and not (page.parent / path).exists():
            missing.append(target)
    assert missing == [], f"{page.relative_to(ROOT)}: links to missing files: {missing}"


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.relative_to(ROOT).as_posix())
def test_every_anchor_names_a_heading(page: Path) -> None:
    missing = []
    for target in _links(page):
        path, _, anchor = target.partition("#")
        linked = (page.parent / path) if path else page
        if anchor and linked.suffix == ".md" and linked.is_file() and anchor not in _anchors(linked):
            missing.append(target)
    assert missing == [], f"{page.relative_to(ROOT)}: anchors that name no heading: {missing}"


def test_the_link_pattern_reads_nested_brackets_and_skips_code_and_the_web(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "[96.1 % [95.6, 96.7]](docs/a.md#x) and [b](b.md) [web](https://example.org) [top](#top)\n"
        "`[not](code.md)`\n```\n[nor](block.md)\n```\n![plot](plot.png)\n"
    )
    assert _links(page) == ["docs/a.md#x", "b.md", "#top", "plot.png"]


def test_the_slug_is_githubs() -> None:
    assert _slug("`search reproduce`, timed") == "search-reproduce-timed"
    assert _slug("The gaps, explained by experiment") == "the-gaps-explained-by-experiment"
    assert _slug("Report 000") == "report-000"


def test_the_readme_is_a_short_guide() -> None:
    lines = len(README.read_text().splitlines())
    assert lines <= README_MAX_LINES, (
        f"README.md has {lines} lines, more than {README_MAX_LINES}: move measurements to docs/ and link them"
    )


@pytest.mark.parametrize("page", WRITTEN, ids=lambda page: page.relative_to(ROOT).as_posix())
def test_no_machine_letters_issue_numbers_or_outside_paths(page: Path) -> None:
    text = page.read_text()
    found = [
        f"{what}: {match.group(0)!r} (line {text.count(chr(10), 0, match.start()) + 1})"
        for what, pattern in FORBIDDEN.items()
        for match in pattern.finditer(text)
    ]
    assert found == [], f"{page.relative_to(ROOT)}: name the CPU model, not a letter, and no issue numbers: {found}"


@pytest.mark.parametrize(
    ("text", "what"),
    [
        ("on machine B, 2 cores", "a machine letter"),
        ("Machine D (AMX)", "a machine letter"),
        ("took 46.6 min on B, and", "a machine letter"),
        ("on A′ and", "a machine letter"),
        ("issue 13", "an issue number"),
        ("see #12", "an issue number"),
        ("../shared/seeds/003", "a path outside the repository"),
    ],
)
def test_the_forbidden_patterns_catch_what_they_name(text: str, what: str) -> None:
    assert FORBIDDEN[what].search(text)


def test_the_forbidden_patterns_leave_plain_text_alone() -> None:
    text = "on AMX, on a CPU, the machine's cores, Table II, report 003, [x](#report-003), on EPYC"
    assert [what for what, pattern in FORBIDDEN.items() if pattern.search(text)] == []
