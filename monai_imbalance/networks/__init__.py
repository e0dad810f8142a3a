"""Networks of the papers' setups that MONAI lacks as-is."""

from __future__ import annotations

from .unet import BilinearUNet, DeepSupervisionFlexibleUNet, DeepSupervisionInference
