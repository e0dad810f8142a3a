from __future__ import annotations

import pytest
import torch
from monai.data import MetaTensor

from monai_imbalance.losses.utils import (
    arguments_for,
    check_activation_args,
    check_reduction,
    log1m_softmax,
    log_probabilities,
    plain_tensor,
    prepare_input_target,
    reduce_loss,
)


def test_plain_tensor_drops_metadata_keeps_storage_and_autograd():
    x = MetaTensor(torch.arange(6.0).reshape(2, 3), meta={"filename_or_obj": "a.nii"}).requires_grad_(True)
    plain = plain_tensor(x)
    assert type(plain) is torch.Tensor and plain.data_ptr() == x.data_ptr()
    (plain * torch.tensor([1.0, 2.0, 3.0])).sum().backward()
    torch.testing.assert_close(torch.as_tensor(x.grad), torch.tensor([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]]))
    y = torch.ones(2)
    assert plain_tensor(y) is y  # plain tensors pass through


def test_arguments_for_picks_what_the_function_takes():
    def target(a, b=2, *, c=3):
        return a, b, c

    values = {"self": object(), "a": 1, "c": 5, "unrelated": 9}
    assert arguments_for(target, values) == {"a": 1, "c": 5}
    assert arguments_for(target, values, b=7) == {"a": 1, "b": 7, "c": 5}
    assert values == {"self": values["self"], "a": 1, "c": 5, "unrelated": 9}  # not changed
    with pytest.raises(TypeError, match=r"takes no argument\(s\) \['d'\]"):
        arguments_for(target, values, d=1)


def test_more_than_one_activation_raises_monai_message():
    with pytest.raises(ValueError, match=r"Incompatible values: more than 1 of \[sigmoid=True, softmax=True"):
        check_activation_args(True, True, None)
    with pytest.raises(TypeError, match="other_act must be None or callable"):
        check_activation_args(False, False, "relu")
    check_activation_args(False, True, None)


def test_check_reduction():
    assert check_reduction("none") == "none"
    with pytest.raises(ValueError, match="Unsupported reduction: avg"):
        check_reduction("avg")


@pytest.mark.parametrize("spatial", [(4, 5), (3, 4, 5)])
def test_prepare_input_target_onehot_and_background(spatial):
    logits = torch.randn(2, 3, *spatial)
    target = torch.randint(0, 3, (2, 1, *spatial))
    probs, onehot = prepare_input_target(logits, target, softmax=True, to_onehot_y=True, include_background=False)
    assert probs.shape == onehot.shape == (2, 2, *spatial)
    torch.testing.assert_close(probs, torch.softmax(logits, 1)[:, 1:])
    torch.testing.assert_close(onehot[:, 0], (target[:, 0] == 1).float())


def test_prepare_input_target_errors():
    logits = torch.randn(2, 3, 4, 4)
    shapes = r"ground truth has different shape \(\(2, 1, 4, 4\)\) from input \(\(2, 3, 4, 4\)\)"
    with pytest.raises(ValueError, match=shapes):
        prepare_input_target(logits, torch.zeros(2, 1, 4, 4))
    with pytest.raises(ValueError, match=r"class values in \[0, 3\] but the input has 3 channels"):
        target = torch.zeros(2, 1, 4, 4)
        target[0, 0, 1, 1] = 3
        prepare_input_target(logits, target, to_onehot_y=True)
    with pytest.raises(ValueError, match=r"must have shape \(B, C, H, W\)"):
        prepare_input_target(torch.randn(3, 4, 4), torch.zeros(3, 4, 4))
    with pytest.raises(TypeError, match="floating point"):
        prepare_input_target(torch.zeros(1, 1, 4, 4, dtype=torch.long), torch.zeros(1, 1, 4, 4))


def test_single_channel_softmax_warns_like_monai():
    with pytest.warns(UserWarning, match="single channel prediction, `softmax=True` ignored."):
        prepare_input_target(torch.rand(1, 1, 4, 4), torch.zeros(1, 1, 4, 4), softmax=True)


@pytest.mark.parametrize("act", ["sigmoid", "softmax", "none"])
def test_log_probabilities_match_float64_reference(act):
    torch.manual_seed(1)
    x = torch.randn(2, 3, 6, 6, dtype=torch.float64) * 4
    if act == "none":
        x = torch.sigmoid(x)
        p = x
    else:
        p = torch.sigmoid(x) if act == "sigmoid" else torch.softmax(x, 1)
    log_p, log_1mp = log_probabilities(x.float(), sigmoid=act == "sigmoid", softmax=act == "softmax")
    torch.testing.assert_close(log_p.double(), torch.log(p), atol=1e-4, rtol=1e-4)
    # probabilities given as float32 carry ~6e-8 absolute rounding, i.e. 6e-5 relative on 1 - p >= 1e-3:
    # compare log(1 - p) only there
    resolvable = p < 1 - 1e-3 if act == "none" else torch.ones_like(p, dtype=torch.bool)
    torch.testing.assert_close(log_1mp.double()[resolvable], torch.log1p(-p)[resolvable], atol=1e-4, rtol=1e-4)


def test_log1m_softmax_gradient_matches_autograd_of_the_definition():
    torch.manual_seed(0)
    x = torch.randn(2, 4, 3, 3, dtype=torch.float64, requires_grad=True)
    x.data[0, :, 0, 0] = torch.tensor([2.0, 2.0, -1.0, 0.5], dtype=torch.float64)  # tied maxima
    assert torch.autograd.gradcheck(lambda t: log1m_softmax(t, 1), (x,))
    weights = torch.randn_like(x)
    (grad,) = torch.autograd.grad((log1m_softmax(x, 1) * weights).sum(), x)
    (reference,) = torch.autograd.grad((torch.log1p(-torch.softmax(x, 1)) * weights).sum(), x)
    torch.testing.assert_close(grad, reference)


def test_log_probabilities_finite_when_saturated():
    x = torch.tensor([[[[0.0, 200.0]], [[0.0, -200.0]]]], requires_grad=True)
    for kwargs in ({"softmax": True}, {"sigmoid": True}):
        log_p, log_1mp = log_probabilities(x, **kwargs)
        assert torch.isfinite(log_p).all() and torch.isfinite(log_1mp).all()
        (log_p.sum() + log_1mp.sum()).backward()
        assert torch.isfinite(x.grad).all()
        x.grad = None


@pytest.mark.parametrize("scale", [1.0, 4.0, 20.0, 60.0])
def test_log1m_softmax_accurate_in_float32_for_large_gaps(scale):
    torch.manual_seed(0)
    x = torch.randn(4, 5, 8, 8, dtype=torch.float64) * scale
    x[0, :, 0, 0] = torch.tensor([3.0, 3.0, -1.0, 0.0, 1.0])  # tied maxima
    # float64 reference without cancellation: log of the other classes' exp-sum minus log of the total
    others = [torch.logsumexp(torch.cat([x[:, :c], x[:, c + 1 :]], 1), 1) for c in range(x.shape[1])]
    reference = torch.stack(others, 1) - torch.logsumexp(x, 1, keepdim=True)
    got = log1m_softmax(x.float(), 1).double()
    mask = reference > -80  # below that float32 exp underflows and the result is clamped (checked below)
    torch.testing.assert_close(got[mask], reference[mask], rtol=1e-5, atol=1e-5)
    assert torch.isfinite(got).all() and (got[~mask] <= -80).all()


def test_reduce_loss():
    x = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    assert reduce_loss(x, "mean").item() == 2.5
    assert reduce_loss(x, "sum").item() == 10.0
    assert reduce_loss(x, "none") is x
