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


class _CountedLoss(torch.Tensor):
    """A loss tensor that counts how often its value is read (``.item()``: a host sync on a GPU)."""

    reads = 0

    def item(self):
        type(self).reads += 1
        return super().item()


def test_progress_bar_reads_the_loss_every_refresh_iterations(monkeypatch):
    from monai_imbalance.handlers import ProgressBar

    monkeypatch.setattr(_CountedLoss, "reads", 0)
    losses = [torch.tensor(float(i)).as_subclass(_CountedLoss) for i in range(25)]
    engine = Engine(lambda e, b: {"loss": losses[e.state.iteration - 1]})
    bar = ProgressBar(refresh_every=10)
    bar.attach(engine)
    engine.run(range(25), max_epochs=1)
    # the bar reads the loss at iterations 1, 11 and 21 only, and shows the last value read
    assert _CountedLoss.reads == 3
    assert bar.output_transform.value == {"loss": 20.0}


def test_progress_bar_rejects_a_bad_interval():
    import pytest

    from monai_imbalance.handlers import ProgressBar

    with pytest.raises(ValueError, match="refresh_every must be an int >= 1"):
        ProgressBar(refresh_every=0)


def test_log_lines_print_above_the_bar_during_an_epoch_and_the_console_handler_comes_back(capsys):
    """While an epoch's bar is on screen, a console log line goes through tqdm (never into the middle of the bar);
    after the run, logging writes to its own stream handler again."""
    import logging
    import sys

    from ignite.engine import Events
    from tqdm.contrib.logging import _TqdmLoggingHandler

    from monai_imbalance.handlers import ProgressBar

    root = logging.getLogger()
    console = logging.StreamHandler(sys.stdout)
    root.addHandler(console)
    seen = []
    try:
        engine = Engine(lambda e, b: {"loss": torch.tensor(0.5)})
        ProgressBar(refresh_every=1).attach(engine)

        @engine.on(Events.ITERATION_COMPLETED)
        def _look(e):
            seen.append([type(h) for h in root.handlers])

        engine.run([0, 1], max_epochs=2)
        assert len(seen) == 4
        assert all(_TqdmLoggingHandler in types and logging.StreamHandler not in types for types in seen)
        assert console in root.handlers and not any(isinstance(h, _TqdmLoggingHandler) for h in root.handlers)
    finally:
        root.removeHandler(console)


def test_the_console_handler_comes_back_when_an_epoch_fails():
    import logging
    import sys

    import pytest

    from monai_imbalance.handlers import ProgressBar

    root = logging.getLogger()
    console = logging.StreamHandler(sys.stdout)
    root.addHandler(console)
    try:
        def fail(e, b):
            raise RuntimeError("boom")

        engine = Engine(fail)
        ProgressBar().attach(engine)
        with pytest.raises(RuntimeError, match="boom"):
            engine.run([0], max_epochs=1)
        assert console in root.handlers
    finally:
        root.removeHandler(console)
