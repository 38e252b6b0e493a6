"""How far a training step is from this CPU's arithmetic limit: the bound on any speed-up of the same computation.

A training step of the study's recipe (forward, backward, optimizer step; the `models.training.speed` probe) does a
fixed number of floating-point operations, counted by `torch.utils.flop_counter.FlopCounterMode` (the
convolutions and matrix products; elementwise work is not counted and costs memory traffic, not FLOPs).
This CPU's fp32 peak for one thread is taken as the rate of a large matrix product (MKL's sgemm, 1024 x
1024, the best case any kernel reaches). Then, for each compute setting measured in fp32:

- the step's time, split by `torch.profiler` into convolutions, matrix products and everything else;
- the rate the convolutions and matrix products reach, as a share of the peak;
- the bound on the whole step's speed-up: its time over the time of its FLOPs at the peak with
  everything else free, and the same with everything else kept as it is (only the FLOP work sped up).

Without a faster kind of arithmetic (bf16/AMX, which an AVX2-only CPU lacks) or less work per step, no
implementation of the same step can beat the first bound.

    python -m benchmarks.bench_roofline [--batch 100] [--steps 100] [--json]

One thread, CPU time (other processes' load hardly moves it); prints the machine and the table.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import time

import torch
from torch.profiler import ProfilerActivity, profile
from torch.utils.flop_counter import FlopCounterMode

from benchmarks.reference import machine_info, machine_line
from models.data.draws import PairSet
from models.training.speed import RECIPE_NET, RECIPE_TRAIN, label
from models.training.train import ModelTrainer, Speed

SETTINGS = (Speed(), Speed(channels_last=True))
STEPS_PER_EPOCH = 10  # steps per timed epoch (see measure)
CONV_OPS = ("convolution", "conv2d", "mkldnn_convolution")
MATMUL_OPS = ("aten::mm", "aten::addmm", "aten::bmm")
# Layer kinds for the time split: an op's self time goes to the closest enclosing op (itself included)
# whose name holds one of these, lower-cased; autograd's backward nodes carry their forward op's name.
LAYER_KINDS = {
    "convolution": ("convolution",),
    "linear": ("aten::mm", "aten::addmm", "mmbackward", "addmmbackward"),
    "batch norm": ("batch_norm", "batchnorm"),
    "pooling": ("max_pool", "maxpool", "avg_pool", "avgpool"),
    "activation": ("relu", "elu", "gelu", "tanh", "sigmoid", "softplus"),
    "optimizer": ("optimizer.",),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=RECIPE_TRAIN.batch_size, help="pairs per step")
    parser.add_argument("--steps", type=int, default=100, help="timed steps per setting (epochs of 10 steps)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(machine_line(), flush=True)

    peak = sgemm_peak()
    rows = [measure(speed, args.batch, args.steps, peak) for speed in SETTINGS]
    print(f"fp32 peak (one thread, 1024x1024 sgemm): {peak / 1e9:.1f} GFLOP/s")
    print(f"probe: {RECIPE_NET.family} {'x'.join(map(str, RECIPE_NET.conv_channels))}, batch {args.batch} pairs")
    print(
        "| setting | µs per pair-step | GFLOP per step | conv + matmul share of the step | "
        "their GFLOP/s (share of peak) | other work, µs per pair-step | bound, all but FLOPs free | "
        "bound, FLOP work at peak |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['setting']} | {row['us_per_pair_step']:.0f} | {row['gflop_per_step']:.3f} | "
            f"{100 * row['flop_work_share']:.0f} % | {row['flop_work_gflops']:.1f} ({100 * row['share_of_peak']:.0f} %) | "
            f"{row['other_us_per_pair_step']:.0f} | {row['bound_all_free']:.2f}x | {row['bound_flops_at_peak']:.2f}x |"
        )
    kinds = list(LAYER_KINDS) + ["other"]
    print("share of the step's time by layer kind (self CPU time, each op counted in its enclosing layer):")
    print(f"| setting | {' | '.join(kinds)} | bound, batch norm and pooling free |")
    print("|---|" + "---|" * (len(kinds) + 1))
    for row in rows:
        shares = " | ".join(f"{100 * row['layer_kind_shares'][kind]:.0f} %" for kind in kinds)
        print(f"| {row['setting']} | {shares} | {row['bound_bn_pool_free']:.2f}x |")
    if args.json:
        print(json.dumps({"peak_gflops": round(peak / 1e9, 2), "batch": args.batch, "rows": rows, **machine_info()}))


def sgemm_peak(n: int = 1024, repeats: int = 7) -> float:
    """FLOP/s of one thread on a large fp32 matrix product: the best rate this CPU's kernels reach."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    times = []
    for _ in range(repeats):
        began = time.process_time()
        torch.mm(a, b)
        times.append(time.process_time() - began)
    return 2 * n**3 / statistics.median(times)


def measure(speed: Speed, batch: int, steps: int, peak: float) -> dict[str, object]:
    """One setting's row. Each timed run is an epoch of STEPS_PER_EPOCH steps, as training runs them: an
    epoch of one step alone frees all its memory at its end, and glibc hands it back to the system, so
    every such step page-faults its activations in anew (1,100-1,500 faults, +20 % on the AVX2-only Zen 3 EPYC), which a
    training epoch of many steps does not."""
    pairs = _random_pairs(batch * STEPS_PER_EPOCH)
    train = dataclasses.replace(RECIPE_TRAIN, batch_size=batch, lr=1e-3, epochs=10_000)
    trainer = ModelTrainer(RECIPE_NET, train, pairs, seed=0, device="cpu", speed=speed)
    for _ in range(2):
        trainer.run_epoch(evaluate=False)  # warm: kernels chosen, buffers allocated
    with FlopCounterMode(display=False) as counter:
        trainer.run_epoch(evaluate=False)
    flops = counter.get_total_flops() / STEPS_PER_EPOCH
    times = []
    for _ in range(max(1, steps // STEPS_PER_EPOCH)):
        began = time.process_time()
        trainer.run_epoch(evaluate=False)
        times.append((time.process_time() - began) / STEPS_PER_EPOCH)
    step = statistics.median(times)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(max(1, steps // STEPS_PER_EPOCH)):
            trainer.run_epoch(evaluate=False)
    flop_work, total = _flop_work_share(prof)
    share = flop_work / total
    kinds = time_by_layer_kind(prof)
    freed = kinds["batch norm"] + kinds["pooling"]
    flop_seconds = step * share
    return {
        "setting": label(speed),
        "us_per_pair_step": round(step / batch * 1e6, 1),
        "gflop_per_step": round(flops / 1e9, 4),
        "flop_work_share": round(share, 3),
        "flop_work_gflops": round(flops / flop_seconds / 1e9, 2),
        "share_of_peak": round(flops / flop_seconds / peak, 3),
        "other_us_per_pair_step": round(step * (1 - share) / batch * 1e6, 1),
        "bound_all_free": round(step / (flops / peak), 2),
        "bound_flops_at_peak": round(step / (flops / peak + step * (1 - share)), 2),
        "layer_kind_shares": {kind: round(kind_share, 3) for kind, kind_share in kinds.items()},
        "bound_bn_pool_free": round(1 / (1 - freed), 2),
    }


def time_by_layer_kind(prof: profile) -> dict[str, float]:
    """Share of the step's self CPU time per kind of layer (LAYER_KINDS, else 'other'). Each op's self time
    goes to its closest enclosing op of a named kind, so the zero-fill that max-pool's backward starts from
    counts as pooling and batch norm's backward, run by the autograd engine, as batch norm."""
    micros = dict.fromkeys([*LAYER_KINDS, "other"], 0.0)
    for event in prof.events():
        micros[_layer_kind(event)] += event.self_cpu_time_total
    total = sum(micros.values())
    return {kind: value / total for kind, value in micros.items()}


def _layer_kind(event) -> str:
    while event is not None:
        name = event.name.lower()
        for kind, needles in LAYER_KINDS.items():
            if any(needle in name for needle in needles):
                return kind
        event = event.cpu_parent
    return "other"


def _flop_work_share(prof: profile) -> tuple[float, float]:
    """(self CPU time of the convolutions and matrix products, self CPU time of every event), in µs; the
    events include the autograd engine's and the optimizer's own ranges, so their sum is the step's time."""
    flop_work = total = 0.0
    for event in prof.key_averages():
        total += event.self_cpu_time_total
        if any(name in event.key for name in CONV_OPS) or event.key in MATMUL_OPS:
            flop_work += event.self_cpu_time_total
    return flop_work, total


def _random_pairs(n: int) -> PairSet:
    data = torch.Generator().manual_seed(0)
    return PairSet(
        input=torch.randn(n, 2, 14, 14, generator=data),
        target=torch.randint(0, 2, (n,), generator=data),
        classes=torch.randint(0, 10, (n, 2), generator=data),
    )


if __name__ == "__main__":
    main()
