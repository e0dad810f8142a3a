"""Speed of the weight / distance maps and of the losses that use them, against the baselines they replace.

1. DBCE weight map (``DilationWeightMap``) vs the paper's definition with ``scipy.ndimage.binary_dilation`` and a
   ``skimage.morphology.disk`` (per class: dilate, normalise, max), at the DBCE paper's settings: 448x448 binary
   at radius 20 and 320x320 with 9 classes at radius 10; and our map at radius 5 vs 50.
2. One loss step (forward + backward) with precomputed maps vs ``torch.nn.functional.cross_entropy`` on the same
   logits and labels (MONAI's ``DiceCELoss`` for scale), at 16x2x320x320 and 8x9x224x224.
3. ``BoundaryLoss`` with a precomputed signed distance map vs ``monai.losses.BoundaryLoss`` (which computes the
   maps on every call), per step.

Timings on a shared machine are noisy: each case is timed ``--repeats`` times, baseline and ours interleaved, and
the ratios use the medians (the minima are printed too). No test asserts a timing.

Run from the repository root: ``python benchmarks/bench_weights_losses.py [--repeats 7] [--json out.json]``.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from monai.losses import BoundaryLoss as MonaiBoundaryLoss
from monai.losses import DiceCELoss
from scipy import ndimage
from skimage.morphology import disk

from monai_imbalance.apps.synthetic import make_synthetic_pair
from monai_imbalance.losses import (
    BalancedCELoss,
    BoundaryLoss,
    DilatedBalancedCELoss,
    ModifiedBoundaryLoss,
    UncertaintyWeightedCELoss,
)
from monai_imbalance.transforms import DilationWeightMap, SignedDistanceMap, UncertaintyWeightMap


def binary_dilation_map(label: np.ndarray, radius: int) -> np.ndarray:
    """Baseline: Eqs. 3-5 of the DBCE paper with a morphological dilation by a disk."""
    element = disk(radius)
    weight_map = np.zeros(label.shape, dtype=np.float32)
    for c in np.unique(label):
        dilated = ndimage.binary_dilation(label == c, structure=element)
        np.maximum(weight_map, dilated / np.float32(1 + dilated.sum()), out=weight_map)
    return weight_map


def whole_image_edt_map(label: np.ndarray, radius: float) -> np.ndarray:
    """Reference for the radius question: one distance transform of the whole image per class, no cropping (the
    cost every radius would have without the bounding-box crops; ``DilationWeightMap`` never exceeds it)."""
    weight_map = np.zeros(label.shape, dtype=np.float32)
    for c in np.unique(label):
        dilated = ndimage.distance_transform_edt(label != c) <= radius
        np.maximum(weight_map, dilated / np.float32(1 + dilated.sum()), out=weight_map)
    return weight_map


def time_interleaved(functions: dict[str, Callable[[], object]], repeats: int) -> dict[str, dict[str, float]]:
    """Run each function once to warm up, then ``repeats`` rounds of all of them; seconds, median and min."""
    for fn in functions.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in functions}
    for _ in range(repeats):
        for name, fn in functions.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: {"median": statistics.median(t), "min": min(t)} for name, t in times.items()}


def show(title: str, results: dict[str, dict[str, float]], baseline: str) -> dict[str, dict[str, float]]:
    base = results[baseline]
    print(f"\n{title}")
    for name, t in results.items():
        ratio = t["median"] / base["median"]
        print(f"  {name:<44} median {1e3 * t['median']:9.2f} ms   min {1e3 * t['min']:9.2f} ms   "
              f"x{ratio:6.3f} of {baseline}")
    return results


def bench_maps(repeats: int) -> dict:
    out = {}
    binary = make_synthetic_pair((448, 448), fg_fraction=0.05, num_objects=3, seed=0)["label"]
    multi = make_synthetic_pair((320, 320), fg_fraction=0.3, num_classes=9, num_objects=3, seed=0)["label"]
    for name, label, radius in (("448x448 binary, R=20", binary, 20), ("320x320 9 classes, R=10", multi, 10)):
        functions = {
            "scipy binary_dilation + disk": lambda label=label, radius=radius: binary_dilation_map(label[0], radius),
            "DilationWeightMap": lambda label=label, radius=radius: DilationWeightMap(radius)(label),
        }
        out[name] = show(f"DBCE weight map, {name}", time_interleaved(functions, repeats), next(iter(functions)))
    for name, label in (("448x448 binary", binary), ("320x320 9 classes", multi)):
        functions = {
            f"DilationWeightMap R={r}": lambda label=label, r=r: DilationWeightMap(r)(label) for r in (5, 20, 50)
        }
        functions["whole-image EDT per class (any R)"] = lambda label=label: whole_image_edt_map(label[0], 20)
        functions["scipy binary_dilation + disk R=5"] = lambda label=label: binary_dilation_map(label[0], 5)
        results = time_interleaved(functions, repeats)
        out[f"radius, {name}"] = show(f"DBCE weight map vs radius, {name}", results, "DilationWeightMap R=5")
    results = time_interleaved(
        {
            "UncertaintyWeightMap sigma=2": lambda: UncertaintyWeightMap(2.0)(multi),
            "SignedDistanceMap 9 classes": lambda: SignedDistanceMap(num_classes=9)(multi),
        },
        repeats,
    )
    out["other maps, 320x320 9 classes"] = show("Other maps, 320x320 9 classes", results,
                                                 "UncertaintyWeightMap sigma=2")
    return out


def loss_batch(batch: int, classes: int, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    labels = [
        make_synthetic_pair((size, size), fg_fraction=0.1, num_classes=classes, num_objects=2, seed=s)["label"]
        for s in range(batch)
    ]
    target = torch.as_tensor(np.stack(labels)).long()
    logits = torch.randn(batch, classes, size, size, generator=torch.Generator().manual_seed(0))
    return logits.requires_grad_(True), target


def step(loss_fn: Callable[[torch.Tensor], torch.Tensor], logits: torch.Tensor) -> Callable[[], None]:
    def run() -> None:
        logits.grad = None
        loss_fn(logits).backward()

    return run


def bench_loss_shape(batch: int, classes: int, size: int, repeats: int) -> dict:
    logits, target = loss_batch(batch, classes, size)
    radius = 20 if classes == 2 else 10
    dbce = DilatedBalancedCELoss(softmax=True, to_onehot_y=True, radius=radius)
    uwce = UncertaintyWeightedCELoss(softmax=True, to_onehot_y=True, sigma=2.0)
    bce = BalancedCELoss(softmax=True, to_onehot_y=True)
    dice_ce = DiceCELoss(softmax=True, to_onehot_y=True)
    dbce_map = dbce.compute_weight_map(target)
    uwce_map = uwce.compute_weight_map(target)
    index = target[:, 0]
    functions = {
        "F.cross_entropy": step(lambda x: F.cross_entropy(x, index), logits),
        "DilatedBalancedCELoss (precomputed map)": step(lambda x: dbce(x, target, weight_map=dbce_map), logits),
        "UncertaintyWeightedCELoss (precomputed)": step(lambda x: uwce(x, target, weight_map=uwce_map), logits),
        "BalancedCELoss (batch frequencies)": step(lambda x: bce(x, target), logits),
        "monai DiceCELoss": step(lambda x: dice_ce(x, target), logits),
    }
    name = f"{batch}x{classes}x{size}x{size}, {torch.get_num_threads()} thread(s)"
    results = time_interleaved(functions, repeats)
    return show(f"Loss step (forward + backward), logits {name}", results, "F.cross_entropy")


def per_thread_count(bench: Callable[[int, int, int, int], dict], repeats: int, threads: list[int]) -> dict:
    """Run ``bench`` for both shapes under each torch thread count (on a shared machine, one thread is the least
    disturbed by other processes; the default count is what a training run uses)."""
    out = {}
    default = torch.get_num_threads()
    try:
        for n in threads:
            torch.set_num_threads(n)
            for b, c, s in ((16, 2, 320), (8, 9, 224)):
                out[f"{b}x{c}x{s}x{s}, {n} thread(s)"] = bench(b, c, s, repeats)
    finally:
        torch.set_num_threads(default)
    return out


def bench_losses(repeats: int, threads: list[int]) -> dict:
    return per_thread_count(bench_loss_shape, repeats, threads)


def bench_boundary_shape(batch: int, classes: int, size: int, repeats: int) -> dict:
    logits, target = loss_batch(batch, classes, size)
    kwargs = dict(softmax=True, to_onehot_y=True, include_background=False)
    ours = BoundaryLoss(**kwargs)
    wu = ModifiedBoundaryLoss(softmax=True, to_onehot_y=True)
    monai_loss = MonaiBoundaryLoss(**kwargs)
    sdm = torch.stack([torch.as_tensor(SignedDistanceMap(num_classes=classes)(t.numpy())) for t in target])
    functions = {
        "monai.losses.BoundaryLoss (maps every step)": step(lambda x: monai_loss(x, target), logits),
        "BoundaryLoss (precomputed map)": step(lambda x: ours(x, target, dist_map=sdm), logits),
        "ModifiedBoundaryLoss (precomputed map)": step(lambda x: wu(x, target, dist_map=sdm), logits),
        "BoundaryLoss (map computed on the fly)": step(lambda x: ours(x, target), logits),
        "F.cross_entropy": step(lambda x: F.cross_entropy(x, target[:, 0]), logits),
    }
    results = time_interleaved(functions, max(3, repeats // 2))
    name = f"{batch}x{classes}x{size}x{size}, {torch.get_num_threads()} thread(s)"
    return show(f"Boundary loss step, logits {name}", results, "monai.losses.BoundaryLoss (maps every step)")


def bench_boundary(repeats: int, threads: list[int]) -> dict:
    return per_thread_count(bench_boundary_shape, repeats, threads)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--json", default=None, help="write the results here")
    parser.add_argument("--only", choices=["maps", "losses", "boundary"], default=None)
    parser.add_argument("--threads", default=None, help="comma-separated torch thread counts (default: 1 and all)")
    args = parser.parse_args()
    threads = sorted({1, torch.get_num_threads()})
    if args.threads is not None:
        threads = [int(t) for t in args.threads.split(",")]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {platform.processor() or platform.machine()}")
    results = {}
    if args.only in (None, "maps"):
        results["maps"] = bench_maps(args.repeats)
    if args.only in (None, "losses"):
        results["losses"] = bench_losses(args.repeats, threads)
    if args.only in (None, "boundary"):
        results["boundary"] = bench_boundary(args.repeats, threads)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
