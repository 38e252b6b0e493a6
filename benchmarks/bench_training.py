"""Accuracy and speed of the learning core on the study's recommended recipe.

Trains the siamese / weight sharing / auxiliary loss / `prob` head / batch norm recipe on
N fresh draws (fast path) and reports mean ± std test accuracy; times the same 5 models
through the fast path and through the plain one-by-one eager fp32 loop. `--augmented` trains
the same network with weight decay 5e-4, random rotations (±10°) and zooms (±10 %), a cosine
schedule and test-time shifts: the second starting point of the `siamese` study.

    python benchmarks/bench_training.py [--augmented] [--draws N] [--epochs E] [--data-dir DIR]
                                        [--threads T] [--fp32] [--json]

With --json the last line is one JSON object: recipe, accuracy_mean, accuracy_std, digit_accuracy_mean,
draws, epochs, batched_seconds, sequential_seconds, speedup, and the machine it ran on.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import statistics
import time
from pathlib import Path

import torch

from models.configs import NetConfig, TrainConfig
from models.draws import make_draw
from models.fast import FAST, fit_many
from models.pools import load_pools
from models.train import fit

RECIPE_NET = NetConfig(
    family="siamese",
    weight_sharing=True,
    head="prob",
    batch_norm=True,
    activation="leaky_relu",
    conv_channels=(32, 64),
    kernel_size=3,
    fc_width=128,
)
RECIPE_TRAIN = TrainConfig(
    optimizer="sgd", lr=0.1, momentum=0.9, gamma=0.95, batch_size=100, epochs=25, aux_loss="alpha", alpha=1.0, shift=1
)
AUGMENTED_TRAIN = dataclasses.replace(
    RECIPE_TRAIN, weight_decay=5e-4, schedule="cosine", rotate=10.0, scale=0.1, tta="shift"
)
TIMED_MODELS = 5
FIRST_DRAW_SEED = 1000  # the same draw seeds `search evaluate-best` uses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--augmented", action="store_true", help="weight decay, rotations, zooms, cosine schedule")
    parser.add_argument("--draws", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=RECIPE_TRAIN.epochs)
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--fp32", action="store_true", help="fast path without bfloat16 autocast")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    recipe = AUGMENTED_TRAIN if args.augmented else RECIPE_TRAIN
    train = dataclasses.replace(recipe, epochs=args.epochs)
    speed = dataclasses.replace(FAST, bf16=False) if args.fp32 else FAST
    pools = load_pools(args.data_dir)
    seeds = [FIRST_DRAW_SEED + i for i in range(max(args.draws, TIMED_MODELS))]
    draws = [make_draw(pools, seed=s) for s in seeds]

    accuracies: list[float] = []
    digit_accuracies: list[float] = []
    batched_seconds = 0.0
    for start in range(0, len(draws), TIMED_MODELS):
        chunk = draws[start : start + TIMED_MODELS]
        began = time.perf_counter()
        results = fit_many(RECIPE_NET, train, [(d.train, d.test) for d in chunk], seeds=[d.seed for d in chunk], speed=speed)
        if start == 0:
            batched_seconds = time.perf_counter() - began
        accuracies += [r.accuracy for r in results if r.accuracy is not None]
        digit_accuracies += [r.digit_accuracy for r in results if r.digit_accuracy is not None]
        print(f"draws {start}-{start + len(chunk) - 1}: " + " ".join(f"{r.accuracy:.3f}" for r in results), flush=True)
    accuracies, digit_accuracies = accuracies[: args.draws], digit_accuracies[: args.draws]

    began = time.perf_counter()
    for d in draws[:TIMED_MODELS]:
        fit(RECIPE_NET, train, d.train, eval_pairs=d.test, seed=d.seed)
    sequential_seconds = time.perf_counter() - began

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
        "models_timed": TIMED_MODELS,
        "threads": args.threads,
        "bf16": speed.bf16,
        "data": pools.source,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}",
    }
    print(
        f"{summary['recipe']} recipe: test accuracy {summary['accuracy_mean']:.4f} ± {summary['accuracy_std']:.4f} "
        f"(digits {summary['digit_accuracy_mean']:.4f}) over {summary['draws']} draws of {args.epochs} epochs; "
        f"{TIMED_MODELS} models: fast {batched_seconds:.1f} s, plain {sequential_seconds:.1f} s "
        f"({summary['speedup']:.2f}x)"
    )
    if args.json:
        print(json.dumps(summary))


if __name__ == "__main__":
    main()
