from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
import torch
from monai.data import Dataset, MetaTensor
from skimage.measure import label as sk_label

from monai_imbalance.apps.synthetic import make_synthetic_dataset, write_synthetic_dataset
from monai_imbalance.stats import (
    ImbalanceStatistics,
    class_frequency_weights,
    format_ratio,
    imbalance_level,
)


def brute_force(labels, num_classes, roi=None, stride=None):
    """Independent reference: per-class == counts, skimage components, explicit window loops for MAC."""
    counts = np.zeros(num_classes, dtype=np.int64)
    fractions = [[] for _ in range(num_classes)]
    sizes = [[] for _ in range(num_classes)]
    shares = []
    for lab in labels:
        for c in range(num_classes):
            n = int(np.sum(lab == c))
            counts[c] += n
            fractions[c].append(n / lab.size)
            if c > 0:
                cc = sk_label(lab == c, connectivity=lab.ndim)
                sizes[c] += [int(np.sum(cc == i)) for i in range(1, cc.max() + 1)]
        if roi is not None and lab.max() > 0:
            starts = [range(0, n - r + 1, stride) for n, r in zip(lab.shape, roi)]
            best = max(
                np.count_nonzero(lab[tuple(slice(s, s + r) for s, r in zip(start, roi))])
                for start in itertools.product(*starts)
            )
            shares.append(best / np.prod(roi))
    return counts, fractions, sizes, shares


@pytest.mark.parametrize(
    "size, num_classes, shape",
    [((64, 72), 2, "blob"), ((64, 64), 4, "mixed"), ((24, 20, 16), 3, "blob"), ((24, 20, 16), 2, "thin")],
)
def test_statistics_equal_brute_force(size, num_classes, shape):
    pairs = make_synthetic_dataset(
        8, seed=4, empty_rate=0.25, spatial_size=size, num_classes=num_classes, shape=shape, fg_fraction=0.06
    )
    labels = [p["label"][0] for p in pairs]
    roi = tuple(s // 2 for s in size)
    stats = ImbalanceStatistics(num_classes=num_classes, roi_size=roi, stride=4)
    for p in pairs:
        stats.update(p["label"])  # channel-first (1, *spatial)
    report = stats.compute()
    counts, fractions, sizes, shares = brute_force(labels, num_classes, roi, 4)

    assert report.num_images == 8 and report.total_pixels == counts.sum()
    for c, row in enumerate(report.classes):
        assert row.pixels == counts[c]
        assert row.fraction == pytest.approx(counts[c] / counts.sum())
        assert row.absent_share == pytest.approx(np.mean(np.array(fractions[c]) == 0))
        q = np.percentile(fractions[c], [0, 25, 50, 75, 100])
        got = row.image_fraction
        np.testing.assert_allclose([got["min"], got["q1"], got["median"], got["q3"], got["max"]], q)
        if c > 0:
            assert row.components == len(sizes[c])
            if sizes[c]:
                assert row.component_size["median"] == pytest.approx(np.median(sizes[c]))
                assert row.component_size["max"] == max(sizes[c])
            assert row.ratio_to_background == format_ratio(counts[c], counts[0])
    fg = counts[1:].sum()
    assert report.foreground.pixels == fg
    assert report.foreground_fraction == pytest.approx(fg / counts.sum())
    assert report.empty_image_share == pytest.approx(np.mean([lab.max() == 0 for lab in labels]))
    np.testing.assert_allclose(report.class_weights, class_frequency_weights(labels, num_classes))
    for rho, share in report.mac["croppable_share"].items():
        assert share == pytest.approx(np.mean(np.array(shares) >= float(rho)))


def test_class_frequency_weights_hand_values_and_absent_class():
    # 4 pixels, 2 classes: omega_0 = 4 / (2 * 3), omega_1 = 4 / (2 * 1); class 2 absent -> 0
    np.testing.assert_allclose(class_frequency_weights(np.array([[0, 0, 0, 1]]), 2), [2 / 3, 2.0])
    np.testing.assert_allclose(class_frequency_weights(np.array([0, 0, 1, 1]), 3), [4 / 6, 4 / 6, 0.0])
    # balanced classes give weight 1, over an iterable of labels (streamed)
    gen = (np.array([c, 1 - c]) for c in (0, 1))
    np.testing.assert_allclose(class_frequency_weights(gen, 2), [1.0, 1.0])
    np.testing.assert_allclose(class_frequency_weights(torch.tensor([0, 1, 1, 1]), 2), [2.0, 2 / 3])


def test_class_frequency_weights_errors():
    with pytest.raises(ValueError, match="has value 2 but num_classes=2"):
        class_frequency_weights(np.array([0, 2]), 2)
    with pytest.raises(ValueError, match="at least one label"):
        class_frequency_weights([], 2)
    with pytest.raises(ValueError, match="num_classes must be >= 1"):
        class_frequency_weights(np.array([0]), 0)


def test_ratio_format_and_levels_of_the_dibe_paper():
    # the paper's Table 2 datasets and levels
    for n, level in [(2228, "extreme"), (584, "high"), (333, "high"), (191, "medium"), (113, "medium"), (25, "low")]:
        assert imbalance_level(n) == level
        assert format_ratio(1, n) == f"1:{n}"
    assert format_ratio(0, 10) == "absent"
    assert format_ratio(1, 2.5) == "1:2.5"


def test_hand_case_report_and_suggestions():
    stats = ImbalanceStatistics(num_classes=3, class_names=["bg", "lesion", "vessel"])
    stats.update(np.array([[0, 0, 1, 1], [0, 0, 0, 0]]))
    stats.update(np.zeros((2, 4), dtype=np.uint8))
    report = stats.compute()
    assert [r.pixels for r in report.classes] == [14, 2, 0]
    assert report.ratio == "1:7" and report.foreground.background_per_pixel == 7
    assert report.classes[1].components == 1 and report.classes[1].absent_share == 0.5
    assert report.empty_image_share == 0.5
    np.testing.assert_allclose(report.class_weights, [16 / (3 * 14), 16 / (3 * 2), 0.0])
    text = str(report)
    for needle in ("lesion", "vessel", "1:7", "Never present: vessel", "50% of images have no foreground", "DIBELoss"):
        assert needle in text
    assert json.loads(report.to_json())["classes"][1]["name"] == "lesion"


def test_extreme_imbalance_suggests_dibe_reg():
    label = np.zeros((100, 100), dtype=np.uint8)
    label[0, :3] = 1  # 3 : 9997
    report = ImbalanceStatistics(num_classes=2).run([label], progress=False)
    assert report.imbalance_level == "extreme"
    assert any("DIBERegLoss" in s for s in report.suggestions)


def test_mac_suggestion_picks_largest_croppable_rho():
    label = np.zeros((64, 64), dtype=np.uint8)
    label[:16, :16] = 1  # a 16x16 window at the origin is full; a 32x32 window holds at most 25%
    report = ImbalanceStatistics(num_classes=2, roi_size=32, stride=16).run([label], progress=False)
    assert report.mac["croppable_share"] == {"0.25": 1.0, "0.5": 0.0, "0.75": 0.0}
    assert any(s.startswith("MAC: rho=0.25 is the largest") for s in report.suggestions)
    small = ImbalanceStatistics(num_classes=2, roi_size=128).run([label], progress=False)
    assert small.mac["images_smaller_than_roi"] == 1


def test_inferred_num_classes_and_single_class_dataset():
    report = ImbalanceStatistics().run([np.array([[0, 3]])], progress=False)
    assert report.num_classes == 4 and report.classes[3].pixels == 1
    only_bg = ImbalanceStatistics().run([np.zeros((4, 4))], progress=False)
    assert only_bg.num_classes == 2 and only_bg.imbalance_level == "no foreground"
    assert "No foreground pixel" in only_bg.suggestions[0]


def test_run_accepts_datalist_json_folder_items_dataset_and_workers(tmp_path):
    path = write_synthetic_dataset(tmp_path, 6, spatial_size=(48, 40), num_classes=3, fg_fraction=0.05, seed=2,
                                   val_fraction=0.0, empty_rate=0.3)
    arrays = [p["label"] for p in make_synthetic_dataset(6, seed=2, spatial_size=(48, 40), num_classes=3,
                                                         fg_fraction=0.05, empty_rate=0.3)]
    reference = ImbalanceStatistics(num_classes=3).run(arrays, progress=False).to_json()
    items = [{"label": str(tmp_path / "labels" / f"case_{i:04d}.png")} for i in range(6)]
    tensors = [{"label": MetaTensor(torch.as_tensor(a))} for a in arrays]
    for data, workers in [(path, 0), (tmp_path / "labels", 0), (items, 0), (Dataset(tensors), 0), (path, 2)]:
        got = ImbalanceStatistics(num_classes=3).run(data, num_workers=workers, progress=False).to_json()
        assert got == reference


def test_run_errors_name_the_problem(tmp_path):
    stats = ImbalanceStatistics(num_classes=2)
    (tmp_path / "empty.json").write_text(json.dumps({"training": []}))
    with pytest.raises(ValueError, match="datalist is empty"):
        stats.run(tmp_path / "empty.json", progress=False)
    (tmp_path / "missing.json").write_text(json.dumps({"training": [{"label": "nope.png"}]}))
    with pytest.raises(FileNotFoundError, match="nope.png"):
        stats.run(tmp_path / "missing.json", progress=False)
    with pytest.raises(ValueError, match="has no key 'label'"):
        stats.run([{"seg": "x.png"}], progress=False)
    with pytest.raises(ValueError, match=r"label #0 has non-integer values"):
        stats.update(np.array([[0.0, 0.5]]))
    with pytest.raises(ValueError, match="has value 4 but num_classes=2"):
        stats.run([np.array([[0, 4]])], progress=False)
    with pytest.raises(ValueError, match="no label was added"):
        ImbalanceStatistics().compute()
    with pytest.raises(FileNotFoundError, match="not found"):
        stats.run(tmp_path / "nothing_here", progress=False)
    with pytest.raises(ValueError, match="must be 2-D or 3-D"):
        stats.update(np.zeros(5))


def _colour_masks(folder, shades):
    from PIL import Image

    folder.mkdir(parents=True)
    for i in range(2):
        rgb = np.zeros((32, 32, 3), dtype=np.uint8)
        rgb[8:20, 8:20, 0] = 255  # red on black
        for k, shade in enumerate(shades):  # anti-aliased edge: darker reds
            rgb[20 + k, 8:20, 0] = shade
        Image.fromarray(rgb).save(folder / f"m{i}.png")
    return folder


def test_stats_on_a_red_on_black_png_mask_with_shades_fails_naming_the_file(tmp_path, capsys):
    from monai_imbalance.cli import main

    folder = _colour_masks(tmp_path / "shaded", shades=(200, 120, 60))
    assert main(["stats", "--folder", str(folder)]) == 1  # it used to report 77 classes and exit 0
    err = capsys.readouterr().err
    assert "m0.png is a colour mask with 5 colours" in err and "class indices cannot be read from colours" in err
    # with a number, any channel brighter than it is foreground: 12x12 square plus the 200 and 120 rows
    assert main(["stats", "--folder", str(folder), "--threshold", "100", "--json", str(tmp_path / "s.json")]) == 0
    report = json.loads((tmp_path / "s.json").read_text())
    assert report["num_classes"] == 2
    assert report["classes"][1]["pixels"] == 2 * (144 + 24)


def test_one_colour_on_black_is_read_as_a_binary_mask_and_palette_masks_by_index(tmp_path):
    from PIL import Image

    from monai_imbalance.apps.io import load_label_file

    folder = _colour_masks(tmp_path / "plain", shades=())
    label = load_label_file(folder / "m0.png")
    assert label.dtype == np.uint8 and set(np.unique(label)) == {0, 1} and int(label.sum()) == 144
    indices = np.zeros((16, 16), dtype=np.uint8)
    indices[:4], indices[4:6] = 1, 2
    palette = Image.fromarray(indices, mode="P")
    palette.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0] + [0] * (253 * 3))  # black, red, green
    palette.save(tmp_path / "p.png")
    assert np.array_equal(load_label_file(tmp_path / "p.png", threshold=None), indices)
    grey_rgb = np.repeat((indices * 100)[..., None], 3, axis=-1)
    Image.fromarray(grey_rgb).save(tmp_path / "g.png")
    assert np.array_equal(load_label_file(tmp_path / "g.png", threshold=None), indices * 100)  # grey stored as RGB


def test_report_prints_the_object_size_quartiles_the_object_metrics_bin_by():
    from monai_imbalance.metrics import compute_object_metrics

    label = np.zeros((2, 20, 20), np.int64)
    label[0, 0, 0] = 1  # sizes 1 and 4 in image 0, 9 and 16 in image 1
    label[0, 5:7, 5:7] = 1
    label[1, 0:3, 0:3] = 1
    label[1, 10:14, 10:14] = 1
    stats = ImbalanceStatistics(num_classes=2)
    for image in label:
        stats.update(image)
    report = stats.compute()
    text = str(report)
    # numpy's linear percentiles of (1, 4, 9, 16): 3.25, 6.5, 10.75
    assert "object sizes in pixels" in text and "1 / 3.25 / 6.5 / 10.75 / 16" in text
    y = torch.as_tensor(label[:, None], dtype=torch.float32)
    assert compute_object_metrics(y, y)[1]["size_bins"] == [3.25, 6.5, 10.75]
    assert report.object_size_bins() == {1: [3.25, 6.5, 10.75]}
    pred = y.clone()
    pred[0, 0, 0, 0] = 0  # the one-pixel object missed: the smallest bin (<= 3.25) holds it alone
    r = compute_object_metrics(pred, y, size_bins=report.object_size_bins())[1]
    assert r["bin_objects"] == [1, 1, 1, 1] and r["small_recall"] == 0.0


# ------------------------------------------------------------------------------ deep supervision: objects lost


def _three_objects():
    """64x64: a one-pixel object at (5, 5), a 3x3 one at rows/cols 20..22, a 20x20 one at 30..49."""
    label = np.zeros((64, 64), np.uint8)
    label[5, 5] = 1
    label[20:23, 20:23] = 1
    label[30:50, 30:50] = 1
    return label


def test_objects_lost_by_deep_supervision_rules_on_a_hand_case():
    # by hand, cells of f x f pixels at f = 2, 4, 8, 16; nearest-exact samples pixel i f + f / 2 per axis:
    # - the pixel (5, 5): odd, sampled at 1/2 only; 1 of >= 4 pixels of its cell: area never keeps it
    # - the 3x3 block (20..22): sampled at 21 (1/2), 22 (1/4), 20 (1/8), not at 1/16 (8, 24, ...); area: a full cell
    #   at 1/2, 9 of 16 at 1/4, 9 of 64 at 1/8
    # - the 20x20 block always holds a sampled pixel and a full 16x16 cell (32..47)
    # max keeps every object of a binary label
    stats = ImbalanceStatistics(num_classes=2)
    stats.update(_three_objects())
    stats.update(np.zeros((64, 64), np.uint8))  # no object: adds nothing
    report = stats.compute()
    assert report.deep_supervision == {
        "factors": [2, 4, 8, 16],
        "area_threshold": 0.5,
        "objects": 3,
        "objects_lost": {"nearest": [0, 1, 1, 2], "max": [0, 0, 0, 0], "area": [1, 1, 2, 2]},
    }
    assert json.loads(report.to_json())["deep_supervision"]["objects_lost"]["area"] == [1, 1, 2, 2]
    text = str(report)
    assert "deep supervision: objects lost when the label is downsampled to 1/2, 1/4, 1/8, 1/16 resolution" in text
    assert "  nearest     0/3, 1/3, 1/3, 2/3" in text
    assert "  max         0/3, 0/3, 0/3, 0/3" in text
    assert "  area >= 0.5 1/3, 1/3, 2/3, 2/3" in text
    assert any(s.startswith("Deep supervision: nearest-neighbour targets (MONAI's DeepSupervisionLoss) lose 2 of 3 "
                            "objects at 1/16 resolution, target_mode='max'") for s in report.suggestions)


def test_max_loses_an_object_only_to_a_larger_object_of_another_class_in_its_cells():
    # 16x16: class 1 at (0, 0), class 2 at (0, 1), (1, 0), (1, 1) (one component; classes never join)
    label = np.zeros((16, 16), np.uint8)
    label[0, 0] = 1
    label[0, 1] = label[1, 0] = label[1, 1] = 2
    report = ImbalanceStatistics(num_classes=3, ds_levels=2).run([label], progress=False)
    ds = report.deep_supervision
    assert ds["factors"] == [2, 4] and ds["objects"] == 2
    # 1/2: cell (0, 0) has class 1 x1, class 2 x3 -> 2 under max and area (3/4); nearest samples (1, 1) = 2
    # 1/4: cell [0, 4)^2 -> 2 under max; area 3/16 -> background; nearest samples (2, 2) = background
    assert ds["objects_lost"] == {"nearest": [1, 2], "max": [1, 1], "area": [1, 2]}


def test_objects_lost_on_a_non_divisible_size():
    # 15 -> 8 at 1/2: cells [0, 2), [1, 4), [3, 6), ... (two cells over odd pixels); nearest-exact samples
    # floor((i + 0.5) 15 / 8) = 0, 2, 4, ..., 14: the even pixels
    label = np.zeros((15, 15), np.uint8)
    label[3, 3] = 1  # odd: missed by nearest
    label[8, 12] = 1  # even: sampled
    report = ImbalanceStatistics(num_classes=2, ds_levels=1).run([label], progress=False)
    assert report.deep_supervision["objects_lost"] == {"nearest": [1], "max": [0], "area": [2]}


def _brute_force_lost(label, levels, connectivity=None):
    """Per level and rule: objects with no low-res cell of their class among the cells whose adaptive window (python
    loops over every cell) holds one of their pixels."""
    from monai_imbalance.losses.deep_supervision import downsample_label

    out = {rule: [] for rule in ("nearest", "max", "area")}
    objects = []
    for value in range(1, int(label.max()) + 1):
        cc = sk_label(label == value, connectivity=connectivity or label.ndim)
        objects += [(value, cc == i) for i in range(1, cc.max() + 1)]
    for level in range(1, levels + 1):
        size = tuple(-(-s // 2**level) for s in label.shape)
        windows = [[range(i * n // m, -(-(i + 1) * n // m)) for i in range(m)] for n, m in zip(label.shape, size)]
        for rule in out:
            low = downsample_label(torch.as_tensor(label)[None, None], size, mode=rule)[0, 0].numpy()
            lost = 0
            for value, mask in objects:
                kept = any(
                    low[cell] == value and mask[np.ix_(*[list(windows[a][i]) for a, i in enumerate(cell)])].any()
                    for cell in itertools.product(*[range(m) for m in size])
                )
                lost += not kept
            out[rule].append(lost)
    return out, len(objects)


@pytest.mark.parametrize("size, num_classes, connectivity", [((23, 17), 4, None), ((23, 17), 3, 1),
                                                              ((9, 10, 7), 3, None)])
def test_objects_lost_equal_a_brute_force_over_every_cell(size, num_classes, connectivity):
    pairs = make_synthetic_dataset(3, seed=7, spatial_size=size, num_classes=num_classes, shape="mixed",
                                   fg_fraction=0.08)
    levels = 3
    stats = ImbalanceStatistics(num_classes=num_classes, connectivity=connectivity, ds_levels=levels)
    expected = {rule: np.zeros(levels, np.int64) for rule in ("nearest", "max", "area")}
    objects = 0
    for p in pairs:
        label = p["label"][0].astype(np.int64)
        stats.update(label)
        lost, n = _brute_force_lost(label, levels, connectivity)
        objects += n
        for rule in expected:
            expected[rule] += lost[rule]
    ds = stats.compute().deep_supervision
    assert ds["objects"] == objects > 0
    assert ds["objects_lost"] == {rule: v.tolist() for rule, v in expected.items()}


def test_ds_levels_zero_disables_and_bad_values_raise():
    report = ImbalanceStatistics(num_classes=2, ds_levels=0).run([_three_objects()], progress=False)
    assert report.deep_supervision is None and "deep supervision" not in str(report)
    assert json.loads(report.to_json())["deep_supervision"] is None
    for bad in (-1, 1.5, True):
        with pytest.raises(ValueError, match="ds_levels must be an integer >= 0"):
            ImbalanceStatistics(ds_levels=bad)
    from monai_imbalance.stats import summarise_label

    stats = ImbalanceStatistics(num_classes=2, ds_levels=2)
    with pytest.raises(ValueError, match=r"counts for 4 levels but ds_levels=2: compute it with summarise_label"):
        stats.add_summary(summarise_label(_three_objects(), 2))
    stats.add_summary(summarise_label(_three_objects(), 2, ds_levels=2))
    assert stats.compute().deep_supervision["objects_lost"]["nearest"] == [0, 1]


def test_cli_stats_ds_levels_option(tmp_path, capsys):
    from monai_imbalance.cli import main

    np.save(tmp_path / "a.npy", _three_objects())
    assert main(["stats", "--folder", str(tmp_path), "--ds-levels", "2", "--json", str(tmp_path / "s.json"),
                 "--no-progress"]) == 0
    assert "  area >= 0.5 1/3, 1/3" in capsys.readouterr().out
    ds = json.loads((tmp_path / "s.json").read_text())["deep_supervision"]
    assert ds["factors"] == [2, 4] and ds["objects_lost"]["nearest"] == [0, 1]
    assert main(["stats", "--folder", str(tmp_path), "--ds-levels", "0", "--json", str(tmp_path / "s.json"),
                 "--no-progress"]) == 0
    assert json.loads((tmp_path / "s.json").read_text())["deep_supervision"] is None
    assert main(["stats", "--folder", str(tmp_path), "--ds-levels", "-1", "--no-progress"]) == 1
    assert "ds_levels must be an integer >= 0" in capsys.readouterr().err


@pytest.mark.parametrize("shape", [(23, 17), (64, 48), (9, 10, 7), (16, 12, 20)])
def test_sparse_cell_labels_equal_downsample_label(shape):
    # the statistics count the "max" and "area" cells from the foreground pixels; the loss pools the one-hot
    import torch

    from monai_imbalance.losses.deep_supervision import downsample_label
    from monai_imbalance.stats import _pixel_cells, _pooled_cell_labels

    rng = np.random.default_rng(len(shape) + shape[0])
    label = (rng.integers(1, 4, shape) * (rng.random(shape) < 0.2)).astype(np.uint8)
    index = np.flatnonzero(label)
    coords = np.unravel_index(index, shape)
    for level in (1, 2, 3):
        size = tuple(-(-s // 2**level) for s in shape)
        ours = _pooled_cell_labels(shape, size, _pixel_cells(shape, size, coords), label.reshape(-1)[index], 0.5)
        tensor = torch.from_numpy(label)[None, None]
        for rule in ("max", "area"):
            expected = downsample_label(tensor, size, mode=rule, area_threshold=0.5).numpy().reshape(-1)
            np.testing.assert_array_equal(ours[rule], expected)
