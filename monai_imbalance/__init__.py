"""monai_imbalance: a MONAI plugin for pixel-level class imbalance in medical image segmentation.

Subpackages follow MONAI's layout: ``transforms`` (mask-aware and probabilistic cropping, weight and distance
maps), ``losses``, ``metrics``, ``handlers``, ``engines``, ``apps`` (datasets, synthetic data), ``tuning``
(OII-guided search) and ``stats`` (dataset imbalance statistics).
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
