"""Checks shared by the dataset layouts: folders, image/mask pairing, readability, mask values, counts.

Every dataset module (``kvasir``, ``clinicdb``, ``isic``, ``synapse``, ``acdc``) collects what is wrong with a
folder into a :class:`LayoutProblems` and raises one :class:`DatasetLayoutError` that names the files, so that a
user fixes a download in one pass instead of one error at a time.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from .io import JPEG_SUFFIXES, label_suffix, load_label_file

__all__ = [
    "DatasetLayoutError",
    "LayoutProblems",
    "nifti_data_problem",
    "SYNTHETIC_MARKER",
    "read_synthetic_marker",
    "write_synthetic_marker",
    "require_dir",
    "files_by_id",
    "pair_by_id",
    "check_image_mask_pairs",
    "check_binary_mask",
    "resolve_expected",
    "SKIP_COUNT_CHECK",
    "thread_map",
    "process_iter",
    "progress_bar",
    "class_indices",
]

SYNTHETIC_MARKER = "SYNTHETIC.txt"
"""Name of the file that marks a folder written by :mod:`monai_imbalance.apps.lookalike`."""

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp")


class DatasetLayoutError(ValueError):
    """A dataset folder does not have the documented layout: missing, unpaired, unreadable files, wrong mask
    values or wrong counts. The message lists the files concerned."""


class LayoutProblems:
    """Collects the problems found in a dataset folder and raises them together.

    Args:
        dataset: dataset name used in the message (``"Kvasir-SEG"``).
        root: the folder that was checked.
        max_listed: how many problems the message spells out (the rest are counted).
    """

    def __init__(self, dataset: str, root: str | os.PathLike, max_listed: int = 8) -> None:
        self.dataset = dataset
        self.root = Path(root)
        self.max_listed = max_listed
        self.messages: list[str] = []

    def add(self, message: str) -> None:
        self.messages.append(message)

    def extend(self, messages: Iterable[str]) -> None:
        self.messages.extend(messages)

    def __len__(self) -> int:
        return len(self.messages)

    def __bool__(self) -> bool:
        return bool(self.messages)

    def raise_if_any(self) -> None:
        """Raise :class:`DatasetLayoutError` listing the problems, if there are any."""
        if not self.messages:
            return
        shown = self.messages[: self.max_listed]
        more = len(self.messages) - len(shown)
        tail = f"; ... and {more} more" if more else ""
        raise DatasetLayoutError(
            f"{self.dataset} at {self.root}: {len(self.messages)} problem(s): " + "; ".join(shown) + tail
        )


def write_synthetic_marker(folder: str | os.PathLike, dataset: str, counts: Mapping[str, Any], **info: Any) -> Path:
    """Write :data:`SYNTHETIC_MARKER` into ``folder``: a sentence for people, then one JSON line with the counts
    the look-alike holds (the dataset checks use them instead of the real dataset's numbers)."""
    path = Path(folder) / SYNTHETIC_MARKER
    record = {"dataset": dataset, "synthetic": True, "counts": dict(counts), **info}
    path.write_text(
        f"SYNTHETIC look-alike of the {dataset} layout written by monai_imbalance.apps.lookalike. "
        "These are generated images, not real data.\n" + json.dumps(record, sort_keys=True) + "\n"
    )
    return path


def read_synthetic_marker(folder: str | os.PathLike) -> dict[str, Any] | None:
    """The JSON record of :data:`SYNTHETIC_MARKER` in ``folder``, or ``None`` when the folder has no marker."""
    path = Path(folder) / SYNTHETIC_MARKER
    if not path.is_file():
        return None
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    try:
        record = json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError) as err:
        raise DatasetLayoutError(f"{path} is not a monai_imbalance look-alike marker: {err}") from err
    if not isinstance(record, dict) or "counts" not in record:
        raise DatasetLayoutError(f"{path} is not a monai_imbalance look-alike marker (no counts).")
    return record


#: how to skip the count checks, appended to their messages
SKIP_COUNT_CHECK = (
    " (a subset on purpose? skip the count checks: expected_count=None, `monai-imbalance prepare <dataset> "
    "--no-count-check`, or in a bundle `--expected_count None`)"
)


def resolve_expected(expected: Any, marker: Mapping[str, Any] | None, key: str, real: Any) -> Any:
    """The count to check against: ``expected`` when given, the look-alike marker's count for ``key`` when
    ``expected == "auto"`` and a marker exists, else the real dataset's number ``real``. ``None`` skips."""
    if expected != "auto":
        return expected
    if marker is not None:
        return marker["counts"].get(key, real)
    return real


def require_dir(path: str | os.PathLike, what: str) -> Path:
    """``path`` as a ``Path``; ``FileNotFoundError`` naming ``what`` when it is not a folder."""
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"{what} folder not found: {path}")
    return path


def files_by_id(
    folder: Path,
    suffixes: Sequence[str],
    id_of: Callable[[Path], str | None],
    problems: LayoutProblems,
    what: str,
) -> dict[str, Path]:
    """Files of ``folder`` with one of ``suffixes`` (case-insensitive), keyed by ``id_of(path)``.

    Files whose ``id_of`` is ``None`` are reported as unexpected; two files with the same id are reported as
    duplicates. Other suffixes (``LICENSE.txt``, ``ATTRIBUTION.txt``, ``.json``) are ignored.
    """
    found: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if not path.is_file() or label_suffix(path) not in suffixes:
            continue
        key = id_of(path)
        if key is None:
            problems.add(f"unexpected {what} file name {path.name} in {folder}")
        elif key in found:
            problems.add(f"two {what} files for {key}: {found[key].name} and {path.name}")
        else:
            found[key] = path
    return found


def pair_by_id(
    images: Mapping[str, Path], masks: Mapping[str, Path], mask_dir: Path, problems: LayoutProblems, mask_name: str
) -> list[tuple[str, Path, Path]]:
    """``(id, image, mask)`` for every id in both maps; images without a mask and masks without an image are
    reported, naming the expected file (``mask_name`` is a format string with ``{id}``)."""
    pairs = []
    for key in images:
        if key in masks:
            pairs.append((key, images[key], masks[key]))
        else:
            problems.add(f"missing mask for image {images[key].name} (expected {mask_dir / mask_name.format(id=key)})")
    for key in masks:
        if key not in images:
            problems.add(f"unpaired mask {masks[key].name}: no image with id {key}")
    return pairs


def class_indices(label: Any, num_classes: int | None = None, name: str = "label", source: Any = None) -> np.ndarray:
    """:func:`monai_imbalance.utils.validate_label` (whole values in ``0..num_classes-1``, cast to int), imported
    when first used so that importing the dataset modules does not import torch."""
    from monai_imbalance.utils import validate_label

    return validate_label(label, num_classes=num_classes, name=name, source=source)


def progress_bar(iterable: Iterable[Any], total: int, desc: str, progress: bool | None = False,
                 unit: str = "file") -> Iterable[Any]:
    """``iterable`` with a tqdm bar on stderr named ``desc``, as ``monai-imbalance stats`` shows one.

    ``progress``: True always shows it, False never, None when stderr is a terminal (tqdm's own rule), so that
    logs and captured output stay free of it. The bar only reports: the items and their order are unchanged.
    """
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, desc=desc, unit=unit, disable=None if progress is None else not progress)


def thread_map(
    function: Callable[[Any], Any],
    items: Sequence[Any],
    num_workers: int = 0,
    desc: str | None = None,
    progress: bool | None = False,
    unit: str = "file",
) -> list[Any]:
    """``[function(x) for x in items]``, in threads when ``num_workers > 0`` (image decoders release the GIL).

    ``desc``, ``progress``, ``unit``: a :func:`progress_bar` named ``desc`` counting the finished items (none
    without ``desc`` or items).
    """

    def counted(results: Iterable[Any]) -> Iterable[Any]:
        return progress_bar(results, len(items), desc, progress, unit) if desc and len(items) else results

    if num_workers and num_workers > 0 and len(items) > 1:
        with ThreadPoolExecutor(max_workers=num_workers) as pool:
            return list(counted(pool.map(function, items)))
    return [function(x) for x in counted(items)]


def _identity(x: Any) -> Any:
    return x


def process_iter(
    dataset: Any,
    num_workers: int = 0,
    desc: str | None = None,
    progress: bool | None = False,
    unit: str = "file",
) -> Iterable[Any]:
    """``dataset[0], dataset[1], ...`` in order, computed in worker processes when ``num_workers > 0`` (a
    ``DataLoader`` with ``batch_size=None``: ``dataset`` must be picklable), one at a time, so that a large dataset is
    never all in memory; :func:`thread_map`'s ``desc``, ``progress`` and ``unit``. For work that holds the GIL
    (connected components, window counts), where :func:`thread_map`'s threads would not run in parallel."""
    total = len(dataset)
    if num_workers and num_workers > 0:
        from torch.utils.data import DataLoader

        results: Iterable[Any] = DataLoader(dataset, batch_size=None, shuffle=False, num_workers=num_workers,
                                            collate_fn=_identity)
    else:
        results = (dataset[i] for i in range(total))
    return progress_bar(results, total, desc, progress, unit) if desc and total else results


def _image_size(path: Path, full: bool) -> tuple[int, int]:
    """``(height, width)`` of an image from its header (``full`` decodes all pixels, finding truncated files)."""
    from PIL import Image

    with Image.open(path) as img:
        if full:
            img.load()
        width, height = img.size
    return height, width


def nifti_data_problem(path: str | os.PathLike, image: Any = None) -> str | None:
    """Why the NIfTI file ``path`` cannot be read whole (truncated or damaged), or None when it can.

    The header alone does not show a cut file: nibabel reads headers lazily and fails only when the voxels are read.
    A ``.nii`` must hold at least the header's offset plus the voxels its shape and dtype need; a ``.nii.gz`` is
    decompressed to its end (in chunks, nothing kept), which finds a cut stream (no end-of-stream marker) and a
    damaged one (CRC) at the cost of one decompression. ``image``: the file already opened with ``nibabel.load``.
    """
    import gzip
    import zlib

    import nibabel as nib

    path = Path(path)
    try:
        image = image if image is not None else nib.load(str(path))
        header = image.header
        # a vox_offset of 0 in a single file means the smallest offset of its format (352 for NIfTI-1, 540 for -2)
        offset = max(int(header.get_data_offset()), int(getattr(header, "single_vox_offset", 0)))
        needed = offset + int(np.prod(image.shape)) * header.get_data_dtype().itemsize
        if path.name.endswith(".gz"):
            total = 0
            with gzip.open(path, "rb") as f:
                while chunk := f.read(1 << 22):
                    total += len(chunk)
        else:
            total = path.stat().st_size
    except (EOFError, OSError, zlib.error) as err:  # gzip: "ended before the end-of-stream marker", bad CRC
        return f"{path} is truncated or damaged ({type(err).__name__}: {err})"
    except Exception as err:  # nibabel's header errors
        return f"unreadable {path}: {err}"
    if total < needed:
        return f"{path} is truncated: {total} bytes, its header needs {needed} (offset + voxels)"
    return None


def check_binary_mask(mask: np.ndarray, path: Path, lossy: bool) -> str | None:
    """Problem text for a binary mask whose values are not what its format allows, else ``None``.

    Lossless masks (PNG, TIFF) must hold two levels, ``{0, 255}`` or ``{0, 1}`` (either may be absent). Lossy
    (JPEG) masks carry compression noise and are read as ``grey > 127``: any 8-bit grey values are allowed.
    """
    if mask.ndim != 2:
        return f"mask {path.name} is not a 2-D grey mask (shape {tuple(mask.shape)})"
    if lossy:
        if mask.dtype != np.uint8:
            return f"JPEG mask {path.name} is not 8-bit (dtype {mask.dtype})"
        return None
    values = np.unique(mask)
    if set(values.tolist()) <= {0, 255} or set(values.tolist()) <= {0, 1}:
        return None
    shown = values[:6].tolist()
    return (
        f"mask {path.name} has values {shown}{'...' if len(values) > 6 else ''}; a lossless binary mask must hold "
        "0/255 or 0/1 (use strict_masks=False to binarise grey masks at 127)"
    )


def check_image_mask_pairs(
    pairs: Sequence[tuple[str, Path, Path]],
    problems: LayoutProblems,
    check: str = "full",
    strict_masks: bool = True,
    num_workers: int = 0,
    progress: bool | None = False,
) -> dict[str, dict[str, Any]]:
    """Check 2-D image/mask pairs and return ``{id: {"height": H, "width": W}}`` for the good ones.

    Args:
        pairs: ``(id, image, mask)`` triples.
        problems: where to report unreadable files, size mismatches and bad mask values.
        check: ``"full"`` decodes every mask (values) and image header; ``"images"`` also decodes every image
            pixel (finds truncated JPEGs, slower); ``"header"`` reads headers only (sizes, no mask values).
        strict_masks: lossless masks must be exactly two-level (see :func:`check_binary_mask`).
        num_workers: decoder threads.
        progress: a bar named after ``problems.dataset`` and the check, counting pairs (see :func:`progress_bar`).
    """
    if check not in ("header", "full", "images"):
        raise ValueError(f"check must be 'header', 'full' or 'images', got {check!r}.")

    def one(pair: tuple[str, Path, Path]) -> tuple[str, dict[str, Any] | None, list[str]]:
        key, image, mask = pair
        found: list[str] = []
        try:
            size = _image_size(image, full=check == "images")
        except Exception as err:  # PIL raises many types for broken files
            return key, None, [f"unreadable image {image}: {err}"]
        info: dict[str, Any] = {"height": size[0], "width": size[1]}
        try:
            if check == "header":
                mask_size = _image_size(mask, full=False)
            else:
                raw = load_label_file(mask, threshold=None)
                mask_size = tuple(raw.shape[:2])
                lossy = label_suffix(mask) in JPEG_SUFFIXES
                bad = check_binary_mask(raw, mask, lossy)
                if bad and (lossy or strict_masks or raw.ndim != 2):
                    found.append(bad)
        except Exception as err:
            return key, None, [f"unreadable mask {mask}: {err}"]
        if tuple(mask_size) != tuple(size):
            found.append(f"size mismatch: image {image.name} is {size[0]}x{size[1]}, mask {mask.name} is "
                         f"{mask_size[0]}x{mask_size[1]}")
        return key, (None if found else info), found

    step = {"full": "checking masks", "images": "checking images and masks", "header": "reading headers"}[check]
    results = thread_map(one, list(pairs), num_workers, desc=f"{problems.dataset}: {step}", progress=progress,
                         unit="pair")
    good: dict[str, dict[str, Any]] = {}
    for key, info, found in results:
        problems.extend(found)
        if info is not None:
            good[key] = info
    return good
