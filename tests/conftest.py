"""Shared test helpers: tests write the real IDX files they read (no mocks, no downloads)."""

from __future__ import annotations

import gzip
import os
import struct
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from browser import headless_chromium
from processes import SEARCH
from server_lock import postgresql_test

E2E = Path(__file__).parent / "e2e"


def _uses_postgresql(item: pytest.Item) -> bool:
    return item.get_closest_marker("postgres") is not None or "pg_url" in getattr(item, "fixturenames", ())


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook, which reads the xdist_group marks for --dist loadgroup
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Everything under tests/e2e/ starts processes (the CLI, servers, chaos, compose, a browser): marked
    `e2e`, so that `pytest -m "not e2e"` is the developer's loop. A unit test that must start one is
    marked by hand. Every PostgreSQL test goes to one xdist group, so that `pytest -n 2 --dist loadgroup`
    runs them all in one process and the other process never waits on the server lock."""
    for item in items:
        if E2E in Path(item.fspath).parents:
            item.add_marker(pytest.mark.e2e)
        if _uses_postgresql(item):
            item.add_marker(pytest.mark.xdist_group("postgresql"))


@pytest.fixture(autouse=True)
def _postgresql_server_lock(request: pytest.FixtureRequest) -> Iterator[None]:
    """Taken before any other fixture of the test (autouse), so no database is made while the server is
    down (tests/server_lock.py)."""
    if not _uses_postgresql(request.node):
        yield
        return
    with postgresql_test(chaos="pg_cluster" in request.fixturenames):
        yield


def _write_idx(path: Path, array: np.ndarray, *, code: int = 0x08) -> Path:
    """Write `array` as an IDX file (magic 00 00 code ndim, big-endian int32 sizes, bytes); gzip when named .gz."""
    array = np.asarray(array, dtype=np.uint8)
    raw = struct.pack(">BBBB", 0, 0, code, array.ndim) + struct.pack(f">{array.ndim}i", *array.shape) + array.tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(raw) if path.suffix == ".gz" else raw)
    return path


@pytest.fixture(scope="session", autouse=True)
def _speed_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Tests (and the `search` processes they start) never read or write the user's cache of measured
    compute settings (models/training/speed.py): the session measures once, into a cache of its own."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))
        yield


@pytest.fixture
def write_idx() -> Callable[..., Path]:
    """write_idx(path, array, *, code=0x08) -> path."""
    return _write_idx


# --- Storages and the installed `search` executable (search/ tests) --------------------------------

PG_ENV = "SEARCH_TEST_PG_URL"  # postgresql+psycopg://search:search@127.0.0.1:5432/search_test (.ci/run)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A SQLite storage URL for a fresh file in the test's temp dir."""
    return f"sqlite:///{tmp_path / 'search.db'}"


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A PostgreSQL URL for a database of this test alone, created on SEARCH_TEST_PG_URL's server and dropped after.

    Without SEARCH_TEST_PG_URL the test skips, except under CI=true where it fails: CI must test PostgreSQL.
    """
    base = os.environ.get(PG_ENV)
    if not base:
        message = f"{PG_ENV} is not set (e.g. postgresql+psycopg://search:search@127.0.0.1:5432/search_test)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{message}; CI must run the PostgreSQL tests.")
        pytest.skip(message)
    import sqlalchemy

    name = f"search_t_{uuid.uuid4().hex[:12]}"
    admin = sqlalchemy.create_engine(base, isolation_level="AUTOCOMMIT", poolclass=sqlalchemy.pool.NullPool)
    with admin.connect() as connection:
        connection.execute(sqlalchemy.text(f'CREATE DATABASE "{name}"'))
    try:
        yield sqlalchemy.engine.make_url(base).set(database=name).render_as_string(hide_password=False)
    finally:
        for attempt in range(10):  # FORCE cannot end an autovacuum worker (the server's own role): it ends soon
            try:
                with admin.connect() as connection:
                    connection.execute(sqlalchemy.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                break
            except sqlalchemy.exc.ProgrammingError:
                if attempt == 9:
                    raise
                time.sleep(0.5)
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def storage_url(request: pytest.FixtureRequest) -> str:
    """Each storage backend in turn: a fresh SQLite file, then a fresh PostgreSQL database."""
    return request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url")


@pytest.fixture
def run_search(tmp_path: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """run_search(*args, timeout=120, env=None) runs the installed `search` executable in tmp_path."""
    executable = Path(SEARCH)
    assert executable.exists(), f"{executable} missing: run `pip install -e '.[dev]'`"

    def run(*args: str, timeout: float = 120, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        full_env = {k: v for k, v in os.environ.items() if k != "SEARCH_STORAGE"} | {"COLUMNS": "200"} | (env or {})
        return subprocess.run(
            [str(executable), *args], cwd=tmp_path, env=full_env, capture_output=True, text=True, timeout=timeout
        )

    return run


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[object]:
    """Headless Chromium (selenium), its profile in the test's temp dir."""
    yield from headless_chromium(tmp_path / "chromium-profile")
