"""What every bundle shares: the model-zoo file set, complete metadata, the conventional IDs, and the bundle
machinery (datalists, per-image metrics, mask writer, resume, progress and NaN handlers)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from ignite.engine import Engine, Events
from PIL import Image

from monai_imbalance.engines import dataset_sections, image_items, require_items_per_rank
from monai_imbalance.handlers import (
    PerImageConfusionMatrix,
    ResumeFromCheckpoint,
    TerminateOnNan,
    ThroughputLogger,
    TrainerCheckpointSaver,
    latest_checkpoint,
)
from tests.bundles import BUNDLES, parse_bundle

NAMES = ["kvasir_seg", "isic2018_seg"]
FILES = ["configs/train.yaml", "configs/evaluate.yaml", "configs/inference.yaml", "configs/multi_gpu_train.yaml",
         "configs/metadata.json", "configs/logging.conf", "docs/README.md", "LICENSE"]


@pytest.mark.parametrize("name", NAMES)
def test_model_zoo_file_set(name):
    missing = [f for f in FILES if not (BUNDLES / name / f).is_file()]
    assert not missing


@pytest.mark.parametrize("name", NAMES)
def test_metadata_complete(name):
    meta = json.loads((BUNDLES / name / "configs" / "metadata.json").read_text())
    for key in ("version", "changelog", "monai_version", "pytorch_version", "numpy_version", "name", "description",
                "network_data_format", "datasets", "references"):
        assert meta.get(key), key
    assert meta["version"] in meta["changelog"] and meta["changelog"][meta["version"]].strip()
    for dataset, info in meta["datasets"].items():
        for key in ("source", "licence", "reference", "layout"):
            assert info.get(key), (dataset, key)
    assert meta["network_data_format"]["inputs"]["image"]["num_channels"] == 3
    readme = (BUNDLES / name / "docs" / "README.md").read_text()
    for dataset in meta["datasets"]:
        assert dataset in readme
    assert "licen" in readme.lower() and meta["version"] in readme


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("configs", [("train",), ("train", "evaluate"), ("train", "multi_gpu_train")])
def test_configs_parse_with_conventional_ids(name, configs, tmp_path):
    parser = parse_bundle(BUNDLES / name, configs, {"dataset_dir": str(tmp_path)})
    for key in ("bundle_root", "device", "dataset_dir", "train#trainer", "train#dataset", "train#inferer",
                "validate#evaluator", "crop", "loss", "fold", "amp", "cudnn_benchmark", "resume"):
        assert key in parser, key
    assert parser.get_parsed_content("device").type in ("cpu", "cuda")
    if "multi_gpu_train" in configs:
        assert parser["network"]["_target_"] == "torch.nn.parallel.DistributedDataParallel"
        assert parser["train#sampler"]["_target_"] == "DistributedSampler"
        # uneven validation shares: a rank without any image would hang the others, so initialize checks it
        assert not parser["validate#sampler"]["even_divisible"]
        text = (BUNDLES / name / "configs" / "multi_gpu_train.yaml").read_text()
        assert "- \"$monai_imbalance.engines.require_items_per_rank(@validate#dataset, 'validation')\"" in text


def test_require_items_per_rank():
    assert require_items_per_rank([1, 2, 3], "validation", world_size=3) == 3
    assert require_items_per_rank([1], "validation") == 1  # no process group: one process
    with pytest.raises(ValueError, match="validation split has 2 item.* for 4 processes"):
        require_items_per_rank([1, 2], "validation", world_size=4)
    with pytest.raises(ValueError, match="validation split has 0 item"):
        require_items_per_rank([], "validation")
    with pytest.raises(ValueError, match="world_size"):
        require_items_per_rank([1], "validation", world_size=0)


@pytest.mark.parametrize("name", NAMES)
def test_inference_config_stands_alone(name, tmp_path):
    parser = parse_bundle(BUNDLES / name, ("inference",), {"dataset_dir": str(tmp_path)})
    for key in ("bundle_root", "device", "dataset_dir", "network_def", "evaluator", "input_dir", "output_dir"):
        assert key in parser
    assert "train" not in parser.config


def test_dataset_sections_from_layouts_and_datalist(tmp_path):
    from monai_imbalance.apps import prepare_kvasir
    from monai_imbalance.apps.lookalike import write_clinicdb_lookalike, write_isic_lookalike, write_kvasir_lookalike

    kvasir = write_kvasir_lookalike(tmp_path / "k", num_images=10)
    folds = [dataset_sections("kvasir", kvasir, fold=k, num_folds=5) for k in range(5)]
    assert all(len(f["training"]) == 8 and len(f["validation"]) == 2 for f in folds)
    assert len({i["id"] for f in folds for i in f["validation"]}) == 10  # the folds partition the images
    pranet = dataset_sections("kvasir", kvasir, split="pranet")
    assert len(pranet["test"]) == 1 and len(pranet["training"]) == 9
    from_json = dataset_sections("kvasir", None, datalist=prepare_kvasir(kvasir, split="kfold", fold=2))
    assert [i["id"] for i in from_json["validation"]] == [i["id"] for i in folds[2]["validation"]]
    clinic = dataset_sections("clinicdb", write_clinicdb_lookalike(tmp_path / "c", num_images=4))
    assert len(clinic["test"]) == 4 and clinic["test"][0]["image"].endswith(".tif")
    isic_root = write_isic_lookalike(tmp_path / "i", num_training=4, num_validation=2, num_test=2)
    isic = dataset_sections("isic2018", isic_root, resized_cache=48, cache_dir=tmp_path / "cache")
    assert [len(isic[s]) for s in ("training", "validation", "test")] == [4, 2, 2]
    with Image.open(isic["training"][0]["image"]) as img:
        assert max(img.size) == 48  # the resized copy
    with pytest.raises(ValueError, match="isic2018"):
        dataset_sections("kvasir2", kvasir)
    items = image_items(isic_root / "ISIC2018_Task1-2_Test_Input")
    assert len(items) == 2 and all(i["image"].endswith(".jpg") for i in items)  # LICENSE.txt skipped
    with pytest.raises(FileNotFoundError):
        image_items(tmp_path / "nothing")


@pytest.mark.parametrize("suffix", [".jpg", ".png", ".tif"])
def test_mask_writer_keeps_the_input_axes_and_format(tmp_path, suffix):
    from monai.transforms import LoadImaged

    from monai_imbalance.apps.loaders import LoadBinaryMaskd
    from monai_imbalance.engines import SaveMaskLikeInputd

    mask = np.zeros((30, 47), dtype=np.uint8)  # H x W, not square, not symmetric
    mask[3:12, 5:40] = 255
    mask[20:28, 2:6] = 255
    src = tmp_path / f"frame{suffix}"
    Image.fromarray(np.repeat(mask[..., None], 3, -1)).save(src, **({"quality": 100} if suffix == ".jpg" else {}))
    data = LoadImaged("image", image_only=True, ensure_channel_first=True)({"image": str(src)})
    data["pred"] = LoadBinaryMaskd("label")({"label": str(src)})["label"].float()
    out = SaveMaskLikeInputd("pred", tmp_path / "out", meta_source_key="image")(data)
    with Image.open(out["pred_path"]) as saved:
        assert saved.size == (47, 30) and out["pred_path"].endswith(f"frame_mask{suffix}")
        np.testing.assert_array_equal(np.asarray(saved) > 127, mask > 127)


def test_per_image_confusion_matrix_details():
    engine = Engine(lambda e, b: b)
    handler = PerImageConfusionMatrix(metric_name="precision", output_transform=lambda x: x)
    handler.attach(engine, "val_precision")
    pred = torch.zeros(2, 1, 4, 4)
    label = torch.zeros(2, 1, 4, 4)
    pred[0, 0, :2] = 1  # 8 predicted, 4 true
    label[0, 0, 0] = 1
    pred[1, 0, 0] = 1  # 4 predicted, all true
    label[1, 0, 0] = 1
    engine.run([([pred[0:1], pred[1:2]], [label[0:1], label[1:2]])])
    details = engine.state.metric_details["val_precision"]
    assert torch.allclose(details.flatten(), torch.tensor([0.5, 1.0]))
    assert engine.state.metrics["val_precision"] == pytest.approx(0.75)


def _trainer(max_epochs=2):
    net = torch.nn.Linear(2, 1)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)

    def step(engine, batch):
        opt.zero_grad()
        loss = net(batch).pow(2).mean()
        loss.backward()
        opt.step()
        return {"loss": loss}

    return Engine(step), net, opt


def test_checkpoint_saver_and_resume(tmp_path):
    data = [torch.ones(3, 2)] * 3
    engine, net, opt = _trainer()
    TrainerCheckpointSaver(str(tmp_path), {"model": net, "optimizer": opt}, save_interval=1, n_saved=1).attach(engine)
    engine.run(data, max_epochs=1)
    path = latest_checkpoint(tmp_path)
    assert path is not None and path.name == "checkpoint_epoch=1.pt"
    assert "trainer" in torch.load(path, weights_only=True)
    epochs = []
    engine2, net2, opt2 = _trainer()
    resume = ResumeFromCheckpoint({"model": net2, "optimizer": opt2}, ckpt_dir=tmp_path)
    resume.attach(engine2)
    engine2.add_event_handler(Events.EPOCH_STARTED, lambda e: epochs.append(e.state.epoch))
    engine2.run(data, max_epochs=2)
    assert resume.loaded == path and epochs == [2] and engine2.state.iteration == 6
    assert torch.equal(net.weight, net2.weight) is False  # trained one more epoch from the restored weights
    # disabled, or nothing to resume from: a fresh start
    engine3, net3, opt3 = _trainer()
    off = ResumeFromCheckpoint({"model": net3}, ckpt_dir=tmp_path / "none")
    off.attach(engine3)
    engine3.run(data, max_epochs=1)
    assert off.loaded is None
    with pytest.raises(FileNotFoundError):
        ResumeFromCheckpoint({"model": net3}, checkpoint=tmp_path / "missing.pt").find()


def test_latest_checkpoint_orders_by_step(tmp_path):
    for name in ("checkpoint_epoch=2.pt", "checkpoint_epoch=10.pt", "checkpoint_final.pt", "model.pt"):
        (tmp_path / name).write_bytes(b"x")
    assert latest_checkpoint(tmp_path).name == "checkpoint_epoch=10.pt"
    assert latest_checkpoint(tmp_path / "absent") is None


def test_terminate_on_nan_and_throughput():
    engine = Engine(lambda e, b: {"loss": torch.tensor(b)})
    TerminateOnNan().attach(engine)
    rate = ThroughputLogger(batch_key="x")
    rate.attach(engine)
    engine.run([1.0, math.nan, 2.0], max_epochs=1)
    assert engine.state.iteration == 2  # stopped at the NaN

    counted = Engine(lambda e, b: {"loss": torch.tensor(0.0)})
    logger = ThroughputLogger(batch_key="image")
    logger.attach(counted)
    counted.run([{"image": torch.zeros(4, 1)}] * 3, max_epochs=2)
    assert len(logger.history) == 2 and counted.state.metrics["images_per_second"] > 0
