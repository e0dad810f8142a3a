"""The dataset registry: one :class:`DatasetSpec` per supported dataset, read by ``monai-imbalance prepare`` (one
subparser per dataset with uniform argument names), the bundles' datalist builder
(:func:`monai_imbalance.engines.dataset_sections`), the look-alike writer and the docs.

A dataset is one module of :mod:`monai_imbalance.apps` with a *sections* function of the uniform signature::

    def mydata_sections(root, request: ScanRequest, *, <the dataset's own options>) -> DatasetSections

(check the folder in its real layout, split it as ``request`` says, and say how to describe it in a datalist;
:class:`ScanRequest` carries the arguments every dataset takes: split, fold, seeds, checks), a look-alike writer
``write_mydata_lookalike(root, num_images=..., seed=0) -> folder``, and one :func:`register_dataset` entry
(``CONTRIBUTING.md`` has a worked example). :func:`prepare_dataset` then checks, splits and writes the MONAI datalist
JSON for every dataset the same way.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "DatasetOption",
    "DatasetSpec",
    "DatasetSections",
    "ScanRequest",
    "DATASETS",
    "register_dataset",
    "get_dataset",
    "dataset_names",
    "prepare_dataset",
    "scan_dataset",
]



@dataclass(frozen=True)
class ScanRequest:
    """What every dataset's sections function is asked, beside its own options.

    Args:
        split: the split name (one of the dataset's :attr:`DatasetSpec.splits`).
        fold, num_folds, seed: the fold (0-based) and number of folds of k-fold splits, and the seed of seeded ones.
        expected_count: the count checks: ``"auto"`` (the real dataset's numbers, or a look-alike's), a number, or
            None to skip them.
        check: ``"full"`` (decode every label), ``"header"`` (headers only) or ``"images"`` (decode everything).
        num_workers: reader threads.
        progress: progress bars on stderr for the long steps (decoding every mask, resizing, converting): True, False
            (default: a library scan, e.g. a bundle's datalist, stays quiet) or None (when stderr is a terminal).
    """

    split: str
    fold: int = 0
    num_folds: int = 5
    seed: int = 0
    expected_count: int | str | None = "auto"
    check: str = "full"
    num_workers: int = 0
    progress: bool | None = False


#: the arguments of :class:`ScanRequest` other than ``split``
COMMON_ARGUMENTS = ("fold", "num_folds", "seed", "expected_count", "check", "num_workers", "progress")


@dataclass(frozen=True)
class DatasetOption:
    """A dataset-specific argument: a keyword of the sections function, and its ``prepare`` command-line flag
    (``--<name with dashes>``) built with ``argparse`` keyword arguments ``cli`` (``type``, ``nargs``, ``action``,
    ``choices``, ``metavar``, ``default``)."""

    name: str
    help: str
    cli: Mapping[str, Any] = field(default_factory=dict)

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


@dataclass
class DatasetSections:
    """What a sections function returns.

    Attributes:
        sections: ``{"training": [...], "validation": [...], "test": [...]}`` items.
        info: how the split was made (name, seed, fold, source of the lists, counts); written as the datalist's
            ``split``.
        datalist: :func:`~monai_imbalance.apps.datalist.write_datalist` metadata (``name``, ``description``,
            ``labels``, ``synthetic``, ``reference``, ``licence``, ``modality``, ...).
        default_out: where ``prepare`` writes the JSON unless told (inside the dataset folder).
        layout: one line saying which form of the dataset was found (printed by ``prepare``), or None.
    """

    sections: dict[str, list[dict[str, Any]]]
    info: dict[str, Any]
    datalist: dict[str, Any]
    default_out: Path
    layout: str | None = None


def _resolve(target: str | Callable[..., Any] | None) -> Callable[..., Any] | None:
    if target is None or callable(target):
        return target
    module, _, name = str(target).partition(":")
    return getattr(importlib.import_module(module), name)


@dataclass(frozen=True)
class DatasetSpec:
    """One supported dataset.

    Args:
        name: registry key and ``prepare`` sub-command (``"kvasir"``).
        title: display name (``"Kvasir-SEG"``).
        sections: the sections function (or ``"package.module:function"``): ``sections(root, request, **options)``.
        splits: the split names it accepts, the default first.
        lookalike: ``write_<name>_lookalike(root, **kwargs) -> folder to prepare`` (or its import string).
        lookalike_size: the look-alike keyword that ``--num-images N`` sets (None: fixed size); ``"patients"``
            gets ``range(1, N + 1)``.
        lookalike_kwargs: look-alike keywords from the ``prepare`` options (e.g. ACDC's ``form``).
        download: ``download(root, progress=True) -> Any`` from the official location (or raises with
            instructions), or None; ``progress=False`` hides its download bar.
        checks: the ``check`` levels it supports.
        options: its own arguments (:class:`DatasetOption`).
        bundle_options: option values :func:`monai_imbalance.engines.dataset_sections` uses for the bundles (e.g.
            Synapse's volumetric validation).
        from_datalist: ``fix(sections, datalist_path, options) -> sections`` for sections read back from a datalist
            JSON (Synapse stacks its validation slices into volumes), or None.
        description: one line for ``--help`` and the docs.
        bundle_split: the split :func:`monai_imbalance.engines.dataset_sections` uses when none is given (the
            bundles' papers), if it differs from :attr:`default_split` (``prepare``'s).
    """

    name: str
    title: str
    sections: str | Callable[..., DatasetSections]
    splits: tuple[str, ...]
    lookalike: str | Callable[..., Path]
    lookalike_size: str | None = "num_images"
    lookalike_kwargs: Callable[[Mapping[str, Any]], dict[str, Any]] | None = None
    download: str | Callable[..., Any] | None = None
    checks: tuple[str, ...] = ("full", "header", "images")
    options: tuple[DatasetOption, ...] = ()
    bundle_options: Mapping[str, Any] = field(default_factory=dict)
    from_datalist: str | Callable[..., Any] | None = None
    description: str = ""
    bundle_split: str | None = None

    @property
    def default_split(self) -> str:
        return self.splits[0]

    @property
    def option_names(self) -> tuple[str, ...]:
        return tuple(o.name for o in self.options)

    def scan(self, root: str | os.PathLike, split: str | None = None, **kwargs: Any) -> DatasetSections:
        """Check ``root`` and split it: the sections function with ``split`` defaulting to :attr:`default_split`.

        Raises:
            ValueError: an unknown split, check level or option (the message lists the valid ones).
        """
        split = self.default_split if split is None else str(split)
        if split not in self.splits:
            raise ValueError(f"{self.name}: split must be one of {list(self.splits)}, got {split!r}.")
        if kwargs.get("check", "full") not in self.checks:
            raise ValueError(f"{self.name}: check must be one of {list(self.checks)}, got {kwargs['check']!r}.")
        unknown = sorted(set(kwargs) - set(COMMON_ARGUMENTS) - set(self.option_names))
        if unknown:
            raise ValueError(f"{self.name} takes no option {unknown}; its options: {list(self.option_names)}.")
        request = ScanRequest(split, **{k: kwargs.pop(k) for k in COMMON_ARGUMENTS if k in kwargs})
        return _resolve(self.sections)(root, request, **kwargs)

    def write_lookalike(self, root: str | os.PathLike, num_images: int | None = None,
                        options: Mapping[str, Any] | None = None, **kwargs: Any) -> Path:
        """Write the look-alike of this dataset into ``root`` (``num_images`` sets :attr:`lookalike_size`)."""
        extra = dict(self.lookalike_kwargs(dict(options or {}))) if self.lookalike_kwargs else {}
        if num_images is not None and self.lookalike_size:
            extra[self.lookalike_size] = range(1, num_images + 1) if self.lookalike_size == "patients" else num_images
        return _resolve(self.lookalike)(root, **{**extra, **kwargs})


DATASETS: dict[str, DatasetSpec] = {}


def register_dataset(spec: DatasetSpec, replace: bool = False) -> DatasetSpec:
    """Add ``spec`` to :data:`DATASETS` (``ValueError`` if the name is taken, unless ``replace``)."""
    if spec.name != spec.name.lower() or not spec.name:
        raise ValueError(f"dataset names are lower case and not empty, got {spec.name!r}.")
    if spec.name in DATASETS and not replace:
        raise ValueError(f"a dataset named {spec.name!r} is registered already (pass replace=True to replace it).")
    DATASETS[spec.name] = spec
    return spec


def get_dataset(name: str) -> DatasetSpec:
    """The :class:`DatasetSpec` of ``name`` (any case); ``ValueError`` listing the registered names otherwise."""
    key = str(name).lower()
    if key not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}: expected one of {list(DATASETS)}.")
    return DATASETS[key]


def dataset_names() -> Sequence[str]:
    """The registered dataset names, in registration order."""
    return tuple(DATASETS)


def scan_dataset(name: str, root: str | os.PathLike, split: str | None = None, **kwargs: Any) -> DatasetSections:
    """Check and split dataset ``name`` at ``root`` (see :meth:`DatasetSpec.scan`)."""
    return get_dataset(name).scan(root, split=split, **kwargs)


def prepare_dataset(
    name: str,
    root: str | os.PathLike,
    out: str | os.PathLike | None = None,
    split: str | None = None,
    download: bool = False,
    progress: bool | None = None,
    **kwargs: Any,
) -> Path:
    """Check a dataset folder (downloading it first when asked), split it and write its MONAI datalist JSON
    (default inside the dataset folder); return the JSON's path.

    Args:
        name: a registered dataset (:data:`DATASETS`).
        root: the dataset's folder in its real layout.
        out: the JSON to write.
        split, kwargs: the sections function's arguments (``fold``, ``num_folds``, ``seed``, ``expected_count``,
            ``check``, ``num_workers`` and the dataset's own options).
        download: download from the official location first (datasets without one raise with instructions).
        progress: progress bars on stderr for the long steps: True, False, or None (default) when stderr is a
            terminal; the download's own bar shows unless False. The files written do not depend on it.

    Raises:
        FileNotFoundError, DatasetLayoutError: as the dataset's checks; ValueError: unknown names or options.
    """
    from .datalist import write_datalist

    spec = get_dataset(name)
    if download:
        if spec.download is None:
            raise ValueError(f"{spec.title} has no download in this package.")
        _resolve(spec.download)(root, progress=progress is not False)
    result = spec.scan(root, split=split, progress=progress, **kwargs)
    extra = {"layout": result.layout} if result.layout else {}
    return write_datalist(Path(out) if out else result.default_out, result.sections, split=result.info,
                          **result.datalist, **extra)


def _acdc_lookalike(options: Mapping[str, Any]) -> dict[str, Any]:
    return {"form": "h5" if options.get("form") == "h5" else "raw"}


def _synapse_lookalike(options: Mapping[str, Any]) -> dict[str, Any]:
    return {"form": "raw" if options.get("from_raw") else "preprocessed"}


_STRICT = DatasetOption("strict_masks", "lossless masks must be exactly two-level (--no-strict-masks: binarise grey "
                        "masks at 127)", {"action": "boolean", "default": True})

for _spec in (
    DatasetSpec(
        "kvasir", "Kvasir-SEG", "monai_imbalance.apps.kvasir:kvasir_sections", ("pranet", "kvasir_seg", "kfold"),
        "monai_imbalance.apps.lookalike:write_kvasir_lookalike", download="monai_imbalance.apps.kvasir:download_kvasir",
        options=(
            DatasetOption("split_files", "kvasir_seg split: the official train.txt and val.txt",
                          {"nargs": 2, "metavar": ("TRAIN", "VAL")}),
            DatasetOption("val_fraction", "pranet split: share of the training images held out for validation",
                          {"type": float}),
        ),
        description="Kvasir-SEG polyps (1000 images; 3-channel JPEG masks)", bundle_split="kfold",
    ),
    DatasetSpec(
        "clinicdb", "CVC-ClinicDB", "monai_imbalance.apps.clinicdb:clinicdb_sections", ("external", "pranet", "kfold"),
        "monai_imbalance.apps.lookalike:write_clinicdb_lookalike",
        download="monai_imbalance.apps.clinicdb:download_clinicdb", options=(_STRICT,),
        description="CVC-ClinicDB polyps (612 frames; Kvasir's external test set)",
    ),
    DatasetSpec(
        "isic2018", "ISIC 2018 Task 1", "monai_imbalance.apps.isic:isic2018_sections", ("official", "kfold", "holdout"),
        "monai_imbalance.apps.lookalike:write_isic_lookalike", lookalike_size="num_training",
        download="monai_imbalance.apps.isic:download_isic2018",
        options=(
            _STRICT,
            DatasetOption("holdout", "holdout split: training, validation, test fractions",
                          {"type": float, "nargs": 3}),
            DatasetOption("cache_size", "resized copies with this longest side (0: read the originals)", {"type": int}),
            DatasetOption("cache_dir", "where the resized copies go (default ROOT/resized)"),
            DatasetOption("image_format", "format of the resized image copies", {"choices": ("jpg", "png")}),
        ),
        description="ISIC 2018 Task 1 skin lesions (2594 / 100 / 1000 images)",
    ),
    DatasetSpec(
        "synapse", "Synapse multi-organ CT", "monai_imbalance.apps.synapse:synapse_sections", ("transunet",),
        "monai_imbalance.apps.lookalike:write_synapse_lookalike", lookalike_size=None,
        lookalike_kwargs=_synapse_lookalike, download="monai_imbalance.apps.synapse:download_synapse",
        checks=("full", "header"),
        options=(
            DatasetOption("from_raw", "convert raw BTCV NIfTI (img/, label/) into TransUNet's form first",
                          {"action": "store_true"}),
            DatasetOption("preprocessed_dir", "--from-raw output (default ROOT/Synapse)"),
            DatasetOption("test_cases", "--from-raw: the cases written as test volumes (default Synapse's 12)",
                          {"nargs": "+"}),
            DatasetOption("list_dir", "the folder of train.txt / test_vol.txt (default: searched near ROOT)"),
            DatasetOption("val_cases", "training cases held out for validation", {"nargs": "+"}),
            DatasetOption("num_val_cases", "cases held out when --val-cases is not given", {"type": int}),
            DatasetOption("val_volumes", "validation as stacked h5 volumes", {"action": "store_true"}),
            DatasetOption("cache_dir", "where the stacked validation volumes go (default the data folder)"),
        ),
        bundle_options={"val_volumes": True},
        from_datalist="monai_imbalance.apps.synapse:synapse_from_datalist",
        description="Synapse/BTCV abdominal CT, 8 organs (TransUNet's form, or converted from BTCV NIfTI)",
    ),
    DatasetSpec(
        "acdc", "ACDC", "monai_imbalance.apps.acdc:acdc_sections", ("ssl4mis", "kfold"),
        "monai_imbalance.apps.lookalike:write_acdc_lookalike", lookalike_size="patients",
        lookalike_kwargs=_acdc_lookalike, download="monai_imbalance.apps.acdc:download_acdc",
        checks=("full", "header"),
        options=(
            DatasetOption("form", "layout: raw NIfTI, SSL4MIS HDF5, or auto", {"choices": ("auto", "raw", "h5")}),
            DatasetOption("slices", "raw form: training items are slices (--no-slices: volumes)",
                          {"action": "boolean", "default": True}),
        ),
        description="ACDC cine-MRI (RV, MYO, LV at ED and ES; raw NIfTI or SSL4MIS HDF5)",
    ),
):
    register_dataset(_spec)
