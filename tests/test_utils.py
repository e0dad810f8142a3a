from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.data import MetaTensor

from monai_imbalance.utils import ensure_int_sequence, to_numpy, validate_label


@pytest.mark.parametrize(
    "label", [np.array([[0, 1], [2, 1]]), torch.tensor([[0, 1], [2, 1]]), MetaTensor(torch.tensor([[0, 1], [2, 1]]))]
)
def test_validate_label_accepts_numpy_torch_metatensor(label):
    out = validate_label(label, num_classes=3)
    assert isinstance(out, np.ndarray)
    np.testing.assert_array_equal(out, [[0, 1], [2, 1]])


def test_validate_label_casts_whole_floats_and_bools():
    np.testing.assert_array_equal(validate_label(np.array([0.0, 2.0], dtype=np.float32)), [0, 2])
    assert validate_label(np.array([True, False])).tolist() == [1, 0]


@pytest.mark.parametrize(
    "label, num_classes, match",
    [
        (np.array([0.0, 0.5]), None, "non-integer values"),
        (np.array([0.0, np.nan]), None, "NaN or infinite"),
        (np.array([0, -1]), None, "negative values"),
        (np.array([0, 3]), 3, "has value 3 but num_classes=3"),
        (np.array([0, 255], dtype=np.uint8), 2, "threshold=127"),
        (np.array(["a"]), None, "must be numeric"),
        (np.zeros((0, 3)), None, "is empty"),
    ],
)
def test_validate_label_errors_name_the_problem(label, num_classes, match):
    with pytest.raises(ValueError, match=match):
        validate_label(label, num_classes=num_classes, source="case_7.png")
    with pytest.raises(ValueError, match="case_7.png"):
        validate_label(label, num_classes=num_classes, source="case_7.png")


def test_ensure_int_sequence():
    assert ensure_int_sequence(4, 3, "roi_size") == (4, 4, 4)
    assert ensure_int_sequence((2, 5), 2, "roi_size") == (2, 5)
    with pytest.raises(ValueError, match="roi_size must be an int or 3 values"):
        ensure_int_sequence((2, 5), 3, "roi_size")
    with pytest.raises(ValueError, match="stride must be >= 1"):
        ensure_int_sequence(0, 2, "stride")


def test_to_numpy_detaches_tensors():
    t = torch.ones(2, requires_grad=True)
    assert to_numpy(t * 2).tolist() == [2.0, 2.0]
