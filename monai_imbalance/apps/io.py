"""Reading label files of every format the supported datasets use, with errors that name the file.

MONAI's ``LoadImage`` is what pipelines use; this reader is for statistics and dataset checks, where only the
label values matter and a JPEG mask must be binarised the way the dataset intends (Kvasir-SEG masks are
3-channel JPEGs with compression noise: grey, then threshold at 127).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

__all__ = [
    "LABEL_SUFFIXES",
    "JPEG_SUFFIXES",
    "label_suffix",
    "is_label_file",
    "load_label_file",
    "binarise_mask",
    "find_label_files",
]

JPEG_SUFFIXES = (".jpg", ".jpeg")
PIL_SUFFIXES = (".png", ".bmp", ".tif", ".tiff", ".gif", *JPEG_SUFFIXES)
ITK_SUFFIXES = (".mha", ".mhd", ".nrrd", ".nhdr")
NIFTI_SUFFIXES = (".nii", ".nii.gz")
ARRAY_SUFFIXES = (".npy", ".npz", ".h5", ".hdf5")
LABEL_SUFFIXES = (*NIFTI_SUFFIXES, *PIL_SUFFIXES, *ITK_SUFFIXES, *ARRAY_SUFFIXES)
logger = logging.getLogger(__name__)


def label_suffix(path: str | os.PathLike) -> str:
    """Lower-case suffix of ``path`` with ``.nii.gz`` kept whole."""
    name = os.fspath(path).lower()
    return ".nii.gz" if name.endswith(".nii.gz") else os.path.splitext(name)[1]


def is_label_file(path: str | os.PathLike) -> bool:
    return label_suffix(path) in LABEL_SUFFIXES


def binarise_mask(grey: np.ndarray, threshold: float = 127) -> np.ndarray:
    """``uint8`` mask, 1 where ``grey > threshold``: the reading of 0/255 masks and noisy JPEG masks."""
    return (np.asarray(grey) > threshold).astype(np.uint8)


def _read_pil(path: Path, threshold: float | str | None = "auto") -> np.ndarray:
    """A PIL mask as an array: grey and 1-bit masks as they are, palette masks by their palette indices (how palette
    PNGs store classes), JPEG colour masks and colour masks whose channels are equal as grey (Kvasir-SEG), and true
    colour masks by :func:`_colour_mask`."""
    from PIL import Image

    with Image.open(path) as img:
        if img.mode == "1":
            return np.asarray(img, dtype=np.uint8)
        if img.mode == "P":
            logger.info("%s is a palette mask: read by its palette indices (the class of each pixel)", path)
            return np.asarray(img)
        if img.mode not in ("RGB", "RGBA", "LA", "CMYK", "YCbCr"):
            return np.asarray(img)
        if img.mode == "LA" or label_suffix(path) in JPEG_SUFFIXES:
            return np.asarray(img.convert("L"))  # JPEG colour noise: read as grey, then thresholded
        rgb = np.asarray(img.convert("RGB"))
    if np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 0], rgb[..., 2]):
        return rgb[..., 0].copy()  # a grey mask stored as colour
    return _colour_mask(rgb, path, threshold)


def _colour_mask(rgb: np.ndarray, path: Path, threshold: float | str | None) -> np.ndarray:
    """A lossless mask whose colour channels differ (red on black, ...). Grey conversion would turn its colours into
    arbitrary grey levels (pure red is 76) and every anti-aliased shade into a class, so:

    - a number ``threshold`` binarises the brightest channel (any colour brighter than it is foreground);
    - one colour on black is read as 0/1 (the colour is the foreground), and said so;
    - anything else is an error: colours do not say which class they stand for.
    """
    if threshold is not None and not isinstance(threshold, str):
        return rgb.max(axis=-1)
    packed = (rgb[..., 0].astype(np.uint32) << 16) | (rgb[..., 1].astype(np.uint32) << 8) | rgb[..., 2]
    colours = np.unique(packed)
    if len(colours) <= 2 and colours[0] == 0:
        fg = int(colours[-1])
        logger.info("%s is a colour mask, one colour (RGB %s) on black: read as foreground 1, black 0", path,
                    ((fg >> 16) & 255, (fg >> 8) & 255, fg & 255))
        return (packed != 0).astype(np.uint8)
    examples = [((int(c) >> 16) & 255, (int(c) >> 8) & 255, int(c) & 255) for c in colours[:4]]
    raise ValueError(
        f"{path} is a colour mask with {len(colours)} colours (e.g. RGB {examples}): class indices cannot be read "
        "from colours. Convert it to a grey or palette PNG holding class indices 0, 1, 2, ..., or give a numeric "
        "threshold (e.g. --threshold 127) to read every pixel brighter than it in any channel as foreground."
    )


def _read_array_file(path: Path, suffix: str, key: str) -> np.ndarray:
    if suffix == ".npy":
        return np.load(path, allow_pickle=False)
    if suffix == ".npz":
        with np.load(path, allow_pickle=False) as data:
            if key in data:
                return data[key]
            if len(data.files) == 1:
                return data[data.files[0]]
            raise ValueError(f"{path} has no array named {key!r} (arrays: {data.files}).")
    import h5py

    with h5py.File(path, "r") as f:
        if key not in f:
            raise ValueError(f"{path} has no dataset named {key!r} (datasets: {list(f.keys())}).")
        return f[key][()]


def load_label_file(
    path: str | os.PathLike, threshold: float | str | None = "auto", key: str = "label"
) -> np.ndarray:
    """Read a label map from ``path`` and return its spatial array (no channel axis).

    Formats: NIfTI (``.nii``, ``.nii.gz``), PNG/JPEG/TIFF/BMP (palette masks by palette index, JPEG and grey-in-colour
    masks as grey, other colour masks: see ``threshold``), ITK
    (``.mha``, ``.nrrd``), numpy (``.npy``, ``.npz`` array ``key``) and HDF5 (``.h5`` dataset ``key``).

    Args:
        path: the label file.
        threshold: ``"auto"`` binarises at 127 every JPEG mask (a lossy format cannot store class indices) and
            every 8-bit mask whose values are exactly {0, 255} or {255}; other files keep their values.
            A number binarises any file at that value (``value > threshold``; a colour mask's brightest channel);
            ``None`` keeps raw values. Without a number, a lossless colour mask (channels differing) is read as 0/1
            when it holds one colour on black and is an error (naming the file) otherwise.
        key: array name inside ``.npz`` / ``.h5`` files.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: the format is not supported, or the file cannot be read (message names the file).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"label file not found: {path}")
    suffix = label_suffix(path)
    try:
        if suffix in NIFTI_SUFFIXES:
            import nibabel as nib

            arr = np.asanyarray(nib.load(str(path)).dataobj)
        elif suffix in PIL_SUFFIXES:
            arr = _read_pil(path, threshold)
        elif suffix in ITK_SUFFIXES:
            import itk

            arr = itk.array_from_image(itk.imread(str(path)))
        elif suffix in ARRAY_SUFFIXES:
            arr = _read_array_file(path, suffix, key)
        else:
            raise ValueError(f"unsupported label format {suffix!r} for {path}; supported: {', '.join(LABEL_SUFFIXES)}")
    except (FileNotFoundError, ValueError):
        raise
    except Exception as err:  # decoder errors come in many types (OSError, nibabel, itk, h5py)
        raise ValueError(f"could not read label file {path}: {err}") from err
    arr = np.asarray(arr)
    # 2-D labels saved in 3-D containers (NIfTI (H, W, 1)) are 2-D labels
    while arr.ndim > 2 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if threshold is None:
        return arr
    if threshold == "auto":
        if suffix in JPEG_SUFFIXES:
            return binarise_mask(arr, 127)
        if arr.dtype == np.uint8:
            values = np.unique(arr)
            if len(values) <= 2 and 255 in values and values.min() in (0, 255):
                return binarise_mask(arr, 127)
        return arr
    if isinstance(threshold, str):
        raise ValueError(f"threshold must be 'auto', None or a number, got {threshold!r}.")
    return binarise_mask(arr, float(threshold))


def find_label_files(folder: str | os.PathLike, suffixes: Sequence[str] = LABEL_SUFFIXES) -> list[Path]:
    """Label files directly in ``folder`` (sorted by name), by suffix. ``FileNotFoundError`` when the folder
    does not exist, ``ValueError`` when it holds no label file."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"label folder not found: {folder}")
    files = sorted(p for p in folder.iterdir() if p.is_file() and label_suffix(p) in suffixes)
    if not files:
        raise ValueError(f"no label files ({', '.join(suffixes)}) in {folder}")
    return files
