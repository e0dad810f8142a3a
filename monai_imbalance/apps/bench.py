"""``monai-imbalance bench``: the papers' comparison tables through a bundle, over k folds.

Each (setup, fold) is one training run and one evaluation of the bundle (``python -m monai.bundle run`` with the
setup's overrides, as a user runs it; through ``torchrun`` with ``nproc > 1``), in its own folder
``out_dir/<setup>/fold<k>/`` (checkpoints, logs, evaluation). A run that finished is not run again (its
``result.json`` is read back), so an interrupted bench resumes where it stopped; a failed run is reported with
its log and the others go on. The table gives, per setup and metric, the mean over folds and the half-width of
its 95% confidence interval (Student's t with ``folds - 1`` degrees of freedom, as the MAC paper's Table 1),
best mean in bold.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from monai_imbalance.utils import atomic_write

__all__ = [
    "BenchRun",
    "BundleRunner",
    "parse_setups",
    "confidence_interval",
    "summarise_runs",
    "format_table",
    "run_bench",
    "run_folder_name",
    "read_result",
    "read_evaluation",
    "paired_differences",
    "write_bench_tables",
    "write_paired_table",
    "bundle_alpha_evaluator",
    "METRIC_NAMES",
    "plot_metrics",
]

#: display names of the bundles' metric keys, in the papers' column order; other metrics follow by name
METRIC_NAMES = {
    "val_mean_dice": "Dice",
    "val_iou": "IoU",
    "val_mean_iou": "IoU",
    "val_precision": "precision",
    "val_recall": "recall",
    "val_accuracy": "accuracy",
    "val_oii": "OII",
    "val_mean_oii": "OII",
    "val_object_f1": "detection F1",
    "val_instance_dice": "instance Dice",
    "val_small_object_recall": "small-object recall",
    "val_object_oii": "object OII",
}


@dataclass
class BenchRun:
    setup: str
    fold: int | None
    status: str  # "done", "failed", "skipped" (finished in an earlier bench), "pending" (not run: train=False)
    metrics: dict[str, float] = field(default_factory=dict)
    overrides: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    error: str = ""
    seed: int | None = None

    @property
    def repeat(self) -> tuple[int | None, int | None]:
        """What pairs runs of different setups: the same fold and the same seed."""
        return (self.fold, self.seed)


def run_folder_name(fold: int | None, seed: int | None) -> str:
    """``fold<k>``, ``seed<s>`` or ``fold<k>_seed<s>``: the folder of one repetition of a setup."""
    parts = ([f"fold{fold}"] if fold is not None else []) + ([f"seed{seed}"] if seed is not None else [])
    if not parts:
        raise ValueError("a bench run needs a fold or a seed.")
    return "_".join(parts)


def _json_bytes(value: Any) -> Callable[[Any], Any]:
    """A writer for :func:`~monai_imbalance.utils.atomic_write`: ``value`` as indented JSON."""
    return lambda file: file.write((json.dumps(value, indent=2) + "\n").encode())


def read_result(record: Path) -> tuple[dict[str, Any] | None, str | None]:
    """The JSON of a run's ``result.json``, or ``(None, why)`` when it is missing or cannot be read (a run killed
    while writing it): such a run counts as not done."""
    if not record.is_file():
        return None, None
    try:
        saved = json.loads(record.read_text())
        if not isinstance(saved, dict):
            raise ValueError("not a JSON object")
        return saved, None
    except (OSError, UnicodeDecodeError, ValueError) as err:
        return None, f"{record} is unreadable ({err})"


def parse_setups(
    setups: str | Sequence[str] | None = None, losses: str | Sequence[str] | None = None
) -> dict[str, dict[str, str]]:
    """``{name: bundle overrides}`` from paper setup names and/or loss names.

    ``setups``: the MAC paper's names (NC, RC, PC, MAC, NCW, RCW) or ``crop/loss`` pairs (``mac/dbce``);
    ``losses``: loss names (``ce,dbce,dice_ce``), each with the bundle's own crop.
    """
    from monai_imbalance.engines.registry import CROPS, LOSSES, get_loss_spec
    from monai_imbalance.engines.setups import paper_setup

    def split(value: str | Sequence[str] | None) -> list[str]:
        if value is None:
            return []
        items = value.split(",") if isinstance(value, str) else list(value)
        return [v.strip() for v in items if v.strip()]

    out: dict[str, dict[str, str]] = {}
    for name in split(setups):
        if "/" in name:
            crop, loss = (p.strip().lower() for p in name.split("/", 1))
            if crop not in CROPS or loss not in LOSSES:
                raise ValueError(f"setup {name!r}: crop must be one of {list(CROPS)} and loss one of {list(LOSSES)}.")
            out[name] = {"crop": crop, "loss": loss}
        else:
            out[name.upper()] = paper_setup(name)
    for loss in split(losses):
        out[loss.lower()] = {"loss": get_loss_spec(loss).name}
    if not out:
        raise ValueError("bench needs at least one setup (--setups NC,RC,... or --losses ce,dbce,...).")
    return out


def confidence_interval(values: Sequence[float], level: float = 0.95) -> tuple[float, float]:
    """Mean and half-width of the Student-t confidence interval of the mean (NaN half-width for one value)."""
    from scipy import stats

    x = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=np.float64)
    if x.size == 0:
        return math.nan, math.nan
    if x.size == 1:
        return float(x[0]), math.nan
    half = stats.t.ppf(0.5 + level / 2, x.size - 1) * x.std(ddof=1) / math.sqrt(x.size)
    return float(x.mean()), float(half)


def _value(text: str) -> Any:
    """A command-line override value as ``monai.bundle`` would read it (numbers, lists, booleans)."""
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


class BundleRunner:
    """Trains and evaluates one bundle setup in a run folder and returns the evaluation's metrics.

    Args:
        bundle: the bundle folder (``configs/train.yaml``, ``configs/evaluate.yaml``, ...).
        overrides: bundle overrides for every run (``{"dataset_dir": "/data/Kvasir-SEG", "epochs": "50"}``).
        nproc: GPUs per run; more than 1 runs training through ``torchrun`` with ``multi_gpu_train.yaml``.
        in_process: run ``monai.bundle.run`` in this process instead of a new one (no start-up cost; used by
            the tests, not for real benchmarks, where a process per run isolates them).
        extra_configs: more config files merged after each run's own (e.g. a project-specific override file).
    """

    def __init__(
        self,
        bundle: str | os.PathLike,
        overrides: Mapping[str, Any] | None = None,
        nproc: int = 1,
        in_process: bool = False,
        extra_configs: Sequence[str | os.PathLike] = (),
    ) -> None:
        self.bundle = Path(bundle).resolve()
        for name in ("train.yaml", "evaluate.yaml"):
            if not (self.bundle / "configs" / name).is_file():
                raise FileNotFoundError(f"{self.bundle} is not a bundle: configs/{name} is missing.")
        self.overrides = {str(k): v for k, v in (overrides or {}).items()}
        self.nproc = int(nproc)
        self.in_process = bool(in_process)
        self.extra_configs = [str(Path(c).resolve()) for c in extra_configs]

    def _configs(self, *names: str) -> list[str]:
        return [str(self.bundle / "configs" / f"{n}.yaml") for n in names] + self.extra_configs

    def _run(self, configs: list[str], overrides: dict[str, Any], log: Path, distributed: bool) -> None:
        meta = self.bundle / "configs" / "metadata.json"
        if self.in_process:
            from monai.bundle import run

            values = {k: _value(v) if isinstance(v, str) else v for k, v in overrides.items()}
            run(config_file=configs, meta_file=str(meta) if meta.is_file() else None, **values)
            return
        head = [sys.executable]
        if distributed:
            head += ["-m", "torch.distributed.run", "--standalone", "--nnodes=1", f"--nproc_per_node={self.nproc}"]
        cmd = head + ["-m", "monai.bundle", "run", "--config_file", repr(configs)]
        for key, value in overrides.items():
            cmd += [f"--{key}", value if isinstance(value, str) else json.dumps(value)]
        if meta.is_file():
            cmd += ["--meta_file", str(meta)]
        with open(log, "w") as f:
            f.write(" ".join(cmd) + "\n\n")
            f.flush()
            proc = subprocess.run(cmd, cwd=self.bundle, stdout=f, stderr=subprocess.STDOUT)
        if proc.returncode != 0:
            tail = log.read_text().splitlines()[-15:]
            raise RuntimeError(f"bundle run failed (exit {proc.returncode}), log {log}:\n" + "\n".join(tail))

    def run_overrides(self, run_dir: str | os.PathLike, overrides: Mapping[str, Any]) -> dict[str, Any]:
        """The overrides of one run: the runner's, the run's, and the run folder's paths."""
        run_dir = Path(run_dir).resolve()
        return {
            **self.overrides,
            **{str(k): v for k, v in overrides.items()},
            "bundle_root": str(self.bundle),
            "ckpt_dir": str(run_dir / "models"),
            "output_dir": str(run_dir / "eval"),
            "log_dir": str(run_dir / "logs"),
        }

    def parser(self, run_dir: str | os.PathLike, overrides: Mapping[str, Any], *names: str) -> Any:
        """A ``monai.bundle.ConfigParser`` of the run's configs (``names``, default train + evaluate, then the
        extra configs) with its overrides, to build its network, data and inferer in this process."""
        from monai.bundle import ConfigParser

        parser = ConfigParser()
        parser.read_config(self._configs(*(names or ("train", "evaluate"))))
        meta = self.bundle / "configs" / "metadata.json"
        if meta.is_file():
            parser.read_meta(str(meta))
        for key, value in self.run_overrides(run_dir, overrides).items():
            parser[key] = _value(value) if isinstance(value, str) else value
        return parser

    def run(self, run_dir: str | os.PathLike, overrides: Mapping[str, Any]) -> dict[str, float]:
        """Train with ``overrides`` (on top of the runner's), evaluate the best checkpoint, return its metrics."""
        run_dir = Path(run_dir).resolve()
        run_dir.mkdir(parents=True, exist_ok=True)
        merged = self.run_overrides(run_dir, overrides)
        distributed = self.nproc > 1
        train = self._configs("train", "multi_gpu_train") if distributed else self._configs("train")
        self._run(train, merged, run_dir / "train.log", distributed)
        self._run(self._configs("train", "evaluate"), merged, run_dir / "evaluate.log", False)
        return read_evaluation(run_dir / "eval")


def read_evaluation(eval_dir: str | os.PathLike) -> dict[str, float]:
    """The metrics an evaluation wrote to ``eval_dir``: MONAI's ``metrics.csv`` (2-D bundles), or the volumetric
    report of the 3-D bundles (``volumetric_report.json``: the names the evaluator logs, ``val_mean_dice``,
    ``val_dice_RV_ED``, ..., plus ``val_empty_pred_<class>[_<group>]``, the cases with an empty prediction where
    the truth is not empty); with the per-object metrics of ``objects_summary.json`` (``val_object_f1``,
    ``val_instance_dice``, ``val_small_object_recall``, ...) where the evaluation wrote one."""
    eval_dir = Path(eval_dir)
    summary = eval_dir / "metrics.csv"
    report_path = eval_dir / "volumetric_report.json"
    if summary.is_file():
        with open(summary) as f:
            metrics = {row[0]: float(row[1]) for row in csv.reader(f) if len(row) >= 2}
    elif report_path.is_file():
        from monai_imbalance.metrics.volumetric import flat_volume_metrics

        report = json.loads(report_path.read_text())
        metrics = flat_volume_metrics(report, "val_")
        for group, entry in report["summary"].items():
            tail = "" if group == "all" else f"_{group}"
            for name, count in entry.get("missed", {}).items():
                metrics[f"val_empty_pred_{name}{tail}"] = float(count)
    else:
        raise RuntimeError(f"the evaluation wrote neither {summary} nor {report_path}")
    objects = eval_dir / "objects_summary.json"
    if objects.is_file():
        for name, value in json.loads(objects.read_text()).get("metrics", {}).items():
            metrics.setdefault(name, math.nan if value is None else float(value))
    return metrics


def summarise_runs(runs: Sequence[BenchRun], level: float = 0.95) -> dict[str, dict[str, Any]]:
    """``{setup: {"folds": n, "failed": m, metric: {"mean", "ci", "values"}}}`` over the finished repetitions
    (folds and/or seeds; ``"folds"`` counts them whichever they are)."""
    out: dict[str, dict[str, Any]] = {}
    for setup in dict.fromkeys(r.setup for r in runs):
        done = [r for r in runs if r.setup == setup and r.status in ("done", "skipped")]
        entry: dict[str, Any] = {"folds": len(done), "failed": sum(r.setup == setup and r.status == "failed"
                                                                   for r in runs)}
        for metric in dict.fromkeys(m for r in done for m in r.metrics):
            values = [r.metrics.get(metric, math.nan) for r in done]
            mean, half = confidence_interval(values, level)
            entry[metric] = {"mean": mean, "ci": half, "values": values}
        out[setup] = entry
    return out


def paired_differences(
    runs: Sequence[BenchRun], baseline: str, metrics: Sequence[str] | None = None, level: float = 0.95
) -> dict[str, dict[str, Any]]:
    """Per setup other than ``baseline`` and per metric, the differences ``setup - baseline`` over the repetitions
    (same fold and seed) both finished, with their mean and the half-width of the Student-t interval:
    ``{setup: {metric: {"mean", "ci", "values", "pairs": [(fold, seed), ...]}}}``. Non-finite values drop their
    pair."""
    done = [r for r in runs if r.status in ("done", "skipped")]
    base = {r.repeat: r.metrics for r in done if r.setup == baseline}
    if not base:
        raise ValueError(f"baseline {baseline!r} has no finished run (setups: {sorted({r.setup for r in runs})}).")
    out: dict[str, dict[str, Any]] = {}
    for setup in dict.fromkeys(r.setup for r in done if r.setup != baseline):
        mine = {r.repeat: r.metrics for r in done if r.setup == setup}
        names = metrics or list(dict.fromkeys(m for v in mine.values() for m in v))
        entry: dict[str, Any] = {}
        for metric in names:
            pairs, diffs = [], []
            for key in sorted(set(mine) & set(base), key=lambda k: tuple(-1 if x is None else x for x in k)):
                a, b = mine[key].get(metric, math.nan), base[key].get(metric, math.nan)
                if a is not None and b is not None and math.isfinite(a) and math.isfinite(b):
                    pairs.append(key)
                    diffs.append(float(a) - float(b))
            mean, half = confidence_interval(diffs, level)
            entry[metric] = {"mean": mean, "ci": half, "values": diffs, "pairs": pairs}
        out[setup] = entry
    return out


def write_paired_table(
    diffs: Mapping[str, Mapping[str, Any]], out: str | os.PathLike, baseline: str
) -> Path:
    """``paired.md`` (and ``paired.json``) in ``out``: per setup and metric, ``mean ± CI`` of ``setup - baseline``
    (percentage points, except OII, HD95 and counts)."""
    out = Path(out)
    metrics = list(dict.fromkeys(m for entry in diffs.values() for m in entry))
    header = ["setup", "pairs"] + [METRIC_NAMES.get(m, m) for m in metrics]
    lines = [f"Paired differences against {baseline} (mean ± 95% CI over pairs)", "",
             "| " + " | ".join(header) + " |", "|" + "|".join(["---"] * len(header)) + "|"]
    for setup, entry in diffs.items():
        pairs = max((len(v["values"]) for v in entry.values()), default=0)
        cells = [setup, str(pairs)]
        for m in metrics:
            v = entry.get(m)
            scale = 1.0 if _unscaled(m) else 100.0
            if v is None or not math.isfinite(v["mean"]):
                cells.append("-")
                continue
            text = f"{v['mean'] * scale:+.3g}"
            if math.isfinite(v["ci"]):
                text += f" ± {v['ci'] * scale:.3g}"
            cells.append(text)
        lines.append("| " + " | ".join(cells) + " |")
    (out / "paired.json").write_text(json.dumps(diffs, indent=1, default=str) + "\n")
    path = out / "paired.md"
    path.write_text("\n".join(lines) + "\n")
    return path


#: parts of metric names where lower is better (distances, counts of failures)
_LOWER_IS_BETTER = ("hd95", "empty_pred", "fp_objects")


def _unscaled(metric: str) -> bool:
    """Metrics shown as they are, not in percent: OII, distances, counts."""
    return any(k in metric for k in ("oii", "seconds", *_LOWER_IS_BETTER))


def _ordered_metrics(summary: Mapping[str, Mapping[str, Any]]) -> list[str]:
    found = list(dict.fromkeys(m for e in summary.values() for m in e if m not in ("folds", "failed")))
    known = [m for m in METRIC_NAMES if m in found]
    return known + [m for m in found if m not in METRIC_NAMES]


def format_table(summary: Mapping[str, Mapping[str, Any]], markdown: bool = True, unit: str = "folds") -> str:
    """The paper-style table: ``mean ± CI`` per metric in percent (OII as is), best mean in bold (``**``) —
    highest, except OII: closest to 0. ``unit`` names the repetitions in the header (``"folds"``, ``"seeds"``)."""
    metrics = _ordered_metrics(summary)

    def score(metric: str, mean: float) -> float:
        if "oii" in metric:
            return -abs(mean)
        return -mean if any(k in metric for k in _LOWER_IS_BETTER) else mean

    best = {}
    for m in metrics:
        means = [e[m]["mean"] for e in summary.values() if m in e and math.isfinite(e[m]["mean"])]
        best[m] = max((score(m, v) for v in means), default=None)
    header = ["setup", unit] + [METRIC_NAMES.get(m, m) for m in metrics]
    rows = []
    for setup, entry in summary.items():
        cells = [setup, str(entry["folds"]) + (f" ({entry['failed']} failed)" if entry["failed"] else "")]
        for m in metrics:
            if m not in entry or not math.isfinite(entry[m]["mean"]):
                cells.append("-")
                continue
            scale = 1.0 if _unscaled(m) else 100.0
            mean, half = entry[m]["mean"] * scale, entry[m]["ci"] * scale
            text = f"{mean:.3f}" if "oii" in m else f"{mean:.1f}"
            if math.isfinite(half):
                text += f" ± {half:.3f}" if "oii" in m else f" ± {half:.1f}"
            if markdown and best[m] is not None and math.isclose(score(m, entry[m]["mean"]), best[m]):
                text = f"**{text}**"
            cells.append(text)
        rows.append(cells)
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] * len(header)) + "|"]
        return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    return "\n".join("  ".join(str(c).ljust(w) for c, w in zip(r, widths)) for r in [header, *rows])


def plot_metrics(summary: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """The metrics ``bench.png`` shows: the headline ones of :data:`METRIC_NAMES` (scores in [0, 1], OIIs in
    [-1, 1]: one axis), in table order; every metric when none of them is there. ``table.md`` has them all."""
    ordered = _ordered_metrics(summary)
    return [m for m in ordered if m in METRIC_NAMES] or ordered


def _plot(summary: Mapping[str, Mapping[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = plot_metrics(summary)
    setups = list(summary)
    fig, ax = plt.subplots(figsize=(max(6, 1.4 * len(metrics) * max(1, len(setups)) / 3), 4))
    width = 0.8 / max(len(setups), 1)
    for i, setup in enumerate(setups):
        means = [summary[setup].get(m, {}).get("mean", math.nan) for m in metrics]
        cis = [summary[setup].get(m, {}).get("ci", math.nan) for m in metrics]
        ax.bar(np.arange(len(metrics)) + i * width, means, width,
               yerr=[0 if not math.isfinite(c) else c for c in cis], capsize=3, label=setup)
    ax.set_xticks(np.arange(len(metrics)) + width * (len(setups) - 1) / 2)
    ax.set_xticklabels([METRIC_NAMES.get(m, m) for m in metrics], rotation=25, ha="right")
    ax.axhline(0, color="grey", lw=0.5)
    ax.set_ylabel("mean over folds (95% CI)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def run_bench(
    runner: BundleRunner,
    setups: Mapping[str, Mapping[str, str]],
    folds: int | Sequence[int] | None,
    out_dir: str | os.PathLike,
    progress: bool = True,
    echo: Callable[[str], None] = print,
    seeds: int | Sequence[int] | None = None,
    on_result: Callable[[BenchRun, Path], None] | None = None,
    train: bool = True,
    parallel: int = 1,
) -> tuple[list[BenchRun], dict[str, dict[str, Any]]]:
    """Run every (setup, fold, seed) not finished yet, then write ``runs.csv``, ``summary.json``, ``table.md`` and
    ``bench.png`` in ``out_dir`` and return the runs (ordered by setup, then fold and seed) and their summary.

    Args:
        folds: folds ``0..N-1`` (or the given ones), each passed as the ``fold`` override; None: no fold override.
        seeds: seeds ``0..N-1`` (or the given ones), each passed as the ``seed`` override (the bundle's
            ``set_determinism`` seed: same initial weights and data order for every setup of a seed); None: the
            bundle's own seed.
        on_result: called with each newly finished run and its folder (e.g. to commit results as they come).
        parallel: runs trained at the same time, each in its own process (a large GPU has room for several of the
            papers' small networks; the bundle's ``device`` decides where each runs). 1: one after the other.
        train: False: run nothing, read back what is finished (the others are ``"pending"``), e.g. to report
            on a bench that is still running elsewhere.

    Runs go repetition by repetition (every setup of fold 0 / seed 0 first), so an interrupted bench leaves
    complete comparisons behind. A ``result.json`` that cannot be read (a run killed while writing it) counts as
    not done: that run is redone, and ``echo`` says so.
    """
    from tqdm.auto import tqdm

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)

    def ids(value: int | Sequence[int] | None) -> list[int | None]:
        if value is None:
            return [None]
        return list(range(value)) if isinstance(value, int) else [int(v) for v in value]

    fold_ids, seed_ids = ids(folds), ids(seeds)
    if fold_ids == [None] and seed_ids == [None]:
        raise ValueError("bench needs folds or seeds to repeat the runs over.")
    if not fold_ids or not seed_ids:
        raise ValueError("bench needs at least one fold and one seed (or None for either).")
    jobs = [(name, fold, seed) for seed in seed_ids for fold in fold_ids for name in setups]
    runs: list[BenchRun] = []
    todo: list[tuple[str, int | None, int | None, dict[str, str], Path]] = []
    for name, fold, seed in jobs:
        run_dir = out / name.replace("/", "_") / run_folder_name(fold, seed)
        overrides = dict(setups[name])
        if fold is not None:
            overrides["fold"] = str(fold)
        if seed is not None:
            overrides["seed"] = str(seed)
        saved, problem = read_result(run_dir / "result.json")
        if problem:
            echo(f"bench: {problem}; running {name} {run_folder_name(fold, seed)} again")
        if saved is not None and saved.get("status") == "done" and saved.get("overrides") == overrides:
            runs.append(BenchRun(name, fold, "skipped", saved["metrics"], overrides, saved.get("seconds", 0.0),
                                 seed=seed))
        elif not train:
            runs.append(BenchRun(name, fold, "pending", {}, overrides, seed=seed))
        else:
            todo.append((name, fold, seed, overrides, run_dir))

    def one(job: tuple[str, int | None, int | None, dict[str, str], Path]) -> BenchRun:
        name, fold, seed, overrides, run_dir = job
        run_dir.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        try:
            metrics = runner.run(run_dir, overrides)
            run = BenchRun(name, fold, "done", metrics, overrides, time.perf_counter() - start, seed=seed)
            atomic_write(run_dir / "result.json", _json_bytes(asdict(run)))
            if on_result is not None:
                on_result(run, run_dir)
        except Exception as err:  # one failed run must not lose the others
            run = BenchRun(name, fold, "failed", {}, overrides, time.perf_counter() - start, str(err), seed=seed)
            echo(f"bench: {name} {run_folder_name(fold, seed)} failed: {str(err).splitlines()[0]}")
        return run

    jobs_at_once = max(1, int(parallel))
    if jobs_at_once > 1 and runner.in_process:
        raise ValueError("parallel runs need a runner with in_process=False (one process per run).")
    bar = tqdm(total=len(todo), desc="bench", unit="run", disable=not progress)
    if jobs_at_once == 1:
        for job in todo:
            bar.set_postfix(setup=job[0], run=run_folder_name(job[1], job[2]))
            runs.append(one(job))
            bar.update(1)
    else:
        from concurrent.futures import ThreadPoolExecutor, as_completed

        with ThreadPoolExecutor(max_workers=jobs_at_once) as pool:
            for future in as_completed([pool.submit(one, job) for job in todo]):
                runs.append(future.result())
                bar.update(1)
    bar.close()
    order = {name: i for i, name in enumerate(setups)}
    runs.sort(key=lambda r: (order[r.setup], -1 if r.fold is None else r.fold, -1 if r.seed is None else r.seed))
    write_bench_tables(runs, out, unit="seeds" if fold_ids == [None] else "folds")
    return runs, summarise_runs(runs)


def write_bench_tables(runs: Sequence[BenchRun], out: str | os.PathLike, unit: str = "folds") -> dict[str, Any]:
    """``runs.csv``, ``summary.json``, ``table.md`` (and ``bench.png``) of ``runs`` in ``out``; returns the
    summary."""
    out = Path(out)
    summary = summarise_runs(runs)
    metrics = _ordered_metrics(summary)
    with open(out / "runs.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["setup", "fold", "seed", "status", "seconds", *metrics, "error"])
        for r in runs:
            writer.writerow([r.setup, "" if r.fold is None else r.fold, "" if r.seed is None else r.seed, r.status,
                             f"{r.seconds:.1f}", *[r.metrics.get(m, "") for m in metrics],
                             r.error.splitlines()[0] if r.error else ""])
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    (out / "table.md").write_text(format_table(summary, unit=unit) + "\n")
    if any(e["folds"] for e in summary.values()):
        _plot(summary, out / "bench.png")
    return summary


def bundle_alpha_evaluator(
    runner: BundleRunner,
    loss: str,
    out_dir: str | os.PathLike,
    fold: int = 0,
    loss_params: Mapping[str, Any] | None = None,
) -> Callable[[float], dict[str, float]]:
    """``evaluate(alpha)`` for :func:`monai_imbalance.tuning.oii_guided_search` and ``grid_search`` through a bundle:
    one training run of ``loss`` with ``alpha`` (false-positive weight) and ``beta = 1 - alpha`` (false-negative
    weight), on top of ``loss_params``, in ``out_dir/alpha_<value>``; returns the evaluation's metrics with the
    DIBE paper's names added: ``oii``, ``iou`` and ``pa`` (its pixel accuracy ``TP / (TP + FP)`` is the precision).
    """
    from monai_imbalance.engines.registry import LOSSES

    name = str(loss).lower()
    if name not in LOSSES or not LOSSES[name].tunable:
        tunable = [n for n, spec in LOSSES.items() if spec.tunable]
        raise ValueError(f"loss {loss!r} has no alpha/beta to tune; tunable losses: {tunable}.")
    defaults = dict(LOSSES[name].defaults)
    out = Path(out_dir)

    def evaluate(alpha: float) -> dict[str, float]:
        params = {**defaults, **dict(loss_params or {}), "alpha": alpha, "beta": round(1 - alpha, 10)}
        overrides = {"loss": name, "fold": str(fold), f"loss_params#{name}": json.dumps(params, sort_keys=True)}
        run_dir = out / f"alpha_{alpha:g}"
        record = run_dir / "result.json"
        saved, problem = read_result(record)
        if problem:  # a run killed while writing it: trained again
            logging.getLogger(__name__).warning("tune: %s; training alpha %g again", problem, alpha)
        saved = saved or {}
        if saved.get("overrides") == overrides and isinstance(saved.get("metrics"), dict):  # trained earlier
            metrics = saved["metrics"]
        else:
            metrics = runner.run(run_dir, overrides)
            run_dir.mkdir(parents=True, exist_ok=True)
            atomic_write(record, _json_bytes({"overrides": overrides, "metrics": metrics}))
        named = {"oii": "val_oii", "iou": "val_iou", "pa": "val_precision", "dice": "val_mean_dice"}
        missing = [key for key in ("val_oii", "val_iou") if key not in metrics]
        if missing:
            raise RuntimeError(
                f"the bundle's evaluation reported no {missing}; OII guidance needs val_oii and val_iou."
            )
        return {**{short: metrics[key] for short, key in named.items() if key in metrics}, **metrics}

    return evaluate
