"""Deprecated: the volumetric evaluation pieces moved out of ``engines`` (issue 12: ``engines/`` keeps what changes
engine behaviour). The slice inferer and the volume files are in :mod:`monai_imbalance.inferers`, the metric, its
summary and reports in :mod:`monai_imbalance.metrics.volumetric`, the label volume writer in
:mod:`monai_imbalance.transforms`.

Kept for one release: importing a name from here warns (``DeprecationWarning``) and gives the object of the new
module. ``dir()`` does not list the moved names, so that scans of the ``monai*`` modules (the bundle parser's
``ComponentLocator``) do not warn.
"""

from __future__ import annotations

from monai_imbalance.utils import moved_names

_MOVED = {
    "VOLUME_METRIC_FIELDS": "monai_imbalance.metrics.volumetric",
    "EMPTY_POLICIES": "monai_imbalance.metrics.volumetric",
    "VOLUME_SUFFIXES": "monai_imbalance.inferers",
    "SliceBySliceInferer": "monai_imbalance.inferers",
    "compute_volume_metrics": "monai_imbalance.metrics.volumetric",
    "VolumetricSegmentationMetric": "monai_imbalance.metrics.volumetric",
    "summarize_volume_metrics": "monai_imbalance.metrics.volumetric",
    "flat_volume_metrics": "monai_imbalance.metrics.volumetric",
    "evaluate_volumes": "monai_imbalance.metrics.volumetric",
    "write_volume_report": "monai_imbalance.metrics.volumetric",
    "spacing_of": "monai_imbalance.metrics.volumetric",
    "volume_items": "monai_imbalance.inferers",
    "volume_format": "monai_imbalance.inferers",
    "SaveLabelVolumeLikeInputd": "monai_imbalance.transforms",
}

__all__ = list(_MOVED)


__getattr__ = moved_names(__name__, _MOVED)
