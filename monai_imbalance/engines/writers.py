"""Deprecated: the mask writer moved to :mod:`monai_imbalance.transforms` (issue 12: transforms in one package).

Kept for one release: importing a name from here warns (``DeprecationWarning``) and gives the object of the new
module. ``dir()`` does not list the moved names, so that scans of the ``monai*`` modules (the bundle parser's
``ComponentLocator``) do not warn. New path: ``monai_imbalance.transforms.SaveMaskLikeInputd``.
"""

from __future__ import annotations

import importlib
import warnings
from typing import Any

_MOVED = {
    "SaveMaskLikeInputd": "monai_imbalance.transforms",
}

__all__ = list(_MOVED)


def __getattr__(name: str) -> Any:
    if name not in _MOVED:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = _MOVED[name]
    warnings.warn(f"{__name__}.{name} is deprecated and will be removed in the next release: use "
                  f"{module}.{name}.", DeprecationWarning, stacklevel=2)
    return getattr(importlib.import_module(module), name)
