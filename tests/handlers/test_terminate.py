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


def test_terminate_on_nan_every_n_iterations():
    values = [1.0] * 12 + [float("nan")] * 20
    engine = Engine(lambda e, b: {"loss": torch.tensor(values[e.state.iteration - 1])})
    TerminateOnNan(every=5).attach(engine)
    engine.run(range(32), max_epochs=1)
    assert engine.state.iteration == 15  # the NaN of iteration 13 is seen at the next check
