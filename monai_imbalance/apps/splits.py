"""Train/validation/test splits shared by the dataset layouts: k-fold, seeded hold-out, fixed id lists.

Everything is deterministic: ids are sorted first, so a split depends only on the set of ids and the seed, never
on the order in which a file system lists a folder. Shuffles are MONAI's (``monai.data.partition_dataset``, the
function behind ``monai.apps.CrossValidation``), so a fold here is the fold MONAI would make from the same sorted
list and seed.
"""

from __future__ import annotations

import os
import re
from collections.abc import Collection, Hashable, Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "kfold_partitions",
    "kfold_split",
    "holdout_split",
    "fixed_split",
    "read_id_list",
    "items_by_ids",
    "natural_key",
]


def _sorted_unique(ids: Sequence[Hashable]) -> list:
    unique = sorted(set(ids), key=natural_key)
    if len(unique) != len(ids):
        raise ValueError(f"ids must be unique; {len(ids) - len(unique)} duplicate(s) given.")
    return unique


def natural_key(value: Any) -> tuple:
    """Sort ``"10"`` after ``"9"`` and ``"case0002"`` after ``"case0001"``: digit runs compare as numbers."""
    return tuple((0, int(t), "") if t.isdigit() else (1, 0, t) for t in re.split(r"(\d+)", str(value)) if t)


def kfold_partitions(ids: Sequence[Hashable], num_folds: int = 5, seed: int = 0) -> list[list]:
    """Split ``ids`` into ``num_folds`` disjoint folds that together cover every id.

    The ids are sorted (digit runs numerically), shuffled by ``monai.data.partition_dataset(shuffle=True,
    seed=seed)`` and dealt out round-robin, so fold sizes differ by at most one.

    Raises:
        ValueError: ``num_folds < 2``, more folds than ids, or duplicate ids.
    """
    from monai.data import partition_dataset

    if num_folds < 2:
        raise ValueError(f"num_folds must be >= 2, got {num_folds}.")
    unique = _sorted_unique(ids)
    if len(unique) < num_folds:
        raise ValueError(f"cannot make {num_folds} folds from {len(unique)} ids.")
    return [sorted(fold, key=natural_key) for fold in
            partition_dataset(unique, num_partitions=num_folds, shuffle=True, seed=seed)]


def kfold_split(ids: Sequence[Hashable], fold: int, num_folds: int = 5, seed: int = 0) -> tuple[list, list]:
    """``(train_ids, val_ids)`` of cross-validation fold ``fold`` (0-based) of :func:`kfold_partitions`."""
    if not 0 <= fold < num_folds:
        raise ValueError(f"fold must be in [0, {num_folds - 1}], got {fold}.")
    folds = kfold_partitions(ids, num_folds, seed)
    train = sorted((i for k, part in enumerate(folds) if k != fold for i in part), key=natural_key)
    return train, folds[fold]


def holdout_split(ids: Sequence[Hashable], sizes: Sequence[float], seed: int = 0) -> list[list]:
    """Seeded random split of ``ids`` into parts proportional to ``sizes`` (counts or fractions).

    ``sizes=(880, 120)`` on 1000 ids gives exactly 880 and 120; fractions are rounded by
    ``monai.data.partition_dataset(ratios=...)``, the last part taking what is left.
    """
    from monai.data import partition_dataset

    if len(sizes) < 2 or any(s < 0 for s in sizes) or sum(sizes) <= 0:
        raise ValueError(f"sizes must be >= 2 non-negative numbers with a positive sum, got {tuple(sizes)}.")
    unique = _sorted_unique(ids)
    parts = partition_dataset(unique, ratios=list(sizes), shuffle=True, seed=seed)
    used = sum(len(p) for p in parts)
    if used < len(unique):  # rounding left ids over: they go to the last part
        taken = {i for p in parts for i in p}
        parts[-1] = parts[-1] + [i for i in unique if i not in taken]
    return [sorted(p, key=natural_key) for p in parts]


def fixed_split(
    ids: Sequence[Hashable],
    groups: Mapping[str, Collection[Hashable]],
    rest: str | None = None,
    require_all: bool = False,
) -> dict[str, list]:
    """Assign ``ids`` to the named ``groups`` (fixed lists, e.g. published test ids).

    Args:
        ids: the ids present.
        groups: section name -> ids of that section. Groups must be disjoint.
        rest: section that receives the ids in no group (``None``: such ids are an error).
        require_all: every id of every group must be present in ``ids``.

    Returns:
        section name -> sorted ids (every group and ``rest`` appear, possibly empty).

    Raises:
        ValueError: groups overlap, an id is in no group and ``rest`` is ``None``, or (``require_all``) a listed
            id is missing; the message names the ids.
    """
    unique = _sorted_unique(ids)
    owner: dict[Hashable, str] = {}
    for name, members in groups.items():
        for member in members:
            if member in owner:
                raise ValueError(f"id {member!r} is in both the {owner[member]!r} and {name!r} lists.")
            owner[member] = name
    sections: dict[str, list] = {name: [] for name in groups}
    if rest is not None:
        sections.setdefault(rest, [])
    orphans = []
    for i in unique:
        if i in owner:
            sections[owner[i]].append(i)
        elif rest is not None:
            sections[rest].append(i)
        else:
            orphans.append(i)
    if orphans:
        raise ValueError(f"{len(orphans)} id(s) are in none of the lists {list(groups)}: {orphans[:5]}")
    if require_all:
        present = set(unique)
        missing = [m for m in owner if m not in present]
        if missing:
            raise ValueError(f"{len(missing)} listed id(s) are missing: {sorted(missing, key=natural_key)[:8]}")
    return sections


def read_id_list(path: str | os.PathLike) -> list[str]:
    """Ids named in a split list file, in file order.

    Each whitespace- or comma-separated token counts; folders and suffixes are dropped, so ``images/a.jpg``,
    ``a.jpg`` and ``a`` all give ``a``; ``.npy.h5`` and ``.nii.gz`` are removed whole. Empty lines and lines
    starting with ``#`` are skipped; repeated ids are kept once.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"split list not found: {path}")
    ids: list[str] = []
    seen = set()
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        for token in re.split(r"[\s,]+", line):
            if not token:
                continue
            name = token.replace("\\", "/").rsplit("/", 1)[-1]
            for suffix in (".npy.h5", ".nii.gz"):
                if name.lower().endswith(suffix):
                    name = name[: -len(suffix)]
                    break
            else:
                name = os.path.splitext(name)[0]
            if name and name not in seen:
                seen.add(name)
                ids.append(name)
    return ids


def items_by_ids(
    items: Sequence[Mapping[str, Any]], sections: Mapping[str, Sequence[Hashable]], key: str = "id"
) -> dict[str, list[dict[str, Any]]]:
    """Datalist sections from id sections: each item goes where its ``item[key]`` is listed (item order kept)."""
    where = {i: name for name, ids in sections.items() for i in ids}
    out: dict[str, list[dict[str, Any]]] = {name: [] for name in sections}
    for item in items:
        name = where.get(item[key])
        if name is not None:
            out[name].append(dict(item))
    return out
