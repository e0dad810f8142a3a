"""What MONAI's ``SupervisedTrainer`` / ``SupervisedEvaluator`` cannot do as-is (e.g. passing weight maps to a loss)."""

from __future__ import annotations

from .datalists import dataset_sections, image_items, require_items_per_rank
from .loss_inputs import LossWithBatchKeys
from .setups import CROP_NAMES, LOSS_NAMES, PAPER_SETUPS, SegmentationSetup, paper_setup
from .volumetric import (
    SaveLabelVolumeLikeInputd,
    SliceBySliceInferer,
    VolumetricSegmentationMetric,
    evaluate_volumes,
    volume_format,
    volume_items,
)
from .writers import SaveMaskLikeInputd
