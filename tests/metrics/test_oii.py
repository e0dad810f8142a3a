"""Output Imbalance Index: the paper's Table 1, the edge cases of the readings, the metric (micro / per image, DDP)."""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from monai_imbalance.metrics import OIIResult, OutputImbalanceIndexMetric, compute_oii, compute_oii_counts

# DIBE paper Table 1: TP:FP:FN -> OII; row 3 is printed 0.334 where the formula gives 0.344 (a typo in the table)
TABLE1 = [
    ((2, 0.5, 0.5), 0.064),
    ((2, 1, 1), 0.126),
    ((2, 3, 3), 0.344),
    ((2, 5, 1), -0.844),
    ((2, 4, 2), -0.563),
    ((2, 2, 4), 0.563),
    ((2, 1, 5), 0.844),
    ((2, 1, 2), 0.457),
    ((2, 1, 0.5), -0.397),
    ((2, 1, 0.2), -0.780),
]


@pytest.mark.parametrize("counts,expected", TABLE1)
def test_table1_rows(counts, expected):
    assert compute_oii(*counts) == pytest.approx(expected, abs=1e-3)


def test_table1_vectorised_numpy_and_torch():
    tp, fp, fn = (np.array(c) for c in zip(*(row for row, _ in TABLE1)))
    expected = np.array([e for _, e in TABLE1])
    np.testing.assert_allclose(compute_oii(tp, fp, fn), expected, atol=1e-3)
    out = compute_oii(torch.tensor(tp), torch.tensor(fp), torch.tensor(fn))
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float64
    np.testing.assert_allclose(out.numpy(), expected, atol=1e-3)
    assert compute_oii(torch.tensor(tp, dtype=torch.float32), fp, fn).dtype == torch.float32
    assert isinstance(compute_oii(2, 1, 2), float)


def test_sign_convention_and_symmetry():
    # positive: false negatives dominate (under-segmentation); negative: false positives dominate
    assert compute_oii(10, 1, 5) > 0 > compute_oii(10, 5, 1)
    assert compute_oii(10, 1, 5) == pytest.approx(-compute_oii(10, 5, 1))
    # the magnitude grows with (FP + FN) / TP at a fixed FP / FN
    assert compute_oii(100, 1, 2) < compute_oii(10, 1, 2) < compute_oii(1, 1, 2)
    # Eq. 13 itself for a generic value
    tp, fp, fn = 7.0, 3.0, 11.0
    x = fp / fn
    k = 1 - 2 / np.pi * np.arctan((fp + fn) / (5 * tp))
    assert compute_oii(tp, fp, fn) == pytest.approx(1 - k / (x + 1 / x - 1))


def test_edge_cases_of_the_readings():
    assert compute_oii(5, 0, 0) == 0.0 and compute_oii(0, 0, 0) == 0.0  # FP = FN = 0 -> 0
    assert compute_oii(5, 0, 3) == 1.0  # FP = 0 < FN -> 1
    assert compute_oii(5, 3, 0) == -1.0  # FN = 0 < FP -> -1
    assert compute_oii(0, 2, 3) == 1.0 and compute_oii(0, 3, 2) == -1.0  # TP = 0 -> k = 0
    assert compute_oii(0, 2, 2) == 1.0  # x = 1 belongs to the first branch
    assert np.isnan(compute_oii(float("nan"), 1, 2))
    big = compute_oii(torch.tensor([1e15]), torch.tensor([3e14]), torch.tensor([1e14]))
    assert torch.isfinite(big).all()
    with pytest.raises(ValueError, match=">= 0"):
        compute_oii(1, -1, 2)


def _onehot(labels: torch.Tensor, classes: int) -> torch.Tensor:
    return torch.nn.functional.one_hot(labels.long(), classes).movedim(-1, 1).float()


def test_counts_per_image_and_class():
    y = _onehot(torch.tensor([[[0, 1, 1], [2, 2, 0]]]), 3)
    y_pred = _onehot(torch.tensor([[[0, 1, 0], [2, 1, 1]]]), 3)
    counts = compute_oii_counts(y_pred, y)
    assert counts.shape == (1, 3, 3) and counts.dtype == torch.float64
    # class 1: TP 1 (pixel 0,1), FP 2 (1,1 and 1,2), FN 1 (0,2)
    assert counts[0, 1].tolist() == [1.0, 2.0, 1.0]
    assert compute_oii_counts(y_pred, y, include_background=False).shape == (1, 2, 3)
    with pytest.raises(ValueError, match="same shapes"):
        compute_oii_counts(y_pred, y[:, :2])


def _random_batches(seed=0, batches=3, classes=3, spatial=(8, 8)):
    gen = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(batches):
        y = torch.randint(0, classes, (2, *spatial), generator=gen)
        noise = torch.randint(0, classes, (2, *spatial), generator=gen)
        pred = torch.where(torch.rand(2, *spatial, generator=gen) < 0.7, y, noise)
        out.append((_onehot(pred, classes), _onehot(y, classes)))
    return out


def test_metric_micro_per_class_and_counts():
    batches = _random_batches()
    metric = OutputImbalanceIndexMetric(include_background=False, reduction="mean_batch", get_counts=True)
    for y_pred, y in batches:
        metric(y_pred=y_pred, y=y)
    result = metric.aggregate()
    assert isinstance(result, OIIResult) and result.oii.shape == (2,) and result.tp.shape == (2,)
    all_pred = torch.cat([p for p, _ in batches])[:, 1:]
    all_y = torch.cat([t for _, t in batches])[:, 1:]
    tp = (all_pred * all_y).sum((0, 2, 3)).double()
    fp = (all_pred * (1 - all_y)).sum((0, 2, 3)).double()
    fn = ((1 - all_pred) * all_y).sum((0, 2, 3)).double()
    torch.testing.assert_close(result.tp, tp)
    torch.testing.assert_close(result.fp, fp)
    torch.testing.assert_close(result.fn, fn)
    torch.testing.assert_close(result.oii, compute_oii(tp, fp, fn), check_dtype=False)
    # the default: one number, the mean over classes of the micro OII
    default = OutputImbalanceIndexMetric(include_background=False)
    for y_pred, y in batches:
        default(y_pred, y)
    assert default.aggregate().numel() == 1  # like MONAI: "mean" gives a one-element tensor
    assert default.aggregate().item() == pytest.approx(result.oii.mean().item())
    metric.reset()
    metric(*batches[0])
    assert metric.aggregate().tp.sum() == (batches[0][0][:, 1:] * batches[0][1][:, 1:]).sum()


def test_metric_per_image_and_ignore_empty():
    y = torch.zeros(2, 2, 4, 4)
    y[:, 0] = 1
    y[0, 1, :2, :2], y[0, 0, :2, :2] = 1, 0  # image 0 has foreground, image 1 none
    y_pred = y.clone()
    y_pred[0, 1, 0, 0], y_pred[0, 0, 0, 0] = 0, 1  # one missed pixel in image 0
    metric = OutputImbalanceIndexMetric(include_background=False, per_image=True, reduction="none")
    metric(y_pred, y)
    per_image = metric.aggregate()
    assert per_image.shape == (2, 1)
    assert per_image[0, 0].item() == pytest.approx(compute_oii(3, 0, 1)) and per_image[1, 0].item() == 0.0
    metric.ignore_empty = True
    assert torch.isnan(metric.aggregate()[1, 0]) and metric.aggregate(reduction="mean").item() == 1.0
    assert metric.aggregate(per_image=False, reduction="none").shape == (1, 1)


def _ddp_worker(rank: int, world: int, init_file: str, batches, result_file: str) -> None:
    torch.set_num_threads(1)  # forked from a process that ran parallel regions: stay out of OpenMP
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    metric = OutputImbalanceIndexMetric(reduction="mean_batch", get_counts=True)
    for y_pred, y in batches[rank::world]:
        metric(y_pred, y)
    result = metric.aggregate()
    if rank == 0:
        torch.save(tuple(result), result_file)
    dist.destroy_process_group()


@pytest.mark.skipif(not sys.platform.startswith("linux") or not dist.is_available(), reason="fork + gloo (Linux)")
def test_metric_under_ddp_matches_single_process(tmp_path):
    # two ranks, each with half of the batches: the gathered counts must give the single-process result
    batches = _random_batches(seed=3, batches=4)
    result_file = str(tmp_path / "result.pt")
    args = (2, str(tmp_path / "init"), batches, result_file)
    mp.start_processes(_ddp_worker, args=args, nprocs=2, join=True, start_method="fork")
    gathered = torch.load(result_file)
    single = OutputImbalanceIndexMetric(reduction="mean_batch", get_counts=True)
    for y_pred, y in batches:
        single(y_pred, y)
    for a, b in zip(gathered, single.aggregate()):
        torch.testing.assert_close(a, b)
    assert os.path.exists(result_file)


# ------------------------------------------------------------------- NaN predictions: an OII of NaN, never 0


def _nan_case(nan_images=(0,), value=float("nan")):
    """Three one-hot images 2x4x4 (a 2x2 object, one missed pixel); ``value`` in the prediction of ``nan_images``."""
    y = torch.zeros(3, 2, 4, 4)
    y[:, 1, :2, :2] = 1
    y[:, 0] = 1 - y[:, 1]
    y_pred = y.clone()
    y_pred[:, 1, 0, 0], y_pred[:, 0, 0, 0] = 0, 1
    for i in nan_images:
        y_pred[i, 1, 3, 3] = value
    return y_pred, y


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_nan_prediction_gives_nan_counts_and_oii(value):
    y_pred, y = _nan_case((0,), value)
    counts = compute_oii_counts(y_pred, y, include_background=False)
    assert torch.isnan(counts[0]).all() and torch.isfinite(counts[1:]).all()
    y_pred[0, 0, 3, 3] = value  # background channel only: the image's prediction is still not a prediction
    y_pred[0, 1, 3, 3] = 0
    assert torch.isnan(compute_oii_counts(y_pred, y, include_background=False)[0]).all()
    metric = OutputImbalanceIndexMetric(include_background=False, per_image=True, reduction="none")
    metric(y_pred, y)
    oii = metric.aggregate()
    assert torch.isnan(oii[0, 0]) and oii[1:, 0].tolist() == pytest.approx([1.0, 1.0])


@pytest.mark.parametrize("per_image", [False, True])
def test_nan_images_are_left_out_and_counted(per_image):
    y_pred, y = _nan_case((0,))
    metric = OutputImbalanceIndexMetric(include_background=False, per_image=per_image, get_counts=True)
    metric(y_pred, y)
    oii, tp, fp, fn = metric.aggregate()
    assert metric.nan_images == 1
    assert oii.item() == pytest.approx(1.0)  # the two other images: FP = 0 < FN
    if not per_image:  # the counts of the images without NaN
        assert (tp.tolist(), fp.tolist(), fn.tolist()) == ([6.0], [0.0], [2.0])
    clean = OutputImbalanceIndexMetric(include_background=False, per_image=per_image)
    clean(*_nan_case(()))
    clean.aggregate()
    assert clean.nan_images == 0


@pytest.mark.parametrize("reduction", ["mean", "sum", "mean_batch", "sum_batch", "mean_channel"])
@pytest.mark.parametrize("per_image", [False, True])
def test_all_nan_predictions_give_nan_not_zero(per_image, reduction):
    # before: 0, "perfectly balanced"
    y_pred, y = _nan_case((0, 1, 2))
    metric = OutputImbalanceIndexMetric(include_background=False, per_image=per_image, reduction=reduction)
    metric(y_pred, y)
    value = metric.aggregate()
    assert torch.isnan(value).all(), value
    assert metric.nan_images == 3


def test_integer_predictions_need_no_nan_check():
    y_pred, y = _nan_case(())
    counts = compute_oii_counts(y_pred.long(), y.long())
    torch.testing.assert_close(counts, compute_oii_counts(y_pred, y))
