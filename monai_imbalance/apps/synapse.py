"""Synapse multi-organ CT (MICCAI 2015 Multi-Atlas Abdomen Labeling, BTCV) in TransUNet's preprocessed form.

Preprocessed layout (TransUNet, Chen et al. 2021; the form the DBCE paper uses)::

    train_npz/case<4 digits>_slice<3 digits>.npz   keys image (float32 HxW in [0, 1]) and label (float, cast to int)
    test_vol_h5/case<4 digits>.npy.h5              datasets image and label of shape (D, H, W)
    lists_Synapse/train.txt                         one slice name per line (case0031_slice000, ...)
    lists_Synapse/test_vol.txt                      one case name per line (case0008, ...)

18 training cases (2211 slices) and 12 test cases (0001 0002 0003 0004 0008 0022 0025 0029 0032 0035 0036 0038),
as in github.com/Beckschen/TransUNet ``lists/lists_Synapse``. There is no validation set: :func:`synapse_split`
holds training cases out.

:func:`convert_btcv_to_synapse` makes that form from the raw BTCV NIfTI files (``img/img<4>.nii.gz``,
``label/label<4>.nii.gz``): HU clipped to [-125, 275] and scaled to [0, 1], the 13 organ labels mapped to the 8
evaluated classes ({1:1 spleen, 2:2 right kidney, 3:3 left kidney, 4:4 gallbladder, 6:5 liver, 7:6 stomach,
8:7 aorta, 11:8 pancreas}, everything else background), training cases cut into axial slices.

Reading: arrays are stored in (D, H, W) = SimpleITK's (z, y, x) order, the order TransUNet's ``test.py`` writes
its predictions back in (through SimpleITK), so a slice is ``nibabel_volume[:, :, k].T``. The scaling is the fixed
``(HU + 125) / 400``, which equals TransUNet's per-volume min-max after clipping whenever a CT spans the window.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .checks import (
    SKIP_COUNT_CHECK,
    LayoutProblems,
    class_indices,
    progress_bar,
    read_synthetic_marker,
    require_dir,
    resolve_expected,
    thread_map,
    write_synthetic_marker,
)
from .download import DownloadError
from .registry import DatasetSections, ScanRequest, prepare_dataset
from .splits import holdout_split, natural_key

__all__ = [
    "SYNAPSE_TRAIN_CASES",
    "SYNAPSE_TEST_CASES",
    "SYNAPSE_TRAIN_SLICES",
    "SYNAPSE_NUM_TRAIN_SLICES",
    "SYNAPSE_CLASSES",
    "BTCV_LABELS",
    "BTCV_TO_SYNAPSE",
    "SYNAPSE_CLIP",
    "map_btcv_labels",
    "normalise_ct",
    "find_btcv_raw",
    "convert_btcv_to_synapse",
    "find_synapse_layout",
    "synapse_items",
    "synapse_split",
    "stack_synapse_volumes",
    "prepare_synapse",
]

# slices per training case, in the order of TransUNet's lists_Synapse/train.txt (2211 lines)
SYNAPSE_TRAIN_SLICES = {
    "0031": 93, "0007": 163, "0009": 149, "0005": 117, "0026": 131, "0039": 90, "0024": 124, "0034": 98,
    "0033": 104, "0030": 153, "0023": 96, "0040": 195, "0010": 148, "0021": 143, "0006": 131, "0027": 88,
    "0028": 89, "0037": 99,
}
SYNAPSE_NUM_TRAIN_SLICES = 2211
SYNAPSE_TRAIN_CASES = tuple(sorted(SYNAPSE_TRAIN_SLICES))
# TransUNet lists_Synapse/test_vol.txt (file order: 0008 0022 0038 0036 0032 0002 0029 0003 0001 0004 0025 0035)
SYNAPSE_TEST_CASES = ("0001", "0002", "0003", "0004", "0008", "0022", "0025", "0029", "0032", "0035", "0036", "0038")
SYNAPSE_CLASSES = {0: "background", 1: "spleen", 2: "right kidney", 3: "left kidney", 4: "gallbladder", 5: "liver",
                   6: "stomach", 7: "aorta", 8: "pancreas"}
BTCV_LABELS = {0: "background", 1: "spleen", 2: "right kidney", 3: "left kidney", 4: "gallbladder", 5: "esophagus",
               6: "liver", 7: "stomach", 8: "aorta", 9: "inferior vena cava", 10: "portal vein and splenic vein",
               11: "pancreas", 12: "right adrenal gland", 13: "left adrenal gland"}
BTCV_TO_SYNAPSE = {1: 1, 2: 2, 3: 3, 4: 4, 6: 5, 7: 6, 8: 7, 11: 8}
SYNAPSE_CLIP = (-125.0, 275.0)
SYNAPSE_PAGE = "https://www.synapse.org/#!Synapse:syn3193805/wiki/"
SYNAPSE_REFERENCE = (
    "Landman et al., MICCAI 2015 Multi-Atlas Abdomen Labeling Challenge; Chen et al., TransUNet, arXiv:2102.04306 "
    "(preprocessing and split, github.com/Beckschen/TransUNet)"
)
_SLICE_NAME = re.compile(r"^case(\d{4})_slice(\d{3})$")
_CASE_NAME = re.compile(r"^case(\d{4})$")


def map_btcv_labels(label: Any) -> np.ndarray:
    """BTCV organ labels (0-13) -> the 8 Synapse classes of TransUNet (:data:`BTCV_TO_SYNAPSE`), as ``uint8``.

    Esophagus (5), inferior vena cava (9), portal/splenic vein (10) and the adrenal glands (12, 13) become
    background. Float labels with whole values are accepted; anything else raises ``ValueError``.
    """
    arr = class_indices(label, num_classes=len(BTCV_LABELS), name="BTCV label")
    table = np.zeros(len(BTCV_LABELS), dtype=np.uint8)
    for btcv, synapse in BTCV_TO_SYNAPSE.items():
        table[btcv] = synapse
    return table[arr]


def normalise_ct(volume: Any, clip: Sequence[float] = SYNAPSE_CLIP) -> np.ndarray:
    """HU clipped to ``clip`` and scaled to [0, 1] (``float32``)."""
    low, high = float(clip[0]), float(clip[1])
    if not high > low:
        raise ValueError(f"clip must be (low, high) with high > low, got {tuple(clip)}.")
    arr = np.asarray(volume, dtype=np.float32)
    return ((np.clip(arr, low, high) - low) / (high - low)).astype(np.float32)


def find_btcv_raw(root: str | os.PathLike) -> tuple[Path, Path]:
    """``(img_dir, label_dir)`` of a raw BTCV download: ``root``, ``root/Training`` or ``root/RawData/Training``
    holding ``img/`` and ``label/``."""
    root = require_dir(root, "BTCV raw root")
    for base in (root, root / "Training", root / "RawData" / "Training", root / "Abdomen" / "RawData" / "Training"):
        if (base / "img").is_dir() or (base / "label").is_dir():
            return require_dir(base / "img", "BTCV img"), require_dir(base / "label", "BTCV label")
    raise FileNotFoundError(f"BTCV raw folders not found in {root}: expected img/ and label/ "
                            "(or RawData/Training/img, label)")


def _raw_pairs(img_dir: Path, label_dir: Path, problems: LayoutProblems) -> dict[str, tuple[Path, Path]]:
    pattern_img, pattern_label = re.compile(r"^img(\d{4})\.nii(\.gz)?$"), re.compile(r"^label(\d{4})\.nii(\.gz)?$")
    images = {m.group(1): p for p in sorted(img_dir.iterdir()) if (m := pattern_img.match(p.name))}
    labels = {m.group(1): p for p in sorted(label_dir.iterdir()) if (m := pattern_label.match(p.name))}
    for case in images:
        if case not in labels:
            problems.add(f"missing label for {images[case].name} (expected {label_dir / f'label{case}.nii.gz'})")
    for case in labels:
        if case not in images:
            problems.add(f"unpaired label {labels[case].name}: no img{case}.nii.gz")
    return {case: (images[case], labels[case]) for case in images if case in labels}


def convert_btcv_to_synapse(
    raw_root: str | os.PathLike,
    out_root: str | os.PathLike,
    test_cases: Sequence[str] = SYNAPSE_TEST_CASES,
    train_cases: Sequence[str] | None = None,
    clip: Sequence[float] = SYNAPSE_CLIP,
    overwrite: bool = False,
    progress: bool | None = False,
) -> Path:
    """Write TransUNet's preprocessed Synapse form from raw BTCV NIfTI files; return ``out_root``.

    Training cases (default: every raw case not in ``test_cases``) become ``train_npz`` slices, test cases
    ``test_vol_h5`` volumes, and ``lists_Synapse/{train,test_vol}.txt`` list them. Images: clipped and scaled
    (:func:`normalise_ct`); labels: :func:`map_btcv_labels`, stored as ``float32`` like the released files.
    ``conversion.json`` records the clip, the label map and each case's voxel spacing in (D, H, W) order.
    Existing outputs are kept unless ``overwrite``. ``progress``: a progress bar on stderr counting the cases
    (True, False, or None: when stderr is a terminal).

    Raises:
        FileNotFoundError: the raw folders are missing.
        DatasetLayoutError: unpaired/unreadable raw files, image/label shape mismatch, listed cases missing,
            labels outside 0-13.
    """
    import h5py
    import nibabel as nib

    img_dir, label_dir = find_btcv_raw(raw_root)
    problems = LayoutProblems("BTCV raw", img_dir.parent)
    pairs = _raw_pairs(img_dir, label_dir, problems)
    test_cases = [str(c).zfill(4) for c in test_cases]
    train_cases = [str(c).zfill(4) for c in train_cases] if train_cases is not None else \
        sorted(c for c in pairs if c not in test_cases)
    for case in (*train_cases, *test_cases):
        if case not in pairs:
            problems.add(f"case {case} is listed but img{case}/label{case} are not in {img_dir.parent}")
    overlap = set(train_cases) & set(test_cases)
    if overlap:
        problems.add(f"cases {sorted(overlap)} are in both the training and the test cases")
    problems.raise_if_any()

    out = Path(out_root)
    for sub in ("train_npz", "test_vol_h5", "lists_Synapse"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    record_path = out / "conversion.json"
    record = json.loads(record_path.read_text()) if record_path.is_file() else {}
    spacing = record.get("spacing", {})
    slice_names: list[str] = []
    cases = sorted(set(train_cases) | set(test_cases), key=natural_key)
    for case in progress_bar(cases, len(cases), "BTCV -> Synapse: converting cases", progress, unit="case"):
        image_path, label_path = pairs[case]
        is_test = case in test_cases
        h5_path = out / "test_vol_h5" / f"case{case}.npy.h5"
        try:
            image_nii, label_nii = nib.load(str(image_path)), nib.load(str(label_path))
            shape = tuple(image_nii.shape)
            if shape != tuple(label_nii.shape) or len(shape) != 3:
                problems.add(f"case {case}: image shape {shape} and label shape {tuple(label_nii.shape)} differ "
                             "or are not 3-D")
                continue
            names = [f"case{case}_slice{k:03d}" for k in range(shape[2])]
            spacing[case] = [round(float(z), 6) for z in image_nii.header.get_zooms()[:3][::-1]]
            done = h5_path.is_file() if is_test else all((out / "train_npz" / f"{n}.npz").is_file() for n in names)
            if not is_test:
                slice_names.extend(names)
            if done and not overwrite:
                continue
            image = normalise_ct(np.asanyarray(image_nii.dataobj), clip).transpose(2, 1, 0)
            label = map_btcv_labels(np.asanyarray(label_nii.dataobj)).transpose(2, 1, 0).astype(np.float32)
        except ValueError as err:
            problems.add(f"case {case}: {err}")
            continue
        except Exception as err:  # nibabel/zlib errors on broken files
            problems.add(f"case {case}: could not read {image_path.name} / {label_path.name}: {err}")
            continue
        if is_test:
            tmp = h5_path.with_name(h5_path.name + ".tmp")
            with h5py.File(tmp, "w") as f:
                f.create_dataset("image", data=np.ascontiguousarray(image))
                f.create_dataset("label", data=np.ascontiguousarray(label))
            os.replace(tmp, h5_path)
        else:
            for k, name in enumerate(names):
                np.savez(out / "train_npz" / f"{name}.npz", image=image[k], label=label[k])
    problems.raise_if_any()
    (out / "lists_Synapse" / "train.txt").write_text("".join(f"{n}\n" for n in slice_names))
    (out / "lists_Synapse" / "test_vol.txt").write_text("".join(f"case{c}\n" for c in test_cases))
    record.update(source=str(Path(raw_root).resolve()), clip=list(clip), label_map=BTCV_TO_SYNAPSE,
                  axis_order="(D, H, W) = SimpleITK (z, y, x)", spacing=spacing)
    record_path.write_text(json.dumps(record, indent=1) + "\n")
    marker = read_synthetic_marker(Path(raw_root))
    if marker is None:
        marker = read_synthetic_marker(img_dir.parent)
    if marker is not None:
        write_synthetic_marker(out, "Synapse (TransUNet form)", {
            "train_cases": len(train_cases), "train_slices": len(slice_names), "test_cases": len(test_cases)},
            converted_from=str(Path(raw_root).resolve()))
    return out


def find_synapse_layout(root: str | os.PathLike, list_dir: str | os.PathLike | None = None) -> tuple[Path, Path]:
    """``(data_dir, list_dir)``: the folder with ``train_npz``/``test_vol_h5`` (``root``, ``root/Synapse`` or
    ``root/data/Synapse``) and the one with ``train.txt``/``test_vol.txt`` (``list_dir``, else
    ``<data_dir>/lists_Synapse``, ``root/lists_Synapse``, ``root/lists/lists_Synapse``, ``root/TransUNet/lists/
    lists_Synapse``)."""
    root = require_dir(root, "Synapse root")
    data_dir = next((base for base in (root, root / "Synapse", root / "data" / "Synapse")
                     if (base / "train_npz").is_dir() or (base / "test_vol_h5").is_dir()), None)
    if data_dir is None:
        raise FileNotFoundError(f"Synapse folders not found in {root}: expected train_npz/ and test_vol_h5/ "
                                "(use --from-raw to make them from the BTCV NIfTI files)")
    if list_dir is not None:
        return data_dir, require_dir(list_dir, "Synapse lists")
    for base in (data_dir / "lists_Synapse", root / "lists_Synapse", root / "lists" / "lists_Synapse",
                 root / "TransUNet" / "lists" / "lists_Synapse", data_dir.parent / "lists_Synapse"):
        if base.is_dir():
            return data_dir, base
    raise FileNotFoundError(f"lists_Synapse folder (train.txt, test_vol.txt) not found near {data_dir}")


def _read_list(path: Path, pattern: re.Pattern, problems: LayoutProblems) -> list[str]:
    if not path.is_file():
        raise FileNotFoundError(f"Synapse list not found: {path}")
    names = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    bad = [n for n in names if not pattern.match(n)]
    if bad:
        problems.add(f"{path.name} has names not of the form {pattern.pattern}: {bad[:3]}")
    if len(set(names)) != len(names):
        problems.add(f"{path.name} lists {len(names) - len(set(names))} name(s) twice")
    return [n for n in names if pattern.match(n)]


def _check_npz(path: Path, full: bool) -> list[str]:
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = [k for k in ("image", "label") if k not in data.files]
            if missing:
                return [f"{path.name} has no array {missing} (arrays: {data.files})"]
            if not full:
                return []
            image, label = data["image"], data["label"]
    except Exception as err:
        return [f"unreadable slice {path}: {err}"]
    found = []
    if image.ndim != 2 or image.shape != label.shape:
        found.append(f"{path.name}: image {image.shape} and label {label.shape} must be equal 2-D shapes")
    elif not np.issubdtype(image.dtype, np.floating) or image.min() < -1e-6 or image.max() > 1 + 1e-6:
        found.append(f"{path.name}: image must be float in [0, 1], got {image.dtype} in "
                     f"[{float(image.min()):.3g}, {float(image.max()):.3g}]")
    try:
        class_indices(label, num_classes=len(SYNAPSE_CLASSES), source=path.name)
    except ValueError as err:
        found.append(str(err))
    return found


def _check_h5(path: Path, full: bool) -> tuple[int | None, list[str]]:
    import h5py

    try:
        with h5py.File(path, "r") as f:
            missing = [k for k in ("image", "label") if k not in f]
            if missing:
                return None, [f"{path.name} has no dataset {missing} (datasets: {list(f.keys())})"]
            shape, label_shape = f["image"].shape, f["label"].shape
            label = f["label"][()] if full else None
    except Exception as err:
        return None, [f"unreadable volume {path}: {err}"]
    if len(shape) != 3 or tuple(shape) != tuple(label_shape):
        return None, [f"{path.name}: image {shape} and label {label_shape} must be equal (D, H, W) shapes"]
    if full:
        try:
            class_indices(label, num_classes=len(SYNAPSE_CLASSES), source=path.name)
        except ValueError as err:
            return None, [str(err)]
    return int(shape[0]), []


def synapse_items(
    root: str | os.PathLike,
    list_dir: str | os.PathLike | None = None,
    expected: str | None = "auto",
    check: str = "full",
    num_workers: int = 0,
    progress: bool | None = False,
) -> dict[str, list[dict[str, Any]]]:
    """Scan TransUNet's Synapse form, check it and return ``{"train": slice items, "test": volume items}``.

    Slice items: ``{"image": npz, "label": npz, "id": "case0005_slice000", "case": "0005", "slice": 0}``; volume
    items: ``{"image": h5, "label": h5, "id": "case0001", "case": "0001", "num_slices": D}``. Both carry
    ``"spacing"`` (D, H, W order, mm) when the folder was made by :func:`convert_btcv_to_synapse`.

    Checks: every listed file exists and every file is listed; npz files hold ``image`` (float in [0, 1]) and
    ``label`` (whole values 0-8) of one 2-D shape; h5 files hold equal (D, H, W) ``image`` and ``label``; test
    cases are among the 12 fixed ids and no training case is one of them. ``expected="auto"`` also checks the
    real numbers (the 18 training cases with their slice counts, 2211 slices, the 12 test cases) or, in a
    look-alike, the counts of its ``SYNTHETIC.txt``; ``None`` skips the counts. ``check="header"`` only opens
    the files (no pixel values). ``progress``: progress bars on stderr while the slices and the volumes are read
    (True, False, or None: when stderr is a terminal).

    Raises:
        FileNotFoundError: folders or list files missing.
        DatasetLayoutError: everything else, naming the files.
    """
    if check not in ("header", "full"):
        raise ValueError(f"check must be 'header' or 'full', got {check!r}.")
    data_dir, lists = find_synapse_layout(root, list_dir)
    npz_dir, h5_dir = data_dir / "train_npz", data_dir / "test_vol_h5"
    problems = LayoutProblems("Synapse", data_dir)
    train_names = _read_list(lists / "train.txt", _SLICE_NAME, problems)
    test_names = _read_list(lists / "test_vol.txt", _CASE_NAME, problems)
    on_disk_npz = {p.name[:-4] for p in npz_dir.glob("*.npz")} if npz_dir.is_dir() else set()
    on_disk_h5 = {p.name[: -len(".npy.h5")] for p in h5_dir.glob("*.npy.h5")} if h5_dir.is_dir() else set()
    if train_names and not npz_dir.is_dir():
        raise FileNotFoundError(f"Synapse train_npz folder not found: {npz_dir}")
    if test_names and not h5_dir.is_dir():
        raise FileNotFoundError(f"Synapse test_vol_h5 folder not found: {h5_dir}")
    for name in train_names:
        if name not in on_disk_npz:
            problems.add(f"missing slice {npz_dir / (name + '.npz')} (listed in train.txt)")
    for name in sorted(on_disk_npz - set(train_names)):
        problems.add(f"slice {name}.npz is not listed in train.txt")
    for name in test_names:
        if name not in on_disk_h5:
            problems.add(f"missing volume {h5_dir / (name + '.npy.h5')} (listed in test_vol.txt)")
    for name in sorted(on_disk_h5 - set(test_names)):
        problems.add(f"volume {name}.npy.h5 is not listed in test_vol.txt")
    present_train = [n for n in train_names if n in on_disk_npz]
    present_test = [n for n in test_names if n in on_disk_h5]
    full = check == "full"
    step = "checking" if full else "reading headers of"
    for found in thread_map(lambda n: _check_npz(npz_dir / f"{n}.npz", full), present_train, num_workers,
                            desc=f"Synapse: {step} training slices", progress=progress, unit="slice"):
        problems.extend(found)
    depths = {}
    for name, (depth, found) in zip(present_test, thread_map(lambda n: _check_h5(h5_dir / f"{n}.npy.h5", full),
                                                            present_test, num_workers,
                                                            desc=f"Synapse: {step} test volumes", progress=progress,
                                                            unit="volume")):
        problems.extend(found)
        depths[name] = depth

    slices_per_case: dict[str, int] = {}
    for name in train_names:
        case = name[4:8]
        slices_per_case[case] = slices_per_case.get(case, 0) + 1
    test_cases = [n[4:] for n in test_names]
    outside = [c for c in test_cases if c not in SYNAPSE_TEST_CASES]
    if outside:
        problems.add(f"test cases {outside} are not among the 12 Synapse test cases {list(SYNAPSE_TEST_CASES)}")
    leaked = sorted(set(slices_per_case) & set(SYNAPSE_TEST_CASES))
    if leaked:
        problems.add(f"training slices of test cases {leaked} are listed in train.txt")
    marker = read_synthetic_marker(data_dir)
    if expected == "auto" and marker is None:
        if sorted(slices_per_case) != list(SYNAPSE_TRAIN_CASES):
            problems.add(f"training cases {sorted(slices_per_case)} differ from TransUNet's 18 "
                         f"{list(SYNAPSE_TRAIN_CASES)}")
        wrong = {c: (n, SYNAPSE_TRAIN_SLICES[c]) for c, n in slices_per_case.items()
                 if c in SYNAPSE_TRAIN_SLICES and n != SYNAPSE_TRAIN_SLICES[c]}
        if wrong:
            problems.add(f"slices per case (found, expected) differ from TransUNet's: {wrong}")
        if sorted(test_cases) != list(SYNAPSE_TEST_CASES):
            problems.add(f"test cases {sorted(test_cases)} differ from the 12 Synapse test cases")
    elif expected == "auto":
        want = {k: resolve_expected("auto", marker, k, None) for k in ("train_cases", "train_slices", "test_cases")}
        got = {"train_cases": len(slices_per_case), "train_slices": len(train_names), "test_cases": len(test_cases)}
        for key, value in want.items():
            if value is not None and got[key] != value:
                problems.add(f"found {got[key]} {key.replace('_', ' ')}, expected {value}{SKIP_COUNT_CHECK}")
    elif expected is not None:
        raise ValueError(f"expected must be 'auto' or None, got {expected!r}.")
    problems.raise_if_any()

    record_path = data_dir / "conversion.json"
    spacing = json.loads(record_path.read_text()).get("spacing", {}) if record_path.is_file() else {}
    train_items = []
    for name in sorted(train_names, key=natural_key):
        case = name[4:8]
        item = {"image": str((npz_dir / f"{name}.npz").resolve()), "label": str((npz_dir / f"{name}.npz").resolve()),
                "id": name, "case": case, "slice": int(name[-3:])}
        if case in spacing:
            item["spacing"] = spacing[case]
        train_items.append(item)
    test_items = []
    for name in sorted(test_names, key=natural_key):
        path = str((h5_dir / f"{name}.npy.h5").resolve())
        item = {"image": path, "label": path, "id": name, "case": name[4:], "num_slices": depths[name]}
        if name[4:] in spacing:
            item["spacing"] = spacing[name[4:]]
        test_items.append(item)
    return {"train": train_items, "test": test_items}


def stack_synapse_volumes(
    slice_items: Sequence[Mapping[str, Any]], out_dir: str | os.PathLike, overwrite: bool = False,
    progress: bool | None = False,
) -> list[dict[str, Any]]:
    """Stack the npz slices of each case into ``out_dir/case<4>.npy.h5`` (``image``, ``label`` of shape
    (D, H, W), label stored as float like the test volumes) and return volume items; existing volumes with the
    right depth are reused. Used for volumetric validation on held-out training cases. ``progress``: a progress bar
    on stderr counting the cases (True, False, or None: when stderr is a terminal)."""
    import h5py

    by_case: dict[str, list[Mapping[str, Any]]] = {}
    for item in slice_items:
        by_case.setdefault(item["case"], []).append(item)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    volumes = []
    cases = sorted(by_case, key=natural_key)
    for case in progress_bar(cases, len(cases), "Synapse: stacking validation volumes", progress, unit="case"):
        slices = sorted(by_case[case], key=lambda it: it["slice"])
        if [s["slice"] for s in slices] != list(range(len(slices))):
            raise ValueError(f"case {case}: slices {[s['slice'] for s in slices]} are not 0..{len(slices) - 1}")
        path = out / f"case{case}.npy.h5"
        fresh = True
        if path.is_file() and not overwrite:
            with h5py.File(path, "r") as f:
                fresh = f["image"].shape[0] != len(slices)
        if fresh:
            images, labels = [], []
            for s in slices:
                with np.load(s["image"], allow_pickle=False) as data:
                    images.append(data["image"].astype(np.float32))
                    labels.append(data["label"].astype(np.float32))
            tmp = path.with_name(path.name + ".tmp")
            with h5py.File(tmp, "w") as f:
                f.create_dataset("image", data=np.stack(images))
                f.create_dataset("label", data=np.stack(labels))
            os.replace(tmp, path)
        item = {"image": str(path.resolve()), "label": str(path.resolve()), "id": f"case{case}", "case": case,
                "num_slices": len(slices)}
        if "spacing" in slices[0]:
            item["spacing"] = slices[0]["spacing"]
        volumes.append(item)
    return volumes


def synapse_split(
    items: Mapping[str, Sequence[dict[str, Any]]],
    val_cases: Sequence[str] | None = None,
    num_val_cases: int = 2,
    seed: int = 0,
) -> tuple[dict[str, list[dict[str, Any]]], dict[str, Any]]:
    """``(sections, info)``: training slices of the kept training cases, validation slices of held-out training
    cases (``val_cases``, or ``num_val_cases`` drawn with ``seed``), test volumes of the test cases."""
    cases = sorted({it["case"] for it in items["train"]}, key=natural_key)
    if val_cases is None:
        if not 0 <= num_val_cases < len(cases):
            raise ValueError(f"num_val_cases must be in [0, {len(cases) - 1}], got {num_val_cases}.")
        held = holdout_split(cases, (len(cases) - num_val_cases, num_val_cases), seed=seed)[1] if num_val_cases \
            else []
        how = f"{num_val_cases} training case(s) drawn with seed {seed}"
    else:
        held = [str(c).zfill(4) for c in val_cases]
        unknown = [c for c in held if c not in cases]
        if unknown:
            raise ValueError(f"val_cases {unknown} are not training cases {cases}.")
        how = "given validation cases"
    sections = {
        "training": [dict(it) for it in items["train"] if it["case"] not in held],
        "validation": [dict(it) for it in items["train"] if it["case"] in held],
        "test": [dict(it) for it in items["test"]],
    }
    info = {"name": "transunet", "official": True, "seed": seed, "validation_cases": held,
            "source": "TransUNet lists_Synapse (18 training / 12 test cases); validation: " + how,
            "counts": {k: len(v) for k, v in sections.items()}}
    return sections, info


def download_synapse(root: str | os.PathLike, progress: bool = True) -> None:
    """Synapse/BTCV needs a synapse.org account: always raises :class:`DownloadError` with instructions
    (``progress`` is accepted like the other datasets' downloads)."""
    raise DownloadError(
        f"Synapse/BTCV needs a synapse.org account and cannot be downloaded automatically: sign up at "
        f"{SYNAPSE_PAGE}, download the Abdomen RawData (img/, label/) into {root} and run with --from-raw, or put "
        "TransUNet's preprocessed train_npz/, test_vol_h5/ and lists_Synapse/ there."
    )


def synapse_sections(
    root: str | os.PathLike,
    request: ScanRequest,
    *,
    from_raw: bool = False,
    preprocessed_dir: str | os.PathLike | None = None,
    test_cases: Sequence[str] = SYNAPSE_TEST_CASES,
    list_dir: str | os.PathLike | None = None,
    val_cases: Sequence[str] | None = None,
    num_val_cases: int | None = None,
    val_volumes: bool = False,
    cache_dir: str | os.PathLike | None = None,
) -> DatasetSections:
    """Check the Synapse folder (after converting raw BTCV files when ``from_raw``) and split it (the dataset's
    entry of :mod:`monai_imbalance.apps.registry`; one split, TransUNet's; ``fold``/``num_folds`` are unused).

    Args:
        root: TransUNet's ``Synapse`` folder, or with ``from_raw`` the BTCV download (``img/``, ``label/``).
        preprocessed_dir: where ``from_raw`` writes the converted form (default ``<root>/Synapse``).
        test_cases: with ``from_raw``: the cases written as test volumes (default the 12 Synapse test cases).
        val_cases, num_val_cases (default 2), seed: the held-out validation cases (:func:`synapse_split`).
        val_volumes: stack the held-out validation cases into ``<cache_dir>/val_vol_h5`` volumes (default
            ``cache_dir``: the data folder) and list those instead of slices, for volumetric validation.
        expected_count, check, num_workers, progress: as :func:`synapse_items` (``expected``).
    """
    seed = request.seed  # one split, TransUNet's: no folds
    expected_count, check, num_workers = request.expected_count, request.check, request.num_workers
    if from_raw:
        root = convert_btcv_to_synapse(root, preprocessed_dir or Path(root) / "Synapse", test_cases=test_cases,
                                       progress=request.progress)
    items = synapse_items(root, list_dir=list_dir, expected=expected_count, check=check, num_workers=num_workers,
                          progress=request.progress)
    sections, info = synapse_split(items, val_cases=val_cases, num_val_cases=2 if num_val_cases is None
                                   else num_val_cases, seed=seed)
    data_dir, _ = find_synapse_layout(root, list_dir)
    if val_volumes and sections["validation"]:
        sections["validation"] = stack_synapse_volumes(sections["validation"],
                                                       Path(cache_dir or data_dir) / "val_vol_h5",
                                                       progress=request.progress)
        info["validation_format"] = "volumes (val_vol_h5, stacked from the npz slices)"
    datalist = dict(
        name="Synapse multi-organ CT (TransUNet form)",
        description=f"Synapse/BTCV abdominal CT, 8 organs, TransUNet preprocessing: {info['counts']}. Training "
        "items are npz slices, test items h5 volumes: load them with monai_imbalance.transforms.LoadArrayd.",
        labels=SYNAPSE_CLASSES, synthetic=read_synthetic_marker(data_dir) is not None,
        tensor_image_size="2D slices, 3D test volumes", modality={"0": "CT"}, reference=SYNAPSE_REFERENCE,
        licence="see synapse.org syn3193805 (registration, research use)", source=SYNAPSE_PAGE,
        clip_hu=list(SYNAPSE_CLIP), label_map_from_btcv={str(k): v for k, v in BTCV_TO_SYNAPSE.items()},
    )
    return DatasetSections(sections, info, datalist, data_dir / "datalist_synapse.json")


def synapse_from_datalist(
    sections: dict[str, list[dict[str, Any]]], datalist: str | os.PathLike, cache_dir: str | os.PathLike | None = None,
    **options: Any,
) -> dict[str, list[dict[str, Any]]]:
    """Sections read back from a datalist JSON, for the bundles: validation slices stacked into volumes (in
    ``cache_dir``, default the JSON's folder) for volumetric validation."""
    if any("slice" in it for it in sections["validation"]):
        folder = Path(cache_dir) if cache_dir else Path(datalist).parent
        sections["validation"] = stack_synapse_volumes(sections["validation"], folder / "val_vol_h5")
    return sections


def prepare_synapse(root: str | os.PathLike, out: str | os.PathLike | None = None, **kwargs: Any) -> Path:
    """Check the Synapse folder (after converting raw BTCV files with ``from_raw=True``) and write a datalist JSON
    (default ``<data>/datalist_synapse.json``); return its path. Arguments: :func:`synapse_sections`
    (``expected=`` is accepted for ``expected_count=``). ``download=True`` raises :class:`DownloadError` with
    instructions (the data need a Synapse account)."""
    if "expected" in kwargs:
        kwargs["expected_count"] = kwargs.pop("expected")
    return prepare_dataset("synapse", root, out, **kwargs)
