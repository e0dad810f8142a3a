"""Write down what a run trains with: :class:`RecordSetup` saves the resolved setup (loss and crop classes and their
parameters) into the run's output folder and logs it when the run starts."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from monai_imbalance.utils import atomic_write

from .utils import process_rank

__all__ = ["RecordSetup"]


class RecordSetup:
    """At the trainer's start, write ``setup.describe()`` (or any JSON-able description) to ``save_dir/filename``
    and log one line per part, so a reader of a run knows exactly which loss and crop classes it trained with.

    Only rank 0 writes and logs. The file is written with :func:`monai_imbalance.utils.atomic_write`, so a killed
    run never leaves half a file.

    Args:
        setup: a :class:`~monai_imbalance.engines.SegmentationSetup` (anything with ``describe()``), or a dict.
        save_dir: the run's output folder.
        filename: the JSON file's name.
        extra: more values to record beside the setup (e.g. the network class, epochs, batch size).
    """

    def __init__(self, setup: Any, save_dir: str | os.PathLike, filename: str = "setup.json",
                 extra: dict[str, Any] | None = None) -> None:
        if not (hasattr(setup, "describe") or isinstance(setup, dict)):
            raise TypeError(f"setup must have a describe() method or be a dict, got {type(setup).__name__}.")
        self.setup = setup
        self.save_dir = Path(save_dir)
        self.filename = filename
        self.extra = dict(extra or {})
        self.logger = logging.getLogger(__name__)

    def record(self) -> dict[str, Any]:
        """The description that is written: the setup's, plus ``extra`` under ``"run"``."""
        description = dict(self.setup.describe() if hasattr(self.setup, "describe") else self.setup)
        if self.extra:
            description["run"] = self.extra
        return description

    def attach(self, engine: Any) -> None:
        from ignite.engine import Events

        engine.add_event_handler(Events.STARTED, self._started)

    def _started(self, engine: Any) -> None:
        if process_rank() != 0:
            return
        description = self.record()
        self.save_dir.mkdir(parents=True, exist_ok=True)
        path = self.save_dir / self.filename
        text = json.dumps(description, indent=2, default=str) + "\n"
        atomic_write(path, lambda f: f.write(text.encode()))
        for key in ("loss", "crop"):
            if key in description:
                self.logger.info(f"setup {key}: {json.dumps(description[key], default=str)}")
        loss_fn = description.get("loss_function")
        if isinstance(loss_fn, dict) and "class" in loss_fn:
            self.logger.info(f"setup loss_function: {loss_fn['class']}")
        for key in ("precompute_transforms", "crop_transforms", "map_transforms"):
            classes = [t.get("class") for t in description.get(key, []) if isinstance(t, dict)]
            if classes:
                self.logger.info(f"setup {key}: {', '.join(classes)}")
        self.logger.info(f"setup written to {path}")
