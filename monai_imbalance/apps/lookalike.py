"""SYNTHETIC look-alikes of the real dataset layouts, for tests and for trying the pipelines without a download.

Each writer lays out files exactly as the real dataset does (folder and file names, formats, encodings: 3-channel
JPEG masks with compression noise, TIFF frames, 0/255 PNGs, npz slices with float labels, h5 volumes, NIfTI with
``Info.cfg`` and anisotropic spacing) from the seeded pairs of :mod:`monai_imbalance.apps.synthetic`, only
smaller and fewer. A ``SYNTHETIC.txt`` marker in the dataset folder says that the data are generated and states
the counts written; the real loaders (:mod:`.kvasir`, :mod:`.clinicdb`, :mod:`.isic`, :mod:`.synapse`,
:mod:`.acdc`) check a look-alike against those counts instead of the real dataset's and flag its datalist as
synthetic.

Example:
    >>> from monai_imbalance.apps.lookalike import write_kvasir_lookalike
    >>> from monai_imbalance.apps.kvasir import prepare_kvasir
    >>> folder = write_kvasir_lookalike("kvasir_lookalike", num_images=20)   # kvasir_lookalike/Kvasir-SEG
    >>> datalist = prepare_kvasir(folder, split="pranet")
"""

from __future__ import annotations

import os
import string
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .acdc import ACDC_GROUPS, ACDC_TEST_PATIENTS, ACDC_TRAIN_PATIENTS, ACDC_VAL_PATIENTS
from .checks import write_synthetic_marker
from .clinicdb import PRANET_CLINICDB_TEST_IDS
from .isic import ISIC2018_FOLDERS
from .kvasir import PRANET_KVASIR_TEST_IDS
from .synapse import BTCV_LABELS, SYNAPSE_TEST_CASES, SYNAPSE_TRAIN_CASES
from .synthetic import make_synthetic_pair

__all__ = [
    "write_kvasir_lookalike",
    "write_clinicdb_lookalike",
    "write_isic_lookalike",
    "write_synapse_lookalike",
    "write_acdc_lookalike",
    "write_decathlon_lookalike",
    "write_lookalike",
]

def _rng(seed: int, *key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(seed), *key]))


def _to_uint8(image: np.ndarray) -> np.ndarray:
    """``(C, H, W)`` float in [0, 1] -> ``(H, W, 3)`` or ``(H, W)`` uint8."""
    pixels = np.clip(np.rint(image * 255.0), 0, 255).astype(np.uint8)
    return np.moveaxis(pixels, 0, -1) if pixels.shape[0] == 3 else pixels[0]


def _save(array: np.ndarray, path: Path, **kwargs: Any) -> None:
    from PIL import Image

    Image.fromarray(array).save(path, **kwargs)


def _pair_2d(seed: int, index: int, size: Sequence[int], fg: tuple[float, float], border_rate: float = 0.2) -> dict:
    rng = _rng(seed, index, 1)
    return make_synthetic_pair(
        tuple(size), fg_fraction=float(rng.uniform(*fg)), num_objects=int(rng.integers(1, 3)), channels=3,
        border_rate=border_rate, seed=np.random.SeedSequence([int(seed), index]),
    )


def _noisy_jpeg_mask(label: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """0/255 mask with the grey noise of Kvasir-SEG's masks (background ~0-8, polyp ~247-255), 3 channels."""
    noise = rng.integers(0, 9, label.shape) * (rng.random(label.shape) < 0.1)  # JPEG adds its own on top
    grey = np.where(label > 0, 255 - noise, noise)
    return np.repeat(grey.astype(np.uint8)[..., None], 3, axis=-1)


def write_kvasir_lookalike(
    root: str | os.PathLike,
    num_images: int = 20,
    sizes: Sequence[Sequence[int]] = ((53, 62), (48, 64), (64, 56), (60, 72)),
    fg_fraction: tuple[float, float] = (0.05, 0.3),
    jpeg_quality: int = 95,
    seed: int = 0,
) -> Path:
    """Write ``root/Kvasir-SEG/{images,masks}/<id>.jpg`` and return the ``Kvasir-SEG`` folder.

    Images are RGB JPEGs of varying size (``sizes`` in turn, H x W); masks 3-channel JPEGs of the polyp mask with
    grey noise and compression artefacts, to be read as grey > 127. At the default quality 95 the decoded values
    match the real masks' ranges (background about 0-8, polyp about 247-255); the share of polyp pixels that
    divide-by-255-and-cast would lose is larger than the real ~2% because these images are tiny (every 8x8
    JPEG block touches an edge), which only makes the thresholding test stricter. Every 10th image takes one of
    PraNet's Kvasir test ids (so the ``"pranet"`` split has a 9:1 shape); the others get made-up ids of the same form.
    """
    folder = Path(root) / "Kvasir-SEG"
    (folder / "images").mkdir(parents=True, exist_ok=True)
    (folder / "masks").mkdir(parents=True, exist_ok=True)
    alphabet = np.array(list(string.ascii_lowercase + string.digits))
    ids = []
    for i in range(num_images):
        if i % 10 == 0 and i // 10 < len(PRANET_KVASIR_TEST_IDS):
            ids.append(PRANET_KVASIR_TEST_IDS[i // 10])
        else:
            ids.append("ckz" + "".join(_rng(seed, i, 2).choice(alphabet, 22)))
    for i, key in enumerate(ids):
        pair = _pair_2d(seed, i, sizes[i % len(sizes)], fg_fraction)
        _save(_to_uint8(pair["image"]), folder / "images" / f"{key}.jpg", quality=90)
        _save(_noisy_jpeg_mask(pair["label"][0], _rng(seed, i, 3)), folder / "masks" / f"{key}.jpg",
              quality=jpeg_quality)
    write_synthetic_marker(folder, "Kvasir-SEG", {"images": num_images}, seed=seed)
    return folder


def write_clinicdb_lookalike(
    root: str | os.PathLike,
    num_images: int = 30,
    size: Sequence[int] = (36, 48),
    variant: str = "original",
    seed: int = 0,
) -> Path:
    """Write a CVC-ClinicDB look-alike and return the dataset folder.

    ``variant="original"``: ``root/CVC-ClinicDB/Original/<n>.tif`` (RGB) and ``Ground Truth/<n>.tif`` (grey
    0/255), n = 1..num_images (the real frames are 288 x 384). ``variant="pranet"``:
    ``root/TestDataset/CVC-ClinicDB/{images,masks}/<n>.png`` named after PraNet's test frames.
    """
    if variant == "original":
        folder = Path(root) / "CVC-ClinicDB"
        image_dir, mask_dir, suffix = folder / "Original", folder / "Ground Truth", ".tif"
        names = [str(n) for n in range(1, num_images + 1)]
    elif variant == "pranet":
        folder = Path(root) / "TestDataset" / "CVC-ClinicDB"
        image_dir, mask_dir, suffix = folder / "images", folder / "masks", ".png"
        if num_images > len(PRANET_CLINICDB_TEST_IDS):
            raise ValueError(f"PraNet's CVC-ClinicDB test folder has {len(PRANET_CLINICDB_TEST_IDS)} frames.")
        names = list(PRANET_CLINICDB_TEST_IDS[:num_images])
    else:
        raise ValueError(f"variant must be 'original' or 'pranet', got {variant!r}.")
    image_dir.mkdir(parents=True, exist_ok=True)
    mask_dir.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(names):
        pair = _pair_2d(seed, i, size, (0.03, 0.2))
        _save(_to_uint8(pair["image"]), image_dir / f"{name}{suffix}")
        _save((pair["label"][0] * 255).astype(np.uint8), mask_dir / f"{name}{suffix}")
    write_synthetic_marker(folder, "CVC-ClinicDB", {"images": num_images}, seed=seed, variant=variant)
    return folder


def write_isic_lookalike(
    root: str | os.PathLike,
    num_training: int = 10,
    num_validation: int = 3,
    num_test: int = 3,
    sizes: Sequence[Sequence[int]] = ((60, 80), (90, 120), (75, 100)),
    legacy_names: bool = False,
    seed: int = 0,
) -> Path:
    """Write the six ISIC 2018 Task 1 folders into ``root`` (``ISIC_<7 digits>.jpg`` inputs,
    ``ISIC_<id>_segmentation.png`` 0/255 masks, ``LICENSE.txt`` and ``ATTRIBUTION.txt`` in each) and return
    ``root``. ``legacy_names`` writes the older ``_Segmentation.png`` spelling."""
    root = Path(root)
    counts = {"training": num_training, "validation": num_validation, "test": num_test}
    starts = {"training": 0, "validation": 12255, "test": 17000}  # disjoint id ranges, like the real subsets
    index = 0
    for position, (subset, count) in enumerate(counts.items()):
        image_dir, mask_dir = (root / name for name in ISIC2018_FOLDERS[subset])
        for folder in (image_dir, mask_dir):
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "LICENSE.txt").write_text("SYNTHETIC look-alike: stands for the CC BY-NC 4.0 licence file.\n")
            (folder / "ATTRIBUTION.txt").write_text("SYNTHETIC look-alike: stands for the attribution file.\n")
        ids = starts[subset] + np.cumsum(_rng(seed, 7, position).integers(1, 4, count))
        for key in ids:
            name = f"ISIC_{int(key):07d}"
            pair = _pair_2d(seed, index, sizes[index % len(sizes)], (0.1, 0.45), border_rate=0.05)
            index += 1
            _save(_to_uint8(pair["image"]), image_dir / f"{name}.jpg", quality=90)
            _save((pair["label"][0] * 255).astype(np.uint8),
                  mask_dir / f"{name}_{'Segmentation' if legacy_names else 'segmentation'}.png")
    write_synthetic_marker(root, "ISIC 2018 Task 1", counts, seed=seed, legacy_names=legacy_names)
    return root


def _volume_pair(seed: int, index: int, size: Sequence[int], depth: int, num_classes: int, ratios: Sequence[float],
                 fg: float) -> tuple[np.ndarray, np.ndarray]:
    """A synthetic 3-D pair as ``(image, label)`` arrays in (D, H, W) order (the generator needs ``depth >= 4``)."""
    if depth < 4:
        raise ValueError(f"look-alike volumes need at least 4 slices, got {depth}.")
    pair = make_synthetic_pair((int(size[0]), int(size[1]), int(depth)), fg_fraction=fg, num_classes=num_classes,
                               num_objects=1, class_ratios=list(ratios), size_spread=0.2,
                               seed=np.random.SeedSequence([int(seed), index]))
    return np.moveaxis(pair["image"][0], -1, 0), np.moveaxis(pair["label"][0], -1, 0)


def write_synapse_lookalike(
    root: str | os.PathLike,
    form: str = "preprocessed",
    train_cases: Sequence[str] = SYNAPSE_TRAIN_CASES,
    test_cases: Sequence[str] = SYNAPSE_TEST_CASES,
    size: Sequence[int] = (32, 32),
    num_slices: tuple[int, int] = (4, 6),
    spacing: Sequence[float] = (0.8, 0.8, 3.0),
    seed: int = 0,
) -> Path:
    """Write a Synapse look-alike into ``root`` and return ``root``.

    ``form="preprocessed"``: TransUNet's ``train_npz/case<4>_slice<3>.npz`` (``image`` float32 in [0, 1],
    ``label`` stored as float32), ``test_vol_h5/case<4>.npy.h5`` (D, H, W) and ``lists_Synapse/{train,
    test_vol}.txt``, with the 8 Synapse classes. ``form="raw"``: BTCV's ``RawData/Training/img/img<4>.nii.gz``
    (int16 HU) and ``label/label<4>.nii.gz`` with all 13 organ labels and the voxel ``spacing`` (x, y, z mm), for
    :func:`monai_imbalance.apps.synapse.convert_btcv_to_synapse`. Cases default to the real 18 + 12 ids.
    """
    import h5py
    import nibabel as nib

    root = Path(root)
    cases = sorted({*train_cases, *test_cases})
    depth = {c: int(_rng(seed, int(c), 5).integers(num_slices[0], num_slices[1] + 1)) for c in cases}
    if form == "preprocessed":
        for sub in ("train_npz", "test_vol_h5", "lists_Synapse"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        ratios = (2, 1.5, 1.5, 0.4, 8, 3, 0.8, 1)  # liver large, gallbladder and aorta small
        slice_names = []
        for c in train_cases:
            image, label = _volume_pair(seed, int(c), size, depth[c], 9, ratios, 0.3)
            for k in range(depth[c]):
                name = f"case{c}_slice{k:03d}"
                np.savez(root / "train_npz" / f"{name}.npz", image=image[k].astype(np.float32),
                         label=label[k].astype(np.float32))
                slice_names.append(name)
        for c in test_cases:
            image, label = _volume_pair(seed, int(c), size, depth[c], 9, ratios, 0.3)
            with h5py.File(root / "test_vol_h5" / f"case{c}.npy.h5", "w") as f:
                f.create_dataset("image", data=image.astype(np.float32))
                f.create_dataset("label", data=label.astype(np.float32))
        (root / "lists_Synapse" / "train.txt").write_text("".join(f"{n}\n" for n in slice_names))
        (root / "lists_Synapse" / "test_vol.txt").write_text("".join(f"case{c}\n" for c in test_cases))
        counts = {"train_cases": len(train_cases), "train_slices": len(slice_names), "test_cases": len(test_cases)}
        write_synthetic_marker(root, "Synapse (TransUNet form)", counts, seed=seed)
        return root
    if form != "raw":
        raise ValueError(f"form must be 'preprocessed' or 'raw', got {form!r}.")
    img_dir, label_dir = root / "RawData" / "Training" / "img", root / "RawData" / "Training" / "label"
    img_dir.mkdir(parents=True, exist_ok=True)
    label_dir.mkdir(parents=True, exist_ok=True)
    affine = np.diag([*map(float, spacing[:3]), 1.0])
    for c in cases:
        image, label = _volume_pair(seed, int(c), size, depth[c], len(BTCV_LABELS), [1.0] * 13, 0.4)
        hu = np.rint(image * 700.0 - 300.0).astype(np.int16)  # spans the [-125, 275] window and beyond
        # (D, H, W) -> NIfTI (x, y, z) = (W, H, D), the inverse of the converter's transpose
        nib.save(nib.Nifti1Image(hu.transpose(2, 1, 0), affine), str(img_dir / f"img{c}.nii.gz"))
        nib.save(nib.Nifti1Image(label.astype(np.uint8).transpose(2, 1, 0), affine),
                 str(label_dir / f"label{c}.nii.gz"))
    write_synthetic_marker(root, "BTCV raw (Synapse)", {"cases": len(cases)}, seed=seed)
    return root


def write_acdc_lookalike(
    root: str | os.PathLike,
    form: str = "raw",
    patients: Sequence[int] | None = None,
    size: Sequence[int] = (24, 20),
    num_slices: tuple[int, int] = (4, 6),
    num_frames: int = 6,
    seed: int = 0,
    h5_set: str = "full",
) -> Path:
    """Write an ACDC look-alike into ``root`` and return ``root``.

    ``form="raw"``: ``training/patient<3>/`` with ``Info.cfg`` (ED, ES, Group, Height, NbFrame, Weight),
    ``patient<id>_4d.nii.gz``, the ED and ES ``_frame<2>.nii.gz`` volumes and their ``_gt.nii.gz`` labels
    (RV=1, MYO=2, LV=3), anisotropic spacing about 1.4-1.8 mm in-plane and 5-10 mm between slices.
    ``form="h5"``: SSL4MIS's ``data/patient<id>_frame{01,02}.h5`` volumes (D, H, W), ``data/slices/
    patient<id>_frame<nn>_slice_<k>.h5`` (k from 1), ``{train,val,test}.list``, ``train_slices.list`` (in a
    shuffled order, as SSL4MIS's) and ``all_slices.list``. ``h5_set="minimal"`` writes what public copies ship
    instead: the training slices only, flat in ``data/``, and the val/test volumes only. ``patients``: patient
    numbers (default 1-100, so the SSL4MIS 70/10/20 lists are complete).
    """
    import h5py
    import nibabel as nib

    root = Path(root)
    numbers = list(range(1, 101)) if patients is None else [int(p) for p in patients]
    if form not in ("raw", "h5"):
        raise ValueError(f"form must be 'raw' or 'h5', got {form!r}.")
    if h5_set not in ("full", "minimal"):
        raise ValueError(f"h5_set must be 'full' or 'minimal', got {h5_set!r}.")
    minimal = form == "h5" and h5_set == "minimal"
    slice_dir = root / "data" if minimal else root / "data" / "slices"
    train_set = set(ACDC_TRAIN_PATIENTS)
    slice_names: dict[str, list[str]] = {"train": [], "all": []}
    if form == "h5":
        slice_dir.mkdir(parents=True, exist_ok=True)
    for n in numbers:
        name = f"patient{n:03d}"
        rng = _rng(seed, n, 11)
        depth = int(rng.integers(num_slices[0], num_slices[1] + 1))
        ed = 1 if n % 7 else 2
        es = int(rng.integers(ed + 1, num_frames + 1))
        pixel = float(rng.uniform(1.4, 1.8))
        spacing = (pixel, pixel, float(rng.choice([5.0, 6.5, 10.0])))
        frames = {}
        for phase, frame in (("ED", ed), ("ES", es)):
            image, label = _volume_pair(seed, n * 100 + frame, size, depth, 4, (1.0, 1.3, 1.1), 0.2)
            frames[phase] = (frame, np.moveaxis(image, 0, -1), np.moveaxis(label, 0, -1))  # (H, W, D) = NIfTI x, y, z
        if form == "raw":
            folder = root / "training" / name
            folder.mkdir(parents=True, exist_ok=True)
            affine = np.diag([*spacing, 1.0])
            group = ACDC_GROUPS[n % len(ACDC_GROUPS)]
            (folder / "Info.cfg").write_text(
                f"ED: {ed}\nES: {es}\nGroup: {group}\nHeight: {rng.uniform(150, 195):.1f}\nNbFrame: {num_frames}\n"
                f"Weight: {rng.uniform(50, 110):.1f}\n")
            cine = np.zeros((*frames["ED"][1].shape, num_frames), dtype=np.int16)
            for t in range(num_frames):
                w = (t + 1 - ed) / max(es - ed, 1)
                blend = (1 - min(max(w, 0), 1)) * frames["ED"][1] + min(max(w, 0), 1) * frames["ES"][1]
                cine[..., t] = np.rint(blend * 800).astype(np.int16)
            nib.save(nib.Nifti1Image(cine, affine), str(folder / f"{name}_4d.nii.gz"))
            for frame, image, label in frames.values():
                nib.save(nib.Nifti1Image(np.rint(image * 800).astype(np.int16), affine),
                         str(folder / f"{name}_frame{frame:02d}.nii.gz"))
                nib.save(nib.Nifti1Image(label.astype(np.uint8), affine),
                         str(folder / f"{name}_frame{frame:02d}_gt.nii.gz"))
        else:
            for new_frame, (_, image, label) in zip((1, 2), frames.values()):
                volume = np.moveaxis(image, -1, 0).astype(np.float32)  # (D, H, W), min-max normalised like SSL4MIS
                volume = (volume - volume.min()) / max(float(volume.max() - volume.min()), 1e-6)
                seg = np.moveaxis(label, -1, 0).astype(np.uint8)
                vol_name = f"{name}_frame{new_frame:02d}"
                training = name in train_set
                if not (minimal and training):
                    with h5py.File(root / "data" / f"{vol_name}.h5", "w") as f:
                        f.create_dataset("image", data=volume)
                        f.create_dataset("label", data=seg)
                for k in range(volume.shape[0]):
                    slice_name = f"{vol_name}_slice_{k + 1}"
                    slice_names["all"].append(slice_name)
                    if training:
                        slice_names["train"].append(slice_name)
                    if minimal and not training:
                        continue
                    with h5py.File(slice_dir / f"{slice_name}.h5", "w") as f:
                        f.create_dataset("image", data=volume[k])
                        f.create_dataset("label", data=seg[k])
    if form == "h5":
        present = {f"patient{n:03d}" for n in numbers}
        for section, members in (("train", ACDC_TRAIN_PATIENTS), ("val", ACDC_VAL_PATIENTS),
                                 ("test", ACDC_TEST_PATIENTS)):
            lines = [f"{p}_frame{f:02d}" for p in members if p in present for f in (1, 2)]
            (root / f"{section}.list").write_text("".join(f"{line}\n" for line in lines))
        shuffled = [slice_names["train"][i] for i in _rng(seed, 12).permutation(len(slice_names["train"]))]
        (root / "train_slices.list").write_text("".join(f"{line}\n" for line in shuffled))
        (root / "all_slices.list").write_text("".join(f"{line}\n" for line in sorted(slice_names["all"])))
    write_synthetic_marker(root, f"ACDC ({form})", {"patients": len(numbers)}, seed=seed, form=form,
                           **({"h5_set": h5_set} if form == "h5" else {}))
    return root


#: class names of :func:`write_decathlon_lookalike` (then ``class_<k>``)
_DECATHLON_CLASS_NAMES = ("organ", "lesion", "vessel", "nodule")
#: the first bytes of a macOS AppleDouble ``._`` file, as the Decathlon archives ship them next to every image
_APPLEDOUBLE = b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        " + bytes(4058)


def write_decathlon_lookalike(
    root: str | os.PathLike,
    num_cases: int = 6,
    spatial_size: Sequence[int] = (32, 32, 16),
    num_classes: int = 3,
    modalities: Sequence[str] = ("CT",),
    spacing: Sequence[float] = (0.8, 0.8, 2.5),
    seed: int = 0,
    nnunet_v2: bool = False,
) -> Path:
    """Write a SYNTHETIC Medical Segmentation Decathlon Task folder into ``root`` and return its ``dataset.json``.

    ``nnunet_v2=False``: ``root/Task99_Synthetic/`` with ``imagesTr/synthetic_<3>.nii.gz``, ``labelsTr/`` (same
    names), two ``imagesTs/`` images and the Decathlon ``dataset.json`` (``name``, ``description`` starting
    "SYNTHETIC", ``tensorImageSize``, ``modality``, ``labels`` {"0": "background", ...}, ``numTraining``,
    ``numTest``, ``training`` [{"image": "./imagesTr/...", "label": "./labelsTr/..."}], ``test`` ["./imagesTs/..."]).
    Images are 3-D, or 4-D (x, y, z, channel) with more than one modality, as the BRATS and Prostate tasks.
    ``nnunet_v2=True``: ``root/Dataset999_Synthetic/`` with one 3-D file per channel, ``imagesTr/<case>_0000.nii.gz``
    (``_0001``, ...), ``labelsTr/<case>.nii.gz``, ``imagesTs/<case>_0000.nii.gz`` and the nnU-Net v2 ``dataset.json``
    (``channel_names``, ``labels`` {"background": 0, ...}, ``numTraining``, ``file_ending``, no file list).

    CT channels are int16 Hounsfield-like values, other modalities float32 (a 4-D image is float32), labels uint8
    (0 .. ``num_classes - 1``, the classes decreasing in size); the voxel ``spacing`` (x, y, z mm) is in the affine.
    All channels of a case share its label (:func:`monai_imbalance.apps.synthetic.make_synthetic_pair` with the
    case's seed, rendered at a different contrast per channel; every second channel is inverted, as T1 and T2
    differ). As the real archives, ``imagesTr/`` and ``labelsTr/`` hold a macOS ``._`` resource-fork file, which
    readers must ignore; a ``SYNTHETIC.txt`` marker states the counts.
    """
    import json

    import nibabel as nib

    spatial_size = tuple(int(s) for s in spatial_size)
    if len(spatial_size) != 3 or len(spacing) != 3:
        raise ValueError(f"spatial_size and spacing must be 3-D (x, y, z), got {spatial_size} and {tuple(spacing)}.")
    if num_cases < 1:
        raise ValueError(f"num_cases must be >= 1, got {num_cases}.")
    if not modalities:
        raise ValueError("modalities must name at least one channel, e.g. ('CT',) or ('FLAIR', 'T1w').")
    task = Path(root) / ("Dataset999_Synthetic" if nnunet_v2 else "Task99_Synthetic")
    for sub in ("imagesTr", "labelsTr", "imagesTs"):
        (task / sub).mkdir(parents=True, exist_ok=True)
    affine = np.diag([*map(float, spacing), 1.0])
    ratios = [0.5**k for k in range(num_classes - 1)]
    class_names = [_DECATHLON_CLASS_NAMES[k] if k < len(_DECATHLON_CLASS_NAMES) else f"class_{k + 1}"
                   for k in range(num_classes - 1)]

    def case(index: int) -> tuple[list[np.ndarray], np.ndarray]:
        rng = _rng(seed, index, 21)
        fg = float(rng.uniform(0.08, 0.2))
        channels, label = [], None
        for m, modality in enumerate(modalities):
            pair = make_synthetic_pair(spatial_size, fg_fraction=fg, num_classes=num_classes, num_objects=1,
                                       class_ratios=ratios, size_spread=0.2, contrast=0.3 + 0.1 * m,
                                       seed=np.random.SeedSequence([int(seed), index]))
            image = pair["image"][0] if m % 2 == 0 else 1.0 - pair["image"][0]
            if modality.upper() == "CT":
                channels.append(np.rint(image * 700.0 - 300.0).astype(np.int16))
            else:
                channels.append((image * 1000.0).astype(np.float32))
            label = pair["label"][0] if label is None else label  # the same seed gives every channel one label
        return channels, label.astype(np.uint8)

    def save(array: np.ndarray, path: Path) -> None:
        img = nib.Nifti1Image(array, affine)
        img.header.set_xyzt_units("mm")
        nib.save(img, str(path))

    def save_image(channels: list[np.ndarray], folder: Path, name: str) -> list[str]:
        if nnunet_v2:
            for m, channel in enumerate(channels):
                save(channel, task / folder / f"{name}_{m:04d}.nii.gz")
            return [f"./{folder}/{name}_{m:04d}.nii.gz" for m in range(len(channels))]
        image = channels[0] if len(channels) == 1 else np.stack([c.astype(np.float32) for c in channels], axis=-1)
        save(image, task / folder / f"{name}.nii.gz")
        return [f"./{folder}/{name}.nii.gz"]

    training, test = [], []
    for i in range(num_cases + 2):
        channels, label = case(i)
        name = f"synthetic_{i:03d}"
        if i < num_cases:
            image = save_image(channels, Path("imagesTr"), name)[0]
            save(label, task / "labelsTr" / f"{name}.nii.gz")
            training.append({"image": image, "label": f"./labelsTr/{name}.nii.gz"})
        else:
            test.append(save_image(channels, Path("imagesTs"), name)[0])
    first = training[0]
    for path in (first["image"], first["label"]):  # the junk of a Decathlon archive unpacked on a Mac
        junk = task / path
        (junk.parent / f"._{junk.name}").write_bytes(_APPLEDOUBLE)
    description = ("SYNTHETIC look-alike of a Medical Segmentation Decathlon task, generated by "
                   "monai_imbalance.apps.lookalike; not real data.")
    meta = {"name": "Synthetic", "description": description, "reference": "monai_imbalance",
            "licence": "generated data, no licence restrictions", "release": "1.0"}
    if nnunet_v2:
        data = {**meta, "channel_names": {str(m): str(name) for m, name in enumerate(modalities)},
                "labels": {"background": 0, **{n: k + 1 for k, n in enumerate(class_names)}},
                "numTraining": num_cases, "file_ending": ".nii.gz"}
    else:
        data = {**meta, "tensorImageSize": "4D" if len(modalities) > 1 else "3D",
                "modality": {str(m): str(name) for m, name in enumerate(modalities)},
                "labels": {"0": "background", **{str(k + 1): n for k, n in enumerate(class_names)}},
                "numTraining": num_cases, "numTest": len(test), "training": training, "test": test}
    path = task / "dataset.json"
    path.write_text(json.dumps(data, indent=4) + "\n")
    write_synthetic_marker(task, "nnU-Net v2 dataset" if nnunet_v2 else "Medical Segmentation Decathlon task",
                           {"training": num_cases, "test": len(test)}, seed=seed, modalities=list(modalities))
    return path


def write_lookalike(dataset: str, root: str | os.PathLike, **kwargs: Any) -> Path:
    """Write the look-alike of a registered dataset (:mod:`monai_imbalance.apps.registry`) and return the folder to
    prepare; ``kwargs`` go to its writer (e.g. ``num_images``, ``seed``, ``form``)."""
    from .registry import get_dataset

    return get_dataset(dataset).write_lookalike(root, **kwargs)


def __getattr__(name: str) -> Any:
    if name == "LOOKALIKE_DATASETS":  # every registered dataset has a look-alike
        from .registry import dataset_names

        return dataset_names()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
