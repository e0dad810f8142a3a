"""The U-Net border weight map (Ronneberger et al., Eq. 2): brute-force oracle, hand values, inputs and errors."""

from __future__ import annotations

import doctest
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from monai.data import CacheDataset, MetaTensor
from scipy import ndimage

from monai_imbalance.losses import PixelWeightedCELoss
from monai_imbalance.stats import class_frequency_weights
from monai_imbalance.transforms import weights as weights_module
from monai_imbalance.transforms.weights import (
    BorderWeightMap,
    BorderWeightMapD,
    BorderWeightMapd,
    BorderWeightMapDict,
    border_weight_map,
)

#: the documented bound on the border term's error (``rtol * w0``, ``rtol = 1e-6``)
RTOL = 1e-6
#: float32 rounding: the distances are float32 (relative error 6e-8), which the exponent multiplies by at most
#: ``(d1 + d2)^2 / sigma^2 = 2 ln(1 / rtol) = 27.6`` inside the cutoff
FLOAT32_RTOL = 2e-6


def reference_border_map(label, w0=10.0, sigma=5.0, class_weights="balanced", spacing=None, connectivity=None):
    """Eq. 2 by brute force: scipy's labelling per class, a whole-image distance transform per object, the two
    smallest distances per pixel from a sort."""
    label = np.asarray(label)
    classes, counts = np.unique(label, return_counts=True)
    if class_weights == "balanced":
        w_c = np.zeros(label.shape)
        for c, n_c in zip(classes, counts):
            w_c[label == c] = label.size / (len(classes) * n_c)
    elif class_weights is None:
        w_c = np.ones(label.shape)
    else:
        w_c = np.asarray(class_weights, dtype=np.float64)[label]
    structure = ndimage.generate_binary_structure(label.ndim, connectivity or label.ndim)
    objects = []
    for c in classes[classes > 0]:
        components, n = ndimage.label(label == c, structure=structure)
        objects += [components == k for k in range(1, n + 1)]
    if len(objects) < 2:
        return w_c
    distances = np.sort(np.stack([ndimage.distance_transform_edt(~obj, sampling=spacing) for obj in objects]), 0)
    return w_c + w0 * np.exp(-((distances[0] + distances[1]) ** 2) / (2 * sigma**2))


def assert_matches_reference(out, expected, w0=10.0):
    np.testing.assert_allclose(out, expected, rtol=FLOAT32_RTOL, atol=RTOL * w0)


def random_label(shape, density, num_classes, seed):
    """Many small objects: isolated pixels and small blobs of random classes."""
    rng = np.random.default_rng(seed)
    seeds = rng.random(shape) < density
    blobs = ndimage.binary_dilation(rng.random(shape) < density / 4)
    classes = rng.integers(1, num_classes, shape)
    return np.where(seeds | blobs, classes, 0).astype(np.uint8)


def two_pixels(shape, first, second, value=(1, 1)):
    label = np.zeros(shape, dtype=np.uint8)
    label[first], label[second] = value
    return label


# ---------------------------------------------------------------------------------------------------- oracle


@pytest.mark.parametrize(
    "boxes",
    [
        [(slice(3, 6), slice(4, 8))],  # one object: no border term
        [(slice(3, 6), slice(2, 5)), (slice(4, 6), slice(9, 12))],
        [(slice(1, 3), slice(1, 3)), (slice(6, 9), slice(2, 4)), (slice(2, 5), slice(8, 13))],
    ],
)
def test_small_images_equal_brute_force(boxes):
    label = np.zeros((10, 14), dtype=np.uint8)
    for value, box in enumerate(boxes):
        label[box] = 1 + value % 2
    for class_weights in ("balanced", None):
        out = border_weight_map(label, w0=10.0, sigma=2.0, class_weights=class_weights)
        assert out.dtype == np.float32 and out.shape == label.shape
        expected = reference_border_map(label, sigma=2.0, class_weights=class_weights)
        assert_matches_reference(out, expected)
        if len(boxes) == 1:  # the border term is exactly 0: the map is w_c
            np.testing.assert_array_equal(out, expected.astype(np.float32))
        else:
            w_c = reference_border_map(label, w0=0.0, class_weights=class_weights)
            assert (out - w_c).max() > 0.1  # a border term is there, and it is matched


@pytest.mark.parametrize(
    "shape, density, spacing, sigma",
    [
        ((96, 80), 0.02, None, 5.0),
        ((96, 80), 0.02, (0.6, 1.4), 5.0),
        ((64, 64), 0.05, 2.0, 3.0),
        ((24, 28, 20), 0.01, None, 3.0),
        ((24, 28, 20), 0.01, (1.5, 0.8, 2.5), 4.0),
    ],
)
@pytest.mark.parametrize("seed", [0, 1])
def test_random_multiclass_labels_equal_brute_force(shape, density, spacing, sigma, seed):
    label = random_label(shape, density, num_classes=4, seed=seed)
    expected = reference_border_map(label, sigma=sigma, spacing=spacing)
    out = border_weight_map(label, sigma=sigma, spacing=spacing)
    assert len(np.unique(label)) == 4 and ndimage.label(label > 0)[1] > 10  # many objects of every class
    assert_matches_reference(out, expected)
    # rtol=0: every object on the whole image, so only float32 rounding is left
    exact = border_weight_map(label, sigma=sigma, spacing=spacing, rtol=0.0)
    np.testing.assert_allclose(exact, expected, rtol=FLOAT32_RTOL, atol=0)


@settings(max_examples=40, deadline=None)
@given(
    ndim=st.sampled_from([2, 3]),
    density=st.sampled_from([0.0, 0.02, 0.1, 0.4]),
    w0=st.sampled_from([0.0, 1.0, 10.0]),
    sigma=st.sampled_from([0.5, 2.0, 5.0]),
    connectivity=st.sampled_from([None, 1]),
    seed=st.integers(0, 2**31),
)
def test_any_label_equals_brute_force(ndim, density, w0, sigma, connectivity, seed):
    rng = np.random.default_rng(seed)
    shape = tuple(rng.integers(1, 16 if ndim == 2 else 8, size=ndim))
    label = np.where(rng.random(shape) < density, rng.integers(1, 3, shape), 0).astype(np.int16)
    out = border_weight_map(label, w0=w0, sigma=sigma, connectivity=connectivity)
    assert_matches_reference(out, reference_border_map(label, w0, sigma, connectivity=connectivity), max(w0, 1.0))


def test_objects_beyond_the_cutoff_are_dropped_within_the_documented_bound():
    # cutoff = 5 * sqrt(2 ln 1e6) = 26.28: two pixels 27 apart are ignored by each other
    w0, sigma = 10.0, 5.0
    label = two_pixels((1, 40), (0, 5), (0, 32))
    true_term = reference_border_map(label, w0, sigma, class_weights=None) - 1.0
    term = border_weight_map(label, w0, sigma, class_weights=None) - 1.0
    assert 0 < true_term.max() < RTOL * w0  # a border term exists, below the bound
    assert np.all(term >= 0) and np.all(term <= true_term + 1e-7)
    # 26 apart: within the cutoff, so the pair is found and the term is exact
    label = two_pixels((1, 40), (0, 5), (0, 31))
    term = border_weight_map(label, w0, sigma, class_weights=None)[0, 5] - 1.0
    assert term == pytest.approx(w0 * math.exp(-(26**2) / (2 * sigma**2)), abs=2e-7)  # 1.34e-5, 1 + it in float32


# ---------------------------------------------------------------------------------------------------- hand values


def test_two_pixels_four_apart():
    w0, sigma = 10.0, 5.0
    label = two_pixels((7, 11), (3, 3), (3, 7))
    out = border_weight_map(label, w0, sigma, class_weights=None)
    term4 = w0 * math.exp(-16 / (2 * sigma**2))
    # midpoint: d1 = d2 = 2; object pixel: d1 = 0, d2 = 4; both d1 + d2 = 4
    assert out[3, 5] == pytest.approx(1 + term4, rel=1e-6)
    assert out[3, 3] == pytest.approx(1 + term4, rel=1e-6)
    assert out[3, 7] == pytest.approx(1 + term4, rel=1e-6)
    # (0, 5): d1 = d2 = sqrt(9 + 4); (3, 1): d1 = 2, d2 = 6
    assert out[0, 5] == pytest.approx(1 + w0 * math.exp(-4 * 13 / (2 * sigma**2)), rel=1e-6)
    assert out[3, 1] == pytest.approx(1 + w0 * math.exp(-64 / (2 * sigma**2)), rel=1e-6)
    assert out[3, 5] == pytest.approx(8.2614977, rel=1e-6)  # 1 + 10 exp(-0.32)


def test_spacing_gives_mm_distances():
    # 0.5 mm along the line: the objects are 2 mm apart; sigma = 1 mm
    label = two_pixels((5, 9), (2, 2), (2, 6))
    out = border_weight_map(label, w0=3.0, sigma=1.0, class_weights=None, spacing=(1.0, 0.5))
    assert out[2, 4] == pytest.approx(1 + 3.0 * math.exp(-4 / 2), rel=1e-6)
    assert out[2, 2] == pytest.approx(1 + 3.0 * math.exp(-4 / 2), rel=1e-6)
    # one row up: d1 = d2 = sqrt(1 + 1) mm
    assert out[1, 4] == pytest.approx(1 + 3.0 * math.exp(-8 / 2), rel=1e-6)


def test_three_dimensional_hand_value():
    label = two_pixels((5, 6, 7), (1, 2, 3), (3, 2, 3), value=(1, 2))  # 2 apart along axis 0, two classes
    out = border_weight_map(label, w0=2.0, sigma=1.5, class_weights=None)
    assert out.shape == (5, 6, 7) and out.dtype == np.float32
    assert out[2, 2, 3] == pytest.approx(1 + 2.0 * math.exp(-4 / (2 * 1.5**2)), rel=1e-6)
    assert out[2, 3, 4] == pytest.approx(1 + 2.0 * math.exp(-4 * 3 / (2 * 1.5**2)), rel=1e-6)  # d1 = d2 = sqrt(3)


def test_touching_objects_of_different_classes_are_two_objects():
    label = np.zeros((3, 6), dtype=np.uint8)
    label[1, 2], label[1, 3] = 1, 2
    out = border_weight_map(label, w0=5.0, sigma=1.0, class_weights=None)
    assert out[1, 2] == pytest.approx(1 + 5.0 * math.exp(-1 / 2), rel=1e-6)  # d1 = 0, d2 = 1
    same_class = border_weight_map(np.where(label > 0, 1, 0), w0=5.0, sigma=1.0, class_weights=None)
    np.testing.assert_array_equal(same_class, np.ones((3, 6), np.float32))  # one object: no border term


def test_w0_zero_gives_the_class_weights():
    label = random_label((32, 32), 0.05, num_classes=3, seed=3)
    np.testing.assert_array_equal(border_weight_map(label, w0=0.0, class_weights=None), np.ones((32, 32), np.float32))
    np.testing.assert_allclose(border_weight_map(label, w0=0.0), reference_border_map(label, w0=0.0), rtol=1e-7)


# ---------------------------------------------------------------------------------------------------- class weights


def test_balanced_class_weights_by_hand():
    label = np.array([[0, 0, 0], [0, 1, 1], [0, 0, 2]], dtype=np.uint8)  # N = 9, K = 3, n = (6, 2, 1)
    out = border_weight_map(label, w0=0.0)  # border term off: w_c alone
    expected = np.array([9 / 18, 9 / 6, 9 / 3])[label]
    np.testing.assert_allclose(out, expected, rtol=1e-6)
    assert out.mean() == pytest.approx(1.0, rel=1e-6)
    # the same weights as the package's inverse frequency of this image
    np.testing.assert_allclose(out, class_frequency_weights(label, num_classes=3)[label], rtol=1e-6)
    # K counts the classes present: class 1 absent, N / (2 n_c)
    absent = np.array([[0, 0, 0, 2]], dtype=np.uint8)
    np.testing.assert_allclose(border_weight_map(absent, w0=0.0), [[4 / 6, 4 / 6, 4 / 6, 4 / 2]], rtol=1e-6)


def test_none_and_given_class_weights():
    label = np.array([[0, 0, 1, 0], [0, 0, 0, 2]], dtype=np.uint8)
    np.testing.assert_array_equal(border_weight_map(label, w0=0.0, class_weights=None), np.ones((2, 4), np.float32))
    out = border_weight_map(label, w0=0.0, class_weights=[0.5, 3.0, 7.0, 9.0])  # more weights than classes: fine
    np.testing.assert_allclose(out, np.array([0.5, 3.0, 7.0])[label])
    # with the border term: the given weight plus it, at every pixel
    with_border = border_weight_map(label, w0=4.0, sigma=2.0, class_weights=torch.tensor([0.5, 3.0, 7.0]))
    assert_matches_reference(with_border, reference_border_map(label, 4.0, 2.0, [0.5, 3.0, 7.0]), 4.0)


# ---------------------------------------------------------------------------------------------------- connectivity


def test_connectivity_decides_whether_diagonal_pixels_are_one_object():
    label = two_pixels((5, 5), (1, 1), (2, 2))
    full = border_weight_map(label, w0=10.0, sigma=1.0, class_weights=None)
    faces = border_weight_map(label, w0=10.0, sigma=1.0, class_weights=None, connectivity=1)
    np.testing.assert_array_equal(full, np.ones((5, 5), np.float32))  # one object: no border term
    assert faces[1, 1] == pytest.approx(1 + 10.0 * math.exp(-2 / 2), rel=1e-6)  # d1 = 0, d2 = sqrt(2)
    assert_matches_reference(faces, reference_border_map(label, 10.0, 1.0, None, connectivity=1))
    np.testing.assert_array_equal(border_weight_map(label, class_weights=None, connectivity=2), full)


def test_connectivity_in_three_dimensions():
    label = two_pixels((3, 3, 3), (0, 0, 0), (1, 1, 1))  # corner neighbours: joined only by full connectivity
    assert np.all(border_weight_map(label, class_weights=None) == 1.0)
    assert np.all(border_weight_map(label, class_weights=None, connectivity=3) == 1.0)
    for connectivity in (1, 2):
        out = border_weight_map(label, w0=1.0, sigma=1.0, class_weights=None, connectivity=connectivity)
        assert out[0, 0, 0] == pytest.approx(1 + math.exp(-3 / 2), rel=1e-6)  # d2 = sqrt(3)


# ---------------------------------------------------------------------------------------------------- inputs


def test_numpy_torch_metatensor_give_the_same_values():
    label = random_label((40, 36), 0.03, num_classes=3, seed=5)[None]
    transform = BorderWeightMap(w0=10.0, sigma=3.0)
    expected = transform(label)
    assert isinstance(expected, np.ndarray) and expected.dtype == np.float32 and expected.shape == (1, 40, 36)
    assert_matches_reference(expected[0], reference_border_map(label[0], sigma=3.0))
    from_torch = transform(torch.as_tensor(label))
    assert type(from_torch) is torch.Tensor and from_torch.dtype == torch.float32
    np.testing.assert_array_equal(from_torch.numpy(), expected)
    np.testing.assert_array_equal(transform(label.astype(np.float32)), expected)  # whole-valued floats
    affine = torch.diag(torch.tensor([0.7, 1.3, 1.0], dtype=torch.float64))
    affine[:2, -1] = torch.tensor([4.0, -2.0])
    meta = MetaTensor(torch.as_tensor(label), affine=affine, meta={"filename_or_obj": "label.nii"})
    out = transform(meta)
    assert isinstance(out, MetaTensor) and out.dtype == torch.float32
    torch.testing.assert_close(out.affine, affine)
    assert out.meta["filename_or_obj"] == "label.nii"
    np.testing.assert_array_equal(out.as_tensor().numpy(), expected)
    # the functional form on a tensor returns a tensor
    functional = border_weight_map(torch.as_tensor(label[0]), sigma=3.0)
    assert type(functional) is torch.Tensor
    np.testing.assert_array_equal(functional.numpy(), expected[0])


def test_spacing_meta_reads_the_pixdim():
    label = random_label((30, 30), 0.03, num_classes=2, seed=2)[None]
    meta = MetaTensor(torch.as_tensor(label), affine=torch.diag(torch.tensor([2.0, 0.5, 1.0], dtype=torch.float64)))
    out = BorderWeightMap(sigma=3.0, spacing="meta")(meta)
    expected = BorderWeightMap(sigma=3.0, spacing=(2.0, 0.5))(label)
    np.testing.assert_array_equal(out.as_tensor().numpy(), expected)
    assert_matches_reference(expected[0], reference_border_map(label[0], sigma=3.0, spacing=(2.0, 0.5)))
    assert not np.array_equal(expected, BorderWeightMap(sigma=3.0)(label))  # the spacing changes the map


def test_three_dimensional_transform():
    label = random_label((16, 18, 14), 0.02, num_classes=3, seed=4)[None]
    out = BorderWeightMap(sigma=2.0, spacing=(1.0, 1.0, 2.5))(torch.as_tensor(label))
    assert out.shape == (1, 16, 18, 14) and out.dtype == torch.float32
    assert_matches_reference(out[0].numpy(), reference_border_map(label[0], sigma=2.0, spacing=(1.0, 1.0, 2.5)))


def test_dictionary_transform_writes_the_weight_key_and_keeps_the_label():
    label = random_label((24, 24), 0.04, num_classes=3, seed=6)[None]
    original = label.copy()
    data = {"image": np.zeros((1, 24, 24), np.float32), "label": label}
    out = BorderWeightMapd(keys="label", sigma=2.0)(data)
    assert set(out) == {"image", "label", "label_weight"}
    assert out["label"] is label
    np.testing.assert_array_equal(label, original)
    np.testing.assert_array_equal(out["label_weight"], BorderWeightMap(sigma=2.0)(label))
    assert "label_border" in BorderWeightMapd(keys="label", postfix="_border")(data)
    assert BorderWeightMapD is BorderWeightMapd and BorderWeightMapDict is BorderWeightMapd
    with pytest.raises(ValueError, match="postfix must be a non-empty string"):
        BorderWeightMapd(keys="label", postfix="")


def test_cache_dataset_caches_the_map_and_a_pixel_weighted_loss_takes_it():
    labels = [random_label((20, 20), 0.05, num_classes=2, seed=s)[None] for s in range(3)]
    dataset = CacheDataset([{"label": lab} for lab in labels], transform=BorderWeightMapd("label"), progress=False)
    for item, lab in zip(dataset, labels):
        np.testing.assert_array_equal(item["label_weight"], BorderWeightMap()(lab))
    target = torch.as_tensor(np.stack(labels)).long()
    weight_map = torch.as_tensor(np.stack([item["label_weight"] for item in dataset]))
    loss = PixelWeightedCELoss(softmax=True, to_onehot_y=True)
    value = loss(torch.zeros(3, 2, 20, 20), target, weight_map=weight_map)
    assert value.item() == pytest.approx(math.log(2) * weight_map.double().mean().item(), rel=1e-5)


def test_docstring_examples():
    finder, runner = doctest.DocTestFinder(), doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    attempted = 0
    for obj in (border_weight_map, BorderWeightMap):
        for test in finder.find(obj, globs=vars(weights_module)):
            result = runner.run(test)
            assert result.failed == 0
            attempted += result.attempted
    assert attempted >= 6


# ---------------------------------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"w0": -1.0}, "w0 must be a finite number >= 0"),
        ({"w0": float("inf")}, "w0 must be a finite number >= 0"),
        ({"w0": float("nan")}, "w0 must be a finite number >= 0"),
        ({"sigma": 0.0}, "sigma must be a finite number > 0"),
        ({"sigma": -2.0}, "sigma must be a finite number > 0"),
        ({"sigma": float("inf")}, "sigma must be a finite number > 0"),
        ({"class_weights": "inverse"}, "class_weights must be 'balanced', None or one weight per class"),
        ({"class_weights": [1.0, -1.0]}, r"class_weights must be finite and >= 0"),
        ({"class_weights": [1.0, float("nan")]}, r"class_weights must be finite and >= 0"),
        ({"class_weights": [[1.0, 2.0]]}, r"class_weights must be one value per class \(1-D\)"),
        ({"class_weights": []}, r"class_weights must be one value per class \(1-D\)"),
    ],
)
def test_bad_arguments_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        BorderWeightMap(**kwargs)
    with pytest.raises(ValueError, match=message):
        BorderWeightMapd("label", **kwargs)
    with pytest.raises(ValueError, match=message):
        border_weight_map(np.zeros((4, 4), np.uint8), **kwargs)


@pytest.mark.parametrize(
    "label, kwargs, message",
    [
        (np.zeros((4, 4), np.uint8), {}, r"must be channel-first with one channel.*got shape \(4, 4\)"),
        (np.zeros((2, 4, 4), np.uint8), {}, r"must be channel-first with one channel.*got shape \(2, 4, 4\)"),
        (np.zeros((1, 2, 2, 2, 2), np.uint8), {}, "must be channel-first with one channel"),
        (np.full((1, 3, 3), 0.5, np.float32), {}, "label has non-integer values"),
        (np.full((1, 3, 3), np.nan, np.float32), {}, "label contains NaN or infinite values"),
        (-np.ones((1, 3, 3), np.int16), {}, "label has negative values"),
        (np.zeros((1, 4, 4), np.uint8), {"spacing": (1.0, 1.0, 1.0)}, "one per spatial axis"),
        (np.zeros((1, 4, 4), np.uint8), {"spacing": (1.0, 0.0)}, "spacing must be positive and finite"),
        (np.zeros((1, 4, 4), np.uint8), {"spacing": "meta"}, "spacing='meta' needs a MetaTensor"),
        (np.ones((1, 4, 4), np.uint8) * 2, {"class_weights": [1.0, 2.0]}, "class_weights has 2 values .* class 2"),
        (np.zeros((1, 4, 4), np.uint8), {"connectivity": 3}, "connectivity must be None .* or 1..2"),
        (np.zeros((1, 4, 4, 4), np.uint8), {"connectivity": 0}, "connectivity must be None .* or 1..3"),
    ],
)
def test_bad_labels_raise(label, kwargs, message):
    with pytest.raises(ValueError, match=message):
        BorderWeightMap(**kwargs)(label)


def test_functional_form_errors():
    with pytest.raises(ValueError, match=r"spatial 2-D or 3-D label map .* got shape \(4,\)"):
        border_weight_map(np.zeros(4, np.uint8))
    with pytest.raises(ValueError, match="label has non-integer values"):
        border_weight_map(np.array([[0.0, 1.5]]))
    with pytest.raises(ValueError, match=r"spacing must be a number or 3 values"):
        border_weight_map(np.zeros((3, 3, 3), np.uint8), spacing=(1.0, 2.0))
    with pytest.raises(ValueError, match=r"rtol must be a number in \[0, 1\)"):
        border_weight_map(np.zeros((3, 3), np.uint8), rtol=1.0)
