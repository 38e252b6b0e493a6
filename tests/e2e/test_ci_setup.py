""".ci/run: valid bash, strict mode, and the same test command as the README."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CI_RUN = ROOT / ".ci" / "run"


def _ci_test_command() -> str:
    match = re.search(r'^TEST_COMMAND="([^"]+)"$', CI_RUN.read_text(), flags=re.MULTILINE)
    assert match, '.ci/run must set TEST_COMMAND="..." on one line'
    return match.group(1)


def test_ci_run_is_strict_executable_bash() -> None:
    text = CI_RUN.read_text()
    assert text.startswith("#!/usr/bin/env bash\n")
    assert "\nset -euo pipefail\n" in text
    assert os.access(CI_RUN, os.X_OK)
    result = subprocess.run(["bash", "-n", str(CI_RUN)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_readme_gives_the_ci_test_command() -> None:
    command = _ci_test_command()
    readme = ROOT / "README.md"
    assert readme.is_file(), f"README.md is missing; it must give the test command `{command}`"
    assert command in readme.read_text(), (
        f"README.md must give the test command `{command}` word for word, as .ci/run runs it"
    )


def test_ci_lints_and_checks_the_format_before_it_tests_and_the_tree_is_clean() -> None:
    text = CI_RUN.read_text()
    match = re.search(r'^LINT_COMMAND="([^"]+)"$', text, flags=re.MULTILINE)
    assert match, '.ci/run must set LINT_COMMAND="..." on one line'
    assert match.group(1).split()[:2] == [".venv/bin/ruff", "check"]
    assert text.index('"${lint_argv[@]}"') < text.index('"${test_argv[@]}"')
    result = subprocess.run(match.group(1).split(), cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    match = re.search(r'^FORMAT_COMMAND="([^"]+)"', text, flags=re.MULTILINE)
    assert match, '.ci/run must set FORMAT_COMMAND="..." on one line'
    assert match.group(1).split() == [".venv/bin/ruff", "format", "--check", "."]
    assert text.index('"${format_argv[@]}"') < text.index('"${test_argv[@]}"')
    result = subprocess.run(match.group(1).split(), cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr  # run `ruff format .`


def test_the_ci_command_runs_every_postgresql_test_in_one_process() -> None:
    """The CI command's `--dist loadgroup` sends the xdist group the conftest gives every PostgreSQL test to
    one process, so the other never waits on the server lock. pytest 9.2 broke that grouping silently
    (pytest-xdist #1386): the tests still pass, only slower; this test notices."""
    argv = _ci_test_command().split()
    assert argv[:3] == [".venv/bin/python", "-m", "pytest"] and "loadgroup" in argv
    target = "tests/unit/search/evaluation/test_claims.py"
    result = subprocess.run(
        [
            sys.executable,
            *(a for a in argv[1:] if a != "-q"),
            "-v",
            "-p",
            "no:cacheprovider",
            target,
            "-k",
            "heartbeat or died",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    ran = re.findall(r"^\[(gw\d+)\] .* (\S+::\S+)\s*$", result.stdout, flags=re.MULTILINE)
    postgresql = [(worker, node) for worker, node in ran if "[postgresql]" in node]
    assert len(postgresql) == 2 and all(node.endswith("@postgresql") for _, node in postgresql), result.stdout
    assert len({worker for worker, _ in postgresql}) == 1, result.stdout
