from __future__ import annotations

import json
import shutil

import h5py
import nibabel as nib
import numpy as np
import pytest
from monai.data import load_decathlon_datalist
from monai.transforms import LoadImaged

from monai_imbalance.apps.acdc import (
    ACDC_RESOURCE,
    ACDC_TEST_PATIENTS,
    ACDC_TRAIN_PATIENTS,
    ACDC_VAL_PATIENTS,
    acdc_items,
    acdc_split,
    download_acdc,
    find_acdc_layout,
    prepare_acdc,
    read_info_cfg,
)
from monai_imbalance.apps.checks import DatasetLayoutError
from monai_imbalance.apps.lookalike import write_acdc_lookalike
from monai_imbalance.transforms import ExtractSliced, LoadArrayd


@pytest.fixture(scope="module")
def raw(tmp_path_factory):
    return write_acdc_lookalike(tmp_path_factory.mktemp("acdc") / "database", form="raw", seed=0)


@pytest.fixture(scope="module")
def raw_items(raw):
    return acdc_items(raw)


H5_PATIENTS = {"train": ACDC_TRAIN_PATIENTS[:6], "val": ACDC_VAL_PATIENTS[:2], "test": ACDC_TEST_PATIENTS[:4]}


@pytest.fixture(scope="module")
def h5(tmp_path_factory):
    numbers = [int(p[-3:]) for group in H5_PATIENTS.values() for p in group]
    return write_acdc_lookalike(tmp_path_factory.mktemp("acdc_h5") / "ACDC", form="h5", patients=numbers, seed=0)


@pytest.fixture
def small_raw(tmp_path):
    return write_acdc_lookalike(tmp_path / "database", form="raw", patients=[1, 2, 3], seed=4)


def test_info_cfg_is_parsed_with_types(tmp_path):
    path = tmp_path / "Info.cfg"
    path.write_text("ED: 1\nES: 12\nGroup: DCM\nHeight: 184.0\nNbFrame: 30\nWeight: 95.0\n")
    assert read_info_cfg(path) == {"ED": 1, "ES": 12, "Group": "DCM", "Height": 184.0, "Weight": 95.0,
                                   "NbFrame": 30}
    path.write_text("ED: 1\nES: 12\nGroup: DCM\nHeight: 184.0\nNbFrame: 30\n")
    with pytest.raises(ValueError, match=r"lacks \['Weight'\]"):
        read_info_cfg(path)
    path.write_text("ED: 1\nES: 31\nGroup: DCM\nHeight: 184.0\nNbFrame: 30\nWeight: 95\n")
    with pytest.raises(ValueError, match="outside frames 1..30"):
        read_info_cfg(path)


def test_ssl4mis_lists_are_70_10_20_of_the_100_patients():
    assert (len(ACDC_TRAIN_PATIENTS), len(ACDC_VAL_PATIENTS), len(ACDC_TEST_PATIENTS)) == (70, 10, 20)
    everyone = {*ACDC_TRAIN_PATIENTS, *ACDC_VAL_PATIENTS, *ACDC_TEST_PATIENTS}
    assert everyone == {f"patient{n:03d}" for n in range(1, 101)}
    assert sorted(ACDC_TEST_PATIENTS) == [f"patient{n:03d}" for n in (1, 7, 8, 11, 13, 22, 24, 33, 52, 59, 64, 65, 66,
                                                                      68, 75, 80, 81, 83, 84, 93)]


def test_raw_items_follow_info_cfg_and_keep_spacing(raw, raw_items):
    assert find_acdc_layout(raw) == ("raw", raw / "training")
    items = raw_items
    volumes = items["volumes"]
    assert items["form"] == "raw" and len(volumes) == 200 and not items["slices"]
    for item in volumes[:10]:
        folder = raw / "training" / item["patient"]
        info = read_info_cfg(folder / "Info.cfg")
        assert item["frame"] == info[item["phase"]] and item["group"] == info["Group"]
        assert item["nb_frames"] == info["NbFrame"] and item["weight"] == info["Weight"]
        assert item["image"].endswith(f"{item['patient']}_frame{item['frame']:02d}.nii.gz")
        assert item["label"].endswith("_gt.nii.gz") and item["image_4d"].endswith("_4d.nii.gz")
        header = nib.load(item["image"]).header.get_zooms()
        np.testing.assert_allclose(item["spacing"], header, rtol=1e-6)
        assert item["spacing"][2] >= 3 * item["spacing"][0]  # anisotropic, as ACDC
    assert {v["phase"] for v in volumes} == {"ED", "ES"}
    assert any(v["phase"] == "ED" and v["frame"] != 1 for v in volumes)  # ED read from Info.cfg, not assumed 1


def test_raw_split_fixed_test_patients_and_slices(raw_items):
    items = raw_items
    sections, info = acdc_split(items, "ssl4mis")
    assert {v["patient"] for v in sections["test"]} == set(ACDC_TEST_PATIENTS)
    assert len(sections["test"]) == 40 and len(sections["validation"]) == 20
    train_volumes = [v for v in items["volumes"] if v["patient"] in ACDC_TRAIN_PATIENTS]
    assert len(sections["training"]) == sum(v["shape"][2] for v in train_volumes)
    assert {s["slice"] for s in sections["training"]} == set(range(max(v["shape"][2] for v in train_volumes)))
    volumes_only, _ = acdc_split(items, "ssl4mis", slices=False)
    assert len(volumes_only["training"]) == 140
    folds = [acdc_split(items, "kfold", fold=k, seed=1)[0] for k in range(5)]
    val_patients = [{v["patient"] for v in f["validation"]} for f in folds]
    assert sum(len(p) for p in val_patients) == 100 and len(set().union(*val_patients)) == 100


def test_monai_loads_raw_volumes_with_spacing_and_slices_them(raw, tmp_path):
    path = prepare_acdc(raw, out=tmp_path / "acdc.json")
    data = json.loads(path.read_text())
    assert data["labels"] == {"0": "background", "1": "RV", "2": "MYO", "3": "LV"}
    assert data["label_values"] == {"RV": 1, "MYO": 2, "LV": 3} and data["synthetic"]
    item = load_decathlon_datalist(path)[0]
    d = LoadImaged(["image", "label"], ensure_channel_first=True)(item)
    np.testing.assert_allclose(d["image"].pixdim.tolist(), item["spacing"], rtol=1e-5)
    assert set(np.unique(d["label"].numpy())) <= {0, 1, 2, 3}
    volume = d["image"].clone()
    s = ExtractSliced(["image", "label"])(d)
    k = item["slice"]
    np.testing.assert_array_equal(s["image"][0].numpy(), volume[0, :, :, k].numpy())
    assert s["image"].shape == (1, *item["shape"][:2]) and s["image"].meta["slice_index"] == k
    np.testing.assert_allclose(s["image"].pixdim.tolist(), item["spacing"][:2], rtol=1e-5)  # in-plane kept


def test_h5_form_items_lists_and_loader(h5):
    assert find_acdc_layout(h5)[0] == "h5"
    items = acdc_items(h5)
    assert items["form"] == "h5" and len(items["volumes"]) == 2 * 12
    assert items["lists"]["test"] == [f"{p}_frame{f:02d}" for p in H5_PATIENTS["test"] for f in (1, 2)]
    assert sum(v["num_slices"] for v in items["volumes"]) == len(items["slices"])
    assert {s["slice"] for s in items["slices"]} >= {1} and 0 not in {s["slice"] for s in items["slices"]}
    assert {v["frame"] for v in items["volumes"]} == {1, 2}
    assert all(v["phase"] == ("ED" if v["frame"] == 1 else "ES") for v in items["volumes"])
    sections, _ = acdc_split(items)
    assert all("slice" in s for s in sections["training"])
    assert {s["patient"] for s in sections["training"]} == set(H5_PATIENTS["train"])
    assert {v["patient"] for v in sections["validation"]} == set(H5_PATIENTS["val"])
    assert {v["patient"] for v in sections["test"]} == set(H5_PATIENTS["test"])
    d = LoadArrayd(["image", "label"])(sections["training"][0])
    assert d["image"].ndim == 3 and d["label"].dtype.is_floating_point is False
    v = LoadArrayd(["image", "label"])(sections["test"][0])
    assert v["image"].shape[1] == sections["test"][0]["num_slices"]


def test_raw_broken_layouts_are_named(small_raw):
    p1, p2, p3 = (small_raw / "training" / f"patient00{n}" for n in (1, 2, 3))
    gt = next(p1.glob("*_gt.nii.gz"))
    gt.unlink()
    info = (p2 / "Info.cfg").read_text().replace("Group:", "Grp:")
    (p2 / "Info.cfg").write_text(info)
    bad = next(p3.glob("*_gt.nii.gz"))
    img = nib.load(str(bad))
    arr = np.asarray(img.dataobj).copy()
    arr[0, 0, 0] = 5
    nib.save(nib.Nifti1Image(arr, img.affine), str(bad))
    (p3 / "patient003_4d.nii.gz").unlink()
    with pytest.raises(DatasetLayoutError) as err:
        acdc_items(small_raw)
    message = str(err.value)
    assert f"missing {gt}" in message and "lacks ['Group']" in message
    assert "has value 5 but num_classes=4" in message and "patient003_4d.nii.gz" in message


def test_raw_counts_and_missing_info(small_raw):
    assert len(acdc_items(small_raw)["volumes"]) == 6
    with pytest.raises(DatasetLayoutError, match="found 3 patients, expected 100"):
        acdc_items(small_raw, expected_count=100)
    (small_raw / "training" / "patient002" / "Info.cfg").unlink()
    with pytest.raises(DatasetLayoutError, match="Info.cfg not found"):
        acdc_items(small_raw)
    with pytest.raises(FileNotFoundError, match="ACDC folder not found"):
        acdc_items(small_raw / "training" / "patient001")


def test_h5_broken_layouts_are_named(h5, tmp_path):
    broken = shutil.copytree(h5, tmp_path / "ACDC")
    (broken / "data" / "slices" / "patient099_frame01_slice_2.h5").unlink()
    with h5py.File(broken / "data" / "patient038_frame02.h5", "a") as f:
        f["label"][0, 0, 0] = 9
    with (broken / "train.list").open("a") as f:
        f.write("patient001_frame01\n")  # a test patient in the training list
    with pytest.raises(DatasetLayoutError) as err:
        acdc_items(broken)
    message = str(err.value)
    assert "patient099_frame01: slices" in message and "has value 9" in message
    assert "train.list names patients outside SSL4MIS's train list: ['patient001']" in message
    (broken / "SYNTHETIC.txt").unlink()  # a real folder must hold SSL4MIS's exact lists
    with pytest.raises(DatasetLayoutError, match="test.list has 4 patients that differ from SSL4MIS's 20"):
        acdc_items(broken)


def test_download_uses_the_official_collection_url(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr("monai.apps.utils.download_url", lambda url, filepath, **kw: calls.append((url, kw)))
    monkeypatch.setattr("monai.apps.utils.extractall",
                        lambda filepath, output_dir, **kw: (output_dir / "ACDC" / "database").mkdir(parents=True))
    assert download_acdc(tmp_path) == tmp_path / "ACDC"
    assert calls[0][0] == ACDC_RESOURCE.url and calls[0][1]["hash_val"] == ACDC_RESOURCE.sha256
    assert "humanheart-project.creatis.insa-lyon.fr" in ACDC_RESOURCE.url


@pytest.fixture(scope="module")
def minimal(tmp_path_factory):
    """The set public copies ship: training slices flat in data/, val/test volumes only, train_slices.list."""
    numbers = [int(p[-3:]) for group in H5_PATIENTS.values() for p in group]
    return write_acdc_lookalike(tmp_path_factory.mktemp("acdc_min") / "ACDC", form="h5", patients=numbers, seed=0,
                                h5_set="minimal")


def test_minimal_flat_set_prepares_like_ssl4mis_reads_it(minimal, h5, tmp_path):
    files = {p.name for p in (minimal / "data").iterdir()}
    assert not (minimal / "data" / "slices").exists()
    assert "patient099_frame01.h5" not in files and "patient099_frame01_slice_1.h5" in files  # training: slices
    assert "patient011_frame01.h5" in files and "patient011_frame01_slice_1.h5" not in files  # test: volumes
    items = acdc_items(minimal)
    assert items["layout"]["set"] == "minimal" and items["layout"]["slices"] == ["data"]
    assert items["layout"]["description"].startswith("SSL4MIS HDF5 form, minimal set")
    listed = [line for line in (minimal / "train_slices.list").read_text().splitlines() if line]
    assert sorted(s["id"] for s in items["slices"]) == sorted(listed)
    assert {v["patient"] for v in items["volumes"]} == set(H5_PATIENTS["val"] + H5_PATIENTS["test"])
    full = acdc_items(h5)  # the original SSL4MIS layout of the same patients: the same training slices
    assert full["layout"]["set"] == "full" and full["layout"]["slices"] == ["data/slices"]
    train_ids = {s["id"] for s in full["slices"] if s["patient"] in H5_PATIENTS["train"]}
    assert train_ids == {s["id"] for s in items["slices"]}
    path = prepare_acdc(minimal, out=tmp_path / "min.json")
    data = json.loads(path.read_text())
    assert data["layout"].startswith("SSL4MIS HDF5 form, minimal set") and data["synthetic"]
    assert data["numTraining"] == len(listed) and data["numValidation"] == 4 and data["numTest"] == 8
    # phases come from the lists (frame01 = ED) even where no volume of the patient is on disk
    assert {it["phase"] for it in data["training"]} == {"ED", "ES"}
    with pytest.raises(ValueError, match="supports the 'ssl4mis' split only"):
        prepare_acdc(minimal, out=tmp_path / "k.json", split="kfold")


def test_minimal_set_keeps_the_checks_that_matter(minimal, tmp_path):
    broken = shutil.copytree(minimal, tmp_path / "ACDC")
    (broken / "data" / "patient038_frame01_slice_2.h5").unlink()
    (broken / "data" / "patient028_frame02.h5").unlink()
    with h5py.File(broken / "data" / "patient099_frame02_slice_1.h5", "a") as f:
        del f["label"]
    with pytest.raises(DatasetLayoutError) as err:
        acdc_items(broken)
    message = str(err.value)
    assert "missing training slice patient038_frame01_slice_2.h5 (listed in train_slices.list" in message
    assert "missing volume" in message and "patient028_frame02.h5" in message and "val.list" in message
    assert "patient099_frame02_slice_1.h5 has no dataset ['label']" in message


def test_count_check_names_its_override_and_the_bundle_override_skips_it(minimal, tmp_path):
    from monai_imbalance.engines import dataset_sections

    real = shutil.copytree(minimal, tmp_path / "ACDC")
    (real / "SYNTHETIC.txt").unlink()  # looks like a real copy holding a subset of the patients
    with pytest.raises(DatasetLayoutError, match=r"expected 100 \(a subset on purpose\?.*--expected_count None"):
        acdc_items(real)
    for skip in (None, "None", "null"):  # Python, command line (fire) and YAML spellings
        sections = dataset_sections("acdc", real, expected_count=skip)
        assert len(sections["test"]) == 8 and all("slice" in s for s in sections["training"])


def test_full_check_names_a_truncated_nifti_image(tmp_path):
    import gzip
    import re

    from monai_imbalance.apps.checks import nifti_data_problem

    root = write_acdc_lookalike(tmp_path / "acdc", patients=[1, 2])
    image = sorted((root / "training" / "patient001").glob("patient001_frame??.nii.gz"))[0]
    data = image.read_bytes()
    assert nifti_data_problem(image) is None
    plain = tmp_path / "plain.nii"  # the same volume uncompressed, cut by 100 bytes: its header still reads
    plain.write_bytes(gzip.decompress(data))
    assert nifti_data_problem(plain) is None
    plain.write_bytes(gzip.decompress(data)[:-100])
    assert re.search(r"plain\.nii is truncated: \d+ bytes, its header needs \d+", nifti_data_problem(plain))
    image.write_bytes(data[: len(data) // 2])  # a download or copy cut short
    assert "is truncated or damaged" in nifti_data_problem(image)
    assert nib.load(str(image)).shape  # nibabel reads its header: the old check let it through
    with pytest.raises(DatasetLayoutError, match=re.escape(image.name)):
        acdc_items(root, expected_count=None, check="full")
    assert acdc_items(root, expected_count=None, check="header")  # headers only: not seen, as documented
