"""The `search` executable (and `python -m search`): the CLI, with Ctrl-C answered while it loads.

Importing the CLI and its libraries, then building its commands, takes seconds; a Ctrl-C meanwhile
would print a traceback, or (in Typer's own code) exit 130 without a word.
"""

from __future__ import annotations

import sys

from search.run.interrupts import is_interrupt, raise_if_interrupted, record_interrupts, unreported_before_work

STARTING = "interrupted while starting: nothing was run.\n"


def main() -> None:
    record_interrupts()  # until a command installs its own handler, a Ctrl-C is never lost (search.run.interrupts)
    try:
        from search.cli.app import app

        raise_if_interrupted()
        app()
    except SystemExit as stop:
        if stop.code == 130 and unreported_before_work():  # Typer's silent exit on Ctrl-C, before any work
            sys.stderr.write(STARTING)
        raise
    except BaseException as error:  # importing, or Typer building the commands: no command has begun
        if not is_interrupt(error):
            raise
        sys.stderr.write(STARTING)
        raise SystemExit(130) from None


if __name__ == "__main__":
    main()
