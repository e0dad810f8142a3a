"""Write predicted masks in the format of each input image (a bundle's inference output).

MONAI's ``SaveImaged`` writes every item with one fixed extension. :class:`SaveMaskLikeInputd` picks the
extension of each item's source file (``.jpg`` for Kvasir-SEG and ISIC inputs, ``.tif`` for CVC-ClinicDB, ``.png``
...) unless one is given, and writes the binary mask as 8-bit grey 0/255 through MONAI's ``PILWriter``, so the
axes follow the convention of the ``PILReader``/``LoadImaged`` that read the image: invert the resize first
(``Invertd``) and the file has the input's width and height.
"""

from __future__ import annotations

import os
from collections.abc import Hashable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from monai.config import KeysCollection
from monai.transforms import MapTransform

__all__ = ["SaveMaskLikeInputd"]


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
