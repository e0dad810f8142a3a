"""The ACDC bundle end to end on the ACDC look-alikes (raw NIfTI with Info.cfg and anisotropic spacing; SSL4MIS's
HDF5 form), as a user runs it (``python -m monai.bundle run``): the modified boundary loss paper's default trains on
2-D slices with volumetric validation, evaluates the test patients per class at ED and ES (the per-volume metrics
checked against the written predictions, HD95 in mm), and infers NIfTI label volumes with the inputs' geometry. Every
loss the docs list runs one iteration in-process; the HDF5 form trains and evaluates; the multi-GPU config builds."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from monai_imbalance.losses import DilatedBalancedCELoss, ModifiedBoundaryLoss, RegionBoundaryLoss
from tests.bundles import BUNDLES, copy_bundle, parse_bundle, run_bundle
from tests.bundles.test_kvasir_bundle import epoch_metrics
from tests.bundles.test_synapse_bundle import (
    check_conventional_ids,
    check_metadata,
    check_summary,
    documented_losses,
    read_per_case,
    run_one_iteration,
    transunet_dice,
)

NAME = "acdc_seg"
CLASSES = ["RV", "MYO", "LV"]
TINY = {"image_size": "[64, 64]", "batch_size": 8, "num_workers": 0, "progress": False, "val_slice_batch": 8}
SMALL = {"image_size": [32, 32], "batch_size": 4, "num_workers": 0, "progress": False, "cache_rate": 0.0}
LOSSES = {"modified_boundary", "dice", "boundary", "dbce", "dibe", "blob_dice_ce"}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    from monai_imbalance.apps.lookalike import write_acdc_lookalike

    # patient001: test, 002: validation, 003 and 004: training (SSL4MIS's lists)
    return write_acdc_lookalike(tmp_path_factory.mktemp("acdc_data"), patients=[1, 2, 3, 4])


@pytest.fixture(scope="module")
def trained(data, tmp_path_factory):
    root = copy_bundle(NAME, tmp_path_factory.mktemp("bundle"))
    proc = run_bundle(root, ("train",), {"dataset_dir": str(data), "epochs": 1, **TINY})
    return root, proc.stdout


def test_train_one_epoch_with_volumetric_validation_at_ed_and_es(trained, data):
    from monai_imbalance.apps import acdc_items
    from monai_imbalance.engines import dataset_sections

    root, log = trained
    sections = dataset_sections("acdc", data)
    assert {it["patient"] for it in sections["training"]} == {"patient003", "patient004"}
    assert [(v["patient"], v["phase"]) for v in sections["validation"]] == [("patient002", "ED"),
                                                                            ("patient002", "ES")]
    volumes = acdc_items(data)["volumes"]
    slices = sum(v["shape"][2] for v in volumes if v["patient"] in ("patient003", "patient004"))
    assert len(sections["training"]) == slices  # one item per slice of the ED and ES volumes
    iterations = math.ceil(slices / 8)
    assert f"Epoch: 1/1, Iter: {iterations}/{iterations}" in log
    metrics = epoch_metrics(log, 1)
    for c in CLASSES:
        for phase in ("", "_ED", "_ES"):
            assert 0.0 <= metrics[f"val_dice_{c}{phase}"] <= 1.0 and metrics[f"val_hd95_{c}{phase}"] >= 0.0
        assert -1.0 <= metrics[f"val_oii_{c}"] <= 1.0
    assert metrics["val_mean_dice"] == pytest.approx(
        np.mean([(metrics[f"val_dice_{c}_ED"] + metrics[f"val_dice_{c}_ES"]) / 2 for c in CLASSES]), abs=1e-4)
    assert (root / "models" / "model.pt").is_file()
    events = b"".join(p.read_bytes() for p in (root / "logs").glob("events.out.tfevents.*"))
    assert b"val_hd95_MYO_ES" in events


def test_evaluate_per_class_at_ed_and_es_and_infer_nifti(trained, data):
    import nibabel as nib

    root, _ = trained
    run_bundle(root, ("train", "evaluate"), {"dataset_dir": str(data), "save_predictions": True, **TINY})
    per_case = read_per_case(root / "eval" / "volumetric_per_case.csv")
    assert sorted(per_case) == ["patient001_frame01", f"patient001_frame{_es_frame(data):02d}"]
    assert sorted(r["group"] for r in per_case.values()) == ["ED", "ES"]
    check_summary(root / "eval" / "volumetric_summary.csv", CLASSES, groups=("all", "ED", "ES"))
    for case, row in per_case.items():
        source = data / "training" / "patient001" / f"{case}.nii.gz"
        pred = nib.load(str(root / "eval" / "predictions" / f"{case}_pred.nii.gz"))
        truth = np.rint(nib.load(str(source).replace(".nii.gz", "_gt.nii.gz")).get_fdata()).astype(int)
        assert pred.shape == truth.shape and np.allclose(pred.affine, nib.load(str(source)).affine)
        labels = np.asanyarray(pred.dataobj)
        spacing = [float(s) for s in nib.load(str(source)).header.get_zooms()[:3]]
        assert [float(s) for s in row["spacing"].split()] == pytest.approx(spacing, abs=1e-4)
        assert spacing[2] >= 5.0 > spacing[0]  # anisotropic: HD95 is in mm with this spacing
        for c, name in enumerate(CLASSES, start=1):
            assert float(row[f"dice_{name}"]) == pytest.approx(transunet_dice(labels, truth, c), abs=1e-5)
            assert int(row[f"fn_{name}"]) == np.logical_and(labels != c, truth == c).sum()
    # per-object metrics of the same volumes: the evaluator's counts equal a direct call on the written predictions
    from monai_imbalance.metrics import compute_object_metrics

    objects = json.loads((root / "eval" / "objects_summary.json").read_text())
    assert list(objects["classes"]) == list(CLASSES) and objects["cases"] == 2
    expected = {c: [0, 0, 0] for c in range(1, len(CLASSES) + 1)}
    for case in per_case:
        source = data / "training" / "patient001" / f"{case}.nii.gz"
        labels = np.asanyarray(nib.load(str(root / "eval" / "predictions" / f"{case}_pred.nii.gz")).dataobj)
        truth = np.rint(nib.load(str(source).replace(".nii.gz", "_gt.nii.gz")).get_fdata())
        direct = compute_object_metrics(torch.as_tensor(labels.astype(np.float32))[None, None],
                                        torch.as_tensor(truth.astype(np.float32))[None, None], num_classes=4)
        for c in expected:
            expected[c] = [a + direct[c][k] for a, k in zip(expected[c], ("tp", "fp", "fn"))]
    for c, name in enumerate(CLASSES, start=1):
        got = objects["classes"][name]
        assert [got["tp"], got["fp"], got["fn"]] == expected[c], name
        assert got["size_unit"] == "physical"
    assert "val_object_f1" in objects["metrics"] and f"val_instance_dice_{CLASSES[0]}" in objects["metrics"]
    out = root / "predictions"
    run_bundle(root, ("inference",), {"input_dir": str(data / "training" / "patient001"), "output_dir": str(out),
                                      "image_size": "[64, 64]", "num_workers": 0})
    written = sorted(p.name for p in out.iterdir())
    assert written == sorted(f"{case}_pred.nii.gz" for case in per_case)  # _gt and _4d skipped
    for case in per_case:
        a, b = nib.load(str(out / f"{case}_pred.nii.gz")), nib.load(str(root / "eval" / "predictions" /
                                                                        f"{case}_pred.nii.gz"))
        np.testing.assert_array_equal(np.asanyarray(a.dataobj), np.asanyarray(b.dataobj))
        assert a.get_data_dtype() == np.uint8


def _es_frame(root) -> int:
    from monai_imbalance.apps.acdc import read_info_cfg

    return read_info_cfg(root / "training" / "patient001" / "Info.cfg")["ES"]


@pytest.mark.parametrize("loss", sorted(LOSSES))
def test_documented_losses_run_one_iteration(loss, data, trained, tmp_path):
    root, _ = trained
    parser, losses = run_one_iteration(root, {"dataset_dir": str(data), "loss": loss, "val_interval": 5, **SMALL})
    assert len(losses) == 1 and math.isfinite(losses[0])
    loss_fn = parser.get_parsed_content("loss_function")
    loss_inputs = parser.get_parsed_content("train#trainer").loss_inputs
    if loss in ("modified_boundary", "boundary", "dbce"):  # they read maps precomputed per sample
        assert loss_inputs == ({"weight_map": "label_weight"} if loss == "dbce" else {"dist_map": "label_sdm"})
        inner = loss_fn
        if loss == "modified_boundary":
            assert isinstance(inner, ModifiedBoundaryLoss) and losses[0] <= 0  # -TP / (FP + FN): never above 0
        if loss == "boundary":  # Wu's baseline: the boundary loss alone, w = 1 and kept there
            assert isinstance(inner, RegionBoundaryLoss) and inner.rebalance and inner.boundary_weight == 1.0
        if loss == "dbce":
            assert isinstance(inner, DilatedBalancedCELoss) and inner.radius == 10
    if loss == "dice":
        assert loss_fn.squared_pred  # Wu's Eq. (4)
    if loss == "blob_dice_ce":  # Dice per component, Dice + CE on the whole slice, components after the crop
        from monai.losses import DiceCELoss, DiceLoss

        from monai_imbalance.losses import BlobLoss

        assert isinstance(loss_fn, BlobLoss) and (loss_fn.alpha, loss_fn.beta) == (2.0, 1.0)
        assert type(loss_fn.loss) is DiceLoss and isinstance(loss_fn.global_loss, DiceCELoss)
        assert loss_inputs == {"components": "label_components"}


def test_docs_list_the_tested_losses_and_metadata_is_complete():
    assert documented_losses(NAME) == LOSSES
    check_metadata(NAME, 4, ["HD95", "calculate_metric_percase", "RV = 1, MYO = 2", "ED", "ES"])
    check_conventional_ids(NAME, BUNDLES)


def test_hdf5_form_trains_and_evaluates(tmp_path, trained):
    from monai_imbalance.apps.lookalike import write_acdc_lookalike

    root, _ = trained
    h5 = write_acdc_lookalike(tmp_path / "h5", form="h5", patients=[1, 2, 3])
    parser, losses = run_one_iteration(root, {"dataset_dir": str(h5), "val_interval": 5, **SMALL})
    assert parser.get_parsed_content("train_format") == "h5" and math.isfinite(losses[0])
    evaluator = parser.get_parsed_content("validate#evaluator")
    assert parser.get_parsed_content("validate#inferer").spatial_dim == 0
    evaluator.run()
    metrics = evaluator.state.metrics
    assert {"val_mean_dice_ED", "val_mean_dice_ES", "val_hd95_LV_ES"} <= set(metrics)
    assert 0.0 <= metrics["val_mean_dice"] <= 1.0


def test_multi_gpu_config_builds(data, trained, tmp_path, monkeypatch):
    import ignite.distributed as idist
    import torch.distributed as dist
    from monai.data import DistributedSampler

    root, _ = trained
    monkeypatch.setenv("LOCAL_RANK", "0")
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'rendezvous'}", rank=0, world_size=1)
    try:
        parser = parse_bundle(root, ("train", "multi_gpu_train"), {"dataset_dir": str(data), **SMALL})
        parser.get_parsed_content("train#trainer")
        assert parser["validate#sampler"]["even_divisible"] is True  # no rank without a volume (repeats: once)
        assert isinstance(parser.get_parsed_content("network"), torch.nn.parallel.DistributedDataParallel)
        assert isinstance(parser.get_parsed_content("validate#sampler"), DistributedSampler)
        assert parser.get_parsed_content("validate#inferer").transpose  # NIfTI volumes: slices transposed
    finally:  # ignite keeps its own record of the group: reset both
        idist.finalize()
        if dist.is_initialized():
            dist.destroy_process_group()


def test_resume_continues_from_the_checkpoint(trained, data):
    from ignite.engine import Events

    root, _ = trained
    parser = parse_bundle(root, ("train",), {"dataset_dir": str(data), "epochs": 2, "resume": True,
                                             "image_size": [64, 64], "batch_size": 8, "num_workers": 0,
                                             "progress": False, "cache_rate": 0.0})
    trainer = parser.get_parsed_content("train#trainer")
    epochs = []
    trainer.add_event_handler(Events.EPOCH_STARTED, lambda e: epochs.append(e.state.epoch))
    first = torch.load(root / "models" / "checkpoint_epoch=1.pt", weights_only=True)
    trainer.run()
    assert epochs == [2]  # epoch 1 restored from checkpoint_epoch=1.pt, not run again
    second = torch.load(root / "models" / "checkpoint_epoch=2.pt", weights_only=True)
    assert second["trainer"]["iteration"] == 2 * first["trainer"]["iteration"]
    assert second["lr_scheduler"]["last_epoch"] == second["trainer"]["iteration"]  # poly decay continued
    # the best validation of epoch 1 is carried over: epoch 2 can only improve on it (BestMetricState)
    assert first["best_model"]["best_metric_epoch"] == 1
    assert second["best_model"]["best_metric"] >= first["best_model"]["best_metric"]
    assert len(second["best_model"]["saved"]) == 1


def test_count_check_override_through_the_bundle(tmp_path):
    import shutil

    from monai_imbalance.apps.checks import DatasetLayoutError
    from monai_imbalance.apps.lookalike import write_acdc_lookalike

    data = write_acdc_lookalike(tmp_path / "ACDC", form="h5", patients=[99, 38, 28, 11], h5_set="minimal")
    (data / "SYNTHETIC.txt").unlink()  # a real copy of a subset: the counts differ from SSL4MIS's
    root = tmp_path / "bundle"
    shutil.copytree(BUNDLES / NAME, root)
    parser = parse_bundle(root, ("train",), {"dataset_dir": str(data)})
    with pytest.raises(Exception) as err:  # ConfigParser wraps the error; the message names the override
        parser.get_parsed_content("sections")
    chain, cause = [], err.value
    while cause is not None:
        chain.append(cause)
        cause = cause.__cause__
    assert any(isinstance(e, DatasetLayoutError) and "--expected_count None" in str(e) for e in chain)
    parser = parse_bundle(root, ("train",), {"dataset_dir": str(data), "expected_count": None})
    sections = parser.get_parsed_content("sections")
    assert len(sections["training"]) > 0 and [v["patient"] for v in sections["test"]] == ["patient011"] * 2


@pytest.mark.parametrize("budget", ["bench_cpu", "bench_gpu"])
def test_benchmark_budgets_resolve_without_cuda(budget, tmp_path):
    """The committed budgets of the real-data benchmark parse and build every part on a CPU-only machine."""
    import shutil

    import yaml

    from monai_imbalance.apps.lookalike import write_acdc_lookalike

    data = write_acdc_lookalike(tmp_path / "ACDC", form="h5", patients=[99, 38, 28, 11], h5_set="minimal")
    root = tmp_path / "bundle"
    shutil.copytree(BUNDLES / NAME, root)
    parser = parse_bundle(root, ("train", "evaluate", budget), {"dataset_dir": str(data), "loss": "boundary"})
    settings = yaml.safe_load((root / "configs" / f"{budget}.yaml").read_text())
    assert parser.get_parsed_content("image_size") == settings["image_size"]
    trainer = parser.get_parsed_content("train#trainer")
    assert trainer.state.max_epochs == settings["epochs"] and trainer.loss_inputs == {"dist_map": "label_sdm"}
    schedule = next(h for h in parser.get_parsed_content("setup").train_handlers if hasattr(h, "weight_at"))
    # Kervadec's weight reaches 0.5 at the last epoch in both budgets
    assert schedule.weight_at(settings["epochs"]) == pytest.approx(0.5, abs=1e-3)
    network = parser.get_parsed_content("network_def")
    assert [m.out_channels for m in network.modules() if isinstance(m, torch.nn.Conv2d)][0] == \
        settings["unet_features"][0]
    assert parser.get_parsed_content("validate#evaluator") is not None
    script = (BUNDLES.parent / "benchmarks" / "acdc_gpu.sh").read_text()
    assert (f"--config bundles/acdc_seg/configs/{budget}.yaml" in script) == (budget == "bench_gpu")
