"""Dataset imbalance statistics: how imbalanced a segmentation dataset is, per class, and what the papers suggest.

Every method of monai_imbalance starts from these figures: the foreground:background ratio (DIBE paper,
Table 2), the per-image foreground share (what Mask-Aware Cropping changes), the class frequency weights of
Bressan et al. (Eq. 5) used by balanced and uncertainty-weighted cross entropy. For deep supervision it counts the
objects that each rule of :func:`monai_imbalance.losses.deep_supervision.downsample_label` (``"nearest"``, MONAI's
resize; ``"max"``; ``"area"``) would delete from the target of a head at 1/2, 1/4, 1/8, 1/16 resolution.

Example:
    >>> from monai_imbalance.apps.synthetic import make_synthetic_pair
    >>> from monai_imbalance.stats import ImbalanceStatistics
    >>> stats = ImbalanceStatistics(num_classes=2)
    >>> for seed in range(4):
    ...     stats.update(make_synthetic_pair((64, 64), fg_fraction=0.05, seed=seed)["label"])
    >>> report = stats.compute()
    >>> round(report.foreground_fraction, 3)
    0.05
"""

from __future__ import annotations

import itertools
import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from monai_imbalance.transforms.utils import window_foreground_counts
from monai_imbalance.utils import component_values, ensure_int_sequence, label_components, to_numpy, validate_label

__all__ = [
    "class_frequency_weights",
    "imbalance_level",
    "format_ratio",
    "ImageLabelSummary",
    "summarise_label",
    "ClassStatistics",
    "ImbalanceReport",
    "ImbalanceStatistics",
    "MAC_RHO_GRID",
    "DIBE_PAPER_LAMBDA",
    "DS_RULES",
    "DS_AREA_THRESHOLD",
]

#: rho values of the MAC paper's grid (Sec. 4.3); suggestions are taken from it.
MAC_RHO_GRID = (0.25, 0.5, 0.75)
#: share of images with foreground that a suggested rho must keep croppable by MAC.
MAC_CROPPABLE_TARGET = 0.8
#: lambda (weight of the target class) the DIBE paper uses in every experiment (Sec. 4.3.2).
DIBE_PAPER_LAMBDA = 0.75
#: imbalance levels of the DIBE paper's Table 2, as lower bounds on N in FG:BG = 1:N. The paper's examples:
#: 1:2228 extreme, 1:584 and 1:333 high, 1:191 and 1:113 medium, 1:25 low; its abstract calls below 1:1000
#: "extremely imbalanced". The cut points between its examples (250, 100) are ours.
IMBALANCE_LEVELS = (("extreme", 1000.0), ("high", 250.0), ("medium", 100.0), ("low", 0.0))
#: target downsampling rules of deep supervision whose lost objects the report counts (``downsample_label`` modes)
DS_RULES = ("nearest", "max", "area")
#: ``area_threshold`` of the ``"area"`` rule in the report (the default of ``downsample_label``)
DS_AREA_THRESHOLD = 0.5


def class_frequency_weights(labels: Any, num_classes: int) -> np.ndarray:
    """Class frequency weights ``omega_c = m / (C * n_c)`` (Bressan et al., Eq. 5) over all ``labels``.

    ``m`` is the number of pixels of all labels, ``C = num_classes`` and ``n_c`` the pixels of class ``c``.
    A class that never occurs gets weight 0 (it contributes no pixel to a loss anyway). Weights are 1 for
    every class when the classes are balanced.

    Args:
        labels: one label map (any shape, integer class indices, numpy/torch/MetaTensor) or an iterable of
            label maps (e.g. a generator over a training set, so that they are never all in memory).
        num_classes: number of classes including background.

    Returns:
        ``float64`` array of shape ``(num_classes,)``.

    Raises:
        ValueError: ``num_classes < 1``, no label given, or a label with non-integer or out-of-range values.

    Example:
        >>> import numpy as np
        >>> class_frequency_weights(np.array([[0, 0, 0, 1]]), num_classes=2)  # 4 / (2 * 3), 4 / (2 * 1)
        array([0.66666667, 2.        ])
    """
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}.")
    if isinstance(labels, (np.ndarray, Mapping)) or hasattr(labels, "shape"):
        labels = [labels]
    counts = np.zeros(num_classes, dtype=np.int64)
    seen = 0
    for index, label in enumerate(labels):
        arr = validate_label(label, num_classes=num_classes, source=f"labels[{index}]")
        counts += np.bincount(arr.ravel(), minlength=num_classes)
        seen += 1
    if seen == 0:
        raise ValueError("class_frequency_weights needs at least one label; got an empty iterable.")
    total = counts.sum()
    weights = np.zeros(num_classes, dtype=np.float64)
    present = counts > 0
    weights[present] = total / (num_classes * counts[present])
    return weights


def imbalance_level(ratio_n: float) -> str:
    """DIBE paper's imbalance level for a foreground:background ratio of ``1:ratio_n``."""
    for name, lower in IMBALANCE_LEVELS:
        if ratio_n >= lower:
            return name
    return "low"


def format_ratio(count: float, background: float) -> str:
    """``"1:N"`` with ``N = background / count`` as in the DIBE paper's Table 2; ``"absent"`` for a zero count."""
    if count <= 0:
        return "absent"
    n = background / count
    return f"1:{n:.0f}" if n >= 10 else f"1:{n:.2g}"


@dataclass
class ImageLabelSummary:
    """What the statistics keep of one label map: a few numbers per class, never the label itself."""

    source: str
    spatial_shape: tuple[int, ...]
    counts: np.ndarray  # pixels per class value, length max(label) + 1 (or num_classes)
    component_sizes: dict[int, np.ndarray]  # class -> sizes of its connected components
    max_window_share: float | None  # best foreground share of any MAC window (None: not computed / too small)
    # rule -> objects lost at each deep-supervision level (1/2, 1/4, ...); None: not computed (ds_levels=0)
    objects_lost: dict[str, np.ndarray] | None = None


def _as_spatial(label: np.ndarray, source: str) -> np.ndarray:
    """Drop a leading singleton channel axis of a channel-first label ``(1, *spatial)``."""
    if label.ndim in (3, 4) and label.shape[0] == 1:
        label = label[0]
    if label.ndim not in (2, 3):
        raise ValueError(
            f"label from {source} must be 2-D or 3-D (optionally with one leading channel), got shape {label.shape}."
        )
    return label


def _adaptive_cells(n: int, m: int) -> tuple[np.ndarray, np.ndarray]:
    """For each of ``n`` input positions, the first and the last of the ``m`` adaptive-pooling cells that hold it.

    Cell ``i`` spans ``[floor(i n / m), ceil((i + 1) n / m))`` (``F.adaptive_avg_pool*d``); for ``m <= n`` a position
    lies in one cell or in two neighbouring ones (the step ``n / m >= 1`` keeps a third from reaching it).
    """
    i = np.arange(m)
    starts, ends = (i * n) // m, -((-(i + 1) * n) // m)
    x = np.arange(n)
    # first cell: the last start <= x; last cell: the first end > x
    last = np.searchsorted(starts, x, side="right") - 1
    first = np.searchsorted(ends, x, side="right")
    return first, last


def _pixel_cells(
    shape: tuple[int, ...], size: tuple[int, ...], coords: tuple[np.ndarray, ...]
) -> list[tuple[np.ndarray, np.ndarray | None]]:
    """The low-resolution cells of the pixels at ``coords``: one ``(flat cell, mask)`` per combination of the one or
    two cells per axis (:func:`_adaptive_cells`); ``mask`` (None: every pixel) marks the pixels for which that
    combination is a distinct cell, so that each pixel counts once in each of its cells."""
    options = []  # per axis: (first cell, None), (last cell, pixels whose last cell differs from the first)
    for axis, (full, small) in enumerate(zip(shape, size)):
        first, last = _adaptive_cells(full, small)
        first, last = first[coords[axis]], last[coords[axis]]
        options.append(((first, None),) if np.array_equal(first, last) else ((first, None), (last, last != first)))
    combos = []
    for choice in itertools.product(*options):
        masks = [m for _, m in choice if m is not None]
        mask = np.logical_and.reduce(masks) if masks else None
        combos.append((np.ravel_multi_index([c for c, _ in choice], size), mask))
    return combos


def _pooled_cell_labels(
    shape: tuple[int, ...], size: tuple[int, ...], cells: list[tuple[np.ndarray, np.ndarray | None]],
    pixel_class: np.ndarray, threshold: float,
) -> dict[str, np.ndarray]:
    """The ``"max"`` and ``"area"`` labels of every low-resolution cell (flat), from the foreground pixels only.

    What :func:`~monai_imbalance.losses.deep_supervision.downsample_label` computes with one adaptive average
    pooling of the one-hot (its cost: voxels x classes), counted here sparsely: per class, one ``bincount`` of the
    cells its pixels lie in (``cells``: :func:`_pixel_cells` of the foreground pixels, each pixel counted once in each
    distinct cell); the cell takes the class with the most pixels (ties: the smaller class, by the ascending loop),
    under ``"area"`` only when that count is at least ``threshold`` of the cell's pixels. The statistics' tests check
    both against ``downsample_label``.
    """
    n_cells = int(np.prod(size))
    cell_pixels = np.ones(1, dtype=np.int64)
    for full, small in zip(shape, size):
        i = np.arange(small)
        cell_pixels = np.multiply.outer(cell_pixels, -((-(i + 1) * full) // small) - (i * full) // small)
    cell_pixels = cell_pixels.reshape(-1)
    best_count = np.zeros(n_cells, dtype=np.int64)
    best_class = np.zeros(n_cells, dtype=pixel_class.dtype)
    for value in np.unique(pixel_class):
        mine = pixel_class == value
        count = np.zeros(n_cells, dtype=np.int64)
        for flat, mask in cells:
            count += np.bincount(flat[mine if mask is None else mine & mask], minlength=n_cells)
        better = count > best_count
        best_count[better], best_class[better] = count[better], value
    area = np.where(best_count >= threshold * cell_pixels, best_class, 0).astype(best_class.dtype)
    return {"max": best_class, "area": area}


def _objects_lost(
    arr: np.ndarray, n: int, index: np.ndarray, comp_labels: np.ndarray, levels: int
) -> dict[str, np.ndarray]:
    """Objects of ``arr`` lost at deep-supervision levels ``1..levels`` under every rule of :data:`DS_RULES`.

    The label is downsampled once per level and rule (``"nearest"``: ``downsample_label`` of the whole map;
    ``"max"``, ``"area"``: the same cells counted from the foreground pixels, :func:`_pooled_cell_labels`). An object
    (connected component ``j`` of class ``c``) is kept when at least one low-resolution cell whose adaptive-pooling
    window holds one of its pixels carries class ``c``. The cells holding a pixel are found per axis (one or two cells,
    :func:`_adaptive_cells`), so every pixel is compared with the (up to ``2**ndim``) cells over it, exactly; one
    ``bincount`` of the matching pixels' component labels then says which objects are kept. Two objects of one class
    that share a cell both count as kept. ``index`` and ``comp_labels`` are the flat indices and component labels of
    the labelled pixels (:func:`monai_imbalance.utils.component_values`).
    """
    import torch

    from monai_imbalance.losses.deep_supervision import downsample_label

    lost = {rule: np.zeros(levels, dtype=np.int64) for rule in DS_RULES}
    if n == 0 or levels == 0:
        return lost
    coords = np.unravel_index(index, arr.shape)
    pixel_class = arr.reshape(-1)[index]
    # uint8 as it is; other dtypes (uint16 has few torch ops) as int32; torch warns on read-only arrays (memory maps)
    source = np.ascontiguousarray(arr, dtype=np.uint8 if arr.dtype == np.uint8 else np.int32)
    tensor = torch.from_numpy(source if source.flags.writeable else source.copy())[None, None]
    for level in range(1, levels + 1):
        size = tuple(-(-s // 2**level) for s in arr.shape)
        cells = _pixel_cells(arr.shape, size, coords)  # once per level: the pooled labels and the hit check
        pooled = _pooled_cell_labels(arr.shape, size, cells, pixel_class, DS_AREA_THRESHOLD)
        for rule in DS_RULES:
            if rule == "nearest":
                low = downsample_label(tensor, size, mode=rule).numpy().reshape(-1)
            else:
                low = pooled[rule]
            hit = np.zeros(index.size, dtype=bool)
            for flat, _ in cells:  # a repeated cell (mask False) gives the same answer: no mask needed here
                hit |= low[flat] == pixel_class
            kept = np.count_nonzero(np.bincount(comp_labels[hit], minlength=n + 1)[1:])
            lost[rule][level - 1] = n - kept
    return lost


def summarise_label(
    label: Any,
    num_classes: int | None = None,
    connectivity: int | None = None,
    roi_size: int | Sequence[int] | None = None,
    stride: int | Sequence[int] = 16,
    source: str = "label",
    ds_levels: int = 4,
) -> ImageLabelSummary:
    """Per-class pixel counts, connected-component sizes, best MAC window share and deep-supervision object losses of
    one label map.

    ``connectivity`` follows ``scipy.ndimage.generate_binary_structure`` (1 = face neighbours; None = full,
    8 in 2-D and 26 in 3-D, as ``skimage.measure.label``). ``roi_size`` enables the MAC window share: the
    largest foreground share of any window on the ``stride`` grid; None when the image is smaller than the ROI.
    ``ds_levels`` (0 disables) counts, for deep-supervision levels ``1..ds_levels`` (the spatial shape divided by
    ``2**level`` per axis, rounded up), the objects each rule of :data:`DS_RULES` loses (:func:`_objects_lost`).
    """
    arr = _as_spatial(validate_label(label, num_classes=num_classes, source=source), source)
    counts = np.bincount(arr.ravel(), minlength=num_classes or 0)
    # one connected-components pass labels every class (label_components never joins different values)
    cc, n = label_components(arr, connectivity)
    index, comp_labels, sizes, comp_class = component_values(cc, n, arr)
    lost = _objects_lost(arr, n, index, comp_labels, ds_levels) if ds_levels else None
    sizes, comp_class = sizes[1:].astype(np.int64), comp_class[1:]
    components: dict[int, np.ndarray] = {}
    for value in np.unique(comp_class).tolist():
        components[int(value)] = sizes[comp_class == value]
    share = None
    if roi_size is not None:
        roi = ensure_int_sequence(roi_size, arr.ndim, "roi_size")
        windows = window_foreground_counts(arr, roi, stride)
        if windows.size:
            share = float(windows.max()) / float(np.prod(roi))
    return ImageLabelSummary(source, tuple(arr.shape), counts, components, share, lost)


def _quartiles(values: Sequence[float] | np.ndarray) -> dict[str, float | None]:
    """min, quartiles, max and mean; every entry None when there is no value (e.g. no component)."""
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return dict.fromkeys(("min", "q1", "median", "q3", "max", "mean"))
    q = np.percentile(values, [0, 25, 50, 75, 100])
    return {
        "min": float(q[0]),
        "q1": float(q[1]),
        "median": float(q[2]),
        "q3": float(q[3]),
        "max": float(q[4]),
        "mean": float(values.mean()),
    }


@dataclass
class ClassStatistics:
    """Statistics of one class (or of the union of all foreground classes, ``index = -1``)."""

    index: int
    name: str
    pixels: int
    fraction: float
    ratio_to_background: str
    background_per_pixel: float | None  # N of "1:N"; None when absent (or for the background itself)
    image_fraction: dict[str, float | None]  # per-image share of pixels: min, q1, median, q3, max, mean
    absent_share: float  # share of images where the class has no pixel
    components: int  # connected components over the dataset
    components_per_image: float
    component_size: dict[str, float | None]  # pixels per component (None without components)
    weight: float  # omega_c = m / (C n_c) (0 for the foreground row)


@dataclass
class ImbalanceReport:
    """Result of :class:`ImbalanceStatistics`: per class statistics, dataset figures and suggestions.

    ``str(report)`` is a readable table; :meth:`to_dict` / :meth:`to_json` give the same for scripts.
    """

    num_images: int
    num_classes: int
    total_pixels: int
    spatial_shapes: dict[str, list[int]]  # smallest and largest image extent per axis
    classes: list[ClassStatistics]
    foreground: ClassStatistics
    foreground_fraction: float
    ratio: str
    imbalance_level: str
    empty_image_share: float
    class_weights: list[float]
    mac: dict[str, Any] | None
    # {"factors": [2, 4, ...], "area_threshold", "objects", "objects_lost": {rule: [per factor]}}; None: ds_levels=0
    deep_supervision: dict[str, Any] | None = None
    suggestions: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def object_size_bins(self) -> dict[int, list[float]]:
        """``{class: [q1, median, q3]}`` of the connected-component sizes (pixels or voxels) of each foreground
        class with components: the ``size_bins`` of :class:`~monai_imbalance.metrics.ObjectMetric` that judge every
        method on this dataset's object-size quartiles (duplicates merged)."""
        bins = {}
        for row in self.classes:
            if row.index > 0 and row.components:
                q = row.component_size
                bins[row.index] = sorted({float(q["q1"]), float(q["median"]), float(q["q3"])})
        return bins

    def to_json(self, path: str | os.PathLike | None = None, indent: int = 2) -> str:
        """The report as JSON text; written to ``path`` too when given."""
        text = json.dumps(self.to_dict(), indent=indent, allow_nan=False)
        if path is not None:
            Path(path).write_text(text + "\n")
        return text

    def format(self) -> str:
        lo, hi = self.spatial_shapes["min"], self.spatial_shapes["max"]
        shapes = "x".join(map(str, lo)) if lo == hi else f"{'x'.join(map(str, lo))} .. {'x'.join(map(str, hi))}"
        lines = [
            f"images: {self.num_images}   classes: {self.num_classes}   pixels: {self.total_pixels:,}   "
            f"size: {shapes}",
            f"foreground:background {self.ratio} ({100 * self.foreground_fraction:.3g}% foreground, "
            f"{self.imbalance_level} imbalance)   images without foreground: {100 * self.empty_image_share:.3g}%",
            "",
        ]
        header = (
            f"{'class':<14}{'pixels':>14}{'share %':>10}{'FG:BG':>10}{'absent %':>10}"
            f"{'img share % q1/med/q3':>24}{'comps':>8}{'comp px med':>13}{'omega':>9}"
        )
        lines += [header, "-" * len(header)]
        for row in [*self.classes, self.foreground]:
            f = row.image_fraction
            quart = f"{100 * f['q1']:.3g}/{100 * f['median']:.3g}/{100 * f['q3']:.3g}"
            comps = "-" if row.index == 0 else str(row.components)
            size = "-" if row.index == 0 or row.components == 0 else f"{row.component_size['median']:.0f}"
            weight = "-" if row.index < 0 else f"{row.weight:.3g}"
            ratio = "-" if row.index == 0 else row.ratio_to_background
            lines.append(
                f"{row.name[:13]:<14}{row.pixels:>14,}{100 * row.fraction:>10.3g}{ratio:>10}"
                f"{100 * row.absent_share:>10.3g}{quart:>24}{comps:>8}{size:>13}{weight:>9}"
            )
        sized = [row for row in self.classes if row.index > 0 and row.components]
        if sized:
            lines += ["", "object sizes in pixels (voxels in 3-D), min / q1 / median / q3 / max (q1, median, q3: the "
                      "default size bins of the per-object metrics, ObjectMetric(size_bins=...))"]
            for row in sized:
                q = row.component_size
                lines.append(f"  {row.name[:13]:<14}" + " / ".join(f"{q[k]:.6g}" for k in
                                                            ("min", "q1", "median", "q3", "max")))
        if self.mac:
            lines += ["", f"MAC (roi {self.mac['roi_size']}, stride {self.mac['stride']}): images with foreground "
                      "that have at least one window of share >= rho"]
            lines += [f"  rho {rho:<5} {100 * share:.3g}%" for rho, share in self.mac["croppable_share"].items()]
        if self.deep_supervision:
            ds = self.deep_supervision
            total = ds["objects"]
            lines += ["", "deep supervision: objects lost when the label is downsampled to "
                      + ", ".join(f"1/{f}" for f in ds["factors"]) + " resolution (DeepSupervisionLoss target_mode)"]
            for rule, lost in ds["objects_lost"].items():
                name = f"area >= {ds['area_threshold']:g}" if rule == "area" else rule
                lines.append(f"  {name:<12}" + ", ".join(f"{k}/{total}" for k in lost))
        if self.suggestions:
            lines += ["", "Suggestions (from the papers):"] + [f"  - {s}" for s in self.suggestions]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.format()


class ImbalanceStatistics:
    """Streams over label maps and reports how imbalanced a segmentation dataset is.

    Labels are summarised one at a time (pixel counts per class, component sizes, best MAC window share) and
    dropped, so a dataset of any size fits in memory. Feed it with :meth:`update` (one label map at a time) or
    :meth:`run` (a MONAI datalist JSON, a list of datalist items or paths, a folder of label files, a MONAI
    ``Dataset``), then call :meth:`compute`.

    Args:
        num_classes: number of classes including background. None infers it as ``max label + 1``; giving it
            checks every label (values ``>= num_classes`` raise) and keeps absent classes in the report.
        label_key: key of the label in datalist items and dataset items.
        class_names: optional names, index 0 the background.
        connectivity: connected-component connectivity (1 = face neighbours, None = full).
        roi_size: crop size for the MAC suggestions (e.g. ``(224, 224)``); None skips them.
        stride: MAC window stride (the paper's best runs use 16).
        threshold: how label files are read (:func:`monai_imbalance.apps.io.load_label_file`): ``"auto"``
            binarises JPEG and 0/255 masks at 127, a number binarises at that value, None keeps raw values.
        ds_levels: deep-supervision levels whose object losses are reported: level ``l`` is the label downsampled
            to its spatial shape divided by ``2**l`` per axis (rounded up), for ``l = 1..ds_levels`` (4: 1/2 .. 1/16);
            0 skips them. An object (connected component of a class) is lost at a level under a rule when no
            low-resolution cell over it carries its class (:func:`summarise_label`).

    Example:
        >>> import numpy as np
        >>> stats = ImbalanceStatistics(num_classes=3)
        >>> stats.update(np.array([[0, 0, 1, 1], [0, 0, 0, 2]]))
        >>> report = stats.compute()
        >>> report.classes[1].pixels, report.classes[2].ratio_to_background
        (2, '1:5')
    """

    def __init__(
        self,
        num_classes: int | None = None,
        label_key: str = "label",
        class_names: Sequence[str] | None = None,
        connectivity: int | None = None,
        roi_size: int | Sequence[int] | None = None,
        stride: int | Sequence[int] = 16,
        threshold: float | str | None = "auto",
        ds_levels: int = 4,
    ) -> None:
        if num_classes is not None and num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}.")
        if isinstance(ds_levels, bool) or not isinstance(ds_levels, (int, np.integer)) or ds_levels < 0:
            raise ValueError(
                f"ds_levels must be an integer >= 0 (0 skips the deep-supervision counts), got {ds_levels!r}."
            )
        if class_names is not None and num_classes is not None and len(class_names) != num_classes:
            raise ValueError(f"class_names has {len(class_names)} names but num_classes={num_classes}.")
        self.num_classes = num_classes
        self.label_key = label_key
        self.class_names = list(class_names) if class_names is not None else None
        self.connectivity = connectivity
        self.roi_size = roi_size
        self.stride = stride
        self.threshold = threshold
        self.ds_levels = int(ds_levels)
        self.reset()

    def reset(self) -> None:
        self._counts = np.zeros(self.num_classes or 0, dtype=np.int64)
        self._image_counts: list[np.ndarray] = []
        self._image_sizes: list[int] = []
        self._shapes: list[tuple[int, ...]] = []
        self._components: dict[int, list[np.ndarray]] = {}
        self._window_shares: list[float | None] = []
        self._objects = 0
        self._objects_lost = {rule: np.zeros(self.ds_levels, dtype=np.int64) for rule in DS_RULES}

    # -- feeding --------------------------------------------------------------------------------------------
    def update(self, label: Any, source: str | None = None) -> None:
        """Add one label map (spatial, or channel-first with one channel)."""
        source = source or f"label #{len(self._image_sizes)}"
        self.add_summary(
            summarise_label(
                label, self.num_classes, self.connectivity, self.roi_size, self.stride, source, self.ds_levels
            )
        )

    def add_summary(self, summary: ImageLabelSummary) -> None:
        """Add the summary of one label map (from :func:`summarise_label`, e.g. computed in a worker).

        Raises:
            ValueError: the summary's deep-supervision counts are for another number of levels than ``ds_levels``.
        """
        if self.ds_levels:
            got = None if summary.objects_lost is None else len(next(iter(summary.objects_lost.values())))
            if got != self.ds_levels:
                raise ValueError(
                    f"the summary of {summary.source} has deep-supervision counts for {got or 0} levels but "
                    f"ds_levels={self.ds_levels}: compute it with summarise_label(..., ds_levels={self.ds_levels})."
                )
            for rule in DS_RULES:
                self._objects_lost[rule] += summary.objects_lost[rule]  # type: ignore[index]
            self._objects += sum(len(sizes) for sizes in summary.component_sizes.values())
        if len(summary.counts) > len(self._counts):
            self._counts = np.pad(self._counts, (0, len(summary.counts) - len(self._counts)))
        self._counts[: len(summary.counts)] += summary.counts
        self._image_counts.append(summary.counts)
        self._image_sizes.append(int(np.prod(summary.spatial_shape)))
        self._shapes.append(summary.spatial_shape)
        for value, sizes in summary.component_sizes.items():
            self._components.setdefault(value, []).append(sizes)
        self._window_shares.append(summary.max_window_share)

    def _sources(self, data: Any, data_list_key: str) -> list[tuple[str, Any]]:
        """(name, item) pairs for every form of input :meth:`run` accepts; items are paths or arrays."""
        from monai_imbalance.apps.io import find_label_files, is_label_file

        if isinstance(data, (str, os.PathLike)):
            path = Path(data)
            if path.is_dir():
                return [(str(p), p) for p in find_label_files(path)]
            if not path.exists():
                raise FileNotFoundError(f"datalist or label folder not found: {path}")
            if path.suffix.lower() == ".json":
                from monai.data import load_decathlon_datalist

                items = load_decathlon_datalist(path, is_segmentation=True, data_list_key=data_list_key)
                return self._sources(items, data_list_key)
            if is_label_file(path):
                return [(str(path), path)]
            raise ValueError(f"{path} is neither a datalist JSON, a label file nor a folder.")
        if isinstance(data, Mapping):
            raise ValueError("pass a datalist (list of items) or a dataset, not a single dict item.")
        sources = []
        for index, item in enumerate(data):
            if isinstance(item, Mapping):
                if self.label_key not in item:
                    raise ValueError(f"datalist item {index} has no key {self.label_key!r} (keys: {list(item)}).")
                value = item[self.label_key]
            else:
                value = item
            if isinstance(value, (str, os.PathLike)):
                sources.append((str(value), Path(value)))
            else:
                meta = getattr(value, "meta", None) or {}
                sources.append((str(meta.get("filename_or_obj", f"item {index}")), value))
        if not sources:
            raise ValueError("the datalist is empty: there is no label to compute statistics on.")
        return sources

    def run(
        self,
        data: Any,
        data_list_key: str = "training",
        num_workers: int = 0,
        progress: bool = True,
    ) -> ImbalanceReport:
        """Reset, stream over ``data`` and return the report.

        Args:
            data: a MONAI datalist JSON path (``data_list_key`` selects the list; relative paths resolve
                against the JSON's folder), a folder of label files, a list of datalist items (dicts with
                ``label_key``), of label paths or of arrays, or a MONAI/torch ``Dataset`` whose items are dicts.
            data_list_key: list to read from a datalist JSON.
            num_workers: processes reading and summarising label files in parallel (0: in this process).
            progress: show a progress bar.
        """
        self.reset()
        if hasattr(data, "__getitem__") and hasattr(data, "__len__") and not isinstance(data, (str, list, tuple)):
            sources = _DatasetSources(data, self.label_key)  # a Dataset: items are only read one at a time
        else:
            sources = self._sources(data, data_list_key)
        if len(sources) == 0:
            raise ValueError("the dataset is empty: there is no label to compute statistics on.")
        from monai_imbalance.apps.checks import process_iter

        worker = _SummaryWorker(sources, self)
        for summary in process_iter(worker, num_workers, "label statistics", bool(progress), unit="img"):
            self.add_summary(summary)
        return self.compute()

    # -- result ---------------------------------------------------------------------------------------------
    def compute(self) -> ImbalanceReport:
        """Report over every label added since the last :meth:`reset`. ``ValueError`` if none was added."""
        n_images = len(self._image_sizes)
        if n_images == 0:
            raise ValueError("no label was added: the dataset is empty.")
        num_classes = self.num_classes or max(len(self._counts), 2)
        counts = np.pad(self._counts, (0, num_classes - len(self._counts)))
        per_image = np.zeros((n_images, num_classes), dtype=np.int64)
        for i, c in enumerate(self._image_counts):
            per_image[i, : len(c)] = c
        sizes = np.asarray(self._image_sizes, dtype=np.float64)
        total = int(counts.sum())
        background = float(counts[0])
        weights = np.zeros(num_classes)
        weights[counts > 0] = total / (num_classes * counts[counts > 0])
        names = self.class_names or ["background"] + [f"class {c}" for c in range(1, num_classes)]

        def row(
            index: int, name: str, pixels: int, image_pixels: np.ndarray, comps: list[np.ndarray]
        ) -> ClassStatistics:
            all_sizes = np.concatenate(comps) if comps else np.zeros(0, dtype=np.int64)
            return ClassStatistics(
                index=index,
                name=name,
                pixels=int(pixels),
                fraction=pixels / total,
                ratio_to_background=format_ratio(pixels, background),
                background_per_pixel=float(background / pixels) if pixels > 0 and index != 0 else None,
                image_fraction=_quartiles(image_pixels / sizes),
                absent_share=float(np.mean(image_pixels == 0)),
                components=int(all_sizes.size),
                components_per_image=all_sizes.size / n_images,
                component_size=_quartiles(all_sizes),
                weight=float(weights[index]) if index >= 0 else 0.0,
            )

        classes = [
            row(c, names[c], counts[c], per_image[:, c], self._components.get(c, []) if c > 0 else [])
            for c in range(num_classes)
        ]
        fg_pixels = per_image[:, 1:].sum(axis=1)
        # components of the union are not the union of per-class components; report per-class ones summed
        fg_comps = [s for c in range(1, num_classes) for s in self._components.get(c, [])]
        foreground = row(-1, "foreground", int(fg_pixels.sum()), fg_pixels, fg_comps)
        ratio_n = background / foreground.pixels if foreground.pixels else math.inf
        shapes = np.array([s for s in self._shapes if len(s) == len(self._shapes[0])])
        report = ImbalanceReport(
            num_images=n_images,
            num_classes=num_classes,
            total_pixels=total,
            spatial_shapes={"min": shapes.min(0).tolist(), "max": shapes.max(0).tolist()},
            classes=classes,
            foreground=foreground,
            foreground_fraction=foreground.fraction,
            ratio=format_ratio(foreground.pixels, background),
            imbalance_level=imbalance_level(ratio_n) if foreground.pixels else "no foreground",
            empty_image_share=float(np.mean(fg_pixels == 0)),
            class_weights=weights.tolist(),
            mac=self._mac_summary(fg_pixels > 0),
            deep_supervision=self._deep_supervision_summary(),
        )
        report.suggestions = _suggestions(report)
        return report

    def _deep_supervision_summary(self) -> dict[str, Any] | None:
        if not self.ds_levels:
            return None
        return {
            "factors": [2**level for level in range(1, self.ds_levels + 1)],
            "area_threshold": DS_AREA_THRESHOLD,
            "objects": self._objects,
            "objects_lost": {rule: self._objects_lost[rule].tolist() for rule in DS_RULES},
        }

    def _mac_summary(self, has_foreground: np.ndarray) -> dict[str, Any] | None:
        if self.roi_size is None:
            return None
        shares = [s for s, fg in zip(self._window_shares, has_foreground) if fg]
        n = len(shares)
        croppable = {
            str(rho): (sum(1 for s in shares if s is not None and s >= rho) / n if n else 0.0) for rho in MAC_RHO_GRID
        }
        too_small = sum(1 for s in self._window_shares if s is None)
        return {
            "roi_size": list(ensure_int_sequence(self.roi_size, len(self._shapes[0]), "roi_size")),
            "stride": self.stride,
            "croppable_share": croppable,
            "images_smaller_than_roi": too_small,
            "best_window_share": _quartiles([s for s in shares if s is not None]),
        }


def _suggestions(report: ImbalanceReport) -> list[str]:
    """The settings the five papers give for data like this, stated with where they come from."""
    out: list[str] = []
    fg = report.foreground
    if fg.pixels == 0:
        return ["No foreground pixel in any label: check the label key, the threshold and num_classes."]
    n = fg.background_per_pixel or math.inf
    level = report.imbalance_level
    loss = "DIBERegLoss" if level == "extreme" else "DIBELoss"
    out.append(
        f"DIBE: {level} imbalance (FG:BG {report.ratio}): {loss} (the paper recommends DIBE_Reg for extreme input "
        "imbalance, DIBE otherwise). "
        f"lambda: the paper uses {DIBE_PAPER_LAMBDA} at every level from 1:25 to 1:2228 (closer to 1 for stronger "
        f"imbalance); the inverse-frequency value would be {n / (n + 1):.4f}."
    )
    if report.mac is not None:
        croppable = report.mac["croppable_share"]
        good = [float(r) for r, share in croppable.items() if share >= MAC_CROPPABLE_TARGET]
        if good:
            rho = max(good)
            out.append(
                f"MAC: rho={rho} is the largest of the paper's grid that keeps {100 * croppable[str(rho)]:.3g}% of "
                f"images with foreground croppable (>= {100 * MAC_CROPPABLE_TARGET:.0f}%) at roi "
                f"{report.mac['roi_size']}, stride {report.mac['stride']}; the others fall back to random crops."
            )
        else:
            out.append(
                f"MAC: no rho of the paper's grid {MAC_RHO_GRID} keeps {100 * MAC_CROPPABLE_TARGET:.0f}% of images "
                f"croppable at roi {report.mac['roi_size']}: objects are small for this crop; a smaller roi or rho "
                "keeps MAC from falling back to random crops."
            )
    if report.foreground_fraction >= 0.25:
        out.append(
            f"MAC: {100 * report.foreground_fraction:.3g}% foreground is near HAM10000 (30%), where the MAC paper saw "
            "no gain over random cropping; its gains were at 3% (URDE) and 16% (Kvasir-SEG)."
        )
    weights = np.asarray(report.class_weights)
    present = weights[weights > 0]
    if present.size > 1 and present.max() / present.min() > 100:
        out.append(
            f"Class weights span {present.max() / present.min():.3g}x: plain balanced CE with such weights "
            "over-predicts the minority class (DBCE paper, Tables 1-3; MAC paper's RCW/NCW); DilatedBalancedCELoss "
            "bounds the weights by the dilated area (paper radius 20 px for polyps and skin lesions at 320x320, "
            "10 px for abdominal organs)."
        )
    rare = [c.name for c in report.classes[1:] if c.absent_share > 0.5 and c.pixels > 0]
    if rare:
        out.append(
            f"Absent from most images: {', '.join(rare)}. Per-image weights (DBCE) give them weight only where "
            "present; the DBCE paper counts Dice terms only for classes present in a slice."
        )
    missing = [c.name for c in report.classes if c.pixels == 0]
    if missing:
        out.append(f"Never present: {', '.join(missing)} (class weight 0).")
    ds = report.deep_supervision
    if ds and ds["objects"] and any(ds["objects_lost"]["nearest"]):
        lost = ds["objects_lost"]
        worst = int(np.argmax(lost["nearest"]))
        out.append(
            f"Deep supervision: nearest-neighbour targets (MONAI's DeepSupervisionLoss) lose "
            f"{lost['nearest'][worst]} of {ds['objects']} objects at 1/{ds['factors'][worst]} resolution, "
            f"target_mode='max' (monai_imbalance.losses.DeepSupervisionLoss's default) {lost['max'][worst]}: the "
            "heads at low resolution are otherwise trained to call small objects background (nnU-Net issue 1226)."
        )
    if report.empty_image_share > 0:
        out.append(
            f"{100 * report.empty_image_share:.3g}% of images have no foreground: MAC and probabilistic cropping fall "
            "back to random crops on them."
        )
    return out


class _DatasetSources:
    """(name, label) pairs read lazily from a Dataset whose items are dicts (or arrays)."""

    def __init__(self, dataset: Any, label_key: str) -> None:
        self.dataset = dataset
        self.label_key = label_key

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> tuple[str, Any]:
        item = self.dataset[index]
        if isinstance(item, (list, tuple)) and len(item) == 1:
            item = item[0]  # a random-crop dataset returns a list of samples; only the first is used
        if isinstance(item, Mapping):
            if self.label_key not in item:
                raise ValueError(f"dataset item {index} has no key {self.label_key!r} (keys: {list(item)}).")
            item = item[self.label_key]
        meta = getattr(item, "meta", None) or {}
        return str(meta.get("filename_or_obj", f"item {index}")), item


class _SummaryWorker:
    """Picklable map-style dataset: item i is the summary of label i, read and summarised in the worker."""

    def __init__(self, sources: Any, stats: ImbalanceStatistics) -> None:
        self.sources = sources
        self.num_classes = stats.num_classes
        self.connectivity = stats.connectivity
        self.roi_size = stats.roi_size
        self.stride = stats.stride
        self.threshold = stats.threshold
        self.ds_levels = stats.ds_levels

    def __len__(self) -> int:
        return len(self.sources)

    def __getitem__(self, index: int) -> ImageLabelSummary:
        from monai_imbalance.apps.io import load_label_file

        name, item = self.sources[index]
        label = load_label_file(item, threshold=self.threshold) if isinstance(item, Path) else to_numpy(item)
        return summarise_label(
            label, self.num_classes, self.connectivity, self.roi_size, self.stride, name, self.ds_levels
        )
