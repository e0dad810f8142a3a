"""Kvasir-SEG (1000 polyp images, Jha et al., MMM 2020): layout check, splits, datalist, download.

Layout (the official ``kvasir-seg.zip`` extracts to it)::

    Kvasir-SEG/images/<id>.jpg     RGB, sizes from 332x487 to 1920x1072 (most about 620x530)
    Kvasir-SEG/masks/<id>.jpg      3-channel JPEG masks with compression noise (background ~0-8, polyp ~247-255)
    Kvasir-SEG/kavsir_bboxes.json  bounding boxes (ignored)

Masks are read as grey and thresholded at 127 (:func:`monai_imbalance.apps.io.load_label_file` and
:class:`monai_imbalance.apps.loaders.LoadBinaryMaskd` do); dividing by 255 and casting loses about 2% of the
polyp pixels.

Splits:
    - ``"pranet"``: PraNet's 900/100 split (Fan et al., MICCAI 2020). The 100 test ids are the names of PraNet's
      published predictions on its ``TestDataset/Kvasir`` (``results/PraNet/Kvasir/*.png`` of
      github.com/DengPingFan/PraNet, which ``MyTest.py`` writes one per test image); the other 900 images form
      PraNet's training part. PraNet has no validation set (``val_fraction`` can hold some training images out).
    - ``"kvasir_seg"``: the Kvasir-SEG paper's 880/120 train/validation split. The official lists are
      ``kvasir-seg-train-val/{train,val}.txt`` of github.com/DebeshJha/2020-MediaEval-Medico-polyp-segmentation;
      pass them as ``split_files``. Without them the split is a seeded random 880/120 split and the datalist says
      that it is NOT the official list.
    - ``"kfold"``: seeded k-fold cross-validation (the MAC paper uses 5 folds), see :mod:`.splits`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .checks import (
    SKIP_COUNT_CHECK,
    LayoutProblems,
    check_image_mask_pairs,
    files_by_id,
    pair_by_id,
    read_synthetic_marker,
    require_dir,
    resolve_expected,
)
from .download import Resource, download_resources
from .registry import DatasetSections, ScanRequest, prepare_dataset
from .splits import fixed_split, holdout_split, items_by_ids, kfold_split, read_id_list

__all__ = [
    "KVASIR_NUM_IMAGES",
    "KVASIR_RESOURCE",
    "KVASIR_SPLITS",
    "PRANET_KVASIR_TEST_IDS",
    "find_kvasir_root",
    "kvasir_items",
    "kvasir_split",
    "prepare_kvasir",
    "download_kvasir",
]

KVASIR_NUM_IMAGES = 1000
KVASIR_SPLITS = ("pranet", "kvasir_seg", "kfold")
KVASIR_LABELS = {0: "background", 1: "polyp"}
KVASIR_PAGE = "https://datasets.simula.no/kvasir-seg/"
KVASIR_RESOURCE = Resource(
    url="https://datasets.simula.no/downloads/kvasir-seg.zip",
    filename="Kvasir-SEG.zip",
    # SHA-256 as recorded by torch-em's Kvasir loader (github.com/constantinpape/torch-em); Simula publishes none
    sha256="03b30e21d584e04facf49397a2576738fd626815771afbbf788f74a7153478f7",
    checksum_source="torch-em (third party); not published by Simula",
    page=KVASIR_PAGE,
    expected=("images", "masks"),  # checked before the extracted folder is put in place
)
KVASIR_REFERENCE = "Jha et al., Kvasir-SEG: A Segmented Polyp Dataset, MMM 2020, doi:10.1007/978-3-030-37734-2_37"
KVASIR_LICENCE = "research and educational use only; commercial use needs written permission (see the dataset page)"

# PraNet's Kvasir test set: the 100 names of github.com/DengPingFan/PraNet results/PraNet/Kvasir/*.png
PRANET_KVASIR_TEST_IDS = (
    "cju0u82z3cuma0835wlxrnrjv", "cju15wdt3zla10801odjiw7sy", "cju16ach3m1da0993r1dq3sn2",
    "cju16whaj0e7n0855q7b6cjkm", "cju17z0qongpa0993de4boim4", "cju1amqw6p8pw0993d9gc5crl",
    "cju1bm8063nmh07996rsjjemq", "cju1c3218411b08014g9f6gig", "cju1cbokpuiw70988j4lq1fpi",
    "cju1cj3f0qi5n0993ut8f49rj", "cju1cqc7n4gpy0855jt246k68", "cju1ddr6p4k5z08780uuuzit2",
    "cju1f8w0t65en0799m9oacq0q", "cju1h89h6xbnx08352k2790o9", "cju1hp9i2xu8e0988u2dazk7m",
    "cju2hfqnmhisa0993gpleeldd", "cju2hjrqcvi2j0801bx1i6gxg", "cju2hos57llxm08359g92p6jj",
    "cju2hqt33lmra0988fr5ijv8j", "cju2lberzkdzm09938cl40pog", "cju2mh8t6p07008350e01tx2a",
    "cju2nnqrqzp580855z8mhzgd6", "cju2np2k9zi3v079992ypxqkn", "cju2omjpeqj5a0988pjdlb8l1",
    "cju2osuru0ki00855txo0n3uu", "cju2pag1f0s4r0878h52uq83s", "cju2rga4psq9n09881z519xx0",
    "cju2rmd2rsw9g09888hh1efu0", "cju2rqo702wpx0855fn7d5cxh", "cju2top2ruxxy0988p1svx36g",
    "cju2wve9v7esz0878mxsdcy04", "cju2y40d8ulqo0993q0adtgtb", "cju2yi9tz8vky0801yqip0xyl",
    "cju2yo1j1v0qz09934o0e683p", "cju2yv4imv6cz099314jveiib", "cju2zp89k9q1g0855k1x0f1xa",
    "cju2zwg05a0oy0801yr73ig7g", "cju30ajhw09sx0988qyahx9s8", "cju30gxjq0djk0988jytm49rs",
    "cju30j1rgadut0801vuyrsnt8", "cju31w6goazci0799n014ly1q", "cju32srle1xfq083575i3fl75",
    "cju34m7h536wq0988xz7gx79v", "cju34xspwzenf0993cyzajv9n", "cju3tp94kfstl08181awh6z49",
    "cju3uhb79gcgr0871orbrbi3x", "cju3v11mrgwwb0755u242ygye", "cju3x5u2tiihx0818914gzxy1",
    "cju3xga12iixg0817dijbvjxw", "cju3ya7goj6at0818v2l5ay7f", "cju3ykamdj9u208503pygyuc8",
    "cju40m0rjkpw80871z6n6yg1u", "cju42qet0lsq90871e50xbnuv", "cju42wamblrqn098798r2yyok",
    "cju43jcqim2cp08172dvjvyui", "cju45rj7ln8980850a7821fov", "cju45ty6zn9oz0850qy4qnck1",
    "cju45v0pungu40871acnwtmu5", "cju5cky5xb0ay0801oxet697t", "cju5clr68b48r0755cmuvponm",
    "cju5hi52odyf90817prvcwg45", "cju5hyi9yegob0755ho3do8en", "cju5k3j3uf6de0817hszzfr7n",
    "cju5o4pk9h0720755lgp9jq8m", "cju5wrrs0m2af0818vmnajbtw", "cju5x00l6m5j608503k78ptee",
    "cju5xjn5mm78b09871spyqhhr", "cju5xkwzxmf0z0818gk4xabdm", "cju5xq3tdm9fn0987pbedxdg5",
    "cju5y4hgqmk0i08180rjhbwvp", "cju5yeqiwmkgl0801fzv2douc", "cju6us80mv1b50871ebyq2wxa",
    "cju6uy20suzbl0987rzuhz7z9", "cju6v1m1xv07w09870ah3njy1", "cju6vifjlv55z0987un6y4zdo",
    "cju6vrs1ov8cr098788h8gs6j", "cju6x0yqbvxqt0755dhxislgb", "cju7ajnbo1gvm098749rdouk0",
    "cju7awzmu1ncs0871hziy65zx", "cju7bd1qu1mx409877xjxibox", "cju7bgnvb1sf808717qa799ir",
    "cju7crgxa28550755wbsgqkel", "cju7da88w2eod0755wejzynvt", "cju7ddtz729960801uazp1knc",
    "cju7do8c72dbo0801vxfzxdc4", "cju7dymur2od30755eg8yv2ht", "cju7ecl9i2i060987xawjp4l0",
    "cju7fbndk2sl608015ravktum", "cju7fcgbe2z3p07550vaflqdb", "cju7fpfzq2wyf0818xxd1oziv",
    "cju84hibuktj80871u519o71q", "cju88cddensj00987788yotmg", "cju88t4fvokxf07558ymyh281",
    "cju88vx2uoocy075531lc63n3", "cju8alhigqn2h0801zksudldd", "cju8aqq8uqmoq0987hphto9gg",
    "cju8bk8oirjhw0817hgkua2w8", "cju8c2rqzs5t80850d0zky5dy", "cju8d4jgatgpj0871q2ophhkm",
    "cju8dqkrqu83i0818ev74qpxq",
)


def find_kvasir_root(root: str | os.PathLike) -> Path:
    """The ``Kvasir-SEG`` folder: ``root`` itself when it holds ``images/`` and ``masks/``, else ``root/Kvasir-SEG``."""
    root = Path(root)
    if (root / "images").is_dir() or (root / "masks").is_dir():
        return root
    nested = root / "Kvasir-SEG"
    if nested.is_dir():
        return nested
    require_dir(root, "Kvasir-SEG root")
    raise FileNotFoundError(f"Kvasir-SEG folder not found: neither {root}/images nor {nested} exists")


def kvasir_items(
    root: str | os.PathLike,
    expected_count: int | str | None = "auto",
    check: str = "full",
    num_workers: int = 0,
    progress: bool | None = False,
) -> list[dict[str, Any]]:
    """Scan a Kvasir-SEG folder, check it and return one datalist item per image, sorted by id.

    Items: ``{"image": <abs path>, "label": <abs path>, "id": <file stem>, "height": H, "width": W}``.

    Args:
        root: the ``Kvasir-SEG`` folder or its parent.
        expected_count: number of pairs to find: ``"auto"`` is 1000, or the count a look-alike's
            ``SYNTHETIC.txt`` states; ``None`` skips the check.
        check: ``"full"`` (every mask decoded, image headers read), ``"images"`` (also decode every image) or
            ``"header"`` (headers only).
        num_workers: decoder threads.
        progress: a progress bar on stderr while the pairs are checked (True, False, or None: when stderr is a
            terminal).

    Raises:
        FileNotFoundError: the folder, ``images/`` or ``masks/`` is missing.
        DatasetLayoutError: missing or unpaired masks, unreadable files, image/mask size mismatch, non-8-bit masks,
            or a wrong number of pairs; the message names the files.
    """
    folder = find_kvasir_root(root)
    image_dir = require_dir(folder / "images", "Kvasir-SEG images")
    mask_dir = require_dir(folder / "masks", "Kvasir-SEG masks")
    problems = LayoutProblems("Kvasir-SEG", folder)
    suffixes = (".jpg", ".jpeg", ".png")
    images = files_by_id(image_dir, suffixes, lambda p: p.stem, problems, "image")
    masks = files_by_id(mask_dir, suffixes, lambda p: p.stem, problems, "mask")
    pairs = pair_by_id(images, masks, mask_dir, problems, "{id}.jpg")
    info = check_image_mask_pairs(pairs, problems, check=check, num_workers=num_workers, progress=progress)
    expected = resolve_expected(expected_count, read_synthetic_marker(folder), "images", KVASIR_NUM_IMAGES)
    if expected is not None and len(pairs) != expected:
        problems.add(f"found {len(pairs)} image/mask pairs, expected {expected}{SKIP_COUNT_CHECK}")
    problems.raise_if_any()
    items = []
    for key, image, mask in sorted(pairs):
        items.append({"image": str(image.resolve()), "label": str(mask.resolve()), "id": key,
                      "height": info[key]["height"], "width": info[key]["width"]})
    return items


def kvasir_split(
    items: Sequence[dict[str, Any]],
    split: str = "pranet",
    fold: int = 0,
    num_folds: int = 5,
    seed: int = 0,
    split_files: Sequence[str | os.PathLike] | None = None,
    val_fraction: float = 0.0,
    require_all: bool | None = None,
) -> tuple[dict[str, list[dict[str, Any]]], dict[str, Any]]:
    """Split Kvasir-SEG items; return ``(sections, info)`` with ``training``/``validation``/``test`` lists.

    Args:
        items: from :func:`kvasir_items`.
        split: ``"pranet"`` (900 training / 100 test), ``"kvasir_seg"`` (880 training / 120 validation) or
            ``"kfold"`` (validation = fold ``fold`` of ``num_folds``, seeded).
        split_files: for ``"kvasir_seg"``: the official ``train.txt`` and ``val.txt``. Without them the 880/120
            split is a seeded random one (``info["official"] is False``).
        val_fraction: for ``"pranet"``: share of the training ids held out (seeded) as validation.
        require_all: every PraNet test id must be present (default: when the items are the full 1000).
        seed: seed of every random part.
    """
    ids = [item["id"] for item in items]
    info: dict[str, Any] = {"name": split, "seed": seed}
    if split == "pranet":
        if require_all is None:
            require_all = len(ids) == KVASIR_NUM_IMAGES
        groups = fixed_split(ids, {"test": PRANET_KVASIR_TEST_IDS}, rest="training", require_all=require_all)
        ids_by_section = {"training": groups["training"], "validation": [], "test": groups["test"]}
        info.update(official=True, source="PraNet (github.com/DengPingFan/PraNet): 100 test ids = names in "
                    "results/PraNet/Kvasir; the other images are PraNet's training images")
        if val_fraction > 0:
            train, val = holdout_split(ids_by_section["training"], (1 - val_fraction, val_fraction), seed=seed)
            ids_by_section.update(training=train, validation=val)
            info["validation"] = f"seeded hold-out of {val_fraction:.0%} of the training ids (not part of PraNet)"
    elif split == "kvasir_seg":
        if split_files:
            if len(split_files) != 2:
                raise ValueError(f"split_files must be the official train.txt and val.txt, got {list(split_files)}.")
            train_ids, val_ids = (read_id_list(f) for f in split_files)
            groups = fixed_split(ids, {"training": train_ids, "validation": val_ids}, rest=None, require_all=True)
            ids_by_section = {"training": groups["training"], "validation": groups["validation"], "test": []}
            info.update(official=True, source=f"official Kvasir-SEG lists {[str(f) for f in split_files]}")
        else:
            train, val = holdout_split(ids, (880, 120), seed=seed)
            ids_by_section = {"training": train, "validation": val, "test": []}
            info.update(official=False, source="seeded random 880/120 split (monai.data.partition_dataset); NOT the "
                        "official Kvasir-SEG list: pass split_files=(train.txt, val.txt) from github.com/DebeshJha/"
                        "2020-MediaEval-Medico-polyp-segmentation/kvasir-seg-train-val for it")
    elif split == "kfold":
        train, val = kfold_split(ids, fold, num_folds, seed)
        ids_by_section = {"training": train, "validation": val, "test": []}
        info.update(official=False, fold=fold, num_folds=num_folds,
                    source="seeded k-fold (monai.data.partition_dataset over sorted ids)")
    else:
        raise ValueError(f"split must be one of {KVASIR_SPLITS}, got {split!r}.")
    sections = items_by_ids(items, ids_by_section)
    info["counts"] = {k: len(v) for k, v in sections.items()}
    return sections, info


def download_kvasir(root: str | os.PathLike, progress: bool = True) -> Path:
    """Download ``kvasir-seg.zip`` from Simula into ``root`` and extract it (skipped when ``root/Kvasir-SEG``
    exists); return the ``Kvasir-SEG`` folder."""
    return download_resources([KVASIR_RESOURCE], root, progress=progress)[0]


def kvasir_sections(
    root: str | os.PathLike,
    request: ScanRequest,
    *,
    split_files: Sequence[str | os.PathLike] | None = None,
    val_fraction: float | None = None,
) -> DatasetSections:
    """Check a Kvasir-SEG folder and split it (the dataset's entry of :mod:`monai_imbalance.apps.registry`). See
    :func:`kvasir_items` and :func:`kvasir_split` for the arguments."""
    split, fold, num_folds, seed = request.split, request.fold, request.num_folds, request.seed
    expected_count, check, num_workers = request.expected_count, request.check, request.num_workers
    folder = find_kvasir_root(root)
    items = kvasir_items(folder, expected_count=expected_count, check=check, num_workers=num_workers,
                         progress=request.progress)
    sections, info = kvasir_split(items, split, fold=fold, num_folds=num_folds, seed=seed, split_files=split_files,
                                  val_fraction=val_fraction or 0.0)
    suffix = f"_fold{fold}" if split == "kfold" else ""
    datalist = dict(
        name="Kvasir-SEG", description=f"Kvasir-SEG polyp segmentation, {split} split: {info['counts']}. Masks are "
        "3-channel JPEGs: read as grey and threshold at 127.", labels=KVASIR_LABELS,
        synthetic=read_synthetic_marker(folder) is not None, reference=KVASIR_REFERENCE, licence=KVASIR_LICENCE,
        modality={"0": "R", "1": "G", "2": "B"}, source=KVASIR_PAGE, label_reading="grey > 127",
    )
    return DatasetSections(sections, info, datalist, folder / f"datalist_{split}{suffix}.json")


def prepare_kvasir(root: str | os.PathLike, out: str | os.PathLike | None = None, **kwargs: Any) -> Path:
    """Check a Kvasir-SEG folder (downloading it first with ``download=True``) and write a MONAI datalist JSON
    (default ``<Kvasir-SEG>/datalist_<split>.json``); return its path. Arguments: :func:`kvasir_sections`."""
    return prepare_dataset("kvasir", root, out, **kwargs)
