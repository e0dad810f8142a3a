"""monai-imbalance bench: intervals against a hand computation, resume, failures, a real bundle bench."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from monai_imbalance.apps.bench import (
    BenchRun,
    BundleRunner,
    confidence_interval,
    format_table,
    parse_setups,
    plot_metrics,
    read_evaluation,
    run_bench,
    summarise_runs,
)


def test_confidence_interval_by_hand():
    # two folds: mean 0.6, sd 0.141421, t(0.975, 1) = 12.7062 -> half-width 12.7062 * 0.141421 / sqrt(2) = 1.27062
    mean, half = confidence_interval([0.5, 0.7])
    assert mean == pytest.approx(0.6) and half == pytest.approx(1.27062, rel=1e-5)
    # five folds (MAC paper): t(0.975, 4) = 2.77645, sd of 1..5 = 1.58114 -> 2.77645 * 1.58114 / sqrt(5) = 1.96324
    mean, half = confidence_interval([1, 2, 3, 4, 5])
    assert mean == 3 and half == pytest.approx(1.96324, rel=1e-5)
    assert math.isnan(confidence_interval([0.4])[1])
    assert confidence_interval([0.4, float("nan"), 0.6])[0] == pytest.approx(0.5)  # NaN folds ignored


def test_parse_setups():
    assert parse_setups("NC,rc, MAC") == {"NC": {"crop": "none", "loss": "ce"}, "RC": {"crop": "random", "loss": "ce"},
                                          "MAC": {"crop": "mac", "loss": "ce"}}
    assert parse_setups("mac/dbce", losses="ce,dbce") == {"mac/dbce": {"crop": "mac", "loss": "dbce"},
                                                          "ce": {"loss": "ce"}, "dbce": {"loss": "dbce"}}
    with pytest.raises(ValueError, match="unknown setup 'XYZ'"):
        parse_setups("XYZ")
    with pytest.raises(ValueError, match="unknown loss 'dicey'"):
        parse_setups(losses="dicey")
    with pytest.raises(ValueError, match="at least one setup"):
        parse_setups()


class FakeRunner:
    """Metrics that depend on the setup and the fold, a failure on demand, and a count of runs."""

    def __init__(self, fail=()):
        self.calls = []
        self.fail = set(fail)

    def run(self, run_dir, overrides):
        self.calls.append((overrides["crop"], int(overrides["fold"])))
        if (overrides["crop"], int(overrides["fold"])) in self.fail:
            raise RuntimeError("bundle run failed (exit 1), log x.log")
        base = {"random": 0.5, "mac": 0.6}[overrides["crop"]]
        fold = int(overrides["fold"])
        return {"val_mean_dice": base + 0.1 * fold, "val_iou": base - 0.1 + 0.05 * fold, "val_oii": 0.2 - 0.3 * fold}


def test_table_rows_intervals_resume_and_failures(tmp_path):
    setups = parse_setups("RC,MAC")
    runner = FakeRunner()
    runs, summary = run_bench(runner, setups, 2, tmp_path, progress=False)
    # repetition by repetition: every setup of fold 0 before fold 1, so an interrupted bench leaves full comparisons
    assert runner.calls == [("random", 0), ("mac", 0), ("random", 1), ("mac", 1)]
    assert list(summary) == ["RC", "MAC"]
    # RC Dice folds 0.5, 0.6: mean 0.55, half-width 12.7062 * 0.0707107 / sqrt(2) = 0.635310
    assert summary["RC"]["val_mean_dice"]["mean"] == pytest.approx(0.55)
    assert summary["RC"]["val_mean_dice"]["ci"] == pytest.approx(0.635310, rel=1e-5)
    table = format_table(summary)
    lines = table.splitlines()
    assert lines[0] == "| setup | folds | Dice | IoU | OII |"
    assert lines[2].startswith("| RC | 2 | 55.0 ± 63.5 |")
    assert "**65.0 ± 63.5**" in lines[3]  # best Dice is MAC's
    assert "**0.050 ± 1.906**" in table  # OII best = closest to 0: both -0.25+... RC and MAC tie at 0.05
    assert (tmp_path / "table.md").read_text().strip() == table
    assert (tmp_path / "bench.png").is_file()
    rows = (tmp_path / "runs.csv").read_text().splitlines()
    assert rows[0].startswith("setup,fold,seed,status,seconds,val_mean_dice,val_iou,val_oii") and len(rows) == 5

    again = FakeRunner()
    runs2, summary2 = run_bench(again, setups, 3, tmp_path, progress=False)  # one more fold
    assert again.calls == [("random", 2), ("mac", 2)]  # finished runs are skipped
    assert [r.status for r in runs2].count("skipped") == 4 and summary2["RC"]["folds"] == 3

    failing = FakeRunner(fail={("mac", 1)})
    runs3, summary3 = run_bench(failing, setups, 2, tmp_path / "other", progress=False)
    assert [r.status for r in runs3] == ["done", "done", "done", "failed"]
    assert summary3["MAC"]["folds"] == 1 and summary3["MAC"]["failed"] == 1
    assert "1 (1 failed)" in format_table(summary3)


@pytest.mark.parametrize("damage", [lambda text: text[: len(text) // 2], lambda text: "", lambda text: "[1, 2]"])
def test_unreadable_result_counts_as_not_done(tmp_path, damage):
    # a run killed while writing result.json (or a damaged file): that run is redone and the bench says so, by name
    setups = parse_setups("RC,MAC")
    run_bench(FakeRunner(), setups, 2, tmp_path, progress=False, echo=lambda _: None)
    record = tmp_path / "MAC" / "fold1" / "result.json"
    record.write_text(damage(record.read_text()))
    again, said = FakeRunner(), []
    runs, summary = run_bench(again, setups, 2, tmp_path, progress=False, echo=said.append)
    assert again.calls == [("mac", 1)]
    assert [r.status for r in runs] == ["skipped", "skipped", "skipped", "done"] and summary["MAC"]["folds"] == 2
    assert any(str(record) in line and "unreadable" in line and "again" in line for line in said), said
    assert json.loads(record.read_text())["status"] == "done"

def test_read_evaluation_adds_the_object_metrics(tmp_path):
    (tmp_path / "volumetric_report.json").write_text(json.dumps({"classes": ["RV"], "summary": {"all": {
        "mean_dice": 0.5, "mean_iou": 0.4, "mean_hd95": 3.0, "dice": {"RV": 0.5}, "iou": {"RV": 0.4},
        "hd95": {"RV": 3.0}}}}))
    (tmp_path / "objects_summary.json").write_text(json.dumps({"metrics": {"val_object_f1": 0.25,
                                                                           "val_small_object_recall": None}}))
    metrics = read_evaluation(tmp_path)
    assert metrics["val_object_f1"] == 0.25 and math.isnan(metrics["val_small_object_recall"])
    assert metrics["val_mean_dice"] == 0.5
    summary = summarise_runs([BenchRun("a", None, "done", metrics=metrics)])
    # the plot keeps one axis: headline scores and OIIs, not per-class values or pixel distances
    assert plot_metrics(summary) == ["val_mean_dice", "val_mean_iou", "val_object_f1", "val_small_object_recall"]


def test_summarise_ignores_failed_runs():
    runs = [BenchRun("A", 0, "done", {"m": 1.0}), BenchRun("A", 1, "failed"), BenchRun("A", 2, "skipped", {"m": 3.0})]
    summary = summarise_runs(runs)
    assert summary["A"]["folds"] == 2 and summary["A"]["m"]["mean"] == 2.0


@pytest.fixture(scope="module")
def kvasir(tmp_path_factory):
    from monai_imbalance.apps.lookalike import write_kvasir_lookalike
    from tests.bundles import copy_bundle

    base = tmp_path_factory.mktemp("bench")
    data = write_kvasir_lookalike(base / "data", num_images=10)
    root = copy_bundle("kvasir_seg", base)
    extra = [root / "configs" / "no_oii.yaml"] if (root / "configs" / "no_oii.yaml").is_file() else []
    tiny = {"image_size": "[64, 64]", "roi_size": "[32, 32]", "crop_params#mac#stride": "8", "batch_size": "2",
            "val_batch_size": "2", "num_workers": "0", "progress": "False", "epochs": "1", "dataset_dir": str(data)}
    return base, root, extra, tiny


@pytest.mark.slow
def test_bench_through_a_real_bundle_two_setups_two_folds(kvasir):
    base, root, extra, tiny = kvasir
    runner = BundleRunner(root, tiny, in_process=True, extra_configs=extra)
    runs, summary = run_bench(runner, parse_setups("RC,MAC"), 2, base / "out", progress=False)
    assert [(r.setup, r.fold, r.status) for r in runs] == [("RC", 0, "done"), ("RC", 1, "done"),
                                                           ("MAC", 0, "done"), ("MAC", 1, "done")]
    for setup in ("RC", "MAC"):
        for key in ("val_mean_dice", "val_iou", "val_precision", "val_recall", "val_accuracy"):
            entry = summary[setup][key]
            assert all(0.0 <= v <= 1.0 for v in entry["values"]) and len(entry["values"]) == 2
            mean, half = confidence_interval(entry["values"])
            assert entry["mean"] == pytest.approx(mean) and (entry["ci"] == pytest.approx(half) or math.isnan(half))
    for run in runs:  # every run evaluated its own best checkpoint, in its own folder
        run_dir = base / "out" / run.setup / f"fold{run.fold}"
        assert (run_dir / "models" / "model.pt").is_file() and (run_dir / "eval" / "metrics.csv").is_file()
        assert json.loads((run_dir / "result.json").read_text())["overrides"]["fold"] == str(run.fold)
    # the per-object metrics reach the table under their display names
    for key in ("val_object_f1", "val_instance_dice", "val_small_object_recall"):
        assert len(summary["RC"][key]["values"]) == 2
    header = format_table(summary).splitlines()[0]
    assert "detection F1" in header and "instance Dice" in header and "small-object recall" in header


@pytest.mark.slow
def test_cli_bench_resumes_without_rerunning(kvasir, tmp_path):
    base, root, extra, tiny = kvasir
    if extra:
        pytest.skip("the OII handler is not in the package yet: the bundle cannot run unmodified")
    overrides = [x for k, v in tiny.items() for x in (f"--{k}", v)]
    cmd = [sys.executable, "-m", "monai_imbalance.cli", "bench", "--bundle", str(root), "--setups", "MAC",
           "--folds", "1", "--out", str(tmp_path), "--no-progress", "--", *overrides]
    first = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert "1 runs done, 0 skipped" in first.stdout and "| MAC | 1 |" in first.stdout
    second = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0 and "0 runs done, 1 skipped" in second.stdout
    assert first.stdout.splitlines()[-3:] == second.stdout.splitlines()[-3:]  # the same table


def test_runner_rejects_a_folder_that_is_no_bundle(tmp_path):
    with pytest.raises(FileNotFoundError, match="configs/train.yaml is missing"):
        BundleRunner(tmp_path)
    assert Path(tmp_path).is_dir()


class AlphaRunner:
    """OII falls as alpha (the FP weight) rises; records what each run was asked."""

    def __init__(self):
        self.calls = []

    def run(self, run_dir, overrides):
        params = json.loads(overrides["loss_params#dibe_dis"])
        self.calls.append(params["alpha"])
        assert overrides["loss"] == "dibe_dis" and params["beta"] == pytest.approx(1 - params["alpha"])
        assert params["lambda_"] == 0.75 and params["gamma"] == 2.0  # the paper's defaults kept
        return {"val_oii": 0.9 - params["alpha"], "val_iou": 0.5, "val_precision": 0.7, "val_mean_dice": 0.6}


def test_tune_through_a_bundle_runner_reuses_trainings(tmp_path):
    from monai_imbalance.apps.bench import bundle_alpha_evaluator
    from monai_imbalance.tuning import grid_search, oii_guided_search

    runner = AlphaRunner()
    evaluate = bundle_alpha_evaluator(runner, "dibe_dis", tmp_path)
    guided = oii_guided_search(evaluate, (0.3, 0.4), 0.1, 0.9, max_steps=5)
    # OII 0.4 at alpha 0.5 is not inside (0.3, 0.4): too many FN -> lower alpha... OII = 0.9 - alpha rises: 0.3 -> 0.6
    assert [r["alpha"] for r in guided.trace] == runner.calls
    assert guided.trace[0]["pa"] == 0.7 and guided.trace[0]["iou"] == 0.5  # the paper's names for the metrics
    trained = len(runner.calls)
    grid = grid_search(evaluate, (0.3, 0.4), 0.1, 0.9, k=4)
    assert len(grid.trace) == 5
    new = runner.calls[trained:]
    assert set(new).isdisjoint(runner.calls[:trained])  # alphas trained by the guided search were reused
    with pytest.raises(ValueError, match="has no alpha/beta to tune"):
        bundle_alpha_evaluator(runner, "dbce", tmp_path)


def test_tune_one_real_bundle_run(kvasir):
    from monai_imbalance.apps.bench import bundle_alpha_evaluator

    base, root, extra, tiny = kvasir
    if extra:
        pytest.skip("the OII handler is not in the package yet")
    evaluate = bundle_alpha_evaluator(BundleRunner(root, tiny, in_process=True), "dibe_dis", base / "tune")
    metrics = evaluate(0.3)
    assert -1.0 <= metrics["oii"] <= 1.0 and 0.0 <= metrics["iou"] <= 1.0 and metrics["pa"] == metrics["val_precision"]
    saved = json.loads((base / "tune" / "alpha_0.3" / "result.json").read_text())
    assert json.loads(saved["overrides"]["loss_params#dibe_dis"])["beta"] == pytest.approx(0.7)


@pytest.mark.parametrize("damage", ['{"overrides": {"loss": "dibe_dis"', "", "[1, 2]"])
def test_tune_retrains_an_unreadable_result_and_says_so(tmp_path, caplog, damage):
    import logging

    from monai_imbalance.apps.bench import bundle_alpha_evaluator

    runner = AlphaRunner()
    evaluate = bundle_alpha_evaluator(runner, "dibe_dis", tmp_path)
    first = evaluate(0.3)
    record = tmp_path / "alpha_0.3" / "result.json"
    assert evaluate(0.3) == first and runner.calls == [0.3]  # a readable result is reused
    record.write_text(damage)  # a kill while it was written (before the write became atomic)
    with caplog.at_level(logging.WARNING, logger="monai_imbalance.apps.bench"):
        assert evaluate(0.3) == first
    assert runner.calls == [0.3, 0.3]
    assert str(record) in caplog.text and "unreadable" in caplog.text and "again" in caplog.text
    assert json.loads(record.read_text())["metrics"]["val_oii"] == pytest.approx(0.6)  # rewritten whole
