"""Does a search at `epochs` rank configurations as the evaluation length would? (docs/results.md)

The `siamese` study searches at 20 epochs and evaluates at 40. This benchmark takes the study's first
starting point (its known-good recipe) and varies what the issue found the search mis-ranks: how fast
the lr decays (--decays) and whether the digits are augmented (none, or +-10 degree rotations and
+-10 % zooms). It trains each variant with the study's own K-fold cross-validation three times:

- at the search length (20 epochs), where `exponential` with gamma = decay_to**(1/20) and `geometric`
  with decay_to are the same schedule;
- at the evaluation length (40 epochs) with the per-epoch gamma kept (`exponential`: what a trial
  tuned at 20 epochs got before), and with the schedule stretched (`geometric`: the lr follows the
  fraction of training done).

It prints each configuration's three CV scores, the Spearman rank correlation of the 20-epoch scores
with each 40-epoch column, and the mean 40-epoch score of each schedule. Only training pairs are used.

    python -m experiments.fidelity [--decays 0.03,0.3] [--study siamese] [--threads N] [--json]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import time

import numpy as np
import torch
from scipy.stats import spearmanr

from benchmarks.reference import machine_info, machine_line
from models.data.draws import make_draw
from models.data.pools import load_pools
from models.nets.configs import NetConfig, TrainConfig
from models.training.fast import fit_many
from search.run.folds import fold_score, fold_seeds, split_folds
from search.study.loader import load_definition
from search.study.space import configs_for_point


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--study", default="siamese")
    parser.add_argument("--decays", default="0.03,0.3", help="decay_to values (the lr's fall over the run)")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    print(machine_line(), flush=True)
    torch.set_num_threads(args.threads)
    definition = load_definition(args.study)
    short, long = definition.epochs, definition.evaluate_epochs or 2 * definition.epochs
    pairs = make_draw(load_pools(), seed=definition.data_seed, n_pairs=definition.n_pairs).train
    folds = split_folds(len(pairs), n_folds=definition.n_folds, seed=definition.data_seed)
    jobs = [(pairs.subset(fit), pairs.subset(val)) for fit, val in folds]
    seeds = fold_seeds(definition.seed, len(jobs))

    def cv(net: NetConfig, train: TrainConfig) -> float:
        results = fit_many(net, train, jobs, seeds=seeds)
        return float(np.mean([fold_score(r.accuracy) for r in results]))

    variants = [
        {**definition.enqueue[0], "schedule": "geometric", "decay_to": float(decay), "rotate": rotate, "scale": scale}
        for decay in args.decays.split(",")
        for rotate, scale in ((0.0, 0.0), (10.0, 0.1))
    ]
    rows = []
    began = time.perf_counter()
    for index, values in enumerate(variants):
        net, train = configs_for_point(definition, values)
        searched = dataclasses.replace(train, epochs=short)
        kept = dataclasses.replace(train, epochs=long, schedule="exponential", gamma=train.decay_to ** (1 / short))
        stretched = dataclasses.replace(train, epochs=long)
        row = {
            "config": index,
            "describe": f"{train.optimizer} lr {train.lr:.3g} decay_to {train.decay_to:.3g} rotate {train.rotate:.1f} scale {train.scale:.2f}",
            "cv_short": cv(net, searched),
            "cv_long_exponential": cv(net, kept),
            "cv_long_geometric": cv(net, stretched),
        }
        rows.append(row)
        print(
            f"config {index}: {row['describe']}: CV {short} ep {row['cv_short']:.4f} | {long} ep exponential "
            f"{row['cv_long_exponential']:.4f} | {long} ep geometric {row['cv_long_geometric']:.4f}",
            flush=True,
        )
    short_scores = [r["cv_short"] for r in rows]
    summary = {
        "study": args.study,
        "short_epochs": short,
        "long_epochs": long,
        "configs": rows,
        "spearman_exponential": _rank_agreement(short_scores, [r["cv_long_exponential"] for r in rows]),
        "spearman_geometric": _rank_agreement(short_scores, [r["cv_long_geometric"] for r in rows]),
        "mean_long_exponential": statistics.mean(r["cv_long_exponential"] for r in rows),
        "mean_long_geometric": statistics.mean(r["cv_long_geometric"] for r in rows),
        "geometric_wins": sum(r["cv_long_geometric"] > r["cv_long_exponential"] for r in rows),
        "wall_seconds": round(time.perf_counter() - began, 1),
        "machine_info": machine_info(),
    }
    agreement = {
        k: "n/a" if summary[k] is None else f"{summary[k]:.2f}" for k in ("spearman_exponential", "spearman_geometric")
    }
    print(
        f"rank agreement of {short}-epoch CV with {long}-epoch CV (Spearman): exponential {agreement['spearman_exponential']}, "
        f"geometric {agreement['spearman_geometric']}; mean {long}-epoch CV: exponential "
        f"{summary['mean_long_exponential']:.4f}, geometric {summary['mean_long_geometric']:.4f} "
        f"(geometric higher for {summary['geometric_wins']} of {len(rows)}); {summary['wall_seconds']:.0f} s"
    )
    if args.json:
        print(json.dumps(summary))


def _rank_agreement(short: list[float], long: list[float]) -> float | None:
    """Spearman's rho, or None where it is undefined (fewer than 3 configurations, or a column of ties)."""
    if len(short) < 3 or len(set(short)) < 2 or len(set(long)) < 2:
        return None
    return float(spearmanr(short, long).statistic)


if __name__ == "__main__":
    main()
