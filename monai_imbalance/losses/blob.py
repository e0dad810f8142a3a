"""Blob loss (Kofler et al., IPMI 2023): a loss per connected component of the ground truth, so that many small
objects weigh as much as one large one.

For every class ``c`` of an image and every connected component ``n`` of that class in the ground truth, the
wrapped loss ``l`` is computed on the component alone, with the class's other components masked out of prediction
and label; the blob term averages these, and the total mixes it with the loss of the whole image::

    L = alpha * l(P, Y) + beta * L_blob,   L_blob = mean_{(b, c)} (1 / N_bc) sum_n l(P_c * M_n, 1[K_c = n])

with ``K_c`` the component ids of class ``c``, ``M_n = 1[K_c in {0, n}]`` (the component and the class's
background) and ``N_bc`` the components of class ``c`` in image ``b``. The paper's weights are ``alpha = 2``,
``beta = 1``.

Reading (Kofler et al., Sec. 2): masking sets the prediction and the label of the other components to 0, after the
activation (a masked probability of 0 against a label of 0 adds nothing to a soft Dice, Tversky or focal count, so
for a region loss the other components are left out exactly; the authors' code multiplies the network output by the
mask). The blob term averages over the components of each (image, class) pair, then over the pairs that have
components; images and classes without any component add nothing to it (the paper skips elements without blobs) and a
batch without any object has a blob term of 0. The background of a class-index map is never a blob; with one-hot or
multi-label targets every channel the loss selects has blobs (``include_background=False`` drops channel 0). The
blob term is unweighted per class (the paper has no class weights; those of the wrapped loss apply to the global
term) and per image (a wrapped loss's ``batch=True`` applies to the global term only).

Cost: one pass over all components of a batch. For losses made of soft counts and a per-pixel term (the package's
one-vs-rest losses: DIBE, DIBE_Reg, DIBE_Dis, Focal Tversky, Combo, Exp-Log, Hybrid Focal; MONAI's ``DiceLoss``
without ``squared_pred`` or ``ignore_index``, and ``TverskyLoss``) the per-component counts are segment sums
(``index_add`` over the component ids): linear in the pixels, independent of the number of components. Any other
loss with MONAI's input arguments is evaluated once on a batch of ``N`` single-channel masked problems (memory ``N``
times one channel); the two agree (tested). ``benchmarks/bench_blob.py`` times both against the wrapped loss.

Reference:
    F. Kofler, S. Shit, I. Ezhov, L. Fidon, I. Horvath, R. Al-Maskari, H. B. Li, H. Bhatia, T. Loehr, M. Piraud,
    A. Erturk, J. Kirschke, J. C. Peeken, T. Vercauteren, C. Zimmer, B. Wiestler, B. Menze, "blob loss: instance
    imbalance aware loss functions for semantic segmentation", IPMI 2023.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
import torch
from monai.losses import DiceLoss, TverskyLoss
from torch.nn.modules.loss import _Loss

from monai_imbalance.losses.base import INPUT_ARGUMENTS
from monai_imbalance.losses.one_vs_rest import (
    OneVsRestLoss,
    OneVsRestTerms,
    PixelRegionLoss,
    RegionOnlyLoss,
    one_vs_rest_terms,
)
from monai_imbalance.losses.utils import activate, check_input_shape, check_target, plain_tensor

__all__ = ["BlobLoss"]


class _Components(NamedTuple):
    """The labelled pixels of a batch: for each, its image ``b``, selected channel ``c`` and flat spatial index
    ``v``, and its slot ``pair * K + id`` (``pair = b * C' + c``, ids ``1..K-1``); ``size`` ``[B * C', K]`` counts
    the pixels of every slot (column 0 unused)."""

    b: torch.Tensor
    c: torch.Tensor
    v: torch.Tensor
    slot: torch.Tensor
    size: torch.Tensor
    num_ids: int


def _check_loss(loss: Any, name: str) -> None:
    if not callable(loss):
        raise TypeError(f"{name} must be a loss (a callable module), got {type(loss).__name__}.")
    if name == "loss":
        missing = [a for a in INPUT_ARGUMENTS if not hasattr(loss, a)]  # BlobLoss activates and masks for it
        if missing:
            raise TypeError(
                f"BlobLoss wraps a loss with MONAI's input arguments (DiceLoss, TverskyLoss, the losses of "
                f"monai_imbalance.losses); {type(loss).__name__} has no attribute(s) {missing}. For a compound such as "
                "DiceCELoss, wrap its region part and pass the compound as global_loss: "
                "BlobLoss(DiceLoss(...), global_loss=DiceCELoss(...))."
            )


def _check_weight(value: float, name: str) -> float:
    value = float(value)
    if not np.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value}.")
    return value


class BlobLoss(_Loss):
    """``alpha * loss(input, target) + beta * mean over components of loss(component)`` (Kofler et al., IPMI 2023).

    See the module docstring for the formula, the reading of the masking and the averaging.

    Args:
        loss: the criterion of every component (and of the whole image unless ``global_loss`` is given): a loss with
            MONAI's input arguments (``include_background``, ``to_onehot_y``, ``sigmoid``, ``softmax``,
            ``other_act``), e.g. ``monai.losses.DiceLoss``, ``TverskyLoss`` or a loss of this package. BlobLoss
            applies its activation, one-hot and background drop, then evaluates it on each component's masked
            probabilities (a copy with the activation switched off, ``reduction="none"``). Region losses (Dice,
            Tversky, DIBE_Reg) are the paper's; one-vs-rest pixel losses (DIBE_Dis, focal) work too; a loss whose
            value per class needs the other classes (softmax cross entropy) does not fit the per-class masking.
        alpha: weight of the global term, ``>= 0`` (paper: 2).
        beta: weight of the blob term, ``>= 0`` (paper: 1).
        global_loss: the global term's loss instead of ``loss`` (e.g. ``DiceCELoss`` around a Dice blob term);
            called as ``global_loss(input, target)``, must return a scalar.
        connectivity: used only when ``forward`` gets no ``components``: 1 = face neighbours, None = full.

    ``forward(input, target, components=None)``:
        - ``input``: ``(B, C, *spatial)`` logits (or probabilities, as ``loss`` reads them), 2-D or 3-D.
        - ``target``: what ``loss`` takes: class indices ``(B, 1, *spatial)`` with ``to_onehot_y``, else one-hot or
          multi-label ``(B, C, *spatial)``, hard labels.
        - ``components``: component ids from :class:`monai_imbalance.transforms.ConnectedComponentsd` of the target
          (``(B, 1, *spatial)`` with ids unique over the classes of an index map, or one channel per target channel);
          without it they are computed from the target under ``torch.no_grad()`` (on the CPU: a host copy per call).
          A component id is one object whether or not its pixels touch (a cached component map cropped later).

    Returns:
        a scalar.

    Raises:
        TypeError: ``loss`` without MONAI's input arguments, a loss that is not callable.
        ValueError: negative ``alpha``/``beta``; ``components`` whose shape does not fit the target, that are not
            integers >= 0, or that leave foreground pixels of the target without a component (components of another
            label or crop); a global term that is not a scalar; and the wrapped loss's own errors.

    Example:
        >>> import torch
        >>> from monai.losses import DiceLoss
        >>> target = torch.zeros(1, 1, 32, 32); target[..., 2:22, 2:22] = 1; target[..., 27:29, 27:29] = 1
        >>> logits = torch.where(target > 0, 6.0, -6.0); logits[..., 27:29, 27:29] = -6.0  # the small object missed
        >>> dice = DiceLoss(sigmoid=True)
        >>> round(dice(logits, target).item(), 3), round(BlobLoss(dice, alpha=0, beta=1)(logits, target).item(), 3)
        (0.008, 0.5)
    """

    def __init__(
        self, loss: _Loss | Callable[..., torch.Tensor], alpha: float = 2.0, beta: float = 1.0,
        global_loss: _Loss | Callable[..., torch.Tensor] | None = None, connectivity: int | None = None,
    ) -> None:
        super().__init__()
        _check_loss(loss, "loss")
        if global_loss is not None:
            _check_loss(global_loss, "global_loss")
        self.alpha = _check_weight(alpha, "alpha")
        self.beta = _check_weight(beta, "beta")
        self.loss = loss
        self.global_loss = global_loss
        self.connectivity = connectivity
        # the criterion of one masked component: probabilities in, one channel, no class weights, per element
        component_loss = copy.deepcopy(loss)
        for name, value in (("sigmoid", False), ("softmax", False), ("other_act", None), ("to_onehot_y", False),
                            ("include_background", True), ("reduction", "none")):
            setattr(component_loss, name, value)
        for name, value in (("class_weight", None), ("batch", False)):
            if hasattr(component_loss, name):
                setattr(component_loss, name, value)
        self.component_loss = component_loss

    # ---------------------------------------------------------------------------------------------------- forward

    def forward(
        self, input: torch.Tensor, target: torch.Tensor, components: torch.Tensor | None = None
    ) -> torch.Tensor:
        check_input_shape(input)
        if self.beta == 0:
            return self.alpha * self._global_value(input, target)
        blob, shared_global = self._blob(input, target, components, want_global=self.alpha > 0)
        if self.alpha == 0:
            return self.beta * blob
        # the fast path gives the global term of the same loss from the same sums (no second activation)
        global_value = self._global_value(input, target) if shared_global is None else shared_global
        return self.alpha * global_value + self.beta * blob

    def _global_value(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        value = (self.global_loss or self.loss)(input, target)
        if value.ndim != 0:
            raise ValueError(
                f"the global loss must return a scalar (reduction 'mean' or 'sum'), got shape {tuple(value.shape)}."
            )
        return value

    def blob_term(
        self, input: torch.Tensor, target: torch.Tensor, components: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``L_blob``: the mean over (image, class) pairs with components of the mean loss of their components."""
        return self._blob(input, target, components, want_global=False)[0]

    def _blob(
        self, input: torch.Tensor, target: torch.Tensor, components: torch.Tensor | None, want_global: bool
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The blob term, and the global term when the fast path can give it from the same sums (else None)."""
        loss = self.loss
        input, target = plain_tensor(input), plain_tensor(target)
        check_input_shape(input)
        check_target(input, target, loss.to_onehot_y)
        probs = activate(input, loss.sigmoid, loss.softmax, loss.other_act)
        offset = 0 if loss.include_background or input.shape[1] == 1 else 1
        probs = probs[:, offset:]
        with torch.no_grad():
            comps = self._components(input, target, components, offset)
        fast = self._fast_values(input, target, probs, comps, want_global and self.global_loss is None)
        values, global_value = fast if fast is not None else (self._batched_values(probs, comps), None)
        valid = comps.size[:, 1:] > 0  # [B * C', K - 1]
        per_pair = torch.where(valid, values, values.new_zeros(())).sum(1)
        counts = valid.sum(1)
        has = counts > 0
        pair_means = per_pair / counts.clamp(min=1).to(per_pair.dtype)
        blob = (pair_means * has).sum().to(input.dtype) / has.sum().clamp(min=1).to(input.dtype)
        return blob, global_value

    # ------------------------------------------------------------------------------------------------ components

    def _read_components(self, target: torch.Tensor, components: torch.Tensor | None) -> torch.Tensor:
        """The given component ids, checked, or those of ``target`` (``ConnectedComponents`` per image), long."""
        if components is None:
            from monai_imbalance.transforms.components import connected_components

            labels = target.detach().cpu()
            ids = torch.from_numpy(np.stack([connected_components(lab, self.connectivity) for lab in labels]))
            return ids.to(device=target.device, dtype=torch.long)
        ids = plain_tensor(components).detach()
        if ids.is_floating_point():
            if not bool((ids == torch.trunc(ids)).all()) or not bool(torch.isfinite(ids).all()):
                raise ValueError("components must hold integer component ids (ConnectedComponentsd's output).")
        if ids.ndim != target.ndim or ids.shape[0] != target.shape[0] or ids.shape[1] not in {1, target.shape[1]} or (
            ids.shape[2:] != target.shape[2:]
        ):
            raise ValueError(
                f"components must have the target's batch and spatial shape and 1 or {target.shape[1]} channels "
                f"(ConnectedComponentsd of the label), got {tuple(ids.shape)} for a target of {tuple(target.shape)}."
            )
        if ids.numel() and int(ids.min()) < 0:
            raise ValueError("components must hold component ids >= 0 (0 = background).")
        return ids.to(device=target.device, dtype=torch.long)

    def _components(
        self, input: torch.Tensor, target: torch.Tensor, components: torch.Tensor | None, offset: int
    ) -> _Components:
        """Every labelled pixel of the selected channels with its component slot (see :class:`_Components`)."""
        loss = self.loss
        n_channels = input.shape[1]
        ids = self._read_components(target, components)
        batch = target.shape[0]
        flat_target = target.reshape(batch, target.shape[1], -1)
        flat_ids = ids.reshape(batch, ids.shape[1], -1)
        if flat_ids.shape[1] == 1 and flat_target.shape[1] == 1:
            # a class-index map (or the mask of a one-channel output) and one id map: the class of a labelled pixel
            # is the target's value there (index maps: its own channel; masks: channel 0); the background is no blob
            cls = flat_target[:, 0].long() if loss.to_onehot_y and n_channels > 1 else (flat_target[:, 0] > 0.5).long()
            uncovered = (cls > 0) & (flat_ids[:, 0] == 0)
            b, v = ((flat_ids[:, 0] > 0) & (cls > 0)).nonzero(as_tuple=True)
            c = cls[b, v] - (offset if n_channels > 1 else 1)
            keep = c >= 0
            b, v, c = b[keep], v[keep], c[keep]
            labelled = flat_ids[b, 0, v]
        else:
            # one-hot or multi-label target: one channel per class (the ids: one map for all, or one per channel)
            hard = flat_target[:, offset:] > 0.5
            per_channel = flat_ids[:, offset:] if flat_ids.shape[1] == n_channels else flat_ids
            per_channel = per_channel * hard
            uncovered = hard & (per_channel == 0)
            b, c, v = per_channel.nonzero(as_tuple=True)
            labelled = per_channel[b, c, v]
        if bool(uncovered.any()):
            raise ValueError(
                "components leave foreground pixels of the target without a component id: pass the "
                "ConnectedComponentsd output of this target (after the same crop and spatial transforms)."
            )
        selected = n_channels - offset
        pairs = batch * selected
        k = int(labelled.max()) + 1 if labelled.numel() else 1
        slot = (b * selected + c) * k + labelled
        size = torch.bincount(slot, minlength=pairs * k).reshape(pairs, k)
        return _Components(b, c, v, slot, size, k)

    @staticmethod
    def _segment_sums(values: torch.Tensor, comps: _Components) -> tuple[torch.Tensor, torch.Tensor]:
        """``values`` ``(B, C', *spatial)`` summed per component ``[B * C', K - 1]`` (float64), and over each pair's
        unlabelled pixels (its background) ``[B * C', 1]``: the total minus its components."""
        pairs, k = comps.size.shape
        flat = values.reshape(values.shape[0], values.shape[1], -1)
        gathered = flat[comps.b, comps.c, comps.v].double()
        per_slot = gathered.new_zeros(pairs * k).index_add(0, comps.slot, gathered).reshape(pairs, k)[:, 1:]
        total = flat.sum(-1).reshape(pairs, 1).double()
        return per_slot, total - per_slot.sum(1, keepdim=True)

    # ------------------------------------------------------------------------------------ per-component values

    def _counts(
        self, probs: torch.Tensor, comps: _Components
    ) -> tuple[tuple[torch.Tensor, ...], tuple[torch.Tensor, ...]]:
        """Soft ``tp, fp, fn`` of every component slot ``[B * C', K - 1]`` (float64), and of every whole
        (image, class) pair ``[B, C']``: the components cover the target's foreground, so the pair's counts are
        their sums (``tp``, ``fn``) and its background sum (``fp``)."""
        tp, background = self._segment_sums(probs, comps)
        size = comps.size[:, 1:].to(tp.dtype)
        valid = comps.size[:, 1:] > 0
        fn = size - tp
        shape = probs.shape[:2]
        pair_tp = tp.sum(1)
        whole = (pair_tp.reshape(shape), background[:, 0].reshape(shape), (size.sum(1) - pair_tp).reshape(shape))
        # empty slots get harmless counts, so that no NaN or infinite gradient comes back through torch.where
        per_slot = (torch.where(valid, tp, tp.new_ones(())), background.expand_as(tp), torch.where(valid, fn, 0.0))
        return per_slot, whole

    def _fast_values(
        self, input: torch.Tensor, target: torch.Tensor, probs: torch.Tensor, comps: _Components, want_global: bool
    ) -> tuple[torch.Tensor, torch.Tensor | None] | None:
        """Per-component loss from segment sums, for the losses made of soft counts and a pixel term, and (when
        asked and the loss's reduction allows) the loss of the whole input from the same sums; None for other
        losses (the batched path)."""
        loss = self.loss
        if isinstance(loss, OneVsRestLoss):
            return self._one_vs_rest_values(input, target, probs, comps, want_global)
        if isinstance(loss, (DiceLoss, TverskyLoss)):
            if isinstance(loss, DiceLoss) and (loss.squared_pred or loss.ignore_index is not None):
                return None
            per_slot, whole = self._counts(probs, comps)

            def index(tp: torch.Tensor, fp: torch.Tensor, fn: torch.Tensor) -> torch.Tensor:
                if isinstance(loss, TverskyLoss):
                    return 1.0 - (tp + loss.smooth_nr) / (tp + loss.alpha * fp + loss.beta * fn + loss.smooth_dr)
                if not loss.jaccard:
                    fp, fn = 0.5 * fp, 0.5 * fn
                return 1.0 - (2.0 * tp + loss.smooth_nr) / (2.0 * (tp + fp + fn) + loss.smooth_dr)

            global_value = None
            # MONAI's counts read a soft target as it is; the components (and these sums) read it hard
            hard = (loss.to_onehot_y and input.shape[1] > 1) or bool(((target == 0) | (target == 1)).all())
            plain = hard and not loss.batch and getattr(loss, "class_weight", None) is None
            if want_global and plain and loss.reduction in ("mean", "sum"):
                per_pair = index(*whole)
                global_value = (per_pair.mean() if loss.reduction == "mean" else per_pair.sum()).to(input.dtype)
            return index(*per_slot), global_value
        return None

    def _one_vs_rest_values(
        self, input: torch.Tensor, target: torch.Tensor, probs: torch.Tensor, comps: _Components, want_global: bool
    ) -> tuple[torch.Tensor, torch.Tensor | None] | None:
        """The fast path of the package's one-vs-rest losses: soft counts and the pixel term's map, segment-summed;
        the global term through the loss's own reductions (class weights, ``batch``, ``reduction``)."""
        loss = self.loss
        region = isinstance(loss, (RegionOnlyLoss, PixelRegionLoss))
        pixel_term = None if isinstance(loss, RegionOnlyLoss) else getattr(loss, "pixel_term", None)
        if not region and pixel_term is None:
            return None
        value: torch.Tensor | float = 0.0
        whole_counts: tuple[torch.Tensor, ...] = (None, None, None)  # type: ignore[assignment]
        pixel_sums = None
        num_voxels = probs[0, 0].numel()
        if region:
            per_slot, whole_counts = self._counts(probs, comps)
            value = loss.region_loss(*per_slot)
        if pixel_term is not None:
            # the pixel term with the original target: its value on a component pixel (label 1) and on the
            # background (label 0) is the masked problem's; masked pixels (p = 0, y = 0) add 0
            terms = one_vs_rest_terms(input, target, pixel_term, **loss.input_args(), want_map=True, want_counts=False)
            per_slot_map, background = self._segment_sums(terms.pixel, comps)
            mean = (per_slot_map + background) / num_voxels
            value = loss.theta * mean + (1.0 - loss.theta) * value if region else mean
            pixel_sums = (per_slot_map.sum(1) + background[:, 0]).reshape(probs.shape[:2]).to(input.dtype)
        if not want_global or loss.reduction not in ("mean", "sum"):
            return value, None  # type: ignore[return-value]
        parts = OneVsRestTerms(pixel_sums, *whole_counts, num_voxels)
        if isinstance(loss, PixelRegionLoss):
            whole_region = loss.region_loss(*loss._region_counts(parts)).to(input.dtype)
            global_value = loss._reduce(loss.theta * loss._pixel_mean(parts) + (1.0 - loss.theta) * whole_region)
        elif region:
            global_value = loss._reduce(loss.region_loss(*loss._region_counts(parts)).to(input.dtype))
        else:  # a pixel-only loss (DIBE_Dis): the mean (or sum) of its weighted pixel term
            total = loss._weighted(pixel_sums, 1).sum()
            global_value = total / (pixel_sums.numel() * num_voxels) if loss.reduction == "mean" else total
        return value, global_value  # type: ignore[return-value]

    def _batched_values(self, probs: torch.Tensor, comps: _Components) -> torch.Tensor:
        """Any loss: one call on the batch of masked single-channel problems, one element per component."""
        pairs, k = comps.size.shape
        flat = probs.reshape(pairs, -1)
        ids = torch.zeros_like(flat, dtype=torch.long)
        ids[comps.slot // k, comps.v] = comps.slot % k
        pair_index, comp_index = (comps.size[:, 1:] > 0).nonzero(as_tuple=True)  # ids are comp_index + 1
        mine = ids[pair_index] == (comp_index + 1).unsqueeze(1)
        keep = mine | (ids[pair_index] == 0)
        x = (flat[pair_index] * keep).reshape(-1, 1, *probs.shape[2:])
        y = mine.to(probs.dtype).reshape(-1, 1, *probs.shape[2:])
        per_element = self.component_loss(x, y)
        per_element = per_element.reshape(per_element.shape[0], -1).mean(1).double()
        values = probs.new_zeros((pairs, k - 1), dtype=torch.float64)
        return values.index_put((pair_index, comp_index), per_element)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}, beta={self.beta}, connectivity={self.connectivity}"
