"""ACDC cardiac cine-MRI (Bernard et al., IEEE TMI 2018): raw NIfTI layout and the SSL4MIS HDF5 form.

Raw layout (the official download extracts to ``ACDC/database/{training,testing}``)::

    training/patient<3 digits>/Info.cfg                          ED, ES (frame numbers), Group, Height, Weight, NbFrame
    training/patient<id>/patient<id>_4d.nii.gz                   the whole cine (x, y, z, t)
    training/patient<id>/patient<id>_frame<2 digits>.nii.gz      the ED and ES frames
    training/patient<id>/patient<id>_frame<2 digits>_gt.nii.gz   their labels: RV = 1, MYO = 2, LV = 3

Spacing is anisotropic (about 1.5 x 1.5 mm in-plane, 5-10 mm between slices): items keep it (``"spacing"``, in
NIfTI x, y, z order) and MONAI's ``LoadImaged`` keeps it in the affine, so pipelines can resample in-plane only.
The label values are mapped explicitly (:data:`ACDC_LABEL_VALUES`): some MONAI bundles use another order, so remap
with ``monai.transforms.MapLabelValued`` rather than assuming.

HDF5 form (github.com/HiLab-git/SSL4MIS ``data/ACDC``)::

    data/slices/patient<id>_frame<nn>_slice_<k>.h5   2-D image/label slices (k from 1), for training
    data/patient<id>_frame<nn>.h5                    (D, H, W) image/label volumes, for validation and testing
    train.list, val.list, test.list                  volume names; 70 / 10 / 20 patients
    train_slices.list, all_slices.list               slice names (1312 training slices; all 1902)

Two sets of files are accepted. The *full* set of the SSL4MIS download holds every volume and every slice; the
*minimal* set that public copies ship holds exactly what SSL4MIS's training code reads: the training slices and
the val/test volumes (1312 slices, 60 volumes), often with the slices flat in ``data/`` instead of
``data/slices/``. Both slice locations are read; ``acdc_items(...)["layout"]["description"]`` says in one line
which form was found. Images are float32 min-max normalised to [0, 1] per volume, labels uint8 0-3; no spacing
is stored (HD95 in pixels).

In that form each patient has ``frame01`` and ``frame02``. Reading: frames are renumbered there, and the lower
number is taken as ED (ACDC's ED frame precedes its ES frame), so ``phase`` of h5 items is inferred, not read.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .checks import (
    SKIP_COUNT_CHECK,
    LayoutProblems,
    class_indices,
    nifti_data_problem,
    read_synthetic_marker,
    require_dir,
    resolve_expected,
    thread_map,
)
from .download import Resource, download_resources
from .registry import DatasetSections, ScanRequest, prepare_dataset
from .splits import fixed_split, kfold_split, natural_key

__all__ = [
    "ACDC_LABELS",
    "ACDC_LABEL_VALUES",
    "ACDC_TRAIN_PATIENTS",
    "ACDC_VAL_PATIENTS",
    "ACDC_TEST_PATIENTS",
    "ACDC_INFO_KEYS",
    "ACDC_RESOURCE",
    "read_info_cfg",
    "find_acdc_layout",
    "acdc_items",
    "acdc_split",
    "prepare_acdc",
    "download_acdc",
]

logger = logging.getLogger(__name__)

ACDC_LABELS = {0: "background", 1: "RV", 2: "MYO", 3: "LV"}
ACDC_LABEL_VALUES = {"RV": 1, "MYO": 2, "LV": 3}
ACDC_GROUPS = ("DCM", "HCM", "MINF", "NOR", "RV")
ACDC_INFO_KEYS = ("ED", "ES", "Group", "Height", "NbFrame", "Weight")
ACDC_COUNTS = {"training": 100, "testing": 50}
ACDC_PAGE = "https://humanheart-project.creatis.insa-lyon.fr/database/#collection/637218c173e9f0047faa00fb"
ACDC_RESOURCE = Resource(
    url="https://humanheart-project.creatis.insa-lyon.fr/database/api/v1/collection/637218c173e9f0047faa00fb/download",
    filename="ACDC.zip",
    # SHA-256 as recorded by torch-em's ACDC loader (github.com/constantinpape/torch-em); not published by CREATIS
    sha256="2787e08b0d3525cbac710fc3bdf69ee7c5fd7446472e49db8bc78548802f6b5e",
    checksum_source="torch-em (third party); not published by CREATIS",
    page=ACDC_PAGE,
    expected=("database",),  # ACDC/database/{training,testing}; checked before the folder is put in place
)
ACDC_REFERENCE = (
    "Bernard et al., Deep Learning Techniques for Automatic MRI Cardiac Multi-structures Segmentation and Diagnosis: "
    "Is the Problem Solved?, IEEE TMI 37(11), 2018, doi:10.1109/TMI.2018.2837502"
)
# github.com/HiLab-git/SSL4MIS data/ACDC/{train,val,test}.list, as patient numbers (file order)
ACDC_TRAIN_PATIENTS = tuple(f"patient{n:03d}" for n in (
    99, 38, 50, 100, 58, 21, 49, 20, 72, 40, 60, 89, 4, 56, 98, 96, 31, 18, 94, 47, 48, 55, 97, 74, 43, 41, 63, 37,
    95, 54, 26, 88, 32, 69, 6, 71, 12, 73, 61, 17, 25, 10, 57, 29, 51, 5, 36, 46, 62, 34, 76, 92, 70, 77, 67, 3, 91,
    16, 14, 44, 42, 90, 53, 27, 35, 86, 23, 9, 79, 15,
))
ACDC_VAL_PATIENTS = tuple(f"patient{n:03d}" for n in (28, 85, 82, 87, 19, 30, 78, 45, 2, 39))
ACDC_TEST_PATIENTS = tuple(f"patient{n:03d}" for n in (
    11, 13, 84, 33, 93, 22, 68, 24, 83, 81, 80, 1, 7, 66, 8, 65, 75, 64, 59, 52,
))
ACDC_SPLITS = ("ssl4mis", "kfold")
_PATIENT = re.compile(r"^patient(\d{3})$")
_VOLUME = re.compile(r"^(patient\d{3})_frame(\d{2})$")
_SLICE = re.compile(r"^(patient\d{3})_frame(\d{2})_slice_(\d+)$")


def read_info_cfg(path: str | os.PathLike) -> dict[str, Any]:
    """Parse an ACDC ``Info.cfg`` (``key: value`` lines) into ``{"ED": int, "ES": int, "Group": str,
    "Height": float, "Weight": float, "NbFrame": int}``.

    Raises:
        FileNotFoundError: the file is missing.
        ValueError: a key is missing or a value has the wrong type (the message names the file).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Info.cfg not found: {path}")
    raw: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if ":" in line:
            key, value = line.split(":", 1)
            raw[key.strip()] = value.strip()
    missing = [k for k in ACDC_INFO_KEYS if k not in raw]
    if missing:
        raise ValueError(f"{path} lacks {missing} (keys found: {sorted(raw)})")
    try:
        info = {"ED": int(raw["ED"]), "ES": int(raw["ES"]), "Group": raw["Group"], "Height": float(raw["Height"]),
                "Weight": float(raw["Weight"]), "NbFrame": int(float(raw["NbFrame"]))}
    except ValueError as err:
        raise ValueError(f"{path}: bad value ({err})") from err
    if not 1 <= info["ED"] <= info["NbFrame"] or not 1 <= info["ES"] <= info["NbFrame"]:
        raise ValueError(f"{path}: ED {info['ED']} / ES {info['ES']} outside frames 1..{info['NbFrame']}")
    return info


def find_acdc_layout(root: str | os.PathLike, subset: str = "training") -> tuple[str, Path]:
    """``("raw", <subset folder>)`` or ``("h5", <folder holding data/ and the .list files>)``, searched in
    ``root``, ``root/database``, ``root/ACDC/database``, ``root/ACDC``."""
    root = require_dir(root, "ACDC root")
    if root.name == subset and any(_PATIENT.match(p.name) for p in root.iterdir()):
        return "raw", root
    for base in (root, root / "database", root / "ACDC" / "database", root / "ACDC"):
        if (base / subset).is_dir():
            return "raw", base / subset
        if (base / "data" / "slices").is_dir() or (base / "train.list").is_file():
            return "h5", base
    raise FileNotFoundError(
        f"ACDC folder not found in {root}: expected {subset}/patient<id>/ (raw NIfTI) or data/ with train.list, "
        "val.list, test.list (SSL4MIS HDF5 form)"
    )


def _raw_patient(folder: Path, check: str) -> tuple[list[dict[str, Any]], list[str]]:
    """Items of the ED and ES frames of one raw patient folder, and the problems found."""
    import nibabel as nib

    name = folder.name
    try:
        info = read_info_cfg(folder / "Info.cfg")
    except (FileNotFoundError, ValueError) as err:
        return [], [str(err)]
    found: list[str] = []
    four_d = folder / f"{name}_4d.nii.gz"
    if not four_d.is_file():
        found.append(f"missing {four_d}")
    else:
        try:
            shape = nib.load(str(four_d)).shape
            if len(shape) != 4 or shape[3] != info["NbFrame"]:
                found.append(f"{four_d.name} has shape {tuple(shape)}, expected 4-D with NbFrame={info['NbFrame']}")
        except Exception as err:
            found.append(f"unreadable {four_d}: {err}")
    items = []
    for phase in ("ED", "ES"):
        frame = info[phase]
        image = folder / f"{name}_frame{frame:02d}.nii.gz"
        label = folder / f"{name}_frame{frame:02d}_gt.nii.gz"
        missing = [p for p in (image, label) if not p.is_file()]
        if missing:
            found.extend(f"missing {p} ({phase} frame {frame} of Info.cfg)" for p in missing)
            continue
        try:
            image_nii, label_nii = nib.load(str(image)), nib.load(str(label))
            shape, spacing = tuple(image_nii.shape), [round(float(z), 6) for z in image_nii.header.get_zooms()[:3]]
        except Exception as err:
            found.append(f"unreadable {image.name} / {label.name}: {err}")
            continue
        if len(shape) != 3 or shape != tuple(label_nii.shape):
            found.append(f"{image.name} shape {shape} and {label.name} shape {tuple(label_nii.shape)} must be "
                         "equal and 3-D")
            continue
        if not np.allclose(spacing, label_nii.header.get_zooms()[:3], rtol=1e-3):
            found.append(f"{image.name} spacing {spacing} differs from {label.name}")
        if check == "full":
            problem = nifti_data_problem(image, image_nii)  # the label is read whole below
            if problem:
                found.append(problem)
                continue
            try:
                class_indices(np.asanyarray(label_nii.dataobj), num_classes=len(ACDC_LABELS), source=label.name)
            except ValueError as err:
                found.append(str(err))
                continue
            except Exception as err:
                found.append(f"unreadable {label}: {err}")
                continue
        items.append({"image": str(image.resolve()), "label": str(label.resolve()), "id": f"{name}_frame{frame:02d}",
                      "patient": name, "frame": frame, "phase": phase, "group": info["Group"],
                      "height": info["Height"], "weight": info["Weight"], "nb_frames": info["NbFrame"],
                      "spacing": spacing, "shape": list(shape), "image_4d": str(four_d.resolve())})
    if info["Group"] not in ACDC_GROUPS:
        found.append(f"{folder / 'Info.cfg'}: Group {info['Group']!r} is not one of {ACDC_GROUPS}")
    return items, found


def _h5_shape_and_check(path: Path, check: str) -> tuple[tuple[int, ...] | None, str | None]:
    import h5py

    try:
        with h5py.File(path, "r") as f:
            missing = [k for k in ("image", "label") if k not in f]
            if missing:
                return None, f"{path.name} has no dataset {missing} (datasets: {list(f.keys())})"
            shape, label_shape = tuple(f["image"].shape), tuple(f["label"].shape)
            label = f["label"][()] if check == "full" else None
    except Exception as err:
        return None, f"unreadable {path}: {err}"
    if shape != label_shape:
        return None, f"{path.name}: image {shape} and label {label_shape} differ"
    if label is not None:
        try:
            class_indices(label, num_classes=len(ACDC_LABELS), source=path.name)
        except ValueError as err:
            return None, str(err)
    return shape, None


def _read_list(path: Path, pattern: re.Pattern, problems: LayoutProblems) -> list[str]:
    names = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    bad = [n for n in names if not pattern.match(n)]
    if bad:
        problems.add(f"{path.name} has names not of the form {pattern.pattern.strip('^$')}: {bad[:3]}")
    return [n for n in names if pattern.match(n)]


def _h5_items(base: Path, check: str, num_workers: int, problems: LayoutProblems,
              progress: bool | None = False) -> dict[str, Any]:
    """Items of the SSL4MIS HDF5 form.

    What SSL4MIS reads is required: every training slice (those of ``train_slices.list`` when present, else every
    slice on disk of a ``train.list`` volume, at least one per volume) and every ``val.list`` / ``test.list``
    volume. Training volumes and val/test slices (the original download has them, public copies do not) are
    optional; where a volume and its slices are both present the slices must be exactly ``1..D``. Slices are read
    from ``data/slices/`` (the SSL4MIS download) and from ``data/`` itself (public copies keep them flat).
    """
    data = require_dir(base / "data", "ACDC HDF5 data")
    lists = {}
    for section in ("train", "val", "test"):
        path = base / f"{section}.list"
        if not path.is_file():
            raise FileNotFoundError(f"ACDC split list not found: {path}")
        lists[section] = _read_list(path, _VOLUME, problems)
    slice_list = base / "train_slices.list"
    listed_slices = _read_list(slice_list, _SLICE, problems) if slice_list.is_file() else None

    volumes_on_disk = {p.stem: p for p in data.glob("*.h5") if _VOLUME.match(p.stem)}
    slice_files: dict[str, Path] = {}
    folders_with_slices = []
    for folder in (data / "slices", data):
        if not folder.is_dir():
            continue
        found_here = False
        for p in folder.glob("*.h5"):
            if _VOLUME.match(p.stem) and folder == data:
                continue
            if not _SLICE.match(p.stem):
                problems.add(f"unexpected file name {p.name} in {folder}")
                continue
            found_here = True
            if p.stem in slice_files:
                problems.add(f"slice {p.name} is both in {slice_files[p.stem].parent} and in {folder}")
                continue
            slice_files[p.stem] = p
        if found_here:
            folders_with_slices.append(folder)
    slices_of: dict[str, list[tuple[int, Path]]] = {}
    for stem, p in slice_files.items():
        m = _SLICE.match(stem)
        slices_of.setdefault(f"{m.group(1)}_frame{m.group(2)}", []).append((int(m.group(3)), p))
    for ks in slices_of.values():
        ks.sort()

    listed = [n for section in ("train", "val", "test") for n in lists[section]]
    for name in sorted(set(volumes_on_disk) - set(listed)):
        problems.add(f"volume {name}.h5 is in no .list file")
    for section in ("val", "test"):
        for name in lists[section]:
            if name not in volumes_on_disk:
                problems.add(f"missing volume {data / (name + '.h5')} (listed in {section}.list: SSL4MIS evaluates "
                             "validation and test patients on whole volumes)")
    train_volumes = set(lists["train"])
    if listed_slices is not None:
        training_slices = []
        for stem in listed_slices:
            m = _SLICE.match(stem)
            volume = f"{m.group(1)}_frame{m.group(2)}"
            if volume not in train_volumes:
                problems.add(f"train_slices.list names {stem}, a slice of {volume}, which is not in train.list")
            elif stem not in slice_files:
                where = " or ".join(str(f) for f in (data / "slices", data))
                problems.add(f"missing training slice {stem}.h5 (listed in train_slices.list; looked in {where})")
            else:
                training_slices.append(stem)
        listed_volumes = {_SLICE.match(s).group(1) + "_frame" + _SLICE.match(s).group(2) for s in listed_slices}
        for name in lists["train"]:
            if name not in listed_volumes:
                problems.add(f"train_slices.list names no slice of {name} (in train.list)")
    else:
        training_slices = []
        for name in lists["train"]:
            if not slices_of.get(name):
                problems.add(f"no slice file of training volume {name} ({name}_slice_<k>.h5 in data/ or data/slices/)")
            training_slices.extend(p.stem for _, p in slices_of.get(name, []))

    # read every present volume of the lists, the training slices, and any other slice of a listed volume
    present = [n for n in listed if n in volumes_on_disk]
    step = "checking" if check == "full" else "reading headers of"
    shapes = dict(zip(present, thread_map(lambda n: _h5_shape_and_check(volumes_on_disk[n], check), present,
                                         num_workers, desc=f"ACDC: {step} volumes", progress=progress,
                                         unit="volume")))
    wanted = set(training_slices) | {p.stem for n in present for _, p in slices_of.get(n, [])}
    to_read = sorted(wanted, key=natural_key)
    slice_checks = dict(zip(to_read, thread_map(lambda s: _h5_shape_and_check(slice_files[s], check), to_read,
                                                 num_workers, desc=f"ACDC: {step} slices", progress=progress,
                                                 unit="slice")))
    for stem, (shape, bad) in slice_checks.items():
        if bad:
            problems.add(bad)
        elif shape is not None and len(shape) != 2:
            problems.add(f"slice {stem}.h5 is not 2-D (H, W): {shape}")
    for name, ks in slices_of.items():
        numbers = [k for k, _ in ks]
        if numbers != list(range(1, len(numbers) + 1)) and (name in volumes_on_disk or name in train_volumes):
            problems.add(f"{name}: slices {numbers[:4]}{'...' if len(numbers) > 4 else ''} are not numbered 1..n "
                         "without gaps")
    volumes, slices = [], []
    for name in present:
        shape, bad = shapes[name]
        if bad:
            problems.add(bad)
            continue
        if len(shape) != 3:
            problems.add(f"volume {name}.h5 is not (D, H, W): {shape}")
            continue
        ks = [k for k, _ in slices_of.get(name, [])]
        if ks and ks != list(range(1, shape[0] + 1)):
            problems.add(f"{name}: slices {ks[:4]}{'...' if len(ks) > 4 else ''} ({len(ks)}) do not match the "
                         f"{shape[0]} slices of {name}.h5 (expected {name}_slice_1..{shape[0]})")
        for _, p in slices_of.get(name, []):
            s_shape = slice_checks.get(p.stem, (None, None))[0]
            if s_shape is not None and len(s_shape) == 2 and tuple(s_shape) != tuple(shape[1:]):
                problems.add(f"slice {p.name} is {tuple(s_shape)}, its volume {name}.h5 is {tuple(shape)}")
                break
        m = _VOLUME.match(name)
        volumes.append({"image": str(volumes_on_disk[name].resolve()), "label": str(volumes_on_disk[name].resolve()),
                        "id": name, "patient": m.group(1), "frame": int(m.group(2)), "num_slices": shape[0]})
    evaluation_slices = [p.stem for n in present if n not in train_volumes for _, p in slices_of.get(n, [])]
    for stem in training_slices + evaluation_slices:  # val/test slices: only in the full set, never trained on
        m = _SLICE.match(stem)
        path = str(slice_files[stem].resolve())
        slices.append({"image": path, "label": path, "id": stem, "patient": m.group(1), "frame": int(m.group(2)),
                       "slice": int(m.group(3))})
    frames: dict[str, set[int]] = {}
    for name in listed:
        m = _VOLUME.match(name)
        frames.setdefault(m.group(1), set()).add(int(m.group(2)))
    for item in (*volumes, *slices):  # Reading: lower frame number = ED (see the module docstring)
        ordered = sorted(frames.get(item["patient"], []))
        item["phase"] = ("ED" if item["frame"] == ordered[0] else "ES") if len(ordered) == 2 else None
    full = all(n in volumes_on_disk for n in lists["train"]) and all(slices_of.get(n) for n in present)
    where = " and ".join(f"{f.relative_to(base)}/" for f in folders_with_slices) or "no folder"
    layout = {
        "slices": [str(f.relative_to(base)) for f in folders_with_slices],
        "set": "full" if full else "minimal",
        "train_slices_list": listed_slices is not None,
        "description": (
            "SSL4MIS HDF5 form, "
            f"{'full set (all volumes and all slices)' if full else 'minimal set (training slices, val/test volumes)'}"
            f"; slices in {where}; "
            f"{len(training_slices)} training slices, {len(volumes)} volumes"
        ),
    }
    return {"volumes": volumes, "slices": slices, "lists": lists, "layout": layout}


def acdc_items(
    root: str | os.PathLike,
    subset: str = "training",
    form: str = "auto",
    expected_count: int | str | None = "auto",
    check: str = "full",
    num_workers: int = 0,
    progress: bool | None = False,
) -> dict[str, Any]:
    """Scan an ACDC folder (raw NIfTI or SSL4MIS HDF5 form), check it and return its items.

    Returns:
        ``{"form": "raw" | "h5", "volumes": [...], "slices": [...], "lists": {...} | None}``.
        Raw volume items (one per ED/ES frame): ``{"image", "label", "id": "patient001_frame01", "patient",
        "frame", "phase": "ED" | "ES", "group", "height", "weight", "nb_frames", "spacing": [x, y, z] mm,
        "shape", "image_4d"}``; raw ``slices`` is empty. HDF5 items: volumes ``{"image", "label", "id",
        "patient", "frame", "phase", "num_slices"}`` and slices with ``"slice": k`` instead of ``num_slices``;
        ``lists`` holds the ``train``/``val``/``test`` volume names.

    Args:
        subset: raw form only: ``"training"`` (100 patients) or ``"testing"`` (50).
        form: ``"auto"``, ``"raw"`` or ``"h5"``.
        expected_count: number of patients (``"auto"``: 100 / 50, or a look-alike's count; ``None`` skips). In
            the HDF5 form with ``"auto"`` the lists must also be SSL4MIS's 70/10/20 patients (in a look-alike: a
            subset of them).
        check: ``"full"`` reads every label (values 0-3) and every ED/ES image to its end (a truncated or damaged
            file is named), ``"header"`` headers only.
        num_workers: reader threads.
        progress: progress bars on stderr while the patients (raw) or volumes and slices (HDF5) are read (True,
            False, or None: when stderr is a terminal).

    Raises:
        FileNotFoundError: folders, ``Info.cfg`` or list files missing.
        DatasetLayoutError: everything else, naming the files.
    """
    if check not in ("header", "full"):
        raise ValueError(f"check must be 'header' or 'full', got {check!r}.")
    if subset not in ACDC_COUNTS:
        raise ValueError(f"subset must be one of {tuple(ACDC_COUNTS)}, got {subset!r}.")
    found_form, folder = find_acdc_layout(root, subset)
    if form not in ("auto", found_form):
        raise FileNotFoundError(f"ACDC {form} form not found in {root} (found the {found_form} form at {folder})")
    problems = LayoutProblems(f"ACDC ({found_form})", folder)
    marker = read_synthetic_marker(folder) or read_synthetic_marker(folder.parent)
    if found_form == "raw":
        patients = sorted(p for p in folder.iterdir() if p.is_dir() and _PATIENT.match(p.name))
        step = "checking" if check == "full" else "reading headers of"
        results = thread_map(lambda p: _raw_patient(p, check), patients, num_workers, desc=f"ACDC: {step} patients",
                             progress=progress, unit="patient")
        volumes = []
        for items, found in results:
            volumes.extend(items)
            problems.extend(found)
        result = {"form": "raw", "volumes": volumes, "slices": [], "lists": None,
                  "layout": {"description": f"raw NIfTI form ({subset}/patient<id>/), {len(volumes)} ED/ES volumes"}}
        num_patients = len(patients)
    else:
        result = {"form": "h5", **_h5_items(folder, check, num_workers, problems, progress)}
        lists = result["lists"]
        official = {"train": ACDC_TRAIN_PATIENTS, "val": ACDC_VAL_PATIENTS, "test": ACDC_TEST_PATIENTS}
        for section, names in lists.items():
            patients_listed = {n[:10] for n in names}
            if expected_count == "auto" and marker is None and patients_listed != set(official[section]):
                problems.add(f"{section}.list has {len(patients_listed)} patients that differ from SSL4MIS's "
                             f"{len(official[section])} (e.g. {sorted(patients_listed ^ set(official[section]))[:3]})"
                             f"{SKIP_COUNT_CHECK}")
            elif not patients_listed <= set(official[section]):
                problems.add(f"{section}.list names patients outside SSL4MIS's {section} list: "
                             f"{sorted(patients_listed - set(official[section]))[:3]}")
        num_patients = len({n[:10] for names in lists.values() for n in names})
    expected = resolve_expected(expected_count, marker, "patients", ACDC_COUNTS[subset])
    if expected is not None and num_patients != expected:
        problems.add(f"found {num_patients} patients, expected {expected}{SKIP_COUNT_CHECK}")
    problems.raise_if_any()
    logger.info("ACDC at %s: %s", folder, result["layout"]["description"])
    result["volumes"].sort(key=lambda it: natural_key(it["id"]))
    result["slices"].sort(key=lambda it: natural_key(it["id"]))
    return result


def acdc_split(
    items: Mapping[str, Any],
    split: str = "ssl4mis",
    fold: int = 0,
    num_folds: int = 5,
    seed: int = 0,
    slices: bool = True,
) -> tuple[dict[str, list[dict[str, Any]]], dict[str, Any]]:
    """``(sections, info)`` by patient: ``"ssl4mis"`` (70/10/20 patients, the fixed SSL4MIS lists; test
    patients 001 007 008 011 013 022 024 033 052 059 064 065 066 068 075 080 081 083 084 093) or ``"kfold"``
    (fold ``fold`` of all patients as validation, no test).

    Validation and test items are volumes. Training items are the HDF5 slices in the HDF5 form; in the raw form
    they are volumes, or with ``slices=True`` one item per slice (``"slice": k`` along the last axis, 0-based:
    read it with :class:`monai_imbalance.apps.loaders.ExtractSliced`).
    """
    volumes, slice_items = list(items["volumes"]), list(items["slices"])
    patients = sorted({it["patient"] for it in (*volumes, *slice_items)}, key=natural_key)
    info: dict[str, Any] = {"name": split, "seed": seed}
    if split == "ssl4mis":
        groups = fixed_split(patients, {"training": ACDC_TRAIN_PATIENTS, "validation": ACDC_VAL_PATIENTS,
                                        "test": ACDC_TEST_PATIENTS}, rest=None)
        info.update(official=True, source="SSL4MIS lists (github.com/HiLab-git/SSL4MIS data/ACDC): 70/10/20 patients")
    elif split == "kfold":
        train, val = kfold_split(patients, fold, num_folds, seed)
        groups = {"training": train, "validation": val, "test": []}
        info.update(official=False, fold=fold, num_folds=num_folds, source="seeded patient-level k-fold")
    else:
        raise ValueError(f"split must be one of {ACDC_SPLITS}, got {split!r}.")
    where = {p: name for name, members in groups.items() for p in members}
    sections: dict[str, list[dict[str, Any]]] = {"training": [], "validation": [], "test": []}
    for v in volumes:
        sections[where[v["patient"]]].append(dict(v))
    if items.get("form") == "h5":
        sections["training"] = [dict(s) for s in slice_items if where[s["patient"]] == "training"]
        info["training_items"] = "2-D HDF5 slices"
        with_volume = {v["patient"] for v in volumes}
        with_slices = {s["patient"] for s in slice_items}
        lacking = [p for p in groups["validation"] + groups["test"] if p not in with_volume]
        lacking += [p for p in groups["training"] if p not in with_slices]
        if lacking:
            raise ValueError(
                f"the {split!r} split needs volume files of its validation/test patients and slice files of its "
                f"training patients; missing for {sorted(set(lacking), key=natural_key)[:4]}: the minimal SSL4MIS "
                "set (training slices, val/test volumes) supports the 'ssl4mis' split only."
            )
    elif slices:
        expanded = []
        for v in sections["training"]:
            for k in range(v["shape"][2]):
                expanded.append({**v, "id": f"{v['id']}_slice_{k}", "slice": k})
        sections["training"] = expanded
        info["training_items"] = "one item per slice of the NIfTI volumes (ExtractSliced)"
    info["patients"] = {k: len(v) for k, v in groups.items()}
    info["counts"] = {k: len(v) for k, v in sections.items()}
    return sections, info


def download_acdc(root: str | os.PathLike, progress: bool = True) -> Path:
    """Download the ACDC collection (about 2.4 GB zip) from the CREATIS Human Heart database into ``root`` and
    extract it (skipped when ``root/ACDC`` exists); return ``root/ACDC``."""
    return download_resources([ACDC_RESOURCE], root, progress=progress)[0]


def acdc_sections(
    root: str | os.PathLike,
    request: ScanRequest,
    *,
    form: str | None = None,
    slices: bool | None = None,
) -> DatasetSections:
    """Check an ACDC folder (raw NIfTI or SSL4MIS HDF5 form) and split it (the dataset's entry of
    :mod:`monai_imbalance.apps.registry`). See :func:`acdc_items` and :func:`acdc_split` for the arguments."""
    split, fold, num_folds, seed = request.split, request.fold, request.num_folds, request.seed
    expected_count, check, num_workers = request.expected_count, request.check, request.num_workers
    items = acdc_items(root, form=form or "auto", expected_count=expected_count, check=check,
                       num_workers=num_workers, progress=request.progress)
    sections, info = acdc_split(items, split, fold=fold, num_folds=num_folds, seed=seed,
                                slices=True if slices is None else slices)
    _, folder = find_acdc_layout(root)
    suffix = f"_fold{fold}" if split == "kfold" else ""
    home = folder.parent if items["form"] == "raw" else folder  # next to training/, not among the patients
    synthetic = (read_synthetic_marker(folder) or read_synthetic_marker(folder.parent)) is not None
    datalist = dict(
        name="ACDC", description=f"ACDC cine-MRI ({items['form']} form), {split} split: {info['counts']}. Labels "
        "RV=1, MYO=2, LV=3; spacing kept (anisotropic, resample in-plane only).", labels=ACDC_LABELS,
        synthetic=synthetic, tensor_image_size="3D (2-D slice training)", modality={"0": "cine-MRI"},
        reference=ACDC_REFERENCE, licence="see the ACDC database page (research use)", source=ACDC_PAGE,
        form=items["form"], label_values=ACDC_LABEL_VALUES,
    )
    return DatasetSections(sections, info, datalist, home / f"datalist_acdc_{split}{suffix}.json",
                           layout=items["layout"]["description"])


def prepare_acdc(root: str | os.PathLike, out: str | os.PathLike | None = None, **kwargs: Any) -> Path:
    """Check an ACDC folder (downloading it first with ``download=True``) and write a MONAI datalist JSON (default
    ``datalist_acdc_<split>.json`` beside ``training/`` or in the HDF5 folder); return its path. Arguments:
    :func:`acdc_sections`."""
    return prepare_dataset("acdc", root, out, **kwargs)
