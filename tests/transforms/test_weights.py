from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from monai.data import CacheDataset, MetaTensor
from monai.losses import BoundaryLoss as MonaiBoundaryLoss
from monai.transforms import Compose, RandFlipd, RandRotate90d, RandSpatialCropd, RandZoomd
from scipy import ndimage
from skimage.morphology import ball, disk

from monai_imbalance.apps.synthetic import make_synthetic_pair
from monai_imbalance.stats import class_frequency_weights
from monai_imbalance.transforms import (
    DilationWeightMap,
    DilationWeightMapD,
    DilationWeightMapd,
    DilationWeightMapDict,
    SignedDistanceMap,
    SignedDistanceMapd,
    UncertaintyWeightMap,
    UncertaintyWeightMapd,
    dilation_weight_map,
    signed_distance_map,
    uncertainty_weight_map,
)
from monai_imbalance.transforms import weights as weights_module
from monai_imbalance.transforms.utils import (
    dilate_by_distance,
    erode_by_distance,
    euclidean_distance,
    face_edges,
    resolve_spacing,
)

KERVADEC_REFERENCE = np.array(
    [
        [1.4142135, 1, 1, 1, 1, 1.4142135],
        [1, 0, 0, 0, 0, 1],
        [1, 0, -1, -1, 0, 1],
        [1, 0, -1, -1, 0, 1],
        [1, 0, 0, 0, 0, 1],
        [1.4142135, 1, 1, 1, 1, 1.4142135],
    ],
    dtype=np.float32,
)


def reference_dbce_map(label: np.ndarray, radius: int) -> np.ndarray:
    """The paper's Eqs. 3-5 with scipy's binary dilation by skimage's disk/ball (the baseline definition)."""
    element = (disk if label.ndim == 2 else ball)(radius)
    weight_map = np.zeros(label.shape)
    for c in np.unique(label):
        dilated = ndimage.binary_dilation(label == c, structure=element) if radius > 0 else label == c
        weight_map = np.maximum(weight_map, dilated / (1.0 + dilated.sum()))
    return weight_map


@st.composite
def masks(draw, max_side=14):
    ndim = draw(st.sampled_from([2, 3]))
    shape = tuple(draw(st.integers(1, max_side if ndim == 2 else 8)) for _ in range(ndim))
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    mask = rng.random(shape) < draw(st.sampled_from([0.0, 0.02, 0.1, 0.5, 0.95, 1.0]))
    return mask


# ---------------------------------------------------------------------------------------------------- helpers


def test_resolve_spacing():
    assert resolve_spacing(None, 2) is None
    assert resolve_spacing(2, 3) == (2.0, 2.0, 2.0)
    assert resolve_spacing([0.5, 2], 2) == (0.5, 2.0)
    label = MetaTensor(torch.zeros(1, 4, 4), affine=torch.diag(torch.tensor([0.5, 2.0, 1.0, 1.0])))
    assert resolve_spacing("meta", 2, label) == (0.5, 2.0)
    with pytest.raises(ValueError, match="one per spatial axis"):
        resolve_spacing([1, 1, 1], 2)
    with pytest.raises(ValueError, match="positive"):
        resolve_spacing([1, 0], 2)
    with pytest.raises(ValueError, match="MetaTensor"):
        resolve_spacing("meta", 2, np.zeros((1, 4, 4)))


def test_euclidean_distance_without_zero_is_inf_and_torch_matches_numpy():
    assert np.all(np.isinf(euclidean_distance(np.ones((3, 3), bool))))
    mask = np.random.default_rng(0).random((9, 7)) < 0.7
    expected = ndimage.distance_transform_edt(mask, sampling=(1.0, 2.0))
    got = euclidean_distance(torch.as_tensor(mask), (1.0, 2.0))
    assert isinstance(got, torch.Tensor) and got.dtype == torch.float32
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-6)


@settings(max_examples=60, deadline=None)
@given(mask=masks(), radius=st.integers(0, 6))
def test_dilation_equals_binary_dilation_with_disk_or_ball(mask, radius):
    element = (disk if mask.ndim == 2 else ball)(radius)
    expected = ndimage.binary_dilation(mask, structure=element) if mask.any() else np.zeros_like(mask)
    np.testing.assert_array_equal(dilate_by_distance(mask, radius), expected)
    # the erosion is the complement of the complement's dilation
    np.testing.assert_array_equal(erode_by_distance(mask, radius), ~dilate_by_distance(~mask, radius))


@settings(max_examples=30, deadline=None)
@given(mask=masks(), radius=st.floats(0.0, 5.0), data=st.data())
def test_dilation_and_erosion_with_spacing_equal_whole_image_thresholds(mask, radius, data):
    spacing = tuple(data.draw(st.sampled_from([0.5, 1.0, 1.7])) for _ in range(mask.ndim))
    expected_dilation = (
        ndimage.distance_transform_edt(~mask, sampling=spacing) <= radius if mask.any() else np.zeros_like(mask)
    )
    np.testing.assert_array_equal(dilate_by_distance(mask, radius, spacing), expected_dilation)
    expected_erosion = (
        np.ones_like(mask) if mask.all() else ndimage.distance_transform_edt(mask, sampling=spacing) > radius
    )
    np.testing.assert_array_equal(erode_by_distance(mask, radius, spacing), expected_erosion)


def test_face_edges_inner_and_thick():
    label = np.zeros((5, 5), dtype=np.int64)
    label[1:4, 1:4] = 1
    inner = face_edges(label, "inner")
    expected = label.astype(bool).copy()
    expected[2, 2] = False
    np.testing.assert_array_equal(inner, expected)
    thick = face_edges(label, "thick")
    assert thick[0, 2] and thick[2, 0] and not thick[0, 0] and not thick[2, 2]
    np.testing.assert_array_equal(face_edges(torch.as_tensor(label), "inner").numpy(), expected)
    with pytest.raises(ValueError, match="edge_mode"):
        face_edges(label, "outer")


# ---------------------------------------------------------------------------------------------------- DBCE map


def test_dbce_hand_case():
    label = np.zeros((1, 5, 5), dtype=np.uint8)
    label[0, 2, 2] = 1
    out = DilationWeightMap(radius=1)(label)
    cross = np.zeros((5, 5), bool)
    cross[2, 1:4] = cross[1:4, 2] = True
    expected = np.where(cross, 1 / 6, 1 / 26)
    assert out.shape == (1, 5, 5) and out.dtype == np.float32
    np.testing.assert_allclose(out[0], expected, rtol=1e-6)


def test_dbce_radius_zero_is_inverse_count_plus_one():
    label = make_synthetic_pair((32, 40), fg_fraction=0.1, num_classes=3, seed=3)["label"][0]
    counts = np.bincount(label.ravel())
    np.testing.assert_allclose(dilation_weight_map(label, 0), 1.0 / (1.0 + counts[label]), rtol=1e-6)


def test_dbce_overlapping_regions_take_the_max():
    # one row: class 1 at x=1, class 2 at x=5..6, R = 2: D^1 = x 0..3 (W 1/5), D^2 = x 3..8 (W 1/7), D^0 = all
    # (W 1/10); x = 3 lies in D^1 and D^2 and takes max(1/5, 1/7, 1/10) = 1/5, not a sum
    label = np.array([[0, 1, 0, 0, 0, 2, 2, 0, 0]])
    expected = np.array([[1 / 5] * 4 + [1 / 7] * 5])
    np.testing.assert_allclose(dilation_weight_map(label, 2), expected, rtol=1e-6)


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**31),
    ndim=st.sampled_from([2, 3]),
    num_classes=st.integers(1, 5),
    radius=st.integers(0, 5),
)
def test_dbce_map_equals_reference_on_random_labels(seed, ndim, num_classes, radius):
    rng = np.random.default_rng(seed)
    shape = tuple(rng.integers(1, 16 if ndim == 2 else 7, size=ndim))
    smooth = ndimage.gaussian_filter(rng.random(shape), 1.0)
    label = np.digitize(smooth, np.quantile(smooth, np.linspace(0, 1, num_classes + 1)[1:-1]))
    label[rng.random(shape) < 0.05] = rng.integers(0, num_classes)  # a few isolated pixels
    np.testing.assert_allclose(dilation_weight_map(label, radius), reference_dbce_map(label, radius), rtol=1e-6)


@pytest.mark.parametrize("fill", [0, 1])
def test_dbce_single_class_image(fill):
    label = np.full((1, 6, 7), fill, dtype=np.uint8)
    np.testing.assert_allclose(DilationWeightMap(radius=3)(label), 1.0 / 43.0, rtol=1e-6)


def test_dbce_3d_one_voxel_object_and_spacing():
    label = np.zeros((1, 9, 9, 9), dtype=np.uint8)
    label[0, 4, 4, 4] = 1
    out = DilationWeightMap(radius=1)(label)[0]
    assert np.isclose(out[4, 4, 4], 1 / 8) and np.isclose(out[4, 4, 5], 1 / 8)  # 7-voxel ball of radius 1
    assert np.isclose(out[4, 5, 5], 1 / (1 + 9**3))
    # radius 2 mm at 2 mm spacing along the first axis: 1 voxel there, 2 voxels along the others
    out = DilationWeightMap(radius=2, spacing=(2.0, 1.0, 1.0))(label)[0]
    ball_mm = ndimage.distance_transform_edt(label[0] == 0, sampling=(2.0, 1.0, 1.0)) <= 2
    np.testing.assert_allclose(out[ball_mm], 1 / (1 + ball_mm.sum()), rtol=1e-6)


def test_dbce_types_metatensor_and_meta_spacing():
    label = make_synthetic_pair((24, 24), fg_fraction=0.05, seed=1)["label"]
    expected = DilationWeightMap(radius=2)(label)
    out = DilationWeightMap(radius=2)(torch.as_tensor(label))
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float32
    np.testing.assert_allclose(out.numpy(), expected)
    meta = MetaTensor(torch.as_tensor(label), affine=torch.diag(torch.tensor([2.0, 2.0, 1.0, 1.0])))
    out = DilationWeightMap(radius=2)(meta)
    assert isinstance(out, MetaTensor) and torch.equal(out.affine, meta.affine)
    np.testing.assert_allclose(out.numpy(), expected)
    # with the affine's 2 mm pixels, a 4 mm radius is the 2-pixel one
    np.testing.assert_allclose(DilationWeightMap(radius=4, spacing="meta")(meta).numpy(), expected)


def test_dbce_bad_inputs():
    with pytest.raises(ValueError, match="radius"):
        DilationWeightMap(radius=-1)
    with pytest.raises(ValueError, match=r"\(1, H, W\)"):
        DilationWeightMap(radius=1)(np.zeros((5, 5)))
    with pytest.raises(ValueError, match="non-integer"):
        DilationWeightMap(radius=1)(np.full((1, 4, 4), 0.5))
    with pytest.raises(ValueError, match="negative"):
        DilationWeightMap(radius=1)(np.full((1, 4, 4), -1))
    with pytest.raises(ValueError, match="one per spatial axis"):
        DilationWeightMap(radius=1, spacing=(1, 1, 1))(np.zeros((1, 4, 4)))


# ------------------------------------------------------------------------------------------------- Bressan map


def test_uncertainty_hand_case_with_edges_at_zero():
    label = np.zeros((1, 5, 5), dtype=np.uint8)
    label[0, 1:4, 1:4] = 1  # inner edges: the square's ring of 8 pixels; its centre is 1 pixel from them
    d = np.array(
        [
            [np.sqrt(2), 1, 1, 1, np.sqrt(2)],
            [1, 0, 0, 0, 1],
            [1, 0, 1, 0, 1],
            [1, 0, 0, 0, 1],
            [np.sqrt(2), 1, 1, 1, np.sqrt(2)],
        ]
    )
    omega = np.array([0.5, 3.0])
    expected = omega[label[0]] * (1 - np.exp(-(d**2) / (2 * 1.5**2)))
    out = UncertaintyWeightMap(sigma=1.5, class_weights=omega)(label)
    np.testing.assert_allclose(out[0], expected, rtol=1e-6)
    assert np.all(out[0][1:4, 1:4][[0, 0, 0, 1, 1, 2, 2, 2], [0, 1, 2, 0, 2, 0, 1, 2]] == 0)


def test_uncertainty_thick_edges_spacing_and_no_edges():
    label = np.zeros((1, 6, 6), dtype=np.uint8)
    label[0, 2:4, 2:4] = 1
    thick = UncertaintyWeightMap(sigma=1.0, edge_mode="thick")(label)[0]
    assert thick[1, 2] == 0 and thick[2, 2] == 0 and thick[0, 0] > 0
    # halving the spacing halves every distance: same as doubling sigma
    np.testing.assert_allclose(
        UncertaintyWeightMap(sigma=1.0, spacing=0.5)(label), UncertaintyWeightMap(sigma=2.0)(label), rtol=1e-6
    )
    empty = np.zeros((1, 4, 4), dtype=np.uint8)
    np.testing.assert_allclose(UncertaintyWeightMap(sigma=1.0, class_weights=[0.7, 2.0])(empty), 0.7)
    full = np.ones((1, 3, 4, 5), dtype=np.uint8)  # 3-D, one class: no edge, delta = 1
    np.testing.assert_allclose(UncertaintyWeightMap(sigma=1.0, class_weights=[0.7, 2.0])(full), 2.0)


def test_uncertainty_weights_from_stats_and_bad_inputs():
    pairs = [make_synthetic_pair((32, 32), fg_fraction=0.1, num_classes=3, seed=s) for s in range(3)]
    omega = class_frequency_weights([p["label"] for p in pairs], num_classes=3)
    label = pairs[0]["label"]
    out = UncertaintyWeightMap(sigma=2.0, class_weights=omega)(label)
    # Eqs. 4-6 by hand: inner edges (a class > 0 with a face neighbour of another label), distance to them
    spatial = label[0]
    edges = np.zeros(spatial.shape, dtype=bool)
    for axis in range(2):
        change = np.diff(spatial, axis=axis) != 0
        lower = (slice(None),) * axis + (slice(None, -1),)
        upper = (slice(None),) * axis + (slice(1, None),)
        edges[lower] |= change
        edges[upper] |= change
    edges &= spatial > 0
    delta = 1 - np.exp(-ndimage.distance_transform_edt(~edges) ** 2 / (2 * 2.0**2))
    np.testing.assert_allclose(out[0], omega[spatial] * delta, rtol=1e-5, atol=1e-7)
    with pytest.raises(ValueError, match="sigma"):
        UncertaintyWeightMap(sigma=0)
    with pytest.raises(ValueError, match="class_weights has 2 values"):
        UncertaintyWeightMap(sigma=1, class_weights=[1, 1])(pairs[0]["label"])
    with pytest.raises(ValueError, match="finite and >= 0"):
        UncertaintyWeightMap(sigma=1, class_weights=[1, -1])
    with pytest.raises(ValueError, match="edge_mode"):
        UncertaintyWeightMap(sigma=1, edge_mode="outer")


# ------------------------------------------------------------------------------------------ signed distance map


def test_signed_distance_kervadec_reference():
    mask = np.zeros((1, 6, 6), dtype=np.uint8)
    mask[0, 1:5, 1:5] = 1
    out = SignedDistanceMap()(mask)
    assert out.shape == (1, 6, 6) and out.dtype == np.float32
    np.testing.assert_allclose(out[0], KERVADEC_REFERENCE, rtol=1e-6)
    # two classes: channel 1 is the square's map; channel 0 is the background's (the square is its outside)
    both = SignedDistanceMap(num_classes=2)(mask)
    np.testing.assert_allclose(both[1], KERVADEC_REFERENCE, rtol=1e-6)
    assert both[0][2, 2] == 2 and both[0][1, 1] == 1 and both[0][0, 1] == 0
    assert np.isclose(both[0][0, 0], 1 - np.sqrt(2))


def test_signed_distance_empty_full_spacing_and_monai():
    np.testing.assert_array_equal(SignedDistanceMap(num_classes=2)(np.zeros((1, 5, 5))), 0)
    mask = np.zeros((1, 6, 6), dtype=np.uint8)
    mask[0, 1:5, 1:5] = 1
    np.testing.assert_allclose(SignedDistanceMap(spacing=2.0)(mask)[0], 2 * KERVADEC_REFERENCE, rtol=1e-6)
    aniso = SignedDistanceMap(spacing=(0.5, 2.0))(mask)[0]
    assert aniso[1, 2] == 0 and aniso[2, 2] < 0 and aniso[0, 2] > 0  # inside <= 0, outside > 0 below 1 mm
    label = make_synthetic_pair((20, 24, 8), fg_fraction=0.1, num_classes=3, seed=2)["label"]
    onehot = (label == np.arange(3).reshape(3, 1, 1, 1)).astype(np.float32)
    expected = MonaiBoundaryLoss().compute_distance_map(torch.as_tensor(onehot[None]))[0]
    np.testing.assert_allclose(SignedDistanceMap(num_classes=3)(label), expected.numpy(), atol=1e-5)
    np.testing.assert_allclose(signed_distance_map(onehot), expected.numpy(), atol=1e-5)


def test_signed_distance_bad_inputs():
    with pytest.raises(ValueError, match="binary mask"):
        SignedDistanceMap()(np.full((1, 4, 4), 2))
    with pytest.raises(ValueError, match="num_classes=2"):
        SignedDistanceMap(num_classes=2)(np.full((1, 4, 4), 2))
    with pytest.raises(ValueError, match="channel-first"):
        SignedDistanceMap()(np.zeros((4, 4)))


def test_device_label_check_keeps_integers_and_narrows_floats():
    ints = torch.tensor([[0, 2], [1, 1]])
    assert weights_module._check_label_tensor(ints, "label") is ints
    floats = weights_module._check_label_tensor(torch.tensor([[0.0, 2.0], [1.0, 1.0]]), "label")
    assert floats.dtype == torch.uint8 and floats.tolist() == [[0, 2], [1, 1]]  # no int64 copy
    assert weights_module._check_label_tensor(torch.tensor([0.0, 300.0]), "label").dtype == torch.int32
    with pytest.raises(ValueError, match="whole numbers"):
        weights_module._check_label_tensor(torch.tensor([0.0, 0.5]), "label")
    with pytest.raises(ValueError, match="whole numbers"):
        weights_module._check_label_tensor(torch.tensor([0.0, float("nan")]), "label")
    with pytest.raises(ValueError, match="negative values"):
        weights_module._check_label_tensor(torch.tensor([-1.0, 0.0]), "label")


def test_device_code_path_matches_numpy(monkeypatch):
    """The torch code path (taken for GPU tensors) run on CPU tensors gives the numpy path's maps."""
    label = make_synthetic_pair((20, 18), fg_fraction=0.15, num_classes=3, seed=5)["label"][0].astype(np.int64)
    expected = [
        dilation_weight_map(label, 2.5),
        uncertainty_weight_map(label, 1.5, [0.5, 1.0, 2.0], "inner", (1.0, 0.5)),
        signed_distance_map(label[None] == 1, (1.0, 0.5)),
    ]
    monkeypatch.setattr(weights_module, "maps_on_device", lambda x: isinstance(x, torch.Tensor))
    tensor = torch.as_tensor(label)
    got = [
        dilation_weight_map(tensor, 2.5),
        uncertainty_weight_map(tensor, 1.5, [0.5, 1.0, 2.0], "inner", (1.0, 0.5)),
        signed_distance_map(tensor[None] == 1, (1.0, 0.5)),
    ]
    for g, e in zip(got, expected):
        assert isinstance(g, torch.Tensor)
        np.testing.assert_allclose(g.numpy(), e, rtol=1e-5, atol=1e-6)


@pytest.mark.gpu
def test_gpu_maps_match_cpu():
    label = make_synthetic_pair((40, 40), fg_fraction=0.1, num_classes=3, seed=0)["label"]
    for transform in (DilationWeightMap(3), UncertaintyWeightMap(2.0), SignedDistanceMap(num_classes=3)):
        gpu = transform(torch.as_tensor(label, device="cuda"))
        assert gpu.device.type == "cuda"
        np.testing.assert_allclose(gpu.cpu().numpy(), transform(label), rtol=1e-5, atol=1e-5)


# ------------------------------------------------------------------------------------- dictionary and pipelines


def test_dictionary_forms_aliases_and_cache():
    assert DilationWeightMapD is DilationWeightMapd and DilationWeightMapDict is DilationWeightMapd
    pairs = [make_synthetic_pair((24, 24), fg_fraction=0.05, seed=s) for s in range(2)]
    transforms = Compose(
        [
            DilationWeightMapd(keys="label", radius=2),
            UncertaintyWeightMapd(keys="label", sigma=1.0, postfix="_uncertainty"),
            SignedDistanceMapd(keys="label", num_classes=2),
        ]
    )
    dataset = CacheDataset(pairs, transforms, progress=False)
    item = dataset[0]
    assert set(item) == {"image", "label", "label_weight", "label_uncertainty", "label_sdm"}
    label = pairs[0]["label"]
    np.testing.assert_allclose(item["label_weight"], DilationWeightMap(2)(label))
    np.testing.assert_allclose(item["label_uncertainty"], UncertaintyWeightMap(1.0)(label))
    np.testing.assert_allclose(item["label_sdm"], SignedDistanceMap(num_classes=2)(label))
    assert item["label_sdm"].shape == (2, 24, 24)
    # the map is computed once and cached: the cache holds it, equal to a fresh computation
    np.testing.assert_allclose(dataset._cache[0]["label_weight"], DilationWeightMap(2)(label))
    with pytest.raises(ValueError, match="postfix"):
        DilationWeightMapd(keys="label", radius=1, postfix="")


@pytest.mark.parametrize("radius", [0, 3])
def test_maps_stay_aligned_through_spatial_augmentation(radius):
    keys = ["image", "label", "label_weight"]
    pair = make_synthetic_pair((64, 64), fg_fraction=0.15, num_objects=3, seed=7)
    data = DilationWeightMapd(keys="label", radius=radius)(
        {"image": MetaTensor(torch.as_tensor(pair["image"])), "label": MetaTensor(torch.as_tensor(pair["label"]))}
    )
    weights = np.unique(data["label_weight"].numpy())
    augment = Compose(
        [
            RandFlipd(keys=keys, prob=1.0, spatial_axis=0),
            RandRotate90d(keys=keys, prob=1.0),
            RandZoomd(keys=keys, prob=1.0, min_zoom=1.2, max_zoom=1.5, mode=["bilinear", "nearest", "nearest"]),
            RandSpatialCropd(keys=keys, roi_size=(40, 40), random_size=False),
        ]
    ).set_random_state(3)
    out = augment(data)
    label, weight = out["label"].numpy()[0].astype(int), out["label_weight"].numpy()[0]
    assert weight.shape == label.shape == (40, 40)
    assert set(np.unique(weight)) <= set(weights)  # nearest interpolation keeps the computed weights
    counts = np.bincount(pair["label"].ravel())
    assert 0 < label.sum() < label.size
    if radius == 0:  # the map is a function of the label: any misalignment breaks the equality
        np.testing.assert_allclose(weight, 1.0 / (1.0 + counts[label]), rtol=1e-6)
    else:  # object pixels lie in their own dilation, which outweighs the background's
        assert np.all(weight[label == 1] == weights.max())
    assert torch.allclose(out["label_weight"].affine, out["label"].affine)
