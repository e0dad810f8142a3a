"""Nothing lost on a crash: a short MONAI training (SupervisedTrainer + SupervisedEvaluator, the bundles' savers and
resume) is killed with SIGKILL inside a checkpoint write and at random points, and resumed each time.

Every resume must succeed, from the newest checkpoint on disk; model.pt must always be loadable and its score never
decrease; the best metric carried by BestMetricState must be the best of the epochs resumed; at the end of each run
only the newest ``n_saved`` checkpoints remain, and no temporary file. The validation score is a fixed function of
the epoch that sometimes decreases, so a lost best model shows.

The training runs in forked children (no re-import of torch per kill); a child kills itself inside its k-th
``torch.save`` after writing half the bytes, or at its k-th iteration, or is killed by the parent after a random delay.
"""

from __future__ import annotations

import io
import json
import multiprocessing
import os
import random
import re
import signal
import time
import traceback
from pathlib import Path

import pytest
import torch
from ignite.engine import Events
from ignite.metrics import Metric
from monai.engines import SupervisedEvaluator, SupervisedTrainer
from monai.handlers import ValidationHandler

from monai_imbalance.handlers import (
    AtomicCheckpointSaver,
    BestMetricState,
    ResumeFromCheckpoint,
    TrainerCheckpointSaver,
)

pytestmark = pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(),
                                reason="needs the fork start method (SIGKILL of a forked training)")

# validation score of each epoch: it falls after epochs 2, 4 and 6, so a resumed run that forgot its best would
# replace model.pt with a worse model
SCORES = {1: 0.30, 2: 0.50, 3: 0.45, 4: 0.60, 5: 0.40, 6: 0.70, 7: 0.65, 8: 0.75}
MAX_EPOCHS = len(SCORES)
EPOCH_LENGTH = 3
N_SAVED = 2
_EPOCH = re.compile(r"checkpoint_epoch=(\d+)\.pt")


class _EpochScore(Metric):
    """The score of the evaluator's epoch (the trainer's epoch): SCORES, whatever the network predicts."""

    def reset(self) -> None:
        pass

    def update(self, output) -> None:
        pass

    def compute(self) -> float:
        return 0.0

    def completed(self, engine, name: str) -> None:
        engine.state.metrics[name] = SCORES[engine.state.epoch]


class _ScoreTag:
    """Saved in model.pt next to the network: the score and epoch of the model in it."""

    def __init__(self, evaluator) -> None:
        self.evaluator = evaluator

    def state_dict(self) -> dict:
        return {"score": float(self.evaluator.state.metrics["score"]), "epoch": int(self.evaluator.state.epoch)}

    def load_state_dict(self, state) -> None:
        pass


def _train(root: Path, kill_at_save: int | None = None, kill_at_iteration: int | None = None) -> None:
    """One training run in ``root/ckpt``, resuming from what is there, as a bundle's train.yaml builds it; it kills
    its own process inside its ``kill_at_save``-th torch.save (after half the bytes) or at its
    ``kill_at_iteration``-th iteration. Each resume appends its epoch and best metric to ``root/resumes.log``."""
    torch.manual_seed(0)
    ckpt = root / "ckpt"
    net = torch.nn.Linear(4, 1)
    opt = torch.optim.SGD(net.parameters(), lr=0.01)
    batches = [{"image": torch.randn(2, 4), "label": torch.randn(2, 1)} for _ in range(EPOCH_LENGTH)]
    best_saver = AtomicCheckpointSaver(str(ckpt), {"model": net}, save_key_metric=True, key_metric_filename="model.pt")
    evaluator = SupervisedEvaluator(device=torch.device("cpu"), val_data_loader=batches[:1], epoch_length=1,
                                    network=net, key_val_metric={"score": _EpochScore()})
    best_saver.save_dict["tag"] = _ScoreTag(evaluator)
    best_state = BestMetricState(best_saver)
    best_saver.attach(evaluator)
    best_state.attach(evaluator)
    resume = ResumeFromCheckpoint({"model": net, "optimizer": opt, "best_model": best_state}, ckpt_dir=ckpt)
    saver = TrainerCheckpointSaver(str(ckpt), {"model": net, "optimizer": opt, "best_model": best_state},
                                   save_interval=1, n_saved=N_SAVED, save_final=True,
                                   final_filename="checkpoint_final.pt")
    trainer = SupervisedTrainer(
        device=torch.device("cpu"), max_epochs=MAX_EPOCHS, train_data_loader=batches, epoch_length=EPOCH_LENGTH,
        network=net, optimizer=opt, loss_function=torch.nn.MSELoss(),
        train_handlers=[resume, ValidationHandler(validator=evaluator, interval=1, epoch_level=True), saver])

    @trainer.on(Events.STARTED)
    def _log_resume(engine) -> None:
        if resume.loaded is not None:
            line = json.dumps({"epoch": engine.state.epoch, "best": evaluator.state.best_metric}) + "\n"
            with open(root / "resumes.log", "a") as log:
                log.write(line)

    if kill_at_iteration is not None:
        iterations = []  # of this run, not the trainer's count (restored by the resume)

        @trainer.on(Events.ITERATION_COMPLETED)
        def _die(engine) -> None:
            iterations.append(engine.state.iteration)
            if len(iterations) == kill_at_iteration:
                os.kill(os.getpid(), signal.SIGKILL)
    if kill_at_save is not None:
        real_save, calls = torch.save, []

        def save_half_then_die(obj, f, *args, **kwargs):
            calls.append(f)
            if len(calls) < kill_at_save:
                return real_save(obj, f, *args, **kwargs)
            buffer = io.BytesIO()
            real_save(obj, buffer, *args, **kwargs)
            half = buffer.getvalue()[: len(buffer.getvalue()) // 2]
            if isinstance(f, (str, os.PathLike)):  # an in-place write (MONAI's own saver) gets a path
                with open(f, "wb") as file:
                    file.write(half)
            else:
                f.write(half)
                f.flush()
            os.kill(os.getpid(), signal.SIGKILL)

        torch.save = save_half_then_die
    trainer.run()


def _child(root: Path, **kill) -> None:
    torch.set_num_threads(1)  # no OpenMP pool in a forked child
    try:
        _train(root, **kill)
    except BaseException:
        (root / "error.txt").write_text(traceback.format_exc())
        os._exit(1)
    os._exit(0)


def _run_child(root: Path, kill_after: float | None = None, **kill) -> int:
    """Exit code of one forked training run (-SIGKILL when killed)."""
    process = multiprocessing.get_context("fork").Process(target=_child, args=(root,), kwargs=kill)
    process.start()
    process.join(kill_after)
    if process.is_alive():
        os.kill(process.pid, signal.SIGKILL)
        process.join()
    return process.exitcode


def _newest_epoch(ckpt: Path) -> int:
    epochs = [int(m.group(1)) for p in ckpt.glob("checkpoint_epoch=*.pt") if (m := _EPOCH.fullmatch(p.name))]
    return max(epochs, default=0)


def _best_up_to(epoch: int) -> float:
    return max((SCORES[e] for e in range(1, epoch + 1)), default=-1.0)


class _Run:
    """One training, killed and resumed until it completes, with the invariants checked after every child."""

    def __init__(self, root: Path) -> None:
        self.root, self.ckpt = root, root / "ckpt"
        root.mkdir()
        self.model_score = -1.0
        self.resumes_checked = 0
        self.last_best = -1.0

    def step(self, kill_after: float | None = None, **kill) -> int:
        expected_epoch = _newest_epoch(self.ckpt)
        code = _run_child(self.root, kill_after=kill_after, **kill)
        error = self.root / "error.txt"
        assert code in (0, -signal.SIGKILL), f"training failed (exit {code}, killed by {kill or kill_after}):\n" + (
            error.read_text() if error.is_file() else "")
        self._check(expected_epoch)
        return code

    def _check(self, expected_epoch: int) -> None:
        model = self.ckpt / "model.pt"
        if model.exists():
            tag = torch.load(model, weights_only=True)["tag"]  # always loadable: never half written
            assert tag["score"] >= self.model_score, f"model.pt lost its best: {tag} after {self.model_score}"
            assert tag["score"] == _best_up_to(tag["epoch"]), f"model.pt is not a best model: {tag}"
            self.model_score = tag["score"]
        log = self.root / "resumes.log"
        lines = log.read_text().splitlines() if log.is_file() else []
        for line in lines[self.resumes_checked:]:
            resumed = json.loads(line)
            # resumed from the newest checkpoint on disk (each one readable), with the best of the epochs before it
            assert resumed["epoch"] == expected_epoch, (resumed, expected_epoch)
            assert resumed["best"] == _best_up_to(resumed["epoch"]) >= self.last_best, (resumed, self.last_best)
            self.last_best = resumed["best"]
        self.resumes_checked = len(lines)

    def check_completed(self) -> None:
        names = sorted(p.name for p in self.ckpt.iterdir())
        newest = [f"checkpoint_epoch={e}.pt" for e in range(MAX_EPOCHS - N_SAVED + 1, MAX_EPOCHS + 1)]
        assert names == sorted([*newest, "checkpoint_final.pt", "model.pt"]), names  # n_saved kept, no temp file
        assert self.model_score == max(SCORES.values())
        final = torch.load(self.ckpt / "checkpoint_final.pt", weights_only=True)
        assert final["best_model"]["best_metric"] == max(SCORES.values())


@pytest.fixture(scope="module")
def warm(tmp_path_factory) -> float:
    """One uninterrupted run in this process, so that the forked children find torch's lazy imports (the optimizer's
    torch._dynamo: over a second) done; returns the wall time of an uninterrupted forked run."""
    root = tmp_path_factory.mktemp("warm")
    (root / "in_process").mkdir()
    _train(root / "in_process")
    start = time.perf_counter()
    run = _Run(root / "forked")
    assert run.step() == 0
    run.check_completed()
    return time.perf_counter() - start


def test_kill_inside_the_checkpoint_write(tmp_path, warm):
    # saves of a run from scratch: model.pt (1), checkpoint_epoch=1.pt (2), model.pt (3), checkpoint_epoch=2.pt (4),
    # checkpoint_epoch=3.pt (5), model.pt (6), checkpoint_epoch=4.pt (7), the one before which ignite deletes
    # checkpoint_epoch=2.pt, ...
    run = _Run(tmp_path / "run")
    assert run.step(kill_at_save=7) == -signal.SIGKILL
    # resumed at epoch 3 (best 0.50, while model.pt has epoch 4's 0.60): epoch 4 rewrites model.pt first (save 1)
    assert run.step(kill_at_save=1) == -signal.SIGKILL
    assert run.resumes_checked == 1, "the run after the kill inside checkpoint_epoch=4.pt did not resume"
    # resumed at epoch 3 again; saves 2-8 are epochs 4-8, save 9 the final checkpoint
    assert run.step(kill_at_save=9) == -signal.SIGKILL
    assert run.resumes_checked == 2, "the run after the kill inside model.pt did not resume"
    assert sorted(p.name for p in run.ckpt.iterdir() if not p.name.startswith(".")) == [
        "checkpoint_epoch=7.pt", "checkpoint_epoch=8.pt", "model.pt"]
    assert run.step() == 0  # resumed at epoch 8: writes the final checkpoint
    run.check_completed()
    assert run.resumes_checked == 3


def _saves_left(epoch: int) -> int:
    """The torch.save calls of a run resumed at ``epoch``: a checkpoint per epoch, model.pt at each new best, the
    final checkpoint."""
    best, saves = _best_up_to(epoch), 1
    for later in range(epoch + 1, MAX_EPOCHS + 1):
        saves += 1 + (SCORES[later] > best)
        best = max(best, SCORES[later])
    return saves


def test_random_kills_never_lose_the_checkpoint_or_the_best(tmp_path, warm):
    rng = random.Random(17)
    kills = {"save": 0, "iteration": 0, "timer": 0}
    runs = [_Run(tmp_path / "run0")]
    children = 0
    while min(kills.values()) < 8:
        kind = min(kills, key=kills.get)  # the three kinds in turn
        run, epoch = runs[-1], _newest_epoch(runs[-1].ckpt)
        if kind == "save":
            code = run.step(kill_at_save=rng.randint(1, _saves_left(epoch)))
        elif kind == "iteration":
            code = run.step(kill_at_iteration=rng.randint(1, max(1, (MAX_EPOCHS - epoch) * EPOCH_LENGTH)))
        else:
            code = run.step(kill_after=rng.uniform(0.0, warm * (MAX_EPOCHS - epoch + 1) / MAX_EPOCHS))
        children += 1
        if code == -signal.SIGKILL:
            kills[kind] += 1
        else:
            run.check_completed()
            runs.append(_Run(tmp_path / f"run{len(runs)}"))
        assert children < 80, f"too few kills landed: {kills}"
    assert runs[-1].step() == 0  # the last killed run resumed to its end
    runs[-1].check_completed()
    assert sum(kills.values()) >= 24
    assert sum(run.resumes_checked for run in runs) >= 16  # most kills left a checkpoint to resume from
