"""Forward + backward time of the DIBE losses and their baselines against MONAI's ``DiceFocalLoss`` and plain cross
entropy, on the same logits, in one run.

Targets: every loss at most 1.0x ``DiceFocalLoss``; ``DIBELoss`` at most 3x cross entropy. Each round times
every loss once, in turn (interleaved, so that load from other processes hits all of them alike); the report gives the
min and median time over rounds, the median over rounds of the within-round ratio, and the ratio of the minima.
Losses get softmax logits and class-index labels (``softmax=True, to_onehot_y=True``, defaults otherwise).

    python benchmarks/bench_dibe_losses.py [--rounds 15] [--shapes 16x2x320x320 8x9x224x224] [--threads 0]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from monai.losses import DiceFocalLoss

from monai_imbalance.losses import (
    ComboLoss,
    DIBEDisLoss,
    DIBELoss,
    DIBERegLoss,
    ExpLogLoss,
    FocalTverskyLoss,
    HybridFocalLoss,
)


def make_losses() -> dict[str, torch.nn.Module | None]:
    kw = {"softmax": True, "to_onehot_y": True}
    return {
        "CrossEntropy": None,
        "DiceFocalLoss": DiceFocalLoss(**kw),
        "DIBEDisLoss": DIBEDisLoss(**kw),
        "DIBERegLoss": DIBERegLoss(**kw),
        "DIBELoss": DIBELoss(**kw),
        "FocalTverskyLoss": FocalTverskyLoss(**kw),
        "ComboLoss": ComboLoss(**kw),
        "ExpLogLoss": ExpLogLoss(**kw),
        "HybridFocalLoss": HybridFocalLoss(**kw),
    }


def time_once(loss: torch.nn.Module | None, logits: torch.Tensor, labels: torch.Tensor) -> float:
    x = logits.detach().clone().requires_grad_(True)
    if x.is_cuda:
        torch.cuda.synchronize()
    start = time.perf_counter()
    value = torch.nn.functional.cross_entropy(x, labels[:, 0].long()) if loss is None else loss(x, labels)
    value.backward()
    if x.is_cuda:
        torch.cuda.synchronize()
    return time.perf_counter() - start


def run(shape: tuple[int, ...], rounds: int, device: str) -> None:
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(shape, generator=gen).to(device)
    labels = torch.randint(0, shape[1], (shape[0], 1, *shape[2:]), generator=gen).float().to(device)
    losses = make_losses()
    times: dict[str, list[float]] = {name: [] for name in losses}
    for loss in losses.values():  # warm-up
        time_once(loss, logits, labels)
    for _ in range(rounds):
        for name, loss in losses.items():
            times[name].append(time_once(loss, logits, labels))
    med = {n: statistics.median(t) for n, t in times.items()}
    best = {n: min(t) for n, t in times.items()}

    def round_ratio(name: str, base: str) -> float:  # median over rounds of the ratio within each round
        return statistics.median(a / b for a, b in zip(times[name], times[base]))

    print(f"\nlogits {'x'.join(map(str, shape))} ({device}, {torch.get_num_threads()} threads, {rounds} rounds)")
    print("ratios: 'rnd' = median over rounds of the ratio within a round, 'min' = ratio of the minima")
    print(f"{'loss':<18}{'median ms':>10}{'min ms':>9}{'/DiceFocal rnd':>16}{'/DiceFocal min':>16}"
          f"{'/CE rnd':>9}{'/CE min':>9}")
    for name in losses:
        print(
            f"{name:<18}{1e3 * med[name]:>10.1f}{1e3 * best[name]:>9.1f}"
            f"{round_ratio(name, 'DiceFocalLoss'):>16.2f}{best[name] / best['DiceFocalLoss']:>16.2f}"
            f"{round_ratio(name, 'CrossEntropy'):>9.2f}{best[name] / best['CrossEntropy']:>9.2f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--shapes", nargs="+", default=["16x2x320x320", "8x9x224x224"])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    for text in args.shapes:
        run(tuple(int(v) for v in text.split("x")), args.rounds, args.device)


if __name__ == "__main__":
    main()
