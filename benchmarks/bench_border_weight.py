"""Speed of the U-Net border weight map (``BorderWeightMap``, Ronneberger et al., Eq. 2) against the plain loop.

Baseline: the straightforward computation of ``d1``, ``d2``: one whole-image distance transform per object
(``scipy.ndimage.distance_transform_edt``), the two smallest distances per pixel kept by a running update, then
Eq. 2. Ours (:func:`monai_imbalance.transforms.weights.border_weight_map`) runs each object's distance transform on
its bounding box grown by the cutoff ``sigma * sqrt(2 ln 1e6)`` only (exact wherever the border term is at least
``1e-6 * w0``). Paper settings ``w0 = 10``, ``sigma = 5`` pixels, balanced class weights.

Cases: 2-D 512x512 with 5, 50 and 200 small objects, 3-D 128^3 with 5 and 40 (``--quick``: 3-D 64^3, one round).
Objects are small disks / balls of three foreground classes at random places (a few merge or touch; the table
counts the objects the map sees). Each case is timed ``--repeats`` times, ours and the baseline interleaved; the
table gives the medians, the ratio baseline / ours, the largest absolute difference between the two maps and the
largest weight (a rare class's balanced weight reaches hundreds in 3-D, where one float32 step is ``2^-15`` or
more). No test asserts a timing.

Run from the repository root: ``python benchmarks/bench_border_weight.py [--quick] [--repeats 3] [--json out.json]``.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from collections.abc import Callable

import numpy as np
from scipy import ndimage

from monai_imbalance.transforms.weights import border_weight_map
from monai_imbalance.utils import label_components

W0, SIGMA = 10.0, 5.0


def per_object_loop_map(label: np.ndarray, w0: float = W0, sigma: float = SIGMA) -> np.ndarray:
    """Baseline: Eq. 2 with a whole-image distance transform per object and the two smallest per pixel."""
    counts = np.bincount(label.ravel())
    present = counts > 0
    omega = np.zeros(counts.size)
    omega[present] = label.size / (np.count_nonzero(present) * counts[present])
    weight = omega[label]
    components, n = label_components(label)
    if n < 2:
        return weight.astype(np.float32)
    d1 = np.full(label.shape, np.inf)
    d2 = np.full(label.shape, np.inf)
    for k in range(1, n + 1):
        dist = ndimage.distance_transform_edt(components != k)
        np.minimum(d2, np.maximum(d1, dist), out=d2)
        np.minimum(d1, dist, out=d1)
    return (weight + w0 * np.exp(-((d1 + d2) ** 2) / (2 * sigma**2))).astype(np.float32)


def small_objects(shape: tuple[int, ...], count: int, seed: int) -> np.ndarray:
    """``count`` disks (2-D, radius 2-6) or balls (3-D, radius 2-4) of classes 1-3 at random centres."""
    rng = np.random.default_rng(seed)
    grid = np.indices(shape, sparse=True)
    label = np.zeros(shape, dtype=np.uint8)
    high = 7 if len(shape) == 2 else 5
    for _ in range(count):
        centre = [rng.integers(0, n) for n in shape]
        radius = rng.integers(2, high)
        inside = sum((g - c) ** 2 for g, c in zip(grid, centre)) <= radius**2
        label[inside] = rng.integers(1, 4)
    return label


def time_pair(functions: dict[str, Callable[[], np.ndarray]], repeats: int) -> tuple[dict[str, float], dict]:
    """Median seconds of each function over ``repeats`` interleaved rounds, and each one's last output."""
    times: dict[str, list[float]] = {name: [] for name in functions}
    outputs = {}
    for _ in range(repeats):
        for name, fn in functions.items():
            start = time.perf_counter()
            outputs[name] = fn()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}, outputs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="3-D cases at 64^3 and one round")
    parser.add_argument("--repeats", type=int, default=None, help="rounds per case (default 3, 1 with --quick)")
    parser.add_argument("--json", default=None, help="also write the results to this file")
    args = parser.parse_args()
    repeats = args.repeats or (1 if args.quick else 3)
    side = 64 if args.quick else 128
    cases = [((512, 512), 5), ((512, 512), 50), ((512, 512), 200), ((side,) * 3, 5), ((side,) * 3, 40)]

    border_weight_map(small_objects((64, 64), 5, seed=0))  # warm-up: imports, cc3d
    print(f"U-Net border weight map, w0={W0}, sigma={SIGMA}, balanced class weights; median of {repeats} round(s)")
    print(f"{platform.processor() or platform.machine()}, numpy {np.__version__}")
    header = (
        f"{'case':<22} {'objects':>7} {'ours (s)':>10} {'per-object loop (s)':>20} {'ratio':>7} "
        f"{'max |diff|':>11} {'max w':>8}"
    )
    print(header)
    print("-" * len(header))
    results = []
    for shape, count in cases:
        label = small_objects(shape, count, seed=count)
        n_objects = label_components(label)[1]
        medians, outputs = time_pair(
            {
                "ours": lambda label=label: border_weight_map(label, W0, SIGMA),
                "per-object loop": lambda label=label: per_object_loop_map(label),
            },
            repeats,
        )
        diff = float(np.abs(outputs["ours"] - outputs["per-object loop"]).max())
        top = float(outputs["per-object loop"].max())
        ratio = medians["per-object loop"] / medians["ours"]
        name = "x".join(map(str, shape)) + f", {count} placed"
        print(
            f"{name:<22} {n_objects:>7} {medians['ours']:>10.4f} {medians['per-object loop']:>20.4f} "
            f"{ratio:>6.1f}x {diff:>11.2e} {top:>8.1f}"
        )
        results.append(
            {
                "shape": shape,
                "placed": count,
                "objects": n_objects,
                "ours_s": medians["ours"],
                "baseline_s": medians["per-object loop"],
                "ratio": ratio,
                "max_abs_diff": diff,
                "max_weight": top,
            }
        )
    print("ratio: per-object loop time / ours (higher is better). max |diff|: the cutoff's bound 1e-6 * w0 plus")
    print("float32 rounding of the weights (a float32 step at weight w is up to 2^-23 * w)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"repeats": repeats, "w0": W0, "sigma": SIGMA, "cases": results}, f, indent=2)


if __name__ == "__main__":
    main()
