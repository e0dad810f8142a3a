"""Metrics: functional ``compute_*`` plus MONAI ``CumulativeIterationMetric`` classes."""

from __future__ import annotations

from .confusion import CONFUSION_FIELDS, ConfusionCountsMetric, compute_confusion_counts
from .objects import (
    ASSIGNMENTS,
    CASE_FIELDS,
    MATCH_RULES,
    OBJECT_FIELDS,
    OBJECT_SUMMARY_FIELDS,
    ObjectMetric,
    compute_object_metrics,
    flat_object_metrics,
    match_objects,
    summarize_object_rows,
    write_object_report,
)
from .oii import OIIResult, OutputImbalanceIndexMetric, compute_oii, compute_oii_counts
from .volumetric import (
    EMPTY_POLICIES,
    VOLUME_METRIC_FIELDS,
    VolumetricSegmentationMetric,
    compute_volume_metrics,
    evaluate_volumes,
    flat_volume_metrics,
    spacing_of,
    summarize_volume_metrics,
    write_volume_report,
)
