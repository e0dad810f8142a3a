"""The generic bundle (``bundles/generic_seg``: DynUNet from any datalist with a plan override) and the helpers it
calls (``monai_imbalance.engines.generic``): the transform lists of each plan value with hand-computed intensities,
the plan's checks, per-class Dice, the inference items and writers; the configs (every plan key has a default, the
shared metrics without the background, the model-zoo properties); and end to end on three synthetic look-alikes, each
with a hand-written plan: 2-D binary PNG with 0/255 masks (from the command line, as a user runs it), 2-D 3-class PNG
and 3-D 3-class NIfTI with anisotropic spacing (in-process, through ``monai-imbalance bench``'s runner)."""

from __future__ import annotations

import csv
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from monai_imbalance.engines import generic
from tests.bundles import BUNDLES, copy_bundle

NAME = "generic_seg"
ROOT = BUNDLES / NAME
# the plan.yaml keys of the interface (the planner writes them; train.yaml has a default for each)
PLAN_KEYS = ["datalist", "data_root", "spatial_dims", "in_channels", "out_channels", "class_names", "label_threshold",
             "intensity", "pixdim", "image_size", "roi_size", "batch_size", "kernel_size", "strides", "filters",
             "deep_supervision", "deep_supr_num", "crop", "crop_params", "loss", "loss_params"]
# the plan keys inference reads (its own defaults, equal to train.yaml's)
INFERENCE_KEYS = ["datalist", "data_root", "spatial_dims", "in_channels", "out_channels", "label_threshold",
                  "intensity", "pixdim", "image_size", "roi_size", "kernel_size", "strides", "filters",
                  "deep_supervision", "deep_supr_num"]
FAST = {"num_workers": 0, "progress": False, "cache_rate": 0.0, "epochs": 1, "val_interval": 1}

# hand-written plans, one per look-alike, in the interface's form (datalist filled in by the fixture)
PLANS = {
    "binary_2d": {
        "data_root": None, "spatial_dims": 2, "in_channels": 3, "out_channels": 2, "class_names": ["blob"],
        "label_threshold": 127, "intensity": {"kind": "range", "a_min": 0.0, "a_max": 255.0}, "pixdim": None,
        "image_size": [32, 32], "roi_size": [32, 32], "batch_size": 2, "kernel_size": [[3, 3], [3, 3], [3, 3]],
        "strides": [[1, 1], [2, 2], [2, 2]], "filters": [8, 16, 32], "deep_supervision": True, "deep_supr_num": 1,
        "crop": "mac", "crop_params": {"mac": {"rho": 0.25, "tau": 5, "stride": [8, 8]},
                                       "probabilistic": {"power": 1.0}},
        "loss": "dice_ce", "loss_params": {"dbce": {"radius": 4.0}, "dibe": {"lambda_": 0.75}},
    },
    "multiclass_2d": {
        "data_root": None, "spatial_dims": 2, "in_channels": 1, "out_channels": 3, "class_names": ["small", "large"],
        "label_threshold": None, "intensity": {"kind": "range", "a_min": 0.0, "a_max": 255.0}, "pixdim": None,
        "image_size": [32, 32], "roi_size": [32, 32], "batch_size": 2, "kernel_size": [[3, 3], [3, 3], [3, 3]],
        "strides": [[1, 1], [2, 2], [2, 2]], "filters": [8, 16, 32], "deep_supervision": True, "deep_supr_num": 1,
        "crop": "probabilistic", "crop_params": {"mac": {"rho": 0.25, "tau": 5, "stride": [8, 8]},
                                                 "probabilistic": {"power": 1.0}},
        "loss": "dbce", "loss_params": {"dbce": {"radius": 4.0}},
    },
    "multiclass_3d": {
        "data_root": None, "spatial_dims": 3, "in_channels": 1, "out_channels": 3,
        "class_names": ["organ_a", "organ_b"], "label_threshold": None,
        "intensity": {"kind": "ct", "lower": 0.05, "upper": 0.95, "mean": 0.5, "std": 0.2},
        "pixdim": [1.5, 1.5, 2.5], "image_size": None, "roi_size": [32, 32, 16], "batch_size": 2,
        "kernel_size": [[3, 3, 1], [3, 3, 3], [3, 3, 3]], "strides": [[1, 1, 1], [2, 2, 1], [2, 2, 2]],
        "filters": [8, 16, 32], "deep_supervision": True, "deep_supr_num": 1, "crop": "mac",
        "crop_params": {"mac": {"rho": 0.25, "tau": 5, "stride": [8, 8, 4]}, "probabilistic": {"power": 1.0}},
        "loss": "dibe", "loss_params": {"dbce": {"radius": 4.0}},
    },
}


def _write_datasets(base: Path) -> dict[str, Path]:
    from monai_imbalance.apps.synthetic import write_synthetic_dataset

    lists = {
        "binary_2d": write_synthetic_dataset(base / "binary_2d", 5, image_format="png", spatial_size=(44, 36),
                                             channels=3, seed=1),
        "multiclass_2d": write_synthetic_dataset(base / "multiclass_2d", 5, image_format="png", spatial_size=(36, 36),
                                                 num_classes=3, seed=2),
        "multiclass_3d": write_synthetic_dataset(base / "multiclass_3d", 4, image_format="nii.gz",
                                                 spatial_size=(40, 36, 12), num_classes=3, spacing=(1.0, 1.25, 3.0),
                                                 val_fraction=0.25, seed=3),
    }
    # a test section (images only) in the 2-D multi-class list: inference's default input
    path = lists["multiclass_2d"]
    datalist = json.loads(path.read_text())
    datalist["test"] = [{"image": item["image"]} for item in datalist["validation"]]
    path.write_text(json.dumps(datalist))
    return lists


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    """``{name: (datalist path, plan path)}`` of the three look-alikes."""
    base = tmp_path_factory.mktemp("generic_data")
    out = {}
    for name, datalist in _write_datasets(base).items():
        plan = base / f"{name}_plan.yaml"
        plan.write_text(yaml.safe_dump({"datalist": str(datalist), **PLANS[name]}, sort_keys=False))
        out[name] = (datalist, plan)
    return out


def _parser(configs=("train",), plan=None, **overrides):
    from monai.bundle import ConfigParser

    parser = ConfigParser()
    parser.read_config([str(ROOT / "configs" / f"{n}.yaml") for n in configs] + ([str(plan)] if plan else []))
    parser.read_meta(str(ROOT / "configs" / "metadata.json"))
    parser.update(overrides)
    return parser


def _train_defaults() -> dict:
    return yaml.safe_load((ROOT / "configs" / "train.yaml").read_text())


# ---------------------------------------------------------------------------------------- intensity transforms
def _apply(transforms, values):
    data = {"image": torch.tensor(values, dtype=torch.float32)}
    for t in transforms:
        data = t(data)
    return torch.as_tensor(data["image"])


def test_range_scales_8_bit_values_to_0_1_and_clips():
    transforms = generic.intensity_transforms({"kind": "range", "a_min": 0.0, "a_max": 255.0})
    assert [type(t).__name__ for t in transforms] == ["ScaleIntensityRanged"]
    out = _apply(transforms, [[[-5.0, 0.0, 51.0, 255.0, 300.0]]])
    torch.testing.assert_close(out, torch.tensor([[[0.0, 0.0, 0.2, 1.0, 1.0]]]))


def test_ct_clips_to_the_window_then_subtracts_the_mean_and_divides_by_the_std():
    # lower -100, upper 200, mean 50, std 25: lower -> (-100 - 50) / 25 = -6, upper -> 6, the mean -> 0
    spec = {"kind": "ct", "lower": -100.0, "upper": 200.0, "mean": 50.0, "std": 25.0}
    (t,) = generic.intensity_transforms(spec)
    assert type(t).__name__ == "ScaleIntensityRanged"
    scaler = t.scaler
    assert (scaler.a_min, scaler.a_max, scaler.b_min, scaler.b_max, scaler.clip) == (-100.0, 200.0, -6.0, 6.0, True)
    out = _apply([t], [[[-1000.0, -100.0, 0.0, 50.0, 100.0, 200.0, 3000.0]]])
    torch.testing.assert_close(out, torch.tensor([[[-6.0, -6.0, -2.0, 0.0, 2.0, 6.0, 6.0]]]))


@pytest.mark.parametrize("nonzero", [False, True])
def test_zscore_normalises_each_image_and_channel(nonzero):
    (t,) = generic.intensity_transforms({"kind": "zscore", "nonzero": nonzero})
    assert type(t).__name__ == "NormalizeIntensityd" and t.normalizer.channel_wise
    out = _apply([t], [[[0.0, 2.0, 4.0, 6.0]], [[10.0, 10.0, 20.0, 20.0]]])
    if nonzero:  # channel 0: statistics of 2, 4, 6 (mean 4, population std sqrt(8/3)); the zero stays zero
        expected0 = [0.0, -2 / math.sqrt(8 / 3), 0.0, 2 / math.sqrt(8 / 3)]
    else:  # channel 0: mean 3, population std sqrt(5)
        expected0 = [(v - 3) / math.sqrt(5) for v in (0.0, 2.0, 4.0, 6.0)]
    torch.testing.assert_close(out[0, 0], torch.tensor(expected0), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out[1, 0], torch.tensor([-1.0, -1.0, 1.0, 1.0]), atol=1e-5, rtol=1e-5)


def test_no_intensity_spec_gives_no_transform():
    assert generic.intensity_transforms(None) == []


@pytest.mark.parametrize("spec, match", [
    ({"kind": "minmax"}, r"unknown intensity kind 'minmax': expected one of \['range', 'ct', 'zscore'\]"),
    ({"a_min": 0}, "a 'kind'"),
    ("range", "a 'kind'"),
    ({"kind": "range", "a_min": 0.0}, r"missing \['a_max'\]"),
    ({"kind": "range", "a_min": 0.0, "a_max": 255.0, "b_max": 2.0}, r"unknown keys \['b_max'\]"),
    ({"kind": "range", "a_min": 10.0, "a_max": 10.0}, "a_max must be larger than a_min"),
    ({"kind": "ct", "lower": 0.0, "upper": 1.0, "mean": 0.5, "std": 0.0}, "std must be > 0"),
    ({"kind": "ct", "lower": 1.0, "upper": 0.0, "mean": 0.5, "std": 1.0}, "upper must be larger than lower"),
    ({"kind": "ct", "lower": "a", "upper": 1.0, "mean": 0.5, "std": 1.0}, "lower must be a finite number"),
    ({"kind": "zscore", "nonzero": "yes"}, "nonzero must be true or false"),
])
def test_bad_intensity_specs_raise_naming_the_problem(spec, match):
    with pytest.raises(ValueError, match=match):
        generic.intensity_transforms(spec)


# ------------------------------------------------------------------------------------------- load transforms
def _names(transforms):
    return [type(t).__name__ for t in transforms]


def test_2d_binary_masks_are_read_by_load_binary_mask_at_the_threshold_and_resized(datasets):
    transforms = generic.load_transforms(2, label_threshold=100, image_size=[32, 24],
                                         intensity={"kind": "range", "a_min": 0.0, "a_max": 255.0})
    assert _names(transforms) == ["LoadImaged", "LoadBinaryMaskd", "Resized", "ScaleIntensityRanged", "EnsureTyped",
                                  "EnsureTyped"]
    assert transforms[1].threshold == 100.0
    resize = transforms[2]
    assert resize.mode == ("bilinear", "nearest") and resize.resizer.spatial_size == (32, 24)
    datalist, _ = datasets["binary_2d"]
    item = json.loads(datalist.read_text())["training"][0]
    data = {k: str(datalist.parent / v) for k, v in item.items()}
    for t in transforms:
        data = t(data)
    assert data["image"].shape == (3, 32, 24) and data["image"].dtype == torch.float32
    assert 0.0 <= float(data["image"].min()) and float(data["image"].max()) <= 1.0
    assert data["label"].shape == (1, 32, 24) and data["label"].dtype == torch.uint8
    assert set(torch.unique(data["label"]).tolist()) == {0, 1}


def test_3d_class_labels_are_resampled_to_pixdim_by_nearest_without_reorienting(datasets):
    transforms = generic.load_transforms(3, pixdim=[2.0, 2.5, 3.0], intensity={"kind": "zscore", "nonzero": False})
    assert _names(transforms) == ["LoadImaged", "LoadImaged", "EnsureTyped", "Spacingd", "NormalizeIntensityd",
                                  "EnsureTyped", "EnsureTyped"]
    assert "Orientationd" not in _names(transforms)
    datalist, _ = datasets["multiclass_3d"]
    item = json.loads(datalist.read_text())["training"][0]
    data = {k: str(datalist.parent / v) for k, v in item.items()}
    for t in transforms:
        data = t(data)
    # (40, 36, 12) voxels of (1.0, 1.25, 3.0) mm resampled to (2.0, 2.5, 3.0) mm: (20, 18, 12)
    assert data["image"].shape == (1, 20, 18, 12) and data["label"].shape == (1, 20, 18, 12)
    torch.testing.assert_close(data["image"].pixdim.float(), torch.tensor([2.0, 2.5, 3.0]))
    assert data["label"].dtype == torch.uint8 and set(torch.unique(data["label"]).tolist()) <= {0, 1, 2}
    assert abs(float(data["image"].mean())) < 1e-4  # z-score of the resampled volume


def test_inference_loads_the_image_only():
    transforms = generic.load_transforms(3, pixdim=[1.0, 1.0, 2.0], with_label=False)
    assert _names(transforms) == ["LoadImaged", "Spacingd", "EnsureTyped"]
    assert list(transforms[1].keys) == ["image"] and transforms[1].mode == ("bilinear",)


@pytest.mark.parametrize("kwargs, match", [
    ({"spatial_dims": 4}, "spatial_dims must be 2 or 3"),
    ({"spatial_dims": 3, "pixdim": [1.0, 1.0]}, r"pixdim must have one value per spatial axis \(3"),
    ({"spatial_dims": 3, "pixdim": [1.0, 0.0, 1.0]}, "pixdim must hold numbers > 0"),
    ({"spatial_dims": 2, "image_size": [64, 64, 8]}, r"image_size must have one value per spatial axis \(2"),
    ({"spatial_dims": 2, "image_size": [64.5, 64]}, "image_size must hold integers > 0"),
    ({"spatial_dims": 2, "label_threshold": "high"}, "label_threshold must be a number or null"),
    ({"spatial_dims": 2, "intensity": {"kind": "hu"}}, "unknown intensity kind 'hu'"),
])
def test_bad_load_values_raise_naming_the_key(kwargs, match):
    with pytest.raises(ValueError, match=match):
        generic.load_transforms(**kwargs)


# --------------------------------------------------------------------------------------------- plan checks
def _plan_args(name="multiclass_3d", **changes):
    plan = {**PLANS[name], **changes}
    keys = ("spatial_dims", "in_channels", "out_channels", "roi_size", "kernel_size", "strides", "deep_supervision",
            "deep_supr_num", "class_names", "label_threshold", "image_size", "pixdim", "filters")
    return {k: plan[k] for k in keys}


@pytest.mark.parametrize("name", list(PLANS))
def test_the_hand_written_plans_pass_the_checks(name):
    assert generic.check_plan(**_plan_args(name)) is True


@pytest.mark.parametrize("changes, match", [
    ({"roi_size": [32, 30, 16]}, r"roi_size \[32, 30, 16\] must be divisible per axis by the product of the strides "
                                 r"\[4, 4, 2\]"),
    ({"roi_size": [32, 32]}, r"roi_size must have one value per spatial axis \(3"),
    ({"out_channels": 1, "class_names": None}, "out_channels must be an integer >= 2"),
    ({"class_names": ["a"]}, "class_names must name the 2 foreground classes"),
    ({"label_threshold": 127}, "label_threshold=127 reads binary masks .* needs out_channels=2"),
    ({"deep_supr_num": 2}, r"deep_supr_num must be in 1..1 \(len\(strides\) - 2\)"),
    ({"kernel_size": [[3, 3, 3]] * 2}, r"kernel_size must have one entry per entry of strides \(3\)"),
    ({"strides": [[1, 1, 1], [2, 2], [2, 2, 2]]}, r"strides\[1\] must have one value per spatial axis"),
    ({"pixdim": [1.5, 1.5]}, "pixdim must have one value per spatial axis"),
    ({"filters": [8, 16]}, "filters must have at least one entry per level"),
    ({"spatial_dims": 1}, "spatial_dims must be 2 or 3"),
])
def test_plan_checks_name_the_key_to_fix(changes, match):
    with pytest.raises(ValueError, match=match):
        generic.check_plan(**_plan_args(**changes))


def test_a_2d_image_size_the_strides_do_not_divide_is_refused():
    with pytest.raises(ValueError, match=r"image_size \[34, 32\] must be divisible"):
        generic.check_plan(**_plan_args("binary_2d", image_size=[34, 32]))


def test_the_network_is_not_built_from_a_plan_that_fails_its_checks(datasets):
    _, plan = datasets["binary_2d"]
    parser = _parser(("train",), plan, roi_size=[30, 32])
    with pytest.raises(Exception) as caught:
        parser.get_parsed_content("network_def")
    chain, err = [], caught.value
    while err is not None:
        chain.append(str(err))
        err = err.__cause__ or err.__context__
    assert any("roi_size [30, 32] must be divisible" in text for text in chain), chain


# ------------------------------------------------------------------------------------------ per-class Dice
def _one_hot(index_map, classes):
    return torch.stack([torch.as_tensor(index_map) == c for c in range(classes)]).float()


def test_class_dice_is_the_dice_of_each_foreground_channel():
    from ignite.engine import Engine

    truth = torch.zeros(4, 4, dtype=torch.long)
    truth[0, 0:2] = 1              # class 1: 2 pixels
    truth[2:4, 2:4] = 2            # class 2: 4 pixels
    pred = torch.zeros(4, 4, dtype=torch.long)
    pred[0, 1:3] = 1               # class 1: 2 pixels, 1 in common -> Dice 2 * 1 / 4 = 0.5
    pred[2:4, 2:4] = 2             # class 2: exact -> 1
    item = {"pred": _one_hot(pred, 3), "label": _one_hot(truth, 3)}
    metrics = generic.class_dice_metrics(["rv", "lv"], 3)
    assert list(metrics) == ["val_dice_rv", "val_dice_lv"]
    engine = Engine(lambda e, b: [item])
    for name, metric in metrics.items():
        metric.attach(engine, name)
    engine.run([0], max_epochs=1)
    assert engine.state.metrics["val_dice_rv"] == pytest.approx(0.5)
    assert engine.state.metrics["val_dice_lv"] == pytest.approx(1.0)


def test_class_dice_names_are_identifiers_and_unique():
    names = list(generic.class_dice_metrics(["left kidney", "left-kidney", "..."], 4))
    assert names == ["val_dice_left_kidney", "val_dice_left_kidney_2", "val_dice_class_3"]
    assert list(generic.class_dice_metrics(None, 3)) == ["val_dice_class_1", "val_dice_class_2"]
    with pytest.raises(ValueError, match="class_names must name the 2 foreground classes"):
        generic.class_dice_metrics(["a"], 3)


# ------------------------------------------------------------------------------------- inference helpers
def test_inference_items_from_a_folder_by_dimension(tmp_path):
    for name in ("b.png", "a.nii.gz", "c.jpg", "notes.txt", "d.h5"):
        (tmp_path / name).write_bytes(b"")
    two = generic.inference_items(tmp_path, 2)
    assert [Path(i["image"]).name for i in two] == ["a.nii.gz", "b.png", "c.jpg"]
    assert [i["id"] for i in two] == ["a", "b", "c"]
    assert [Path(i["image"]).name for i in generic.inference_items(tmp_path, 3)] == ["a.nii.gz"]
    with pytest.raises(FileNotFoundError, match="input folder not found"):
        generic.inference_items(tmp_path / "missing", 2)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no image"):
        generic.inference_items(tmp_path / "empty", 3)
    with pytest.raises(ValueError, match="set input_dir"):
        generic.inference_items(None, 2)


def test_inference_items_default_to_the_test_section(datasets):
    datalist, _ = datasets["multiclass_2d"]
    items = generic.inference_items(None, 2, datalist=datalist)
    assert len(items) == 1 and set(items[0]) == {"image", "id"} and Path(items[0]["image"]).is_absolute()
    without, _ = datasets["binary_2d"]
    with pytest.raises(ValueError, match="has no test section: set input_dir"):
        generic.inference_items(None, 2, datalist=without)


def test_prediction_writers_by_dimension_and_label_kind(tmp_path):
    from monai.data import MetaTensor
    from monai.transforms import SaveImaged

    from monai_imbalance.transforms import SaveLabelVolumeLikeInputd, SaveMaskLikeInputd

    assert isinstance(generic.prediction_writer(3, tmp_path), SaveLabelVolumeLikeInputd)
    assert isinstance(generic.prediction_writer(2, tmp_path, binary_masks=True), SaveMaskLikeInputd)
    writer = generic.prediction_writer(2, tmp_path / "out")
    assert isinstance(writer, SaveImaged)
    source = tmp_path / "case_7.png"
    pred = MetaTensor(torch.tensor([[[0.0, 1.0, 2.0], [2.0, 2.0, 0.0]]]), meta={"filename_or_obj": str(source)})
    writer({"pred": pred})
    written = np.asarray(Image.open(tmp_path / "out" / "case_7_pred.png"))
    # PIL's (rows, columns) are the transposed (H, W) axes, as PILReader reads them back
    assert written.dtype == np.uint8 and np.array_equal(written.T, [[0, 1, 2], [2, 2, 0]])


def test_dataset_folder_is_data_root_or_the_datalist_folder(tmp_path):
    assert generic.dataset_folder(tmp_path / "data.json") == str(tmp_path)
    assert generic.dataset_folder(tmp_path) == str(tmp_path)
    assert generic.dataset_folder(tmp_path / "data.json", "/data") == "/data"


# -------------------------------------------------------------------------------------------------- configs
def test_every_plan_key_has_a_default_and_the_defaults_pass_the_checks():
    train = _train_defaults()
    missing = [k for k in PLAN_KEYS if k not in train]
    assert not missing
    assert (train["spatial_dims"], train["out_channels"], train["label_threshold"]) == (2, 2, 127)
    parser = _parser(("train",))
    assert parser.get_parsed_content("plan_check") is True
    inference = yaml.safe_load((ROOT / "configs" / "inference.yaml").read_text())
    assert {k: inference[k] for k in INFERENCE_KEYS} == {k: train[k] for k in INFERENCE_KEYS}


@pytest.mark.parametrize("name", list(PLANS))
def test_a_plan_sets_only_bundle_ids(name, datasets):
    """plan.yaml overrides ids train.yaml has (none is a new one that nothing reads)."""
    _, plan = datasets[name]
    assert set(yaml.safe_load(plan.read_text())) <= set(_train_defaults())


def test_the_network_is_monais_dynunet_with_the_plan_values(datasets):
    from monai.networks.nets import DynUNet

    from monai_imbalance.losses import DeepSupervisionLoss

    _, plan = datasets["multiclass_3d"]
    parser = _parser(("train",), plan, bundle_root="/nonexistent")
    net = parser.get_parsed_content("network_def")
    assert type(net) is DynUNet
    assert (net.spatial_dims, net.in_channels, net.out_channels) == (3, 1, 3)
    assert net.upsample_kernel_size == [[2, 2, 1], [2, 2, 2]] and net.deep_supervision and net.deep_supr_num == 1
    assert net.filters == [8, 16, 32]
    assert isinstance(parser.get_parsed_content("loss_function"), DeepSupervisionLoss)
    setup = parser.get_parsed_content("setup")
    assert (setup.loss_name, setup.crop_name, setup.out_channels) == ("dibe", "mac", 3)
    # the training output (B, 1 + deep_supr_num, C, *roi) goes through the loss as the list of its heads
    out = net.train()(torch.randn(1, 1, 32, 32, 16))
    assert out.shape == (1, 2, 3, 32, 32, 16)
    value = setup.loss_function(out, torch.randint(0, 3, (1, 1, 32, 32, 16)).float())
    assert value.ndim == 0 and torch.isfinite(value)


def test_the_inferers_are_sliding_windows_of_the_patch(datasets):
    from monai.inferers import SlidingWindowInferer

    for name, overlap in (("binary_2d", 0.25), ("multiclass_3d", 0.5)):
        _, plan = datasets[name]
        for configs, key in ((("train",), "validate#inferer"), (("inference",), "inferer")):
            inferer = _parser(configs, plan).get_parsed_content(key)
            assert isinstance(inferer, SlidingWindowInferer)
            assert list(inferer.roi_size) == PLANS[name]["roi_size"] and inferer.overlap == overlap


def test_validation_metrics_leave_the_background_out(datasets):
    from monai.handlers import MeanDice

    from monai_imbalance.metrics import ConfusionCountsMetric

    _, plan = datasets["multiclass_3d"]
    parser = _parser(("train",), plan, bundle_root="/nonexistent")
    key = parser.get_parsed_content("validate#key_metric")["val_mean_dice"]
    assert isinstance(key, MeanDice) and key.metric_fn.include_background is False
    metrics = parser.get_parsed_content("validate#evaluator#additional_metrics")
    assert list(metrics) == ["val_iou", "val_precision", "val_recall", "val_accuracy", "val_oii", "val_dice_organ_a",
                             "val_dice_organ_b"]
    counts = parser.get_parsed_content("validate#confusion_counts")
    assert isinstance(counts, ConfusionCountsMetric) and counts.include_background is False
    assert metrics["val_iou"].metric_fn.include_background is False
    assert all(metrics[k].counts is counts for k in ("val_precision", "val_recall", "val_accuracy", "val_oii"))
    post = parser.get_parsed_content("validate#postprocessing")
    out = post({"pred": torch.randn(3, 8, 8, 4), "label": torch.randint(0, 3, (1, 8, 8, 4))})
    assert out["pred"].shape == out["label"].shape == (3, 8, 8, 4)
    assert torch.equal(out["pred"].sum(0), torch.ones(8, 8, 4))  # one-hot


def test_training_pads_small_images_to_the_patch_and_validation_does_not(datasets):
    _, plan = datasets["multiclass_3d"]
    parser = _parser(("train",), plan, bundle_root="/nonexistent", **FAST)
    dataset = parser.get_parsed_content("train#dataset")
    # each volume is (27, 30, 14) after resampling to (1.5, 1.5, 2.5) mm: padded to the (32, 32, 16) patch
    sample = dataset[0]
    sample = sample[0] if isinstance(sample, list) else sample
    assert sample["image"].shape == (1, 32, 32, 16) and sample["label"].shape == (1, 32, 32, 16)
    val = parser.get_parsed_content("validate#dataset")[0]
    assert val["image"].shape == (1, 27, 30, 14) and val["label"].shape == val["image"].shape


def test_multi_gpu_configs_share_the_data_out(datasets):
    _, plan = datasets["binary_2d"]
    parser = _parser(("train", "multi_gpu_train"), plan)
    assert parser["network"]["_target_"] == "torch.nn.parallel.DistributedDataParallel"
    assert parser["train#sampler"]["_target_"] == "DistributedSampler"
    assert parser["validate#sampler"]["even_divisible"] is False
    assert "$monai_imbalance.engines.require_items_per_rank(@validate#dataset, 'validation')" in parser["initialize"]
    parser = _parser(("train", "evaluate", "multi_gpu_evaluate"), plan)
    assert parser["validate#dataloader#sampler"] == "@validate#sampler"
    assert "@log_handlers if torch.distributed.get_rank() == 0" in parser["validate#evaluator#val_handlers"]


def test_handler_lists_are_lists_of_definitions(datasets):
    """What --tracking mlflow appends to, in every configuration the bundle runs."""
    _, plan = datasets["binary_2d"]
    for configs, key in ((("train",), "train#handlers"), (("train",), "validate#handlers"),
                         (("train", "evaluate"), "handlers")):
        parser = _parser(configs, plan)
        assert isinstance(parser[key], list) and all(isinstance(h, dict) and "_target_" in h for h in parser[key])
    assert _parser(("train", "evaluate"), plan)["validate#evaluator#val_handlers"] == "$@handlers + @log_handlers"


def test_check_properties_finds_nothing_missing(datasets, tmp_path):
    from monai.bundle import ConfigWorkflow

    datalist, plan = datasets["multiclass_3d"]
    root = copy_bundle(NAME, tmp_path)

    def workflow(names, workflow_type, **overrides):
        flow = ConfigWorkflow(config_file=[str(root / "configs" / f"{n}.yaml") for n in names] + [str(plan)],
                              meta_file=str(root / "configs" / "metadata.json"), workflow_type=workflow_type,
                              logging_file=str(root / "configs" / "logging.conf"), bundle_root=str(root),
                              **overrides)
        flow.initialize()
        return flow

    train = workflow(("train",), "train", **FAST)
    assert train.check_properties() == []
    assert any(h["_target_"] == "ValidationHandler" for h in train.parser["train#handlers"])
    assert train.parser.get_parsed_content("dataset_dir") == str(datalist.parent)
    evaluate = workflow(("train", "evaluate"), "eval", **FAST)
    assert evaluate.check_properties() == []
    assert evaluate.parser.get_parsed_content("evaluator") is evaluate.parser.get_parsed_content("validate#evaluator")
    infer = workflow(("inference",), "infer", num_workers=0, input_dir=str(datalist.parent / "images"))
    assert infer.check_properties() == []


# ---------------------------------------------------------------------------------------------- end to end
def _read_metrics(path: Path) -> dict[str, float]:
    with open(path) as f:
        return {row[0]: float(row[1]) for row in csv.reader(f) if len(row) >= 2}


def _check_metrics(metrics: dict[str, float], class_names: list[str]) -> None:
    for key in ["val_mean_dice", "val_iou", "val_precision", "val_recall", "val_accuracy",
                *(f"val_dice_{c}" for c in class_names)]:
        assert 0.0 <= metrics[key] <= 1.0, (key, metrics)
    assert -1.0 <= metrics["val_oii"] <= 1.0
    assert "val_object_f1" in metrics


def _cli(root: Path, configs: list[str], overrides: dict) -> subprocess.CompletedProcess:
    """``python -m monai.bundle run --config_file "[...]" --key value ...`` in the bundle folder, as a user runs it."""
    cmd = [sys.executable, "-m", "monai.bundle", "run", "--config_file", repr(configs)]
    for key, value in overrides.items():
        cmd += [f"--{key}", value if isinstance(value, str) else repr(value)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run(cmd, cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=300)
    assert proc.returncode == 0, f"{' '.join(cmd)}\n{proc.stdout[-6000:]}"
    return proc


@pytest.fixture(scope="module")
def trained(datasets, tmp_path_factory):
    """The 2-D binary look-alike trained for 2 epochs from the command line, with plan.yaml in the bundle folder."""
    datalist, plan = datasets["binary_2d"]
    root = copy_bundle(NAME, tmp_path_factory.mktemp("generic_bundle"))
    (root / "plan.yaml").write_bytes(plan.read_bytes())
    proc = _cli(root, ["configs/train.yaml", "plan.yaml"],
                {"datalist": str(datalist), "epochs": 2, "num_workers": 0, "progress": False})
    return root, datalist, proc.stdout


@pytest.mark.slow
def test_binary_2d_trains_from_the_command_line(trained):
    root, _, log = trained
    assert "Epoch: 2/2" in log and "val_dice_blob" in log
    models = sorted(p.name for p in (root / "models").iterdir())
    assert models == ["checkpoint_epoch=2.pt", "checkpoint_final.pt", "model.pt", "setup.json"]
    record = json.loads((root / "models" / "setup.json").read_text())
    assert record["run"]["network"] == "monai.networks.nets.dynunet.DynUNet"
    assert record["deep_supervision"] is True and record["loss"]["name"] == "dice_ce"


@pytest.mark.slow
def test_binary_2d_evaluates_into_metrics_csv_that_bench_reads(trained):
    from monai_imbalance.apps.bench import read_evaluation

    root, datalist, _ = trained
    _cli(root, ["configs/train.yaml", "configs/evaluate.yaml", "plan.yaml"],
         {"datalist": str(datalist), "num_workers": 0})
    metrics = _read_metrics(root / "eval" / "metrics.csv")
    _check_metrics(metrics, ["blob"])
    assert metrics["val_dice_blob"] == pytest.approx(metrics["val_mean_dice"])  # one class: the same Dice
    assert read_evaluation(root / "eval") == pytest.approx(metrics, nan_ok=True)
    rows = list(csv.DictReader(open(root / "eval" / "val_mean_dice_raw.csv")))
    assert len(rows) == len(json.loads(datalist.read_text())["validation"])


@pytest.mark.slow
def test_binary_2d_infers_0_255_masks_of_the_input_size(trained):
    root, datalist, _ = trained
    images = datalist.parent / "images"
    _cli(root, ["configs/inference.yaml", "plan.yaml"], {"input_dir": str(images), "num_workers": 0})
    for image in sorted(images.glob("*.png")):
        pred = Image.open(root / "predictions" / f"{image.stem}_pred.png")
        assert pred.size == Image.open(image).size and pred.mode == "L"
        assert set(np.unique(np.asarray(pred)).tolist()) <= {0, 255}


def _infer_in_process(root: Path, plan: Path, **overrides) -> None:
    from monai.bundle import run

    run(config_file=[str(root / "configs" / "inference.yaml"), str(plan)],
        meta_file=str(root / "configs" / "metadata.json"), bundle_root=str(root), num_workers=0, **overrides)


@pytest.mark.slow
def test_multiclass_2d_benches_and_infers_the_test_section(datasets, tmp_path):
    from monai_imbalance.apps.bench import BundleRunner

    datalist, plan = datasets["multiclass_2d"]
    runner = BundleRunner(copy_bundle(NAME, tmp_path), FAST, in_process=True, extra_configs=[plan])
    metrics = runner.run(tmp_path / "run", {"loss": "dbce"})
    _check_metrics(metrics, ["small", "large"])
    assert json.loads((tmp_path / "run" / "models" / "setup.json").read_text())["loss"]["name"] == "dbce"
    _infer_in_process(runner.bundle, plan, ckpt_dir=str(tmp_path / "run" / "models"),
                      output_dir=str(tmp_path / "predictions"))
    (test_item,) = json.loads(datalist.read_text())["test"]
    image = datalist.parent / test_item["image"]
    pred = np.asarray(Image.open(tmp_path / "predictions" / f"{Path(image).stem}_pred.png"))
    assert pred.shape == np.asarray(Image.open(image)).shape and set(np.unique(pred).tolist()) <= {0, 1, 2}
    # the README's TorchScript export (traced: DynUNet's deep-supervision heads do not script) gives the eager output
    from monai.bundle import ckpt_export

    model = tmp_path / "model.ts"
    configs = [str(runner.bundle / "configs" / "inference.yaml"), str(plan)]
    ckpt_export("network_def", filepath=str(model), ckpt_file=str(tmp_path / "run" / "models" / "model.pt"),
                meta_file=str(runner.bundle / "configs" / "metadata.json"), config_file=configs, use_trace=True,
                input_shape=[1, 1, 32, 32])
    net = _parser(("inference",), plan).get_parsed_content("network_def")
    net.load_state_dict(torch.load(tmp_path / "run" / "models" / "model.pt", weights_only=True))
    x = torch.rand(2, 1, 64, 32)
    with torch.no_grad():
        torch.testing.assert_close(torch.jit.load(str(model))(x), net.eval()(x))


@pytest.mark.slow
def test_multiclass_3d_benches_and_infers_nifti_in_the_input_geometry(datasets, tmp_path):
    from monai_imbalance.apps.bench import BundleRunner

    datalist, plan = datasets["multiclass_3d"]
    runner = BundleRunner(copy_bundle(NAME, tmp_path), FAST, in_process=True, extra_configs=[plan])
    metrics = runner.run(tmp_path / "run", {})
    _check_metrics(metrics, ["organ_a", "organ_b"])
    assert "val_object_f1_organ_b" in metrics
    images = datalist.parent / "images"
    _infer_in_process(runner.bundle, plan, ckpt_dir=str(tmp_path / "run" / "models"),
                      output_dir=str(tmp_path / "predictions"), input_dir=str(images))
    for image in sorted(images.glob("*.nii.gz")):
        source = nib.load(str(image))
        pred = nib.load(str(tmp_path / "predictions" / image.name.replace(".nii.gz", "_pred.nii.gz")))
        assert pred.shape == source.shape == (40, 36, 12)
        np.testing.assert_allclose(pred.affine, source.affine)
        values = np.asarray(pred.dataobj)
        assert values.dtype == np.uint8 and set(np.unique(values).tolist()) <= {0, 1, 2}
