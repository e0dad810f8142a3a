"""Volumetric evaluation of 2-D networks: slice-by-slice inference, per-case per-class Dice/IoU/HD95 against hand
computations (with spacing, the percentile, both empty-mask rules), the summaries (means over cases then classes,
groups, OII), the evaluator handler, the report files, and label volumes written like their inputs."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
import torch
from ignite.engine import Engine
from monai.data import MetaTensor

from monai_imbalance.engines.volumetric import (
    SaveLabelVolumeLikeInputd,
    SliceBySliceInferer,
    VolumetricSegmentationMetric,
    compute_volume_metrics,
    evaluate_volumes,
    flat_volume_metrics,
    summarize_volume_metrics,
    volume_format,
    volume_items,
    write_volume_report,
)
from monai_imbalance.handlers import VolumetricMetrics

SPACING = (2.5, 1.0, 1.0)  # (D, H, W), array axis order


def _oii_by_hand(tp: float, fp: float, fn: float) -> float:
    """The DIBE paper's OII, written out (method_readings.md), for counts with FP, FN > 0."""
    x = fp / fn
    k = 1 - (2 / math.pi) * math.atan((fp + fn) / (5 * tp))
    return 1 - k / (x + 1 / x - 1) if x <= 1 else k / (x + 1 / x - 1) - 1


def _cases() -> tuple[torch.Tensor, torch.Tensor]:
    """Two label volumes (D, H, W) = (4, 6, 6), classes 1 and 2, with hand-known metrics:

    case A, class 1: truth cube [0:2, 0:2, 0:2], prediction the cube moved by one along D -> TP 4, FP 4, FN 4,
      Dice 0.5, IoU 1/3; every voxel of a 2x2x2 cube is a surface voxel, the directed distances are 0 (4 voxels) and
      one D step (4 voxels) both ways, so HD95 = 1 step = 2.5 mm (1 voxel without spacing).
    case A, class 2: truth empty, one predicted voxel.
    case B, class 1: truth the same cube, nothing predicted.
    case B, class 2: truth = prediction = block [2:4, 3:6, 3:6] (18 voxels).
    """
    truth = torch.zeros(2, 1, 4, 6, 6)
    pred = torch.zeros(2, 1, 4, 6, 6)
    truth[0, 0, 0:2, 0:2, 0:2] = 1
    pred[0, 0, 1:3, 0:2, 0:2] = 1
    pred[0, 0, 3, 5, 5] = 2
    truth[1, 0, 0:2, 0:2, 0:2] = 1
    truth[1, 0, 2:4, 3:6, 3:6] = 2
    pred[1, 0, 2:4, 3:6, 3:6] = 2
    return pred, truth


def test_per_case_metrics_match_hand_computation_transunet_rule():
    pred, truth = _cases()
    values = compute_volume_metrics(pred, truth, num_classes=3, spacing=SPACING)
    assert values.shape == (2, 2, 6)  # cases, classes 1-2, (dice, iou, hd95, tp, fp, fn)
    expected = torch.tensor([
        [[0.5, 1 / 3, 2.5, 4, 4, 4], [1.0, 1.0, 0.0, 0, 1, 0]],   # A: overlap; empty truth -> (1, 1, 0)
        [[0.0, 0.0, 0.0, 0, 0, 8], [1.0, 1.0, 0.0, 18, 0, 0]],    # B: empty prediction -> (0, 0, 0); perfect
    ], dtype=torch.float64)
    torch.testing.assert_close(values, expected, atol=1e-6, rtol=0)
    voxels = compute_volume_metrics(pred, truth, num_classes=3)  # no spacing: voxel units
    assert voxels[0, 0, 2].item() == pytest.approx(1.0)


def test_monai_rule_leaves_empty_cases_out():
    pred, truth = _cases()
    values = compute_volume_metrics(pred, truth, num_classes=3, spacing=SPACING, empty="nan")
    assert values[0, 0, :3].tolist() == pytest.approx([0.5, 1 / 3, 2.5])
    assert all(math.isnan(v) for v in values[0, 1, :3].tolist())  # truth empty: Dice, IoU, HD95 undefined
    assert values[1, 0, 0].item() == 0.0 and math.isnan(values[1, 0, 2].item())  # prediction empty: Dice 0, HD nan
    report = summarize_volume_metrics(values, ["organ", "other"], empty="nan")
    s = report["summary"]["all"]
    assert s["dice"] == pytest.approx({"organ": 0.25, "other": 1.0})
    assert s["hd95"] == pytest.approx({"organ": 2.5, "other": 0.0})  # the NaNs are left out
    assert s["hd95_nan"] == {"organ": 1, "other": 1} and s["dice_nan"] == {"organ": 0, "other": 1}
    assert s["mean_hd95"] == pytest.approx(1.25)


def test_hd95_is_a_percentile_and_spacing_per_case():
    truth = torch.zeros(1, 1, 1, 3, 40)
    truth[0, 0, 0, 1, 0:20] = 1  # a line of 20 voxels
    pred = truth.clone()
    pred[0, 0, 0, 1, 30] = 1  # one outlier 11 voxels from the line
    hd95 = compute_volume_metrics(pred, truth, num_classes=2)[0, 0, 2].item()
    hd100 = compute_volume_metrics(pred, truth, num_classes=2, percentile=100)[0, 0, 2].item()
    # directed distances prediction -> truth: 20 zeros and 11; the 95th percentile of 21 values is the 20th: 0
    assert hd95 == pytest.approx(0.0) and hd100 == pytest.approx(11.0)
    pred, truth = _cases()
    per_case = compute_volume_metrics(pred, truth, num_classes=3, spacing=[SPACING, None])
    assert per_case[0, 0, 2].item() == pytest.approx(2.5)


def test_summary_means_over_cases_then_classes_and_oii():
    pred, truth = _cases()
    records = [{"id": "A", "group": "ED", "spacing": SPACING}, {"id": "B", "group": "ES"}]
    report = summarize_volume_metrics(compute_volume_metrics(pred, truth, num_classes=3, spacing=SPACING),
                                      ["organ", "other"], records=records)
    s = report["summary"]["all"]
    assert s["num_cases"] == 2
    assert s["dice"] == pytest.approx({"organ": 0.25, "other": 1.0}) and s["mean_dice"] == pytest.approx(0.625)
    assert s["iou"] == pytest.approx({"organ": 1 / 6, "other": 1.0}) and s["mean_iou"] == pytest.approx(7 / 12)
    assert s["hd95"] == pytest.approx({"organ": 1.25, "other": 0.0}) and s["mean_hd95"] == pytest.approx(0.625)
    assert (s["tp"]["organ"], s["fp"]["organ"], s["fn"]["organ"]) == (4, 4, 12)
    assert s["empty_truth"] == {"organ": 0, "other": 1} and s["empty_prediction"] == {"organ": 1, "other": 0}
    if report["oii_skipped"] is None:
        assert s["oii"]["organ"] == pytest.approx(_oii_by_hand(4, 4, 12), abs=1e-9)
        assert s["oii"]["other"] == -1.0  # FN = 0 < FP: over-segmentation only
    else:
        assert "compute_oii" in report["oii_skipped"] and "oii" not in s
    assert report["summary"]["ED"]["dice"] == pytest.approx({"organ": 0.5, "other": 1.0})
    assert report["summary"]["ES"]["mean_dice"] == pytest.approx(0.5)
    assert [c["id"] for c in report["cases"]] == ["A", "B"] and report["cases"][0]["mean_dice"] == 0.75
    flat = flat_volume_metrics(report, "val_")
    assert flat["val_mean_dice"] == pytest.approx(0.625) and flat["val_dice_organ_ED"] == pytest.approx(0.5)
    assert flat["val_hd95_organ"] == pytest.approx(1.25)


def test_one_hot_inputs_and_bad_arguments():
    pred, truth = _cases()
    onehot = lambda x: torch.nn.functional.one_hot(x[:, 0].long(), 3).permute(0, 4, 1, 2, 3).float()  # noqa: E731
    torch.testing.assert_close(compute_volume_metrics(onehot(pred), onehot(truth), spacing=SPACING),
                               compute_volume_metrics(pred, truth, num_classes=3, spacing=SPACING))
    with pytest.raises(ValueError, match="num_classes"):
        compute_volume_metrics(pred, truth)
    with pytest.raises(ValueError, match="empty"):
        compute_volume_metrics(pred, truth, num_classes=3, empty="zero")
    with pytest.raises(ValueError, match="same batch and spatial"):
        compute_volume_metrics(pred, truth[..., :5], num_classes=3)
    with pytest.raises(ValueError, match="class_names"):
        VolumetricSegmentationMetric(num_classes=3, class_names=["only one"])


class _Oracle(torch.nn.Module):
    """A '2-D network' whose input intensities are labels: it returns their one-hot (for exact round trips)."""

    def __init__(self, num_classes: int = 3):
        super().__init__()
        self.num_classes = num_classes
        self.seen: list[tuple[int, ...]] = []
        self.dummy = torch.nn.Parameter(torch.zeros(1))

    def forward(self, x):
        self.seen.append(tuple(x.shape))
        return torch.nn.functional.one_hot(x[:, 0].round().long(), self.num_classes).permute(0, 3, 1, 2).float()


@pytest.mark.parametrize("spatial_dim", [0, 1, 2])
@pytest.mark.parametrize("transpose", [False, True])
def test_inferer_restacks_slices_in_place(spatial_dim, transpose):
    labels = torch.randint(0, 3, (2, 1, 5, 6, 7)).float()
    net = _Oracle()
    out = SliceBySliceInferer(spatial_dim=spatial_dim, transpose=transpose, sw_batch_size=4)(labels, net)
    assert torch.equal(out, labels)
    num_slices = labels.shape[2 + spatial_dim] * 2
    assert len(net.seen) == math.ceil(num_slices / 4) and sum(s[0] for s in net.seen) == num_slices
    in_plane = [n for d, n in enumerate(labels.shape[2:]) if d != spatial_dim]
    assert list(net.seen[0][2:]) == (in_plane[::-1] if transpose else in_plane)


def test_inferer_resizes_in_plane_and_back():
    labels = torch.randint(0, 3, (1, 1, 3, 8, 8)).float()
    net = _Oracle()
    out = SliceBySliceInferer(spatial_dim=0, roi_size=(16, 16), mode="nearest-exact")(labels, net)
    assert all(s[2:] == (16, 16) for s in net.seen) and torch.equal(out, labels)  # nearest x2 and back: exact
    # TransUNet's procedure written slice by slice: resize the image, argmax, nearest back
    conv = torch.nn.Conv2d(1, 3, 3, padding=1).eval()
    image = torch.rand(1, 1, 4, 20, 12)
    with torch.no_grad():
        for resample in ("label", "logits"):
            got = SliceBySliceInferer(spatial_dim=0, roi_size=(16, 16), resample=resample, sw_batch_size=3)(image,
                                                                                                            conv)
            for k in range(4):
                logits = conv(torch.nn.functional.interpolate(image[:, :, k], size=(16, 16), mode="bilinear",
                                                              align_corners=False))
                if resample == "label":
                    want = torch.nn.functional.interpolate(logits.argmax(1, keepdim=True).float(), size=(20, 12),
                                                           mode="nearest-exact")
                else:
                    want = torch.nn.functional.interpolate(logits, size=(20, 12), mode="bilinear",
                                                           align_corners=False).argmax(1, keepdim=True).float()
                assert torch.equal(got[:, :, k], want)
    with pytest.raises(ValueError, match="3-D"):
        SliceBySliceInferer()(torch.zeros(1, 1, 8, 8), conv)
    with pytest.raises(ValueError, match="resample"):
        SliceBySliceInferer(resample="probabilities")


def test_evaluate_volumes_with_an_oracle_network():
    pred, truth = _cases()
    affine = torch.diag(torch.tensor([*SPACING, 1.0], dtype=torch.float64))
    data = [{"image": pred[i], "label": MetaTensor(truth[i], affine=affine), "id": name, "phase": phase}
            for i, (name, phase) in enumerate([("A", "ED"), ("B", "ES")])]
    report = evaluate_volumes(_Oracle(), data, SliceBySliceInferer(spatial_dim=0, roi_size=(12, 12),
                                                                   mode="nearest-exact"),
                              num_classes=3, class_names=["organ", "other"], group_key="phase")
    assert report["summary"]["all"]["mean_dice"] == pytest.approx(0.625)
    assert report["summary"]["all"]["hd95"]["organ"] == pytest.approx(1.25)  # spacing read from the label's affine
    assert report["cases"][0]["spacing"] == list(SPACING) and report["cases"][1]["group"] == "ES"


def test_handler_in_an_engine_logs_and_writes(tmp_path):
    pred, truth = _cases()
    affine = torch.diag(torch.tensor([*SPACING, 1.0], dtype=torch.float64))
    batches = [[{"pred": pred[i], "label": MetaTensor(truth[i], affine=affine), "id": name, "phase": phase}]
               for i, (name, phase) in enumerate([("A", "ED"), ("B", "ES")])]

    def step(engine, batch):
        engine.state.batch = batch  # decollated, as MONAI's evaluators leave it
        return batch

    engine = Engine(step)
    handler = VolumetricMetrics(num_classes=3, class_names=["organ", "other"], group_key="phase",
                                save_dir=tmp_path / "eval", output_transform=lambda out: ([o["pred"] for o in out],
                                                                                         [o["label"] for o in out]))
    handler.attach(engine, "val_mean_dice")
    engine.run(batches)
    metrics = engine.state.metrics
    assert metrics["val_mean_dice"] == pytest.approx(0.625)
    assert metrics["val_mean_hd95"] == pytest.approx(0.625) and metrics["val_hd95_organ"] == pytest.approx(1.25)
    assert metrics["val_dice_organ_ED"] == pytest.approx(0.5) and metrics["val_mean_dice_ES"] == pytest.approx(0.5)
    assert engine.state.metric_details["val_mean_dice"].shape == (2, 2)
    with open(tmp_path / "eval" / "volumetric_per_case.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["id"] for r in rows] == ["A", "B"] and [r["group"] for r in rows] == ["ED", "ES"]
    assert float(rows[0]["dice_organ"]) == 0.5 and float(rows[0]["hd95_organ"]) == 2.5
    assert rows[0]["spacing"] == "2.5 1 1"
    with open(tmp_path / "eval" / "volumetric_summary.csv") as f:
        summary = {(r["group"], r["class"]): r for r in csv.DictReader(f)}
    assert float(summary[("all", "mean")]["dice"]) == pytest.approx(0.625)
    assert int(summary[("all", "organ")]["fn"]) == 12 and int(summary[("ES", "other")]["cases"]) == 1
    saved = json.loads((tmp_path / "eval" / "volumetric_report.json").read_text())
    assert saved["empty_policy"] == "transunet" and saved["summary"]["all"]["mean_iou"] == pytest.approx(7 / 12)
    engine.run(batches[:1])  # a second run starts afresh
    assert engine.state.metrics["val_mean_dice"] == pytest.approx(0.75)


def test_write_report_and_nan_cells(tmp_path):
    values = torch.tensor([[[float("nan"), float("nan"), float("nan"), 0, 2, 0]]], dtype=torch.float64)
    paths = write_volume_report(summarize_volume_metrics(values, ["c"], empty="nan"), tmp_path, prefix="x")
    with open(paths["per_case"]) as f:
        row = next(csv.DictReader(f))
    assert row["dice_c"] == "nan" and row["fp_c"] == "2"


def test_label_volumes_written_like_their_inputs(tmp_path):
    import h5py
    import nibabel as nib
    from monai.transforms import LoadImaged

    from monai_imbalance.apps.loaders import LoadArrayd

    affine = np.array([[0, -1.5, 0, 10], [1.4, 0, 0, -3], [0, 0, 8.0, 2], [0, 0, 0, 1]])
    nib.save(nib.Nifti1Image(np.random.default_rng(0).random((7, 5, 3)).astype(np.float32), affine),
             str(tmp_path / "patient001_frame01.nii.gz"))
    with h5py.File(tmp_path / "case0001.npy.h5", "w") as f:
        f.create_dataset("image", data=np.zeros((3, 7, 5), np.float32))
    nifti = LoadImaged("image", reader="NibabelReader", image_only=True, ensure_channel_first=True)(
        {"image": str(tmp_path / "patient001_frame01.nii.gz")})
    h5 = LoadArrayd("image")({"image": str(tmp_path / "case0001.npy.h5")})
    labels = torch.randint(0, 4, (1, 7, 5, 3)).float()
    writer = SaveLabelVolumeLikeInputd("pred", tmp_path / "out")
    out = writer({**nifti, "pred": labels})
    saved = nib.load(out["pred_path"])
    assert out["pred_path"].endswith("patient001_frame01_pred.nii.gz")
    np.testing.assert_allclose(saved.affine, affine)
    assert saved.get_data_dtype() == np.uint8
    np.testing.assert_array_equal(np.asanyarray(saved.dataobj), labels[0].numpy().astype(np.uint8))
    out = writer({**h5, "pred": labels.permute(0, 3, 1, 2)})
    with h5py.File(out["pred_path"]) as f:
        assert out["pred_path"].endswith("case0001_pred.npy.h5") and f["label"].shape == (3, 7, 5)
        np.testing.assert_array_equal(f["label"][()], labels[0].permute(2, 0, 1).numpy().astype(np.uint8))
    with pytest.raises(ValueError, match="differs"):
        writer({**nifti, "pred": labels[..., :2]})
    with pytest.raises(ValueError, match="one-channel"):
        writer({**nifti, "pred": torch.zeros(2, 7, 5, 3)})


def test_volume_items_and_format(tmp_path):
    for name in ("patient001_frame01.nii.gz", "patient001_frame01_gt.nii.gz", "patient001_4d.nii.gz", "Info.cfg"):
        (tmp_path / "patient001").mkdir(exist_ok=True)
        (tmp_path / "patient001" / name).write_bytes(b"")
    items = volume_items(tmp_path, recursive=True)
    assert [i["id"] for i in items] == ["patient001_frame01"] and volume_format(items) == "nifti"
    with pytest.raises(FileNotFoundError):
        volume_items(tmp_path)  # not recursive: no volume at the top
    assert volume_format([{"image": "a/case0001.npy.h5"}]) == "h5"
    with pytest.raises(ValueError, match="must all be h5 or all NIfTI"):
        volume_format([{"image": "a.h5"}, {"image": "b.nii.gz"}])


def test_handler_counts_cases_repeated_by_a_padded_distributed_sampler_once(monkeypatch):
    import monai_imbalance.handlers.volumetric as module

    pred, truth = _cases()
    batches = [[{"pred": pred[i], "label": truth[i], "id": name}] for i, name in ((0, "A"), (1, "B"), (0, "A"))]

    def run(world_size):
        monkeypatch.setattr(module, "_world_size", lambda: world_size)
        engine = Engine(lambda e, b: setattr(e.state, "batch", b) or b)
        handler = VolumetricMetrics(num_classes=3, output_transform=lambda out: ([o["pred"] for o in out],
                                                                                  [o["label"] for o in out]))
        handler.attach(engine, "val_mean_dice")
        engine.run(batches)
        return handler.report, engine.state.metrics["val_mean_dice"]

    report, dice = run(2)  # as under DDP with DistributedSampler(even_divisible=True): A was a pad
    assert [c["id"] for c in report["cases"]] == ["A", "B"] and dice == pytest.approx(0.625)
    report, dice = run(1)  # one process: every case counts
    assert len(report["cases"]) == 3  # class 1: 0.5, 0, 0.5 -> 1/3; class 2: 1, 1, 1
    assert dice == pytest.approx((1 / 3 + 1) / 2)
