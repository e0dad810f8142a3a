"""Ignite handlers wrapping monai_imbalance metrics (``IgniteMetricHandler`` subclasses)."""

from __future__ import annotations
