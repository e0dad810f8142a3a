"""Builders shared by the loss tests: random logits and labels, one-hot targets, synthetic label batches and the
hand-checkable 4x4 binary case of the DIBE-family tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import pytest
import torch

from monai_imbalance.apps.synthetic import make_synthetic_pair

# a 4x4 binary case with every branch of Eq. 16: probabilities (no activation) and labels
P44 = [[0.9, 0.6, 0.3, 0.05], [0.8, 0.45, 0.7, 0.1], [0.2, 0.55, 0.95, 0.4], [0.02, 0.3, 0.65, 0.85]]
Y44 = [[1, 1, 1, 0], [1, 1, 0, 0], [0, 0, 1, 0], [0, 0, 1, 1]]


class Case44(NamedTuple):
    """The 4x4 case: ``probs``, ``labels`` ``(1, 1, 4, 4)`` float64, the ``(p, y)`` pairs, the soft counts by hand."""

    probs: torch.Tensor
    labels: torch.Tensor
    pairs: list[tuple[float, int]]
    tp: float
    fp: float
    fn: float


@pytest.fixture
def case44() -> Case44:
    pairs = [(p, y) for rp, ry in zip(P44, Y44) for p, y in zip(rp, ry)]
    tp, fp, fn = 5.5, 2.32, 2.5  # sum p y, sum p (1 - y), sum (1 - p) y, by hand
    assert tp == pytest.approx(sum(p * y for p, y in pairs))
    assert fp == pytest.approx(sum(p * (1 - y) for p, y in pairs))
    assert fn == pytest.approx(sum((1 - p) * y for p, y in pairs))
    probs = torch.tensor(P44, dtype=torch.float64)[None, None]
    labels = torch.tensor(Y44, dtype=torch.float64)[None, None]
    return Case44(probs, labels, pairs, tp, fp, fn)


def _onehot(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    return torch.nn.functional.one_hot(labels[:, 0].long(), num_classes).movedim(-1, 1).to(labels.dtype)


@pytest.fixture
def onehot() -> Callable[[torch.Tensor, int], torch.Tensor]:
    """``onehot(labels, num_classes)``: class indices ``(B, 1, *spatial)`` -> one-hot ``(B, C, *spatial)``, same dtype
    (float for float labels), built with torch's own ``one_hot``, independently of MONAI's."""
    return _onehot


@pytest.fixture
def random_case() -> Callable[..., tuple[torch.Tensor, torch.Tensor]]:
    """``random_case(batch=2, channels=3, spatial=(6, 6), seed=0, scale=1.0, dtype=float32, multilabel=False)``:
    logits ``(B, C, *spatial)`` and labels from one seeded generator: class indices ``(B, 1, *spatial)`` (float, as
    MONAI's loaders give them), or independent binary labels ``(B, C, *spatial)`` with ``multilabel``."""

    def make(
        batch: int = 2,
        channels: int = 3,
        spatial: tuple[int, ...] = (6, 6),
        seed: int = 0,
        scale: float = 1.0,
        dtype: torch.dtype = torch.float32,
        multilabel: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        gen = torch.Generator().manual_seed(seed)
        logits = torch.randn(batch, channels, *spatial, generator=gen, dtype=dtype) * scale
        if multilabel:
            return logits, (torch.rand(batch, channels, *spatial, generator=gen) > 0.6).to(dtype)
        return logits, torch.randint(0, channels, (batch, 1, *spatial), generator=gen).to(dtype)

    return make


@pytest.fixture
def synthetic_batch() -> Callable[..., tuple[torch.Tensor, torch.Tensor]]:
    """``synthetic_batch(shape=(24, 20), num_classes=3, batch=2, seed=0, fg_fraction=0.1)``: random logits and a
    batch of synthetic label maps ``(B, 1, *shape)`` (int64) with compact objects, as the pixel and boundary losses
    need (random labels have no objects to dilate or contours to measure)."""

    def make(
        shape: tuple[int, ...] = (24, 20),
        num_classes: int = 3,
        batch: int = 2,
        seed: int = 0,
        fg_fraction: float = 0.1,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        labels = [
            make_synthetic_pair(shape, fg_fraction=fg_fraction, num_classes=num_classes, seed=seed + i)["label"]
            for i in range(batch)
        ]
        target = torch.as_tensor(np.stack(labels)).long()
        logits = torch.randn(batch, num_classes, *shape, generator=torch.Generator().manual_seed(seed))
        return logits, target

    return make


@pytest.fixture
def host_reads(monkeypatch) -> list[str]:
    """The list of every read of a tensor's value back to Python (``bool``, ``item``, ``tolist``, ``float``, ``int``,
    index) made while the test runs: each is a host sync on a GPU. Clear it before the part to count."""
    reads: list[str] = []
    for name in ("__bool__", "item", "tolist", "__float__", "__int__", "__index__"):
        original = getattr(torch.Tensor, name)

        def counted(self, *args, _original=original, _name=name, **kwargs):
            reads.append(_name)
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, counted)
    return reads
