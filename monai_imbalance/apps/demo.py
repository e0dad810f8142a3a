"""``monai-imbalance demo``: random cropping vs Mask-Aware Cropping, cross entropy vs dilated balanced CE, on a
strongly imbalanced SYNTHETIC dataset, on the CPU, in a few minutes.

The data are generated (:mod:`monai_imbalance.apps.synthetic`): grey 2-D images with about 3% foreground, the
URDE-like regime where the MAC paper saw its largest gain. Each setup trains the same small U-Net
(:class:`~monai_imbalance.networks.BilinearUNet`) from the same initial weights on the same data for the same
number of steps; only the crop and the loss differ, built by name through
:class:`~monai_imbalance.engines.SegmentationSetup` (what the bundles use). The result is a table of the papers'
metrics (Dice, IoU, precision, recall, accuracy: the MAC paper's five; OII: the DIBE paper's output imbalance) on
held-out images, pooled over the validation set, and a figure.

A few minutes of CPU training on synthetic data says how the methods behave and that the pipeline works; it is
not a reproduction of the papers' numbers (the bundles and ``monai-imbalance bench`` are for that).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = ["DemoSettings", "SetupResult", "run_demo", "run_demo_seeds", "pooled_metrics", "check_device", "plot_demo",
           "format_table", "DEMO_SETUPS"]

#: (name, crop, loss) of the demo's comparison: the MAC paper's RC and MAC, with CE or the DBCE paper's loss
DEMO_SETUPS: tuple[tuple[str, str, str], ...] = (
    ("RC + CE", "random", "ce"),
    ("MAC + CE", "mac", "ce"),
    ("RC + DBCE", "random", "dbce"),
    ("MAC + DBCE", "mac", "dbce"),
)
METRICS = ("dice", "iou", "precision", "recall", "accuracy", "oii")


@dataclass
class DemoSettings:
    """What the demo runs; the defaults took 138 s on 2 quiet CPU cores (about 9 minutes on a loaded machine)."""

    num_train: int = 48
    num_val: int = 16
    image_size: int = 128
    roi_size: int = 64
    fg_fraction: float = 0.03
    empty_rate: float = 0.1
    epochs: int = 15
    num_samples: int = 4  # crops per image and epoch
    batch_size: int = 16
    learning_rate: float = 2e-3
    features: tuple[int, ...] = (8, 16, 32, 64, 128)
    # the DBCE paper's 20 px is about 0.3x a polyp's radius at 320x320; the same ratio for these objects (radius about
    # 9 px) gives 3 px. A radius near the objects' own (8 px) weighs the ring around them 3x the objects, and in one
    # run of this demo made DBCE worse than CE: the radius is a hyperparameter to set against object size.
    dbce_radius: float = 3.0
    mac_tau: float = 3.0  # the MAC paper's best URDE setting (3% foreground): one crop in three is a MAC crop
    mac_stride: int = 8
    mac_rho: float | None = None  # None: chosen from the data (see choose_rho)
    seed: int = 0
    device: str = "cpu"
    # floating-point sums depend on how work is split over threads: a fixed count makes a seeded run repeat exactly
    # on a given machine (None: torch's default, the machine's core count, which differs from machine to machine)
    num_threads: int | None = 2

    def __post_init__(self) -> None:
        for name in ("num_train", "num_val", "image_size", "roi_size", "epochs", "num_samples", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}.")
        if self.roi_size > self.image_size:
            raise ValueError(f"roi_size {self.roi_size} is larger than image_size {self.image_size}.")
        if self.num_threads is not None and (not isinstance(self.num_threads, int) or self.num_threads < 1):
            raise ValueError(f"num_threads must be a positive integer or None, got {self.num_threads!r}.")

    @classmethod
    def tiny(cls, **kwargs: Any) -> DemoSettings:
        """A budget of seconds, for tests: few small images, one epoch."""
        values = dict(num_train=6, num_val=3, image_size=64, roi_size=32, epochs=1, num_samples=2, batch_size=4,
                      features=(4, 8, 16, 32, 64), dbce_radius=2.0, mac_stride=8)
        values.update(kwargs)
        return cls(**values)


@dataclass
class SetupResult:
    name: str
    crop: str
    loss: str
    metrics: dict[str, float]
    counts: dict[str, int]
    curve: list[dict[str, float]] = field(default_factory=list)  # validation metrics after each epoch
    seconds: float = 0.0
    mac_rate: float | None = None  # realised share of MAC crops (the rest: random or fallback)
    # per-object metrics of the final model (monai_imbalance.metrics.compute_object_metrics, IoU >= 0.5):
    # small_recall (true objects up to the first quartile of the validation objects' sizes), object_f1, tp/fp/fn
    objects: dict[str, Any] = field(default_factory=dict)


def pooled_metrics(tp: int, fp: int, fn: int, tn: int) -> dict[str, float]:
    """The papers' metrics from confusion counts pooled over a set (binary foreground).

    Dice, IoU, precision and recall are 0 where their denominator is 0 except when there is nothing to find and
    nothing was found (all 1). OII follows :func:`monai_imbalance.metrics.compute_oii`.
    """
    from monai_imbalance.metrics import compute_oii

    def ratio(num: float, den: float) -> float:
        return float(num / den) if den > 0 else (1.0 if fp + fn == 0 else 0.0)

    return {
        "dice": ratio(2 * tp, 2 * tp + fp + fn),
        "iou": ratio(tp, tp + fp + fn),
        "precision": ratio(tp, tp + fp),
        "recall": ratio(tp, tp + fn),
        "accuracy": float((tp + tn) / max(tp + fp + fn + tn, 1)),
        "oii": float(compute_oii(float(tp), float(fp), float(fn))),
    }


def choose_rho(labels: Sequence[np.ndarray], roi_size: int, stride: int) -> tuple[float, float]:
    """The largest rho of a 0.05 grid, at most the MAC paper's 0.25, that keeps at least three quarters of the
    training images with foreground croppable (some window of the grid with share >= rho); returns
    ``(rho, share of those images kept)``."""
    from monai_imbalance.transforms.utils import window_foreground_counts

    best = np.array([
        window_foreground_counts(lab[0] if lab.ndim == 3 else lab, roi_size, stride).max() / roi_size**2
        for lab in labels if np.any(lab)
    ])
    if best.size == 0:
        return 0.25, 0.0
    rho = 0.25
    while rho > 0.05 + 1e-9 and np.mean(best >= rho) < 0.75:
        rho = round(rho - 0.05, 2)
    return rho, float(np.mean(best >= rho))


def check_device(device: str) -> torch.device:
    """``device`` as a ``torch.device`` the demo can train on (CPU, CUDA or Apple's MPS, and available here).

    Raises:
        ValueError: an unknown device name (``tpu``), or CUDA/MPS asked for where there is none.
    """
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"unknown device {device!r}: use cpu, cuda, cuda:N or mps.") from err
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {device!r} asked for but CUDA is not available; use --device cpu.")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"device {device!r} asked for but only {torch.cuda.device_count()} CUDA device(s) exist.")
    elif dev.type == "mps":
        if not torch.backends.mps.is_available():
            raise ValueError(f"device {device!r} asked for but MPS is not available; use --device cpu.")
    elif dev.type != "cpu":
        raise ValueError(f"device {device!r} is not supported by the demo: use cpu, cuda, cuda:N or mps.")
    return dev


class _Repeatable:
    """Thread count and deterministic algorithms for the run, restored afterwards (the demo is also called from
    Python, where it should not change the caller's torch settings)."""

    def __init__(self, num_threads: int | None, device: torch.device) -> None:
        self.num_threads, self.device = num_threads, device

    def __enter__(self) -> _Repeatable:
        import os

        self.saved = (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled(),
                      torch.is_deterministic_algorithms_warn_only_enabled())
        if self.num_threads is not None:
            torch.set_num_threads(self.num_threads)
        if self.device.type == "cuda":
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # what deterministic cuBLAS needs
        # warn_only: an operation without a deterministic kernel on some device warns instead of stopping the demo
        torch.use_deterministic_algorithms(True, warn_only=True)
        return self

    def __exit__(self, *exc: Any) -> None:
        threads, enabled, warn_only = self.saved
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(enabled, warn_only=warn_only)


def _make_data(s: DemoSettings) -> tuple[list[dict], list[dict]]:
    from monai_imbalance.apps.synthetic import make_synthetic_dataset

    data = make_synthetic_dataset(
        s.num_train + s.num_val, empty_rate=s.empty_rate, seed=s.seed, spatial_size=(s.image_size, s.image_size),
        fg_fraction=s.fg_fraction, num_objects=2, shape="blob", size_spread=0.6,
    )
    return data[: s.num_train], data[s.num_train:]


def _predict(network: torch.nn.Module, val: list[dict], device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Foreground masks ``(N, 1, H, W)`` predicted for the validation set, and the true ones."""
    network.eval()
    with torch.no_grad():
        images = torch.as_tensor(np.stack([d["image"] for d in val])).to(device)
        labels = torch.as_tensor(np.stack([d["label"] for d in val])).to(device) > 0
        pred = network(images).argmax(1, keepdim=True) > 0
    network.train()
    return pred, labels


def _pixel_metrics(pred: torch.Tensor, labels: torch.Tensor) -> tuple[dict[str, float], dict]:
    tp = int((pred & labels).sum())
    fp = int((pred & ~labels).sum())
    fn = int((~pred & labels).sum())
    tn = int((~pred & ~labels).sum())
    return pooled_metrics(tp, fp, fn, tn), {"tp": tp, "fp": fp, "fn": fn, "tn": tn}


def _evaluate(network: torch.nn.Module, val: list[dict], device: torch.device) -> tuple[dict[str, float], dict]:
    return _pixel_metrics(*_predict(network, val, device))


def _object_metrics(pred: torch.Tensor, labels: torch.Tensor) -> dict[str, Any]:
    """Per-object metrics of the validation set (bins: the quartiles of its true objects' sizes, the same for every
    setup since they come from the truth); NaN values as None, for JSON."""
    from monai_imbalance.metrics import compute_object_metrics

    r = compute_object_metrics(pred.float(), labels.float())[1]
    keep = ("small_recall", "object_f1", "tp", "fp", "fn", "instance_dice", "oii", "size_bins")
    values = {**r, "object_f1": r["f1"]}
    return {k: (None if isinstance(values[k], float) and math.isnan(values[k]) else values[k]) for k in keep}


def _train_setup(
    name: str, crop: str, loss: str, s: DemoSettings, train: list[dict], val: list[dict], initial_state: dict,
    rho: float, progress: bool,
) -> tuple[SetupResult, torch.nn.Module]:
    from monai.data import DataLoader, Dataset
    from monai.transforms import Compose, RandFlipd, RandRotate90d
    from monai.utils import set_determinism
    from tqdm.auto import tqdm

    from monai_imbalance.engines import SegmentationSetup, SupervisedTrainerWithLossInputs
    from monai_imbalance.networks import BilinearUNet

    device = torch.device(s.device)
    setup = SegmentationSetup(
        loss=loss, crop=crop, out_channels=2, roi_size=(s.roi_size, s.roi_size), num_samples=s.num_samples,
        loss_params={"dbce": {"radius": s.dbce_radius}},
        crop_params={"mac": {"rho": rho, "tau": s.mac_tau, "stride": s.mac_stride}},
    )
    keys = ["image", "label"]
    transforms = Compose(
        setup.precompute_transforms
        + setup.crop_transforms
        + [RandFlipd(keys, prob=0.5, spatial_axis=0), RandRotate90d(keys, prob=0.5)]
        + setup.map_transforms
    )
    transforms.set_random_state(seed=s.seed)
    set_determinism(seed=s.seed)
    loader = DataLoader(Dataset(train, transforms), batch_size=s.batch_size, shuffle=True, num_workers=0,
                        generator=torch.Generator().manual_seed(s.seed))
    network = BilinearUNet(in_channels=1, out_channels=2, features=s.features).to(device)
    network.load_state_dict(initial_state)
    optimizer = torch.optim.AdamW(network.parameters(), lr=s.learning_rate)
    kinds: list[str] = []

    def prepare_batch(batch: dict, device: torch.device, non_blocking: bool = False, **kwargs: Any):
        kinds.extend(batch["label"].meta.get("crop_kind", []) if hasattr(batch["label"], "meta") else [])
        return batch["image"].to(device), batch["label"].to(device)

    trainer = SupervisedTrainerWithLossInputs(
        device=device, max_epochs=s.epochs, train_data_loader=loader, network=network, optimizer=optimizer,
        loss_function=setup.loss_function, loss_inputs=setup.loss_inputs, prepare_batch=prepare_batch,
        train_handlers=setup.train_handlers,
        amp=device.type == "cuda",
    )
    result = SetupResult(name=name, crop=crop, loss=loss, metrics={}, counts={})
    bar = tqdm(total=s.epochs, desc=f"{name:<11}", unit="epoch", disable=not progress, leave=True)

    def on_epoch(engine: Any) -> None:
        metrics, _ = _evaluate(network, val, device)
        result.curve.append({"epoch": engine.state.epoch, "loss": float(engine.state.output[0]["loss"]), **metrics})
        bar.set_postfix(dice=f"{metrics['dice']:.3f}", oii=f"{metrics['oii']:+.2f}")
        bar.update(1)

    from ignite.engine import Events

    trainer.add_event_handler(Events.EPOCH_COMPLETED, on_epoch)
    start = time.perf_counter()
    trainer.run()
    bar.close()
    result.seconds = time.perf_counter() - start
    pred, labels = _predict(network, val, device)  # the final model's masks, judged on pixels and on objects
    result.metrics, result.counts = _pixel_metrics(pred, labels)
    result.objects = _object_metrics(pred, labels)
    if crop == "mac" and kinds:
        result.mac_rate = kinds.count("mac") / len(kinds)
    return result, network


def _plural(count: int, word: str) -> str:
    """``1 epoch``, ``15 epochs``."""
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


#: the table's columns: (key, title); pixel metrics from ``SetupResult.metrics``, per-object ones from ``objects``
TABLE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("dice", "Dice"), ("small_recall", "small rec."), ("object_f1", "det. F1"), ("iou", "IoU"),
    ("precision", "precision"), ("recall", "recall"), ("accuracy", "accuracy"), ("oii", "OII"),
)
#: how :func:`format_table` marks a column's best cell: one best, or the best shared by some but not all setups
BEST_MARK, TIED_MARK = "*", "="
TABLE_KEY = f"{BEST_MARK} best, {TIED_MARK} tied for best; no mark in a column where every setup ties"


def _table_value(r: SetupResult, m: str) -> float:
    value = r.objects.get(m) if m in ("small_recall", "object_f1") else r.metrics[m]
    return math.nan if value is None else float(value)


def _table_score(m: str, value: float) -> float:
    """Higher is better, on the value as the table prints it (two cells that print alike tie): OII is best at 0."""
    return -abs(round(value, 3)) if m == "oii" else round(100 * value, 1)


def _best_marks(results: Sequence[SetupResult]) -> tuple[dict[tuple[int, str], str], list[str]]:
    """The mark of each ``(row, column)`` cell, and the titles of the columns where every setup ties."""
    marks: dict[tuple[int, str], str] = {}
    all_tied = []
    for m, title in TABLE_COLUMNS:
        scores = {i: _table_score(m, _table_value(r, m)) for i, r in enumerate(results)}
        scores = {i: v for i, v in scores.items() if math.isfinite(v)}
        if not scores:
            continue
        best = [i for i, v in scores.items() if v == max(scores.values())]
        if len(best) == len(results):  # a mark on every cell says nothing
            if len(results) > 1:
                all_tied.append(title)
            continue
        for i in best:
            marks[i, m] = BEST_MARK if len(best) == 1 else TIED_MARK
    return marks, all_tied


def format_table(results: Sequence[SetupResult]) -> str:
    """The papers' metrics per setup, with the small-object recall and detection F1 beside the Dice.

    The best cell of each column (as printed: Dice etc. to 0.1%, OII closest to 0 to 0.001) is marked ``*``; when
    some but not all setups share the best, each of them is marked ``=``; a column where every setup ties has no
    mark, and a line under the table names those columns.
    """
    header = f"{'setup':<12}" + "".join(f"{title:>11}" for _, title in TABLE_COLUMNS)
    lines = [header, "-" * len(header)]
    marks, all_tied = _best_marks(results)
    for i, r in enumerate(results):
        cells = []
        for m, _ in TABLE_COLUMNS:
            value = _table_value(r, m)
            if not math.isfinite(value):
                cells.append(f"{'-':>10} ")
                continue
            mark = marks.get((i, m), " ")
            cells.append(f"{value:+10.3f}{mark}" if m == "oii" else f"{100 * value:10.1f}{mark}")
        lines.append(f"{r.name:<12}" + "".join(cells).rstrip())
    if all_tied:
        which = "every column" if len(all_tied) == len(TABLE_COLUMNS) else ", ".join(all_tied)
        lines.append(f"(all {len(results)} setups tie on {which}: no best to mark)")
    return "\n".join(lines)


#: colours of the prediction overlays (true positive, false positive, false negative), on the dimmed input
OVERLAY_COLOURS = {"TP": (1.0, 1.0, 1.0), "FP": (1.0, 0.25, 0.25), "FN": (0.3, 0.55, 1.0)}
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
# curves that differ by less than this are drawn as one value and said to coincide
_COINCIDE_TOL = 5e-3


def _showcase(val: Sequence[dict]) -> tuple[int, dict]:
    """The validation image the figure shows: the one with the most foreground (ties: the first)."""
    index = max(range(len(val)), key=lambda i: int(np.count_nonzero(val[i]["label"])))
    return index, val[index]


def _predict_one(network: torch.nn.Module, image: np.ndarray) -> np.ndarray:
    """The foreground mask ``(H, W)`` a network predicts for one ``(1, H, W)`` image."""
    network.eval()
    with torch.no_grad():
        device = next(network.parameters()).device
        pred = network(torch.as_tensor(image[None]).to(device)).argmax(1)[0].cpu().numpy() > 0
    network.train()
    return pred


def _overlay(image: np.ndarray, pred: np.ndarray | None, truth: np.ndarray) -> np.ndarray:
    """An RGB picture of the dimmed input with the truth (``pred=None``) or TP/FP/FN of a prediction on it."""
    rgb = np.repeat(0.45 * np.clip(image, 0, 1)[..., None], 3, axis=-1)
    if pred is None:
        rgb[truth] = OVERLAY_COLOURS["TP"]
        return rgb
    rgb[pred & truth] = OVERLAY_COLOURS["TP"]
    rgb[pred & ~truth] = OVERLAY_COLOURS["FP"]
    rgb[~pred & truth] = OVERLAY_COLOURS["FN"]
    return rgb


def _curve_panel(ax: Any, results: Sequence[SetupResult], key: str, styles: list[dict], fmt: Callable[[float], str],
                 ylim: tuple[float, float]) -> None:
    """Validation ``key`` per epoch for every setup, with a fixed y range, integer epochs and a legend that names each
    line with its last value; setups are offset slightly along x so that coinciding points stay visible, and curves
    that all coincide are said to."""
    from matplotlib.ticker import MaxNLocator

    epochs = max((len(r.curve) for r in results), default=1)
    width = 0.24 if epochs < 4 else 0.12  # the spread of the offsets, in epochs
    offsets = np.linspace(-width / 2, width / 2, len(results)) if len(results) > 1 else np.zeros(1)
    for k, (r, style, dx) in enumerate(zip(results, styles, offsets)):
        x = np.array([c["epoch"] for c in r.curve], dtype=float) + dx
        y = [c[key] for c in r.curve]
        last = fmt(y[-1]) if y else "-"
        # earlier setups drawn wider and below the later ones: where lines run together, each still shows at the edge
        wider = len(results) - 1 - k
        ax.plot(x, y, ms=(7 if epochs < 4 else 4) + 1.0 * wider, lw=1.2 + 0.6 * wider, zorder=2 + k,
                mfc="none" if style["ls"] == "--" else style["color"], mew=1.5, label=f"{r.name}: {last}", **style)
    ax.set_xlim(0.5, epochs + 0.5)
    if epochs <= 10:
        ax.set_xticks(range(1, epochs + 1))
    else:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylim(*ylim)
    ax.set_xlabel("epoch (setups offset slightly so that equal values stay visible)", fontsize=8)
    values = [np.array([c[key] for c in r.curve], dtype=float) for r in results]
    same_length = len({v.size for v in values}) == 1 and values[0].size > 0
    if len(results) > 1 and same_length and np.ptp(np.stack(values), axis=0).max() <= _COINCIDE_TOL:
        allv = np.concatenate(values)
        count = "all four" if len(results) == 4 else f"all {len(results)}"
        what = f"{count} at {fmt(allv[0])}" if np.ptp(allv) <= _COINCIDE_TOL else f"{count} curves coincide"
        y_last = float(np.mean([v[-1] for v in values]))
        below = y_last > np.mean(ylim)  # write the note on the roomier side of the points
        ax.annotate(what, xy=(float(epochs), y_last),
                    xytext=(0, -28 if below else 28), textcoords="offset points", ha="center", fontsize=9,
                    arrowprops={"arrowstyle": "->", "color": "0.3"},
                    bbox={"boxstyle": "round", "fc": "lightyellow", "ec": "0.6"})
    ax.legend(fontsize=8, loc="center right" if epochs == 1 else "best", framealpha=0.9,
              title="setup: last value", title_fontsize=8)
    ax.grid(alpha=0.3)


def plot_demo(
    s: DemoSettings, train: Sequence[dict], val_sample: dict, results: Sequence[SetupResult],
    predictions: dict[str, np.ndarray], rho: float,
) -> Any:
    """The demo's figure, as a ``matplotlib.figure.Figure`` (no pyplot state, no backend switch: saving it to PNG
    uses Agg).

    Top row: the training image with the most foreground, a MAC window and a random window; the DBCE weight map of
    its label; validation Dice and OII per epoch for every setup. Bottom row: one validation image's input, its
    ground truth, and each setup's prediction of it (TP/FP/FN). Each axes carries a label for tests and tools
    (``ax.get_label()``): ``windows``, ``weights``, ``dice``, ``oii``, ``input``, ``truth``, ``pred:<setup>``.

    Args:
        s: the settings of the run (sizes, seed, epochs: the titles say them).
        train: the training items (``image`` and ``label``, ``(1, H, W)``).
        val_sample: the validation item the bottom row shows.
        results: what :func:`run_demo` returns, one per setup, in order.
        predictions: foreground mask ``(H, W)`` of ``val_sample`` per setup name.
        rho: the MAC threshold of the run.
    """
    import matplotlib.colors
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch, Rectangle

    from monai_imbalance.transforms import DilationWeightMap, mac_window_starts

    sample = max(train, key=lambda d: int(np.count_nonzero(d["label"])))
    image, label = sample["image"][0], sample["label"][0]
    rng = np.random.default_rng(s.seed)
    windows = mac_window_starts(label, s.roi_size, s.mac_stride, rho)
    fig = Figure(figsize=(17, 9.2), layout="constrained")
    # two subfigures: the rows lay out on their own (the colorbar of the top row does not shift the bottom's panels)
    upper, lower = fig.subfigures(2, 1, height_ratios=(1.15, 1.0))
    top = list(upper.subplots(1, 4))
    bottom = list(lower.subplots(1, 2 + len(results)))

    ax = top[0]
    ax.set_label("windows")
    ax.imshow(image, cmap="gray", vmin=0, vmax=1)
    ax.contour(label > 0, levels=[0.5], colors="yellow", linewidths=0.9)
    if len(windows):
        y, x = windows[rng.integers(len(windows))]
        ax.add_patch(Rectangle((x - 0.5, y - 0.5), s.roi_size, s.roi_size, fill=False, ec="lime", lw=2,
                               label=f"a MAC window (rho {rho:g})"))
    y, x = rng.integers(0, s.image_size - s.roi_size + 1, 2)
    ax.add_patch(Rectangle((x - 0.5, y - 0.5), s.roi_size, s.roi_size, fill=False, ec="red", lw=2, ls="--",
                           label="a random window"))
    ax.plot([], [], color="yellow", lw=0.9, label="label outline")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.01), ncol=3, fontsize=7, frameon=False,
              handlelength=1.5, columnspacing=1.0)
    ax.set_title(f"SYNTHETIC training image: {100 * np.mean(label > 0):.1f}% foreground,\n"
                 f"{_plural(len(windows), 'MAC window')} of {s.roi_size}x{s.roi_size}", fontsize=10)

    ax = top[1]
    ax.set_label("weights")
    weights = DilationWeightMap(radius=s.dbce_radius)(sample["label"])[0]
    positive = weights[weights > 0]
    norm = matplotlib.colors.LogNorm(vmin=positive.min(), vmax=positive.max()) if positive.size and np.ptp(
        positive) > 0 else None
    im = ax.imshow(weights, cmap="magma", norm=norm)
    ax.contour(label > 0, levels=[0.5], colors="cyan", linewidths=0.8)
    ax.set_title(f"DBCE weight map M of that label\n(radius {s.dbce_radius:g} px; cyan: label outline)", fontsize=10)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.02).set_label("pixel weight (log scale)", fontsize=8)

    styles = [{"color": matplotlib.colormaps["tab10"](k % 10), "marker": _MARKERS[k % len(_MARKERS)],
               "ls": "--" if r.loss == "ce" else "-"} for k, r in enumerate(results)]
    top[2].set_label("dice")
    _curve_panel(top[2], results, "dice", styles, lambda v: f"{100 * v:.1f}%", (-0.05, 1.05))
    top[2].set_title("validation Dice, pooled over the SYNTHETIC validation set\n(1 = perfect; dashed: CE, solid: "
                     "DBCE)", fontsize=10)
    top[2].set_ylabel("Dice")
    ax = top[3]
    ax.set_label("oii")
    ax.axhline(0, color="0.35", lw=1, ls=":", zorder=0)
    # what the ends and the middle mean, beside the axis where they never cover a point
    meaning = ax.secondary_yaxis("right")
    meaning.set_yticks([-1, 0, 1], labels=["only FP\n(false\nalarms)", "0 =\nbalanced", "only FN\n(missed)"],
                       fontsize=8)
    meaning.tick_params(length=0, colors="0.3")
    _curve_panel(ax, results, "oii", styles, lambda v: f"{v:+.2f}", (-1.05, 1.05))
    ax.set_title("validation OII (output imbalance), pooled\n(+: under-segmentation, -: over-segmentation)",
                 fontsize=10)
    ax.set_ylabel("OII")

    vimage, truth = val_sample["image"][0], val_sample["label"][0] > 0
    ax = bottom[0]
    ax.set_label("input")
    ax.imshow(vimage, cmap="gray", vmin=0, vmax=1)
    ax.set_title("validation input\n(SYNTHETIC, held out\nfrom training)", fontsize=10)
    ax = bottom[1]
    ax.set_label("truth")
    ax.imshow(_overlay(vimage, None, truth))
    ax.set_title(f"ground truth\n{int(truth.sum())} px foreground\n({100 * truth.mean():.1f}% of the image)",
                 fontsize=10)
    nothing = []
    for ax, r in zip(bottom[2:], results):
        ax.set_label(f"pred:{r.name}")
        pred = predictions[r.name].astype(bool)
        tp, fp, fn = int((pred & truth).sum()), int((pred & ~truth).sum()), int((~pred & truth).sum())
        ax.imshow(_overlay(vimage, pred, truth))
        dice = 2 * tp / (2 * tp + fp + fn) if 2 * tp + fp + fn else 1.0
        if pred.any():
            detail = f"this image: Dice {100 * dice:.1f}%\nTP {tp}, FP {fp}, FN {fn} px"
        else:
            nothing.append(r.name)
            detail = f"nothing predicted\nTP 0, FP 0, FN {fn} px"
        ax.set_title(f"{r.name}\n{detail}", fontsize=10)
    for ax in (*top[:2], *bottom):
        ax.set_xticks([])
        ax.set_yticks([])
    lower.legend(handles=[Patch(fc=OVERLAY_COLOURS[k], ec="0.3", label=text) for k, text in
                        (("TP", "TP: found foreground (and ground truth)"), ("FP", "FP: false alarm"),
                         ("FN", "FN: missed foreground"))],
               loc="outside lower center", ncol=3, fontsize=9, frameon=False)
    fg = float(np.mean([np.mean(d["label"] > 0) for d in train]))
    steps = math.ceil(s.num_train * s.num_samples / s.batch_size)
    subtitle = (f"{s.num_train} training / {_plural(s.num_val, 'validation image')} of {s.image_size}x{s.image_size}, "
                f"{100 * fg:.1f}% foreground; {_plural(s.epochs, 'epoch')} x {_plural(steps, 'step')} per setup, "
                f"seed {s.seed}. Synthetic data: how the methods behave, not the papers' numbers.")
    if len(nothing) == len(results):
        subtitle += (f"\nNo setup predicts any foreground on this image after {_plural(s.epochs, 'epoch')}: "
                     "too short to learn the small foreground (a smoke run; the default budget is 15 epochs).")
    fig.suptitle("monai-imbalance demo on SYNTHETIC data: random crop (RC) vs Mask-Aware Cropping (MAC), "
                 f"CE vs dilated balanced CE (DBCE)\n{subtitle}", fontsize=12)
    return fig


def _figure(path: Path, s: DemoSettings, train: list[dict], val: list[dict], results: Sequence[SetupResult],
            networks: dict[str, torch.nn.Module], rho: float) -> Any:
    """Predict the showcased validation image with every network, draw :func:`plot_demo`, save it to ``path``."""
    _, val_sample = _showcase(val)
    predictions = {r.name: _predict_one(networks[r.name], val_sample["image"]) for r in results}
    fig = plot_demo(s, train, val_sample, results, predictions, rho)
    fig.savefig(path, dpi=90)
    return fig


def run_demo(
    out_dir: str | Path = "monai_imbalance_demo",
    settings: DemoSettings | None = None,
    progress: bool = True,
    echo: Callable[[str], None] = print,
) -> list[SetupResult]:
    """Generate the data, train every setup of :data:`DEMO_SETUPS`, print the table, write
    ``results.json`` and ``demo.png`` in ``out_dir``, and return the results."""
    s = settings or DemoSettings()
    device = check_device(s.device)
    with _Repeatable(s.num_threads, device):
        return _run_demo(Path(out_dir), s, progress, echo)


def _run_demo(out: Path, s: DemoSettings, progress: bool, echo: Callable[[str], None]) -> list[SetupResult]:
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    train, val = _make_data(s)
    rho = s.mac_rho
    kept = None
    if rho is None:
        rho, kept = choose_rho([d["label"] for d in train], s.roi_size, s.mac_stride)
    fg = float(np.mean([np.mean(d["label"] > 0) for d in train]))
    echo("monai-imbalance demo: the data are SYNTHETIC (monai_imbalance.apps.synthetic), generated on the fly.")
    echo(
        f"{s.num_train} training / {_plural(s.num_val, 'validation image')} of {s.image_size}x{s.image_size}, "
        f"{100 * fg:.1f}% foreground (FG:BG 1:{(1 - fg) / max(fg, 1e-12):.0f}), {100 * s.empty_rate:.0f}% without "
        f"foreground; crops {s.roi_size}x{s.roi_size}; MAC rho {rho}"
        + (f" (keeps {100 * kept:.0f}% of images croppable)" if kept is not None else "")
        + f", tau {s.mac_tau:g}, stride {s.mac_stride}; DBCE radius {s.dbce_radius:g} px; "
        f"{_plural(s.epochs, 'epoch')} x {_plural(math.ceil(s.num_train * s.num_samples / s.batch_size), 'step')} "
        f"per setup on {s.device}"
        f" ({torch.get_num_threads()} threads, seed {s.seed})."
    )
    from monai_imbalance.networks import BilinearUNet

    torch.manual_seed(s.seed)
    initial = BilinearUNet(in_channels=1, out_channels=2, features=s.features).state_dict()
    results, networks = [], {}
    for name, crop, loss in DEMO_SETUPS:
        result, network = _train_setup(name, crop, loss, s, train, val, initial, rho, progress)
        results.append(result)
        networks[name] = network
    echo("")
    echo(f"Validation on {_plural(s.num_val, 'held-out SYNTHETIC image')} (pixels pooled over the set; small rec.: "
         "recall of the true objects up to the first quartile of their sizes, det. F1: object detection F1 at "
         f"IoU >= 0.5; {TABLE_KEY}):")
    echo(format_table(results))
    for r in results:
        if r.mac_rate is not None:
            echo(f"{r.name}: realised MAC crops {100 * r.mac_rate:.0f}% (1/tau = {100 / s.mac_tau:.0f}%; "
                 "the others random, or fallback on images without a valid window)")
    (out / "results.json").write_text(json.dumps(
        {"synthetic": True, "settings": asdict(s), "mac_rho": rho, "results": [asdict(r) for r in results]},
        indent=2,
    ) + "\n")
    _figure(out / "demo.png", s, train, val, results, networks, rho)
    echo(f"\nTable in {out / 'results.json'}, figure in {out / 'demo.png'} "
         f"({time.perf_counter() - start:.0f} s in all). Data: SYNTHETIC.")
    return results


def format_seed_summary(per_seed: dict[int, Sequence[SetupResult]]) -> str:
    """Dice of every setup for each seed, and its mean, standard deviation and range over the seeds."""
    seeds = sorted(per_seed)
    names = [r.name for r in per_seed[seeds[0]]]
    header = f"{'setup':<12}" + "".join(f"{'seed ' + str(k):>9}" for k in seeds) + f"{'mean':>8}{'sd':>6}{'range':>13}"
    lines = [header, "-" * len(header)]
    for i, name in enumerate(names):
        dice = np.array([100 * per_seed[k][i].metrics["dice"] for k in seeds])
        sd = dice.std(ddof=1) if len(dice) > 1 else 0.0
        lines.append(f"{name:<12}" + "".join(f"{d:9.1f}" for d in dice)
                     + f"{dice.mean():8.1f}{sd:6.1f}{f'{dice.min():.1f}-{dice.max():.1f}':>13}")
    return "\n".join(lines)


def run_demo_seeds(
    out_dir: str | Path,
    settings: DemoSettings | None,
    seeds: Sequence[int],
    progress: bool = True,
    echo: Callable[[str], None] = print,
) -> dict[int, list[SetupResult]]:
    """:func:`run_demo` once per seed (data, initial weights and crops all follow the seed), into
    ``out_dir/seed_<k>``; prints the Dice of each setup per seed with its spread and writes ``summary.json``."""
    from dataclasses import replace

    seeds = list(dict.fromkeys(int(k) for k in seeds))
    if not seeds:
        raise ValueError("seeds must name at least one seed.")
    base = settings or DemoSettings()
    out = Path(out_dir)
    per_seed = {}
    for k in seeds:
        echo(f"--- seed {k} ---")
        per_seed[k] = run_demo(out / f"seed_{k}", replace(base, seed=k), progress=progress, echo=echo)
    echo("")
    echo(f"Validation Dice (%) over {len(seeds)} seeds, SYNTHETIC data (each seed: its own data, initial weights and "
         "crops):")
    echo(format_seed_summary(per_seed))
    (out / "summary.json").write_text(json.dumps({
        "synthetic": True, "seeds": seeds, "settings": asdict(base),
        "dice": {r.name: [per_seed[k][i].metrics["dice"] for k in seeds] for i, r in enumerate(per_seed[seeds[0]])},
    }, indent=2) + "\n")
    return per_seed
