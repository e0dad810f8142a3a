from __future__ import annotations

import json
import os
import re
import shutil

import numpy as np
import pytest
from monai.data import load_decathlon_datalist
from monai.transforms import LoadImaged
from PIL import Image

from monai_imbalance.apps.checks import DatasetLayoutError
from monai_imbalance.apps.io import load_label_file
from monai_imbalance.apps.isic import (
    ISIC2018_FOLDERS,
    ISIC2018_RESOURCES,
    download_isic2018,
    isic2018_items,
    isic2018_resized_cache,
    isic2018_split,
    prepare_isic2018,
)
from monai_imbalance.apps.lookalike import write_isic_lookalike
from monai_imbalance.transforms import LoadBinaryMaskd

COUNTS = {"training": 10, "validation": 3, "test": 3}


@pytest.fixture(scope="module")
def isic(tmp_path_factory):
    return write_isic_lookalike(tmp_path_factory.mktemp("isic") / "ISIC2018", num_training=10, num_validation=3,
                                num_test=3, seed=1)


@pytest.fixture
def broken(isic, tmp_path):
    return shutil.copytree(isic, tmp_path / "ISIC2018")


def test_lookalike_layout_names_and_licence_files(isic):
    for image_name, mask_name in ISIC2018_FOLDERS.values():
        names = sorted(p.name for p in (isic / image_name).iterdir())
        assert "LICENSE.txt" in names and "ATTRIBUTION.txt" in names
        assert all(re.fullmatch(r"ISIC_\d{7}\.jpg", n) for n in names if n.endswith(".jpg"))
        masks = [p.name for p in (isic / mask_name).iterdir() if p.suffix == ".png"]
        assert all(re.fullmatch(r"ISIC_\d{7}_segmentation\.png", n) for n in masks)


@pytest.mark.parametrize("subset", ["training", "validation", "test"])
def test_items_per_subset_with_0_255_masks(isic, subset):
    items = isic2018_items(isic, subset)
    assert len(items) == COUNTS[subset] and all(i["subset"] == subset for i in items)
    assert [i["id"] for i in items] == sorted(i["id"] for i in items)
    raw = load_label_file(items[0]["label"], threshold=None)
    assert set(np.unique(raw)) == {0, 255}
    assert set(np.unique(load_label_file(items[0]["label"]))) == {0, 1}


def test_subsets_are_disjoint_and_split_official_kfold_holdout(isic):
    subsets = {s: isic2018_items(isic, s) for s in COUNTS}
    ids = [i["id"] for items in subsets.values() for i in items]
    assert len(ids) == len(set(ids)) == 16
    sections, info = isic2018_split(subsets, "official")
    assert {k: len(v) for k, v in sections.items()} == COUNTS and info["official"]
    sections, info = isic2018_split(subsets, "kfold", fold=0, num_folds=5)
    assert (len(sections["training"]), len(sections["validation"]), len(sections["test"])) == (8, 2, 3)
    sections, info = isic2018_split(subsets, "holdout", holdout=(0.7, 0.1, 0.2), seed=3)
    assert [len(sections[k]) for k in ("training", "validation", "test")] == [7, 1, 2]
    assert {i["id"] for k in sections for i in sections[k]} == {i["id"] for i in subsets["training"]}


def test_legacy_segmentation_spelling_is_accepted(tmp_path):
    root = write_isic_lookalike(tmp_path, num_training=4, num_validation=0, num_test=0, legacy_names=True)
    assert any(p.name.endswith("_Segmentation.png") for p in (root / "ISIC2018_Task1_Training_GroundTruth").iterdir())
    items = isic2018_items(root, "training")
    assert len(items) == 4 and items[0]["label"].endswith("_Segmentation.png")


def test_resized_cache_is_written_once_and_reused(isic, tmp_path):
    items = isic2018_items(isic, "training")
    cached = isic2018_resized_cache(items, tmp_path / "cache", max_size=40)
    for src, new in zip(items, cached):
        assert max(new["height"], new["width"]) == 40 and new["id"] == src["id"]
        assert abs(new["height"] / new["width"] - src["height"] / src["width"]) < 0.05  # aspect kept
        with Image.open(new["image"]) as img:
            assert img.size == (new["width"], new["height"])
        mask = load_label_file(new["label"], threshold=None)
        assert set(np.unique(mask)) <= {0, 255} and mask.shape == (new["height"], new["width"])
        before = load_label_file(src["label"]).mean()
        assert abs(load_label_file(new["label"]).mean() - before) < 0.05  # area kept by averaging + threshold
        assert new["source_image"] == src["image"] and new["original_width"] == src["width"]
    stamps = {c["image"]: os.stat(c["image"]).st_mtime_ns for c in cached}
    again = isic2018_resized_cache(items, tmp_path / "cache", max_size=40)
    assert again == cached and stamps == {c["image"]: os.stat(c["image"]).st_mtime_ns for c in again}
    os.utime(items[0]["image"], ns=(1, 1))  # a changed source is redone
    isic2018_resized_cache(items, tmp_path / "cache", max_size=40)
    assert os.stat(cached[0]["image"]).st_mtime_ns != stamps[cached[0]["image"]]
    assert os.stat(cached[1]["image"]).st_mtime_ns == stamps[cached[1]["image"]]


def test_prepare_with_cache_gives_a_datalist_monai_loads(isic, tmp_path):
    path = prepare_isic2018(isic, out=tmp_path / "isic.json", cache_size=48, cache_dir=tmp_path / "cache")
    data = json.loads(path.read_text())
    assert data["split"]["resized_cache"]["longest_side"] == 48 and data["synthetic"]
    assert (data["numTraining"], data["numValidation"], data["numTest"]) == (10, 3, 3)
    item = load_decathlon_datalist(path, data_list_key="validation")[0]
    assert "longest48_jpg" in item["image"] and os.path.isfile(item["source_image"])
    d = LoadBinaryMaskd("label")(LoadImaged("image", ensure_channel_first=True)(item))
    assert max(d["image"].shape[1:]) == 48 and tuple(d["label"].shape[1:]) == tuple(d["image"].shape[1:])


def test_broken_layouts_are_named(broken):
    mask_dir = broken / "ISIC2018_Task1_Training_GroundTruth"
    victim = sorted(mask_dir.glob("*.png"))[0]
    victim.unlink()
    arr = np.asarray(Image.open(sorted(mask_dir.glob("*.png"))[1])).copy()
    arr[0, 0] = 7
    Image.fromarray(arr).save(sorted(mask_dir.glob("*.png"))[1])
    (broken / "ISIC2018_Task1-2_Training_Input" / "ISIC_123.jpg").write_bytes(b"x")
    with pytest.raises(DatasetLayoutError) as err:
        isic2018_items(broken, "training")
    message = str(err.value)
    assert f"missing mask for image {victim.name.replace('_segmentation.png', '.jpg')}" in message
    assert "unexpected image file name ISIC_123.jpg" in message and "has values [0, 7, 255]" in message
    assert "found 9 training image/mask pairs, expected 10" in message


def test_missing_folder_and_real_counts(broken):
    (broken / "SYNTHETIC.txt").unlink()
    with pytest.raises(DatasetLayoutError, match="found 3 validation image/mask pairs, expected 100"):
        isic2018_items(broken, "validation")
    shutil.rmtree(broken / "ISIC2018_Task1_Test_GroundTruth")
    with pytest.raises(FileNotFoundError, match="ISIC 2018 test ground truth folder not found"):
        isic2018_items(broken, "test")


def test_download_fetches_the_six_official_zips(tmp_path, monkeypatch):
    urls = []

    def fake_download(url, filepath, hash_val, hash_type, progress):
        urls.append(url)
        assert len(hash_val) == 64 and hash_type == "sha256"

    def fake_extract(filepath, output_dir, file_type, has_base):
        (output_dir / filepath.name[:-4]).mkdir()
        (output_dir / filepath.name[:-4] / "x").write_text("")

    monkeypatch.setattr("monai.apps.utils.download_url", fake_download)
    monkeypatch.setattr("monai.apps.utils.extractall", fake_extract)
    folders = download_isic2018(tmp_path)
    assert [f.name for f in folders] == [name for pair in ISIC2018_FOLDERS.values() for name in pair]
    assert urls == [r.url for r in ISIC2018_RESOURCES.values()]
    assert all(u.startswith("https://isic-challenge-data.s3.amazonaws.com/2018/ISIC2018_Task1") for u in urls)
