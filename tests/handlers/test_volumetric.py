"""The volumetric metrics handler in an engine: per-class and per-group metrics logged, the report files written,
and cases repeated by a padded distributed sampler counted once."""

from __future__ import annotations

import csv
import json

import pytest
import torch
from ignite.engine import Engine
from monai.data import MetaTensor

from monai_imbalance.handlers import VolumetricMetrics


def test_handler_in_an_engine_logs_and_writes(tmp_path, volume_cases, volume_spacing):
    pred, truth = volume_cases()
    affine = torch.diag(torch.tensor([*volume_spacing, 1.0], dtype=torch.float64))
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


def test_handler_counts_cases_repeated_by_a_padded_distributed_sampler_once(monkeypatch, volume_cases):
    import monai_imbalance.handlers.volumetric as module

    pred, truth = volume_cases()
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
