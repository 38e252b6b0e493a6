"""docker-compose.yml and the Dockerfile, checked without a Docker engine (none runs here).

The compose file is parsed with PyYAML; every `search ...` command in it goes through the CLI's own
parser (typer/click) and the installed `search` executable's --help, so a renamed flag breaks this test.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

import pytest
import yaml
from packaging.specifiers import SpecifierSet
from packaging.version import Version
from processes import SEARCH, cli_rejection

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
DATABASE_SERVICES = ("worker", "dashboard", "evaluate")


def _interpolate(value: str) -> str:
    """Compose's ${VAR:-default} with the defaults, as `docker compose` sees it with nothing set."""
    return re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", value)


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


@pytest.fixture(scope="module")
def services(compose: dict) -> dict:
    return compose["services"]


def _argv(service: dict) -> list[str]:
    command = service["command"]
    assert isinstance(command, list), "write commands as lists: no shell, no word-splitting surprises"
    return [_interpolate(str(part)) for part in command]


def test_services(services: dict) -> None:
    assert set(services) == {"postgres", "worker", "dashboard", "evaluate"}


def test_postgres_has_named_volume_and_health_check(compose: dict, services: dict) -> None:
    postgres = services["postgres"]
    tested = re.search(r"^PG_VERSION=(\d+)$", (ROOT / ".ci" / "run").read_text(), flags=re.M)
    assert tested is not None and postgres["image"] == f"postgres:{tested.group(1)}"  # the major CI tests against
    volume_names = [entry.split(":")[0] for entry in postgres["volumes"]]
    assert any(
        name in compose["volumes"] and entry.endswith(":/var/lib/postgresql/data")
        for name, entry in zip(volume_names, postgres["volumes"], strict=True)
    )
    health = postgres["healthcheck"]
    assert "pg_isready" in " ".join(health["test"])
    assert health["retries"] >= 3


@pytest.mark.parametrize("name", DATABASE_SERVICES)
def test_search_services_wait_for_a_healthy_database(services: dict, name: str) -> None:
    assert services[name]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    assert services[name]["image"] == services["worker"]["image"]


@pytest.mark.parametrize("name", DATABASE_SERVICES)
def test_search_services_share_the_postgres_database(services: dict, name: str) -> None:
    argv = _argv(services[name])
    storage = argv[argv.index("--storage") + 1]
    assert re.fullmatch(r"postgresql\+psycopg://search:[^@]+@postgres:5432/search", storage), storage
    postgres_env = services["postgres"]["environment"]
    assert storage.endswith(f"/{postgres_env['POSTGRES_DB']}")
    assert f"//{postgres_env['POSTGRES_USER']}:" in storage


def test_worker_scales(services: dict) -> None:
    """`docker compose up --scale worker=N` refuses a fixed container name or a published host port."""
    worker = services["worker"]
    assert "container_name" not in worker
    assert "ports" not in worker
    assert _argv(worker)[:2] == ["search", "run"]


def test_dashboard_published_on_8080(services: dict) -> None:
    dashboard = services["dashboard"]
    argv = _argv(dashboard)
    assert argv[:2] == ["search", "dashboard"]
    assert argv[argv.index("--host") + 1] == "0.0.0.0"  # inside the container; the host side stays on loopback
    assert any(str(mapping).endswith("8080:8080") for mapping in dashboard["ports"])


def test_evaluate_is_a_one_shot_profile(services: dict) -> None:
    evaluate = services["evaluate"]
    assert evaluate["profiles"] == ["evaluate"]
    assert _argv(evaluate)[:2] == ["search", "evaluate-best"]
    assert "restart" not in evaluate


@pytest.mark.parametrize("name", DATABASE_SERVICES)
def test_commands_parse_with_the_cli(services: dict, name: str) -> None:
    """The CLI's own parser (typer's click) accepts each command's flags and values (types, required options)."""
    argv = _argv(services[name])
    rejection = cli_rejection(argv)
    assert rejection is None, f"{name}: {rejection}"


@pytest.mark.parametrize("name", DATABASE_SERVICES)
def test_command_flags_appear_in_installed_help(services: dict, name: str) -> None:
    argv = _argv(services[name])
    result = subprocess.run(
        [SEARCH, argv[1], "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "200", "TERM": "dumb", "NO_COLOR": "1"},
    )
    assert result.returncode == 0, result.stderr
    for flag in (part for part in argv[2:] if part.startswith("--")):
        assert re.search(rf"{re.escape(flag)}\b", result.stdout), f"{flag} not in `search {argv[1]} --help`"


def test_compose_config_is_valid() -> None:
    docker_compose = shutil.which("docker-compose")
    if docker_compose is None:
        if os.environ.get("CI") == "true":
            pytest.fail("docker-compose is missing; .ci/run installs it")
        pytest.skip("docker-compose is not installed (apt-get install docker-compose)")
    result = subprocess.run(
        [docker_compose, "-f", str(COMPOSE), "config", "-q"], capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert result.returncode == 0, result.stderr


def test_dockerfile_installs_cpu_torch_before_the_project() -> None:
    """The image's Python and torch are ones the project supports, and its torch is the one setup.sh installs."""
    project_meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lines = [line.strip() for line in (ROOT / "Dockerfile").read_text().splitlines()]
    base = re.fullmatch(r"FROM python:(\d+\.\d+)-slim", next(line for line in lines if line.startswith("FROM")))
    assert base is not None and Version(base.group(1)) in SpecifierSet(project_meta["requires-python"])
    torch = next(i for i, line in enumerate(lines) if re.search(r"\btorch==", line))
    pinned = re.search(r"\btorch==(\S+)", lines[torch]).group(1)
    assert f"torch=={pinned}" in (ROOT / "setup.sh").read_text()  # the tests run the image's torch
    wanted = next(spec for spec in project_meta["dependencies"] if re.match(r"torch\b", spec))
    assert Version(pinned) in SpecifierSet(wanted.removeprefix("torch"))
    assert "--index-url https://download.pytorch.org/whl/cpu" in lines[torch]
    project = next(i for i, line in enumerate(lines) if re.match(r"RUN pip install (\S+ )*\.", line))
    assert torch < project
    assert any(line.startswith("USER ") and not line.endswith("root") for line in lines)


def test_dockerignore_keeps_local_state_out_of_the_image() -> None:
    ignored = set((ROOT / ".dockerignore").read_text().split())
    assert {".venv", ".git", "*.db"} <= ignored
