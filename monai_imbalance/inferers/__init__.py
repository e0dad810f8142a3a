"""Inferers: slice-by-slice inference of volumes with 2-D networks (on MONAI's ``SliceInferer``)."""

from __future__ import annotations

from .volumes import VOLUME_SUFFIXES, SliceBySliceInferer, volume_format, volume_items
