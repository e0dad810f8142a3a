"""CVC-ClinicDB (612 colonoscopy frames, Bernal et al. 2015): the external test set of the DBCE paper.

Layouts accepted::

    Original/<n>.tif + Ground Truth/<n>.tif       the release (288x384 frames, n = 1..612; .png copies accepted)
    TestDataset/CVC-ClinicDB/{images,masks}/<n>.png  PraNet's test part (62 frames); root may also be that folder

Ground-truth masks are read as grey; lossless masks must be two-level (0/255 or 0/1, see
:func:`monai_imbalance.apps.checks.check_binary_mask`; ``strict_masks=False`` binarises grey masks at 127).

Splits: ``"external"`` (all frames in ``test``, the DBCE setting), ``"pranet"`` (PraNet's 550/62 split of the
release: the 62 test frames are the names of github.com/DengPingFan/PraNet ``results/PraNet/CVC-ClinicDB``; this
assumes PraNet kept the release's frame numbers as file names) and ``"kfold"``.

There is no direct official download: the data are distributed from https://polyp.grand-challenge.org/CVCClinicDB/
and mirrors; ``download`` therefore explains where to get them instead of fetching.
"""

from __future__ import annotations

import os
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
)
from .download import DownloadError
from .registry import DatasetSections, ScanRequest, prepare_dataset
from .splits import fixed_split, items_by_ids, kfold_split, natural_key

__all__ = [
    "CLINICDB_NUM_IMAGES",
    "PRANET_CLINICDB_TEST_IDS",
    "CLINICDB_SPLITS",
    "find_clinicdb_layout",
    "clinicdb_items",
    "clinicdb_split",
    "prepare_clinicdb",
    "download_clinicdb",
]

CLINICDB_NUM_IMAGES = 612
PRANET_CLINICDB_NUM_TEST = 62
CLINICDB_SPLITS = ("external", "pranet", "kfold")
CLINICDB_PAGE = "https://polyp.grand-challenge.org/CVCClinicDB/"
CLINICDB_LABELS = {0: "background", 1: "polyp"}
CLINICDB_REFERENCE = (
    "Bernal et al., WM-DOVA maps for accurate polyp highlighting in colonoscopy, Comput. Med. Imaging Graph. 2015"
)
# github.com/DengPingFan/PraNet results/PraNet/CVC-ClinicDB/<n>.png: PraNet's 62 CVC-ClinicDB test frames
PRANET_CLINICDB_TEST_IDS = tuple(str(n) for n in (
    14, 21, 25, 31, 42, 50, 52, 61, 65, 66, 73, 80, 89, 100, 106, 119, 134, 148, 154, 163, 166, 171, 179, 181, 185,
    191, 205, 240, 251, 266, 279, 287, 300, 307, 349, 353, 374, 381, 388, 397, 400, 404, 425, 429, 431, 442, 453,
    459, 464, 474, 481, 483, 492, 526, 529, 545, 555, 559, 561, 569, 571, 575,
))
_SUFFIXES = (".tif", ".tiff", ".png", ".bmp")


def find_clinicdb_layout(root: str | os.PathLike) -> tuple[str, Path, Path]:
    """``(layout, image_dir, mask_dir)`` with ``layout`` ``"original"`` or ``"pranet"``, searched in ``root``,
    ``root/CVC-ClinicDB``, ``root/PNG``, ``root/TestDataset/CVC-ClinicDB``."""
    root = require_dir(root, "CVC-ClinicDB root")
    for base in (root, root / "CVC-ClinicDB", root / "PNG", root / "CVC-ClinicDB" / "PNG"):
        if (base / "Original").is_dir() or (base / "Ground Truth").is_dir():
            return ("original", require_dir(base / "Original", "CVC-ClinicDB Original"),
                    require_dir(base / "Ground Truth", "CVC-ClinicDB Ground Truth"))
    for base in (root, root / "CVC-ClinicDB", root / "TestDataset" / "CVC-ClinicDB"):
        if (base / "images").is_dir() or (base / "masks").is_dir():
            return ("pranet", require_dir(base / "images", "CVC-ClinicDB images"),
                    require_dir(base / "masks", "CVC-ClinicDB masks"))
    raise FileNotFoundError(
        f"CVC-ClinicDB folder not found in {root}: expected 'Original/' and 'Ground Truth/' (release) or "
        "'images/' and 'masks/' (PraNet TestDataset/CVC-ClinicDB)"
    )


def clinicdb_items(
    root: str | os.PathLike,
    expected_count: int | str | None = "auto",
    check: str = "full",
    strict_masks: bool = True,
    num_workers: int = 0,
    progress: bool | None = False,
) -> list[dict[str, Any]]:
    """Scan a CVC-ClinicDB folder, check it and return one item per frame, sorted by frame number.

    Items: ``{"image", "label", "id": "<n>", "height", "width", "layout": "original" | "pranet"}``.

    Args:
        expected_count: ``"auto"``: 612 for the release layout, 62 for PraNet's test folder (or a look-alike's
            count); ``None`` skips the check.
        check, num_workers, progress: as :func:`monai_imbalance.apps.kvasir.kvasir_items`.
        strict_masks: lossless masks must be exactly two-level.

    Raises:
        FileNotFoundError, DatasetLayoutError: as :func:`monai_imbalance.apps.kvasir.kvasir_items`.
    """
    layout, image_dir, mask_dir = find_clinicdb_layout(root)
    folder = image_dir.parent
    problems = LayoutProblems("CVC-ClinicDB", folder)
    images = files_by_id(image_dir, _SUFFIXES, lambda p: p.stem, problems, "image")
    masks = files_by_id(mask_dir, _SUFFIXES, lambda p: p.stem, problems, "mask")
    mask_suffix = next(iter(masks.values())).suffix if masks else (".tif" if layout == "original" else ".png")
    pairs = pair_by_id(images, masks, mask_dir, problems, "{id}" + mask_suffix)
    info = check_image_mask_pairs(pairs, problems, check=check, strict_masks=strict_masks, num_workers=num_workers,
                                  progress=progress)
    real = CLINICDB_NUM_IMAGES if layout == "original" else PRANET_CLINICDB_NUM_TEST
    expected = resolve_expected(expected_count, read_synthetic_marker(folder), "images", real)
    if expected is not None and len(pairs) != expected:
        problems.add(f"found {len(pairs)} image/mask pairs ({layout} layout), expected {expected}{SKIP_COUNT_CHECK}")
    problems.raise_if_any()
    items = []
    for key, image, mask in sorted(pairs, key=lambda p: natural_key(p[0])):
        items.append({"image": str(image.resolve()), "label": str(mask.resolve()), "id": key,
                      "height": info[key]["height"], "width": info[key]["width"], "layout": layout})
    return items


def clinicdb_split(
    items: Sequence[dict[str, Any]], split: str = "external", fold: int = 0, num_folds: int = 5, seed: int = 0
) -> tuple[dict[str, list[dict[str, Any]]], dict[str, Any]]:
    """``(sections, info)``: ``"external"`` puts every frame in ``test``; ``"pranet"`` gives PraNet's 550
    training / 62 test frames (release layout); ``"kfold"`` a seeded fold as validation."""
    ids = [item["id"] for item in items]
    info: dict[str, Any] = {"name": split, "seed": seed}
    if split == "external":
        ids_by_section = {"training": [], "validation": [], "test": ids}
        info.update(official=True, source="whole dataset as external test set (DBCE paper setting)")
    elif split == "pranet":
        if items and items[0].get("layout") == "pranet":
            raise ValueError("the 'pranet' split needs the release layout (Original/, Ground Truth/): PraNet's "
                             "TestDataset/CVC-ClinicDB already is its test part; use split='external'.")
        groups = fixed_split(ids, {"test": PRANET_CLINICDB_TEST_IDS}, rest="training",
                             require_all=len(ids) == CLINICDB_NUM_IMAGES)
        ids_by_section = {"training": groups["training"], "validation": [], "test": groups["test"]}
        info.update(official=True, source="PraNet (github.com/DengPingFan/PraNet): 62 test frames = names in "
                    "results/PraNet/CVC-ClinicDB")
    elif split == "kfold":
        train, val = kfold_split(ids, fold, num_folds, seed)
        ids_by_section = {"training": train, "validation": val, "test": []}
        info.update(official=False, fold=fold, num_folds=num_folds, source="seeded k-fold")
    else:
        raise ValueError(f"split must be one of {CLINICDB_SPLITS}, got {split!r}.")
    sections = items_by_ids(items, ids_by_section)
    info["counts"] = {k: len(v) for k, v in sections.items()}
    return sections, info


def download_clinicdb(root: str | os.PathLike, progress: bool = True) -> None:
    """CVC-ClinicDB has no official direct-download URL: always raises :class:`DownloadError` with instructions
    (``progress`` is accepted like the other datasets' downloads)."""
    raise DownloadError(
        f"CVC-ClinicDB cannot be downloaded automatically (no official direct URL). Get it from {CLINICDB_PAGE} "
        f"(or PraNet's TestDataset, github.com/DengPingFan/PraNet) and extract it into {root} so that "
        "'Original/' and 'Ground Truth/' (or TestDataset/CVC-ClinicDB/images, masks) are inside, then run again "
        "without --download."
    )


def clinicdb_sections(
    root: str | os.PathLike,
    request: ScanRequest,
    *,
    strict_masks: bool = True,
) -> DatasetSections:
    """Check a CVC-ClinicDB folder and split it (the dataset's entry of :mod:`monai_imbalance.apps.registry`). See
    :func:`clinicdb_items` and :func:`clinicdb_split` for the arguments."""
    split, fold, num_folds, seed = request.split, request.fold, request.num_folds, request.seed
    expected_count, check, num_workers = request.expected_count, request.check, request.num_workers
    items = clinicdb_items(root, expected_count=expected_count, check=check, strict_masks=strict_masks,
                           num_workers=num_workers, progress=request.progress)
    sections, info = clinicdb_split(items, split, fold=fold, num_folds=num_folds, seed=seed)
    folder = find_clinicdb_layout(root)[1].parent
    suffix = f"_fold{fold}" if split == "kfold" else ""
    datalist = dict(
        name="CVC-ClinicDB", description=f"CVC-ClinicDB polyp segmentation, {split} split: {info['counts']} "
        f"({items[0]['layout'] if items else '?'} layout).", labels=CLINICDB_LABELS,
        synthetic=read_synthetic_marker(folder) is not None, reference=CLINICDB_REFERENCE,
        licence="see the dataset page (research use)", modality={"0": "R", "1": "G", "2": "B"}, source=CLINICDB_PAGE,
    )
    return DatasetSections(sections, info, datalist, folder / f"datalist_{split}{suffix}.json")


def prepare_clinicdb(root: str | os.PathLike, out: str | os.PathLike | None = None, **kwargs: Any) -> Path:
    """Check a CVC-ClinicDB folder and write a MONAI datalist JSON (default ``<folder>/datalist_<split>.json``);
    return its path. Arguments: :func:`clinicdb_sections`."""
    return prepare_dataset("clinicdb", root, out, **kwargs)
