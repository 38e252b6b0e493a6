"""The size of a draw, in a module of its own so that the CLI can show it without importing torch."""

DEFAULT_N_PAIRS = 1000  # training pairs (and as many test pairs) of a draw, as in the published reports
