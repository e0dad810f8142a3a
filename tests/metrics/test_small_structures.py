"""Small-structure measures: per-slice counts against a brute-force loop, hand-computed summaries, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from monai_imbalance.metrics.small_structures import (
    flat_small_structure_metrics,
    slice_class_counts,
    small_area_thresholds,
    summarize_small_structures,
)


def _brute_counts(pred, label, num_classes, axis):
    p, y = np.moveaxis(pred, axis, 0), np.moveaxis(label, axis, 0)
    out = np.zeros((p.shape[0], num_classes - 1, 3), dtype=np.int64)
    for s in range(p.shape[0]):
        for c in range(1, num_classes):
            for v_p, v_y in zip(p[s].ravel(), y[s].ravel()):
                out[s, c - 1, 0] += v_y == c
                out[s, c - 1, 1] += v_p == c
                out[s, c - 1, 2] += (v_y == c) and (v_p == c)
    return out


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_counts_equal_a_pixel_loop(axis):
    rng = np.random.default_rng(axis)
    label = rng.integers(0, 4, (4, 5, 6))
    pred = rng.integers(0, 4, (4, 5, 6))
    np.testing.assert_array_equal(slice_class_counts(pred, label, 4, axis=axis), _brute_counts(pred, label, 4, axis))


def test_counts_accept_torch_channel_first_and_float_labels():
    label = np.zeros((1, 2, 4, 4), np.float32)
    label[0, 1, :2, :2] = 2
    pred = torch.as_tensor(label.copy())
    counts = slice_class_counts(pred, label, num_classes=3)
    assert counts.shape == (2, 2, 3)
    np.testing.assert_array_equal(counts[1], [[0, 0, 0], [4, 4, 4]])
    with_background = slice_class_counts(pred, label, num_classes=3, include_background=True)
    np.testing.assert_array_equal(with_background[1, 0], [12, 12, 12])


def test_thresholds_are_percentiles_of_present_areas_only():
    counts = np.zeros((5, 2, 3), np.int64)
    counts[:, 0, 0] = [0, 10, 20, 30, 40]  # class 1 absent from slice 0: not counted
    counts[:, 1, 0] = 0  # class 2 present nowhere
    thresholds = small_area_thresholds(counts, percentile=25)
    assert thresholds[0] == pytest.approx(17.5)  # numpy's linear percentile of 10, 20, 30, 40
    assert np.isnan(thresholds[1])


def test_summary_by_hand():
    # one class; four slices where it is present (areas 16, 4, 2, 9) and one where it is not
    counts = np.array([
        [[16, 16, 16]],  # perfect
        [[4, 2, 2]],  # half found: Dice 2*2/(4+2) = 2/3
        [[2, 0, 0]],  # missed entirely
        [[9, 9, 0]],  # all wrong: Dice 0, not missed (pixels predicted)
        [[0, 3, 0]],  # false positive on a slice without the class
    ])
    thresholds = small_area_thresholds(counts, percentile=50)  # median of 16, 4, 2, 9 = 6.5
    assert thresholds[0] == pytest.approx(6.5)
    summary = summarize_small_structures(counts, thresholds, class_names=["RV"], groups=["ED", "ED", "ES", "ES", "ES"])
    rv = summary["all"]["RV"]
    assert rv["present_slices"] == 4 and rv["small_slices"] == 2  # areas 4 and 2
    assert rv["small_dice"] == pytest.approx((2 / 3 + 0) / 2)
    assert rv["slice_dice"] == pytest.approx((1 + 2 / 3 + 0 + 0) / 4)
    assert rv["missed_slices"] == 1 and rv["missed_share"] == pytest.approx(0.25)
    assert rv["missed_small_share"] == pytest.approx(0.5)
    assert rv["false_slices"] == 1
    ed, es = summary["ED"]["RV"], summary["ES"]["RV"]
    assert (ed["present_slices"], ed["small_slices"], ed["missed_share"]) == (2, 1, 0.0)
    assert es["small_dice"] == pytest.approx(0.0) and es["missed_share"] == pytest.approx(0.5)
    flat = flat_small_structure_metrics(summary, "test_")
    assert flat["test_small_dice_RV"] == pytest.approx(1 / 3) and flat["test_missed_share_RV_ES"] == 0.5
    assert flat["test_small_dice_mean"] == pytest.approx(1 / 3)


def test_classes_without_small_slices_give_nan_not_zero():
    counts = np.zeros((2, 2, 3), np.int64)
    counts[:, 0] = [[5, 5, 5], [7, 7, 7]]
    summary = summarize_small_structures(counts, small_area_thresholds(counts), class_names=["a", "b"])
    assert np.isnan(summary["all"]["b"]["small_dice"]) and np.isnan(summary["all"]["b"]["missed_share"])
    assert summary["all"]["a"]["small_dice"] == 1.0


@pytest.mark.parametrize(
    "pred, label, num_classes, match",
    [
        (np.zeros((2, 3, 3)), np.zeros((2, 3, 4)), 2, "same shape"),
        (np.zeros((3, 3)), np.zeros((3, 3)), 2, "3-D label volume"),
        (np.full((2, 3, 3), 0.5), np.zeros((2, 3, 3)), 2, "whole numbers"),
        (np.zeros((2, 3, 3)), np.full((2, 3, 3), 4), 4, r"outside 0\.\.3"),
        (np.zeros((2, 3, 3)), np.zeros((2, 3, 3)), 1, "num_classes"),
    ],
)
def test_bad_input_is_named(pred, label, num_classes, match):
    with pytest.raises(ValueError, match=match):
        slice_class_counts(pred, label, num_classes)


def test_summary_rejects_mismatched_thresholds_and_groups():
    counts = np.zeros((3, 2, 3), np.int64)
    with pytest.raises(ValueError, match="one value per class"):
        summarize_small_structures(counts, [1.0])
    with pytest.raises(ValueError, match="groups has 2 entries for 3 slices"):
        summarize_small_structures(counts, [1.0, 1.0], groups=["ED", "ES"])
