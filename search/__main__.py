"""The `search` executable (and `python -m search`): the CLI, with Ctrl-C answered while it loads.

Importing the CLI and its libraries takes seconds; a Ctrl-C meanwhile would print a traceback.
"""

from __future__ import annotations

import sys


def main() -> None:
    try:
        from search.cli import app
    except KeyboardInterrupt:
        sys.stderr.write("interrupted while starting: nothing was run.\n")
        raise SystemExit(130) from None
    app()


if __name__ == "__main__":
    main()
