"""ObjectMetricHandler: engine metrics, the per-object table and summaries, case names, DDP gathering."""

from __future__ import annotations

import csv
import json
import math
import sys

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from ignite.engine import Engine

from monai_imbalance.handlers import ObjectMetricHandler


def _cases():
    """Two label maps (1, 12, 12), classes 1 and 2, with hand-known matches.

    A: class 1 two objects (a 3x3 block found exactly, a one-pixel object missed); class 2 one 2x2 object found
       exactly plus one spurious predicted pixel.
    B: class 1 the 3x3 block predicted shifted by one row (IoU 6/12 = 0.5: matched, Dice 2/3); class 2 nothing.
    """
    truth = torch.zeros(2, 1, 12, 12)
    pred = torch.zeros(2, 1, 12, 12)
    truth[0, 0, 0:3, 0:3] = 1
    truth[0, 0, 10, 10] = 1
    truth[0, 0, 6:8, 0:2] = 2
    pred[0, 0, 0:3, 0:3] = 1
    pred[0, 0, 6:8, 0:2] = 2
    pred[0, 0, 11, 5] = 2
    truth[1, 0, 0:3, 0:3] = 1
    pred[1, 0, 1:4, 0:3] = 1
    return pred, truth


def _engine(batches, **kwargs):
    engine = Engine(lambda e, b: b)
    handler = ObjectMetricHandler(num_classes=3, output_transform=lambda out: ([o["pred"] for o in out],
                                                                              [o["label"] for o in out]), **kwargs)
    handler.attach(engine, "val_object_f1")
    engine.run(batches)
    return engine, handler


def test_handler_metrics_table_and_summary(tmp_path):
    pred, truth = _cases()
    batches = [[{"pred": pred[i], "label": truth[i], "id": name}] for i, name in ((0, "A"), (1, "B"))]
    engine, handler = _engine(batches, class_names=["organ", "lesion"], save_dir=tmp_path, size_bins=[1])
    m = engine.state.metrics
    # organ: tp 2 (A block, B shifted block), fn 1 (the pixel), fp 0 -> F1 0.8; lesion: tp 1, fp 1 -> F1 2/3
    assert m["val_object_f1_organ"] == pytest.approx(0.8) and m["val_object_f1_lesion"] == pytest.approx(2 / 3)
    assert m["val_object_f1"] == pytest.approx((0.8 + 2 / 3) / 2)
    assert m["val_instance_dice_organ"] == pytest.approx((1 + 2 / 3 + 0) / 3)
    assert m["val_small_object_recall_organ"] == 0.0 and m["val_fp_objects"] == 1.0
    assert math.isnan(m["val_small_object_recall_lesion"])  # lesion: one 4-pixel object, the bin "<= 1" is empty
    assert handler.summary[2]["bin_objects"] == [0, 1]
    with open(tmp_path / "objects_table.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 8  # A: organ 2 true + 1 predicted, lesion 1 true + 2 predicted; B: organ 1 + 1
    missed = [r for r in rows if r["case"] == "A" and r["class"] == "organ" and r["kind"] == "true"
              and r["matched"] == "0"]
    assert len(missed) == 1 and missed[0]["size_voxels"] == "1" and missed[0]["size_bin"] == "0"
    shifted = [r for r in rows if r["case"] == "B" and r["kind"] == "true"]
    assert float(shifted[0]["iou"]) == pytest.approx(0.5) and float(shifted[0]["dice"]) == pytest.approx(2 / 3)
    report = json.loads((tmp_path / "objects_summary.json").read_text())
    assert report["classes"]["organ"]["fn"] == 1 and report["metrics"]["val_object_f1"] == pytest.approx(0.7333333)
    assert report["cases"] == 2
    with open(tmp_path / "objects_summary.csv") as f:
        assert [r["class"] for r in csv.DictReader(f)] == ["organ", "lesion"]
    engine.run(batches[:1])  # a second run starts afresh
    assert engine.state.metrics["val_object_f1_organ"] == pytest.approx(2 / 3)


def test_handler_counts_padded_repeats_once_and_names_cases(monkeypatch):
    import monai_imbalance.handlers.objects as module

    pred, truth = _cases()
    batches = [[{"pred": pred[i], "label": truth[i], "id": name}] for i, name in ((0, "A"), (1, "B"), (0, "A"))]
    monkeypatch.setattr(module, "world_size", lambda: 2)  # as under DDP with a padded sampler: the second A a pad
    engine, handler = _engine(batches)
    assert handler.summary[1]["cases"] == 2 and handler.summary[1]["tp"] == 2
    monkeypatch.setattr(module, "world_size", lambda: 1)  # one process: every case counts
    engine, handler = _engine(batches)
    assert handler.summary[1]["cases"] == 3 and handler.summary[1]["tp"] == 3


def test_handler_warns_on_nan_predictions(caplog):
    pred, truth = _cases()
    bad = pred.clone()
    bad[0, 0, 5, 5] = float("nan")
    batches = [[{"pred": bad[0], "label": truth[0]}], [{"pred": pred[1], "label": truth[1]}]]
    with caplog.at_level("WARNING"):
        engine, handler = _engine(batches)
    assert handler.summary[1]["nan_cases"] == 1 and handler.summary[1]["cases"] == 1
    assert "NaN" in caplog.text


def _ddp_worker(rank, world, init_file, batches, out_dir):
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    _engine(batches[rank::world], save_dir=out_dir)
    dist.destroy_process_group()


@pytest.mark.skipif(not sys.platform.startswith("linux") or not dist.is_available(), reason="fork + gloo (Linux)")
def test_handler_under_ddp_gathers_cases_once(tmp_path):
    pred, truth = _cases()
    # rank 0 gets A, A(pad); rank 1 gets B: the table must hold A and B once each
    batches = [[{"pred": pred[i], "label": truth[i], "id": name}] for i, name in ((0, "A"), (1, "B"), (0, "A"))]
    mp.start_processes(_ddp_worker, args=(2, str(tmp_path / "init"), batches, str(tmp_path)), nprocs=2, join=True,
                       start_method="fork")
    report = json.loads((tmp_path / "objects_summary.json").read_text())
    assert report["cases"] == 2 and report["classes"]["class_1"]["tp"] == 2
    with open(tmp_path / "objects_table.csv") as f:
        cases = {r["case"] for r in csv.DictReader(f)}
    assert cases == {"A", "B"}
