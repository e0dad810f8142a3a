"""Kervadec's boundary loss, Wu's modified boundary loss and the scheduled region + boundary combination."""

from __future__ import annotations

import pytest
import torch
from monai.losses import BoundaryLoss as MonaiBoundaryLoss
from monai.losses import DiceLoss
from monai.networks import one_hot

from monai_imbalance.losses import BoundaryLoss, DistanceMapLoss, ModifiedBoundaryLoss, RegionBoundaryLoss
from monai_imbalance.transforms import SignedDistanceMap


@pytest.fixture
def contour_batch(synthetic_batch):
    """Logits and float labels ``(B, 1, 20, 18)`` (default) with objects of about 15% of the image."""

    def make(shape=(20, 18), num_classes=3, batch=2, seed=0):
        logits, target = synthetic_batch(shape, num_classes=num_classes, batch=batch, seed=seed, fg_fraction=0.15)
        return logits, target.float()

    return make


def precomputed_maps(target, num_classes):
    return torch.stack([torch.as_tensor(SignedDistanceMap(num_classes=num_classes)(t.numpy())) for t in target])


@pytest.mark.parametrize("include_background", [True, False])
@pytest.mark.parametrize("shape", [(20, 18), (10, 12, 8)])
def test_boundary_loss_equals_monai_and_precomputed_path(include_background, shape, contour_batch):
    logits, target = contour_batch(shape=shape)
    kwargs = dict(softmax=True, to_onehot_y=True, include_background=include_background)
    expected = MonaiBoundaryLoss(**kwargs)(logits, target)
    ours = BoundaryLoss(**kwargs)
    assert ours(logits, target).item() == pytest.approx(expected.item(), rel=1e-5)
    maps = precomputed_maps(target, 3)  # (B, C) maps: the background channel is dropped with the input's
    assert ours(logits, target, dist_map=maps).item() == pytest.approx(expected.item(), rel=1e-5)
    none = BoundaryLoss(reduction="none", **kwargs)(logits, target, dist_map=maps)
    assert none.shape == (2, 3 if include_background else 2)
    assert BoundaryLoss(reduction="none", batch=True, **kwargs)(logits, target).shape == none.shape[1:]


def test_perfect_prediction_is_the_minimum(contour_batch):
    _, target = contour_batch(seed=3)
    perfect = one_hot(target, 3)
    generator = torch.Generator().manual_seed(0)
    for loss in (
        BoundaryLoss(to_onehot_y=True),
        ModifiedBoundaryLoss(to_onehot_y=True),
        ModifiedBoundaryLoss(to_onehot_y=True, include_background=True),
    ):
        best = loss(perfect, target)
        for _ in range(5):
            noisy = torch.softmax(4 * perfect + torch.randn(perfect.shape, generator=generator), 1)
            assert loss(noisy, target) > best
        uniform = torch.full_like(perfect, 1 / 3)
        assert loss(uniform, target) > best


def test_modified_boundary_hand_case():
    # one row [0, 1, 1, 1, 0], s = 0.5: phi_t = [0, 1, 2, 1, 0], phi_b = [1, 0, 0, 0, 1]
    # TP = 0.5 * 4 = 2, FP = 0.5 * 2 = 1, FN = 4 - 2 = 2: loss = -2 / (3 + eps)
    target = torch.tensor([[[[0.0, 1, 1, 1, 0]]]])
    probs = torch.full((1, 1, 1, 5), 0.5)
    loss = ModifiedBoundaryLoss(smooth_dr=1e-5)
    assert loss(probs, target).item() == pytest.approx(-2 / (3 + 1e-5), rel=1e-6)
    sdm = torch.as_tensor(SignedDistanceMap()(target[0].numpy()))[None]
    assert loss(probs, target, dist_map=sdm).item() == pytest.approx(-2 / (3 + 1e-5), rel=1e-6)


def test_modified_boundary_absent_class_term_is_zero_without_gradient(contour_batch):
    _, target = contour_batch(seed=5)
    target[1] = target[1].clamp(max=1)  # class 2 absent from image 1
    logits = torch.randn(2, 3, 20, 18, requires_grad=True)
    per_class = ModifiedBoundaryLoss(softmax=True, to_onehot_y=True, reduction="none")(logits, target)
    assert per_class.shape == (2, 2) and per_class[1, 1] == 0 and torch.all(per_class[:, 0] < 0)
    # the gradient of the absent term alone is zero
    per_class[1, 1].backward()
    assert torch.all(logits.grad == 0)
    batch_terms = ModifiedBoundaryLoss(softmax=True, to_onehot_y=True, reduction="none", batch=True)(logits, target)
    assert batch_terms.shape == (2,)


@pytest.mark.parametrize("name", ["all-background", "all-foreground", "one-pixel"])
@pytest.mark.parametrize("loss_class", [BoundaryLoss, ModifiedBoundaryLoss])
def test_gradients_finite_on_edge_cases(name, loss_class):
    target = torch.zeros(1, 1, 8, 8)
    if name == "all-foreground":
        target[:] = 1
    elif name == "one-pixel":
        target[0, 0, 3, 4] = 1
    logits = torch.randn(1, 1, 8, 8, generator=torch.Generator().manual_seed(1), requires_grad=True)
    value = loss_class(sigmoid=True)(logits, target)
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(logits.grad).all()
    # without a contour (empty or full mask) Kervadec's maps are zeros and send no gradient, and Wu's term of an
    # absent class is 0 by definition: the region loss of RegionBoundaryLoss covers these images
    if name == "one-pixel" or (name == "all-foreground" and loss_class is ModifiedBoundaryLoss):
        assert logits.grad.abs().sum() > 0


@pytest.mark.parametrize("loss_class", [BoundaryLoss, ModifiedBoundaryLoss])
def test_nan_logits_give_nan_loss_even_without_a_contour(loss_class):
    logits = torch.zeros(1, 2, 6, 6)
    logits[0, 1, 0, 0] = float("nan")
    assert torch.isnan(loss_class(softmax=True, to_onehot_y=True)(logits, torch.zeros(1, 1, 6, 6)))


def test_dist_map_shape_errors_and_spacing(contour_batch):
    logits, target = contour_batch()
    loss = BoundaryLoss(softmax=True, to_onehot_y=True, include_background=False)
    with pytest.raises(ValueError, match=r"dist_map must have shape \(2, 3, 20, 18\).*got \(2, 1, 20, 18\)"):
        loss(logits, target, dist_map=torch.zeros(2, 1, 20, 18))
    with pytest.raises(ValueError, match="smooth_dr"):
        ModifiedBoundaryLoss(smooth_dr=-1)
    # distances in mm: an isotropic spacing s scales every map, hence the boundary loss, by s
    base = BoundaryLoss(softmax=True, to_onehot_y=True)(logits, target)
    scaled = BoundaryLoss(softmax=True, to_onehot_y=True, spacing=2.0)(logits, target)
    assert scaled.item() == pytest.approx(2 * base.item(), rel=1e-5)
    # and Wu's ratio is invariant to it
    wu = ModifiedBoundaryLoss(softmax=True, to_onehot_y=True, smooth_dr=0.0)
    wu_mm = ModifiedBoundaryLoss(softmax=True, to_onehot_y=True, smooth_dr=0.0, spacing=2.0)
    assert wu_mm(logits, target).item() == pytest.approx(wu(logits, target).item(), rel=1e-5)


def test_region_boundary_combination(contour_batch):
    logits, target = contour_batch(seed=7)
    region = DiceLoss(softmax=True, to_onehot_y=True)
    boundary = BoundaryLoss(softmax=True, to_onehot_y=True, include_background=False)
    maps = precomputed_maps(target, 3)
    combined = RegionBoundaryLoss(region, boundary, boundary_weight=0.3)
    expected = region(logits, target) + 0.3 * boundary(logits, target)
    assert combined(logits, target).item() == pytest.approx(expected.item(), rel=1e-6)
    assert combined(logits, target, dist_map=maps).item() == pytest.approx(expected.item(), rel=1e-5)
    rebalanced = RegionBoundaryLoss(region, boundary, boundary_weight=0.3, rebalance=True)
    expected = 0.7 * region(logits, target) + 0.3 * boundary(logits, target)
    assert rebalanced(logits, target).item() == pytest.approx(expected.item(), rel=1e-6)
    with pytest.raises(ValueError, match="boundary_weight"):
        rebalanced.boundary_weight = 1.5
    with pytest.raises(ValueError, match="boundary_weight"):
        RegionBoundaryLoss(region, boundary, boundary_weight=-0.1)


def test_boundary_loss_on_the_readings_reference_map():
    # Reading: a 6x6 mask with a 4x4 square at rows/cols 1-4 has the map: corners sqrt(2), the rest of the outer
    # ring 1, the square's inner boundary 0, its centre 2x2 -1
    mask = torch.zeros(1, 1, 6, 6)
    mask[..., 1:5, 1:5] = 1
    loss = BoundaryLoss()  # probabilities, one channel (the foreground)
    assert loss(mask, mask).item() == pytest.approx(-4 / 36, rel=1e-6)  # perfect prediction: the centre only
    everywhere = (4 * 2**0.5 + 16 * 1.0 + 12 * 0.0 + 4 * -1.0) / 36
    assert loss(torch.ones_like(mask), mask).item() == pytest.approx(everywhere, rel=1e-6)
    assert loss(torch.zeros_like(mask), mask).item() == 0.0
    # the family base computes the map the same way for both losses
    _, _, sdm = DistanceMapLoss().probabilities_and_maps(mask, mask, None)
    assert sdm[0, 0, 0, 0].item() == pytest.approx(2**0.5) and sdm[0, 0, 2, 2].item() == -1.0
