"""`python -m search`: the same command line as the `search` executable."""

from search.cli import app

app(prog_name="search")
