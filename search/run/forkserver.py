"""The clean server process that every worker process of the product forks from.

A spawned process starts Python afresh and pays seconds of imports (torch, and torch._dynamo, which
torch imports on the first optimizer a process builds). The fork server imports them once per command;
each worker forked from it starts with them loaded. The server never opens a database connection or
a torch thread pool, so forking it is safe where forking the command's own process is not.
"""

from __future__ import annotations

import multiprocessing as mp
import multiprocessing.connection
import multiprocessing.forkserver
import multiprocessing.resource_tracker
import os
import signal
import sys
import threading
from typing import Any

__all__ = ["PRELOAD", "exit_with_parent", "process_context", "start_helper_processes", "start_pool_worker"]

# Imported once by the server: the search worker's modules (torch, optuna & co. with them) and what torch
# imports lazily on a process's first optimizer (1.3-1.5 s a process otherwise).
PRELOAD = ("search.run.workers", "torch._dynamo")
QUIET_TRACKER = "ignore::UserWarning:multiprocessing.resource_tracker"  # see start_helper_processes


def process_context() -> Any:
    """The fork server's context, or spawn where the platform has no fork server."""
    if "forkserver" not in mp.get_all_start_methods():
        return mp.get_context("spawn")
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(list(PRELOAD))
    return ctx


def start_helper_processes(ctx: Any) -> None:
    """Start multiprocessing's helper processes (resource tracker, fork server) deaf to Ctrl-C.

    A terminal's Ctrl-C reaches every process of the command. These two would print a traceback if it
    came while they import (the fork server imports torch: seconds). SIG_IGN survives their exec, and
    the processes the fork server forks inherit it until they set their own (`restore_interrupts`, or
    a search worker's handler). A Ctrl-C in the few milliseconds this takes is lost.
    """
    if threading.current_thread() is not threading.main_thread():  # signal.signal is for the main thread only
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    # The tracker unlinks the command's semaphores when it dies; after a `kill -9` it would warn of
    # "leaked semaphore objects" while doing just that. It takes its -W options from ours.
    sys.warnoptions.append(QUIET_TRACKER)
    try:
        mp.resource_tracker.ensure_running()
        if ctx.get_start_method() == "forkserver":
            mp.forkserver.ensure_running()
    finally:
        sys.warnoptions.remove(QUIET_TRACKER)
        signal.signal(signal.SIGINT, previous)


def start_pool_worker() -> None:
    """A stage's pool worker (search.run.process_pool) as it starts: Ctrl-C interrupts it again, as in any
    Python process, and it ends when its command dies."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    exit_with_parent()


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
