"""Builders shared by the volumetric tests (metrics, handlers, inferers): two label volumes with hand-known metrics,
their voxel spacing, and an "oracle" 2-D network that returns the one-hot of its input.

The fixtures return constants, functions or classes (no state), so they are session-scoped; ``tests/handlers`` and
``tests/inferers`` import them into their own ``conftest.py``.
"""

from __future__ import annotations

import pytest
import torch

SPACING = (2.5, 1.0, 1.0)  # (D, H, W), array axis order


def _volume_cases() -> tuple[torch.Tensor, torch.Tensor]:
    """Two label volumes (D, H, W) = (4, 6, 6), classes 1 and 2, with hand-known metrics:

    case A, class 1: truth cube [0:2, 0:2, 0:2], prediction the cube moved by one along D -> TP 4, FP 4, FN 4,
      Dice 0.5, IoU 1/3; every voxel of a 2x2x2 cube is a surface voxel, the directed distances are 0 (4 voxels) and
      one D step (4 voxels) both ways, so HD95 = 1 step = 2.5 mm (1 voxel without spacing).
    case A, class 2: truth empty, one predicted voxel.
    case B, class 1: truth the same cube, nothing predicted.
    case B, class 2: truth = prediction = block [2:4, 3:6, 3:6] (18 voxels).

    Returns ``(pred, truth)``, each ``(2, 1, 4, 6, 6)``.
    """
    truth = torch.zeros(2, 1, 4, 6, 6)
    pred = torch.zeros(2, 1, 4, 6, 6)
    truth[0, 0, 0:2, 0:2, 0:2] = 1
    pred[0, 0, 1:3, 0:2, 0:2] = 1
    pred[0, 0, 3, 5, 5] = 2
    truth[1, 0, 0:2, 0:2, 0:2] = 1
    truth[1, 0, 2:4, 3:6, 3:6] = 2
    pred[1, 0, 2:4, 3:6, 3:6] = 2
    return pred, truth


class _Oracle(torch.nn.Module):
    """A '2-D network' whose input intensities are labels: it returns their one-hot (for exact round trips), and
    records the shape of every batch it sees."""

    def __init__(self, num_classes: int = 3):
        super().__init__()
        self.num_classes = num_classes
        self.seen: list[tuple[int, ...]] = []
        self.dummy = torch.nn.Parameter(torch.zeros(1))

    def forward(self, x):
        self.seen.append(tuple(x.shape))
        return torch.nn.functional.one_hot(x[:, 0].round().long(), self.num_classes).permute(0, 3, 1, 2).float()


@pytest.fixture(scope="session")
def volume_spacing() -> tuple[float, float, float]:
    return SPACING


@pytest.fixture(scope="session")
def volume_cases():
    """A function returning fresh ``(pred, truth)`` label volumes (see ``_volume_cases``)."""
    return _volume_cases


@pytest.fixture(scope="session")
def oracle_network():
    """The oracle network class: ``oracle_network(num_classes=3)``."""
    return _Oracle
