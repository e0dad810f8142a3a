"""Crash-safe checkpoints and resuming from them, as bundle handlers that can be switched off.

MONAI's ``CheckpointSaver`` writes in place (ignite's ``DiskSaver`` with ``atomic=False``), and ignite's ``Checkpoint``
deletes the file it supersedes before it writes the new one: a process killed during the write leaves a truncated
checkpoint and nothing else. :class:`AtomicCheckpointSaver` is a ``CheckpointSaver`` whose files are never half
written: each is written to a temporary file in the same folder (``.<name>.<8 hex digits>.tmp``), flushed, fsynced
and renamed over the final name, and the file it supersedes is deleted only then. When its engine starts, it removes
the temporary files of writes that were killed, and the first interval checkpoint of a resumed run (or its end, when
it writes none) also prunes the earlier run's checkpoints beyond ``n_saved``.

MONAI's ``CheckpointLoader`` needs a path that exists when the config is built, so a bundle cannot list it
unconditionally ("resume if there is something to resume"). :class:`ResumeFromCheckpoint` finds the newest readable
checkpoint written by ``CheckpointSaver`` (``save_interval``/``save_final``) in a folder when the engine starts (an
unreadable one is skipped with a warning) and loads it as ``CheckpointLoader`` does: model, optimizer, learning-rate
scheduler and the trainer's epoch and iteration counters, so a resumed run continues at the next epoch up to the
run's own ``max_epochs``.

A resumed run must also remember how good its best model was, or the first validation after the restart overwrites
``model.pt`` with whatever it scores. :class:`BestMetricState` carries the key-metric tracking list of the
evaluator's best-model saver and the evaluator's ``best_metric``/``best_metric_epoch`` through the trainer's
checkpoints (list it in both ``save_dict`` and ``load_dict``).

A bundle cannot name the trainer inside the trainer's own handler list (``@train#trainer`` there is a circular
reference), so both handlers add the engine they are attached to under ``engine_key``:
:class:`TrainerCheckpointSaver` (an ``AtomicCheckpointSaver`` that saves it) and :class:`ResumeFromCheckpoint` (which
restores it).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import ignite.distributed as idist
import torch
from ignite.handlers import Checkpoint, DiskSaver
from monai.handlers import CheckpointSaver

from monai_imbalance.utils import atomic_write

__all__ = [
    "AtomicCheckpoint",
    "AtomicCheckpointSaver",
    "AtomicDiskSaver",
    "BestMetricState",
    "ResumeFromCheckpoint",
    "TrainerCheckpointSaver",
    "atomic_save",
    "checkpoint_candidates",
    "is_temporary_checkpoint",
    "latest_checkpoint",
]

_STEP = re.compile(r"(?:epoch|iteration)=(\d+)")
# the temporary file of an atomic write: ".<final name>.<8 hex digits>.tmp", hidden and never matching "*.pt"
_TEMPORARY = re.compile(r"^\.(?P<name>.+)\.[0-9a-f]{8}\.tmp$")
_SCORE_MARKER = "SCOREMARKER"


def is_temporary_checkpoint(path: str | os.PathLike) -> bool:
    """Whether ``path`` is the temporary file of an :func:`atomic_save` (left behind when the write was killed)."""
    return _TEMPORARY.match(Path(path).name) is not None


def atomic_save(obj: Any, path: str | os.PathLike, **kwargs: Any) -> None:
    """``torch.save(obj, path)`` that never leaves a partly written ``path``: the data go to a temporary file in the
    same folder (``.<name>.<8 hex digits>.tmp``), are flushed and fsynced, and the file is renamed to ``path``
    (``os.replace``, atomic on POSIX and Windows); the folder is fsynced where the OS allows. A process killed during
    the write leaves ``path`` as it was, and at most the temporary file (see :func:`is_temporary_checkpoint`).

    Args:
        obj: what to save.
        path: the final file name.
        kwargs: passed to ``torch.save``.

    Raises:
        whatever ``torch.save`` or the file system raises; the temporary file is removed then.

    Example::

        atomic_save(net.state_dict(), "models/model.pt")
    """
    atomic_write(path, lambda file: torch.save(obj, file, **kwargs))


class AtomicDiskSaver(DiskSaver):
    """ignite ``DiskSaver`` that writes with :func:`atomic_save`, with MONAI's fixed-filename option, and that can
    defer removals until the next file is written (what :class:`AtomicCheckpoint` uses).

    Args:
        dirname: folder of the checkpoints (created if needed; need not be empty).
        filename: a fixed file name for every save (``model.pt``, ``checkpoint_final.pt``), as MONAI's
            ``CheckpointSaver`` has it; None: the name ignite gives.
        save_on_rank: the rank that writes, as ``DiskSaver``.
        kwargs: passed to ``torch.save``.
    """

    def __init__(self, dirname: str | os.PathLike, filename: str | None = None, save_on_rank: int = 0,
                 **kwargs: Any) -> None:
        super().__init__(dirname=dirname, atomic=True, create_dir=True, require_empty=False, save_on_rank=save_on_rank,
                         **kwargs)
        self.filename = filename
        self.defer_removal = False
        self.deferred: list[str] = []

    def final_name(self, filename: str) -> str:
        """The file name on disk of the checkpoint ignite names ``filename``."""
        return self.filename if self.filename is not None else filename

    def __call__(self, checkpoint: Mapping, filename: str, metadata: Mapping | None = None) -> None:
        filename = self.final_name(filename)
        if idist.has_xla_support:
            # every TPU process takes part in xm.save: ignite's own (atomic) path handles that
            super().__call__(checkpoint, filename, metadata)
        elif self.save_on_rank == idist.get_rank():
            atomic_save(checkpoint, self.dirname / filename, **self.kwargs)

    def remove(self, filename: str) -> None:
        if self.defer_removal:
            self.deferred.append(filename)
            return
        if idist.get_rank() == self.save_on_rank:
            (self.dirname / self.final_name(filename)).unlink(missing_ok=True)


class AtomicCheckpoint(Checkpoint):
    """ignite ``Checkpoint`` that writes the new file before it deletes the one it supersedes (ignite deletes first),
    through an :class:`AtomicDiskSaver`.

    Args:
        to_save, save_handler, kwargs: as ``ignite.handlers.Checkpoint``; ``save_handler`` must be an
            :class:`AtomicDiskSaver`.
        adopt_earlier: at its first save after :meth:`recover`, take the files on disk that this checkpoint would
            have written at an earlier step than the current one (the checkpoints of the run that a resumed run
            continues) into its list of saved files, so that only the newest ``n_saved`` remain (:meth:`prune` does
            it without a save). For step-scored checkpoints (epoch or iteration) only.

    Raises:
        TypeError: ``save_handler`` is not an :class:`AtomicDiskSaver`.
    """

    def __init__(self, to_save: Mapping, save_handler: AtomicDiskSaver, *args: Any, adopt_earlier: bool = False,
                 **kwargs: Any) -> None:
        if not isinstance(save_handler, AtomicDiskSaver):
            raise TypeError(f"save_handler must be an AtomicDiskSaver, got {type(save_handler).__name__}.")
        super().__init__(to_save, save_handler, *args, **kwargs)
        self.adopt_earlier = adopt_earlier
        self._adopt_pending = adopt_earlier
        self.logger = logging.getLogger(__name__)

    @classmethod
    def like(cls, checkpoint: Checkpoint, adopt_earlier: bool = False) -> AtomicCheckpoint:
        """An :class:`AtomicCheckpoint` with the settings of ``checkpoint`` (one that MONAI's ``CheckpointSaver``
        built), saving to the same folder under the same (or fixed) file names."""
        handler = checkpoint.save_handler
        return cls(
            to_save=checkpoint.to_save,
            save_handler=AtomicDiskSaver(handler.dirname, filename=getattr(handler, "filename", None),
                                         save_on_rank=checkpoint.save_on_rank),
            filename_prefix=checkpoint.filename_prefix,
            score_function=checkpoint.score_function,
            score_name=checkpoint.score_name,
            n_saved=checkpoint.n_saved,
            global_step_transform=checkpoint.global_step_transform,
            filename_pattern=checkpoint.filename_pattern,
            include_self=checkpoint.include_self,
            greater_or_equal=checkpoint.greater_or_equal,
            save_on_rank=checkpoint.save_on_rank,
            adopt_earlier=adopt_earlier,
        )

    def _own_names(self) -> re.Pattern[str] | None:
        """The file names (on disk) this checkpoint writes, with the score as group ``score`` (None: unknown)."""
        handler = self.save_handler
        if handler.filename is not None:
            return re.compile(re.escape(handler.filename))
        if self.filename_pattern is not None or self.global_step_transform is not None:
            return None
        name = next(iter(self.to_save)) if len(self.to_save) == 1 else "checkpoint"  # as Checkpoint.__call__ names it
        text = self._get_filename_pattern(None).format(
            filename_prefix=self.filename_prefix, ext=self.ext, name=name, score_name=self.score_name,
            score=_SCORE_MARKER if self.score_function is not None else None, global_step=None)
        return re.compile(re.escape(text).replace(_SCORE_MARKER, r"(?P<score>-?\d+(?:\.\d+)?)"))

    def _saves_here(self) -> bool:
        return idist.get_rank() == self.save_handler.save_on_rank and self.save_handler.dirname.is_dir()

    def recover(self) -> list[Path]:
        """Remove the temporary files of this checkpoint's killed writes and have the next save adopt the earlier
        files (see ``adopt_earlier``). Returns the removed files."""
        self._adopt_pending = self.adopt_earlier
        own = self._own_names()
        if own is None or not self._saves_here():
            return []
        removed = []
        for path in self.save_handler.dirname.iterdir():
            match = _TEMPORARY.match(path.name)
            if match and own.fullmatch(match.group("name")) and path.is_file():
                path.unlink(missing_ok=True)
                removed.append(path)
                self.logger.warning("removed %s, left by a checkpoint write that did not finish", path)
        return removed

    def _adopt(self, engine: Any, include_current: bool) -> None:
        self._adopt_pending = False
        own = self._own_names()
        if own is None or "score" not in own.groupindex or self.score_function is None or not self._saves_here():
            return
        current = self.score_function(engine)
        known = {item.filename for item in self._saved}
        for path in self.save_handler.dirname.iterdir():
            match = own.fullmatch(path.name)
            if match is None or path.name in known:
                continue
            step = float(match.group("score"))
            # only the past of this run: a later step is another run's file (and the current one, when a save
            # follows, is rewritten anyway)
            if step < current or (include_current and step == current):
                self._saved.append(Checkpoint.Item(int(step) if step.is_integer() else step, path.name))
        self._saved.sort(key=lambda item: item.priority)

    def _remove(self, superseded: list[str]) -> None:
        if self.n_saved is not None:
            while len(self._saved) > self.n_saved:  # adopted files beyond n_saved: ignite removes one per save
                superseded.append(self._saved.pop(0).filename)
        handler = self.save_handler
        kept = {handler.final_name(item.filename) for item in self._saved}
        for filename in superseded:
            if handler.final_name(filename) not in kept:  # a fixed name (model.pt) was just rewritten, not superseded
                handler.remove(filename)

    def prune(self, engine: Any) -> None:
        """Without saving: when no save of this checkpoint has adopted the earlier files since :meth:`recover` (a run
        resumed at its last epoch), adopt them, the current step's included, and delete those beyond ``n_saved``."""
        if self._adopt_pending:
            self._adopt(engine, include_current=True)
            self._remove([])

    def supersede(self, filename: str) -> None:
        """Delete ``filename`` (a name ignite gave) after the next successful save, not now."""
        self.save_handler.deferred.append(filename)

    def __call__(self, engine: Any, *args: Any, **kwargs: Any) -> None:
        if self._adopt_pending:
            self._adopt(engine, include_current=False)
        handler = self.save_handler
        handler.defer_removal = True
        try:
            super().__call__(engine, *args, **kwargs)
        except BaseException:
            # the superseded files stay: the new one may not have been written
            handler.deferred.clear()
            raise
        finally:
            handler.defer_removal = False
        superseded, handler.deferred = handler.deferred, []
        self._remove(superseded)


class AtomicCheckpointSaver(CheckpointSaver):
    """``monai.handlers.CheckpointSaver`` whose checkpoints survive a crash at any moment: every file (interval
    checkpoints, the best model ``model.pt``, the final checkpoint) is written to a temporary file, fsynced and
    renamed into place (:func:`atomic_save`), and the file it supersedes is deleted only after that. When the engine
    starts, temporary files of killed writes are removed, and the first interval checkpoint of a resumed run (or its
    end, when it writes none) leaves only the newest ``n_saved`` checkpoints of this saver on disk, the earlier run's
    included.

    Args:
        args, kwargs: as ``monai.handlers.CheckpointSaver``.

    Example (bundle config)::

        best_model_saver:
          _target_: monai_imbalance.handlers.AtomicCheckpointSaver
          save_dir: "@ckpt_dir"
          save_dict: {model: "@network"}
          save_key_metric: true
          key_metric_filename: model.pt
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # MONAI builds its ignite Checkpoint objects here, with an in-place _DiskSaver: the same ones, atomic
        for attribute in ("_final_checkpoint", "_key_metric_checkpoint", "_interval_checkpoint"):
            checkpoint = getattr(self, attribute)
            if checkpoint is not None:
                setattr(self, attribute,
                        AtomicCheckpoint.like(checkpoint, adopt_earlier=attribute == "_interval_checkpoint"))

    def _checkpoints(self) -> list[AtomicCheckpoint]:
        return [c for c in (self._final_checkpoint, self._key_metric_checkpoint, self._interval_checkpoint) if c]

    def attach(self, engine: Any) -> None:
        from ignite.engine import Events

        super().attach(engine)
        engine.add_event_handler(Events.STARTED, self.recover)
        if self._interval_checkpoint is not None:
            engine.add_event_handler(Events.COMPLETED, self._prune_interval_checkpoints)

    def recover(self, engine: Any = None) -> list[Path]:
        """Remove the temporary files of killed writes of this saver; the next interval checkpoint then prunes the
        earlier ones beyond ``n_saved``. Runs when the engine starts. Returns the removed files."""
        return [path for checkpoint in self._checkpoints() for path in checkpoint.recover()]

    def _prune_interval_checkpoints(self, engine: Any) -> None:
        # a run resumed at its last epoch writes no interval checkpoint that would prune the earlier run's
        if isinstance(self._interval_checkpoint, AtomicCheckpoint):
            self._interval_checkpoint.prune(engine)

    def exception_raised(self, engine: Any, e: Exception) -> None:
        self._prune_interval_checkpoints(engine)
        super().exception_raised(engine, e)

    def _delete_previous_final_ckpt(self) -> None:
        # MONAI deletes the previous final checkpoint before writing the new one: here it goes after the write
        if self._final_checkpoint is not None and self._final_checkpoint._saved:
            self._final_checkpoint.supersede(self._final_checkpoint._saved.pop(0).filename)


def checkpoint_candidates(folder: str | os.PathLike, pattern: str = "*checkpoint*.pt") -> list[Path]:
    """The files matching ``pattern`` in ``folder``, newest first (empty when there is none or no folder), without
    the temporary files of unfinished writes (:func:`is_temporary_checkpoint`).

    Files named with a step (``..._epoch=12.pt``, ``..._iteration=300.pt``, as ``CheckpointSaver`` writes them)
    are ordered by that step, the others (``..._final_iteration=...``) by step too when they carry one; ties and
    files without a step (``checkpoint_final.pt``) come after, by modification time.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    files = [f for f in folder.glob(pattern) if f.is_file() and not is_temporary_checkpoint(f)]

    def order(path: Path) -> tuple[int, float]:
        match = _STEP.search(path.name)
        try:
            mtime = path.stat().st_mtime
        except OSError:  # removed meanwhile
            mtime = 0.0
        return (int(match.group(1)) if match else -1, mtime)

    return sorted(files, key=order, reverse=True)


def latest_checkpoint(folder: str | os.PathLike, pattern: str = "*checkpoint*.pt") -> Path | None:
    """The newest file matching ``pattern`` in ``folder`` (None when there is none or no folder), in the order of
    :func:`checkpoint_candidates`; it is not opened, so it may be unreadable."""
    candidates = checkpoint_candidates(folder, pattern)
    return candidates[0] if candidates else None


class ResumeFromCheckpoint:
    """Load a checkpoint into the objects of ``load_dict`` when the engine starts, if there is one to load.

    From ``ckpt_dir``, the newest readable checkpoint is loaded: the files are tried newest first (see
    :func:`checkpoint_candidates`), and each one that cannot be read (truncated, not a checkpoint) is skipped with a
    warning that names it and the error.

    Args:
        load_dict: objects to restore, e.g. ``{"model": net, "optimizer": opt, "lr_scheduler": sched,
            "trainer": trainer}`` (the ``save_dict`` of the ``CheckpointSaver`` that wrote the checkpoints).
        ckpt_dir: folder searched for the newest readable checkpoint.
        checkpoint: an explicit checkpoint file; takes precedence over ``ckpt_dir``. It must exist and be readable.
        engine_key: the engine the handler is attached to is restored under this key too (None: not restored).
        enabled: False makes the handler do nothing (a bundle switches resuming on with ``resume=True``).
        pattern: file pattern of the checkpoints in ``ckpt_dir``.
        map_location, strict: as ``monai.handlers.CheckpointLoader``.

    Raises:
        FileNotFoundError: ``checkpoint`` is given but does not exist (when the engine starts).
        RuntimeError: ``checkpoint`` cannot be read, or none of the checkpoints in ``ckpt_dir`` can (the message names
            the folder and each file tried with its error).
        ValueError: the checkpoint's epoch is beyond the engine's ``max_epochs`` (as ``CheckpointLoader``).

    The loaded file is kept in ``self.loaded`` (None when nothing was loaded), the skipped ones with their errors in
    ``self.skipped``.

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
        self.skipped: list[tuple[Path, str]] = []
        self.logger = logging.getLogger(__name__)

    def candidates(self) -> list[Path]:
        """The checkpoints that would be tried now, in order (empty: nothing to resume from)."""
        if self.checkpoint:
            path = Path(self.checkpoint)
            if not path.is_file():
                raise FileNotFoundError(f"checkpoint to resume from not found: {path}")
            return [path]
        return checkpoint_candidates(self.ckpt_dir, self.pattern) if self.ckpt_dir else []

    def find(self) -> Path | None:
        """The checkpoint that would be tried first now (None: nothing to resume from); it is not opened."""
        candidates = self.candidates()
        return candidates[0] if candidates else None

    def attach(self, engine: Any) -> None:
        from ignite.engine import Events

        if self.enabled:
            engine.add_event_handler(Events.STARTED, self)

    def _read(self, path: Path) -> Mapping[str, Any]:
        state = torch.load(path, map_location=self.map_location, weights_only=True)
        if not isinstance(state, Mapping):
            raise TypeError(f"holds a {type(state).__name__}, not a checkpoint dictionary")
        return state

    def _read_newest(self, candidates: list[Path]) -> tuple[Path, Mapping[str, Any]]:
        self.skipped = []
        for path in candidates:
            try:
                return path, self._read(path)
            except Exception as error:  # torch raises many types for a damaged file
                reason = f"{type(error).__name__}: {error}"
                if self.checkpoint:
                    raise RuntimeError(f"checkpoint to resume from cannot be read: {path}: {reason}") from error
                self.skipped.append((path, reason))
                self.logger.warning("resume: skipping %s, it cannot be read (%s)", path, reason)
        tried = "; ".join(f"{path.name}: {reason}" for path, reason in self.skipped)
        raise RuntimeError(f"resume: none of the {len(self.skipped)} checkpoints matching {self.pattern!r} in "
                           f"{self.ckpt_dir} can be read ({tried}); remove them, or set resume to false.")

    def __call__(self, engine: Any) -> None:
        candidates = self.candidates()
        if not candidates:
            self.logger.info("resume: no checkpoint matching %r in %s, starting from scratch", self.pattern,
                             self.ckpt_dir)
            return
        path, state = self._read_newest(candidates)
        load_dict = dict(self.load_dict)
        if self.engine_key:
            load_dict[self.engine_key] = engine
        # what monai.handlers.CheckpointLoader does with the file, on the dictionary read once above
        first = next(iter(load_dict))
        if len(load_dict) == 1 and first not in state:
            state = {first: state}
        prior_max_epochs = engine.state.max_epochs
        Checkpoint.load_objects(to_load=load_dict, checkpoint=state, strict=self.strict)
        if prior_max_epochs is not None and engine.state.epoch > prior_max_epochs:
            raise ValueError(
                f"Epoch count ({engine.state.epoch}) in checkpoint {path} is larger than the `engine.state.max_epochs` "
                f"({prior_max_epochs}) of engine. To further train from checkpoint, construct trainer with "
                "`max_epochs` larger than checkpoint's epoch count."
            )
        engine.state.max_epochs = prior_max_epochs
        self.loaded = path
        self.logger.info("resumed from %s at epoch %d, iteration %d", path, engine.state.epoch,
                         engine.state.iteration)


class TrainerCheckpointSaver(AtomicCheckpointSaver):
    """:class:`AtomicCheckpointSaver` that also saves the engine it is attached to (its epoch and iteration
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
        saver: the evaluator's best-model saver, an :class:`AtomicCheckpointSaver` (or
            ``monai.handlers.CheckpointSaver``) with ``save_key_metric=True`` (None: only the evaluator's best metric
            is carried).

    Example (bundle config)::

        validate:
          best_model_saver: {_target_: monai_imbalance.handlers.AtomicCheckpointSaver, save_dir: "@ckpt_dir",
                             save_dict: {model: "@network"}, save_key_metric: true, key_metric_filename: model.pt}
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
