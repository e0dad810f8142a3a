"""Input handling shared by every monai_imbalance loss, in MONAI's order and with MONAI's messages.

``forward`` of a loss runs: activation -> one-hot target -> drop background -> shape check -> the loss itself ->
reduction. The pieces are here once so that every loss treats ``sigmoid``/``softmax``/``other_act``,
``to_onehot_y`` and ``include_background`` the way ``monai.losses.DiceLoss`` does;
:class:`monai_imbalance.losses.base.SegmentationLoss` applies them with a loss's own arguments (and states the
package's NaN policy).
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import torch
import torch.nn.functional as F
from monai.networks import one_hot
from monai.utils import LossReduction, convert_to_tensor

from monai_imbalance.utils import non_integer_label_message

__all__ = [
    "arguments_for",
    "plain_tensor",
    "check_activation_args",
    "check_reduction",
    "check_input_shape",
    "activate",
    "log_probabilities",
    "log1m_softmax",
    "target_to_onehot",
    "check_class_indices",
    "check_target",
    "check_target_shape",
    "drop_background",
    "check_same_shape",
    "prepare_input_target",
    "reduce_loss",
    "spatial_dims",
]


def arguments_for(function: Callable, values: Mapping[str, Any], **overrides: Any) -> dict[str, Any]:
    """The entries of ``values`` (a constructor's ``locals()``), with ``overrides`` on top, that ``function`` takes by
    name: a loss passes its explicit MONAI-order arguments on to its base or to its parts without listing them again,
    as in ``super().__init__(**arguments_for(super().__init__, locals()))``.

    Raises:
        TypeError: an override that ``function`` does not take (a misspelt name would otherwise be dropped).
    """
    parameters = inspect.signature(function).parameters
    unknown = sorted(set(overrides) - set(parameters))
    if unknown:
        raise TypeError(f"{getattr(function, '__qualname__', function)} takes no argument(s) {unknown}.")
    values = {**values, **overrides}
    return {name: values[name] for name in parameters if name in values}


def plain_tensor(tensor: torch.Tensor) -> torch.Tensor:
    """``tensor`` without MONAI metadata (same storage, autograd kept): a ``MetaTensor`` costs time on every op."""
    return convert_to_tensor(tensor, track_meta=False)


def check_activation_args(sigmoid: bool, softmax: bool, other_act: Callable | None) -> None:
    """At most one activation, as MONAI's losses require (same messages)."""
    if other_act is not None and not callable(other_act):
        raise TypeError(f"other_act must be None or callable but is {type(other_act).__name__}.")
    if int(sigmoid) + int(softmax) + int(other_act is not None) > 1:
        raise ValueError("Incompatible values: more than 1 of [sigmoid=True, softmax=True, other_act is not None].")


def check_reduction(reduction: LossReduction | str) -> str:
    """The reduction's value; ``ValueError`` listing the valid ones otherwise."""
    values = [r.value for r in LossReduction]
    value = reduction.value if isinstance(reduction, LossReduction) else str(reduction)
    if value not in values:
        raise ValueError(f'Unsupported reduction: {reduction}, available options are {values}.')
    return value


def spatial_dims(tensor: torch.Tensor) -> list[int]:
    """Axes after batch and channel: ``[2, 3]`` for 2-D, ``[2, 3, 4]`` for 3-D."""
    return list(range(2, tensor.ndim))


def check_input_shape(input: torch.Tensor, name: str = "input") -> None:
    """``input`` must be ``(B, C, H, W[, D])``: a clear error instead of a failure deep inside torch."""
    if not isinstance(input, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(input).__name__}.")
    if input.ndim not in (4, 5):
        raise ValueError(
            f"{name} must have shape (B, C, H, W) or (B, C, H, W, D), got {tuple(input.shape)} ({input.ndim} dims)."
        )
    if not input.is_floating_point():
        raise TypeError(f"{name} must be a floating point tensor (logits or probabilities), got {input.dtype}.")


def activate(
    input: torch.Tensor, sigmoid: bool = False, softmax: bool = False, other_act: Callable | None = None
) -> torch.Tensor:
    """Probabilities from logits as ``monai.losses.DiceLoss`` computes them (warning on one-channel softmax)."""
    if sigmoid:
        input = torch.sigmoid(input)
    if softmax:
        if input.shape[1] == 1:
            warnings.warn("single channel prediction, `softmax=True` ignored.", stacklevel=3)
        else:
            input = torch.softmax(input, 1)
    if other_act is not None:
        input = other_act(input)
    return input


def log_probabilities(
    input: torch.Tensor, sigmoid: bool = False, softmax: bool = False, eps: float = 1e-7
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(log p, log(1 - p))`` computed stably: ``log_softmax`` / ``logsigmoid`` from logits, so that confident
    logits give finite values and gradients; for probabilities (no activation) ``p`` is clamped to
    ``[eps, 1 - eps]``. With ``softmax``, ``log(1 - p)`` is ``log`` of the other classes' total probability."""
    if sigmoid:
        return F.logsigmoid(input), F.logsigmoid(-input)
    if softmax and input.shape[1] > 1:
        return torch.log_softmax(input, 1), log1m_softmax(input, 1)
    p = input.clamp(eps, 1.0 - eps)
    return torch.log(p), torch.log1p(-p)


def log1m_softmax(input: torch.Tensor, dim: int = 1) -> torch.Tensor:
    """``log(1 - softmax(input)_c)`` for every class ``c``, accurate where ``1 - p`` is tiny.

    ``1 - p_c`` is the other classes' share, ``sum_{j != c} e_j / S`` with ``e_j = exp(x_j - max)``; it is summed
    directly, never as ``S - e_c`` when ``c`` holds the maximum (that subtraction cancels): with ``R`` the sum of
    the non-maximal ``e_j`` and ``n`` the sum over the maximal classes (1 each), the other classes' sum is
    ``R + (n - e_c)``, where ``n - e_c`` is exactly ``n - 1`` for a maximal class and ``R + n - e_c >= 1`` for the
    others. Float32 stays accurate up to logit gaps of about 87, where ``exp`` underflows; beyond, the sum is
    clamped to the smallest normal float (about -87)."""
    top = input.amax(dim, keepdim=True).detach()
    e = torch.exp(input - top)
    is_max = input >= top
    # the maximal terms are 1 in value; summed from ``e`` (not counted) so that they keep their gradient
    n_max = torch.where(is_max, e, torch.zeros_like(e)).sum(dim, keepdim=True)
    rest = torch.where(is_max, torch.zeros_like(e), e).sum(dim, keepdim=True)
    others = rest + (n_max - e)
    tiny = torch.finfo(input.dtype).tiny
    return torch.log(others.clamp(min=tiny)) - torch.log(rest + n_max)


def target_to_onehot(target: torch.Tensor, num_classes: int, to_onehot_y: bool) -> torch.Tensor:
    """One-hot ``target`` ``(B, 1, *spatial)`` -> ``(B, num_classes, *spatial)`` when ``to_onehot_y``; class values
    outside ``[0, num_classes)`` raise a ``ValueError`` naming them (torch's scatter error names nothing)."""
    if not to_onehot_y:
        return target
    if num_classes == 1:
        warnings.warn("single channel prediction, `to_onehot_y=True` ignored.", stacklevel=3)
        return target
    check_class_indices(target, num_classes)
    return one_hot(target, num_classes=num_classes)


def check_class_indices(
    target: torch.Tensor, num_classes: int, ignore_index: int | None = None, binary: bool = False
) -> None:
    """``target`` must be ``(B, 1, *spatial)`` class indices: whole numbers in ``[0, num_classes)``. A
    ``ValueError`` names the shape or the values otherwise: the non-integer values with the message of the transforms
    (:func:`monai_imbalance.utils.validate_label`; a float label such as 0.5 would otherwise be read as class 0),
    the range (torch's own scatter error names nothing).

    One device synchronisation: a single reduction to a boolean over the target (integer targets: its minimum and
    maximum); the values are only looked at when the check fails.

    Args:
        target: the class-index map.
        num_classes: number of classes (the input's channels; 2 for a one-channel binary output).
        ignore_index: a value allowed besides the classes (MONAI's ``DiceLoss(ignore_index=...)``).
        binary: the target is the mask of a one-channel (binary) output: the message says so.
    """
    if target.ndim < 2 or target.shape[1] != 1:
        raise ValueError(
            "to_onehot_y=True expects a target of shape (B, 1, *spatial) holding class indices, "
            f"got {tuple(target.shape)}."
        )
    if target.numel() == 0 or target.dtype == torch.bool:
        return
    target = target.detach()
    if target.is_floating_point() or target.is_complex():
        valid = (target >= 0) & (target < num_classes) & (target == torch.trunc(target))
        if ignore_index is not None:
            valid |= target == ignore_index
        if bool(valid.all()):
            return
        _raise_non_integer(target, "target")
    values = target if ignore_index is None else target[target != ignore_index]
    if values.numel() == 0:
        return
    lo, hi = torch.stack(torch.aminmax(values)).tolist()
    if lo < 0 or hi >= num_classes:
        has = "the one-channel (binary) output" if binary else f"the input has {num_classes} channels"
        raise ValueError(
            f"target has class values in [{lo:g}, {hi:g}] but {has} (valid values 0..{num_classes - 1})."
        )


def _raise_non_integer(target: torch.Tensor, name: str) -> None:
    """The error of a float class-index map that failed :func:`check_class_indices`, with the wording of
    :func:`monai_imbalance.utils.validate_label` (error path only: full-size temporaries are fine here)."""
    if not bool(torch.isfinite(target).all()):
        raise ValueError(f"{name} contains NaN or infinite values; labels must be class indices.")
    fractional = target[target != torch.trunc(target)]
    if fractional.numel():
        examples = torch.unique(fractional)[:5].tolist()
        raise ValueError(non_integer_label_message(name, examples))


def check_target_shape(input: torch.Tensor, target: torch.Tensor, to_onehot_y: bool) -> None:
    """``target`` must be ``(B, 1, *spatial)`` (class indices: ``to_onehot_y`` with more than one channel) or
    ``(B, C, *spatial)`` of ``input``: a ``ValueError`` naming both shapes otherwise, checked before the one-hot and
    the background drop so that the message names the shapes the caller gave (a batch mismatch would otherwise
    broadcast, or fail inside torch)."""
    channels = 1 if to_onehot_y and input.shape[1] > 1 else input.shape[1]
    if target.ndim != input.ndim or target.shape[0] != input.shape[0] or target.shape[1] != channels or (
        target.shape[2:] != input.shape[2:]
    ):
        raise ValueError(f"ground truth has different shape ({tuple(target.shape)}) from input ({tuple(input.shape)}).")


def check_target(
    input: torch.Tensor, target: torch.Tensor, to_onehot_y: bool, ignore_index: int | None = None
) -> None:
    """The target checks of every package loss, for a loss whose computation is MONAI's (``DiceLoss``,
    ``DiceCELoss``, ``GeneralizedDiceLoss``): class indices (``to_onehot_y`` with more than one channel) as
    :func:`check_class_indices`, and the shape as :func:`check_target_shape`. One-hot and soft targets are not
    looked at beyond their shape."""
    if to_onehot_y and input.shape[1] > 1:
        check_class_indices(target, input.shape[1], ignore_index)
    check_target_shape(input, target, to_onehot_y)


def drop_background(
    input: torch.Tensor, target: torch.Tensor, include_background: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """Remove channel 0 of both when ``include_background`` is False (warning on one-channel input)."""
    if include_background:
        return input, target
    if input.shape[1] == 1:
        warnings.warn("single channel prediction, `include_background=False` ignored.", stacklevel=3)
        return input, target
    return input[:, 1:], target[:, 1:]


def check_same_shape(input: torch.Tensor, target: torch.Tensor) -> None:
    if input.shape != target.shape:
        raise ValueError(f"ground truth has different shape ({tuple(target.shape)}) from input ({tuple(input.shape)}).")


def prepare_input_target(
    input: torch.Tensor,
    target: torch.Tensor,
    sigmoid: bool = False,
    softmax: bool = False,
    other_act: Callable | None = None,
    to_onehot_y: bool = False,
    include_background: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Probabilities and one-hot target of the same shape, background dropped when asked: MONAI's steps."""
    check_input_shape(input)
    n_pred_ch = input.shape[1]
    if not (to_onehot_y and n_pred_ch > 1 and target.ndim > 1 and target.shape[1] != 1):  # else: the one-hot's message
        check_target_shape(input, target, to_onehot_y)
    probs = activate(input, sigmoid, softmax, other_act)
    target = target_to_onehot(target, n_pred_ch, to_onehot_y)
    probs, target = drop_background(probs, target, include_background)
    check_same_shape(probs, target)
    return probs, target.to(probs.dtype)


def reduce_loss(loss: torch.Tensor, reduction: str) -> torch.Tensor:
    """``mean`` / ``sum`` over every element, or ``none`` (the tensor as is)."""
    if reduction == LossReduction.MEAN.value:
        return loss.mean()
    if reduction == LossReduction.SUM.value:
        return loss.sum()
    if reduction == LossReduction.NONE.value:
        return loss
    raise ValueError(f'Unsupported reduction: {reduction}, available options are ["mean", "sum", "none"].')
