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

__all__ = ["DemoSettings", "SetupResult", "run_demo", "run_demo_seeds", "pooled_metrics", "check_device", "DEMO_SETUPS"]

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


def format_table(results: Sequence[SetupResult]) -> str:
    """The papers' metrics per setup, with the small-object recall and detection F1 beside the Dice; best of each
    column marked with ``*`` (ties: every tied cell)."""
    columns = [("dice", "Dice"), ("small_recall", "small rec."), ("object_f1", "det. F1"), ("iou", "IoU"),
               ("precision", "precision"), ("recall", "recall"), ("accuracy", "accuracy"), ("oii", "OII")]
    header = f"{'setup':<12}" + "".join(f"{title:>11}" for _, title in columns)
    lines = [header, "-" * len(header)]

    def value_of(r: SetupResult, m: str) -> float:
        value = r.objects.get(m) if m in ("small_recall", "object_f1") else r.metrics[m]
        return math.nan if value is None else float(value)

    def score(m: str, value: float) -> float:
        return -abs(value) if m == "oii" else value

    best = {}
    for m, _ in columns:
        finite = [score(m, value_of(r, m)) for r in results if math.isfinite(value_of(r, m))]
        best[m] = max(finite) if finite else None
    for r in results:
        cells = []
        for m, _ in columns:
            value = value_of(r, m)
            if not math.isfinite(value):
                cells.append(f"{'-':>10} ")
                continue
            mark = "*" if best[m] is not None and score(m, value) == best[m] else " "
            cells.append(f"{value:+10.3f}{mark}" if m == "oii" else f"{100 * value:10.1f}{mark}")
        lines.append(f"{r.name:<12}" + "".join(cells))
    return "\n".join(lines)


def _figure(path: Path, s: DemoSettings, train: list[dict], val: list[dict], results: Sequence[SetupResult],
            networks: dict[str, torch.nn.Module], rho: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    from monai_imbalance.transforms import DilationWeightMap, mac_window_starts

    sample = max(train, key=lambda d: int(np.count_nonzero(d["label"])))
    image, label = sample["image"][0], sample["label"][0]
    rng = np.random.default_rng(s.seed)
    windows = mac_window_starts(label, s.roi_size, s.mac_stride, rho)
    fig, axes = plt.subplots(2, 3, figsize=(13, 8.5))
    ax = axes[0, 0]
    ax.imshow(image, cmap="gray", vmin=0, vmax=1)
    ax.contour(label > 0, levels=[0.5], colors="yellow", linewidths=0.8)
    if len(windows):
        y, x = windows[rng.integers(len(windows))]
        ax.add_patch(Rectangle((x - 0.5, y - 0.5), s.roi_size, s.roi_size, fill=False, ec="lime", lw=2,
                               label=f"MAC window (rho {rho})"))
    y, x = rng.integers(0, s.image_size - s.roi_size + 1, 2)
    ax.add_patch(Rectangle((x - 0.5, y - 0.5), s.roi_size, s.roi_size, fill=False, ec="red", lw=2, ls="--",
                           label="random window"))
    ax.legend(loc="lower left", fontsize=8)
    ax.set_title(f"SYNTHETIC image: {100 * np.mean(label > 0):.1f}% foreground, {len(windows)} MAC windows",
                 fontsize=10)
    weights = DilationWeightMap(radius=s.dbce_radius)(sample["label"])[0]
    im = axes[0, 1].imshow(weights, cmap="magma", norm=matplotlib.colors.LogNorm(vmin=weights[weights > 0].min()))
    # the label's outline shows the dilation ring that M adds around each object
    axes[0, 1].contour(label > 0, levels=[0.5], colors="cyan", linewidths=0.8)
    axes[0, 1].set_title(f"DBCE weight map M (radius {s.dbce_radius:g} px; cyan: label)", fontsize=10)
    fig.colorbar(im, ax=axes[0, 1], fraction=0.046)
    for name, ax in zip(("RC + CE", "MAC + DBCE"), (axes[0, 2], axes[1, 2])):
        target = max(val, key=lambda d: int(np.count_nonzero(d["label"])))
        net = networks[name]
        net.eval()
        with torch.no_grad():
            device = next(net.parameters()).device
            pred = net(torch.as_tensor(target["image"][None]).to(device)).argmax(1)[0].cpu().numpy() > 0
        truth = target["label"][0] > 0
        overlay = np.zeros((*truth.shape, 3))
        overlay[pred & truth] = (1, 1, 1)
        overlay[pred & ~truth] = (1, 0.2, 0.2)
        overlay[~pred & truth] = (0.2, 0.4, 1)
        ax.imshow(overlay)
        ax.set_title(f"{name}: TP white, FP red, FN blue", fontsize=10)
    for r in results:
        epochs = [c["epoch"] for c in r.curve]
        axes[1, 0].plot(epochs, [c["dice"] for c in r.curve], marker="o", ms=3, label=r.name)
        axes[1, 1].plot(epochs, [c["oii"] for c in r.curve], marker="o", ms=3, label=r.name)
    axes[1, 0].set(title="validation Dice", xlabel="epoch", ylim=(0, 1))
    axes[1, 1].set(title="validation OII (+: missed foreground, -: false alarms)", xlabel="epoch", ylim=(-1, 1))
    axes[1, 1].axhline(0, color="grey", lw=0.5)
    axes[1, 0].legend(fontsize=8)
    for a in (axes[0, 0], axes[0, 1], axes[0, 2], axes[1, 2]):
        a.set_xticks([])
        a.set_yticks([])
    fig.suptitle("monai-imbalance demo on SYNTHETIC data", fontsize=13)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


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
        f"{s.num_train} training / {s.num_val} validation images of {s.image_size}x{s.image_size}, "
        f"{100 * fg:.1f}% foreground (FG:BG 1:{(1 - fg) / max(fg, 1e-12):.0f}), {100 * s.empty_rate:.0f}% without "
        f"foreground; crops {s.roi_size}x{s.roi_size}; MAC rho {rho}"
        + (f" (keeps {100 * kept:.0f}% of images croppable)" if kept is not None else "")
        + f", tau {s.mac_tau:g}, stride {s.mac_stride}; DBCE radius {s.dbce_radius:g} px; "
        f"{s.epochs} epochs x {math.ceil(s.num_train * s.num_samples / s.batch_size)} steps per setup on {s.device}"
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
    echo(f"Validation on {s.num_val} held-out SYNTHETIC images (pixels pooled over the set; small rec.: recall of the "
         "true objects up to the first quartile of their sizes, det. F1: object detection F1 at IoU >= 0.5; * best):")
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
