"""Every bundle's metadata.json against the MONAI bundle metadata schema it names (meta_schema_20240725.json), and the
model-zoo layout around it: a changelog entry for the version, numeric eval_metrics, the dataset licences in
docs/data_license.txt (not in metadata.json), and docs/README.md with the zoo's sections in the zoo's order."""

from __future__ import annotations

import configparser
import importlib
import json
import numbers
import re
from pathlib import Path

import pytest

from tests.bundles import BUNDLES, REPO

NAMES = ["kvasir_seg", "isic2018_seg", "synapse_seg", "acdc_seg", "generic_seg"]
SCHEMA_URL = "https://github.com/Project-MONAI/MONAI-extra-test-data/releases/download/0.8.1/meta_schema_20240725.json"

# meta_schema_20240725.json as published (MONAI-extra-test-data release 0.8.1; the copy read here is the verbatim one
# that Project-MONAI/project-monai.github.io serves as public/schema/meta_schema_20240725.json). It cannot be
# downloaded on the test machines, so it is written out here; do not edit it: a new schema is a new dated file.
META_SCHEMA_20240725 = {
    "$schema": "https://json-schema.org/draft/2019-09/schema",
    "$defs": {
        "tensor": {
            "$comment": "Represents a tensor object argument/return value, can be MetaTensor.",
            "type": "object",
            "properties": {
                "type": {"type": "string"},
                "format": {"type": "string"},
                "num_channels": {"type": "integer"},
                "spatial_shape": {"type": "array", "items": {"type": ["string", "integer"]}},
                "dtype": {"type": "string"},
                "value_range": {"type": "array", "items": {"type": "number"}},
                "is_patch_data": {"type": "boolean"},
                "channel_def": {"type": "object"},
            },
            "required": ["type", "format", "num_channels", "spatial_shape", "dtype", "value_range"],
        },
        "argument": {
            "$comment": "Acceptable input types for model forward pass, arbitrary Python objects not covered.",
            "anyOf": [
                {"type": "number"},
                {"type": "integer"},
                {"type": "string"},
                {"type": "boolean"},
                {"$ref": "#/$defs/tensor"},
            ],
        },
        "result": {
            "$comment": "Return value from a model's forward pass, same as an argument for now.",
            "$ref": "#/$defs/argument",
        },
        "network_io": {
            "description": "Defines the format, shape, and meaning of inputs, outputs (and optionally post-processed "
                           "outputs) to the model.",
            "type": "object",
            "$comment": "Arguments/return values described by pattern property, order considered significant.",
            "properties": {
                "inputs": {"type": "object", "patternProperties": {"^.+$": {"$ref": "#/$defs/argument"}}},
                "outputs": {"type": "object", "patternProperties": {"^.+$": {"$ref": "#/$defs/result"}}},
                "post_processed_outputs": {
                    "$comment": "Return value format after post-processing, not needed if not changed.",
                    "type": "object",
                    "patternProperties": {"^.+$": {"$ref": "#/$defs/result"}},
                },
            },
            "required": ["inputs", "outputs"],
        },
    },
    "type": "object",
    "properties": {
        "schema": {"description": "URL of the schema file.", "type": "string"},
        "version": {"description": "Version number of the bundle.", "type": "string"},
        "changelog": {"description": "Dictionary relating previous version names to strings describing the version.",
                      "type": "object"},
        "monai_version": {"description": "Version of MONAI the bundle was generated with.", "type": "string"},
        "pytorch_version": {"description": "Version of PyTorch the bundle was generated with.", "type": "string"},
        "numpy_version": {"description": "Version of NumPy the bundle was generated with.", "type": "string"},
        "required_packages_version": {
            "description": "Dictionary relating required package names to their versions. The bundle requires these "
                           "packages to operate which are additional to the base requirements for MONAI.",
            "type": "object",
        },
        "task": {"description": "Plain-language description of what the bundle is meant to do.", "type": "string"},
        "description": {"description": "Longer form description of what the bundle is, what it does, etc.",
                        "type": "string"},
        "authors": {"description": "State author(s) of the bundle.", "type": "string"},
        "copyright": {"description": "State copyright of the bundle.", "type": "string"},
        "data_source": {"description": "Where to download or prepare the data used in this bundle.", "type": "string"},
        "data_type": {"description": "Type of the data, like: `dicom`, `nibabel`, etc.", "type": "string"},
        "image_classes": {"description": "Description for every class of the input tensors.", "type": "string"},
        "label_classes": {"description": "Description for every class of the input tensors if present.",
                          "type": "string"},
        "pred_classes": {"description": "Description for every class of the output prediction(s).", "type": "string"},
        "eval_metrics": {"description": "Dictionary relating evaluation metrics to the achieved scores.",
                         "type": "object"},
        "intended_use": {"description": "What the bundle is to be used for, ie. what task it accomplishes.",
                         "type": "string"},
        "references": {"description": "List of published referenced relating to the bundle.", "type": "array",
                       "items": {"type": "string"}},
        "supported_apps": {"description": "List of supported applications, eg. 'monai-label'", "type": "object"},
        "network_data_format": {"$ref": "#/$defs/network_io"},
    },
    "$comment": "This permits definitions for multiple networks with format <network-name>_data_format",
    "patternProperties": {"^[_a-zA-Z0-9]+_data_format$": {"$ref": "#/$defs/network_io"}},
    "required": ["schema", "version", "monai_version", "pytorch_version", "numpy_version",
                 "required_packages_version", "task", "description", "authors", "copyright",
                 "network_data_format"],
}

# docs/README.md of a zoo bundle (model-zoo models/*/docs/README.md), as `##` headings in this order
ZOO_SECTIONS = ["Model Overview", "Data", "Training configuration", "Input", "Output", "Performance",
                "MONAI Bundle Commands", "References", "License"]
DATA_LICENSE_FIELDS = ("source", "licence", "reference", "layout")


def read_meta(name: str) -> dict:
    return json.loads((BUNDLES / name / "configs" / "metadata.json").read_text())


def read_readme(name: str) -> str:
    return (BUNDLES / name / "docs" / "README.md").read_text()


def readme_sections(text: str) -> dict[str, str]:
    """The ``##`` sections of a README, heading -> body (``###`` and deeper stay in their section's body)."""
    parts = re.split(r"^## +(.+?)\s*$", text, flags=re.M)
    return {heading: body for heading, body in zip(parts[1::2], parts[2::2])}


def read_data_license(path: Path) -> dict[str, dict[str, str]]:
    """The datasets of a bundle's ``docs/data_license.txt``: title -> {"source", "licence", "reference", "layout"}.

    Each dataset is a block in the zoo's style (models/brats_mri_segmentation/docs/data_license.txt): a title line
    ``<roman numeral>. <dataset name>`` between two lines of asterisks, then ``Source:``, ``Licence:``,
    ``Reference:`` and ``Layout:`` lines."""
    datasets: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    for line in path.read_text().splitlines():
        title = re.fullmatch(r"([ivxlc]+)\. (.+)", line.strip())
        if title:
            current = datasets.setdefault(title.group(2).strip(), {})
            continue
        field = re.fullmatch(r"(Source|Licence|Reference|Layout): (.+)", line.strip())
        if field and current is not None:
            current[field.group(1).lower()] = field.group(2).strip()
    return datasets


def readme_datasets(name: str) -> list[str]:
    """The datasets the README's Data section names: its bold names (``- **Kvasir-SEG** (...)``)."""
    return re.findall(r"\*\*(.+?)\*\*", readme_sections(read_readme(name))["Data"])


def package_version() -> str:
    """setup.cfg's version of monai-imbalance (a literal or ``attr: module.name``)."""
    cfg = configparser.ConfigParser()
    cfg.read(REPO / "setup.cfg")
    version = cfg["metadata"]["version"].strip()
    if version.startswith("attr:"):
        module, _, attr = version[len("attr:"):].strip().rpartition(".")
        return getattr(importlib.import_module(module), attr)
    return version


def test_the_schema_is_a_valid_draft_2019_09_schema():
    from jsonschema import Draft201909Validator

    Draft201909Validator.check_schema(META_SCHEMA_20240725)


@pytest.mark.parametrize("name", NAMES)
def test_metadata_validates_against_the_schema_it_names(name):
    from jsonschema import Draft201909Validator

    meta = read_meta(name)
    assert meta["schema"] == SCHEMA_URL
    errors = sorted(Draft201909Validator(META_SCHEMA_20240725).iter_errors(meta), key=lambda e: list(e.path))
    assert not errors, [f"{'/'.join(map(str, e.path))}: {e.message}" for e in errors]


def test_the_schema_rejects_what_it_should():
    """The written-out schema is not vacuous: a missing required key, a wrong type and an incomplete tensor fail."""
    from jsonschema import Draft201909Validator

    validator = Draft201909Validator(META_SCHEMA_20240725)
    meta = read_meta(NAMES[0])
    assert validator.is_valid(meta)
    assert not validator.is_valid({k: v for k, v in meta.items() if k != "copyright"})
    assert not validator.is_valid({**meta, "references": "one string"})
    image = {k: v for k, v in meta["network_data_format"]["inputs"]["image"].items() if k != "dtype"}
    broken = {**meta, "network_data_format": {**meta["network_data_format"], "inputs": {"image": image}}}
    # "argument" is anyOf(number, integer, string, boolean, tensor): an object must be a complete tensor
    assert not validator.is_valid(broken)


@pytest.mark.parametrize("name", NAMES)
def test_version_has_a_changelog_entry_and_names_the_docs(name):
    meta = read_meta(name)
    assert re.fullmatch(r"\d+\.\d+\.\d+", meta["version"])
    assert meta["changelog"].get(meta["version"], "").strip()
    assert next(iter(meta["changelog"])) == meta["version"]  # newest first, as in the zoo
    title = read_readme(name).splitlines()[0]
    assert title.startswith("# ") and f"version {meta['version']}" in title
    assert f"- {meta['version']}:" in readme_sections(read_readme(name))["Changelog"]


@pytest.mark.parametrize("name", NAMES)
def test_required_monai_imbalance_is_the_package_version(name):
    assert read_meta(name)["required_packages_version"]["monai-imbalance"] == package_version()


@pytest.mark.parametrize("name", NAMES)
def test_eval_metrics_are_numbers_if_present(name):
    metrics = read_meta(name).get("eval_metrics", {})
    assert isinstance(metrics, dict)
    for key, value in metrics.items():
        assert isinstance(value, numbers.Real) and not isinstance(value, bool), (key, value)


@pytest.mark.parametrize("name", NAMES)
def test_datasets_live_in_data_license_not_in_metadata(name):
    assert "datasets" not in read_meta(name)
    path = BUNDLES / name / "docs" / "data_license.txt"
    assert path.is_file()
    licences = read_data_license(path)
    assert licences
    for dataset, info in licences.items():
        missing = [f for f in DATA_LICENSE_FIELDS if not info.get(f)]
        assert not missing, (dataset, missing)
    named = readme_datasets(name)
    assert named and set(named) <= set(licences), (named, sorted(licences))
    assert "docs/data_license.txt" in readme_sections(read_readme(name))["Data"]


@pytest.mark.parametrize("name", NAMES)
def test_readme_has_the_zoo_sections_in_order(name):
    headings = list(readme_sections(read_readme(name)))
    zoo = [h for h in headings if h in ZOO_SECTIONS]
    assert zoo == ZOO_SECTIONS, headings
    # anything else (the Changelog) comes after License
    assert headings[: len(ZOO_SECTIONS)] == ZOO_SECTIONS, headings


@pytest.mark.parametrize("name", NAMES)
def test_readme_lists_the_zoo_commands(name):
    commands = readme_sections(read_readme(name))["MONAI Bundle Commands"]
    blocks = "\n".join(re.findall(r"```[a-z]*\n(.*?)```", commands, flags=re.S))
    for config_file in ("configs/train.yaml",
                        "\"['configs/train.yaml','configs/evaluate.yaml']\"",
                        "\"['configs/train.yaml','configs/multi_gpu_train.yaml']\"",
                        "\"['configs/train.yaml','configs/evaluate.yaml','configs/multi_gpu_evaluate.yaml']\"",
                        "configs/inference.yaml"):
        assert f"--config_file {config_file}" in blocks, config_file
    assert "torchrun --standalone --nnodes=1 --nproc_per_node=2 -m monai.bundle run" in blocks
    assert ("python -m monai.bundle ckpt_export network_def --filepath models/model.ts --ckpt_file models/model.pt "
            "--meta_file configs/metadata.json --config_file configs/inference.yaml") in blocks
    assert "--tracking mlflow" in blocks and "--tracking_uri" in blocks


def test_mlflow_flags_are_those_of_monai_bundle_run():
    import inspect

    from monai.bundle import run
    from monai.bundle.utils import DEFAULT_MLFLOW_SETTINGS

    assert "tracking" in inspect.signature(run).parameters
    assert "tracking_uri" in DEFAULT_MLFLOW_SETTINGS["configs"]  # --tracking_uri overrides this config id


@pytest.mark.parametrize("name", NAMES)
def test_network_data_format_uses_the_zoo_vocabulary(name):
    """As the zoo writes them: RGB inputs like endoscopic_tool_segmentation's ("magnitude", "RGB", "regular"), CT
    like spleen_ct_segmentation's and swin_unetr_btcv_segmentation's ("image", "hounsfield", "CT"), MR like
    ventricular_short_axis_3label's and brats_mri_segmentation's ("image", "magnitude", "MR"); segmentation outputs
    ("image", "segmentation"); one channel_def entry per channel."""
    fmt = read_meta(name)["network_data_format"]
    image = fmt["inputs"]["image"]
    if image["num_channels"] == 3:
        assert (image["type"], image["format"], image["modality"]) == ("magnitude", "RGB", "regular")
        assert image["channel_def"] == {"0": "R", "1": "G", "2": "B"}
    else:
        assert (image["type"], image["format"], image["modality"]) in {("image", "hounsfield", "CT"),
                                                                       ("image", "magnitude", "MR")}
    for tensor in (image, *fmt["outputs"].values()):
        assert sorted(tensor["channel_def"], key=int) == [str(c) for c in range(tensor["num_channels"])]
        assert tensor["dtype"] == "float32" and len(tensor["value_range"]) == 2
        assert isinstance(tensor["is_patch_data"], bool)
    for output in fmt["outputs"].values():
        assert (output["type"], output["format"]) == ("image", "segmentation")
        assert output["spatial_shape"] == image["spatial_shape"]
