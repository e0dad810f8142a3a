"""Per-object evaluation of semantic segmentations: lesion-wise detection counts, instance Dice, recall by object size
and the object-level Output Imbalance Index.

Pixel Dice hides what class imbalance does to small structures: one large polyp found and three small ones missed can
still score a high Dice. Here every class (background excluded) is split into the connected components of the
prediction and of the ground truth (:func:`monai_imbalance.utils.label_components`, ``connected-components-3d``), the
predicted objects are matched one-to-one to the true ones, and the matches are counted:

- object ``tp`` (matched true objects), ``fn`` (missed true objects), ``fp`` (unmatched predicted objects);
  ``precision = tp / (tp + fp)``, ``recall = tp / (tp + fn)``, ``f1 = 2 tp / (2 tp + fp + fn)``;
- ``instance_dice``: the mean over true objects of the Dice between the object and its matched prediction, a missed
  object counting 0 (false-positive objects do not lower it: they are reported beside it as ``fp``);
- ``bin_recall``: the recall of the true objects in each size bin, ``small_recall`` that of the smallest bin;
- ``oii``: the Output Imbalance Index (DIBE paper Eqs. 13-15) of the object counts ``(tp, fp, fn)``, beside
  ``pixel_oii``, the OII of the pixel counts of the same cases: positive when missed objects dominate, negative when
  spurious ones do, so a reader sees whether a loss trades missed objects for spurious ones.

Matching rules (``match``), after MetricsReloaded's pairing rules:

- ``"iou"`` (default): a pair is a candidate when its IoU is at least ``iou_threshold`` (default 0.5, the
  MetricsReloaded default; ``>=``, as panoptica's default non-strict threshold);
- ``"overlap"``: any overlap (IoU > 0);
- ``"centroid"``: the predicted object contains the true object's centroid (rounded to the nearest voxel).

One prediction never counts for two objects: ``assignment="greedy"`` (default) takes the candidate pairs in order of
decreasing IoU (ties: lower true id, then lower predicted id) and keeps a pair when neither object is taken yet,
as panoptica's ``NaiveThresholdMatching``; ``"hungarian"`` keeps the one-to-one set of candidate pairs with the largest
summed IoU, ties going to more pairs (``scipy.optimize.linear_sum_assignment`` on each connected group of
candidates), as panoptica's
``MaxBipartiteMatching``. With ``"iou"`` and a threshold above 0.5 both give the same result: two objects cannot both
overlap one object by more than half of their union.

Object sizes are voxel counts, or with a spacing (``spacing=``, or ``use_spacing`` on a ``MetaTensor``) physical
sizes, ``voxels * prod(spacing)`` (mm^2 / mm^3 for NIfTI data). Size bins are given by their inner edges: ``(e1, e2,
e3)`` makes the bins ``size <= e1``, ``e1 < size <= e2``, ``e2 < size <= e3`` and ``size > e3``. By default the edges
are the quartiles of the true objects' sizes of the class over the evaluated cases (computed on the truth only, so
every method is judged on the same bins; ``monai-imbalance stats`` prints the same quartiles for a dataset).

Empty cases (the module's definition): a case where a class has no true and no predicted object adds nothing to the
counts and is counted in ``empty_cases``. A class with no true object in any case has ``recall``, ``instance_dice``
and ``small_recall`` NaN; with no predicted object as well, ``precision``, ``f1`` and ``oii`` are NaN too (nothing to
judge). NaN values are left out of the means over classes. Cases whose prediction holds NaN or inf (the OII module's
NaN policy) are not matched; they are counted in ``nan_cases`` and left out of everything else.

Inputs, as MONAI's metrics: batch-first ``(B, C, *spatial)`` tensors (2-D or 3-D), or lists of channel-first ones.
``C > 1``: binarised one-hot (each channel 0/1; channel ``c`` is class ``c``; mutually exclusive channels are labelled
in one pass, overlapping (multi-label) channels one at a time). ``C == 1``: a class-index map with values
``0..num_classes-1`` (default ``num_classes=2``: a binary mask, class 1).

Example (a large object found, four one-pixel ones missed: pixel Dice 0.995, small-object recall 0):
    >>> import torch
    >>> y = torch.zeros(1, 1, 32, 32); y[0, 0, 2:22, 2:22] = 1; y[0, 0, 26::3, 26::3] = 1
    >>> pred = y.clone(); pred[0, 0, 26:, 26:] = 0
    >>> result = compute_object_metrics(pred, y, size_bins=[1])[1]
    >>> result["tp"], result["fn"], result["recall"], result["bin_recall"]
    (1, 4, 0.2, [0.0, 1.0])
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from monai.metrics import CumulativeIterationMetric
from monai.utils import MetricReduction

from monai_imbalance.utils import (
    atomic_write,
    component_values,
    label_components,
    smallest_uint_dtype,
    to_numpy,
    validate_label,
)

from .oii import compute_oii

__all__ = [
    "MATCH_RULES",
    "ASSIGNMENTS",
    "OBJECT_FIELDS",
    "CASE_FIELDS",
    "OBJECT_SUMMARY_FIELDS",
    "match_objects",
    "summarize_object_rows",
    "compute_object_metrics",
    "ObjectMetric",
    "flat_object_metrics",
    "reduce_over_classes",
    "write_object_report",
]

MATCH_RULES = ("iou", "overlap", "centroid")
ASSIGNMENTS = ("greedy", "hungarian")
#: the columns of the object rows (one row per true or predicted object); ``kind`` 0 = true, 1 = predicted;
#: ``matched_id`` is the id of the matched object of the other kind (0: unmatched)
OBJECT_FIELDS = ("rank", "case", "class", "kind", "object_id", "size", "physical_size", "matched_id", "iou", "dice")
#: the columns of the case rows (one row per case and class); ``nan`` 1 when the prediction held NaN or inf
CASE_FIELDS = ("rank", "case", "class", "nan", "true_objects", "pred_objects", "tp_pixels", "fp_pixels", "fn_pixels")
#: the per-class values of :func:`summarize_object_rows`
OBJECT_SUMMARY_FIELDS = (
    "tp", "fp", "fn", "precision", "recall", "f1", "instance_dice", "oii", "pixel_oii", "small_recall",
    "true_objects", "pred_objects", "cases", "empty_cases", "nan_cases", "size_unit", "size_bins", "bin_objects",
    "bin_detected", "bin_recall",
)
_COL = {name: i for i, name in enumerate(OBJECT_FIELDS)}
_CASE = {name: i for i, name in enumerate(CASE_FIELDS)}


# ---------------------------------------------------------------------------------------------------------- inputs
def _check_choice(value: str, choices: Sequence[str], name: str) -> str:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}, got {value!r}.")
    return value


def _check_threshold(value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 < float(value) <= 1.0:
        raise ValueError(f"iou_threshold must be a number in (0, 1], got {value!r}.")
    return float(value)


def _check_spacing(spacing: Any, ndim: int) -> np.ndarray | None:
    if spacing is None:
        return None
    values = np.asarray(to_numpy(spacing), dtype=np.float64).ravel()
    if values.size != ndim:
        raise ValueError(f"spacing has {values.size} values {values.tolist()}, the images have {ndim} spatial "
                         "dimensions: give one spacing per spatial axis.")
    if not np.all(np.isfinite(values)) or np.any(values <= 0):
        raise ValueError(f"spacing must be finite and > 0, got {values.tolist()}.")
    return values


def _per_case_spacing(spacing: Any, batch: int, ndim: int) -> list[np.ndarray | None]:
    """One spacing (or None) per case: one sequence for every case, or a sequence of ``batch`` of them."""
    if spacing is None:
        return [None] * batch
    if isinstance(spacing, (list, tuple)) and len(spacing) == batch and all(
        s is None or np.ndim(to_numpy(s)) == 1 for s in spacing
    ):
        return [_check_spacing(s, ndim) for s in spacing]
    values = np.asarray(to_numpy(spacing), dtype=np.float64)
    if values.ndim == 2 and values.shape[0] == batch:
        return [_check_spacing(v, ndim) for v in values]
    one = _check_spacing(spacing, ndim)
    return [one] * batch


def _index_map(x: torch.Tensor, name: str, num_classes: int) -> np.ndarray:
    """One case's single-channel class-index map ``(*spatial)``, checked (:func:`~monai_imbalance.utils.validate_label`:
    NaN, non-integer and negative values) and bounded by ``num_classes``, as the smallest unsigned integer array."""
    arr = validate_label(x, name=name)
    hi = int(arr.max())
    if hi >= num_classes:
        if num_classes == 2:
            raise ValueError(f"{name} holds class {hi}, but a single-channel input is binary (values 0 and 1) "
                             f"unless num_classes is given: pass num_classes={hi + 1} (or more) to evaluate "
                             "a class-index map, or one-hot inputs (B, C, *spatial).")
        raise ValueError(f"{name} holds class {hi}, but num_classes={num_classes} (valid values "
                         f"0..{num_classes - 1}).")
    return arr.astype(smallest_uint_dtype(num_classes - 1), copy=False)


def _check_inputs(y_pred: torch.Tensor, y: torch.Tensor, num_classes: int | None) -> int:
    """Validate ``(B, C, *spatial)`` inputs; return the number of classes (index maps) or channels (one-hot)."""
    for name, x in (("y_pred", y_pred), ("y", y)):
        if not isinstance(x, torch.Tensor):
            raise ValueError(f"{name} must be a torch tensor (B, C, *spatial), got {type(x).__name__}.")
        if x.ndim not in (4, 5):
            raise ValueError(f"{name} must be (B, C, H, W) or (B, C, H, W, D), got shape {tuple(x.shape)}.")
    if y_pred.shape != y.shape:
        raise ValueError(f"y_pred and y should have same shapes, got {tuple(y_pred.shape)} and {tuple(y.shape)} "
                         "(both one-hot (B, C, *spatial), or both class-index maps (B, 1, *spatial)).")
    channels = y.shape[1]
    if channels == 1:  # index values are checked per case (_index_map), in the pass that converts them
        classes = 2 if num_classes is None else int(num_classes)
        if classes < 2:
            raise ValueError(f"num_classes must be >= 2 (background included), got {num_classes}.")
        return classes
    if num_classes is not None and int(num_classes) != channels:
        raise ValueError(f"num_classes={num_classes} but the one-hot inputs have {channels} channels.")
    return channels  # one-hot values are checked per case (_one_hot_index), in the pass that converts them


def _not_binary(name: str, x: torch.Tensor) -> ValueError:
    bad = x[(x != 0) & (x != 1)][:3].tolist()
    return ValueError(f"{name} must be binarised one-hot (values 0 and 1 only), got values such as {bad}; apply "
                      "AsDiscrete(argmax=True, to_onehot=C) or AsDiscrete(threshold=0.5) first.")


def _one_hot_index(x: torch.Tensor, name: str) -> tuple[np.ndarray | None, bool]:
    """One case's one-hot ``(C, *spatial)`` as a class-index map, checked in one pass over the channels.

    A single product ``[1, c, c^2] @ x`` per voxel gives the channel sum ``s``, ``sum c x_c`` and ``sum c^2 x_c``: with
    every value in ``[0, 1]``, a voxel is one-hot exactly when ``s`` is 0, or ``s`` is 1 and the weighted variance
    ``sum c^2 x_c - (sum c x_c)^2`` is 0 (all of its mass on one channel); then ``sum c x_c`` is its class. The sums are
    of small integers, exact in float32 on the CPU (float64 elsewhere, where matmul may round through TF32).

    Returns:
        ``(index map, True)`` for an exclusive one-hot; ``(None, True)`` for binary channels that overlap
        (multi-label: matched one channel at a time); ``(None, False)`` when ``x`` holds NaN or inf.

    Raises:
        ValueError: a value other than 0 and 1.
    """
    channels = x.shape[0]
    dtype = torch.float32 if x.device.type == "cpu" else torch.float64
    flat = x.reshape(channels, -1).to(dtype)
    c = torch.arange(channels, dtype=dtype, device=x.device)
    total, index, square = (torch.stack([torch.ones_like(c), c, c * c]) @ flat).unbind(0)
    if not bool(torch.isfinite(total).all()):
        return None, False
    lo, hi = torch.aminmax(flat)
    if float(lo) < 0 or float(hi) > 1:
        raise _not_binary(name, flat)
    one = total == 1
    if bool(((total == 0) | one).all()):
        if not bool(torch.equal(square[one], index[one] * index[one])):
            raise _not_binary(name, flat)
        out = torch.uint8 if channels <= 256 else torch.int32
        return to_numpy(index.to(out).reshape(x.shape[1:])), True
    if not bool(((flat == 0) | (flat == 1)).all()):
        raise _not_binary(name, flat)
    return None, True


# -------------------------------------------------------------------------------------------------------- matching
def _assign_greedy(g: np.ndarray, p: np.ndarray, score: np.ndarray, n_g: int, n_p: int) -> np.ndarray:
    """Indices of the kept candidate pairs: decreasing score, ties by true then predicted id, each object once."""
    order = np.lexsort((p, g, -score))
    used_g, used_p = np.zeros(n_g + 1, bool), np.zeros(n_p + 1, bool)
    keep = []
    for k in order.tolist():
        gi, pi = g[k], p[k]
        if not used_g[gi] and not used_p[pi]:
            used_g[gi] = used_p[pi] = True
            keep.append(k)
    return np.asarray(keep, dtype=np.int64)


def _assign_hungarian(g: np.ndarray, p: np.ndarray, score: np.ndarray, n_g: int, n_p: int) -> np.ndarray:
    """Indices of the one-to-one candidate pairs of largest summed score, per connected group of candidates."""
    from scipy.optimize import linear_sum_assignment
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    if g.size == 0:
        return np.zeros(0, np.int64)
    n = n_g + 1 + n_p + 1  # nodes: true ids 0..n_g, then predicted ids
    graph = coo_matrix((np.ones(g.size), (g, n_g + 1 + p)), shape=(n, n))
    _, group = connected_components(graph, directed=False)
    pair_group = group[g]
    keep = []
    for gid in np.unique(pair_group):
        idx = np.flatnonzero(pair_group == gid)
        if idx.size == 1:
            keep.append(idx)
            continue
        rows, row_of = np.unique(g[idx], return_inverse=True)
        cols, col_of = np.unique(p[idx], return_inverse=True)
        # a candidate's weight is its score plus a small bonus, so that of two sets with the same summed score the
        # one with more pairs wins (and a candidate of score 0 still beats no pair), as panoptica's 1e-6 cost margin
        weight = np.zeros((rows.size, cols.size))
        weight[row_of, col_of] = score[idx] + 1e-6
        r, c = linear_sum_assignment(weight, maximize=True)
        chosen = weight[r, c] > 0
        lookup = {(a, b): k for a, b, k in zip(row_of.tolist(), col_of.tolist(), idx.tolist())}
        keep.append(np.asarray([lookup[(a, b)] for a, b in zip(r[chosen].tolist(), c[chosen].tolist())], np.int64))
    return np.sort(np.concatenate(keep)) if keep else np.zeros(0, np.int64)


def _centroid_voxels(flat_index: np.ndarray, labels: np.ndarray, sizes: np.ndarray, shape: Sequence[int]
                     ) -> np.ndarray:
    """Flat index of each component's centroid rounded to the nearest voxel (row 0 unused); ``sizes`` as
    :func:`~monai_imbalance.utils.component_values` gives them."""
    count = np.maximum(sizes, 1).astype(np.float64)
    coords = np.unravel_index(flat_index, tuple(shape))
    rounded = [np.floor(np.bincount(labels, weights=c, minlength=sizes.size) / count + 0.5).astype(np.int64)
               for c in coords]
    return np.ravel_multi_index(rounded, tuple(shape))


def _match_maps(
    pred: np.ndarray, true: np.ndarray, class_of: np.ndarray, connectivity: int | None, match: str,
    iou_threshold: float, assignment: str,
) -> dict[str, np.ndarray]:
    """Components, overlaps and matches of one case. ``pred``/``true``: index maps whose value ``v > 0`` is class
    ``class_of[v]``; components of different values never join or match."""
    lp, n_p = label_components(pred, connectivity)
    lg, n_g = label_components(true, connectivity)
    lp_f, lg_f, p_f, g_f = lp.reshape(-1), lg.reshape(-1), pred.reshape(-1), true.reshape(-1)
    _, _, p_size, p_val = component_values(lp, n_p, pred)
    gi, g_lab, g_size, g_val = component_values(lg, n_g, true)
    # overlaps: the true voxels whose predicted value is the same (and so also labelled)
    same = gi[p_f[gi] == g_f[gi]]
    codes = lg_f[same].astype(np.int64) * (n_p + 1) + lp_f[same].astype(np.int64)
    if (n_g + 1) * (n_p + 1) <= max(4 * codes.size, 1 << 16):
        counts = np.bincount(codes, minlength=(n_g + 1) * (n_p + 1))
        pairs = np.flatnonzero(counts)
        inter = counts[pairs]
    else:
        pairs, inter = np.unique(codes, return_counts=True)
    pair_g, pair_p = np.divmod(pairs, n_p + 1)
    inter = inter.astype(np.float64)
    union = g_size[pair_g] + p_size[pair_p] - inter
    iou = inter / union
    dice = 2.0 * inter / (g_size[pair_g] + p_size[pair_p])

    if match == "iou":
        cand = np.flatnonzero(iou >= iou_threshold)
        c_g, c_p, c_iou, c_dice = pair_g[cand], pair_p[cand], iou[cand], dice[cand]
    elif match == "overlap":
        c_g, c_p, c_iou, c_dice = pair_g, pair_p, iou, dice
    else:  # centroid: the predicted object holding the true centroid, of the same value
        centre = _centroid_voxels(gi, g_lab, g_size, true.shape)[1:]
        holder = lp_f[centre].astype(np.int64)
        ok = (holder > 0) & (p_f[centre] == g_val[1:])
        c_g, c_p = np.arange(1, n_g + 1)[ok], holder[ok]
        lookup = {(a, b): k for k, (a, b) in enumerate(zip(pair_g.tolist(), pair_p.tolist()))}
        where = np.asarray([lookup.get((a, b), -1) for a, b in zip(c_g.tolist(), c_p.tolist())], np.int64)
        c_iou = np.where(where >= 0, iou[np.maximum(where, 0)] if iou.size else 0.0, 0.0)
        c_dice = np.where(where >= 0, dice[np.maximum(where, 0)] if dice.size else 0.0, 0.0)
    unique_anyway = match == "iou" and iou_threshold > 0.5
    if unique_anyway or c_g.size == 0:
        keep = np.arange(c_g.size)
    elif assignment == "greedy":
        keep = _assign_greedy(c_g, c_p, c_iou, n_g, n_p)
    else:
        keep = _assign_hungarian(c_g, c_p, c_iou, n_g, n_p)
    g_match, p_match = np.zeros(n_g + 1, np.int64), np.zeros(n_p + 1, np.int64)
    m_iou_g, m_dice_g = np.zeros(n_g + 1), np.zeros(n_g + 1)
    m_iou_p, m_dice_p = np.zeros(n_p + 1), np.zeros(n_p + 1)
    kg, kp = c_g[keep], c_p[keep]
    g_match[kg], p_match[kp] = kp, kg
    m_iou_g[kg], m_dice_g[kg] = c_iou[keep], c_dice[keep]
    m_iou_p[kp], m_dice_p[kp] = c_iou[keep], c_dice[keep]
    # pixel counts per value: TP = overlaps of same-valued pairs
    n_val = class_of.size
    tp_px = np.bincount(g_val[pair_g], weights=inter, minlength=n_val)[:n_val]
    pred_px = np.bincount(p_val[1:], weights=p_size[1:], minlength=n_val)[:n_val]
    true_px = np.bincount(g_val[1:], weights=g_size[1:], minlength=n_val)[:n_val]
    return {
        "g_val": g_val[1:], "g_size": g_size[1:], "g_match": g_match[1:], "g_iou": m_iou_g[1:], "g_dice": m_dice_g[1:],
        "p_val": p_val[1:], "p_size": p_size[1:], "p_match": p_match[1:], "p_iou": m_iou_p[1:], "p_dice": m_dice_p[1:],
        "tp_px": tp_px, "fp_px": pred_px - tp_px, "fn_px": true_px - tp_px,
    }


def _local_ids(values: np.ndarray, n_val: int) -> np.ndarray:
    """1-based id of each component among the components of its value, in raster order (global ids ascend)."""
    ids = np.zeros(values.size, np.int64)
    for v in range(n_val):
        sel = np.flatnonzero(values == v)
        ids[sel] = np.arange(1, sel.size + 1)
    return ids


def _case_rows(
    maps: list[tuple[np.ndarray, np.ndarray, np.ndarray]], classes: Sequence[int], connectivity: int | None,
    match: str, iou_threshold: float, assignment: str, voxel: float, case: int, rank: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Object rows and case rows of one case. ``maps``: ``(pred, true, class_of)`` index maps matched separately
    (one for exclusive classes, one per class for overlapping ones)."""
    objects, per_class = [], {}
    for pred, true, class_of in maps:
        m = _match_maps(pred, true, class_of, connectivity, match, iou_threshold, assignment)
        n_val = class_of.size
        g_local, p_local = _local_ids(m["g_val"], n_val), _local_ids(m["p_val"], n_val)
        # matched ids in the other kind's local numbering
        g_partner = np.where(m["g_match"] > 0, p_local[np.maximum(m["g_match"] - 1, 0)] if p_local.size else 0, 0)
        p_partner = np.where(m["p_match"] > 0, g_local[np.maximum(m["p_match"] - 1, 0)] if g_local.size else 0, 0)
        for kind, val, local, size, partner, iou, dice in (
            (0, m["g_val"], g_local, m["g_size"], g_partner, m["g_iou"], m["g_dice"]),
            (1, m["p_val"], p_local, m["p_size"], p_partner, m["p_iou"], m["p_dice"]),
        ):
            if val.size:
                cls = class_of[val].astype(np.float64)
                objects.append(np.stack([
                    np.full(val.size, rank, np.float64), np.full(val.size, case, np.float64), cls,
                    np.full(val.size, kind, np.float64), local.astype(np.float64), size.astype(np.float64),
                    size * voxel, partner.astype(np.float64), iou, dice,
                ], 1))
        for v in range(1, n_val):
            c = int(class_of[v])
            per_class[c] = (
                int(np.count_nonzero(m["g_val"] == v)), int(np.count_nonzero(m["p_val"] == v)),
                float(m["tp_px"][v]), float(m["fp_px"][v]), float(m["fn_px"][v]),
            )
    rows = np.concatenate(objects) if objects else np.zeros((0, len(OBJECT_FIELDS)))
    cases = np.asarray([[rank, case, c, 0, *per_class[c]] for c in classes], np.float64).reshape(-1, len(CASE_FIELDS))
    return rows, cases


def match_objects(
    y_pred: torch.Tensor,
    y: torch.Tensor,
    include_background: bool = False,
    num_classes: int | None = None,
    connectivity: int | None = None,
    match: str = "iou",
    iou_threshold: float = 0.5,
    assignment: str = "greedy",
    spacing: Any = None,
    first_case: int = 0,
    rank: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Connected components of each case and class, matched one-to-one: the object rows and the case rows.

    Args:
        y_pred, y: ``(B, C, *spatial)`` binarised one-hot, or ``(B, 1, *spatial)`` class-index maps (module doc).
        include_background: also evaluate class 0 (channel 0, or value 0 of an index map).
        num_classes: classes of single-channel index maps, background included (default 2: binary); for one-hot
            inputs, if given, must equal ``C``.
        connectivity: 1 = face neighbours, None = full (8 in 2-D, 26 in 3-D); 2 in 3-D: 18 neighbours.
        match: ``"iou"``, ``"overlap"`` or ``"centroid"`` (module doc).
        iou_threshold: the IoU a pair needs with ``match="iou"`` (``>=``).
        assignment: ``"greedy"`` or ``"hungarian"`` (module doc).
        spacing: voxel spacing, one value per spatial axis (or one such sequence per case); None: sizes in voxels.
        first_case: the case number of the first batch element (the rows' ``case`` column).
        rank: the rows' ``rank`` column (the process under DDP).

    Returns:
        ``(objects, cases)``: float64 tensors with the columns :data:`OBJECT_FIELDS` (one row per true or predicted
        object; ``physical_size`` equals ``size`` without a spacing) and :data:`CASE_FIELDS` (one row per case and
        class). A case whose ``y_pred`` holds NaN or inf has ``nan = 1`` and no object rows.

    Raises:
        ValueError: different shapes, not 2-D/3-D, non-binary one-hot values, index values outside
            ``0..num_classes-1`` (a second class in a binary call), NaN in ``y``, a spacing of the wrong length, an
            unknown ``match`` or ``assignment``, ``iou_threshold`` outside ``(0, 1]``.
    """
    _check_choice(match, MATCH_RULES, "match")
    _check_choice(assignment, ASSIGNMENTS, "assignment")
    iou_threshold = _check_threshold(iou_threshold)
    channels = _check_inputs(y_pred, y, num_classes)
    one_hot = y.shape[1] > 1
    ndim = y.ndim - 2
    spacings = _per_case_spacing(spacing, y.shape[0], ndim)
    classes = list(range(0 if include_background else 1, channels))
    if one_hot and not include_background and channels == 1:
        classes = []
    all_rows, all_cases = [], []
    for b in range(y.shape[0]):
        p_b, y_b = y_pred[b], y[b]
        case = first_case + b
        voxel = 1.0 if spacings[b] is None else float(np.prod(spacings[b]))
        if one_hot:
            y_index, y_finite = _one_hot_index(y_b, "y")
            if not y_finite:
                raise ValueError("y (the ground truth) holds NaN or infinite values.")
            p_index, finite = _one_hot_index(p_b, "y_pred")
        else:
            y_index = _index_map(y_b[0], "y", channels)
            finite = not p_b.is_floating_point() or bool(torch.isfinite(p_b).all())
            # a NaN case is not matched, but its finite values must still be class indices
            p_index = _index_map(p_b[0] if finite else torch.nan_to_num(p_b[0], nan=0.0, posinf=0.0, neginf=0.0),
                                 "y_pred", channels)
        if not finite:
            nan_rows = np.asarray([[rank, case, c, 1, 0, 0, math.nan, math.nan, math.nan] for c in classes], float)
            all_rows.append(np.zeros((0, len(OBJECT_FIELDS))))
            all_cases.append(nan_rows.reshape(-1, len(CASE_FIELDS)))
            continue
        maps = []
        if one_hot:
            if p_index is not None and y_index is not None and 0 not in classes:
                maps.append((p_index, y_index, np.arange(channels)))
            else:  # overlapping channels, or the background as a class: one channel at a time
                for c in classes:
                    maps.append((to_numpy(p_b[c] > 0).view(np.uint8), to_numpy(y_b[c] > 0).view(np.uint8),
                                 np.asarray([0, c])))
        else:
            if any(c > 0 for c in classes):
                maps.append((p_index, y_index, np.arange(channels)))
            if 0 in classes:
                maps.append(((p_index == 0).view(np.uint8), (y_index == 0).view(np.uint8), np.asarray([0, 0])))
        rows, cases = _case_rows(maps, classes, connectivity, match, iou_threshold, assignment, voxel, case, rank)
        all_rows.append(rows)
        all_cases.append(cases)
    objects = np.concatenate(all_rows) if all_rows else np.zeros((0, len(OBJECT_FIELDS)))
    cases = np.concatenate(all_cases) if all_cases else np.zeros((0, len(CASE_FIELDS)))
    return torch.from_numpy(objects), torch.from_numpy(cases)


# --------------------------------------------------------------------------------------------------------- summary
def _ratio(a: float, b: float) -> float:
    return a / b if b > 0 else math.nan


def _edges_of(size_bins: Any, cls: int, sizes: np.ndarray) -> list[float]:
    if size_bins is None:
        if sizes.size == 0:
            return []
        return np.unique(np.percentile(sizes, [25, 50, 75])).tolist()
    edges = size_bins.get(cls, size_bins.get(str(cls))) if isinstance(size_bins, Mapping) else size_bins
    if edges is None:
        return [] if sizes.size == 0 else np.unique(np.percentile(sizes, [25, 50, 75])).tolist()
    return _check_edges(edges)


def _check_edges(edges: Any) -> list[float]:
    values = np.asarray(to_numpy(edges), dtype=np.float64).ravel()
    if not np.all(np.isfinite(values)) or np.any(values <= 0) or np.any(np.diff(values) <= 0):
        raise ValueError(f"size_bins must be increasing positive inner edges (e.g. [10, 100, 1000]), got "
                         f"{values.tolist()}.")
    return values.tolist()


def summarize_object_rows(
    objects: Any, cases: Any, size_bins: Sequence[float] | Mapping[Any, Sequence[float]] | None = None,
    physical: bool = False,
) -> dict[int, dict[str, Any]]:
    """Per-class detection counts, rates, instance Dice, size-binned recall and OIIs of object and case rows.

    Args:
        objects, cases: rows with the columns :data:`OBJECT_FIELDS` and :data:`CASE_FIELDS` (of :func:`match_objects`
            or :meth:`ObjectMetric.get_buffer`), pooled over the cases.
        size_bins: inner bin edges (module doc) for every class, or ``{class: edges}``; None: the quartiles of the
            true sizes of each class.
        physical: bin on ``physical_size`` (spacing units) instead of the voxel count.

    Returns:
        ``{class: {field: value}}`` with the fields :data:`OBJECT_SUMMARY_FIELDS` (counts as ints, rates as floats,
        NaN where undefined; ``size_bins`` the edges used; ``bin_objects``, ``bin_detected`` and ``bin_recall`` one
        entry per bin).
    """
    rows = np.asarray(to_numpy(objects), dtype=np.float64).reshape(-1, len(OBJECT_FIELDS))
    case_rows = np.asarray(to_numpy(cases), dtype=np.float64).reshape(-1, len(CASE_FIELDS))
    size_col = _COL["physical_size" if physical else "size"]
    out: dict[int, dict[str, Any]] = {}
    for cls in sorted({int(c) for c in case_rows[:, _CASE["class"]]}):
        crow = case_rows[case_rows[:, _CASE["class"]] == cls]
        valid = crow[crow[:, _CASE["nan"]] == 0]
        mine = rows[rows[:, _COL["class"]] == cls]
        true = mine[mine[:, _COL["kind"]] == 0]
        pred = mine[mine[:, _COL["kind"]] == 1]
        matched = true[:, _COL["matched_id"]] > 0
        tp, fn = int(matched.sum()), int((~matched).sum())
        fp = int((pred[:, _COL["matched_id"]] == 0).sum())
        sizes = true[:, size_col]
        edges = _edges_of(size_bins, cls, sizes)
        bins = np.searchsorted(np.asarray(edges), sizes, side="left") if sizes.size else np.zeros(0, np.int64)
        bin_objects = np.bincount(bins, minlength=len(edges) + 1).astype(int).tolist()
        bin_detected = np.bincount(bins, weights=matched, minlength=len(edges) + 1).astype(int).tolist()
        bin_recall = [_ratio(d, n) for d, n in zip(bin_detected, bin_objects)]
        px = valid[:, [_CASE["tp_pixels"], _CASE["fp_pixels"], _CASE["fn_pixels"]]].sum(0)
        anything = tp + fp + fn > 0
        out[cls] = {
            "tp": tp, "fp": fp, "fn": fn,
            "precision": _ratio(tp, tp + fp), "recall": _ratio(tp, tp + fn),
            "f1": _ratio(2 * tp, 2 * tp + fp + fn),
            "instance_dice": _ratio(float(true[:, _COL["dice"]].sum()), true.shape[0]),
            "oii": float(compute_oii(tp, fp, fn)) if anything else math.nan,
            "pixel_oii": float(compute_oii(*px.tolist())) if valid.shape[0] and px.sum() > 0 else math.nan,
            "small_recall": bin_recall[0],
            "true_objects": int(true.shape[0]), "pred_objects": int(pred.shape[0]),
            "cases": int(valid.shape[0]),
            "empty_cases": int(((valid[:, _CASE["true_objects"]] == 0) & (valid[:, _CASE["pred_objects"]] == 0)).sum()),
            "nan_cases": int(crow.shape[0] - valid.shape[0]),
            "size_unit": "physical" if physical else "voxels",
            "size_bins": edges, "bin_objects": bin_objects, "bin_detected": bin_detected, "bin_recall": bin_recall,
        }
    return out


def compute_object_metrics(
    y_pred: torch.Tensor,
    y: torch.Tensor,
    include_background: bool = False,
    num_classes: int | None = None,
    connectivity: int | None = None,
    match: str = "iou",
    iou_threshold: float = 0.5,
    assignment: str = "greedy",
    spacing: Any = None,
    size_bins: Sequence[float] | Mapping[Any, Sequence[float]] | None = None,
) -> dict[int, dict[str, Any]]:
    """Per-class object metrics of a batch, its objects pooled over the cases (module doc).

    Args:
        y_pred, y, include_background, num_classes, connectivity, match, iou_threshold, assignment, spacing: as
            :func:`match_objects`.
        size_bins: as :func:`summarize_object_rows` (physical sizes when ``spacing`` is given).

    Returns:
        ``{class: {"tp", "fp", "fn", "precision", "recall", "f1", "instance_dice", "oii", "pixel_oii",
        "small_recall", ...}}`` (:data:`OBJECT_SUMMARY_FIELDS`).

    Raises:
        ValueError: as :func:`match_objects`; ``size_bins`` not increasing and positive.
    """
    objects, cases = match_objects(y_pred, y, include_background, num_classes, connectivity, match, iou_threshold,
                                   assignment, spacing)
    return summarize_object_rows(objects, cases, size_bins, physical=spacing is not None)


def reduce_over_classes(values: Mapping[int, float], reduction: MetricReduction | str = "mean") -> torch.Tensor:
    """Per-class values ``{class: value}`` reduced with MONAI's reduction names: ``"mean"``/``"sum"`` over the non-NaN
    classes (NaN when none), ``"none"``/``"mean_batch"``/``"sum_batch"``: the per-class tensor in class order."""
    tensor = torch.tensor([values[c] for c in sorted(values)], dtype=torch.float64)
    reduction = MetricReduction(reduction)
    if reduction in (MetricReduction.NONE, MetricReduction.MEAN_BATCH, MetricReduction.SUM_BATCH):
        return tensor
    finite = tensor[~torch.isnan(tensor)]
    if finite.numel() == 0:
        return torch.tensor(math.nan, dtype=torch.float64)
    if reduction in (MetricReduction.SUM, MetricReduction.SUM_CHANNEL):
        return finite.sum()
    return finite.mean()


class ObjectMetric(CumulativeIterationMetric):
    """Per-object detection metrics over an evaluation set (module doc): object and case rows are buffered each
    iteration and gathered across processes like every MONAI ``CumulativeIterationMetric``, so the counts, the
    default size bins and the per-object table are those of the whole set under DDP.

    :meth:`aggregate` gives ``metric_name`` per class (``"f1"``, ``"precision"``, ``"recall"``, ``"instance_dice"``,
    ``"small_recall"``, ``"oii"``, ``"pixel_oii"``), reduced over classes with MONAI's ``reduction`` names
    (``"mean"``: the mean of the non-NaN classes, NaN when none; ``"none"``/``"mean_batch"``: one value per class);
    :meth:`summary` gives every field of every class.

    Args:
        include_background, num_classes, connectivity, match, iou_threshold, assignment: as :func:`match_objects`.
        size_bins: as :func:`summarize_object_rows`.
        use_spacing: sizes (and bins) in physical units from the spacing of ``y`` (a ``MetaTensor``'s affine) unless
            ``spacing=`` is passed to the call.
        metric_name: the value :meth:`aggregate` returns.
        reduction: MONAI metric reduction over classes.

    Example:
        >>> y = torch.zeros(2, 1, 16, 16); y[:, 0, 2:6, 2:6] = 1; y[:, 0, 10:12, 10:12] = 1
        >>> metric = ObjectMetric(metric_name="recall")
        >>> _ = metric(y.clone(), y)
        >>> pred = y.clone(); pred[1, 0, 10:12, 10:12] = 0  # one small object missed in the second image
        >>> metric.reset(); _ = metric(pred, y)
        >>> metric.aggregate().item(), metric.summary()[1]["fn"]
        (0.75, 1)
    """

    def __init__(
        self,
        include_background: bool = False,
        num_classes: int | None = None,
        connectivity: int | None = None,
        match: str = "iou",
        iou_threshold: float = 0.5,
        assignment: str = "greedy",
        size_bins: Sequence[float] | Mapping[Any, Sequence[float]] | None = None,
        use_spacing: bool = False,
        metric_name: str = "f1",
        reduction: MetricReduction | str = MetricReduction.MEAN,
    ) -> None:
        super().__init__()
        self.include_background = include_background
        self.num_classes = num_classes
        self.connectivity = connectivity
        self.match = _check_choice(match, MATCH_RULES, "match")
        self.iou_threshold = _check_threshold(iou_threshold)
        self.assignment = _check_choice(assignment, ASSIGNMENTS, "assignment")
        if size_bins is not None and not isinstance(size_bins, Mapping):
            size_bins = _check_edges(size_bins)
        self.size_bins = size_bins
        self.use_spacing = use_spacing
        self.metric_name = _check_choice(metric_name, ("f1", "precision", "recall", "instance_dice", "small_recall",
                                                       "oii", "pixel_oii"), "metric_name")
        self.reduction = reduction
        self._next_case = 0
        self._physical: bool | None = None

    def reset(self) -> None:
        super().reset()
        self._next_case = 0
        self._physical = None

    def extend(self, *data: Any) -> None:
        """Buffer one batch's ``(objects, cases)`` rows as blocks (MONAI's ``Cumulative`` splits into rows, which
        fails on a batch without objects)."""
        if self._buffers is None:
            self._buffers = [[] for _ in data]
        for buffer, block in zip(self._buffers, data):
            buffer.append(torch.as_tensor(block, dtype=torch.float64))
        self._synced = False

    def _sync(self) -> None:
        from monai.utils import evenly_divisible_all_gather

        if self._synced or self._buffers is None:
            return
        widths = (len(OBJECT_FIELDS), len(CASE_FIELDS))
        self._synced_tensors = [
            evenly_divisible_all_gather(torch.cat([torch.zeros(0, w, dtype=torch.float64), *blocks]), concat=True)
            for blocks, w in zip(self._buffers, widths)
        ]
        self._synced = True

    def _compute_tensor(  # type: ignore[override]
        self, y_pred: torch.Tensor, y: torch.Tensor, spacing: Any = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Object and case rows of one batch (the buffers)."""
        if spacing is None and self.use_spacing:
            from .volumetric import spacing_of

            spacing = spacing_of(y)
            if spacing is not None:  # a MetaTensor's affine is 4x4 for 2-D images too: its first ndim spacings
                spacing = spacing[: y.ndim - 2]
        physical = spacing is not None
        if self._physical is not None and physical != self._physical:
            raise ValueError("some cases came with a spacing and some without: object sizes would mix voxels and "
                             "physical units; give every case a spacing (or none).")
        self._physical = physical
        import torch.distributed as dist

        rank = dist.get_rank() if dist.is_available() and dist.is_initialized() else 0
        rows = match_objects(y_pred, y, self.include_background, self.num_classes, self.connectivity, self.match,
                             self.iou_threshold, self.assignment, spacing, first_case=self._next_case, rank=rank)
        self._next_case += y.shape[0]
        return rows

    def rows(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The gathered ``(objects, cases)`` rows (:data:`OBJECT_FIELDS`, :data:`CASE_FIELDS`)."""
        data = self.get_buffer()
        if data is None:
            return torch.zeros(0, len(OBJECT_FIELDS), dtype=torch.float64), torch.zeros(0, len(CASE_FIELDS),
                                                                                         dtype=torch.float64)
        return data[0], data[1]

    def summary(self, objects: Any = None, cases: Any = None) -> dict[int, dict[str, Any]]:
        """:func:`summarize_object_rows` of the gathered rows (or of the given ones)."""
        if objects is None or cases is None:
            objects, cases = self.rows()
        return summarize_object_rows(objects, cases, self.size_bins, physical=bool(self._physical))

    def aggregate(self, reduction: MetricReduction | str | None = None) -> torch.Tensor:
        """``metric_name`` per class, reduced over the classes (see the class docstring)."""
        summary = self.summary()
        values = {c: float(v[self.metric_name]) for c, v in summary.items()}
        return reduce_over_classes(values, reduction or self.reduction)


# --------------------------------------------------------------------------------------------------------- reports
#: flat metric names (after the prefix) of the means over classes, and the per-class fields they come from
_FLAT = {
    "object_f1": "f1", "object_precision": "precision", "object_recall": "recall", "instance_dice": "instance_dice",
    "small_object_recall": "small_recall", "object_oii": "oii",
}


def _nanmean(values: list[float]) -> float:
    finite = [v for v in values if not math.isnan(v)]
    return float(np.mean(finite)) if finite else math.nan


def flat_object_metrics(
    summary: Mapping[int, Mapping[str, Any]], prefix: str = "", class_names: Mapping[int, str] | None = None
) -> dict[str, float]:
    """Scalar metric names for logs and tables: ``<prefix>object_f1``, ``object_precision``, ``object_recall``,
    ``instance_dice``, ``small_object_recall`` and ``object_oii`` (means over the classes, NaN left out) plus
    ``fp_objects`` (their sum); with more than one class also ``<name>_<class name>`` per class."""
    out: dict[str, float] = {}
    for name, field in _FLAT.items():
        out[prefix + name] = _nanmean([float(v[field]) for v in summary.values()])
    out[prefix + "fp_objects"] = float(sum(v["fp"] for v in summary.values()))
    if len(summary) > 1:
        for cls, values in summary.items():
            label = (class_names or {}).get(cls, f"class_{cls}")
            for name, field in _FLAT.items():
                out[f"{prefix}{name}_{label}"] = float(values[field])
    return out


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def write_object_report(
    objects: Any, summary: Mapping[int, Mapping[str, Any]], output_dir: str | os.PathLike, case_ids: Sequence[str],
    class_names: Mapping[int, str] | None = None, prefix: str = "objects", metrics: Mapping[str, float] | None = None,
) -> dict[str, Path]:
    """Write ``<prefix>_table.csv`` (one row per object: case, class, kind, object id, size, matched, matched id,
    IoU, Dice, size bin), ``<prefix>_summary.csv`` (one row per class) and ``<prefix>_summary.json`` (the summary
    and the flat ``metrics``), each atomically; return their paths.

    Args:
        objects: object rows (:data:`OBJECT_FIELDS`) whose ``case`` column indexes ``case_ids``.
        summary: :func:`summarize_object_rows` of the same rows (its size bins label the table's rows).
        case_ids: the case names, by ``case`` column value.
    """
    import csv
    import io

    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    names = dict(class_names or {})
    rows = np.asarray(to_numpy(objects), dtype=np.float64).reshape(-1, len(OBJECT_FIELDS))
    paths = {"table": out / f"{prefix}_table.csv", "summary": out / f"{prefix}_summary.csv",
             "json": out / f"{prefix}_summary.json"}
    table = io.StringIO()
    writer = csv.writer(table)
    physical = any(v.get("size_unit") == "physical" for v in summary.values())
    writer.writerow(["case", "class", "kind", "object_id", "size_voxels", "size_physical" if physical else "size",
                     "matched", "matched_id", "iou", "dice", "size_bin"])
    order = np.lexsort((rows[:, _COL["object_id"]], rows[:, _COL["kind"]], rows[:, _COL["class"]],
                        rows[:, _COL["case"]]))
    for row in rows[order]:
        cls = int(row[_COL["class"]])
        edges = summary.get(cls, {}).get("size_bins", [])
        size = row[_COL["physical_size"] if physical else _COL["size"]]
        kind = "true" if row[_COL["kind"]] == 0 else "pred"
        writer.writerow([
            case_ids[int(row[_COL["case"]])], names.get(cls, f"class_{cls}"), kind, int(row[_COL["object_id"]]),
            int(row[_COL["size"]]), f"{size:.6g}", int(row[_COL["matched_id"]] > 0), int(row[_COL["matched_id"]]),
            f"{row[_COL['iou']]:.6g}", f"{row[_COL['dice']]:.6g}",
            int(np.searchsorted(np.asarray(edges), size, side="left")) if kind == "true" else "",
        ])
    summary_csv = io.StringIO()
    writer = csv.writer(summary_csv)
    fields = [f for f in OBJECT_SUMMARY_FIELDS if f not in ("size_bins", "bin_objects", "bin_detected", "bin_recall")]
    writer.writerow(["class", *fields, "size_bins", "bin_recall"])
    for cls, values in summary.items():
        writer.writerow([names.get(cls, f"class_{cls}"), *[values[f] for f in fields],
                         " ".join(f"{e:.6g}" for e in values["size_bins"]),
                         " ".join(f"{r:.4g}" for r in values["bin_recall"])])
    report = {"classes": {names.get(c, f"class_{c}"): v for c, v in summary.items()}, "metrics": dict(metrics or {}),
              "cases": len(case_ids)}
    for key, text in (("table", table.getvalue()), ("summary", summary_csv.getvalue()),
                      ("json", json.dumps(_json_safe(report), indent=2) + "\n")):
        atomic_write(paths[key], lambda f, t=text: f.write(t.encode()))
    return paths
