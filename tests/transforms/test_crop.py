"""Mask-Aware Cropping and probabilistic cropping: exactness against Algorithm 1, crop properties, sampling
frequencies, per-class mode, geometry read from the record, metadata, inversion, caching, reproducibility, thread
safety, deprecated spellings and bad inputs. References and builders: ``conftest.py``."""

from __future__ import annotations

import math
import warnings
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
    MAC_DEFAULTS,
    PC_DEFAULTS,
    CropSample,
    MaskAwareWindows,
    MaskAwareWindowsD,
    MaskAwareWindowsd,
    MaskAwareWindowsDict,
    ProbabilisticCropCenters,
    ProbabilisticCropCentersD,
    ProbabilisticCropCentersd,
    ProbabilisticCropCentersDict,
    ProbabilisticCropCentres,
    ProbabilisticCropCentresD,
    ProbabilisticCropCentresd,
    ProbabilisticCropCentresDict,
    RandMaskAwareCrop,
    RandMaskAwareCropD,
    RandMaskAwareCropd,
    RandMaskAwareCropDict,
    RandProbabilisticCrop,
    RandProbabilisticCropD,
    RandProbabilisticCropd,
    RandProbabilisticCropDict,
    mac_window_starts,
)

# ------------------------------------------------------------------------------------------------------------------
# window search
# ------------------------------------------------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_mac_window_starts_equal_algorithm_1(mask_cases, algorithm_1, data):
    mask, roi, stride, rho = data.draw(mask_cases())
    got = mac_window_starts(mask, roi, stride, rho)
    assert got.dtype == np.int32 and got.shape[1] == mask.ndim
    np.testing.assert_array_equal(got, algorithm_1(mask, roi, stride, rho))


@pytest.mark.parametrize("layout", ["channel_first", "torch", "metatensor", "fortran", "strided", "bool"])
def test_mac_window_starts_input_forms(layout, algorithm_1):
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
    assert mac_window_starts(mask[None], 4, 2, 0.5).tolist() == [[0, 0], [0, 2], [2, 0]]
    assert mac_window_starts(mask[None], (1, 4, 4), (1, 2, 2), 0.5).tolist() == [[0, 0, 0], [0, 0, 2], [0, 2, 0]]
    # inclusive threshold: the window at (2, 2) holds exactly 4 of 16 foreground pixels; (2, 4) holds 0
    assert mac_window_starts(mask, 4, 2, 0.25).tolist() == [[0, 0], [0, 2], [2, 0], [2, 2]]
    every_window = [[y, x] for y in (0, 2, 4) for x in (0, 2, 4)]
    assert mac_window_starts(mask, 4, 2, 0.0).tolist() == every_window  # rho = 0 keeps every window
    assert mac_window_starts(np.zeros((8, 8)), 4, 2, 0.0).tolist() == every_window
    assert mac_window_starts(np.zeros((8, 8)), 4, 2, 1e-9).tolist() == []
    # the paper's stride and rho are the defaults: on a 64x64 mask with a 16x16 square, the windows of 16
    default = np.zeros((64, 64), dtype=np.uint8)
    default[16:32, 16:32] = 1
    assert mac_window_starts(default, 16).tolist() == mac_window_starts(default, 16, 16, 0.25).tolist() == [[16, 16]]


def test_mac_window_starts_allow_smaller_counts_padding_as_background():
    mask = np.ones((6, 20), dtype=np.uint8)
    with pytest.raises(ValueError, match=r"roi_size \(8, 4\) is larger than the image"):
        mac_window_starts(mask, (8, 4), 4, 0.5)
    starts = mac_window_starts(mask, (8, 4), 4, 0.75, allow_smaller=True)
    assert starts[:, 0].tolist() == [0] * 5 and starts[:, 1].tolist() == [0, 4, 8, 12, 16]  # share 6/8
    assert len(mac_window_starts(mask, (8, 4), 4, 0.76, allow_smaller=True)) == 0


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
    assert record["rho"] == (0.1,) and record["classes"] is None and record["allow_smaller"] is False

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
    assert ProbabilisticCropCentersD is ProbabilisticCropCentersDict is ProbabilisticCropCentersd
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
@given(data=st.data(), seed=st.integers(0, 2**31))
def test_every_mac_crop_is_a_valid_window_inside_the_image(data, seed, mask_cases, algorithm_1, coded_image, start_of,
                                                           share):
    mask, roi, stride, rho = data.draw(mask_cases(max_side=14))
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
def test_empty_label_falls_back_to_random_crops(tau, coded_image, start_of):
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


def test_per_class_mode_shares_and_class_ratios(coded_image, share):
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


def test_allow_smaller_pads_and_windows_see_the_padding(coded_image):
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
        assert isinstance(out, MetaTensor) and out.meta[CROP_START_KEY] == ref.meta[CROP_START_KEY]
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


@pytest.mark.parametrize("shape, roi", [((64, 56), (32, 24)), ((40, 36, 20), (16, 16, 8))])
@pytest.mark.parametrize("allow_smaller", [False, True])
def test_inversion_restores_the_original_grid(shape, roi, allow_smaller, meta_pair):
    data = meta_pair(shape, seed=3)
    if allow_smaller:
        roi = (shape[0] + 6,) + roi[1:]  # taller than the image: padded crop
    transform = Compose([
        MaskAwareWindowsd("label", roi, rho=0.05, stride=4, allow_smaller=allow_smaller),
        RandMaskAwareCropd(["image", "label"], "label", tau=2, num_samples=3, windows_key="label_mac_windows"),
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
    crop = RandMaskAwareCropd(["image", "label"], "label", 32, rho=0.5, stride=16, tau=2, windows_key="missing")
    with pytest.raises(ValueError, match="'missing' is not in the data"):
        crop(data)
    small = {"image": data["image"][:, :48], "label": data["label"][:, :48], "w": data["label_mac_windows"]}
    crop = RandMaskAwareCropd(["image", "label"], "label", tau=2, windows_key="w")
    with pytest.raises(ValueError, match=r"computed on spatial shape \(64, 64\) but the image has \(48, 64\)"):
        crop(small)


# ------------------------------------------------------------------------------------------------------------------
# geometry stated once: the crop reads it from the record
# ------------------------------------------------------------------------------------------------------------------


def test_defaults_are_the_papers_values():
    assert dict(MAC_DEFAULTS) == {"rho": 0.25, "tau": 5, "stride": 16} and dict(PC_DEFAULTS) == {"power": 1.0}
    with pytest.raises(TypeError):
        MAC_DEFAULTS["rho"] = 0.5  # read-only: a copy is dict(MAC_DEFAULTS)
    windows = MaskAwareWindows(32)
    assert windows.rho == (0.25,) and windows.stride == 16
    record = MaskAwareWindowsd("label", 32)({"label": np.ones((1, 64, 64), dtype=np.uint8)})["label_mac_windows"]
    assert record["rho"] == (0.25,) and record["stride"] == (16, 16) and record["starts"].tolist() == [
        [0, 0], [0, 16], [0, 32], [16, 0], [16, 16], [16, 32], [32, 0], [32, 16], [32, 32]
    ]
    crop = RandMaskAwareCrop(32)  # neither tau nor prob: the paper's tau = 5
    assert crop.mac_prob == pytest.approx(1 / 5)
    assert crop.finder.rho == (0.25,) and crop.finder.stride == 16
    assert RandMaskAwareCrop(32, prob=0.3).mac_prob == pytest.approx(0.3)
    assert ProbabilisticCropCenters().power == 1.0 == RandProbabilisticCrop(8).finder.power


@pytest.mark.parametrize("shape, roi", [((64, 56), (24, 16)), ((40, 36, 20), (16, 16, 8))])
def test_record_driven_crop_needs_no_geometry(shape, roi, algorithm_1, coded_image, start_of):
    label = make_synthetic_pair(shape, fg_fraction=0.2, num_objects=2, seed=2)["label"]
    data = {"image": coded_image(shape), "label": label}
    stride = (4,) * len(shape)
    cached = MaskAwareWindowsd("label", roi, rho=0.3, stride=4)(data)
    valid = {tuple(r) for r in algorithm_1(label[0], roi, stride, 0.3)}
    assert valid
    crop = RandMaskAwareCropd(["image", "label"], "label", tau=1, num_samples=30, windows_key="label_mac_windows")
    crop.set_random_state(0)
    outs = crop(cached)
    for out in outs:
        start = start_of(out["image"], shape)
        assert tuple(out["image"].shape[1:]) == roi and out["image"].meta[CROP_KIND_KEY] == "mac"
        assert start == out["label"].meta[CROP_START_KEY] and start in valid
    assert len({o["image"].meta[CROP_START_KEY] for o in outs}) > 3
    # the same draws as a crop given the same geometry explicitly (which the record agrees with)
    explicit = RandMaskAwareCropd(["image", "label"], "label", roi, rho=0.3, stride=4, tau=1, num_samples=30,
                                  windows_key="label_mac_windows", allow_smaller=False)
    explicit.set_random_state(0)
    starts = [o["image"].meta[CROP_START_KEY] for o in outs]
    assert [o["image"].meta[CROP_START_KEY] for o in explicit(cached)] == starts
    # array form: a crop without roi_size crops to the record's roi_size
    record = MaskAwareWindows(roi, rho=0.3, stride=4)(label)
    bare = RandMaskAwareCrop(tau=1, num_samples=5)
    for patch in bare(coded_image(shape), windows=record):
        assert tuple(patch.shape[1:]) == roi and start_of(patch, shape) in valid
    with pytest.raises(ValueError, match="has no roi_size, so it cannot compute windows itself"):
        bare(coded_image(shape), label)
    with pytest.raises(ValueError, match="needs a windows_key .* or a roi_size"):
        RandMaskAwareCropd(["image", "label"], "label", tau=1)


def test_record_driven_per_class_and_padded_crops(coded_image, share, square_label):
    label = square_label((64, 64), (slice(0, 32), slice(0, 32)), value=1)
    label[0, 44:52, 44:52] = 2
    record = MaskAwareWindows(16, rho=[0.9, 0.2], stride=4, classes=[1, 2])(label)
    crop = RandMaskAwareCrop(tau=1, ratios=[1, 3], num_samples=2000)
    crop.set_random_state(3)
    samples = crop.randomize((64, 64), record)
    classes = np.array([s.label_class for s in samples])
    assert abs(np.mean(classes == 2) - 0.75) <= 4.5 * math.sqrt(0.75 * 0.25 / len(classes))
    for out in RandMaskAwareCrop(prob=0.5, num_samples=40)(coded_image((64, 64)), windows=record):
        c = out.meta[CROP_CLASS_KEY]  # per-class mode read from the record: 0 marks the random crops
        assert (c == 0) == (out.meta[CROP_KIND_KEY] == "random")
        if c:
            window = label[0][tuple(slice(a, a + 16) for a in out.meta[CROP_START_KEY])]
            assert share(window, c) >= (0.9 if c == 1 else 0.2)
    with pytest.raises(ValueError, match=r"ratios must be one non-negative number per class of classes=None"):
        RandMaskAwareCrop(tau=1, ratios=[1.0])(coded_image((64, 64)), windows=MaskAwareWindows(16, stride=4)(label))
    # allow_smaller read from the record: the crop pads to the record's roi_size
    tall = np.ones((1, 10, 40), dtype=np.uint8)
    padded = MaskAwareWindows((16, 8), rho=0.6, stride=4, allow_smaller=True)(tall)
    for out in RandMaskAwareCrop(tau=1, num_samples=4)(coded_image((10, 40)), windows=padded):
        assert tuple(out.shape) == (1, 16, 8) and np.all(np.asarray(out[0, :3]) == 0)


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"roi_size": 16}, "roi_size"),
        ({"roi_size": (32, 16)}, "roi_size"),
        ({"rho": 0.25}, "rho"),
        ({"stride": 8}, "stride"),
        ({"classes": [1]}, "classes"),
        ({"allow_smaller": True}, "allow_smaller"),
    ],
)
def test_conflicting_geometry_raises(kwargs, field):
    data = MaskAwareWindowsd("label", 32, rho=0.5, stride=16)(make_synthetic_pair((64, 64), fg_fraction=0.1, seed=1))
    crop = RandMaskAwareCropd(["image", "label"], "label", tau=2, windows_key="label_mac_windows", **kwargs)
    with pytest.raises(ValueError, match=rf"RandMaskAwareCrop was given {field}=.* but the windows record was "
                                         rf"computed with {field}=.*state them once, on MaskAwareWindowsd"):
        crop(data)
    agreeing = {"roi_size": (32, 32), "rho": 0.5, "stride": (16, 16), "allow_smaller": False}
    assert len(RandMaskAwareCropd(["image", "label"], "label", tau=2, windows_key="label_mac_windows",
                                  **agreeing)(data)) == 1  # the record's own values are no conflict


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
    pc_calls = _count_calls(monkeypatch, ProbabilisticCropCenters)
    items = [make_synthetic_pair((64, 64), fg_fraction=0.1, seed=i) for i in range(4)]
    mac = Compose([
        MaskAwareWindowsd("label", 32, rho=0.1, stride=8),
        RandMaskAwareCropd(["image", "label"], "label", tau=2, num_samples=2, windows_key="label_mac_windows"),
    ])
    pc = Compose([
        ProbabilisticCropCentersd("label"),
        RandProbabilisticCropd(["image", "label"], "label", 16, num_samples=3, centers_key="label_pc_centers"),
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


def test_thread_safety_one_instance_many_threads(algorithm_1, coded_image, start_of):
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
    record = ProbabilisticCropCenters(power)(pair["label"])
    edt = ndimage.distance_transform_edt(fg)  # on the whole image: the bounding-box shortcut must agree
    np.testing.assert_array_equal(record["indices"], np.flatnonzero(fg))
    # distances are float32 (edt): relative rounding 6e-8 per distance, times the power
    np.testing.assert_allclose(np.diff(record["cdf"], prepend=0.0), edt[fg] ** power, rtol=1e-6)
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
        record = ProbabilisticCropCenters(2.0)(mask[None])
        np.testing.assert_array_equal(record["indices"], np.flatnonzero(fg))
        expected = ndimage.distance_transform_edt(fg)[fg] ** 2.0
        np.testing.assert_allclose(np.diff(record["cdf"], prepend=0.0), expected, rtol=1e-6)  # float32 distances


def test_pc_centers_follow_distance_weights():
    label = np.zeros((1, 20, 20), dtype=np.uint8)
    label[0, 4:11, 3:9] = 1
    label[0, 14:16, 14:19] = 1
    crop = RandProbabilisticCrop(4, power=1.5, num_samples=20000)
    crop.set_random_state(0)
    record = crop.centers(label)
    samples = crop.randomize((20, 20), record)
    flat = [np.ravel_multi_index(s.center, (20, 20)) for s in samples]
    observed = np.bincount(flat, minlength=400)[record["indices"]]
    weights = np.diff(record["cdf"], prepend=0.0)
    expected = weights / weights.sum() * len(samples)
    assert observed.sum() == len(samples)  # every centre is a foreground pixel
    assert stats.chisquare(observed, expected).pvalue > 1e-4
    for s in samples[:200]:
        assert s.kind == "pc"
        assert all(st_ <= c < st_ + 4 and 0 <= st_ <= 16 for st_, c in zip(s.start, s.center))


def test_pc_border_objects_keep_their_crops_and_empty_label_falls_back(coded_image, share):
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
    full = ProbabilisticCropCenters()(np.ones((1, 6, 6), dtype=np.uint8))
    np.testing.assert_array_equal(np.diff(full["cdf"], prepend=0.0), np.ones(36))  # no background: equal weights


def test_pc_inversion_and_power_from_the_record(meta_pair):
    data = meta_pair((40, 36, 20), seed=5)
    transform = Compose([
        ProbabilisticCropCentersd("label", power=2.0),
        RandProbabilisticCropd(["image", "label"], "label", (16, 12, 8), num_samples=2, centers_key="label_pc_centers"),
    ])
    transform.set_random_state(0)
    for out in transform(data):
        center = out["image"].meta[CROP_CENTER_KEY]
        start = out["image"].meta[CROP_START_KEY]
        assert data["label"][(0, *center)] != 0 and "label_pc_centers" not in out  # centers are foreground pixels
        assert all(s <= c < s + r for s, c, r in zip(start, center, (16, 12, 8)))
        restored = transform.inverse(out)
        assert tuple(restored["image"].shape) == tuple(data["image"].shape)
        torch.testing.assert_close(restored["image"].affine, data["image"].affine)
    cached = ProbabilisticCropCentersd("label", power=2.0)(data)
    same = RandProbabilisticCropd(["image", "label"], "label", 8, power=2.0, centers_key="label_pc_centers")
    assert len(same(cached)) == 1  # the record's own power is no conflict
    wrong = RandProbabilisticCropd(["image", "label"], "label", 8, power=1.0, centers_key="label_pc_centers")
    with pytest.raises(ValueError, match=r"given power=1.0 but the centers record was computed with power=2.0"):
        wrong(cached)


# ------------------------------------------------------------------------------------------------------------------
# deprecated ``centre`` spellings: they warn and still work (removed in 0.2.0)
# ------------------------------------------------------------------------------------------------------------------


def test_deprecated_centre_spellings_warn_and_work():
    pair = make_synthetic_pair((32, 32), fg_fraction=0.15, seed=4)
    expected = ProbabilisticCropCenters(2.0)(pair["label"])
    with pytest.warns(FutureWarning, match="ProbabilisticCropCentres.*Use ProbabilisticCropCenters"):
        old = ProbabilisticCropCentres(2.0)
    assert isinstance(old, ProbabilisticCropCenters)
    np.testing.assert_array_equal(old(pair["label"])["cdf"], expected["cdf"])
    assert ProbabilisticCropCentresD is ProbabilisticCropCentresDict is ProbabilisticCropCentresd
    with pytest.warns(FutureWarning, match="ProbabilisticCropCentresd"):
        old_d = ProbabilisticCropCentresd("label", power=2.0)
    out = old_d(pair)
    np.testing.assert_array_equal(out["label_pc_centres"]["cdf"], expected["cdf"])  # the old default key
    assert ProbabilisticCropCentersd("label")(pair).keys() >= {"label_pc_centers"}  # the new one
    with pytest.warns(FutureWarning, match="centres_postfix"):
        renamed = ProbabilisticCropCentersd("label", centres_postfix="_c")
    assert renamed.centers_postfix == "_c" and "label_c" in renamed(pair)
    with pytest.warns(FutureWarning, match="centres_postfix"):
        assert renamed.centres_postfix == "_c"
    with pytest.warns(FutureWarning, match="centres_key"):
        crop_d = RandProbabilisticCropd(["image", "label"], "label", 8, num_samples=2, centres_key="label_pc_centres")
    assert crop_d.centers_key == "label_pc_centres" and crop_d.record_key == "label_pc_centres"
    assert [o["image"].meta[CROP_KIND_KEY] for o in crop_d(out)] == ["pc", "pc"]

    crop = RandProbabilisticCrop(8, num_samples=3)
    with pytest.warns(FutureWarning, match="centres"):
        record = crop.centres(pair["label"])
    np.testing.assert_array_equal(record["cdf"], ProbabilisticCropCenters()(pair["label"])["cdf"])
    with pytest.warns(FutureWarning, match="check_centres"):
        crop.check_centres(record, (32, 32))
    crop.set_random_state(1)
    with pytest.warns(FutureWarning, match="use `centers`"):
        old_call = crop(pair["image"], centres=record)
    crop.set_random_state(1)
    new_call = crop(pair["image"], centers=record)
    assert [o.meta[CROP_CENTER_KEY] for o in old_call] == [o.meta[CROP_CENTER_KEY] for o in new_call]
    sample = CropSample((0, 0), "pc", None, (3, 4))
    with pytest.warns(FutureWarning, match="CropSample.center"):
        assert sample.centre == (3, 4) == sample.center
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the new spellings do not warn
        ProbabilisticCropCentersd("label", centers_postfix="_c")
        RandProbabilisticCropd(["image", "label"], "label", 8, centers_key="label_c")


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
        (lambda: RandMaskAwareCrop(16, tau=2, prob=0.5), r"at most one of tau.*got tau=2, prob=0.5"),
        (lambda: RandMaskAwareCrop(16, prob=1.2), r"prob must be in \[0, 1\], got prob=1.2"),
        (lambda: RandMaskAwareCrop(0, tau=2), r"roi_size must be >= 1"),
        (lambda: RandMaskAwareCrop(16, tau=2, num_samples=0), r"num_samples must be an int >= 1, got 0"),
        (lambda: RandMaskAwareCrop(16, rho=[0.1, 0.2], tau=2), r"rho must be one number unless classes"),
        (lambda: RandMaskAwareCrop(16, rho=[0.1], tau=2, classes=[1, 2]), r"rho must be one number or one per class"),
        (lambda: RandMaskAwareCrop(16, tau=2, classes=[0, 1]), r"classes must be distinct label values >= 1"),
        (lambda: RandMaskAwareCrop(16, tau=2, classes=[1, 2], ratios=[1.0]), r"ratios must be one non-negative"),
        (lambda: RandMaskAwareCrop(16, tau=2, ratios=[1.0, -1.0]), r"ratios must be one non-negative"),
        (lambda: RandMaskAwareCrop(16, tau=2, ratios=[0.0]), r"ratios must not all be 0"),
        (
            lambda: RandMaskAwareCrop(16, tau=2, ratios=[1.0])(_IMAGE, _LABEL),
            r"ratios must be one non-negative number per class of classes=None",
        ),
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
        (lambda: ProbabilisticCropCenters()(-np.ones((1, 8, 8))), r"label has negative values"),
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
        (
            lambda: RandProbabilisticCrop(16)(_IMAGE, centers={"indices": np.zeros(3)}),
            r"centers must be the record of ProbabilisticCropCenters",
        ),
        (lambda: RandMaskAwareCrop(16, tau=2)(_IMAGE), r"label must be given unless windows or samples are"),
    ],
)
def test_bad_input_raises_value_error_naming_it(make, match):
    with pytest.raises(ValueError, match=match):
        make()
