"""A user's own segmentation dataset as bundle input, in any of three forms.

1. A MONAI datalist JSON: ``{"training": [{"image": ..., "label": ...}, ...], "validation": [...], "test": [...]}``
   with paths relative to the JSON's folder (or to ``data_root``), as written by
   :func:`monai_imbalance.apps.synthetic.write_synthetic_dataset` and ``monai-imbalance prepare``; read by
   ``monai.data.load_decathlon_datalist``. An optional ``"labels"`` dict names the classes.
2. A Medical Segmentation Decathlon Task folder, ``TaskNN_Name/dataset.json`` with ``imagesTr/``, ``labelsTr/`` and
   ``imagesTs/`` (the same JSON form, plus ``modality``, ``tensorImageSize`` and a ``test`` list of image paths), or
   an nnU-Net v2 dataset folder whose ``dataset.json`` has ``channel_names`` and ``file_ending`` but no file list:
   ``imagesTr/<case>_0000<file_ending>`` (``_0001``, ... for further channels) pairs with
   ``labelsTr/<case><file_ending>``. ``source`` may be the ``dataset.json`` or the folder holding it.
3. A folder of image/label pairs: ``images/`` with ``labels/`` or ``masks/``, or ``imagesTr/`` with ``labelsTr/``
   (and an optional ``imagesTs/``), paired by file name: ``a.jpg`` with ``a.png``, ISIC's ``ISIC_0000000.jpg`` with
   ``ISIC_0000000_segmentation.png`` (label names may end in :data:`LABEL_NAME_SUFFIXES`), nnU-Net's
   ``a_0000.nii.gz`` (+ ``a_0001.nii.gz``, ...) with ``a.nii.gz``.

Files whose name starts with a dot (macOS ``._x.nii.gz`` resource forks, which the Decathlon archives ship, and
``.DS_Store``) are ignored everywhere. Every item gets an ``"id"``: its own when it has one, else the image's file
name without suffixes (:func:`monai_imbalance.transforms.io.split_volume_name`).

Example:
    >>> from monai_imbalance.apps.lookalike import write_decathlon_lookalike
    >>> sections = user_sections(write_decathlon_lookalike("lookalike"), fold=0, num_folds=3)
    >>> sorted(sections), len(sections["validation"])
    (['test', 'training', 'validation'], 2)
"""

from __future__ import annotations

import json
import logging
import operator
import os
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .checks import LayoutProblems
from .splits import holdout_split, items_by_ids, kfold_split, natural_key

__all__ = [
    "UserDataset",
    "read_user_dataset",
    "user_sections",
    "PAIR_SUFFIXES",
    "PAIR_FOLDERS",
    "LABEL_NAME_SUFFIXES",
    "DATASET_JSON",
]

#: file types of the folder form (``.nii.gz`` is matched whole)
PAIR_SUFFIXES = (".nii.gz", ".nii", ".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".nrrd", ".mha")
#: (image folder, label folder) names of the folder form, matched case-insensitively
PAIR_FOLDERS = (("images", "labels"), ("images", "masks"), ("imagesTr", "labelsTr"))
#: endings a label's name may add to its image's name (``ISIC_0000000_segmentation.png``), case-insensitive
LABEL_NAME_SUFFIXES = ("_segmentation", "_mask", "_seg", "_label", "_gt")
#: the Decathlon / nnU-Net file that describes a Task folder
DATASET_JSON = "dataset.json"

_SECTIONS = ("training", "validation", "test")
_CHANNEL = re.compile(r"^(.+)_(\d{4})$")  # nnU-Net's channel suffix: case_0000
_OUR_KEYS = ("split", "synthetic", "generator")  # keys that monai_imbalance's own datalists carry
_LISTED = 5  # files named in a message
logger = logging.getLogger(__name__)


@dataclass
class UserDataset:
    """A dataset as read by :func:`read_user_dataset`.

    Attributes:
        kind: ``"datalist"`` (a MONAI datalist JSON), ``"decathlon"`` (a Decathlon or nnU-Net v2 ``dataset.json``)
            or ``"folder"`` (a folder of image/label pairs).
        source: the JSON file or the folder read.
        items: the items of the requested list (``data_list_key``, the training list by default): ``{"image":
            str | list[str], "label": str, "id": str, ...}`` with absolute paths.
        sections: ``{"training": [...], "validation": [...], "test": [...]}`` as found (a missing section is an
            empty list); test items may lack ``"label"``.
        class_names: class index -> name (``{0: "background", 1: "liver"}``) from the file, ``None`` when it has none.
        modality: channel index -> name (Decathlon ``modality``, nnU-Net v2 ``channel_names``), or ``None``.
        name: the dataset's name (the file's ``name``; the folder's name for the folder form), or ``None``.
        tensor_image_size: ``"2D"``, ``"3D"`` or ``"4D"`` when the file says (``tensorImageSize``), else ``None``.
    """

    kind: str
    source: Path
    items: list[dict]
    sections: dict[str, list[dict]]
    class_names: dict[int, str] | None = None
    modality: dict[int, str] | None = None
    name: str | None = None
    tensor_image_size: str | None = None


def _listed(names: Sequence[Any]) -> str:
    shown = ", ".join(str(n) for n in names[:_LISTED])
    return shown + (f", ... ({len(names) - _LISTED} more)" if len(names) > _LISTED else "")


def _is_junk(path: Path) -> bool:
    """macOS resource forks (``._x.nii.gz``), ``.DS_Store`` and other hidden files."""
    return path.name.startswith(".")


# ---------------------------------------------------------------------------------------------------------- ids


def _stem(path: str | os.PathLike) -> str:
    from monai_imbalance.transforms.io import split_volume_name

    return split_volume_name(path)[0]


def _first_image(item: Mapping[str, Any]) -> str:
    image = item["image"]
    return str(image[0] if isinstance(image, (list, tuple)) else image)


def _derived_id(item: Mapping[str, Any]) -> str:
    """The image's name without suffixes; for a list of channel files, the first one's without ``_0000``."""
    stem = _stem(_first_image(item))
    if isinstance(item["image"], (list, tuple)) and len(item["image"]) > 1:
        match = _CHANNEL.match(stem)
        if match:
            return match.group(1)
    return stem


def _assign_ids(items: list[dict[str, Any]], where: str) -> None:
    """Give every item an ``"id"``: its own, else :func:`_derived_id`; derived ids that clash (``a/img.png`` and
    ``b/img.png``) take the folders below the images' common folder (``a_img``, ``b_img``)."""
    own = [None if item.get("id") is None else str(item["id"]) for item in items]
    ids = [o if o is not None else _derived_id(item) for o, item in zip(own, items)]
    counts = Counter(ids)
    clashing = [i for i, o in enumerate(own) if o is None and counts[ids[i]] > 1]
    if clashing:
        folders = [os.path.dirname(_first_image(items[i])) for i in clashing]
        common = os.path.commonpath(folders)
        for i, folder in zip(clashing, folders):
            parts = Path(os.path.relpath(folder, common)).parts
            ids[i] = "_".join([p for p in parts if p not in (".", "")] + [ids[i]])
    duplicates = sorted((k for k, n in Counter(ids).items() if n > 1), key=natural_key)
    if duplicates:
        raise ValueError(f"{where}: item ids are not unique: {_listed(duplicates)}. Give each item a unique 'id'.")
    for item, key in zip(items, ids):
        item["id"] = key


# ------------------------------------------------------------------------------------------------ JSON forms


def _json_form(data: Any, path: Path) -> str:
    """``"datalist"``, ``"decathlon"`` (a MONAI-readable list with the Decathlon metadata) or ``"nnunet_v2"``."""
    if not isinstance(data, dict):
        raise ValueError(f"{path} holds a JSON {type(data).__name__}, not an object: not a datalist or dataset.json.")
    if "training" in data:
        msd = all(k in data for k in ("modality", "labels", "numTraining")) and not any(k in data for k in _OUR_KEYS)
        return "decathlon" if msd else "datalist"
    if "channel_names" in data or "file_ending" in data:
        return "nnunet_v2"
    raise ValueError(
        f"{path} is neither a datalist nor a dataset.json: it has no 'training' list (a MONAI datalist or Decathlon "
        f"dataset.json) and no 'channel_names'/'file_ending' (an nnU-Net v2 dataset.json); keys: {sorted(data)}."
    )


def _index_names(value: Any, what: str, path: Path) -> dict[int, str] | None:
    """``{"0": "CT"}`` -> ``{0: "CT"}``; a plain string is channel 0."""
    if value is None:
        return None
    if isinstance(value, str):
        return {0: value}
    if not isinstance(value, Mapping):
        raise ValueError(f"{path}: {what} must be a dict of index -> name, got {type(value).__name__}.")
    try:
        return {int(k): str(v) for k, v in sorted(value.items(), key=lambda kv: int(kv[0]))}
    except (TypeError, ValueError) as err:
        raise ValueError(f"{path}: the keys of {what} must be integers, got {sorted(map(str, value))}.") from err


def _class_names(labels: Any, path: Path, inverted: bool) -> dict[int, str] | None:
    """Class names from Decathlon ``{"0": "background"}`` or nnU-Net v2 ``{"background": 0}`` (``inverted``, or
    detected from the values). nnU-Net v2 regions (``"tumour": [1, 2]``) name no single class and are left out."""
    if labels is None:
        return None
    if not isinstance(labels, Mapping):
        raise ValueError(f"{path}: 'labels' must be a dict, got {type(labels).__name__}.")
    digit_keys = all(str(k).strip().lstrip("-").isdigit() for k in labels)
    if not inverted and digit_keys:
        return _index_names(labels, "'labels'", path)
    names: dict[int, str] = {}
    regions = []
    for name, value in labels.items():
        if isinstance(value, bool) or not isinstance(value, (int, list, tuple)):
            raise ValueError(
                f"{path}: 'labels' must map class index -> name or (nnU-Net v2) name -> index, got {name!r}: {value!r}."
            )
        if isinstance(value, int):
            names[value] = str(name)
        else:
            regions.append(str(name))
    if regions:
        logger.warning(
            "%s: nnU-Net region labels %s name no single class index; left out of class_names", path, regions
        )
    return dict(sorted(names.items()))


def _load_section(path: Path, data: Mapping[str, Any], section: str, base: Path) -> list[dict[str, Any]]:
    from monai.data import load_decathlon_datalist

    listed = data.get(section)
    if not listed:  # absent, null or empty (MONAI 1.6.1 raises IndexError on an empty "test" list)
        return []
    if not isinstance(listed, list):
        raise ValueError(f"{path}: '{section}' must be a list of items, got {type(listed).__name__}.")
    try:
        items = load_decathlon_datalist(str(path), is_segmentation=True, data_list_key=section, base_dir=str(base))
    except TypeError as err:  # an item that is not a dict (strings are allowed in "test" only)
        raise ValueError(f"{path}: every '{section}' entry must be a dict with 'image' (and 'label'): {err}") from err
    for index, item in enumerate(items):
        needed = ("image",) if section == "test" else ("image", "label")
        missing = [k for k in needed if item.get(k) in (None, "", [])]
        if missing:
            raise ValueError(f"{path}: '{section}' item {index} has no {' and no '.join(missing)}: {item}")
    return items


def _check_files_exist(sections: Mapping[str, list[dict[str, Any]]], path: Path, base: Path, hint: bool) -> None:
    missing = []
    for items in sections.values():
        for item in items:
            for key in ("image", "label"):
                value = item.get(key)
                for file in value if isinstance(value, (list, tuple)) else [value]:
                    if file is not None and not os.path.isfile(file):
                        missing.append(file)
    if missing:
        advice = " (set data_root to the folder the relative paths start from)" if hint else ""
        raise FileNotFoundError(
            f"{len(missing)} file(s) listed in {path} not found, relative paths taken from {base}{advice}: "
            f"{_listed(missing)}"
        )


def _files_by_stem(folder: Path, endings: Sequence[str], problems: LayoutProblems, what: str) -> dict[str, Path]:
    """Files of ``folder`` ending in one of ``endings`` (case-insensitive, longest first), keyed by the name
    without that ending; junk files are skipped, two files with one name are a problem."""
    ordered = sorted(endings, key=len, reverse=True)
    found: dict[str, Path] = {}
    for file in sorted(folder.iterdir()):
        if not file.is_file() or _is_junk(file):
            continue
        ending = next((e for e in ordered if file.name.lower().endswith(e.lower())), None)
        if ending is None:
            continue  # LICENSE.txt, a JSON, ...
        stem = file.name[: -len(ending)]
        if stem in found:
            problems.add(f"two {what} files named {stem}: {found[stem].name} and {file.name}")
        else:
            found[stem] = file
    return found


def _channel_groups(files: Mapping[str, Path]) -> dict[str, dict[int, str]]:
    """nnU-Net channel files by case: ``{"a": {0: "a_0000", 1: "a_0001"}}`` (values are keys of ``files``)."""
    groups: dict[str, dict[int, str]] = {}
    for stem in files:
        match = _CHANNEL.match(stem)
        if match:
            groups.setdefault(match.group(1), {})[int(match.group(2))] = stem
    return groups


def _channel_image(
    case: str, channels: Mapping[int, str], files: Mapping[str, Path], expected: int | None, problems: LayoutProblems
) -> str | list[str] | None:
    """The image (one path, or a list of the channel files in channel order) of a case's channel group."""
    present = sorted(channels)
    want = list(range(expected)) if expected is not None else list(range(len(present)))
    if present != want:
        problems.add(
            f"case {case} has channel files {[files[channels[k]].name for k in present]}, expected "
            f"channels {', '.join(f'_{k:04d}' for k in want)}"
        )
        return None
    paths = [str(files[channels[k]]) for k in present]
    return paths[0] if len(paths) == 1 else paths


def _pair_files(
    image_dir: Path,
    label_dir: Path,
    endings: Sequence[str],
    problems: LayoutProblems,
    label_suffixes: Sequence[str] = LABEL_NAME_SUFFIXES,
    channels: int | None = None,
) -> tuple[list[dict[str, Any]], bool]:
    """Items pairing the images of ``image_dir`` with the labels of ``label_dir`` by name, and whether the images
    were nnU-Net channel files.

    A label ``x`` (or ``x_segmentation``, ``x_mask``, ... of ``label_suffixes``) pairs with the image ``x``, or with
    the channel files ``x_0000``, ``x_0001``, ... . ``channels`` (nnU-Net v2): images must be channel files, exactly
    that many per case. Unpaired files are reported to ``problems``.
    """
    images = _files_by_stem(image_dir, endings, problems, "image")
    labels = _files_by_stem(label_dir, endings, problems, "label")
    direct = {} if channels is not None else images
    groups = _channel_groups(images)
    suffixes = [s.lower() for s in label_suffixes]
    label_of: dict[str, Path] = {}
    unpaired_labels = []
    for stem, label in labels.items():
        candidates = [stem] + [stem[: -len(s)] for s in suffixes if stem.lower().endswith(s) and len(stem) > len(s)]
        case = next((c for c in candidates if c in direct or c in groups), None)
        if case is None:
            unpaired_labels.append(label.name)
        elif case in label_of:
            problems.add(f"two label files for image {case}: {label_of[case].name} and {label.name}")
        else:
            label_of[case] = label
    used: set[str] = set()
    items = []
    from_channels = False
    for case in sorted(label_of, key=natural_key):
        if case in direct:
            image: str | list[str] | None = str(images[case])
            used.add(case)
        else:
            image = _channel_image(case, groups[case], images, channels, problems)
            used.update(groups[case].values())
            from_channels = True
        if image is not None:
            items.append({"image": image, "label": str(label_of[case]), "id": case})
    unpaired_images = [images[s].name for s in images if s not in used]
    if channels is not None:
        stray = [images[s].name for s in images if s not in used and not _CHANNEL.match(s)]
        if stray:
            problems.add(f"{len(stray)} image file(s) in {image_dir} lack the _0000 channel suffix: {_listed(stray)}")
        unpaired_images = [n for n in unpaired_images if n not in stray]
    if unpaired_images:
        problems.add(
            f"{len(unpaired_images)} image(s) in {image_dir} without a label in {label_dir}: {_listed(unpaired_images)}"
        )
    if unpaired_labels:
        rule = "" if channels is not None else f" (a label is named like its image, optionally + {'/'.join(suffixes)})"
        problems.add(
            f"{len(unpaired_labels)} label(s) in {label_dir} without an image in {image_dir}{rule}: "
            f"{_listed(unpaired_labels)}"
        )
    return items, from_channels


def _test_images(
    folder: Path, endings: Sequence[str], problems: LayoutProblems, grouped: bool, channels: int | None = None
) -> list[dict[str, Any]]:
    """``{"image", "id"}`` items of an ``imagesTs/`` folder; ``grouped``: nnU-Net channel files by case."""
    if not folder.is_dir():
        return []
    files = _files_by_stem(folder, endings, problems, "test image")
    if not grouped:
        return [{"image": str(files[s]), "id": s} for s in sorted(files, key=natural_key)]
    groups = _channel_groups(files)
    stray = [files[s].name for s in files if not _CHANNEL.match(s)]
    if stray:
        problems.add(f"{len(stray)} test image file(s) in {folder} lack the _0000 channel suffix: {_listed(stray)}")
    items = []
    for case in sorted(groups, key=natural_key):
        image = _channel_image(case, groups[case], files, channels, problems)
        if image is not None:
            items.append({"image": image, "id": case})
    return items


def _nnunet_v2_sections(data: Mapping[str, Any], base: Path, path: Path) -> dict[str, list[dict[str, Any]]]:
    names = data.get("channel_names", data.get("modality"))
    if not isinstance(names, Mapping) or not names:
        raise ValueError(f'{path}: an nnU-Net v2 dataset.json needs \'channel_names\' ({{"0": "CT"}}), got {names!r}.')
    ending = data.get("file_ending", ".nii.gz")
    if not isinstance(ending, str) or not ending.startswith("."):
        raise ValueError(f"{path}: 'file_ending' must be a suffix such as '.nii.gz', got {ending!r}.")
    image_dir, label_dir = base / "imagesTr", base / "labelsTr"
    for folder in (image_dir, label_dir):
        if not folder.is_dir():
            raise FileNotFoundError(f"nnU-Net v2 folder not found: {folder} (named by {path})")
    problems = LayoutProblems("nnU-Net v2 dataset", base)
    training, _ = _pair_files(image_dir, label_dir, (ending,), problems, label_suffixes=(), channels=len(names))
    test = _test_images(base / "imagesTs", (ending,), problems, grouped=True, channels=len(names))
    problems.raise_if_any()
    expected = data.get("numTraining")
    if expected is not None and str(expected).isdigit() and int(expected) != len(training):
        raise ValueError(
            f"{path} says numTraining={expected} but {label_dir} holds {len(training)} labelled "
            f"case(s) with {ending} files; some cases are missing or numTraining is wrong."
        )
    return {"training": training, "validation": [], "test": test}


def _read_json(path: Path, data_root: str | os.PathLike | None) -> UserDataset:
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path} is not a JSON file: {err}") from err
    form = _json_form(data, path)
    if data_root is not None:
        base = Path(os.path.abspath(data_root))
        if not base.is_dir():
            raise FileNotFoundError(f"data_root folder not found: {base}")
    else:
        base = path.parent
    if form == "nnunet_v2":
        sections = _nnunet_v2_sections(data, base, path)
        modality = _index_names(data.get("channel_names"), "'channel_names'", path)
    else:
        sections = {s: _load_section(path, data, s, base) for s in _SECTIONS}
        _check_files_exist(sections, path, base, hint=data_root is None)
        modality = _index_names(data.get("modality"), "'modality'", path)
        expected = data.get("numTraining")
        if expected is not None and str(expected).isdigit() and int(expected) != len(sections["training"]):
            logger.warning(
                "%s says numTraining=%s but lists %d training items", path, expected, len(sections["training"])
            )
    for section, items in sections.items():
        _assign_ids(items, f"{path} '{section}'")
    return UserDataset(
        kind="datalist" if form == "datalist" else "decathlon",
        source=path,
        items=[],
        sections=sections,
        class_names=_class_names(data.get("labels"), path, inverted=form == "nnunet_v2"),
        modality=modality,
        name=data.get("name"),
        tensor_image_size=data.get("tensorImageSize"),
    )


# --------------------------------------------------------------------------------------------------- folders


def _pair_folders(root: Path) -> tuple[Path, Path]:
    subfolders = {p.name.lower(): p for p in root.iterdir() if p.is_dir() and not _is_junk(p)}
    found = [
        (subfolders[i.lower()], subfolders[lab.lower()])
        for i, lab in PAIR_FOLDERS
        if i.lower() in subfolders and lab.lower() in subfolders
    ]
    if len(found) > 1:
        listed = ", ".join(f"{i.name}/ + {lab.name}/" for i, lab in found)
        raise ValueError(
            f"{root} holds more than one image/label folder pair ({listed}): give the folder of one dataset, or a "
            "datalist JSON."
        )
    if found:
        return found[0]
    for image_name in dict.fromkeys(i for i, _ in PAIR_FOLDERS):
        if image_name.lower() in subfolders:
            partners = " or ".join(f"{lab}/" for i, lab in PAIR_FOLDERS if i == image_name)
            raise FileNotFoundError(
                f"label folder not found: {root} has {subfolders[image_name.lower()].name}/ but no "
                f"{partners} next to it"
            )
    pairs = ", ".join(f"{i}/ + {lab}/" for i, lab in PAIR_FOLDERS)
    raise ValueError(
        f"{root} is not a dataset folder: it has no {DATASET_JSON} and none of the folder pairs {pairs} "
        f"(sub-folders: {sorted(p.name for p in subfolders.values()) or 'none'})."
    )


def _read_folder(root: Path) -> UserDataset:
    image_dir, label_dir = _pair_folders(root)
    problems = LayoutProblems("image/label folder", root)
    training, grouped = _pair_files(image_dir, label_dir, PAIR_SUFFIXES, problems)
    # the Decathlon layout's unlabelled test images; images/ + labels/ has no test folder
    test = (
        _test_images(image_dir.parent / "imagesTs", PAIR_SUFFIXES, problems, grouped)
        if image_dir.name.lower() == "imagestr"
        else []
    )
    problems.raise_if_any()
    if not training:
        raise ValueError(
            f"no image/label pairs in {image_dir} and {label_dir} (file types: {', '.join(PAIR_SUFFIXES)})"
        )
    return UserDataset(
        kind="folder",
        source=root,
        items=[],
        sections={"training": training, "validation": [], "test": test},
        name=root.name,
    )


# ------------------------------------------------------------------------------------------------ public API


def read_user_dataset(
    source: str | os.PathLike, data_root: str | os.PathLike | None = None, data_list_key: str = "training"
) -> UserDataset:
    """Read a user's dataset in any of the three forms of this module.

    Args:
        source: a datalist JSON, a Decathlon / nnU-Net v2 ``dataset.json`` or the Task folder holding it, or a
            folder with ``images/`` + ``labels/`` (or ``masks/``), or ``imagesTr/`` + ``labelsTr/``.
        data_root: the folder that relative paths of a JSON start from (default: the JSON's folder); for an nnU-Net
            v2 ``dataset.json``, the folder holding ``imagesTr/``. Not used by the folder form.
        data_list_key: the section returned as ``items``: ``"training"``, ``"validation"`` or ``"test"``.

    Returns:
        A :class:`UserDataset` with absolute paths and an ``"id"`` in every item.

    Raises:
        FileNotFoundError: ``source``, ``data_root``, a listed file or an expected folder does not exist (named).
        ValueError: an unknown JSON form or folder layout, an image without a label or a label without an image
            (the first files named), duplicate ids, or an empty ``data_list_key`` list.
    """
    if data_list_key not in _SECTIONS:
        raise ValueError(f"data_list_key must be one of {_SECTIONS}, got {data_list_key!r}.")
    path = Path(os.path.abspath(os.path.expanduser(os.fspath(source))))
    if not path.exists():
        raise FileNotFoundError(
            f"dataset not found: {path} (give a datalist JSON, a {DATASET_JSON} or its Task folder, or a folder with "
            "images/ and labels/)"
        )
    if path.is_dir() and (path / DATASET_JSON).is_file():
        path = path / DATASET_JSON
    dataset = _read_folder(path) if path.is_dir() else _read_json(path, data_root)
    dataset.items = dataset.sections[data_list_key]
    if not dataset.items:
        raise ValueError(f"the {data_list_key} list of {path} is empty.")
    return dataset


def user_sections(
    source: str | os.PathLike,
    data_root: str | os.PathLike | None = None,
    fold: int = 0,
    num_folds: int | None = 5,
    seed: int = 0,
    val_fraction: float = 0.2,
) -> dict[str, list[dict[str, Any]]]:
    """The bundle's ``{"training": [...], "validation": [...], "test": [...]}`` sections of a user's dataset.

    The file's own non-empty ``"validation"`` list is used as it is (``fold``, ``num_folds``, ``seed`` and
    ``val_fraction`` are then unused). Otherwise the training items are split by id, deterministically
    (:mod:`monai_imbalance.apps.splits`, MONAI's seeded ``partition_dataset``): ``num_folds >= 2`` gives
    cross-validation fold ``fold`` (0-based) as validation; ``num_folds`` 0, 1 or ``None`` holds out
    ``round(val_fraction * n)`` items (at least one when ``val_fraction > 0``), the last share after a seeded
    shuffle. The test section is the file's ``"test"`` list (Decathlon test images as ``{"image", "id"}``) or the
    ``imagesTs/`` folder, else empty.

    Args:
        source, data_root: as :func:`read_user_dataset`.
        fold: the validation fold, in ``[0, num_folds - 1]``.
        num_folds: number of cross-validation folds; 0, 1 or ``None`` for a hold-out split.
        seed: the split's seed.
        val_fraction: the hold-out share, in ``[0, 1)``.

    Raises:
        FileNotFoundError, ValueError: as :func:`read_user_dataset`; ``ValueError`` also for a ``fold`` out of range,
            more folds than training items, or a ``val_fraction`` outside ``[0, 1)``.
    """
    dataset = read_user_dataset(source, data_root)
    sections = {s: [dict(item) for item in dataset.sections.get(s, [])] for s in _SECTIONS}
    if sections["validation"]:
        logger.info("%s: using its own validation list (%d items)", dataset.source, len(sections["validation"]))
        return sections
    try:
        folds = 0 if num_folds is None or isinstance(num_folds, bool) else operator.index(num_folds)
    except TypeError:
        folds = -1
    if folds < 0 or isinstance(num_folds, bool):
        raise ValueError(f"num_folds must be an integer >= 2 (k-fold) or 0, 1, None (hold-out), got {num_folds!r}.")
    training = sections["training"]
    ids = [item["id"] for item in training]
    if folds >= 2:
        train_ids, val_ids = kfold_split(ids, int(fold), num_folds=folds, seed=int(seed))
    else:
        if not 0.0 <= float(val_fraction) < 1.0:
            raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}.")
        n_val = 0 if val_fraction == 0 else max(1, round(float(val_fraction) * len(ids)))
        if n_val >= len(ids):
            raise ValueError(
                f"cannot hold out {n_val} of {len(ids)} training item(s) of {dataset.source} for validation and keep "
                "any for training; add items or give a validation list."
            )
        train_ids, val_ids = holdout_split(ids, (len(ids) - n_val, n_val), seed=int(seed))
    split = items_by_ids(training, {"training": train_ids, "validation": val_ids})
    return {"training": split["training"], "validation": split["validation"], "test": sections["test"]}
