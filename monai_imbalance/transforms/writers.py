"""Writers of predictions in the format of each input (a bundle's inference output).

- :class:`SaveMaskLikeInputd`: binary masks of 2-D images. MONAI's ``SaveImaged`` writes every item with one fixed
  extension; this writer picks the extension of each item's source file (``.jpg`` for Kvasir-SEG and ISIC inputs,
  ``.tif`` for CVC-ClinicDB, ``.png`` ...) unless one is given, and writes the binary mask as 8-bit grey 0/255
  through MONAI's ``PILWriter``, so the axes follow the convention of the ``PILReader``/``LoadImaged`` that read the
  image: invert the resize first (``Invertd``) and the file has the input's width and height.
- :class:`SaveLabelVolumeLikeInputd`: label volumes, as NIfTI with the input's affine and header or as h5 with a
  ``label`` dataset of the input's shape.
"""

from __future__ import annotations

import os
from collections.abc import Hashable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from monai.config import KeysCollection
from monai.transforms import MapTransform

from .io import split_volume_name

__all__ = ["SaveMaskLikeInputd", "SaveMaskLikeInputD", "SaveMaskLikeInputDict", "SaveLabelVolumeLikeInputd",
           "SaveLabelVolumeLikeInputD", "SaveLabelVolumeLikeInputDict"]


class SaveMaskLikeInputd(MapTransform):
    """Save binary masks (``(1, *spatial)``, values 0/1) as 0/255 images named after their source image.

    The output file is ``output_dir/<source stem><output_postfix><ext>`` with ``ext`` the source's extension (or
    ``output_ext``). ``d[key + "_path"]`` receives the written path.

    Args:
        keys: mask keys (e.g. ``"pred"`` after ``AsDiscreted`` and ``Invertd``).
        output_dir: folder of the written masks (created).
        meta_source_key: key whose ``MetaTensor`` metadata holds the source file name (default: the mask itself,
            which carries the image's metadata after ``Invertd``).
        output_ext: fixed extension (``".png"``) instead of the source's.
        output_postfix: appended to the source stem (``"_mask"``; ``""`` keeps the name).
        allow_missing_keys: don't raise for missing keys.

    Raises:
        ValueError: a mask with more than one channel, or no source file name in the metadata.
    """

    def __init__(
        self,
        keys: KeysCollection,
        output_dir: str | os.PathLike,
        meta_source_key: str | None = None,
        output_ext: str | None = None,
        output_postfix: str = "_mask",
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.output_dir = Path(output_dir)
        self.meta_source_key = meta_source_key
        self.output_ext = None if not output_ext else (output_ext if output_ext.startswith(".") else "." + output_ext)
        self.output_postfix = output_postfix

    def _source(self, d: Mapping[Hashable, Any], key: Hashable) -> Path:
        holder = d[self.meta_source_key] if self.meta_source_key else d[key]
        meta = getattr(holder, "meta", None) or {}
        source = meta.get("filename_or_obj")
        if not source:
            raise ValueError(f"{key!r}: no source file name ('filename_or_obj') in the metadata to name the mask.")
        return Path(str(source))

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        from monai.data import PILWriter

        d = dict(data)
        self.output_dir.mkdir(parents=True, exist_ok=True)
        for key in self.key_iterator(d):
            mask = d[key]
            if mask.shape[0] != 1:
                raise ValueError(f"{key!r} must be a one-channel mask (1, *spatial), got shape {tuple(mask.shape)}.")
            source = self._source(d, key)
            ext = self.output_ext or source.suffix or ".png"
            path = self.output_dir / f"{source.stem}{self.output_postfix}{ext}"
            array = np.asarray(mask.detach().cpu() if hasattr(mask, "detach") else mask)
            array = np.where(array > 0.5, 255, 0).astype(np.uint8)
            writer = PILWriter(output_dtype=np.uint8, scale=None)
            writer.set_data_array(array, channel_dim=0, squeeze_end_dims=True)
            writer.set_metadata({}, resample=False)
            kwargs = {"quality": 100} if ext.lower() in (".jpg", ".jpeg") else {}
            writer.write(str(path), verbose=False, **kwargs)
            d[f"{key}_path"] = str(path)
        return d


class SaveLabelVolumeLikeInputd(MapTransform):
    """Write predicted label volumes ``(1, *spatial)`` in the format and geometry of each input volume.

    NIfTI input (``.nii``/``.nii.gz``): a NIfTI file with the input's affine and header (data type ``dtype``), the
    array in the input's voxel order (as MONAI's ``NibabelReader`` reads it). h5 input: an h5 file with one dataset
    ``h5_key`` of the input's shape. The file is ``output_dir/<input name><output_postfix><input suffixes>``, and
    ``d[key + "_path"]`` receives its path.

    Args:
        keys: label volume keys (``"pred"``).
        output_dir: folder of the written files (created).
        meta_source_key: key whose metadata holds the input file name (``filename_or_obj``).
        output_postfix: appended to the input's name.
        h5_key: dataset name in written h5 files.
        image_key: h5 inputs: the input dataset whose shape the output must have.
        dtype: stored data type.
        allow_missing_keys: don't raise for missing keys.

    Raises:
        ValueError: not one channel, no source file name, an unsupported suffix, or a shape that is not the input's.
    """

    def __init__(
        self,
        keys: KeysCollection,
        output_dir: str | os.PathLike,
        meta_source_key: str = "image",
        output_postfix: str = "_pred",
        h5_key: str = "label",
        image_key: str = "image",
        dtype: Any = np.uint8,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.output_dir = Path(output_dir)
        self.meta_source_key = meta_source_key
        self.output_postfix = output_postfix
        self.h5_key = h5_key
        self.image_key = image_key
        self.dtype = np.dtype(dtype)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        self.output_dir.mkdir(parents=True, exist_ok=True)
        for key in self.key_iterator(d):
            volume = d[key]
            if volume.shape[0] != 1:
                raise ValueError(f"{key!r} must be a one-channel label volume, got shape {tuple(volume.shape)}.")
            meta = getattr(d.get(self.meta_source_key), "meta", None) or getattr(volume, "meta", None) or {}
            source = meta.get("filename_or_obj")
            if not source:
                raise ValueError(f"{key!r}: no source file name ('filename_or_obj') to write the volume like.")
            source = Path(str(source))
            stem, suffix = split_volume_name(source)
            array = np.asarray(volume.detach().cpu() if hasattr(volume, "detach") else volume)[0]
            array = np.rint(array).astype(self.dtype)
            path = self.output_dir / f"{stem}{self.output_postfix}{suffix}"
            if suffix.lower() in (".nii", ".nii.gz"):
                self._write_nifti(source, path, array)
            elif suffix.lower() in (".h5", ".hdf5", ".npy.h5"):
                self._write_h5(source, path, array)
            else:
                raise ValueError(f"cannot write a volume like {source.name}: expected a NIfTI or h5 input.")
            d[f"{key}_path"] = str(path)
        return d

    @staticmethod
    def _write_nifti(source: Path, path: Path, array: np.ndarray) -> None:
        # not MONAI's SaveImage/NibabelWriter: it sets the qform and sform codes to 1 whatever the input's (a default
        # nibabel file has 0 and 2), so its file equals this one only for inputs whose codes are both 1
        import nibabel as nib

        reference = nib.load(str(source))
        if tuple(reference.shape[:3]) != array.shape:
            raise ValueError(f"prediction shape {array.shape} differs from {source.name}'s {tuple(reference.shape)}.")
        header = reference.header.copy()
        header.set_data_dtype(array.dtype)
        image = nib.Nifti1Image(array, reference.affine, header=header)
        image.header.set_slope_inter(1.0, 0.0)
        nib.save(image, str(path))

    def _write_h5(self, source: Path, path: Path, array: np.ndarray) -> None:
        import h5py

        with h5py.File(source, "r") as f:
            shape = tuple(f[self.image_key].shape) if self.image_key in f else None
        if shape is not None and shape != array.shape:
            raise ValueError(f"prediction shape {array.shape} differs from {source.name}'s {self.image_key} {shape}.")
        tmp = path.with_name(path.name + ".tmp")
        with h5py.File(tmp, "w") as f:
            f.create_dataset(self.h5_key, data=array, compression="gzip")
        os.replace(tmp, path)


SaveMaskLikeInputD = SaveMaskLikeInputDict = SaveMaskLikeInputd
SaveLabelVolumeLikeInputD = SaveLabelVolumeLikeInputDict = SaveLabelVolumeLikeInputd
