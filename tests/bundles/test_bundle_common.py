"""What the 2-D bundles share: the model-zoo file set, complete metadata, the conventional IDs, a standalone inference
config, and validation metrics that count the confusion matrix once per iteration. (The engines, handlers and
transforms they use are tested in tests/engines, tests/handlers and tests/transforms.)"""

from __future__ import annotations

import json

import pytest

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
    """metadata.json names a version with its changelog entry; the datasets' source, licence, reference and layout
    are in docs/data_license.txt (the model zoo's place for them), each named in the README."""
    from tests.bundles.test_metadata_schema import read_data_license

    meta = json.loads((BUNDLES / name / "configs" / "metadata.json").read_text())
    for key in ("version", "changelog", "monai_version", "pytorch_version", "numpy_version", "name", "description",
                "network_data_format", "references", "required_packages_version"):
        assert meta.get(key), key
    assert "datasets" not in meta  # not a schema field: the licences moved to docs/data_license.txt
    assert meta["version"] in meta["changelog"] and meta["changelog"][meta["version"]].strip()
    datasets = read_data_license(BUNDLES / name / "docs" / "data_license.txt")
    assert datasets
    for dataset, info in datasets.items():
        for key in ("source", "licence", "reference", "layout"):
            assert info.get(key), (dataset, key)
    assert meta["network_data_format"]["inputs"]["image"]["num_channels"] == 3
    readme = (BUNDLES / name / "docs" / "README.md").read_text()
    for dataset in datasets:
        assert dataset in readme
    assert "docs/data_license.txt" in readme
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


@pytest.mark.parametrize("name", NAMES)
def test_inference_config_stands_alone(name, tmp_path):
    parser = parse_bundle(BUNDLES / name, ("inference",), {"dataset_dir": str(tmp_path)})
    for key in ("bundle_root", "device", "dataset_dir", "network_def", "evaluator", "input_dir", "output_dir"):
        assert key in parser
    assert "train" not in parser.config


@pytest.mark.parametrize("name", NAMES)
def test_confusion_metrics_share_one_count(name, tmp_path):
    """Precision, recall, accuracy and OII read one ConfusionCountsMetric: the counts are computed once per
    iteration, not once per metric, with the metric names the bundle always had."""
    from monai_imbalance.metrics import ConfusionCountsMetric

    parser = parse_bundle(BUNDLES / name, ("train",), {"dataset_dir": str(tmp_path)})
    metrics = parser.get_parsed_content("validate#additional_metrics")
    shared = [metrics[k] for k in ("val_precision", "val_recall", "val_accuracy", "val_oii")]
    assert all(isinstance(h.counts, ConfusionCountsMetric) for h in shared)
    assert all(h.counts is shared[0].counts for h in shared)
    assert [h.metric_fn.metric_name[0] for h in shared[:3]] == ["precision", "recall", "accuracy"]


@pytest.mark.slow
def test_a_bundle_run_without_its_dataset_folder_ends_in_one_line_naming_the_option(tmp_path):
    import subprocess
    import sys

    missing = tmp_path / "no_such_folder"
    run = subprocess.run(
        [sys.executable, "-m", "monai.bundle", "run", "--config_file", str(BUNDLES / "kvasir_seg/configs/train.yaml"),
         "--bundle_root", str(tmp_path), "--dataset_dir", str(missing)],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )
    assert run.returncode == 1
    err = [line for line in run.stderr.splitlines() if line.strip() and "parsing config_file" not in line]
    assert "Traceback" not in run.stderr  # it used to be a 72-line chained traceback
    assert err == [f"Kvasir-SEG folder not found: {missing}; pass --dataset_dir <the Kvasir-SEG folder, as "
                   "downloaded>."]


@pytest.mark.parametrize("dataset, title", [("kvasir", "Kvasir-SEG"), ("isic2018", "ISIC 2018 Task 1"),
                                            ("acdc", "ACDC"), ("synapse", "Synapse multi-organ CT"),
                                            ("clinicdb", "CVC-ClinicDB")])
def test_every_dataset_names_the_option_when_its_folder_is_missing(tmp_path, dataset, title):
    from monai_imbalance.engines import DatasetFolderMissing, dataset_sections

    with pytest.raises(DatasetFolderMissing) as caught:
        dataset_sections(dataset, tmp_path / "nothing", option="eval_dataset_dir")
    assert str(caught.value).startswith(f"{title} folder not found: {tmp_path / 'nothing'}; pass --eval_dataset_dir")
    with pytest.raises(DatasetFolderMissing, match="folder not set; pass --dataset_dir"):
        dataset_sections(dataset, None)
