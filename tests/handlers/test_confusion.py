"""Per-image confusion-matrix metrics in an engine, and the confusion counts shared by the precision, recall, accuracy
and OII handlers: one computation per image instead of four, the same metrics, details and ``MetricsSaver`` files as
handlers counting for themselves."""

from __future__ import annotations

import monai.metrics.confusion_matrix as monai_confusion
import pytest
import torch
from ignite.engine import Engine
from monai.handlers import MetricsSaver

import monai_imbalance.metrics.confusion as confusion
import monai_imbalance.metrics.oii as oii
from monai_imbalance.handlers import OutputImbalanceIndex, PerImageConfusionMatrix
from monai_imbalance.metrics import ConfusionCountsMetric

NAMES = ("precision", "recall", "accuracy")


def test_per_image_confusion_matrix_details():
    engine = Engine(lambda e, b: b)
    handler = PerImageConfusionMatrix(metric_name="precision", output_transform=lambda x: x)
    handler.attach(engine, "val_precision")
    pred = torch.zeros(2, 1, 4, 4)
    label = torch.zeros(2, 1, 4, 4)
    pred[0, 0, :2] = 1  # 8 predicted, 4 true
    label[0, 0, 0] = 1
    pred[1, 0, 0] = 1  # 4 predicted, all true
    label[1, 0, 0] = 1
    engine.run([([pred[0:1], pred[1:2]], [label[0:1], label[1:2]])])
    details = engine.state.metric_details["val_precision"]
    assert torch.allclose(details.flatten(), torch.tensor([0.5, 1.0]))
    assert engine.state.metrics["val_precision"] == pytest.approx(0.75)


def _batches(num_classes: int = 3) -> list[dict]:
    """Engine outputs as MONAI's evaluators leave them: decollated lists of channel-first one-hot tensors (and one
    batch-first batch), with an image name per item for ``MetricsSaver``."""
    g = torch.Generator().manual_seed(0)
    out = []
    for i in range(3):
        hot = lambda x: torch.nn.functional.one_hot(x, num_classes).movedim(-1, 1).float()  # noqa: E731
        pred = hot(torch.randint(0, num_classes, (2, 6, 5), generator=g))
        label = hot((torch.rand(2, 6, 5, generator=g) * num_classes * 0.6).long())
        names = [f"img{i}_{k}.png" for k in range(2)]
        out.append({"pred": pred if i == 1 else list(pred), "label": label if i == 1 else list(label),
                    "names": names})
    return out


def _evaluate(tmp_path, shared: bool, runs: int = 2):
    engine = Engine(lambda e, b: b)
    counts = ConfusionCountsMetric() if shared else None
    transform = lambda out: (out["pred"], out["label"])  # noqa: E731
    for name in NAMES:
        PerImageConfusionMatrix(metric_name=name, counts=counts, output_transform=transform).attach(engine,
                                                                                                  f"val_{name}")
    OutputImbalanceIndex(counts=counts, output_transform=transform).attach(engine, "val_oii")
    MetricsSaver(save_dir=str(tmp_path), metrics="*", metric_details="*", summary_ops="*",
                 batch_transform=lambda b: [{"filename_or_obj": n} for n in b["names"]]).attach(engine)
    for _ in range(runs):  # a second run (the next validation) starts from empty counts
        engine.run(_batches())
    return engine


def test_shared_counts_give_the_same_metrics_details_and_files(tmp_path):
    separate = _evaluate(tmp_path / "separate", shared=False)
    shared = _evaluate(tmp_path / "shared", shared=True)
    assert list(shared.state.metrics) == ["val_precision", "val_recall", "val_accuracy", "val_oii"]
    assert shared.state.metrics == separate.state.metrics
    for name, details in separate.state.metric_details.items():
        ours = shared.state.metric_details[name]
        assert ours.shape == (6, 3) and ours.dtype == details.dtype and torch.equal(ours.nan_to_num(-7),
                                                                                     details.nan_to_num(-7)), name
    files = sorted(p.name for p in (tmp_path / "separate").iterdir())
    assert "val_precision_raw.csv" in files and "val_oii_raw.csv" in files and "metrics.csv" in files
    assert files == sorted(p.name for p in (tmp_path / "shared").iterdir())
    for name in files:
        assert (tmp_path / "shared" / name).read_text() == (tmp_path / "separate" / name).read_text(), name


def test_one_confusion_computation_per_image(tmp_path, monkeypatch):
    calls = {"shared": 0, "monai": 0, "oii": 0}

    def counting(key, fn):
        def wrapped(*args, **kwargs):
            calls[key] += 1
            return fn(*args, **kwargs)

        return wrapped

    for module, name, key in ((confusion, "compute_confusion_counts", "shared"),
                              (monai_confusion, "get_confusion_matrix", "monai"), (oii, "compute_oii_counts", "oii")):
        monkeypatch.setattr(module, name, counting(key, getattr(module, name)))
    _evaluate(tmp_path / "shared", shared=True, runs=1)
    # 3 iterations: two decollated (2 images each, one call per image, as every MONAI cumulative metric) and one
    # batch-first (one call): 5 computations, each for the 4 metrics
    assert calls == {"shared": 5, "monai": 0, "oii": 0}
    calls.update(shared=0)
    _evaluate(tmp_path / "separate", shared=False, runs=1)
    # each handler counting for itself; the confusion handlers with the package's counts (MONAI's would count a NaN
    # prediction as a false positive)
    assert calls == {"shared": 3 * 5, "monai": 0, "oii": 5}


def test_shared_counts_need_one_engine_and_one_background_setting():
    counts = ConfusionCountsMetric(include_background=False)
    with pytest.raises(ValueError, match="include_background"):
        PerImageConfusionMatrix(metric_name="recall", counts=counts)
    with pytest.raises(ValueError, match="include_background"):
        OutputImbalanceIndex(counts=counts)
    first, second = Engine(lambda e, b: b), Engine(lambda e, b: b)
    handler = OutputImbalanceIndex(include_background=False, counts=counts)
    handler.attach(first, "val_oii")
    assert counts.updated_by is handler
    PerImageConfusionMatrix(metric_name="recall", include_background=False, counts=counts).attach(first, "val_recall")
    assert counts.updated_by is handler  # the first attached stays the one that updates
    with pytest.raises(ValueError, match="another engine"):
        PerImageConfusionMatrix(metric_name="precision", include_background=False, counts=counts).attach(second, "p")


@pytest.mark.parametrize("shared", [False, True])
def test_nan_predictions_are_counted_and_warned(shared, caplog):
    counts = ConfusionCountsMetric() if shared else None
    engine = Engine(lambda e, b: b)
    for name in NAMES:
        PerImageConfusionMatrix(metric_name=name, counts=counts, output_transform=lambda x: x).attach(engine, name)
    OutputImbalanceIndex(counts=counts, output_transform=lambda x: x).attach(engine, "oii")
    pred = torch.zeros(2, 1, 4, 4)
    label = torch.zeros(2, 1, 4, 4)
    pred[:, 0, 0], label[:, 0, 0] = 1, 1
    pred[1, 0, 3, 3] = float("nan")
    with caplog.at_level("WARNING"):
        engine.run([(pred, label)])
    assert engine.state.metrics["precision"] == pytest.approx(1.0)  # the image without NaN
    assert torch.isnan(engine.state.metric_details["precision"][1]).all()
    assert torch.isnan(engine.state.metric_details["oii"][1]).all()
    warned = [r.getMessage() for r in caplog.records if "NaN or infinite predictions" in r.getMessage()]
    # each handler counting for itself warns; of handlers sharing counts, the one updating them (and the OII)
    assert len(warned) == (2 if shared else 4), warned
    assert any(m.startswith("precision: 1 of 2 images had NaN") for m in warned)
