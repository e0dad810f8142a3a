"""Speed and memory of Mask-Aware Cropping against named baselines, measured in one run on this machine.

1. Window search (``mac_window_starts``) vs the paper's Algorithm 1 (a plain loop over windows with numpy slicing)
   and vs one ``np.count_nonzero`` pass over the same mask (the physical floor: the mask must be read once); and the
   window counts of the readable definition (a full integral image, ``integral_image_counts``) vs the piece-sum
   kernel that ``window_foreground_counts`` takes for masks of ``KERNEL_MIN_PIXELS`` or more.
2. Sampling 4 crops with cached windows vs 4 plain ``SpatialCrop`` calls on the same arrays (and MONAI's
   ``RandCropByPosNegLabeld`` with cached fg/bg indices against the same baseline).
3. A DataLoader pipeline (2 workers, batch 32, RGB 448^2 -> 224^2 crops, flips): crops/s with MAC vs
   ``RandCropByPosNegLabeld``.
4. Cache size for a 512x512x150 label volume: the MAC windows record vs MONAI's cached fg/bg indices.

Timings are repeated and interleaved; the script prints the minimum and the median of each and the ratios of
both (the minimum is the least disturbed by other processes). Run from the repository root:
``python benchmarks/bench_crop.py`` (about 2-3 minutes; ``--quick`` for a shorter run).
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch
from monai.data import CacheDataset, DataLoader, MetaTensor
from monai.transforms import (
    Compose,
    FgBgToIndicesd,
    RandCropByPosNegLabeld,
    RandFlipd,
    SpatialCrop,
)

from monai_imbalance.apps.synthetic import make_synthetic_dataset, make_synthetic_pair
from monai_imbalance.transforms import (
    MaskAwareWindows,
    MaskAwareWindowsd,
    ProbabilisticCropCenters,
    RandMaskAwareCrop,
    RandMaskAwareCropd,
    mac_window_starts,
)
from monai_imbalance.transforms._window_kernels import piece_window_counts
from monai_imbalance.transforms.utils import KERNEL_MIN_PIXELS, integral_image_counts


def algorithm_1(mask: np.ndarray, roi: tuple[int, ...], stride: int, rho: float) -> list[tuple[int, ...]]:
    """GETMACCOORDINATES (Algorithm 1 of the MAC paper), n-D: a plain loop over windows, numpy slicing."""
    starts = [range(0, n - r + 1, stride) for n, r in zip(mask.shape, roi)]
    coordinates = []
    for corner in itertools.product(*starts):
        crop = mask[tuple(slice(c, c + r) for c, r in zip(corner, roi))]
        if np.sum(crop != 0) / crop.size >= rho:
            coordinates.append(corner)
    return coordinates


def timings(functions: dict[str, Callable[[], object]], repeats: int) -> dict[str, list[float]]:
    """Run every function ``repeats`` times, interleaved, and return the wall times of each."""
    times: dict[str, list[float]] = {name: [] for name in functions}
    for _ in range(repeats):
        for name, fn in functions.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return times


def fmt(seconds: float) -> str:
    return f"{seconds * 1e3:9.3f} ms" if seconds >= 1e-3 else f"{seconds * 1e6:9.1f} us"


def report(times: dict[str, list[float]], baseline: str, title: str) -> None:
    print(f"\n{title}  [baseline: {baseline}]")
    base_min, base_med = min(times[baseline]), statistics.median(times[baseline])
    for name, values in times.items():
        lo, med = min(values), statistics.median(values)
        ratio = f"   ratio to baseline: min {lo / base_min:6.2f}x, median {med / base_med:6.2f}x"
        ratio = "" if name == baseline else ratio
        print(f"  {name:44s} min {fmt(lo)}  median {fmt(med)}  (n={len(values)}){ratio}")


def volume_label(seed: int = 0) -> np.ndarray:
    """A 512x512x150 label with 3% foreground: blobs from the synthetic generator at 128x128x38, upsampled x4
    (nearest) and cut to 150 slices (generating at full size takes minutes)."""
    small = make_synthetic_pair((128, 128, 38), fg_fraction=0.03, num_objects=6, seed=seed)["label"][0]
    big = small.repeat(4, axis=0).repeat(4, axis=1).repeat(4, axis=2)[:, :, :150]
    return np.ascontiguousarray(big)


def bench_window_search(quick: bool) -> None:
    print("=" * 110)
    print("1. Window search: mac_window_starts vs Algorithm 1 (plain loop) vs one np.count_nonzero pass")
    label_448 = make_synthetic_pair((448, 448), fg_fraction=0.03, seed=0)["label"][0]
    label_1024 = make_synthetic_pair((1024, 1024), fg_fraction=0.03, seed=0)["label"][0]
    label_vol = volume_label()
    cases = [
        ("448x448, 3% fg, crop 224, stride 16", label_448, (224, 224), 16),
        ("448x448, 3% fg, crop 224, stride 32", label_448, (224, 224), 32),
        ("448x448, 3% fg, crop 224, stride 64", label_448, (224, 224), 64),
        ("1024x1024, 3% fg, crop 512, stride 16", label_1024, (512, 512), 16),
        ("512x512x150, 3% fg, crop 96^3, stride 16", label_vol, (96, 96, 96), 16),
    ]
    rho = 0.05  # with 3% foreground most windows hold less than the paper's rho=0.25..0.75; 0.05 keeps some
    for title, mask, roi, stride in cases:
        _search_case(title, mask, roi, stride, rho, quick)


def _search_case(title: str, mask: np.ndarray, roi: tuple[int, ...], stride: int, rho: float, quick: bool) -> None:
    fast = mac_window_starts(mask, roi, stride, rho)
    slow = algorithm_1(mask, roi, stride, rho)
    assert fast.tolist() == [list(c) for c in slow], title  # identical lists, in the same order
    fg_share = np.count_nonzero(mask) / mask.size
    n_loop = 1 if mask.ndim == 3 else (2 if quick else 5)
    loop = timings({"Algorithm 1 (plain loop)": lambda: algorithm_1(mask, roi, stride, rho)}, n_loop)
    n_fast = 10 if quick else (20 if mask.ndim == 3 else 200)
    steps = (stride,) * mask.ndim
    assert np.array_equal(piece_window_counts(mask, roi, steps), integral_image_counts(mask, roi, steps)), title
    fast_times = timings(
        {
            "np.count_nonzero(mask)": lambda: np.count_nonzero(mask),
            "mac_window_starts": lambda: mac_window_starts(mask, roi, stride, rho),
            "counts: integral image (definition)": lambda: integral_image_counts(mask, roi, steps),
            "counts: piece kernel (_window_kernels)": lambda: piece_window_counts(mask, roi, steps),
        },
        n_fast,
    )
    times = {**fast_times, **loop}
    path = "kernel" if mask.size >= KERNEL_MIN_PIXELS else "definition"
    report(times, "mac_window_starts",
           f"{title} ({mask.dtype}, {fg_share:.1%} fg, {len(fast)} valid windows; counts by the {path})")
    ours, floor = times["mac_window_starts"], times["np.count_nonzero(mask)"]
    print(
        f"  -> speed-up vs Algorithm 1: {min(times['Algorithm 1 (plain loop)']) / min(ours):8.1f}x (min);"
        f"  cost vs one count_nonzero pass: {min(ours) / min(floor):5.2f}x (min), "
        f"{statistics.median(ours) / statistics.median(floor):5.2f}x (median)"
    )


def bench_sampling(quick: bool) -> None:
    print("=" * 110)
    print("2. Sampling 4 crops (224^2) from a 448^2 RGB image with cached windows / cached indices")
    pair = make_synthetic_pair((448, 448), fg_fraction=0.03, channels=3, seed=1)
    image, label = MetaTensor(torch.as_tensor(pair["image"])), MetaTensor(torch.as_tensor(pair["label"]))
    roi = (224, 224)
    record = MaskAwareWindows(roi, rho=0.05, stride=16)(label)
    crop = RandMaskAwareCrop(tau=3, num_samples=4)  # roi_size, rho and stride come from the record
    crop.set_random_state(0)
    rng = np.random.default_rng(0)
    starts = rng.integers(0, 448 - 224 + 1, size=(4, 2))

    def plain_image() -> list:
        return [SpatialCrop(roi_start=s, roi_end=s + 224)(image) for s in starts]

    def plain_both() -> list:
        return [[SpatialCrop(roi_start=s, roi_end=s + 224)(x) for x in (image, label)] for s in starts]

    data = {"image": image, "label": label}
    mac_d = RandMaskAwareCropd(["image", "label"], "label", tau=3, num_samples=4, windows_key="label_mac_windows")
    mac_d.set_random_state(0)
    cached_mac = MaskAwareWindowsd("label", roi, rho=0.05, stride=16)(data)
    posneg = RandCropByPosNegLabeld(["image", "label"], "label", roi, num_samples=4, fg_indices_key="label_fg_indices",
                                    bg_indices_key="label_bg_indices")
    posneg.set_random_state(0)
    cached_idx = FgBgToIndicesd("label")(data)
    n = 100 if quick else 400
    times = timings(
        {
            "4x SpatialCrop(image)": plain_image,
            "RandMaskAwareCrop(image, windows=record)": lambda: crop(image, windows=record),
        },
        n,
    )
    report(times, "4x SpatialCrop(image)", "array transform, image only")
    times = timings(
        {
            "4x SpatialCrop(image) + SpatialCrop(label)": plain_both,
            "RandMaskAwareCropd (windows_key)": lambda: mac_d(cached_mac),
            "RandCropByPosNegLabeld (fg/bg indices)": lambda: posneg(cached_idx),
        },
        n,
    )
    report(times, "4x SpatialCrop(image) + SpatialCrop(label)", "dictionary transforms, image and label")


def bench_loader(quick: bool) -> None:
    print("=" * 110)
    print("3. DataLoader pipeline: 2 workers, batch 32, RGB 448^2 -> 224^2 crops, random flips (crops per second)")
    items = make_synthetic_dataset(32 if quick else 64, spatial_size=(448, 448), fg_fraction=0.03, channels=3, seed=0)
    roi = (224, 224)
    flips = [RandFlipd(["image", "label"], prob=0.5, spatial_axis=a) for a in (0, 1)]
    pipelines = {
        "MaskAwareWindowsd + RandMaskAwareCropd": Compose([
            MaskAwareWindowsd("label", roi, rho=0.05, stride=16),
            RandMaskAwareCropd(["image", "label"], "label", tau=3, windows_key="label_mac_windows"),
            *flips,
        ]),
        "FgBgToIndicesd + RandCropByPosNegLabeld": Compose([
            FgBgToIndicesd("label"),
            RandCropByPosNegLabeld(["image", "label"], "label", roi, num_samples=1,
                                   fg_indices_key="label_fg_indices", bg_indices_key="label_bg_indices"),
            *flips,
        ]),
    }
    loaders = {}
    for name, transform in pipelines.items():
        dataset = CacheDataset(items, transform, progress=False)
        loaders[name] = DataLoader(dataset, batch_size=32, num_workers=2, persistent_workers=True, shuffle=True)
    epochs = 3 if quick else 6
    rates: dict[str, list[float]] = {name: [] for name in loaders}
    for loader in loaders.values():  # warm-up: start the workers
        for _ in loader:
            pass
    for _ in range(epochs):
        for name, loader in loaders.items():
            start = time.perf_counter()
            crops = sum(batch["image"].shape[0] for batch in loader)
            rates[name].append(crops / (time.perf_counter() - start))
    base = "FgBgToIndicesd + RandCropByPosNegLabeld"
    for name, values in rates.items():
        ratio = "" if name == base else (
            f"   ratio to {base}: max {max(values) / max(rates[base]):5.2f}x, "
            f"median {statistics.median(values) / statistics.median(rates[base]):5.2f}x"
        )
        print(f"  {name:44s} max {max(values):8.1f} crops/s  median {statistics.median(values):8.1f} crops/s{ratio}")


def nbytes(obj: object) -> int:
    if isinstance(obj, (np.ndarray, torch.Tensor)):
        return int(obj.nbytes) if isinstance(obj, np.ndarray) else obj.element_size() * obj.nelement()
    if isinstance(obj, dict):
        return sum(nbytes(v) for v in obj.values())
    return 0


def bench_cache_size() -> None:
    print("=" * 110)
    print("4. Cache size per image for a 512x512x150 label volume (3% foreground), crop 96^3, stride 16")
    label = volume_label()[None]
    start = time.perf_counter()
    windows = MaskAwareWindows((96, 96, 96), rho=0.25, stride=16)(label)
    t_windows = time.perf_counter() - start
    start = time.perf_counter()
    indices = FgBgToIndicesd("label")({"label": label})
    t_indices = time.perf_counter() - start
    start = time.perf_counter()
    centers = ProbabilisticCropCenters()(label)
    t_centers = time.perf_counter() - start
    fgbg = nbytes(indices["label_fg_indices"]) + nbytes(indices["label_bg_indices"])
    print(f"  MaskAwareWindows record (rho=0.25): {nbytes(windows):>12,d} bytes  ({len(windows['starts'])} windows, "
          f"precompute {t_windows:.2f} s)")
    print(f"  MONAI FgBgToIndicesd fg+bg indices: {fgbg:>12,d} bytes  (precompute {t_indices:.2f} s)"
          f"  -> {fgbg / max(nbytes(windows), 1):,.0f}x the MAC record")
    print(f"  ProbabilisticCropCenters record:    {nbytes(centers):>12,d} bytes  ({len(centers['cdf'])} foreground "
          f"voxels, precompute {t_centers:.2f} s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    parser.add_argument("--only", choices=["search", "sampling", "loader", "cache"], default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"numpy {np.__version__}, torch {torch.__version__}; timings: min and median over interleaved repeats")
    parts = {"search": bench_window_search, "sampling": bench_sampling, "loader": bench_loader}
    for name, fn in parts.items():
        if args.only in (None, name):
            fn(args.quick)
    if args.only in (None, "cache"):
        bench_cache_size()


if __name__ == "__main__":
    main()
