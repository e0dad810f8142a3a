"""The report of a volumetric bench (ACDC, Synapse): per class and group the bundle's Dice, HD95 (with the empty
predictions beside it) and OII, the small-structure measures of :mod:`monai_imbalance.metrics.small_structures`,
and paired differences against a baseline setup, mean and 95% interval over the repetitions (seeds or folds).

``monai-imbalance bench ... --baseline dice_ce --small-structures`` runs it after the trainings:

1. :func:`evaluate_run_slices`: for every finished run, the best model (``models/model.pt``) predicts the
   evaluation section's volumes through the bundle's own ``validate#inferer`` and ``validate#dataset`` (built from
   the run's configs and overrides), and the per-slice counts are kept in ``<run>/eval/slices.npz`` (done once:
   a later report reads them back);
2. :func:`small_structure_metrics`: per run, Dice on the small cross-sections (true area at or below the class's
   ``percentile`` over the evaluation slices, the same slices for every setup) and the shares of present slices
   missed entirely;
3. :func:`write_report`: ``report.json``, ``report.csv`` (one row per run), ``report.md`` (tables), ``dice.png``
   (per-class Dice with intervals) and ``overlays.png`` (one case's predictions per setup).
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .bench import BenchRun, BundleRunner, confidence_interval, paired_differences, run_folder_name

__all__ = ["evaluate_run_slices", "small_structure_metrics", "report_rows", "format_report", "write_report",
           "bench_report"]

SLICES_FILE = "slices.npz"


def evaluate_run_slices(
    runner: BundleRunner, run_dir: str | os.PathLike, overrides: Mapping[str, Any], overlay_case: int = 0,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Per-slice counts of one run's best model on the bundle's evaluation section, cached in
    ``<run_dir>/eval/slices.npz``: ``counts`` ``(slices, classes, 3)``, per slice ``case`` and ``group``, the
    class names, and for case ``overlay_case`` its image, label and prediction (for the overlay figure)."""
    import torch

    from monai_imbalance.metrics.small_structures import slice_class_counts

    run_dir = Path(run_dir)
    cache = run_dir / "eval" / SLICES_FILE
    if cache.is_file() and not overwrite:
        return _read_slices(cache)
    parser = runner.parser(run_dir, overrides)
    network = parser.get_parsed_content("network_def")
    checkpoint = Path(parser.get_parsed_content("checkpoint"))
    if not checkpoint.is_file():
        raise FileNotFoundError(f"no best model to evaluate: {checkpoint}")
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    network.load_state_dict(state.get("model", state) if isinstance(state, dict) else state)
    network.eval()
    inferer = parser.get_parsed_content("validate#inferer")
    dataset = parser.get_parsed_content("validate#dataset")
    num_classes = int(parser.get_parsed_content("out_channels"))
    class_names = list(parser.get_parsed_content("class_names"))
    axis = int(getattr(inferer, "spatial_dim", 0))
    counts, cases, groups, overlay = [], [], [], {}
    with torch.no_grad():
        for index in range(len(dataset)):
            item = dataset[index]
            image, label = item["image"], item["label"]
            pred = inferer(torch.as_tensor(image)[None].float(), network)[0, 0]
            c = slice_class_counts(pred.numpy().astype(np.int64), np.asarray(label)[0], num_classes, axis=axis)
            counts.append(c)
            case = str(item.get("id", index))
            cases += [case] * c.shape[0]
            groups += [str(item.get("phase", item.get("group", "all")))] * c.shape[0]
            if index == overlay_case:
                overlay = {"overlay_image": np.asarray(image)[0], "overlay_label": np.asarray(label)[0],
                           "overlay_pred": pred.numpy().astype(np.uint8), "overlay_id": case, "overlay_axis": axis}
    record = {"counts": np.concatenate(counts), "cases": np.asarray(cases), "groups": np.asarray(groups),
              "class_names": np.asarray(class_names), **overlay}
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_name(".slices.tmp.npz")
    np.savez_compressed(tmp, **record)
    os.replace(tmp, cache)
    return _read_slices(cache)


def _read_slices(path: Path) -> dict[str, Any]:
    with np.load(path, allow_pickle=False) as data:
        out = {k: data[k] for k in data.files}
    out["class_names"] = [str(n) for n in out["class_names"]]
    return out


def small_structure_metrics(
    slices: Mapping[str, Any], thresholds: np.ndarray, prefix: str = "val_"
) -> dict[str, float]:
    """Flat small-structure metrics of one run (``val_small_dice_<class>[_<group>]``, ``val_missed_share_...``,
    ``val_missed_small_share_...``, ``val_slice_dice_...``, and ``..._mean``) at the given per-class area
    thresholds."""
    from monai_imbalance.metrics.small_structures import flat_small_structure_metrics, summarize_small_structures

    summary = summarize_small_structures(slices["counts"], thresholds, class_names=slices["class_names"],
                                         groups=slices["groups"])
    return flat_small_structure_metrics(summary, prefix)


def _check_same_slices(all_slices: Sequence[Mapping[str, Any]]) -> None:
    first = all_slices[0]
    for other in all_slices[1:]:
        same = (np.array_equal(other["cases"], first["cases"])
                and np.array_equal(other["counts"][..., 0], first["counts"][..., 0]))
        if not same:
            raise ValueError("the runs were evaluated on different slices (cases or true areas differ): a report "
                         "compares runs on the same evaluation section only.")


def _metric_groups(class_names: Sequence[str], groups: Sequence[str]) -> list[tuple[str, str, list[str]]]:
    """(title, metric stem, suffixes) of the report's tables."""
    return [("Dice", "val_dice", list(class_names)), ("HD95", "val_hd95", list(class_names)),
            ("missed volumes", "val_empty_pred", list(class_names)), ("OII", "val_oii", list(class_names)),
            ("small-slice Dice", "val_small_dice", list(class_names)),
            ("missed slices", "val_missed_share", list(class_names))]


def report_rows(runs: Sequence[BenchRun]) -> list[dict[str, Any]]:
    """One flat row per finished run: setup, fold, seed, seconds and its metrics."""
    return [{"setup": r.setup, "fold": r.fold, "seed": r.seed, "seconds": r.seconds, **r.metrics}
            for r in runs if r.status in ("done", "skipped")]


def _fmt(value: float, metric: str, half: float = math.nan, signed: bool = False) -> str:
    if value is None or not math.isfinite(value):
        return "-"
    pct = not any(k in metric for k in ("hd95", "oii", "empty_pred"))
    scale = 100.0 if pct else 1.0
    digits = 1 if pct or "hd95" in metric or "empty_pred" in metric else 3
    text = f"{value * scale:{'+' if signed else ''}.{digits}f}"
    if math.isfinite(half):
        text += f" ± {half * scale:.{digits}f}"
    return text


def format_report(
    runs: Sequence[BenchRun], class_names: Sequence[str], groups: Sequence[str], baseline: str | None,
    level: float = 0.95,
) -> str:
    """Markdown tables: per metric family, one row per setup and a column per class and group (mean ± half-width of
    the interval over repetitions), then the paired differences against ``baseline``."""
    done = [r for r in runs if r.status in ("done", "skipped")]
    setups = list(dict.fromkeys(r.setup for r in done))
    lines: list[str] = []
    columns = [(c, g) for g in ["all", *groups] for c in [*class_names, "mean"]]

    def key(stem: str, cls: str, group: str) -> str:
        if cls == "mean":
            name = {"val_dice": "val_mean_dice", "val_hd95": "val_mean_hd95", "val_oii": "val_mean_oii"}.get(
                stem, f"{stem}_mean")
        else:
            name = f"{stem}_{cls}"
        return name + ("" if group == "all" else f"_{group}")

    for title, stem, _ in _metric_groups(class_names, groups):
        header = ["setup", "n"] + [f"{c} {g}" if g != "all" else c for c, g in columns]
        lines += [f"**{title}** (mean ± 95% CI over runs)", "", "| " + " | ".join(header) + " |",
                  "|" + "|".join(["---"] * len(header)) + "|"]
        for setup in setups:
            mine = [r for r in done if r.setup == setup]
            cells = [setup, str(len(mine))]
            for cls, group in columns:
                metric = key(stem, cls, group)
                if stem == "val_empty_pred" and cls == "mean":
                    values = [sum(r.metrics.get(key(stem, c, group), 0.0) for c in class_names) for r in mine]
                else:
                    values = [r.metrics.get(metric, math.nan) for r in mine]
                mean, half = confidence_interval(values, level)
                cells.append(_fmt(mean, metric, half))
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    if baseline is not None and any(r.setup == baseline for r in done):
        lines += [f"**Paired differences against {baseline}** (setup - {baseline} on the same seed/fold; mean ± 95% "
                  "CI over pairs; percentage points, HD95 in the spacing's units)", ""]
        picked = [("Dice", "val_dice"), ("HD95", "val_hd95"), ("small-slice Dice", "val_small_dice"),
                  ("missed slices", "val_missed_share")]
        header = ["setup", "pairs"] + [f"Δ{t} {c}" for t, _ in picked for c in [*class_names, "mean"]]
        lines += ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] * len(header)) + "|"]
        wanted = [key(stem, c, "all") for _, stem in picked for c in [*class_names, "mean"]]
        diffs = paired_differences(done, baseline, wanted, level)
        for setup, entry in diffs.items():
            pairs = max((len(v["values"]) for v in entry.values()), default=0)
            cells = [setup, str(pairs)] + [_fmt(entry[m]["mean"], m, entry[m]["ci"], signed=True) for m in wanted]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def _plot_dice(runs: Sequence[BenchRun], class_names: Sequence[str], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    done = [r for r in runs if r.status in ("done", "skipped")]
    setups = list(dict.fromkeys(r.setup for r in done))
    panels = [("volume Dice", "val_dice"), ("small-slice Dice", "val_small_dice")]
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2), sharey=True)
    width = 0.8 / max(len(setups), 1)
    for ax, (name, stem) in zip(axes, panels):
        for i, setup in enumerate(setups):
            mine = [r for r in done if r.setup == setup]
            stats = [confidence_interval([r.metrics.get(f"{stem}_{c}", math.nan) for r in mine]) for c in class_names]
            means = [100 * m for m, _ in stats]
            errs = [0 if not math.isfinite(h) else 100 * h for _, h in stats]
            ax.bar(np.arange(len(class_names)) + i * width, means, width, yerr=errs, capsize=3, label=setup)
            for j, r in enumerate(mine):  # the individual runs
                ax.scatter(np.arange(len(class_names)) + i * width + (j - (len(mine) - 1) / 2) * width / 4,
                           [100 * r.metrics.get(f"{stem}_{c}", math.nan) for c in class_names], s=6, color="k",
                           zorder=3)
        ax.set_xticks(np.arange(len(class_names)) + width * (len(setups) - 1) / 2)
        ax.set_xticklabels(class_names)
        ax.set_title(name)
        ax.set_ylim(0, 100)
        ax.grid(axis="y", lw=0.3)
    axes[0].set_ylabel("Dice (%): mean, 95% CI, runs as dots")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, fontsize=8, loc="lower center", ncol=min(len(setups), 7), frameon=False)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _plot_overlays(slices_by_setup: Mapping[str, Mapping[str, Any]], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap

    first = next(iter(slices_by_setup.values()))
    if "overlay_image" not in first:
        return
    axis = int(first["overlay_axis"])
    image, label = np.moveaxis(first["overlay_image"], axis, 0), np.moveaxis(first["overlay_label"], axis, 0)
    areas = (label > 0).sum((1, 2))
    present = np.flatnonzero(areas)
    if present.size == 0:
        return
    picks = [int(present[np.argmax(areas[present])]), int(present[np.argmin(areas[present])])]  # largest, smallest
    colours = ListedColormap([(0, 0, 0, 0), (0.9, 0.2, 0.2, 0.55), (0.2, 0.8, 0.2, 0.55), (0.2, 0.4, 1.0, 0.55)])
    columns = [("truth", label)] + [(s, np.moveaxis(d["overlay_pred"], axis, 0)) for s, d in slices_by_setup.items()]
    fig, axes = plt.subplots(len(picks), len(columns), figsize=(2.1 * len(columns), 2.3 * len(picks)), squeeze=False)
    for row, k in enumerate(picks):
        for col, (name, volume) in enumerate(columns):
            ax = axes[row, col]
            ax.imshow(image[k], cmap="gray")
            ax.imshow(np.ma.masked_equal(volume[k], 0), cmap=colours, vmin=0, vmax=3, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(name, fontsize=8)
            if col == 0:
                ax.set_ylabel(f"slice {k + 1} ({'largest' if row == 0 else 'smallest'})", fontsize=8)
    fig.suptitle(title + f" — case {first['overlay_id']}, first run of each setup (red RV, green MYO, blue LV)",
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_report(
    runs: Sequence[BenchRun], slices: Mapping[tuple[str, int | None, int | None], Mapping[str, Any]],
    out_dir: str | os.PathLike, baseline: str | None = None, percentile: float = 25.0, title: str = "",
    header: str = "",
) -> dict[str, Any]:
    """Add the small-structure metrics to each run's metrics, and write ``report.json``, ``report.csv``,
    ``report.md``, ``dice.png`` and ``overlays.png`` in ``out_dir``; return the report's JSON content.

    Args:
        runs: the finished runs (their ``metrics`` are the bundle's evaluation).
        slices: per ``(setup, fold, seed)``, the run's :func:`evaluate_run_slices` record.
        baseline: the setup the paired differences are taken against.
        percentile: the small cross-sections: true area at or below this percentile of the class's present
            slices, over the evaluation section (the same slices for every run).
        header: text put above the tables in ``report.md`` (the command, commit, machine, budget, wall time).
    """
    from monai_imbalance.metrics.small_structures import small_area_thresholds

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    done = [r for r in runs if r.status in ("done", "skipped") and (r.setup, r.fold, r.seed) in slices]
    if not done:
        raise ValueError("no finished run with slice counts to report.")
    records = [slices[(r.setup, r.fold, r.seed)] for r in done]
    _check_same_slices(records)
    class_names = records[0]["class_names"]
    groups = [g for g in dict.fromkeys(records[0]["groups"].tolist()) if g != "all"]
    thresholds = small_area_thresholds(records[0]["counts"], percentile)
    for run, record in zip(done, records):
        run.metrics = {**run.metrics, **small_structure_metrics(record, thresholds)}
    rows = report_rows(done)
    names = list(dict.fromkeys(k for row in rows for k in row))
    with open(out / "report.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=names)
        writer.writeheader()
        writer.writerows(rows)
    table = format_report(done, class_names, groups, baseline)
    (out / "report.md").write_text((header + "\n\n" if header else "") + table + "\n")
    content = {
        "title": title, "baseline": baseline, "percentile": percentile, "classes": list(class_names),
        "groups": groups, "small_area_thresholds": dict(zip(class_names, map(float, thresholds))),
        "slices": int(records[0]["counts"].shape[0]), "cases": int(len(set(records[0]["cases"].tolist()))),
        "runs": rows,
        "paired_differences": paired_differences(done, baseline) if baseline and any(
            r.setup == baseline for r in done) else None,
    }
    (out / "report.json").write_text(json.dumps(content, indent=1, default=float) + "\n")
    _plot_dice(done, class_names, out / "dice.png", title)
    first_seed = {}
    for run, record in zip(done, records):
        first_seed.setdefault(run.setup, record)
    _plot_overlays(first_seed, out / "overlays.png", title)
    return content


def bench_report(
    runner: BundleRunner, runs: Sequence[BenchRun], bench_dir: str | os.PathLike, baseline: str | None = None,
    percentile: float = 25.0, title: str = "", header: str = "", echo: Any = print,
) -> dict[str, Any]:
    """Evaluate the slices of every finished run of a bench (cached) and write the report into ``bench_dir``."""
    bench_dir = Path(bench_dir)
    slices = {}
    for run in runs:
        if run.status not in ("done", "skipped"):
            continue
        run_dir = bench_dir / run.setup.replace("/", "_") / run_folder_name(run.fold, run.seed)
        try:
            slices[(run.setup, run.fold, run.seed)] = evaluate_run_slices(runner, run_dir, run.overrides)
        except FileNotFoundError as err:
            echo(f"bench report: {run.setup} {run_folder_name(run.fold, run.seed)} left out: {err}")
    return write_report(runs, slices, bench_dir, baseline=baseline, percentile=percentile, title=title,
                        header=header)
