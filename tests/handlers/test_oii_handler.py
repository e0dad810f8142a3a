"""OutputImbalanceIndex handler, in the style of MONAI's handler tests: an ignite Engine fed two iterations."""

from __future__ import annotations

import pytest
import torch
from ignite.engine import Engine, Events

from monai_imbalance.handlers import OutputImbalanceIndex
from monai_imbalance.metrics import compute_oii


def _batch(missed: int, extra: int) -> tuple[torch.Tensor, torch.Tensor]:
    """One image 1x8x8 with a 4x4 square, a prediction missing ``missed`` and adding ``extra`` pixels (one-hot)."""
    y = torch.zeros(1, 1, 8, 8)
    y[..., 2:6, 2:6] = 1
    pred = y.clone()
    pred.view(-1)[pred.view(-1).nonzero()[:missed, 0]] = 0
    pred.view(-1)[(1 - y).view(-1).nonzero()[:extra, 0]] = 1
    return torch.cat([1 - pred, pred], 1), torch.cat([1 - y, y], 1)


def test_two_iterations_accumulate_counts():
    data = [_batch(missed=3, extra=1), _batch(missed=1, extra=0)]

    def _val_func(engine, batch):
        return batch

    engine = Engine(_val_func)
    handler = OutputImbalanceIndex(include_background=False)
    handler.attach(engine, "oii")
    engine.run(data, max_epochs=1)
    # micro: TP 16 - 3 + 16 - 1 = 28, FP 1, FN 4 over the two iterations
    assert engine.state.metrics["oii"] == pytest.approx(compute_oii(28, 1, 4))
    assert engine.state.metrics["oii"] > 0  # under-segmentation
    details = engine.state.metric_details["oii"]  # per image: counts (13, 1, 3) and (15, 0, 1)
    assert details.shape == (2, 1)
    assert details[:, 0].tolist() == pytest.approx([compute_oii(13.0, 1.0, 3.0), compute_oii(15.0, 0.0, 1.0)])
    assert details[1, 0] == 1.0  # FP = 0 < FN: pure under-segmentation


def test_per_image_details_are_written_by_metrics_saver(tmp_path):
    from monai.handlers import MetricsSaver

    data = [_batch(missed=3, extra=1), _batch(missed=1, extra=0)]
    engine = Engine(lambda e, b: b)
    OutputImbalanceIndex(include_background=False).attach(engine, "oii")
    names = iter(["case_a", "case_b"])  # one image per batch
    MetricsSaver(save_dir=str(tmp_path), metrics="*", metric_details="*", summary_ops="*",
                 batch_transform=lambda batch: [{"filename_or_obj": next(names)}]).attach(engine)
    engine.run(data, max_epochs=1)
    rows = (tmp_path / "oii_raw.csv").read_text().splitlines()
    assert len(rows) == 3  # header + one row per image
    assert rows[2].split(",")[0] == "case_b" and float(rows[2].split(",")[1]) == pytest.approx(1.0)
    assert (tmp_path / "oii_summary.csv").is_file()


def test_update_compute_and_per_class_values():
    handler = OutputImbalanceIndex(reduction="mean_batch", per_image=False)
    engine = Engine(lambda e, b: b)
    handler.attach(engine, "oii_per_class")
    y_pred, y = _batch(missed=2, extra=5)
    handler.update([y_pred, y])
    handler.update([y_pred, y])
    values = handler.compute()
    assert values.shape == (2,)
    # background: TP 48 - 5, FP 2, FN 5 per image (mirror of the foreground)
    expected = compute_oii(torch.tensor([86.0, 28.0]), torch.tensor([4.0, 10.0]), torch.tensor([10.0, 4.0]))
    torch.testing.assert_close(values, expected, check_dtype=False)


def test_logs_a_scalar_every_validation_for_tensorboard():
    epochs = []
    engine = Engine(lambda e, b: b)
    OutputImbalanceIndex(include_background=False).attach(engine, "oii")
    engine.add_event_handler(Events.EPOCH_COMPLETED, lambda e: epochs.append(e.state.metrics["oii"]))
    engine.run([_batch(1, 0), _batch(0, 2)], max_epochs=2)
    assert len(epochs) == 2 and all(isinstance(v, float) for v in epochs)


def test_nan_predictions_are_nan_details_left_out_and_warned(caplog):
    # a NaN prediction must not read as an OII of 0, "perfectly balanced"
    good, bad = _batch(missed=3, extra=1), _batch(missed=1, extra=0)
    bad[0][0, 1, 0, 0] = float("nan")
    engine = Engine(lambda e, b: b)
    handler = OutputImbalanceIndex(include_background=False)
    handler.attach(engine, "oii")
    with caplog.at_level("WARNING", logger="monai_imbalance.handlers.oii"):
        engine.run([good, bad], max_epochs=1)
    assert engine.state.metrics["oii"] == pytest.approx(compute_oii(13, 1, 3))  # the image without NaN
    details = engine.state.metric_details["oii"]
    assert details[0, 0] == pytest.approx(compute_oii(13.0, 1.0, 3.0)) and torch.isnan(details[1, 0])
    assert handler.nan_images == 1
    assert "oii: 1 of 2 images had NaN or infinite predictions; their OII is NaN" in caplog.text


def test_only_nan_predictions_give_nan(caplog):
    pred, y = _batch(missed=1, extra=1)
    engine = Engine(lambda e, b: b)
    OutputImbalanceIndex(include_background=False).attach(engine, "oii")
    with caplog.at_level("WARNING", logger="monai_imbalance.handlers.oii"):
        engine.run([(torch.full_like(pred, float("nan")), y)], max_epochs=1)
    assert engine.state.metrics["oii"] != engine.state.metrics["oii"]  # NaN, not 0
    assert "1 of 1 images" in caplog.text
