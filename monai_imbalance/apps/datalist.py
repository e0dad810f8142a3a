"""Writing MONAI datalists (Medical Segmentation Decathlon JSON format) for the prepared datasets.

The files are read by ``monai.data.load_decathlon_datalist``: ``image`` and ``label`` paths are written relative
to the JSON file's folder, which that function resolves; the other keys of an item are metadata (case id, frame,
slice index, spacing). Besides MONAI's optional keys (``name``, ``description``, ``reference``, ``licence``,
``labels``, ``numTraining``, ...) the file records the ``split`` used and whether the data are ``synthetic``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["DATALIST_SECTIONS", "PATH_KEYS", "write_datalist", "relative_items"]

DATALIST_SECTIONS = ("training", "validation", "test")
PATH_KEYS = ("image", "label", "image_4d", "source_image", "source_label")


def _relative(value: Any, base: Path) -> Any:
    if isinstance(value, (str, os.PathLike)):
        return Path(os.path.relpath(os.path.abspath(value), base)).as_posix()
    if isinstance(value, (list, tuple)):
        return [_relative(v, base) for v in value]
    return value


def relative_items(items: Sequence[Mapping[str, Any]], base_dir: str | os.PathLike) -> list[dict[str, Any]]:
    """Copies of ``items`` with the paths of :data:`PATH_KEYS` made relative to ``base_dir`` (POSIX separators);
    ``load_decathlon_datalist`` resolves them again (``image``/``label`` always, the others when they exist)."""
    base = Path(os.path.abspath(base_dir))
    return [{k: (_relative(v, base) if k in PATH_KEYS else v) for k, v in item.items()} for item in items]


def write_datalist(
    path: str | os.PathLike,
    sections: Mapping[str, Sequence[Mapping[str, Any]]],
    name: str,
    description: str,
    split: Mapping[str, Any],
    labels: Mapping[int | str, str],
    synthetic: bool = False,
    tensor_image_size: str = "2D",
    modality: Mapping[int | str, str] | None = None,
    reference: str | None = None,
    licence: str | None = None,
    **extra: Any,
) -> Path:
    """Write a MONAI datalist JSON and return its path.

    Args:
        path: the JSON file to write (its folder is created).
        sections: ``{"training": [...], "validation": [...], "test": [...]}`` lists of items with absolute or
            relative ``image``/``label`` paths. Empty ``training``/``validation`` lists are written; an empty
            ``test`` list is left out (optional in the decathlon format; MONAI 1.6.1's ``load_decathlon_datalist``
            raises ``IndexError`` on an empty one). ``numTraining``/``numValidation``/``numTest`` give the counts.
        name, description, reference, licence, modality, tensor_image_size: decathlon metadata.
        split: how the sections were made (name, seed, fold, source of the lists, counts).
        labels: class index -> name.
        synthetic: the data are a look-alike; the description then starts with ``SYNTHETIC``.
        extra: further metadata keys.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if synthetic and not description.startswith("SYNTHETIC"):
        description = "SYNTHETIC look-alike, not real data. " + description
    unknown = set(sections) - set(DATALIST_SECTIONS)
    if unknown:
        raise ValueError(f"datalist sections must be among {DATALIST_SECTIONS}, got {sorted(unknown)}.")
    data: dict[str, Any] = {
        "name": name,
        "description": description,
        "reference": reference or "",
        "licence": licence or "",
        "tensorImageSize": tensor_image_size,
        "modality": dict(modality or {"0": "image"}),
        "labels": {str(k): v for k, v in labels.items()},
        "synthetic": bool(synthetic),
        "split": dict(split),
        **extra,
    }
    for section in DATALIST_SECTIONS:
        items = relative_items(sections.get(section, []), path.parent)
        data[f"num{section[0].upper()}{section[1:]}"] = len(items)
        if items or section != "test":  # load_decathlon_datalist fails on an empty "test" list (IndexError)
            data[section] = items
    path.write_text(json.dumps(data, indent=2) + "\n")
    return path
