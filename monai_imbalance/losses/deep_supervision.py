"""Deep supervision that passes extra loss arguments (weight maps, distance maps) to every head.

MONAI's ``monai.losses.DeepSupervisionLoss`` calls ``loss(head, target)`` only, so a loss that reads a weight map
(:class:`monai_imbalance.losses.DilatedBalancedCELoss`) or a distance map (the boundary losses) cannot be deeply
supervised with it. :class:`DeepSupervisionLoss` here is a drop-in subclass: ``forward(input, target, *args,
**kwargs)`` gives every head the target and the extra maps, each resized to the head's size with the same
nearest-neighbour interpolation MONAI uses for the target (no resize when the head has the target's size, as with
:class:`monai_imbalance.networks.DeepSupervisionFlexibleUNet`, whose heads are all full resolution).

The DBCE paper (Sec. 3.2) sums the heads' losses: ``weight_mode="same"``.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from monai.losses import DeepSupervisionLoss as _MonaiDeepSupervisionLoss

__all__ = ["DeepSupervisionLoss"]


class DeepSupervisionLoss(_MonaiDeepSupervisionLoss):
    """``sum_i w_i * loss(head_i, target_i, *maps_i)`` over the heads of a deeply supervised network.

    Like ``monai.losses.DeepSupervisionLoss`` (same arguments, same weights), plus extra positional and keyword
    arguments passed to the wrapped loss for every head. A tensor argument with the target's spatial shape is
    resized (``nearest-exact``) to each head's spatial shape when they differ, like the target; other arguments
    are passed unchanged. A single tensor input (an evaluator's output) is a plain ``loss(input, target, ...)``.

    Args:
        loss: the loss of each head, e.g. :class:`monai_imbalance.losses.DilatedBalancedCELoss`.
        weight_mode: ``"same"`` (every head weighs 1: the DBCE paper's sum), ``"exp"`` (``2**-i``, MONAI's
            default) or ``"two"`` (1 for the first head, 0.5 for the others).
        weights: explicit weights, one per head (overrides ``weight_mode``).

    Example:
        >>> import torch
        >>> from monai_imbalance.losses import DilatedBalancedCELoss
        >>> loss = DeepSupervisionLoss(DilatedBalancedCELoss(softmax=True, to_onehot_y=True, radius=2),
        ...                            weight_mode="same")
        >>> heads = [torch.randn(2, 2, 16, 16) for _ in range(3)]
        >>> target = torch.zeros(2, 1, 16, 16); target[:, :, 4:9, 4:9] = 1
        >>> value = loss(heads, target, weight_map=torch.ones(2, 1, 16, 16))
    """

    def _resize_like(self, value: Any, target: torch.Tensor, head: torch.Tensor) -> Any:
        if (
            isinstance(value, torch.Tensor)
            and value.ndim == target.ndim
            and value.shape[2:] == target.shape[2:]
            and head.shape[2:] != target.shape[2:]
        ):
            return F.interpolate(value.float(), size=head.shape[2:], mode=self.interp_mode).to(value.dtype)
        return value

    def get_loss(self, input: torch.Tensor, target: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        """The loss of one head, with the target and the extra maps resized to the head when needed."""
        args = tuple(self._resize_like(a, target, input) for a in args)
        kwargs = {k: self._resize_like(v, target, input) for k, v in kwargs.items()}
        if input.shape[2:] != target.shape[2:]:
            target = F.interpolate(target, size=input.shape[2:], mode=self.interp_mode)
        return self.loss(input, target, *args, **kwargs)  # type: ignore[no-any-return]

    def forward(  # type: ignore[override]
        self, input: None | torch.Tensor | list[torch.Tensor], target: torch.Tensor, *args: Any, **kwargs: Any
    ) -> torch.Tensor:
        if isinstance(input, (list, tuple)):
            weights = self.get_weights(levels=len(input))
            loss = torch.tensor(0, dtype=torch.float, device=target.device)
            for head, weight in zip(input, weights):
                loss = loss + weight * self.get_loss(head.float(), target, *args, **kwargs)
            return loss
        if input is None:
            raise ValueError("input shouldn't be None.")
        return self.loss(input.float(), target, *args, **kwargs)  # type: ignore[no-any-return]
