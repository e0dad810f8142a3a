from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from ignite.engine import Engine, Events
from ignite.metrics import Average
from monai.bundle import ConfigParser
from monai.data import DataLoader, Dataset
from monai.engines import SupervisedEvaluator, SupervisedTrainer
from monai.engines.utils import IterationEvents
from monai.handlers import from_engine
from monai.transforms import Compose, Lambdad

from monai_imbalance.engines import LossWithBatchKeys
from monai_imbalance.losses import DilatedBalancedCELoss
from monai_imbalance.transforms import DilationWeightMapd

HAND_CASE = math.log(2) * (5 / 6 + 20 / 26)  # DBCE of the 5x5 hand case at P = 0.5


class Spy(torch.nn.Module):
    """Records the keyword arguments each call receives, then calls the wrapped loss."""

    def __init__(self, loss):
        super().__init__()
        self.loss = loss
        self.calls = []

    def forward(self, input, target, **kwargs):
        self.calls.append({k: v.clone() for k, v in kwargs.items()})
        return self.loss(input, target, **kwargs)


def hand_case_items(n=2):
    label = np.zeros((1, 5, 5), dtype=np.float32)
    label[0, 2, 2] = 1
    return [{"image": np.zeros((1, 5, 5), dtype=np.float32), "label": label} for _ in range(n)]


def loader(scale=1.0):
    """Two batches of the hand case with DilationWeightMapd's map (times ``scale``) under "label_weight"."""
    transforms = Compose([DilationWeightMapd(keys="label", radius=1), Lambdad("label_weight", lambda w: w * scale)])
    return DataLoader(Dataset(hand_case_items(), transforms), batch_size=1)


def zero_network():
    network = torch.nn.Conv2d(1, 2, 1)
    torch.nn.init.zeros_(network.weight)
    torch.nn.init.zeros_(network.bias)
    return network  # logits 0 everywhere: P = 0.5


def record_losses(engine):
    losses = []
    engine.add_event_handler(Events.ITERATION_COMPLETED, lambda e: losses.append(float(e.state.output[0]["loss"])))
    return losses


@pytest.mark.parametrize("scale", [1.0, 2.0])
def test_trainer_passes_the_weight_map_to_the_loss(scale):
    spy = Spy(DilatedBalancedCELoss(softmax=True, to_onehot_y=True, radius=1))
    loss = LossWithBatchKeys(spy, extra_keys={"weight_map": "label_weight"})
    network = zero_network()
    trainer = SupervisedTrainer(
        device=torch.device("cpu"),
        max_epochs=1,
        train_data_loader=loader(scale),
        network=network,
        optimizer=torch.optim.SGD(network.parameters(), lr=0.0),
        loss_function=loss,
        train_handlers=[loss],
    )
    losses = record_losses(trainer)
    trainer.run()
    assert trainer.state.iteration == 2 and len(spy.calls) == 2
    expected_map = np.where(np.add.outer(np.abs(np.arange(5) - 2), np.abs(np.arange(5) - 2)) <= 1, 1 / 6, 1 / 26)
    for call in spy.calls:
        np.testing.assert_allclose(call["weight_map"][0, 0].numpy(), scale * expected_map, rtol=1e-6)
    # the loss used the batch's map: doubling the map doubles the loss (a map computed here would not)
    assert losses == pytest.approx([scale * HAND_CASE] * 2, rel=1e-6)


def test_evaluator_stores_the_loss_and_a_metric_averages_it():
    loss = LossWithBatchKeys(
        DilatedBalancedCELoss(softmax=True, to_onehot_y=True, radius=1), extra_keys={"weight_map": "label_weight"}
    )
    evaluator = SupervisedEvaluator(
        device=torch.device("cpu"),
        val_data_loader=loader(3.0),
        network=zero_network(),
        key_val_metric={"val_loss": Average(output_transform=from_engine(["loss"], first=True))},
        val_handlers=[loss],
    )
    evaluator.run()
    assert evaluator.state.metrics["val_loss"] == pytest.approx(3.0 * HAND_CASE, rel=1e-6)


def test_bundle_config_runs_a_trainer_with_the_wrapper():
    config = {
        "network": "$make_network()",
        "loss_fn": {
            "_target_": "monai_imbalance.losses.DilatedBalancedCELoss",
            "softmax": True,
            "to_onehot_y": True,
            "radius": 1,
        },
        "loss": {
            "_target_": "monai_imbalance.engines.LossWithBatchKeys",
            "loss": "@loss_fn",
            "extra_keys": {"weight_map": "label_weight"},
        },
        "handlers": ["@loss"],
        "trainer": {
            "_target_": "SupervisedTrainer",
            "device": "$torch.device('cpu')",
            "max_epochs": 1,
            "train_data_loader": "$make_loader()",
            "network": "@network",
            "optimizer": "$torch.optim.SGD(@network.parameters(), lr=0.0)",
            "loss_function": "@loss",
            "train_handlers": "@handlers",
        },
    }
    parser = ConfigParser(config, globals={"torch": "torch", "make_network": zero_network, "make_loader": loader})
    trainer = parser.get_parsed_content("trainer")
    losses = record_losses(trainer)
    trainer.run()
    assert losses == pytest.approx([HAND_CASE] * 2, rel=1e-6)


def test_direct_calls_positional_keys_and_errors():
    inner = DilatedBalancedCELoss(softmax=True, to_onehot_y=True, radius=1)
    label = torch.zeros(1, 1, 5, 5)
    label[0, 0, 2, 2] = 1
    pred = torch.zeros(1, 2, 5, 5)
    wrapper = LossWithBatchKeys(inner, extra_keys={"weight_map": "label_weight"})
    assert wrapper(pred, label, weight_map=torch.full((1, 1, 5, 5), 2.0)).item() == pytest.approx(
        2 * 25 * math.log(2), rel=1e-6
    )
    with pytest.raises(RuntimeError, match="handlers"):
        wrapper(pred, label)  # not attached, no argument
    wrapper._batch = {"image": pred, "label": label}
    with pytest.raises(KeyError, match="label_weight"):
        wrapper(pred, label)
    positional = LossWithBatchKeys(inner, extra_keys="label_weight")
    positional._batch = {"label_weight": torch.full((1, 1, 5, 5), 1 / 25)}
    assert positional(pred, label).item() == pytest.approx(math.log(2), rel=1e-6)
    with pytest.raises(ValueError, match="at least one"):
        LossWithBatchKeys(inner, extra_keys=[])
    with pytest.raises(TypeError, match="callable"):
        LossWithBatchKeys("not a loss", extra_keys="w")


def test_list_of_heads_goes_through_to_a_deep_supervision_loss():
    from monai_imbalance.losses import DeepSupervisionLoss, DilatedBalancedCELoss

    torch.manual_seed(0)
    target = torch.zeros(2, 1, 8, 8)
    target[:, :, 3:5, 3:5] = 1
    weight_map = torch.rand(2, 1, 8, 8)
    heads = [torch.randn(2, 2, 8, 8) for _ in range(3)]
    base = DilatedBalancedCELoss(softmax=True, to_onehot_y=True, radius=1)
    wrapped = LossWithBatchKeys(DeepSupervisionLoss(base, weight_mode="same"), extra_keys={"weight_map": "w"})
    expected = sum(base(h, target, weight_map=weight_map) for h in heads)
    engine = Engine(lambda engine, batch: wrapped(heads, target))  # the map comes from the batch, not the call
    engine.register_events(*IterationEvents)
    wrapped.attach(engine)
    engine.run([{"w": weight_map}], max_epochs=1)
    torch.testing.assert_close(engine.state.output, expected)
