"""End-to-end OII-guided search vs grid search on SYNTHETIC imbalanced data, on CPU in a few minutes.

Each evaluation trains a small BasicUNet (2-D, one sigmoid channel) on synthetic 64x64 images with about 2% foreground
(``monai_imbalance.apps.synthetic``), with ``TverskyLoss`` (or ``DIBEDisLoss``) at false-positive weight ``alpha`` and
``beta = 1 - alpha``, then measures OII, IoU and PA (the DIBE paper's Eqs. 13-15, 20, 21; PA = TP / (TP + FP)) on
held-out images. ``oii_guided_search`` bisects alpha until the OII falls in the target interval (the paper's
(0.3, 0.4) by default); ``grid_search`` trains k + 1 models and keeps the best IoU. The output follows the layout of the
paper's Table 3. The two searches share one trace file, so an evaluation both need is trained once, and a rerun
resumes (delete the output folder or pass ``--fresh`` to start over).

The data are SYNTHETIC look-alikes, not the paper's THC448: the numbers show the mechanics, not the paper's results.

    python benchmarks/oii_search_synthetic.py [--loss tversky|dibe_dis] [--iters 150] [--out oii_search_synthetic_out]
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

import numpy as np
import torch
from monai.losses import TverskyLoss
from monai.networks.nets import BasicUNet

from monai_imbalance.apps.synthetic import make_synthetic_dataset
from monai_imbalance.losses import DIBEDisLoss
from monai_imbalance.metrics import OutputImbalanceIndexMetric
from monai_imbalance.tuning import format_trace, grid_search, oii_guided_search

COLUMNS = ["step", "alpha", "beta", "oii", "iou", "pa"]


def make_data(num_train: int, num_val: int, seed: int = 0):
    pairs = make_synthetic_dataset(
        num_train + num_val, seed=seed, spatial_size=(64, 64), fg_fraction=0.02, num_objects=2, shape="mixed",
        contrast=0.25,
    )
    images = torch.from_numpy(np.stack([p["image"] for p in pairs]))
    labels = torch.from_numpy(np.stack([p["label"] for p in pairs])).float()
    return (images[:num_train], labels[:num_train]), (images[num_train:], labels[num_train:])


def make_evaluate(loss_name: str, train, val, iters: int, batch_size: int = 8):
    (x_train, y_train), (x_val, y_val) = train, val

    def evaluate(alpha: float) -> dict[str, float]:
        start = time.perf_counter()
        torch.manual_seed(0)  # same initialisation and batches for every alpha
        net = BasicUNet(spatial_dims=2, in_channels=1, out_channels=1, features=(8, 8, 16, 32, 64, 8))
        if loss_name == "tversky":
            loss_fn = TverskyLoss(sigmoid=True, alpha=alpha, beta=1.0 - alpha)
        else:
            loss_fn = DIBEDisLoss(sigmoid=True, alpha=alpha, beta=1.0 - alpha)
        optimizer = torch.optim.Adam(net.parameters(), lr=3e-3)
        gen = torch.Generator().manual_seed(0)
        net.train()
        for _ in range(iters):
            idx = torch.randint(0, len(x_train), (batch_size,), generator=gen)
            optimizer.zero_grad()
            loss_fn(net(x_train[idx]), y_train[idx]).backward()
            optimizer.step()
        net.eval()
        metric = OutputImbalanceIndexMetric(include_background=True, get_counts=True)
        with torch.no_grad():
            pred = (torch.sigmoid(net(x_val)) >= 0.5).float()
        metric(y_pred=pred, y=y_val)
        oii, tp, fp, fn = (float(v.reshape(-1)[0]) for v in metric.aggregate())
        return {
            "oii": oii,
            "iou": tp / max(tp + fp + fn, 1.0),
            "pa": tp / max(tp + fp, 1.0),
            "tp": tp,
            "fp": fp,
            "fn": fn,
            "train_s": round(time.perf_counter() - start, 1),
        }

    return evaluate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--loss", choices=["tversky", "dibe_dis"], default="tversky")
    parser.add_argument("--interval", type=float, nargs=2, default=(0.3, 0.4))
    parser.add_argument("--low", type=float, default=0.1)
    parser.add_argument("--high", type=float, default=0.9)
    parser.add_argument("--max-steps", type=int, default=4)
    parser.add_argument("--k", type=int, default=4, help="grid: k equal parts, k + 1 models")
    parser.add_argument("--iters", type=int, default=150, help="training iterations per model")
    parser.add_argument("--out", default="oii_search_synthetic_out")
    parser.add_argument("--fresh", action="store_true", help="discard the stored trace")
    args = parser.parse_args()

    out = Path(args.out)
    if args.fresh and out.exists():
        shutil.rmtree(out)
    trace_file = out / f"trace_{args.loss}.json"
    torch.set_num_threads(max(1, torch.get_num_threads()))
    start = time.perf_counter()
    train, val = make_data(32, 16)
    evaluate = make_evaluate(args.loss, train, val, args.iters)
    common = {"interval": tuple(args.interval), "low": args.low, "high": args.high, "trace_file": trace_file}
    guided = oii_guided_search(evaluate, max_steps=args.max_steps, **common)
    grid = grid_search(evaluate, k=args.k, select="iou", **common)
    elapsed = time.perf_counter() - start

    loss_label = "TverskyLoss" if args.loss == "tversky" else "DIBEDisLoss"
    fg = float(train[1].mean())
    print("=" * 100)
    print(f"SYNTHETIC DATA - not the paper's THC448. {loss_label}, BasicUNet (2-D, 1 sigmoid channel), 64x64 images, "
          f"foreground {100 * fg:.1f}%, 32 train / 16 validation images, {args.iters} iterations per model.")
    print("alpha = false-positive weight, beta = 1 - alpha = false-negative weight (the paper's alpha).")
    print(f"Table 3 layout: grid search vs OII guidance, target OII interval {tuple(args.interval)}.")
    print("=" * 100)
    print(format_trace(grid.trace, COLUMNS, title="Grid Search (SYNTHETIC)"))
    print()
    print(format_trace(guided.trace, COLUMNS, title="OII Guidance (SYNTHETIC)"))
    print()
    best = next(r for r in grid.trace if r["alpha"] == grid.chosen)
    pick = next(r for r in guided.trace if r["alpha"] == guided.chosen)
    print(f"grid search : {len(grid.trace)} models, chosen alpha={grid.chosen:g} (best IoU) -> "
          f"IoU {best['iou']:.3f}, PA {best['pa']:.3f}, OII {best['oii']:.3f}")
    inside = "inside" if pick["in_interval"] else "closest to"
    print(f"OII guidance: {len(guided.trace)} models, chosen alpha={guided.chosen:g} (OII {inside} the interval) -> "
          f"IoU {pick['iou']:.3f}, PA {pick['pa']:.3f}, OII {pick['oii']:.3f}")
    distinct = {r["alpha"]: r["train_s"] for r in grid.trace + guided.trace}
    print(f"trace: {trace_file} (shared by both searches, reused on a rerun): {len(distinct)} distinct models, "
          f"{sum(distinct.values()):.0f} s of training when trained in this or an earlier run; "
          f"wall time of this run {elapsed:.0f} s")


if __name__ == "__main__":
    main()
