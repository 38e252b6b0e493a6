"""A Ctrl-C while a command starts is recorded, so that it is never lost.

Python raises KeyboardInterrupt wherever the main thread happens to be. Inside a weakref callback or
a `__del__` (importing torch runs many) the exception cannot propagate: Python prints "Exception
ignored in ..." and drops it, and the command would go on as if no Ctrl-C had come (it then ran all
its trials). The startup handler records every Ctrl-C besides raising it, a hook keeps the dropped
ones quiet, and `raise_if_interrupted` at the end of each startup stage raises a dropped one again.

Inside a class's `__set_name__` (importing scikit-learn creates such classes) Python 3.11 turns the
KeyboardInterrupt into a RuntimeError caused by it; `is_interrupt` still reads that as the Ctrl-C.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Any

_received = threading.Event()
_began = (
    threading.Event()
)  # a command entered an interrupt block (search.cli.common.exit_on_interrupt), which says what a Ctrl-C left
_default_unraisable_hook = sys.unraisablehook


def record_interrupts() -> None:
    """Install the recording Ctrl-C handler (the main thread only: signal handlers live there)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, _record_and_raise)
        sys.unraisablehook = _quiet_when_recorded


def raise_if_interrupted() -> None:
    """Raise KeyboardInterrupt if a Ctrl-C came and was dropped where it landed."""
    if _received.is_set():
        raise KeyboardInterrupt


def interrupted() -> bool:
    """Whether a Ctrl-C has come while the recording handler was installed."""
    return _received.is_set()


def is_interrupt(error: BaseException) -> bool:
    """Whether `error` is a Ctrl-C: a KeyboardInterrupt, or (after a recorded Ctrl-C) an error that Python
    raised in its place, with the KeyboardInterrupt as its cause or context."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, KeyboardInterrupt):
            return current is error or _received.is_set()
        seen.add(id(current))
        current = current.__cause__ or (None if current.__suppress_context__ else current.__context__)
    return False


def mark_began() -> None:
    _began.set()


def unreported_before_work() -> bool:
    """A Ctrl-C came before the command entered any interrupt block, so no block said anything.

    Typer turns a KeyboardInterrupt in its own code (building the commands, parsing the arguments)
    into a silent exit 130; `search.__main__` says what it means instead.
    """
    return _received.is_set() and not _began.is_set()


def _record_and_raise(signum: int, frame: FrameType | None) -> None:
    _received.set()
    raise KeyboardInterrupt


def _quiet_when_recorded(unraisable: Any) -> None:
    if isinstance(unraisable.exc_value, KeyboardInterrupt) and _received.is_set():
        return  # recorded: raise_if_interrupted raises it again where it can propagate
    _default_unraisable_hook(unraisable)


@contextlib.contextmanager
def interrupts_deferred() -> Iterator[None]:
    """A Ctrl-C inside the block reaches this process's handler when the block ends, not where it lands.

    For starting worker processes: a KeyboardInterrupt inside `Process.start` (which waits for the fork
    server to fork) would leave a child that nobody joins, and that child fails with a traceback once
    the command has gone. (The main thread only: signal handlers live there.)
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    came: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: came.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if came:
            signal.raise_signal(signal.SIGINT)  # to the handler it was meant for
