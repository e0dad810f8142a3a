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

__all__ = ["DatasetFolderMissing", "dataset_sections", "image_items", "inference_items", "require_items_per_rank"]

_SECTIONS = ("training", "validation", "test")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp")
#: old keyword names of :func:`dataset_sections`, kept working: ``{old: new}``
_RENAMED = {"resized_cache": "cache_size"}


def __getattr__(name: str) -> Any:
    if name == "DATASETS":  # the registered names, read live from the registry
        from monai_imbalance.apps.registry import dataset_names

        return dataset_names()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _from_datalist(path: str | os.PathLike) -> dict[str, list[dict[str, Any]]]:
    import json

    from monai.data import load_decathlon_datalist

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"datalist not found: {path} (write one with `monai-imbalance prepare`)")
    present = json.loads(path.read_text())
    return {s: (load_decathlon_datalist(str(path), data_list_key=s) if present.get(s) else []) for s in _SECTIONS}


class DatasetFolderMissing(SystemExit):
    """The dataset folder a bundle was given does not exist: a one-line message naming the option to set."""

    def __str__(self) -> str:
        return str(self.code)


def dataset_sections(
    dataset: str,
    dataset_dir: str | os.PathLike | None = None,
    split: str | None = None,
    fold: int = 0,
    num_folds: int = 5,
    seed: int = 0,
    datalist: str | os.PathLike | None = None,
    check: str = "header",
    num_workers: int = 0,
    expected_count: int | str | None = "auto",
    option: str = "dataset_dir",
    **options: Any,
) -> dict[str, list[dict[str, Any]]]:
    """``{"training": [...], "validation": [...], "test": [...]}`` items (``image``, ``label``, ``id``, ...) of a
    registered dataset (:mod:`monai_imbalance.apps.registry`), for the bundles.

    Args:
        dataset: a registered dataset name (``"kvasir"``, ``"clinicdb"``, ``"isic2018"``, ``"synapse"``, ``"acdc"``).
        dataset_dir: the dataset's folder in its real layout; not needed with ``datalist``.
        split: the dataset's split (default: the bundles' split, Kvasir ``"kfold"`` (the MAC paper's five folds),
            else the dataset's first: CVC-ClinicDB ``"external"``, ISIC ``"official"``, ACDC ``"ssl4mis"``).
        fold, num_folds, seed: the k-fold split's fold (0-based), number of folds and seed.
        datalist: a datalist JSON from ``monai-imbalance prepare`` instead of scanning ``dataset_dir``.
        check: file checks while scanning: ``"header"`` (fast: headers, pairs, counts), ``"full"`` (decode every
            mask), ``"images"`` (decode everything).
        num_workers: threads for checking and resizing.
        expected_count: the count checks (``"auto"``: the real dataset's numbers, or a look-alike's); None skips
            them (a subset on purpose: ``--expected_count None`` in a bundle).
        option: the bundle option that sets ``dataset_dir`` (named in the error when the folder does not exist).
        options: the dataset's own options (e.g. Kvasir ``val_fraction``, ISIC ``cache_size`` (old name
            ``resized_cache``) and ``cache_dir``, Synapse ``num_val_cases`` and ``cache_dir``); options the
            dataset does not take are ignored, so a bundle may pass its whole set. ``None`` values are left out.

    Synapse and ACDC are trained on 2-D slices and validated and tested on volumes: their ``training`` items are
    slices, ``validation`` and ``test`` items volumes (Synapse's held-out slices are stacked into volumes, also
    when they come from a datalist JSON).

    Raises:
        ValueError: unknown dataset. FileNotFoundError, DatasetLayoutError: as the dataset's checks.
        DatasetFolderMissing: ``dataset_dir`` is not a folder. It is a ``SystemExit``, not an ``Exception``: MONAI's
            config parser wraps every ``Exception`` of an expression in chained ``RuntimeError`` s, which buried this
            cause some twenty lines into a seventy-line traceback; a ``SystemExit`` passes through and ends
            ``python -m monai.bundle run`` with its one line and status 1.
    """
    from monai_imbalance.apps.registry import _resolve, get_dataset

    spec = get_dataset(dataset)
    if isinstance(expected_count, str) and expected_count.lower() in ("none", "null", ""):
        expected_count = None  # a command-line or YAML "null"
    given = {_RENAMED.get(k, k): v for k, v in options.items() if v is not None}
    mine = {**spec.bundle_options, **{k: v for k, v in given.items() if k in spec.option_names}}
    if datalist:
        sections = _from_datalist(datalist)
        fix = _resolve(spec.from_datalist)
        return fix(sections, datalist, **mine) if fix is not None else sections
    if dataset_dir is None or not Path(dataset_dir).is_dir():
        where = "not set" if dataset_dir is None else f"not found: {dataset_dir}"
        raise DatasetFolderMissing(
            f"{spec.title} folder {where}; pass --{option} <the {spec.title} folder, as downloaded>.")
    if check not in spec.checks:  # e.g. "images" for a dataset that decodes its labels fully anyway
        check = "full"
    result = spec.scan(dataset_dir, split=split or spec.bundle_split, fold=fold, num_folds=num_folds, seed=seed,
                       check=check, num_workers=num_workers, expected_count=expected_count, **mine)
    return {s: list(result.sections.get(s) or []) for s in _SECTIONS}


def image_items(
    folder: str | os.PathLike, suffixes: Sequence[str] = IMAGE_SUFFIXES, recursive: bool = False
) -> list[dict[str, str]]:
    """``[{"image": path}, ...]`` for the image files of ``folder``, sorted (other files, e.g. ISIC's
    ``LICENSE.txt``, are skipped). A suffix matches the end of a file name, so ``".nii.gz"`` works.

    Raises:
        FileNotFoundError: no such folder, or no image in it.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"input folder not found: {folder}")
    pattern = "**/*" if recursive else "*"
    wanted = tuple(s.lower() for s in suffixes)
    files = sorted(p for p in folder.glob(pattern) if p.is_file() and p.name.lower().endswith(wanted))
    if not files:
        raise FileNotFoundError(f"no image ({', '.join(wanted)}) in {folder}")
    return [{"image": str(p.resolve())} for p in files]


def inference_items(
    dataset: str, dataset_dir: str | os.PathLike | None = None, section: str = "test", **kwargs: Any
) -> list[dict[str, Any]]:
    """The images of one section of a dataset's split, as inference items (``image`` and ``id`` only, no label):
    the bundles' default inference input, so that it follows the split training used (e.g. ACDC's SSL4MIS test
    patients, which lie in ``training/``, not in ``testing/``).

    Args:
        dataset, dataset_dir, kwargs: as :func:`dataset_sections` (``split``, ``fold``, ``datalist``, ...).
        section: ``"test"``, ``"validation"`` or ``"training"``.

    Raises:
        ValueError: an unknown section, or a section without any item.
    """
    if section not in _SECTIONS:
        raise ValueError(f"section must be one of {_SECTIONS}, got {section!r}.")
    items = dataset_sections(dataset, dataset_dir, **kwargs)[section]
    if not items:
        raise ValueError(f"the {section} section of {dataset!r} in {dataset_dir} is empty: set input_dir to the "
                         "folder of the images to predict.")
    return [{"image": item["image"], "id": item.get("id", Path(str(item["image"])).name)} for item in items]


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
