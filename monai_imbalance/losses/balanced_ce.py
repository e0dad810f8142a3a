"""Class- and pixel-weighted cross entropy: balanced CE, dilated balanced CE (DBCE), uncertainty-weighted CE.

All three compute one cross entropy value per pixel, ``CE(x) = -sum_c Y^c(x) log P^c(x)`` (with sigmoid outputs the
binary form ``-[y log p + (1 - y) log(1 - p)]`` per channel, summed over channels), multiply it by a weight and
reduce. The weights:

- :class:`BalancedCELoss`: inverse class frequency ``1 / freq_c``, from the batch (or per image), or given.
- :class:`DilatedBalancedCELoss`: the DBCE map ``M`` of :class:`monai_imbalance.transforms.DilationWeightMap`.
- :class:`UncertaintyWeightedCELoss`: Bressan et al.'s ``omega_c * delta(x)`` of
  :class:`monai_imbalance.transforms.UncertaintyWeightMap`.

The pixel maps can be precomputed by the transforms (cached by ``CacheDataset``, moved by the spatial augmentation
with the label) and passed as ``weight_map=``; without it the loss computes the map from ``target`` on the input's
device under ``torch.no_grad()``. To pass a batch key to the loss inside MONAI's ``SupervisedTrainer``, wrap it in
:class:`monai_imbalance.engines.LossWithBatchKeys`.

NaN policy (as every monai_imbalance loss): a NaN or infinite logit gives a NaN loss, never a finite number; pixels
of weight 0 do not hide it (``0 * NaN`` is NaN).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from monai.utils import LossReduction
from torch.autograd.function import once_differentiable
from torch.nn.modules.loss import _Loss

from monai_imbalance.losses.utils import (
    activate,
    check_activation_args,
    check_input_shape,
    check_reduction,
    check_same_shape,
    drop_background,
    log_probabilities,
    target_to_onehot,
)
from monai_imbalance.transforms.utils import resolve_spacing
from monai_imbalance.transforms.weights import (
    batch_map,
    check_class_weights,
    check_radius,
    check_sigma,
    dilation_weight_map,
    uncertainty_weight_map,
)

__all__ = ["BalancedCELoss", "DilatedBalancedCELoss", "UncertaintyWeightedCELoss", "check_pixel_map"]


def _plain(tensor: torch.Tensor) -> torch.Tensor:
    """A MetaTensor as a plain tensor (same storage, autograd kept): avoids MetaTensor's per-op overhead."""
    return tensor.as_tensor() if hasattr(tensor, "as_tensor") else tensor


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
    return _plain(weight_map).to(device=input.device, dtype=input.dtype)


class _PixelCrossEntropy(_Loss):
    """Shared part: MONAI's activation / one-hot / background arguments and the per-pixel cross entropy."""

    def __init__(
        self,
        include_background: bool = True,
        to_onehot_y: bool = False,
        sigmoid: bool = False,
        softmax: bool = False,
        other_act: Callable | None = None,
        reduction: LossReduction | str = LossReduction.MEAN,
    ) -> None:
        check_activation_args(sigmoid, softmax, other_act)
        super().__init__(reduction=check_reduction(reduction))
        self.include_background = include_background
        self.to_onehot_y = to_onehot_y
        self.sigmoid = sigmoid
        self.softmax = softmax
        self.other_act = other_act

    def pixel_cross_entropy(
        self, input: torch.Tensor, target: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The class index of every pixel ``(B, 1, *spatial)`` and the per-pixel cross entropy ``(B, 1, *spatial)``.

        The class index (what the weight maps are computed from) is the target itself for an index target, the
        argmax of a one-hot target, and ``target > 0.5`` for a one-channel (binary) output. The cross entropy is
        None in the fused case (softmax, index target, background included), computed later by
        :meth:`weighted_sum` in one pass with its weights.
        """
        check_input_shape(input)
        input, target = _plain(input), _plain(target)
        n_classes = input.shape[1]
        if target.ndim != input.ndim:
            raise ValueError(
                f"target must have shape (B, 1, *spatial) or (B, C, *spatial) like input {tuple(input.shape)}, "
                f"got {tuple(target.shape)}."
            )
        if self._fused(input, target):
            if target.shape[0] != input.shape[0] or target.shape[2:] != input.shape[2:]:
                raise ValueError(
                    f"ground truth has different shape ({tuple(target.shape)}) from input ({tuple(input.shape)})."
                )
            index = target.to(torch.long)
            lo, hi = (v.item() for v in torch.aminmax(index))
            if lo < 0 or hi >= n_classes:
                raise ValueError(
                    f"target has class values in [{lo}, {hi}] but the input has {n_classes} channels "
                    f"(valid values 0..{n_classes - 1})."
                )
            return index, None
        onehot = target_to_onehot(target, n_classes, self.to_onehot_y)
        check_same_shape(input, onehot)
        onehot = onehot.to(input.dtype)
        if n_classes == 1:
            labels = (target > 0.5).long()
        elif self.to_onehot_y:
            labels = target.long()
        else:
            labels = onehot.argmax(1, keepdim=True)
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
        return labels, terms.sum(1, keepdim=True)

    def _fused(self, input: torch.Tensor, target: torch.Tensor) -> bool:
        return bool(
            self.softmax
            and input.shape[1] > 1
            and self.include_background
            and self.to_onehot_y
            and target.shape[1] == 1
        )

    def weighted_sum(
        self,
        input: torch.Tensor,
        labels: torch.Tensor,
        ce: torch.Tensor | None,
        weights: torch.Tensor,
        mean_over: int | None,
    ) -> torch.Tensor:
        """``weights * CE`` reduced: the map for ``"none"``, its sum for ``"sum"``, its sum divided by
        ``mean_over`` for ``"mean"``."""
        scale = {"none": None, "sum": 1.0}.get(self.reduction, 1.0 / float(mean_over or 1))
        if ce is None:
            return _WeightedSoftmaxCrossEntropy.apply(_plain(input), labels, weights, scale)
        weighted = ce * weights
        return weighted if scale is None else weighted.sum() * scale


class _WeightedSoftmaxCrossEntropy(torch.autograd.Function):
    """``sum_x w(x) CE(x) * scale`` (or the map ``w * CE`` when ``scale`` is None) for logits and class indices.

    One ``log_softmax`` forward and one ``exp`` pass backward (``dL/dx = w (softmax - onehot)``): the cost of
    ``torch.nn.functional.cross_entropy`` with a per-pixel weight that torch's own function does not take.
    Differentiable once (no double backward), like most fused losses.
    """

    @staticmethod
    def forward(ctx, logits, index, weights, scale):  # type: ignore[override]
        log_p = torch.log_softmax(logits, 1)
        weights = weights.to(log_p.dtype)
        log_p_target = log_p.gather(1, index)
        ctx.save_for_backward(log_p, index, weights)
        ctx.scale = scale
        if scale is None:
            return log_p_target.mul_(weights).neg_()
        return torch.dot(log_p_target.reshape(-1), weights.reshape(-1)) * -scale

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):  # type: ignore[override]
        log_p, index, weights = ctx.saved_tensors
        grad_weights = weights * (grad if ctx.scale is None else grad * ctx.scale)
        grad_logits = log_p.exp()  # softmax - onehot, times the weights: four kernels in all
        grad_logits.scatter_add_(1, index, log_p.new_full((), -1.0).expand(index.shape))
        return grad_logits.mul_(grad_weights), None, None, None


class BalancedCELoss(_PixelCrossEntropy):
    """Balanced cross entropy: class weights ``1 / frequency`` (Hosseini and Soleymani Baghshah, Eq. 1).

    ``L = (1/N) sum_x w_{c(x)} CE(x)`` with ``w_c = N / n_c`` (the inverse of the class frequency ``n_c / N``,
    so the loss is the sum over classes of each class's mean CE), 0 for a class absent from the batch. With
    ``weight`` the weights are given instead (e.g. from a training-set statistic such as
    :func:`monai_imbalance.stats.class_frequency_weights`).

    Reading: balanced CE (the DBCE paper's baseline) = class weights 1/frequency, per batch or given.

    Args:
        include_background: if False, the background channel's CE term is dropped (background pixels then add
            nothing with softmax outputs).
        to_onehot_y: ``target`` holds class indices ``(B, 1, *spatial)``.
        sigmoid, softmax, other_act: activation of ``input`` (logits), MONAI's arguments; at most one.
        reduction: ``"mean"`` (over pixels and batch), ``"sum"``, or ``"none"``: the weighted CE map
            ``(B, 1, *spatial)``.
        batch: True: frequencies over the whole batch; False: per image (an absent class in an image weighs 0).
        weight: given class weights, one per class (background included; 2 for a one-channel binary output);
            overrides the frequencies. Registered as a buffer, so it moves with ``.to(device)``.

    Raises:
        ValueError: more than one activation, an unknown reduction, negative or wrongly sized ``weight``,
            mismatched shapes (named), class values out of range.

    Example:
        >>> import torch
        >>> loss = BalancedCELoss(softmax=True, to_onehot_y=True)
        >>> logits = torch.randn(2, 3, 16, 16, requires_grad=True)
        >>> target = torch.randint(0, 3, (2, 1, 16, 16))
        >>> loss(logits, target).backward()
    """

    def __init__(
        self,
        include_background: bool = True,
        to_onehot_y: bool = False,
        sigmoid: bool = False,
        softmax: bool = False,
        other_act: Callable | None = None,
        reduction: LossReduction | str = LossReduction.MEAN,
        batch: bool = True,
        weight: Sequence[float] | float | torch.Tensor | None = None,
    ) -> None:
        super().__init__(include_background, to_onehot_y, sigmoid, softmax, other_act, reduction)
        self.batch = batch
        weights = check_class_weights(weight)
        self.register_buffer("class_weight", None if weights is None else torch.as_tensor(weights).float())

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """
        Args:
            input: logits ``(B, C, H, W[, D])``.
            target: ``(B, 1, *spatial)`` class indices (``to_onehot_y=True``; binary mask for one channel) or
                one-hot ``(B, C, *spatial)``.
        """
        labels, ce = self.pixel_cross_entropy(input, target)
        n_classes = max(input.shape[1], 2)  # a one-channel (binary) output has classes 0 and 1
        if self.class_weight is not None:
            if self.class_weight.numel() != n_classes:
                raise ValueError(
                    f"weight has {self.class_weight.numel()} values but the input's {input.shape[1]} channel(s) "
                    f"mean {n_classes} classes (background included): give one weight per class."
                )
            class_weight = self.class_weight.to(input.dtype)
        elif self.batch:
            with torch.no_grad():
                counts = torch.bincount(labels.reshape(-1), minlength=n_classes).to(input.dtype)
                class_weight = torch.where(counts > 0, labels.numel() / counts.clamp(min=1), torch.zeros_like(counts))
        else:
            with torch.no_grad():
                pixel_weight = self._image_frequency_weights(labels, n_classes).to(input.dtype)
            return self.weighted_sum(input, labels, ce, pixel_weight, mean_over=labels.numel())
        if ce is None:  # softmax and class indices: torch's own class-weighted cross entropy, one fused kernel
            index = labels[:, 0]
            if self.reduction == LossReduction.NONE.value:
                return F.cross_entropy(_plain(input), index, weight=class_weight, reduction="none").unsqueeze(1)
            total = F.cross_entropy(_plain(input), index, weight=class_weight, reduction="sum")
            return total if self.reduction == LossReduction.SUM.value else total / labels.numel()
        return self.weighted_sum(input, labels, ce, class_weight[labels], mean_over=labels.numel())

    @staticmethod
    def _image_frequency_weights(labels: torch.Tensor, n_classes: int) -> torch.Tensor:
        """``N / n_c`` of each image for each pixel's class (0 for a class absent from the image)."""
        flat = labels.reshape(labels.shape[0], -1)
        offsets = torch.arange(labels.shape[0], device=labels.device)[:, None] * n_classes
        counts = torch.bincount((flat + offsets).reshape(-1), minlength=labels.shape[0] * n_classes).double()
        counts = counts.reshape(labels.shape[0], n_classes)
        inverse = torch.where(counts > 0, flat.shape[1] / counts.clamp(min=1), torch.zeros_like(counts))
        return torch.gather(inverse, 1, flat).reshape(labels.shape)


class DilatedBalancedCELoss(_PixelCrossEntropy):
    """Dilated balanced cross entropy, DBCE (Hosseini and Soleymani Baghshah, Eqs. 2-5).

    ``L = - sum_x M(x) sum_c Y^c(x) log P^c(x)`` per image, with ``M = max_c D^c / (1 + sum(D^c))`` and ``D^c``
    the class mask dilated by a disk (3-D: ball) of ``radius``: each class and its surroundings share a balancing
    weight, so small objects and the background next to them count most.

    Reading: per image and per class c, background included: ``D^c = Y^c`` dilated by a disk of radius R,
    ``{x : |x| <= R}`` (same set as ``skimage.morphology.disk(R)``), computed as ``EDT(not Y^c) <= R``.
    ``W^c = D^c / (1 + sum(D^c))``, ``M = max_c W^c``. Loss per image = ``- sum_x M(x) * sum_c Y^c(x) log P^c(x)``
    (a sum over pixels: the weights normalise themselves); mean over the batch for ``reduction="mean"``.
    R = 0 is balanced CE with per-image weights ``1/(1+n_c)``. Absent class -> weight 0. Hand case: 5x5 image,
    one foreground pixel in the centre, R = 1, P = 0.5 everywhere: M = 1/6 on the 5-pixel cross, 1/26
    elsewhere, loss = ln2 * (5/6 + 20/26) = 1.1108128.

    Args:
        include_background: if False, the background channel's CE term is dropped; the map ``M`` is unchanged.
        to_onehot_y: ``target`` holds class indices ``(B, 1, *spatial)``.
        sigmoid, softmax, other_act: activation of ``input`` (logits), MONAI's arguments; at most one. A
            one-channel sigmoid output is binary: its map has classes 0 and 1.
        radius: disk radius ``R >= 0`` in pixels, or mm with ``spacing`` (the paper: 20 for polyps and skin
            lesions at 320x320, 10 for Synapse organs).
        spacing: voxel size (number or one per spatial axis) for a radius in mm, or None (pixels). Only used
            when the map is computed here.
        reduction: ``"mean"``: per-image sums averaged over the batch; ``"sum"``: summed over the batch;
            ``"none"``: the weighted CE map ``(B, 1, *spatial)`` (its spatial sum is each image's loss).

    Raises:
        ValueError: a negative radius, more than one activation, an unknown reduction, a ``weight_map`` or
            ``target`` whose shape does not match ``input`` (both shapes named), class values out of range.

    Example:
        >>> import torch
        >>> loss = DilatedBalancedCELoss(softmax=True, to_onehot_y=True, radius=1)
        >>> target = torch.zeros(1, 1, 5, 5); target[0, 0, 2, 2] = 1
        >>> round(loss(torch.zeros(1, 2, 5, 5), target).item(), 7)  # P = 0.5 everywhere
        1.1108128

    Reference:
        S. M. Hosseini and M. Soleymani Baghshah, "Dilated Balanced Cross Entropy Loss for Medical Image
        Segmentation" (preprint).
    """

    def __init__(
        self,
        include_background: bool = True,
        to_onehot_y: bool = False,
        sigmoid: bool = False,
        softmax: bool = False,
        other_act: Callable | None = None,
        radius: float = 20.0,
        spacing: float | Sequence[float] | None = None,
        reduction: LossReduction | str = LossReduction.MEAN,
    ) -> None:
        super().__init__(include_background, to_onehot_y, sigmoid, softmax, other_act, reduction)
        self.radius = check_radius(radius)
        self.spacing = spacing

    def compute_weight_map(self, labels: torch.Tensor) -> torch.Tensor:
        """DBCE map ``(B, 1, *spatial)`` of class-index labels ``(B, 1, *spatial)``, per image, without gradient."""
        spacing = resolve_spacing(self.spacing, labels.ndim - 2)
        return batch_map(dilation_weight_map, labels, radius=self.radius, spacing=spacing)

    def forward(
        self, input: torch.Tensor, target: torch.Tensor, weight_map: torch.Tensor | None = None
    ) -> torch.Tensor:
        """
        Args:
            input: logits ``(B, C, H, W[, D])``.
            target: ``(B, 1, *spatial)`` class indices (``to_onehot_y=True``; binary mask for one channel) or
                one-hot ``(B, C, *spatial)``.
            weight_map: precomputed DBCE map ``(B, 1, *spatial)`` (e.g. ``DilationWeightMapd``'s key, collated);
                None computes it from ``target``.
        """
        labels, ce = self.pixel_cross_entropy(input, target)
        if weight_map is None:
            weight_map = self.compute_weight_map(labels)
        weight_map = check_pixel_map(weight_map, input)
        return self.weighted_sum(input, labels, ce, weight_map, mean_over=input.shape[0])  # per-image sums


class UncertaintyWeightedCELoss(_PixelCrossEntropy):
    """Cross entropy weighted by class imbalance and labelling uncertainty (Bressan et al., Eqs. 3-6).

    ``L = mean_x w(x) CE(x)`` with ``w(x) = omega_{c(x)} * delta(x)``, ``delta(x) = 1 - exp(-d(x)^2 / (2 sigma^2))``
    and ``d(x)`` the distance to the nearest edge pixel: pixels of rare classes count more, pixels near an edge
    (uncertain annotation) less, edge pixels not at all.

    Reading: ``omega_c = m / (C * n_c)`` over the whole training set (a dataset statistic, computed once with
    :func:`monai_imbalance.stats.class_frequency_weights`; 0 for a class with n_c = 0);
    ``delta(x) = 1 - exp(-d(x)^2 / (2 sigma^2))``; ``d(x)``: Euclidean distance (in voxels, or mm when spacing is
    given) from every pixel, inside and outside objects, to the nearest edge pixel. Edge pixel (default
    ``edge_mode="inner"``): a pixel of a non-background class with a face neighbour of another label; ``"thick"``
    (both sides) is an option. Loss = ``mean_x w(x) * CE(x)``. An image without edges has ``delta = 1``.

    Args:
        include_background: if False, the background channel's CE term is dropped; the map is unchanged.
        to_onehot_y: ``target`` holds class indices ``(B, 1, *spatial)``.
        sigmoid, softmax, other_act: activation of ``input`` (logits), MONAI's arguments; at most one.
        sigma: spread of the uncertainty around edges, ``> 0`` (paper: 1 to 3 pixels; 2 best on two of its
            three datasets), mm with ``spacing``.
        class_weights: ``omega_c`` per class (background included), or None for 1 (uncertainty only). A
            registered buffer.
        edge_mode: ``"inner"`` or ``"thick"``.
        spacing: voxel size for ``sigma`` in mm, or None. Only used when the map is computed here.
        reduction: ``"mean"`` over pixels and batch, ``"sum"``, or ``"none"``: the weighted CE map
            ``(B, 1, *spatial)``.

    Raises:
        ValueError: ``sigma <= 0``, bad ``class_weights`` (not 1-D, negative, fewer values than the label has
            classes), mismatched shapes (named), more than one activation, an unknown reduction.

    Example:
        >>> import torch
        >>> from monai_imbalance.apps.synthetic import make_synthetic_dataset
        >>> from monai_imbalance.stats import class_frequency_weights
        >>> data = make_synthetic_dataset(4, spatial_size=(32, 32))
        >>> omega = class_frequency_weights((d["label"] for d in data), num_classes=2)
        >>> loss = UncertaintyWeightedCELoss(softmax=True, to_onehot_y=True, sigma=2.0, class_weights=omega)
        >>> target = torch.as_tensor(data[0]["label"][None]).long()
        >>> value = loss(torch.randn(1, 2, 32, 32), target)

    Reference:
        Bressan et al. (2021), pixel weights from labelling uncertainty and class imbalance for semantic
        segmentation, arXiv preprint (``papers/uncertainty_class_weighted_loss.md``).
    """

    def __init__(
        self,
        include_background: bool = True,
        to_onehot_y: bool = False,
        sigmoid: bool = False,
        softmax: bool = False,
        other_act: Callable | None = None,
        sigma: float = 2.0,
        class_weights: Sequence[float] | np.ndarray | torch.Tensor | None = None,
        edge_mode: str = "inner",
        spacing: float | Sequence[float] | None = None,
        reduction: LossReduction | str = LossReduction.MEAN,
    ) -> None:
        super().__init__(include_background, to_onehot_y, sigmoid, softmax, other_act, reduction)
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

    def forward(
        self, input: torch.Tensor, target: torch.Tensor, weight_map: torch.Tensor | None = None
    ) -> torch.Tensor:
        """
        Args:
            input: logits ``(B, C, H, W[, D])``.
            target: ``(B, 1, *spatial)`` class indices (``to_onehot_y=True``; binary mask for one channel) or
                one-hot ``(B, C, *spatial)``.
            weight_map: precomputed map ``(B, 1, *spatial)`` (``UncertaintyWeightMapd``); None computes it.
        """
        labels, ce = self.pixel_cross_entropy(input, target)
        if weight_map is None:
            weight_map = self.compute_weight_map(labels)
        weight_map = check_pixel_map(weight_map, input)
        return self.weighted_sum(input, labels, ce, weight_map, mean_over=labels.numel())
