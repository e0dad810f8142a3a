"""Losses with MONAI's argument conventions (``include_background``, ``to_onehot_y``, ``sigmoid``, ``softmax``,
``other_act``, ``reduction``), 2-D and 3-D, binary and multi-class."""

from __future__ import annotations
