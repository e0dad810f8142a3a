"""The Synapse bundle end to end on the Synapse look-alike (TransUNet's npz/h5 layout), as a user runs it
(``python -m monai.bundle run``): the DBCE paper's default trains on 2-D slices with volumetric validation on a
held-out case, evaluates the test volumes slice by slice (the per-case metrics checked against the written
predictions), and infers label volumes like the inputs (h5, and raw NIfTI CT with the input's geometry). Every loss
the docs list runs one iteration in-process; the multi-GPU config builds and validates under gloo."""

from __future__ import annotations

import csv
import json
import math
import re

import h5py
import numpy as np
import pytest
import torch
from ignite.engine import Events

from monai_imbalance.losses import DeepSupervisionLoss, DilatedBalancedCELoss
from monai_imbalance.losses.present_class_dice import PresentClassDiceCELoss
from tests.bundles import BUNDLES, copy_bundle, parse_bundle, run_bundle
from tests.bundles.test_kvasir_bundle import epoch_metrics

NAME = "synapse_seg"
ORGANS = ["spleen", "right_kidney", "left_kidney", "gallbladder", "liver", "stomach", "aorta", "pancreas"]
TINY = {"image_size": "[64, 64]", "batch_size": 4, "num_workers": 0, "progress": False, "num_val_cases": 1,
        "val_slice_batch": 8}
# in-process runs: a smaller encoder of the same family (the losses and the wiring are what they test)
SMALL = {"image_size": [32, 32], "batch_size": 2, "network_def#backbone": "resnet10", "num_workers": 0,
         "progress": False, "cache_rate": 0.0}
FILES = ["configs/train.yaml", "configs/evaluate.yaml", "configs/inference.yaml", "configs/multi_gpu_train.yaml",
         "configs/metadata.json", "configs/logging.conf", "docs/README.md", "LICENSE"]


def transunet_dice(pred: np.ndarray, truth: np.ndarray, c: int) -> float:
    """Dice of class ``c`` with TransUNet's rule for empty masks, by hand."""
    p, t = pred == c, truth == c
    if p.any() and t.any():
        return 2.0 * np.logical_and(p, t).sum() / (p.sum() + t.sum())
    return 1.0 if p.any() else 0.0


def read_per_case(path) -> dict[str, dict[str, str]]:
    with open(path) as f:
        return {row["id"]: row for row in csv.DictReader(f)}


def check_summary(path, classes: list[str], groups: tuple[str, ...] = ("all",)) -> dict[tuple[str, str], dict]:
    """The summary CSV: every group has a row per class and a mean row equal to the mean over the classes."""
    with open(path) as f:
        rows = {(r["group"], r["class"]): r for r in csv.DictReader(f)}
    for group in groups:
        for metric in ("dice", "iou", "hd95"):
            per_class = [float(rows[(group, c)][metric]) for c in classes]
            assert float(rows[(group, "mean")][metric]) == pytest.approx(np.mean(per_class), rel=1e-6, abs=1e-7)
        for c in classes:
            assert 0.0 <= float(rows[(group, c)]["iou"]) <= float(rows[(group, c)]["dice"]) <= 1.0
            assert -1.0 <= float(rows[(group, c)]["oii"]) <= 1.0
    return rows


def check_metadata(name: str, num_channels: int, readme_words: list[str]) -> None:
    missing = [f for f in FILES if not (BUNDLES / name / f).is_file()]
    assert not missing
    meta = json.loads((BUNDLES / name / "configs" / "metadata.json").read_text())
    from tests.bundles.test_metadata_schema import read_data_license

    for key in ("version", "changelog", "monai_version", "pytorch_version", "numpy_version", "name", "description",
                "network_data_format", "references", "required_packages_version"):
        assert meta.get(key), key
    assert "datasets" not in meta  # the licences are in docs/data_license.txt
    assert meta["version"] in meta["changelog"] and meta["changelog"][meta["version"]].strip()
    datasets = read_data_license(BUNDLES / name / "docs" / "data_license.txt")
    assert datasets
    for dataset, info in datasets.items():
        for key in ("source", "licence", "reference", "layout"):
            assert info.get(key), (dataset, key)
    assert meta["network_data_format"]["inputs"]["image"]["num_channels"] == 1
    assert meta["network_data_format"]["outputs"]["pred"]["num_channels"] == num_channels
    readme = (BUNDLES / name / "docs" / "README.md").read_text()
    for word in [*datasets, meta["version"], *readme_words]:
        assert word in readme, word


def check_conventional_ids(name: str, dataset_dir) -> None:
    """conventions.md (Bundles): the conventional IDs; evaluate and multi_gpu_train only override train; inference
    stands alone."""
    for configs in (("train",), ("train", "evaluate"), ("train", "multi_gpu_train")):
        parser = parse_bundle(BUNDLES / name, configs, {"dataset_dir": str(dataset_dir)})
        for key in ("bundle_root", "device", "dataset_dir", "train#trainer", "train#dataset", "train#inferer",
                    "validate#evaluator", "validate#inferer", "crop", "loss", "amp", "cudnn_benchmark", "resume"):
            assert key in parser, (configs, key)
    parser = parse_bundle(BUNDLES / name, ("inference",), {"dataset_dir": str(dataset_dir)})
    for key in ("bundle_root", "device", "dataset_dir", "network_def", "evaluator", "input_dir", "output_dir"):
        assert key in parser, key
    assert "train" not in parser.config
    import monai_imbalance.engines
    import monai_imbalance.handlers
    import monai_imbalance.inferers
    import monai_imbalance.losses
    import monai_imbalance.metrics
    import monai_imbalance.networks
    import monai_imbalance.transforms

    ours = {n for m in (monai_imbalance.engines, monai_imbalance.handlers, monai_imbalance.inferers,
                        monai_imbalance.losses, monai_imbalance.metrics, monai_imbalance.networks,
                        monai_imbalance.transforms) for n in dir(m) if not n.startswith("_")}
    for config in (BUNDLES / name / "configs").glob("*.yaml"):  # our classes by full _target_ path, never short
        short = set(re.findall(r"_target_: (\w+)\s*$", config.read_text(), flags=re.M))
        assert not short & ours, (config.name, short & ours)


def documented_losses(name: str) -> set[str]:
    """The ``--loss X`` settings the bundle's README lists."""
    return set(re.findall(r"--loss (\w+)", (BUNDLES / name / "docs" / "README.md").read_text()))


def run_one_iteration(root, overrides: dict) -> tuple[object, list[float]]:
    """Build the bundle's trainer in-process and run one iteration; returns the loss function and the losses."""
    # no log handlers: they would write checkpoints and TensorBoard files (slow here, and tested end to end)
    parser = parse_bundle(root, ("train",), {"epochs": 1, "train#trainer#epoch_length": 1,
                                             "train#trainer#train_handlers": "$@train#handlers", **overrides})
    trainer = parser.get_parsed_content("train#trainer")
    losses = []
    trainer.add_event_handler(Events.ITERATION_COMPLETED,
                              lambda e: losses.append(float(e.state.output["loss"].detach())))
    trainer.run()
    return parser, losses


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    from monai_imbalance.apps.lookalike import write_synapse_lookalike

    return write_synapse_lookalike(tmp_path_factory.mktemp("synapse_data"), train_cases=("0005", "0006", "0007"),
                                   test_cases=("0001", "0002"))


@pytest.fixture(scope="module")
def trained(data, tmp_path_factory):
    root = copy_bundle(NAME, tmp_path_factory.mktemp("bundle"))
    proc = run_bundle(root, ("train",), {"dataset_dir": str(data), "epochs": 1, "val_interval": 1, **TINY})
    return root, proc.stdout


def test_train_one_epoch_with_volumetric_validation(trained, data):
    from monai_imbalance.engines import dataset_sections

    root, log = trained
    sections = dataset_sections("synapse", data, num_val_cases=1, cache_dir=root / "cache")
    iterations = math.ceil(len(sections["training"]) / 4)
    assert f"Epoch: 1/1, Iter: {iterations}/{iterations}" in log
    metrics = epoch_metrics(log, 1)
    for organ in ORGANS:
        assert 0.0 <= metrics[f"val_dice_{organ}"] <= 1.0 and metrics[f"val_hd95_{organ}"] >= 0.0
        assert -1.0 <= metrics[f"val_oii_{organ}"] <= 1.0
    assert metrics["val_mean_dice"] == pytest.approx(np.mean([metrics[f"val_dice_{o}"] for o in ORGANS]), abs=1e-4)
    assert "Got new best metric of val_mean_dice" in log
    volumes = list((root / "cache" / "val_vol_h5").glob("case*.npy.h5"))
    assert len(volumes) == 1 and len(sections["validation"]) == 1
    with h5py.File(volumes[0]) as f:
        assert f["image"].shape[0] == sections["validation"][0]["num_slices"]
    assert sorted(p.name for p in (root / "models").iterdir()) == ["checkpoint_epoch=1.pt", "checkpoint_final.pt",
                                                                   "model.pt", "setup.json"]
    state = torch.load(root / "models" / "checkpoint_epoch=1.pt", weights_only=True)
    assert state["lr_scheduler"]["total_iters"] == iterations  # polynomial decay per iteration
    events = b"".join(p.read_bytes() for p in (root / "logs").glob("events.out.tfevents.*"))
    assert b"val_hd95_pancreas" in events and b"train_loss" in events


def test_evaluate_test_volumes_and_infer(trained, data):
    root, _ = trained
    run_bundle(root, ("train", "evaluate"), {"dataset_dir": str(data), "save_predictions": True, **TINY})
    per_case = read_per_case(root / "eval" / "volumetric_per_case.csv")
    assert sorted(per_case) == ["case0001", "case0002"]
    check_summary(root / "eval" / "volumetric_summary.csv", [o.replace("_", " ") for o in ORGANS])
    for case, row in per_case.items():
        with h5py.File(root / "eval" / "predictions" / f"{case}_pred.npy.h5") as f:
            pred = f["label"][()]
        with h5py.File(data / "test_vol_h5" / f"{case}.npy.h5") as f:
            truth = f["label"][()].astype(np.int64)
        assert pred.shape == truth.shape and pred.dtype == np.uint8 and pred.max() <= 8
        for c, organ in enumerate(ORGANS, start=1):
            assert float(row[f"dice_{organ}"]) == pytest.approx(transunet_dice(pred, truth, c), abs=1e-5)
            assert int(row[f"tp_{organ}"]) == np.logical_and(pred == c, truth == c).sum()
    report = json.loads((root / "eval" / "volumetric_report.json").read_text())
    assert report["empty_policy"] == "transunet" and report["oii_skipped"] is None
    # per-object metrics of every organ, sizes in mm^3 where the volumes carry a spacing, with the cases named
    objects = json.loads((root / "eval" / "objects_summary.json").read_text())
    assert len(objects["classes"]) == len(ORGANS) and objects["cases"] == 2
    unit = "physical" if all(r["spacing"] for r in per_case.values()) else "voxels"
    assert all(v["size_unit"] == unit for v in objects["classes"].values())
    with open(root / "eval" / "objects_table.csv") as f:
        assert {r["case"] for r in csv.DictReader(f)} <= {"case0001", "case0002"}
    out = root / "predictions"
    run_bundle(root, ("inference",), {"dataset_dir": str(data), "output_dir": str(out), "image_size": "[64, 64]",
                                      "num_workers": 0})
    for case in per_case:  # the same model: the same labels as the evaluation wrote
        with h5py.File(out / f"{case}_pred.npy.h5") as a, h5py.File(root / "eval" / "predictions" /
                                                                   f"{case}_pred.npy.h5") as b:
            np.testing.assert_array_equal(a["label"][()], b["label"][()])


def test_raw_nifti_inference_matches_the_converted_volume(trained, tmp_path):
    """Raw BTCV CT (HU, NIfTI x, y, z) is clipped, scaled and sliced as TransUNet's preprocessing does: the labels
    predicted from it are those predicted from its converted h5 volume, transposed, in the input's geometry."""
    import nibabel as nib

    from monai_imbalance.apps.lookalike import write_synapse_lookalike
    from monai_imbalance.apps.synapse import convert_btcv_to_synapse

    root, _ = trained
    raw = write_synapse_lookalike(tmp_path / "raw", form="raw", train_cases=(), test_cases=("0001",),
                                  spacing=(0.7, 0.8, 3.0))
    converted = convert_btcv_to_synapse(raw, tmp_path / "converted", test_cases=("0001",), train_cases=())
    predictions = {}
    for name, folder in (("nifti", raw / "RawData" / "Training" / "img"), ("h5", converted / "test_vol_h5")):
        parser = parse_bundle(root, ("inference",), {"input_dir": str(folder), "output_dir": str(tmp_path / name),
                                                     "image_size": [64, 64], "num_workers": 0})
        assert parser.get_parsed_content("input_format") == name
        parser.get_parsed_content("evaluator").run()
        predictions[name] = sorted((tmp_path / name).iterdir())
    nifti = nib.load(str(predictions["nifti"][0]))
    source = nib.load(str(raw / "RawData" / "Training" / "img" / "img0001.nii.gz"))
    assert predictions["nifti"][0].name == "img0001_pred.nii.gz" and nifti.shape == source.shape
    np.testing.assert_allclose(nifti.affine, source.affine)
    with h5py.File(predictions["h5"][0]) as f:
        from_h5 = f["label"][()]
    from_nifti = np.asanyarray(nifti.dataobj).transpose(2, 1, 0)
    assert (from_nifti == from_h5).mean() >= 0.999, (from_nifti != from_h5).sum()


@pytest.mark.parametrize("loss", sorted({"ce", "dice_ce", "balanced_ce", "dbce"}))
def test_documented_losses_run_one_iteration(loss, data, trained, tmp_path):
    root, _ = trained
    parser, losses = run_one_iteration(root, {"dataset_dir": str(data), "loss": loss, "val_interval": 5,
                                              "cache_dir": str(tmp_path), "num_val_cases": 1, **SMALL})
    assert len(losses) == 1 and math.isfinite(losses[0]) and losses[0] > 0
    loss_fn = parser.get_parsed_content("loss_function")
    assert isinstance(loss_fn, DeepSupervisionLoss)  # the paper's deep supervision for every loss
    inner = loss_fn.loss
    if loss == "dice_ce":
        assert isinstance(inner, PresentClassDiceCELoss)  # only the organs present in a slice in the Dice terms
    if loss == "dbce":  # the trainer passes the map to the loss of every head
        assert isinstance(inner, DilatedBalancedCELoss) and inner.radius == 10
        assert parser.get_parsed_content("train#trainer").loss_inputs == {"weight_map": "label_weight"}


def test_docs_list_the_tested_losses_and_metadata_is_complete():
    assert documented_losses(NAME) == {"ce", "dice_ce", "balanced_ce", "dbce"}
    check_metadata(NAME, 9, ["HD95", "calculate_metric_percase", "--num_val_cases 0"])
    check_conventional_ids(NAME, BUNDLES)


def test_all_training_cases_without_validation(data, trained, tmp_path):
    root, _ = trained
    parser, losses = run_one_iteration(root, {"dataset_dir": str(data), "num_val_cases": 0, "val_interval": 1,
                                              "cache_dir": str(tmp_path), **SMALL})
    assert parser.get_parsed_content("sections")["validation"] == [] and len(losses) == 1
    assert "val_mean_dice" not in parser.get_parsed_content("validate#evaluator").state.metrics  # skipped, no crash


def test_datalist_json_validation_is_stacked(data, tmp_path):
    from monai_imbalance.apps import prepare_synapse
    from monai_imbalance.engines import dataset_sections

    datalist = prepare_synapse(data, out=tmp_path / "synapse.json", num_val_cases=1)
    sections = dataset_sections("synapse", None, datalist=datalist, cache_dir=tmp_path / "cache")
    assert len(sections["validation"]) == 1 and sections["validation"][0]["image"].endswith(".npy.h5")
    assert len(sections["test"]) == 2 and all("slice" in it for it in sections["training"])


def test_multi_gpu_config_builds_and_validates_under_gloo(data, trained, tmp_path, monkeypatch):
    import ignite.distributed as idist
    import torch.distributed as dist
    from monai.data import DistributedSampler

    root, _ = trained
    monkeypatch.setenv("LOCAL_RANK", "0")
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'rendezvous'}", rank=0, world_size=1)
    try:
        parser = parse_bundle(root, ("train", "multi_gpu_train"), {
            "dataset_dir": str(data), "cache_dir": str(tmp_path), "image_size": [64, 64], "num_workers": 0,
            "num_val_cases": 1, "progress": False})
        parser.get_parsed_content("train#trainer")
        assert parser["validate#sampler"]["even_divisible"] is True  # no rank without a volume (repeats: once)
        assert isinstance(parser.get_parsed_content("network"), torch.nn.parallel.DistributedDataParallel)
        assert isinstance(parser.get_parsed_content("train#sampler"), DistributedSampler)
        evaluator = parser.get_parsed_content("validate#evaluator")
        evaluator.run()  # per-case metrics gathered across ranks (here one)
        assert 0.0 <= evaluator.state.metrics["val_mean_dice"] <= 1.0
        assert "val_hd95_aorta" in evaluator.state.metrics
    finally:  # ignite keeps its own record of the group: reset both
        idist.finalize()
        if dist.is_initialized():
            dist.destroy_process_group()
