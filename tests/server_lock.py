"""The PostgreSQL server is shared by the test processes (pytest -n 2). Every PostgreSQL test holds the
server lock shared; a chaos test, which restarts or stops the server while its own run goes on, holds it
alone for its whole length, so that no other test sees an outage it did not cause and the outage lands
where the chaos test means it to."""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

SERVER_LOCK = Path(tempfile.gettempdir()) / f"digit-pair-search-tests-{os.getuid()}-postgresql.lock"


@contextlib.contextmanager
def postgresql_test(*, chaos: bool) -> Iterator[None]:
    with SERVER_LOCK.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX if chaos else fcntl.LOCK_SH)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
