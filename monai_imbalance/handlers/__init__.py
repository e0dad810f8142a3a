"""Ignite handlers: the metrics of :mod:`monai_imbalance.metrics` for evaluators (``IgniteMetricHandler``
subclasses: OII, per-image confusion metrics, volumetric metrics, per-object detection metrics), and what the
bundles' training needs beside MONAI's own (crash-safe resumable checkpoints that keep the best model, the
boundary-weight schedule, NaN stop, progress, a record of the setup, handler groups, rank-0 logging)."""

from __future__ import annotations

from .boundary_schedule import BoundaryWeightScheduler
from .checkpoint import (
    AtomicCheckpointSaver,
    BestMetricState,
    ResumeFromCheckpoint,
    TrainerCheckpointSaver,
    atomic_save,
    checkpoint_candidates,
    latest_checkpoint,
)
from .confusion import PerImageConfusionMatrix
from .objects import ObjectMetricHandler
from .oii import OutputImbalanceIndex
from .progress import ProgressBar, ThroughputLogger
from .record import RecordSetup
from .terminate import TerminateOnNan
from .utils import HandlerGroup, quiet_other_ranks
from .volumetric import VolumetricMetrics
