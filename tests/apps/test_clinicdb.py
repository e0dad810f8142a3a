from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from monai.data import load_decathlon_datalist
from monai.transforms import LoadImaged
from PIL import Image

from monai_imbalance.apps.checks import DatasetLayoutError
from monai_imbalance.apps.clinicdb import (
    PRANET_CLINICDB_TEST_IDS,
    clinicdb_items,
    clinicdb_split,
    find_clinicdb_layout,
    prepare_clinicdb,
)
from monai_imbalance.apps.download import DownloadError
from monai_imbalance.apps.io import load_label_file
from monai_imbalance.apps.lookalike import _pair_2d, write_clinicdb_lookalike
from monai_imbalance.transforms import LoadBinaryMaskd

N = 30
pytestmark = pytest.mark.filterwarnings("ignore:builtin type .* has no __module__ attribute")  # ITK's SWIG types


@pytest.fixture(scope="module")
def clinicdb(tmp_path_factory):
    return write_clinicdb_lookalike(tmp_path_factory.mktemp("clinicdb"), num_images=N, seed=2)


@pytest.fixture
def broken(clinicdb, tmp_path):
    return shutil.copytree(clinicdb, tmp_path / "CVC-ClinicDB")


def test_pranet_test_frames():
    assert len(PRANET_CLINICDB_TEST_IDS) == 62 and len(set(PRANET_CLINICDB_TEST_IDS)) == 62
    assert all(1 <= int(i) <= 612 for i in PRANET_CLINICDB_TEST_IDS)


def test_release_layout_items_sorted_by_frame_number(clinicdb):
    layout, image_dir, mask_dir = find_clinicdb_layout(clinicdb.parent)
    assert layout == "original" and image_dir.name == "Original" and mask_dir.name == "Ground Truth"
    items = clinicdb_items(clinicdb)
    assert [i["id"] for i in items] == [str(n) for n in range(1, N + 1)]  # 1, 2, ..., 10, not 1, 10, 11
    assert items[0]["image"].endswith("Original/1.tif") and items[0]["label"].endswith("Ground Truth/1.tif")
    assert {(i["height"], i["width"]) for i in items} == {(36, 48)}


def test_tif_masks_read_back_exactly(clinicdb):
    for n in (1, 7):
        truth = _pair_2d(2, n - 1, (36, 48), (0.03, 0.2))["label"][0]
        mask = load_label_file(clinicdb / "Ground Truth" / f"{n}.tif")
        np.testing.assert_array_equal(mask, truth)
        assert Image.open(clinicdb / "Original" / f"{n}.tif").format == "TIFF"


def test_splits(clinicdb):
    items = clinicdb_items(clinicdb)
    sections, info = clinicdb_split(items, "external")
    assert len(sections["test"]) == N and not sections["training"] and info["official"]
    sections, _ = clinicdb_split(items, "pranet")
    assert [i["id"] for i in sections["test"]] == ["14", "21", "25"] and len(sections["training"]) == N - 3
    sections, _ = clinicdb_split(items, "kfold", fold=1)
    assert len(sections["validation"]) == N // 5 and len(sections["training"]) == N - N // 5


def test_pranet_test_folder_variant(tmp_path):
    folder = write_clinicdb_lookalike(tmp_path, num_images=5, variant="pranet")
    assert folder.parts[-2:] == ("TestDataset", "CVC-ClinicDB")
    items = clinicdb_items(tmp_path)  # found from the parent of TestDataset
    assert [i["id"] for i in items] == list(PRANET_CLINICDB_TEST_IDS[:5]) and items[0]["layout"] == "pranet"
    assert items[0]["image"].endswith(".png")
    with pytest.raises(ValueError, match="needs the release layout"):
        clinicdb_split(items, "pranet")
    (folder / "SYNTHETIC.txt").unlink()
    with pytest.raises(DatasetLayoutError, match="found 5 image/mask pairs \\(pranet layout\\), expected 62"):
        clinicdb_items(tmp_path)


def test_prepare_and_load_tifs_in_monai(clinicdb, tmp_path):
    path = prepare_clinicdb(clinicdb, out=tmp_path / "c.json")
    data = json.loads(path.read_text())
    assert data["numTest"] == N and data["synthetic"] and data["split"]["name"] == "external"
    item = load_decathlon_datalist(path, data_list_key="test")[4]
    d = LoadBinaryMaskd("label")(LoadImaged("image", ensure_channel_first=True)(item))
    assert d["image"].shape[0] == 3 and tuple(d["label"].shape) == (1, *d["image"].shape[1:])
    np.testing.assert_array_equal(d["label"][0].numpy(), load_label_file(item["label"]).T)


def test_grey_mask_values_rejected_unless_lenient(broken):
    mask = broken / "Ground Truth" / "3.tif"
    arr = np.asarray(Image.open(mask)).copy()
    arr[0, :5] = 128
    Image.fromarray(arr).save(mask)
    with pytest.raises(DatasetLayoutError, match=r"mask 3\.tif has values \[0, 128, 255\]"):
        clinicdb_items(broken)
    assert len(clinicdb_items(broken, strict_masks=False)) == N


def test_missing_and_unreadable_files(broken):
    (broken / "Ground Truth" / "5.tif").unlink()
    (broken / "Original" / "6.tif").write_bytes(b"garbage")
    with pytest.raises(DatasetLayoutError, match=r"missing mask for image 5\.tif.*unreadable image .*6\.tif"):
        clinicdb_items(broken)
    shutil.rmtree(broken / "Ground Truth")
    with pytest.raises(FileNotFoundError, match="CVC-ClinicDB Ground Truth folder not found"):
        clinicdb_items(broken)


def test_download_is_refused_with_instructions(tmp_path):
    with pytest.raises(DownloadError, match="polyp.grand-challenge.org"):
        prepare_clinicdb(tmp_path, download=True)
