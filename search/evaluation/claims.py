"""Claims on units of work in the study's database, so that processes on several machines share a stage.

`evaluate-best`, `reproduce` and the selection stage train units (a draw of a configuration, a finalist's
repeat) whose results land in the database. Before training a unit, a process claims it: one row in
`work_claims`, keyed by what the unit is, with the holder (host, PID) and a lease that a heartbeat thread
renews. Another process skips a unit claimed under a live lease and waits for its result instead. A holder
stores a unit's result before it releases the claim, so a process re-reads what is still to do after it claims:
a unit finished and released between its read and its claim is let go, not trained twice. A claim
whose holder died (its lease ran out, or its PID is gone on this host) is taken over, once: a unit whose
second holder died too is not tried a third time, and the stage says which units were lost.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import os
import secrets
import socket
import threading
from collections.abc import Callable, Collection, Sequence

import psutil
import sqlalchemy
import sqlalchemy.exc
from sqlalchemy import DateTime, String, delete, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = ["DEFAULT_LEASE", "MAX_HOLDERS", "ClaimRow", "Claims"]

logger = logging.getLogger(__name__)

DEFAULT_LEASE = 60.0  # seconds a claim stays valid without a renewal; renewed every third of it
MAX_HOLDERS = 2  # a unit is taken by at most this many holders in turn: retried once after its holder died


class _Base(DeclarativeBase):
    pass


class ClaimRow(_Base):
    """One unit of work held by one process."""

    __tablename__ = "work_claims"

    key: Mapped[str] = mapped_column(String(512), primary_key=True)  # what the unit is, e.g. "draw|study|..."
    holder: Mapped[str] = mapped_column(String(256))  # "host|pid|token" of the process that holds it
    lease_until: Mapped[datetime.datetime] = mapped_column(DateTime(timezone=True))  # UTC
    holders: Mapped[int]  # how many processes have taken it, the current one included


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def _aware(moment: datetime.datetime) -> datetime.datetime:
    """SQLite hands timestamps back without their zone; they were written in UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=datetime.timezone.utc)


class Claims:
    """This process's claims in one database. Use as a context manager: the heartbeat runs inside it and
    whatever is still held is released on the way out (a crash leaves the lease to run out instead)."""

    def __init__(self, engine: Engine, *, lease: float = DEFAULT_LEASE) -> None:
        self.engine = engine
        self.lease = lease
        self.holder = f"{socket.gethostname()}|{os.getpid()}|{secrets.token_hex(4)}"
        self.held: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        try:
            _Base.metadata.create_all(engine)
        except sqlalchemy.exc.DatabaseError:  # another process created it between the check and the CREATE
            _Base.metadata.create_all(engine)

    def __enter__(self) -> Claims:
        self._thread = threading.Thread(target=self._heartbeat, name="claims-heartbeat", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        with contextlib.suppress(sqlalchemy.exc.DBAPIError):
            self.release(list(self.held))

    def take(
        self, keys: Sequence[str], *, still_to_do: Callable[[Sequence[str]], Collection[str]] | None = None
    ) -> list[str]:
        """Claim each of `keys` that nobody alive holds; returns those taken, in order.

        `still_to_do`, given the keys just claimed, reads from the database which of them have no stored
        result yet: the others were finished by a process that released them after this one last looked,
        and their claims are let go at once."""
        taken = [key for key in keys if self._take_one(key)]
        with self._lock:
            self.held.update(taken)
        if taken and still_to_do is not None:
            to_do = set(still_to_do(taken))
            self.release([key for key in taken if key not in to_do])
            taken = [key for key in taken if key in to_do]
        return taken

    def _take_one(self, key: str) -> bool:
        until = _now() + datetime.timedelta(seconds=self.lease)
        try:
            with self.engine.begin() as connection:
                connection.execute(
                    sqlalchemy.insert(ClaimRow).values(key=key, holder=self.holder, lease_until=until, holders=1)
                )
            return True
        except sqlalchemy.exc.IntegrityError:
            pass
        with self.engine.begin() as connection:
            row = connection.execute(select(ClaimRow).where(ClaimRow.key == key)).first()
            if row is None or row.holder == self.holder or row.holders >= MAX_HOLDERS or not self._dead(row):
                return False
            # Taken over only if nobody changed it since it was read: the holder and lease still the dead ones.
            done = connection.execute(
                update(ClaimRow)
                .where(ClaimRow.key == key, ClaimRow.holder == row.holder, ClaimRow.holders == row.holders)
                .values(holder=self.holder, lease_until=until, holders=row.holders + 1)
            )
        if done.rowcount == 1:
            logger.warning("took over %s from %s, whose process is gone", key, row.holder)
        return done.rowcount == 1

    def _dead(self, row: ClaimRow) -> bool:
        """The holder is gone: its lease ran out, or it ran on this host and its PID no longer exists."""
        if _aware(row.lease_until) < _now():
            return True
        host, _, rest = row.holder.partition("|")
        pid = rest.partition("|")[0]
        return host == socket.gethostname() and pid.isdigit() and not psutil.pid_exists(int(pid))

    def lost(self, keys: Sequence[str]) -> list[str]:
        """The keys whose every allowed holder died: nobody will train them."""
        with self.engine.connect() as connection:
            rows = connection.execute(select(ClaimRow).where(ClaimRow.key.in_(list(keys)))).all()
        return [row.key for row in rows if row.holders >= MAX_HOLDERS and row.holder != self.holder and self._dead(row)]

    def release(self, keys: Sequence[str]) -> None:
        """Done (the results are stored) or given up: the claims go."""
        keys = [k for k in keys if k in self.held]
        if not keys:
            return
        with self.engine.begin() as connection:
            connection.execute(delete(ClaimRow).where(ClaimRow.key.in_(keys), ClaimRow.holder == self.holder))
        with self._lock:
            self.held.difference_update(keys)

    def _heartbeat(self) -> None:
        while not self._stop.wait(self.lease / 3):
            with self._lock:
                keys = list(self.held)
            if not keys:
                continue
            try:
                with self.engine.begin() as connection:
                    connection.execute(
                        update(ClaimRow)
                        .where(ClaimRow.key.in_(keys), ClaimRow.holder == self.holder)
                        .values(lease_until=_now() + datetime.timedelta(seconds=self.lease))
                    )
            except sqlalchemy.exc.DBAPIError as error:  # a database restart: the next beat tries again
                logger.warning("could not renew %d claim(s): %s", len(keys), error)
