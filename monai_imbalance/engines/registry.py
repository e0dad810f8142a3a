"""The registries of the comparison setups: which losses and which crops a setup can be built from, by name.

One entry per loss (:class:`LossSpec`) and per crop (:class:`CropSpec`), read by
:class:`~monai_imbalance.engines.SegmentationSetup` (the bundles), ``monai-imbalance bench`` and ``tune`` (valid
names, defaults, tunable losses) and the docs. Adding a loss is one module in :mod:`monai_imbalance.losses` plus
one :func:`register_loss` call (the built-in entries are at the end of this file; ``CONTRIBUTING.md`` has a worked
example). A spec says:

- how the loss is built: its class (called with MONAI's activation arguments for the setup's output, the spec's
  defaults and the user's ``loss_params``), or a ``build`` function for a recipe (a region loss plus a scheduled
  boundary term, a class chosen by an option);
- which per-pixel maps it reads (:class:`MapSpec`): the transform that computes each map from the label, the batch
  key it is stored under and the ``forward`` argument it is passed as; the trainer
  (:class:`~monai_imbalance.engines.SupervisedTrainerWithLossInputs`) passes them, so a config cannot forget half of
  the wiring;
- whether a softmax setup drops the background channel (region and one-vs-rest losses count the foreground only).

Example (registering a loss of one's own)::

    from monai_imbalance.engines.registry import LossSpec, MapSpec, register_loss

    register_loss(LossSpec("my_dbce", "my_package.losses:MyLoss", defaults={"radius": 10.0},
                           maps=(MapSpec.weight_map(lambda setup, loss, postfix: DilationWeightMapd(
                               setup.label_key, radius=loss.radius, postfix=postfix)),)))
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .setups import SegmentationSetup

__all__ = [
    "MapSpec",
    "LossSpec",
    "CropSpec",
    "LOSSES",
    "CROPS",
    "register_loss",
    "register_crop",
    "get_loss_spec",
    "get_crop_spec",
    "resolve_target",
    "WEIGHT_MAP_KEY",
    "DISTANCE_MAP_KEY",
    "COMPONENTS_KEY",
    "BLOB_BASE_LOSSES",
    "register_blob_loss",
]

#: batch key of the pixel weight map (DBCE, Bressan, U-Net border), of the signed distance maps (boundary losses)
#: and of the connected-component ids (blob losses)
WEIGHT_MAP_KEY = "{label}_weight"
DISTANCE_MAP_KEY = "{label}_sdm"
COMPONENTS_KEY = "{label}_components"


def resolve_target(target: str | Callable[..., Any]) -> Callable[..., Any]:
    """A class or function given as itself or as ``"package.module:Name"`` (imported on first use, so the
    registry costs no import at start-up)."""
    if not isinstance(target, str):
        return target
    module, _, name = target.partition(":")
    if not name:
        raise ValueError(f"target {target!r} must be 'package.module:Name'.")
    return getattr(importlib.import_module(module), name)


@dataclass(frozen=True)
class MapSpec:
    """A per-pixel map a loss reads: computed from the label by a transform, stored in the batch, passed to
    ``forward``.

    Args:
        forward_arg: the loss's ``forward`` argument (``"weight_map"``, ``"dist_map"``).
        key: the batch key, a format string of the label key (``"{label}_weight"``).
        transform: ``transform(setup, loss, postfix) -> MapTransform`` writing ``setup.label_key + postfix``; it
            reads the map's parameters from the built loss (its radius, sigma, spacing), so they are stated once.
    """

    forward_arg: str
    key: str
    transform: Callable[[SegmentationSetup, Any, str], Any]

    @classmethod
    def weight_map(cls, transform: Callable[[SegmentationSetup, Any, str], Any]) -> MapSpec:
        return cls("weight_map", WEIGHT_MAP_KEY, transform)

    @classmethod
    def distance_map(cls, transform: Callable[[SegmentationSetup, Any, str], Any]) -> MapSpec:
        return cls("dist_map", DISTANCE_MAP_KEY, transform)

    @classmethod
    def components(cls, transform: Callable[[SegmentationSetup, Any, str], Any]) -> MapSpec:
        return cls("components", COMPONENTS_KEY, transform)


@dataclass(frozen=True)
class LossSpec:
    """One loss a setup can be built from.

    Args:
        name: the setup name (``--loss <name>`` in the bundles).
        target: the loss class, or ``"package.module:Class"``; called as
            ``target(<activation arguments>, **defaults, **loss_params)``.
        defaults: the paper values of its arguments (a user's ``loss_params[name]`` updates them).
        foreground_only: with a softmax output, pass ``include_background=False`` (region and one-vs-rest losses).
        maps: the per-pixel maps the loss reads (:class:`MapSpec`).
        build: ``build(setup, params) -> (loss, handlers)`` instead of calling ``target`` (recipes; ``target``
            is then only documentation and may be None).
        description: one line for the docs and ``--help``.
    """

    name: str
    target: str | Callable[..., Any] | None
    defaults: Mapping[str, Any] = field(default_factory=dict)
    foreground_only: bool = False
    maps: tuple[MapSpec, ...] = ()
    build: Callable[[SegmentationSetup, dict[str, Any]], tuple[Any, list[Any]]] | None = None
    description: str = ""

    @property
    def tunable(self) -> bool:
        """Has a false-positive weight ``alpha`` (and ``beta``) that OII-guided search can tune."""
        return "alpha" in self.defaults

    def create(self, setup: SegmentationSetup, params: Mapping[str, Any]) -> tuple[Any, list[Any]]:
        """The loss (and the trainer handlers it needs) for ``setup`` with ``params`` (defaults already merged)."""
        if self.build is not None:
            return self.build(setup, dict(params))
        kwargs = {**setup.activation_args(), **(setup.foreground_args() if self.foreground_only else {}), **params}
        return resolve_target(self.target)(**kwargs), []


@dataclass(frozen=True)
class CropSpec:
    """One cropping strategy: ``build(setup, params) -> (precompute_transforms, crop_transforms)``."""

    name: str
    build: Callable[[SegmentationSetup, dict[str, Any]], tuple[list[Any], list[Any]]]
    defaults: Mapping[str, Any] = field(default_factory=dict)
    needs_roi: bool = True
    description: str = ""


LOSSES: dict[str, LossSpec] = {}
CROPS: dict[str, CropSpec] = {}


def _register(table: dict[str, Any], spec: Any, kind: str, replace: bool) -> Any:
    name = str(spec.name).lower()
    if not name or name != spec.name:
        raise ValueError(f"{kind} names are lower case and not empty, got {spec.name!r}.")
    if name in table and not replace:
        raise ValueError(f"a {kind} named {name!r} is registered already (pass replace=True to replace it).")
    table[name] = spec
    return spec


def register_loss(spec: LossSpec, replace: bool = False) -> LossSpec:
    """Add a loss to :data:`LOSSES`; returns ``spec``."""
    return _register(LOSSES, spec, "loss", replace)


def register_crop(spec: CropSpec, replace: bool = False) -> CropSpec:
    """Add a crop to :data:`CROPS`; returns ``spec``."""
    return _register(CROPS, spec, "crop", replace)


def _get(table: Mapping[str, Any], name: str, kind: str) -> Any:
    key = str(name).lower()
    if key not in table:
        raise ValueError(f"unknown {kind} {name!r}: expected one of {list(table)}.")
    return table[key]


def get_loss_spec(name: str) -> LossSpec:
    """The :class:`LossSpec` of ``name`` (any case); ``ValueError`` listing the valid names otherwise."""
    return _get(LOSSES, name, "loss")


def get_crop_spec(name: str) -> CropSpec:
    """The :class:`CropSpec` of ``name`` (any case); ``ValueError`` listing the valid names otherwise."""
    return _get(CROPS, name, "crop")


# ----------------------------------------------------------------------------------------------- built-in losses


def _ce(setup: SegmentationSetup, params: dict[str, Any]) -> tuple[Any, list[Any]]:
    from monai_imbalance.losses import BalancedCELoss

    # plain cross entropy: class weights 1 (mean over pixels); 2 classes for a one-channel sigmoid output
    weight = [1.0] * max(setup.out_channels, 2)
    return BalancedCELoss(**{**setup.activation_args(), "weight": weight, **params}), []


def _dice(ce: bool) -> Callable[[SegmentationSetup, dict[str, Any]], tuple[Any, list[Any]]]:
    def build(setup: SegmentationSetup, params: dict[str, Any]) -> tuple[Any, list[Any]]:
        from monai_imbalance.losses import monai_dice
        from monai_imbalance.losses import present_class_dice as present

        # present_classes_only: Dice terms of the classes present in each image only (DBCE paper, Synapse)
        if params.pop("present_classes_only", False):
            cls = present.PresentClassDiceCELoss if ce else present.PresentClassDiceLoss
        else:
            # MONAI's losses with the package's target checks (labels out of range or not whole, shapes)
            cls = monai_dice.CheckedDiceCELoss if ce else monai_dice.CheckedDiceLoss
        return cls(**{**setup.activation_args(), **setup.foreground_args(), **params}), []

    return build


def _region_boundary(setup: SegmentationSetup, params: dict[str, Any]) -> tuple[Any, list[Any]]:
    """Kervadec's recipe: a region loss plus ``w`` times the boundary loss (``rebalance``: ``(1 - w)`` times the
    region loss), ``w`` raised every epoch by :class:`~monai_imbalance.handlers.BoundaryWeightScheduler`."""
    from monai_imbalance.handlers.boundary_schedule import BoundaryWeightScheduler
    from monai_imbalance.losses import BoundaryLoss, RegionBoundaryLoss
    from monai_imbalance.losses.monai_dice import CheckedDiceLoss, CheckedGeneralizedDiceLoss

    schedule = {k: params.pop(k) for k in ("initial_weight", "step", "max_weight") if k in params}
    region = params.pop("region", "dice")
    rebalance = bool(params.pop("rebalance", False))
    # MONAI's region losses with the package's target checks, run before the region loss reads the target
    region_cls = {"dice": CheckedDiceLoss, "generalized_dice": CheckedGeneralizedDiceLoss}
    if region not in region_cls:
        raise ValueError(f"boundary: region must be one of {sorted(region_cls)}, got {region!r}.")
    act = setup.activation_args()
    loss = RegionBoundaryLoss(
        region_cls[region](**{**act, **setup.foreground_args()}),
        BoundaryLoss(**{**act, "include_background": False, **params}),
        boundary_weight=schedule.get("initial_weight", 0.01),
        rebalance=rebalance,
    )
    return loss, [BoundaryWeightScheduler(loss, **schedule)]


def _dilation_map(setup: SegmentationSetup, loss: Any, postfix: str) -> Any:
    from monai_imbalance.transforms import DilationWeightMapd

    return DilationWeightMapd(setup.label_key, radius=loss.radius, spacing=loss.spacing, postfix=postfix)


def _uncertainty_map(setup: SegmentationSetup, loss: Any, postfix: str) -> Any:
    from monai_imbalance.transforms import UncertaintyWeightMapd

    class_weights = None if loss.class_weights is None else loss.class_weights.tolist()
    return UncertaintyWeightMapd(setup.label_key, sigma=loss.sigma, class_weights=class_weights,
                                 edge_mode=loss.edge_mode, spacing=loss.spacing, postfix=postfix)


def _distance_map(setup: SegmentationSetup, loss: Any, postfix: str) -> Any:
    from monai_imbalance.transforms import SignedDistanceMapd

    # one map per output channel: every class with softmax, the foreground alone with a sigmoid output
    boundary = getattr(loss, "boundary_loss", loss)
    num_classes = None if setup.activation == "sigmoid" else setup.out_channels
    return SignedDistanceMapd(setup.label_key, num_classes=num_classes, spacing=boundary.spacing, postfix=postfix)


def _border_map(setup: SegmentationSetup, loss: Any, postfix: str) -> Any:
    from monai_imbalance.transforms import BorderWeightMapd

    return BorderWeightMapd(setup.label_key, w0=loss.w0, sigma=loss.sigma, class_weights=loss.class_weights,
                            spacing=loss.spacing, connectivity=loss.connectivity, postfix=postfix)


_ALPHA = {"alpha": 0.7, "beta": 0.3}  # DIBE paper (alpha, beta) = (0.3, 0.7) is alpha=0.7 (FP), beta=0.3 (FN) here

for _spec in (
    LossSpec("ce", "monai_imbalance.losses:BalancedCELoss", build=_ce,
             description="cross entropy (class weights 1)"),
    LossSpec("balanced_ce", "monai_imbalance.losses:BalancedCELoss",
             description="cross entropy with inverse class-frequency weights (the MAC paper's NCW/RCW)"),
    LossSpec("dice", "monai_imbalance.losses.monai_dice:CheckedDiceLoss", build=_dice(ce=False),
             foreground_only=True, description="MONAI's Dice loss on the foreground classes"),
    LossSpec("dice_ce", "monai_imbalance.losses.monai_dice:CheckedDiceCELoss", build=_dice(ce=True),
             foreground_only=True,
             description="MONAI's Dice (foreground) + cross entropy"),
    LossSpec("dbce", "monai_imbalance.losses:DilatedBalancedCELoss", defaults={"radius": 20.0},
             maps=(MapSpec.weight_map(_dilation_map),),
             description="dilated balanced cross entropy (DBCE paper; radius 20 px for polyps and lesions)"),
    LossSpec("uncertainty_ce", "monai_imbalance.losses:UncertaintyWeightedCELoss", defaults={"sigma": 2.0},
             maps=(MapSpec.weight_map(_uncertainty_map),),
             description="labelling uncertainty x class frequency weighted CE (Bressan et al.; sigma 2)"),
    LossSpec("border_ce", "monai_imbalance.losses:BorderWeightedCELoss", defaults={"w0": 10.0, "sigma": 5.0},
             maps=(MapSpec.weight_map(_border_map),),
             description="cross entropy weighted by the U-Net border map (Ronneberger et al.; w0 10, sigma 5 px)"),
    LossSpec("dibe", "monai_imbalance.losses:DIBELoss", foreground_only=True,
             defaults={"theta": 0.5, "lambda_": 0.75, "gamma_dis": 2.0, "gamma_reg": 1.5, **_ALPHA},
             description="DIBE compound loss (DIBE paper defaults)"),
    LossSpec("dibe_dis", "monai_imbalance.losses:DIBEDisLoss", foreground_only=True,
             defaults={"lambda_": 0.75, "gamma": 2.0, **_ALPHA}, description="DIBE distribution loss"),
    LossSpec("dibe_reg", "monai_imbalance.losses:DIBERegLoss", foreground_only=True,
             defaults={"gamma": 1.5, **_ALPHA}, description="DIBE region loss"),
    LossSpec("focal_tversky", "monai_imbalance.losses:FocalTverskyLoss", foreground_only=True,
             defaults={**_ALPHA, "gamma": 4.0 / 3.0}, description="Focal Tversky loss (exponent 0.75)"),
    LossSpec("combo", "monai_imbalance.losses:ComboLoss", foreground_only=True, description="Combo loss"),
    LossSpec("exp_log", "monai_imbalance.losses:ExpLogLoss", foreground_only=True,
             description="exponential-logarithmic loss"),
    LossSpec("hybrid_focal", "monai_imbalance.losses:HybridFocalLoss", foreground_only=True,
             description="Hybrid Focal loss"),
    # Kervadec et al. (MIDL 2019): Dice + w * boundary loss, w from 0.01 raised by 0.01 every epoch
    LossSpec("boundary", "monai_imbalance.losses:RegionBoundaryLoss", build=_region_boundary,
             defaults={"initial_weight": 0.01, "step": 0.01}, maps=(MapSpec.distance_map(_distance_map),),
             description="Kervadec's region + scheduled boundary loss"),
    LossSpec("modified_boundary", "monai_imbalance.losses:ModifiedBoundaryLoss",
             maps=(MapSpec.distance_map(_distance_map),), description="Wu's modified (ratio) boundary loss"),
):
    register_loss(_spec)


# ------------------------------------------------------------------------------------------------ blob losses

#: the registered losses that have a ``blob_<name>`` form (Kofler et al.): region and one-vs-rest losses, whose
#: value per class can be computed on one masked component; not the cross entropies (softmax CE needs every class)
#: nor the map-reading losses (DBCE, boundary: their maps belong to the whole image)
BLOB_BASE_LOSSES = ("dice", "dice_ce", "dibe", "dibe_dis", "dibe_reg", "focal_tversky", "combo", "exp_log",
                    "hybrid_focal")


def _blob(base: str) -> Callable[[SegmentationSetup, dict[str, Any]], tuple[Any, list[Any]]]:
    def build(setup: SegmentationSetup, params: dict[str, Any]) -> tuple[Any, list[Any]]:
        from monai_imbalance.losses import BlobLoss

        # blob_alpha / blob_beta: BlobLoss's alpha and beta (the base loss may have its own alpha and beta)
        blob_args = {k: params.pop(f"blob_{k}") for k in ("alpha", "beta", "connectivity") if f"blob_{k}" in params}
        # the base loss's own parameters: its registered defaults, updated by those given for blob_<base>
        spec = get_loss_spec(base)
        loss, handlers = spec.create(setup, {**spec.defaults, **params})
        if all(hasattr(loss, a) for a in ("sigmoid", "softmax", "to_onehot_y")):
            return BlobLoss(loss, **blob_args), list(handlers)
        # a compound with a Dice part (dice_ce): the blob term on the Dice part, the compound as the global term
        return BlobLoss(loss.dice, global_loss=loss, **blob_args), list(handlers)

    return build


def _components_map(setup: SegmentationSetup, loss: Any, postfix: str) -> Any:
    from monai_imbalance.transforms import ConnectedComponentsd

    return ConnectedComponentsd(setup.label_key, connectivity=loss.connectivity, postfix=postfix)


def register_blob_loss(base: str, replace: bool = False) -> LossSpec:
    """Register ``blob_<base>``: :class:`~monai_imbalance.losses.BlobLoss` around the registered loss ``base``,
    with the paper's weights (``blob_alpha = 2`` on the global term, ``blob_beta = 1`` on the blob term; also
    ``blob_connectivity``) and the base's defaults, which the same ``loss_params`` entry updates; the component ids
    come from
    :class:`~monai_imbalance.transforms.ConnectedComponentsd` among the setup's map transforms (after the crop: the
    components of the crop the loss sees)."""
    spec = get_loss_spec(base)
    return register_loss(
        LossSpec(f"blob_{spec.name}", "monai_imbalance.losses:BlobLoss", build=_blob(spec.name),
                 defaults={"blob_alpha": 2.0, "blob_beta": 1.0, **spec.defaults}, foreground_only=spec.foreground_only,
                 maps=spec.maps + (MapSpec.components(_components_map),),
                 description=f"blob loss (Kofler et al.; alpha 2, beta 1) around {spec.name}"),
        replace=replace,
    )


for _base in BLOB_BASE_LOSSES:
    register_blob_loss(_base)


# ------------------------------------------------------------------------------------------------ built-in crops


def _no_crop(setup: SegmentationSetup, params: dict[str, Any]) -> tuple[list[Any], list[Any]]:
    return [], []


def _random_crop(setup: SegmentationSetup, params: dict[str, Any]) -> tuple[list[Any], list[Any]]:
    from monai.transforms import RandSpatialCropSamplesd

    return [], [RandSpatialCropSamplesd(setup.keys, roi_size=setup.roi_size, num_samples=setup.num_samples,
                                        random_size=False, **params)]


def _probabilistic_crop(setup: SegmentationSetup, params: dict[str, Any]) -> tuple[list[Any], list[Any]]:
    from monai_imbalance.transforms import ProbabilisticCropCentersd, RandProbabilisticCropd

    centers = ProbabilisticCropCentersd(setup.label_key, power=params.pop("power"))
    cropper = RandProbabilisticCropd(setup.keys, setup.label_key, setup.roi_size, num_samples=setup.num_samples,
                                     centers_key=setup.label_key + centers.centers_postfix,
                                     allow_smaller=setup.allow_smaller, **params)
    return [centers], [cropper]


def _mac_crop(setup: SegmentationSetup, params: dict[str, Any]) -> tuple[list[Any], list[Any]]:
    """The windows record states the geometry (roi, rho, stride, classes); the crop reads it from there."""
    from monai_imbalance.transforms import MaskAwareWindowsd, RandMaskAwareCropd

    windows = MaskAwareWindowsd(setup.label_key, setup.roi_size, rho=params.pop("rho"), stride=params.pop("stride"),
                                max_windows=params.pop("max_windows", None), classes=params.pop("classes", None),
                                allow_smaller=setup.allow_smaller)
    if params.get("prob") is not None:
        params.pop("tau", None)
    cropper = RandMaskAwareCropd(setup.keys, setup.label_key, num_samples=setup.num_samples,
                                 windows_key=setup.label_key + windows.windows_postfix, **params)
    return [windows], [cropper]


def _crop_defaults(name: str) -> dict[str, Any]:
    from monai_imbalance.transforms import crop

    return dict(getattr(crop, name))


for _crop in (
    CropSpec("none", _no_crop, needs_roi=False, description="the whole (resized) image: the MAC paper's NC"),
    CropSpec("random", _random_crop, description="uniform random crop (RC)"),
    CropSpec("probabilistic", _probabilistic_crop, defaults=_crop_defaults("PC_DEFAULTS"),
             description="crop centres drawn by distance to the background (PC)"),
    # the MAC paper's best Kvasir-SEG setting (rho 0.25, tau 5, stride 16): one table, monai_imbalance.transforms
    CropSpec("mac", _mac_crop, defaults=_crop_defaults("MAC_DEFAULTS"), description="Mask-Aware Cropping"),
):
    register_crop(_crop)

