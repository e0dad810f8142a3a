"""Helpers shared by every family of monai_imbalance (transforms, losses, stats, apps).

Only checks and conversions that more than one family needs live here; a helper used by one family lives in
that family's ``utils.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

__all__ = ["to_numpy", "validate_label", "describe_source", "ensure_int_sequence"]


def to_numpy(data: Any) -> np.ndarray:
    """Return ``data`` (numpy array, torch tensor, MetaTensor, nested sequence) as a numpy array without copying
    where possible. Tensors are detached and moved to the CPU."""
    if isinstance(data, torch.Tensor):
        # MetaTensor is a torch.Tensor subclass: as_tensor() drops the metadata so numpy() is a plain view
        tensor = data.as_tensor() if hasattr(data, "as_tensor") else data
        return tensor.detach().cpu().numpy()
    return np.asarray(data)


def describe_source(source: Any) -> str:
    """Short text naming where a label came from, for error messages."""
    return "" if source is None else f" in {source}"


def validate_label(
    label: Any,
    num_classes: int | None = None,
    name: str = "label",
    source: Any = None,
) -> np.ndarray:
    """Check that ``label`` holds class indices and return it as an integer numpy array of the same shape.

    A label is valid when every value is finite, a whole number, ``>= 0`` and, when ``num_classes`` is given,
    ``< num_classes``. Float labels with whole values (NIfTI files often store labels as float32; Synapse npz
    files store them as float) are accepted and cast.

    Args:
        label: label map of any shape, numpy, torch or MetaTensor.
        num_classes: number of classes including background, or None to skip the upper bound.
        name: what to call the array in error messages (an argument or key name).
        source: where the label came from (a file path, a datalist index), named in error messages.

    Returns:
        ``np.ndarray`` of dtype ``int64`` (or the input's integer dtype when it is already integer).

    Raises:
        ValueError: when the label holds NaN/inf, non-integer, negative values or values ``>= num_classes``.
            The message names ``name``, ``source`` and the offending values.
    """
    arr = to_numpy(label)
    where = describe_source(source)
    if arr.dtype == bool:
        arr = arr.astype(np.uint8)
    elif not np.issubdtype(arr.dtype, np.number):
        raise ValueError(f"{name}{where} must be numeric, got dtype {arr.dtype}.")
    if arr.size == 0:
        raise ValueError(f"{name}{where} is empty (shape {tuple(arr.shape)}).")
    if not np.issubdtype(arr.dtype, np.integer):
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name}{where} contains NaN or infinite values; labels must be class indices.")
        rounded = np.rint(arr)
        bad = arr != rounded
        if bad.any():
            examples = np.unique(arr[bad])[:5].tolist()
            raise ValueError(
                f"{name}{where} has non-integer values (e.g. {examples}); labels must hold class indices. "
                "Interpolated labels need nearest-neighbour resampling; probability maps need thresholding."
            )
        arr = rounded.astype(np.int64)
    lo, hi = int(arr.min()), int(arr.max())
    if lo < 0:
        raise ValueError(f"{name}{where} has negative values (min {lo}); labels must be class indices >= 0.")
    if num_classes is not None and hi >= num_classes:
        hint = " For masks stored as 0/255, binarise them first (threshold=127)." if hi == 255 else ""
        raise ValueError(
            f"{name}{where} has value {hi} but num_classes={num_classes} (valid values 0..{num_classes - 1}).{hint}"
        )
    return arr


def ensure_int_sequence(value: int | Sequence[int], ndim: int, name: str, minimum: int = 1) -> tuple[int, ...]:
    """Expand an int or a per-axis sequence to ``ndim`` ints, each ``>= minimum``; ``ValueError`` naming ``name``
    otherwise."""
    if isinstance(value, (int, np.integer)):
        values = (int(value),) * ndim
    else:
        values = tuple(int(v) for v in value)
        if len(values) != ndim:
            raise ValueError(f"{name} must be an int or {ndim} values (one per spatial axis), got {tuple(value)}.")
    if any(v < minimum for v in values):
        raise ValueError(f"{name} must be >= {minimum} on every axis, got {values}.")
    return values
