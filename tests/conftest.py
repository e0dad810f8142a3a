from __future__ import annotations

import pytest
import torch

# module fixtures that train a bundle in a subprocess: every test reading them is an end-to-end run
_BUNDLE_RUN_FIXTURES = {"trained"}


def pytest_collection_modifyitems(config, items):
    slow = pytest.mark.slow
    for item in items:
        if _BUNDLE_RUN_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(slow)
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs CUDA")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
