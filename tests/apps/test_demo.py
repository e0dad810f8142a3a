"""monai-imbalance demo on a budget of seconds: the table, the files, the metrics against their counts."""

from __future__ import annotations

import json

import numpy as np
import pytest

from monai_imbalance.apps.demo import DEMO_SETUPS, choose_rho, pooled_metrics
from monai_imbalance.cli import main


def test_pooled_metrics_by_hand():
    # TP 6, FP 2, FN 4, TN 88: Dice 12/18, IoU 6/12, precision 6/8, recall 6/10, accuracy 94/100
    m = pooled_metrics(6, 2, 4, 88)
    assert m["dice"] == pytest.approx(2 / 3) and m["iou"] == pytest.approx(0.5)
    assert m["precision"] == pytest.approx(0.75) and m["recall"] == pytest.approx(0.6)
    assert m["accuracy"] == pytest.approx(0.94)
    assert 0 < m["oii"] < 1  # more FN than FP: under-segmentation is positive
    empty = pooled_metrics(0, 0, 0, 50)  # nothing to find, nothing found
    assert empty["dice"] == empty["recall"] == 1.0 and empty["oii"] == 0.0


def test_choose_rho_keeps_three_quarters_croppable():
    labels = []
    for size in (4, 6, 8, 10):  # squares of 16..100 pixels in a 32x32 image; windows of 16x16
        lab = np.zeros((1, 32, 32), dtype=np.uint8)
        lab[0, :size, :size] = 1
        labels.append(lab)
    rho, kept = choose_rho(labels, roi_size=16, stride=8)
    # best shares: 16/256, 36/256, 64/256, 100/256 = 0.06, 0.14, 0.25, 0.39: rho 0.1 keeps 3 of 4
    assert rho == pytest.approx(0.1) and kept == pytest.approx(0.75)


def test_demo_quick_end_to_end(tmp_path, capsys):
    assert main(["demo", "--quick", "--out", str(tmp_path), "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "SYNTHETIC" in text
    assert [line.split("  ")[0].strip() for line in text.splitlines() if line[:3] in ("RC ", "MAC")][:4] == [
        name for name, _, _ in DEMO_SETUPS
    ]
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["synthetic"] is True and len(saved["results"]) == 4
    for result in saved["results"]:
        c = result["counts"]
        assert sum(c.values()) == 3 * 64 * 64  # three validation images of the quick budget
        expected = pooled_metrics(c["tp"], c["fp"], c["fn"], c["tn"])
        assert result["metrics"] == pytest.approx(expected)
        assert len(result["curve"]) == 1  # one epoch
        assert (result["mac_rate"] is None) == (result["crop"] != "mac")
    assert (tmp_path / "demo.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_demo_rejects_bad_settings(tmp_path, capsys):
    assert main(["demo", "--quick", "--epochs", "0", "--out", str(tmp_path)]) == 1
    assert "--epochs must be >= 1" in capsys.readouterr().err
