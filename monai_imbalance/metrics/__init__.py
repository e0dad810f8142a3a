"""Metrics: functional ``compute_*`` plus MONAI ``CumulativeIterationMetric`` classes."""

from __future__ import annotations
