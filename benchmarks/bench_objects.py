"""Speed of the per-object metrics on a 512x512x150 multi-class volume, against named baselines, in one run.

1. Connected-component labelling, the step the metric is built on: ``connected-components-3d`` (what
   :func:`monai_imbalance.utils.label_components` calls) vs ``scipy.ndimage.label``, for one binary mask and for the
   eight foreground classes of the volume (cc3d: one pass over the index map; scipy: one call per class, on the
   whole volume and on each class's bounding box).
2. :func:`monai_imbalance.metrics.compute_object_metrics` (8 classes: components, matching at IoU >= 0.5, instance
   Dice, size bins, object and pixel OII), on class-index maps ``(1, 1, 512, 512, 150)`` and on one-hot inputs
   ``(1, 9, 512, 512, 150)``, vs one MONAI ``DiceMetric`` call on the same one-hot inputs (goal: at most 3x) and vs
   panoptica's semantic evaluation (connected components + ``NaiveThresholdMatching``, the same rule), one call per
   class (goal: faster). The counts of the two are checked equal before timing.

Timings are repeated; the script prints the minimum and the median and the ratios of the minima (the least
disturbed by other processes). Run from the repository root: ``python benchmarks/bench_objects.py`` (about 3-5
minutes on 2 cores; needs about 8 GB of memory for the one-hot volumes; ``--quick``: a 256x256x75 volume).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch
from scipy import ndimage


def timed(fn: Callable[[], object], rounds: int) -> tuple[float, float]:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times), statistics.median(times)


def make_volume(shape: tuple[int, int, int], classes: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A truth with 30 boxes of random size per class (2..28 voxels across), and a prediction that misses a tenth of
    them, shifts the rest by up to two voxels and adds small spurious boxes: uint8 index maps."""
    rng = np.random.default_rng(seed)
    truth = np.zeros(shape, np.uint8)
    pred = np.zeros(shape, np.uint8)
    for c in range(1, classes):
        for _ in range(30):
            centre = rng.integers(0, shape)
            r = rng.integers(1, 15, size=3)
            box = tuple(slice(max(0, a - b), a + b) for a, b in zip(centre, r))
            truth[box] = c
            if rng.random() < 0.1:
                continue
            shift = rng.integers(-2, 3, size=3)
            moved = tuple(slice(max(0, s.start + d), max(0, s.stop + d)) for s, d in zip(box, shift))
            pred[moved] = c
        for _ in range(10):
            centre = rng.integers(0, shape)
            pred[tuple(slice(max(0, a - 1), a + 1) for a in centre)] = c
    return truth, pred


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a 256x256x75 volume, fewer rounds")
    parser.add_argument("--rounds", type=int, default=None, help="repetitions of each timing (default 5, quick 3)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rounds = args.rounds or (3 if args.quick else 5)
    shape = (256, 256, 75) if args.quick else (512, 512, 150)
    classes = 9
    truth, pred = make_volume(shape, classes)
    print(f"volume {'x'.join(map(str, shape))}, {classes - 1} foreground classes, foreground "
          f"{100 * np.mean(truth > 0):.2f}% (truth), torch threads {torch.get_num_threads()}, {rounds} rounds")

    import cc3d

    from monai_imbalance.utils import label_components

    print("\n1. connected components (full connectivity)        min s   median s")
    one = truth == 3
    structure = ndimage.generate_binary_structure(3, 3)
    rows = {
        "cc3d, one class": lambda: cc3d.connected_components(one, connectivity=26),
        "scipy.ndimage.label, one class": lambda: ndimage.label(one, structure),
        "cc3d, 8 classes (one pass)": lambda: label_components(truth),
        "scipy, 8 classes (whole volume each)": lambda: [ndimage.label(truth == c, structure)
                                                         for c in range(1, classes)],
        "scipy, 8 classes (bounding boxes)": lambda: [ndimage.label(truth[b] == c, structure) for c, b in
                                                      enumerate(ndimage.find_objects(truth), start=1)],
    }
    times = {}
    for name, fn in rows.items():
        times[name] = timed(fn, rounds if "whole" not in name else max(1, rounds // 2))
        print(f"   {name:<46}{times[name][0]:8.3f}{times[name][1]:10.3f}")
    one_ratio = times["scipy.ndimage.label, one class"][0] / times["cc3d, one class"][0]
    print(f"   scipy / cc3d: one class {one_ratio:.1f}x, "
          f"8 classes {times['scipy, 8 classes (bounding boxes)'][0] / times['cc3d, 8 classes (one pass)'][0]:.1f}x "
          f"(boxes), {times['scipy, 8 classes (whole volume each)'][0] / times['cc3d, 8 classes (one pass)'][0]:.1f}x "
          "(whole volume)")

    from monai.metrics import DiceMetric

    from monai_imbalance.metrics import compute_object_metrics

    y_idx = torch.from_numpy(truth)[None, None]
    p_idx = torch.from_numpy(pred)[None, None]
    eye = torch.eye(classes, dtype=torch.float32)
    y_hot = eye[y_idx[0, 0].long()].movedim(-1, 0)[None].contiguous()
    p_hot = eye[p_idx[0, 0].long()].movedim(-1, 0)[None].contiguous()
    dice = DiceMetric(include_background=False, reduction="mean_batch")

    ours = compute_object_metrics(p_idx, y_idx, num_classes=classes)
    try:
        from panoptica import (
            ConnectedComponentsInstanceApproximator,
            InputType,
            NaiveThresholdMatching,
            Panoptica_Evaluator,
        )
        from panoptica.metrics import Metric

        evaluator = Panoptica_Evaluator(
            expected_input=InputType.SEMANTIC, instance_approximator=ConnectedComponentsInstanceApproximator(),
            instance_matcher=NaiveThresholdMatching(matching_threshold=0.5), instance_metrics=[Metric.DSC, Metric.IOU],
            global_metrics=[Metric.DSC], decision_metric=None, verbose=False, log_times=False)

        def panoptica_all() -> list:
            return [evaluator.evaluate((pred == c).astype(np.uint8), (truth == c).astype(np.uint8),
                                       verbose=False)["ungrouped"] for c in range(1, classes)]

        results = panoptica_all()
        for c, r in enumerate(results, start=1):
            assert (ours[c]["tp"], ours[c]["fp"], ours[c]["fn"]) == (r.tp, r.fp, r.fn), c
        print("\n   counts equal panoptica's for all 8 classes: "
              + ", ".join(f"{c}: {ours[c]['tp']}/{ours[c]['fp']}/{ours[c]['fn']}" for c in range(1, classes))
              + " (tp/fp/fn)")
    except ImportError:
        panoptica_all = None
        print("\n   panoptica not installed: its row is skipped (pip install panoptica)")

    print("\n2. per-object metrics, 8 classes                    min s   median s")
    rows = {
        "compute_object_metrics, index maps": lambda: compute_object_metrics(p_idx, y_idx, num_classes=classes),
        "compute_object_metrics, one-hot": lambda: compute_object_metrics(p_hot, y_hot),
        "MONAI DiceMetric, one-hot (baseline)": lambda: (dice.reset(), dice(p_hot, y_hot)),
    }
    if panoptica_all is not None:
        rows["panoptica, one call per class (baseline)"] = panoptica_all
    times = {}
    for name, fn in rows.items():
        times[name] = timed(fn, rounds if "panoptica" not in name else max(1, rounds // 2))
        print(f"   {name:<46}{times[name][0]:8.3f}{times[name][1]:10.3f}")
    base = times["MONAI DiceMetric, one-hot (baseline)"][0]
    for name in ("compute_object_metrics, index maps", "compute_object_metrics, one-hot"):
        line = f"   {name}: {times[name][0] / base:.2f}x DiceMetric (goal <= 3x)"
        if panoptica_all is not None:
            pan = times["panoptica, one call per class (baseline)"][0]
            line += f", {times[name][0] / pan:.3f}x panoptica ({pan / times[name][0]:.1f}x faster; goal: faster)"
        print(line)


if __name__ == "__main__":
    main()
