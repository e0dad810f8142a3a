"""Ignite handlers wrapping monai_imbalance metrics (``IgniteMetricHandler`` subclasses)."""

from __future__ import annotations

from .boundary_schedule import BoundaryWeightScheduler
from .checkpoint import BestMetricState, ResumeFromCheckpoint, TrainerCheckpointSaver, latest_checkpoint
from .confusion import PerImageConfusionMatrix
from .oii import OutputImbalanceIndex
from .progress import ProgressBar, ThroughputLogger
from .terminate import TerminateOnNan
from .volumetric import VolumetricMetrics
