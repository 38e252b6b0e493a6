"""A Ctrl-C while the command starts its fork server: the command raises it, the server prints nothing,
and a pool worker forked from the server hears Ctrl-C during a job (not while it waits for one).
A real process group sent SIGINT."""

from __future__ import annotations

import subprocess
import sys
import textwrap

_SCRIPT = """
import concurrent.futures, functools, os, signal, sys, time
import multiprocessing.forkserver
from search.run.forkserver import process_context, run_interruptibly, start_helper_processes, start_pool_worker
from search.run.interrupts import record_interrupts

record_interrupts()
spawn = multiprocessing.forkserver.ensure_running

def spawn_then_ctrl_c():
    spawn()
    os.killpg(0, signal.SIGINT)  # a terminal's Ctrl-C reaches the group while the server imports torch
    time.sleep(0.5)

multiprocessing.forkserver.ensure_running = spawn_then_ctrl_c
context = process_context()
try:
    start_helper_processes(context)
    print("lost", flush=True)
except KeyboardInterrupt:
    print("raised", flush=True)
multiprocessing.forkserver.ensure_running = spawn
with concurrent.futures.ProcessPoolExecutor(1, mp_context=context, initializer=start_pool_worker, initargs=(None,)) as pool:
    blocked = pool.submit(signal.pthread_sigmask, signal.SIG_BLOCK, []).result()
    idle = pool.submit(signal.getsignal, signal.SIGINT).result()
    in_a_job = pool.submit(run_interruptibly, functools.partial(signal.getsignal, signal.SIGINT)).result()
print("pool worker:", signal.SIGINT in blocked, idle is signal.SIG_IGN, in_a_job is signal.default_int_handler, flush=True)
"""


def test_a_ctrl_c_while_the_fork_server_starts_is_raised_and_the_server_survives_it() -> None:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_SCRIPT)],
        capture_output=True,
        text=True,
        timeout=120,
        start_new_session=True,  # its own group: the SIGINT reaches the script and its fork server only
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["raised", "pool worker: False True True"], done.stderr
    assert done.stderr == ""  # neither the fork server nor the resource tracker printed a traceback
