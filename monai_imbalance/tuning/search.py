"""OII-guided hyperparameter search (DIBE paper Sec. 3.1.2, Fig. 4, Appendix B) and a grid search with the same
interface, both resumable from a trace file.

Each evaluation is one training run: ``evaluate(alpha) -> {"oii": ..., "iou": ..., "pa": ..., ...}`` trains a model
with the false-positive weight ``alpha`` (``beta = 1 - alpha``) and validates it. The OII-guided search bisects
``alpha`` in ``[low, high]`` until the validation OII falls inside the target interval ``(m0, m1)``; a grid search
trains ``k + 1`` models at ``low, low + (high - low) / k, ..., high``. The trace (one row per trained model, the
paper's Table 3) is written after every evaluation, so an interrupted search resumes where it stopped: evaluations
already in the trace file are not run again.

Reading: ``alpha`` weighs false positives and ``beta`` false negatives (MONAI's ``TverskyLoss``). An OII above the
interval means too many false negatives: raise the FN weight ``beta``, i.e. lower ``alpha``; below the interval, the
other way. The paper's alpha plays the FN role (its Eq. 16 and experiments), so its sequences read as ``1 - alpha``
here: Appendix B's example 1 (paper 0.5 -> 0.7) is ``alpha`` 0.5 -> 0.3, example 2 (paper 0.5 -> 0.3 -> 0.2) is
``alpha`` 0.5 -> 0.7 -> 0.8.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

__all__ = ["SearchResult", "oii_guided_search", "grid_search", "format_trace", "load_trace"]

logger = logging.getLogger(__name__)

_DIGITS = 10  # parameter values are rounded to this many decimals (keys of the trace, no 0.30000000000000004)
_RESERVED = ("step", "beta", "in_interval")


class SearchResult(NamedTuple):
    """``trace``: one dict per trained model in search order (``step``, the parameter, ``beta = 1 - alpha``, what
    ``evaluate`` returned, ``in_interval``); ``chosen``: the selected parameter value."""

    trace: list[dict[str, Any]]
    chosen: float


def _check(interval: Sequence[float], low: float, high: float) -> tuple[float, float]:
    m0, m1 = (float(v) for v in interval)
    if not m0 < m1:
        raise ValueError(f"interval must be (m0, m1) with m0 < m1, got {tuple(interval)}.")
    if not low < high:
        raise ValueError(f"low must be below high, got low={low}, high={high}.")
    return m0, m1


def _to_number(text: str) -> Any:
    if text in ("True", "False"):
        return text == "True"
    if text == "":
        return None
    try:
        value = float(text)
    except ValueError:
        return text
    return int(value) if value.is_integer() and "." not in text and "e" not in text.lower() else value


def load_trace(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Rows of a trace file written by the searches (``.json``: a list of objects; anything else: CSV); ``[]`` when the
    file does not exist."""
    path = Path(path)
    if not path.exists():
        return []
    if path.suffix.lower() == ".json":
        rows = json.loads(path.read_text() or "[]")
        if not isinstance(rows, list):
            raise ValueError(f"{path}: expected a JSON list of rows, got {type(rows).__name__}.")
        return [dict(r) for r in rows]
    with path.open(newline="") as f:
        return [{k: _to_number(v) for k, v in row.items()} for row in csv.DictReader(f)]


def _write_trace(path: Path, rows: list[dict[str, Any]]) -> None:
    """Atomic write (temporary file + rename): an interrupted run never leaves half a trace."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", newline="") as f:
            if path.suffix.lower() == ".json":
                json.dump(rows, f, indent=2)
                f.write("\n")
            else:
                columns: list[str] = []
                for row in rows:
                    columns += [k for k in row if k not in columns]
                writer = csv.DictWriter(f, fieldnames=columns)
                writer.writeheader()
                writer.writerows(rows)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


class _Evaluations:
    """Calls ``evaluate`` at most once per parameter value, reusing rows of a trace file and appending to it."""

    def __init__(self, evaluate, param, oii_key, interval, trace_file):
        self.evaluate, self.param, self.oii_key, self.interval = evaluate, param, oii_key, interval
        self.path = None if trace_file is None else Path(trace_file)
        self.stored = load_trace(self.path) if self.path is not None else []
        self.cache = {round(float(r[param]), _DIGITS): r for r in self.stored if r.get(param) is not None}
        self.trace: list[dict[str, Any]] = []

    def __call__(self, value: float) -> dict[str, Any]:
        value = round(float(value), _DIGITS)
        if value in self.cache:
            metrics = {k: v for k, v in self.cache[value].items() if k not in _RESERVED and k != self.param}
            logger.info("%s=%g: reusing the evaluation stored in %s", self.param, value, self.path)
            fresh = False
        else:
            result = self.evaluate(value)
            if not isinstance(result, Mapping):
                raise TypeError(f"evaluate({value}) must return a mapping of metrics, got {type(result).__name__}.")
            metrics = {k: (v.item() if hasattr(v, "item") else v) for k, v in result.items()}
            fresh = True
        if self.oii_key not in metrics:
            raise KeyError(f"evaluate({value}) returned no {self.oii_key!r} (got {sorted(metrics)}).")
        oii = float(metrics[self.oii_key])
        if math.isnan(oii):
            raise ValueError(f"evaluate({value}) returned a NaN {self.oii_key!r}.")
        row: dict[str, Any] = {"step": len(self.trace) + 1, self.param: value}
        if self.param == "alpha":
            row["beta"] = round(1.0 - value, _DIGITS)
        row.update(metrics)
        row["in_interval"] = self.interval[0] < oii < self.interval[1]
        self.trace.append(row)
        if fresh:
            self.cache[value] = row
            if self.path is not None:
                visited = {round(float(r[self.param]), _DIGITS) for r in self.trace}
                kept = [r for r in self.stored if round(float(r.get(self.param) or math.nan), _DIGITS) not in visited]
                _write_trace(self.path, self.trace + kept)
        return row


def _closest_to_interval(trace: list[dict[str, Any]], oii_key: str, interval: tuple[float, float]) -> dict:
    m0, m1 = interval

    def distance(row):
        oii = float(row[oii_key])
        return 0.0 if m0 < oii < m1 else min(abs(oii - m0), abs(oii - m1))

    return min(reversed(trace), key=distance)  # ties: the latest step


def oii_guided_search(
    evaluate: Callable[[float], Mapping[str, Any]],
    interval: tuple[float, float] = (0.3, 0.4),
    low: float = 0.1,
    high: float = 0.9,
    max_steps: int = 5,
    trace_file: str | os.PathLike | None = None,
    param: str = "alpha",
    oii_key: str = "oii",
) -> SearchResult:
    """Bisection of ``alpha`` guided by the validation OII (DIBE paper Fig. 4 and Appendix B).

    Start at the centre of ``[low, high]``; evaluate; if the OII lies inside ``interval = (m0, m1)`` stop, if it is
    ``>= m1`` (too many false negatives) continue in the lower half (smaller ``alpha``, larger FN weight ``beta``),
    if it is ``<= m0`` in the upper half; at most ``max_steps`` models.

    Reading: ``alpha`` weighs false positives, ``beta = 1 - alpha`` false negatives; the paper's alpha is our ``beta``,
    so its Appendix B sequences read as ``1 - alpha`` (example 1: 0.5 -> 0.3; example 2: 0.5 -> 0.7 -> 0.8).

    Args:
        evaluate: ``evaluate(alpha) -> {"oii": ..., ...}``; trains and validates one model (anything else it returns,
            e.g. ``"iou"``, ``"pa"``, goes into the trace).
        interval: the target ``(m0, m1)`` (the paper's (0.3, 0.4) for its THC448 data; data dependent).
        low: lower end of the search range.
        high: upper end of the search range.
        max_steps: most models trained.
        trace_file: ``.json`` or ``.csv`` file holding the trace; rewritten after each evaluation, and evaluations
            already in it are reused, not run again (resume).
        param: name of the searched parameter in the trace.
        oii_key: key of the OII in ``evaluate``'s result.

    Returns:
        :class:`SearchResult` ``(trace, chosen)``: ``chosen`` is the value whose OII fell inside the interval, or, when
        none did within ``max_steps``, the one whose OII came closest to it.

    Example:
        >>> oiis = {0.5: 0.071, 0.7: 0.118, 0.8: 0.382}  # Appendix B, example 2 (Tversky loss, U-Net)
        >>> trace, chosen = oii_guided_search(lambda a: {"oii": oiis[a]})
        >>> [row["alpha"] for row in trace], chosen
        ([0.5, 0.7, 0.8], 0.8)
    """
    interval = _check(interval, low, high)
    if max_steps < 1:
        raise ValueError(f"max_steps must be >= 1, got {max_steps}.")
    runs = _Evaluations(evaluate, param, oii_key, interval, trace_file)
    lo, hi = float(low), float(high)
    for _ in range(max_steps):
        value = (lo + hi) / 2.0
        row = runs(value)
        if row["in_interval"]:
            return SearchResult(runs.trace, row[param])
        if float(row[oii_key]) >= interval[1]:
            hi = value  # too many false negatives: raise beta, lower alpha
        else:
            lo = value  # too many false positives: raise alpha
    return SearchResult(runs.trace, _closest_to_interval(runs.trace, oii_key, interval)[param])


def grid_search(
    evaluate: Callable[[float], Mapping[str, Any]],
    interval: tuple[float, float] = (0.3, 0.4),
    low: float = 0.1,
    high: float = 0.9,
    k: int = 4,
    trace_file: str | os.PathLike | None = None,
    param: str = "alpha",
    oii_key: str = "oii",
    select: str | None = "iou",
    mode: str = "max",
) -> SearchResult:
    """Grid search over ``low + i (high - low) / k``, ``i = 0..k``: ``k + 1`` models (DIBE paper Sec. 3.1.2), with the
    interface of :func:`oii_guided_search` so that the two compare on cost and result.

    Args:
        evaluate, interval, low, high, trace_file, param, oii_key: as :func:`oii_guided_search` (``interval`` only
            marks ``in_interval`` in the trace, and decides when ``select`` is ``None``).
        k: number of equal parts of ``[low, high]``.
        select: metric deciding the chosen value (the paper selects by IoU); ``None``: OII closest to the interval.
        mode: ``"max"`` or ``"min"`` of ``select``.

    Returns:
        :class:`SearchResult` ``(trace, chosen)``.
    """
    interval = _check(interval, low, high)
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}.")
    if mode not in ("max", "min"):
        raise ValueError(f"mode must be 'max' or 'min', got {mode!r}.")
    runs = _Evaluations(evaluate, param, oii_key, interval, trace_file)
    for i in range(k + 1):
        runs(low + i * (high - low) / k)
    if select is None:
        return SearchResult(runs.trace, _closest_to_interval(runs.trace, oii_key, interval)[param])
    missing = [r[param] for r in runs.trace if select not in r]
    if missing:
        raise KeyError(f"evaluate returned no {select!r} for {param} in {missing}.")
    pick = max if mode == "max" else min
    best = pick(runs.trace, key=lambda r: float(r[select]))  # ties: the first (smallest parameter)
    return SearchResult(runs.trace, best[param])


def format_trace(
    trace: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None, title: str | None = None
) -> str:
    """The trace as a fixed-width text table (the layout of the paper's Table 3: one row per trained model)."""
    if columns is None:
        columns = [c for c in trace[0]] if trace else []
    lines = [title] if title else []
    width = {c: max(len(c), 8) for c in columns}

    def cell(value):
        if isinstance(value, bool):
            return "yes" if value else "no"
        if isinstance(value, float):
            return f"{value:.3f}"
        return "" if value is None else str(value)

    lines.append("  ".join(c.rjust(width[c]) for c in columns))
    for row in trace:
        lines.append("  ".join(cell(row.get(c)).rjust(width[c]) for c in columns))
    return "\n".join(lines)
