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
        objects = result["objects"]  # the object counts of the final model beside the pixel counts
        assert {"small_recall", "object_f1", "tp", "fp", "fn", "size_bins"} <= set(objects)
        if objects["tp"] + objects["fp"] + objects["fn"]:
            f1 = 2 * objects["tp"] / (2 * objects["tp"] + objects["fp"] + objects["fn"])
            assert objects["object_f1"] == pytest.approx(f1)
        if c["tp"] + c["fp"] == 0:  # nothing predicted: no object found either
            assert objects["tp"] == 0 and objects["fp"] == 0
    header = next(line for line in text.splitlines() if line.startswith("setup"))
    assert header.split()[:4] == ["setup", "Dice", "small", "rec."]
    assert "1 epoch x 3 steps per setup" in text and "1 epochs" not in text  # the quick budget: one epoch
    rows = [line for line in text.splitlines() if line[:3] in ("RC ", "MAC") and "realised" not in line][:4]
    for column in range(8):  # a mark on every row of a column would say nothing
        assert not all(row[12 + 11 * column:23 + 11 * column].endswith(("*", "=")) for row in rows)
    assert (tmp_path / "demo.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_demo_rejects_bad_settings(tmp_path, capsys):
    assert main(["demo", "--quick", "--epochs", "0", "--out", str(tmp_path)]) == 1
    assert "--epochs must be >= 1" in capsys.readouterr().err


def _table(results):
    return [(r.name, r.metrics, r.counts, r.curve) for r in results]


@pytest.mark.slow
def test_a_seeded_run_repeats_exactly_and_leaves_torch_settings_as_they_were(tmp_path):
    import torch

    from monai_imbalance.apps.demo import DemoSettings, run_demo

    settings = DemoSettings.tiny(epochs=2, num_train=4, num_val=2)
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # the caller's thread count must not change the result: the demo fixes its own
    try:
        first = run_demo(tmp_path / "a", settings, progress=False, echo=lambda line: None)
        assert torch.get_num_threads() == 1 and not torch.are_deterministic_algorithms_enabled()
    finally:
        torch.set_num_threads(before)
    second = run_demo(tmp_path / "b", settings, progress=False, echo=lambda line: None)
    assert _table(first) == _table(second)  # identical, not approximately equal
    other = run_demo(tmp_path / "c", DemoSettings.tiny(epochs=2, num_train=4, num_val=2, seed=1), progress=False,
                     echo=lambda line: None)
    assert _table(other) != _table(first)  # the seed matters: the comparison above could fail


def test_demo_over_seeds_prints_and_saves_the_spread(tmp_path, capsys):
    assert main(["demo", "--quick", "--seeds", "0", "1", "--out", str(tmp_path), "--no-progress"]) == 0
    text = capsys.readouterr().out
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["seeds"] == [0, 1] and summary["synthetic"] is True
    for k in (0, 1):
        saved = json.loads((tmp_path / f"seed_{k}" / "results.json").read_text())
        assert saved["settings"]["seed"] == k
        for result in saved["results"]:
            assert summary["dice"][result["name"]][k] == result["metrics"]["dice"]
    rows = {line[:12].strip(): line[12:].split() for line in text.splitlines() if line[:3] in ("RC ", "MAC")}
    dice = np.array(summary["dice"]["MAC + DBCE"]) * 100
    assert [float(v) for v in rows["MAC + DBCE"][:3]] == pytest.approx([*dice, dice.mean()], abs=0.051)


@pytest.mark.parametrize("device, message", [("tpu", "unknown device 'tpu'"), ("cuda:7", "device 'cuda:7'"),
                                             ("meta", "not supported by the demo")])
def test_demo_rejects_a_device_it_cannot_use(tmp_path, capsys, device, message):
    import torch

    if device.startswith("cuda") and torch.cuda.device_count() > 7:
        pytest.skip("this machine has a cuda:7")
    assert main(["demo", "--quick", "--device", device, "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "results.json").exists()


def test_ctrl_c_during_the_demo_ends_with_one_message_and_status_130(tmp_path, capsys, monkeypatch):
    from monai_imbalance.apps import demo

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(demo, "_evaluate", interrupted)  # the first end of an epoch, inside the ignite trainer
    assert main(["demo", "--quick", "--no-progress", "--out", str(tmp_path)]) == 130
    err = capsys.readouterr().err
    assert "interrupted" in err and "Traceback" not in err


def test_demo_settings_reject_impossible_budgets():
    from monai_imbalance.apps.demo import DemoSettings

    with pytest.raises(ValueError, match="roi_size 64 is larger than image_size 32"):
        DemoSettings(image_size=32)
    with pytest.raises(ValueError, match="num_threads must be a positive integer"):
        DemoSettings(num_threads=0)
    with pytest.raises(ValueError, match="epochs must be a positive integer"):
        DemoSettings(epochs=0)


def _fake_result(name, crop, loss, dice=0.0, oii=1.0, accuracy=0.97, epochs=1, curve=None):
    from monai_imbalance.apps.demo import SetupResult

    metrics = {"dice": dice, "iou": dice, "precision": dice, "recall": dice, "accuracy": accuracy, "oii": oii}
    if curve is None:
        curve = [{"epoch": e, "dice": dice, "oii": oii} for e in range(1, epochs + 1)]
    return SetupResult(name, crop, loss, metrics, {}, curve, objects={"small_recall": dice, "object_f1": dice})


def _table_rows(text):
    return {line[:12].strip(): line[12:] for line in text.splitlines() if line[:3] in ("RC ", "MAC")}


def test_plural_says_1_epoch():
    from monai_imbalance.apps.demo import _plural

    assert [_plural(n, "epoch") for n in (0, 1, 2)] == ["0 epochs", "1 epoch", "2 epochs"]


def test_table_marks_nothing_when_every_setup_ties():
    from monai_imbalance.apps.demo import format_table

    text = format_table([_fake_result(*setup) for setup in DEMO_SETUPS])  # the quick run: all 0%, OII +1
    assert all("*" not in row and "=" not in row for row in _table_rows(text).values())
    assert text.splitlines()[-1] == "(all 4 setups tie on every column: no best to mark)"


def test_table_marks_a_unique_best_with_a_star_and_a_shared_best_as_tied():
    from monai_imbalance.apps.demo import format_table

    # Dice: MAC + DBCE alone best; accuracy 97.04 and 97.01 print alike (97.0) and tie for best; OII: closest to 0
    results = [_fake_result("RC + CE", "random", "ce", dice=0.40, oii=0.999, accuracy=0.9704),
               _fake_result("MAC + CE", "mac", "ce", dice=0.50, oii=-0.5, accuracy=0.9701),
               _fake_result("RC + DBCE", "random", "dbce", dice=0.60, oii=0.9, accuracy=0.95),
               _fake_result("MAC + DBCE", "mac", "dbce", dice=0.80, oii=0.6, accuracy=0.96)]
    text = format_table(results)
    rows = {name: row.split() for name, row in _table_rows(text).items()}
    assert [rows[name][0] for name in rows] == ["40.0", "50.0", "60.0", "80.0*"]
    assert [rows[name][6] for name in rows] == ["97.0=", "97.0=", "95.0", "96.0"]
    assert [rows[name][7] for name in rows] == ["+0.999", "-0.500*", "+0.900", "+0.600"]
    assert "no best to mark" not in text


@pytest.fixture(scope="module")
def quick_data():
    from monai_imbalance.apps.demo import DemoSettings, _make_data, _showcase

    settings = DemoSettings.tiny()
    train, val = _make_data(settings)
    return settings, train, _showcase(val)[1]


def _axes(fig, label):
    found = [ax for ax in fig.axes if ax.get_label() == label]
    assert len(found) == 1, f"no single axes labelled {label!r}: {[ax.get_label() for ax in fig.axes]}"
    return found[0]


def test_figure_of_four_coinciding_setups_says_so_on_a_fixed_range(quick_data, tmp_path):
    from monai_imbalance.apps.demo import plot_demo

    settings, train, val_sample = quick_data
    results = [_fake_result(*setup) for setup in DEMO_SETUPS]  # one epoch, all at Dice 0 and OII +1
    truth = val_sample["label"][0] > 0
    fig = plot_demo(settings, train, val_sample, results, {r.name: np.zeros_like(truth) for r in results}, 0.05)
    oii, dice = _axes(fig, "oii"), _axes(fig, "dice")
    assert oii.get_ylim() == pytest.approx((-1.05, 1.05)) and dice.get_ylim() == pytest.approx((-0.05, 1.05))
    for ax, last in ((oii, "+1.00"), (dice, "0.0%")):
        low, high = ax.get_xlim()
        assert low <= 0.5 and high >= 1.5  # one epoch: not matplotlib's 0.96-1.04 around it
        assert [t.get_text() for t in ax.get_legend().get_texts()] == [f"{name}: {last}" for name, _, _ in DEMO_SETUPS]
        lines = [line for line in ax.get_lines() if not line.get_label().startswith("_")]
        assert len({(line.get_marker(), line.get_linestyle(), line.get_color()) for line in lines}) == 4
        assert len({float(line.get_xdata()[0]) for line in lines}) == 4  # offset: the four points do not overlap
        assert any(t.get_text() == f"all four at {last}" for t in ax.texts)
    assert any(list(line.get_ydata()) == [0, 0] for line in oii.get_lines())  # the reference line: 0 = balanced
    shown = _axes(fig, "input").get_images()[0].get_array()
    np.testing.assert_array_equal(shown, val_sample["image"][0])  # the input itself, beside truth and predictions
    assert "ground truth" in _axes(fig, "truth").get_title()
    for name, _, _ in DEMO_SETUPS:
        assert _axes(fig, f"pred:{name}").get_title().startswith(f"{name}\nnothing predicted")
    title = fig.get_suptitle()
    assert "SYNTHETIC" in title and "1 epoch x 3 steps" in title and "No setup predicts any foreground" in title
    fig.savefig(tmp_path / "demo.png", dpi=40)  # Agg, no pyplot
    assert (tmp_path / "demo.png").read_bytes()[:4] == b"\x89PNG"


def test_figure_of_differing_setups_claims_no_coincidence(quick_data):
    from monai_imbalance.apps.demo import plot_demo

    settings, train, val_sample = quick_data
    truth = val_sample["label"][0] > 0
    results = [_fake_result(name, crop, loss, curve=[{"epoch": e, "dice": 0.1 * e * (k + 1), "oii": 1 - 0.2 * e * k}
                                                      for e in (1, 2, 3)])
               for k, (name, crop, loss) in enumerate(DEMO_SETUPS)]
    fig = plot_demo(settings, train, val_sample, results, {r.name: truth for r in results}, 0.05)
    oii = _axes(fig, "oii")
    assert not any("all four" in t.get_text() for t in [*oii.texts, *_axes(fig, "dice").texts])
    assert oii.get_ylim() == pytest.approx((-1.05, 1.05))
    assert [t.get_text() for t in oii.get_xticklabels()] == ["1", "2", "3"]
    title = _axes(fig, "pred:MAC + DBCE").get_title()
    assert title == f"MAC + DBCE\nthis image: Dice 100.0%\nTP {truth.sum()}, FP 0, FN 0 px"
    assert "No setup predicts" not in fig.get_suptitle()
