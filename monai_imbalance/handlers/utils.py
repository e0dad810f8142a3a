"""What the evaluation handlers that name their cases share: the process rank and world size, the items of a batch,
and the cases a padded distributed sampler repeated."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["process_rank", "world_size", "first_occurrences", "batch_item"]


def process_rank() -> int:
    """This process's rank under ``torch.distributed`` (0 without it)."""
    import torch.distributed as dist

    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def world_size() -> int:
    """The number of processes (ignite's view: 1 without a process group)."""
    import ignite.distributed as idist

    return idist.get_world_size()


def first_occurrences(ids: Sequence[str]) -> list[int]:
    """Indices of the first occurrence of each id (the cases a padded distributed sampler repeated, dropped)."""
    seen: set[str] = set()
    keep = []
    for i, case in enumerate(ids):
        if case not in seen:
            seen.add(case)
            keep.append(i)
    return keep


def batch_item(batch: Any, index: int, keys: Sequence[str | None]) -> dict[str, Any]:
    """The values of ``keys`` for item ``index`` of an engine's batch: a list of dictionaries (decollated) or one
    collated dictionary (list values indexed, others taken as they are); ``{}`` when the batch is neither."""
    if isinstance(batch, (list, tuple)) and index < len(batch) and isinstance(batch[index], dict):
        return batch[index]
    if isinstance(batch, dict):
        item = {}
        for key in keys:
            if key is not None and key in batch:
                value = batch[key]
                item[key] = value[index] if isinstance(value, (list, tuple)) else value
        return item
    return {}
