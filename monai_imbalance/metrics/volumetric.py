"""Volumetric evaluation of 2-D segmentation networks: per-case, per-class Dice, HD95 and OII of label volumes,
summarised as TransUNet and the DBCE paper report them, and the report files.

Synapse (TransUNet's preprocessing, the DBCE paper's Table 3) and ACDC are trained on 2-D slices and evaluated on
volumes (predicted by :class:`monai_imbalance.inferers.SliceBySliceInferer`). The pieces, usable together in a MONAI
``SupervisedEvaluator`` (the bundles' ``evaluate.yaml``, through :class:`monai_imbalance.handlers.VolumetricMetrics`)
or alone:

- :func:`compute_volume_metrics`: per case and class ``(dice, iou, hd95, tp, fp, fn)`` with MONAI's
  ``compute_dice`` (``DiceMetric``), ``compute_iou`` (``MeanIoU``) and ``compute_hausdorff_distance(percentile=95)``
  (``HausdorffDistanceMetric``), with the voxel spacing where known (:func:`spacing_of`), and an explicit rule for
  empty masks (``empty``, below).
- :class:`VolumetricSegmentationMetric`: the ``CumulativeIterationMetric`` of it (buffers gathered under DDP).
- :func:`summarize_volume_metrics`: the mean over cases per class, then over classes (TransUNet's ``test.py``:
  ``metric_list / len(db_test)``, then ``np.mean(metric_list, axis=0)``), per group (ACDC's ED and ES) and over
  all cases; per-class OII from the counts summed over the cases (``monai_imbalance.metrics.compute_oii``);
  :func:`flat_volume_metrics`: its scalars for ``engine.state.metrics``.
- :func:`evaluate_volumes`: all of it in one loop, without ignite; :func:`write_volume_report`: the CSV/JSON files.

Empty masks (``empty``):

- ``"transunet"`` (default; TransUNet's ``calculate_metric_percase``, which the DBCE paper's Synapse numbers follow):
  prediction and truth both non-empty: MONAI's Dice and HD95; prediction non-empty, truth empty: Dice 1, HD95 0;
  prediction empty (truth empty or not): Dice 0, HD95 0. Every case counts in the means. IoU (the DBCE paper's
  mIoU, which TransUNet does not report) follows the Dice: MONAI's value, 1 or 0 on the same cases. Note that a
  missed organ scores HD95 0 under this rule, so the mean HD95 rewards empty predictions: read it with the Dice and
  the counts of empty predictions the summary reports.
- ``"nan"`` (MONAI's own behaviour): Dice and IoU are NaN when the truth is empty (``ignore_empty=True``) and 0
  when only the prediction is; HD95 is NaN unless both are non-empty. NaNs are left out of the means (and counted).

HD95 is MONAI's: the larger of the two directed 95th percentiles of the surface distances. TransUNet's medpy
``hd95`` takes the 95th percentile of both directions pooled, so values can differ slightly; both are in the
units of the spacing given (mm where the spacing is known, else voxels; TransUNet passes no spacing: voxels).
"""

from __future__ import annotations

import csv
import json
import math
import os
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from monai.data import MetaTensor
from monai.data.utils import affine_to_spacing
from monai.metrics import CumulativeIterationMetric, compute_dice, compute_hausdorff_distance, compute_iou

from monai_imbalance.transforms.io import split_volume_name

from .oii import compute_oii

__all__ = [
    "VOLUME_METRIC_FIELDS",
    "EMPTY_POLICIES",
    "compute_volume_metrics",
    "VolumetricSegmentationMetric",
    "summarize_volume_metrics",
    "flat_volume_metrics",
    "evaluate_volumes",
    "write_volume_report",
    "spacing_of",
    "source_id",
]

#: the values kept per case and class, in this order along the last axis of :func:`compute_volume_metrics`
VOLUME_METRIC_FIELDS = ("dice", "iou", "hd95", "tp", "fp", "fn")
EMPTY_POLICIES = ("transunet", "nan")


def _class_masks(x: torch.Tensor, num_classes: int, name: str) -> Any:
    """A ``c -> (B, *spatial) bool`` accessor for a label map ``(B, 1, ...)`` or a one-hot ``(B, K, ...)``."""
    x = x.as_tensor() if isinstance(x, MetaTensor) else torch.as_tensor(x)
    if x.shape[1] == 1 and num_classes > 1:
        labels = x[:, 0].round().long()
        return lambda c: labels == c
    if x.shape[1] != num_classes:
        raise ValueError(f"{name} has {x.shape[1]} channels: expected a label map (1) or a one-hot ({num_classes}).")
    return lambda c: x[:, c] > 0.5


def _per_batch_spacing(spacing: Any, batch: int) -> list[Any]:
    """None, a number, one sequence for the batch, or one entry (None or a sequence) per case -> one per case."""
    if spacing is None:
        return [None] * batch
    if isinstance(spacing, (int, float)):
        return [float(spacing)] * batch
    items = [s.tolist() if isinstance(s, (torch.Tensor, np.ndarray)) else s for s in spacing]
    if all(isinstance(s, (int, float)) for s in items):
        return [[float(v) for v in items]] * batch
    if len(items) != batch:
        raise ValueError(f"spacing has {len(items)} entries for a batch of {batch}.")
    return [None if s is None else ([float(s)] if isinstance(s, (int, float)) else [float(v) for v in s])
            for s in items]


def _affine_spacing(affine: torch.Tensor) -> list[float]:
    affine = torch.as_tensor(affine, dtype=torch.float64)
    return [float(v) for v in affine_to_spacing(affine, r=affine.shape[0] - 1, suppress_zeros=False)]


def compute_volume_metrics(
    y_pred: torch.Tensor,
    y: torch.Tensor,
    num_classes: int | None = None,
    include_background: bool = False,
    spacing: Any = None,
    percentile: float = 95.0,
    empty: str = "transunet",
    distance_metric: str = "euclidean",
) -> torch.Tensor:
    """Per case and class ``(dice, iou, hd95, tp, fp, fn)``: a float64 tensor ``[B, C, 6]``
    (:data:`VOLUME_METRIC_FIELDS`).

    Args:
        y_pred, y: label maps ``(B, 1, *spatial)`` (with ``num_classes``) or binarised one-hot ``(B, K, *spatial)``.
        num_classes: number of classes, background included (label maps).
        include_background: also report class 0.
        spacing: voxel spacing for HD95: None (voxels), one sequence for the batch, or one per case.
        percentile: HD percentile (95: HD95).
        empty: ``"transunet"`` or ``"nan"``: the rule for empty masks (module docstring).
        distance_metric: as MONAI's ``compute_hausdorff_distance``.

    Raises:
        ValueError: unknown ``empty``, shape mismatch, label maps without ``num_classes``.
    """
    if empty not in EMPTY_POLICIES:
        raise ValueError(f"empty must be one of {EMPTY_POLICIES}, got {empty!r}.")
    if y_pred.shape[0] != y.shape[0] or y_pred.shape[2:] != y.shape[2:]:
        raise ValueError(f"y_pred {tuple(y_pred.shape)} and y {tuple(y.shape)} must have the same batch and spatial "
                         "shape.")
    k = num_classes if num_classes is not None else max(y_pred.shape[1], y.shape[1])
    if k < 2:
        raise ValueError("label maps (B, 1, ...) need num_classes (background included, >= 2).")
    pred_of, true_of = _class_masks(y_pred, int(k), "y_pred"), _class_masks(y, int(k), "y")
    batch = y_pred.shape[0]
    spacings = _per_batch_spacing(spacing, batch)
    classes = list(range(0 if include_background else 1, int(k)))
    out = torch.zeros((batch, len(classes), len(VOLUME_METRIC_FIELDS)), dtype=torch.float64)
    spatial = tuple(range(1, y_pred.ndim - 1))
    nan = float("nan")
    for j, c in enumerate(classes):
        p, t = pred_of(c), true_of(c)
        tp = (p & t).sum(spatial).double().cpu()
        fp = (p & ~t).sum(spatial).double().cpu()
        fn = (~p & t).sum(spatial).double().cpu()
        dice = compute_dice(p[:, None].float(), t[:, None].float(), include_background=True, ignore_empty=True)
        dice = dice[:, 0].double().cpu()
        iou = compute_iou(p[:, None].float(), t[:, None].float(), include_background=True, ignore_empty=True)
        iou = iou[:, 0].double().cpu()
        for b in range(batch):
            has_pred, has_true = tp[b] + fp[b] > 0, tp[b] + fn[b] > 0
            if has_pred and has_true:
                with warnings.catch_warnings():  # MONAI 1.6 warns about its own internal get_mask_edges call
                    warnings.filterwarnings("ignore", message=".*always_return_as_numpy.*")
                    hd = compute_hausdorff_distance(p[b : b + 1, None].float(), t[b : b + 1, None].float(),
                                                    include_background=True, distance_metric=distance_metric,
                                                    percentile=percentile, spacing=spacings[b])
                value = (float(dice[b]), float(iou[b]), float(hd.flatten()[0]))
            elif empty == "transunet":
                value = (1.0, 1.0, 0.0) if has_pred else (0.0, 0.0, 0.0)
            else:  # MONAI: Dice NaN for an empty truth (ignore_empty), 0 for an empty prediction; HD95 undefined
                value = (nan, nan, nan) if not has_true else (0.0, 0.0, nan)
            out[b, j] = torch.tensor([*value, float(tp[b]), float(fp[b]), float(fn[b])], dtype=torch.float64)
    return out


def spacing_of(x: Any) -> list[float] | None:
    """The voxel spacing of a channel-first ``MetaTensor`` (from its affine, in array axis order), else None."""
    if not isinstance(x, MetaTensor):
        return None
    affine = x.affine
    return _affine_spacing(affine[0] if affine.ndim == 3 else affine)


class VolumetricSegmentationMetric(CumulativeIterationMetric):
    """Per case and class ``(dice, iou, hd95, tp, fp, fn)`` accumulated over an evaluation (MONAI's cumulative metric,
    gathered across ranks under DDP); :meth:`aggregate` gives the summary of :func:`summarize_volume_metrics`.

    Args:
        num_classes: classes of the label maps, background included.
        class_names: names of the reported classes (default ``class_<i>``).
        include_background: also report class 0.
        percentile, empty, distance_metric: as :func:`compute_volume_metrics`.
        use_spacing: HD95 in the spacing of ``y`` (a ``MetaTensor``'s affine) unless ``spacing=`` is given;
            False: voxels (as TransUNet).

    Example:
        >>> metric = VolumetricSegmentationMetric(num_classes=3)
        >>> pred = torch.zeros(1, 1, 4, 8, 8); pred[0, 0, 1:3, 2:6, 2:6] = 1
        >>> _ = metric(pred, pred.clone()), metric(pred, torch.zeros_like(pred))
        >>> metric.aggregate()["summary"]["all"]["dice"]  # class 1: 1 and 1 (empty truth); class 2: 0 and 0
        {'class_1': 1.0, 'class_2': 0.0}
    """

    def __init__(
        self,
        num_classes: int,
        class_names: Sequence[str] | None = None,
        include_background: bool = False,
        percentile: float = 95.0,
        empty: str = "transunet",
        use_spacing: bool = True,
        distance_metric: str = "euclidean",
    ) -> None:
        super().__init__()
        if empty not in EMPTY_POLICIES:
            raise ValueError(f"empty must be one of {EMPTY_POLICIES}, got {empty!r}.")
        self.num_classes = int(num_classes)
        first = 0 if include_background else 1
        names = list(class_names) if class_names is not None else [f"class_{c}" for c in range(first,
                                                                                             self.num_classes)]
        if len(names) != self.num_classes - first:
            raise ValueError(f"{len(names)} class_names for {self.num_classes - first} reported classes "
                             f"(num_classes={num_classes}, include_background={include_background}).")
        self.class_names = [str(n) for n in names]
        self.include_background = include_background
        self.percentile = percentile
        self.empty = empty
        self.use_spacing = use_spacing
        self.distance_metric = distance_metric

    def _compute_tensor(self, y_pred: torch.Tensor, y: torch.Tensor, **kwargs: Any) -> torch.Tensor:  # type: ignore[override]
        spacing = kwargs.get("spacing")
        if spacing is None and self.use_spacing and isinstance(y, MetaTensor):
            affine = y.affine
            spacing = [_affine_spacing(a) for a in affine] if affine.ndim == 3 else _affine_spacing(affine)
        if not self.use_spacing:
            spacing = None
        return compute_volume_metrics(y_pred, y, num_classes=self.num_classes,
                                      include_background=self.include_background, spacing=spacing,
                                      percentile=self.percentile, empty=self.empty,
                                      distance_metric=self.distance_metric)

    def aggregate(  # type: ignore[override]
        self, records: Sequence[Mapping[str, Any]] | None = None
    ) -> dict[str, Any]:
        """The summary (:func:`summarize_volume_metrics`) of the cases so far; ``records`` (one per case, in buffer
        order) may give each case's ``id``, ``group`` and ``spacing``."""
        values = self.get_buffer()
        if values is None:
            raise ValueError("no case was evaluated.")
        return summarize_volume_metrics(values, self.class_names, records=records, empty=self.empty)


def _nanmean(values: np.ndarray, axis: int | None = None) -> Any:
    with warnings.catch_warnings():  # a class with no defined value (all NaN) has a NaN mean: not worth a warning
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(values, axis=axis)


def _summary(values: np.ndarray, names: Sequence[str]) -> dict[str, Any]:
    """values: [N, C, 6] of one group of cases."""
    dice, iou, hd95, tp, fp, fn = (values[..., i] for i in range(len(VOLUME_METRIC_FIELDS)))
    dice_c, iou_c, hd95_c = _nanmean(dice, axis=0), _nanmean(iou, axis=0), _nanmean(hd95, axis=0)
    tp_c, fp_c, fn_c = tp.sum(0), fp.sum(0), fn.sum(0)
    out: dict[str, Any] = {
        "num_cases": int(values.shape[0]),
        "dice": dict(zip(names, map(float, dice_c))),
        "iou": dict(zip(names, map(float, iou_c))),
        "hd95": dict(zip(names, map(float, hd95_c))),
        "mean_dice": float(_nanmean(dice_c)),
        "mean_iou": float(_nanmean(iou_c)),
        "mean_hd95": float(_nanmean(hd95_c)),
        "tp": dict(zip(names, map(float, tp_c))),
        "fp": dict(zip(names, map(float, fp_c))),
        "fn": dict(zip(names, map(float, fn_c))),
        "empty_truth": dict(zip(names, map(int, ((tp + fn) == 0).sum(0)))),
        "empty_prediction": dict(zip(names, map(int, ((tp + fp) == 0).sum(0)))),
        # present in the truth, absent from the prediction: HD95 is 0 there under the "transunet" rule
        "missed": dict(zip(names, map(int, (((tp + fn) > 0) & ((tp + fp) == 0)).sum(0)))),
        "dice_nan": dict(zip(names, map(int, np.isnan(dice).sum(0)))),
        "hd95_nan": dict(zip(names, map(int, np.isnan(hd95).sum(0)))),
    }
    oii_c = np.asarray(compute_oii(tp_c, fp_c, fn_c), dtype=np.float64).reshape(-1)
    out["oii"] = dict(zip(names, map(float, oii_c)))
    out["mean_oii"] = float(np.mean(oii_c)) if oii_c.size else float("nan")
    return out


def summarize_volume_metrics(
    values: Any,
    class_names: Sequence[str],
    records: Sequence[Mapping[str, Any]] | None = None,
    empty: str = "transunet",
) -> dict[str, Any]:
    """Per-case rows and summaries of ``values`` (``[N, C, 6]``, :data:`VOLUME_METRIC_FIELDS`).

    Per class: the mean over cases of Dice, IoU and HD95 (NaNs, from ``empty="nan"``, left out and counted), the
    summed TP/FP/FN and their OII (the DIBE paper's index from whole-set counts, ``compute_oii``); then
    ``mean_dice``/``mean_iou``/``mean_hd95``/``mean_oii``: the mean of the per-class values over the classes
    (TransUNet and the DBCE paper's Table 3). ``summary["all"]`` covers every case; each ``group`` of the records
    (ACDC: ``"ED"``, ``"ES"``) has its own entry.

    Args:
        values: ``[N, C, 6]`` tensor or array.
        class_names: names of the C classes.
        records: one mapping per case with optional ``id``, ``group``, ``spacing``.
        empty: recorded in the report (the rule the values were computed with).
    """
    arr = np.asarray(values.detach().cpu() if isinstance(values, torch.Tensor) else values, dtype=np.float64)
    if arr.ndim != 3 or arr.shape[2] != len(VOLUME_METRIC_FIELDS) or arr.shape[1] != len(class_names):
        raise ValueError(f"values must be [cases, {len(class_names)} classes, {len(VOLUME_METRIC_FIELDS)}], got "
                         f"{arr.shape}.")
    records = [dict(r) for r in records] if records is not None else [{} for _ in range(arr.shape[0])]
    if len(records) != arr.shape[0]:
        raise ValueError(f"{len(records)} records for {arr.shape[0]} cases.")
    names = [str(n) for n in class_names]
    cases = []
    for i, record in enumerate(records):
        row: dict[str, Any] = {"id": str(record.get("id", i))}
        if record.get("group") is not None:
            row["group"] = str(record["group"])
        if record.get("spacing") is not None:
            row["spacing"] = [float(s) for s in record["spacing"]]
        for f, field in enumerate(VOLUME_METRIC_FIELDS):
            row[field] = dict(zip(names, map(float, arr[i, :, f])))
        for f, field in enumerate(VOLUME_METRIC_FIELDS[:3]):
            row[f"mean_{field}"] = float(_nanmean(arr[i, :, f]))
        cases.append(row)
    summary = {"all": _summary(arr, names)}
    groups = sorted({r["group"] for r in cases if "group" in r})
    for group in groups:
        mask = np.array([r.get("group") == group for r in cases])
        summary[group] = _summary(arr[mask], names)
    # "oii_skipped" stays in the report's format (None: the OII is always computed now)
    return {"classes": names, "empty_policy": empty, "oii_skipped": None, "cases": cases, "summary": summary}


def _key(name: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in str(name)).strip("_")


def flat_volume_metrics(report: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    """Scalars of a report for ``engine.state.metrics`` / TensorBoard: ``{prefix}mean_dice``, ``mean_iou``,
    ``mean_hd95``, ``mean_oii``, ``dice_<class>``, ``iou_<class>``, ``hd95_<class>``, ``oii_<class>``, and per group
    the same with ``_<group>``."""
    out: dict[str, float] = {}
    for group, summary in report["summary"].items():
        tail = "" if group == "all" else f"_{_key(group)}"
        for metric in ("mean_dice", "mean_iou", "mean_hd95", "mean_oii"):
            if metric in summary:
                out[f"{prefix}{metric}{tail}"] = float(summary[metric])
        for metric in ("dice", "iou", "hd95", "oii"):
            for name, value in summary.get(metric, {}).items():
                out[f"{prefix}{metric}_{_key(name)}{tail}"] = float(value)
    return out


def evaluate_volumes(
    network: torch.nn.Module,
    data: Iterable[Mapping[str, Any]],
    inferer: Callable[..., torch.Tensor],
    num_classes: int,
    class_names: Sequence[str] | None = None,
    device: str | torch.device | None = None,
    include_background: bool = False,
    empty: str = "transunet",
    use_spacing: bool = True,
    percentile: float = 95.0,
    id_key: str = "id",
    group_key: str | None = None,
    image_key: str = "image",
    label_key: str = "label",
) -> dict[str, Any]:
    """Evaluate a 2-D network on volumes without ignite: predict each volume slice by slice, compute its per-class
    metrics, and summarise (the report of :func:`summarize_volume_metrics`).

    Args:
        network: a 2-D network (put in eval mode here).
        data: items with channel-first ``image`` ``(C, *3-D)`` and ``label`` ``(1, *3-D)`` (e.g. a MONAI
            ``Dataset`` with the loading transforms); optional ``id_key`` and ``group_key`` values.
        inferer: a volume inferer, e.g. :class:`monai_imbalance.inferers.SliceBySliceInferer`.
        num_classes, class_names, include_background, empty, use_spacing, percentile: as
            :class:`VolumetricSegmentationMetric`.
        device: where the network runs (default: its parameters' device).
    """
    metric = VolumetricSegmentationMetric(num_classes, class_names, include_background=include_background,
                                          percentile=percentile, empty=empty, use_spacing=use_spacing)
    if device is None:
        device = next(iter(network.parameters()), torch.zeros(0)).device
    network.eval()
    records = []
    with torch.no_grad():
        for i, item in enumerate(data):
            image, label = item[image_key], item[label_key]
            pred = inferer(torch.as_tensor(image)[None].to(device), network).cpu()
            spacing = spacing_of(label) if use_spacing else None
            metric(pred, torch.as_tensor(label)[None], spacing=[spacing])
            records.append({"id": item.get(id_key, source_id(label, i)),
                            "group": item.get(group_key) if group_key else None, "spacing": spacing})
    return metric.aggregate(records)


def source_id(x: Any, index: int) -> str:
    """The case id of a volume: its source file name without the volume suffixes, else ``str(index)``."""
    meta = getattr(x, "meta", None) or {}
    source = meta.get("filename_or_obj")
    return split_volume_name(str(source))[0] if source else str(index)


def write_volume_report(report: Mapping[str, Any], output_dir: str | os.PathLike, prefix: str = "volumetric"
                        ) -> dict[str, Path]:
    """Write ``<prefix>_per_case.csv`` (one row per case: id, group, spacing, then dice/iou/hd95/tp/fp/fn per class
    and the case's class means), ``<prefix>_summary.csv`` (one row per group and class, plus the ``mean`` row) and
    ``<prefix>_report.json`` (everything); return their paths."""
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    names = list(report["classes"])
    paths = {"per_case": out / f"{prefix}_per_case.csv", "summary": out / f"{prefix}_summary.csv",
             "report": out / f"{prefix}_report.json"}
    header = ["id", "group", "spacing"] + [f"{f}_{_key(n)}" for n in names for f in VOLUME_METRIC_FIELDS] + [
        "mean_dice", "mean_iou", "mean_hd95"]
    with open(paths["per_case"], "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        for row in report["cases"]:
            spacing = " ".join(f"{s:g}" for s in row["spacing"]) if row.get("spacing") else ""
            values = [row[field][n] for n in names for field in VOLUME_METRIC_FIELDS]
            writer.writerow([row["id"], row.get("group", ""), spacing, *map(_fmt, values), _fmt(row["mean_dice"]),
                             _fmt(row["mean_iou"]), _fmt(row["mean_hd95"])])
    with open(paths["summary"], "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["group", "class", "dice", "iou", "hd95", "oii", "tp", "fp", "fn", "cases", "empty_truth",
                         "empty_prediction"])
        for group, s in report["summary"].items():
            for n in names:
                writer.writerow([group, n, _fmt(s["dice"][n]), _fmt(s["iou"][n]), _fmt(s["hd95"][n]),
                                 _fmt(s.get("oii", {}).get(n)), _fmt(s["tp"][n]), _fmt(s["fp"][n]), _fmt(s["fn"][n]),
                                 s["num_cases"], s["empty_truth"][n], s["empty_prediction"][n]])
            writer.writerow([group, "mean", _fmt(s["mean_dice"]), _fmt(s["mean_iou"]), _fmt(s["mean_hd95"]),
                             _fmt(s.get("mean_oii")), "", "", "", s["num_cases"], "", ""])
    paths["report"].write_text(json.dumps(report, indent=1, default=_json_default) + "\n")
    return paths


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    value = float(value)
    if math.isnan(value):
        return "nan"
    return str(int(value)) if value.is_integer() and abs(value) >= 1 else f"{value:.8g}"


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
