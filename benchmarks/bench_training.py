"""Accuracy and speed of the learning core on the study's recommended recipe.

Trains the siamese / weight sharing / auxiliary loss / `prob` head / batch norm recipe on
N fresh draws (fast path) and reports mean ± std test accuracy; times the first 5 models
through the fast path and through the plain one-by-one eager fp32 loop, in turns model by model. `--augmented` trains
the same network with weight decay 5e-4, random rotations (±10°) and zooms (±10 %), a cosine
schedule and test-time shifts: the second starting point of the `siamese` study.

The fast path runs in the compute settings `models.training.speed` measures fastest on this machine (cached;
`search speed` shows them); `--fp32` keeps bf16 autocast off whatever the measurement says.

    python -m benchmarks.bench_training [--augmented] [--draws N] [--epochs E] [--data-dir DIR]
                                        [--threads T] [--fp32] [--json] [--against REF [--rounds R]]

Every run prints the machine (CPU model, avx2/avx512f/avx512_bf16/amx, torch) and the fast path's speed
as a ratio against the plain loop timed in the same run. `--against REF` runs the same benchmark at
commit REF too (a temporary git worktree), in turns with this commit's for R rounds (default 1), and
prints this commit's speed against REF's: fast path, plain loop and accuracy (benchmarks/reference.py).

With --json the last line is one JSON object: recipe, accuracy_mean, accuracy_std, digit_accuracy_mean,
draws, epochs, batched_seconds, sequential_seconds, speedup, cpu_speedup (the same in CPU seconds: with
--threads 1, the figure to trust on a loaded machine), speed (the fast path's settings), machine
and machine_info (cpu, flags, cores, torch); with --against: ref, rounds, this, against (each round's
objects) and the ratios fast_vs_ref, plain_vs_ref (wall time) and run_cpu_vs_ref (the whole run's CPU time),
each REF's seconds / this commit's: above 1 is faster.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import time
from pathlib import Path

import torch

from benchmarks.reference import against, machine_info, machine_line, ratio
from models.data.draws import make_draw
from models.data.pools import load_pools
from models.training.fast import fit_many
from models.training.speed import RECIPE_NET, RECIPE_TRAIN, choose_speed, label
from models.training.train import fit
from search.evaluation.evaluate import DRAW_SEED_BASE  # the draws `search evaluate-best` trains on

AUGMENTED_TRAIN = dataclasses.replace(
    RECIPE_TRAIN, weight_decay=5e-4, schedule="cosine", rotate=10.0, scale=0.1, tta="shift"
)
TIMED_MODELS = 5


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--augmented", action="store_true", help="weight decay, rotations, zooms, cosine schedule")
    parser.add_argument("--draws", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=RECIPE_TRAIN.epochs)
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--fp32", action="store_true", help="fast path without bfloat16 autocast")
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--against", metavar="REF", help="also run this benchmark at commit REF, in turns with this one"
    )
    parser.add_argument("--rounds", type=int, default=1, help="with --against: runs of each commit, in turns")
    args = parser.parse_args()
    if args.against is not None:
        compare(args)
        return
    print(machine_line(), flush=True)
    torch.set_num_threads(args.threads)
    recipe = AUGMENTED_TRAIN if args.augmented else RECIPE_TRAIN
    train = dataclasses.replace(recipe, epochs=args.epochs)
    speed = choose_speed(threads=args.threads).speed
    speed = dataclasses.replace(speed, bf16=False) if args.fp32 else speed
    pools = load_pools(args.data_dir)
    seeds = [DRAW_SEED_BASE + i for i in range(max(args.draws, TIMED_MODELS))]
    draws = [make_draw(pools, seed=s) for s in seeds]

    # The timed models: fast path and plain loop in turns, model by model, so that both see the same load.
    # (One model through fit_many trains exactly as it would in lockstep with others: the models are independent.)
    timed = {"fast": [0.0, 0.0], "plain": [0.0, 0.0]}  # wall and CPU seconds
    results = []
    for d in draws[:TIMED_MODELS]:
        for path in ("fast", "plain"):
            began, cpu_began = time.perf_counter(), time.process_time()
            if path == "fast":
                results += fit_many(RECIPE_NET, train, [(d.train, d.test)], seeds=[d.seed], speed=speed)
            else:
                fit(RECIPE_NET, train, d.train, eval_pairs=d.test, seed=d.seed)
            timed[path][0] += time.perf_counter() - began
            timed[path][1] += time.process_time() - cpu_began
    print(f"draws 0-{TIMED_MODELS - 1}: " + " ".join(f"{r.accuracy:.3f}" for r in results), flush=True)
    for start in range(TIMED_MODELS, len(draws), TIMED_MODELS):
        chunk = draws[start : start + TIMED_MODELS]
        chunk_results = fit_many(
            RECIPE_NET, train, [(d.train, d.test) for d in chunk], seeds=[d.seed for d in chunk], speed=speed
        )
        print(
            f"draws {start}-{start + len(chunk) - 1}: " + " ".join(f"{r.accuracy:.3f}" for r in chunk_results),
            flush=True,
        )
        results += chunk_results
    accuracies = [r.accuracy for r in results if r.accuracy is not None][: args.draws]
    digit_accuracies = [r.digit_accuracy for r in results if r.digit_accuracy is not None][: args.draws]
    (batched_seconds, batched_cpu), (sequential_seconds, sequential_cpu) = timed["fast"], timed["plain"]

    summary = {
        "recipe": "augmented" if args.augmented else "plain",
        "accuracy_mean": statistics.mean(accuracies),
        "accuracy_std": statistics.stdev(accuracies) if len(accuracies) > 1 else 0.0,
        "digit_accuracy_mean": statistics.mean(digit_accuracies),
        "draws": len(accuracies),
        "epochs": args.epochs,
        "batched_seconds": round(batched_seconds, 2),
        "sequential_seconds": round(sequential_seconds, 2),
        "speedup": round(sequential_seconds / batched_seconds, 2),
        # CPU time: with one thread, the ratio to trust on a machine other processes load too
        "cpu_speedup": round(sequential_cpu / batched_cpu, 2),
        "models_timed": TIMED_MODELS,
        "threads": args.threads,
        "bf16": speed.bf16,
        "speed": label(speed),
        "data": pools.source,
        "machine": machine_line().removeprefix("machine: "),
        "machine_info": machine_info(),
    }
    print(
        f"{summary['recipe']} recipe: test accuracy {summary['accuracy_mean']:.4f} ± {summary['accuracy_std']:.4f} "
        f"(digits {summary['digit_accuracy_mean']:.4f}) over {summary['draws']} draws of {args.epochs} epochs; "
        f"{TIMED_MODELS} models: fast path ({label(speed)}) {summary['speedup']:.2f}x the plain loop "
        f"({batched_seconds:.1f} s against {sequential_seconds:.1f} s on this machine; "
        f"{summary['cpu_speedup']:.2f}x in CPU time)"
    )
    if args.json:
        print(json.dumps(summary))


def compare(args: argparse.Namespace) -> None:
    """--against REF: this benchmark at this commit and at REF, in turns; the ratios between them."""
    passed = ["--draws", str(args.draws), "--epochs", str(args.epochs), "--threads", str(args.threads)]
    passed += ["--augmented"] * args.augmented + ["--fp32"] * args.fp32
    passed += ["--data-dir", str(args.data_dir)] if args.data_dir is not None else []
    print(machine_line(), flush=True)
    ours, theirs = against(args.against, "benchmarks/bench_training.py", passed, rounds=args.rounds)
    summary = {
        "ref": args.against,
        "rounds": args.rounds,
        "fast_vs_ref": round(ratio([r["batched_seconds"] for r in theirs], [r["batched_seconds"] for r in ours]), 3),
        "plain_vs_ref": round(
            ratio([r["sequential_seconds"] for r in theirs], [r["sequential_seconds"] for r in ours]), 3
        ),
        # the whole run (fast path, plain loop, start-up) in CPU time: the ratio to trust on a loaded machine
        "run_cpu_vs_ref": round(ratio([r["run_cpu_seconds"] for r in theirs], [r["run_cpu_seconds"] for r in ours]), 3),
        "accuracy_this": statistics.mean(r["accuracy_mean"] for r in ours),
        "accuracy_ref": statistics.mean(r["accuracy_mean"] for r in theirs),
        "machine": machine_line().removeprefix("machine: "),
        "machine_info": machine_info(),
        "this": ours,
        "against": theirs,
    }
    print(
        f"this commit against {args.against} ({args.rounds} round(s), {machine_line()}): fast path "
        f"{summary['fast_vs_ref']:.2f}x, plain loop {summary['plain_vs_ref']:.2f}x as fast in wall time, the whole run "
        f"{summary['run_cpu_vs_ref']:.2f}x in CPU time; fast path against the plain "
        f"loop {statistics.median(r['speedup'] for r in ours):.2f}x here, {statistics.median(r['speedup'] for r in theirs):.2f}x "
        f"at {args.against}; accuracy {summary['accuracy_this']:.4f} against {summary['accuracy_ref']:.4f}"
    )
    if args.json:
        print(json.dumps(summary))


if __name__ == "__main__":
    main()
