"""A Ctrl-C that lands inside a weakref callback: Python drops it; search.run.interrupts must not.

This is how `search run` once ran all its trials after a Ctrl-C during startup (importing torch
runs weakref callbacks), then exited -6. Each case is a real process sending itself SIGINT.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

from search.__main__ import STARTING

_SCRIPT = """
import os, signal, sys, weakref
{install}

class Thing:
    pass

def callback(_ref):
    os.kill(os.getpid(), signal.SIGINT)  # the handler runs here, inside the callback
    sum(range(10_000))

thing = Thing()
ref = weakref.ref(thing, callback)
del thing  # the callback runs: a KeyboardInterrupt raised in it cannot propagate
print("went on", flush=True)
from search.run.interrupts import raise_if_interrupted
try:
    raise_if_interrupted()
except KeyboardInterrupt:
    print("raised again", flush=True)
    sys.exit(130)
"""


def _run(install: str) -> subprocess.CompletedProcess[str]:
    script = textwrap.dedent(_SCRIPT).replace("{install}", install)
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)


def test_python_alone_drops_a_ctrl_c_inside_a_weakref_callback() -> None:
    """The fault itself: without the recording handler the Ctrl-C is printed as ignored and lost."""
    done = _run("")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["went on"]
    assert "Exception ignored" in done.stderr and "KeyboardInterrupt" in done.stderr


def test_a_recorded_ctrl_c_is_raised_again_and_prints_nothing() -> None:
    done = _run("from search.run.interrupts import record_interrupts; record_interrupts()")
    assert done.returncode == 130, done.stderr
    assert done.stdout.splitlines() == ["went on", "raised again"]
    assert done.stderr == ""


def test_other_unraisable_errors_are_still_printed() -> None:
    script = textwrap.dedent(
        """
        import weakref
        from search.run.interrupts import record_interrupts
        record_interrupts()
        class Thing:
            pass
        def callback(_ref):
            raise ValueError("a real bug in a callback")
        thing = Thing()
        ref = weakref.ref(thing, callback)
        del thing
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0
    assert "ValueError: a real bug in a callback" in done.stderr


_SET_NAME_SCRIPT = """
import os, signal, sys
{install}

class Descriptor:
    def __set_name__(self, owner, name):
        os.kill(os.getpid(), signal.SIGINT)  # the handler runs here, while the class is being created
        sum(range(10_000))

def start():
    class Series:  # what importing scikit-learn does (narwhals' Series), when the Ctrl-C lands there
        hist = Descriptor()

{body}
"""


def _run_set_name(install: str, body: str) -> subprocess.CompletedProcess[str]:
    script = textwrap.dedent(_SET_NAME_SCRIPT).replace("{install}", install).replace("{body}", textwrap.dedent(body))
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)


def test_python_3_11_turns_a_ctrl_c_inside_set_name_into_a_runtime_error() -> None:
    """The fault itself (seen in CI: a Ctrl-C while `search run` imported scikit-learn printed a traceback).
    Python 3.12 stopped wrapping it; 3.11, the version CI runs, wraps it."""
    done = _run_set_name(
        "",
        """
        try:
            start()
        except BaseException as error:
            print(type(error).__name__, type(error.__cause__).__name__)
        """,
    )
    expected = "KeyboardInterrupt NoneType" if sys.version_info >= (3, 12) else "RuntimeError KeyboardInterrupt"
    assert done.stdout.split("\n")[0] == expected, done.stderr


def test_a_ctrl_c_turned_into_another_error_in_a_command_says_interrupted() -> None:
    done = _run_set_name(
        "from search.run.interrupts import record_interrupts; record_interrupts()",
        """
        import typer
        from search.cli.common import exit_on_interrupt
        try:
            with exit_on_interrupt("interrupted while starting"):
                start()
        except typer.Exit as stop:
            sys.exit(stop.exit_code)
        """,
    )
    assert done.returncode == 130, done.stderr
    assert done.stderr.strip() == "interrupted while starting"


def test_the_same_error_without_a_ctrl_c_is_not_read_as_one() -> None:
    """A RuntimeError whose context holds a KeyboardInterrupt that no Ctrl-C sent (code raising one itself,
    then failing while handling it) is a real error: it propagates."""
    done = _run_set_name(
        "from search.run.interrupts import record_interrupts; record_interrupts()",
        """
        from search.run.interrupts import is_interrupt
        try:
            try:
                raise KeyboardInterrupt
            except KeyboardInterrupt:
                raise RuntimeError("a real bug while handling it")
        except RuntimeError as error:
            print(is_interrupt(error), is_interrupt(KeyboardInterrupt()))
        """,
    )
    assert done.stdout.split() == ["False", "True"], done.stderr


def test_a_ctrl_c_turned_into_another_error_while_the_cli_loads_says_nothing_was_run() -> None:
    """The same Ctrl-C while `search` imports its CLI (search.__main__), before any command began."""
    done = _run_set_name(
        "",
        """
        import types
        import search.__main__ as entry
        loading = types.ModuleType("search.cli.app")
        loading.__getattr__ = lambda name: start()  # `from search.cli.app import app` creates a class, as importing does
        sys.modules["search.cli.app"] = loading
        entry.main()
        """,
    )
    assert done.returncode == 130, done.stderr
    assert done.stderr == STARTING


def test_a_ctrl_c_inside_a_deferred_block_reaches_the_handler_when_it_ends() -> None:
    script = textwrap.dedent(
        """
        import os, signal, sys
        from search.run.interrupts import interrupts_deferred, record_interrupts
        record_interrupts()
        try:
            with interrupts_deferred():
                os.kill(os.getpid(), signal.SIGINT)
                sum(range(100_000))  # the handler would have run here
                print("went on", flush=True)
        except KeyboardInterrupt:
            print("raised at the end", flush=True)
        with interrupts_deferred():
            pass
        print("no Ctrl-C, no error", flush=True)
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.stdout.splitlines() == ["went on", "raised at the end", "no Ctrl-C, no error"], done.stderr
    assert done.stderr == ""


_POOL_SCRIPT = """
import os, signal, sys, time, weakref
from search.run.interrupts import record_interrupts
from search.run.process_pool import JobPool
record_interrupts()

class Thing:
    pass

def callback(_ref):
    os.kill(os.getpid(), signal.SIGINT)  # dropped here, as a Ctrl-C during an import or a collection is
    sum(range(10_000))

thing = Thing()
ref = weakref.ref(thing, callback)
del thing
started = time.monotonic()
try:
    with JobPool(workers={workers}, threads=1) as pool:
        for _ in pool.run(lambda threads: time.sleep(60), [(0, {{}}), (1, {{}})]):
            print("a job ran", flush=True)
except KeyboardInterrupt:
    print("raised", time.monotonic() - started < 30, flush=True)
"""


def test_a_dropped_ctrl_c_stops_a_pool_before_its_jobs_train() -> None:
    """A Ctrl-C that Python dropped (search.run.interrupts) is raised by the pool's next look, not after
    every job has trained: in the command's own process and with worker processes."""
    for workers in (1, 2):
        script = textwrap.dedent(_POOL_SCRIPT).format(workers=workers)
        done = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, start_new_session=True
        )
        assert done.stdout.splitlines() == ["raised True"], (workers, done.stderr)
        assert done.stderr == ""
