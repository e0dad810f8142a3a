"""The volumetric builders of ``tests/metrics/conftest.py`` (label volumes with hand-known metrics, their spacing, the
oracle network), shared with these tests."""

from __future__ import annotations

from tests.metrics.conftest import oracle_network, volume_cases, volume_spacing  # noqa: F401
