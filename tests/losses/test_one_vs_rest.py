"""The fused one-vs-rest kernels against their autograd definition (the test oracle), and their numerics."""

from __future__ import annotations

import pytest
import torch
from monai.data import MetaTensor

from monai_imbalance.losses import _one_vs_rest_kernels as kernels
from monai_imbalance.losses.one_vs_rest import ExpLogCE, FocalFamily, one_vs_rest_terms, reference_terms

TERMS = [
    None,
    FocalFamily(0.75, 2.0, 0.7, 0.3),
    FocalFamily(0.6, 0.0),
    FocalFamily(0.7, 1.5, 0.2, 0.9),
    ExpLogCE(0.75, 1.0),
    ExpLogCE(0.7, 0.3),
]


def _inputs(act: str, channels: int, spatial: tuple[int, ...], scale: float = 3.0, seed: int = 0, batch: int = 2):
    """float64 logits with exact ties, labels (class indices for softmax, multi-label for sigmoid), the arguments."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, channels, *spatial, generator=gen, dtype=torch.float64) * scale
    x[0, :, 0, 0] = 0.0  # an exact tie between all classes
    if channels > 2:
        x[1, 1, 1, 1] = x[1, 0, 1, 1]  # a tie between two classes
    if act == "softmax":
        target = torch.randint(0, channels, (batch, 1, *spatial), generator=gen).double()
        return x, target, {"softmax": True, "to_onehot_y": True}
    target = (torch.rand(batch, channels, *spatial, generator=gen) > 0.6).double()
    return x, target, {"sigmoid": True}


def _outputs_and_grad(fused: bool, x, target, term, **kwargs):
    x = x.clone().requires_grad_(True)
    terms = one_vs_rest_terms(x, target, term, fused=fused, **kwargs)
    gen = torch.Generator().manual_seed(1)
    outputs = [v for v in (terms.pixel, terms.tp, terms.fp, terms.fn) if v is not None]
    total = sum((v * torch.rand(v.shape, generator=gen, dtype=v.dtype)).sum() for v in outputs)
    total.backward()
    return outputs, x.grad


CASES = [("sigmoid", 1), ("sigmoid", 3), ("softmax", 2), ("softmax", 3), ("softmax", 5)]


@pytest.mark.parametrize("act,channels", CASES)
@pytest.mark.parametrize("term", TERMS, ids=lambda t: "counts" if t is None else repr(t))
@pytest.mark.parametrize("want_map,include_background", [(False, True), (True, False)])
def test_fused_matches_reference(act, channels, term, want_map, include_background):
    spatial = (5, 6) if channels != 3 else (4, 3, 5)  # 2-D and 3-D
    x, target, kwargs = _inputs(act, channels, spatial)
    kwargs.update(want_map=want_map, include_background=include_background)
    if act == "sigmoid" and channels == 1 and not include_background:
        kwargs["include_background"] = True
    fused_out, fused_grad = _outputs_and_grad(True, x, target, term, **kwargs)
    ref_out, ref_grad = _outputs_and_grad(False, x, target, term, **kwargs)
    for a, b in zip(fused_out, ref_out):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-8)
    torch.testing.assert_close(fused_grad, ref_grad, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("act,channels", [("sigmoid", 2), ("softmax", 2), ("softmax", 4)])
def test_fused_gradcheck(act, channels):
    x, target, kwargs = _inputs(act, channels, (2, 3), scale=2.0, seed=3)
    # move off the exact ties: the branch selection is not differentiable there
    x = x + 0.1 * torch.arange(1, channels + 1, dtype=x.dtype).view(1, -1, 1, 1)
    term = FocalFamily(0.75, 2.0, 0.7, 0.3)

    def fn(inp):
        t = one_vs_rest_terms(inp, target, term, **kwargs)
        return t.pixel, t.tp, t.fp, t.fn

    assert torch.autograd.gradcheck(fn, (x.requires_grad_(True),), eps=1e-7, atol=1e-5)


@pytest.mark.parametrize("act,channels", [("sigmoid", 1), ("softmax", 2), ("softmax", 4)])
@pytest.mark.parametrize("scale", [30.0, 1e4])
def test_saturated_logits_finite_loss_and_gradient(act, channels, scale):
    x, target, kwargs = _inputs(act, channels, (8, 8), scale=scale)
    x = x.float().requires_grad_(True)
    for term in TERMS[1:]:
        terms = one_vs_rest_terms(x, target.float(), term, **kwargs)
        total = terms.pixel.sum() + terms.tp.sum() - terms.fn.sum()
        (grad,) = torch.autograd.grad(total, x)
        assert torch.isfinite(total) and torch.isfinite(grad).all()


@pytest.mark.parametrize("act", ["sigmoid", "softmax"])
def test_confident_wrong_logit_gives_exact_loss(act):
    # the true class 0 of a two-class softmax (or the sigmoid foreground) is predicted with a logit gap of 40:
    # log p = -40 exactly to float precision, far below where 1 - p is representable
    gap = 40.0
    if act == "softmax":
        x = torch.tensor([[[[0.0]], [[gap]]]])
        target, kwargs = torch.zeros(1, 1, 1, 1), {"softmax": True, "to_onehot_y": True, "include_background": False}
    else:
        x = torch.tensor([[[[gap]]]])
        target, kwargs = torch.zeros(1, 1, 1, 1), {"sigmoid": True}
    # FP on the foreground: -(1 - lambda) (1 + alpha) (1 - (1 - p)^(1 + alpha))^gamma log(1 - p)
    terms = one_vs_rest_terms(x, target, FocalFamily(0.75, 2.0, 0.7, 0.3), **kwargs)
    assert terms.pixel.item() == pytest.approx(0.25 * 1.7 * gap, rel=1e-6)


def test_probability_inputs_at_exactly_zero_and_one():
    p = torch.tensor([[[[0.0, 1.0], [1.0, 0.0]]]], requires_grad=True)
    y = torch.tensor([[[[0.0, 1.0], [0.0, 1.0]]]])
    for term in TERMS[1:]:
        terms = one_vs_rest_terms(p, y, term)
        total = terms.pixel.sum() + terms.tp.sum()
        (grad,) = torch.autograd.grad(total, p)
        assert torch.isfinite(total) and torch.isfinite(grad).all()


@pytest.mark.parametrize("act,channels", [("sigmoid", 1), ("softmax", 2), ("softmax", 3)])
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_nan_or_infinite_logits_give_nan_loss(act, channels, bad):
    x, target, kwargs = _inputs(act, channels, (4, 4))
    x[0, 0, 2, 2] = bad
    for fused in (True, False):
        terms = one_vs_rest_terms(x, target, FocalFamily(0.75, 2.0, 0.7, 0.3), fused=fused, **kwargs)
        assert torch.isnan(terms.pixel.sum()) and torch.isnan(terms.tp).any() and torch.isnan(terms.fn).any()


def test_metatensor_and_soft_count_identities(onehot):
    x, target, kwargs = _inputs("softmax", 3, (6, 6))
    terms = one_vs_rest_terms(MetaTensor(x), MetaTensor(target), None, **kwargs)
    probs = torch.softmax(x, 1)
    y = onehot(target, 3)
    torch.testing.assert_close(terms.tp, (probs * y).sum((2, 3)))
    torch.testing.assert_close(terms.fp, (probs * (1 - y)).sum((2, 3)))
    torch.testing.assert_close(terms.fn, ((1 - probs) * y).sum((2, 3)))
    assert terms.num_voxels == 36 and not isinstance(terms.tp, MetaTensor)  # plain tensors out, no metadata cost


def test_errors_name_the_problem():
    x = torch.randn(2, 3, 4, 4)
    with pytest.raises(ValueError, match=r"class values in \[3, 3\] but the input has 3 channels"):
        one_vs_rest_terms(x, torch.full((2, 1, 4, 4), 3.0), None, softmax=True, to_onehot_y=True)
    with pytest.raises(ValueError, match="ground truth has different shape"):
        one_vs_rest_terms(x, torch.zeros(2, 1, 4, 5), None, softmax=True, to_onehot_y=True)
    with pytest.raises(ValueError, match="ground truth has different shape"):
        one_vs_rest_terms(x, torch.zeros(2, 2, 4, 4), None, sigmoid=True)
    with pytest.raises(ValueError, match=r"must have shape \(B, C, H, W\)"):
        one_vs_rest_terms(torch.randn(3, 4, 4), torch.zeros(3, 4, 4), None, sigmoid=True)


def test_softmax_one_hot_target_matches_label_target(onehot):
    x, target, kwargs = _inputs("softmax", 4, (5, 5))
    a = one_vs_rest_terms(x, target, FocalFamily(0.75, 2.0, 0.7, 0.3), **kwargs)
    b = one_vs_rest_terms(x, onehot(target, 4), FocalFamily(0.75, 2.0, 0.7, 0.3), softmax=True)
    for u, v in zip(a[:4], b[:4]):
        torch.testing.assert_close(u, v)
    assert a.num_voxels == b.num_voxels == 25


def test_soft_target_takes_the_definition():
    # a softmax target that is not one class per pixel (soft labels) has no fused path: the definition answers
    x, target, kwargs = _inputs("softmax", 3, (4, 4))
    soft = torch.softmax(torch.randn(x.shape, generator=torch.Generator().manual_seed(2), dtype=x.dtype), 1)
    term = FocalFamily(0.75, 2.0, 0.7, 0.3)
    got = one_vs_rest_terms(x, soft, term, softmax=True)
    ref = reference_terms(x, soft, term, softmax=True)
    for u, v in zip(got[:4], ref[:4]):
        torch.testing.assert_close(u, v, rtol=0.0, atol=0.0)


@pytest.mark.parametrize("chunk", [16, 300])
@pytest.mark.parametrize("act,channels", [("sigmoid", 2), ("softmax", 2), ("softmax", 3)])
def test_cpu_chunks_match_the_definition(chunk, act, channels, monkeypatch):
    # small chunks: 16 elements split every image along space (a shorter last chunk), 300 group whole images
    monkeypatch.setattr(kernels, "_CPU_CHUNK", chunk)
    kernel_channels = 1 if (act, channels) == ("softmax", 2) else channels  # two classes: one logit difference
    chunks = kernels._chunks(5, kernel_channels, 72, torch.device("cpu"))
    covered = torch.zeros(5, 72)
    for b0, b1, n0, n1 in chunks:
        covered[b0:b1, n0:n1] += 1
    assert len(chunks) > 1 and bool((covered == 1).all())  # every element in exactly one chunk
    assert (max(n1 - n0 for *_, n0, n1 in chunks) < 72) == (chunk == 16)
    x, target, kwargs = _inputs(act, channels, (8, 9), batch=5, seed=4)
    for want_map in (False, True):
        kwargs["want_map"] = want_map
        fused_out, fused_grad = _outputs_and_grad(True, x, target, FocalFamily(0.75, 2.0, 0.7, 0.3), **kwargs)
        ref_out, ref_grad = _outputs_and_grad(False, x, target, FocalFamily(0.75, 2.0, 0.7, 0.3), **kwargs)
        for a, b in zip(fused_out, ref_out):
            torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-8)
        torch.testing.assert_close(fused_grad, ref_grad, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("act,channels", [("softmax", 3), ("softmax", 5), ("sigmoid", 2)])
@pytest.mark.parametrize("term", TERMS[1:], ids=repr)
@pytest.mark.parametrize("scale", [3.0, 1e4])  # 1e4: 1 - p_max below float resolution, the bounded-shares form
@pytest.mark.parametrize("ties", [True, False])
def test_branch_free_form_equals_the_host_branches(act, channels, term, scale, ties, monkeypatch):
    # on a GPU the kernels take the general form of every data-dependent branch (no host read per step): it must give
    # what the CPU's branches give, with and without tied maxima
    x, target, kwargs = _inputs(act, channels, (6, 7), scale=scale, seed=3)
    if not ties:
        x = x + torch.arange(channels, dtype=x.dtype).view(1, -1, 1, 1) * 1e-3  # no exact ties left
    branched = _outputs_and_grad(True, x, target, term, **kwargs)
    monkeypatch.setattr(kernels, "_host_branches", lambda device: False)
    general = _outputs_and_grad(True, x, target, term, **kwargs)
    for a, b in zip(general[0], branched[0]):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(general[1], branched[1], rtol=1e-9, atol=1e-12)
    assert bool(torch.isfinite(general[1]).all())


@pytest.mark.parametrize("act", ["softmax", "sigmoid"])
def test_a_gpu_step_reads_one_value_back_to_the_host(act, monkeypatch, host_reads):
    # off the CPU only the target check reads a value back (to raise on bad labels before a wrong loss); count every
    # way a tensor's value reaches Python during forward + backward of each one-vs-rest loss
    from monai_imbalance.losses import ComboLoss, DIBELoss, ExpLogLoss, FocalTverskyLoss, HybridFocalLoss

    monkeypatch.setattr(kernels, "_host_branches", lambda device: False)
    reads = host_reads
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 8, 8, generator=gen, requires_grad=True)
    if act == "softmax":
        target = torch.randint(0, 3, (2, 1, 8, 8), generator=gen).float()
        kwargs = {"softmax": True, "to_onehot_y": True}
    else:
        target, kwargs = (torch.rand(2, 3, 8, 8, generator=gen) > 0.5).float(), {"sigmoid": True}
    for loss_class in (DIBELoss, FocalTverskyLoss, ComboLoss, ExpLogLoss, HybridFocalLoss):
        loss = loss_class(**kwargs)
        reads.clear()
        loss(x, target).backward()
        # softmax: the class-index check of the target; sigmoid targets (masks or soft labels) need none
        assert len(reads) == (1 if act == "softmax" else 0), (loss_class.__name__, reads)
