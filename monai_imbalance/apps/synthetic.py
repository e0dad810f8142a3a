"""Deterministic synthetic image/label pairs with a controlled pixel-level imbalance.

Used by the tests, the benchmarks and the demo, and by anyone who wants to see how a method behaves as the
foreground shrinks from 30% (HAM10000-like) to 3% (URDE-like) and below (0.05%, THC-like), without a download.
Everything these generators produce is synthetic and says so in the datalists they write.

How the foreground fraction is hit: each class gets a smooth score field that peaks at its objects (noisy
ellipses/ellipsoids for ``"blob"``, distance to random-walk curves for ``"thin"``) and the ``K`` highest-scoring
free pixels become the class, with ``K = round(fraction * pixels)`` (at least 1). The realised fraction of a
non-empty image therefore equals the request to within one pixel per class, whatever the shape and number of
objects; the object count is the requested one unless small objects merge or a tiny ``K`` cannot reach every
object.

Example:
    >>> pair = make_synthetic_pair((96, 96), fg_fraction=0.03, num_objects=2, seed=1)
    >>> pair["image"].shape, pair["label"].shape, int(pair["label"].sum())
    ((1, 96, 96), (1, 96, 96), 276)
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

__all__ = [
    "make_synthetic_pair",
    "iter_synthetic_dataset",
    "make_synthetic_dataset",
    "write_synthetic_dataset",
    "SHAPES",
]

SHAPES = ("blob", "thin", "mixed")
#: objects per foreground class at most: rendering costs objects x pixels, so the count is capped rather than slow
MAX_OBJECTS = 256
#: pixels of image per object at least (fewer and the objects could not be told apart)
PIXELS_PER_OBJECT = 16
IMAGE_FORMATS = ("png", "jpg", "nii.gz")


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, ...], sigma: float) -> np.ndarray:
    """Zero-mean unit-std Gaussian-filtered white noise: a texture of feature size ``sigma``."""
    field = ndimage.gaussian_filter(rng.standard_normal(shape).astype(np.float32), sigma, mode="wrap")
    std = field.std()
    return field / std if std > 0 else field


def _random_rotation(rng: np.random.Generator, ndim: int) -> np.ndarray:
    q, r = np.linalg.qr(rng.standard_normal((ndim, ndim)))
    return q * np.sign(np.diag(r))


def _object_centres(
    rng: np.random.Generator, shape: tuple[int, ...], count: int, border_rate: float, min_dist: float
) -> np.ndarray:
    """``count`` centres, each on the image border with probability ``border_rate``, kept ``min_dist`` apart
    where possible (rejection sampling with a bounded number of tries, distances to earlier centres vectorised)."""
    size = np.asarray(shape, dtype=np.float64)
    centres = np.empty((count, len(shape)))
    for n in range(count):
        best, best_gap = None, -1.0
        for _ in range(30):
            c = rng.uniform(0, size - 1)
            if rng.random() < border_rate:
                axis = rng.integers(len(shape))
                c[axis] = 0.0 if rng.random() < 0.5 else size[axis] - 1
            gap = float(np.sqrt(((centres[:n] - c) ** 2).sum(1)).min()) if n else np.inf
            if gap >= min_dist:
                best = c
                break
            if gap > best_gap:
                best, best_gap = c, gap
        centres[n] = best
    return centres


def _blob_score(
    rng: np.random.Generator,
    grid: list[np.ndarray],
    centres: np.ndarray,
    scales: np.ndarray,
    roughness: float,
) -> np.ndarray:
    """max over objects of ``1 - d_k(x) / (s_k (1 + roughness * noise))``, ``d_k`` an anisotropic distance."""
    shape = grid[0].shape
    ndim = len(shape)
    wobble = 1.0 + roughness * np.clip(_smooth_noise(rng, shape, max(2.0, min(shape) / 16)), -2.5, 2.5)
    score = np.full(shape, -np.inf, dtype=np.float32)
    for centre, scale in zip(centres, scales):
        axes = np.exp(rng.uniform(-0.5, 0.5, ndim))
        axes /= np.prod(axes) ** (1.0 / ndim)  # same volume as a ball of radius ``scale``
        rot = _random_rotation(rng, ndim)
        offsets = [g - c for g, c in zip(grid, centre)]
        dist2 = np.zeros(shape, dtype=np.float32)
        for i in range(ndim):
            proj = sum(rot[i, j] * offsets[j] for j in range(ndim))
            dist2 += (proj / axes[i]) ** 2
        np.maximum(score, 1.0 - np.sqrt(dist2) / (scale * wobble), out=score)
    return score


def _thin_score(
    rng: np.random.Generator,
    shape: tuple[int, ...],
    centres: np.ndarray,
    lengths: np.ndarray,
) -> np.ndarray:
    """Minus the distance to random-walk curves (cracks, vessels) starting at ``centres``."""
    ndim = len(shape)
    skeleton = np.zeros(shape, dtype=bool)
    upper = np.asarray(shape) - 1
    for start, length in zip(centres, lengths):
        pos = np.array(start, dtype=np.float64)
        direction = rng.standard_normal(ndim)
        direction /= np.linalg.norm(direction)
        for _ in range(max(2, int(2 * length))):  # steps of half a pixel
            skeleton[tuple(np.clip(np.rint(pos), 0, upper).astype(int))] = True
            direction += 0.25 * rng.standard_normal(ndim)
            direction /= np.linalg.norm(direction)
            nxt = pos + 0.5 * direction
            if np.any(nxt < 0) or np.any(nxt > upper):
                direction = -direction  # turn back at the border instead of leaving the image
                nxt = pos + 0.5 * direction
            pos = nxt
    dist = ndimage.distance_transform_edt(~skeleton).astype(np.float32)
    # a faint smooth jitter orders pixels at equal distance, so a truncated curve keeps contiguous pieces
    return -dist + 0.05 * _smooth_noise(rng, shape, 3.0)


def _split_count(total: int, ratios: np.ndarray) -> np.ndarray:
    """Split ``total`` pixels by ``ratios`` (largest remainder), each part >= 1 when ``total`` allows."""
    raw = total * ratios / ratios.sum()
    parts = np.floor(raw).astype(np.int64)
    for i in np.argsort(-(raw - parts))[: total - parts.sum()]:
        parts[i] += 1
    for i in range(len(parts)):
        if parts[i] == 0 and total >= len(parts):
            parts[i] = 1
            parts[np.argmax(parts)] -= 1
    return parts


def _check_pair_args(spatial_size, fg_fraction, num_classes, num_objects, shape, channels, border_rate) -> None:
    if len(spatial_size) not in (2, 3) or min(spatial_size) < 4:
        raise ValueError(f"spatial_size must be 2-D or 3-D with every side >= 4, got {tuple(spatial_size)}.")
    if not 0.0 <= fg_fraction < 1.0:
        raise ValueError(f"fg_fraction must be in [0, 1), got {fg_fraction}.")
    if not 2 <= num_classes <= 255:
        raise ValueError(f"num_classes must be in [2, 255] (background included), got {num_classes}.")
    if num_objects < 1:
        raise ValueError(f"num_objects must be >= 1, got {num_objects}.")
    n_pixels = int(np.prod(spatial_size))
    limit = min(MAX_OBJECTS, max(1, n_pixels // PIXELS_PER_OBJECT))
    if num_objects > limit:
        raise ValueError(
            f"num_objects {num_objects} per class is too many for a {'x'.join(map(str, spatial_size))} image at "
            f"fg_fraction {fg_fraction}: at most {limit} ({MAX_OBJECTS} in any image, and one per "
            f"{PIXELS_PER_OBJECT} pixels; rendering costs objects x pixels). Use fewer objects or a larger image.")
    if shape not in SHAPES:
        raise ValueError(f"shape must be one of {SHAPES}, got {shape!r}.")
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 (grey) or 3 (RGB), got {channels}.")
    if not 0.0 <= border_rate <= 1.0:
        raise ValueError(f"border_rate must be in [0, 1], got {border_rate}.")


def make_synthetic_pair(
    spatial_size: Sequence[int] = (128, 128),
    fg_fraction: float = 0.03,
    num_classes: int = 2,
    num_objects: int = 3,
    shape: str = "blob",
    size_spread: float = 0.5,
    thickness: float = 2.0,
    channels: int = 1,
    border_rate: float = 0.0,
    class_ratios: Sequence[float] | None = None,
    empty: bool = False,
    contrast: float = 0.35,
    noise: float = 0.04,
    distractors: int = 1,
    seed: int | np.random.SeedSequence | None = 0,
) -> dict[str, np.ndarray]:
    """One synthetic image/label pair with a requested foreground fraction.

    Args:
        spatial_size: 2-D ``(H, W)`` or 3-D ``(H, W, D)`` size.
        fg_fraction: share of pixels in the foreground (all non-background classes together), in [0, 1).
        num_classes: classes including background (2 = binary).
        num_objects: objects per foreground class.
        shape: ``"blob"`` (polyps, lesions, organs), ``"thin"`` (cracks, vessels) or ``"mixed"`` (half each).
        size_spread: log-normal sigma of the relative object sizes (0 = equal sizes).
        thickness: approximate width in pixels of thin structures.
        channels: 1 (grey) or 3 (RGB, endoscopy-like tint).
        border_rate: probability that an object is centred on the image border (so it touches it).
        class_ratios: relative pixel share of each foreground class (length ``num_classes - 1``); default equal.
        empty: no object at all (background texture only).
        contrast: intensity step between background and objects; lower is harder.
        noise: std of the additive Gaussian noise.
        distractors: background blobs at half the contrast, so that a network must look at texture too.
        seed: seed or ``SeedSequence``; the same seed gives the same pair.

    Returns:
        ``{"image": float32 (channels, *spatial_size) in [0, 1], "label": uint8 (1, *spatial_size)}``, channel
        first as MONAI dictionary transforms expect.

    Raises:
        ValueError: an argument outside its range (the message names it).
    """
    spatial_size = tuple(int(s) for s in spatial_size)
    _check_pair_args(spatial_size, fg_fraction, num_classes, num_objects, shape, channels, border_rate)
    n_fg_classes = num_classes - 1
    ratios = np.ones(n_fg_classes) if class_ratios is None else np.asarray(class_ratios, dtype=np.float64)
    if ratios.shape != (n_fg_classes,) or np.any(ratios <= 0):
        raise ValueError(f"class_ratios must be {n_fg_classes} positive values, got {class_ratios}.")
    rng = np.random.default_rng(seed)
    ndim = len(spatial_size)
    n_pixels = int(np.prod(spatial_size))
    grid = [g.astype(np.float32) for g in np.meshgrid(*[np.arange(s) for s in spatial_size], indexing="ij")]
    label = np.zeros(spatial_size, dtype=np.uint8)

    total = 0 if empty or fg_fraction == 0 else max(1, round(fg_fraction * n_pixels))
    free = np.ones(n_pixels, dtype=bool)
    for c, k in enumerate(_split_count(total, ratios) if total else np.zeros(n_fg_classes, int), start=1):
        if k == 0:
            continue
        scales = np.exp(rng.normal(0.0, size_spread, num_objects)) if size_spread > 0 else np.ones(num_objects)
        # radius a ball of k / num_objects pixels would have: keeps centres of neighbouring objects apart
        radius = (k / num_objects / (np.pi if ndim == 2 else 4.19)) ** (1.0 / ndim)
        centres = _object_centres(rng, spatial_size, num_objects, border_rate, min_dist=2.5 * radius + 2)
        kinds = {"blob": ["blob"] * num_objects, "thin": ["thin"] * num_objects}.get(
            shape, ["blob" if i % 2 == 0 else "thin" for i in range(num_objects)]
        )
        groups = [(g, [i for i, kind in enumerate(kinds) if kind == g]) for g in ("blob", "thin")]
        groups = [(g, members) for g, members in groups if members]
        counts = _split_count(k, np.asarray([scales[members].sum() for _, members in groups]))
        for (kind, members), count in zip(groups, counts):
            if count == 0:
                continue
            if kind == "blob":
                score = _blob_score(rng, grid, centres[members], scales[members], roughness=0.15)
            else:
                area = max(thickness, 1.0) ** (ndim - 1)
                lengths = count / area * scales[members] / scales[members].sum()
                score = _thin_score(rng, spatial_size, centres[members], lengths)
            flat = score.ravel().astype(np.float64)
            flat[~free] = -np.inf
            chosen = np.argpartition(-flat, count - 1)[:count]
            free[chosen] = False
            label.ravel()[chosen] = c

    image = _render_image(rng, label, num_classes, channels, contrast, noise, distractors, grid)
    return {"image": image, "label": label[None]}


def _render_image(
    rng: np.random.Generator,
    label: np.ndarray,
    num_classes: int,
    channels: int,
    contrast: float,
    noise: float,
    distractors: int,
    grid: list[np.ndarray],
) -> np.ndarray:
    """Textured background, objects brighter with their own texture and soft edges, distractors, noise."""
    shape = label.shape
    ndim = len(shape)
    side = float(min(shape))
    background = 0.4 + 0.06 * _smooth_noise(rng, shape, side / 8) + 0.04 * _smooth_noise(rng, shape, 1.5)
    ramp = sum(rng.uniform(-1, 1) * (g / (s - 1) - 0.5) for g, s in zip(grid, shape))
    background = background + 0.08 * ramp  # uneven illumination
    object_texture = 0.05 * _smooth_noise(rng, shape, 1.0)
    image = np.repeat(background[None], channels, axis=0)
    gains = np.array([1.0, 0.75, 0.65]) if channels == 3 else np.ones(1)
    image *= gains.reshape((-1,) + (1,) * ndim)
    for c in range(1, num_classes):
        region = label == c
        if not region.any():
            continue
        soft = ndimage.gaussian_filter(region.astype(np.float32), 0.8)
        step = contrast * (0.6 + 0.4 * c / max(num_classes - 1, 1))
        hue = np.array([1.0, 0.85 - 0.1 * (c % 3), 0.6 + 0.1 * (c % 2)]) if channels == 3 else np.ones(1)
        image += (hue.reshape((-1,) + (1,) * ndim) * (step * soft + object_texture * soft)).astype(np.float32)
    if distractors:
        radius = side / 12
        centres = rng.uniform(0, np.asarray(shape) - 1, (distractors, ndim))
        blob = _blob_score(rng, grid, centres, np.full(distractors, radius), roughness=0.2)
        fake = ndimage.gaussian_filter((blob > 0).astype(np.float32) * (label == 0), 1.5)
        image += 0.5 * contrast * fake[None] * gains.reshape((-1,) + (1,) * ndim)
    image += noise * rng.standard_normal(image.shape).astype(np.float32)
    return np.clip(image, 0.0, 1.0).astype(np.float32)


def iter_synthetic_dataset(
    num_images: int, empty_rate: float = 0.0, seed: int = 0, **pair_kwargs: Any
) -> Iterator[dict[str, np.ndarray]]:
    """Yield ``num_images`` pairs; each is empty (no object) with probability ``empty_rate``.

    Pair ``i`` depends only on ``(seed, i)``: a longer dataset with the same seed starts with the same pairs.
    ``pair_kwargs`` go to :func:`make_synthetic_pair` (``seed`` and ``empty`` are set here).
    """
    if num_images < 0:
        raise ValueError(f"num_images must be >= 0, got {num_images}.")
    if not 0.0 <= empty_rate <= 1.0:
        raise ValueError(f"empty_rate must be in [0, 1], got {empty_rate}.")
    for i in range(num_images):
        sequence = np.random.SeedSequence([int(seed), i])
        is_empty = bool(np.random.default_rng(sequence.spawn(1)[0]).random() < empty_rate)
        yield make_synthetic_pair(**pair_kwargs, empty=is_empty, seed=sequence)


def make_synthetic_dataset(
    num_images: int, empty_rate: float = 0.0, seed: int = 0, **pair_kwargs: Any
) -> list[dict[str, np.ndarray]]:
    """List of :func:`iter_synthetic_dataset` pairs, ready for ``monai.data.Dataset``."""
    return list(iter_synthetic_dataset(num_images, empty_rate=empty_rate, seed=seed, **pair_kwargs))


def _to_uint8(image: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(image * 255.0), 0, 255).astype(np.uint8)


def _save_2d(array: np.ndarray, path: Path, fmt: str, quality: int) -> None:
    from PIL import Image

    img = Image.fromarray(array)
    if fmt == "jpg":
        img.save(path, quality=quality)
    else:
        img.save(path)


def _save_nifti(array: np.ndarray, path: Path, spacing: Sequence[float] | None, dtype: Any) -> None:
    import nibabel as nib

    affine = np.eye(4)
    for axis, size in enumerate((spacing or ())[:3]):
        affine[axis, axis] = float(size)
    img = nib.Nifti1Image(array.astype(dtype), affine)
    img.header.set_xyzt_units("mm")
    nib.save(img, str(path))


def write_synthetic_dataset(
    out_dir: str | os.PathLike,
    num_images: int,
    image_format: str = "png",
    label_format: str | None = None,
    label_scale: int | None = None,
    val_fraction: float = 0.2,
    empty_rate: float = 0.0,
    seed: int = 0,
    spacing: Sequence[float] | None = None,
    jpeg_quality: int = 90,
    **pair_kwargs: Any,
) -> Path:
    """Write pairs as files plus a MONAI datalist JSON and return the JSON's path.

    Layout: ``out_dir/images/case_0000.<ext>``, ``out_dir/labels/case_0000.<ext>`` and ``out_dir/datalist.json``
    with ``"training"`` and ``"validation"`` lists of ``{"image", "label"}`` paths relative to ``out_dir``
    (``monai.data.load_decathlon_datalist`` resolves them) and a ``"synthetic": true`` flag.

    Args:
        out_dir: folder to write into (created).
        num_images: number of pairs.
        image_format: ``"png"``, ``"jpg"`` (2-D) or ``"nii.gz"`` (2-D or 3-D; 3-D needs it).
        label_format: ``"png"``, ``"jpg"`` (a 3-channel JPEG mask with compression noise, as Kvasir-SEG) or
            ``"nii.gz"``; default png for 2-D, nii.gz for 3-D.
        label_scale: factor applied to label values when saved; default 255 for binary 2-D masks (0/255 as
            ISIC and Kvasir-SEG) and 1 otherwise. Read them back with ``threshold=127`` (``"auto"`` does).
        val_fraction: share of pairs (the last ones) listed under ``"validation"``.
        empty_rate, seed, pair_kwargs: as :func:`iter_synthetic_dataset`.
        spacing: voxel size in mm written to NIfTI headers (e.g. anisotropic ``(1.5, 1.5, 8.0)``).
        jpeg_quality: JPEG quality of ``"jpg"`` files.
    """
    spatial_size = tuple(pair_kwargs.get("spatial_size", (128, 128)))
    is_3d = len(spatial_size) == 3
    if image_format not in IMAGE_FORMATS:
        raise ValueError(f"image_format must be one of {IMAGE_FORMATS}, got {image_format!r}.")
    label_format = label_format or ("nii.gz" if is_3d else "png")
    if label_format not in IMAGE_FORMATS:
        raise ValueError(f"label_format must be one of {IMAGE_FORMATS}, got {label_format!r}.")
    if is_3d and (image_format, label_format) != ("nii.gz", "nii.gz"):
        raise ValueError("3-D pairs can only be written as NIfTI: use image_format='nii.gz' (and label_format).")
    if isinstance(num_images, bool) or not isinstance(num_images, (int, np.integer)) or num_images < 1:
        raise ValueError(f"num_images must be a positive integer (a datalist needs at least one pair), got "
                         f"{num_images!r}.")
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}.")
    num_classes = pair_kwargs.get("num_classes", 2)
    if label_scale is None:
        label_scale = 255 if (num_classes == 2 and label_format != "nii.gz") else 1
    if label_format == "jpg" and num_classes != 2:
        raise ValueError("JPEG label masks are lossy and can only hold binary masks (num_classes=2).")
    if (num_classes - 1) * label_scale > 255:
        raise ValueError(f"label values up to {(num_classes - 1) * label_scale} do not fit 8-bit files.")

    out = Path(out_dir)
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "labels").mkdir(parents=True, exist_ok=True)
    items = []
    for i, pair in enumerate(iter_synthetic_dataset(num_images, empty_rate=empty_rate, seed=seed, **pair_kwargs)):
        name = f"case_{i:04d}"
        image_path = Path("images") / f"{name}.{image_format}"
        label_path = Path("labels") / f"{name}.{label_format}"
        image, label = pair["image"], pair["label"][0] * np.uint8(label_scale)
        if image_format == "nii.gz":
            _save_nifti(np.moveaxis(image, 0, -1) if image.shape[0] > 1 else image[0], out / image_path, spacing,
                        np.float32)
        else:
            pixels = _to_uint8(np.moveaxis(image, 0, -1) if image.shape[0] == 3 else image[0])
            _save_2d(pixels, out / image_path, image_format, jpeg_quality)
        if label_format == "nii.gz":
            _save_nifti(label, out / label_path, spacing, np.uint8)
        else:
            mask = np.repeat(label[..., None], 3, axis=-1) if label_format == "jpg" else label
            _save_2d(mask, out / label_path, label_format, jpeg_quality)
        items.append({"image": str(image_path), "label": str(label_path)})
    n_val = int(round(val_fraction * len(items)))
    settings = {k: (list(v) if isinstance(v, tuple) else v) for k, v in pair_kwargs.items()}
    datalist = {
        "name": "monai_imbalance synthetic dataset",
        "description": "SYNTHETIC data generated by monai_imbalance.apps.synthetic; not a real dataset.",
        "synthetic": True,
        "generator": {"num_images": num_images, "empty_rate": empty_rate, "seed": seed, "label_scale": label_scale,
                      **settings},
        "training": items[: len(items) - n_val],
        "validation": items[len(items) - n_val:],
    }
    path = out / "datalist.json"
    path.write_text(json.dumps(datalist, indent=2) + "\n")
    return path
