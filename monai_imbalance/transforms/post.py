"""Post-processing of network outputs that keeps a failed prediction visible.

MONAI's ``AsDiscrete`` turns a NaN probability into 0 (``threshold``) or into a class (``argmax``), so a network that
diverged during validation yields ordinary-looking masks, and metrics such as the OII then read "perfectly balanced"
or "nothing found". :class:`AsDiscreteKeepNaN` is ``AsDiscrete`` except that an image whose input holds a NaN or an
infinite value comes out all NaN: the metrics of :mod:`monai_imbalance.metrics` give NaN for it, leave it out of their
aggregate and count it (MONAI's ``DiceMetric`` gives NaN too and its mean leaves it out). The check runs on the
tensor's device without a host round trip.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any

import torch
from monai.config import NdarrayOrTensor
from monai.transforms import AsDiscrete, AsDiscreted, Transform

__all__ = ["AsDiscreteKeepNaN", "AsDiscreteKeepNaNd", "AsDiscreteKeepNaND", "AsDiscreteKeepNaNDict"]


def _nan_where_not_finite(raw: NdarrayOrTensor, discrete: NdarrayOrTensor) -> NdarrayOrTensor:
    raw_t = torch.as_tensor(raw)
    out = torch.as_tensor(discrete)
    if not out.is_floating_point():
        out = out.float()
    finite = torch.isfinite(raw_t).all().to(out.device) if raw_t.is_floating_point() else torch.ones((), dtype=bool)
    return torch.where(finite, out, torch.full_like(out, float("nan")))


class AsDiscreteKeepNaN(Transform):
    """``monai.transforms.AsDiscrete`` for one image (channel first), except that an image whose input holds NaN or
    inf comes out all NaN instead of a mask.

    Args:
        kwargs: as ``monai.transforms.AsDiscrete`` (``argmax``, ``to_onehot``, ``threshold``, ``rounding``, ...).

    Example::

        post = AsDiscreteKeepNaN(argmax=True)
        post(torch.tensor([[[0.2, float("nan")]], [[0.8, 0.1]]]))  # tensor([[[nan, nan]]])
    """

    backend = AsDiscrete.backend

    def __init__(self, **kwargs: Any) -> None:
        self.discrete = AsDiscrete(**kwargs)

    def __call__(self, img: NdarrayOrTensor, **kwargs: Any) -> NdarrayOrTensor:
        return _nan_where_not_finite(img, self.discrete(img, **kwargs))


class AsDiscreteKeepNaNd(AsDiscreted):
    """Dictionary version of :class:`AsDiscreteKeepNaN`: ``monai.transforms.AsDiscreted`` (same arguments), with
    each key's image all NaN where its input held NaN or inf.

    Example (bundle config)::

        - _target_: monai_imbalance.transforms.AsDiscreteKeepNaNd
          keys: pred
          argmax: true
    """

    def __call__(self, data: Mapping[Hashable, NdarrayOrTensor]) -> dict[Hashable, NdarrayOrTensor]:
        raw = {key: data[key] for key in self.key_iterator(dict(data))}
        d = super().__call__(data)
        for key, value in raw.items():
            d[key] = _nan_where_not_finite(value, d[key])
        return d


AsDiscreteKeepNaND = AsDiscreteKeepNaNDict = AsDiscreteKeepNaNd
