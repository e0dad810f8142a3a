from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from monai.data import load_decathlon_datalist
from monai.transforms import LoadImaged

from monai_imbalance.cli import main
from monai_imbalance.transforms import ExtractSliced, LoadArrayd, LoadBinaryMaskd

pytestmark = pytest.mark.filterwarnings("ignore:builtin type .* has no __module__ attribute")  # ITK's SWIG types


def _load(dataset: str, item: dict) -> dict:
    if dataset in ("kvasir", "clinicdb", "isic2018"):
        return LoadBinaryMaskd("label")(LoadImaged("image", ensure_channel_first=True)(item))
    if item["image"].endswith(".nii.gz"):
        d = LoadImaged(["image", "label"], ensure_channel_first=True)(item)
        return ExtractSliced(["image", "label"])(d) if "slice" in item else d
    return LoadArrayd(["image", "label"])(item)


@pytest.mark.parametrize(
    "dataset, extra, sizes",
    [
        ("kvasir", ["--num-images", "20"], (18, 0, 2)),
        ("kvasir", ["--num-images", "20", "--split", "kvasir_seg"], (18, 2, 0)),  # 880:120 of 20 (seeded)
        ("clinicdb", ["--num-images", "8"], (0, 0, 8)),
        ("isic2018", ["--num-images", "6", "--cache-size", "40"], (6, 3, 3)),
        ("synapse", ["--num-val-cases", "3"], None),
        ("synapse", ["--from-raw", "--val-volumes"], None),
        ("acdc", ["--num-images", "12"], None),
        ("acdc", ["--form", "h5", "--num-images", "25"], (None, 4, 14)),  # val 002 019; test 001 007 ... 024
    ],
)
def test_synthetic_prepare_writes_a_datalist_monai_reads(tmp_path, capsys, dataset, extra, sizes):
    out = tmp_path / "datalist.json"
    assert main(["prepare", dataset, "--root", str(tmp_path / "data"), "--synthetic", "--out", str(out), *extra]) == 0
    printed = capsys.readouterr().out
    assert "SYNTHETIC look-alike" in printed and f"written to {out}" in printed
    data = json.loads(out.read_text())
    assert data["synthetic"] is True and data["description"].startswith("SYNTHETIC") and data["split"]["name"]
    counts = (data["numTraining"], data["numValidation"], data["numTest"])
    if sizes is not None:
        assert all(want is None or got == want for got, want in zip(counts, sizes)), counts
    assert ("test" in data) == (counts[2] > 0)  # MONAI cannot read an empty "test" list: it is left out
    for section in ("training", "validation", "test"):
        if not data[f"num{section.capitalize()}"]:
            continue
        items = load_decathlon_datalist(out, data_list_key=section)
        assert len(items) == data[f"num{section.capitalize()}"]
        d = _load(dataset, items[0])
        assert tuple(d["label"].shape[1:]) == tuple(d["image"].shape[1:])
        label = d["label"].numpy()
        assert np.array_equal(label, np.round(label)) and 0 <= label.min() and label.max() < len(data["labels"])
        if not items[0]["label"].endswith(".nii.gz"):  # LoadImaged gives NIfTI labels as float32, ours are ints
            assert d["label"].dtype.is_floating_point is False
    if dataset == "synapse":
        assert counts[2] == 12 and data["split"]["validation_cases"]
    if dataset == "acdc" and "--form" not in extra:
        assert data["form"] == "raw" and counts[2] == 2 * 4  # patients 1-12 hold 4 SSL4MIS test patients


def test_kvasir_official_split_files_and_kfold(tmp_path, capsys):
    root = tmp_path / "k"
    assert main(["prepare", "kvasir", "--root", str(root), "--synthetic", "--num-images", "10"]) == 0
    ids = sorted(p.stem for p in (root / "Kvasir-SEG" / "images").iterdir())
    (tmp_path / "train.txt").write_text("\n".join(ids[:8]) + "\n")
    (tmp_path / "val.txt").write_text("\n".join(ids[8:]) + "\n")
    out = tmp_path / "kseg.json"
    assert main(["prepare", "kvasir", "--root", str(root), "--split", "kvasir_seg", "--split-files",
                 str(tmp_path / "train.txt"), str(tmp_path / "val.txt"), "--out", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["split"]["official"] is True and [v["id"] for v in data["validation"]] == ids[8:]
    assert main(["prepare", "kvasir", "--root", str(root), "--split", "kfold", "--fold", "1", "--num-folds", "5"]) == 0
    folded = json.loads((root / "Kvasir-SEG" / "datalist_kfold_fold1.json").read_text())
    assert folded["split"]["fold"] == 1 and folded["numValidation"] == 2


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert err.startswith("monai-imbalance prepare: error:") and "Traceback" not in err
    assert err.count("\n") == 1
    return err


def test_errors_are_one_line_messages(tmp_path, capsys):
    assert main(["prepare", "kvasir", "--root", str(tmp_path / "absent")]) == 1
    assert "absent" in _one_line_error(capsys)
    assert main(["prepare", "clinicdb", "--root", str(tmp_path), "--download"]) == 1
    assert "cannot be downloaded automatically" in _one_line_error(capsys)
    assert main(["prepare", "synapse", "--root", str(tmp_path), "--download"]) == 1
    assert "synapse.org" in _one_line_error(capsys)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("")
    assert main(["prepare", "acdc", "--root", str(tmp_path / "full"), "--synthetic"]) == 1
    assert "is not empty" in _one_line_error(capsys)
    with pytest.raises(SystemExit):  # argparse names the valid splits of the dataset
        main(["prepare", "kvasir", "--root", str(tmp_path / "k"), "--synthetic", "--split", "random"])
    assert "--split: invalid choice: 'random'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["prepare", "brats", "--root", "x"])


def test_broken_layout_is_reported_with_the_file_and_exit_1(tmp_path, capsys):
    root = tmp_path / "isic"
    assert main(["prepare", "isic2018", "--root", str(root), "--synthetic", "--num-images", "4"]) == 0
    capsys.readouterr()
    mask = sorted((root / "ISIC2018_Task1_Training_GroundTruth").glob("*.png"))[0]
    mask.unlink()
    assert main(["prepare", "isic2018", "--root", str(root)]) == 1
    err = _one_line_error(capsys)
    assert "missing mask for image" in err and mask.name in err and "found 3 training image/mask pairs" in err
    assert main(["prepare", "isic2018", "--root", str(root), "--no-count-check"]) == 1  # the pair is still missing
    assert "found 3" not in _one_line_error(capsys)
    shutil.rmtree(root / "ISIC2018_Task1_Training_GroundTruth")
    assert main(["prepare", "isic2018", "--root", str(root)]) == 1
    assert "ground truth folder not found" in _one_line_error(capsys)


def test_acdc_raw_volumes_option_and_missing_count(tmp_path, capsys):
    root = tmp_path / "acdc"
    assert main(["prepare", "acdc", "--root", str(root), "--synthetic", "--num-images", "3", "--no-slices",
                 "--split", "kfold", "--num-folds", "3"]) == 0
    data = json.loads((root / "datalist_acdc_kfold_fold0.json").read_text())
    assert data["numTraining"] == 4 and data["numValidation"] == 2 and all("slice" not in i for i in data["training"])
    (root / "SYNTHETIC.txt").unlink()
    assert main(["prepare", "acdc", "--root", str(root)]) == 1
    assert "found 3 patients, expected 100" in _one_line_error(capsys)
    assert np.isclose(data["training"][0]["spacing"][0], data["training"][0]["spacing"][1])
