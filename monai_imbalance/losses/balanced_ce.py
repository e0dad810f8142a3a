"""Class- and pixel-weighted cross entropy: balanced CE, dilated balanced CE (DBCE), uncertainty-weighted CE, U-Net
border-weighted CE.

All four compute one cross entropy value per pixel, ``CE(x) = -sum_c Y^c(x) log P^c(x)`` (with sigmoid outputs the
binary form ``-[y log p + (1 - y) log(1 - p)]`` per channel, summed over channels), multiply it by a weight and
reduce. The weights:

- :class:`BalancedCELoss`: inverse class frequency ``1 / freq_c``, from the batch (or per image), or given.
- :class:`DilatedBalancedCELoss`: the DBCE map ``M`` of :class:`monai_imbalance.transforms.DilationWeightMap`.
- :class:`UncertaintyWeightedCELoss`: Bressan et al.'s ``omega_c * delta(x)`` of
  :class:`monai_imbalance.transforms.UncertaintyWeightMap`.
- :class:`BorderWeightedCELoss`: Ronneberger et al.'s class balance plus border term of
  :class:`monai_imbalance.transforms.BorderWeightMap`.

The pixel maps can be precomputed by the transforms (cached by ``CacheDataset``, moved by the spatial augmentation
with the label) and passed as ``weight_map=``; without it the loss computes the map from ``target`` on the input's
device under ``torch.no_grad()``. :mod:`monai_imbalance.engines` passes such batch keys to the loss inside a MONAI
trainer. :class:`PixelWeightedCELoss` is the family's base: a new weight map is one subclass defining
``compute_weight_map``.

NaN policy (:mod:`monai_imbalance.losses.base`): pixels of weight 0 do not hide a NaN logit (``0 * NaN`` is NaN).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from monai.utils import LossReduction

from monai_imbalance.losses.base import SegmentationLoss
from monai_imbalance.losses.utils import (
    activate,
    arguments_for,
    check_class_indices,
    check_input_shape,
    check_same_shape,
    check_target_shape,
    drop_background,
    log_probabilities,
    plain_tensor,
    target_to_onehot,
)
from monai_imbalance.transforms.utils import resolve_spacing
from monai_imbalance.transforms.weights import (
    BorderWeightMap,
    batch_map,
    border_weight_map,
    check_class_weights,
    check_radius,
    check_sigma,
    dilation_weight_map,
    uncertainty_weight_map,
)

__all__ = [
    "PixelWeightedCELoss",
    "BalancedCELoss",
    "DilatedBalancedCELoss",
    "UncertaintyWeightedCELoss",
    "BorderWeightedCELoss",
    "check_pixel_map",
]


def check_pixel_map(weight_map: torch.Tensor, input: torch.Tensor, name: str = "weight_map") -> torch.Tensor:
    """A per-pixel map must be ``(B, 1, *spatial)`` of the input; returned on the input's device and dtype."""
    expected = (input.shape[0], 1, *input.shape[2:])
    if not isinstance(weight_map, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(weight_map).__name__}.")
    if tuple(weight_map.shape) != expected:
        raise ValueError(
            f"{name} must have shape {expected} (one value per pixel of input {tuple(input.shape)}), "
            f"got {tuple(weight_map.shape)}."
        )
    return plain_tensor(weight_map).to(device=input.device, dtype=input.dtype)


class PixelWeightedCELoss(SegmentationLoss):
    """``sum_x w(x) CE(x)`` with a weight map ``w`` computed from the target (or given), reduced. Not a loss by
    itself: the base of :class:`DilatedBalancedCELoss` and :class:`UncertaintyWeightedCELoss`, and of the per-pixel
    cross entropy of :class:`BalancedCELoss`.

    ``CE(x) = -sum_c Y^c(x) log P^c(x)``: from logits through ``log_softmax`` (class-index targets are read directly,
    no one-hot is built) or ``logsigmoid`` (binary form per channel, summed over channels); from probabilities
    (``other_act`` or no activation) with ``log`` clamped to ``[1e-7, 1 - 1e-7]``. With ``include_background=False``
    the background channel's CE term is dropped (background pixels then add nothing with softmax outputs); the
    weight map is unchanged.

    A subclass defines :meth:`compute_weight_map` (the map ``(B, 1, *spatial)`` of the class-index labels, used
    when ``forward`` gets no ``weight_map``) and sets ``sum_per_image``: True divides the weighted sum by the number
    of images for ``reduction="mean"`` (the loss is a sum over each image's pixels), False by the number of pixels
    of the batch. ``reduction="none"`` gives the weighted CE map ``(B, 1, *spatial)``.

    The arguments are :class:`~monai_imbalance.losses.base.SegmentationLoss`'s.
    """

    sum_per_image: bool = False

    def compute_weight_map(self, labels: torch.Tensor) -> torch.Tensor:
        """The weight map ``(B, 1, *spatial)`` of class-index labels ``(B, 1, *spatial)``."""
        raise NotImplementedError(f"{type(self).__name__} must define compute_weight_map(labels).")

    def forward(
        self, input: torch.Tensor, target: torch.Tensor, weight_map: torch.Tensor | None = None
    ) -> torch.Tensor:
        """
        Args:
            input: logits ``(B, C, H, W[, D])``.
            target: ``(B, 1, *spatial)`` class indices (``to_onehot_y=True``; binary mask for one channel) or
                one-hot ``(B, C, *spatial)``.
            weight_map: precomputed map ``(B, 1, *spatial)`` (e.g. the key its map transform adds, collated); None
                computes it from ``target`` on the input's device, without gradient.
        """
        labels, ce = self.pixel_cross_entropy(input, target)
        if weight_map is None:
            with torch.no_grad():
                weight_map = self.compute_weight_map(labels)
        weight_map = check_pixel_map(weight_map, input)
        return self.weighted_sum(ce, weight_map, mean_over=input.shape[0] if self.sum_per_image else labels.numel())

    def class_labels(
        self, input: torch.Tensor, target: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
        """Plain ``input``, the one-hot target (None where the CE is read from class indices: softmax logits, an
        index target, background included) and the class index of every pixel ``(B, 1, *spatial)``.

        The class index (what the weight maps are computed from) is the target itself for an index target, the
        argmax of a one-hot target, and the mask itself for a one-channel (binary) output. Index targets and binary
        masks must hold whole class values (``0..C-1``, ``0..1`` for a mask): a ``ValueError`` names non-integer
        values (a 0.5 would be read as class 0) or values out of range. One-hot targets ``(B, C, *spatial)``,
        ``C > 1``, may be soft: the CE uses them as they are, the weights read their argmax.
        """
        check_input_shape(input)
        input, target = plain_tensor(input), plain_tensor(target)
        n_classes = input.shape[1]
        if not (self.to_onehot_y and n_classes > 1 and target.ndim > 1 and target.shape[1] != 1):
            check_target_shape(input, target, self.to_onehot_y)  # else: the one-hot's message names the shape
        index_target = self.softmax and n_classes > 1 and self.to_onehot_y and target.shape[1] == 1
        if index_target and self.include_background:
            check_class_indices(target, n_classes)
            return input, None, target.long()
        if n_classes == 1:  # a binary mask: its values are the class indices the weights are computed from
            check_class_indices(target, 2, binary=True)
        onehot = target_to_onehot(target, n_classes, self.to_onehot_y)
        check_same_shape(input, onehot)
        if n_classes == 1:
            labels = (target > 0.5).long()
        elif self.to_onehot_y:
            labels = target.long()
        else:
            labels = onehot.argmax(1, keepdim=True)
        return input, onehot.to(input.dtype), labels

    def cross_entropy(self, input: torch.Tensor, onehot: torch.Tensor | None, labels: torch.Tensor) -> torch.Tensor:
        """Per-pixel cross entropy ``(B, 1, *spatial)`` of the outputs of :meth:`class_labels`."""
        if onehot is None:
            return -torch.log_softmax(input, 1).gather(1, labels)
        n_classes = input.shape[1]
        if self.sigmoid:
            log_p, log_1mp = log_probabilities(input, sigmoid=True)
            terms = -(onehot * log_p + (1.0 - onehot) * log_1mp)
        elif self.softmax and n_classes > 1:
            terms = -onehot * torch.log_softmax(input, 1)
        else:
            # probabilities (other_act, or none): clamped logs. softmax=True on one channel is ignored with
            # MONAI's warning, the channel is then read as a probability
            probs = activate(input, softmax=self.softmax, other_act=self.other_act)
            log_p, log_1mp = log_probabilities(probs)
            terms = -(onehot * log_p + (1.0 - onehot) * log_1mp) if n_classes == 1 else -onehot * log_p
        terms, _ = drop_background(terms, onehot, self.include_background)
        return terms.sum(1, keepdim=True)

    def pixel_cross_entropy(self, input: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The class index of every pixel and the per-pixel cross entropy, both ``(B, 1, *spatial)``."""
        input, onehot, labels = self.class_labels(input, target)
        return labels, self.cross_entropy(input, onehot, labels)

    def weighted_sum(self, ce: torch.Tensor, weights: torch.Tensor, mean_over: int) -> torch.Tensor:
        """``weights * ce`` reduced: the map for ``"none"``, its sum for ``"sum"``, its sum divided by
        ``mean_over`` for ``"mean"``."""
        weighted = ce * weights
        if self.reduction == LossReduction.NONE.value:
            return weighted
        total = weighted.sum()
        return total if self.reduction == LossReduction.SUM.value else total / mean_over


class BalancedCELoss(PixelWeightedCELoss):
    """Balanced cross entropy: class weights ``1 / frequency`` (Hosseini and Soleymani Baghshah, Eq. 1).

    ``L = (1/N) sum_x w_{c(x)} CE(x)`` with ``w_c = N / n_c`` (the inverse of the class frequency ``n_c / N``,
    so the loss is the sum over classes of each class's mean CE), 0 for a class absent from the batch. With
    ``weight`` the weights are given instead (e.g. from a training-set statistic such as
    :func:`monai_imbalance.stats.class_frequency_weights`).

    Reading: balanced CE (the DBCE paper's baseline) = class weights 1/frequency, per batch or given.

    ``CE``, ``include_background`` and the other input arguments as :class:`PixelWeightedCELoss`;
    ``reduction``: ``"mean"`` over pixels and batch, ``"sum"``, or ``"none"``: the weighted CE map
    ``(B, 1, *spatial)``.

    Args:
        batch: True: frequencies over the whole batch; False: per image (an absent class in an image weighs 0).
        weight: given class weights, one per class (background included; 2 for a one-channel binary output);
            overrides the frequencies. Registered as a buffer, so it moves with ``.to(device)``.

    Raises:
        ValueError: negative or wrongly sized ``weight``, mismatched shapes (named), class values out of range; the
            argument errors of :class:`~monai_imbalance.losses.base.SegmentationLoss`.

    Example:
        >>> import torch
        >>> loss = BalancedCELoss(softmax=True, to_onehot_y=True)
        >>> target = torch.tensor([[[[0, 0, 0, 1]]]])  # class 1 is a quarter of the pixels: weights 4/3 and 4
        >>> round(loss(torch.zeros(1, 2, 1, 4), target).item(), 6)  # (3 * 4/3 + 4) * ln 2 / 4
        1.386294

    Reference:
        S. M. Hosseini and M. Soleymani Baghshah, "Dilated Balanced Cross Entropy Loss for Medical Image
        Segmentation" (preprint), Sec. 2.
    """

    def __init__(
        self, include_background: bool = True, to_onehot_y: bool = False, sigmoid: bool = False, softmax: bool = False,
        other_act: Callable | None = None, reduction: LossReduction | str = LossReduction.MEAN, batch: bool = True,
        weight: Sequence[float] | float | torch.Tensor | None = None,
    ) -> None:
        super().__init__(**arguments_for(super().__init__, locals()))
        self.batch = batch
        weights = check_class_weights(weight)
        self.register_buffer("class_weight", None if weights is None else torch.as_tensor(weights).float())

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        """
        Args:
            input: logits ``(B, C, H, W[, D])``.
            target: ``(B, 1, *spatial)`` class indices (``to_onehot_y=True``; binary mask for one channel) or
                one-hot ``(B, C, *spatial)``.
        """
        input, onehot, labels = self.class_labels(input, target)
        n_classes = max(input.shape[1], 2)  # a one-channel (binary) output has classes 0 and 1
        if self.class_weight is None and not self.batch:
            with torch.no_grad():
                pixel_weight = self._image_frequency_weights(labels, n_classes).to(input.dtype)
            return self.weighted_sum(self.cross_entropy(input, onehot, labels), pixel_weight, labels.numel())
        if self.class_weight is not None:
            if self.class_weight.numel() != n_classes:
                raise ValueError(
                    f"weight has {self.class_weight.numel()} values but the input's {input.shape[1]} channel(s) "
                    f"mean {n_classes} classes (background included): give one weight per class."
                )
            class_weight = self.class_weight.to(input.dtype)
        else:
            with torch.no_grad():
                counts = torch.bincount(labels.reshape(-1), minlength=n_classes).to(input.dtype)
                class_weight = torch.where(counts > 0, labels.numel() / counts.clamp(min=1), torch.zeros_like(counts))
        if onehot is None:  # softmax logits and class indices: torch's own class-weighted cross entropy
            index = labels[:, 0]
            if self.reduction == LossReduction.NONE.value:
                return F.cross_entropy(input, index, weight=class_weight, reduction="none").unsqueeze(1)
            total = F.cross_entropy(input, index, weight=class_weight, reduction="sum")
            return total if self.reduction == LossReduction.SUM.value else total / labels.numel()
        return self.weighted_sum(self.cross_entropy(input, onehot, labels), class_weight[labels], labels.numel())

    @staticmethod
    def _image_frequency_weights(labels: torch.Tensor, n_classes: int) -> torch.Tensor:
        """``N / n_c`` of each image for each pixel's class (0 for a class absent from the image)."""
        flat = labels.reshape(labels.shape[0], -1)
        offsets = torch.arange(labels.shape[0], device=labels.device)[:, None] * n_classes
        counts = torch.bincount((flat + offsets).reshape(-1), minlength=labels.shape[0] * n_classes).double()
        counts = counts.reshape(labels.shape[0], n_classes)
        inverse = torch.where(counts > 0, flat.shape[1] / counts.clamp(min=1), torch.zeros_like(counts))
        return torch.gather(inverse, 1, flat).reshape(labels.shape)


class DilatedBalancedCELoss(PixelWeightedCELoss):
    """Dilated balanced cross entropy, DBCE (Hosseini and Soleymani Baghshah, Eqs. 2-5).

    ``L = - sum_x M(x) sum_c Y^c(x) log P^c(x)`` per image, with ``M = max_c D^c / (1 + sum(D^c))`` and ``D^c``
    the class mask dilated by a disk (3-D: ball) of ``radius``: each class and its surroundings share a balancing
    weight, so small objects and the background next to them count most. The map ``M`` is
    :class:`monai_imbalance.transforms.DilationWeightMap`'s (which states the reading of the dilation).

    Reading: per image and per class c, background included: ``D^c = Y^c`` dilated by a disk of radius R,
    ``{x : |x| <= R}`` (same set as ``skimage.morphology.disk(R)``), computed as ``EDT(not Y^c) <= R``.
    ``W^c = D^c / (1 + sum(D^c))``, ``M = max_c W^c``. Loss per image = ``- sum_x M(x) * sum_c Y^c(x) log P^c(x)``
    (a sum over pixels: the weights normalise themselves); mean over the batch for ``reduction="mean"``.
    R = 0 is balanced CE with per-image weights ``1/(1+n_c)``. Absent class -> weight 0.

    ``CE``, ``include_background`` (the map ``M`` is unchanged) and the other input arguments as
    :class:`PixelWeightedCELoss`; a one-channel sigmoid output is binary (its map has classes 0 and 1).
    ``reduction``: ``"mean"``: per-image sums averaged over the batch; ``"sum"``: summed over the batch;
    ``"none"``: the weighted CE map ``(B, 1, *spatial)`` (its spatial sum is each image's loss).

    Args:
        radius: disk radius ``R >= 0`` in pixels, or mm with ``spacing`` (the paper: 20 for polyps and skin
            lesions at 320x320, 10 for Synapse organs).
        spacing: voxel size (number or one per spatial axis) for a radius in mm, or None (pixels). Only used
            when the map is computed here.

    Raises:
        ValueError: a negative radius, a ``weight_map`` or ``target`` whose shape does not match ``input`` (both
            shapes named), class values out of range; the argument errors of
            :class:`~monai_imbalance.losses.base.SegmentationLoss`.

    Example:
        >>> import torch
        >>> loss = DilatedBalancedCELoss(softmax=True, to_onehot_y=True, radius=1)
        >>> target = torch.zeros(1, 1, 5, 5); target[0, 0, 2, 2] = 1
        >>> round(loss(torch.zeros(1, 2, 5, 5), target).item(), 7)  # P = 0.5: ln2 * (5/6 + 20/26), the hand case
        1.1108128

    Reference:
        S. M. Hosseini and M. Soleymani Baghshah, "Dilated Balanced Cross Entropy Loss for Medical Image
        Segmentation" (preprint).
    """

    sum_per_image = True

    def __init__(
        self, include_background: bool = True, to_onehot_y: bool = False, sigmoid: bool = False, softmax: bool = False,
        other_act: Callable | None = None, radius: float = 20.0, spacing: float | Sequence[float] | None = None,
        reduction: LossReduction | str = LossReduction.MEAN,
    ) -> None:
        super().__init__(**arguments_for(super().__init__, locals()))
        self.radius = check_radius(radius)
        self.spacing = spacing

    def compute_weight_map(self, labels: torch.Tensor) -> torch.Tensor:
        """DBCE map ``(B, 1, *spatial)`` of class-index labels ``(B, 1, *spatial)``, per image, without gradient."""
        spacing = resolve_spacing(self.spacing, labels.ndim - 2)
        return batch_map(dilation_weight_map, labels, radius=self.radius, spacing=spacing)


class UncertaintyWeightedCELoss(PixelWeightedCELoss):
    """Cross entropy weighted by class imbalance and labelling uncertainty (Bressan et al., Eqs. 3-6).

    ``L = mean_x w(x) CE(x)`` with ``w(x) = omega_{c(x)} * delta(x)``, ``delta(x) = 1 - exp(-d(x)^2 / (2 sigma^2))``
    and ``d(x)`` the distance to the nearest edge pixel: pixels of rare classes count more, pixels near an edge
    (uncertain annotation) less, edge pixels not at all. The map is
    :class:`monai_imbalance.transforms.UncertaintyWeightMap`'s.

    Reading: ``omega_c = m / (C * n_c)`` over the whole training set (a dataset statistic, computed once with
    :func:`monai_imbalance.stats.class_frequency_weights`; 0 for a class with n_c = 0);
    ``delta(x) = 1 - exp(-d(x)^2 / (2 sigma^2))``; ``d(x)``: Euclidean distance (in voxels, or mm when spacing is
    given) from every pixel, inside and outside objects, to the nearest edge pixel. Edge pixel (default
    ``edge_mode="inner"``): a pixel of a non-background class with a face neighbour of another label; ``"thick"``
    (both sides) is an option. Loss = ``mean_x w(x) * CE(x)``. An image without edges has ``delta = 1``.

    ``CE``, ``include_background`` (the map is unchanged) and the other input arguments as
    :class:`PixelWeightedCELoss`; ``reduction``: ``"mean"`` over pixels and batch, ``"sum"``, or ``"none"``: the
    weighted CE map ``(B, 1, *spatial)``.

    Args:
        sigma: spread of the uncertainty around edges, ``> 0`` (paper: 1 to 3 pixels; 2 best on two of its
            three datasets), mm with ``spacing``.
        class_weights: ``omega_c`` per class (background included), or None for 1 (uncertainty only). A
            registered buffer.
        edge_mode: ``"inner"`` or ``"thick"``.
        spacing: voxel size for ``sigma`` in mm, or None. Only used when the map is computed here.

    Raises:
        ValueError: ``sigma <= 0``, bad ``class_weights`` (not 1-D, negative, fewer values than the label has
            classes), an unknown ``edge_mode``, mismatched shapes (named); the argument errors of
            :class:`~monai_imbalance.losses.base.SegmentationLoss`.

    Example:
        >>> import torch
        >>> loss = UncertaintyWeightedCELoss(softmax=True, to_onehot_y=True, sigma=1.0, class_weights=[1.0, 3.0])
        >>> target = torch.zeros(1, 1, 1, 4); target[..., 3] = 1  # edge pixel x = 3: d = (3, 2, 1, 0)
        >>> round(loss(torch.zeros(1, 2, 1, 4), target).item(), 6)  # ln2 * (3 - e^-4.5 - e^-2 - e^-0.5) / 4
        0.38938

    Reference:
        P. O. Bressan et al., "Semantic segmentation with labeling uncertainty and class imbalance", arXiv
        preprint (2021).
    """

    def __init__(
        self, include_background: bool = True, to_onehot_y: bool = False, sigmoid: bool = False, softmax: bool = False,
        other_act: Callable | None = None, sigma: float = 2.0,
        class_weights: Sequence[float] | np.ndarray | torch.Tensor | None = None, edge_mode: str = "inner",
        spacing: float | Sequence[float] | None = None, reduction: LossReduction | str = LossReduction.MEAN,
    ) -> None:
        super().__init__(**arguments_for(super().__init__, locals()))
        self.sigma = check_sigma(sigma)
        if edge_mode not in ("inner", "thick"):
            raise ValueError(f"edge_mode must be 'inner' or 'thick', got {edge_mode!r}.")
        self.edge_mode = edge_mode
        self.spacing = spacing
        weights = check_class_weights(class_weights)
        self.register_buffer("class_weights", None if weights is None else torch.as_tensor(weights).float())

    def compute_weight_map(self, labels: torch.Tensor) -> torch.Tensor:
        """Bressan map ``(B, 1, *spatial)`` of class-index labels ``(B, 1, *spatial)``, without gradient."""
        spacing = resolve_spacing(self.spacing, labels.ndim - 2)
        weights = None if self.class_weights is None else self.class_weights.cpu().numpy()
        return batch_map(
            uncertainty_weight_map,
            labels,
            sigma=self.sigma,
            class_weights=weights,
            edge_mode=self.edge_mode,
            spacing=spacing,
        )


class BorderWeightedCELoss(PixelWeightedCELoss):
    """Cross entropy weighted by the U-Net border map (Ronneberger et al. 2015, Eqs. 1-2).

    ``L = mean_x w(x) CE(x)`` with ``w(x) = w_c(x) + w0 exp(-(d1(x) + d2(x))^2 / (2 sigma^2))``: class balance plus
    a border term that peaks in the thin gaps between objects that nearly touch (``d1``, ``d2``: distances to the
    nearest and second-nearest object), so that the network learns to keep touching objects apart. The map is
    :class:`monai_imbalance.transforms.BorderWeightMap`'s (which states the reading: objects, ``d1 = 0`` inside an
    object, the cutoff); the bundles compute it per training sample with
    :class:`~monai_imbalance.transforms.BorderWeightMapd` and pass it as ``weight_map``.

    ``CE``, ``include_background`` (the map is unchanged) and the other input arguments as
    :class:`PixelWeightedCELoss`; ``reduction``: ``"mean"`` over pixels and batch (Eq. 1 sums over pixels: the same
    up to the constant number of pixels), ``"sum"``, or ``"none"``: the weighted CE map ``(B, 1, *spatial)``.

    Args:
        w0: weight of the border term, ``>= 0`` (paper: 10).
        sigma: its width, ``> 0``, pixels or mm with ``spacing`` (paper: 5 pixels).
        class_weights: ``"balanced"`` (``N / (K n_c)`` of each image), None (1) or one weight per class.
        spacing: voxel size for distances in mm, or None. Only used when the map is computed here.
        connectivity: of the objects: 1 = face neighbours, None = full.

    Raises:
        ValueError: bad ``w0``, ``sigma``, ``class_weights``; mismatched shapes (named); the argument errors of
            :class:`~monai_imbalance.losses.base.SegmentationLoss`.

    Example:
        >>> import torch
        >>> loss = BorderWeightedCELoss(softmax=True, to_onehot_y=True, class_weights=None)
        >>> target = torch.zeros(1, 1, 1, 9); target[..., 2] = 1; target[..., 6] = 1  # two objects 4 px apart
        >>> w = loss.compute_weight_map(target.long())
        >>> round(w[0, 0, 0, 4].item(), 4)  # the gap's midpoint: 1 + 10 exp(-(2 + 2)^2 / 50)
        8.2615

    Reference:
        O. Ronneberger, P. Fischer and T. Brox, "U-Net: Convolutional Networks for Biomedical Image Segmentation",
        MICCAI 2015.
    """

    def __init__(
        self, include_background: bool = True, to_onehot_y: bool = False, sigmoid: bool = False, softmax: bool = False,
        other_act: Callable | None = None, w0: float = 10.0, sigma: float = 5.0,
        class_weights: str | Sequence[float] | None = "balanced", spacing: float | Sequence[float] | None = None,
        connectivity: int | None = None, reduction: LossReduction | str = LossReduction.MEAN,
    ) -> None:
        super().__init__(**arguments_for(super().__init__, locals()))
        # the transform checks w0, sigma, class_weights and connectivity once, here
        self._map = BorderWeightMap(w0=w0, sigma=sigma, class_weights=class_weights, connectivity=connectivity)
        self.w0, self.sigma, self.class_weights = float(w0), float(sigma), class_weights
        self.spacing, self.connectivity = spacing, connectivity

    def compute_weight_map(self, labels: torch.Tensor) -> torch.Tensor:
        """U-Net border map ``(B, 1, *spatial)`` of class-index labels ``(B, 1, *spatial)``, without gradient."""
        spacing = resolve_spacing(self.spacing, labels.ndim - 2)
        return batch_map(border_weight_map, labels, w0=self.w0, sigma=self.sigma, class_weights=self.class_weights,
                         spacing=spacing, connectivity=self.connectivity)
