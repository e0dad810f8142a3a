"""The model-zoo tools on the four bundles: ``ConfigWorkflow.check_properties`` for train, evaluate and inference;
``--tracking mlflow`` for train and evaluate; the shared parts rendered from ``bundles/_shared``; the resolved setup
written into the run; rank-0 logging under a 2-process ``torchrun`` on CPU (gloo), also for
``multi_gpu_evaluate.yaml``; and the ACDC inference default that follows the prepared split."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.bundles import BUNDLES, config_files, copy_bundle, override_args, parse_bundle

NAMES = ["kvasir_seg", "isic2018_seg", "synapse_seg", "acdc_seg"]
# every bundle rendered from bundles/_shared (generic_seg's own zoo checks are in test_generic_bundle.py)
RENDERED = [*NAMES, "generic_seg"]
TINY = {
    "kvasir_seg": {"image_size": [64, 64], "roi_size": [32, 32], "crop_params#mac#stride": 8, "batch_size": 2,
                   "val_batch_size": 2},
    "isic2018_seg": {"image_size": [64, 64], "roi_size": [32, 32], "batch_size": 2, "val_batch_size": 2},
    "synapse_seg": {"image_size": [32, 32], "batch_size": 2, "num_val_cases": 1, "val_slice_batch": 8},
    "acdc_seg": {"image_size": [32, 32], "batch_size": 4, "val_slice_batch": 8},
}
COMMON = {"num_workers": 0, "progress": False, "epochs": 1}


def _render_module():
    spec = importlib.util.spec_from_file_location("render_shared", BUNDLES / "render_shared.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    from monai_imbalance.apps import lookalike

    base = tmp_path_factory.mktemp("zoo_data")
    return {
        "kvasir_seg": lookalike.write_kvasir_lookalike(base / "kvasir", num_images=6),
        "isic2018_seg": lookalike.write_isic_lookalike(base / "isic", num_training=4, num_validation=2, num_test=2),
        "synapse_seg": lookalike.write_synapse_lookalike(base / "synapse", train_cases=("0005", "0006"),
                                                         test_cases=("0001",)),
        "acdc_seg": lookalike.write_acdc_lookalike(base / "acdc", patients=[1, 2, 3, 4]),
    }


def _workflow(root: Path, names: tuple[str, ...], workflow_type: str, overrides: dict):
    from monai.bundle import ConfigWorkflow

    workflow = ConfigWorkflow(config_file=config_files(root, *names), meta_file=str(root / "configs" / "metadata.json"),
                              workflow_type=workflow_type, bundle_root=str(root), **overrides)
    workflow.initialize()
    return workflow


# ------------------------------------------------------------------------------------- check_properties
@pytest.mark.parametrize("name", NAMES)
def test_check_properties_finds_nothing_missing(name, datasets, tmp_path):
    root = copy_bundle(name, tmp_path)
    overrides = {"dataset_dir": str(datasets[name]), **COMMON, **TINY[name]}
    train = _workflow(root, ("train",), "train", overrides)
    assert train.check_properties() == []
    # the ValidationHandler among train#handlers is what check_properties reads the evaluator and interval from
    assert any(h["_target_"] == "ValidationHandler" for h in train.parser["train#handlers"])
    evaluate = _workflow(root, ("train", "evaluate"), "eval", overrides)
    assert evaluate.check_properties() == []
    assert evaluate.parser.get_parsed_content("evaluator") is evaluate.parser.get_parsed_content("validate#evaluator")
    infer = _workflow(root, ("inference",), "infer", {"dataset_dir": str(datasets[name]), "num_workers": 0})
    assert infer.check_properties() == []


@pytest.mark.parametrize("name", NAMES)
def test_handler_lists_are_lists_of_definitions(name, tmp_path):
    """What --tracking mlflow appends to, in every configuration the bundle runs."""
    for configs, key in ((("train",), "train#handlers"), (("train",), "validate#handlers"),
                         (("train", "evaluate"), "handlers")):
        parser = parse_bundle(BUNDLES / name, configs, {"dataset_dir": str(tmp_path)})
        assert isinstance(parser[key], list) and all(isinstance(h, dict) and "_target_" in h for h in parser[key])
    evaluate = parse_bundle(BUNDLES / name, ("train", "evaluate"), {"dataset_dir": str(tmp_path)})
    assert evaluate["validate#evaluator#val_handlers"] == "$@handlers + @log_handlers"


# ------------------------------------------------------------------------------------------------ MLflow
def test_mlflow_tracking_records_train_and_evaluate_runs(datasets, tmp_path):
    pytest.importorskip("mlflow")
    pytest.importorskip("sqlalchemy")
    import monai.bundle
    from mlflow import MlflowClient

    root = copy_bundle("kvasir_seg", tmp_path)
    uri = "sqlite:///" + str(tmp_path / "mlruns.db")
    overrides = {"dataset_dir": str(datasets["kvasir_seg"]), **COMMON, **TINY["kvasir_seg"], "epochs": 2}
    monai.bundle.run(config_file=config_files(root, "train"), bundle_root=str(root), tracking="mlflow",
                     tracking_uri=uri, experiment_name="train_exp", **overrides)
    monai.bundle.run(config_file=config_files(root, "train", "evaluate"), bundle_root=str(root), tracking="mlflow",
                     tracking_uri=uri, experiment_name="eval_exp", **overrides)
    client = MlflowClient(tracking_uri=uri)
    runs = {}
    for name in ("train_exp", "eval_exp"):
        experiment = client.get_experiment_by_name(name)
        assert experiment is not None, name
        found = client.search_runs([experiment.experiment_id])
        assert len(found) == 1, name
        runs[name] = found[0]
    train = runs["train_exp"]
    assert train.info.status == "FINISHED"
    assert {"train_loss", "val_mean_dice", "val_oii", "lr_group_0"} <= set(train.data.metrics)
    # the per-iteration loss of every iteration (2 epochs x 2 batches of 2 of the 4 training images)
    history = client.get_metric_history(train.info.run_id, "train_loss")
    assert [m.step for m in history] == [1, 2, 3, 4] and all(m.value > 0 for m in history)
    evaluation = runs["eval_exp"]
    assert evaluation.info.status == "FINISHED"
    metrics = evaluation.data.metrics
    assert {"val_mean_dice", "val_iou", "val_object_f1"} <= set(metrics)
    with open(root / "eval" / "metrics.csv") as f:
        saved = dict(line.strip().split(",") for line in f if line.strip())
    assert metrics["val_mean_dice"] == pytest.approx(float(saved["val_mean_dice"]), abs=1e-4)


def test_the_trainer_gives_mlflow_the_loss_of_a_batch_dict(tmp_path):
    import torch
    from monai.handlers import MLFlowHandler, from_engine

    from monai_imbalance.engines.trainer import _read_batch_loss
    from monai_imbalance.handlers.utils import trainer_loss

    loss = torch.tensor(0.25)
    assert isinstance(from_engine(["loss"], first=True)({"loss": loss}), tuple)  # what MLflow cannot log
    handler = MLFlowHandler(tracking_uri="sqlite:///" + str(tmp_path / "unused.db"),
                            output_transform=from_engine(["loss"], first=True))
    _read_batch_loss(handler)
    assert handler.output_transform({"loss": loss, "pred": None}) is loss
    assert trainer_loss([{"loss": loss}, {"loss": loss}]) is loss and trainer_loss(None) is None


# ------------------------------------------------------------------------------------ shared definitions
def test_bundles_equal_their_rendering_from_shared():
    render = _render_module()
    stale = [p for p, text in render.rendered_files().items() if p.read_text() != text]
    assert not stale, f"run python bundles/render_shared.py: {stale}"
    blocks = {p.stem for p in (BUNDLES / "_shared").glob("*.yaml")}
    common = {"paths", "runtime", "train_data", "train_engine", "validate_engine"}
    # the 2-D bundles also share their loading, validation post-processing and metrics; the volumetric ones their
    # validation loader
    groups = {"kvasir_seg": {"load_2d", "validate_loading_2d", "validate_post_2d", "validate_metrics_2d"},
              "isic2018_seg": {"load_2d", "validate_loading_2d", "validate_post_2d", "validate_metrics_2d"},
              "synapse_seg": {"validate_dataloader_3d"}, "acdc_seg": {"validate_dataloader_3d"},
              "generic_seg": {"validate_dataloader_3d", "validate_metrics_2d"}}
    for name in RENDERED:
        _, used = render.render((BUNDLES / name / "configs" / "train.yaml").read_text())
        assert len(used) == len(set(used)) and set(used) == common | groups[name], name
        blocks -= set(used)
        _, used = render.render((BUNDLES / name / "configs" / "multi_gpu_train.yaml").read_text())
        assert used == ["multi_gpu_train"], name
        blocks -= set(used)
        assert (BUNDLES / name / "configs" / "logging.conf").read_bytes() == \
            (BUNDLES / "_shared" / "logging.conf").read_bytes()
    assert blocks == set(), f"shared blocks no bundle uses: {blocks}"


def test_render_replaces_a_stale_part_and_names_an_unclosed_one():
    render = _render_module()
    stale = "\n".join(["a: 1", render.begin_marker("runtime"), "seed: 99", render.end_marker("runtime"), "b: 2"])
    text, used = render.render(stale)
    assert used == ["runtime"] and "seed: 99" not in text and "seed: 0" in text
    assert text.startswith("a: 1\n") and text.endswith("\nb: 2")
    indented = render.render("train:\n" + render.begin_marker("train_engine", "  ") + "\n"
                             + render.end_marker("train_engine", "  "))[0]
    assert "\n  log_handlers:\n" in indented and "\n  trainer:\n" in indented
    with pytest.raises(ValueError, match="no line .* closes it"):
        render.render(render.begin_marker("runtime") + "\nseed: 0\n", "x.yaml")
    with pytest.raises(FileNotFoundError, match="nope"):
        render.render(render.begin_marker("nope") + "\n" + render.end_marker("nope"))


def test_the_check_mode_reports_a_hand_edited_bundle(tmp_path, monkeypatch):
    render = _render_module()
    copy = tmp_path / "bundles"
    for name in RENDERED:
        copy_bundle(name, copy)
    (copy / "_shared").mkdir()
    for f in (BUNDLES / "_shared").iterdir():
        (copy / "_shared" / f.name).write_bytes(f.read_bytes())
    monkeypatch.setattr(render, "BUNDLES", copy)
    monkeypatch.setattr(render, "SHARED", copy / "_shared")
    monkeypatch.chdir(tmp_path)
    assert render.main(["--check"]) == 0
    train = copy / "acdc_seg" / "configs" / "train.yaml"
    train.write_text(train.read_text().replace("cache_rate: 1.0", "cache_rate: 0.5"))
    assert render.main(["--check"]) == 1 and "cache_rate: 0.5" in train.read_text()
    assert render.main([]) == 0 and "cache_rate: 0.5" not in train.read_text()


# -------------------------------------------------------------------------------- the record of a run
def test_the_resolved_setup_is_written_into_the_run_and_logged(tmp_path):
    from ignite.engine import Engine

    from monai_imbalance.engines import SegmentationSetup
    from monai_imbalance.handlers import RecordSetup

    setup = SegmentationSetup(loss="dbce", crop="mac", out_channels=1, roi_size=(32, 32),
                              loss_params={"dbce": {"radius": 7}}, crop_params={"mac": {"rho": 0.3}})
    engine = Engine(lambda e, b: None)
    RecordSetup(setup, tmp_path / "models", extra={"epochs": 3}).attach(engine)
    engine.run([0], max_epochs=1)
    record = json.loads((tmp_path / "models" / "setup.json").read_text())
    assert record["loss"] == {"name": "dbce", "params": {"radius": 7}}
    assert record["crop"]["name"] == "mac" and record["crop"]["params"]["rho"] == 0.3
    assert record["loss_function"]["class"] == "monai_imbalance.losses.balanced_ce.DilatedBalancedCELoss"
    assert record["loss_function"]["radius"] == 7 and record["loss_function"]["sigmoid"] is True
    assert [t["class"].rsplit(".", 1)[1] for t in record["precompute_transforms"] + record["crop_transforms"]
            + record["map_transforms"]] == ["MaskAwareWindowsd", "RandMaskAwareCropd", "DilationWeightMapd"]
    assert record["precompute_transforms"][0]["finder"]["rho"] == [0.3]
    assert record["loss_inputs"] == {"weight_map": "label_weight"} and record["run"] == {"epochs": 3}


def test_a_compound_loss_is_described_with_its_parts_and_class_weights():
    from monai_imbalance.engines import SegmentationSetup

    record = SegmentationSetup(loss="balanced_ce", out_channels=3).describe()
    assert record["loss_function"]["class"].endswith("BalancedCELoss")
    record = SegmentationSetup(loss="dibe", out_channels=4, deep_supervision=True).describe()
    wrapper = record["loss_function"]
    assert wrapper["class"].endswith("DeepSupervisionLoss") and wrapper["target_mode"] == "max"
    assert wrapper["loss"]["class"].endswith("dibe.DIBELoss")
    assert wrapper["loss"]["dis"]["gamma"] == 2.0 and wrapper["loss"]["reg"]["gamma"] == 1.5
    json.dumps(record)  # plain JSON values only


def test_record_setup_rejects_what_it_cannot_describe(tmp_path):
    from monai_imbalance.handlers import RecordSetup

    with pytest.raises(TypeError, match="describe"):
        RecordSetup(object(), tmp_path)


@pytest.mark.parametrize("name", NAMES)
def test_every_bundle_records_its_setup(name, tmp_path):
    parser = parse_bundle(BUNDLES / name, ("train",), {"dataset_dir": str(tmp_path)})
    records = [h for h in parser["train#log_handlers"] if h["_target_"] == "monai_imbalance.handlers.RecordSetup"]
    assert len(records) == 1 and records[0]["save_dir"] == "@ckpt_dir" and records[0]["setup"] == "@setup"


# ---------------------------------------------------------------------------------- rank-0 logging (DDP)
def _torchrun(root: Path, names: tuple[str, ...], overrides: dict) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nnodes=1", "--nproc_per_node=2", "-m",
           "monai.bundle", "run", "--config_file", repr(config_files(root, *names)), "--bundle_root", str(root)]
    cmd += override_args(overrides)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run(cmd, cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=400)
    assert proc.returncode == 0, proc.stdout[-6000:]
    return proc


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="torchrun with gloo on Linux")
def test_two_processes_log_each_event_once_and_evaluate_together(datasets, tmp_path):
    root = copy_bundle("kvasir_seg", tmp_path)
    overrides = {"dataset_dir": str(datasets["kvasir_seg"]), **COMMON, **TINY["kvasir_seg"]}
    log = _torchrun(root, ("train", "multi_gpu_train"), overrides).stdout
    # one line per event: the engines' info lines and the metrics come from rank 0 only
    assert len(re.findall(r"SupervisedTrainerWithLossInputs - INFO - Engine run resuming", log)) == 1
    assert len(re.findall(r"SupervisedEvaluator - INFO - Engine run resuming", log)) == 1
    assert len(re.findall(r"Epoch\[1\] Metrics -- val_", log)) == 1
    assert len(re.findall(r"setup written to", log)) == 1
    # TensorBoard: the trainer's and the validation's event files, both from one process (rank 0)
    events = list((root / "logs").glob("events.out.tfevents.*"))
    assert len(events) == 2 and len({p.name.split(".")[4] for p in events}) == 1
    assert (root / "models" / "setup.json").is_file()
    dice = float(re.search(r"Epoch\[1\] Metrics -- .*val_mean_dice: ([\d.]+)", log).group(1))
    # the distributed evaluation of model.pt: each process a share of the images, one summary, same Dice
    log = _torchrun(root, ("train", "evaluate", "multi_gpu_evaluate"), overrides).stdout
    assert len(re.findall(r"SupervisedEvaluator - INFO - Engine run resuming", log)) == 1
    with open(root / "eval" / "metrics.csv") as f:
        saved = dict(line.strip().split(",") for line in f if line.strip())
    assert float(saved["val_mean_dice"]) == pytest.approx(dice, abs=1e-4)
    rows = (root / "eval" / "val_mean_dice_raw.csv").read_text().strip().splitlines()
    assert len(rows) == 1 + 2  # header + the 2 validation images, each once


@pytest.mark.parametrize("name", NAMES)
def test_multi_gpu_evaluate_shares_the_evaluation_out(name, tmp_path):
    parser = parse_bundle(BUNDLES / name, ("train", "evaluate", "multi_gpu_evaluate"), {"dataset_dir": str(tmp_path)})
    assert parser["validate#sampler"]["_target_"] == "DistributedSampler"
    assert parser["validate#dataloader#sampler"] == "@validate#sampler"
    assert parser["validate#sampler"]["even_divisible"] is (name in ("synapse_seg", "acdc_seg"))
    assert "@log_handlers if torch.distributed.get_rank() == 0" in parser["validate#evaluator#val_handlers"]
    assert "$monai_imbalance.handlers.quiet_other_ranks()" in parser["initialize"]
    assert parser["run"] == ["$@evaluator.run()"]


def test_quiet_other_ranks_drops_info_lines_of_ranks_above_zero(monkeypatch):
    import logging

    from monai_imbalance.handlers import quiet_other_ranks
    from monai_imbalance.handlers import utils as handler_utils

    root = logging.getLogger()
    handler = logging.Handler()
    records = []
    handler.emit = records.append
    root.addHandler(handler)
    try:
        assert quiet_other_ranks() is False  # rank 0 (no process group)
        monkeypatch.setattr(handler_utils, "process_rank", lambda: 1)
        assert quiet_other_ranks() is True and quiet_other_ranks() is True  # one filter, however often called
        assert sum(isinstance(f, handler_utils._BelowLevelDropped) for f in handler.filters) == 1
        logger = logging.getLogger("ignite.engine.engine.SupervisedTrainer")
        logger.setLevel(logging.INFO)
        logger.info("Engine run starting")
        logger.warning("something to know")
        assert [r.getMessage() for r in records] == ["something to know"]
        with pytest.raises(ValueError, match="level"):
            quiet_other_ranks("LOUD")
    finally:
        root.removeHandler(handler)


def test_handler_group_attaches_each_and_rejects_non_handlers():
    from ignite.engine import Engine, Events

    from monai_imbalance.handlers import HandlerGroup

    calls = []

    class Handler:
        def __init__(self, tag):
            self.tag = tag

        def attach(self, engine):
            engine.add_event_handler(Events.STARTED, lambda e: calls.append(self.tag))

    engine = Engine(lambda e, b: None)
    HandlerGroup([Handler("a"), Handler("b")]).attach(engine)
    HandlerGroup().attach(engine)
    engine.run([0], max_epochs=1)
    assert calls == ["a", "b"]
    with pytest.raises(TypeError, match="attach"):
        HandlerGroup([object()])


# ------------------------------------------------------------------------------------ ACDC inference input
def test_acdc_inference_defaults_to_the_test_patients_of_the_split(datasets, tmp_path):
    data = datasets["acdc_seg"]
    assert not (data / "testing").exists()  # SSL4MIS's split: the test patients lie in training/
    parser = parse_bundle(BUNDLES / "acdc_seg", ("inference",), {"dataset_dir": str(data)})
    items = parser.get_parsed_content("datalist")
    train = parse_bundle(BUNDLES / "acdc_seg", ("train",), {"dataset_dir": str(data)})
    test = train.get_parsed_content("sections")["test"]
    assert [i["image"] for i in items] == [t["image"] for t in test] and items
    assert all(set(i) == {"image", "id"} for i in items)
    # an explicit input_dir still wins
    folder = data / "training" / "patient003"
    parser = parse_bundle(BUNDLES / "acdc_seg", ("inference",), {"dataset_dir": str(data), "input_dir": str(folder)})
    assert {Path(i["image"]).parent for i in parser.get_parsed_content("datalist")} == {folder}


def test_inference_items_names_an_empty_section(tmp_path):
    from monai_imbalance.engines import inference_items

    with pytest.raises(ValueError, match="section must be one of"):
        inference_items("acdc", tmp_path, section="testing")
