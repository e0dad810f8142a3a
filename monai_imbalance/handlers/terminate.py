"""Stop training when the loss is NaN or infinite, attachable from a bundle's handler list.

ignite's ``TerminateOnNan`` is an event callback without ``attach``, which MONAI's ``train_handlers`` need;
:class:`TerminateOnNan` attaches it at every completed iteration.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .utils import trainer_loss

__all__ = ["TerminateOnNan"]


class TerminateOnNan:
    """Terminate the engine (with an error log) as soon as the loss is NaN or infinite.

    Args:
        output_transform: engine output -> the value(s) to check (default: the ``loss`` of a trainer's output).
        every: check every this many iterations (reading a loss on the GPU is a host sync; a NaN loss stays NaN, so
            a check every few steps stops the run a few steps later at most).
    """

    def __init__(self, output_transform: Callable[[Any], Any] | None = None, every: int = 1) -> None:
        from ignite.handlers import TerminateOnNan as IgniteTerminateOnNan

        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ValueError(f"every must be an int >= 1, got {every!r}.")
        self.every = every
        self.handler = IgniteTerminateOnNan(output_transform=output_transform or trainer_loss)

    def attach(self, engine: Any) -> None:
        from ignite.engine import Events

        event = Events.ITERATION_COMPLETED if self.every == 1 else Events.ITERATION_COMPLETED(every=self.every)
        engine.add_event_handler(event, self.handler)
