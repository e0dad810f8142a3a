"""BestMetricState: a resumed run keeps the best model of the whole run, not of the part after the restart."""

from __future__ import annotations

import pytest
import torch
from ignite.engine import Engine, Events
from monai.handlers import CheckpointSaver

from monai_imbalance.handlers import AtomicCheckpointSaver, BestMetricState


def _evaluator(net: torch.nn.Linear, scores: list[float], folder, state=None, saver_class=CheckpointSaver):
    """An engine whose epoch e sets the network's bias to e's score and reports it as 'dice'."""
    engine = Engine(lambda e, b: None)
    engine.state.best_metric, engine.state.best_metric_epoch = -1.0, -1

    @engine.on(Events.EPOCH_COMPLETED)
    def _score(e):
        score = scores[e.state.epoch - 1]
        net.bias.data.fill_(score)
        e.state.metrics["dice"] = score
        if score > e.state.best_metric:
            e.state.best_metric, e.state.best_metric_epoch = score, e.state.epoch

    saver = saver_class(str(folder), {"model": net}, save_key_metric=True, key_metric_name="dice",
                        key_metric_filename="model.pt")
    saver.attach(engine)
    best = BestMetricState(saver)
    if state is not None:
        best.load_state_dict(state)
    best.attach(engine)
    return engine, best


def _saved_bias(folder) -> float:
    return float(torch.load(folder / "model.pt", weights_only=True)["bias"][0])


@pytest.mark.parametrize("saver_class", [CheckpointSaver, AtomicCheckpointSaver])
def test_resumed_run_replaces_model_only_with_a_better_one(tmp_path, saver_class):
    net = torch.nn.Linear(2, 1)
    engine, best = _evaluator(net, [0.5, 0.8, 0.7], tmp_path, saver_class=saver_class)
    engine.run([0], max_epochs=3)
    assert _saved_bias(tmp_path) == pytest.approx(0.8)
    state = best.state_dict()
    assert state["best_metric"] == pytest.approx(0.8) and state["best_metric_epoch"] == 2
    assert [priority for priority, _ in state["saved"]] == [pytest.approx(0.8)]  # the score of model.pt
    # through a checkpoint file, as the trainer's checkpoints carry it
    torch.save({"best_model": state}, tmp_path / "ckpt.pt")
    loaded = torch.load(tmp_path / "ckpt.pt", weights_only=True)["best_model"]

    # the resumed run scores 0.6 first: without the state, model.pt (0.8) would be overwritten
    engine2, _ = _evaluator(net, [0.6, 0.9], tmp_path, state=loaded, saver_class=saver_class)
    assert engine2.state.best_metric == pytest.approx(0.8) and engine2.state.best_metric_epoch == 2
    engine2.run([0], max_epochs=1)
    assert _saved_bias(tmp_path) == pytest.approx(0.8)
    assert engine2.state.best_metric == pytest.approx(0.8)
    engine2.run([0], max_epochs=2)
    assert _saved_bias(tmp_path) == pytest.approx(0.9)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt.pt", "model.pt"]  # replaced, not deleted after


def test_fresh_saver_overwrites_without_the_state(tmp_path):
    # what BestMetricState prevents: a new saver knows nothing of the earlier best
    net = torch.nn.Linear(2, 1)
    engine, _ = _evaluator(net, [0.8], tmp_path)
    engine.run([0], max_epochs=1)
    engine2, _ = _evaluator(net, [0.3], tmp_path)
    engine2.run([0], max_epochs=1)
    assert _saved_bias(tmp_path) == pytest.approx(0.3)


def test_bad_saver_and_bad_state():
    for saver_class in (CheckpointSaver, AtomicCheckpointSaver):
        with pytest.raises(ValueError, match="save_key_metric=True"):
            BestMetricState(saver_class("/tmp", {"model": torch.nn.Linear(1, 1)}, save_final=True))
    with pytest.raises(KeyError, match="best_metric_epoch"):
        BestMetricState().load_state_dict({"saved": [], "best_metric": 0.1})
    # without a saver, only the evaluator's best metric is carried
    state = BestMetricState()
    state.load_state_dict({"saved": [(0.4, "model.pt")], "best_metric": 0.4, "best_metric_epoch": 3})
    engine = Engine(lambda e, b: None)
    state.attach(engine)
    assert engine.state.best_metric == 0.4 and engine.state.best_metric_epoch == 3
    assert state.state_dict()["saved"] == []
