"""Mask-Aware Cropping and probabilistic cropping: exactness against Algorithm 1, crop properties, sampling
frequencies, per-class mode, metadata, inversion, caching, reproducibility, thread safety and bad inputs."""

from __future__ import annotations

import itertools
import math
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from monai.data import CacheDataset, DataLoader, Dataset, MetaTensor, ThreadDataLoader
from monai.transforms import Compose, Invertd, RandFlipd
from scipy import ndimage, stats

from monai_imbalance.apps.synthetic import make_synthetic_pair
from monai_imbalance.transforms import (
    CROP_CENTER_KEY,
    CROP_CLASS_KEY,
    CROP_KIND_KEY,
    CROP_START_KEY,
    MaskAwareWindows,
    MaskAwareWindowsD,
    MaskAwareWindowsd,
    MaskAwareWindowsDict,
    ProbabilisticCropCentres,
    ProbabilisticCropCentresd,
    RandMaskAwareCrop,
    RandMaskAwareCropD,
    RandMaskAwareCropd,
    RandMaskAwareCropDict,
    RandProbabilisticCrop,
    RandProbabilisticCropD,
    RandProbabilisticCropd,
    RandProbabilisticCropDict,
    mac_window_starts,
    window_foreground_counts,
)

# ------------------------------------------------------------------------------------------------------------------
# references
# ------------------------------------------------------------------------------------------------------------------


def algorithm_1(mask, roi, stride, rho):
    """GETMACCOORDINATES of the MAC paper, generalised to n-D: a plain loop over windows, numpy slicing."""
    starts = [range(0, n - r + 1, s) for n, r, s in zip(mask.shape, roi, stride)]
    coordinates = []
    for corner in itertools.product(*starts):
        crop = mask[tuple(slice(c, c + r) for c, r in zip(corner, roi))]
        ratio = np.sum(crop != 0) / crop.size
        if ratio >= rho:
            coordinates.append(corner)
    return np.asarray(coordinates, dtype=np.int64).reshape(-1, mask.ndim)


def brute_force_counts(mask, roi, stride):
    starts = [range(0, n - r + 1, s) for n, r, s in zip(mask.shape, roi, stride)]
    out = np.zeros([len(s) for s in starts], dtype=np.int64)
    for index in itertools.product(*[range(len(s)) for s in starts]):
        window = tuple(slice(s[i], s[i] + r) for s, i, r in zip(starts, index, roi))
        out[index] = np.count_nonzero(mask[window])
    return out


def coded_image(shape, channels=1):
    """Image whose every pixel holds its own flat index: a crop tells where it came from."""
    code = np.arange(math.prod(shape), dtype=np.float32).reshape(shape)
    return np.stack([code + 0.5 * c for c in range(channels)])


def start_of(crop, shape):
    """Start corner of a crop of :func:`coded_image`."""
    return tuple(int(v) for v in np.unravel_index(int(np.asarray(crop)[(0,) * crop.ndim]), shape))


def share(label_crop, value=None):
    arr = np.asarray(label_crop)
    hits = np.count_nonzero(arr) if value is None else np.count_nonzero(arr == value)
    return hits / arr.size


@st.composite
def mask_case(draw, max_side=12):
    ndim = draw(st.sampled_from([2, 3]))
    shape = tuple(draw(st.integers(1, max_side if ndim == 2 else 8)) for _ in range(ndim))
    roi = tuple(draw(st.integers(1, n)) for n in shape)
    stride = tuple(draw(st.integers(1, 5)) for _ in range(ndim))
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    density = draw(st.floats(0.0, 1.0))
    mask = rng.integers(0, 3, shape) * (rng.random(shape) < density)
    volume = math.prod(roi)
    # rho either anywhere in [0, 1] or exactly a reachable share k / volume (the inclusive boundary)
    rho = draw(st.one_of(st.floats(0.0, 1.0), st.integers(0, volume).map(lambda k: k / volume)))
    dtype = draw(st.sampled_from([np.uint8, np.int16, np.float32, bool]))
    return mask.astype(dtype), roi, stride, rho


# ------------------------------------------------------------------------------------------------------------------
# window search
# ------------------------------------------------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(mask_case())
def test_mac_window_starts_equal_algorithm_1(case):
    mask, roi, stride, rho = case
    got = mac_window_starts(mask, roi, stride, rho)
    assert got.dtype == np.int32 and got.shape[1] == mask.ndim
    np.testing.assert_array_equal(got, algorithm_1(mask, roi, stride, rho))


@pytest.mark.parametrize("layout", ["channel_first", "torch", "metatensor", "fortran", "strided", "bool"])
def test_mac_window_starts_input_forms(layout):
    rng = np.random.default_rng(3)
    mask = (rng.random((20, 18, 7)) < 0.4).astype(np.uint8)
    expected = algorithm_1(mask, (6, 5, 3), (2, 3, 1), 0.4)
    assert len(expected) > 0
    data = {
        "channel_first": mask[None],
        "torch": torch.as_tensor(mask),
        "metatensor": MetaTensor(torch.as_tensor(mask[None])),
        "fortran": np.asfortranarray(mask),
        "strided": np.ascontiguousarray(np.repeat(mask, 2, axis=1))[:, ::2],
        "bool": mask.astype(bool),
    }[layout]
    np.testing.assert_array_equal(mac_window_starts(data, (6, 5, 3), (2, 3, 1), 0.4), expected)


def test_mac_window_starts_hand_example_and_2d_channel_first():
    mask = np.zeros((8, 8), dtype=np.uint8)
    mask[:4, :4] = 1
    assert mac_window_starts(mask, 4, 2, 0.5).tolist() == [[0, 0], [0, 2], [2, 0]]  # shares 1, 1/2, 1/2
    # (1, H, W) with an int roi_size is a channel-first 2-D mask; with 3 roi values it is a 3-D volume
    assert mac_window_starts(mask[None], 4, 2, 0.5).shape == (3, 2)
    assert mac_window_starts(mask[None], (1, 4, 4), (1, 2, 2), 0.5).tolist() == [[0, 0, 0], [0, 0, 2], [0, 2, 0]]
    # inclusive threshold: the window at (2, 2) holds exactly 4 of 16 foreground pixels
    assert [2, 2] in mac_window_starts(mask, 4, 2, 0.25).tolist()
    assert [2, 4] not in mac_window_starts(mask, 4, 2, 0.25).tolist()
    assert mac_window_starts(mask, 4, 2, 0.0).shape == (9, 2)  # rho = 0 keeps every window
    assert mac_window_starts(np.zeros((8, 8)), 4, 2, 0.0).shape == (9, 2)
    assert mac_window_starts(np.zeros((8, 8)), 4, 2, 1e-9).shape == (0, 2)


def test_mac_window_starts_allow_smaller_counts_padding_as_background():
    mask = np.ones((6, 20), dtype=np.uint8)
    with pytest.raises(ValueError, match=r"roi_size \(8, 4\) is larger than the image"):
        mac_window_starts(mask, (8, 4), 4, 0.5)
    starts = mac_window_starts(mask, (8, 4), 4, 0.75, allow_smaller=True)
    assert starts[:, 0].tolist() == [0] * 5 and starts[:, 1].tolist() == [0, 4, 8, 12, 16]  # share 6/8
    assert len(mac_window_starts(mask, (8, 4), 4, 0.76, allow_smaller=True)) == 0


@pytest.mark.parametrize(
    "shape, roi, stride",
    [
        ((600, 7), (600, 3), (1, 2)),  # one window taller than 255 rows (uint8 lanes must be split)
        ((700, 20), (512, 5), (100, 3)),  # irregular cuts, pieces > 255
        ((1000, 3), (300, 1), (700, 1)),  # stride larger than the ROI
        ((520, 5, 3), (260, 2, 3), (1, 1, 1)),
        ((300, 1100), (256, 40), (7, 64)),  # rows over the 1 MB conversion chunk for wide dtypes
        ((96, 128), (32, 32), (16, 16)),  # last axis in 8-byte words (pieces of 16 columns)
        ((40, 200), (8, 64), (3, 24)),  # words, pieces of 8 columns, several words per piece sum
        ((12, 10, 256), (4, 3, 128), (4, 2, 64)),  # 3-D, words on the last axis
        ((300, 64), (300, 32), (1, 32)),  # piece sums up to 255 * 32: above 2**8, below 2**16
        ((300, 1024), (256, 512), (1, 512)),  # 255 * 512 >= 2**16: too wide for 16-bit lanes, plain reduceat
    ],
)
@pytest.mark.parametrize("dtype", [bool, np.uint8, np.int8, np.float64])
def test_window_counts_long_pieces_and_chunks(shape, roi, stride, dtype):
    rng = np.random.default_rng(0)
    mask = (rng.integers(0, 3, shape) * (rng.random(shape) < 0.7)).astype(dtype)
    if dtype == np.int8:
        mask = -mask  # negative labels are still non-zero
    np.testing.assert_array_equal(window_foreground_counts(mask, roi, stride), brute_force_counts(mask, roi, stride))


def test_window_counts_uint8_binary_fast_path_and_values_above_one():
    rng = np.random.default_rng(1)
    binary = (rng.random((64, 48)) < 0.3).astype(np.uint8)
    expected = brute_force_counts(binary, (16, 8), (4, 4))
    np.testing.assert_array_equal(window_foreground_counts(binary, (16, 8), (4, 4)), expected)
    np.testing.assert_array_equal(window_foreground_counts(binary * 255, (16, 8), (4, 4)), expected)
    np.testing.assert_array_equal(window_foreground_counts(np.asfortranarray(binary), (16, 8), (4, 4)), expected)


# ------------------------------------------------------------------------------------------------------------------
# the precompute record
# ------------------------------------------------------------------------------------------------------------------


def test_mask_aware_windows_record_and_cap():
    pair = make_synthetic_pair((96, 80), fg_fraction=0.2, num_objects=2, seed=4)
    record = MaskAwareWindows(32, rho=0.1, stride=8)(pair["label"])
    full = mac_window_starts(pair["label"], 32, 8, 0.1)
    assert record["starts"].dtype == np.int32
    np.testing.assert_array_equal(record["starts"], full)
    assert record["counts"].tolist() == [len(full)] and record["num_valid"].tolist() == [len(full)]
    assert record["spatial_shape"] == (96, 80) and record["roi_size"] == (32, 32) and record["stride"] == (8, 8)
    assert record["rho"] == (0.1,) and record["classes"] is None

    capped = MaskAwareWindows(32, rho=0.1, stride=8, max_windows=5, seed=1)(pair["label"])
    assert len(capped["starts"]) == 5 and capped["num_valid"].tolist() == [len(full)]
    rows = [tuple(r) for r in full]
    positions = [rows.index(tuple(r)) for r in capped["starts"]]
    assert positions == sorted(positions)  # a subset of Algorithm 1's list, in its order
    again = MaskAwareWindows(32, rho=0.1, stride=8, max_windows=5, seed=1)(pair["label"])
    np.testing.assert_array_equal(capped["starts"], again["starts"])  # deterministic: cacheable


def test_mask_aware_windowsd_postfix_and_aliases():
    pair = make_synthetic_pair((64, 64), fg_fraction=0.1, seed=0)
    assert MaskAwareWindowsD is MaskAwareWindowsd and MaskAwareWindowsDict is MaskAwareWindowsd
    assert RandMaskAwareCropD is RandMaskAwareCropd and RandMaskAwareCropDict is RandMaskAwareCropd
    assert RandProbabilisticCropD is RandProbabilisticCropd and RandProbabilisticCropDict is RandProbabilisticCropd
    out = MaskAwareWindowsd("label", 32, rho=0.2, stride=16, windows_postfix="_w")(pair)
    np.testing.assert_array_equal(out["label_w"]["starts"], mac_window_starts(pair["label"], 32, 16, 0.2))
    assert out["label"] is pair["label"]


def test_windows_cache_is_small_for_a_large_volume():
    label = np.zeros((1, 256, 256, 120), dtype=np.uint8)
    label[0, 60:200, 40:180, 10:100] = 1
    record = MaskAwareWindows(96, rho=0.5, stride=16)(label)
    size = sum(v.nbytes for v in record.values() if isinstance(v, np.ndarray))
    assert record["starts"].nbytes == 4 * 3 * len(record["starts"]) and len(record["starts"]) > 0
    assert size < 50_000  # MONAI's fg/bg indices for this label: 8 bytes per voxel, about 63 MB


# ------------------------------------------------------------------------------------------------------------------
# MAC crops
# ------------------------------------------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(mask_case(max_side=14), st.integers(0, 2**31))
def test_every_mac_crop_is_a_valid_window_inside_the_image(case, seed):
    mask, roi, stride, rho = case
    shape = mask.shape
    label = mask[None].astype(np.uint8) if mask.dtype == bool else mask[None]
    crop = RandMaskAwareCrop(roi, rho=rho, stride=stride, tau=1, num_samples=6)
    crop.set_random_state(seed)
    valid = {tuple(r) for r in algorithm_1(mask, roi, stride, rho)}
    image = coded_image(shape)
    windows = crop.windows(label)
    samples = crop.randomize(shape, windows)
    image_crops = crop(image, samples=samples)
    label_crops = crop(label, samples=samples)
    for sample, image_crop, label_crop in zip(samples, image_crops, label_crops):
        start = start_of(image_crop, shape)
        assert start == sample.start == image_crop.meta[CROP_START_KEY]
        assert tuple(image_crop.shape[1:]) == roi
        assert all(0 <= s and s + r <= n for s, r, n in zip(start, roi, shape))
        if valid:
            assert image_crop.meta[CROP_KIND_KEY] == "mac" and start in valid
            assert share(label_crop) >= rho
        else:
            assert image_crop.meta[CROP_KIND_KEY] == "fallback"


@pytest.mark.parametrize("tau, prob", [(3, None), (None, 0.2), (1, None), (None, 0.0)])
def test_realised_mac_rate_matches_frequency(tau, prob):
    # Each sample is MAC with probability p, independently: the count is Binomial(n, p). Tolerance: 4.5 standard
    # deviations (two-sided chance of failing for a correct sampler ~7e-6; the seed is fixed, so never flaky).
    p = 1 / tau if tau else prob
    label = np.zeros((1, 64, 64), dtype=np.uint8)
    label[0, 10:40, 20:50] = 1
    crop = RandMaskAwareCrop(16, rho=0.5, stride=8, tau=tau, prob=prob, num_samples=500)
    crop.set_random_state(7)
    record = crop.windows(label)
    kinds = [s.kind for _ in range(6) for s in crop.randomize((64, 64), record)]
    n = len(kinds)
    rate = kinds.count("mac") / n
    assert abs(rate - p) <= 4.5 * math.sqrt(p * (1 - p) / n) + 1e-12
    assert kinds.count("fallback") == 0 and kinds.count("mac") + kinds.count("random") == n


def test_mac_picks_windows_uniformly_and_random_crops_uniformly():
    label = np.zeros((1, 40, 40), dtype=np.uint8)
    label[0, 5:30, 5:30] = 1
    crop = RandMaskAwareCrop(10, rho=0.6, stride=5, prob=0.5, num_samples=4000)
    crop.set_random_state(0)
    record = crop.windows(label)
    samples = crop.randomize((40, 40), record)
    mac = [s.start for s in samples if s.kind == "mac"]
    rows = [tuple(r) for r in record["starts"]]
    observed = np.array([mac.count(r) for r in rows])
    assert set(mac) <= set(rows) and observed.min() > 0
    assert stats.chisquare(observed).pvalue > 1e-4
    # random crops: every start position 0..30 on each axis equally likely (like RandSpatialCrop)
    random_rows = np.array([s.start for s in samples if s.kind == "random"])
    for axis in range(2):
        freq = np.bincount(random_rows[:, axis], minlength=31)
        assert len(freq) == 31 and stats.chisquare(freq).pvalue > 1e-4


@pytest.mark.parametrize("tau", [1, 2])
def test_empty_label_falls_back_to_random_crops(tau):
    label = np.zeros((1, 30, 20, 12), dtype=np.uint8)
    image = coded_image((30, 20, 12))
    crop = RandMaskAwareCrop((8, 8, 4), rho=0.1, stride=4, tau=tau, num_samples=40)
    crop.set_random_state(2)
    outs = crop(image, label)
    kinds = {o.meta[CROP_KIND_KEY] for o in outs}
    assert kinds <= {"fallback", "random"} and "fallback" in kinds and "mac" not in kinds
    if tau == 1:
        assert kinds == {"fallback"}
    assert len({start_of(o, (30, 20, 12)) for o in outs}) > 10  # spread over the image, not one spot
    assert all(tuple(o.shape) == (1, 8, 8, 4) for o in outs)


def test_per_class_mode_shares_and_class_ratios():
    label = np.zeros((1, 64, 64), dtype=np.uint8)
    label[0, 0:32, 0:32] = 1  # large class 1
    label[0, 44:52, 44:52] = 2  # small class 2
    crop = RandMaskAwareCrop(16, rho=[0.9, 0.2], stride=4, tau=1, classes=[1, 2], ratios=[1, 3], num_samples=2000)
    crop.set_random_state(3)
    record = crop.windows(label)
    assert record["classes"] == (1, 2) and len(record["counts"]) == 2 and record["counts"].min() > 0
    samples = crop.randomize((64, 64), record)
    classes = np.array([s.label_class for s in samples])
    for s in samples:
        window = label[0, s.start[0] : s.start[0] + 16, s.start[1] : s.start[1] + 16]
        assert s.kind == "mac" and share(window, s.label_class) >= (0.9 if s.label_class == 1 else 0.2)
    n, p = len(classes), 0.75
    assert abs(np.mean(classes == 2) - p) <= 4.5 * math.sqrt(p * (1 - p) / n)
    small = RandMaskAwareCrop(16, rho=[0.9, 0.2], stride=4, tau=1, classes=[1, 2], num_samples=20)
    for out in small(coded_image((64, 64)), label):
        assert out.meta[CROP_KIND_KEY] == "mac" and out.meta[CROP_CLASS_KEY] in (1, 2)
        window = label[0][tuple(slice(a, a + 16) for a in out.meta[CROP_START_KEY])]
        assert share(window, out.meta[CROP_CLASS_KEY]) >= (0.9 if out.meta[CROP_CLASS_KEY] == 1 else 0.2)

    # a class without valid windows is skipped; none at all -> fallback, crop_class 0
    only_one = label.copy()
    only_one[only_one == 2] = 0
    assert {s.label_class for s in crop.randomize((64, 64), crop.windows(only_one))} == {1}
    outs = small(coded_image((64, 64)), np.zeros_like(label))
    assert {o.meta[CROP_KIND_KEY] for o in outs} == {"fallback"} and {o.meta[CROP_CLASS_KEY] for o in outs} == {0}


def test_allow_smaller_pads_and_windows_see_the_padding():
    label = np.ones((1, 10, 40), dtype=np.uint8)
    image = coded_image((10, 40))
    with pytest.raises(ValueError, match=r"roi_size \(16, 8\) is larger than the image \(spatial shape \(10, 40\)\)"):
        RandMaskAwareCrop((16, 8), rho=0.5, stride=4, tau=1)(image, label)
    crop = RandMaskAwareCrop((16, 8), rho=0.6, stride=4, tau=1, num_samples=5, allow_smaller=True)
    crop.set_random_state(0)
    for out in crop(image, label):
        assert tuple(out.shape) == (1, 16, 8) and out.meta[CROP_KIND_KEY] == "mac"  # share 10/16 >= 0.6
        assert np.all(np.asarray(out[0, :3]) == 0) and np.all(np.asarray(out[0, 13:]) == 0)  # symmetric padding
        assert out.meta[CROP_START_KEY][0] == 0
    assert crop.windows(label)["counts"].tolist() == [9]
    none_valid = RandMaskAwareCrop((16, 8), rho=0.7, stride=4, tau=1, num_samples=3, allow_smaller=True)
    assert {o.meta[CROP_KIND_KEY] for o in none_valid(image, label)} == {"fallback"}


@pytest.mark.parametrize("kind", ["numpy", "torch", "metatensor"])
def test_input_types_give_the_same_crops_and_keep_metadata(kind):
    pair = make_synthetic_pair((48, 40, 24), fg_fraction=0.1, num_objects=2, seed=5)
    affine = torch.diag(torch.tensor([0.5, 0.7, 2.0, 1.0], dtype=torch.float64))
    convert = {
        "numpy": lambda a: a,
        "torch": torch.as_tensor,
        "metatensor": lambda a: MetaTensor(a, affine=affine, meta={"filename_or_obj": "case_07.nii.gz"}),
    }[kind]
    crop = RandMaskAwareCrop((16, 16, 8), rho=0.2, stride=8, tau=2, num_samples=5)
    crop.set_random_state(11)
    outs = crop(convert(pair["image"]), convert(pair["label"]))
    crop.set_random_state(11)
    reference = crop(pair["image"], pair["label"])
    for out, ref in zip(outs, reference):
        assert isinstance(out, MetaTensor)
        np.testing.assert_array_equal(out.numpy(), ref.numpy())
        start = out.meta[CROP_START_KEY]
        assert out.meta[CROP_KIND_KEY] == ref.meta[CROP_KIND_KEY]
        np.testing.assert_array_equal(out.numpy(), pair["image"][:, start[0] : start[0] + 16,
                                                                  start[1] : start[1] + 16, start[2] : start[2] + 8])
        if kind == "metatensor":
            assert out.meta["filename_or_obj"] == "case_07.nii.gz"
            expected = affine.clone()
            expected[:3, 3] = affine[:3, :3] @ torch.tensor(start, dtype=torch.float64)
            torch.testing.assert_close(out.affine, expected)


def test_set_random_state_reproducible_and_seed_dependent():
    pair = make_synthetic_pair((96, 96), fg_fraction=0.05, seed=2)

    def draw(seed):
        crop = RandMaskAwareCropd(["image", "label"], "label", 32, rho=0.1, stride=8, tau=2, num_samples=8)
        crop.set_random_state(seed)
        return [(o["image"].meta[CROP_START_KEY], o["image"].meta[CROP_KIND_KEY]) for _ in range(3) for o in crop(pair)]

    assert draw(5) == draw(5)
    assert draw(5) != draw(6)


# ------------------------------------------------------------------------------------------------------------------
# dictionary transforms, inversion, datasets, threads
# ------------------------------------------------------------------------------------------------------------------


def _meta_pair(shape, seed, channels=1):
    pair = make_synthetic_pair(shape, fg_fraction=0.08, num_objects=2, channels=channels, seed=seed)
    affine = torch.eye(len(shape) + 1, dtype=torch.float64)
    affine[: len(shape), : len(shape)] *= 0.8
    affine[: len(shape), -1] = torch.arange(len(shape)) + 3.0
    return {k: MetaTensor(v, affine=affine, meta={"filename_or_obj": f"{k}.nii"}) for k, v in pair.items()}


@pytest.mark.parametrize("shape, roi", [((64, 56), (32, 24)), ((40, 36, 20), (16, 16, 8))])
@pytest.mark.parametrize("allow_smaller", [False, True])
def test_inversion_restores_the_original_grid(shape, roi, allow_smaller):
    data = _meta_pair(shape, seed=3)
    if allow_smaller:
        roi = (shape[0] + 6,) + roi[1:]  # taller than the image: padded crop
    transform = Compose([
        MaskAwareWindowsd("label", roi, rho=0.05, stride=4, allow_smaller=allow_smaller),
        RandMaskAwareCropd(["image", "label"], "label", roi, rho=0.05, stride=4, tau=2, num_samples=3,
                           windows_key="label_mac_windows", allow_smaller=allow_smaller),
        RandFlipd(["image", "label"], prob=0.5, spatial_axis=0),
    ])
    transform.set_random_state(1)
    outputs = transform(data)
    assert len(outputs) == 3 and all("label_mac_windows" not in o for o in outputs)
    for out in outputs:
        assert tuple(out["image"].shape[1:]) == roi
        # Invertd maps a prediction on the crop back to the original grid using the label's trace, as for
        # RandSpatialCropd (first: MONAI's inverse below pops the traces in place)
        out["pred"] = MetaTensor(out["label"].as_tensor().clone())
        inverted = Invertd("pred", transform=transform, orig_keys="label", nearest_interp=True)(out)
        restored = transform.inverse(out)
        for key in ("image", "label"):
            assert tuple(restored[key].shape) == tuple(data[key].shape)
            torch.testing.assert_close(restored[key].affine, data[key].affine)
            assert len(restored[key].applied_operations) == 0
            start = out[key].meta[CROP_START_KEY]
            region = tuple(slice(s, s + min(r, n)) for s, r, n in zip(start, roi, shape))
            original = np.asarray(data[key])
            back = np.asarray(restored[key])
            np.testing.assert_array_equal(back[(slice(None),) + region], original[(slice(None),) + region])
            outside = np.ones(shape, dtype=bool)
            outside[region] = False
            assert np.all(back[:, outside] == 0)
        assert tuple(inverted["pred"].shape) == tuple(data["label"].shape)
        np.testing.assert_array_equal(np.asarray(inverted["pred"]), np.asarray(restored["label"]))


def test_dictionary_checks_the_cached_record_against_its_arguments():
    data = make_synthetic_pair((64, 64), fg_fraction=0.1, seed=1)
    data = MaskAwareWindowsd("label", 32, rho=0.5, stride=16)(data)
    for kwargs, field in [({"roi_size": 16}, "roi_size"), ({"rho": 0.25}, "rho"), ({"stride": 8}, "stride")]:
        args = {"roi_size": 32, "rho": 0.5, "stride": 16, **kwargs}
        crop = RandMaskAwareCropd(["image", "label"], "label", tau=2, windows_key="label_mac_windows", **args)
        with pytest.raises(ValueError, match=f"the windows were computed with {field}="):
            crop(data)
    crop = RandMaskAwareCropd(["image", "label"], "label", 32, rho=0.5, stride=16, tau=2, windows_key="missing")
    with pytest.raises(ValueError, match="'missing' is not in the data"):
        crop(data)
    small = {"image": data["image"][:, :48], "label": data["label"][:, :48], "w": data["label_mac_windows"]}
    crop = RandMaskAwareCropd(["image", "label"], "label", 32, rho=0.5, stride=16, tau=2, windows_key="w")
    with pytest.raises(ValueError, match=r"computed on spatial shape \(64, 64\) but the image has \(48, 64\)"):
        crop(small)


def _count_calls(monkeypatch, cls):
    calls = []
    original = cls.__call__

    def counting(self, label):
        calls.append(1)
        return original(self, label)

    monkeypatch.setattr(cls, "__call__", counting)
    return calls


def test_cache_dataset_runs_the_precompute_once_per_item(monkeypatch):
    mac_calls = _count_calls(monkeypatch, MaskAwareWindows)
    pc_calls = _count_calls(monkeypatch, ProbabilisticCropCentres)
    items = [make_synthetic_pair((64, 64), fg_fraction=0.1, seed=i) for i in range(4)]
    mac = Compose([
        MaskAwareWindowsd("label", 32, rho=0.1, stride=8),
        RandMaskAwareCropd(["image", "label"], "label", 32, rho=0.1, stride=8, tau=2, num_samples=2,
                           windows_key="label_mac_windows"),
    ])
    pc = Compose([
        ProbabilisticCropCentresd("label"),
        RandProbabilisticCropd(["image", "label"], "label", 16, num_samples=3, centres_key="label_pc_centres"),
    ])
    mac_data, pc_data = CacheDataset(items, mac, progress=False), CacheDataset(items, pc, progress=False)
    assert len(mac_calls) == len(pc_calls) == 4
    for _ in range(3):
        for i in range(len(items)):
            assert [tuple(o["image"].shape) for o in mac_data[i]] == [(1, 32, 32)] * 2
            assert [tuple(o["image"].shape) for o in pc_data[i]] == [(1, 16, 16)] * 3
    assert len(mac_calls) == len(pc_calls) == 4  # still once per item after three epochs
    # without the cache (plain Dataset) the same pipeline recomputes every time
    plain = Dataset(items, mac)
    _ = [plain[i] for i in range(4)]
    assert len(mac_calls) == 8


def _starts_of_batches(loader):
    return [tuple(map(tuple, batch["image"].meta[CROP_START_KEY])) for batch in loader]


def test_multiworker_loader_same_seed_same_crops():
    items = [make_synthetic_pair((64, 64), fg_fraction=0.1, seed=i) for i in range(6)]
    transform = Compose([
        MaskAwareWindowsd("label", 32, rho=0.1, stride=8),
        RandMaskAwareCropd(["image", "label"], "label", 32, rho=0.1, stride=8, tau=2, num_samples=2,
                           windows_key="label_mac_windows"),
    ])
    runs = []
    for seed in (0, 0, 1):
        generator = torch.Generator().manual_seed(seed)
        loader = DataLoader(Dataset(items, transform), batch_size=4, num_workers=2, generator=generator)
        runs.append(_starts_of_batches(loader))
    assert runs[0] == runs[1] and runs[0] != runs[2]


def test_thread_safety_one_instance_many_threads():
    # items of different sizes and contents; a crop that used another thread's windows would either fall outside
    # its image, take a start that is not a valid window of its own label, or disagree between image and label
    shapes = [(48, 40), (64, 64), (40, 72), (56, 48)]
    items = []
    for i, shape in enumerate(shapes):
        pair = make_synthetic_pair(shape, fg_fraction=0.15, num_objects=2, seed=i)
        items.append({"image": coded_image(shape), "label": pair["label"], "shape": shape})
    crop = RandMaskAwareCropd(["image", "label"], "label", 16, rho=0.3, stride=4, tau=1, num_samples=4)
    crop.set_random_state(0)
    valid = [{tuple(r) for r in algorithm_1(it["label"][0], (16, 16), (4, 4), 0.3)} for it in items]
    assert all(valid)

    def work(index):
        item = items[index % len(items)]
        return index % len(items), crop(item)

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(work, range(160)))
    for index, outs in results:
        item = items[index]
        for out in outs:
            start = out["image"].meta[CROP_START_KEY]
            assert start_of(out["image"], item["shape"]) == start == out["label"].meta[CROP_START_KEY]
            assert start in valid[index]
            expected = item["label"][:, start[0] : start[0] + 16, start[1] : start[1] + 16]
            np.testing.assert_array_equal(np.asarray(out["label"]), expected)

    # ThreadDataLoader with thread workers shares the transform between threads
    dataset = Dataset([{k: v for k, v in it.items() if k != "shape"} for it in items[:1]] * 16, crop)
    loader = ThreadDataLoader(dataset, batch_size=4, num_workers=2, use_thread_workers=True)
    for batch in loader:
        for b in range(batch["image"].shape[0]):
            start = start_of(batch["image"][b], shapes[0])
            assert start in valid[0]
            np.testing.assert_array_equal(
                np.asarray(batch["label"][b]), items[0]["label"][:, start[0] : start[0] + 16, start[1] : start[1] + 16]
            )


@pytest.mark.gpu
def test_cuda_inputs_are_cropped_on_their_device():
    pair = make_synthetic_pair((64, 64, 32), fg_fraction=0.1, seed=0)
    data = {k: MetaTensor(torch.as_tensor(v, device="cuda")) for k, v in pair.items()}
    for crop in (
        RandMaskAwareCropd(["image", "label"], "label", (32, 32, 16), rho=0.2, stride=8, tau=1, num_samples=2),
        RandProbabilisticCropd(["image", "label"], "label", (32, 32, 16), num_samples=2),
    ):
        crop.set_random_state(0)
        for out in crop(data):
            assert out["image"].device.type == "cuda" and out["label"].device.type == "cuda"
            start = out["label"].meta[CROP_START_KEY]
            expected = pair["label"][:, start[0] : start[0] + 32, start[1] : start[1] + 32, start[2] : start[2] + 16]
            np.testing.assert_array_equal(out["label"].cpu().numpy(), expected)


# ------------------------------------------------------------------------------------------------------------------
# probabilistic cropping
# ------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("power", [0.0, 1.0, 2.5])
@pytest.mark.parametrize("shape", [(30, 26), (14, 12, 10)])
def test_pc_record_equals_full_image_edt(power, shape):
    pair = make_synthetic_pair(shape, fg_fraction=0.15, num_objects=2, border_rate=0.5, seed=9)
    fg = pair["label"][0] != 0
    record = ProbabilisticCropCentres(power)(pair["label"])
    edt = ndimage.distance_transform_edt(fg)  # on the whole image: the bounding-box shortcut must agree
    np.testing.assert_array_equal(record["indices"], np.flatnonzero(fg))
    np.testing.assert_allclose(np.diff(record["cdf"], prepend=0.0), edt[fg] ** power, rtol=1e-12)
    assert record["indices"].dtype == np.int32 and record["cdf"].dtype == np.float64


@pytest.mark.parametrize("max_boxes", [256, 2])
def test_pc_component_boxes_give_whole_image_distances(monkeypatch, max_boxes):
    # force the split by connected components (used for large images) on small, awkward layouts: a ring around
    # another object, objects touching diagonally or one pixel apart, objects on the border, speckles
    from monai_imbalance.transforms import utils as utils_module

    monkeypatch.setattr(utils_module, "SPLIT_BOX_PIXELS", 0)
    monkeypatch.setattr(utils_module, "MAX_COMPONENT_BOXES", max_boxes)
    label = np.zeros((40, 44), dtype=np.uint8)
    label[5:25, 5:25] = 1
    label[8:22, 8:22] = 0  # a ring ...
    label[12:18, 12:18] = 2  # ... around a second object
    label[30:34, 30:34] = 1
    label[34:37, 34:38] = 1  # touches the previous one diagonally
    label[30:33, 39:44] = 1  # one pixel apart, on the border
    label[0, 0] = label[39, 20] = 1  # speckles on the border
    rng = np.random.default_rng(0)
    volume = (ndimage.gaussian_filter(rng.random((24, 20, 18)), 1.5) > 0.56).astype(np.uint8)
    for mask in (label, volume):
        fg = mask != 0
        record = ProbabilisticCropCentres(2.0)(mask[None])
        np.testing.assert_array_equal(record["indices"], np.flatnonzero(fg))
        expected = ndimage.distance_transform_edt(fg)[fg] ** 2.0
        np.testing.assert_allclose(np.diff(record["cdf"], prepend=0.0), expected, rtol=1e-9)


def test_pc_centres_follow_distance_weights():
    label = np.zeros((1, 20, 20), dtype=np.uint8)
    label[0, 4:11, 3:9] = 1
    label[0, 14:16, 14:19] = 1
    crop = RandProbabilisticCrop(4, power=1.5, num_samples=20000)
    crop.set_random_state(0)
    record = crop.centres(label)
    samples = crop.randomize((20, 20), record)
    flat = [np.ravel_multi_index(s.centre, (20, 20)) for s in samples]
    observed = np.bincount(flat, minlength=400)[record["indices"]]
    weights = np.diff(record["cdf"], prepend=0.0)
    expected = weights / weights.sum() * len(samples)
    assert observed.sum() == len(samples)  # every centre is a foreground pixel
    assert stats.chisquare(observed, expected).pvalue > 1e-4
    for s in samples[:200]:
        assert s.kind == "pc"
        assert all(st_ <= c < st_ + 4 and 0 <= st_ <= 16 for st_, c in zip(s.start, s.centre))


def test_pc_border_objects_keep_their_crops_and_empty_label_falls_back():
    label = np.zeros((1, 32, 32), dtype=np.uint8)
    label[0, 0:5, 27:32] = 1  # object in the corner
    image = coded_image((32, 32))
    crop = RandProbabilisticCropd(["image", "label"], "label", (12, 12), num_samples=50)
    crop.set_random_state(1)
    outs = crop({"image": image, "label": label})
    for out in outs:
        assert out["image"].meta[CROP_KIND_KEY] == "pc"
        assert out["image"].meta[CROP_START_KEY] == (0, 20)  # clipped into the image, never dropped
        assert share(out["label"]) == 25 / 144
    empty = crop({"image": image, "label": np.zeros_like(label)})
    assert {o["image"].meta[CROP_KIND_KEY] for o in empty} == {"fallback"}
    assert len({o["image"].meta[CROP_START_KEY] for o in empty}) > 5
    full = ProbabilisticCropCentres()(np.ones((1, 6, 6), dtype=np.uint8))
    np.testing.assert_array_equal(np.diff(full["cdf"], prepend=0.0), np.ones(36))  # no background: equal weights


def test_pc_inversion_and_power_check():
    data = _meta_pair((40, 36, 20), seed=5)
    transform = Compose([
        ProbabilisticCropCentresd("label", power=2.0),
        RandProbabilisticCropd(["image", "label"], "label", (16, 12, 8), power=2.0, num_samples=2,
                               centres_key="label_pc_centres"),
    ])
    transform.set_random_state(0)
    for out in transform(data):
        assert out["image"].meta[CROP_CENTER_KEY] is not None and "label_pc_centres" not in out
        restored = transform.inverse(out)
        assert tuple(restored["image"].shape) == tuple(data["image"].shape)
        torch.testing.assert_close(restored["image"].affine, data["image"].affine)
    cached = ProbabilisticCropCentresd("label", power=2.0)(data)
    wrong = RandProbabilisticCropd(["image", "label"], "label", 8, power=1.0, centres_key="label_pc_centres")
    with pytest.raises(ValueError, match=r"computed with power=2.0 but this crop uses power=1.0"):
        wrong(cached)


# ------------------------------------------------------------------------------------------------------------------
# bad input
# ------------------------------------------------------------------------------------------------------------------

_IMAGE = np.zeros((1, 32, 32), dtype=np.float32)
_LABEL = np.zeros((1, 32, 32), dtype=np.uint8)


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: RandMaskAwareCrop(16, stride=0, tau=2), r"stride must be >= 1 on every axis, got 0"),
        (lambda: RandMaskAwareCrop(16, stride=(4, 0), tau=2), r"stride must be >= 1 on every axis, got \(4, 0\)"),
        (lambda: RandMaskAwareCrop(16, rho=1.5, tau=2), r"rho must be in \[0, 1\].*got 1.5"),
        (lambda: RandMaskAwareCrop(16, rho=-0.1, tau=2), r"rho must be in \[0, 1\].*got -0.1"),
        (lambda: RandMaskAwareCrop(16, rho=float("nan"), tau=2), r"rho must be in \[0, 1\]"),
        (lambda: RandMaskAwareCrop(16, tau=0.5), r"tau must be >= 1.*got tau=0.5"),
        (lambda: RandMaskAwareCrop(16, tau=2, prob=0.5), r"exactly one of tau.*got tau=2, prob=0.5"),
        (lambda: RandMaskAwareCrop(16), r"exactly one of tau.*got tau=None, prob=None"),
        (lambda: RandMaskAwareCrop(16, prob=1.2), r"prob must be in \[0, 1\], got prob=1.2"),
        (lambda: RandMaskAwareCrop(0, tau=2), r"roi_size must be >= 1"),
        (lambda: RandMaskAwareCrop(16, tau=2, num_samples=0), r"num_samples must be an int >= 1, got 0"),
        (lambda: RandMaskAwareCrop(16, rho=[0.1, 0.2], tau=2), r"rho must be one number unless classes"),
        (lambda: RandMaskAwareCrop(16, rho=[0.1], tau=2, classes=[1, 2]), r"rho must be one number or one per class"),
        (lambda: RandMaskAwareCrop(16, tau=2, classes=[0, 1]), r"classes must be distinct label values >= 1"),
        (lambda: RandMaskAwareCrop(16, tau=2, classes=[1, 2], ratios=[1.0]), r"ratios must be one non-negative"),
        (lambda: RandMaskAwareCrop(16, tau=2, ratios=[1.0]), r"ratios must be one non-negative"),
        (lambda: MaskAwareWindowsd("label", 16, max_windows=0), r"max_windows must be None or >= 1, got 0"),
        (lambda: RandProbabilisticCrop(16, power=-1), r"power must be a finite number >= 0, got power=-1"),
        (lambda: RandMaskAwareCrop(48, tau=2)(_IMAGE, _LABEL), r"roi_size \(48, 48\) is larger than the image"),
        (lambda: RandProbabilisticCrop(48)(_IMAGE, _LABEL), r"roi_size \(48, 48\) is larger than the image"),
        (
            lambda: RandMaskAwareCrop(16, tau=2)(_IMAGE, _LABEL[:, :30]),
            r"image and label spatial shapes differ: image \(32, 32\), label \(30, 32\)",
        ),
        (
            lambda: RandMaskAwareCrop(16, tau=2)(_IMAGE, np.zeros((2, 32, 32))),
            r"label must be channel-first with one channel.*got shape \(2, 32, 32\)",
        ),
        (
            lambda: RandProbabilisticCrop(16)(_IMAGE, np.zeros((3, 32, 32))),
            r"label must be channel-first with one channel.*got shape \(3, 32, 32\)",
        ),
        (
            lambda: RandMaskAwareCrop(16, tau=2)(_IMAGE, _LABEL + np.float32(0.5)),
            r"label has non-integer values \(e.g. \[0.5\]\)",
        ),
        (
            lambda: RandProbabilisticCrop(16)(_IMAGE, _LABEL - np.float32(0.25)),
            r"label has non-integer values",
        ),
        (lambda: mac_window_starts(np.zeros((2, 8, 8)), (4, 4), 2, 0.5), r"mask must have one channel, got shape"),
        (
            lambda: MaskAwareWindowsd("label", 4)({"label": np.zeros((2, 8, 8))}),
            r"label must be channel-first with one channel.*got shape \(2, 8, 8\)",
        ),
        (
            lambda: MaskAwareWindows(4)(np.zeros((8, 8))),
            r"label must be channel-first with one channel.*got shape \(8, 8\)",
        ),
        (lambda: MaskAwareWindows(4)(np.full((1, 8, 8), np.nan)), r"label contains NaN or infinite values"),
        (lambda: ProbabilisticCropCentres()(-np.ones((1, 8, 8))), r"label has negative values"),
        (lambda: mac_window_starts(np.zeros((8, 8)), (4, 4), 2, 2.0), r"rho must be in \[0, 1\]"),
        (
            lambda: RandMaskAwareCropd(["image", "label"], "label", 16, tau=2)(
                {"image": _IMAGE[:, :, :20], "label": _LABEL}
            ),
            r"spatial shapes differ: 'image' has \(32, 20\), 'label' has \(32, 32\)",
        ),
        (
            lambda: RandMaskAwareCrop(16, tau=2)(_IMAGE, windows=np.zeros((3, 2), dtype=np.int32)),
            r"windows must be the record of MaskAwareWindows",
        ),
    ],
)
def test_bad_input_raises_value_error_naming_it(make, match):
    with pytest.raises(ValueError, match=match):
        make()
