"""Claims on units of work (search.evaluation.claims), on a real SQLite file and the real PostgreSQL."""

from __future__ import annotations

import datetime
import socket
import subprocess
import sys
import time

import pytest
import sqlalchemy
from sqlalchemy import select

from search.evaluation.claims import MAX_HOLDERS, ClaimRow, Claims
from search.evaluation.store import open_evaluations


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def engine(request, sqlite_url):
    url = sqlite_url if request.param == "sqlite" else request.getfixturevalue("pg_url")
    with open_evaluations(url) as engine:
        yield engine


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_a_unit_is_held_by_one_process_until_it_is_released(engine):
    first, second = Claims(engine), Claims(engine)
    assert first.take(["a", "b"]) == ["a", "b"]
    assert second.take(["a", "b", "c"]) == ["c"]  # a and b are held under a live lease
    first.release(["a"])
    assert second.take(["a", "b"]) == ["a"]
    assert first.held == {"b"} and second.held == {"a", "c"}


def test_a_unit_finished_and_released_since_the_last_read_is_let_go_not_trained_twice(engine):
    looker, finisher = Claims(engine), Claims(engine)
    stored: set[str] = set()
    # The looker read "a" and "b" as missing; the finisher then claimed "a", stored it and let it go.
    assert finisher.take(["a"]) == ["a"]
    stored.add("a")
    finisher.release(["a"])

    def still_to_do(taken):  # what the database says after the claim
        return [key for key in taken if key not in stored]

    assert looker.take(["a", "b"], still_to_do=still_to_do) == ["b"]
    assert looker.held == {"b"}
    assert finisher.take(["a"]) == ["a"]  # the looker's claim on "a" is gone, not left to block anyone


def test_a_claim_whose_lease_ran_out_is_taken_over_once(engine):
    dying = Claims(engine, lease=0.5)  # never entered: no heartbeat renews its lease, as for a killed process
    assert dying.take(["unit"]) == ["unit"]
    other = Claims(engine)
    assert other.take(["unit"]) == []
    time.sleep(0.7)
    assert other.take(["unit"]) == ["unit"]  # the first holder's lease ran out: retried by the second
    with engine.connect() as connection:
        row = connection.execute(select(ClaimRow).where(ClaimRow.key == "unit")).one()
    assert row.holders == 2 and row.holder == other.holder


def test_a_unit_whose_holders_died_twice_is_reported_lost_not_taken_a_third_time(engine):
    dead = f"{socket.gethostname()}|{_dead_pid()}|x"  # on this host, its PID gone
    taker = Claims(engine)
    hour = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1)  # a lease far from over
    with engine.begin() as connection:
        connection.execute(sqlalchemy.insert(ClaimRow).values(key="unit", holder=dead, lease_until=hour, holders=1))
    assert taker.take(["unit"]) == ["unit"]  # a dead PID on this host: taken at once, lease or not
    with engine.begin() as connection:  # ... and its second holder dies too
        connection.execute(sqlalchemy.update(ClaimRow).where(ClaimRow.key == "unit").values(holder=dead))
    third = Claims(engine)
    assert third.take(["unit"]) == [] and third.lost(["unit", "other"]) == ["unit"]
    assert MAX_HOLDERS == 2


def test_the_heartbeat_keeps_a_claim_alive_and_the_exit_releases_it(engine):
    # A lease long enough that a loaded machine still renews it in time (every third of it): at 0.6 s, a
    # renewal delayed past the lease under the full suite's load once let the claim go.
    with Claims(engine, lease=1.5) as holder:
        assert holder.take(["unit"]) == ["unit"]
        time.sleep(3.0)  # two leases: alive only because the heartbeat renewed it
        assert Claims(engine).take(["unit"]) == []
    assert Claims(engine).take(["unit"]) == ["unit"]  # released on the way out
