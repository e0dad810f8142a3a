"""Where distance maps of GPU tensors are computed: on the device with cuCIM, else once on the host (with a warning
naming the extra); on CUDA machines, every map of a CUDA label equals the CPU map."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from monai_imbalance.transforms import (
    BorderWeightMap,
    DilationWeightMap,
    SignedDistanceMap,
    UncertaintyWeightMap,
)
from monai_imbalance.transforms import utils as transform_utils
from monai_imbalance.transforms.weights import batch_map, dilation_weight_map


def test_gpu_tensor_without_cucim_takes_the_host_path_and_warns_once(monkeypatch):
    monkeypatch.setattr(transform_utils, "gpu_distance_available", lambda: False)
    monkeypatch.setattr(transform_utils, "_warned_host_maps", False)
    off_host = torch.empty((4, 4), device="meta")  # a tensor that is not on the CPU, on any machine
    with pytest.warns(UserWarning, match=r'pip install "monai-imbalance\[gpu'):
        assert transform_utils.maps_on_device(off_host) is False
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # once only
        assert transform_utils.maps_on_device(off_host) is False
        assert transform_utils.maps_on_device(torch.zeros(4, 4)) is False  # CPU tensors: the CPU path, no warning
        assert transform_utils.maps_on_device(np.zeros((4, 4))) is False


def test_gpu_tensor_with_cucim_stays_on_the_device(monkeypatch):
    monkeypatch.setattr(transform_utils, "gpu_distance_available", lambda: True)
    assert transform_utils.maps_on_device(torch.empty((4, 4), device="meta")) is True
    assert transform_utils.maps_on_device(torch.zeros(4, 4)) is False


def test_the_extra_is_named_for_the_cuda_version():
    assert transform_utils.GPU_EXTRAS == {"12": "gpu", "13": "gpu-cu13"}


def _label(shape, seed=0):
    rng = np.random.default_rng(seed)
    label = np.zeros((1, *shape), dtype=np.uint8)
    for c in (1, 2, 3):
        start = rng.integers(0, [s - 6 for s in shape])
        label[(0, *[slice(a, a + 5) for a in start])] = c
    return label


@pytest.mark.gpu
@pytest.mark.parametrize("cucim", [True, False])
@pytest.mark.parametrize("shape", [(40, 36), (20, 18, 16)])
def test_cuda_maps_equal_cpu_maps(shape, cucim, monkeypatch):
    if cucim and not transform_utils.gpu_distance_available():
        pytest.skip("cuCIM and CuPy are not installed")
    monkeypatch.setattr(transform_utils, "gpu_distance_available", lambda: cucim)
    label = _label(shape)
    for transform in (DilationWeightMap(3), UncertaintyWeightMap(2.0), SignedDistanceMap(num_classes=4),
                      BorderWeightMap()):
        expected = transform(label)
        got = transform(torch.as_tensor(label, device="cuda"))
        assert got.device.type == "cuda"
        np.testing.assert_allclose(got.cpu().numpy(), expected, rtol=1e-5, atol=1e-5)
    batch = torch.as_tensor(label[None], device="cuda")
    maps = batch_map(dilation_weight_map, batch, radius=3.0)
    assert maps.device.type == "cuda"
    np.testing.assert_allclose(maps.cpu().numpy()[0], DilationWeightMap(3)(label), rtol=1e-5, atol=1e-6)
