"""A NaN loss stops training at its iteration, with other iteration handlers attached (moved from
tests/bundles/test_bundle_common.py)."""

from __future__ import annotations

import math

import torch
from ignite.engine import Engine

from monai_imbalance.handlers import TerminateOnNan, ThroughputLogger


def test_terminate_on_nan():
    engine = Engine(lambda e, b: {"loss": torch.tensor(b)})
    TerminateOnNan().attach(engine)
    rate = ThroughputLogger(batch_key="x")  # batches without the key are not counted, and raise nothing
    rate.attach(engine)
    engine.run([1.0, math.nan, 2.0], max_epochs=1)
    assert engine.state.iteration == 2  # stopped at the NaN
