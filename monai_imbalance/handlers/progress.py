"""Progress display and throughput logging for long bundle runs.

- :class:`ProgressBar`: ignite's tqdm progress bar with the running loss, attachable from a bundle's handler list
  (ignite's own ``ProgressBar.attach`` needs arguments a config cannot pass through MONAI's handler lists).
- :class:`ThroughputLogger`: images (samples) per second of every epoch, logged and kept in
  ``engine.state.metrics`` (``"images_per_second"``) so that ``StatsHandler``/``TensorBoardStatsHandler`` report it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import torch

__all__ = ["ProgressBar", "ThroughputLogger"]


def _loss_of(output: Any) -> dict[str, float]:
    """``{"loss": value}`` from a trainer's output (a dict, or a list of dicts after decollation)."""
    if isinstance(output, list) and output and isinstance(output[0], dict):
        output = output[0]
    if isinstance(output, dict) and "loss" in output:
        value = output["loss"]
        return {"loss": float(value.item() if isinstance(value, torch.Tensor) else value)}
    return {}


class _EveryNth:
    """``transform(output)`` at the first call and every ``every``-th after it; the last value in between (the loss
    shown by a progress bar: reading a CUDA tensor's value waits for the GPU, so not at every step)."""

    def __init__(self, transform: Callable[[Any], dict], every: int) -> None:
        self.transform = transform
        self.every = every
        self.calls = 0
        self.value: dict = {}

    def __call__(self, output: Any) -> dict:
        if self.calls % self.every == 0:
            self.value = self.transform(output)
        self.calls += 1
        return self.value


class ProgressBar:
    """A tqdm progress bar over the iterations of each epoch (ignite's ``ProgressBar``), showing the loss.

    The bar moves at every iteration; the loss it shows is read every ``refresh_every`` iterations (reading a loss
    on the GPU is a host sync that stalls the next step's kernels). While an epoch's bar is on screen, console log
    lines go through tqdm (``tqdm.contrib.logging.logging_redirect_tqdm``), so they print above the bar instead of
    cutting it; the bundles log per-iteration lines only when the bar is off.

    Args:
        enabled: False attaches nothing (bundles switch it with ``progress=False``).
        persist: keep each epoch's finished bar on screen.
        output_transform: engine output -> dict of values to show (default: the trainer's ``loss``).
        desc: bar description (ignite shows ``[epoch/max_epochs]`` after it).
        refresh_every: read the shown values every this many iterations (1: every iteration).
    """

    def __init__(
        self,
        enabled: bool = True,
        persist: bool = False,
        output_transform: Callable[[Any], dict] | None = None,
        desc: str = "",
        refresh_every: int = 10,
    ) -> None:
        if isinstance(refresh_every, bool) or not isinstance(refresh_every, int) or refresh_every < 1:
            raise ValueError(f"refresh_every must be an int >= 1, got {refresh_every!r}.")
        self.enabled = bool(enabled)
        self.persist = persist
        self.output_transform = _EveryNth(output_transform or _loss_of, refresh_every)
        self.desc = desc
        self.bar: Any = None
        self._redirect: Any = None

    def attach(self, engine: Any) -> None:
        if not self.enabled:
            return
        from ignite.engine import Events
        from ignite.handlers import ProgressBar as IgniteProgressBar

        self.bar = IgniteProgressBar(persist=self.persist, desc=self.desc)
        self.bar.attach(engine, output_transform=self.output_transform)
        # log lines (StatsHandler, the validation's metrics, throughput) print above the bar, not through it
        engine.add_event_handler(Events.EPOCH_STARTED, self._redirect_logging)
        engine.add_event_handler(Events.EPOCH_COMPLETED, self._restore_logging)
        engine.add_event_handler(Events.COMPLETED, self._restore_logging)
        engine.add_event_handler(Events.EXCEPTION_RAISED, self._restore_logging_and_raise)
        engine.add_event_handler(Events.TERMINATE, self._restore_logging)

    def _redirect_logging(self, engine: Any) -> None:
        from tqdm.contrib.logging import logging_redirect_tqdm

        self._restore_logging(engine)
        self._redirect = logging_redirect_tqdm()
        self._redirect.__enter__()

    def _restore_logging_and_raise(self, engine: Any, error: BaseException) -> None:
        # ignite raises an exception itself only when no handler is registered for it: raise it on
        self._restore_logging(engine)
        raise error

    def _restore_logging(self, engine: Any, *args: Any) -> None:
        redirect, self._redirect = self._redirect, None
        if redirect is not None:
            redirect.__exit__(None, None, None)


class ThroughputLogger:
    """Log the samples per second of each epoch: ``engine.state.metrics["images_per_second"]``.

    Counts the batch size of every iteration (the first dimension of ``batch[batch_key]``; a multi-sample crop's
    samples count one by one), divided by the time from the epoch's start to its last iteration's end (data
    loading included, the validation run at the epoch's end excluded).

    Args:
        batch_key: key of the batch tensor whose first dimension is the batch size.
        metric_name: name under which the value is stored in ``engine.state.metrics``.
    """

    def __init__(self, batch_key: str = "image", metric_name: str = "images_per_second") -> None:
        self.batch_key = batch_key
        self.metric_name = metric_name
        self.logger = logging.getLogger(__name__)
        self._start = 0.0
        self._last = 0.0
        self._count = 0
        self.history: list[float] = []

    def attach(self, engine: Any) -> None:
        from ignite.engine import Events

        engine.add_event_handler(Events.EPOCH_STARTED, self._epoch_started)
        engine.add_event_handler(Events.ITERATION_COMPLETED, self._iteration_completed)
        engine.add_event_handler(Events.EPOCH_COMPLETED, self._epoch_completed)

    def _epoch_started(self, engine: Any) -> None:
        self._start = self._last = time.perf_counter()
        self._count = 0

    def _iteration_completed(self, engine: Any) -> None:
        self._last = time.perf_counter()
        batch = engine.state.batch
        if isinstance(batch, dict) and self.batch_key in batch:
            self._count += len(batch[self.batch_key])
        elif isinstance(batch, (list, tuple)) and batch and isinstance(batch[0], dict):
            self._count += len(batch)  # decollated: one dict per sample
        elif isinstance(batch, (list, tuple)) and batch and isinstance(batch[0], torch.Tensor):
            self._count += len(batch[0])

    def _epoch_completed(self, engine: Any) -> None:
        elapsed = max(self._last - self._start, 1e-9)
        rate = self._count / elapsed
        self.history.append(rate)
        engine.state.metrics[self.metric_name] = rate
        self.logger.info("epoch %d: %d images in %.1f s, %.1f images/s", engine.state.epoch, self._count, elapsed,
                         rate)
