from __future__ import annotations

import json
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from monai.data import partition_dataset
from PIL import Image

from monai_imbalance.apps.datalist import write_datalist
from monai_imbalance.apps.lookalike import write_decathlon_lookalike
from monai_imbalance.apps.synthetic import write_synthetic_dataset
from monai_imbalance.apps.user_data import read_user_dataset, user_sections

SIZE = (16, 16, 8)


def _ids(items):
    return [item["id"] for item in items]


def _png(path: Path, value: int = 0, mode: str = "L") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    shape = (4, 4, 3) if mode == "RGB" else (4, 4)
    Image.fromarray(np.full(shape, value, dtype=np.uint8), mode=mode).save(path)
    return path


def _pairs_folder(root: Path, names, image_dir="images", label_dir="labels", image_ext=".jpg", label_ext=".png"):
    for name in names:
        _png(root / image_dir / f"{name}{image_ext}", 100, "RGB")
        _png(root / label_dir / f"{name}{label_ext}", 255)
    return root


@pytest.fixture(scope="module")
def msd(tmp_path_factory):
    return write_decathlon_lookalike(tmp_path_factory.mktemp("msd"), num_cases=6, spatial_size=SIZE)


@pytest.fixture(scope="module")
def nnunet(tmp_path_factory):
    return write_decathlon_lookalike(
        tmp_path_factory.mktemp("nnunet"), num_cases=4, spatial_size=SIZE, modalities=("T1", "T2"), nnunet_v2=True
    )


# ------------------------------------------------------------------------------------------- datalist JSON


def test_datalist_json_from_write_synthetic_dataset(tmp_path):
    path = write_synthetic_dataset(tmp_path / "syn", 5, spatial_size=(8, 8), val_fraction=0.4)
    dataset = read_user_dataset(path)
    assert dataset.kind == "datalist"
    assert dataset.source == path.absolute()
    assert _ids(dataset.items) == ["case_0000", "case_0001", "case_0002"]
    assert _ids(dataset.sections["validation"]) == ["case_0003", "case_0004"]
    assert dataset.sections["test"] == []
    first = dataset.items[0]
    assert first["image"] == str((tmp_path / "syn" / "images" / "case_0000.png").absolute())
    assert first["label"] == str((tmp_path / "syn" / "labels" / "case_0000.png").absolute())
    assert dataset.class_names is None and dataset.modality is None and dataset.tensor_image_size is None
    assert dataset.name == "monai_imbalance synthetic dataset"
    # data_list_key picks the section returned as items
    assert _ids(read_user_dataset(path, data_list_key="validation").items) == ["case_0003", "case_0004"]


def test_datalist_json_class_names_modality_and_own_ids(tmp_path):
    _pairs_folder(tmp_path, ["a", "b", "c"])
    items = [
        {"image": str(tmp_path / "images" / f"{n}.jpg"), "label": str(tmp_path / "labels" / f"{n}.png")} for n in "abc"
    ]
    items[2]["id"] = "third"
    path = write_datalist(
        tmp_path / "out" / "data.json",
        {"training": items[:2], "validation": items[2:]},
        name="mine",
        description="d",
        split={"name": "given"},
        labels={0: "background", 1: "polyp"},
        modality={0: "RGB"},
    )
    dataset = read_user_dataset(path)
    assert dataset.kind == "datalist"  # written by monai_imbalance (a 'split' key), not a Decathlon task
    assert dataset.class_names == {0: "background", 1: "polyp"}
    assert dataset.modality == {0: "RGB"}
    assert dataset.tensor_image_size == "2D"
    assert _ids(dataset.items) == ["a", "b"]
    assert _ids(dataset.sections["validation"]) == ["third"]
    assert dataset.items[1]["image"] == str(tmp_path / "images" / "b.jpg")  # relative in the file, absolute here


def test_datalist_paths_relative_to_data_root(tmp_path):
    _pairs_folder(tmp_path / "data", ["x", "y"])
    path = tmp_path / "lists" / "list.json"
    path.parent.mkdir()
    path.write_text(json.dumps({"training": [{"image": f"images/{n}.jpg", "label": f"labels/{n}.png"} for n in "xy"]}))
    with pytest.raises(FileNotFoundError, match=r"set data_root.*lists/images/x\.jpg"):
        read_user_dataset(path)
    dataset = read_user_dataset(path, data_root=tmp_path / "data")
    assert [item["label"] for item in dataset.items] == [str(tmp_path / "data" / "labels" / f"{n}.png") for n in "xy"]
    with pytest.raises(FileNotFoundError, match="data_root folder not found"):
        read_user_dataset(path, data_root=tmp_path / "nowhere")


def test_clashing_file_names_get_folder_qualified_ids(tmp_path):
    for sub in ("p1", "p2"):
        _png(tmp_path / sub / "img.png")
        _png(tmp_path / sub / "gt.png")
    items = [{"image": f"{s}/img.png", "label": f"{s}/gt.png"} for s in ("p1", "p2")]
    (tmp_path / "d.json").write_text(json.dumps({"training": items}))
    assert _ids(read_user_dataset(tmp_path / "d.json").items) == ["p1_img", "p2_img"]
    items = [{**item, "id": "same"} for item in items]
    (tmp_path / "d.json").write_text(json.dumps({"training": items}))
    with pytest.raises(ValueError, match="not unique: same"):
        read_user_dataset(tmp_path / "d.json")


# ------------------------------------------------------------------------------------------------ Decathlon


def test_decathlon_task_folder_items_metadata_and_files(msd):
    task = msd.parent
    assert task.name == "Task99_Synthetic"
    dataset = read_user_dataset(task)  # the Task folder: its dataset.json is read
    assert dataset.kind == "decathlon"
    assert dataset.source == msd
    assert dataset.name == "Synthetic"
    assert dataset.class_names == {0: "background", 1: "organ", 2: "lesion"}
    assert dataset.modality == {0: "CT"}
    assert dataset.tensor_image_size == "3D"
    names = [f"synthetic_{i:03d}" for i in range(6)]
    assert dataset.items == [
        {"image": str(task / "imagesTr" / f"{n}.nii.gz"), "label": str(task / "labelsTr" / f"{n}.nii.gz"), "id": n}
        for n in names
    ]
    assert dataset.sections["test"] == [
        {"image": str(task / "imagesTs" / f"synthetic_{i:03d}.nii.gz"), "id": f"synthetic_{i:03d}"} for i in (6, 7)
    ]
    assert read_user_dataset(msd).items == dataset.items  # the dataset.json path itself
    data = json.loads(msd.read_text())
    assert data["description"].startswith("SYNTHETIC")
    assert data["training"][0] == {
        "image": "./imagesTr/synthetic_000.nii.gz",
        "label": "./labelsTr/synthetic_000.nii.gz",
    }
    assert data["test"] == ["./imagesTs/synthetic_006.nii.gz", "./imagesTs/synthetic_007.nii.gz"]
    image, label = nib.load(dataset.items[0]["image"]), nib.load(dataset.items[0]["label"])
    assert image.shape == SIZE and image.get_data_dtype() == np.int16
    assert np.allclose(image.header.get_zooms(), (0.8, 0.8, 2.5)) and np.allclose(
        np.diag(image.affine)[:3], (0.8, 0.8, 2.5)
    )
    assert label.get_data_dtype() == np.uint8
    assert set(np.unique(np.asanyarray(label.dataobj))) == {0, 1, 2}


def test_decathlon_junk_files_exist_and_are_ignored(msd, nnunet):
    for path in (msd, nnunet):
        junk = sorted((path.parent / "imagesTr").glob("._*")) + sorted((path.parent / "labelsTr").glob("._*"))
        assert len(junk) == 2
        dataset = read_user_dataset(path)
        listed = [f for item in dataset.items for f in np.atleast_1d(item["image"]).tolist() + [item["label"]]]
        assert not any(Path(f).name.startswith("._") for f in listed)


def test_decathlon_4d_multimodal(tmp_path):
    path = write_decathlon_lookalike(tmp_path, num_cases=2, spatial_size=SIZE, modalities=("FLAIR", "T1w", "T1gd"))
    dataset = read_user_dataset(path)
    assert dataset.tensor_image_size == "4D"
    assert dataset.modality == {0: "FLAIR", 1: "T1w", 2: "T1gd"}
    assert isinstance(dataset.items[0]["image"], str)  # one 4-D file, as BRATS
    image = nib.load(dataset.items[0]["image"])
    assert image.shape == (*SIZE, 3) and image.get_data_dtype() == np.float32
    data = np.asanyarray(image.dataobj)
    assert not np.allclose(data[..., 0], data[..., 1])  # the channels are different images
    assert nib.load(dataset.items[0]["label"]).shape == SIZE


def test_nnunet_v2_two_channels(nnunet):
    task = nnunet.parent
    assert task.name == "Dataset999_Synthetic"
    data = json.loads(nnunet.read_text())
    assert "training" not in data and data["file_ending"] == ".nii.gz"
    dataset = read_user_dataset(task)
    assert dataset.kind == "decathlon"
    assert dataset.modality == {0: "T1", 1: "T2"}
    assert dataset.class_names == {0: "background", 1: "organ", 2: "lesion"}
    assert dataset.items == [
        {
            "image": [str(task / "imagesTr" / f"synthetic_{i:03d}_{c:04d}.nii.gz") for c in (0, 1)],
            "label": str(task / "labelsTr" / f"synthetic_{i:03d}.nii.gz"),
            "id": f"synthetic_{i:03d}",
        }
        for i in range(4)
    ]
    assert _ids(dataset.sections["test"]) == ["synthetic_004", "synthetic_005"]
    assert dataset.sections["test"][0]["image"][1] == str(task / "imagesTs" / "synthetic_004_0001.nii.gz")
    assert nib.load(dataset.items[0]["image"][0]).shape == SIZE  # one 3-D file per channel


def test_nnunet_v2_single_channel_image_is_a_path(tmp_path):
    path = write_decathlon_lookalike(tmp_path, num_cases=2, spatial_size=SIZE, nnunet_v2=True)
    dataset = read_user_dataset(path)
    assert dataset.items[0]["image"] == str(path.parent / "imagesTr" / "synthetic_000_0000.nii.gz")
    assert dataset.modality == {0: "CT"}


def test_nnunet_v2_missing_channel_label_and_count_are_errors(tmp_path):
    path = write_decathlon_lookalike(tmp_path, num_cases=3, spatial_size=SIZE, modalities=("T1", "T2"), nnunet_v2=True)
    task = path.parent
    (task / "imagesTr" / "synthetic_001_0001.nii.gz").unlink()
    with pytest.raises(ValueError, match=r"case synthetic_001 has channel files \['synthetic_001_0000.nii.gz'\]"):
        read_user_dataset(path)
    shutil.copy(task / "imagesTr" / "synthetic_000_0001.nii.gz", task / "imagesTr" / "synthetic_001_0001.nii.gz")
    (task / "labelsTr" / "synthetic_002.nii.gz").unlink()
    with pytest.raises(ValueError, match=r"2 image\(s\) .* without a label .*synthetic_002_0000\.nii\.gz"):
        read_user_dataset(path)
    for name in ("synthetic_002_0000.nii.gz", "synthetic_002_0001.nii.gz"):
        (task / "imagesTr" / name).unlink()
    with pytest.raises(ValueError, match="numTraining=3 .* 2 labelled"):
        read_user_dataset(path)


def test_decathlon_listed_file_missing_is_named(tmp_path):
    path = write_decathlon_lookalike(tmp_path, num_cases=2, spatial_size=SIZE)
    (path.parent / "labelsTr" / "synthetic_001.nii.gz").unlink()
    with pytest.raises(FileNotFoundError, match=r"labelsTr/synthetic_001\.nii\.gz"):
        read_user_dataset(path)


# ----------------------------------------------------------------------------------------------- folders


def test_folder_isic_style_segmentation_names_and_junk(tmp_path):
    root = tmp_path / "ISIC"
    for n in ("ISIC_0000000", "ISIC_0000001"):
        _png(root / "images" / f"{n}.jpg", 90, "RGB")
        _png(root / "masks" / f"{n}_segmentation.png", 255)
    (root / "images" / "._ISIC_0000000.jpg").write_bytes(b"\x00\x05\x16\x07")  # macOS junk
    (root / "masks" / ".DS_Store").write_bytes(b"junk")
    (root / "images" / "LICENSE.txt").write_text("licence")
    dataset = read_user_dataset(root)
    assert dataset.kind == "folder" and dataset.name == "ISIC" and dataset.source == root
    assert dataset.items == [
        {"image": str(root / "images" / f"{n}.jpg"), "label": str(root / "masks" / f"{n}_segmentation.png"), "id": n}
        for n in ("ISIC_0000000", "ISIC_0000001")
    ]
    assert dataset.class_names is None and dataset.modality is None and dataset.tensor_image_size is None
    assert dataset.sections["validation"] == [] and dataset.sections["test"] == []


def test_folder_mixed_suffixes_and_label_name_endings(tmp_path):
    root = tmp_path / "mix"
    _png(root / "images" / "a.jpg", mode="RGB")
    _png(root / "labels" / "a.png")
    _png(root / "images" / "b.PNG")
    _png(root / "labels" / "b_mask.tif")
    _png(root / "images" / "c_seg.jpeg", mode="RGB")
    _png(root / "labels" / "c_seg.bmp")  # the exact name wins over stripping "_seg"
    _png(root / "images" / "d.png")
    _png(root / "labels" / "d_Label.png")
    dataset = read_user_dataset(root)
    assert [(Path(i["image"]).name, Path(i["label"]).name, i["id"]) for i in dataset.items] == [
        ("a.jpg", "a.png", "a"),
        ("b.PNG", "b_mask.tif", "b"),
        ("c_seg.jpeg", "c_seg.bmp", "c_seg"),
        ("d.png", "d_Label.png", "d"),
    ]


def test_folder_imagestr_nnunet_names_match_the_dataset_json(tmp_path, nnunet):
    copy = tmp_path / "copy"
    shutil.copytree(nnunet.parent, copy)
    (copy / "dataset.json").unlink()
    dataset = read_user_dataset(copy)
    assert dataset.kind == "folder"
    with_json = read_user_dataset(nnunet)
    moved = [
        {
            k: (
                v.replace(str(nnunet.parent), str(copy))
                if isinstance(v, str)
                else [x.replace(str(nnunet.parent), str(copy)) for x in v]
            )
            for k, v in item.items()
        }
        for item in with_json.items
    ]
    assert dataset.items == moved
    assert _ids(dataset.sections["test"]) == ["synthetic_004", "synthetic_005"]  # imagesTs/, channels grouped


def test_folder_unmatched_files_are_named(tmp_path):
    root = _pairs_folder(tmp_path / "u", ["a", "b"])
    _png(root / "images" / "lonely.jpg", mode="RGB")
    with pytest.raises(ValueError, match=r"1 image\(s\) .*without a label.*: lonely\.jpg"):
        read_user_dataset(root)
    (root / "images" / "lonely.jpg").unlink()
    _png(root / "labels" / "orphan_mask.png")
    with pytest.raises(ValueError, match=r"1 label\(s\) .*without an image.*: orphan_mask\.png"):
        read_user_dataset(root)
    for i in range(8):
        _png(root / "labels" / f"z{i}.png")
    with pytest.raises(
        ValueError, match=r"9 label\(s\).*orphan_mask\.png, z0\.png, z1\.png, z2\.png, z3\.png, \.\.\. \(4 more\)"
    ):
        read_user_dataset(root)


def test_folder_duplicate_names_are_errors(tmp_path):
    root = _pairs_folder(tmp_path / "d", ["a"])
    _png(root / "images" / "a.png")
    with pytest.raises(ValueError, match="two image files named a: a.jpg and a.png"):
        read_user_dataset(root)
    (root / "images" / "a.png").unlink()
    _png(root / "labels" / "a_mask.png")
    with pytest.raises(ValueError, match="two label files for image a"):
        read_user_dataset(root)


@pytest.mark.parametrize(
    "text, message",
    [
        ('{"images": []}', "neither a datalist nor a dataset.json"),
        ("[1, 2]", "not an object"),
        ("{oops", "not a JSON file"),
        ('{"training": []}', "training list of .* is empty"),
        ('{"training": ["a.png"]}', "every 'training' entry must be a dict"),
        ('{"training": [{"image": "a.png"}]}', "'training' item 0 has no label"),
        ('{"channel_names": {"0": "CT"}, "file_ending": ".nii.gz"}', r"nnU-Net v2 folder not found: .*imagesTr"),
    ],
)
def test_bad_json_raises_naming_the_problem(tmp_path, text, message):
    path = tmp_path / "x.json"
    path.write_text(text)
    with pytest.raises((ValueError, FileNotFoundError), match=message):
        read_user_dataset(path)


def test_bad_folders_raise_naming_the_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"dataset not found: .*missing"):
        read_user_dataset(tmp_path / "missing")
    _png(tmp_path / "a" / "pictures" / "x.png")
    with pytest.raises(ValueError, match=r"not a dataset folder.*'pictures'"):
        read_user_dataset(tmp_path / "a")
    _png(tmp_path / "b" / "images" / "x.png")
    with pytest.raises(FileNotFoundError, match=r"label folder not found: .*b has images/ but no labels/ or masks/"):
        read_user_dataset(tmp_path / "b")
    (tmp_path / "b" / "labels").mkdir()
    (tmp_path / "b" / "masks").mkdir()
    with pytest.raises(
        ValueError, match=r"more than one image/label folder pair \(images/ \+ labels/, images/ \+ masks/"
    ):
        read_user_dataset(tmp_path / "b")
    (tmp_path / "b" / "masks").rmdir()
    (tmp_path / "b" / "images" / "x.png").unlink()
    with pytest.raises(ValueError, match="no image/label pairs"):
        read_user_dataset(tmp_path / "b")
    with pytest.raises(ValueError, match="data_list_key must be one of"):
        read_user_dataset(tmp_path / "b", data_list_key="train")


# ----------------------------------------------------------------------------------------------- sections


def test_user_sections_kfold_disjoint_covering_and_deterministic(tmp_path):
    names = [f"img{i}" for i in range(11)]
    root = _pairs_folder(tmp_path / "k", names)
    folds = [user_sections(root, fold=f, num_folds=4, seed=3) for f in range(4)]
    vals = [set(_ids(s["validation"])) for s in folds]
    assert set().union(*vals) == set(names) and sum(len(v) for v in vals) == 11
    assert sorted(len(v) for v in vals) == [2, 3, 3, 3]
    for sections, val in zip(folds, vals):
        train = set(_ids(sections["training"]))
        assert not train & val and train | val == set(names)
        assert all(Path(i["image"]).stem == i["id"] for i in sections["training"] + sections["validation"])
    assert user_sections(root, fold=1, num_folds=4, seed=3) == folds[1]
    assert any(
        user_sections(root, fold=f, num_folds=4, seed=4)["validation"] != folds[f]["validation"] for f in range(4)
    )
    with pytest.raises(ValueError, match="fold must be in"):
        user_sections(root, fold=4, num_folds=4)
    with pytest.raises(ValueError, match="cannot make 12 folds from 11 ids"):
        user_sections(root, num_folds=12)


@pytest.mark.parametrize("num_folds", [None, 0, 1])
def test_user_sections_holdout_is_the_last_share_of_a_seeded_shuffle(tmp_path, num_folds):
    names = [f"c{i}" for i in range(10)]
    root = _pairs_folder(tmp_path / "h", names)
    sections = user_sections(root, num_folds=num_folds, seed=5, val_fraction=0.3)
    expected = partition_dataset(sorted(names, key=lambda n: int(n[1:])), ratios=[7, 3], shuffle=True, seed=5)[1]
    assert sorted(_ids(sections["validation"])) == sorted(expected)
    assert len(sections["training"]) == 7 and not set(_ids(sections["training"])) & set(expected)
    assert user_sections(root, num_folds=num_folds, seed=5, val_fraction=0.3) == sections
    assert len(user_sections(root, num_folds=num_folds, val_fraction=0.01)["validation"]) == 1  # at least one
    with pytest.raises(ValueError, match="val_fraction must be in"):
        user_sections(root, num_folds=num_folds, val_fraction=1.0)


def test_user_sections_uses_the_files_own_validation_list(tmp_path):
    path = write_synthetic_dataset(tmp_path / "syn", 5, spatial_size=(8, 8), val_fraction=0.4)
    for fold in (0, 1):
        sections = user_sections(path, fold=fold, num_folds=2, seed=fold)
        assert _ids(sections["training"]) == ["case_0000", "case_0001", "case_0002"]
        assert _ids(sections["validation"]) == ["case_0003", "case_0004"]
    # an empty validation list is no list: the training items are split
    empty = write_synthetic_dataset(tmp_path / "none", 4, spatial_size=(8, 8), val_fraction=0.0)
    sections = user_sections(empty, fold=0, num_folds=2)
    assert len(sections["validation"]) == 2 and len(sections["training"]) == 2


def test_user_sections_decathlon_test_section(msd):
    sections = user_sections(msd, fold=2, num_folds=3, seed=0)
    assert sections["test"] == read_user_dataset(msd).sections["test"]
    assert all(set(item) == {"image", "id"} for item in sections["test"])
    assert len(sections["validation"]) == 2 and len(sections["training"]) == 4


def test_user_sections_rejects_bad_num_folds_and_tiny_holdout(tmp_path):
    root = _pairs_folder(tmp_path / "n", ["a", "b"])
    for bad in (-1, True, 2.5, "3"):
        with pytest.raises(ValueError, match="num_folds must be an integer"):
            user_sections(root, num_folds=bad)
    assert _ids(user_sections(root, num_folds=np.int64(2), fold=1, seed=0)["validation"]) in (["a"], ["b"])
    single = _pairs_folder(tmp_path / "s", ["a"])
    with pytest.raises(ValueError, match="cannot hold out 1 of 1"):
        user_sections(single, num_folds=None)
    assert _ids(user_sections(single, num_folds=None, val_fraction=0.0)["training"]) == ["a"]
