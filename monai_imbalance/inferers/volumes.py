"""Slice-by-slice inference of volumes with a 2-D network, and the volume files to run it on.

- :class:`SliceBySliceInferer`: a MONAI ``Inferer`` that runs a 2-D network on every slice of ``(B, C, *3-D)``
  volumes, each slice resized in-plane to the network's size and the label resized back (TransUNet's
  ``test_single_volume``), and returns the label volume ``(B, 1, *3-D)`` in the input's geometry.
- :func:`volume_items`, :func:`volume_format`: the volumes of a folder as datalist items, and their format (h5 or
  NIfTI), for the bundles' inference configs.

Slice orientation: the 2-D networks see slices in the array order of the h5/npz files (SimpleITK's ``(z, y, x)``,
in which TransUNet's and SSL4MIS's files are written), so a NIfTI volume loaded by nibabel as ``(x, y, z)`` is
sliced along its last axis and each slice transposed (``spatial_dim=2, transpose=True``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from monai.data import MetaTensor
from monai.inferers import Inferer, SliceInferer

from monai_imbalance.transforms.io import split_volume_name

__all__ = ["SliceBySliceInferer", "VOLUME_SUFFIXES", "volume_items", "volume_format"]

VOLUME_SUFFIXES = (".nii.gz", ".nii", ".h5", ".hdf5")
_IMAGE_MODES = ("nearest", "nearest-exact", "bilinear", "bicubic", "area")


class SliceBySliceInferer(Inferer):
    """Predict a label volume with a 2-D network, one slice at a time (``sw_batch_size`` slices per forward pass).

    Each slice along ``spatial_dim`` is (optionally) transposed, resized to ``roi_size`` with ``mode`` (TransUNet:
    cubic), given to the network, turned into labels (argmax over channels; ``logit > 0`` for a one-channel
    output) and resized back to the slice's size, then the slices are stacked in their original place. In-plane
    only: slices are never mixed, whatever the spacing between them.

    Args:
        spatial_dim: the spatial axis (0, 1 or 2 of the 3 spatial axes) along which the volume is sliced: 0 for
            the ``(D, H, W)`` h5 volumes of Synapse and ACDC, 2 for NIfTI ``(x, y, z)`` volumes.
        roi_size: the network's in-plane size; None: slices are given at their own size.
        mode: interpolation of the image slices to ``roi_size`` (a ``torch.nn.functional.interpolate`` mode, as
            MONAI's ``Resized`` uses it: ``align_corners=False`` for the linear and cubic modes).
        sw_batch_size: slices per forward pass.
        resample: ``"label"``: argmax at the network's size, labels resized back by nearest neighbour (TransUNet's
            ``test_single_volume``); ``"logits"``: logits resized back bilinearly, argmax at the slice's size.
        transpose: transpose each slice before the network and back after (NIfTI volumes for networks trained on
            SimpleITK-ordered slices).

    Returns (``__call__``): a float tensor ``(B, 1, *spatial)`` of class indices, on the input's device.

    Built on MONAI's ``SliceInferer``, which cuts the slices, groups ``sw_batch_size`` of them per forward pass and
    stacks the results back in place. Its ``roi_size`` is a window cut from the slice and its output the network's
    output at that window's size, so it has no step for TransUNet's per-slice resize to the network's size and back,
    for labels resampled instead of logits, or for the transposition: here each whole slice is one window (MONAI's
    ``roi_size`` ``(-1, -1)``, no overlap) and those steps run in the callable it is given, which returns the slice's
    labels; this class's ``roi_size`` is the network's size, not MONAI's window.

    Raises:
        ValueError: input not ``(B, C, *3-D)``, a bad ``spatial_dim``, ``mode`` or ``resample``.

    Example:
        >>> import torch
        >>> net = torch.nn.Conv2d(1, 3, 3, padding=1).eval()
        >>> labels = SliceBySliceInferer(spatial_dim=0, roi_size=(32, 32))(torch.rand(1, 1, 5, 48, 40), net)
        >>> labels.shape
        torch.Size([1, 1, 5, 48, 40])
    """

    def __init__(
        self,
        spatial_dim: int = 0,
        roi_size: Sequence[int] | int | None = None,
        mode: str = "bilinear",
        sw_batch_size: int = 16,
        resample: str = "label",
        transpose: bool = False,
    ) -> None:
        super().__init__()
        if spatial_dim not in (0, 1, 2):
            raise ValueError(f"spatial_dim must be 0, 1 or 2 (a spatial axis of a 3-D volume), got {spatial_dim}.")
        if mode not in _IMAGE_MODES:
            raise ValueError(f"mode must be one of {_IMAGE_MODES}, got {mode!r}.")
        if resample not in ("label", "logits"):
            raise ValueError(f"resample must be 'label' or 'logits', got {resample!r}.")
        if int(sw_batch_size) < 1:
            raise ValueError(f"sw_batch_size must be >= 1, got {sw_batch_size}.")
        if isinstance(roi_size, int):
            roi_size = (roi_size, roi_size)
        self.spatial_dim = int(spatial_dim)
        self.roi_size = None if roi_size is None else tuple(int(s) for s in roi_size)
        self.mode = mode
        self.sw_batch_size = int(sw_batch_size)
        self.resample = resample
        self.transpose = bool(transpose)

    def _interpolate(self, x: torch.Tensor, size: Sequence[int], mode: str) -> torch.Tensor:
        align = {"align_corners": False} if mode in ("bilinear", "bicubic") else {}
        return F.interpolate(x, size=tuple(size), mode=mode, **align)

    @staticmethod
    def _labels(logits: torch.Tensor) -> torch.Tensor:
        if logits.shape[1] == 1:
            return (logits[:, 0] > 0).float()
        return logits.argmax(dim=1).float()

    def _predict(self, planes: torch.Tensor, network: Any, *args: Any, **kwargs: Any) -> torch.Tensor:
        size = tuple(planes.shape[-2:])
        resized = self.roi_size is not None and self.roi_size != size
        x = self._interpolate(planes, self.roi_size, self.mode) if resized else planes  # type: ignore[arg-type]
        logits = network(x, *args, **kwargs)
        if isinstance(logits, (list, tuple)):  # a deeply supervised network left in training mode: its first head
            logits = logits[0]
        if isinstance(logits, MetaTensor):
            logits = logits.as_tensor()
        if resized and self.resample == "logits":
            return self._labels(self._interpolate(logits.float(), size, "bilinear"))
        labels = self._labels(logits)
        if resized:
            labels = F.interpolate(labels[:, None], size=size, mode="nearest-exact")[:, 0]
        return labels

    def _predict_planes(self, planes: torch.Tensor, network: Any, *args: Any, **kwargs: Any) -> torch.Tensor:
        """The ``(n, 1, a, b)`` labels of ``n`` slices ``(n, C, a, b)``: what ``SliceInferer`` stitches back."""
        if self.transpose:
            return self._predict(planes.transpose(-1, -2), network, *args, **kwargs).transpose(-1, -2)[:, None]
        return self._predict(planes, network, *args, **kwargs)[:, None]

    def __call__(self, inputs: torch.Tensor, network: Any, *args: Any, **kwargs: Any) -> torch.Tensor:  # type: ignore[override]
        x = inputs.as_tensor() if isinstance(inputs, MetaTensor) else torch.as_tensor(inputs)
        if x.ndim != 5:
            raise ValueError(f"inputs must be (B, C, *3-D spatial) volumes, got shape {tuple(x.shape)}.")
        # one window per slice: roi_size -1 is the slice's own in-plane size, and no overlap
        slicer = SliceInferer(spatial_dim=self.spatial_dim, roi_size=(-1, -1), sw_batch_size=self.sw_batch_size,
                              overlap=0.0)
        labels = slicer(x, lambda planes: self._predict_planes(planes, network, *args, **kwargs))
        return labels.to(torch.float32).contiguous()


# ---------------------------------------------------------------------------------------------- volume files


def volume_items(
    folder: str | os.PathLike,
    suffixes: Sequence[str] = VOLUME_SUFFIXES,
    recursive: bool = False,
    exclude: Sequence[str] = ("_gt", "_4d"),
    skip_slices: bool = True,
    check_dims: bool = True,
    image_key: str = "image",
) -> list[dict[str, str]]:
    """``[{"image": path, "id": name}, ...]`` for the volume files of ``folder`` (sorted), skipping names that end
    with one of ``exclude`` before their suffix (ACDC's ``_gt`` labels and ``_4d`` cines).

    Args:
        skip_slices: skip SSL4MIS's 2-D slice files (``<volume>_slice_<k>.h5``), which public ACDC copies keep in the
            same ``data/`` folder as the volumes.
        check_dims: read each file's header (h5/npz: the ``image_key`` array; NIfTI: the image) and refuse one that
            is not a 3-D volume, naming it.

    Raises:
        FileNotFoundError: no such folder, or no volume in it.
        ValueError: a file holds no 3-D image (the message names the file and its shape).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"input folder not found: {folder}")
    wanted = tuple(s.lower() for s in suffixes)
    found = []
    for path in sorted(folder.rglob("*") if recursive else folder.iterdir()):
        if not path.is_file() or not path.name.lower().endswith(wanted):
            continue
        stem, _ = split_volume_name(path)
        if any(stem.endswith(e) for e in exclude) or (skip_slices and _SLICE_NAME.search(stem)):
            continue
        if check_dims:
            shape = _header_shape(path, image_key)
            if shape is not None and len(shape) != 3 and not (len(shape) == 4 and shape[-1] == 1):
                raise ValueError(
                    f"{path} holds a {len(shape)}-D image of shape {tuple(shape)}: inference needs 3-D volumes "
                    "(h5/npz (D, H, W), NIfTI (x, y, z)); 2-D slice files are training items."
                )
        found.append({"image": str(path.resolve()), "id": stem})
    if not found:
        raise FileNotFoundError(f"no volume ({', '.join(wanted)}) in {folder}")
    return found


_SLICE_NAME = re.compile(r"_slice_\d+$")


def _header_shape(path: Path, key: str) -> tuple[int, ...] | None:
    """The image's shape from the file header, without reading the pixels (None: unknown format or unreadable)."""
    name = path.name.lower()
    try:
        if name.endswith((".h5", ".hdf5")):
            import h5py

            with h5py.File(path, "r") as f:
                return tuple(f[key].shape) if key in f else None
        if name.endswith((".nii", ".nii.gz")):
            import nibabel as nib

            return tuple(nib.load(str(path)).shape)
    except Exception:  # unreadable: left to the loader, whose error names the file too
        return None
    return None


def volume_format(items: Sequence[Mapping[str, Any]], key: str = "image") -> str:
    """``"h5"`` or ``"nifti"``: the format of the volumes of ``items`` (all the same).

    Raises:
        ValueError: no items, an unknown suffix, or a mix of formats.
    """
    formats = set()
    for item in items:
        name = str(item[key]).lower()
        if name.endswith((".h5", ".hdf5")):
            formats.add("h5")
        elif name.endswith((".nii", ".nii.gz")):
            formats.add("nifti")
        else:
            raise ValueError(f"{item[key]} is neither an h5 nor a NIfTI volume.")
    if len(formats) != 1:
        raise ValueError(f"the volumes must all be h5 or all NIfTI, found {sorted(formats) or 'none'}.")
    return formats.pop()
