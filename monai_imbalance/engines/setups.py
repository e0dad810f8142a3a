"""The comparison setups of the papers by name: one loss and one cropping strategy, with what each needs.

Every bundle builds its loss, its crop and the transforms and handlers they need from two names, so that each
setup of the papers is one override away (``--loss dbce``, ``--crop mac``) and ``monai-imbalance bench`` can run a
grid of them through the same bundle:

- ``loss``: one of :data:`LOSS_NAMES` (``ce``, ``balanced_ce``, ``dice``, ``dice_ce``, ``dbce``,
  ``uncertainty_ce``, ``dibe``, ``dibe_dis``, ``dibe_reg``, ``focal_tversky``, ``combo``, ``exp_log``,
  ``hybrid_focal``, ``boundary``, ``modified_boundary``).
- ``crop``: one of :data:`CROP_NAMES`: ``none`` (whole resized image, the MAC paper's NC), ``random`` (uniform
  random crop, RC), ``probabilistic`` (PC: centres drawn by distance to the background), ``mac`` (Mask-Aware
  Cropping).
- The MAC paper's six setups are pairs of them (:data:`PAPER_SETUPS`): NC, RC, PC, MAC with plain cross entropy,
  and NCW / RCW with the class-weighted (``balanced_ce``: inverse class frequency) cross entropy.

:class:`SegmentationSetup` turns the two names into the loss function for ``SupervisedTrainer``, the trainer
handlers the loss needs (:class:`~monai_imbalance.engines.LossWithBatchKeys` for weight and distance maps,
:class:`~monai_imbalance.handlers.BoundaryWeightScheduler` for the boundary loss's schedule) and three groups of
transforms, in pipeline order:

1. ``precompute_transforms``: deterministic, before the first random transform, so ``CacheDataset`` caches them
   (MAC's valid windows, PC's centre distribution; MONAI's ``FgBgToIndicesd`` pattern);
2. ``crop_transforms``: the random crop consuming them;
3. ``map_transforms``: pixel weight maps (DBCE, Bressan) and signed distance maps (boundary losses), placed by the
   bundles *after* the random crop and augmentation: the loss then sees the map of exactly the sample it is
   given (a map moved by a zoom, rotation or elastic warp, or cut by a crop, is no longer the map of the sample:
   its normalisation ``1 / (1 + area)`` and its distances belong to the original image). Computing them there
   costs one distance transform per sample, in the data loader's workers.

Parameters of each loss and crop are given per name (``loss_params={"dbce": {"radius": 20}}``), so a bundle can
carry the paper value of every option and switching the name needs no other override.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

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
]

LOSS_NAMES = (
    "ce",
    "balanced_ce",
    "dice",
    "dice_ce",
    "dbce",
    "uncertainty_ce",
    "dibe",
    "dibe_dis",
    "dibe_reg",
    "focal_tversky",
    "combo",
    "exp_log",
    "hybrid_focal",
    "boundary",
    "modified_boundary",
)
CROP_NAMES = ("none", "random", "probabilistic", "mac")

#: the MAC paper's setups (Sec. 4.4): NC/RC/PC/MAC differ only in sampling; NCW/RCW add a class-weighted loss
PAPER_SETUPS: dict[str, dict[str, str]] = {
    "NC": {"crop": "none", "loss": "ce"},
    "RC": {"crop": "random", "loss": "ce"},
    "PC": {"crop": "probabilistic", "loss": "ce"},
    "MAC": {"crop": "mac", "loss": "ce"},
    "NCW": {"crop": "none", "loss": "balanced_ce"},
    "RCW": {"crop": "random", "loss": "balanced_ce"},
}

#: paper values of each option's parameters (overridable per name)
DEFAULT_LOSS_PARAMS: dict[str, dict[str, Any]] = {
    "dbce": {"radius": 20.0},  # DBCE paper: 20 pixels for polyps and skin lesions, 10 for Synapse
    "uncertainty_ce": {"sigma": 2.0},  # Bressan et al.: 2 best on two of three datasets
    # DIBE paper defaults; paper (alpha, beta) = (0.3, 0.7) is alpha=0.7 (FP weight), beta=0.3 (FN weight) here
    "dibe": {"theta": 0.5, "lambda_": 0.75, "gamma_dis": 2.0, "gamma_reg": 1.5, "alpha": 0.7, "beta": 0.3},
    "dibe_dis": {"lambda_": 0.75, "gamma": 2.0, "alpha": 0.7, "beta": 0.3},
    "dibe_reg": {"gamma": 1.5, "alpha": 0.7, "beta": 0.3},
    "focal_tversky": {"alpha": 0.7, "beta": 0.3, "gamma": 4.0 / 3.0},
    # Kervadec et al.: region loss + w * boundary loss, w from 0.01 raised by 0.01 every epoch
    "boundary": {"initial_weight": 0.01, "step": 0.01},
}
DEFAULT_CROP_PARAMS: dict[str, dict[str, Any]] = {
    "mac": {"rho": 0.25, "tau": 5, "stride": 16},  # the MAC paper's best Kvasir-SEG setting
    "probabilistic": {"power": 1.0},
    "random": {},
    "none": {},
}

#: batch key of the pixel weight map (DBCE, Bressan) and of the signed distance maps (boundary losses)
WEIGHT_MAP_KEY = "{label}_weight"
DISTANCE_MAP_KEY = "{label}_sdm"

_PIXEL_CE = ("ce", "balanced_ce", "dbce", "uncertainty_ce")


def paper_setup(name: str) -> dict[str, str]:
    """``{"crop": ..., "loss": ...}`` of one of the MAC paper's setups (NC, RC, PC, MAC, NCW, RCW; any case)."""
    key = str(name).upper()
    if key not in PAPER_SETUPS:
        raise ValueError(f"unknown setup {name!r}: expected one of {sorted(PAPER_SETUPS)}.")
    return dict(PAPER_SETUPS[key])


def _params(kind: str, name: str, names: Sequence[str], given: Mapping[str, Any] | None,
            defaults: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Defaults of ``name`` updated by ``given[name]``; ``given`` must be keyed by option names."""
    given = dict(given or {})
    unknown = sorted(set(map(str, given)) - set(names))
    if unknown:
        raise ValueError(
            f"{kind}_params must be keyed by {kind} name (e.g. {{'{names[0]}': {{...}}}}), got unknown keys {unknown}; "
            f"{kind} names: {list(names)}."
        )
    params = dict(defaults.get(name, {}))
    params.update(dict(given.get(name) or {}))
    return params


class SegmentationSetup:
    """One comparison setup: a loss and a cropping strategy by name, with the transforms and handlers they need.

    Args:
        loss: one of :data:`LOSS_NAMES`.
        crop: one of :data:`CROP_NAMES`.
        out_channels: the network's output channels: 1 means a sigmoid output with a binary target
            ``(B, 1, ...)``; ``C >= 2`` a softmax output with class-index targets (``to_onehot_y``).
        roi_size: crop size (required unless ``crop="none"``).
        loss_params: ``{loss name: {argument: value}}`` updating :data:`DEFAULT_LOSS_PARAMS` for the chosen loss
            (entries of other losses are ignored, so a bundle can hold them all). ``dice`` and ``dice_ce`` also take
            ``present_classes_only: True``: Dice terms of the classes present in each image only
            (:mod:`monai_imbalance.losses.present_class_dice`, the DBCE paper's Synapse setting).
        crop_params: ``{crop name: {argument: value}}`` updating :data:`DEFAULT_CROP_PARAMS` (``mac``: ``rho``,
            ``tau`` or ``prob``, ``stride``, ``max_windows``; ``probabilistic``: ``power``).
        num_samples: crops per image and epoch.
        deep_supervision: the network returns a list of heads in training: wrap the loss in
            :class:`monai_imbalance.losses.DeepSupervisionLoss`, which passes the maps to every head.
        deep_supervision_weight_mode: ``"same"`` (sum of the heads' losses, the DBCE paper), ``"exp"``, ``"two"``.
        image_key, label_key: keys of the image and the label.
        allow_smaller: crops may be larger than an image (padded) instead of raising.

    Attributes:
        loss_function: the loss to give ``SupervisedTrainer`` (wrapped in ``LossWithBatchKeys`` when it reads maps
            from the batch).
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
        image_key: str = "image",
        label_key: str = "label",
        allow_smaller: bool = False,
    ) -> None:
        self.loss_name = str(loss).lower()
        self.crop_name = str(crop).lower()
        if self.loss_name not in LOSS_NAMES:
            raise ValueError(f"unknown loss {loss!r}: expected one of {list(LOSS_NAMES)}.")
        if self.crop_name not in CROP_NAMES:
            raise ValueError(f"unknown crop {crop!r}: expected one of {list(CROP_NAMES)}.")
        if int(out_channels) < 1:
            raise ValueError(f"out_channels must be >= 1, got {out_channels}.")
        if self.crop_name != "none" and roi_size is None:
            raise ValueError(f"crop={crop!r} needs roi_size.")
        self.out_channels = int(out_channels)
        self.activation = "sigmoid" if self.out_channels == 1 else "softmax"
        self.roi_size = roi_size
        self.num_samples = int(num_samples)
        self.deep_supervision = bool(deep_supervision)
        self.image_key, self.label_key = image_key, label_key
        self.allow_smaller = bool(allow_smaller)
        self.loss_params = _params("loss", self.loss_name, LOSS_NAMES, loss_params, DEFAULT_LOSS_PARAMS)
        self.crop_params = _params("crop", self.crop_name, CROP_NAMES, crop_params, DEFAULT_CROP_PARAMS)

        self.map_transforms: list[Any] = []
        self.map_keys: list[str] = []
        self.train_handlers: list[Any] = []
        extra_keys: dict[str, str] = {}
        self.loss = self._build_loss(extra_keys)
        loss_function = self.loss
        if extra_keys:
            from monai_imbalance.engines.loss_inputs import LossWithBatchKeys

            # inside the deep supervision wrapper: LossWithBatchKeys reads the device of a tensor input, and every
            # head of DeepSupervisionFlexibleUNet has the label's (and so the maps') full resolution
            loss_function = LossWithBatchKeys(loss_function, extra_keys=extra_keys)
            self.train_handlers.insert(0, loss_function)
        if self.deep_supervision:
            from monai_imbalance.losses.deep_supervision import DeepSupervisionLoss

            loss_function = DeepSupervisionLoss(loss_function, weight_mode=deep_supervision_weight_mode)
        self.loss_function = loss_function
        self.precompute_transforms, self.crop_transforms = self._build_crop()

    # ------------------------------------------------------------------------------------------------ losses

    def _activation_args(self) -> dict[str, Any]:
        return {"sigmoid": True} if self.activation == "sigmoid" else {"softmax": True, "to_onehot_y": True}

    def _foreground_args(self) -> dict[str, Any]:
        """Region and one-vs-rest losses count the foreground only (with softmax, drop the background channel)."""
        return {} if self.activation == "sigmoid" else {"include_background": False}

    def _build_loss(self, extra_keys: dict[str, str]) -> Any:
        import monai.losses as monai_losses

        import monai_imbalance.losses as ours
        from monai_imbalance.transforms import weights as maps

        name, p = self.loss_name, dict(self.loss_params)
        act = self._activation_args()
        weight_key = WEIGHT_MAP_KEY.format(label=self.label_key)
        sdm_key = DISTANCE_MAP_KEY.format(label=self.label_key)
        if name == "ce":
            # plain cross entropy: class weights 1 (mean over pixels); 2 classes for a one-channel sigmoid output
            return ours.BalancedCELoss(**{**act, "weight": [1.0] * max(self.out_channels, 2), **p})
        if name == "balanced_ce":
            return ours.BalancedCELoss(**{**act, **p})
        if name in ("dice", "dice_ce"):
            # present_classes_only: Dice terms of the classes present in each image only (DBCE paper, Synapse)
            if p.pop("present_classes_only", False):
                from monai_imbalance.losses import present_class_dice as present

                cls = present.PresentClassDiceLoss if name == "dice" else present.PresentClassDiceCELoss
            else:
                cls = monai_losses.DiceLoss if name == "dice" else monai_losses.DiceCELoss
            return cls(**{**act, **self._foreground_args(), **p})
        if name == "dbce":
            loss = ours.DilatedBalancedCELoss(**{**act, **p})
            self._add_map(maps.DilationWeightMapd(self.label_key, radius=loss.radius, spacing=loss.spacing,
                                                  postfix=weight_key[len(self.label_key):]), weight_key)
            extra_keys["weight_map"] = weight_key
            return loss
        if name == "uncertainty_ce":
            loss = ours.UncertaintyWeightedCELoss(**{**act, **p})
            class_weights = None if loss.class_weights is None else loss.class_weights.tolist()
            self._add_map(maps.UncertaintyWeightMapd(self.label_key, sigma=loss.sigma, class_weights=class_weights,
                                                     edge_mode=loss.edge_mode, spacing=loss.spacing,
                                                     postfix=weight_key[len(self.label_key):]), weight_key)
            extra_keys["weight_map"] = weight_key
            return loss
        one_vs_rest = {
            "dibe": "DIBELoss",
            "dibe_dis": "DIBEDisLoss",
            "dibe_reg": "DIBERegLoss",
            "focal_tversky": "FocalTverskyLoss",
            "combo": "ComboLoss",
            "exp_log": "ExpLogLoss",
            "hybrid_focal": "HybridFocalLoss",
        }
        if name in one_vs_rest:
            cls = getattr(ours, one_vs_rest[name], None)
            if cls is None:
                raise ImportError(f"loss {name!r} needs monai_imbalance.losses.{one_vs_rest[name]}, not available.")
            return cls(**{**act, **self._foreground_args(), **p})
        # boundary losses: signed distance maps of the sample, one channel per output channel
        num_classes = None if self.activation == "sigmoid" else self.out_channels
        spacing = p.get("spacing")
        self._add_map(maps.SignedDistanceMapd(self.label_key, num_classes=num_classes, spacing=spacing,
                                              postfix=sdm_key[len(self.label_key):]), sdm_key)
        extra_keys["dist_map"] = sdm_key
        if name == "modified_boundary":
            return ours.ModifiedBoundaryLoss(**{**act, **p})
        # "boundary": Kervadec's recipe, region loss + w * boundary loss with w raised every epoch
        schedule = {k: p.pop(k) for k in ("initial_weight", "step", "max_weight") if k in p}
        region = p.pop("region", "dice")
        region_cls = {"dice": monai_losses.DiceLoss, "generalized_dice": monai_losses.GeneralizedDiceLoss}
        if region not in region_cls:
            raise ValueError(f"boundary: region must be one of {sorted(region_cls)}, got {region!r}.")
        rebalance = bool(p.pop("rebalance", False))
        loss = ours.RegionBoundaryLoss(
            region_cls[region](**{**act, **self._foreground_args()}),
            ours.BoundaryLoss(**{**act, "include_background": False, **p}),
            boundary_weight=schedule.get("initial_weight", 0.01),
            rebalance=rebalance,
        )
        from monai_imbalance.handlers.boundary_schedule import BoundaryWeightScheduler

        self.train_handlers.append(BoundaryWeightScheduler(loss, **schedule))
        return loss

    def _add_map(self, transform: Any, key: str) -> None:
        self.map_transforms.append(transform)
        self.map_keys.append(key)

    # ------------------------------------------------------------------------------------------------- crops

    def _build_crop(self) -> tuple[list[Any], list[Any]]:
        name, p = self.crop_name, dict(self.crop_params)
        keys = [self.image_key, self.label_key]
        if name == "none":
            return [], []
        if name == "random":
            from monai.transforms import RandSpatialCropSamplesd

            return [], [RandSpatialCropSamplesd(keys, roi_size=self.roi_size, num_samples=self.num_samples,
                                                random_size=False, **p)]
        from monai_imbalance.transforms import crop as crops

        if name == "probabilistic":
            power = p.pop("power", 1.0)
            centres = crops.ProbabilisticCropCentresd(self.label_key, power=power)
            centres_key = self.label_key + centres.centres_postfix
            cropper = crops.RandProbabilisticCropd(keys, self.label_key, self.roi_size, power=power,
                                                   num_samples=self.num_samples, centres_key=centres_key,
                                                   allow_smaller=self.allow_smaller, **p)
            return [centres], [cropper]
        # mac
        rho, stride = p.pop("rho", 0.25), p.pop("stride", 16)
        max_windows, classes = p.pop("max_windows", None), p.pop("classes", None)
        windows = crops.MaskAwareWindowsd(self.label_key, self.roi_size, rho=rho, stride=stride,
                                          max_windows=max_windows, classes=classes,
                                          allow_smaller=self.allow_smaller)
        windows_key = self.label_key + windows.windows_postfix
        if "prob" in p and p.get("prob") is not None:
            p.pop("tau", None)
        cropper = crops.RandMaskAwareCropd(keys, self.label_key, self.roi_size, rho=rho, stride=stride,
                                           num_samples=self.num_samples, windows_key=windows_key, classes=classes,
                                           allow_smaller=self.allow_smaller, **p)
        return [windows], [cropper]

    def __repr__(self) -> str:
        return (
            f"SegmentationSetup(loss={self.loss_name!r} {self.loss_params}, crop={self.crop_name!r} "
            f"{self.crop_params}, out_channels={self.out_channels} ({self.activation}), roi_size={self.roi_size}, "
            f"deep_supervision={self.deep_supervision}, map_keys={self.map_keys})"
        )
