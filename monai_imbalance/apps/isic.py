"""ISIC 2018 Task 1 (lesion boundary segmentation, Codella et al. 2019; Tschandl et al. 2018).

Layout (the official challenge zips extract to these folders)::

    ISIC2018_Task1-2_Training_Input/ISIC_<7 digits>.jpg                 2594 dermoscopy images, up to ~6700x4500
    ISIC2018_Task1_Training_GroundTruth/ISIC_<id>_segmentation.png      0/255 masks
    ISIC2018_Task1-2_Validation_Input/, ISIC2018_Task1_Validation_GroundTruth/      100 pairs
    ISIC2018_Task1-2_Test_Input/,       ISIC2018_Task1_Test_GroundTruth/            1000 pairs

Older releases write ``_Segmentation.png``: mask names are matched case-insensitively. The ``LICENSE.txt`` and
``ATTRIBUTION.txt`` files of each folder are ignored.

Decoding a 30-megapixel JPEG costs far more than a training step at 320x320, so
:func:`isic2018_resized_cache` writes a one-time copy with the longest side reduced to ``max_size`` pixels (masks
area-averaged then thresholded at 127, so thin borders do not alias away) and reuses it on later runs.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .checks import (
    SKIP_COUNT_CHECK,
    LayoutProblems,
    check_image_mask_pairs,
    files_by_id,
    pair_by_id,
    read_synthetic_marker,
    require_dir,
    resolve_expected,
    thread_map,
)
from .download import Resource, download_resources
from .registry import DatasetSections, ScanRequest, prepare_dataset
from .splits import holdout_split, items_by_ids, kfold_split

__all__ = [
    "ISIC2018_COUNTS",
    "ISIC2018_FOLDERS",
    "ISIC2018_RESOURCES",
    "ISIC2018_SPLITS",
    "isic2018_items",
    "isic2018_split",
    "isic2018_resized_cache",
    "prepare_isic2018",
    "download_isic2018",
]

ISIC2018_SUBSETS = ("training", "validation", "test")
ISIC2018_COUNTS = {"training": 2594, "validation": 100, "test": 1000}
ISIC2018_FOLDERS = {
    "training": ("ISIC2018_Task1-2_Training_Input", "ISIC2018_Task1_Training_GroundTruth"),
    "validation": ("ISIC2018_Task1-2_Validation_Input", "ISIC2018_Task1_Validation_GroundTruth"),
    "test": ("ISIC2018_Task1-2_Test_Input", "ISIC2018_Task1_Test_GroundTruth"),
}
ISIC2018_SPLITS = ("official", "kfold", "holdout")
ISIC2018_LABELS = {0: "background", 1: "lesion"}
ISIC2018_PAGE = "https://challenge.isic-archive.com/data/#2018"
_S3 = "https://isic-challenge-data.s3.amazonaws.com/2018/"
_CHECKSUM_SOURCE = "torch-em ISIC loader (third party); not published by ISIC"
# SHA-256 values as recorded by torch-em (github.com/constantinpape/torch-em, datasets/medical/isic.py)
ISIC2018_RESOURCES = {
    ("training", "images"): Resource(_S3 + "ISIC2018_Task1-2_Training_Input.zip", "ISIC2018_Task1-2_Training_Input.zip",
                                     "80f98572347a2d7a376227fa9eb2e4f7459d317cb619865b8b9910c81446675f",
                                     _CHECKSUM_SOURCE, ISIC2018_PAGE),
    ("training", "masks"): Resource(_S3 + "ISIC2018_Task1_Training_GroundTruth.zip",
                                    "ISIC2018_Task1_Training_GroundTruth.zip",
                                    "99f8b2bb3c4d6af483362010715f7e7d5d122d9f6c02cac0e0d15bef77c7604c",
                                    _CHECKSUM_SOURCE, ISIC2018_PAGE),
    ("validation", "images"): Resource(_S3 + "ISIC2018_Task1-2_Validation_Input.zip",
                                       "ISIC2018_Task1-2_Validation_Input.zip",
                                       "0ea920fcfe512d12a6e620b50b50233c059f67b10146e1479c82be58ff15a797",
                                       _CHECKSUM_SOURCE, ISIC2018_PAGE),
    ("validation", "masks"): Resource(_S3 + "ISIC2018_Task1_Validation_GroundTruth.zip",
                                      "ISIC2018_Task1_Validation_GroundTruth.zip",
                                      "f6911e9c0a64e6d687dd3ca466ca927dd5e82145cb2163b7a1e5b37d7a716285",
                                      _CHECKSUM_SOURCE, ISIC2018_PAGE),
    ("test", "images"): Resource(_S3 + "ISIC2018_Task1-2_Test_Input.zip", "ISIC2018_Task1-2_Test_Input.zip",
                                 "e59ae1f69f4ed16f09db2cb1d76c2a828487b63d28f6ab85997f5616869b127d",
                                 _CHECKSUM_SOURCE, ISIC2018_PAGE),
    ("test", "masks"): Resource(_S3 + "ISIC2018_Task1_Test_GroundTruth.zip", "ISIC2018_Task1_Test_GroundTruth.zip",
                                "2e8f6edce454a5bdee52485e39f92bd6eddf357e81f39018d05512175238ef82",
                                _CHECKSUM_SOURCE, ISIC2018_PAGE),
}
ISIC2018_REFERENCE = (
    "Codella et al., Skin Lesion Analysis Toward Melanoma Detection 2018, arXiv:1902.03368; Tschandl et al., "
    "The HAM10000 dataset, Sci. Data 5, 180161 (2018)"
)
ISIC2018_LICENCE = "CC BY-NC 4.0 (see the LICENSE.txt and ATTRIBUTION.txt files of each folder)"

_IMAGE_ID = re.compile(r"^ISIC_(\d{7})$", re.IGNORECASE)
_MASK_ID = re.compile(r"^ISIC_(\d{7})_segmentation$", re.IGNORECASE)


def _image_id(path: Path) -> str | None:
    match = _IMAGE_ID.match(path.stem)
    return f"ISIC_{match.group(1)}" if match else None


def _mask_id(path: Path) -> str | None:
    match = _MASK_ID.match(path.stem)
    return f"ISIC_{match.group(1)}" if match else None


def isic2018_items(
    root: str | os.PathLike,
    subset: str = "training",
    expected_count: int | str | None = "auto",
    check: str = "full",
    strict_masks: bool = True,
    num_workers: int = 0,
    progress: bool | None = False,
) -> list[dict[str, Any]]:
    """Scan one ISIC 2018 Task 1 subset, check it and return one item per image, sorted by id.

    Items: ``{"image", "label", "id": "ISIC_0000000", "subset", "height", "width"}``.

    Args:
        root: the folder holding the ``ISIC2018_*`` folders.
        subset: ``"training"``, ``"validation"`` or ``"test"``.
        expected_count: ``"auto"``: 2594 / 100 / 1000 (or a look-alike's count); ``None`` skips the check.
        check, strict_masks, num_workers, progress: as :func:`monai_imbalance.apps.clinicdb.clinicdb_items` (masks
            must be 0/255).

    Raises:
        FileNotFoundError: ``root`` or one of the two folders of ``subset`` is missing.
        DatasetLayoutError: missing/unpaired/unreadable files, size mismatches, mask values, counts.
    """
    if subset not in ISIC2018_SUBSETS:
        raise ValueError(f"subset must be one of {ISIC2018_SUBSETS}, got {subset!r}.")
    root = require_dir(root, "ISIC 2018 root")
    image_name, mask_name = ISIC2018_FOLDERS[subset]
    image_dir = require_dir(root / image_name, f"ISIC 2018 {subset} input")
    mask_dir = require_dir(root / mask_name, f"ISIC 2018 {subset} ground truth")
    problems = LayoutProblems(f"ISIC 2018 {subset}", root)
    images = files_by_id(image_dir, (".jpg", ".jpeg"), _image_id, problems, "image")
    masks = files_by_id(mask_dir, (".png",), _mask_id, problems, "mask")
    pairs = pair_by_id(images, masks, mask_dir, problems, "{id}_segmentation.png")
    info = check_image_mask_pairs(pairs, problems, check=check, strict_masks=strict_masks, num_workers=num_workers,
                                  progress=progress)
    expected = resolve_expected(expected_count, read_synthetic_marker(root), subset, ISIC2018_COUNTS[subset])
    if expected is not None and len(pairs) != expected:
        problems.add(f"found {len(pairs)} {subset} image/mask pairs, expected {expected}{SKIP_COUNT_CHECK}")
    problems.raise_if_any()
    return [{"image": str(image.resolve()), "label": str(mask.resolve()), "id": key, "subset": subset,
             "height": info[key]["height"], "width": info[key]["width"]} for key, image, mask in sorted(pairs)]


def isic2018_split(
    subsets: dict[str, list[dict[str, Any]]],
    split: str = "official",
    fold: int = 0,
    num_folds: int = 5,
    seed: int = 0,
    holdout: Sequence[float] = (0.7, 0.1, 0.2),
) -> tuple[dict[str, list[dict[str, Any]]], dict[str, Any]]:
    """``(sections, info)`` from ``{"training": items, "validation": items, "test": items}`` (absent subsets
    may be missing or empty).

    - ``"official"``: the challenge's folders: training / validation (100) / test (1000).
    - ``"kfold"``: fold ``fold`` of the training images as validation, the others as training; the official test
      folder (if any) as test.
    - ``"holdout"``: the training images split at random (seeded) into ``holdout`` fractions of
      training/validation/test.
    """
    train_items = subsets.get("training") or []
    info: dict[str, Any] = {"name": split, "seed": seed}
    if split == "official":
        sections = {name: [dict(i) for i in subsets.get(name) or []] for name in ISIC2018_SUBSETS}
        info.update(official=True, source="ISIC 2018 Task 1 challenge folders",
                    absent=[name for name in ISIC2018_SUBSETS if not subsets.get(name)])
    elif split == "kfold":
        train, val = kfold_split([i["id"] for i in train_items], fold, num_folds, seed)
        sections = items_by_ids(train_items, {"training": train, "validation": val})
        sections["test"] = [dict(i) for i in subsets.get("test") or []]
        info.update(official=False, fold=fold, num_folds=num_folds, source="seeded k-fold of the training folder")
    elif split == "holdout":
        if len(holdout) != 3:
            raise ValueError(f"holdout must be 3 fractions (training, validation, test), got {tuple(holdout)}.")
        parts = holdout_split([i["id"] for i in train_items], holdout, seed=seed)
        sections = items_by_ids(train_items, dict(zip(ISIC2018_SUBSETS, parts)))
        info.update(official=False, fractions=list(holdout), source="seeded hold-out of the training folder")
    else:
        raise ValueError(f"split must be one of {ISIC2018_SPLITS}, got {split!r}.")
    info["counts"] = {k: len(v) for k, v in sections.items()}
    return sections, info


def _resize_pair(item: dict[str, Any], out_dir: Path, max_size: int, image_format: str, quality: int) -> dict:
    """Write the resized image and mask of ``item`` into ``out_dir`` (atomically) and return the new item."""
    import numpy as np
    from PIL import Image

    image_src, mask_src = Path(item["image"]), Path(item["label"])
    image_out = out_dir / "images" / f"{item['id']}.{image_format}"
    mask_out = out_dir / "masks" / f"{item['id']}_segmentation.png"
    with Image.open(image_src) as img:
        width, height = img.size
        scale = min(1.0, max_size / max(width, height))
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        if scale < 1.0:
            img.draft("RGB", size)  # JPEG decodes at 1/2, 1/4 or 1/8 scale first: far faster on huge images
            img = img.convert("RGB").resize(size, Image.Resampling.LANCZOS)
        else:
            img = img.convert("RGB")
        tmp = image_out.with_name(image_out.name + ".tmp")
        img.save(tmp, format="JPEG" if image_format == "jpg" else "PNG", quality=quality)
        os.replace(tmp, image_out)
    with Image.open(mask_src) as mask:
        grey = mask.convert("L")
        if grey.size != size:
            grey = grey.resize(size, Image.Resampling.BOX)  # area average, then threshold: no aliasing
        binary = Image.fromarray(np.where(np.asarray(grey) > 127, 255, 0).astype(np.uint8))
        tmp = mask_out.with_name(mask_out.name + ".tmp")
        binary.save(tmp, format="PNG")
        os.replace(tmp, mask_out)
    return {**item, "image": str(image_out.resolve()), "label": str(mask_out.resolve()), "height": size[1],
            "width": size[0], "source_image": str(image_src), "source_label": str(mask_src),
            "original_height": height, "original_width": width}


def _stamp(path: Path) -> list[int]:
    stat = path.stat()
    return [stat.st_size, stat.st_mtime_ns]


def isic2018_resized_cache(
    items: Sequence[dict[str, Any]],
    cache_dir: str | os.PathLike,
    max_size: int = 1024,
    image_format: str = "jpg",
    jpeg_quality: int = 95,
    num_workers: int = 0,
    progress: bool | None = False,
) -> list[dict[str, Any]]:
    """One-time resized copies of ISIC images and masks; return items that point at them.

    Files go to ``cache_dir/longest<max_size>_<format>/{images,masks}``; ``cache.json`` there records each
    source file's size and modification time, so a later call only writes what is new or changed. Images are
    shrunk (never enlarged) to a longest side of ``max_size`` with Lanczos filtering; masks are area-averaged to
    the same size and thresholded at 127 (written 0/255). Returned items keep ``id``/``subset`` and add
    ``source_image``, ``source_label``, ``original_height``, ``original_width``. ``progress``: a progress bar on
    stderr counting the pairs written (True, False, or None: when stderr is a terminal).
    """
    if max_size < 16:
        raise ValueError(f"max_size must be >= 16 pixels, got {max_size}.")
    if image_format not in ("jpg", "png"):
        raise ValueError(f"image_format must be 'jpg' or 'png', got {image_format!r}.")
    out_dir = Path(cache_dir) / f"longest{max_size}_{image_format}"
    (out_dir / "images").mkdir(parents=True, exist_ok=True)
    (out_dir / "masks").mkdir(parents=True, exist_ok=True)
    manifest_path = out_dir / "cache.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
    entries: dict[str, Any] = manifest.get("entries", {})

    def cached(item: dict[str, Any]) -> dict[str, Any] | None:
        entry = entries.get(item["id"])
        if not entry:
            return None
        stamp = [_stamp(Path(item["image"])), _stamp(Path(item["label"]))]
        result = entry["item"]
        if entry["stamp"] != stamp or not (Path(result["image"]).is_file() and Path(result["label"]).is_file()):
            return None
        return {**item, **{k: v for k, v in result.items() if k != "subset"}}

    todo, results = [], {}
    for item in items:
        hit = cached(item)
        if hit is None:
            todo.append(item)
        else:
            results[item["id"]] = hit
    new = thread_map(lambda it: _resize_pair(it, out_dir, max_size, image_format, jpeg_quality), todo, num_workers,
                     desc=f"ISIC 2018: resizing to {max_size} px", progress=progress, unit="pair")
    for item, result in zip(todo, new):
        results[item["id"]] = result
        entries[item["id"]] = {"stamp": [_stamp(Path(item["image"])), _stamp(Path(item["label"]))], "item": result}
    if todo or not manifest_path.is_file():
        manifest = {"max_size": max_size, "image_format": image_format, "jpeg_quality": jpeg_quality,
                    "entries": entries}
        tmp = manifest_path.with_name("cache.json.tmp")
        tmp.write_text(json.dumps(manifest, indent=1) + "\n")
        os.replace(tmp, manifest_path)
    return [results[item["id"]] for item in items]


def download_isic2018(
    root: str | os.PathLike, subsets: Sequence[str] = ISIC2018_SUBSETS, progress: bool = True
) -> list[Path]:
    """Download and extract the Task 1 input and ground-truth zips of ``subsets`` from the challenge's S3 bucket
    (about 11 GB for all three); folders already extracted are skipped."""
    return download_resources([ISIC2018_RESOURCES[(s, kind)] for s in subsets for kind in ("images", "masks")],
                              root, progress=progress)


def isic2018_sections(
    root: str | os.PathLike,
    request: ScanRequest,
    *,
    strict_masks: bool = True,
    holdout: Sequence[float] | None = None,
    cache_size: int | None = None,
    cache_dir: str | os.PathLike | None = None,
    image_format: str | None = None,
) -> DatasetSections:
    """Check the ISIC 2018 Task 1 folders present in ``root`` and split them, optionally through the resized cache
    (the dataset's entry of :mod:`monai_imbalance.apps.registry`).

    The training folders must exist; the validation and test folders are used when present. ``cache_size`` (e.g.
    1024) switches the items to :func:`isic2018_resized_cache` copies in ``cache_dir`` (default ``<root>/resized``).
    See :func:`isic2018_items` and :func:`isic2018_split` for the other arguments.
    """
    split, fold, num_folds, seed = request.split, request.fold, request.num_folds, request.seed
    expected_count, check, num_workers = request.expected_count, request.check, request.num_workers
    root = Path(root)
    subsets: dict[str, list[dict[str, Any]]] = {}
    for subset in ISIC2018_SUBSETS:
        image_name, mask_name = ISIC2018_FOLDERS[subset]
        if subset != "training" and not (root / image_name).is_dir() and not (root / mask_name).is_dir():
            continue
        subsets[subset] = isic2018_items(root, subset, expected_count=expected_count, check=check,
                                         strict_masks=strict_masks, num_workers=num_workers,
                                         progress=request.progress)
    sections, info = isic2018_split(subsets, split, fold=fold, num_folds=num_folds, seed=seed,
                                    holdout=holdout or (0.7, 0.1, 0.2))
    if cache_size:
        cache_root = Path(cache_dir) if cache_dir else root / "resized"
        image_format = image_format or "jpg"
        for name in list(sections):
            sections[name] = isic2018_resized_cache(sections[name], cache_root, cache_size, image_format,
                                                    num_workers=num_workers, progress=request.progress)
        info["resized_cache"] = {"dir": str(cache_root), "longest_side": cache_size, "image_format": image_format}
    suffix = (f"_fold{fold}" if split == "kfold" else "") + (f"_{cache_size}px" if cache_size else "")
    datalist = dict(
        name="ISIC 2018 Task 1", description=f"ISIC 2018 Task 1 lesion segmentation, {split} split: "
        f"{info['counts']}" + (f", images resized to a longest side of {cache_size} px" if cache_size else "") + ".",
        labels=ISIC2018_LABELS, synthetic=read_synthetic_marker(root) is not None, reference=ISIC2018_REFERENCE,
        licence=ISIC2018_LICENCE, modality={"0": "R", "1": "G", "2": "B"}, source=ISIC2018_PAGE,
    )
    return DatasetSections(sections, info, datalist, root / f"datalist_{split}{suffix}.json")


def prepare_isic2018(root: str | os.PathLike, out: str | os.PathLike | None = None, **kwargs: Any) -> Path:
    """Check the ISIC 2018 Task 1 folders (downloading them first with ``download=True``), optionally build the
    resized cache, and write a MONAI datalist JSON (default ``<root>/datalist_<split>[_<cache_size>px].json``);
    return its path. Arguments: :func:`isic2018_sections`."""
    return prepare_dataset("isic2018", root, out, **kwargs)
