"""Losses with MONAI's argument conventions (``include_background``, ``to_onehot_y``, ``sigmoid``, ``softmax``,
``other_act``, ``reduction``), 2-D and 3-D, binary and multi-class."""

from __future__ import annotations

from .balanced_ce import BalancedCELoss, DilatedBalancedCELoss, UncertaintyWeightedCELoss
from .boundary import BoundaryLoss, ModifiedBoundaryLoss, RegionBoundaryLoss
from .compound import ComboLoss, ExpLogLoss, HybridFocalLoss
from .deep_supervision import DeepSupervisionLoss
from .dibe import DIBEDisLoss, DIBELoss, DIBERegLoss
from .tversky import FocalTverskyLoss
