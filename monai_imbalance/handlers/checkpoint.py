"""Resume training from the latest (or a given) checkpoint, as a bundle handler that can be switched off.

MONAI's ``CheckpointLoader`` needs a path that exists when the config is built, so a bundle cannot list it
unconditionally ("resume if there is something to resume"). :class:`ResumeFromCheckpoint` finds the newest
checkpoint written by ``CheckpointSaver`` (``save_interval``/``save_final``) in a folder when the engine starts,
and loads it through ``CheckpointLoader``: model, optimizer, learning-rate scheduler and the trainer's epoch and
iteration counters, so a resumed run continues at the next epoch up to the run's own ``max_epochs``.

A resumed run must also remember how good its best model was, or the first validation after the restart overwrites
``model.pt`` with whatever it scores. :class:`BestMetricState` carries the key-metric tracking list of the
evaluator's best-model ``CheckpointSaver`` and the evaluator's ``best_metric``/``best_metric_epoch`` through the
trainer's checkpoints (list it in both ``save_dict`` and ``load_dict``).

A bundle cannot name the trainer inside the trainer's own handler list (``@train#trainer`` there is a circular
reference), so both handlers add the engine they are attached to under ``engine_key``:
:class:`TrainerCheckpointSaver` (a ``CheckpointSaver`` that saves it) and :class:`ResumeFromCheckpoint` (which
restores it).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from monai.handlers import CheckpointSaver

__all__ = ["BestMetricState", "ResumeFromCheckpoint", "TrainerCheckpointSaver", "latest_checkpoint"]

_STEP = re.compile(r"(?:epoch|iteration)=(\d+)")


def latest_checkpoint(folder: str | os.PathLike, pattern: str = "*checkpoint*.pt") -> Path | None:
    """The newest file matching ``pattern`` in ``folder`` (None when there is none or no folder).

    Files named with a step (``..._epoch=12.pt``, ``..._iteration=300.pt``, as ``CheckpointSaver`` writes them)
    are ordered by that step, the others (``..._final_iteration=...``) by step too when they carry one; ties and
    files without a step are ordered by modification time.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return None
    files = [f for f in folder.glob(pattern) if f.is_file()]
    if not files:
        return None

    def order(path: Path) -> tuple[int, float]:
        match = _STEP.search(path.name)
        return (int(match.group(1)) if match else -1, path.stat().st_mtime)

    return max(files, key=order)


class ResumeFromCheckpoint:
    """Load a checkpoint into the objects of ``load_dict`` when the engine starts, if there is one to load.

    Args:
        load_dict: objects to restore, e.g. ``{"model": net, "optimizer": opt, "lr_scheduler": sched,
            "trainer": trainer}`` (the ``save_dict`` of the ``CheckpointSaver`` that wrote the checkpoints).
        ckpt_dir: folder searched for the newest checkpoint (see :func:`latest_checkpoint`).
        checkpoint: an explicit checkpoint file; takes precedence over ``ckpt_dir``. It must exist.
        engine_key: the engine the handler is attached to is restored under this key too (None: not restored).
        enabled: False makes the handler do nothing (a bundle switches resuming on with ``resume=True``).
        pattern: file pattern of the checkpoints in ``ckpt_dir``.
        map_location, strict: as ``monai.handlers.CheckpointLoader``.

    Raises:
        FileNotFoundError: ``checkpoint`` is given but does not exist (when the engine starts).

    The loaded file is kept in ``self.loaded`` (None when nothing was loaded).

    Example (bundle config)::

        - _target_: monai_imbalance.handlers.ResumeFromCheckpoint
          enabled: "@resume"
          ckpt_dir: "@ckpt_dir"
          load_dict: {model: "@network", optimizer: "@optimizer", lr_scheduler: "@lr_scheduler"}
          engine_key: trainer     # the trainer's epoch and iteration
    """

    def __init__(
        self,
        load_dict: Mapping[str, Any],
        ckpt_dir: str | os.PathLike | None = None,
        checkpoint: str | os.PathLike | None = None,
        enabled: bool = True,
        engine_key: str | None = "trainer",
        pattern: str = "*checkpoint*.pt",
        map_location: Any = None,
        strict: bool = True,
    ) -> None:
        if not load_dict:
            raise ValueError("load_dict must name at least one object to restore.")
        self.load_dict = dict(load_dict)
        self.ckpt_dir = ckpt_dir
        self.checkpoint = checkpoint
        self.enabled = bool(enabled)
        self.engine_key = engine_key
        self.pattern = pattern
        self.map_location = map_location
        self.strict = strict
        self.loaded: Path | None = None
        self.logger = logging.getLogger(__name__)

    def find(self) -> Path | None:
        """The checkpoint that would be loaded now (None: nothing to resume from)."""
        if self.checkpoint:
            path = Path(self.checkpoint)
            if not path.is_file():
                raise FileNotFoundError(f"checkpoint to resume from not found: {path}")
            return path
        return latest_checkpoint(self.ckpt_dir, self.pattern) if self.ckpt_dir else None

    def attach(self, engine: Any) -> None:
        from ignite.engine import Events

        if self.enabled:
            engine.add_event_handler(Events.STARTED, self)

    def __call__(self, engine: Any) -> None:
        from monai.handlers import CheckpointLoader

        path = self.find()
        if path is None:
            self.logger.info("resume: no checkpoint matching %r in %s, starting from scratch", self.pattern,
                             self.ckpt_dir)
            return
        load_dict = dict(self.load_dict)
        if self.engine_key:
            load_dict[self.engine_key] = engine
        CheckpointLoader(str(path), load_dict, map_location=self.map_location, strict=self.strict)(engine)
        self.loaded = path
        self.logger.info("resumed from %s at epoch %d, iteration %d", path, engine.state.epoch,
                         engine.state.iteration)


class TrainerCheckpointSaver(CheckpointSaver):
    """``monai.handlers.CheckpointSaver`` that also saves the engine it is attached to (its epoch and iteration
    counters) under ``engine_key``, so that :class:`ResumeFromCheckpoint` continues where the run stopped.

    Args:
        engine_key: key of the engine in the saved dictionary.
        args, kwargs: as ``monai.handlers.CheckpointSaver`` (``save_dict`` without the trainer).
    """

    def __init__(self, *args: Any, engine_key: str = "trainer", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.engine_key = engine_key

    def attach(self, engine: Any) -> None:
        # ignite's Checkpoint objects hold this very dictionary: the engine added here is saved with the rest
        self.save_dict[self.engine_key] = engine
        super().attach(engine)


class BestMetricState:
    """The best validation so far, as a checkpointable object: the key-metric tracking list of a best-model
    ``CheckpointSaver`` (which score ``model.pt`` has) and the evaluator's ``best_metric``/``best_metric_epoch``.

    Attach it to the evaluator (next to ``saver``) and list it in the trainer checkpoint's ``save_dict`` and in
    :class:`ResumeFromCheckpoint`'s ``load_dict``: a resumed run then replaces ``model.pt`` only with a better model
    and logs the best metric of the whole run, not of the part after the restart.

    Args:
        saver: the evaluator's ``monai.handlers.CheckpointSaver`` with ``save_key_metric=True`` (None: only the
            evaluator's best metric is carried).

    Example (bundle config)::

        validate:
          best_model_saver: {_target_: CheckpointSaver, save_dir: "@ckpt_dir", save_dict: {model: "@network"},
                             save_key_metric: true, key_metric_filename: model.pt}
          best_metric_state: {_target_: monai_imbalance.handlers.BestMetricState, saver: "@validate#best_model_saver"}
          log_handlers: ["@validate#best_model_saver", "@validate#best_metric_state"]
        # train checkpoints: save_dict / load_dict {..., best_model: "@validate#best_metric_state"}
    """

    def __init__(self, saver: CheckpointSaver | None = None) -> None:
        # MONAI's CheckpointSaver has load_state_dict but no getter, and its key_metric_save_state keeps the list in
        # model.pt, which a resume from the trainer's checkpoint does not read: hence ignite's own state_dict here
        if saver is not None and getattr(saver, "_key_metric_checkpoint", None) is None:
            raise ValueError("saver must be a CheckpointSaver with save_key_metric=True (it tracks the best model).")
        self.saver = saver
        self.engine: Any = None
        self._pending: dict[str, Any] | None = None

    def attach(self, engine: Any) -> None:
        self.engine = engine
        if self._pending is not None:
            self._restore_engine(self._pending)

    def state_dict(self) -> dict[str, Any]:
        state = getattr(self.engine, "state", None)
        # ignite names the list "saved" or "_saved" depending on its version: take its only entry
        saved = next(iter(self.saver._key_metric_checkpoint.state_dict().values())) if self.saver is not None else []
        return {
            "saved": [(float(priority), str(name)) for priority, name in saved],
            "best_metric": float(getattr(state, "best_metric", -1)),
            "best_metric_epoch": int(getattr(state, "best_metric_epoch", -1)),
        }

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        missing = {"saved", "best_metric", "best_metric_epoch"} - set(state_dict)
        if missing:
            raise KeyError(f"best-metric state lacks {sorted(missing)}; was it written by BestMetricState?")
        if self.saver is not None:
            (key,) = self.saver._key_metric_checkpoint.state_dict().keys()
            self.saver.load_state_dict({key: [tuple(item) for item in state_dict["saved"]]})
        self._pending = dict(state_dict)
        if self.engine is not None:
            self._restore_engine(self._pending)

    def _restore_engine(self, state_dict: Mapping[str, Any]) -> None:
        self.engine.state.best_metric = state_dict["best_metric"]
        self.engine.state.best_metric_epoch = state_dict["best_metric_epoch"]
