"""Datalists of the bundles: the sections of each dataset from its layout or a datalist JSON, image folders, and
the check that every DDP rank gets a validation item (moved from tests/bundles/test_bundle_common.py)."""

from __future__ import annotations

import pytest
from PIL import Image

from monai_imbalance.engines import dataset_sections, image_items, require_items_per_rank


def test_require_items_per_rank():
    assert require_items_per_rank([1, 2, 3], "validation", world_size=3) == 3
    assert require_items_per_rank([1], "validation") == 1  # no process group: one process
    with pytest.raises(ValueError, match="validation split has 2 item.* for 4 processes"):
        require_items_per_rank([1, 2], "validation", world_size=4)
    with pytest.raises(ValueError, match="validation split has 0 item"):
        require_items_per_rank([], "validation")
    with pytest.raises(ValueError, match="world_size"):
        require_items_per_rank([1], "validation", world_size=0)


def test_dataset_sections_from_layouts_and_datalist(tmp_path):
    from monai_imbalance.apps import prepare_kvasir
    from monai_imbalance.apps.lookalike import write_clinicdb_lookalike, write_isic_lookalike, write_kvasir_lookalike

    kvasir = write_kvasir_lookalike(tmp_path / "k", num_images=10)
    folds = [dataset_sections("kvasir", kvasir, fold=k, num_folds=5) for k in range(5)]
    assert all(len(f["training"]) == 8 and len(f["validation"]) == 2 for f in folds)
    assert len({i["id"] for f in folds for i in f["validation"]}) == 10  # the folds partition the images
    pranet = dataset_sections("kvasir", kvasir, split="pranet")
    assert len(pranet["test"]) == 1 and len(pranet["training"]) == 9
    from_json = dataset_sections("kvasir", None, datalist=prepare_kvasir(kvasir, split="kfold", fold=2))
    assert [i["id"] for i in from_json["validation"]] == [i["id"] for i in folds[2]["validation"]]
    clinic = dataset_sections("clinicdb", write_clinicdb_lookalike(tmp_path / "c", num_images=4))
    assert len(clinic["test"]) == 4 and clinic["test"][0]["image"].endswith(".tif")
    isic_root = write_isic_lookalike(tmp_path / "i", num_training=4, num_validation=2, num_test=2)
    isic = dataset_sections("isic2018", isic_root, resized_cache=48, cache_dir=tmp_path / "cache")
    assert [len(isic[s]) for s in ("training", "validation", "test")] == [4, 2, 2]
    with Image.open(isic["training"][0]["image"]) as img:
        assert max(img.size) == 48  # the resized copy
    with pytest.raises(ValueError, match="isic2018"):
        dataset_sections("kvasir2", kvasir)
    items = image_items(isic_root / "ISIC2018_Task1-2_Test_Input")
    assert len(items) == 2 and all(i["image"].endswith(".jpg") for i in items)  # LICENSE.txt skipped
    with pytest.raises(FileNotFoundError):
        image_items(tmp_path / "nothing")
