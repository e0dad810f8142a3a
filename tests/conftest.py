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


@pytest.fixture(autouse=True)
def _restore_logging():
    """Give each test the logging set-up it started with: a bundle run in this process (``BundleRunner(
    in_process=True)``) applies the bundle's ``logging.conf``, whose console handler would stay on the root logger,
    writing to that test's captured stream, and ``fileConfig`` disables the loggers that existed before it."""
    import logging

    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    disabled = {name: lg.disabled for name, lg in logging.Logger.manager.loggerDict.items()
                if isinstance(lg, logging.Logger)}
    yield
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    for handler in handlers:
        if handler not in root.handlers:
            root.addHandler(handler)
    root.setLevel(level)
    for name, was in disabled.items():
        logger = logging.Logger.manager.loggerDict.get(name)
        if isinstance(logger, logging.Logger):
            logger.disabled = was
