"""Step time (forward + backward) of ``BlobLoss`` against the loss it wraps, for 1, 10 and 100 components per image.

Goal: ``BlobLoss(loss)`` under 2x ``loss`` alone at 100 components per image. The blob term costs one
pass over the pixels whatever the number of components (segment sums over the component ids) for Dice, Tversky and
the one-vs-rest losses; ``squared_pred`` Dice has no fast path and goes through the batched path (one call of the
wrapped loss on ``N`` masked single-channel problems), shown as the contrast. The component ids are given, as the
bundles give them (``ConnectedComponentsd`` in the data loader); the time of labelling them on the fly
(``components=None``, a host copy and ``connected-components-3d``) is printed on its own line.

Each round times every variant once, in turn (interleaved, so that load from other processes hits all alike); the
report gives the median time over rounds and the median over rounds of the within-round ratio to the wrapped loss.

    python benchmarks/bench_blob.py [--rounds 9] [--shape 8x4x224x224] [--threads 0]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
from monai.losses import DiceLoss

from monai_imbalance.losses import BlobLoss, DIBELoss, FocalTverskyLoss
from monai_imbalance.transforms import connected_components


def make_target(shape: tuple[int, ...], components: int, seed: int = 0) -> torch.Tensor:
    """Class-index targets ``(B, 1, *spatial)`` with ``components`` separate square (cubic) objects per image over
    the foreground classes, sizes 2-12 px, one pixel apart at least."""
    rng = np.random.default_rng(seed)
    batch, channels, *spatial = shape
    out = np.zeros((batch, 1, *spatial), np.int64)
    for b in range(batch):
        placed = 0
        while placed < components:
            size = int(rng.integers(2, 13))
            start = [int(rng.integers(1, s - size - 1)) for s in spatial]
            box = tuple(slice(a - 1, a + size + 1) for a in start)
            if out[(b, 0, *box)].any():
                continue
            out[(b, 0, *(slice(a, a + size) for a in start))] = 1 + placed % (channels - 1)
            placed += 1
    return torch.from_numpy(out).float()


def time_once(loss: torch.nn.Module, logits: torch.Tensor, target: torch.Tensor, **kwargs: object) -> float:
    x = logits.detach().clone().requires_grad_(True)
    start = time.perf_counter()
    loss(x, target, **kwargs).backward()
    return time.perf_counter() - start


def run(shape: tuple[int, ...], rounds: int) -> None:
    kw = {"softmax": True, "to_onehot_y": True, "include_background": False}
    bases = {
        "DiceLoss": DiceLoss(**kw),
        "FocalTverskyLoss": FocalTverskyLoss(**kw),
        "DIBELoss": DIBELoss(**kw),
        "DiceLoss(squared_pred)": DiceLoss(squared_pred=True, **kw),
    }
    logits = torch.randn(shape, generator=torch.Generator().manual_seed(0))
    print(f"\nlogits {'x'.join(map(str, shape))} (cpu, {torch.get_num_threads()} threads, {rounds} rounds)")
    print(f"{'loss':<24}{'components':>11}{'loss ms':>9}{'blob ms':>9}{'blob/loss':>10}")
    for n in (1, 10, 100):
        target = make_target(shape, n)
        ids = torch.from_numpy(np.stack([connected_components(t) for t in target.numpy()]))
        for name, base in bases.items():
            if "squared" in name and n == 100 and shape[0] * n * np.prod(shape[2:]) > 2e8:
                continue  # the batched path holds N copies of one channel: skipped where that is too large
            blob = BlobLoss(base)
            time_once(base, logits, target), time_once(blob, logits, target, components=ids)  # warm-up
            plain, wrapped = [], []
            for _ in range(rounds):
                plain.append(time_once(base, logits, target))
                wrapped.append(time_once(blob, logits, target, components=ids))
            ratio = statistics.median(w / p for w, p in zip(wrapped, plain))
            print(f"{name:<24}{n:>11}{1e3 * statistics.median(plain):>9.1f}{1e3 * statistics.median(wrapped):>9.1f}"
                  f"{ratio:>9.2f}x")
        start = time.perf_counter()
        for t in target.numpy():
            connected_components(t)
        print(f"{'  labelling (cc3d)':<24}{n:>11}{'':>9}{1e3 * (time.perf_counter() - start):>9.1f}"
              "   (components=None adds this per step)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--shape", nargs="+", default=["8x4x224x224", "2x4x64x64x64"],
                        help="logit shapes BxCxHxW[xD] (C >= 2: softmax over C classes)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    for text in args.shape:
        run(tuple(int(v) for v in text.lower().split("x")), args.rounds)


if __name__ == "__main__":
    main()
