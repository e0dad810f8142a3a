"""AsDiscreteKeepNaN: MONAI's AsDiscrete on finite outputs, all NaN on an image that held NaN or inf."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from monai.data import MetaTensor
from monai.transforms import AsDiscrete, AsDiscreted

from monai_imbalance.metrics import OutputImbalanceIndexMetric
from monai_imbalance.transforms import AsDiscreteKeepNaN, AsDiscreteKeepNaNd

CASES = [dict(threshold=0.5), dict(argmax=True), dict(argmax=True, to_onehot=3)]


@pytest.mark.parametrize("kwargs", CASES)
@pytest.mark.parametrize("spatial", [(8, 9), (4, 5, 6)])
def test_equal_to_monai_on_finite_outputs(kwargs, spatial):
    g = torch.Generator().manual_seed(0)
    channels = 1 if "threshold" in kwargs else 3
    prob = torch.rand((channels, *spatial), generator=g)
    assert torch.equal(AsDiscreteKeepNaN(**kwargs)(prob), AsDiscrete(**kwargs)(prob))
    d = AsDiscreteKeepNaNd(keys="pred", **kwargs)({"pred": MetaTensor(prob), "label": prob})
    assert torch.equal(d["pred"], AsDiscreted(keys="pred", **kwargs)({"pred": prob})["pred"])
    assert isinstance(d["pred"], MetaTensor) and d["label"] is prob


@pytest.mark.parametrize("kwargs", CASES)
@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_an_image_with_nan_or_inf_comes_out_all_nan(kwargs, bad):
    channels = 1 if "threshold" in kwargs else 3
    prob = torch.full((channels, 6, 6), 0.2)
    prob[0, 2, 3] = bad
    out = AsDiscreteKeepNaNd(keys="pred", **kwargs)({"pred": prob})["pred"]
    assert torch.isnan(out).all()
    assert not torch.isnan(AsDiscrete(**kwargs)(prob)).any()  # MONAI's result looks like an ordinary mask


def test_the_nan_reaches_the_oii_and_is_counted_not_read_as_balanced():
    label = torch.zeros((1, 6, 6))
    label[0, :3] = 1
    good = torch.zeros((1, 6, 6))
    good[0, :2] = 1  # 12 TP, 6 FN
    diverged = torch.full((1, 6, 6), float("nan"))
    post = AsDiscreteKeepNaN(threshold=0.5)
    metric = OutputImbalanceIndexMetric()
    metric(y_pred=torch.stack([post(good), post(diverged)]), y=torch.stack([label, label]))
    value = float(metric.aggregate())
    assert metric.nan_images == 1
    assert value == pytest.approx(1.0)  # the finite image alone: FP 0 < FN, OII 1 (not 0 as for "balanced")
    assert not math.isnan(value)


def test_numpy_input_works_like_tensors():
    prob = np.array([[[0.2, np.nan], [0.7, 0.1]]], dtype=np.float32)
    assert torch.isnan(torch.as_tensor(AsDiscreteKeepNaN(threshold=0.5)(prob))).all()
