from __future__ import annotations

import json
import shutil

import h5py
import nibabel as nib
import numpy as np
import pytest
import torch
from monai.data import load_decathlon_datalist

from monai_imbalance.apps.checks import DatasetLayoutError, write_synthetic_marker
from monai_imbalance.apps.download import DownloadError
from monai_imbalance.apps.lookalike import write_synapse_lookalike
from monai_imbalance.apps.synapse import (
    SYNAPSE_NUM_TRAIN_SLICES,
    SYNAPSE_TEST_CASES,
    SYNAPSE_TRAIN_CASES,
    SYNAPSE_TRAIN_SLICES,
    convert_btcv_to_synapse,
    map_btcv_labels,
    normalise_ct,
    prepare_synapse,
    synapse_items,
    synapse_split,
)
from monai_imbalance.transforms import LoadArrayd


@pytest.fixture(scope="module")
def synapse(tmp_path_factory):
    return write_synapse_lookalike(tmp_path_factory.mktemp("synapse") / "Synapse", seed=0)


@pytest.fixture
def broken(synapse, tmp_path):
    return shutil.copytree(synapse, tmp_path / "Synapse")


def test_transunet_cases_and_slice_counts():
    assert len(SYNAPSE_TRAIN_CASES) == 18 and len(SYNAPSE_TEST_CASES) == 12
    assert sum(SYNAPSE_TRAIN_SLICES.values()) == SYNAPSE_NUM_TRAIN_SLICES == 2211
    assert SYNAPSE_TEST_CASES == ("0001", "0002", "0003", "0004", "0008", "0022", "0025", "0029", "0032", "0035",
                                  "0036", "0038")
    btcv_training = {f"{n:04d}" for n in (*range(1, 11), *range(21, 41))}  # the 30 labelled BTCV cases
    assert set(SYNAPSE_TRAIN_CASES) | set(SYNAPSE_TEST_CASES) == btcv_training
    assert not set(SYNAPSE_TRAIN_CASES) & set(SYNAPSE_TEST_CASES)


def test_btcv_label_map_by_hand():
    btcv = np.array([[0, 1, 2, 3, 4, 5, 6], [7, 8, 9, 10, 11, 12, 13]])
    expected = np.array([[0, 1, 2, 3, 4, 0, 5], [6, 7, 0, 0, 8, 0, 0]])
    np.testing.assert_array_equal(map_btcv_labels(btcv), expected)
    np.testing.assert_array_equal(map_btcv_labels(btcv.astype(np.float32)), expected)
    assert map_btcv_labels(btcv).dtype == np.uint8
    with pytest.raises(ValueError, match="value 14"):
        map_btcv_labels(np.array([14]))
    with pytest.raises(ValueError, match="non-integer"):
        map_btcv_labels(np.array([1.5]))


def test_ct_window():
    np.testing.assert_allclose(normalise_ct(np.array([-1000, -125, 75, 275, 3000])), [0, 0, 0.5, 1, 1])
    assert normalise_ct(np.zeros(2, dtype=np.int16)).dtype == np.float32


def test_conversion_from_raw_btcv_by_hand(tmp_path):
    raw = tmp_path / "RawData" / "Training"
    (raw / "img").mkdir(parents=True)
    (raw / "label").mkdir()
    hu = np.full((3, 4, 2), -1000, dtype=np.int16)  # NIfTI (x, y, z)
    hu[0, 1, 0] = 75
    hu[2, 3, 1] = 275
    lab = np.zeros((3, 4, 2), dtype=np.uint8)
    lab[0, 1, 0], lab[2, 3, 1], lab[1, 1, 1], lab[1, 2, 0] = 6, 11, 5, 13
    affine = np.diag([0.7, 0.7, 2.5, 1.0])
    for case in ("0005", "0001"):
        nib.save(nib.Nifti1Image(hu, affine), str(raw / "img" / f"img{case}.nii.gz"))
        nib.save(nib.Nifti1Image(lab, affine), str(raw / "label" / f"label{case}.nii.gz"))
    out = convert_btcv_to_synapse(tmp_path, tmp_path / "Synapse", test_cases=["0001"])
    with np.load(out / "train_npz" / "case0005_slice000.npz") as s0, \
            np.load(out / "train_npz" / "case0005_slice001.npz") as s1:
        assert s0["image"].shape == (4, 3) and s0["image"].dtype == np.float32  # (H, W) = NIfTI (y, x)
        assert s0["image"][1, 0] == pytest.approx(0.5) and s0["image"][0, 0] == 0.0
        assert s1["image"][3, 2] == pytest.approx(1.0)
        assert s0["label"].dtype == np.float32  # stored as float, like TransUNet's files
        assert (s0["label"][1, 0], s0["label"][2, 1], s1["label"][3, 2], s1["label"][1, 1]) == (5, 0, 8, 0)
        assert set(np.unique(s0["label"])) == {0, 5}
    with h5py.File(out / "test_vol_h5" / "case0001.npy.h5") as f:
        assert f["image"].shape == f["label"].shape == (2, 4, 3)
        assert f["label"][1, 3, 2] == 8 and f["image"][0, 1, 0] == pytest.approx(0.5)
    assert (out / "lists_Synapse" / "train.txt").read_text() == "case0005_slice000\ncase0005_slice001\n"
    assert (out / "lists_Synapse" / "test_vol.txt").read_text() == "case0001\n"
    record = json.loads((out / "conversion.json").read_text())
    assert record["spacing"]["0005"] == [2.5, 0.7, 0.7] and record["clip"] == [-125.0, 275.0]
    items = synapse_items(out, expected=None)
    assert [i["id"] for i in items["train"]] == ["case0005_slice000", "case0005_slice001"]
    assert items["test"][0]["num_slices"] == 2 and items["train"][0]["spacing"] == [2.5, 0.7, 0.7]


def test_conversion_rejects_unpaired_and_missing_cases(tmp_path):
    (tmp_path / "img").mkdir()
    (tmp_path / "label").mkdir()
    nib.save(nib.Nifti1Image(np.zeros((2, 2, 2), np.int16), np.eye(4)), str(tmp_path / "img" / "img0005.nii.gz"))
    with pytest.raises(DatasetLayoutError, match=r"missing label for img0005\.nii\.gz.*case 0001 is listed"):
        convert_btcv_to_synapse(tmp_path, tmp_path / "out", test_cases=["0001"])


def test_lookalike_items_and_fixed_test_cases(synapse):
    items = synapse_items(synapse)
    cases = sorted({i["case"] for i in items["train"]})
    assert cases == list(SYNAPSE_TRAIN_CASES)
    assert [i["case"] for i in items["test"]] == list(SYNAPSE_TEST_CASES)
    listed = (synapse / "lists_Synapse" / "train.txt").read_text().split()
    assert sorted(i["id"] for i in items["train"]) == sorted(listed)
    first = items["train"][0]
    assert first["image"] == first["label"] and first["image"].endswith("train_npz/case0005_slice000.npz")
    with np.load(first["image"]) as data:
        assert data["label"].dtype == np.float32 and data["image"].dtype == np.float32


def test_loader_casts_float_labels_and_reads_h5_volumes(synapse):
    items = synapse_items(synapse)
    d = LoadArrayd(["image", "label"])(items["train"][0])
    with np.load(items["train"][0]["image"]) as data:
        np.testing.assert_array_equal(d["label"][0].numpy(), data["label"].astype(np.int64))
        np.testing.assert_array_equal(d["image"][0].numpy(), data["image"])
    assert d["label"].dtype == torch.int64 and d["image"].dtype == torch.float32
    assert d["image"].shape == (1, 32, 32) and d["image"].meta["filename_or_obj"] == items["train"][0]["image"]
    v = LoadArrayd(["image", "label"])(items["test"][0])
    assert v["image"].shape == v["label"].shape == (1, items["test"][0]["num_slices"], 32, 32)
    assert set(v["label"].unique().tolist()) <= set(range(9))


def test_split_holds_training_cases_out(synapse):
    items = synapse_items(synapse)
    sections, info = synapse_split(items, num_val_cases=3, seed=5)
    val_cases = {i["case"] for i in sections["validation"]}
    assert len(val_cases) == 3 and val_cases == set(info["validation_cases"]) <= set(SYNAPSE_TRAIN_CASES)
    assert not val_cases & {i["case"] for i in sections["training"]}
    assert len(sections["training"]) + len(sections["validation"]) == len(items["train"])
    assert synapse_split(items, num_val_cases=3, seed=5)[1]["validation_cases"] == info["validation_cases"]
    sections, info = synapse_split(items, val_cases=["5", "0040"])
    assert {i["case"] for i in sections["validation"]} == {"0005", "0040"}
    with pytest.raises(ValueError, match="not training cases"):
        synapse_split(items, val_cases=["0001"])


def test_prepare_from_raw_with_validation_volumes(tmp_path):
    raw = write_synapse_lookalike(tmp_path / "btcv", form="raw", train_cases=("0005", "0006", "0007"),
                                  test_cases=("0001", "0002"))
    path = prepare_synapse(raw, from_raw=True, test_cases=("0001", "0002"), val_cases=["0006"], val_volumes=True,
                           out=tmp_path / "syn.json")
    data = json.loads(path.read_text())
    assert data["synthetic"] and data["split"]["validation_cases"] == ["0006"]
    val = load_decathlon_datalist(path, data_list_key="validation")
    assert len(val) == 1 and val[0]["image"].endswith("val_vol_h5/case0006.npy.h5")
    d = LoadArrayd(["image", "label"])(val[0])
    assert d["image"].shape[1] == val[0]["num_slices"]
    np.testing.assert_allclose(d["image"].pixdim.tolist(), [3.0, 0.8, 0.8], rtol=1e-5)  # (D, H, W) spacing
    raw_label = nib.load(str(raw / "RawData" / "Training" / "label" / "label0006.nii.gz")).get_fdata()
    np.testing.assert_array_equal(d["label"][0].numpy(), map_btcv_labels(raw_label).transpose(2, 1, 0))
    test = load_decathlon_datalist(path, data_list_key="test")
    assert [t["case"] for t in test] == ["0001", "0002"]


def test_missing_unlisted_and_bad_files_are_named(broken):
    (broken / "train_npz" / "case0007_slice001.npz").unlink()
    np.savez(broken / "train_npz" / "case0099_slice000.npz", image=np.zeros((4, 4), np.float32),
             label=np.zeros((4, 4), np.float32))
    np.savez(broken / "train_npz" / "case0009_slice000.npz", image=np.zeros((32, 32), np.float32),
             label=np.full((32, 32), 2.5, np.float32))
    with h5py.File(broken / "test_vol_h5" / "case0003.npy.h5", "w") as f:
        f["image"] = np.zeros((4, 32, 32), np.float32)
    with pytest.raises(DatasetLayoutError) as err:
        synapse_items(broken)
    message = str(err.value)
    assert "missing slice" in message and "case0007_slice001.npz (listed in train.txt)" in message
    assert "slice case0099_slice000.npz is not listed in train.txt" in message
    assert "non-integer values" in message and "case0003.npy.h5 has no dataset ['label']" in message


def test_test_case_in_training_list_and_real_counts(broken):
    lists = broken / "lists_Synapse"
    with lists.joinpath("train.txt").open("a") as f:
        f.write("case0001_slice000\n")
    np.savez(broken / "train_npz" / "case0001_slice000.npz", image=np.zeros((32, 32), np.float32),
             label=np.zeros((32, 32), np.float32))
    with pytest.raises(DatasetLayoutError, match=r"training slices of test cases \['0001'\]"):
        synapse_items(broken)
    (broken / "SYNTHETIC.txt").unlink()
    with pytest.raises(DatasetLayoutError, match="slices per case .* differ from TransUNet's"):
        synapse_items(broken)
    write_synthetic_marker(broken, "Synapse", {"train_cases": 18, "train_slices": 5, "test_cases": 12})
    with pytest.raises(DatasetLayoutError, match="expected 5"):
        synapse_items(broken)
    shutil.rmtree(lists)
    with pytest.raises(FileNotFoundError, match="lists_Synapse folder"):
        synapse_items(broken)


def test_download_is_refused_with_instructions(tmp_path):
    with pytest.raises(DownloadError, match="synapse.org"):
        prepare_synapse(tmp_path, download=True)
