"""What MONAI's ``SupervisedTrainer`` / ``SupervisedEvaluator`` cannot do as-is (e.g. passing weight maps to a loss)."""

from __future__ import annotations

# moved (issue 12), exported here for one more release: monai_imbalance.inferers, .metrics.volumetric, .transforms
from monai_imbalance.inferers import SliceBySliceInferer, volume_format, volume_items
from monai_imbalance.metrics.volumetric import VolumetricSegmentationMetric, evaluate_volumes
from monai_imbalance.transforms.writers import SaveLabelVolumeLikeInputd, SaveMaskLikeInputd

# bundles/generic_seg's helpers (engines.generic.load_transforms, check_plan, ...), as a module: its inference_items
# reads a user's datalist, not a dataset bundle's split like datalists.inference_items
from . import generic
from .datalists import DatasetFolderMissing, dataset_sections, image_items, inference_items, require_items_per_rank
from .loss_inputs import LossWithBatchKeys
from .registry import CROPS, LOSSES, CropSpec, LossSpec, MapSpec, register_crop, register_loss
from .setups import CROP_NAMES, LOSS_NAMES, PAPER_SETUPS, SegmentationSetup, describe_object, paper_setup
from .trainer import SupervisedTrainerWithLossInputs
