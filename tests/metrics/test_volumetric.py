"""Volumetric metrics of label volumes: per-case per-class Dice/IoU/HD95 against hand computations (with spacing, the
percentile, both empty-mask rules), the summaries (means over cases then classes, groups, OII), evaluation without
ignite, and the report files."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest
import torch
from monai.data import MetaTensor

from monai_imbalance.inferers import SliceBySliceInferer
from monai_imbalance.metrics import (
    VolumetricSegmentationMetric,
    compute_volume_metrics,
    evaluate_volumes,
    flat_volume_metrics,
    spacing_of,
    summarize_volume_metrics,
    write_volume_report,
)
from monai_imbalance.metrics.volumetric import source_id


def _oii_by_hand(tp: float, fp: float, fn: float) -> float:
    """The DIBE paper's OII, written out (method_readings.md), for counts with FP, FN > 0."""
    x = fp / fn
    k = 1 - (2 / math.pi) * math.atan((fp + fn) / (5 * tp))
    return 1 - k / (x + 1 / x - 1) if x <= 1 else k / (x + 1 / x - 1) - 1


def test_per_case_metrics_match_hand_computation_transunet_rule(volume_cases, volume_spacing):
    pred, truth = volume_cases()
    values = compute_volume_metrics(pred, truth, num_classes=3, spacing=volume_spacing)
    assert values.shape == (2, 2, 6)  # cases, classes 1-2, (dice, iou, hd95, tp, fp, fn)
    expected = torch.tensor([
        [[0.5, 1 / 3, 2.5, 4, 4, 4], [1.0, 1.0, 0.0, 0, 1, 0]],   # A: overlap; empty truth -> (1, 1, 0)
        [[0.0, 0.0, 0.0, 0, 0, 8], [1.0, 1.0, 0.0, 18, 0, 0]],    # B: empty prediction -> (0, 0, 0); perfect
    ], dtype=torch.float64)
    torch.testing.assert_close(values, expected, atol=1e-6, rtol=0)
    voxels = compute_volume_metrics(pred, truth, num_classes=3)  # no spacing: voxel units
    assert voxels[0, 0, 2].item() == pytest.approx(1.0)


def test_monai_rule_leaves_empty_cases_out(volume_cases, volume_spacing):
    pred, truth = volume_cases()
    values = compute_volume_metrics(pred, truth, num_classes=3, spacing=volume_spacing, empty="nan")
    assert values[0, 0, :3].tolist() == pytest.approx([0.5, 1 / 3, 2.5])
    assert all(math.isnan(v) for v in values[0, 1, :3].tolist())  # truth empty: Dice, IoU, HD95 undefined
    assert values[1, 0, 0].item() == 0.0 and math.isnan(values[1, 0, 2].item())  # prediction empty: Dice 0, HD nan
    report = summarize_volume_metrics(values, ["organ", "other"], empty="nan")
    s = report["summary"]["all"]
    assert s["dice"] == pytest.approx({"organ": 0.25, "other": 1.0})
    assert s["hd95"] == pytest.approx({"organ": 2.5, "other": 0.0})  # the NaNs are left out
    assert s["hd95_nan"] == {"organ": 1, "other": 1} and s["dice_nan"] == {"organ": 0, "other": 1}
    assert s["mean_hd95"] == pytest.approx(1.25)


def test_hd95_is_a_percentile_and_spacing_per_case(volume_cases, volume_spacing):
    truth = torch.zeros(1, 1, 1, 3, 40)
    truth[0, 0, 0, 1, 0:20] = 1  # a line of 20 voxels
    pred = truth.clone()
    pred[0, 0, 0, 1, 30] = 1  # one outlier 11 voxels from the line
    hd95 = compute_volume_metrics(pred, truth, num_classes=2)[0, 0, 2].item()
    hd100 = compute_volume_metrics(pred, truth, num_classes=2, percentile=100)[0, 0, 2].item()
    # directed distances prediction -> truth: 20 zeros and 11; the 95th percentile of 21 values is the 20th: 0
    assert hd95 == pytest.approx(0.0) and hd100 == pytest.approx(11.0)
    pred, truth = volume_cases()
    per_case = compute_volume_metrics(pred, truth, num_classes=3, spacing=[volume_spacing, None])
    assert per_case[0, 0, 2].item() == pytest.approx(2.5)


def test_summary_means_over_cases_then_classes_and_oii(volume_cases, volume_spacing):
    pred, truth = volume_cases()
    records = [{"id": "A", "group": "ED", "spacing": volume_spacing}, {"id": "B", "group": "ES"}]
    report = summarize_volume_metrics(compute_volume_metrics(pred, truth, num_classes=3, spacing=volume_spacing),
                                      ["organ", "other"], records=records)
    s = report["summary"]["all"]
    assert s["num_cases"] == 2
    assert s["dice"] == pytest.approx({"organ": 0.25, "other": 1.0}) and s["mean_dice"] == pytest.approx(0.625)
    assert s["iou"] == pytest.approx({"organ": 1 / 6, "other": 1.0}) and s["mean_iou"] == pytest.approx(7 / 12)
    assert s["hd95"] == pytest.approx({"organ": 1.25, "other": 0.0}) and s["mean_hd95"] == pytest.approx(0.625)
    assert (s["tp"]["organ"], s["fp"]["organ"], s["fn"]["organ"]) == (4, 4, 12)
    assert s["empty_truth"] == {"organ": 0, "other": 1} and s["empty_prediction"] == {"organ": 1, "other": 0}
    assert report["oii_skipped"] is None  # kept in the report's format; the OII is always computed
    assert s["oii"]["organ"] == pytest.approx(_oii_by_hand(4, 4, 12), abs=1e-9)
    assert s["oii"]["other"] == -1.0  # FN = 0 < FP: over-segmentation only
    assert s["mean_oii"] == pytest.approx((_oii_by_hand(4, 4, 12) - 1.0) / 2, abs=1e-9)
    assert report["summary"]["ED"]["dice"] == pytest.approx({"organ": 0.5, "other": 1.0})
    assert report["summary"]["ES"]["mean_dice"] == pytest.approx(0.5)
    assert [c["id"] for c in report["cases"]] == ["A", "B"] and report["cases"][0]["mean_dice"] == 0.75
    flat = flat_volume_metrics(report, "val_")
    assert flat["val_mean_dice"] == pytest.approx(0.625) and flat["val_dice_organ_ED"] == pytest.approx(0.5)
    assert flat["val_hd95_organ"] == pytest.approx(1.25)


def test_one_hot_inputs_and_bad_arguments(volume_cases, volume_spacing):
    pred, truth = volume_cases()
    onehot = lambda x: torch.nn.functional.one_hot(x[:, 0].long(), 3).permute(0, 4, 1, 2, 3).float()  # noqa: E731
    torch.testing.assert_close(compute_volume_metrics(onehot(pred), onehot(truth), spacing=volume_spacing),
                               compute_volume_metrics(pred, truth, num_classes=3, spacing=volume_spacing))
    with pytest.raises(ValueError, match="num_classes"):
        compute_volume_metrics(pred, truth)
    with pytest.raises(ValueError, match="empty"):
        compute_volume_metrics(pred, truth, num_classes=3, empty="zero")
    with pytest.raises(ValueError, match="same batch and spatial"):
        compute_volume_metrics(pred, truth[..., :5], num_classes=3)
    with pytest.raises(ValueError, match="class_names"):
        VolumetricSegmentationMetric(num_classes=3, class_names=["only one"])


def test_evaluate_volumes_with_an_oracle_network(volume_cases, volume_spacing, oracle_network):
    pred, truth = volume_cases()
    affine = torch.diag(torch.tensor([*volume_spacing, 1.0], dtype=torch.float64))
    data = [{"image": pred[i], "label": MetaTensor(truth[i], affine=affine), "id": name, "phase": phase}
            for i, (name, phase) in enumerate([("A", "ED"), ("B", "ES")])]
    report = evaluate_volumes(oracle_network(), data, SliceBySliceInferer(spatial_dim=0, roi_size=(12, 12),
                                                                          mode="nearest-exact"),
                              num_classes=3, class_names=["organ", "other"], group_key="phase")
    assert report["summary"]["all"]["mean_dice"] == pytest.approx(0.625)
    assert report["summary"]["all"]["hd95"]["organ"] == pytest.approx(1.25)  # spacing read from the label's affine
    assert report["cases"][0]["spacing"] == list(volume_spacing) and report["cases"][1]["group"] == "ES"


def test_write_report_and_nan_cells(tmp_path):
    values = torch.tensor([[[float("nan"), float("nan"), float("nan"), 0, 2, 0]]], dtype=torch.float64)
    paths = write_volume_report(summarize_volume_metrics(values, ["c"], empty="nan"), tmp_path, prefix="x")
    with open(paths["per_case"]) as f:
        row = next(csv.DictReader(f))
    assert row["dice_c"] == "nan" and row["fp_c"] == "2"


@pytest.mark.parametrize("affine, expected", [
    (np.diag([2.5, 1.0, 0.7, 1.0]), [2.5, 1.0, 0.7]),
    (np.array([[0, -1.5, 0, 10], [1.4, 0, 0, -3], [0, 0, 8.0, 2], [0, 0, 0, 1]]), [1.4, 1.5, 8.0]),  # permuted axes
    (np.array([[0.6, -0.8, 0, 0], [0.8, 0.6, 0, 0], [0, 0, 3.0, 0], [0, 0, 0, 1]]), [1.0, 1.0, 3.0]),  # rotated
    (np.diag([0.5, 2.0, 1.0]), [0.5, 2.0]),  # a 2-D affine
    (np.diag([0.0, 2.0, 3.0, 1.0]), [0.0, 2.0, 3.0]),  # a degenerate axis stays 0 (MONAI's default would give 1)
])
def test_spacing_of_reads_the_affine_columns(affine, expected):
    ndim = affine.shape[0] - 1
    x = MetaTensor(torch.zeros(1, *([3] * ndim)), affine=torch.as_tensor(affine))
    assert spacing_of(x) == pytest.approx(expected, abs=1e-12)
    assert spacing_of(torch.zeros(1, 3, 3, 3)) is None  # no affine: voxels


def test_metric_takes_the_spacing_of_batched_label_affines(volume_cases, volume_spacing):
    pred, truth = volume_cases()
    affine = torch.diag(torch.tensor([*volume_spacing, 1.0], dtype=torch.float64))
    batched = MetaTensor(truth, affine=affine)  # (B, ...) with one affine: as the collated batch of a DataLoader
    batched.is_batch = True
    batched.affine = torch.stack([affine, torch.eye(4, dtype=torch.float64)])
    metric = VolumetricSegmentationMetric(num_classes=3)
    values = metric(pred, batched)
    assert values[0, 0, 2].item() == pytest.approx(2.5)  # case A: its own spacing
    assert VolumetricSegmentationMetric(num_classes=3, use_spacing=False)(pred, batched)[0, 0, 2].item() == 1.0


def test_source_id_is_the_file_name_without_volume_suffixes():
    x = MetaTensor(torch.zeros(1, 2, 2, 2), meta={"filename_or_obj": "/data/test_vol_h5/case0001.npy.h5"})
    assert source_id(x, 3) == "case0001"
    assert source_id(torch.zeros(1, 2, 2, 2), 3) == "3"
