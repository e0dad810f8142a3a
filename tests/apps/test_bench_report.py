"""The volumetric bench report: paired differences, intervals and small-structure measures against hand
computations on a fixed small table; one tiny ACDC bench end to end on a look-alike."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from monai_imbalance.apps.bench import BenchRun, BundleRunner, paired_differences, run_bench
from monai_imbalance.apps.bench_report import bench_report, format_report, write_report

T_975_2 = 4.302652729911275  # Student t, 0.975 quantile, 2 degrees of freedom (3 seeds)


def _record(missed_first_small: bool) -> dict:
    """Four slices of one class (RV) in two cases, ED and ES: true areas 10, 2, 8, 4."""
    counts = np.array([[[10, 10, 10]], [[2, 2, 2]], [[8, 8, 8]], [[4, 4, 4]]], dtype=np.int64)
    if missed_first_small:
        counts[1] = [2, 0, 0]  # the area-2 slice missed entirely
    return {"counts": counts, "cases": np.array(["a", "a", "b", "b"]), "groups": np.array(["ED", "ED", "ES", "ES"]),
            "class_names": ["RV"]}


def _runs():
    # Dice of the baseline over 3 seeds: 0.80, 0.82, 0.84; of "new": 0.83, 0.86, 0.84 -> differences 0.03 0.04 0
    base = [BenchRun("dice_ce", None, "done", {"val_dice_RV": v, "val_mean_dice": v}, {}, seed=s)
            for s, v in enumerate([0.80, 0.82, 0.84])]
    new = [BenchRun("new", None, "done", {"val_dice_RV": v, "val_mean_dice": v}, {}, seed=s)
           for s, v in enumerate([0.83, 0.86, 0.84])]
    return base + new


def test_paired_differences_by_hand():
    diffs = paired_differences(_runs(), "dice_ce", ["val_dice_RV"])
    entry = diffs["new"]["val_dice_RV"]
    assert entry["values"] == pytest.approx([0.03, 0.04, 0.0])
    mean, sd = 0.07 / 3, math.sqrt(((0.03 - 0.07 / 3) ** 2 + (0.04 - 0.07 / 3) ** 2 + (0.07 / 3) ** 2) / 2)
    assert entry["mean"] == pytest.approx(mean)
    assert entry["ci"] == pytest.approx(T_975_2 * sd / math.sqrt(3))
    assert entry["pairs"] == [(None, 0), (None, 1), (None, 2)]
    # a run missing on one side drops its pair
    runs = [r for r in _runs() if not (r.setup == "new" and r.seed == 2)]
    assert paired_differences(runs, "dice_ce", ["val_dice_RV"])["new"]["val_dice_RV"]["values"] == pytest.approx(
        [0.03, 0.04])
    with pytest.raises(ValueError, match="baseline 'ce' has no finished run"):
        paired_differences(_runs(), "ce")


def test_small_structure_measures_and_report_files(tmp_path):
    runs = _runs()
    # the baseline misses the small slice of seed 0 only; "new" never misses
    slices = {(r.setup, r.fold, r.seed): _record(r.setup == "dice_ce" and r.seed == 0) for r in runs}
    content = write_report(runs, slices, tmp_path, baseline="dice_ce", percentile=50, title="hand")
    # median of the true areas 10, 2, 8, 4 is 6: the small slices are the ones of area 2 and 4
    assert content["small_area_thresholds"] == {"RV": 6.0} and content["slices"] == 4 and content["cases"] == 2
    base0 = next(r for r in runs if r.setup == "dice_ce" and r.seed == 0)
    assert base0.metrics["val_small_dice_RV"] == pytest.approx(0.5)  # slices of area 2 (missed: 0) and 4 (1)
    assert base0.metrics["val_missed_share_RV"] == pytest.approx(0.25)
    assert base0.metrics["val_missed_small_share_RV"] == pytest.approx(0.5)
    assert base0.metrics["val_small_dice_RV_ED"] == pytest.approx(0.0)  # ED holds the missed area-2 slice
    assert base0.metrics["val_small_dice_RV_ES"] == pytest.approx(1.0)
    diff = content["paired_differences"]["new"]["val_small_dice_RV"]
    assert diff["values"] == pytest.approx([0.5, 0.0, 0.0]) and diff["mean"] == pytest.approx(1 / 6)
    markdown = (tmp_path / "report.md").read_text()
    assert "| new | 3 | 84.3 ± " in markdown  # Dice mean of 0.83, 0.86, 0.84 in percent
    assert "Paired differences against dice_ce" in markdown and "+2.3 ± " in markdown  # 0.07 / 3 in points
    rows = (tmp_path / "report.csv").read_text().splitlines()
    assert len(rows) == 7 and rows[0].startswith("setup,fold,seed,seconds")
    assert (tmp_path / "dice.png").stat().st_size > 0 and (tmp_path / "report.json").is_file()
    assert json.loads((tmp_path / "report.json").read_text())["baseline"] == "dice_ce"


def test_runs_on_different_slices_are_refused(tmp_path):
    runs = _runs()
    slices = {(r.setup, r.fold, r.seed): _record(False) for r in runs}
    slices[("new", None, 1)]["counts"][0, 0, 0] = 11  # another true area: another evaluation set
    with pytest.raises(ValueError, match="different slices"):
        write_report(runs, slices, tmp_path)


def test_format_report_shows_missing_values_as_dashes():
    runs = [BenchRun("a", None, "done", {"val_dice_RV": float("nan")}, {}, seed=0)]
    text = format_report(runs, ["RV"], ["ED"], baseline=None)
    assert "| a | 1 | - |" in text


@pytest.mark.slow
def test_tiny_acdc_bench_with_seeds_and_small_structures(tmp_path):
    from monai_imbalance.apps.lookalike import write_acdc_lookalike
    from tests.bundles import copy_bundle

    # SSL4MIS's lists: 099 and 038 training, 028 validation, 011 test; flat slices like the public copies
    data = write_acdc_lookalike(tmp_path / "data" / "ACDC", form="h5", patients=[99, 38, 28, 11], seed=1,
                                h5_set="minimal")
    bundle = copy_bundle("acdc_seg", tmp_path / "bundle")
    out = tmp_path / "bench"
    runner = BundleRunner(bundle, {"dataset_dir": str(data), "epochs": 1, "image_size": [32, 32],
                                   "unet_features": [4, 8, 16, 32, 64], "batch_size": 4, "num_workers": 0,
                                   "progress": False, "cache_rate": 0.0},
                          in_process=True)
    setups = {"ce": {"loss": "ce"}, "dice_ce": {"loss": "dice_ce"}}
    runs, summary = run_bench(runner, setups, None, out, progress=False, seeds=2)
    assert [(r.setup, r.seed, r.status) for r in runs] == [("ce", 0, "done"), ("ce", 1, "done"),
                                                           ("dice_ce", 0, "done"), ("dice_ce", 1, "done")]
    assert summary["ce"]["folds"] == 2 and (out / "ce" / "seed1" / "result.json").is_file()
    again, _ = run_bench(runner, setups, None, out, progress=False, seeds=2, train=False)
    assert [r.status for r in again] == ["skipped"] * 4
    content = bench_report(runner, again, out, baseline="dice_ce")
    assert content["classes"] == ["RV", "MYO", "LV"] and content["groups"] == ["ED", "ES"]
    cached = out / "ce" / "seed0" / "eval" / "slices.npz"
    assert cached.is_file()
    counts = np.load(cached)["counts"]
    # the slices counted are those of the test volumes of the look-alike, each class's true area from the labels
    assert counts.ndim == 3 and counts.shape[1:] == (3, 3) and counts[..., 0].sum() > 0
    for r in again:
        assert 0.0 <= r.metrics["val_missed_share_mean"] <= 1.0
    assert (out / "report.md").read_text().count("| ce | 2 |") >= 6
