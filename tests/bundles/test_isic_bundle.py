"""The ISIC 2018 bundle end to end on the ISIC look-alike, as a user runs it (``python -m monai.bundle run``):
the DBCE paper's default (ResNet34 U-Net with deep supervision, DBCE, augmentation) trains, evaluates on the test
folder and infers; other losses and crops train one epoch in-process."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest
import torch
from ignite.engine import Events
from PIL import Image

from monai_imbalance.losses import DeepSupervisionLoss
from tests.bundles import copy_bundle, parse_bundle, run_bundle
from tests.bundles.test_kvasir_bundle import check_metrics, epoch_metrics

TINY = {"image_size": "[64, 64]", "roi_size": "[32, 32]", "batch_size": 2, "val_batch_size": 2, "num_workers": 0,
        "progress": False}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    from monai_imbalance.apps.lookalike import write_isic_lookalike

    return write_isic_lookalike(tmp_path_factory.mktemp("isic_data"), num_training=4, num_validation=2, num_test=2)


@pytest.fixture(scope="module")
def trained(data, tmp_path_factory):
    root = copy_bundle("isic2018_seg", tmp_path_factory.mktemp("bundle"))
    proc = run_bundle(root, ("train",), {"dataset_dir": str(data), "epochs": 1, **TINY})
    return root, proc.stdout


def test_train_one_epoch_with_the_paper_default(trained):
    root, log = trained
    assert "Epoch: 1/1, Iter: 2/2" in log
    check_metrics(epoch_metrics(log, 1))
    assert (root / "models" / "model.pt").is_file() and (root / "models" / "checkpoint_epoch=1.pt").is_file()
    state = torch.load(root / "models" / "checkpoint_epoch=1.pt", weights_only=True)
    assert state["lr_scheduler"]["total_iters"] == 2 and state["lr_scheduler"]["last_epoch"] == 2  # poly, per step
    cache = list((root / "cache").glob("longest1024_jpg/images/*.jpg"))
    assert len(cache) == 8  # the resized copies of every subset


def test_evaluate_on_the_test_folder_and_infer(trained, data):
    root, _ = trained
    run_bundle(root, ("train", "evaluate"), {"dataset_dir": str(data), **TINY})
    metrics = {k: float(v) for k, v in csv.reader(open(root / "eval" / "metrics.csv"))}
    check_metrics(metrics)
    with open(root / "eval" / "val_recall_raw.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 and all("ISIC_" in r["filename"] for r in rows)
    assert {"val_object_f1", "val_instance_dice", "val_small_object_recall"} <= set(metrics)
    with open(root / "eval" / "objects_table.csv") as f:
        assert all(r["case"].startswith("ISIC_") and r["class"] == "lesion" for r in csv.DictReader(f))
    out = root / "predictions"
    run_bundle(root, ("inference",), {"dataset_dir": str(data), "output_dir": str(out), "image_size": "[64, 64]",
                                      "num_workers": 0, "output_ext": ".png", "output_postfix": "_segmentation"})
    inputs = sorted((data / "ISIC2018_Task1-2_Test_Input").glob("*.jpg"))
    assert len(inputs) == 2
    for image in inputs:
        with Image.open(out / f"{image.stem}_segmentation.png") as m, Image.open(image) as i:
            assert m.format == "PNG" and m.size == i.size and set(np.unique(np.asarray(m)).tolist()) <= {0, 255}


@pytest.mark.parametrize("loss, crop", [("ce", "none"), ("dice_ce", "none"), ("uncertainty_ce", "none"),
                                        ("balanced_ce", "mac")])
@pytest.mark.slow
def test_setups_train_in_process(loss, crop, data, tmp_path):
    root = copy_bundle("isic2018_seg", tmp_path)
    overrides = {"dataset_dir": str(data), "loss": loss, "crop": crop, "epochs": 1, "image_size": [64, 64],
                 "roi_size": [32, 32], "crop_params#mac#stride": 8, "batch_size": 2, "val_batch_size": 2,
                 "num_workers": 0, "progress": False, "cache_dir": str(tmp_path / "cache")}
    parser = parse_bundle(root, ("train",), overrides)
    trainer = parser.get_parsed_content("train#trainer")
    assert isinstance(parser.get_parsed_content("loss_function"), DeepSupervisionLoss)
    losses = []
    trainer.add_event_handler(Events.ITERATION_COMPLETED,
                              lambda e: losses.append(float(e.state.output["loss"].detach())))
    trainer.run()
    assert len(losses) == 2 and all(math.isfinite(v) for v in losses)
    assert 0 <= parser.get_parsed_content("validate#evaluator").state.metrics["val_mean_dice"] <= 1
