"""Deprecated: the loader transforms moved to :mod:`monai_imbalance.transforms` (``transforms/io.py``; issue 12:
transforms in one package).

Kept for one release: importing a name from here warns (``DeprecationWarning``) and gives the object of the new
module. ``dir()`` does not list the moved names, so that scans of the ``monai*`` modules (the bundle parser's
``ComponentLocator``) do not warn. New path: ``monai_imbalance.transforms.LoadArrayd`` etc.
"""

from __future__ import annotations

from monai_imbalance.utils import moved_names

_MOVED = {
    "LoadArrayd": "monai_imbalance.transforms",
    "LoadArrayD": "monai_imbalance.transforms",
    "LoadArrayDict": "monai_imbalance.transforms",
    "LoadBinaryMaskd": "monai_imbalance.transforms",
    "LoadBinaryMaskD": "monai_imbalance.transforms",
    "LoadBinaryMaskDict": "monai_imbalance.transforms",
    "ExtractSliced": "monai_imbalance.transforms",
    "ExtractSliceD": "monai_imbalance.transforms",
    "ExtractSliceDict": "monai_imbalance.transforms",
    "read_array": "monai_imbalance.transforms",
    "pil_to_grey": "monai_imbalance.transforms",
}

__all__ = list(_MOVED)


__getattr__ = moved_names(__name__, _MOVED)
