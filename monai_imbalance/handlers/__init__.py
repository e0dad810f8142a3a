"""Ignite handlers wrapping monai_imbalance metrics (``IgniteMetricHandler`` subclasses)."""

from __future__ import annotations

from .boundary_schedule import BoundaryWeightScheduler
from .checkpoint import ResumeFromCheckpoint, latest_checkpoint
from .progress import ProgressBar, ThroughputLogger
