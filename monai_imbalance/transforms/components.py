"""Connected-component labels of a segmentation label: the instances that :class:`monai_imbalance.losses.BlobLoss`
computes one loss for.

:class:`ConnectedComponents` is deterministic, so its dictionary form :class:`ConnectedComponentsd` can run before
the first random transform and ``CacheDataset`` caches its output (MONAI's ``FgBgToIndicesd`` pattern), or after the
random crop, where it labels the crop itself:

- **cached, then cropped**: list the component key with the image and label in the crop and spatial transforms
  (``mode="nearest"`` in any resampling). An object that the crop cuts in two keeps one id, so the loss treats its
  two pieces as one object (the object of the whole image);
- **after the crop** (what the bundles do, ``--loss blob_<name>``): the components of the crop the loss sees; an
  object cut in two by the crop is two components. Labelling a 224x224 crop costs well under a millisecond
  (``connected-components-3d``), in the data loader's workers.

Both are valid inputs of :class:`~monai_imbalance.losses.BlobLoss`, which reads an id as one object whether or not
its pixels touch.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from monai.config import KeysCollection
from monai.transforms import Transform
from monai.utils import TransformBackends, convert_to_dst_type

from monai_imbalance.transforms.utils import LabelToKeyd
from monai_imbalance.utils import label_components, validate_label

__all__ = [
    "ConnectedComponents",
    "ConnectedComponentsd",
    "ConnectedComponentsD",
    "ConnectedComponentsDict",
    "connected_components",
]


def connected_components(label: Any, connectivity: int | None = None) -> np.ndarray:
    """Component ids of a channel-first label ``(C, *spatial)`` (2-D or 3-D), ``int32`` numpy of the same shape.

    One channel (a class-index map or a binary mask): the connected components of every non-zero class in one pass,
    numbered ``1..n`` over all classes (two touching objects of different classes are two components; every id lies
    in one class). Several channels (one-hot or multi-label): each channel's non-zero pixels labelled on their own,
    ``1..n_c`` per channel. 0 is the background. ``connectivity``: 1 = face neighbours, None (default) = full (8 in
    2-D, 26 in 3-D), as ``scipy.ndimage.generate_binary_structure``.

    Raises:
        ValueError: a label that is not channel-first 2-D or 3-D, values that are not class indices (NaN, fractions,
            negatives: the package's label message), a bad ``connectivity``.
    """
    shape = tuple(getattr(label, "shape", ()))
    if len(shape) not in (3, 4):
        raise ValueError(f"label must be channel-first (C, H, W) or (C, H, W, D), got shape {shape}.")
    arr = validate_label(label, name="label")
    out = np.zeros(arr.shape, np.int32)
    for c in range(arr.shape[0]):
        out[c] = label_components(arr[c], connectivity)[0]
    return out


class ConnectedComponents(Transform):
    """Connected-component ids of a label (see :func:`connected_components`), for
    :class:`monai_imbalance.losses.BlobLoss`.

    Args:
        connectivity: 1 = face neighbours, None (default) = full connectivity (8 in 2-D, 26 in 3-D).

    Input: a label ``(C, H, W[, D])`` of class indices (numpy, torch or MetaTensor; whole-valued floats accepted).
    Output: ``int32`` ids of the same shape and type; a MetaTensor keeps its metadata, so later spatial transforms
    and ``Invertd`` treat it like the label.

    Example:
        >>> import numpy as np
        >>> label = np.zeros((1, 4, 6), dtype=np.uint8); label[0, 1, 1] = 1; label[0, 1, 4:6] = 2; label[0, 3, 4] = 2
        >>> ConnectedComponents()(label)[0]
        array([[0, 0, 0, 0, 0, 0],
               [0, 1, 0, 0, 2, 2],
               [0, 0, 0, 0, 0, 0],
               [0, 0, 0, 0, 3, 0]], dtype=int32)
    """

    backend = [TransformBackends.NUMPY, TransformBackends.TORCH]

    def __init__(self, connectivity: int | None = None) -> None:
        self.connectivity = connectivity

    def __call__(self, label: Any) -> Any:
        ids = connected_components(label, self.connectivity)
        result, *_ = convert_to_dst_type(ids, label, dtype=torch.int32 if isinstance(label, torch.Tensor) else np.int32)
        return result


class ConnectedComponentsd(LabelToKeyd):
    """Dictionary form of :class:`ConnectedComponents`: the ids of ``d[key]`` go to ``d[key + postfix]``
    (``"label_components"`` by default), what :class:`~monai_imbalance.losses.BlobLoss` takes as ``components``.

    Args:
        keys: label keys.
        connectivity: see :class:`ConnectedComponents`.
        postfix: appended to each key to name its components.
        allow_missing_keys: don't raise for a missing key.
    """

    backend = ConnectedComponents.backend

    def __init__(
        self,
        keys: KeysCollection,
        connectivity: int | None = None,
        postfix: str = "_components",
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, ConnectedComponents(connectivity), postfix, allow_missing_keys)


ConnectedComponentsD = ConnectedComponentsDict = ConnectedComponentsd
