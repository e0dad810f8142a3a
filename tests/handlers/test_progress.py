"""Throughput of training: images per second each epoch, logged as a metric (moved from
tests/bundles/test_bundle_common.py)."""

from __future__ import annotations

import torch
from ignite.engine import Engine

from monai_imbalance.handlers import ThroughputLogger


def test_throughput_logger():
    counted = Engine(lambda e, b: {"loss": torch.tensor(0.0)})
    logger = ThroughputLogger(batch_key="image")
    logger.attach(counted)
    counted.run([{"image": torch.zeros(4, 1)}] * 3, max_epochs=2)
    assert len(logger.history) == 2 and counted.state.metrics["images_per_second"] > 0
