"""Training configurations on fresh draws: in this process, or in a pool of worker processes.

A chunk is one configuration and a few draw seeds, trained batched (`models.training.fast.fit_many`) on all
training pairs of each draw and scored on its test pairs; each chunk's results come back as soon as
it is done, so the caller can store them (search.evaluation.store) before the next one ends.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

from models.nets.configs import NetConfig, TrainConfig
from search.evaluation.results import Candidate, DrawResult
from search.run.process_pool import JobPool

__all__ = ["train_chunks", "train_draws"]


def train_chunks(
    chunks: list[tuple[Candidate, list[int]]],
    *,
    data_dir: Path | None,
    n_pairs: int,
    pool: JobPool,
    keep_models_of: str | None = None,
) -> Iterator[tuple[Candidate, list[DrawResult]]]:
    """Yield each chunk's results as soon as it is trained: in this process, or in the pool's processes.
    The chunks of the configuration `keep_models_of` (a config key) bring their trained networks back."""
    jobs = [
        (
            candidate,
            {
                "net": candidate.net,
                "train": candidate.train,
                "seeds": seeds,
                "data_dir": data_dir,
                "n_pairs": n_pairs,
                "score_every_epoch": candidate.score_every_epoch,
                "keep_models": candidate.key == keep_models_of,
            },
        )
        for candidate, seeds in chunks
    ]
    yield from pool.run(train_draws, jobs)


def train_draws(
    net: NetConfig,
    train: TrainConfig,
    seeds: Sequence[int],
    *,
    data_dir: Path | None,
    n_pairs: int,
    threads: int | None,
    score_every_epoch: bool = False,
    keep_models: bool = False,
) -> list[DrawResult]:
    """Train one configuration on the draws `seeds`, batched: all training pairs, scored on the test pairs."""
    import torch

    from models.data.draws import make_draw
    from models.data.pools import load_pools
    from models.training.fast import fit_many

    if threads is not None:
        torch.set_num_threads(threads)
    pools = load_pools(data_dir)
    draws = [make_draw(pools, seed=seed, n_pairs=n_pairs) for seed in seeds]
    # The draw seed also seeds the initialisation: each draw is new pairs and a new network.
    jobs = [(draw.train, draw.test) for draw in draws]
    results = fit_many(
        net, train, jobs, seeds=list(seeds), score_every_epoch=score_every_epoch, keep_models=keep_models
    )
    return [
        DrawResult(
            seed=seed,
            status="completed" if r.status == "completed" and r.accuracy is not None else "diverged",
            message=r.message,
            accuracy=r.accuracy,
            digit_accuracy=r.digit_accuracy,
            best_epoch_accuracy=r.best_epoch_accuracy if score_every_epoch else None,
            seconds=r.seconds,
            n_params=r.n_params,
            model=r.model,
        )
        for seed, r in zip(seeds, results, strict=True)
    ]
