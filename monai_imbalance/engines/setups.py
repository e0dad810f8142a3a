"""The comparison setups of the papers by name: one loss and one cropping strategy, with what each needs.

Every bundle builds its loss, its crop and the transforms they need from two names, so that each setup of the
papers is one override away (``--loss dbce``, ``--crop mac``) and ``monai-imbalance bench`` can run a grid of them
through the same bundle. The names, defaults and needs of each loss and crop are registered in
:mod:`monai_imbalance.engines.registry` (:data:`~monai_imbalance.engines.registry.LOSSES`,
:data:`~monai_imbalance.engines.registry.CROPS`); adding one is one entry there.

- ``loss``: a registered loss (``ce``, ``balanced_ce``, ``dice``, ``dice_ce``, ``dbce``, ``uncertainty_ce``,
  ``border_ce``, ``dibe``, ``dibe_dis``, ``dibe_reg``, ``focal_tversky``, ``combo``, ``exp_log``, ``hybrid_focal``,
  ``boundary``, ``modified_boundary``, and ``blob_<name>``: the blob loss around each region and one-vs-rest loss).
- ``crop``: a registered crop: ``none`` (whole resized image, the MAC paper's NC), ``random`` (uniform random crop,
  RC), ``probabilistic`` (PC: centres drawn by distance to the background), ``mac`` (Mask-Aware Cropping).
- The MAC paper's six setups are pairs of them (:data:`PAPER_SETUPS`): NC, RC, PC, MAC with plain cross entropy,
  and NCW / RCW with the class-weighted (``balanced_ce``: inverse class frequency) cross entropy.

:class:`SegmentationSetup` turns the two names into the loss function, the ``loss_inputs`` the trainer passes it
(:class:`~monai_imbalance.engines.SupervisedTrainerWithLossInputs`: ``{"weight_map": "label_weight"}`` for DBCE,
``{"components": "label_components"}`` for a blob loss),
the trainer handlers the loss needs (:class:`~monai_imbalance.handlers.BoundaryWeightScheduler` for the boundary
loss's schedule) and three groups of transforms, in pipeline order:

1. ``precompute_transforms``: deterministic, before the first random transform, so ``CacheDataset`` caches them
   (MAC's valid windows, PC's centre distribution; MONAI's ``FgBgToIndicesd`` pattern);
2. ``crop_transforms``: the random crop consuming them;
3. ``map_transforms``: pixel weight maps (DBCE, Bressan, U-Net border), signed distance maps (boundary losses) and
   component ids (blob losses: the components of the crop), placed by the
   bundles *after* the random crop and augmentation: the loss then sees the map of exactly the sample it is
   given (a map moved by a zoom, rotation or elastic warp, or cut by a crop, is no longer the map of the sample:
   its normalisation ``1 / (1 + area)`` and its distances belong to the original image). Computing them there
   costs one distance transform per sample, in the data loader's workers.

Parameters of each loss and crop are given per name (``loss_params={"dbce": {"radius": 20}}``), so a bundle can
carry the paper value of every option and switching the name needs no other override.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any

from .registry import CROPS, DISTANCE_MAP_KEY, LOSSES, WEIGHT_MAP_KEY, get_crop_spec, get_loss_spec

__all__ = [
    "LOSS_NAMES",
    "CROP_NAMES",
    "PAPER_SETUPS",
    "DEFAULT_LOSS_PARAMS",
    "DEFAULT_CROP_PARAMS",
    "WEIGHT_MAP_KEY",
    "DISTANCE_MAP_KEY",
    "SegmentationSetup",
    "paper_setup",
    "describe_object",
]


class _Names(Sequence):
    """The registered names, read live from a registry (a tuple-like view: ``in``, iteration, ``list()``)."""

    def __init__(self, table: Mapping[str, Any]) -> None:
        self._table = table

    def __getitem__(self, index: Any) -> Any:
        return tuple(self._table)[index]

    def __len__(self) -> int:
        return len(self._table)

    def __contains__(self, name: object) -> bool:
        return name in self._table

    def __repr__(self) -> str:
        return repr(tuple(self._table))


class _Defaults(Mapping):
    """``{name: defaults}`` of a registry, read live (``DEFAULT_LOSS_PARAMS``, ``DEFAULT_CROP_PARAMS``)."""

    def __init__(self, table: Mapping[str, Any]) -> None:
        self._table = table

    def __getitem__(self, name: str) -> Mapping[str, Any]:
        return MappingProxyType(dict(self._table[name].defaults))

    def __iter__(self) -> Any:
        return iter(self._table)

    def __len__(self) -> int:
        return len(self._table)


#: the registered loss and crop names (live views of :mod:`monai_imbalance.engines.registry`)
LOSS_NAMES: Sequence[str] = _Names(LOSSES)
CROP_NAMES: Sequence[str] = _Names(CROPS)
#: the paper values of each loss's and crop's parameters (from the registry; overridable per name)
DEFAULT_LOSS_PARAMS: Mapping[str, Mapping[str, Any]] = _Defaults(LOSSES)
DEFAULT_CROP_PARAMS: Mapping[str, Mapping[str, Any]] = _Defaults(CROPS)

#: the MAC paper's setups (Sec. 4.4): NC/RC/PC/MAC differ only in sampling; NCW/RCW add a class-weighted loss
PAPER_SETUPS: dict[str, dict[str, str]] = {
    "NC": {"crop": "none", "loss": "ce"},
    "RC": {"crop": "random", "loss": "ce"},
    "PC": {"crop": "probabilistic", "loss": "ce"},
    "MAC": {"crop": "mac", "loss": "ce"},
    "NCW": {"crop": "none", "loss": "balanced_ce"},
    "RCW": {"crop": "random", "loss": "balanced_ce"},
}


def paper_setup(name: str) -> dict[str, str]:
    """``{"crop": ..., "loss": ...}`` of one of the MAC paper's setups (NC, RC, PC, MAC, NCW, RCW; any case)."""
    key = str(name).upper()
    if key not in PAPER_SETUPS:
        raise ValueError(f"unknown setup {name!r}: expected one of {sorted(PAPER_SETUPS)}.")
    return dict(PAPER_SETUPS[key])


def _params(kind: str, name: str, table: Mapping[str, Any], given: Mapping[str, Any] | None) -> dict[str, Any]:
    """Defaults of ``name`` updated by ``given[name]``; ``given`` must be keyed by registered names."""
    given = dict(given or {})
    unknown = sorted(set(map(str, given)) - set(table))
    if unknown:
        raise ValueError(
            f"{kind}_params must be keyed by {kind} name (e.g. {{'{next(iter(table))}': {{...}}}}), got unknown keys "
            f"{unknown}; {kind} names: {list(table)}."
        )
    params = dict(table[name].defaults)
    params.update(dict(given.get(name) or {}))
    return params


class SegmentationSetup:
    """One comparison setup: a loss and a cropping strategy by name, with the transforms and handlers they need.

    Args:
        loss: a registered loss name (:data:`LOSS_NAMES`).
        crop: a registered crop name (:data:`CROP_NAMES`).
        out_channels: the network's output channels: 1 means a sigmoid output with a binary target
            ``(B, 1, ...)``; ``C >= 2`` a softmax output with class-index targets (``to_onehot_y``).
        roi_size: crop size (required unless ``crop="none"``).
        loss_params: ``{loss name: {argument: value}}`` updating the registered defaults of the chosen loss
            (entries of other losses are ignored, so a bundle can hold them all). ``dice`` and ``dice_ce`` also take
            ``present_classes_only: True``: Dice terms of the classes present in each image only
            (:mod:`monai_imbalance.losses.present_class_dice`, the DBCE paper's Synapse setting).
        crop_params: ``{crop name: {argument: value}}`` updating the registered defaults (``mac``: ``rho``,
            ``tau`` or ``prob``, ``stride``, ``max_windows``; ``probabilistic``: ``power``).
        num_samples: crops per image and epoch.
        deep_supervision: the network returns a list of heads in training: wrap the loss in
            :class:`monai_imbalance.losses.DeepSupervisionLoss`, which passes the maps to every head.
        deep_supervision_weight_mode: ``"same"`` (sum of the heads' losses, the DBCE paper), ``"exp"``, ``"two"``.
        deep_supervision_target_mode: how the target of a lower-resolution head is downsampled
            (:func:`monai_imbalance.losses.downsample_label`): ``"max"`` (default: a structure with one pixel in a
            cell keeps the cell), ``"area"`` or ``"nearest"`` (MONAI's resize, which deletes small structures).
            No effect with full-resolution heads (:class:`~monai_imbalance.networks.DeepSupervisionFlexibleUNet`).
        image_key, label_key: keys of the image and the label.
        allow_smaller: crops may be larger than an image (padded) instead of raising.

    Attributes:
        loss: the loss itself; ``loss_function``: what to give the trainer (``loss`` in a ``DeepSupervisionLoss``
            when asked).
        loss_inputs: ``{forward argument: batch key}`` of the maps the loss reads, for
            :class:`~monai_imbalance.engines.SupervisedTrainerWithLossInputs` (empty for losses without maps).
        train_handlers: handlers the loss needs in the trainer (attach all of them, on every rank).
        precompute_transforms, crop_transforms, map_transforms: see the module docstring.
        map_keys: batch keys the map transforms add (and the loss reads).

    Raises:
        ValueError: an unknown loss or crop name (the message lists the valid ones), parameters keyed by an unknown
            name, a crop without ``roi_size``, ``out_channels < 1``.

    Example:
        >>> setup = SegmentationSetup(loss="dbce", crop="mac", out_channels=1, roi_size=(224, 224))
        >>> [type(t).__name__ for t in setup.precompute_transforms + setup.crop_transforms + setup.map_transforms]
        ['MaskAwareWindowsd', 'RandMaskAwareCropd', 'DilationWeightMapd']
        >>> setup.loss_inputs
        {'weight_map': 'label_weight'}
    """

    def __init__(
        self,
        loss: str = "ce",
        crop: str = "none",
        out_channels: int = 1,
        roi_size: Sequence[int] | int | None = None,
        loss_params: Mapping[str, Mapping[str, Any]] | None = None,
        crop_params: Mapping[str, Mapping[str, Any]] | None = None,
        num_samples: int = 1,
        deep_supervision: bool = False,
        deep_supervision_weight_mode: str = "same",
        deep_supervision_target_mode: str = "max",
        image_key: str = "image",
        label_key: str = "label",
        allow_smaller: bool = False,
    ) -> None:
        loss_spec, crop_spec = get_loss_spec(loss), get_crop_spec(crop)
        self.loss_name, self.crop_name = loss_spec.name, crop_spec.name
        if int(out_channels) < 1:
            raise ValueError(f"out_channels must be >= 1, got {out_channels}.")
        if crop_spec.needs_roi and roi_size is None:
            raise ValueError(f"crop={crop!r} needs roi_size.")
        self.out_channels = int(out_channels)
        self.activation = "sigmoid" if self.out_channels == 1 else "softmax"
        self.roi_size = roi_size
        self.num_samples = int(num_samples)
        self.deep_supervision = bool(deep_supervision)
        self.image_key, self.label_key = image_key, label_key
        self.keys = [image_key, label_key]
        self.allow_smaller = bool(allow_smaller)
        self.loss_params = _params("loss", self.loss_name, LOSSES, loss_params)
        self.crop_params = _params("crop", self.crop_name, CROPS, crop_params)

        self.loss, handlers = loss_spec.create(self, dict(self.loss_params))
        self.train_handlers: list[Any] = list(handlers)
        self.map_transforms: list[Any] = []
        self.map_keys: list[str] = []
        self.loss_inputs: dict[str, str] = {}
        for map_spec in loss_spec.maps:
            key = map_spec.key.format(label=label_key)
            self.map_transforms.append(map_spec.transform(self, self.loss, key[len(label_key):]))
            self.map_keys.append(key)
            self.loss_inputs[map_spec.forward_arg] = key
        loss_function = self.loss
        if self.deep_supervision:
            from monai_imbalance.losses.deep_supervision import DeepSupervisionLoss

            loss_function = DeepSupervisionLoss(loss_function, weight_mode=deep_supervision_weight_mode,
                                                target_mode=deep_supervision_target_mode)
        self.loss_function = loss_function
        self.precompute_transforms, self.crop_transforms = crop_spec.build(self, dict(self.crop_params))

    def describe(self) -> dict[str, Any]:
        """What this setup trains with, as plain JSON values: the loss and crop names with their merged parameters,
        and the resolved classes (``module.Class``) with their settings, of the loss function, of every crop and map
        transform and of the handlers the loss needs (:func:`describe_object`)."""
        return {
            "loss": {"name": self.loss_name, "params": _plain(self.loss_params)},
            "crop": {"name": self.crop_name, "params": _plain(self.crop_params)},
            "out_channels": self.out_channels,
            "activation": self.activation,
            "roi_size": _plain(self.roi_size),
            "num_samples": self.num_samples,
            "deep_supervision": self.deep_supervision,
            "loss_function": describe_object(self.loss_function),
            "precompute_transforms": [describe_object(t) for t in self.precompute_transforms],
            "crop_transforms": [describe_object(t) for t in self.crop_transforms],
            "map_transforms": [describe_object(t) for t in self.map_transforms],
            "loss_inputs": dict(self.loss_inputs),
            "train_handlers": [describe_object(h) for h in self.train_handlers],
        }

    def activation_args(self) -> dict[str, Any]:
        """MONAI's activation arguments for the setup's output: sigmoid, or softmax with one-hot targets."""
        return {"sigmoid": True} if self.activation == "sigmoid" else {"softmax": True, "to_onehot_y": True}

    def foreground_args(self) -> dict[str, Any]:
        """Region and one-vs-rest losses count the foreground only (with softmax, drop the background channel)."""
        return {} if self.activation == "sigmoid" else {"include_background": False}

    def __repr__(self) -> str:
        return (
            f"SegmentationSetup(loss={self.loss_name!r} {self.loss_params}, crop={self.crop_name!r} "
            f"{self.crop_params}, out_channels={self.out_channels} ({self.activation}), roi_size={self.roi_size}, "
            f"deep_supervision={self.deep_supervision}, map_keys={self.map_keys})"
        )


_PLAIN = (bool, int, float, str, type(None))
# attributes that hold state, not settings
_SKIP_ATTRS = {"training", "R", "backend", "lazy", "_lazy"}


def _plain(value: Any, depth: int = 0) -> Any:
    """``value`` as JSON values (tuples and arrays as lists, small tensors by value); None when it is not a setting."""
    import numpy as np
    import torch

    if isinstance(value, _PLAIN):
        return value
    if isinstance(value, (np.generic,)):
        return value.item()
    if isinstance(value, (torch.Tensor, np.ndarray)):
        size = value.numel() if isinstance(value, torch.Tensor) else value.size
        return value.tolist() if size <= 64 else f"{type(value).__name__} of shape {list(value.shape)}"
    if depth > 3:
        return None
    if isinstance(value, Mapping):
        return {str(k): _plain(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v, depth + 1) for v in value]
    return None


def _is_transform(value: Any) -> bool:
    from monai.transforms import Transform

    return isinstance(value, Transform)


def describe_object(obj: Any, depth: int = 0) -> dict[str, Any]:
    """``{"class": "module.Class", <setting>: value, ...}`` of a loss, transform or handler: its public attributes
    that are plain values (numbers, strings, tuples, small tensors such as class weights), and the loss or transform
    objects it holds (a compound's parts, a wrapped loss), described the same way down to three levels."""
    import torch

    info: dict[str, Any] = {"class": f"{type(obj).__module__}.{type(obj).__qualname__}"}
    attrs = dict(vars(obj)) if hasattr(obj, "__dict__") else {}
    if isinstance(obj, torch.nn.Module):
        attrs.update(obj._buffers)
        attrs.update(obj._modules)
    for name, value in sorted(attrs.items()):
        if name.startswith("_") or name in _SKIP_ATTRS:
            continue
        plain = _plain(value)
        if plain is not None or value is None:
            info[name] = plain
        elif depth < 3 and (isinstance(value, torch.nn.Module) or _is_transform(value)):
            info[name] = describe_object(value, depth + 1)
    return info
