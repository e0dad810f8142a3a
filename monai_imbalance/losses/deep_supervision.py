"""Deep supervision that keeps small structures in the low-resolution targets and passes extra loss arguments
(weight maps, distance maps) to every head.

MONAI's ``monai.losses.DeepSupervisionLoss`` resizes the target to each head with nearest-neighbour sampling
(``nearest-exact``): a low-resolution cell takes the class of one input pixel, so an object that misses every sampled
pixel vanishes from the target of that head, and the head is trained to predict background there. With
the small, rare objects this package is about, whole objects disappear at 1/4 and 1/8 resolution (nnU-Net issue
1226 reports the same for nnU-Net's deep supervision). :func:`downsample_label` resizes a label map by one of three
rules, on the cells of adaptive pooling (every input pixel lies in at least one output cell, for any size):

- ``"nearest"``: MONAI's resize (``F.interpolate(..., mode="nearest-exact")``), unchanged.
- ``"max"`` (the default): a cell is foreground when any of its pixels is; it takes the foreground class with the
  most pixels in the cell. No object is lost to the downsampling itself (only to a larger object of another class
  in the same cells), at the price of thickening objects by up to one cell.
- ``"area"``: a cell takes the foreground class with the largest share of the cell if that share is
  ``>= area_threshold`` (0.5: a majority-like vote), background otherwise: no inflation of lone pixels, and objects
  smaller than half a cell are dropped, as a box filter followed by thresholding would do.

``"max"`` is the default because a head that never sees a small object in its target learns to suppress it, the
opposite of what the imbalance-aware losses of the other heads ask for; ``monai-imbalance stats`` reports how many
objects of a dataset each rule loses at each level.

MONAI's ``DeepSupervisionLoss`` calls ``loss(head, target)`` only, so a loss that reads a weight map
(:class:`monai_imbalance.losses.DilatedBalancedCELoss`) or a distance map (the boundary losses) cannot be deeply
supervised with it. :class:`DeepSupervisionLoss` here is a drop-in subclass: ``forward(input, target, *args,
**kwargs)`` gives every head the target, downsampled with :func:`downsample_label`, and the extra maps, resized with
MONAI's nearest-neighbour interpolation (no resize when the head has the target's size, as with
:class:`monai_imbalance.networks.DeepSupervisionFlexibleUNet`, whose heads are all full resolution).

The DBCE paper (Sec. 3.2) sums the heads' losses: ``weight_mode="same"``.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from monai.losses import DeepSupervisionLoss as _MonaiDeepSupervisionLoss

from .utils import _raise_non_integer, plain_tensor

__all__ = ["DeepSupervisionLoss", "downsample_label", "DOWNSAMPLE_MODES"]

#: keyword arguments that are labels of the target itself (BlobLoss's component ids): passed as None to a head of
#: another resolution, where the loss recomputes them from that head's target
RELABELLED_ARGS = frozenset({"components"})

#: the rules of :func:`downsample_label`
DOWNSAMPLE_MODES = ("nearest", "max", "area")
#: one-hot elements pooled at once (float32: 512 MiB); more classes than fit are pooled a chunk of classes at a time
_ONEHOT_BUDGET = 1 << 27


def _check_mode(mode: str, area_threshold: float, name: str = "mode") -> None:
    if mode not in DOWNSAMPLE_MODES:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, DOWNSAMPLE_MODES))}, got {mode!r}.")
    if isinstance(area_threshold, bool) or not isinstance(area_threshold, numbers.Real) or not (
        0 < area_threshold <= 1
    ):
        raise ValueError(f"area_threshold must be a number in (0, 1], got {area_threshold!r}.")


def _check_size(size: int | Sequence[int], spatial: Sequence[int]) -> tuple[int, ...]:
    sizes = (size,) * len(spatial) if isinstance(size, numbers.Integral) else tuple(size)
    if len(sizes) != len(spatial):
        raise ValueError(
            f"size must have one entry per spatial axis of the label ({len(spatial)}), got {tuple(sizes)}."
        )
    for axis, (out, full) in enumerate(zip(sizes, spatial)):
        if isinstance(out, bool) or not isinstance(out, numbers.Integral) or out < 1:
            raise ValueError(f"size must hold integers >= 1, got {tuple(sizes)}.")
        if out > full:
            raise ValueError(
                f"size {tuple(sizes)} is larger than the label's spatial shape {tuple(spatial)} on axis {axis}: "
                "downsample_label only shrinks."
            )
    return tuple(int(s) for s in sizes)


def _cell_sizes(spatial: Sequence[int], size: Sequence[int], device: torch.device) -> torch.Tensor:
    """Pixels of every adaptive-pooling cell, ``(1, 1, *size)``: cell ``i`` of an axis of ``n`` pixels spans
    ``[floor(i n / m), ceil((i + 1) n / m))``, the windows of ``F.adaptive_avg_pool*d``."""
    cells = torch.ones((1, 1, *size), dtype=torch.float32, device=device)
    for axis, (n, m) in enumerate(zip(spatial, size)):
        i = torch.arange(m, device=device)
        length = (-((-(i + 1) * n) // m) - (i * n) // m).to(torch.float32)
        shape = [1] * (len(size) + 2)
        shape[axis + 2] = m
        cells = cells * length.view(shape)
    return cells


def _pooled_counts(mask: torch.Tensor, size: tuple[int, ...], cells: torch.Tensor) -> torch.Tensor:
    """Pixels of ``mask`` (``(B, K, *spatial)``, 0/1) in every adaptive-pooling cell, as whole float32 numbers (exact
    for cells of up to ``2**24`` pixels, far beyond a deep-supervision cell)."""
    pool = F.adaptive_avg_pool2d if mask.ndim == 4 else F.adaptive_avg_pool3d
    if mask.dtype == torch.bool:
        mask = mask.view(torch.uint8)  # bool -> float32 measured 2.4x slower than uint8 -> float32 on the CPU
    # the mean times the cell size, rounded: counts compare exactly (ties are ties) whatever the pooling's rounding
    return torch.round(pool(mask.to(torch.float32), size) * cells)


def _best_class(counts: torch.Tensor, max_cell: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per cell, the largest of ``counts`` ``(B, k, *size)`` (whole numbers) over dim 1 and its channel, the first
    channel on ties.

    One ``amax`` of ``count * k + (k - 1 - channel)`` instead of ``argmax(dim=1)``, which is 10-100x slower on the
    CPU for a reduction over channels; the key is exact in float32 below ``2**24`` (int64 otherwise).
    """
    k = counts.shape[1]
    if k == 1:
        return counts, torch.zeros(counts.shape, dtype=torch.long, device=counts.device)
    keys = counts if (max_cell + 1) * k < 2**24 else counts.long()
    rank = torch.arange(k - 1, -1, -1, device=counts.device, dtype=keys.dtype).view(1, k, *[1] * (counts.ndim - 2))
    key = (keys * k + rank).amax(dim=1, keepdim=True)
    low = torch.remainder(key, k)  # exact (fmod) in float32 too
    value = torch.div(key - low, k, rounding_mode="floor").to(counts.dtype)
    return value, (k - 1 - low).long()


def _downsample_indices(
    indices: torch.Tensor, size: tuple[int, ...], num_classes: int, mode: str, area_threshold: float
) -> torch.Tensor:
    """``(B, 1, *size)`` int64 classes of a ``(B, 1, *spatial)`` class-index map (whole values ``>= 0`` of any dtype,
    compared in that dtype: no full-size int64 copy) by the ``max``/``area`` rule."""
    spatial = indices.shape[2:]
    cells = _cell_sizes(spatial, size, indices.device)
    max_cell = math.prod(-(-n // m) + 1 for n, m in zip(spatial, size))
    best = torch.zeros((indices.shape[0], 1, *size), dtype=torch.float32, device=indices.device)
    best_class = torch.zeros(best.shape, dtype=torch.long, device=indices.device)
    chunk = max(1, _ONEHOT_BUDGET // max(1, indices.numel()))
    for first in range(1, num_classes, chunk):  # one chunk (one pooling) unless the one-hot would be huge
        classes = torch.arange(first, min(num_classes, first + chunk), device=indices.device, dtype=indices.dtype)
        counts = _pooled_counts(indices == classes.view(1, -1, *[1] * len(spatial)), size, cells)
        value, arg = _best_class(counts, max_cell)  # ties: the smaller class
        better = value > best  # strictly: an earlier (smaller) class keeps a tie with a later chunk
        best = torch.where(better, value, best)
        best_class = torch.where(better, arg + first, best_class)
    if mode == "area":
        best_class = torch.where(best / cells >= area_threshold, best_class, torch.zeros_like(best_class))
    return best_class  # max: best == 0 (no foreground pixel in the cell) kept class 0


def downsample_label(
    label: torch.Tensor, size: int | Sequence[int], mode: str = "max", area_threshold: float = 0.5
) -> torch.Tensor:
    """Downsample a label map to ``size`` without losing small structures (``mode="max"``).

    The output cells are those of adaptive pooling: on an axis of ``n`` pixels resized to ``m``, cell ``i`` spans
    pixels ``[floor(i n / m), ceil((i + 1) n / m))``, so every input pixel falls in at least one cell (in two
    neighbouring cells where ``m`` does not divide ``n``), for any ``size <= spatial shape``.

    Rules, for a class-index map ``(B, 1, *spatial)`` (what losses with ``to_onehot_y=True`` get; a one-channel
    binary mask is the index map of class 1):

    - ``"nearest"``: ``F.interpolate(label, size, mode="nearest-exact")``, what MONAI's ``DeepSupervisionLoss`` does
      (any values; no check).
    - ``"max"``: a cell with at least one foreground pixel (value > 0) takes the foreground class with the most
      pixels in the cell; ties go to the smaller class value; background (0) only when the cell has no foreground.
    - ``"area"``: a cell takes the foreground class with the most pixels (ties: the smaller value) if its share of
      the cell, ``count / cell pixels``, is ``>= area_threshold``; background otherwise (even when the background
      share is larger, for thresholds below 0.5).

    A multi-channel ``(B, C, *spatial)`` target with 0/1 values is read in one of two ways:

    - exactly one-hot (every pixel has one channel at 1; channel 0 the background, MONAI's ``one_hot`` layout): it
      is downsampled as its class-index map ``argmax(label, 1)`` and one-hot encoded again, so the output stays
      one-hot (background = 1 - any foreground) and equals the one-hot of the downsampled index map;
    - otherwise multi-label (sigmoid targets, overlapping channels): each channel on its own, ``"max"`` is max
      pooling, ``"area"`` keeps a cell where the channel covers ``>= area_threshold`` of it.

    Class counts per cell come from one adaptive average pooling of the one-hot foreground (chunked over the classes
    only when the one-hot of many classes would pass 2**27 elements).

    Args:
        label: ``(B, 1, *spatial)`` class indices or ``(B, C, *spatial)`` one-hot / multi-label, 2-D or 3-D, any
            dtype (float labels must hold whole numbers). A ``MetaTensor`` is read as its plain tensor (its affine
            would not fit the new grid).
        size: spatial size of the output (one int per spatial axis, or one int for all), ``1 <= size <= spatial``.
        mode: ``"max"`` (default), ``"area"`` or ``"nearest"``.
        area_threshold: share of a cell a class needs under ``"area"``, in ``(0, 1]``.

    Returns:
        ``(B, C, *size)`` tensor of the input's dtype, on its device, without gradient.

    Raises:
        ValueError: an unknown ``mode`` (the valid ones are listed), ``area_threshold`` outside ``(0, 1]``, a label
            that is not ``(B, C, H, W[, D])``, a ``size`` of the wrong length or larger than the label, and for
            ``"max"``/``"area"``: non-integer, NaN or negative class indices, or a multi-channel label that is not 0/1.

    Example:
        >>> import torch
        >>> label = torch.zeros(1, 1, 8, 8); label[0, 0, 1, 1] = 1  # one pixel, not one nearest samples
        >>> [int(downsample_label(label, (2, 2), mode=m).sum()) for m in ("max", "area", "nearest")]
        [1, 0, 0]
    """
    _check_mode(mode, area_threshold)
    if not isinstance(label, torch.Tensor):
        raise ValueError(f"label must be a torch tensor, got {type(label).__name__}.")
    if label.ndim not in (4, 5):
        raise ValueError(
            f"label must be (B, C, H, W) or (B, C, H, W, D) (2-D or 3-D with batch and channel), got shape "
            f"{tuple(label.shape)}."
        )
    size = _check_size(size, label.shape[2:])
    with torch.no_grad():
        label = plain_tensor(label).detach()
        dtype = label.dtype
        if mode == "nearest":
            source = label if label.is_floating_point() else label.to(torch.float32)
            return F.interpolate(source, size=size, mode="nearest-exact").to(dtype)
        if label.numel() == 0:
            return label.new_zeros((*label.shape[:2], *size))
        if dtype == torch.bool:
            label = label.to(torch.uint8)
        if label.shape[1] == 1:
            # one read back to the host for the check and the class count (each is a GPU sync)
            whole = (torch.isfinite(label) & (label == torch.trunc(label))).all() if label.is_floating_point() else \
                label.new_ones((), dtype=torch.bool)
            lo_hi = torch.stack(torch.aminmax(label)).double()
            ok, lo, hi = torch.cat([whole.double().view(1), torch.nan_to_num(lo_hi)]).tolist()
            if not ok:
                _raise_non_integer(label, "label")
            lo, hi = int(lo), int(hi)
            if lo < 0:
                raise ValueError(f"label has negative values (min {lo}); labels must be class indices >= 0.")
            return _downsample_indices(label, size, hi + 1, mode, area_threshold).to(dtype)
        binary = (label == 0) | (label == 1)
        is_binary, is_one_hot = torch.stack([binary.all(), (label.sum(dim=1) == 1).all()]).tolist()  # one read
        if not is_binary:
            examples = torch.unique(label[~binary])[:5].tolist()
            raise ValueError(
                f"label has {label.shape[1]} channels, so it must be one-hot or multi-label with 0/1 values per "
                f"channel; got values such as {examples}. A class-index map has one channel."
            )
        if is_one_hot:  # exactly one-hot: downsample the classes, encode again
            indices = label.argmax(dim=1, keepdim=True)
            out = _downsample_indices(indices, size, label.shape[1], mode, area_threshold)
            classes = torch.arange(label.shape[1], device=label.device).view(1, -1, *[1] * len(size))
            return (out == classes).to(dtype)
        cells = _cell_sizes(label.shape[2:], size, label.device)
        counts = _pooled_counts(label, size, cells)
        keep = counts > 0 if mode == "max" else counts / cells >= area_threshold
        return keep.to(dtype)


class DeepSupervisionLoss(_MonaiDeepSupervisionLoss):
    """``sum_i w_i * loss(head_i, target_i, *maps_i)`` over the heads of a deeply supervised network.

    Like ``monai.losses.DeepSupervisionLoss`` (same arguments, same weights), plus extra positional and keyword
    arguments passed to the wrapped loss for every head, and a choice of how the target is downsampled. The target
    of a head smaller than it is :func:`downsample_label` ``(target, head size, target_mode, area_threshold)``
    (a head larger than the target on some axis gets MONAI's nearest resize). A tensor argument with the target's
    spatial shape is resized with ``nearest-exact`` to each head's spatial shape when they differ, as MONAI resizes
    the target: weight and distance maps are maps of values, not labels, so the classes' max or area rules do not
    apply to them (nearest keeps each value a value of the map); other arguments are passed unchanged. The heads
    come as a list (or tuple) of ``(B, C, *spatial_i)`` tensors, or as one tensor ``(B, heads, C, *spatial)``
    with one more dimension than the target: what MONAI's ``DynUNet(deep_supervision=True)`` returns in training
    (the heads upsampled to full size and stacked on dim 1, the main output first), unbound on dim 1 into the list.
    A single tensor of the target's dimensions (an evaluator's output) is a plain ``loss(input, target, ...)``.

    Args:
        loss: the loss of each head, e.g. :class:`monai_imbalance.losses.DilatedBalancedCELoss`.
        weight_mode: ``"same"`` (every head weighs 1: the DBCE paper's sum), ``"exp"`` (``2**-i``, MONAI's
            default) or ``"two"`` (1 for the first head, 0.5 for the others).
        weights: explicit weights, one per head (overrides ``weight_mode``).
        target_mode: how the target is downsampled for a smaller head: ``"max"`` (default: a cell is foreground when
            any of its pixels is, so small objects stay in every head's target), ``"area"`` (the class covering at
            least ``area_threshold`` of a cell) or ``"nearest"`` (MONAI's resize, which drops objects that miss the
            sampled pixels). See :func:`downsample_label` for the exact rules.
        area_threshold: share of a cell a class needs with ``target_mode="area"``, in ``(0, 1]``.

    Raises:
        ValueError: an unknown ``target_mode`` or ``area_threshold`` outside ``(0, 1]``.

    Example:
        >>> import torch
        >>> from monai_imbalance.losses import DilatedBalancedCELoss
        >>> loss = DeepSupervisionLoss(DilatedBalancedCELoss(softmax=True, to_onehot_y=True, radius=2),
        ...                            weight_mode="same")
        >>> heads = [torch.randn(2, 2, 16, 16) for _ in range(3)]
        >>> target = torch.zeros(2, 1, 16, 16); target[:, :, 4:9, 4:9] = 1
        >>> value = loss(heads, target, weight_map=torch.ones(2, 1, 16, 16))
    """

    def __init__(
        self,
        loss: torch.nn.Module,
        weight_mode: str = "exp",
        weights: list[float] | None = None,
        target_mode: str = "max",
        area_threshold: float = 0.5,
    ) -> None:
        _check_mode(target_mode, area_threshold, name="target_mode")
        super().__init__(loss, weight_mode=weight_mode, weights=weights)  # type: ignore[arg-type]
        self.target_mode = target_mode
        self.area_threshold = area_threshold

    def _resize_like(self, value: Any, target: torch.Tensor, head: torch.Tensor) -> Any:
        if (
            isinstance(value, torch.Tensor)
            and value.ndim == target.ndim
            and value.shape[2:] == target.shape[2:]
            and head.shape[2:] != target.shape[2:]
        ):
            return F.interpolate(value.float(), size=head.shape[2:], mode=self.interp_mode).to(value.dtype)
        return value

    def _resize_target(self, target: torch.Tensor, head: torch.Tensor) -> torch.Tensor:
        size = tuple(head.shape[2:])
        if any(s > t for s, t in zip(size, target.shape[2:])):  # upsampling loses nothing: MONAI's resize
            return F.interpolate(target, size=size, mode=self.interp_mode)
        return downsample_label(target, size, mode=self.target_mode, area_threshold=self.area_threshold)

    def get_loss(self, input: torch.Tensor, target: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        """The loss of one head, with the target downsampled and the extra maps resized to the head when needed."""
        args = tuple(self._resize_like(a, target, input) for a in args)
        resized = input.shape[2:] != target.shape[2:]
        # component ids (BlobLoss) are not resized: ids resized by nearest no longer cover the downsampled target,
        # so the loss relabels the head's own target
        kwargs = {k: None if k in RELABELLED_ARGS and resized else self._resize_like(v, target, input)
                  for k, v in kwargs.items()}
        if resized:
            target = self._resize_target(target, input)
        return self.loss(input, target, *args, **kwargs)  # type: ignore[no-any-return]

    def forward(  # type: ignore[override]
        self, input: None | torch.Tensor | list[torch.Tensor], target: torch.Tensor, *args: Any, **kwargs: Any
    ) -> torch.Tensor:
        if isinstance(input, torch.Tensor) and input.ndim == target.ndim + 1:
            # MONAI's DynUNet in training: the heads stacked on dim 1, (B, heads, C, *spatial), all at full size
            input = list(torch.unbind(input, dim=1))
        if isinstance(input, (list, tuple)):
            weights = self.get_weights(levels=len(input))
            loss = torch.tensor(0, dtype=torch.float, device=target.device)
            for head, weight in zip(input, weights):
                loss = loss + weight * self.get_loss(head.float(), target, *args, **kwargs)
            return loss
        if input is None:
            raise ValueError("input shouldn't be None.")
        return self.loss(input.float(), target, *args, **kwargs)  # type: ignore[no-any-return]

