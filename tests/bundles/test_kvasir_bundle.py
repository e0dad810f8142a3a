"""The Kvasir-SEG bundle end to end on the Kvasir-SEG and CVC-ClinicDB look-alikes, as a user runs it
(``python -m monai.bundle run``): train, evaluate (Kvasir fold and ClinicDB external test), infer, resume, torchrun;
and every crop (plus the map-reading losses) for one epoch in-process."""

from __future__ import annotations

import csv
import json
import math
import re
from pathlib import Path

import pytest
import torch
from ignite.engine import Events
from PIL import Image

from tests.bundles import copy_bundle, oii_available, parse_bundle, run_bundle

TINY = {"image_size": "[64, 64]", "roi_size": "[32, 32]", "crop_params#mac#stride": 8, "batch_size": 2,
        "val_batch_size": 2, "num_workers": 0, "progress": False}


def epoch_metrics(log: str, epoch: int) -> dict[str, float]:
    """The evaluator's ``Epoch[n] Metrics -- name: value ...`` line of ``epoch`` (last one wins)."""
    found = {}
    for line in re.findall(rf"Epoch\[{epoch}\] Metrics -- (.*)", log):
        found.update({k: float(v) for k, v in re.findall(r"(\w+): ([-\d.naif]+)", line)})
    return found


def check_metrics(metrics: dict[str, float]) -> None:
    for key in ("val_mean_dice", "val_iou", "val_precision", "val_recall", "val_accuracy"):
        assert 0.0 <= metrics[key] <= 1.0, (key, metrics)
    assert metrics["val_iou"] <= metrics["val_mean_dice"] + 1e-6  # IoU <= Dice per image
    if oii_available():
        assert -1.0 <= metrics["val_oii"] <= 1.0


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    from monai_imbalance.apps.lookalike import write_clinicdb_lookalike, write_kvasir_lookalike

    base = tmp_path_factory.mktemp("kvasir_data")
    return {"kvasir": write_kvasir_lookalike(base, num_images=10), "clinicdb": write_clinicdb_lookalike(base, 4)}


@pytest.fixture(scope="module")
def trained(data, tmp_path_factory):
    root = copy_bundle("kvasir_seg", tmp_path_factory.mktemp("bundle"))
    proc = run_bundle(root, ("train",), {"dataset_dir": str(data["kvasir"]), "epochs": 2, **TINY})
    return root, proc.stdout


def test_train_two_epochs(trained):
    root, log = trained
    assert "Epoch: 2/2" in log and "Epoch: 3/" not in log
    for epoch in (1, 2):
        check_metrics(epoch_metrics(log, epoch))
    assert "images_per_second" in log
    models = sorted(p.name for p in (root / "models").iterdir())
    assert models == ["checkpoint_epoch=2.pt", "checkpoint_final.pt", "model.pt", "setup.json"]
    state = torch.load(root / "models" / "checkpoint_epoch=2.pt", weights_only=True)
    assert set(state) == {"model", "optimizer", "lr_scheduler", "trainer", "best_model"}
    # the best validation so far travels with the trainer checkpoint (BestMetricState), with model.pt's score
    best = max(epoch_metrics(log, e)["val_mean_dice"] for e in (1, 2))
    assert state["best_model"]["best_metric"] == pytest.approx(best, abs=1e-4)
    assert [p for p, _ in state["best_model"]["saved"]] == [pytest.approx(best, abs=1e-4)]
    assert state["trainer"]["iteration"] == 8  # 2 epochs x 4 batches
    assert list((root / "logs").glob("events.out.tfevents.*"))  # TensorBoard


@pytest.mark.skipif(not oii_available(), reason="monai_imbalance.handlers.OutputImbalanceIndex is not "
                    "in the installed package: the bundles' val_oii metric is removed from these runs without it")
def test_oii_logged_every_validation(trained):
    _, log = trained
    assert all("val_oii" in epoch_metrics(log, e) for e in (1, 2))


def _raw_rows(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def test_evaluate_on_the_fold_and_on_clinicdb(trained, data):
    root, _ = trained
    run_bundle(root, ("train", "evaluate"), {"dataset_dir": str(data["kvasir"]), **TINY})
    summary = dict(row for row in csv.reader(open(root / "eval" / "metrics.csv")))
    metrics = {k: float(v) for k, v in summary.items()}
    check_metrics(metrics)
    for name in ("val_mean_dice", "val_iou", "val_precision", "val_recall", "val_accuracy"):
        rows = _raw_rows(root / "eval" / f"{name}_raw.csv")
        assert len(rows) == 2  # fold 0 of 5 holds 2 of the 10 images
        values = [float(r["mean"]) for r in rows]
        assert all(0 <= v <= 1 for v in values if not math.isnan(v))
        assert math.isclose(sum(values) / len(values), metrics[name], rel_tol=1e-4)
    # per-object metrics beside them: the summary's counts are those of the per-object table
    for name in ("val_object_f1", "val_object_precision", "val_object_recall", "val_instance_dice",
                 "val_small_object_recall", "val_object_oii", "val_fp_objects"):
        assert name in metrics, name
    with open(root / "eval" / "objects_table.csv") as f:
        table = list(csv.DictReader(f))
    objects = json.loads((root / "eval" / "objects_summary.json").read_text())["classes"]["polyp"]
    true_rows = [r for r in table if r["kind"] == "true"]
    assert len(true_rows) == objects["true_objects"] and sum(r["matched"] == "1" for r in true_rows) == objects["tp"]
    assert sum(r["kind"] == "pred" and r["matched"] == "0" for r in table) == objects["fp"] == metrics["val_fp_objects"]
    assert {r["case"] for r in table} <= {Path(r["filename"]).name.split(".")[0] for r in
                                          _raw_rows(root / "eval" / "val_mean_dice_raw.csv")}
    out = root / "clinicdb_eval"
    run_bundle(root, ("train", "evaluate"), {"dataset_dir": str(data["kvasir"]), "eval_dataset": "clinicdb",
                                             "eval_dataset_dir": str(data["clinicdb"]), "output_dir": str(out),
                                             "save_predictions": True, **TINY})
    rows = _raw_rows(out / "val_mean_dice_raw.csv")
    assert len(rows) == 4 and all(r["filename"].endswith(".tif") for r in rows)
    assert len(list((out / "predictions").glob("*_mask.png"))) == 4


def test_inference_writes_masks_in_the_input_format_and_size(trained, data):
    root, _ = trained
    out = root / "predictions"
    run_bundle(root, ("inference",), {"dataset_dir": str(data["kvasir"]), "output_dir": str(out),
                                      "image_size": "[64, 64]", "num_workers": 0})
    images = sorted((data["kvasir"] / "images").glob("*.jpg"))
    assert len(images) == 10
    sizes = set()
    for image in images:
        mask = out / f"{image.stem}_mask.jpg"
        with Image.open(mask) as m, Image.open(image) as i:
            assert m.format == "JPEG" and m.mode == "L" and m.size == i.size
            sizes.add(i.size)
    assert len(sizes) > 1  # the look-alike's sizes vary, so the inverted resize is checked per image


def test_resume_continues_from_the_checkpoint(trained, data):
    root, first_log = trained
    proc = run_bundle(root, ("train",), {"dataset_dir": str(data["kvasir"]), "epochs": 3, "resume": True, **TINY})
    assert "resumed from" in proc.stdout and "checkpoint_epoch=2.pt" in proc.stdout
    assert "Epoch: 3/3" in proc.stdout and "Epoch: 1/3" not in proc.stdout and "Epoch: 2/3" not in proc.stdout
    assert (root / "models" / "checkpoint_epoch=3.pt").is_file()
    state = torch.load(root / "models" / "checkpoint_epoch=3.pt", weights_only=True)
    assert state["trainer"]["iteration"] == 12
    # the best of all three epochs, not only of the epoch after the restart
    scores = [epoch_metrics(first_log, e)["val_mean_dice"] for e in (1, 2)]
    scores.append(epoch_metrics(proc.stdout, 3)["val_mean_dice"])
    assert state["best_model"]["best_metric"] == pytest.approx(max(scores), abs=1e-4)


@pytest.mark.slow
def test_multi_gpu_config_runs_under_torchrun(data, tmp_path):
    root = copy_bundle("kvasir_seg", tmp_path)
    proc = run_bundle(root, ("train", "multi_gpu_train"), {"dataset_dir": str(data["kvasir"]), "epochs": 1, **TINY},
                      torchrun=True)
    assert "Epoch: 1/1" in proc.stdout
    check_metrics(epoch_metrics(proc.stdout, 1))
    assert (root / "models" / "model.pt").is_file()


@pytest.mark.parametrize(
    "crop, loss", [("none", "ce"), ("random", "ce"), ("probabilistic", "ce"), ("mac", "balanced_ce"),
                   ("mac", "dbce"), ("random", "boundary"), ("mac", "blob_dice")]
)
def test_setups_train_in_process(crop, loss, data, tmp_path):
    root = copy_bundle("kvasir_seg", tmp_path)
    overrides = {"dataset_dir": str(data["kvasir"]), "crop": crop, "loss": loss, "epochs": 1,
                 "image_size": [64, 64], "roi_size": [32, 32], "crop_params#mac#stride": 8, "batch_size": 4,
                 "val_batch_size": 2, "num_workers": 0, "progress": False}
    parser = parse_bundle(root, ("train",), overrides)
    parser.get_parsed_content("initialize")  # set_determinism and the cuDNN flags
    trainer = parser.get_parsed_content("train#trainer")
    setup = parser.get_parsed_content("setup")
    assert (setup.crop_name, setup.loss_name) == (crop, loss)
    losses = []
    trainer.add_event_handler(Events.ITERATION_COMPLETED,
                              lambda e: losses.append(float(e.state.output["loss"].detach())))
    trainer.run()
    assert trainer.state.epoch == 1 and len(losses) == 2 and all(math.isfinite(v) for v in losses)
    metrics = parser.get_parsed_content("validate#evaluator").state.metrics
    assert 0 <= metrics["val_mean_dice"] <= 1
    if loss == "blob_dice":  # the components of each crop, labelled after the crop, reach the loss
        from monai_imbalance.losses import BlobLoss

        assert isinstance(parser.get_parsed_content("loss_function"), BlobLoss)
        assert trainer.loss_inputs == {"components": "label_components"}
        batch = trainer.state.batch
        assert batch["label_components"].shape == batch["label"].shape
        assert bool(((batch["label_components"] > 0) == (batch["label"] > 0)).all())
