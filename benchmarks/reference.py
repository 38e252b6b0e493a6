"""What every benchmark shares: the machine it ran on, and `--against REF` (this commit against another).

`--against REF` checks REF out in a temporary `git worktree` and runs the same benchmark there, in turns
with this commit's (this, REF, this, REF ... for --rounds rounds), each in a fresh interpreter with the
same arguments, so both see the same machine and the same load; the figures to quote are the ratios.
REF's benchmark runs against REF's own code (PYTHONPATH points at the worktree) with this interpreter
and its installed dependencies; it must understand the arguments passed on (older benchmarks ignore
none of them: pass only options both commits have).
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from models.training.speed import this_machine

REPO = Path(__file__).resolve().parent.parent


def machine_line() -> str:
    """'machine: AMD EPYC, 2 cores, avx2 (no avx512f, avx512_bf16, amx), torch 2.13.0' for a benchmark's output."""
    return f"machine: {this_machine().describe()}"


def machine_info() -> dict[str, object]:
    """The machine as a benchmark's JSON records it: CPU model, relevant flags, cores, torch version."""
    machine = this_machine()
    return {"cpu": machine.cpu, "flags": list(machine.flags), "cores": machine.cores, "torch": machine.torch}


def resolve_commit(ref: str, *, repo: Path = REPO) -> str:
    """The full commit id REF names; raises SystemExit with git's message when it names none."""
    found = subprocess.run(
        ["git", "rev-parse", "--verify", f"{ref}^{{commit}}"], cwd=repo, capture_output=True, text=True
    )
    if found.returncode != 0:
        raise SystemExit(f"--against {ref}: not a commit of {repo} ({found.stderr.strip()})")
    return found.stdout.strip()


@contextlib.contextmanager
def reference_tree(ref: str, *, repo: Path = REPO) -> Iterator[Path]:
    """A temporary detached `git worktree` of REF, removed (with its git bookkeeping) on the way out."""
    commit = resolve_commit(ref, repo=repo)
    path = Path(tempfile.mkdtemp(prefix="bench-against-")) / "tree"
    subprocess.run(["git", "worktree", "add", "--detach", "--quiet", str(path), commit], cwd=repo, check=True)
    try:
        yield path
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(path)], cwd=repo, capture_output=True)
        subprocess.run(["git", "worktree", "prune"], cwd=repo, capture_output=True)
        path.parent.rmdir() if path.parent.exists() and not any(path.parent.iterdir()) else None


def run_json(tree: Path, script: str, args: Sequence[str]) -> dict:
    """Run `script` (a path under the tree) with `args` and --json in a fresh interpreter against that tree's
    code; its last output line, parsed, plus `run_cpu_seconds`: the CPU time the whole run took (user +
    system, its child processes included), which other processes' load hardly moves where wall time does.
    Its other output passes through, indented."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(
        [sys.executable, str(tree / script), *args, "--json"], cwd=tree, env=env, capture_output=True, text=True
    )
    lines = done.stdout.strip().splitlines()
    for line in lines[:-1]:
        print(f"    {line}", flush=True)
    if done.returncode != 0 or not lines:
        raise SystemExit(f"{script} at {tree} failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {**json.loads(lines[-1]), "run_cpu_seconds": round(cpu, 2)}


def against(ref: str, script: str, args: Sequence[str], *, rounds: int) -> tuple[list[dict], list[dict]]:
    """(this commit's results, REF's results), one per round, run in turns in one sitting."""
    ours, theirs = [], []
    with reference_tree(ref) as tree:
        for round_ in range(rounds):
            for name, where, results in (("this commit", REPO, ours), (ref, tree, theirs)):
                print(f"round {round_ + 1}/{rounds}: {name}", flush=True)
                results.append(run_json(where, script, args))
    return ours, theirs


def ratio(numerator: Sequence[float], denominator: Sequence[float]) -> float:
    """The ratio of the two medians (what to quote from rounds run in turns)."""
    return statistics.median(numerator) / statistics.median(denominator)
