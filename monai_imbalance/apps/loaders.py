"""Deprecated: the loader transforms moved to :mod:`monai_imbalance.transforms` (``transforms/io.py``; issue 12:
transforms in one package).

Kept for one release: importing a name from here warns (``DeprecationWarning``) and gives the object of the new
module. ``dir()`` does not list the moved names, so that scans of the ``monai*`` modules (the bundle parser's
``ComponentLocator``) do not warn. New path: ``monai_imbalance.transforms.LoadArrayd`` etc.
"""

from __future__ import annotations

import importlib
import warnings
from typing import Any

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


def __getattr__(name: str) -> Any:
    if name not in _MOVED:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = _MOVED[name]
    warnings.warn(f"{__name__}.{name} is deprecated and will be removed in the next release: use "
                  f"{module}.{name}.", DeprecationWarning, stacklevel=2)
    return getattr(importlib.import_module(module), name)
