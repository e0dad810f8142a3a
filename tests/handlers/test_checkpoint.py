"""Resumable trainer checkpoints: saved every interval with the trainer state, resumed from the newest readable one,
and a fresh start when disabled or when there is nothing to resume from (moved from
tests/bundles/test_bundle_common.py); atomic writes that delete the superseded file only after the new one is in
place; a resumed run that prunes the earlier run's checkpoints to n_saved and removes the temporary files of killed
writes."""

from __future__ import annotations

import io
import logging

import pytest
import torch
from ignite.engine import Engine, Events

from monai_imbalance.handlers import (
    AtomicCheckpointSaver,
    ResumeFromCheckpoint,
    TrainerCheckpointSaver,
    atomic_save,
    latest_checkpoint,
)


def _trainer(max_epochs=2):
    net = torch.nn.Linear(2, 1)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)

    def step(engine, batch):
        opt.zero_grad()
        loss = net(batch).pow(2).mean()
        loss.backward()
        opt.step()
        return {"loss": loss}

    return Engine(step), net, opt


def test_checkpoint_saver_and_resume(tmp_path):
    data = [torch.ones(3, 2)] * 3
    engine, net, opt = _trainer()
    TrainerCheckpointSaver(str(tmp_path), {"model": net, "optimizer": opt}, save_interval=1, n_saved=1).attach(engine)
    engine.run(data, max_epochs=1)
    path = latest_checkpoint(tmp_path)
    assert path is not None and path.name == "checkpoint_epoch=1.pt"
    assert "trainer" in torch.load(path, weights_only=True)
    epochs = []
    engine2, net2, opt2 = _trainer()
    resume = ResumeFromCheckpoint({"model": net2, "optimizer": opt2}, ckpt_dir=tmp_path)
    resume.attach(engine2)
    engine2.add_event_handler(Events.EPOCH_STARTED, lambda e: epochs.append(e.state.epoch))
    engine2.run(data, max_epochs=2)
    assert resume.loaded == path and epochs == [2] and engine2.state.iteration == 6
    assert torch.equal(net.weight, net2.weight) is False  # trained one more epoch from the restored weights
    # disabled, or nothing to resume from: a fresh start
    engine3, net3, opt3 = _trainer()
    off = ResumeFromCheckpoint({"model": net3}, ckpt_dir=tmp_path / "none")
    off.attach(engine3)
    engine3.run(data, max_epochs=1)
    assert off.loaded is None
    with pytest.raises(FileNotFoundError):
        ResumeFromCheckpoint({"model": net3}, checkpoint=tmp_path / "missing.pt").find()


def test_latest_checkpoint_orders_by_step(tmp_path):
    for name in ("checkpoint_epoch=2.pt", "checkpoint_epoch=10.pt", "checkpoint_final.pt", "model.pt"):
        (tmp_path / name).write_bytes(b"x")
    assert latest_checkpoint(tmp_path).name == "checkpoint_epoch=10.pt"
    assert latest_checkpoint(tmp_path / "absent") is None


def _checkpoints(folder):
    return sorted(p.name for p in folder.iterdir())


def _truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def test_atomic_save_leaves_the_old_file_when_the_write_fails(tmp_path, monkeypatch):
    path = tmp_path / "model.pt"
    atomic_save({"w": torch.ones(2)}, path)
    real_save = torch.save

    def half_then_fail(obj, f, **kwargs):
        buffer = io.BytesIO()
        real_save(obj, buffer, **kwargs)
        f.write(buffer.getvalue()[: len(buffer.getvalue()) // 2])
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", half_then_fail)
    with pytest.raises(OSError, match="disk full"):
        atomic_save({"w": torch.zeros(2)}, path)
    monkeypatch.undo()
    assert _checkpoints(tmp_path) == ["model.pt"]  # no temporary file left either
    assert torch.equal(torch.load(path, weights_only=True)["w"], torch.ones(2))


@pytest.mark.parametrize("saver_kwargs, names", [
    ({"save_interval": 1, "n_saved": 1}, ["checkpoint_epoch=3.pt"]),
    ({"save_key_metric": True, "key_metric_name": "score", "key_metric_filename": "model.pt"}, ["model.pt"]),
    ({"save_final": True, "final_filename": "checkpoint_final.pt"}, ["checkpoint_final.pt"]),
])
def test_new_file_is_in_place_before_the_old_one_goes(tmp_path, monkeypatch, saver_kwargs, names):
    # ignite deletes the superseded file first; here, whenever a file is written, the previous one still exists
    engine, net, opt = _trainer()
    engine.add_event_handler(Events.EPOCH_COMPLETED, lambda e: e.state.metrics.update(score=float(e.state.epoch)))
    AtomicCheckpointSaver(str(tmp_path), {"model": net, "optimizer": opt}, **saver_kwargs).attach(engine)
    on_disk_at_write = []
    real_save = torch.save

    def recording_save(obj, f, **kwargs):
        on_disk_at_write.append([n for n in _checkpoints(tmp_path) if n.endswith(".pt")])
        real_save(obj, f, **kwargs)

    monkeypatch.setattr(torch, "save", recording_save)
    runs = [1, 2] if saver_kwargs.get("save_final") else [3]  # the final checkpoint is written once per run
    for max_epochs in runs:
        engine.run([torch.ones(3, 2)] * 2, max_epochs=max_epochs)
    monkeypatch.undo()
    assert len(on_disk_at_write) >= 2 and all(on_disk_at_write[1:])
    assert _checkpoints(tmp_path) == names
    torch.load(tmp_path / names[0], weights_only=True)


def test_resume_skips_unreadable_checkpoints(tmp_path, caplog):
    data = [torch.ones(3, 2)] * 3
    engine, net, opt = _trainer()
    keep_all = TrainerCheckpointSaver(str(tmp_path), {"model": net, "optimizer": opt}, save_interval=1, n_saved=None)
    keep_all.attach(engine)
    engine.run(data, max_epochs=3)
    _truncate(tmp_path / "checkpoint_epoch=3.pt")
    (tmp_path / "checkpoint_epoch=2.pt").write_bytes(b"")
    # a killed atomic write's temporary file is never a candidate, even for a pattern that matches it
    (tmp_path / ".checkpoint_epoch=4.pt.0123abcd.tmp").write_bytes(b"x")
    engine2, net2, opt2 = _trainer(max_epochs=4)
    resume = ResumeFromCheckpoint({"model": net2, "optimizer": opt2}, ckpt_dir=tmp_path, pattern="*checkpoint*")
    resume.attach(engine2)
    engine2.add_event_handler(Events.STARTED, lambda e: pytest.fail("not resumed") if e.state.epoch != 1 else None)
    with caplog.at_level(logging.WARNING, logger="monai_imbalance.handlers.checkpoint"):
        engine2.run(data, max_epochs=2)
    assert resume.loaded == tmp_path / "checkpoint_epoch=1.pt" and engine2.state.epoch == 2
    assert [p.name for p, _ in resume.skipped] == ["checkpoint_epoch=3.pt", "checkpoint_epoch=2.pt"]
    for name in ("checkpoint_epoch=3.pt", "checkpoint_epoch=2.pt"):
        assert any(name in r.getMessage() and "cannot be read" in r.getMessage() for r in caplog.records)
    assert "zip archive" in resume.skipped[0][1] or "Error" in resume.skipped[0][1]  # the error itself is named


def test_resume_fails_clearly_when_nothing_is_readable(tmp_path):
    (tmp_path / "checkpoint_epoch=1.pt").write_bytes(b"garbage")
    (tmp_path / "checkpoint_epoch=2.pt").write_bytes(b"")
    engine, net, _ = _trainer()
    resume = ResumeFromCheckpoint({"model": net}, ckpt_dir=tmp_path)
    with pytest.raises(RuntimeError, match=r"none of the 2 checkpoints .* in .*") as error:
        resume(engine)
    message = str(error.value)
    assert str(tmp_path) in message and "checkpoint_epoch=1.pt" in message and "checkpoint_epoch=2.pt" in message
    # an explicit checkpoint is not replaced by another one: its own error
    with pytest.raises(RuntimeError, match=r"checkpoint to resume from cannot be read: .*checkpoint_epoch=1\.pt"):
        ResumeFromCheckpoint({"model": net}, checkpoint=tmp_path / "checkpoint_epoch=1.pt")(engine)
    torch.save([1, 2], tmp_path / "checkpoint_epoch=3.pt")  # readable, but not a checkpoint dictionary
    with pytest.raises(RuntimeError, match=r"checkpoint_epoch=3\.pt: TypeError: holds a list"):
        resume(engine)


def test_resumed_run_keeps_only_n_saved_and_removes_unfinished_writes(tmp_path):
    data = [torch.ones(3, 2)] * 3
    engine, net, opt = _trainer()
    # an earlier run that kept more (or was killed between writing a checkpoint and deleting the old one)
    keep_all = TrainerCheckpointSaver(str(tmp_path), {"model": net, "optimizer": opt}, save_interval=1, n_saved=None)
    keep_all.attach(engine)
    engine.run(data, max_epochs=3)
    stale = tmp_path / ".checkpoint_epoch=4.pt.89abcdef.tmp"
    stale.write_bytes(b"half")
    foreign = tmp_path / ".other.pt.89abcdef.tmp"  # not this saver's: left alone
    foreign.write_bytes(b"half")
    later = tmp_path / "checkpoint_epoch=9.pt"  # a later step than the resumed run: another run's, left alone
    torch.save({}, later)
    later.touch()
    engine2, net2, opt2 = _trainer()
    resume = ResumeFromCheckpoint({"model": net2, "optimizer": opt2}, checkpoint=tmp_path / "checkpoint_epoch=3.pt")
    resume.attach(engine2)
    saver = TrainerCheckpointSaver(str(tmp_path), {"model": net2, "optimizer": opt2}, save_interval=1, n_saved=2)
    saver.attach(engine2)
    engine2.add_event_handler(Events.EPOCH_STARTED, lambda e: stale.exists() and pytest.fail("temporary file kept"))
    engine2.run(data, max_epochs=4)
    assert _checkpoints(tmp_path) == [".other.pt.89abcdef.tmp", "checkpoint_epoch=3.pt", "checkpoint_epoch=4.pt",
                                      "checkpoint_epoch=9.pt"]


def test_run_resumed_at_its_last_epoch_prunes_at_the_end(tmp_path):
    # as if killed after checkpoint_epoch=3.pt was in place but before checkpoint_epoch=2.pt was deleted (n_saved=1):
    # the resumed run has no epoch left, so no interval checkpoint prunes; the end of the run does
    data = [torch.ones(3, 2)] * 3
    engine, net, opt = _trainer()
    TrainerCheckpointSaver(str(tmp_path), {"model": net, "optimizer": opt}, save_interval=1, n_saved=2).attach(engine)
    engine.run(data, max_epochs=3)
    assert _checkpoints(tmp_path) == ["checkpoint_epoch=2.pt", "checkpoint_epoch=3.pt"]
    engine2, net2, opt2 = _trainer()
    ResumeFromCheckpoint({"model": net2, "optimizer": opt2}, ckpt_dir=tmp_path).attach(engine2)
    saver = TrainerCheckpointSaver(str(tmp_path), {"model": net2, "optimizer": opt2}, save_interval=1, n_saved=1)
    saver.attach(engine2)
    engine2.run(data, max_epochs=3)
    assert engine2.state.epoch == 3 and _checkpoints(tmp_path) == ["checkpoint_epoch=3.pt"]
