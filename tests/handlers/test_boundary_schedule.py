from __future__ import annotations

import pytest
from ignite.engine import Engine, Events
from monai.losses import DiceLoss

from monai_imbalance.engines import LossWithBatchKeys
from monai_imbalance.handlers import BoundaryWeightScheduler
from monai_imbalance.losses import BoundaryLoss, RegionBoundaryLoss


def combined(rebalance=False):
    return RegionBoundaryLoss(
        DiceLoss(softmax=True, to_onehot_y=True), BoundaryLoss(softmax=True, to_onehot_y=True), rebalance=rebalance
    )


def run_epochs(scheduler, loss, epochs):
    engine = Engine(lambda e, b: None)
    scheduler.attach(engine)
    seen = []
    engine.add_event_handler(Events.ITERATION_STARTED, lambda e: seen.append(round(loss.boundary_weight, 10)))
    engine.run([0], max_epochs=epochs)
    return seen


def test_weight_rises_each_epoch_kervadec_schedule():
    loss = combined()
    assert run_epochs(BoundaryWeightScheduler(loss), loss, 4) == [0.01, 0.02, 0.03, 0.04]


def test_cap_rebalance_and_wrapped_loss():
    loss = combined()
    scheduler = BoundaryWeightScheduler(loss, initial_weight=0.5, step=0.25, max_weight=0.9)
    assert run_epochs(scheduler, loss, 4) == [0.5, 0.75, 0.9, 0.9]
    rebalanced = combined(rebalance=True)
    wrapper = LossWithBatchKeys(rebalanced, extra_keys={"dist_map": "label_sdm"})
    scheduler = BoundaryWeightScheduler(wrapper, initial_weight=0.6, step=0.3)
    assert scheduler.target is rebalanced and scheduler.max_weight == 1.0
    assert run_epochs(scheduler, rebalanced, 3) == [0.6, 0.9, 1.0]
    assert scheduler.weight_at(100) == 1.0


def test_bad_arguments():
    with pytest.raises(TypeError, match="boundary_weight"):
        BoundaryWeightScheduler(DiceLoss())
    with pytest.raises(ValueError, match=">= 0"):
        BoundaryWeightScheduler(combined(), step=-0.01)
    with pytest.raises(ValueError, match="max_weight"):
        BoundaryWeightScheduler(combined(), initial_weight=0.5, max_weight=0.1)
