"""The precompute transforms at 3-D scale: label dtypes, voxel count and radius, each against the baseline it names.

1. ``dtype``: every precompute transform (``MaskAwareWindows``, ``ProbabilisticCropCenters``, ``ConnectedComponents``,
   ``DilationWeightMap``, ``UncertaintyWeightMap``, ``SignedDistanceMap``, ``BorderWeightMap``) on the labels a MONAI
   loader produces (float32 as ``LoadImaged`` gives by default, int64, bool; numpy, torch, MetaTensor) against the
   same values as a uint8 numpy label, timed in turn. The peak memory beside is the extra over the uint8 run in
   bytes per voxel (``tracemalloc``, which sees numpy's allocations; goal: at most 1, one uint8 copy).
2. ``scale``: the maps of a 9-class volume at 64^3, 128^3 and 256^3: nanoseconds per voxel, the 256^3 / 128^3 ratio
   of that cost (goal: 1.3 at most), and each map's time against 9 whole-volume
   ``scipy.ndimage.distance_transform_edt`` calls on the same volume (goal: at most 1).
3. ``radius``: ``DilationWeightMap`` at radius 50 against radius 5 (goal: 1.5 at most), for 40 small objects and for
   8 large ones, binary and with 3 classes, in 2-D (512x512) and 3-D (128^3).
4. ``acdc`` (with ``--acdc DIR``, the SSL4MIS form of ACDC: ``DIR/data/patientNNN_frameMM.h5``): the four maps of
   every whole volume's label, as uint8 and as float32 (what ``LoadImaged`` gives), summed over the volumes,
   against 4 whole-volume ``scipy.ndimage.distance_transform_edt`` calls per volume (one per class).

Minimum over ``--repeats`` runs (interleaved within a case); nothing else should run meanwhile. No test asserts a
timing. Run from the repository root::

    python benchmarks/bench_3d_maps.py [--only dtype|scale|radius|acdc] [--quick] [--repeats 3] [--acdc DIR]
"""

from __future__ import annotations

import argparse
import platform
import time
import tracemalloc
from collections.abc import Callable

import numpy as np
import torch
from monai.data import MetaTensor
from scipy import ndimage

from monai_imbalance.transforms import (
    BorderWeightMap,
    ConnectedComponents,
    DilationWeightMap,
    MaskAwareWindows,
    ProbabilisticCropCenters,
    SignedDistanceMap,
    UncertaintyWeightMap,
)


def boxes_volume(shape: tuple[int, ...], classes: int, boxes: int, size: tuple[int, int], seed: int = 0) -> np.ndarray:
    """``(1, *shape)`` uint8 label with ``boxes`` random boxes of random classes ``1..classes - 1``, sides in
    ``size``."""
    rng = np.random.default_rng(seed)
    label = np.zeros((1, *shape), dtype=np.uint8)
    for i in range(boxes):
        side = rng.integers(size[0], size[1] + 1, len(shape))
        start = rng.integers(0, np.maximum(np.array(shape) - side, 1))
        label[(0, *[slice(a, a + s) for a, s in zip(start, side)])] = 1 + i % (classes - 1)
    return label


def ball_objects(shape: tuple[int, ...], count: int, radius: float, classes: int, seed: int = 0) -> np.ndarray:
    """``(1, *shape)`` uint8 label with ``count`` balls of radius up to ``radius`` spread over the image."""
    rng = np.random.default_rng(seed)
    label = np.zeros((1, *shape), dtype=np.uint8)
    grid = np.ogrid[tuple(slice(0, n) for n in shape)]
    for i in range(count):
        centre = [rng.integers(int(radius), n - int(radius)) for n in shape]
        r = rng.uniform(radius / 2, radius)
        inside = sum((g - c) ** 2 for g, c in zip(grid, centre)) <= r * r
        label[0][inside] = 1 + i % classes
    return label


def best_time(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def peak_bytes(fn: Callable[[], object]) -> int:
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def label_variants(label: np.ndarray) -> dict[str, object]:
    """The label as the loaders give it; the baseline ``uint8 numpy`` first."""
    return {
        "uint8 numpy": label,
        "float32 numpy": label.astype(np.float32),
        "int64 numpy": label.astype(np.int64),
        "float32 torch": torch.from_numpy(label.astype(np.float32)),
        "int64 torch": torch.from_numpy(label.astype(np.int64)),
        "float32 MetaTensor": MetaTensor(torch.from_numpy(label.astype(np.float32))),
    }


def bench_dtype(repeats: int, quick: bool) -> None:
    big = boxes_volume((256, 256, 75) if quick else (512, 512, 150), 9, 40, (10, 40))
    maps = boxes_volume((128, 128, 64) if quick else (256, 256, 128), 9, 40, (6, 30))
    cases = [
        ("MaskAwareWindows 96^3", MaskAwareWindows(roi_size=(96, 96, 64 if quick else 96), rho=0.01), big),
        ("ProbabilisticCropCenters", ProbabilisticCropCenters(1.0), big),
        ("ConnectedComponents", ConnectedComponents(), big),
        ("DilationWeightMap R=10", DilationWeightMap(10.0), maps),
        ("UncertaintyWeightMap", UncertaintyWeightMap(2.0), maps),
        ("SignedDistanceMap 9 classes", SignedDistanceMap(num_classes=9), maps),
        ("BorderWeightMap", BorderWeightMap(), maps),
    ]
    print("\n1. label dtypes (ratio: time / the uint8 numpy label's; extra peak: bytes per voxel over uint8's)")
    print(f"{'transform':<29}{'label':<20}{'voxels':>11}{'seconds':>9}{'ratio':>7}{'extra peak B/vox':>18}")
    for name, transform, label in cases:
        variants = label_variants(label)
        fg = label != 0  # the binary form: bool against uint8 0/1
        variants["bool numpy (foreground)"] = fg
        variants["uint8 0/1 (foreground)"] = fg.view(np.uint8)
        times = {key: best_time(lambda v=value, t=transform: t(v), repeats) for key, value in variants.items()}
        peaks = {key: peak_bytes(lambda v=value, t=transform: t(v)) for key, value in variants.items()}
        for key in variants:
            if key.startswith("uint8 0/1"):
                continue  # the bool label's baseline
            base = "uint8 0/1 (foreground)" if key.startswith("bool") else "uint8 numpy"
            extra = (peaks[key] - peaks[base]) / label.size
            print(f"{name:<29}{key:<20}{label.size:>11}{times[key]:>9.4f}{times[key] / times[base]:>7.2f}"
                  f"{extra:>18.2f}")


def bench_scale(repeats: int, quick: bool) -> None:
    sizes = (64, 128) if quick else (64, 128, 256)
    transforms = {
        "DilationWeightMap R=10": DilationWeightMap(10.0),
        "SignedDistanceMap 9 classes": SignedDistanceMap(num_classes=9),
        "UncertaintyWeightMap": UncertaintyWeightMap(2.0),
        "BorderWeightMap": BorderWeightMap(),
    }
    print("\n2. voxel count: 9-class volume with 24 boxes (sides n/16..n/5); ns per voxel; against 9 whole-volume "
          "scipy EDTs")
    per_voxel: dict[str, dict[int, float]] = {name: {} for name in transforms}
    for n in sizes:
        label = boxes_volume((n, n, n), 9, 24, (n // 16, n // 5))
        base = best_time(lambda label=label: [ndimage.distance_transform_edt(label[0] != c) for c in range(9)],
                         1 if n >= 256 else repeats)
        print(f"  {n}^3: 9 x scipy distance_transform_edt {base:.3f} s ({1e9 * base / label.size:.0f} ns/voxel)")
        for name, transform in transforms.items():
            seconds = best_time(lambda t=transform, label=label: t(label), 1 if n >= 256 else repeats)
            per_voxel[name][n] = 1e9 * seconds / label.size
            print(f"    {name:<29}{seconds:>9.3f} s {per_voxel[name][n]:>7.0f} ns/voxel   /9 EDTs {seconds / base:.2f}")
    top = sizes[-1]
    print(f"  per-voxel cost {top}^3 / {top // 2}^3:",
          ", ".join(f"{name} {v[top] / v[top // 2]:.2f}" for name, v in per_voxel.items()))


def bench_radius(repeats: int) -> None:
    print("\n3. radius: DilationWeightMap R=50 / R=5")
    print(f"{'image':<12}{'objects':<22}{'labels':>8}{'R=5 s':>9}{'R=50 s':>9}{'ratio':>7}")
    for shape, large in (((512, 512), 40.0), ((128, 128, 128), 16.0)):
        for count, radius, kind in ((40, 4.0, "40 small"), (8, large, "8 large")):
            for classes in (1, 3):
                label = ball_objects(shape, count, radius, classes)
                small, wide = DilationWeightMap(5.0), DilationWeightMap(50.0)
                run5, run50 = (lambda: small(label)), (lambda: wide(label))  # noqa: B023 (called in this iteration)
                t5, t50 = [], []
                for _ in range(repeats):  # interleaved
                    t5.append(best_time(run5, 1))
                    t50.append(best_time(run50, 1))
                image = "x".join(map(str, shape))
                print(f"{image:<12}{kind + f' (r<={radius:g})':<22}{classes + 1:>8}{min(t5):>9.4f}{min(t50):>9.4f}"
                      f"{min(t50) / min(t5):>7.2f}")


def bench_acdc(folder: str, repeats: int) -> None:
    from pathlib import Path

    import h5py

    files = sorted(p for p in (Path(folder) / "data").glob("patient*_frame*.h5") if "_slice_" not in p.name)
    if not files:
        raise SystemExit(f"no patientNNN_frameMM.h5 volumes under {folder}/data")
    labels = []
    for path in files:
        with h5py.File(path, "r") as f:
            labels.append(np.asarray(f["label"], dtype=np.uint8)[None])
    voxels = sum(label.size for label in labels)
    print(f"\n4. ACDC (REAL): {len(labels)} label volumes {labels[0].shape[1:]}..., {voxels} voxels; seconds summed")
    base = best_time(lambda: [ndimage.distance_transform_edt(v[0] != c) for v in labels for c in range(4)], repeats)
    print(f"  4 x scipy distance_transform_edt per volume: {base:.3f} s")
    transforms = {
        "DilationWeightMap R=10": DilationWeightMap(10.0),
        "SignedDistanceMap 4 classes": SignedDistanceMap(num_classes=4),
        "UncertaintyWeightMap": UncertaintyWeightMap(2.0),
        "BorderWeightMap": BorderWeightMap(),
    }
    floats = [label.astype(np.float32) for label in labels]
    for name, transform in transforms.items():
        u8 = best_time(lambda t=transform: [t(v) for v in labels], repeats)
        f32 = best_time(lambda t=transform: [t(v) for v in floats], repeats)
        print(f"    {name:<29} uint8 {u8:>7.3f} s  float32 {f32:>7.3f} s ({f32 / u8:.2f}x)  "
              f"/ 4 scipy EDTs {u8 / base:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=["dtype", "scale", "radius", "acdc"], default=None)
    parser.add_argument("--acdc", default=None, help="folder of the SSL4MIS ACDC copy (holds data/): section 4")
    parser.add_argument("--quick", action="store_true", help="smaller volumes, no 256^3")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads, numpy "
          f"{np.__version__}, torch {torch.__version__}")
    if args.only in (None, "dtype"):
        bench_dtype(args.repeats, args.quick)
    if args.only in (None, "scale"):
        bench_scale(args.repeats, args.quick)
    if args.only in (None, "radius"):
        bench_radius(max(args.repeats, 5))
    if args.acdc and args.only in (None, "acdc"):
        bench_acdc(args.acdc, args.repeats)


if __name__ == "__main__":
    main()
