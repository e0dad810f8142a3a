"""``roi_size`` and ``stride`` of the crops: whole-valued floats read as ints (``roi_size=32.0`` is 32, not
"'float' object is not iterable"), other values named in a ``ValueError``."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from monai_imbalance.transforms import (
    MaskAwareWindows,
    MaskAwareWindowsd,
    ProbabilisticCropCentersd,
    RandMaskAwareCrop,
    RandMaskAwareCropd,
    RandProbabilisticCrop,
    RandProbabilisticCropd,
    mac_window_starts,
    window_foreground_counts,
)


def _data(seed=0):
    label = np.zeros((1, 64, 48), dtype=np.uint8)
    label[0, 10:30, 8:30] = 1
    image = np.random.default_rng(seed).random((1, 64, 48)).astype(np.float32)
    return {"image": image, "label": label}


def _mac_crop(roi_size, stride=8):
    data = _data()
    windows = MaskAwareWindowsd("label", roi_size=roi_size, rho=0.1, stride=stride)
    crop = RandMaskAwareCropd(["image", "label"], "label", windows_key="label" + windows.windows_postfix)
    crop.set_random_state(0)
    return crop(windows(data))[0]


def _pc_crop(roi_size):
    centers = ProbabilisticCropCentersd("label")
    crop = RandProbabilisticCropd(["image", "label"], "label", roi_size,
                                  centers_key="label" + centers.centers_postfix)
    crop.set_random_state(0)
    return crop(centers(_data()))[0]


@pytest.mark.parametrize("roi_size", [32.0, np.float32(32), (32.0, 32), [np.int64(32), 32.0], torch.tensor(32.0)],
                         ids=["float", "np.float32", "tuple", "list", "tensor"])
@pytest.mark.parametrize("build", [_mac_crop, _pc_crop], ids=["mac", "pc"])
def test_whole_valued_float_roi_size_is_the_int(build, roi_size):
    out, expected = build(roi_size), build(32)
    assert out["image"].shape == expected["image"].shape == (1, 32, 32)
    np.testing.assert_array_equal(np.asarray(out["image"]), np.asarray(expected["image"]))


def test_whole_valued_float_stride_is_the_int():
    label = _data()["label"]
    by_float = MaskAwareWindows(roi_size=32, rho=0.1, stride=8.0)(label)
    by_int = MaskAwareWindows(roi_size=32, rho=0.1, stride=8)(label)
    assert by_float["stride"] == by_int["stride"] == (8, 8)
    np.testing.assert_array_equal(by_float["starts"][0], by_int["starts"][0])
    assert RandMaskAwareCrop(roi_size=32, stride=(8.0, 8.0)).stride == (8, 8)
    np.testing.assert_array_equal(mac_window_starts(label, 32.0, 8.0, rho=0.1), mac_window_starts(label, 32, 8, 0.1))
    np.testing.assert_array_equal(window_foreground_counts(label[0], 32.0, 8.0),
                                  window_foreground_counts(label[0], 32, 8))


BAD_SIZES = [
    ("roi_size", 32.5, "roi_size must be a whole number of pixels on every axis, got 32.5."),
    ("roi_size", (32, 32.5), "roi_size must be a whole number of pixels on every axis, got (32, 32.5)."),
    ("roi_size", float("inf"), "roi_size must be a whole number of pixels on every axis, got inf."),
    ("roi_size", "32", "roi_size must be an int or a sequence of ints, got '32'."),
    ("roi_size", ("32", "32"), "roi_size must be an int or a sequence of ints, got ('32', '32')."),
    ("roi_size", True, "roi_size must be an int or a sequence of ints, got True."),
    ("roi_size", 0.0, "roi_size must be >= 1 on every axis, got 0.0."),
    ("stride", 8.5, "stride must be a whole number of pixels on every axis, got 8.5."),
    ("stride", "8", "stride must be an int or a sequence of ints, got '8'."),
]
CROPS = [MaskAwareWindows, RandMaskAwareCrop, RandProbabilisticCrop, MaskAwareWindowsd, RandMaskAwareCropd]


@pytest.mark.parametrize("cls,name,value,message", [
    (cls, *bad) for cls in CROPS for bad in BAD_SIZES if not (cls is RandProbabilisticCrop and bad[0] == "stride")
])  # probabilistic cropping has no stride
def test_bad_sizes_are_named_with_their_value(cls, name, value, message):
    args = {"roi_size": 32, name: value}
    if cls is MaskAwareWindowsd:
        args["keys"] = "label"
    if cls is RandMaskAwareCropd:
        args.update(keys=["image", "label"], label_key="label")
    with pytest.raises(ValueError, match=re.escape(message)):
        cls(**args)


@pytest.mark.parametrize("function", [mac_window_starts, window_foreground_counts])
def test_functions_name_bad_sizes(function):
    label = _data()["label"][0]
    message = "roi_size must be a whole number of pixels on every axis, got 32.5."
    with pytest.raises(ValueError, match=re.escape(message)):
        function(label, 32.5, 8)
    with pytest.raises(ValueError, match=re.escape("stride must be an int or a sequence of ints, got '8'.")):
        function(label, 32, "8")


def test_whole_number_arg():
    from monai_imbalance.transforms.utils import whole_number_arg

    assert whole_number_arg(32.0, "roi_size") == 32 and type(whole_number_arg(32.0, "roi_size")) is int
    assert whole_number_arg((32.0, np.int16(16), torch.tensor(8)), "roi_size") == (32, 16, 8)
    assert whole_number_arg(np.array([4.0, 4.0]), "stride") == (4, 4)
    assert whole_number_arg(0, "x", minimum=0) == 0
    with pytest.raises(ValueError, match=re.escape("x must be an int or a sequence of ints, got None.")):
        whole_number_arg(None, "x")
