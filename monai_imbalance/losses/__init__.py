"""Losses with MONAI's argument conventions (``include_background``, ``to_onehot_y``, ``sigmoid``, ``softmax``,
``other_act``, ``reduction``), 2-D and 3-D, binary and multi-class.

Every loss subclasses :class:`SegmentationLoss` (:mod:`.base`), which holds those arguments; a family adds its own
base: :class:`PixelWeightedCELoss` (a cross entropy weighted by a per-pixel map), :class:`DistanceMapLoss` (signed
distance maps) and :class:`~monai_imbalance.losses.one_vs_rest.OneVsRestLoss` (the DIBE losses and their baselines).
:mod:`.monai_dice` holds MONAI's Dice losses with the same target checks (what the bundles' Dice setups use).
"""

from __future__ import annotations

from .balanced_ce import (
    BalancedCELoss,
    BorderWeightedCELoss,
    DilatedBalancedCELoss,
    PixelWeightedCELoss,
    UncertaintyWeightedCELoss,
)
from .base import SegmentationLoss
from .blob import BlobLoss
from .boundary import BoundaryLoss, DistanceMapLoss, ModifiedBoundaryLoss, RegionBoundaryLoss
from .compound import ComboLoss, ExpLogLoss, HybridFocalLoss
from .deep_supervision import DeepSupervisionLoss, downsample_label
from .dibe import DIBEDisLoss, DIBELoss, DIBERegLoss
from .monai_dice import CheckedDiceCELoss, CheckedDiceLoss, CheckedGeneralizedDiceLoss
from .tversky import FocalTverskyLoss
