from __future__ import annotations

import pytest
import torch
from monai.losses import DeepSupervisionLoss, DiceCELoss

from monai_imbalance.networks import BilinearUNet, DeepSupervisionFlexibleUNet


def test_bilinear_unet_has_the_mac_papers_parameter_count():
    net = BilinearUNet(spatial_dims=2, in_channels=3, out_channels=1)
    assert sum(p.numel() for p in net.parameters()) == 1_080_929  # MAC paper, Sec. 4.1


@pytest.mark.parametrize("shape", [(2, 3, 224, 224), (1, 3, 100, 70), (1, 3, 33, 17)])
def test_bilinear_unet_keeps_any_2d_size(shape):
    out = BilinearUNet(in_channels=3, out_channels=2)(torch.randn(shape))
    assert out.shape == (shape[0], 2, *shape[2:])


def test_bilinear_unet_3d_odd_sizes_and_gradients():
    net = BilinearUNet(spatial_dims=3, in_channels=1, out_channels=2, features=(4, 8, 16, 32, 64))
    x = torch.randn(1, 1, 33, 41, 23)
    out = net(x)
    assert out.shape == (1, 2, 33, 41, 23)
    out.mean().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in net.parameters())


def test_bilinear_unet_bad_arguments():
    with pytest.raises(ValueError, match="spatial_dims must be 2 or 3"):
        BilinearUNet(spatial_dims=1)
    with pytest.raises(ValueError, match="features must be 5 even numbers"):
        BilinearUNet(features=(16, 32, 64))
    with pytest.raises(ValueError, match="2 spatial dims"):
        BilinearUNet()(torch.zeros(1, 3, 8, 8, 8))


def test_deep_supervision_heads_in_training_and_quarter_head_in_eval():
    torch.manual_seed(0)
    net = DeepSupervisionFlexibleUNet(3, 2, backbone="resnet18")
    x = torch.randn(2, 3, 64, 64)
    net.train()
    outs = net(x)
    assert isinstance(outs, list) and [o.shape for o in outs] == [(2, 2, 64, 64)] * 3
    net.eval()
    with torch.no_grad():
        inference = net(x)
        net.training = True  # heads of the eval-mode network (batch norm in eval) without changing the layers
        heads = net(x)
        net.training = False
    assert isinstance(inference, torch.Tensor)
    torch.testing.assert_close(inference, heads[0])  # inference uses the 1/4 head, as the DBCE paper
    assert not torch.allclose(heads[0], heads[1])


def test_deep_supervision_sum_of_heads_trains_every_head():
    net = DeepSupervisionFlexibleUNet(3, 2, backbone="resnet18")
    net.train()
    x, y = torch.randn(2, 3, 64, 64), torch.randint(0, 2, (2, 1, 64, 64))
    outs = net(x)
    base = DiceCELoss(to_onehot_y=True, softmax=True)
    summed = DeepSupervisionLoss(base, weight_mode="same")(outs, y)
    torch.testing.assert_close(summed, sum(base(o, y) for o in outs))
    summed.backward()
    for scale in ("4", "8", "16"):
        assert net.heads[scale].weight.grad.abs().sum() > 0


def test_deep_supervision_bad_scale():
    with pytest.raises(ValueError, match="supervision_scales must be taken from"):
        DeepSupervisionFlexibleUNet(3, 2, backbone="resnet18", supervision_scales=(3,))
