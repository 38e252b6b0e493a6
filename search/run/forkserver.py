"""The clean server process that every worker process of the product forks from.

A spawned process starts Python afresh and pays seconds of imports (torch, and torch._dynamo, which
torch imports on the first optimizer a process builds). The fork server imports them once per command;
each worker forked from it starts with them loaded. The server never opens a database connection or
a torch thread pool, so forking it is safe where forking the command's own process is not.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import multiprocessing.connection
import multiprocessing.forkserver
import multiprocessing.resource_tracker
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

__all__ = [
    "PRELOAD",
    "exit_with_parent",
    "process_context",
    "run_interruptibly",
    "start_helper_processes",
    "start_pool_worker",
]

# Imported once by the server: the search worker's modules (torch, optuna & co. with them) and what torch
# imports lazily on a process's first optimizer (1.3-1.5 s a process otherwise).
PRELOAD = ("search.run.workers", "torch._dynamo")
Result = TypeVar("Result")
_HAVE_SIGMASK = hasattr(signal, "pthread_sigmask")  # Windows has no signal masks (and no fork server)
QUIET_TRACKER = "ignore::UserWarning:multiprocessing.resource_tracker"  # see start_helper_processes


def process_context() -> Any:
    """The fork server's context, or spawn where the platform has no fork server."""
    if "forkserver" not in mp.get_all_start_methods():
        return mp.get_context("spawn")
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(list(PRELOAD))
    return ctx


def start_helper_processes(ctx: Any) -> None:
    """Start multiprocessing's helper processes (resource tracker, fork server) deaf to Ctrl-C, losing none.

    A terminal's Ctrl-C reaches every process of the command. These two would print a traceback if it
    came while they import (the fork server imports torch: seconds). The resource tracker guards itself
    (it is spawned with SIGINT blocked and ignores it before unblocking). The fork server is spawned here
    with SIGINT blocked, as the tracker is: the mask survives its exec, and it ignores SIGINT once it has
    imported, which discards one that came meanwhile. The processes it forks inherit the mask until they
    set their own (`start_pool_worker`, or a search worker's handler). In this process a Ctrl-C that
    came while SIGINT was blocked stays pending, and is raised when it is unblocked: never lost.
    """
    if threading.current_thread() is not threading.main_thread():  # signal.signal is for the main thread only
        return
    # The tracker unlinks the command's semaphores when it dies; after a `kill -9` it would warn of
    # "leaked semaphore objects" while doing just that. It takes its -W options from ours.
    sys.warnoptions.append(QUIET_TRACKER)
    try:
        mp.resource_tracker.ensure_running()  # blocks and unblocks SIGINT itself (see its `main`)
        if ctx.get_start_method() == "forkserver":
            with _sigint_blocked():
                mp.forkserver.ensure_running()
    finally:
        sys.warnoptions.remove(QUIET_TRACKER)


@contextlib.contextmanager
def _sigint_blocked() -> Iterator[None]:
    """SIGINT held pending in this thread (and in the processes it starts) for the block's length."""
    if not _HAVE_SIGMASK:
        yield
        return
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})  # a Ctrl-C that came meanwhile lands here


_stopping: Any = None  # the pool's stop flag, in a pool worker (start_pool_worker)


def start_pool_worker(stopping: Any) -> None:
    """A stage's pool worker (search.run.process_pool) as it starts: deaf to Ctrl-C while it waits for a job
    (`run_interruptibly` hears it during one), and it ends when its command dies.

    Idle, a KeyboardInterrupt would end the worker's loop with a traceback; the command that got the same
    Ctrl-C shuts the pool down instead. `stopping` (an Event) is set by the command when it does: a job
    the worker takes after that is not started."""
    global _stopping
    _stopping = stopping
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # also drops a Ctrl-C held since the fork
    _unblock_sigint()
    exit_with_parent()


def run_interruptibly(function: Callable[..., Result], /, **kwargs: Any) -> Result:
    """`function(**kwargs)` in a pool worker, stopped by Ctrl-C as in any Python process: the
    KeyboardInterrupt goes back to the command as the job's error. Not started once the pool is stopping."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        if _stopping is not None and _stopping.is_set():  # after the handler: a SIGINT before it was ignored
            raise KeyboardInterrupt
        return function(**kwargs)
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def _unblock_sigint() -> None:
    """Let Ctrl-C reach a process forked from the fork server, which holds SIGINT blocked (start_helper_processes)."""
    if _HAVE_SIGMASK:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


def exit_with_parent() -> None:
    """End this worker process at once when the command that started it dies (killed, machine lost).

    Otherwise it would train on, orphaned, through work nobody will store: a search worker through the
    run's remaining trials (its trial stays RUNNING until its heartbeat goes stale, then the next run fails
    it and retries its parameters), a pool worker through its job. (Not prctl's parent-death signal: the
    parent of a forked worker is the fork server, which lives as long as any worker does.)
    """
    parent = mp.parent_process()
    if parent is None:  # run in a process of its own (tests), not started by a command
        return

    def watch() -> None:
        mp.connection.wait([parent.sentinel])  # readable once the parent is gone
        os._exit(1)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()
