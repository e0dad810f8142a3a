"""Loader transforms for the dataset formats that MONAI's ``LoadImaged`` does not read as the datasets intend.

- :class:`LoadArrayd`: arrays in ``.npz`` / ``.npy`` / ``.h5`` files (Synapse ``train_npz`` slices with float
  labels, ``test_vol_h5`` volumes, ACDC HDF5 slices and volumes). Labels are checked to be whole numbers and cast
  to integers.
- :class:`LoadBinaryMaskd`: binary masks (Kvasir-SEG 3-channel noisy JPEGs, ISIC 0/255 PNGs, CVC-ClinicDB TIFFs)
  read as grey and thresholded at 127, through MONAI's own ``LoadImage`` so that the mask has the same axis order
  and metadata as the image loaded by ``LoadImaged``.
- :class:`ExtractSliced`: one 2-D slice of a loaded 3-D volume, for 2-D training on NIfTI volumes (ACDC raw form),
  keeping the in-plane spacing in the affine.
- :func:`split_volume_name`: a volume file's name without its suffixes (``case0001.npy.h5`` -> ``case0001``), as
  the volume writers and the volumetric metric name their outputs and cases.

Example (Synapse)::

    from monai.transforms import Compose
    from monai_imbalance.transforms import LoadArrayd
    load = Compose([LoadArrayd(keys=["image", "label"])])   # npz slices or h5 volumes, channel first
"""

from __future__ import annotations

import os
from collections.abc import Hashable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.data.image_reader import PILReader
from monai.transforms import LoadImage, MapTransform

from monai_imbalance.utils import validate_label

__all__ = ["LoadArrayd", "LoadArrayD", "LoadArrayDict", "LoadBinaryMaskd", "LoadBinaryMaskD", "LoadBinaryMaskDict",
           "ExtractSliced", "ExtractSliceD", "ExtractSliceDict", "read_array", "pil_to_grey", "split_volume_name"]

#: volume file suffixes, longest first (``.npy.h5``: TransUNet's Synapse test volumes)
_VOLUME_NAME_SUFFIXES = (".npy.h5", ".nii.gz", ".nii", ".h5", ".hdf5")


def split_volume_name(path: str | os.PathLike) -> tuple[str, str]:
    """``(name without the volume suffixes, suffixes)``: ``case0001.npy.h5`` -> ``("case0001", ".npy.h5")``; other
    files: ``(stem, suffix)``."""
    path = Path(path)
    name = path.name
    for suffix in _VOLUME_NAME_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)], name[-len(suffix):]
    return path.stem, path.suffix


def read_array(path: str | os.PathLike, name: str) -> np.ndarray:
    """Array ``name`` of a ``.npz`` or ``.h5``/``.hdf5`` file, or the array of a ``.npy`` file.

    Raises:
        FileNotFoundError: no such file. ValueError: the file has no such array or cannot be read.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"array file not found: {path}")
    lower = path.lower()
    try:
        if lower.endswith(".npy"):
            return np.load(path, allow_pickle=False)
        if lower.endswith(".npz"):
            with np.load(path, allow_pickle=False) as data:
                if name not in data.files:
                    raise ValueError(f"{path} has no array named {name!r} (arrays: {data.files}).")
                return data[name]
        if lower.endswith((".h5", ".hdf5")):
            import h5py

            with h5py.File(path, "r") as f:
                if name not in f:
                    raise ValueError(f"{path} has no dataset named {name!r} (datasets: {list(f.keys())}).")
                return f[name][()]
    except ValueError:
        raise
    except Exception as err:
        raise ValueError(f"could not read {path}: {err}") from err
    raise ValueError(f"unsupported array file {path}: expected .npz, .npy, .h5 or .hdf5")


def _affine(spacing: Sequence[float] | None, ndim: int) -> torch.Tensor:
    affine = torch.eye(ndim + 1, dtype=torch.float64)
    if spacing is not None and len(spacing) >= ndim:
        for axis, size in enumerate(list(spacing)[-ndim:]):
            affine[axis, axis] = float(size)
    return affine


class LoadArrayd(MapTransform):
    """Load ``d[key]`` (a ``.npz``/``.npy``/``.h5`` path) as a channel-first ``MetaTensor``.

    The array read is the one named like the key (``image`` or ``label``, TransUNet's and SSL4MIS's names) unless
    ``array_names`` says otherwise, so a datalist item ``{"image": f, "label": f}`` pointing twice at one file
    gives its image and its label. Label keys are checked to hold whole numbers (Synapse stores labels as float)
    and cast to ``label_dtype``; other keys are cast to ``image_dtype``.

    Args:
        keys: keys to load.
        label_keys: which of ``keys`` are labels.
        array_names: key -> array name in the file.
        ensure_channel_first: add a leading channel axis (arrays in these files have none).
        spacing_key: item key holding the voxel spacing in array axis order (items of
            :func:`monai_imbalance.apps.synapse.synapse_items` converted from NIfTI carry it); the last ``ndim``
            values go into the affine. Without it the affine is the identity.
        image_dtype, label_dtype: output dtypes.
        allow_missing_keys: don't raise for missing keys.

    Raises:
        FileNotFoundError, ValueError: missing file or array, unreadable file, non-integer label values.
    """

    def __init__(
        self,
        keys: KeysCollection,
        label_keys: Sequence[Hashable] = ("label",),
        array_names: Mapping[Hashable, str] | None = None,
        ensure_channel_first: bool = True,
        spacing_key: str | None = "spacing",
        image_dtype: Any = np.float32,
        label_dtype: Any = np.int64,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.label_keys = set(label_keys)
        self.array_names = dict(array_names or {})
        self.ensure_channel_first = ensure_channel_first
        self.spacing_key = spacing_key
        self.image_dtype = image_dtype
        self.label_dtype = label_dtype

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        spacing = d.get(self.spacing_key) if self.spacing_key else None
        for key in self.key_iterator(d):
            path = os.fspath(d[key])
            arr = read_array(path, self.array_names.get(key, str(key)))
            if key in self.label_keys:
                arr = validate_label(arr, name=str(key), source=path).astype(self.label_dtype)
            else:
                arr = np.asarray(arr, dtype=self.image_dtype)
            meta = {"filename_or_obj": path, "spatial_shape": np.asarray(arr.shape),
                    "original_channel_dim": 0 if self.ensure_channel_first else "no_channel"}
            affine = _affine(spacing, arr.ndim)
            meta["original_affine"] = affine.clone()
            d[key] = MetaTensor(arr[None] if self.ensure_channel_first else arr, affine=affine, meta=meta)
        return d


def pil_to_grey(image: Any) -> Any:
    """PIL converter for masks: colour and palette masks become 8-bit grey (``"L"``), 1-bit masks stay 0/1."""
    return image if image.mode in ("L", "1", "I", "I;16", "F") else image.convert("L")


class LoadBinaryMaskd(MapTransform):
    """Load binary masks as ``uint8`` {0, 1}, channel first, read as grey and thresholded.

    PIL formats (JPEG, PNG, TIFF, BMP) go through MONAI's ``LoadImage`` with a ``PILReader`` that converts colour
    masks to grey, so the result has the axis order and metadata that ``LoadImaged`` gives the matching image;
    other formats (NIfTI, ...) through MONAI's default readers. A mask whose maximum exceeds 1 (0/255 PNG, noisy
    JPEG) becomes ``value > threshold``; a 0/1 mask becomes ``value > 0``.

    Args:
        keys: mask keys.
        threshold: grey level above which a pixel is foreground (127 reads Kvasir-SEG's JPEG masks as intended).
        allow_missing_keys: don't raise for missing keys.
    """

    _PIL_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")

    def __init__(self, keys: KeysCollection, threshold: float = 127, allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)
        self.threshold = threshold
        self.pil_loader = LoadImage(reader=PILReader(converter=pil_to_grey), image_only=True,
                                    ensure_channel_first=True)
        self.default_loader = LoadImage(image_only=True, ensure_channel_first=True)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            path = os.fspath(d[key])
            loader = self.pil_loader if path.lower().endswith(self._PIL_SUFFIXES) else self.default_loader
            mask = loader(path)
            if mask.shape[0] != 1:  # grey+alpha or colour read by a non-PIL reader: keep the first channel
                mask = mask[:1]
            cut = self.threshold if float(mask.max()) > 1 else 0
            out = (mask > cut).to(torch.uint8)
            d[key] = out if isinstance(out, MetaTensor) else MetaTensor(out, meta=getattr(mask, "meta", {}))
        return d


class ExtractSliced(MapTransform):
    """Replace channel-first volumes ``(C, H, W, D)`` by their slice ``d[slice_key]`` along spatial ``axis``.

    The 2-D affine keeps the in-plane rows and columns of the volume's affine (so in-plane spacing survives) and
    moves the origin to the slice; ``meta["slice_index"]`` records ``k``.

    Args:
        keys: volume keys (all sliced at the same index).
        slice_key: item key holding the 0-based slice index.
        axis: spatial axis to slice (``-1`` = the last, the through-plane axis of ACDC and BTCV NIfTI files).
        allow_missing_keys: don't raise for missing keys.
    """

    def __init__(
        self, keys: KeysCollection, slice_key: str = "slice", axis: int = -1, allow_missing_keys: bool = False
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.slice_key = slice_key
        self.axis = axis

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        if self.slice_key not in d:
            raise KeyError(f"item has no {self.slice_key!r} key to select a slice.")
        k = int(d[self.slice_key])
        for key in self.key_iterator(d):
            vol = d[key]
            if not isinstance(vol, torch.Tensor):
                vol = MetaTensor(torch.as_tensor(np.asarray(vol)))
            spatial = vol.ndim - 1
            if spatial != 3:
                raise ValueError(f"{key}: expected a channel-first 3-D volume, got shape {tuple(vol.shape)}.")
            axis = self.axis % spatial
            if not 0 <= k < vol.shape[1 + axis]:
                raise ValueError(f"{key}: slice {k} outside 0..{vol.shape[1 + axis] - 1} along axis {axis}.")
            plane = vol.as_tensor() if isinstance(vol, MetaTensor) else vol
            plane = plane.select(1 + axis, k)
            affine3 = vol.affine.to(torch.float64) if isinstance(vol, MetaTensor) else torch.eye(4, dtype=torch.float64)
            keep = [i for i in range(3) if i != axis]
            affine2 = torch.eye(3, dtype=torch.float64)
            affine2[:2, :2] = affine3[keep][:, keep]
            origin = affine3[:3, 3] + k * affine3[:3, axis]
            affine2[:2, 2] = origin[keep]
            meta = dict(vol.meta) if isinstance(vol, MetaTensor) else {}
            meta.pop("affine", None)
            meta.update(slice_index=k, spatial_shape=np.asarray(plane.shape[1:]), original_affine=affine2.clone())
            d[key] = MetaTensor(plane, affine=affine2, meta=meta)
        return d


LoadArrayD = LoadArrayDict = LoadArrayd
LoadBinaryMaskD = LoadBinaryMaskDict = LoadBinaryMaskd
ExtractSliceD = ExtractSliceDict = ExtractSliced
