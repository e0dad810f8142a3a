"""Per-object metrics: hand-computed cases, a brute-force oracle on random cases, parity with panoptica, DDP, errors."""

from __future__ import annotations

import itertools
import math
import os
import sys

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from monai.data import MetaTensor
from scipy import ndimage

from monai_imbalance.metrics import ObjectMetric, compute_object_metrics, match_objects, summarize_object_rows
from monai_imbalance.metrics.oii import compute_oii


def _t(array) -> torch.Tensor:
    """(H, W[, D]) index map -> (1, 1, H, W[, D]) float tensor."""
    return torch.as_tensor(np.asarray(array), dtype=torch.float32)[None, None]


# ------------------------------------------------------------------------------------------------ hand cases
def test_one_prediction_covering_two_objects():
    truth = np.zeros((4, 6))
    truth[0:2, 0:2] = 1
    truth[0:2, 3:5] = 1  # two 2x2 objects, one column apart
    pred = np.zeros((4, 6))
    pred[0:2, 0:5] = 1  # one 10-pixel object over both: IoU 4/10 with each
    iou = compute_object_metrics(_t(pred), _t(truth))[1]
    assert (iou["tp"], iou["fp"], iou["fn"]) == (0, 1, 2)
    assert iou["instance_dice"] == 0.0 and iou["precision"] == 0.0 and iou["recall"] == 0.0 and iou["f1"] == 0.0
    assert iou["oii"] == pytest.approx(compute_oii(0, 1, 2))
    # pixel counts: TP 8, FP 2, FN 0
    assert iou["pixel_oii"] == pytest.approx(compute_oii(8, 2, 0))
    for rule in ("overlap", "centroid"):
        for assignment in ("greedy", "hungarian"):
            r = compute_object_metrics(_t(pred), _t(truth), match=rule, assignment=assignment)[1]
            # the prediction counts for one object only (the tie goes to the lower true id)
            assert (r["tp"], r["fp"], r["fn"]) == (1, 0, 1), (rule, assignment)
            assert r["instance_dice"] == pytest.approx((2 * 4 / 14) / 2)
    # threshold 0.4 makes both pairs candidates; still one-to-one
    r = compute_object_metrics(_t(pred), _t(truth), iou_threshold=0.4)[1]
    assert (r["tp"], r["fp"], r["fn"]) == (1, 0, 1)


def test_touching_objects_and_connectivity():
    truth = np.zeros((5, 5))
    truth[0, 0] = truth[1, 1] = 1  # diagonal neighbours
    full = compute_object_metrics(_t(truth), _t(truth))[1]
    face = compute_object_metrics(_t(truth), _t(truth), connectivity=1)[1]
    assert full["true_objects"] == 1 and face["true_objects"] == 2
    assert face["tp"] == 2 and face["f1"] == 1.0 and face["instance_dice"] == 1.0 and face["oii"] == 0.0
    # 3-D: 18-neighbourhood joins edge neighbours, not corner ones
    vol = np.zeros((3, 3, 3))
    vol[0, 0, 0] = vol[1, 1, 0] = vol[2, 2, 1] = 1
    counts = [compute_object_metrics(_t(vol), _t(vol), connectivity=c)[1]["true_objects"] for c in (1, 2, 3, None)]
    assert counts == [3, 2, 1, 1]


def test_empty_prediction_empty_truth_and_both_empty():
    truth = np.zeros((8, 8))
    truth[0, 0] = truth[4, 4] = truth[7, 0] = 1
    empty = np.zeros((8, 8))
    missed = compute_object_metrics(_t(empty), _t(truth))[1]
    assert (missed["tp"], missed["fp"], missed["fn"]) == (0, 0, 3)
    assert missed["recall"] == 0.0 and math.isnan(missed["precision"]) and missed["f1"] == 0.0
    assert missed["instance_dice"] == 0.0 and missed["oii"] == 1.0 and missed["empty_cases"] == 0
    spurious = compute_object_metrics(_t(truth), _t(empty))[1]
    assert (spurious["tp"], spurious["fp"], spurious["fn"]) == (0, 3, 0)
    assert math.isnan(spurious["recall"]) and spurious["precision"] == 0.0 and spurious["f1"] == 0.0
    assert math.isnan(spurious["instance_dice"]) and spurious["oii"] == -1.0 and math.isnan(spurious["small_recall"])
    nothing = compute_object_metrics(_t(empty), _t(empty))[1]
    assert nothing["empty_cases"] == 1 and nothing["cases"] == 1
    for key in ("precision", "recall", "f1", "instance_dice", "oii", "pixel_oii", "small_recall"):
        assert math.isnan(nothing[key]), key
    # an empty case beside a non-empty one adds nothing but its count, and NaN classes stay out of the means
    metric = ObjectMetric(metric_name="recall")
    metric(_t(empty), _t(empty))
    metric(_t(empty), _t(truth))
    assert metric.summary()[1]["empty_cases"] == 1 and metric.summary()[1]["fn"] == 3
    assert metric.aggregate().item() == 0.0
    metric.reset()
    metric(_t(empty), _t(empty))
    assert math.isnan(metric.aggregate().item())


def test_one_pixel_objects_and_size_bins():
    truth = np.zeros((32, 32))
    truth[2:22, 2:22] = 1  # 400 pixels
    truth[26::3, 26::3] = 1  # four one-pixel objects
    pred = truth.copy()
    pred[26:, 26:] = 0
    r = compute_object_metrics(_t(pred), _t(truth), size_bins=[1, 100])[1]
    assert (r["tp"], r["fn"]) == (1, 4) and r["bin_objects"] == [4, 0, 1] and r["bin_detected"] == [0, 0, 1]
    assert r["small_recall"] == 0.0 and math.isnan(r["bin_recall"][1]) and r["bin_recall"][2] == 1.0
    # default bins: quartiles of the true sizes (1, 1, 1, 1, 400) -> edges 1 (deduplicated): sizes <= 1 and above
    default = compute_object_metrics(_t(pred), _t(truth))[1]
    assert default["size_bins"] == [1.0] and default["bin_objects"] == [4, 1] and default["small_recall"] == 0.0
    # the pixel Dice stays high while every small object is lost
    assert 2 * 400 / (400 + 404) > 0.99


def test_spacing_physical_sizes_and_metatensor():
    truth = np.zeros((6, 6, 4))
    truth[0:2, 0:2, 0:2] = 1  # 8 voxels
    truth[4, 4, 3] = 1  # 1 voxel
    spacing = (0.5, 0.5, 2.0)  # 0.5 mm^3 per voxel
    objects, _ = match_objects(_t(truth), _t(truth), spacing=spacing)
    true_rows = objects[objects[:, 3] == 0]
    assert sorted(true_rows[:, 5].tolist()) == [1.0, 8.0] and sorted(true_rows[:, 6].tolist()) == [0.5, 4.0]
    r = compute_object_metrics(_t(truth), _t(truth), spacing=spacing, size_bins=[1.0])[1]
    assert r["size_unit"] == "physical" and r["bin_objects"] == [1, 1]
    meta = MetaTensor(_t(truth)[0], affine=torch.diag(torch.tensor([*spacing, 1.0], dtype=torch.float64)))
    metric = ObjectMetric(use_spacing=True, size_bins=[1.0])
    metric([meta], [meta])
    assert metric.summary()[1]["bin_objects"] == [1, 1]
    # 2-D MetaTensor (a 4x4 affine, as MONAI gives every image): the first two spacings
    flat = np.zeros((6, 6))
    flat[0:2, 0:2] = 1
    meta2d = MetaTensor(_t(flat)[0], affine=torch.diag(torch.tensor([0.5, 0.25, 1.0, 1.0], dtype=torch.float64)))
    metric = ObjectMetric(use_spacing=True)
    metric([meta2d], [meta2d])
    assert metric.rows()[0][0, 6].item() == pytest.approx(4 * 0.125)
    with pytest.raises(ValueError, match="spacing has 2 values"):
        compute_object_metrics(_t(truth), _t(truth), spacing=(1.0, 1.0))


def test_one_hot_equals_index_and_multilabel():
    rng = np.random.default_rng(4)
    index = rng.integers(0, 4, size=(2, 1, 20, 20))
    pred = rng.integers(0, 4, size=(2, 1, 20, 20))
    as_index = compute_object_metrics(torch.as_tensor(pred), torch.as_tensor(index), num_classes=4)
    onehot = compute_object_metrics(torch.nn.functional.one_hot(torch.as_tensor(pred[:, 0]), 4).movedim(-1, 1),
                                    torch.nn.functional.one_hot(torch.as_tensor(index[:, 0]), 4).movedim(-1, 1))
    assert set(as_index) == set(onehot) == {1, 2, 3}
    for c in (1, 2, 3):
        for key in ("tp", "fp", "fn", "true_objects", "pred_objects"):
            assert as_index[c][key] == onehot[c][key]
        assert as_index[c]["instance_dice"] == pytest.approx(onehot[c]["instance_dice"])
    # overlapping channels (multi-label one-hot) are matched one class at a time, equal to binary calls
    y = torch.as_tensor(rng.random((1, 3, 16, 16)) < 0.3, dtype=torch.float32)
    p = torch.as_tensor(rng.random((1, 3, 16, 16)) < 0.3, dtype=torch.float32)
    multi = compute_object_metrics(p, y)
    for c in (1, 2):
        binary = compute_object_metrics(p[:, c:c + 1], y[:, c:c + 1])[1]
        assert (multi[c]["tp"], multi[c]["fp"], multi[c]["fn"]) == (binary["tp"], binary["fp"], binary["fn"])
    # background as a class
    with_bg = compute_object_metrics(torch.as_tensor(pred), torch.as_tensor(index), num_classes=4,
                                     include_background=True)
    assert set(with_bg) == {0, 1, 2, 3}
    assert with_bg[0]["true_objects"] == ndimage.label(index[0, 0] == 0, np.ones((3, 3)))[1] + ndimage.label(
        index[1, 0] == 0, np.ones((3, 3)))[1]


# -------------------------------------------------------------------------------------------- brute force
def _brute(pred, truth, classes, connectivity, rule, threshold, assignment):
    """Per class (tp, fp, fn, sum of matched Dice, true objects) by loops over every pair of components."""
    structure = ndimage.generate_binary_structure(truth.ndim, connectivity or truth.ndim)
    out = {}
    for c in classes:
        lg, n_g = ndimage.label(truth == c, structure)
        lp, n_p = ndimage.label(pred == c, structure)
        iou, dice, cand = {}, {}, []
        for i in range(1, n_g + 1):
            gi = lg == i
            centre = tuple(int(math.floor(v + 0.5)) for v in np.argwhere(gi).mean(0))
            for j in range(1, n_p + 1):
                pj = lp == j
                inter = np.logical_and(gi, pj).sum()
                iou[i, j] = inter / np.logical_or(gi, pj).sum()
                dice[i, j] = 2 * inter / (gi.sum() + pj.sum())
                ok = {"iou": iou[i, j] >= threshold, "overlap": inter > 0, "centroid": lp[centre] == j}[rule]
                if ok:
                    cand.append((i, j))
        if assignment == "greedy":
            chosen, used_g, used_p = [], set(), set()
            for i, j in sorted(cand, key=lambda ij: (-iou[ij], ij[0], ij[1])):
                if i not in used_g and j not in used_p:
                    chosen.append((i, j))
                    used_g.add(i)
                    used_p.add(j)
        else:  # every one-to-one subset of the candidates: the largest summed IoU (then the most pairs)
            best, chosen = (-1.0, -1), []
            for k in range(len(cand) + 1):
                for subset in itertools.combinations(cand, k):
                    if len({i for i, _ in subset}) == k and len({j for _, j in subset}) == k:
                        key = (round(sum(iou[ij] for ij in subset), 9), k)
                        if key > best:
                            best, chosen = key, list(subset)
        tp = len(chosen)
        out[c] = (tp, n_p - tp, n_g - tp, sum(dice[ij] for ij in chosen), n_g)
    return out


def _blobs(rng, shape, threshold):
    return ndimage.gaussian_filter(rng.random(shape), 1.0) > threshold


@pytest.mark.parametrize("rule", ["iou", "overlap", "centroid"])
@pytest.mark.parametrize("assignment", ["greedy", "hungarian"])
@pytest.mark.parametrize("shape", [(14, 14), (7, 8, 9)])
def test_random_cases_equal_brute_force(rule, assignment, shape):
    rng = np.random.default_rng(hash((rule, assignment, len(shape))) % 2**32)
    for trial in range(6):
        truth = _blobs(rng, shape, 0.52).astype(np.int64) + _blobs(rng, shape, 0.55)  # classes 0, 1, 2
        pred = np.where(rng.random(shape) < 0.15, rng.integers(0, 3, shape), truth)
        pred = np.where(_blobs(rng, shape, 0.6), 0, pred)
        threshold = [0.5, 0.3, 0.1][trial % 3]
        connectivity = [None, 1][trial % 2]
        got = compute_object_metrics(_t(pred), _t(truth), num_classes=3, connectivity=connectivity, match=rule,
                                     iou_threshold=threshold, assignment=assignment)
        want = _brute(pred, truth, (1, 2), connectivity, rule, threshold, assignment)
        for c in (1, 2):
            tp, fp, fn, dice_sum, n_true = want[c]
            assert (got[c]["tp"], got[c]["fp"], got[c]["fn"]) == (tp, fp, fn), (trial, c)
            if n_true:
                assert got[c]["instance_dice"] == pytest.approx(dice_sum / n_true)


# ------------------------------------------------------------------------------------------------ panoptica
panoptica = pytest.importorskip("panoptica")


def _panoptica(pred, truth, assignment, two_d_backend=None):
    from panoptica import (
        ConnectedComponentsInstanceApproximator,
        InputType,
        MaxBipartiteMatching,
        NaiveThresholdMatching,
        Panoptica_Evaluator,
    )
    from panoptica.metrics import Metric

    matcher = NaiveThresholdMatching(matching_threshold=0.5) if assignment == "greedy" else MaxBipartiteMatching(
        matching_threshold=0.5)
    evaluator = Panoptica_Evaluator(
        expected_input=InputType.SEMANTIC,
        instance_approximator=ConnectedComponentsInstanceApproximator(cca_backend=two_d_backend),
        instance_matcher=matcher, instance_metrics=[Metric.DSC, Metric.IOU], global_metrics=[Metric.DSC],
        decision_metric=None, verbose=False, log_times=False,
    )
    result = evaluator.evaluate(pred.astype(np.uint8), truth.astype(np.uint8), verbose=False)["ungrouped"]
    dice = result.sq_dsc * result.tp / result.n_ref_instances if result.tp else 0.0
    return result.tp, result.fp, result.fn, dice, result.n_ref_instances, result.n_pred_instances


@pytest.mark.parametrize("assignment", ["greedy", "hungarian"])
@pytest.mark.parametrize("shape", [(48, 48), (20, 22, 24)])
def test_parity_with_panoptica(assignment, shape):
    from panoptica.utils.constants import CCABackend

    rng = np.random.default_rng(len(shape))
    for trial in range(4):
        truth = _blobs(rng, shape, 0.53)
        pred = np.logical_xor(truth, rng.random(shape) < 0.02)
        pred = np.where(_blobs(rng, shape, 0.58), ~pred, pred)
        if len(shape) == 2:  # panoptica labels 2-D with scipy (face neighbours) unless told cc3d (8 neighbours)
            cases = [(1, None), (None, CCABackend.cc3d)]
        else:
            cases = [(None, None)]
        for connectivity, backend in cases:
            got = compute_object_metrics(_t(pred), _t(truth), connectivity=connectivity, assignment=assignment)[1]
            tp, fp, fn, dice, n_ref, n_pred = _panoptica(pred, truth, assignment, backend)
            assert (got["tp"], got["fp"], got["fn"]) == (tp, fp, fn), trial
            assert (got["true_objects"], got["pred_objects"]) == (n_ref, n_pred)
            if n_ref:
                assert got["instance_dice"] == pytest.approx(dice)


# ------------------------------------------------------------------------------------------- the metric
def test_metric_accumulates_like_one_call_and_nan_cases():
    rng = np.random.default_rng(7)
    truth = torch.as_tensor(np.stack([_blobs(rng, (24, 24), 0.53) for _ in range(4)])[:, None], dtype=torch.float32)
    pred = torch.as_tensor(np.stack([_blobs(rng, (24, 24), 0.53) for _ in range(4)])[:, None], dtype=torch.float32)
    whole = compute_object_metrics(pred, truth)[1]
    metric = ObjectMetric(reduction="none")
    metric(pred[:2], truth[:2])
    metric(list(pred[2:]), list(truth[2:]))  # a list of channel-first tensors, as decollated batches
    assert {k: metric.summary()[1][k] for k in ("tp", "fp", "fn")} == {k: whole[k] for k in ("tp", "fp", "fn")}
    assert metric.aggregate().tolist() == pytest.approx([whole["f1"]])
    assert metric.rows()[1][:, 1].tolist() == [0, 1, 2, 3]  # case numbers run on over the calls
    nan_pred = pred.clone()
    nan_pred[0, 0, 0, 0] = float("nan")
    metric.reset()
    metric(nan_pred, truth)
    s = metric.summary()[1]
    assert s["nan_cases"] == 1 and s["cases"] == 3
    rest = compute_object_metrics(pred[1:], truth[1:])[1]
    assert (s["tp"], s["fp"], s["fn"]) == (rest["tp"], rest["fp"], rest["fn"])


def test_summary_of_rows_with_per_class_bins():
    y = torch.zeros(1, 1, 10, 10)
    y[0, 0, 0, 0] = 1
    y[0, 0, 5:8, 5:8] = 2
    objects, cases = match_objects(y, y, num_classes=3)
    s = summarize_object_rows(objects, cases, size_bins={1: [0.5], 2: [20.0]})
    assert s[1]["bin_objects"] == [0, 1] and s[2]["bin_objects"] == [1, 0]
    with pytest.raises(ValueError, match="increasing positive"):
        summarize_object_rows(objects, cases, size_bins=[10, 5])


def _ddp_worker(rank: int, world: int, init_file: str, pairs, result_file: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    metric = ObjectMetric()
    for y_pred, y in pairs[rank::world]:
        metric(y_pred, y)
    summary = metric.summary()
    if rank == 0:
        torch.save({k: summary[1][k] for k in ("tp", "fp", "fn", "instance_dice", "size_bins")}, result_file)
    dist.destroy_process_group()


@pytest.mark.skipif(not sys.platform.startswith("linux") or not dist.is_available(), reason="fork + gloo (Linux)")
def test_metric_under_ddp_matches_single_process(tmp_path):
    rng = np.random.default_rng(11)
    pairs = [(torch.as_tensor(_blobs(rng, (20, 20), 0.53), dtype=torch.float32)[None, None],
              torch.as_tensor(_blobs(rng, (20, 20), 0.53), dtype=torch.float32)[None, None]) for _ in range(5)]
    result_file = str(tmp_path / "result.pt")
    mp.start_processes(_ddp_worker, args=(2, str(tmp_path / "init"), pairs, result_file), nprocs=2, join=True,
                       start_method="fork")
    gathered = torch.load(result_file)
    single = ObjectMetric()
    for y_pred, y in pairs:
        single(y_pred, y)
    s = single.summary()[1]
    assert gathered == {k: s[k] for k in ("tp", "fp", "fn", "instance_dice", "size_bins")}
    assert os.path.exists(result_file)


# -------------------------------------------------------------------------------------------- bad input
def test_bad_inputs_raise_clear_errors():
    y = torch.zeros(1, 1, 8, 8)
    with pytest.raises(ValueError, match="same shapes"):
        compute_object_metrics(torch.zeros(1, 1, 8, 7), y)
    with pytest.raises(ValueError, match="binarised one-hot"):
        compute_object_metrics(torch.full((1, 2, 8, 8), 0.5), torch.zeros(1, 2, 8, 8))
    two = y.clone()
    two[0, 0, 0, 0] = 2
    with pytest.raises(ValueError, match="binary .*num_classes=3"):
        compute_object_metrics(two, y)
    with pytest.raises(ValueError, match="num_classes=3"):
        compute_object_metrics(two + 1, y, num_classes=3)
    with pytest.raises(ValueError, match="non-integer"):
        compute_object_metrics(y + 0.5, y)
    with pytest.raises(ValueError, match="NaN"):
        compute_object_metrics(y, y.clone().fill_(float("nan")))
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        compute_object_metrics(torch.zeros(8, 8), torch.zeros(8, 8))
    with pytest.raises(ValueError, match="match must be one of"):
        compute_object_metrics(y, y, match="dice")
    with pytest.raises(ValueError, match="iou_threshold"):
        compute_object_metrics(y, y, iou_threshold=0.0)
    with pytest.raises(ValueError, match="connectivity"):
        compute_object_metrics(y, y, connectivity=3)
    with pytest.raises(ValueError, match="4 channels"):
        compute_object_metrics(torch.zeros(1, 4, 8, 8), torch.zeros(1, 4, 8, 8), num_classes=3)
    metric = ObjectMetric()
    metric(y, y, spacing=(1.0, 1.0))
    with pytest.raises(ValueError, match="some cases came with a spacing"):
        metric(y, y)


def test_one_hot_checks_catch_every_non_binary_form():
    y = torch.zeros(1, 3, 6, 6)
    y[:, 0] = 1
    soft = torch.softmax(torch.randn(1, 3, 6, 6), 1)  # sums to 1 per voxel, but not one-hot
    for bad in (soft, y * 2, y - 1, y * 0.5):
        with pytest.raises(ValueError, match="binarised one-hot"):
            compute_object_metrics(bad, y)
    two_channels = torch.zeros(1, 3, 6, 6)  # mass split over channels 0 and 2: sum 1, weighted variance 1
    two_channels[:, 0], two_channels[:, 2] = 0.5, 0.5
    with pytest.raises(ValueError, match="binarised one-hot"):
        compute_object_metrics(two_channels, y)
    multi = y.clone()
    multi[0, 1, 0, 0] = 0.5  # an overlapping (multi-label) voxel with a non-binary value
    multi[0, 2, 0, 0] = 1
    with pytest.raises(ValueError, match="binarised one-hot"):
        compute_object_metrics(multi, y)
    nan_pred = y.clone()
    nan_pred[0, 1, 2, 2] = float("nan")
    assert compute_object_metrics(nan_pred, y)[1]["nan_cases"] == 1
    with pytest.raises(ValueError, match="ground truth"):
        compute_object_metrics(y, nan_pred)


@pytest.mark.gpu
def test_cuda_inputs_give_the_cpu_result():
    rng = np.random.default_rng(5)
    index = torch.as_tensor(rng.integers(0, 3, size=(2, 16, 16, 8)))
    pred = torch.as_tensor(rng.integers(0, 3, size=(2, 16, 16, 8)))
    y = torch.nn.functional.one_hot(index, 3).movedim(-1, 1).float()
    p = torch.nn.functional.one_hot(pred, 3).movedim(-1, 1).float()
    cpu = compute_object_metrics(p, y)
    gpu = compute_object_metrics(p.cuda(), y.cuda())
    for c in (1, 2):
        assert {k: cpu[c][k] for k in ("tp", "fp", "fn")} == {k: gpu[c][k] for k in ("tp", "fp", "fn")}
