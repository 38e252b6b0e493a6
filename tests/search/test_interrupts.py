"""A Ctrl-C that lands inside a weakref callback: Python drops it; search.interrupts must not.

This is how `search run` once ran all its trials after a Ctrl-C during startup (importing torch
runs weakref callbacks), then exited -6. Each case is a real process sending itself SIGINT.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

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
from search.interrupts import raise_if_interrupted
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
    done = _run("from search.interrupts import record_interrupts; record_interrupts()")
    assert done.returncode == 130, done.stderr
    assert done.stdout.splitlines() == ["went on", "raised again"]
    assert done.stderr == ""


def test_other_unraisable_errors_are_still_printed() -> None:
    script = textwrap.dedent(
        """
        import weakref
        from search.interrupts import record_interrupts
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
