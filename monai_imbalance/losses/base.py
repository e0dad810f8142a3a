"""The base class of every monai_imbalance loss: MONAI's input arguments, checked and applied in one place.

A loss here takes ``include_background, to_onehot_y, sigmoid, softmax, other_act`` and ``reduction`` with the
meaning and the messages of ``monai.losses.DiceLoss``, and its ``forward`` runs MONAI's steps: activation -> one-hot
target -> drop background -> shape check -> the loss itself -> reduction. :class:`SegmentationLoss` holds those
arguments and steps; each family subclasses it (:class:`~monai_imbalance.losses.balanced_ce.PixelWeightedCELoss`,
:class:`~monai_imbalance.losses.one_vs_rest.OneVsRestLoss`, the boundary losses) and documents its own arguments only.
The steps themselves are functions in :mod:`monai_imbalance.losses.utils`.

NaN policy (all losses): a NaN or infinite logit gives a NaN loss; it is never turned into a finite number.
Checking every step would cost a device synchronisation; ignite's ``TerminateOnNan`` (used by the bundles) stops
training on the first NaN loss.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from monai.utils import LossReduction
from torch.nn.modules.loss import _Loss

from monai_imbalance.losses.utils import (
    activate,
    check_activation_args,
    check_input_shape,
    check_reduction,
    plain_tensor,
    prepare_input_target,
    reduce_loss,
)

__all__ = ["SegmentationLoss", "INPUT_ARGUMENTS"]

# MONAI's input arguments, in MONAI's order: the first five of every loss's signature
INPUT_ARGUMENTS = ("include_background", "to_onehot_y", "sigmoid", "softmax", "other_act")


class SegmentationLoss(_Loss):
    """MONAI's input arguments of a segmentation loss, validated with MONAI's messages. Not a loss by itself.

    Args:
        include_background: if False, channel 0 (the background) is dropped from input and target before the loss
            is computed; ignored, with MONAI's warning, for a one-channel input.
        to_onehot_y: ``target`` holds class indices ``(B, 1, *spatial)``; it is converted to one-hot with as many
            channels as ``input`` (ignored, with MONAI's warning, for a one-channel input). Class values that are
            not whole numbers (e.g. 0.5, which would read as class 0; the transforms' message) or outside ``[0, C)``
            raise a ``ValueError`` naming them (:func:`~monai_imbalance.losses.utils.check_class_indices`, one
            device synchronisation per forward).
        sigmoid: apply a sigmoid to ``input`` (logits).
        softmax: apply a softmax over the channels to ``input`` (logits); ignored, with MONAI's warning, for one
            channel.
        other_act: another activation instead (e.g. ``torch.tanh``); its output is read as probabilities.
        reduction: ``"none"``, ``"mean"`` or ``"sum"``; each loss says what ``"none"`` returns (``[B, C]`` for
            region losses, the voxel map for pixel losses) and what ``"mean"`` averages over.

    Raises:
        ValueError: more than one of ``sigmoid``, ``softmax``, ``other_act`` (MONAI's message), an unknown
            ``reduction``.
        TypeError: ``other_act`` that is not callable.
    """

    def __init__(
        self, include_background: bool = True, to_onehot_y: bool = False, sigmoid: bool = False, softmax: bool = False,
        other_act: Callable | None = None, reduction: LossReduction | str = LossReduction.MEAN,
    ) -> None:
        check_activation_args(sigmoid, softmax, other_act)
        super().__init__(reduction=check_reduction(reduction))
        self.include_background = include_background
        self.to_onehot_y = to_onehot_y
        self.sigmoid = sigmoid
        self.softmax = softmax
        self.other_act = other_act

    def input_args(self) -> dict[str, Any]:
        """The five input arguments as keywords: to build the parts of a compound loss with the same ones."""
        return {name: getattr(self, name) for name in INPUT_ARGUMENTS}

    def activate(self, input: torch.Tensor) -> torch.Tensor:
        """Probabilities from ``input`` as the activation arguments say (MONAI's warning on one-channel softmax)."""
        return activate(input, self.sigmoid, self.softmax, self.other_act)

    def prepare(
        self, input: torch.Tensor, target: torch.Tensor, include_background: bool | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Probabilities and one-hot target, both ``(B, C', *spatial)`` plain tensors of ``input``'s dtype.

        MONAI's steps: activation, one-hot (``to_onehot_y``), background dropped (``include_background=False``),
        then a ``ValueError`` naming both shapes when they differ. ``include_background`` overrides the loss's own
        (e.g. True for a one-channel output whose channel is the foreground: no warning).
        """
        check_input_shape(input)
        return prepare_input_target(
            plain_tensor(input),
            plain_tensor(target),
            self.sigmoid,
            self.softmax,
            self.other_act,
            self.to_onehot_y,
            self.include_background if include_background is None else include_background,
        )

    def apply_reduction(self, loss: torch.Tensor) -> torch.Tensor:
        """``"mean"`` or ``"sum"`` over every element of ``loss``, or ``loss`` itself for ``"none"``."""
        return reduce_loss(loss, self.reduction)
