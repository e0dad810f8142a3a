"""``monai-imbalance prepare`` progress bars: on stderr, named after the step, counting to the total, hidden by
``--no-progress`` and when stderr is not a terminal, and without effect on the files written."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from monai_imbalance.apps.checks import thread_map
from monai_imbalance.cli import main

pytestmark = pytest.mark.filterwarnings("ignore:builtin type .* has no __module__ attribute")  # ITK's SWIG types

_BAR = re.compile(r"([^\r\n]+?): +(\d+)%\|[^|\r\n]*\| (\d+)/(\d+)")


def _final_bars(err: str) -> list[tuple[str, int, int]]:
    """``(step, done, total)`` of every bar at 100% in the captured stderr (tqdm redraws with carriage returns)."""
    return [(m.group(1), int(m.group(3)), int(m.group(4))) for m in _BAR.finditer(err) if m.group(2) == "100"]


def _snapshot(root: Path) -> dict[str, object]:
    """Every file under ``root``: its bytes, or for ``.npz`` its arrays (a zip member records its write time)."""
    files: dict[str, object] = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as data:
                files[str(path.relative_to(root))] = {k: (data[k].dtype.str, data[k].shape, data[k].tobytes())
                                                      for k in data.files}
        else:
            files[str(path.relative_to(root))] = path.read_bytes()
    return files


def _datalist(root: Path) -> dict:
    (path,) = [p for p in root.rglob("datalist*.json")]
    return json.loads(path.read_text())


def _expected_kvasir(root: Path, data: dict) -> list[tuple[str, int]]:
    return [("Kvasir-SEG: checking masks", data["numTraining"] + data["numValidation"] + data["numTest"])]


def _expected_isic(root: Path, data: dict) -> list[tuple[str, int]]:
    counts = (data["numTraining"], data["numValidation"], data["numTest"])
    return [(f"ISIC 2018 {name}: checking masks", n) for name, n in zip(("training", "validation", "test"), counts)] \
        + [("ISIC 2018: resizing to 40 px", n) for n in counts]


def _expected_synapse(root: Path, data: dict) -> list[tuple[str, int]]:
    cases = len(list((root / "RawData" / "Training" / "img").glob("img*.nii.gz")))
    slices = len((root / "Synapse" / "lists_Synapse" / "train.txt").read_text().split())
    return [("BTCV -> Synapse: converting cases", cases), ("Synapse: checking training slices", slices),
            ("Synapse: checking test volumes", data["numTest"]),
            ("Synapse: stacking validation volumes", data["numValidation"])]


def _expected_acdc(root: Path, data: dict) -> list[tuple[str, int]]:
    return [("ACDC: checking patients", len(list((root / "training").glob("patient*"))))]


def _expected_acdc_h5(root: Path, data: dict) -> list[tuple[str, int]]:
    volumes = sum(len((root / f"{s}.list").read_text().split()) for s in ("train", "val", "test"))
    return [("ACDC: checking volumes", volumes)]


@pytest.mark.parametrize(
    "dataset, size, options, expected",
    [
        ("kvasir", ["--num-images", "6"], [], _expected_kvasir),
        ("isic2018", ["--num-images", "4"], ["--cache-size", "40"], _expected_isic),
        ("synapse", [], ["--from-raw", "--val-volumes"], _expected_synapse),
        ("acdc", ["--num-images", "3"], [], _expected_acdc),
        ("acdc", ["--num-images", "12"], ["--form", "h5"], _expected_acdc_h5),
    ],
)
def test_prepare_progress_names_the_step_counts_to_the_total_and_changes_no_file(tmp_path, capsys, dataset, size,
                                                                                 options, expected):
    root, pristine = tmp_path / "data", tmp_path / "pristine"
    assert main(["prepare", dataset, "--root", str(root), "--synthetic", "--no-progress", *size, *options]) == 0
    capsys.readouterr()
    for path in [p for p in root.rglob("*") if p.is_file() and p.name.startswith("datalist")]:
        path.unlink()  # back to the look-alike alone
    for folder in ("resized", "Synapse"):
        shutil.rmtree(root / folder, ignore_errors=True)
    shutil.copytree(root, pristine)  # copy2 keeps the modification times the ISIC cache records

    assert main(["prepare", dataset, "--root", str(root), "--progress", *options]) == 0
    shown = capsys.readouterr()
    with_bars = _snapshot(root)
    bars = _final_bars(shown.err)
    for step, total in expected(root, _datalist(root)):
        assert total > 0 and (step, total, total) in bars, (step, total, bars)

    shutil.rmtree(root)
    shutil.copytree(pristine, root)
    assert main(["prepare", dataset, "--root", str(root), "--no-progress", *options]) == 0
    hidden = capsys.readouterr()
    assert hidden.err == ""
    assert hidden.out == shown.out
    without_bars = _snapshot(root)
    assert sorted(without_bars) == sorted(with_bars)
    assert [k for k in with_bars if with_bars[k] != without_bars[k]] == []


def test_prepare_progress_default_follows_the_terminal(tmp_path, capsys):
    root = tmp_path / "k"
    assert main(["prepare", "kvasir", "--root", str(root), "--synthetic", "--num-images", "4"]) == 0
    assert capsys.readouterr().err == ""  # captured stderr is no terminal: no bar unless --progress
    assert main(["prepare", "kvasir", "--root", str(root), "--progress"]) == 0
    assert ("Kvasir-SEG: checking masks", 4, 4) in _final_bars(capsys.readouterr().err)


@pytest.mark.parametrize("num_workers", [0, 2])
def test_thread_map_bar_counts_every_item_and_keeps_the_order(capsys, num_workers):
    items = list(range(7))
    assert thread_map(lambda x: x * x, items, num_workers, desc="squares", progress=True) == [x * x for x in items]
    assert ("squares", 7, 7) in _final_bars(capsys.readouterr().err)
    assert thread_map(lambda x: x, items, num_workers, desc="squares", progress=False) == items
    assert thread_map(lambda x: x, items, num_workers) == items
    assert capsys.readouterr().err == ""
