"""What tells small structures apart: per-slice counts of 3-D label volumes, Dice on the smallest cross-sections and
the share of slices where a present structure is missed entirely.

Volume Dice is dominated by the large cross-sections of a structure (the mid-ventricular slices of a heart, the
middle of an organ). A loss that handles imbalance well shows on the small ones: the apical slices of the
ventricles, the thin ends of an organ. Given predicted and true label volumes sliced along one axis,

- :func:`slice_class_counts` gives, per slice and class, the true area, the predicted area and the overlap;
- :func:`small_area_thresholds` fixes, per class, the area below which a cross-section counts as small: the
  ``percentile`` (default 25) of the true areas of the slices where the class is present, computed on the truth
  only, so every method is judged on the same slices;
- :func:`summarize_small_structures` reports per class (and group, e.g. ACDC's ED and ES): the number of slices
  where the class is present and small, the mean per-slice Dice on the small ones (a missed slice counts 0, a
  false positive on a slice without the class is not counted there), and the shares of present (and of small)
  slices with no predicted pixel of the class at all.

Example:
    >>> import numpy as np
    >>> label = np.zeros((3, 8, 8), int); label[0, 2:6, 2:6] = 1; label[1, 3:5, 3:5] = 1; label[2, 4, 4] = 1
    >>> pred = label.copy(); pred[2] = 0
    >>> counts = slice_class_counts(pred, label, num_classes=2)
    >>> thresholds = small_area_thresholds(counts, percentile=50)   # true areas 16, 4, 1 -> 4
    >>> summary = summarize_small_structures(counts, thresholds, class_names=["LV"])
    >>> summary["all"]["LV"]["small_slices"], summary["all"]["LV"]["small_dice"], summary["all"]["LV"]["missed_share"]
    (2, 0.5, 0.3333333333333333)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = [
    "SLICE_COUNT_FIELDS",
    "slice_class_counts",
    "small_area_thresholds",
    "summarize_small_structures",
    "flat_small_structure_metrics",
]

#: the values of :func:`slice_class_counts` along its last axis
SLICE_COUNT_FIELDS = ("true_area", "pred_area", "overlap")


def _as_label_volume(value: Any, name: str) -> np.ndarray:
    from monai.utils import convert_to_numpy

    array = np.asarray(convert_to_numpy(value))
    if array.ndim == 4 and array.shape[0] == 1:  # channel-first (1, D, H, W)
        array = array[0]
    if array.ndim != 3:
        raise ValueError(f"{name} must be a 3-D label volume (D, H, W) or (1, D, H, W), got shape {array.shape}.")
    if not np.issubdtype(array.dtype, np.integer):
        if not np.all(np.isfinite(array)) or not np.array_equal(array, np.rint(array)):
            raise ValueError(f"{name} must hold class indices (whole numbers), got non-integer values.")
    return array.astype(np.int64, copy=False)


def slice_class_counts(
    pred: Any, label: Any, num_classes: int, axis: int = 0, include_background: bool = False
) -> np.ndarray:
    """Per slice along ``axis`` and per class: ``[true area, predicted area, overlap]`` in pixels.

    Args:
        pred, label: class-index volumes of the same shape, ``(D, H, W)`` or channel-first ``(1, D, H, W)``; numpy,
            torch or MetaTensor.
        num_classes: classes including the background.
        axis: the slicing axis of the 3-D volume (0 for ``(D, H, W)`` volumes).
        include_background: also count class 0.

    Returns:
        ``int64`` array ``(slices, classes, 3)`` (classes ``1..num_classes-1`` unless ``include_background``).

    Raises:
        ValueError: shapes differ, not 3-D, non-integer values, values outside ``0..num_classes-1``.
    """
    p, y = _as_label_volume(pred, "pred"), _as_label_volume(label, "label")
    if p.shape != y.shape:
        raise ValueError(f"pred {p.shape} and label {y.shape} must have the same shape.")
    if num_classes < 2:
        raise ValueError(f"num_classes must be >= 2, got {num_classes}.")
    for name, a in (("pred", p), ("label", y)):
        if a.size and (a.min() < 0 or a.max() >= num_classes):
            raise ValueError(f"{name} has values outside 0..{num_classes - 1} (min {a.min()}, max {a.max()}).")
    if not -3 <= axis < 3:
        raise ValueError(f"axis must be 0, 1 or 2, got {axis}.")
    p, y = np.moveaxis(p, axis, 0), np.moveaxis(y, axis, 0)
    classes = range(0 if include_background else 1, num_classes)
    out = np.empty((p.shape[0], len(classes), 3), dtype=np.int64)
    for j, c in enumerate(classes):
        pc, yc = p == c, y == c
        out[:, j, 0] = yc.sum((1, 2))
        out[:, j, 1] = pc.sum((1, 2))
        out[:, j, 2] = (pc & yc).sum((1, 2))
    return out


def small_area_thresholds(counts: np.ndarray, percentile: float = 25.0) -> np.ndarray:
    """Per class, the ``percentile`` of the true areas over the slices where the class is present (NaN for a class
    present nowhere). ``counts``: ``(slices, classes, 3)`` from :func:`slice_class_counts`, all cases stacked."""
    counts = np.asarray(counts)
    if counts.ndim != 3 or counts.shape[-1] != len(SLICE_COUNT_FIELDS):
        raise ValueError(f"counts must be (slices, classes, 3), got shape {counts.shape}.")
    if not 0 <= percentile <= 100:
        raise ValueError(f"percentile must be in [0, 100], got {percentile}.")
    out = np.full(counts.shape[1], np.nan)
    for c in range(counts.shape[1]):
        areas = counts[:, c, 0][counts[:, c, 0] > 0]
        if areas.size:
            out[c] = np.percentile(areas, percentile)
    return out


def _class_summary(counts: np.ndarray, threshold: float) -> dict[str, Any]:
    true, pred, overlap = counts[:, 0], counts[:, 1], counts[:, 2]
    present = true > 0
    small = present & (true <= threshold)
    dice = np.where(present, 2.0 * overlap / np.maximum(true + pred, 1), np.nan)
    missed = present & (pred == 0)

    def share(mask: np.ndarray, of: np.ndarray) -> float:
        return float(mask[of].mean()) if of.any() else float("nan")

    return {
        "threshold": float(threshold),
        "present_slices": int(present.sum()),
        "small_slices": int(small.sum()),
        "slice_dice": float(dice[present].mean()) if present.any() else float("nan"),
        "small_dice": float(dice[small].mean()) if small.any() else float("nan"),
        "missed_slices": int(missed.sum()),
        "missed_share": share(missed, present),
        "missed_small_share": share(missed, small),
        # slices without the class where the prediction has some: the other side of a small-structure trade-off
        "false_slices": int((~present & (pred > 0)).sum()),
    }


def summarize_small_structures(
    counts: np.ndarray,
    thresholds: Sequence[float] | np.ndarray,
    class_names: Sequence[str] | None = None,
    groups: Sequence[Any] | None = None,
) -> dict[str, dict[str, dict[str, Any]]]:
    """Small-structure measures per group and class.

    Args:
        counts: ``(slices, classes, 3)`` from :func:`slice_class_counts`, every slice of every case stacked.
        thresholds: per class, the area at or below which a present cross-section is small
            (:func:`small_area_thresholds`).
        class_names: names of the classes (default ``"1"``, ``"2"``, ...).
        groups: per slice, its group (e.g. ``"ED"`` / ``"ES"``); ``"all"`` is always reported.

    Returns:
        ``{group: {class: {"threshold", "present_slices", "small_slices", "slice_dice", "small_dice",
        "missed_slices", "missed_share", "missed_small_share", "false_slices"}}}``: ``slice_dice`` and
        ``small_dice`` are means of per-slice Dice over the present (small) slices, a missed slice counting 0;
        the shares are of present (small) slices with no predicted pixel of the class. NaN where no slice counts.
    """
    counts = np.asarray(counts)
    thresholds = np.asarray(thresholds, dtype=np.float64)
    if counts.ndim != 3 or counts.shape[-1] != len(SLICE_COUNT_FIELDS):
        raise ValueError(f"counts must be (slices, classes, 3), got shape {counts.shape}.")
    if thresholds.shape != (counts.shape[1],):
        raise ValueError(f"thresholds must have one value per class ({counts.shape[1]}), got {thresholds.shape}.")
    names = list(class_names) if class_names is not None else [str(c + 1) for c in range(counts.shape[1])]
    if len(names) != counts.shape[1]:
        raise ValueError(f"class_names has {len(names)} names for {counts.shape[1]} classes.")
    selections: dict[str, np.ndarray] = {"all": np.ones(counts.shape[0], dtype=bool)}
    if groups is not None:
        groups = np.asarray(list(groups), dtype=object)
        if groups.shape[0] != counts.shape[0]:
            raise ValueError(f"groups has {groups.shape[0]} entries for {counts.shape[0]} slices.")
        for g in dict.fromkeys(groups.tolist()):
            selections[str(g)] = groups == g
    return {
        group: {names[c]: _class_summary(counts[mask, c], thresholds[c]) for c in range(counts.shape[1])}
        for group, mask in selections.items()
    }


def flat_small_structure_metrics(summary: Mapping[str, Mapping[str, Mapping[str, Any]]], prefix: str = ""
                                 ) -> dict[str, float]:
    """Scalars of :func:`summarize_small_structures` as ``{prefix}small_dice_<class>[_<group>]``,
    ``missed_share_<class>[_<group>]``, ``missed_small_share_...``, ``slice_dice_...``, plus their means over
    classes (``small_dice_mean``...)."""
    out: dict[str, float] = {}
    for group, classes in summary.items():
        tail = "" if group == "all" else f"_{group}"
        for metric in ("small_dice", "missed_share", "missed_small_share", "slice_dice"):
            values = [float(entry[metric]) for entry in classes.values()]
            for name, value in zip(classes, values):
                out[f"{prefix}{metric}_{name}{tail}"] = value
            finite = [v for v in values if np.isfinite(v)]
            out[f"{prefix}{metric}_mean{tail}"] = float(np.mean(finite)) if finite else float("nan")
    return out
