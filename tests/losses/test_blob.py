"""BlobLoss (Kofler et al., IPMI 2023) and the connected-component transform it reads: hand cases, a literal
per-component loop as the oracle, the fast segment-sum path against the batched path, gradients and errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.data import MetaTensor
from monai.losses import DiceCELoss, DiceLoss, GeneralizedDiceLoss, TverskyLoss
from scipy import ndimage

from monai_imbalance.losses import (
    BlobLoss,
    ComboLoss,
    DIBEDisLoss,
    DIBELoss,
    DIBERegLoss,
    ExpLogLoss,
    FocalTverskyLoss,
    HybridFocalLoss,
)
from monai_imbalance.transforms import ConnectedComponents, ConnectedComponentsd, connected_components

# --------------------------------------------------------------------------------------------- the literal oracle


def blob_by_loop(loss_factory, probs: torch.Tensor, onehot: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """The paper's definition, one call per component: for image b, channel c and component n, the loss of
    ``p_c * 1[K in {0, n}]`` against ``1[K = n]`` (probabilities, one channel), averaged over the components of each
    (b, c), then over the pairs that have components."""
    loss = loss_factory()
    pair_means = []
    for b in range(probs.shape[0]):
        for c in range(probs.shape[1]):
            k = ids[b, c] * (onehot[b, c] > 0.5)
            values = []
            for n in torch.unique(k):
                if n == 0:
                    continue
                keep = (k == 0) | (k == n)
                x = (probs[b, c] * keep)[None, None]
                y = (k == n).to(probs.dtype)[None, None]
                values.append(loss(x, y).mean())
            if values:
                pair_means.append(torch.stack(values).mean())
    return torch.stack(pair_means).mean() if pair_means else probs.new_zeros(())


def index_to_onehot(target: torch.Tensor, num_classes: int) -> torch.Tensor:
    return torch.nn.functional.one_hot(target[:, 0].long(), num_classes).movedim(-1, 1).to(torch.float64)


# ------------------------------------------------------------------------------------------------------ hand cases

P_LINE = [0.9, 0.7, 0.2, 0.1, 0.0, 0.4, 0.3, 0.1]


def line(values) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64).view(1, 1, 1, -1)


def test_hand_two_objects_dice():
    # components {0, 1} and {5}; Dice without smoothing, probabilities as input
    target = line([1, 1, 0, 0, 0, 1, 0, 0])
    dice = DiceLoss(smooth_nr=0, smooth_dr=0)
    # A: tp 1.6, sum p over all but pixel 5 = 2.3, |A| = 2 -> 1 - 3.2 / 4.3; B: tp 0.4, sum p without 0, 1 = 1.1
    blob_a, blob_b = 1 - 3.2 / 4.3, 1 - 0.8 / 2.1
    global_dice = 1 - 4.0 / 5.7
    loss = BlobLoss(dice)  # the paper's alpha = 2, beta = 1
    assert loss.blob_term(line(P_LINE), target).item() == pytest.approx((blob_a + blob_b) / 2, abs=1e-12)
    assert loss(line(P_LINE), target).item() == pytest.approx(2 * global_dice + (blob_a + blob_b) / 2, abs=1e-12)
    assert BlobLoss(dice, alpha=1, beta=0)(line(P_LINE), target).item() == pytest.approx(global_dice, abs=1e-12)


def test_hand_one_object_and_none():
    dice = DiceLoss(smooth_nr=0, smooth_dr=0)
    one = line([1, 1, 0, 0, 0, 0, 0, 0])
    # one object: nothing is masked, the blob term is the global loss
    assert BlobLoss(dice).blob_term(line(P_LINE), one).item() == pytest.approx(dice(line(P_LINE), one).item())
    none = line([0] * 8)
    probs = line(P_LINE).requires_grad_()
    value = BlobLoss(dice, alpha=0, beta=1)(probs, none)
    assert value.item() == 0.0
    value.backward()
    assert torch.all(probs.grad == 0)
    # a batch of one image with objects and one without: the empty image adds nothing to the mean
    batch_p = torch.cat([line(P_LINE), line(P_LINE)])
    batch_y = torch.cat([line([1, 1, 0, 0, 0, 1, 0, 0]), none])
    blob = BlobLoss(dice).blob_term(batch_p, batch_y).item()
    assert blob == pytest.approx((1 - 3.2 / 4.3 + 1 - 0.8 / 2.1) / 2, abs=1e-12)


def test_hand_tversky_and_focal_tversky():
    # component B of the line: tp 0.4, fp = p of the background pixels = 0.2 + 0.1 + 0 + 0.3 + 0.1 = 0.7, fn 0.6
    target = line([1, 1, 0, 0, 0, 1, 0, 0])
    tv = TverskyLoss(alpha=0.3, beta=0.7, smooth_nr=0, smooth_dr=0)
    a = 1 - 1.6 / (1.6 + 0.3 * 0.7 + 0.7 * 0.4)
    b = 1 - 0.4 / (0.4 + 0.3 * 0.7 + 0.7 * 0.6)
    assert BlobLoss(tv).blob_term(line(P_LINE), target).item() == pytest.approx((a + b) / 2, abs=1e-12)
    ft = FocalTverskyLoss(alpha=0.3, beta=0.7, gamma=4 / 3, smooth_nr=0, smooth_dr=0)
    expected = (a**0.75 + b**0.75) / 2
    assert BlobLoss(ft).blob_term(line(P_LINE), target).item() == pytest.approx(expected, abs=1e-9)


# ------------------------------------------------------------------------------------- oracle on random inputs

SOFTMAX = {"softmax": True, "to_onehot_y": True, "include_background": False}
LOSSES = {
    "dice": lambda **kw: DiceLoss(**kw),
    "jaccard": lambda **kw: DiceLoss(jaccard=True, **kw),
    "squared_dice": lambda **kw: DiceLoss(squared_pred=True, **kw),  # no fast path: the batched path
    "generalized_dice": lambda **kw: GeneralizedDiceLoss(**kw),
    "tversky": lambda **kw: TverskyLoss(alpha=0.3, beta=0.7, **kw),
    "focal_tversky": lambda **kw: FocalTverskyLoss(**kw),
    "dibe": lambda **kw: DIBELoss(**kw),
    "dibe_dis": lambda **kw: DIBEDisLoss(**kw),
    "dibe_reg": lambda **kw: DIBERegLoss(**kw),
    "combo": lambda **kw: ComboLoss(**kw),
    "exp_log": lambda **kw: ExpLogLoss(**kw),
    "hybrid_focal": lambda **kw: HybridFocalLoss(**kw),
}


def random_index_label(shape, num_classes, seed, objects=6, max_size=4) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    label = np.zeros(shape, np.int64)
    for _ in range(objects):
        cls = rng.integers(1, num_classes)
        start = [rng.integers(0, s - 1) for s in shape]
        size = [rng.integers(1, max_size + 1) for _ in shape]
        label[tuple(slice(a, min(a + z, s)) for a, z, s in zip(start, size, shape))] = cls
    return torch.from_numpy(label)


def probabilities_of(logits: torch.Tensor, softmax: bool) -> torch.Tensor:
    return torch.softmax(logits, 1) if softmax else torch.sigmoid(logits)


@pytest.mark.parametrize("name", sorted(LOSSES))
@pytest.mark.parametrize("spatial", [(20, 18), (10, 9, 8)])
def test_blob_term_equals_loop_multiclass(name, spatial):
    num_classes = 4
    target = torch.stack([random_index_label(spatial, num_classes, seed)[None] for seed in (1, 2)]).double()
    logits = torch.randn(2, num_classes, *spatial, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    blob = BlobLoss(LOSSES[name](**SOFTMAX))
    ours = blob.blob_term(logits, target)
    probs = probabilities_of(logits, softmax=True)[:, 1:]
    onehot = index_to_onehot(target, num_classes)[:, 1:]
    ids = torch.from_numpy(np.stack([connected_components(t) for t in target.numpy()])).long()
    oracle = blob_by_loop(lambda: blob.component_loss, probs, onehot, ids.expand_as(onehot))
    assert ours.item() == pytest.approx(oracle.item(), rel=1e-6, abs=1e-9)


@pytest.mark.parametrize("name", ["dice", "dibe", "focal_tversky", "tversky", "dibe_dis"])
def test_fast_path_equals_batched_path(name, monkeypatch):
    # binary sigmoid output, 2-D, many objects; then the same with the fast path switched off
    target = torch.stack([(random_index_label((32, 32), 2, s, objects=30, max_size=3) > 0)[None] for s in (4, 5, 6)])
    target = target.double()
    logits = torch.randn(3, 1, 32, 32, dtype=torch.float64, generator=torch.Generator().manual_seed(7))
    fast_x = logits.clone().requires_grad_()
    blob = BlobLoss(LOSSES[name](sigmoid=True))
    fast = blob(fast_x, target)
    fast.backward()
    monkeypatch.setattr(BlobLoss, "_fast_values", lambda self, *args: None)
    slow_x = logits.clone().requires_grad_()
    slow = blob(slow_x, target)
    slow.backward()
    assert fast.item() == pytest.approx(slow.item(), rel=1e-7, abs=1e-9)
    torch.testing.assert_close(fast_x.grad, slow_x.grad, rtol=1e-5, atol=1e-9)


def test_onehot_target_with_channel_components():
    # a one-hot target and components per channel (the ConnectedComponents output of a one-hot label)
    target_index = random_index_label((16, 16), 3, 11, objects=8)[None, None].double()
    onehot = index_to_onehot(target_index, 3)
    logits = torch.randn(1, 3, 16, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    per_channel = torch.from_numpy(connected_components(onehot[0].numpy()))[None]
    index_loss = BlobLoss(DiceLoss(softmax=True, to_onehot_y=True, include_background=False))
    onehot_loss = BlobLoss(DiceLoss(softmax=True, include_background=False))
    a = index_loss.blob_term(logits, target_index)
    b = onehot_loss.blob_term(logits, onehot, components=per_channel)
    c = onehot_loss.blob_term(logits, onehot)  # computed from the one-hot target: per channel
    assert a.item() == pytest.approx(b.item(), abs=1e-12)
    assert a.item() == pytest.approx(c.item(), abs=1e-12)


def test_gradient_reaches_every_component_and_favours_the_small_one():
    target = torch.zeros(1, 1, 40, 40)
    target[..., 2:30, 2:30] = 1  # 784 px
    target[..., 35:37, 35:37] = 1  # 4 px
    logits = torch.zeros(1, 1, 40, 40, requires_grad=True)
    BlobLoss(DiceLoss(sigmoid=True), alpha=0, beta=1)(logits, target).backward()
    blob_grad = logits.grad.clone()
    assert torch.all(blob_grad[..., 2:30, 2:30] < 0) and torch.all(blob_grad[..., 35:37, 35:37] < 0)
    logits.grad = None
    DiceLoss(sigmoid=True)(logits, target).backward()
    plain_grad = logits.grad
    # the small object's pull relative to the large one's is stronger under the blob term
    ratio_blob = blob_grad[..., 35, 35] / blob_grad[..., 15, 15]
    ratio_plain = plain_grad[..., 35, 35] / plain_grad[..., 15, 15]
    assert ratio_blob.item() > 5 * ratio_plain.item()


def test_example_small_object_missed():
    target = torch.zeros(1, 1, 32, 32)
    target[..., 2:22, 2:22] = 1
    target[..., 27:29, 27:29] = 1
    logits = torch.where(target > 0, 6.0, -6.0)
    logits[..., 27:29, 27:29] = -6.0
    dice = DiceLoss(sigmoid=True)
    assert dice(logits, target).item() < 0.01  # the large object dominates: the missed one costs under 1 %
    assert BlobLoss(dice, alpha=0, beta=1)(logits, target).item() == pytest.approx(0.5, abs=0.01)  # (0 + 1) / 2


# ------------------------------------------------------------------------------------------- components input


def test_cached_components_cut_by_a_crop_stay_one_object():
    # one object cut in two by a crop: cached ids give one blob of two pieces, relabelling gives two blobs
    label = torch.zeros(1, 1, 10, 10)
    label[..., 2:8, 4:6] = 1
    ids_full = torch.from_numpy(connected_components(label[0].numpy()))[None]
    crop = (slice(None), slice(None), slice(0, 10), slice(0, 10))
    cropped, ids = label[crop].clone(), ids_full[crop].clone()
    cropped[..., 4:6, :] = 0  # what remains after cutting rows 4-5 out (e.g. a crop plus a mirror) : two pieces
    ids[..., 4:6, :] = 0
    probs = torch.rand(1, 1, 10, 10, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    dice = DiceLoss()
    one_blob = BlobLoss(dice).blob_term(probs, cropped.double(), components=ids)
    two_blobs = BlobLoss(dice).blob_term(probs, cropped.double())
    assert one_blob.item() == pytest.approx(dice(probs, cropped.double()).item(), abs=1e-12)
    relabelled = torch.from_numpy(connected_components(cropped[0].numpy()))[None].long()
    oracle = blob_by_loop(DiceLoss, probs, cropped.double(), relabelled)
    assert two_blobs.item() == pytest.approx(oracle.item(), abs=1e-12)
    assert abs(one_blob.item() - two_blobs.item()) > 1e-3


def test_components_transform_matches_scipy_label():
    rng = np.random.default_rng(0)
    for shape in [(30, 40), (12, 14, 10)]:
        label = rng.integers(0, 3, shape) * (rng.random(shape) < 0.3)
        ids = ConnectedComponents()(label[None])[0]
        assert ids.dtype == np.int32
        structure = ndimage.generate_binary_structure(len(shape), len(shape))
        for cls in (1, 2):
            expected, n = ndimage.label(label == cls, structure)
            ours = ids * (label == cls)
            assert (ours > 0).sum() == (expected > 0).sum()
            pairs = {(int(a), int(b)) for a, b in zip(ours[label == cls], expected[label == cls])}
            assert len(pairs) == n == len({a for a, _ in pairs})  # a bijection of components
        # connectivity 1: face neighbours only
        ids1 = ConnectedComponents(connectivity=1)(label[None])[0]
        structure1 = ndimage.generate_binary_structure(len(shape), 1)
        assert len(np.unique(ids1)) - 1 == sum(ndimage.label(label == c, structure1)[1] for c in (1, 2))


def test_components_transform_types_and_dict():
    label = torch.zeros(1, 6, 6)
    label[0, 0, 0] = 1
    label[0, 4:6, 4:6] = 2
    meta = MetaTensor(label, affine=torch.diag(torch.tensor([2.0, 3.0, 1.0, 1.0])))
    out = ConnectedComponents()(meta)
    assert isinstance(out, MetaTensor) and out.dtype == torch.int32
    torch.testing.assert_close(out.affine, meta.affine)
    assert sorted(torch.unique(out).tolist()) == [0, 1, 2]
    d = ConnectedComponentsd("label")({"label": label})
    assert torch.equal(d["label"], label)
    torch.testing.assert_close(d["label_components"], ConnectedComponents()(label))
    # two diagonal pixels: one component with full connectivity, two with connectivity 1
    diag = np.zeros((1, 3, 3), np.uint8)
    diag[0, 0, 0] = diag[0, 1, 1] = 1
    assert ConnectedComponents()(diag).max() == 1 and ConnectedComponents(connectivity=1)(diag).max() == 2


def test_blob_loss_with_components_from_the_transform_equals_computed():
    target = random_index_label((24, 24), 3, 8, objects=10)[None, None].double()
    comps = ConnectedComponentsd("label")({"label": target[0]})["label_components"][None]
    logits = torch.randn(1, 3, 24, 24, dtype=torch.float64)
    loss = BlobLoss(DIBELoss(**SOFTMAX))
    assert loss(logits, target, comps).item() == pytest.approx(loss(logits, target).item(), abs=1e-12)


# ---------------------------------------------------------------------------------------------------- bad input


def test_bad_inputs():
    with pytest.raises(TypeError, match="global_loss=DiceCELoss"):
        BlobLoss(DiceCELoss(sigmoid=True))
    with pytest.raises(ValueError, match="alpha must be a finite number >= 0"):
        BlobLoss(DiceLoss(), alpha=-1)
    with pytest.raises(ValueError, match="beta must be"):
        BlobLoss(DiceLoss(), beta=float("nan"))
    target = line([1, 1, 0, 0, 0, 1, 0, 0])
    loss = BlobLoss(DiceLoss())
    with pytest.raises(ValueError, match="components must have the target's batch and spatial shape"):
        loss(line(P_LINE), target, components=torch.zeros(1, 1, 1, 7))
    with pytest.raises(ValueError, match="without a component id"):
        loss(line(P_LINE), target, components=torch.zeros(1, 1, 1, 8, dtype=torch.long))
    with pytest.raises(ValueError, match="integer component ids"):
        loss(line(P_LINE), target, components=target * 0.5)
    with pytest.raises(ValueError, match=">= 0"):
        loss(line(P_LINE), target, components=-target)
    with pytest.raises(ValueError, match="must return a scalar"):
        BlobLoss(DiceLoss(), global_loss=DiceLoss(reduction="none"))(line(P_LINE), target)
    with pytest.raises(ValueError, match="not whole numbers|class indices"):
        BlobLoss(DiceLoss(softmax=True, to_onehot_y=True))(torch.randn(1, 3, 1, 8), target * 0.5)
    with pytest.raises(ValueError, match="channel-first"):
        connected_components(np.zeros((4, 4)))


def test_nan_logits_give_nan():
    target = line([1, 1, 0, 0, 0, 1, 0, 0])
    logits = line([0.0] * 8)
    logits[..., 3] = float("nan")
    assert torch.isnan(BlobLoss(DiceLoss(sigmoid=True))(logits, target))


def test_global_loss_override_and_repr():
    target = (random_index_label((16, 16), 2, 3) > 0)[None, None].double()
    logits = torch.randn(1, 1, 16, 16, dtype=torch.float64)
    dice, dice_ce = DiceLoss(sigmoid=True), DiceCELoss(sigmoid=True)
    loss = BlobLoss(dice, alpha=2, beta=1, global_loss=dice_ce)
    expected = 2 * dice_ce(logits, target) + BlobLoss(dice).blob_term(logits, target)
    assert loss(logits, target).item() == pytest.approx(expected.item(), abs=1e-12)
    assert "alpha=2.0, beta=1.0" in repr(loss)


@pytest.mark.gpu
def test_cuda_equals_cpu():
    target = random_index_label((32, 32), 3, 5, objects=12)[None, None].float()
    logits = torch.randn(1, 3, 32, 32)
    loss = BlobLoss(DIBELoss(**SOFTMAX))
    cpu = loss(logits, target)
    gpu = loss.cuda()(logits.cuda(), target.cuda())
    assert gpu.item() == pytest.approx(cpu.item(), rel=1e-5)


@pytest.mark.parametrize("name", ["dice", "dibe", "squared_dice"])
def test_background_of_an_index_map_is_never_a_blob(name):
    # with include_background=True the background channel has no components: the same blob term as without it
    target = random_index_label((20, 20), 3, 9, objects=8)[None, None].double()
    logits = torch.randn(1, 3, 20, 20, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    with_bg = BlobLoss(LOSSES[name](softmax=True, to_onehot_y=True, include_background=True))
    without = BlobLoss(LOSSES[name](**SOFTMAX))
    assert with_bg.blob_term(logits, target).item() == pytest.approx(without.blob_term(logits, target).item())


def test_deep_supervision_relabels_components_for_smaller_heads():
    from monai_imbalance.losses import DeepSupervisionLoss, downsample_label

    target = torch.zeros(1, 1, 16, 16)
    target[..., 1, 1] = 1  # a one-pixel object: kept by the "max" downsampling, not by nearest-resized ids
    target[..., 6:12, 6:12] = 1
    ids = torch.from_numpy(connected_components(target[0].numpy()))[None]
    blob = BlobLoss(DiceLoss(sigmoid=True))
    loss = DeepSupervisionLoss(blob, weight_mode="same", target_mode="max")
    heads = [torch.randn(1, 1, 16, 16), torch.randn(1, 1, 8, 8)]
    value = loss(heads, target, components=ids)
    small = downsample_label(target, (8, 8), mode="max")
    expected = blob(heads[0], target, components=ids) + blob(heads[1], small)  # the small head's own components
    assert value.item() == pytest.approx(expected.item(), rel=1e-6)


SHARED_CASES = {
    **{name: {} for name in LOSSES},
    "dice_sum": {"reduction": "sum"},
    "dibe_batch": {"batch": True},
    "focal_tversky_weighted": {"weight": [0.2, 0.3, 0.5]},
    "dice_weighted": {"weight": [0.2, 0.3, 0.5]},
    "dibe_dis_sum": {"reduction": "sum"},
}


@pytest.mark.parametrize("case", sorted(SHARED_CASES))
def test_total_equals_global_loss_plus_blob_term(case):
    # the fast path gives the global term from the same sums: it must equal calling the wrapped loss
    name = case.split("_sum")[0].split("_batch")[0].split("_weighted")[0]
    kwargs = {**SOFTMAX, **SHARED_CASES[case]}
    target = torch.stack([random_index_label((20, 18), 4, seed, objects=9)[None] for seed in (3, 4)]).double()
    logits = torch.randn(2, 4, 20, 18, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    loss = LOSSES[name](**kwargs)
    x1, x2 = logits.clone().requires_grad_(), logits.clone().requires_grad_()
    total = BlobLoss(loss, alpha=2.0, beta=1.0)(x1, target)
    separate = 2.0 * loss(x2, target) + BlobLoss(loss).blob_term(x2, target)
    assert total.item() == pytest.approx(separate.item(), rel=1e-6, abs=1e-9)
    total.backward()
    separate.backward()
    torch.testing.assert_close(x1.grad, x2.grad, rtol=1e-5, atol=1e-8)


def test_soft_binary_target_keeps_the_global_loss_own_reading():
    target = (random_index_label((16, 16), 2, 2, objects=5) > 0)[None, None].double()
    soft = target * 0.9 + (1 - target) * 0.05  # read as hard 0/1 by the components; MONAI's Dice reads it soft
    logits = torch.randn(1, 1, 16, 16, dtype=torch.float64)
    ids = torch.from_numpy(connected_components(target[0].numpy()))[None]  # soft labels: components given
    dice = DiceLoss(sigmoid=True)
    blob = BlobLoss(dice)
    expected = 2 * dice(logits, soft) + blob.blob_term(logits, soft, ids)
    assert blob(logits, soft, ids).item() == pytest.approx(expected.item(), rel=1e-9)
