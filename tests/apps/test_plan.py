"""monai-imbalance plan: each decision against a hand computation, and whole plans of generated datasets whose
object sizes, foreground shares and spacings are known."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import yaml

from monai_imbalance.apps import plan as P
from monai_imbalance.apps.plan import PlanError
from monai_imbalance.cli import main
from monai_imbalance.stats import ImbalanceStatistics


def _case(shape, values=(0, 1), channels=1, spacing=None, label_shape=None, suffix=".nii.gz", integer=False,
          samples=None, name="c"):
    return P.CaseFingerprint(name, f"{name}_img{suffix}", f"{name}_lab{suffix}", tuple(shape),
                             tuple(label_shape or shape), channels, tuple(spacing or (1.0,) * len(shape)), integer,
                             tuple(values), 1, suffix, np.zeros((channels, 0), np.float32) if samples is None
                             else samples)


# ------------------------------------------------------------------------------------------------ decisions


def test_rho_is_the_kth_largest_share():
    # 5 images, 80%: 4 must reach rho; shares sorted 0.5 0.4 0.3 0.2 0.1 -> the 4th, 0.2
    rho, why = P.choose_rho([0.5, 0.1, 0.3, 0.2, 0.4], 0.8)
    assert rho == 0.2 and "4 of 5" in why
    # 100%: the smallest; rounded down to 4 decimals
    assert P.choose_rho([0.123456, 0.9], 1.0)[0] == 0.1234
    # never above the paper grid's 0.75
    rho, why = P.choose_rho([0.9, 0.95], 1.0)
    assert rho == 0.75 and "capped" in why
    # 0.7 of 3 images: ceil(2.1) = 3
    assert P.choose_rho([0.3, 0.2, 0.1], 0.7)[0] == 0.1
    with pytest.raises(PlanError, match="no training image has foreground"):
        P.choose_rho([], 0.8)
    with pytest.raises(ValueError, match="croppable_share"):
        P.choose_rho([0.1], 0.0)


def test_radius_is_half_the_equivalent_radius():
    # a disk of area 100 pi has radius 10 -> 5 px
    assert P.choose_radius(100 * math.pi, 2)[0] == 5.0
    # a ball of radius 8 (4/3 pi 512 voxels) at 1 mm -> 4.0 mm
    assert P.choose_radius(4 / 3 * math.pi * 512, 3, (1.0, 1.0, 1.0))[0] == 4.0
    # twice the voxels at 0.5 mm^3 per voxel: the same physical ball
    assert P.choose_radius(2 * 4 / 3 * math.pi * 512, 3, (0.5, 0.5, 2.0))[0] == 4.0
    # tiny objects keep a radius of 1 (the dilation still bounds the weights)
    assert P.choose_radius(1, 2)[0] == 1.0


def test_dynunet_strides_isotropic_and_anisotropic():
    kernels, strides = P.plan_dynunet([128, 96], [1.0, 1.0])
    # axis 0: 128 -> 4 after 5 halvings; axis 1: 96 -> 6, a sixth would leave 3 < 4
    assert strides == [[1, 1], [2, 2], [2, 2], [2, 2], [2, 2], [2, 1]]
    assert kernels == [[3, 3]] * 6
    kernels, strides = P.plan_dynunet([64, 64, 16], [1.0, 1.0, 3.0])
    # z (3 mm) waits one level until x, y reach 2 mm; then all halve until z's map is 4, then x, y once more
    assert strides == [[1, 1, 1], [2, 2, 1], [2, 2, 2], [2, 2, 2], [2, 2, 1]]
    assert kernels[0] == [3, 3, 1] and all(k == [3, 3, 3] for k in kernels[1:])


def test_fit_patch_shrinks_the_longest_axis_by_its_divisor():
    def memory(patch, kernels, strides):  # 1000 bytes per pixel
        return 1000.0 * np.prod(patch)

    patch, _, strides, need, steps = P.fit_patch([128, 128], [1.0, 1.0], memory, budget=1000.0 * 64 * 64)
    # by hand: [128,128] -> [96,128] -> [96,96] -> [80,96] -> [80,80] -> [64,80] -> [64,64] (4096 px)
    assert patch == [64, 64] and steps == 6 and need == 1000.0 * 4096
    # physical extent decides: 1 mm x 4 mm pixels shrink axis 1 first
    patch, *_ = P.fit_patch([64, 64], [1.0, 4.0], memory, budget=1000.0 * 64 * 48)
    assert patch == [64, 48]
    with pytest.raises(PlanError, match="raise --gpu-memory"):
        P.fit_patch([64, 64], [1.0, 1.0], memory, budget=10.0)
    with pytest.raises(PlanError, match="too small"):
        P.fit_patch([12, 12], [1.0, 1.0], memory, budget=1e12)


def test_training_memory_is_linear_in_the_patch():
    import torch
    from monai.networks.nets import DynUNet

    kernels, strides = P.plan_dynunet([64, 64], [1.0, 1.0])
    per_voxel, fixed = P.training_memory(2, 1, 3, kernels, strides)
    net = DynUNet(2, 1, 3, kernels, strides, strides[1:], res_block=True, deep_supervision=True, deep_supr_num=1)
    assert fixed == 16.0 * sum(p.numel() for p in net.parameters())
    # brute force: the saved tensors of a forward at 64 x 96 (not the probe size)
    weights = {p.untyped_storage().data_ptr() for p in net.parameters()}
    seen = {}

    def pack(t):
        if t.untyped_storage().data_ptr() not in weights:
            seen[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = net(torch.zeros(2, 1, 64, 96))
    brute = sum(seen.values()) + 2 * out.numel() * 4
    assert brute == pytest.approx(2 * per_voxel * 64 * 96, rel=0.02)


def test_spacing_is_the_median_and_none_when_all_equal():
    pixdim, target, _ = P.choose_spacing([(1, 1, 2), (1, 1, 3), (2, 2, 5)])
    assert pixdim == target == [1.0, 1.0, 3.0]
    pixdim, target, why = P.choose_spacing([(0.8, 0.8, 2.5)] * 3)
    assert pixdim is None and target == [0.8, 0.8, 2.5] and "no resampling" in why


def test_image_size_only_for_large_images():
    assert P.choose_image_size([(300, 400), (320, 480)])[0] is None
    # median 1000 x 1500 -> longest side 512: 341.3 -> 336, 512
    assert P.choose_image_size([(1000, 1500)] * 3)[0] == [336, 512]


def test_labels_encodings_and_refusals():
    num, names, threshold, _ = P.choose_labels([_case((8, 8), (0, 255), suffix=".png")] * 2)
    assert (num, names, threshold) == (2, ["foreground"], 127.0)
    num, names, threshold, _ = P.choose_labels([_case((8, 8), (0, 1, 2))], {0: "background", 1: "RV", 2: "LV"})
    assert (num, names, threshold) == (3, ["RV", "LV"], None)
    with pytest.raises(PlanError, match=r"class 2 \(2\) is absent from every training case"):
        P.choose_labels([_case((8, 8), (0, 1)), _case((8, 8), (0, 3))])
    with pytest.raises(PlanError, match=r"class 2 \(LV\) is absent"):
        P.choose_labels([_case((8, 8), (0, 1))], {0: "background", 1: "RV", 2: "LV"})
    with pytest.raises(PlanError, match="label value 5 of case bad"):
        P.choose_labels([_case((8, 8), (0, 5), name="bad")], {0: "background", 1: "a", 2: "b"})
    with pytest.raises(PlanError, match="no case has any foreground"):
        P.choose_labels([_case((8, 8), (0,))])


def test_dims_refusals():
    with pytest.raises(PlanError, match="mixed dimensionality: 2-D .* 3-D"):
        P.choose_dims([_case((8, 8)), _case((8, 8, 4))])
    with pytest.raises(PlanError, match="label of case c has shape \\[8, 9\\] but its image \\[8, 8\\]"):
        P.choose_dims([_case((8, 8), label_shape=(8, 9))])
    with pytest.raises(PlanError, match="different channel counts"):
        P.choose_dims([_case((8, 8), channels=1), _case((8, 8), channels=3)])
    assert P.choose_dims([_case((8, 8, 4), channels=2)])[:2] == (3, 2)


def test_intensity_rules():
    samples = np.arange(1000, dtype=np.float32)[None]
    spec, _ = P.choose_intensity([_case((8, 8, 8), samples=samples)], {0: "CT"}, 3)
    # np.percentile's linear rule by hand: 0.005 * 999 = 4.995, 0.995 * 999 = 994.005
    assert spec["kind"] == "ct" and spec["lower"] == 4.995 and spec["upper"] == 994.005
    # the standard deviation of 0..999: sqrt((1000^2 - 1) / 12), rounded to 4 decimals as in the plan
    assert spec["mean"] == 499.5 and spec["std"] == round(math.sqrt((1000**2 - 1) / 12), 4)
    assert P.choose_intensity([_case((8, 8), integer=True)], None, 2)[0] == {"kind": "range", "a_min": 0.0,
                                                                              "a_max": 255.0}
    assert P.choose_intensity([_case((8, 8, 8))], {0: "T2"}, 3)[0]["kind"] == "zscore"
    assert P.choose_intensity([_case((8, 8, 8), integer=True)], {0: "MR", 1: "CT"}, 3)[0]["kind"] == "zscore"


def test_deep_supervision_rule():
    # 20 objects: 0 and 2 (10%) lost at 1/2 and 1/4 are allowed, 3 (15%) at 1/8 is not
    assert P.choose_deep_supervision(20, [0, 2, 3, 10], 3)[:2] == (True, 2)
    assert P.choose_deep_supervision(20, [0, 0, 0, 0], 3)[:2] == (True, 3)
    assert P.choose_deep_supervision(20, [5, 9], 2)[:2] == (False, 1)


def _report(label, num_classes):
    stats = ImbalanceStatistics(num_classes=num_classes, ds_levels=0)
    stats.update(label)
    return stats.compute()


def test_loss_family_by_the_rarest_class():
    one = np.zeros((40, 50), np.uint8)
    one[0, 0] = 1  # 1 : 1999
    assert P.choose_loss(_report(one, 2))[0] == "dibe_reg"
    medium = np.zeros((40, 50), np.uint8)
    medium[:2, :5] = 1  # 10 : 1990, 1:199
    assert P.choose_loss(_report(medium, 2))[0] == "dibe"
    low = np.zeros((40, 50), np.uint8)
    low[:10, :10] = 1  # 1:19
    loss, why = P.choose_loss(_report(low, 2))
    assert loss == "dice_ce" and "1:19" in why
    multi = low.copy()
    multi[39, 49] = 2  # a rare second class decides
    assert P.choose_loss(_report(multi, 3))[0] == "dibe_reg"


def test_crop_rule():
    assert P.choose_crop(0.01, [(64, 64)] * 3, [64, 64])[0] == "none"
    assert P.choose_crop(0.01, [(64, 64), (64, 80)], [64, 64])[0] == "mac"
    assert P.choose_crop(0.3, [(256, 256)], [128, 128])[0] == "random"
    assert P.choose_crop(0.05, [(256, 256)], [128, 128])[0] == "mac"


# ----------------------------------------------------------------------------------------------- whole plans


def _write_squares(root: Path, n: int = 4, size: int = 256, side: int = 16) -> Path:
    """n RGB PNG images with one side x side square (0/255 mask) at a 16-aligned place: known sizes."""
    from PIL import Image

    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    rng = np.random.default_rng(0)
    for i in range(n):
        mask = np.zeros((size, size), np.uint8)
        y, x = 32 + 16 * i, 48
        mask[y:y + side, x:x + side] = 255
        image = rng.integers(0, 255, (size, size, 3), dtype=np.uint8)
        Image.fromarray(image).save(root / "images" / f"case{i}.png")
        Image.fromarray(mask).save(root / "labels" / f"case{i}.png")
    return root


def test_plan_of_a_folder_with_known_objects(tmp_path):
    root = _write_squares(tmp_path / "squares")
    plan = P.plan_dataset(root, progress=False, gpu_memory_gib=8)
    v = plan.values
    assert (v["spatial_dims"], v["in_channels"], v["out_channels"], v["label_threshold"]) == (2, 3, 2, 127.0)
    assert v["intensity"]["kind"] == "range" and v["image_size"] is None and v["pixdim"] is None
    # 256 px images: half of them as the patch; it fits 8 GiB
    assert v["roi_size"] == [128, 128]
    assert v["batch_size"] == 4  # capped by the 4 training cases
    # the best 128 x 128 window holds the whole 256 px square: share 256 / 16384
    assert v["crop"] == "mac" and v["crop_params"]["mac"]["rho"] == math.floor(256 / 16384 * 1e4) / 1e4
    assert v["crop_params"]["mac"]["stride"] == [16, 16]
    # equivalent radius sqrt(256 / pi) = 9.03 -> 4.51 -> 5
    assert v["loss_params"]["dbce"]["radius"] == 5.0
    # omega: m = 4 * 65536, n_1 = 4 * 256: 65536 / 512 = 128; n_0 = 4 * 65280: 65536 / (2 * 65280)
    assert v["loss_params"]["balanced_ce"]["weight"] == [round(65536 / (2 * 65280), 6), 128.0]
    # FG:BG 1:255 -> high imbalance -> DIBE
    assert v["loss"] == "dibe"
    # 16 px squares on a 16 px grid survive down to 1/16: 4 heads (DynUNet's most for 6 levels)
    assert v["strides"] == [[1, 1]] + [[2, 2]] * 5
    assert (v["deep_supervision"], v["deep_supr_num"]) == (True, 4)
    # the YAML: reasons as comments, the same values back
    text = plan.to_yaml()
    assert "# largest rho keeping" not in text and "# MAC rho" in text and "&id" not in text
    loaded = yaml.safe_load(text)
    assert {k: loaded[k] for k in v} == v
    assert set(loaded["plan_reasons"]) <= set(v)


def test_plan_of_a_decathlon_task(tmp_path):
    from monai_imbalance.apps.lookalike import write_decathlon_lookalike

    path = write_decathlon_lookalike(tmp_path / "Task09_Test", num_cases=4, spatial_size=(32, 32, 16),
                                     num_classes=3, modalities=("CT",), spacing=(0.8, 0.8, 2.5))
    plan = P.plan_dataset(path, progress=False)
    v = plan.values
    meta = json.loads(Path(path).read_text())
    assert plan.kind == "decathlon" and v["spatial_dims"] == 3 and v["out_channels"] == 3
    assert v["class_names"] == [meta["labels"]["1"], meta["labels"]["2"]]
    assert v["intensity"]["kind"] == "ct"
    assert v["pixdim"] is None and v["loss_params"]["dbce"]["spacing"] == [0.8, 0.8, 2.5]
    # the whole 32 x 32 x 16 volume fits, z (2.5 mm) pools once x, y have reached 1.6 mm
    assert v["roi_size"] == [32, 32, 16]
    assert v["strides"][1] == [2, 2, 1]


def test_plan_resamples_3d_to_the_median_spacing(tmp_path):
    from monai_imbalance.apps.synthetic import write_synthetic_dataset

    datalists = []
    for i, z in enumerate((2.0, 3.0, 4.0)):
        datalists.append(write_synthetic_dataset(tmp_path / f"s{i}", 1, image_format="nii.gz", val_fraction=0.0,
                                                 seed=i, spacing=(1.0, 1.0, z), spatial_size=(32, 32, 12),
                                                 fg_fraction=0.05, num_classes=2))
    items = [{"image": str(d.parent / "images/case_0000.nii.gz"), "label": str(d.parent / "labels/case_0000.nii.gz")}
             for d in datalists]
    merged = tmp_path / "data.json"
    merged.write_text(json.dumps({"training": items}))
    plan = P.plan_dataset(merged, progress=False)
    v = plan.values
    assert v["pixdim"] == [1.0, 1.0, 3.0]
    # z extents 12 * 2, 12 * 3, 12 * 4 mm at 3 mm: 8, 12, 16 slices; median 12
    assert "median resampled shape [32, 32, 12]" in plan.reasons["roi_size"]


def test_cli_plan_writes_yaml_and_refuses_mixed_data(tmp_path, capsys):
    root = _write_squares(tmp_path / "squares", n=3, size=64)
    out = tmp_path / "plan.yaml"
    assert main(["plan", "--datalist", str(root), "--out", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "plan for" in printed and "crop = none" in printed and out.is_file()
    assert yaml.safe_load(out.read_text())["roi_size"] == [64, 64]
    # a 3-D case among 2-D ones: one line, status 1
    import nibabel as nib

    nib.save(nib.Nifti1Image(np.zeros((8, 8, 4), np.float32), np.eye(4)), str(root / "images" / "z.nii.gz"))
    nib.save(nib.Nifti1Image(np.ones((8, 8, 4), np.uint8), np.eye(4)), str(root / "labels" / "z.nii.gz"))
    assert main(["plan", "--datalist", str(root), "--out", str(out), "--no-progress"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "mixed dimensionality" in err[0]
