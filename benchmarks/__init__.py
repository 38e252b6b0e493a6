"""Benchmarks: each `python -m benchmarks.NAME` prints the machine, its figures and, with --json, one JSON line."""
