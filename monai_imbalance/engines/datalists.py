"""Datalists for the bundles: the sections of a dataset from its real layout (through :mod:`monai_imbalance.apps`)
or from a datalist JSON written by ``monai-imbalance prepare``, and the image files of a folder for inference.

A bundle config calls :func:`dataset_sections` once::

    sections: "$monai_imbalance.engines.dataset_sections('kvasir', @dataset_dir, split=@split, fold=@fold,
               num_folds=@num_folds, seed=@split_seed, datalist=@datalist)"
    train#datalist: "$@sections['training']"
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["DATASETS", "dataset_sections", "image_items", "require_items_per_rank"]

DATASETS = ("kvasir", "clinicdb", "isic2018", "synapse", "acdc")
_SECTIONS = ("training", "validation", "test")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp")


def _from_datalist(path: str | os.PathLike) -> dict[str, list[dict[str, Any]]]:
    import json

    from monai.data import load_decathlon_datalist

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"datalist not found: {path} (write one with `monai-imbalance prepare`)")
    present = json.loads(path.read_text())
    return {s: (load_decathlon_datalist(str(path), data_list_key=s) if present.get(s) else []) for s in _SECTIONS}


def dataset_sections(
    dataset: str,
    dataset_dir: str | os.PathLike | None = None,
    split: str | None = None,
    fold: int = 0,
    num_folds: int = 5,
    seed: int = 0,
    datalist: str | os.PathLike | None = None,
    val_fraction: float = 0.0,
    check: str = "header",
    resized_cache: int | None = None,
    cache_dir: str | os.PathLike | None = None,
    num_workers: int = 0,
    num_val_cases: int = 2,
) -> dict[str, list[dict[str, Any]]]:
    """``{"training": [...], "validation": [...], "test": [...]}`` items (``image``, ``label``, ``id``, ...).

    Args:
        dataset: ``"kvasir"``, ``"clinicdb"``, ``"isic2018"``, ``"synapse"`` or ``"acdc"``.
        dataset_dir: the dataset's folder in its real layout (as :mod:`monai_imbalance.apps` reads it); not needed
            with ``datalist``.
        split: the dataset's split (default: Kvasir ``"kfold"``, CVC-ClinicDB ``"external"``, ISIC ``"official"``,
            ACDC ``"ssl4mis"``; Synapse has one, TransUNet's); see :func:`~monai_imbalance.apps.kvasir_split`,
            :func:`~monai_imbalance.apps.clinicdb_split`, :func:`~monai_imbalance.apps.isic2018_split`,
            :func:`~monai_imbalance.apps.synapse_split`, :func:`~monai_imbalance.apps.acdc_split`.
        fold, num_folds, seed: the k-fold split's fold (0-based), number of folds and seed.
        datalist: a datalist JSON from ``monai-imbalance prepare`` instead of scanning ``dataset_dir``.
        val_fraction: Kvasir ``"pranet"`` split: share of the training images held out for validation.
        check: file checks while scanning: ``"header"`` (fast: headers, pairs, counts), ``"full"`` (decode every
            mask), ``"images"`` (decode everything).
        resized_cache: ISIC only: longest side of the one-time resized copies
            (:func:`~monai_imbalance.apps.isic2018_resized_cache`), or None to read the originals.
        cache_dir: where the resized copies go (default ``<dataset_dir>/resized``); Synapse: where the held-out
            validation cases are stacked into ``val_vol_h5`` volumes (default the data folder).
        num_workers: threads for checking and resizing.
        num_val_cases: Synapse: training cases held out (drawn with ``seed``) for volumetric validation.

    Synapse and ACDC are trained on 2-D slices and validated and tested on volumes: their ``training`` items are
    slices, ``validation`` and ``test`` items volumes (Synapse's held-out slices are stacked with
    :func:`~monai_imbalance.apps.synapse.stack_synapse_volumes`, also when they come from a datalist JSON).

    Raises:
        ValueError: unknown dataset. FileNotFoundError, DatasetLayoutError: as the dataset's ``*_items``.
    """
    if datalist:
        sections = _from_datalist(datalist)
        if str(dataset).lower() == "synapse" and any("slice" in it for it in sections["validation"]):
            sections["validation"] = _synapse_volumes(sections["validation"], cache_dir or Path(datalist).parent)
        return sections
    if dataset_dir is None:
        raise ValueError("dataset_dir is needed unless a datalist JSON is given.")
    from monai_imbalance import apps

    name = str(dataset).lower()
    if name == "kvasir":
        items = apps.kvasir_items(dataset_dir, check=check, num_workers=num_workers)
        sections, _ = apps.kvasir_split(items, split or "kfold", fold=fold, num_folds=num_folds, seed=seed,
                                        val_fraction=val_fraction)
    elif name == "clinicdb":
        items = apps.clinicdb_items(dataset_dir, check=check, num_workers=num_workers)
        sections, _ = apps.clinicdb_split(items, split or "external", fold=fold, num_folds=num_folds, seed=seed)
    elif name == "isic2018":
        from monai_imbalance.apps.isic import ISIC2018_FOLDERS

        root = Path(dataset_dir)
        subsets = {}
        for subset, folders in ISIC2018_FOLDERS.items():
            if subset == "training" or any((root / f).is_dir() for f in folders):
                subsets[subset] = apps.isic2018_items(root, subset, check=check, num_workers=num_workers)
        sections, _ = apps.isic2018_split(subsets, split or "official", fold=fold, num_folds=num_folds, seed=seed)
        if resized_cache:
            cache_root = Path(cache_dir) if cache_dir else root / "resized"
            sections = {k: apps.isic2018_resized_cache(v, cache_root, int(resized_cache), num_workers=num_workers)
                        for k, v in sections.items()}
    elif name == "synapse":
        from monai_imbalance.apps.synapse import find_synapse_layout

        items = apps.synapse_items(dataset_dir, check=check if check in ("header", "full") else "full",
                                   num_workers=num_workers)
        sections, _ = apps.synapse_split(items, num_val_cases=num_val_cases, seed=seed)
        sections["validation"] = _synapse_volumes(sections["validation"],
                                                  cache_dir or find_synapse_layout(dataset_dir)[0])
    elif name == "acdc":
        items = apps.acdc_items(dataset_dir, check=check if check in ("header", "full") else "full",
                                num_workers=num_workers)
        sections, _ = apps.acdc_split(items, split or "ssl4mis", fold=fold, num_folds=num_folds, seed=seed)
    else:
        raise ValueError(f"unknown dataset {dataset!r}: expected one of {list(DATASETS)}.")
    return {s: list(sections.get(s) or []) for s in _SECTIONS}


def _synapse_volumes(slices: list[dict[str, Any]], folder: str | os.PathLike) -> list[dict[str, Any]]:
    from monai_imbalance.apps.synapse import stack_synapse_volumes

    return stack_synapse_volumes(slices, Path(folder) / "val_vol_h5") if slices else []


def image_items(
    folder: str | os.PathLike, suffixes: Sequence[str] = IMAGE_SUFFIXES, recursive: bool = False
) -> list[dict[str, str]]:
    """``[{"image": path}, ...]`` for the image files of ``folder``, sorted (other files, e.g. ISIC's
    ``LICENSE.txt``, are skipped).

    Raises:
        FileNotFoundError: no such folder, or no image in it.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"input folder not found: {folder}")
    pattern = "**/*" if recursive else "*"
    wanted = tuple(s.lower() for s in suffixes)
    files = sorted(p for p in folder.glob(pattern) if p.is_file() and p.suffix.lower() in wanted)
    if not files:
        raise FileNotFoundError(f"no image ({', '.join(wanted)}) in {folder}")
    return [{"image": str(p.resolve())} for p in files]


def require_items_per_rank(items: Sequence[Any], name: str, world_size: int | None = None) -> int:
    """Raise a clear error when a split has fewer items than distributed processes; return its length.

    With ``DistributedSampler(even_divisible=False)`` (the 2-D bundles' validation) a rank without any item skips its
    evaluation while the others wait for it in the metrics' all-gather: a hang instead of an error. The 2-D bundles'
    ``multi_gpu_train.yaml`` call this in ``initialize``. ``world_size`` defaults to the initialised process group's.
    """
    if world_size is None:
        import torch.distributed as dist

        world_size = dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1
    if world_size < 1:
        raise ValueError(f"world_size must be >= 1, got {world_size}.")
    count = len(items)
    if count < world_size:
        raise ValueError(
            f"the {name} split has {count} item(s) for {world_size} processes: every process needs at least one "
            "(use fewer processes, e.g. torchrun --nproc_per_node, or a larger split)."
        )
    return count
