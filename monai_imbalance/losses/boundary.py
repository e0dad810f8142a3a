"""Boundary losses on signed distance maps: Kervadec's boundary loss, Wu's modified (ratio) boundary loss, and the
region + boundary combination whose boundary weight :class:`monai_imbalance.handlers.BoundaryWeightScheduler`
raises every epoch.

Both losses read a per-class signed distance map (Kervadec's convention, see
:class:`monai_imbalance.transforms.SignedDistanceMap`). Precompute it with ``SignedDistanceMapd`` (cached by
``CacheDataset``) and pass it as ``dist_map=`` (:mod:`monai_imbalance.engines` passes such batch keys to the loss
inside a MONAI trainer); without it the loss computes it from ``target`` on the input's device under
``torch.no_grad()`` (what ``monai.losses.BoundaryLoss`` does on every step).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from monai.utils import LossReduction
from torch.nn.modules.loss import _Loss

from monai_imbalance.losses.base import SegmentationLoss
from monai_imbalance.losses.utils import (
    arguments_for,
    check_class_indices,
    check_input_shape,
    plain_tensor,
    spatial_dims,
)
from monai_imbalance.transforms.utils import resolve_spacing
from monai_imbalance.transforms.weights import batch_map, signed_distance

__all__ = ["DistanceMapLoss", "BoundaryLoss", "ModifiedBoundaryLoss", "RegionBoundaryLoss"]


class DistanceMapLoss(SegmentationLoss):
    """A loss of probabilities and per-class signed distance maps (given, or computed from the target). Not a loss
    by itself: the base of :class:`BoundaryLoss` and :class:`ModifiedBoundaryLoss`.

    The input arguments are :class:`~monai_imbalance.losses.base.SegmentationLoss`'s; a one-channel output's channel
    is the foreground, never dropped by ``include_background=False`` (and no warning).

    Args:
        spacing: voxel size (number or one per spatial axis) for distances in mm when the map is computed here;
            None: voxels.
        batch: reduce over the batch too before the loss's own reduction (each loss says how).
    """

    def __init__(
        self, include_background: bool = True, to_onehot_y: bool = False, sigmoid: bool = False, softmax: bool = False,
        other_act: Callable | None = None, spacing: float | Sequence[float] | None = None,
        reduction: LossReduction | str = LossReduction.MEAN, batch: bool = False,
    ) -> None:
        super().__init__(**arguments_for(super().__init__, locals()))
        self.spacing = spacing
        self.batch = batch

    def probabilities_and_maps(
        self, input: torch.Tensor, target: torch.Tensor, dist_map: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Probabilities, one-hot target and signed distance map, all ``(B, C', *spatial)`` with the background
        dropped when asked. A one-channel output's channel is the foreground (never dropped, no warning); its target
        is a binary mask, whose values must be 0 or 1 (the maps are computed from it)."""
        check_input_shape(input)
        if input.shape[1] == 1 and target.ndim == input.ndim and target.shape[1] == 1:
            check_class_indices(target, 2, binary=True)
        probs, onehot = self.prepare(input, target, include_background=self.include_background or input.shape[1] == 1)
        if dist_map is None:
            spacing = resolve_spacing(self.spacing, probs.ndim - 2)
            dist_map = batch_map(signed_distance, onehot > 0.5, spacing=spacing)
        else:
            if not isinstance(dist_map, torch.Tensor):
                raise TypeError(f"dist_map must be a torch.Tensor, got {type(dist_map).__name__}.")
            dist_map = plain_tensor(dist_map)
            n_channels = input.shape[1]
            full = (input.shape[0], n_channels, *input.shape[2:])
            if tuple(dist_map.shape) == full and probs.shape[1] != n_channels:
                dist_map = dist_map[:, n_channels - probs.shape[1] :]
            if dist_map.shape != probs.shape:
                raise ValueError(
                    f"dist_map must have shape {full} (one map per channel of input {tuple(input.shape)}) or "
                    f"{tuple(probs.shape)} (background dropped), got {tuple(dist_map.shape)}."
                )
        return probs, onehot, dist_map.to(device=probs.device, dtype=probs.dtype)


class BoundaryLoss(DistanceMapLoss):
    """Boundary loss of Kervadec et al. (MIDL 2019, Eq. 5): ``mean_x sum_c P^c(x) * sdm^c(x)``.

    ``sdm^c`` is the signed distance map of class ``c`` (positive outside the object, negative inside, 0 on the
    inner boundary), so the loss falls as probability moves inside objects and rises with probability far outside
    them; a perfect prediction is its minimum. It has no gradient towards the objects on empty images, so it is
    combined with a region loss whose share shrinks over training (:class:`RegionBoundaryLoss` and
    :class:`monai_imbalance.handlers.BoundaryWeightScheduler`).

    Reading: boundary loss = mean over pixels and the selected classes of ``P^c * sdm^c``, with the signed
    distance map of Kervadec's reference code: outside the object ``+EDT`` to the object; inside
    ``-(EDT to background - 1)``, so the inner boundary is 0; an empty class or a class filling the whole image
    gives zeros. Same values as ``monai.losses.BoundaryLoss``, which recomputes the map on every call.

    The input arguments and ``spacing`` as :class:`DistanceMapLoss`.

    Args:
        reduction: ``"mean"`` over images and classes, ``"sum"``, or ``"none"``: ``(B, C')`` per image and
            class (``(C',)`` with ``batch=True``).
        batch: average over the batch before the reduction (as ``monai.losses.BoundaryLoss``).

    Raises:
        ValueError: a ``dist_map`` or ``target`` whose shape does not match ``input`` (shapes named), class values
            out of range; the argument errors of :class:`~monai_imbalance.losses.base.SegmentationLoss`.

    Example:
        >>> import torch
        >>> from monai_imbalance.transforms import SignedDistanceMap
        >>> label = torch.zeros(1, 6, 6); label[0, 1:5, 1:5] = 1  # the reading's reference square
        >>> sdm = SignedDistanceMap(num_classes=2)(label)[None]  # (1, 2, 6, 6), e.g. from SignedDistanceMapd
        >>> loss = BoundaryLoss(softmax=True, to_onehot_y=True, include_background=False)
        >>> logits = torch.stack([torch.zeros(6, 6), torch.full((6, 6), 50.0)])[None]  # foreground everywhere
        >>> round(loss(logits, label[None], dist_map=sdm).item(), 6)  # (4 sqrt(2) + 16 * 1 + 12 * 0 - 4 * 1) / 36
        0.490468

    Reference:
        H. Kervadec et al., "Boundary loss for highly unbalanced segmentation", MIDL 2019 (MedIA 2021).
    """

    def forward(self, input: torch.Tensor, target: torch.Tensor, dist_map: torch.Tensor | None = None) -> torch.Tensor:
        """
        Args:
            input: logits ``(B, C, H, W[, D])``.
            target: class indices ``(B, 1, *spatial)`` (``to_onehot_y=True``) or one-hot ``(B, C, *spatial)``.
            dist_map: signed distance maps ``(B, C, *spatial)`` (one per input channel, e.g. ``SignedDistanceMapd``
                with ``num_classes=C``) or with the background already dropped; None computes them from ``target``.
        """
        probs, _, sdm = self.probabilities_and_maps(input, target, dist_map)
        loss = (probs * sdm).mean(dim=spatial_dims(probs))
        if self.batch:
            loss = loss.mean(0)
        return self.apply_reduction(loss)


class ModifiedBoundaryLoss(DistanceMapLoss):
    """Wu's modified boundary loss: a ratio of distance-weighted true positives to errors (Wu, Eq. 3).

    Per image and class: ``-sum(phi_t * s) / (sum(phi_b * s) + sum(phi_t * (1 - s)) + eps)``, i.e.
    ``-TP / (FP + FN + eps)`` with every pixel weighted by its distance to the object's contour; unlike the
    boundary loss it sees false negatives, so an empty prediction is not a minimum. Always ``<= 0``; a perfect
    prediction gives its minimum, about ``-sum(phi_t) / eps``.

    Reading: per image and per foreground class, a ratio of sums:
    ``-sum(phi_t * s) / (sum(phi_b * s) + sum(phi_t * (1 - s)) + eps)`` with ``phi_t`` = distance to the nearest
    background pixel inside the target (``>= 1``), 0 outside; ``phi_b`` = distance to the nearest target pixel in
    the background (``>= 1``), 0 inside; ``s`` the class probability. Mean over classes and batch. Where the
    class is absent from an image, ``phi_t = 0`` and ``phi_b`` is undefined: that term is 0 (no gradient).

    ``phi_t`` and ``phi_b`` are read from Kervadec's signed distance map (the same ``dist_map`` as
    :class:`BoundaryLoss`): ``phi_b = sdm`` outside, ``phi_t = 1 - sdm`` inside (``min(spacing) - sdm`` with a
    spacing). A class filling the whole image (map of zeros) gets ``phi_t = 1``.

    The input arguments and ``spacing`` (here also the map's inner offset, see above) as :class:`DistanceMapLoss`.

    Args:
        include_background: default False, unlike MONAI's losses: Wu's loss is defined on foreground classes.
        reduction: ``"mean"`` over images and classes, ``"sum"``, or ``"none"``: ``(B, C')`` (``(C',)`` with
            ``batch=True``).
        smooth_dr: ``eps`` of the denominator.
        batch: sum over the batch before the ratio (one ratio per class).

    Raises:
        ValueError: shapes that do not match (named), ``smooth_dr < 0``; the argument errors of
            :class:`~monai_imbalance.losses.base.SegmentationLoss`.

    Example:
        >>> import torch
        >>> label = torch.tensor([[[[0.0, 1, 1, 1, 0]]]])  # phi_t = (0, 1, 2, 1, 0), phi_b = (1, 0, 0, 0, 1)
        >>> loss = ModifiedBoundaryLoss(smooth_dr=0)  # probabilities, one channel; map computed from the label
        >>> round(loss(torch.full((1, 1, 1, 5), 0.5), label).item(), 6)  # -TP / (FP + FN) = -2 / (1 + 2)
        -0.666667

    Reference:
        Y. Wu, "Loss Function for Class Imbalanced Data" (modified boundary loss), University of Toronto.
    """

    def __init__(
        self, include_background: bool = False, to_onehot_y: bool = False, sigmoid: bool = False, softmax: bool = False,
        other_act: Callable | None = None, spacing: float | Sequence[float] | None = None,
        reduction: LossReduction | str = LossReduction.MEAN, smooth_dr: float = 1e-5, batch: bool = False,
    ) -> None:
        super().__init__(**arguments_for(super().__init__, locals()))
        if not smooth_dr >= 0:
            raise ValueError(f"smooth_dr must be >= 0, got {smooth_dr}.")
        self.smooth_dr = float(smooth_dr)

    def forward(self, input: torch.Tensor, target: torch.Tensor, dist_map: torch.Tensor | None = None) -> torch.Tensor:
        """
        Args:
            input: logits ``(B, C, H, W[, D])``.
            target: class indices ``(B, 1, *spatial)`` (``to_onehot_y=True``) or one-hot ``(B, C, *spatial)``.
            dist_map: Kervadec signed distance maps ``(B, C, *spatial)`` or with the background dropped; None
                computes them from ``target``.
        """
        probs, onehot, sdm = self.probabilities_and_maps(input, target, dist_map)
        spacing = resolve_spacing(self.spacing, probs.ndim - 2)
        offset = 1.0 if spacing is None else min(spacing)
        phi_t = onehot * (offset - sdm)
        phi_b = (1.0 - onehot) * sdm
        dims = spatial_dims(probs)
        if self.batch:
            dims = [0, *dims]
        tp = (phi_t * probs).sum(dims)
        fp = (phi_b * probs).sum(dims)
        fn = phi_t.sum(dims) - tp
        ratio = -tp / (fp + fn + self.smooth_dr)
        present = (onehot.sum(dims) > 0).to(ratio.dtype)
        # an absent class has no contour: its term is 0 and sends no gradient (a product, not a selection, so a
        # NaN logit still gives a NaN loss)
        return self.apply_reduction(ratio * present)


class RegionBoundaryLoss(_Loss):
    """A region loss plus a boundary loss with a weight that a schedule raises: Kervadec's training recipe.

    ``L = L_region + w * L_boundary`` (``rebalance=False``, MIDL 2019) or ``(1 - w) * L_region + w * L_boundary``
    (``rebalance=True``, MedIA 2021). Kervadec start at ``w = 0.01`` and add 0.01 every epoch; attach
    :class:`monai_imbalance.handlers.BoundaryWeightScheduler` to the trainer to do that.

    Args:
        region_loss: e.g. ``monai.losses.GeneralizedDiceLoss`` or ``DiceLoss``, called as ``region_loss(input,
            target)``; both parts must use the same activation and target format.
        boundary_loss: :class:`BoundaryLoss` or :class:`ModifiedBoundaryLoss`, called with ``dist_map``.
        boundary_weight: ``w >= 0`` (``<= 1`` with ``rebalance``); the scheduler updates it.
        rebalance: use ``(1 - w)`` on the region loss.

    Raises:
        ValueError: a weight out of range.

    Example:
        >>> import torch
        >>> from monai.losses import GeneralizedDiceLoss
        >>> loss = RegionBoundaryLoss(
        ...     GeneralizedDiceLoss(softmax=True, to_onehot_y=True),
        ...     BoundaryLoss(softmax=True, to_onehot_y=True, include_background=False),
        ... )
        >>> label = torch.zeros(1, 1, 16, 16); label[0, 0, 4:10, 4:10] = 1
        >>> value = loss(torch.randn(1, 2, 16, 16), label)
    """

    def __init__(
        self,
        region_loss: Callable[..., torch.Tensor],
        boundary_loss: Callable[..., torch.Tensor],
        boundary_weight: float = 0.01,
        rebalance: bool = False,
    ) -> None:
        super().__init__()
        if not callable(region_loss) or not callable(boundary_loss):
            raise TypeError("region_loss and boundary_loss must be callables (loss modules).")
        self.region_loss = region_loss
        self.boundary_loss = boundary_loss
        self.rebalance = rebalance
        self.boundary_weight = boundary_weight

    @property
    def boundary_weight(self) -> float:
        return self._boundary_weight

    @boundary_weight.setter
    def boundary_weight(self, value: float) -> None:
        value = float(value)
        upper = 1.0 if self.rebalance else float("inf")
        if not 0.0 <= value <= upper:
            raise ValueError(f"boundary_weight must be in [0, {upper}] (rebalance={self.rebalance}), got {value}.")
        self._boundary_weight = value

    def forward(self, input: torch.Tensor, target: torch.Tensor, dist_map: torch.Tensor | None = None) -> torch.Tensor:
        """
        Args:
            input: logits ``(B, C, H, W[, D])``.
            target: as both parts expect.
            dist_map: passed to the boundary loss (None: computed there).
        """
        region = self.region_loss(input, target)
        boundary = self.boundary_loss(input, target, dist_map=dist_map)
        weight = self._boundary_weight
        if self.rebalance:
            return (1.0 - weight) * region + weight * boundary
        return region + weight * boundary
