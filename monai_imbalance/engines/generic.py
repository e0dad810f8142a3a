"""What ``bundles/generic_seg`` builds from a plan: the loading transforms, the plan's checks, the per-class Dice
metrics, the inference items and the prediction writer.

The generic bundle trains MONAI's ``DynUNet`` on any datalist (a MONAI datalist JSON, a Decathlon ``dataset.json`` or
a folder of pairs, read by :func:`monai_imbalance.apps.user_data.user_sections`), 2-D or 3-D, with the values of a
``plan.yaml`` (``monai-imbalance plan``) as ordinary bundle ids. Those values decide which transforms load the data
(a binary-mask reader for 0/255 masks, resampling for 3-D, resizing for 2-D, one of three intensity normalisations),
so the lists are built here and the bundle's YAML stays short:

- :func:`load_transforms`: image ``LoadImaged(image_only=True, ensure_channel_first=True)``; label
  :class:`~monai_imbalance.transforms.LoadBinaryMaskd` (``label_threshold`` set: 0/255 or JPEG masks) or ``LoadImaged``
  and ``EnsureTyped(uint8)`` (class indices); ``Spacingd(pixdim)`` (bilinear / nearest) when ``pixdim`` is set, with
  no ``Orientationd``: the plan's spacing axes are the array axes as loaded; ``Resized(image_size)`` (bilinear /
  nearest) when ``image_size`` is set; then :func:`intensity_transforms`.
- :func:`intensity_transforms`: ``range`` (8-bit images scaled to [0, 1]), ``ct`` (clip to ``[lower, upper]``, then
  ``(x - mean) / std``, as one ``ScaleIntensityRanged``) or ``zscore`` (``NormalizeIntensityd`` per image and channel).
- :func:`check_plan`: the network and patch values that ``DynUNet`` does not check itself, with messages naming the
  key to fix (a patch size the strides do not divide fails deep inside the forward pass otherwise).
- :func:`class_dice_metrics`: one ``MeanDice`` per foreground class (``val_dice_<class name>``), beside the bundle's
  mean Dice over the foreground classes.
- :func:`inference_items` and :func:`prediction_writer`: what ``configs/inference.yaml`` predicts and how it writes
  the predictions (NIfTI like the input for 3-D, PNG for 2-D).
"""

from __future__ import annotations

import math
import numbers
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "INTENSITY_KINDS",
    "INPUT_SUFFIXES",
    "check_plan",
    "intensity_transforms",
    "load_transforms",
    "class_dice_metrics",
    "foreground_names",
    "dataset_folder",
    "inference_items",
    "prediction_writer",
]

#: the intensity normalisations of a plan and the keys each takes (``kind`` aside)
INTENSITY_KINDS: dict[str, tuple[str, ...]] = {
    "range": ("a_min", "a_max"),
    "ct": ("lower", "upper", "mean", "std"),
    "zscore": ("nonzero",),
}
#: files :func:`inference_items` predicts from an ``input_dir`` (2-D: PIL images and NIfTI; 3-D: NIfTI)
INPUT_SUFFIXES: dict[int, tuple[str, ...]] = {
    2: (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".nii.gz", ".nii"),
    3: (".nii.gz", ".nii"),
}


def _check_spatial_dims(spatial_dims: Any) -> int:
    if isinstance(spatial_dims, bool) or spatial_dims not in (2, 3):
        raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims!r}.")
    return int(spatial_dims)


def _sizes(value: Any, name: str, spatial_dims: int, positive: type = int) -> tuple[Any, ...]:
    """``value`` as one entry per spatial axis (a list of ``spatial_dims`` numbers); ValueError naming ``name``."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or len(value) != spatial_dims:
        raise ValueError(f"{name} must have one value per spatial axis ({spatial_dims} for spatial_dims="
                         f"{spatial_dims}), got {value!r}.")
    kind = numbers.Integral if positive is int else numbers.Real
    for v in value:
        if isinstance(v, bool) or not isinstance(v, kind) or not v > 0 or not math.isfinite(v):
            raise ValueError(f"{name} must hold {'integers' if positive is int else 'numbers'} > 0, got {value!r}.")
    return tuple(positive(v) for v in value)


def _per_axis(value: Any, name: str, spatial_dims: int) -> tuple[int, ...]:
    """A DynUNet kernel or stride entry (one int for every axis, or one per axis)."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        value = [value] * spatial_dims
    return _sizes(value, name, spatial_dims)


def check_plan(
    spatial_dims: int,
    in_channels: int,
    out_channels: int,
    roi_size: Sequence[int],
    kernel_size: Sequence[Any],
    strides: Sequence[Any],
    deep_supervision: bool = False,
    deep_supr_num: int = 1,
    class_names: Sequence[str] | None = None,
    label_threshold: float | None = None,
    image_size: Sequence[int] | None = None,
    pixdim: Sequence[float] | None = None,
    filters: Sequence[int] | None = None,
) -> bool:
    """Check the plan values the bundle's ``DynUNet`` and patches depend on; True when they fit together.

    DynUNet checks the lengths of ``kernel_size`` and ``strides`` and the range of ``deep_supr_num`` itself (its own
    messages); this checks what it does not: the patch (``roi_size``) and the resized image (``image_size``) must be
    divisible, per axis, by the product of the strides (the skip connections of every level must meet), a softmax
    output of at least two classes with one name per foreground class, binary masks (``label_threshold``) only with
    two classes, and the lengths of ``pixdim`` and ``image_size``.

    Raises:
        ValueError: naming the key to fix.
    """
    spatial_dims = _check_spatial_dims(spatial_dims)
    for name, value, low in (("in_channels", in_channels, 1), ("out_channels", out_channels, 2)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
            extra = " (classes incl. background: the output is always a softmax)" if name == "out_channels" else ""
            raise ValueError(f"{name} must be an integer >= {low}{extra}, got {value!r}.")
    if class_names is not None:
        if isinstance(class_names, str) or len(class_names) != out_channels - 1:
            raise ValueError(f"class_names must name the {out_channels - 1} foreground classes of out_channels="
                             f"{out_channels} (the background is not named), got {class_names!r}.")
    if label_threshold is not None and out_channels != 2:
        raise ValueError(f"label_threshold={label_threshold!r} reads binary masks (0/255): it needs out_channels=2, "
                         f"got {out_channels}; set label_threshold null for class-index labels.")
    roi = _sizes(roi_size, "roi_size", spatial_dims)
    if isinstance(strides, (str, bytes)) or not isinstance(strides, Sequence) or len(strides) < 2:
        raise ValueError(f"strides must list the strides of every DynUNet level (at least 2), got {strides!r}.")
    if isinstance(kernel_size, (str, bytes)) or not isinstance(kernel_size, Sequence) or \
            len(kernel_size) != len(strides):
        raise ValueError(f"kernel_size must have one entry per entry of strides ({len(strides)}), got {kernel_size!r}.")
    for i, k in enumerate(kernel_size):
        _per_axis(k, f"kernel_size[{i}]", spatial_dims)
    factor = [1] * spatial_dims
    for i, s in enumerate(strides):
        factor = [f * a for f, a in zip(factor, _per_axis(s, f"strides[{i}]", spatial_dims))]
    for name, size in (("roi_size", roi), ("image_size", image_size)):
        if size is None:
            continue
        size = _sizes(size, name, spatial_dims)
        if any(n % f for n, f in zip(size, factor)):
            raise ValueError(f"{name} {list(size)} must be divisible per axis by the product of the strides "
                             f"{factor} (the DynUNet levels halve it that often).")
    if pixdim is not None:
        _sizes(pixdim, "pixdim", spatial_dims, positive=float)
    if deep_supervision and not (isinstance(deep_supr_num, numbers.Integral) and
                                 1 <= deep_supr_num <= len(strides) - 2):
        raise ValueError(f"deep_supr_num must be in 1..{len(strides) - 2} (len(strides) - 2) with deep_supervision, "
                         f"got {deep_supr_num!r}.")
    if filters is not None and len(filters) < len(strides):
        raise ValueError(f"filters must have at least one entry per level ({len(strides)}), got {filters!r}.")
    return True


def _number(intensity: Mapping[str, Any], key: str) -> float:
    value = intensity[key]
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(f"intensity {key} must be a finite number, got {value!r}.")
    return float(value)


def intensity_transforms(intensity: Mapping[str, Any] | None, keys: Any = "image") -> list[Any]:
    """The intensity normalisation of a plan, as MONAI transforms of ``keys``.

    - ``{kind: range, a_min, a_max}``: ``ScaleIntensityRanged(a_min, a_max, b_min=0, b_max=1, clip=True)``.
    - ``{kind: ct, lower, upper, mean, std}``: clip to ``[lower, upper]``, then ``(x - mean) / std``, i.e.
      ``ScaleIntensityRanged(a_min=lower, a_max=upper, b_min=(lower - mean) / std, b_max=(upper - mean) / std,
      clip=True)`` (nnU-Net's CT normalisation with the dataset's foreground statistics).
    - ``{kind: zscore, nonzero: false}``: ``NormalizeIntensityd(nonzero=..., channel_wise=True)``, per image.
    - None: no normalisation.

    Raises:
        ValueError: an unknown kind (the valid ones are listed), a missing or unknown key, ``a_max <= a_min``,
            ``upper <= lower``, ``std <= 0``, a non-number.
    """
    from monai.transforms import NormalizeIntensityd, ScaleIntensityRanged

    if intensity is None:
        return []
    if not isinstance(intensity, Mapping) or "kind" not in intensity:
        raise ValueError(f"intensity must be a mapping with a 'kind' (one of {list(INTENSITY_KINDS)}), got "
                         f"{intensity!r}.")
    kind = intensity["kind"]
    if kind not in INTENSITY_KINDS:
        raise ValueError(f"unknown intensity kind {kind!r}: expected one of {list(INTENSITY_KINDS)}.")
    allowed = INTENSITY_KINDS[kind]
    unknown = sorted(set(map(str, intensity)) - {"kind", *allowed})
    if unknown:
        raise ValueError(f"intensity kind {kind!r} takes {list(allowed)}, got unknown keys {unknown}.")
    if kind == "zscore":
        nonzero = intensity.get("nonzero", False)
        if not isinstance(nonzero, bool):
            raise ValueError(f"intensity nonzero must be true or false, got {nonzero!r}.")
        return [NormalizeIntensityd(keys, nonzero=nonzero, channel_wise=True)]
    missing = [k for k in allowed if k not in intensity]
    if missing:
        raise ValueError(f"intensity kind {kind!r} needs {list(allowed)}, missing {missing}.")
    if kind == "range":
        a_min, a_max = _number(intensity, "a_min"), _number(intensity, "a_max")
        if a_max <= a_min:
            raise ValueError(f"intensity a_max must be larger than a_min, got a_min={a_min}, a_max={a_max}.")
        return [ScaleIntensityRanged(keys, a_min=a_min, a_max=a_max, b_min=0.0, b_max=1.0, clip=True)]
    lower, upper, mean, std = (_number(intensity, k) for k in allowed)
    if upper <= lower:
        raise ValueError(f"intensity upper must be larger than lower, got lower={lower}, upper={upper}.")
    if std <= 0:
        raise ValueError(f"intensity std must be > 0, got {std}.")
    return [ScaleIntensityRanged(keys, a_min=lower, a_max=upper, b_min=(lower - mean) / std,
                                 b_max=(upper - mean) / std, clip=True)]


def load_transforms(
    spatial_dims: int,
    label_threshold: float | None = None,
    pixdim: Sequence[float] | None = None,
    image_size: Sequence[int] | None = None,
    intensity: Mapping[str, Any] | None = None,
    with_label: bool = True,
    image_key: str = "image",
    label_key: str = "label",
) -> list[Any]:
    """The loading transforms of a plan: read, resample (3-D) or resize (2-D), normalise.

    Args:
        spatial_dims: 2 or 3.
        label_threshold: binary masks (0/255 PNG, noisy JPEG) read by
            :class:`~monai_imbalance.transforms.LoadBinaryMaskd` at this grey level; None: class-index labels
            (``LoadImaged`` then ``EnsureTyped(uint8)``).
        pixdim: target spacing of ``Spacingd`` (bilinear image, nearest label), in the array axes as loaded (no
            ``Orientationd``); None: no resampling.
        image_size: target size of ``Resized`` (bilinear image, nearest label; anti-aliasing of the image only);
            None: the size as loaded.
        intensity: the plan's normalisation (:func:`intensity_transforms`).
        with_label: also load and resample the label (training, validation); False: the image only (inference).
        image_key, label_key: the items' keys.

    Raises:
        ValueError: ``spatial_dims`` not 2 or 3, ``pixdim`` or ``image_size`` of the wrong length or not positive, a
            bad intensity (:func:`intensity_transforms`).
    """
    import torch
    from monai.transforms import EnsureTyped, LoadImaged, Resized, Spacingd

    from monai_imbalance.transforms import LoadBinaryMaskd

    spatial_dims = _check_spatial_dims(spatial_dims)
    keys = [image_key, label_key] if with_label else [image_key]
    transforms: list[Any] = [LoadImaged(image_key, image_only=True, ensure_channel_first=True)]
    if with_label:
        if label_threshold is None:
            transforms += [LoadImaged(label_key, image_only=True, ensure_channel_first=True),
                           EnsureTyped(label_key, dtype=torch.uint8)]
        else:
            if isinstance(label_threshold, bool) or not isinstance(label_threshold, numbers.Real):
                raise ValueError(f"label_threshold must be a number or null, got {label_threshold!r}.")
            transforms.append(LoadBinaryMaskd(label_key, threshold=float(label_threshold)))
    modes = ["bilinear", "nearest"][: len(keys)]
    if pixdim is not None:
        transforms.append(Spacingd(keys, pixdim=_sizes(pixdim, "pixdim", spatial_dims, positive=float), mode=modes))
    if image_size is not None:
        transforms.append(Resized(keys, spatial_size=_sizes(image_size, "image_size", spatial_dims), mode=modes,
                                  anti_aliasing=[True, False][: len(keys)]))
    transforms += intensity_transforms(intensity, image_key)
    transforms.append(EnsureTyped(image_key, dtype=torch.float32))
    if with_label:
        transforms.append(EnsureTyped(label_key, dtype=torch.uint8))  # Spacingd and Resized give float labels
    return transforms


def foreground_names(class_names: Sequence[str] | None, out_channels: int) -> list[str]:
    """The foreground classes' names (``class_names``, or ``class_1`` ... ``class_<C-1>``)."""
    if class_names is None:
        return [f"class_{c}" for c in range(1, int(out_channels))]
    if isinstance(class_names, str) or len(class_names) != int(out_channels) - 1:
        raise ValueError(f"class_names must name the {int(out_channels) - 1} foreground classes, got {class_names!r}.")
    return [str(n) for n in class_names]


class _Channel:
    """``from_engine(["pred", "label"])`` reduced to one channel of every one-hot item."""

    def __init__(self, channel: int) -> None:
        self.channel = int(channel)

    def __call__(self, output: Any) -> tuple[list[Any], list[Any]]:
        from monai.handlers import from_engine

        preds, labels = from_engine(["pred", "label"])(output)
        c = self.channel
        return [p[c: c + 1] for p in preds], [y[c: c + 1] for y in labels]


def class_dice_metrics(class_names: Sequence[str] | None, out_channels: int, prefix: str = "val_dice_") -> dict:
    """``{"val_dice_<class name>": MeanDice}`` of every foreground class of one-hot ``pred`` and ``label``: the
    Dice of that channel per image, averaged over the images where it is defined (MONAI's ``MeanDice``), so
    ``StatsHandler``, TensorBoard and ``MetricsSaver`` (``metrics.csv``) record each class beside the mean.

    Names are made of letters, digits and ``_`` (other characters become ``_``; a repeated name gets ``_<class>``).
    """
    from monai.handlers import MeanDice

    metrics: dict[str, Any] = {}
    for c, name in enumerate(foreground_names(class_names, out_channels), start=1):
        key = prefix + (re.sub(r"\W+", "_", name).strip("_") or f"class_{c}")
        if key in metrics:
            key = f"{key}_{c}"
        metrics[key] = MeanDice(include_background=True, output_transform=_Channel(c))
    return metrics


def dataset_folder(datalist: str | os.PathLike, data_root: str | os.PathLike | None = None) -> str:
    """The bundle's ``dataset_dir``: ``data_root`` when given, else the datalist's folder (or the folder of pairs)."""
    if data_root:
        return str(data_root)
    path = Path(datalist)
    return str(path if path.is_dir() else path.parent)


def inference_items(
    input_dir: str | os.PathLike | None,
    spatial_dims: int,
    datalist: str | os.PathLike | None = None,
    data_root: str | os.PathLike | None = None,
    recursive: bool = False,
) -> list[dict[str, str]]:
    """The images ``configs/inference.yaml`` predicts: the files of ``input_dir`` (2-D: PNG, JPEG, BMP, TIFF, NIfTI;
    3-D: NIfTI), or the test section of ``datalist`` when ``input_dir`` is None (a datalist's ``"test"`` list, a
    Decathlon ``imagesTs``), as ``[{"image": path, "id": name}, ...]``.

    Raises:
        FileNotFoundError: ``input_dir`` missing or without any image.
        ValueError: neither ``input_dir`` nor a datalist with a test section.
    """
    spatial_dims = _check_spatial_dims(spatial_dims)
    if input_dir:
        from monai_imbalance.transforms.io import split_volume_name

        from .datalists import image_items

        items = image_items(input_dir, INPUT_SUFFIXES[spatial_dims], recursive=recursive)
        return [{**item, "id": split_volume_name(item["image"])[0]} for item in items]
    if not datalist:
        raise ValueError("set input_dir to the folder of the images to predict (or datalist to a file with a test "
                         "section).")
    from monai_imbalance.apps.user_data import user_sections

    items = user_sections(datalist, data_root=data_root)["test"]
    if not items:
        raise ValueError(f"{datalist} has no test section: set input_dir to the folder of the images to predict.")
    return [{"image": item["image"], "id": str(item.get("id") or Path(str(item["image"])).name)} for item in items]


def prediction_writer(
    spatial_dims: int,
    output_dir: str | os.PathLike,
    binary_masks: bool = False,
    output_postfix: str = "_pred",
    key: str = "pred",
) -> Any:
    """The transform writing one class-index prediction ``(1, *spatial)`` per input, in the input's geometry (apply
    ``Invertd`` first):

    - 3-D: :class:`~monai_imbalance.transforms.SaveLabelVolumeLikeInputd`, a NIfTI file with the input's affine and
      header, ``<input name><output_postfix>.nii.gz``;
    - 2-D, ``binary_masks`` (the labels were 0/255 masks): :class:`~monai_imbalance.transforms.SaveMaskLikeInputd`,
      0/255 grey PNG;
    - 2-D otherwise: MONAI's ``SaveImaged`` with its ``PILWriter``, the class indices as 8-bit grey PNG.
    """
    spatial_dims = _check_spatial_dims(spatial_dims)
    if spatial_dims == 3:
        from monai_imbalance.transforms import SaveLabelVolumeLikeInputd

        return SaveLabelVolumeLikeInputd(key, output_dir=output_dir, meta_source_key="image",
                                         output_postfix=output_postfix)
    if binary_masks:
        from monai_imbalance.transforms import SaveMaskLikeInputd

        return SaveMaskLikeInputd(key, output_dir=output_dir, output_ext=".png", output_postfix=output_postfix)
    import numpy as np
    from monai.transforms import SaveImaged

    # MONAI names the file <name>_<postfix>: the underscore is its own
    postfix = output_postfix[1:] if output_postfix.startswith("_") else output_postfix
    return SaveImaged(key, output_dir=output_dir, output_postfix=postfix,
                      output_ext=".png", output_dtype=np.uint8, resample=False, scale=None, separate_folder=False,
                      writer="PILWriter", print_log=False)
