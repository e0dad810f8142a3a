"""Transforms: Mask-Aware Cropping, probabilistic cropping, DBCE / uncertainty weight maps, signed distance maps.

Each transform has an array class and a dictionary class ``...d`` with MONAI's ``D``/``Dict`` aliases.
"""

from __future__ import annotations

from .utils import window_foreground_counts, window_start_grid
