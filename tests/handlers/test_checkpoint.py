"""Resumable trainer checkpoints: saved every interval with the trainer state, resumed from the newest, and a fresh
start when disabled or when there is nothing to resume from (moved from tests/bundles/test_bundle_common.py)."""

from __future__ import annotations

import pytest
import torch
from ignite.engine import Engine, Events

from monai_imbalance.handlers import ResumeFromCheckpoint, TrainerCheckpointSaver, latest_checkpoint


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
