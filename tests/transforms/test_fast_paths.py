"""The fast paths of the precompute transforms against their plain definitions on random inputs: ``edt`` against
``scipy.ndimage.distance_transform_edt``, the two-sided transform against two transforms, the binary DBCE map of
one two-sided transform against the per-class definition, and every map of a float32 / int64 / bool / torch /
MetaTensor label against the map of the same values as uint8."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.data import MetaTensor
from scipy import ndimage

from monai_imbalance.transforms import (
    BorderWeightMap,
    ConnectedComponents,
    DilationWeightMap,
    MaskAwareWindows,
    ProbabilisticCropCenters,
    SignedDistanceMap,
    UncertaintyWeightMap,
)
from monai_imbalance.transforms import weights as weights_module
from monai_imbalance.transforms.utils import _edt, euclidean_distance, two_sided_distance
from monai_imbalance.transforms.weights import dilation_weight_map


def random_mask(shape, density, seed):
    rng = np.random.default_rng(seed)
    smooth = ndimage.gaussian_filter(rng.random(shape), 1.5)
    mask = smooth > np.quantile(smooth, 1 - density)
    mask |= rng.random(shape) < density / 10  # isolated pixels: many small objects
    return mask


SHAPES_SPACINGS = [((23,), None), ((23,), (0.7,)), ((31, 27), None), ((31, 27), (0.6, 1.7)),
                   ((14, 12, 9), None), ((14, 12, 9), (2.5, 0.8, 1.1))]


@pytest.mark.parametrize("shape, spacing", SHAPES_SPACINGS)
@pytest.mark.parametrize("density", [0.02, 0.3, 0.9])
@pytest.mark.parametrize("layout", ["C", "F", "strided"])
def test_edt_equals_scipy(shape, spacing, density, layout):
    mask = random_mask(shape, density, seed=len(shape))
    if layout == "F":
        mask = np.asfortranarray(mask)
    elif layout == "strided":
        mask = np.repeat(mask, 2, axis=-1)[..., ::2]
    expected = ndimage.distance_transform_edt(mask, sampling=spacing)
    got = _edt(mask, spacing)
    assert got.dtype == np.float32 and got.shape == mask.shape
    np.testing.assert_allclose(got, expected, rtol=2e-7, atol=1e-6)
    np.testing.assert_allclose(euclidean_distance(torch.from_numpy(np.ascontiguousarray(mask)), spacing).numpy(),
                               expected, rtol=2e-7, atol=1e-6)


def test_edt_of_a_mask_without_zeros_is_infinite():
    assert np.isinf(euclidean_distance(np.ones((3, 4), bool))).all()


@pytest.mark.parametrize("shape, spacing", SHAPES_SPACINGS)
@pytest.mark.parametrize("density", [0.05, 0.5])
@pytest.mark.parametrize("layout", ["C", "F", "strided"])
def test_two_sided_distance_equals_two_transforms(shape, spacing, density, layout):
    mask = random_mask(shape, density, seed=3)
    if layout == "F":
        mask = np.asfortranarray(mask)
    elif layout == "strided":
        mask = np.repeat(mask, 2, axis=-1)[..., ::2]
    expected = np.where(mask, ndimage.distance_transform_edt(mask, sampling=spacing),
                        ndimage.distance_transform_edt(~mask, sampling=spacing))
    np.testing.assert_allclose(two_sided_distance(mask, spacing), expected, rtol=2e-7, atol=1e-6)


def plain_dbce(label, radius, spacing=None):
    """Eqs. 3-5 with one whole-image distance transform per class (no boxes, no shortcut)."""
    out = np.zeros(label.shape)
    for c in np.unique(label):
        dilated = ndimage.distance_transform_edt(label != c, sampling=spacing) <= radius * (1 + 1e-6)
        out = np.maximum(out, dilated / (1.0 + dilated.sum()))
    return out


@pytest.mark.parametrize("shape, spacing", [s for s in SHAPES_SPACINGS if len(s[0]) > 1])
@pytest.mark.parametrize("density", [0.01, 0.2, 0.7])
@pytest.mark.parametrize("radius", [0.0, 1.0, 2.5, 6.0, 40.0])
@pytest.mark.parametrize("path", ["chosen", "two-sided", "boxes"])
def test_binary_dbce_paths_equal_the_definition(shape, spacing, density, radius, path, monkeypatch):
    label = random_mask(shape, density, seed=int(10 * radius)).astype(np.uint8)
    if path != "chosen":
        monkeypatch.setattr(weights_module, "_binary_boxes_cover_image", lambda *a: path == "two-sided")
    np.testing.assert_allclose(dilation_weight_map(label, radius, spacing), plain_dbce(label, radius, spacing),
                               rtol=1e-6)


def labels_of(values):
    return {
        "float32": values.astype(np.float32),
        "float64": values.astype(np.float64),
        "int64": values.astype(np.int64),
        "int16 Fortran": np.asfortranarray(values.astype(np.int16)),
        "float32 torch": torch.from_numpy(values.astype(np.float32)),
        "int64 torch": torch.from_numpy(values.astype(np.int64)),
        "float32 MetaTensor": MetaTensor(torch.from_numpy(values.astype(np.float32))),
    }


def _as_array(out):
    if isinstance(out, dict):
        return out
    return out.cpu().numpy() if isinstance(out, torch.Tensor) else np.asarray(out)


def assert_same_partition(got, expected, name):
    """Equal component ids up to their numbering (cc3d numbers a Fortran-ordered label in its memory order)."""
    assert got.shape == expected.shape, name
    np.testing.assert_array_equal(got == 0, expected == 0, err_msg=name)
    pairs = np.unique(np.stack([got.ravel(), expected.ravel()]), axis=1)
    assert pairs.shape[1] == len(np.unique(got)) == len(np.unique(expected)), name  # one-to-one


TRANSFORMS = [
    DilationWeightMap(3.0), UncertaintyWeightMap(1.5), SignedDistanceMap(num_classes=4), BorderWeightMap(sigma=3.0),
    ConnectedComponents(), ProbabilisticCropCenters(1.0),
]


@pytest.mark.parametrize("shape", [(1, 40, 36), (1, 18, 16, 12)])
@pytest.mark.parametrize("transform", TRANSFORMS, ids=lambda t: type(t).__name__)
def test_every_label_dtype_gives_the_uint8_map(shape, transform):
    rng = np.random.default_rng(0)
    values = (ndimage.gaussian_filter(rng.random(shape), 1.5) * 40).astype(np.uint8) % 4
    expected = _as_array(transform(values))
    for name, label in labels_of(values).items():
        got = _as_array(transform(label))
        if isinstance(expected, dict):
            for key in ("indices", "cdf"):
                np.testing.assert_array_equal(got[key], expected[key], err_msg=name)
        elif isinstance(transform, ConnectedComponents):
            assert_same_partition(got, expected, name)
        else:
            np.testing.assert_array_equal(got, expected, err_msg=name)
    mask = values > 0  # a bool label gives the map of its 0/1 bytes
    got, expected = _as_array(transform(mask)), _as_array(transform(mask.view(np.uint8)))
    if isinstance(expected, dict):
        got, expected = got["cdf"], expected["cdf"]
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("dtype", [np.float32, np.int64, bool])
def test_mac_windows_of_any_dtype_equal_the_uint8_windows(dtype):
    rng = np.random.default_rng(1)
    values = np.zeros((1, 70, 64, 40), np.uint8)
    for _ in range(12):
        a = rng.integers(0, [60, 54, 32])
        values[0, a[0]:a[0] + 9, a[1]:a[1] + 9, a[2]:a[2] + 7] = rng.integers(1, 4) if dtype is not bool else 1
    for windows in (MaskAwareWindows(roi_size=(32, 32, 16), rho=0.02, stride=8),
                    MaskAwareWindows(roi_size=(32, 32, 16), rho=0.01, stride=8, classes=[1, 2])):
        if dtype is bool and windows.classes is not None:
            continue
        expected = windows(values)
        got = windows(values.astype(dtype))
        assert expected["counts"].sum() > 0  # some windows qualify, so the comparison has content
        for key in ("starts", "counts", "num_valid"):
            np.testing.assert_array_equal(got[key], expected[key])
