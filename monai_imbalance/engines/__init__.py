"""What MONAI's ``SupervisedTrainer`` / ``SupervisedEvaluator`` cannot do as-is (e.g. passing weight maps to a loss)."""

from __future__ import annotations
