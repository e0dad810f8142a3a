from __future__ import annotations

import json

import numpy as np
import pytest
from monai.data import load_decathlon_datalist
from monai.transforms import LoadImaged
from scipy import ndimage

from monai_imbalance.apps.io import load_label_file
from monai_imbalance.apps.synthetic import make_synthetic_dataset, make_synthetic_pair, write_synthetic_dataset

CASES = [
    # size, fraction, classes, shape
    ((128, 128), 0.30, 2, "blob"),
    ((128, 128), 0.16, 2, "mixed"),
    ((128, 128), 0.03, 2, "blob"),
    ((128, 128), 0.003, 2, "thin"),
    ((256, 256), 0.0005, 2, "thin"),
    ((128, 128), 0.10, 5, "blob"),
    ((40, 40, 24), 0.05, 2, "blob"),
    ((40, 40, 24), 0.01, 4, "thin"),
]


@pytest.mark.parametrize("size, fraction, num_classes, shape", CASES)
def test_foreground_fraction_within_one_pixel_per_class(size, fraction, num_classes, shape):
    pair = make_synthetic_pair(size, fg_fraction=fraction, num_classes=num_classes, shape=shape, seed=3)
    label = pair["label"]
    n = label.size
    assert label.shape == (1, *size) and label.dtype == np.uint8
    # stated tolerance: the realised fraction equals round(fraction * n) pixels exactly (at least 1)
    assert np.count_nonzero(label) == max(1, round(fraction * n))
    assert set(np.unique(label)) <= set(range(num_classes))
    image = pair["image"]
    assert image.shape == (1, *size) and image.dtype == np.float32
    assert 0.0 <= image.min() and image.max() <= 1.0


def test_class_ratios_split_the_foreground():
    pair = make_synthetic_pair((128, 128), fg_fraction=0.1, num_classes=4, class_ratios=[4, 2, 1], seed=0)
    counts = np.bincount(pair["label"].ravel(), minlength=4)[1:]
    total = round(0.1 * 128 * 128)
    assert counts.sum() == total
    np.testing.assert_allclose(counts / total, [4 / 7, 2 / 7, 1 / 7], atol=1 / total)


def test_number_of_objects_is_realised_for_separated_blobs():
    for seed in range(5):
        label = make_synthetic_pair((128, 128), fg_fraction=0.03, num_objects=4, size_spread=0.2, seed=seed)["label"]
        _, n = ndimage.label(label[0] > 0, structure=np.ones((3, 3)))
        assert n == 4


def test_objects_are_brighter_than_background_so_there_is_signal():
    pair = make_synthetic_pair((128, 128), fg_fraction=0.1, seed=2, distractors=0)
    fg = pair["label"][0] > 0
    assert pair["image"][0][fg].mean() > pair["image"][0][~fg].mean() + 0.15


def test_reproducible_by_seed_and_different_across_seeds():
    a = make_synthetic_pair((64, 64), seed=11, channels=3)
    b = make_synthetic_pair((64, 64), seed=11, channels=3)
    c = make_synthetic_pair((64, 64), seed=12, channels=3)
    np.testing.assert_array_equal(a["image"], b["image"])
    np.testing.assert_array_equal(a["label"], b["label"])
    assert not np.array_equal(a["label"], c["label"])
    assert a["image"].shape == (3, 64, 64)


def test_dataset_items_depend_only_on_seed_and_index_and_empty_rate():
    short = make_synthetic_dataset(3, seed=5, empty_rate=0.5, spatial_size=(32, 32))
    long = make_synthetic_dataset(200, seed=5, empty_rate=0.5, spatial_size=(32, 32))
    for x, y in zip(short, long):
        np.testing.assert_array_equal(x["label"], y["label"])
    empty = np.mean([item["label"].max() == 0 for item in long])
    assert 0.38 < empty < 0.62  # 200 Bernoulli(0.5) draws: 3.4 sigma band


def test_border_rate_one_makes_every_object_touch_the_border():
    for seed in range(4):
        label = make_synthetic_pair((96, 96), fg_fraction=0.05, num_objects=3, border_rate=1.0, seed=seed)["label"][0]
        cc, n = ndimage.label(label > 0, structure=np.ones((3, 3)))
        border = np.unique(np.concatenate([cc[0], cc[-1], cc[:, 0], cc[:, -1]]))
        assert set(range(1, n + 1)) <= set(border.tolist())


def test_empty_and_zero_fraction_give_empty_labels():
    assert make_synthetic_pair((32, 32), empty=True)["label"].max() == 0
    assert make_synthetic_pair((32, 32), fg_fraction=0.0)["label"].max() == 0


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"fg_fraction": 1.0}, "fg_fraction"),
        ({"num_classes": 1}, "num_classes"),
        ({"shape": "star"}, "shape"),
        ({"channels": 2}, "channels"),
        ({"spatial_size": (64,)}, "spatial_size"),
        ({"num_classes": 3, "class_ratios": [1.0]}, "class_ratios"),
        ({"border_rate": 2.0}, "border_rate"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_synthetic_pair(**kwargs)


@pytest.mark.parametrize(
    "image_format, label_format, size, channels, num_classes",
    [
        ("png", "png", (64, 80), 1, 3),
        ("jpg", "jpg", (64, 80), 3, 2),  # Kvasir-SEG style: JPEG images and 3-channel JPEG masks
        ("png", "png", (64, 80), 3, 2),  # ISIC style: 0/255 PNG masks
        ("nii.gz", "nii.gz", (24, 28, 12), 1, 3),
    ],
)
def test_written_files_read_back_and_load_in_monai(tmp_path, image_format, label_format, size, channels, num_classes):
    path = write_synthetic_dataset(
        tmp_path, 5, image_format=image_format, label_format=label_format, spatial_size=size, channels=channels,
        num_classes=num_classes, fg_fraction=0.1, seed=1, val_fraction=0.4, spacing=(1.5, 1.5, 6.0),
    )
    meta = json.loads(path.read_text())
    assert meta["synthetic"] is True and "SYNTHETIC" in meta["description"]
    assert len(meta["training"]) == 3 and len(meta["validation"]) == 2
    pairs = make_synthetic_dataset(5, seed=1, spatial_size=size, channels=channels, num_classes=num_classes,
                                   fg_fraction=0.1)
    items = load_decathlon_datalist(path, data_list_key="training") + load_decathlon_datalist(
        path, data_list_key="validation"
    )
    for item, pair in zip(items, pairs):
        label = load_label_file(item["label"])  # "auto" binarises JPEG and 0/255 masks
        expected = pair["label"][0]
        if label_format == "jpg":
            # JPEG compression noise: thresholding at 127 recovers the mask up to a few edge pixels
            assert np.mean(label != expected) < 0.01
        else:
            np.testing.assert_array_equal(label, expected)
    loaded = LoadImaged(keys=["image", "label"], ensure_channel_first=True)(items[0])
    assert loaded["image"].shape[0] == channels
    assert tuple(loaded["label"].shape[1:]) == tuple(loaded["image"].shape[1:])
    if image_format == "nii.gz":
        np.testing.assert_allclose(loaded["label"].pixdim[:3].tolist(), [1.5, 1.5, 6.0])


def test_write_rejects_impossible_combinations(tmp_path):
    with pytest.raises(ValueError, match="3-D pairs can only be written as NIfTI"):
        write_synthetic_dataset(tmp_path, 1, image_format="png", spatial_size=(8, 8, 8))
    with pytest.raises(ValueError, match="JPEG label masks"):
        write_synthetic_dataset(tmp_path, 1, label_format="jpg", num_classes=3)


def test_synth_rejects_zero_images(tmp_path, capsys):
    from monai_imbalance.apps.synthetic import write_synthetic_dataset
    from monai_imbalance.cli import main

    with pytest.raises(SystemExit) as caught:
        main(["synth", "--out", str(tmp_path / "s"), "--num-images", "0"])
    assert caught.value.code == 2 and "--num-images: must be >= 1, got 0" in capsys.readouterr().err
    with pytest.raises(ValueError, match="num_images must be a positive integer"):
        write_synthetic_dataset(tmp_path / "p", 0)
    assert not (tmp_path / "s" / "datalist.json").exists() and not (tmp_path / "p" / "datalist.json").exists()


def test_too_many_objects_for_the_image_is_a_clear_error_not_a_slow_run():
    from monai_imbalance.apps.synthetic import MAX_OBJECTS, make_synthetic_pair

    with pytest.raises(ValueError, match=r"num_objects 5000 per class is too many for a 64x64 image at fg_fraction "
                                         r"0.5: at most 256"):
        make_synthetic_pair(spatial_size=(64, 64), fg_fraction=0.5, num_objects=5000)
    with pytest.raises(ValueError, match="at most 4 "):  # 8x8: one object per 16 pixels
        make_synthetic_pair(spatial_size=(8, 8), num_objects=5)
    pair = make_synthetic_pair(spatial_size=(64, 64), fg_fraction=0.3, num_objects=MAX_OBJECTS, seed=1)
    assert int(np.count_nonzero(pair["label"])) == round(0.3 * 64 * 64)  # at the cap: still the exact fraction
