"""Builders shared by the transform tests: the MAC paper's Algorithm 1 and a brute-force window count as references,
coded images whose crops tell where they came from, synthetic label maps and random mask cases.

The fixtures are session-scoped (they return functions or strategies, no state), so Hypothesis tests may use them.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from hypothesis import strategies as st
from monai.data import MetaTensor

from monai_imbalance.apps.synthetic import make_synthetic_pair


def _algorithm_1(mask, roi, stride, rho):
    """GETMACCOORDINATES of the MAC paper, generalised to n-D: a plain loop over windows, numpy slicing."""
    starts = [range(0, n - r + 1, s) for n, r, s in zip(mask.shape, roi, stride)]
    coordinates = []
    for corner in itertools.product(*starts):
        crop = mask[tuple(slice(c, c + r) for c, r in zip(corner, roi))]
        if np.sum(crop != 0) / crop.size >= rho:
            coordinates.append(corner)
    return np.asarray(coordinates, dtype=np.int64).reshape(-1, mask.ndim)


def _brute_force_counts(mask, roi, stride):
    """Non-zero pixels of every window of Algorithm 1's start grid, one window at a time."""
    starts = [range(0, n - r + 1, s) for n, r, s in zip(mask.shape, roi, stride)]
    out = np.zeros([len(s) for s in starts], dtype=np.int64)
    for index in itertools.product(*[range(len(s)) for s in starts]):
        window = tuple(slice(s[i], s[i] + r) for s, i, r in zip(starts, index, roi))
        out[index] = np.count_nonzero(mask[window])
    return out


def _coded_image(shape, channels=1):
    """Image whose every pixel holds its own flat index: a crop tells where it came from."""
    code = np.arange(math.prod(shape), dtype=np.float32).reshape(shape)
    return np.stack([code + 0.5 * c for c in range(channels)])


def _start_of(crop, shape):
    """Start corner of a crop of a coded image."""
    return tuple(int(v) for v in np.unravel_index(int(np.asarray(crop)[(0,) * crop.ndim]), shape))


def _share(label_crop, value=None):
    """Share of the crop's pixels that are foreground (``value=None``) or equal to ``value``."""
    arr = np.asarray(label_crop)
    hits = np.count_nonzero(arr) if value is None else np.count_nonzero(arr == value)
    return hits / arr.size


def _meta_pair(shape, seed, channels=1):
    """Synthetic image/label pair as MetaTensors with an anisotropic, shifted affine (for inversion tests)."""
    pair = make_synthetic_pair(shape, fg_fraction=0.08, num_objects=2, channels=channels, seed=seed)
    affine = torch.eye(len(shape) + 1, dtype=torch.float64)
    affine[: len(shape), : len(shape)] *= 0.8
    affine[: len(shape), -1] = torch.arange(len(shape)) + 3.0
    return {k: MetaTensor(v, affine=affine, meta={"filename_or_obj": f"{k}.nii"}) for k, v in pair.items()}


def _square_label(shape, box, value=1, dtype=np.uint8):
    """Channel-first label ``(1, *shape)`` of zeros with ``value`` on the box (a tuple of slices)."""
    label = np.zeros((1, *shape), dtype=dtype)
    label[(0, *box)] = value
    return label


@st.composite
def _mask_cases(draw, max_side=12, with_rho=True, values=3, dtypes=(np.uint8, np.int16, np.float32, bool)):
    """A random 2-D or 3-D label-like mask (values ``0..values-1``, random density), a ROI that fits, a stride and,
    with ``with_rho``, a share threshold: anywhere in [0, 1] or exactly a reachable share (the inclusive bound)."""
    ndim = draw(st.sampled_from([2, 3]))
    shape = tuple(draw(st.integers(1, max_side if ndim == 2 else 8)) for _ in range(ndim))
    roi = tuple(draw(st.integers(1, n)) for n in shape)
    stride = tuple(draw(st.integers(1, 5)) for _ in range(ndim))
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    density = draw(st.floats(0.0, 1.0))
    mask = (rng.integers(0, values, shape) * (rng.random(shape) < density)).astype(draw(st.sampled_from(dtypes)))
    if not with_rho:
        return mask, roi, stride
    volume = math.prod(roi)
    rho = draw(st.one_of(st.floats(0.0, 1.0), st.integers(0, volume).map(lambda k: k / volume)))
    return mask, roi, stride, rho


@pytest.fixture(scope="session")
def algorithm_1():
    return _algorithm_1


@pytest.fixture(scope="session")
def brute_force_counts():
    return _brute_force_counts


@pytest.fixture(scope="session")
def coded_image():
    return _coded_image


@pytest.fixture(scope="session")
def start_of():
    return _start_of


@pytest.fixture(scope="session")
def share():
    return _share


@pytest.fixture(scope="session")
def meta_pair():
    return _meta_pair


@pytest.fixture(scope="session")
def square_label():
    return _square_label


@pytest.fixture(scope="session")
def mask_cases():
    """Strategy factory: ``data.draw(mask_cases(max_side=..., with_rho=...))`` inside a ``@given(data=st.data())``
    test."""
    return _mask_cases
