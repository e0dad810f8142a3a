"""Confusion counts computed once and read by several metrics: the counts equal MONAI's ``get_confusion_matrix``, the
metrics reading them equal MONAI's ``ConfusionMatrixMetric`` and the package's OII metric computed separately (one
process and two DDP ranks), and the shared buffer resets for all of them."""

from __future__ import annotations

import itertools
import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from monai.metrics import ConfusionMatrixMetric, get_confusion_matrix

from monai_imbalance.metrics import (
    CONFUSION_FIELDS,
    ConfusionCountsMetric,
    OutputImbalanceIndexMetric,
    compute_confusion_counts,
)

NAMES = ("precision", "recall", "accuracy", "specificity", "f1 score", "mcc")


def _one_hot_pair(seed: int, shape=(3, 3, 7, 6), channels: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Binarised one-hot prediction and truth ``(B, C, *spatial)``; one-channel masks with ``channels=1``."""
    g = torch.Generator().manual_seed(seed)
    b, c, *spatial = shape
    if channels == 1:
        return (torch.rand(b, 1, *spatial, generator=g) > 0.6).float(), (torch.rand(b, 1, *spatial, generator=g) > 0.7
                                                                          ).float()
    pred = torch.randint(0, c, (b, *spatial), generator=g)
    truth = torch.randint(0, c, (b, *spatial), generator=g)
    truth[0] = 0  # an image without foreground: empty classes give NaN precision/recall
    hot = lambda x: torch.nn.functional.one_hot(x, c).movedim(-1, 1).float()  # noqa: E731
    return hot(pred), hot(truth)


def test_known_counts():
    y = torch.zeros(1, 1, 4, 4)
    y[..., :2, :2] = 1
    y_pred = y.clone()
    y_pred[..., 0, 0] = 0
    y_pred[..., 3, 3] = 1
    counts = compute_confusion_counts(y_pred, y)
    assert CONFUSION_FIELDS == ("tp", "fp", "tn", "fn")
    assert counts.dtype == torch.float64 and counts.tolist() == [[[3.0, 1.0, 11.0, 1.0]]]


@pytest.mark.parametrize("shape, channels", [((3, 3, 7, 6), None), ((2, 4, 5, 4, 3), None), ((3, 1, 8, 8), 1)])
@pytest.mark.parametrize("include_background", [True, False])
def test_counts_equal_monai_confusion_matrix(shape, channels, include_background):
    y_pred, y = _one_hot_pair(0, shape, channels)
    ours = compute_confusion_counts(y_pred, y, include_background)
    monai = get_confusion_matrix(y_pred, y, include_background=include_background)
    assert torch.equal(ours, monai.double())


@pytest.mark.parametrize("compute_sample, reduction", [(True, "mean"), (False, "mean"), (True, "mean_batch"),
                                                       (True, "none"), (False, "sum_batch")])
@pytest.mark.parametrize("include_background", [True, False])
def test_shared_counts_give_monai_confusion_metrics_and_the_package_oii(compute_sample, reduction, include_background):
    batches = [_one_hot_pair(seed) for seed in range(3)]
    counts = ConfusionCountsMetric(include_background=include_background)
    readers = {name: counts.confusion_matrix_metric(name, compute_sample=compute_sample, reduction=reduction)
               for name in NAMES}
    separate = {name: ConfusionMatrixMetric(include_background=include_background, metric_name=name,
                                            compute_sample=compute_sample, reduction=reduction) for name in NAMES}
    oii_settings = [dict(per_image=p, reduction=r) for p, r in itertools.product([False, True], ["mean", "none"])]
    oii_readers = [counts.oii_metric(get_counts=True, **kw) for kw in oii_settings]
    oii_separate = [OutputImbalanceIndexMetric(include_background=include_background, get_counts=True, **kw)
                    for kw in oii_settings]
    for y_pred, y in batches:
        counts(y_pred, y)  # once per iteration, for all of the readers
        for metric in (*separate.values(), *oii_separate):
            metric(y_pred, y)
    assert counts.aggregate().shape == (9, 3 if include_background else 2, 4)
    for name in NAMES:
        ours, theirs = readers[name].aggregate()[0], separate[name].aggregate()[0]
        assert ours.dtype == theirs.dtype and torch.equal(ours.nan_to_num(-7), theirs.nan_to_num(-7)), name
        assert torch.equal(readers[name].get_buffer(), separate[name].get_buffer())  # the float32 details
    for ours, theirs in zip(oii_readers, oii_separate):
        for a, b in zip(ours.aggregate(), theirs.aggregate()):
            assert a.dtype == b.dtype and torch.equal(a, b)
    readers["recall"].reset()  # resets the shared buffer: every reader starts afresh
    assert counts.get_buffer() is None
    readers["precision"](*batches[0])  # and a reader called adds to the shared buffer
    assert counts.aggregate().shape[0] == 3 and oii_readers[0].get_buffer().shape[-1] == 3


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rank_run(rank: int, world_size: int, port: int, queue) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world_size)
    try:
        counts = ConfusionCountsMetric()
        precision = counts.confusion_matrix_metric("precision", compute_sample=True)
        oii = counts.oii_metric()
        monai = ConfusionMatrixMetric(metric_name="precision", compute_sample=True)
        separate_oii = OutputImbalanceIndexMetric()
        for seed in range(rank, 4, world_size):  # each rank its share of the images
            y_pred, y = _one_hot_pair(seed)
            counts(y_pred, y)
            monai(y_pred, y)
            separate_oii(y_pred, y)
        queue.put((rank, precision.aggregate()[0].item(), monai.aggregate()[0].item(), oii.aggregate().item(),
                   separate_oii.aggregate().item(), counts.get_buffer().shape[0]))
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_ddp_gathers_the_shared_counts_once_like_monai():
    world_size = 2
    context = mp.get_context("spawn")
    queue = context.Queue()
    mp.spawn(_rank_run, args=(world_size, _free_port(), queue), nprocs=world_size, join=True)
    results = sorted(queue.get(timeout=60) for _ in range(world_size))
    single = ConfusionCountsMetric()
    for seed in range(4):
        single(*_one_hot_pair(seed))
    want_precision = single.confusion_matrix_metric("precision", compute_sample=True).aggregate()[0].item()
    want_oii = single.oii_metric().aggregate().item()
    for _, precision, monai, oii, separate_oii, images in results:
        assert precision == monai == pytest.approx(want_precision, abs=1e-6)
        assert oii == separate_oii == pytest.approx(want_oii, abs=1e-12)
        assert images == 12  # the buffers of both ranks: 4 batches of 3 images


def test_nan_predictions_stay_nan_in_the_shared_counts():
    y = torch.zeros(2, 1, 4, 4)
    y[..., :2, :2] = 1
    y_pred = y.clone()
    y_pred[0, 0, 3, 3] = float("nan")
    counts = ConfusionCountsMetric()
    counts(y_pred, y)
    data = counts.aggregate()
    assert torch.isnan(data[0]).all() and data[1].tolist() == [[4.0, 0.0, 12.0, 0.0]]
    assert counts.nan_images() == 1
    # MONAI's reduction leaves the NaN image out: precision of the other image
    assert counts.confusion_matrix_metric("precision").aggregate()[0].item() == pytest.approx(1.0)
    assert counts.oii_metric().aggregate().item() == 0.0  # FP = FN = 0 on the image left
    counts.reset()
    counts(torch.full_like(y, float("nan")), y)
    assert counts.nan_images() == 2
    for compute_sample in (False, True):  # every image NaN: NaN, where MONAI gives 0
        assert torch.isnan(counts.confusion_matrix_metric("precision", compute_sample).aggregate()[0]).all()
    assert torch.isnan(counts.oii_metric().aggregate()).all()
