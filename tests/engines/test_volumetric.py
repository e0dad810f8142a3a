"""The volumetric pieces moved out of ``engines`` keep their old import paths for one release:
``monai_imbalance.engines.volumetric`` and ``monai_imbalance.engines.writers`` give the new objects with a
``DeprecationWarning``, and ``monai_imbalance.engines`` still exports the same names. (Their tests: tests/inferers,
tests/metrics/test_volumetric.py, tests/handlers/test_volumetric.py, tests/transforms/test_writers.py.)"""

from __future__ import annotations

import importlib
import inspect
import warnings

import pytest

import monai_imbalance.engines as engines
import monai_imbalance.inferers as inferers
import monai_imbalance.metrics.volumetric as volumetric_metrics
import monai_imbalance.transforms as transforms

OLD_NAMES = {
    "monai_imbalance.engines.volumetric": {
        inferers: ["SliceBySliceInferer", "volume_items", "volume_format", "VOLUME_SUFFIXES"],
        volumetric_metrics: ["VOLUME_METRIC_FIELDS", "EMPTY_POLICIES", "compute_volume_metrics",
                             "VolumetricSegmentationMetric", "summarize_volume_metrics", "flat_volume_metrics",
                             "evaluate_volumes", "write_volume_report", "spacing_of"],
        transforms: ["SaveLabelVolumeLikeInputd"],
    },
    "monai_imbalance.engines.writers": {transforms: ["SaveMaskLikeInputd"]},
}


@pytest.mark.parametrize("old_module", sorted(OLD_NAMES))
def test_old_modules_give_the_new_objects_with_a_deprecation_warning(old_module):
    module = importlib.import_module(old_module)
    expected = {name: new for new, names in OLD_NAMES[old_module].items() for name in names}
    assert sorted(module.__all__) == sorted(expected)
    for name, new in expected.items():
        with pytest.warns(DeprecationWarning, match=f"{old_module}.{name} is deprecated.*{new.__name__}.{name}"):
            assert getattr(module, name) is getattr(new, name)
    with pytest.raises(AttributeError):
        module.no_such_name  # noqa: B018
    with warnings.catch_warnings():  # scanning the module (MONAI's ComponentLocator does) does not warn
        warnings.simplefilter("error", DeprecationWarning)
        inspect.getmembers(module)


def test_from_import_warns_and_works():
    with pytest.warns(DeprecationWarning, match="monai_imbalance.inferers.SliceBySliceInferer"):
        from monai_imbalance.engines.volumetric import SliceBySliceInferer
    assert SliceBySliceInferer is inferers.SliceBySliceInferer


def test_engines_package_keeps_exporting_the_moved_names_without_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        importlib.reload(engines)  # the package imports them from their new modules
    assert engines.SliceBySliceInferer is inferers.SliceBySliceInferer
    assert engines.volume_items is inferers.volume_items and engines.volume_format is inferers.volume_format
    assert engines.VolumetricSegmentationMetric is volumetric_metrics.VolumetricSegmentationMetric
    assert engines.evaluate_volumes is volumetric_metrics.evaluate_volumes
    assert engines.SaveLabelVolumeLikeInputd is transforms.SaveLabelVolumeLikeInputd
    assert engines.SaveMaskLikeInputd is transforms.SaveMaskLikeInputd
