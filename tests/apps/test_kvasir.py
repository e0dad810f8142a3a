from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pytest
from monai.data import load_decathlon_datalist
from monai.transforms import LoadImaged
from PIL import Image

from monai_imbalance.apps import download as download_module
from monai_imbalance.apps.checks import DatasetLayoutError
from monai_imbalance.apps.download import DownloadError
from monai_imbalance.apps.io import load_label_file
from monai_imbalance.apps.kvasir import (
    KVASIR_RESOURCE,
    PRANET_KVASIR_TEST_IDS,
    download_kvasir,
    kvasir_items,
    kvasir_split,
    prepare_kvasir,
)
from monai_imbalance.apps.lookalike import _pair_2d, write_kvasir_lookalike
from monai_imbalance.transforms import LoadBinaryMaskd

N = 30


@pytest.fixture(scope="module")
def kvasir(tmp_path_factory):
    return write_kvasir_lookalike(tmp_path_factory.mktemp("kvasir"), num_images=N, seed=0)


@pytest.fixture
def broken(kvasir, tmp_path):
    return shutil.copytree(kvasir, tmp_path / "Kvasir-SEG")


def test_pranet_test_ids_are_100_kvasir_ids():
    assert len(PRANET_KVASIR_TEST_IDS) == 100 and len(set(PRANET_KVASIR_TEST_IDS)) == 100
    assert all(re.fullmatch(r"[a-z0-9]{25}", i) for i in PRANET_KVASIR_TEST_IDS)


def test_lookalike_has_the_real_layout_and_encodings(kvasir):
    assert kvasir.name == "Kvasir-SEG" and (kvasir / "SYNTHETIC.txt").is_file()
    images = sorted((kvasir / "images").iterdir())
    masks = sorted((kvasir / "masks").iterdir())
    assert len(images) == len(masks) == N and all(p.suffix == ".jpg" for p in images + masks)
    with Image.open(masks[0]) as m:
        assert m.mode == "RGB" and m.format == "JPEG"  # 3-channel JPEG masks, as the real ones
    grey = np.asarray(Image.open(masks[0]).convert("L"))
    assert len(np.unique(grey)) > 10  # compression noise, not a clean 0/255 mask
    sizes = {Image.open(p).size for p in images}
    assert len(sizes) >= 3  # varying image sizes


def test_items_are_sorted_pairs_with_sizes(kvasir):
    items = kvasir_items(kvasir.parent)  # the parent folder works too
    assert [i["id"] for i in items] == sorted(i["id"] for i in items) and len(items) == N
    for item in items[:5]:
        assert item["image"].endswith(f"images/{item['id']}.jpg") and item["label"].endswith(f"masks/{item['id']}.jpg")
        with Image.open(item["image"]) as img:
            assert img.size == (item["width"], item["height"])


def test_jpeg_masks_thresholded_at_127_keep_the_polyp(kvasir):
    # image i of the look-alike is generator pair i; every 10th one carries a PraNet id, so its pair is known
    lost_threshold, lost_cast, polyp = 0, 0, 0
    marker = json.loads((kvasir / "SYNTHETIC.txt").read_text().splitlines()[-1])
    sizes = ((53, 62), (48, 64), (64, 56), (60, 72))
    written = [PRANET_KVASIR_TEST_IDS[i // 10] if i % 10 == 0 else None for i in range(N)]
    for i in range(N):
        if written[i] is None:
            continue
        truth = _pair_2d(marker["seed"], i, sizes[i % len(sizes)], (0.05, 0.3))["label"][0]
        path = kvasir / "masks" / f"{written[i]}.jpg"
        read = load_label_file(path)  # grey > 127
        raw = load_label_file(path, threshold=None)
        assert read.shape == truth.shape
        assert np.mean(read != truth) < 0.01
        lost_threshold += int(np.sum((truth == 1) & (read == 0)))
        lost_cast += int(np.sum((truth == 1) & ((raw / 255).astype(np.uint8) == 0)))
        polyp += int(truth.sum())
    # thresholding keeps the polyp; dividing by 255 and casting drops every pixel below 255
    assert lost_threshold <= 0.01 * polyp < lost_cast


def test_pranet_split_uses_the_pranet_test_ids(kvasir):
    items = kvasir_items(kvasir)
    sections, info = kvasir_split(items, "pranet")
    test_ids = {i["id"] for i in sections["test"]}
    assert test_ids == set(PRANET_KVASIR_TEST_IDS[:3]) and len(sections["training"]) == N - 3
    assert not sections["validation"] and info["official"] is True
    assert not test_ids & {i["id"] for i in sections["training"]}
    sections, info = kvasir_split(items, "pranet", val_fraction=0.2, seed=1)
    assert len(sections["validation"]) == round(0.2 * (N - 3)) and len(sections["test"]) == 3
    with pytest.raises(ValueError, match="listed id"):
        kvasir_split(items, "pranet", require_all=True)  # a real folder must hold all 100 test ids


def test_kvasir_seg_split_official_lists_and_seeded_fallback(kvasir, tmp_path):
    items = kvasir_items(kvasir)
    sections, info = kvasir_split(items, "kvasir_seg", seed=0)
    assert (len(sections["training"]), len(sections["validation"])) == (26, 4)  # 880:120 of 30
    assert info["official"] is False and "NOT the official" in info["source"]
    ids = [i["id"] for i in items]
    (tmp_path / "train.txt").write_text("".join(f"images/{i}.jpg masks/{i}.jpg\n" for i in ids[:20]))
    (tmp_path / "val.txt").write_text("".join(f"{i}\n" for i in ids[20:]))
    sections, info = kvasir_split(items, "kvasir_seg", split_files=[tmp_path / "train.txt", tmp_path / "val.txt"])
    assert [i["id"] for i in sections["validation"]] == ids[20:] and info["official"] is True
    (tmp_path / "val.txt").write_text("".join(f"{i}\n" for i in ids[20:-1]))
    with pytest.raises(ValueError, match="in none of the lists"):
        kvasir_split(items, "kvasir_seg", split_files=[tmp_path / "train.txt", tmp_path / "val.txt"])


def test_kfold_split_covers_every_image_once(kvasir):
    items = kvasir_items(kvasir)
    seen = []
    for fold in range(5):
        sections, info = kvasir_split(items, "kfold", fold=fold, seed=4)
        val = [i["id"] for i in sections["validation"]]
        assert not set(val) & {i["id"] for i in sections["training"]} and len(val) == N // 5
        seen += val
    assert sorted(seen) == sorted(i["id"] for i in items)
    with pytest.raises(ValueError, match="split must be one of"):
        kvasir_split(items, "random")


def test_prepare_writes_a_datalist_monai_reads(kvasir, tmp_path):
    path = prepare_kvasir(kvasir, out=tmp_path / "dl.json", split="pranet")
    data = json.loads(path.read_text())
    assert data["synthetic"] is True and data["description"].startswith("SYNTHETIC")
    assert data["numTraining"] == N - 3 and data["numTest"] == 3 and data["split"]["name"] == "pranet"
    test = load_decathlon_datalist(path, data_list_key="test")
    assert {t["id"] for t in test} == set(PRANET_KVASIR_TEST_IDS[:3])
    d = LoadBinaryMaskd("label")(LoadImaged("image", ensure_channel_first=True)(test[0]))
    assert d["image"].shape[0] == 3 and tuple(d["label"].shape[1:]) == tuple(d["image"].shape[1:])
    assert d["label"].dtype.is_floating_point is False and set(np.unique(d["label"].numpy())) == {0, 1}
    # MONAI's PIL reader swaps the axes (W, H); the mask follows the image
    np.testing.assert_array_equal(d["label"][0].numpy(), load_label_file(test[0]["label"]).T)


def test_missing_mask_is_named(broken):
    victim = sorted((broken / "masks").iterdir())[3]
    victim.unlink()
    with pytest.raises(DatasetLayoutError, match=rf"missing mask for image {victim.stem}\.jpg"):
        kvasir_items(broken)


def test_unpaired_mask_and_count_are_reported(broken):
    victim = sorted((broken / "images").iterdir())[0]
    victim.unlink()
    with pytest.raises(DatasetLayoutError, match=rf"unpaired mask {victim.stem}\.jpg.*found {N - 1} .*expected {N}"):
        kvasir_items(broken)


def test_unreadable_and_mismatched_files_are_named(broken):
    image = sorted((broken / "images").iterdir())[1]
    image.write_bytes(b"not a jpeg")
    mask = sorted((broken / "masks").iterdir())[2]
    Image.open(mask).resize((10, 10)).save(mask)
    with pytest.raises(DatasetLayoutError, match=rf"unreadable image .*{image.name}.*size mismatch.*{mask.name}"):
        kvasir_items(broken)


def test_real_count_is_checked_without_marker_and_missing_folder(broken):
    (broken / "SYNTHETIC.txt").unlink()
    with pytest.raises(DatasetLayoutError, match=f"found {N} image/mask pairs, expected 1000"):
        kvasir_items(broken)
    assert len(kvasir_items(broken, expected_count=None)) == N
    shutil.rmtree(broken / "masks")
    with pytest.raises(FileNotFoundError, match="Kvasir-SEG masks folder not found"):
        kvasir_items(broken)


def test_download_uses_monai_helpers_with_the_official_url(tmp_path, monkeypatch):
    calls = []

    def fake_download(url, filepath, hash_val, hash_type, progress):
        calls.append((url, str(filepath), hash_val, hash_type))
        filepath.write_bytes(b"zip")

    def fake_extract(filepath, output_dir, file_type, has_base):
        (output_dir / "Kvasir-SEG" / "images").mkdir(parents=True)
        (output_dir / "Kvasir-SEG" / "masks").mkdir()

    monkeypatch.setattr("monai.apps.utils.download_url", fake_download)
    monkeypatch.setattr("monai.apps.utils.extractall", fake_extract)
    folder = download_kvasir(tmp_path)
    assert folder == tmp_path / "Kvasir-SEG"
    assert calls == [("https://datasets.simula.no/downloads/kvasir-seg.zip", str(tmp_path / "Kvasir-SEG.zip"),
                      KVASIR_RESOURCE.sha256, "sha256")]
    download_kvasir(tmp_path)  # extracted folder present: nothing downloaded again
    assert len(calls) == 1


def test_download_failure_explains_what_to_do(tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise OSError("network unreachable")

    monkeypatch.setattr("monai.apps.utils.download_url", offline)
    with pytest.raises(DownloadError, match=r"could not download.*kvasir-seg\.zip.*network unreachable.*by hand"):
        download_module.download_resources([KVASIR_RESOURCE], tmp_path)
