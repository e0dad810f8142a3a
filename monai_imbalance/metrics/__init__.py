"""Metrics: functional ``compute_*`` plus MONAI ``CumulativeIterationMetric`` classes."""

from __future__ import annotations

from .oii import OIIResult, OutputImbalanceIndexMetric, compute_oii, compute_oii_counts
