"""Helpers shared by every family of monai_imbalance (transforms, losses, stats, apps).

Only checks and conversions that more than one family needs live here; a helper used by one family lives in
that family's ``utils.py``.
"""

from __future__ import annotations

import math
import os
import secrets
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from monai.utils import ensure_tuple_rep

__all__ = [
    "to_numpy", "validate_label", "describe_source", "ensure_int_sequence", "whole_number_arg",
    "non_integer_label_message", "smallest_uint_dtype", "moved_names", "atomic_write", "label_components",
    "cc3d_connectivity", "component_values",
]

#: elements compared at a time when checking that a converted label kept its values (no full-size temporary)
_COMPARE_CHUNK = 1 << 18


def to_numpy(data: Any) -> np.ndarray:
    """Return ``data`` (numpy array, torch tensor, MetaTensor, nested sequence) as a numpy array without copying
    where possible. Tensors are detached and moved to the CPU."""
    # not monai.utils.convert_to_numpy: it copies every array that is not C-contiguous (np.ascontiguousarray), e.g.
    # Fortran-ordered labels read through ITK or PIL, which the callers here read as they lie
    if isinstance(data, torch.Tensor):
        # MetaTensor is a torch.Tensor subclass: as_tensor() drops the metadata so numpy() is a plain view
        tensor = data.as_tensor() if hasattr(data, "as_tensor") else data
        return tensor.detach().cpu().numpy()
    return np.asarray(data)


def cc3d_connectivity(ndim: int, connectivity: int | None) -> int:
    """The ``connected-components-3d`` neighbourhood (4/8 in 2-D, 6/18/26 in 3-D) of a scipy-style ``connectivity``:
    the rank of ``scipy.ndimage.generate_binary_structure`` (1 = face neighbours, ``ndim`` or None = full).

    Raises:
        ValueError: ``ndim`` is not 2 or 3, or ``connectivity`` is not in ``1..ndim``.
    """
    if ndim not in (2, 3):
        raise ValueError(f"connected components need 2-D or 3-D spatial data, got {ndim} spatial dimensions.")
    rank = ndim if connectivity is None else connectivity
    if isinstance(rank, bool) or not isinstance(rank, (int, np.integer)) or not 1 <= rank <= ndim:
        raise ValueError(
            f"connectivity must be None (full) or 1..{ndim} (1 = face neighbours) for {ndim}-D data, got {rank!r}."
        )
    return {2: (4, 8), 3: (6, 18, 26)}[ndim][int(rank) - 1]


def label_components(labels: Any, connectivity: int | None = None) -> tuple[np.ndarray, int]:
    """Connected components of a 2-D or 3-D mask or class-index map, numbered ``1..n`` in raster order.

    Voxels of the same non-zero value that touch (``connectivity``: 1 = face neighbours, None = full, as
    ``scipy.ndimage.generate_binary_structure``) form one component; different values never join, so one call
    labels every class of an index map (0 is background). ``connected-components-3d`` does the labelling: on a
    512x512x150 volume it measured 3.1x faster than ``scipy.ndimage.label`` for one binary mask and 24.7x faster for
    eight classes (one pass against one ``label`` call per class on its bounding box; ``benchmarks/bench_objects.py``).

    Returns:
        ``(component labels, n)``: an unsigned integer array of the input's shape, and the number of components.
    """
    import cc3d

    arr = np.asarray(labels)
    neighbourhood = cc3d_connectivity(arr.ndim, connectivity)
    if arr.dtype == bool:
        arr = arr.view(np.uint8)
    if not arr.flags.writeable:  # cc3d's typed memoryviews refuse read-only buffers (memory maps, shared arrays)
        arr = arr.copy()
    out, n = cc3d.connected_components(arr, connectivity=neighbourhood, return_N=True)
    return out, int(n)


def component_values(components: np.ndarray, n: int, values: np.ndarray) -> tuple[np.ndarray, ...]:
    """What one pass over :func:`label_components`' output gives: ``(index, labels, sizes, value_of)``, the flat
    indices of the labelled voxels, their component labels (int64), the voxel count of each component (``n + 1``
    entries, 0 for the background) and the value of ``values`` (the labelled map) each component holds."""
    flat = components.reshape(-1)
    index = np.flatnonzero(flat)
    labels = flat[index].astype(np.int64)
    sizes = np.bincount(labels, minlength=n + 1)
    value_of = np.zeros(n + 1, np.int64)
    value_of[labels] = values.reshape(-1)[index]
    return index, labels, sizes, value_of


def describe_source(source: Any) -> str:
    """Short text naming where a label came from, for error messages."""
    return "" if source is None else f" in {source}"


def smallest_uint_dtype(bound: int) -> type[np.unsignedinteger]:
    """Narrowest unsigned integer dtype that holds every value in ``0..bound``."""
    for dtype in (np.uint8, np.uint16, np.uint32):
        if bound <= np.iinfo(dtype).max:
            return dtype
    return np.uint64


def _all_equal(a: np.ndarray, b: np.ndarray) -> bool:
    """``np.array_equal(a, b)`` for arrays of one shape, compared a chunk at a time where both lie contiguously
    in the same order, so that no full-size boolean temporary is made."""
    for order, flag in (("C", "C_CONTIGUOUS"), ("F", "F_CONTIGUOUS")):
        if a.flags[flag] and b.flags[flag]:
            flat_a, flat_b = a.ravel(order), b.ravel(order)  # views
            return all(
                np.array_equal(flat_a[i : i + _COMPARE_CHUNK], flat_b[i : i + _COMPARE_CHUNK])
                for i in range(0, flat_a.size, _COMPARE_CHUNK)
            )
    return bool(np.array_equal(a, b))


def _non_integer_examples(arr: np.ndarray) -> list[float]:
    """Up to 5 distinct non-whole values of a float array (error path only: makes full-size temporaries)."""
    return np.unique(arr[arr != np.rint(arr)])[:5].tolist()


def non_integer_label_message(name: str, examples: object) -> str:
    """The one wording, for transforms and losses alike, of a label map with fractional values."""
    return (f"{name} has non-integer values (e.g. {examples}); labels must hold class indices. "
            "Interpolated labels need nearest-neighbour resampling; probability maps need thresholding.")


#: elements per block of the fused label check (:func:`_uint8_label`): 256 KB of float32, so that the range check,
#: the cast and the comparison of a block run in the CPU cache after one read of the label from memory
_BLOCK_ELEMENTS = 1 << 16


def _label_blocks(arr: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[tuple[slice, ...]]]:
    """``(result, source, destination, blocks)``: a new ``uint8`` array of the shape and memory order of ``arr``,
    views of ``arr`` and of the result, and slices of about ``_BLOCK_ELEMENTS`` elements covering both views.

    A contiguous label (C or Fortran order) is read as one flat run of memory, cut into equal blocks; any other layout
    (a strided view) in slices along its axis with the largest stride."""
    order = "F" if arr.flags.f_contiguous and not arr.flags.c_contiguous else "C"
    out = np.zeros(arr.shape, np.uint8, order=order)  # zeroed pages: all-zero blocks are never written
    if arr.flags.c_contiguous or arr.flags.f_contiguous:
        flat = arr.reshape(-1, order=order)
        blocks = [(slice(i, i + _BLOCK_ELEMENTS),) for i in range(0, flat.size, _BLOCK_ELEMENTS)]
        return out, flat, out.reshape(-1, order=order), blocks
    strides = [abs(s) if n > 1 else -1 for s, n in zip(arr.strides, arr.shape)]
    axis = int(np.argmax(strides))
    step = max(1, _BLOCK_ELEMENTS // max(arr.size // arr.shape[axis], 1))
    lead = (slice(None),) * axis
    return out, arr, out, [lead + (slice(i, i + step),) for i in range(0, arr.shape[axis], step)]


def _bits_dtype(dtype: np.dtype) -> np.dtype:
    """The unsigned integer dtype of the width and byte order of ``dtype`` (NIfTI labels can be big-endian)."""
    return np.dtype(f"u{dtype.itemsize}").newbyteorder(dtype.byteorder)


def _byte_limit_bits(dtype: np.dtype) -> int:
    """The bit pattern, read as an unsigned integer of the same width and byte order, of the largest value of
    ``dtype`` that is a valid ``uint8`` label (255, or 127 for ``int8``)."""
    top = min(255, int(np.iinfo(dtype).max)) if np.issubdtype(dtype, np.integer) else 255
    return int(np.array(top, dtype=dtype).view(_bits_dtype(dtype)))


def _uint8_blocks(arr: np.ndarray, out: np.ndarray, blocks: Sequence[tuple[slice, ...]]) -> int | None:
    """Cast ``arr[b]`` into ``out[b]`` (zeros) for each block; the largest value, or None as soon as a block holds a
    value that is not a whole number in ``0..255``.

    The range check is one maximum of the block's bits read as unsigned integers of the same width: non-negative
    integers and non-negative floats are ordered like their bit patterns, while a negative value (sign bit set),
    NaN and infinity read as larger than the pattern of 255. An all-zero block (most of a sparse label) stops there.
    Floats then need one comparison of the cast block with the original (fractions, tiny values). A ``-0.0`` reads
    as out of range here and takes the general check of :func:`_wide_label`."""
    bits = arr.view(_bits_dtype(arr.dtype))
    limit = _byte_limit_bits(arr.dtype)
    whole_by_type = np.issubdtype(arr.dtype, np.integer)
    unequal = None if whole_by_type else np.empty(max(out[block].size for block in blocks), dtype=bool)
    top = 0
    with np.errstate(invalid="ignore", over="ignore"):
        for block in blocks:
            hi = int(bits[block].max())
            if not hi:
                continue
            if hi > limit:
                return None
            src, dst = arr[block], out[block]
            np.copyto(dst, src, casting="unsafe")
            if not whole_by_type:
                if np.not_equal(dst, src, out=unequal[: dst.size].reshape(dst.shape)).any():
                    return None
            top = max(top, hi)
    return int(np.array(top, dtype=bits.dtype).view(arr.dtype))


def _uint8_label(arr: np.ndarray) -> tuple[np.ndarray, int] | None:
    """``(arr as uint8, its maximum)`` when every value of ``arr`` (numeric, non-empty, not uint8) is a whole
    number in ``0..255``, else None.

    One pass over ``arr`` in blocks (:func:`_label_blocks`), each block range-checked, cast and compared while it is
    in the cache: the only full-size array made is the ``uint8`` result, and the label is read from memory once.
    One thread: splitting the blocks over two threads measured 0.7x to 1.2x the time of one on this project's 2-core
    machine (the Python loop over blocks holds the interpreter lock between numpy calls).
    """
    out, src, dst, blocks = _label_blocks(arr)
    top = _uint8_blocks(src, dst, blocks)
    return None if top is None else (out, top)


def validate_label(
    label: Any,
    num_classes: int | None = None,
    name: str = "label",
    source: Any = None,
) -> np.ndarray:
    """Check that ``label`` holds class indices and return it as an integer numpy array of the same shape.

    A label is valid when every value is finite, a whole number, ``>= 0`` and, when ``num_classes`` is given,
    ``< num_classes``. Float labels with whole values (``LoadImaged`` gives float32 by default; NIfTI files often
    store labels as float32; Synapse npz files store them as float) and wide integer labels (int64 tensors) are
    accepted.

    Any label whose values fit ``0..255`` comes back as ``uint8``, the dtype the fast paths of the transforms read:
    the check and the cast are one blocked pass over the label (the label is read once, and the ``uint8`` result is
    the only full-size array made: peak extra memory one byte per voxel). A ``uint8`` label is returned as it is, a
    bool label as a ``uint8`` view. Labels with larger values are checked by their minimum and maximum and come back
    in the smallest unsigned dtype that holds them (float) or as they are (integer).

    Args:
        label: label map of any shape, numpy, torch or MetaTensor.
        num_classes: number of classes including background, or None to skip the upper bound.
        name: what to call the array in error messages (an argument or key name).
        source: where the label came from (a file path, a datalist index), named in error messages.

    Returns:
        ``np.ndarray``: ``uint8`` when the values fit (a view of a ``uint8`` or bool label, else a copy); otherwise
        the input's own integer array, or a copy of a float label in the smallest sufficient unsigned dtype.

    Raises:
        ValueError: when the label holds NaN/inf, non-integer, negative values or values ``>= num_classes``.
            The message names ``name``, ``source`` and the offending values.
    """
    arr = to_numpy(label)
    where = describe_source(source)
    if arr.dtype == bool:
        arr = arr.view(np.uint8)
    elif not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.complexfloating):
        raise ValueError(f"{name}{where} must be numeric, got dtype {arr.dtype}.")
    if arr.size == 0:
        raise ValueError(f"{name}{where} is empty (shape {tuple(arr.shape)}).")
    if arr.dtype == np.uint8:
        hi = int(arr.max()) if num_classes is not None else None
    else:
        fast = _uint8_label(arr) if arr.ndim else None
        if fast is not None:
            arr, hi = fast
        else:
            arr, hi = _wide_label(arr, name, where)
    if num_classes is not None and hi >= num_classes:
        hint = " For masks stored as 0/255, binarise them first (threshold=127)." if hi == 255 else ""
        raise ValueError(
            f"{name}{where} has value {hi} but num_classes={num_classes} (valid values 0..{num_classes - 1}).{hint}"
        )
    return arr


def _wide_label(arr: np.ndarray, name: str, where: str) -> tuple[np.ndarray, int]:
    """:func:`validate_label` for a label that is not all whole numbers in ``0..255``: the checks read its minimum
    and maximum in place, and a float label is cast to the smallest unsigned dtype that holds its maximum and compared
    with the original a chunk at a time; an error names the offending values."""
    lo, hi = arr.min(), arr.max()
    if not np.issubdtype(arr.dtype, np.integer):
        if not (np.isfinite(lo) and np.isfinite(hi)):  # NaN propagates through min and max
            raise ValueError(f"{name}{where} contains NaN or infinite values; labels must be class indices.")
        if float(hi) >= 2**63:
            raise ValueError(f"{name}{where} has value {hi}, too large for a class index.")
        converted = arr.astype(smallest_uint_dtype(int(hi))) if lo >= 0 else None
        if converted is None or not _all_equal(converted, arr):
            examples = _non_integer_examples(arr)
            if examples:
                raise ValueError(non_integer_label_message(f"{name}{where}", examples))
        if converted is not None:
            arr = converted
    if lo < 0:
        raise ValueError(f"{name}{where} has negative values (min {int(lo)}); labels must be class indices >= 0.")
    return arr, int(hi)


def whole_number_arg(value: Any, name: str, minimum: int = 1) -> int | tuple[int, ...]:
    """A size argument (``roi_size``, ``stride``): an int, or one int per spatial axis, each ``>= minimum``; returned
    as an ``int`` or a tuple of ints.

    Whole-valued floats (``32.0``, as YAML arithmetic or ``size / 2`` give them), numpy scalars and 0-d arrays or
    tensors are read as the int they hold, as ``monai.utils.ensure_tuple_rep`` then an ``int()`` would; anything
    else raises a ``ValueError`` naming ``name`` and the value: a fractional or non-finite size (``32.5``: MONAI's
    ``CenterSpatialCrop`` would silently crop 32), a string (``"32"``), a bool.
    """

    def one(v: Any) -> int:
        if isinstance(v, (np.ndarray, torch.Tensor)) and v.ndim == 0:
            v = v.item()
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.integer, np.floating)):
            raise ValueError(f"{name} must be an int or a sequence of ints, got {value!r}.")
        if isinstance(v, (float, np.floating)):
            if not (math.isfinite(v) and float(v).is_integer()):
                raise ValueError(f"{name} must be a whole number of pixels on every axis, got {value!r}.")
        return int(v)

    if isinstance(value, (str, bytes)) or value is None:
        raise ValueError(f"{name} must be an int or a sequence of ints, got {value!r}.")
    scalar = np.ndim(value) == 0
    try:
        values = (one(value),) if scalar else tuple(one(v) for v in value)
    except TypeError:  # not iterable, or a tensor of more than one value
        raise ValueError(f"{name} must be an int or a sequence of ints, got {value!r}.") from None
    if any(v < minimum for v in values):
        raise ValueError(f"{name} must be >= {minimum} on every axis, got {value!r}.")
    return values[0] if scalar else values


def ensure_int_sequence(value: int | Sequence[int], ndim: int, name: str, minimum: int = 1) -> tuple[int, ...]:
    """``monai.utils.ensure_tuple_rep(value, ndim)`` as ints, each ``>= minimum`` (read by :func:`whole_number_arg`:
    ``32.0`` is 32, ``32.5`` an error); ``ValueError`` naming ``name`` otherwise (MONAI's message names neither the
    argument nor the axes)."""
    checked = whole_number_arg(value, name, minimum)
    try:
        return tuple(ensure_tuple_rep(checked, ndim))
    except ValueError:
        raise ValueError(
            f"{name} must be an int or {ndim} values (one per spatial axis), got {tuple(value)}."
        ) from None


def moved_names(module: str, moved: dict[str, str]) -> Any:
    """A module ``__getattr__`` for names that moved: ``moved = {name: new module}``; reading one warns
    (``DeprecationWarning`` naming the new path) and returns the object of the new module."""
    import importlib
    import warnings

    def __getattr__(name: str) -> Any:
        if name not in moved:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        warnings.warn(f"{module}.{name} is deprecated and will be removed in the next release: use "
                      f"{moved[name]}.{name}.", DeprecationWarning, stacklevel=2)
        return getattr(importlib.import_module(moved[name]), name)

    return __getattr__


def _fsync_directory(folder: Path) -> None:
    # makes the rename itself durable; a directory cannot be opened or fsynced everywhere (Windows), nothing to do there
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path: str | os.PathLike, write: Callable[[Any], Any]) -> None:
    """Write ``path`` so that it is never left partly written: ``write(file)`` fills a temporary file in the same
    folder (``.<name>.<8 hex digits>.tmp``, opened ``"xb"``: a new file with the permissions a plain write would
    give), which is flushed, fsynced and renamed to ``path`` (``os.replace``, atomic on POSIX and Windows); the folder
    is fsynced where the OS allows. On any error, or a kill, ``path`` keeps its old content; the temporary file is
    removed on errors (a killed process leaves it behind).

    Example::

        atomic_write("result.json", lambda f: f.write(text.encode()))
    """
    path = Path(path)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        with open(temporary, "xb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    _fsync_directory(path.parent)
