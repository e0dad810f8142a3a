"""Deprecated: the mask writer moved to :mod:`monai_imbalance.transforms` (issue 12: transforms in one package).

Kept for one release: importing a name from here warns (``DeprecationWarning``) and gives the object of the new
module. ``dir()`` does not list the moved names, so that scans of the ``monai*`` modules (the bundle parser's
``ComponentLocator``) do not warn. New path: ``monai_imbalance.transforms.SaveMaskLikeInputd``.
"""

from __future__ import annotations

from monai_imbalance.utils import moved_names

_MOVED = {
    "SaveMaskLikeInputd": "monai_imbalance.transforms",
}

__all__ = list(_MOVED)


__getattr__ = moved_names(__name__, _MOVED)
