from __future__ import annotations

import random

import pytest
from monai.data import partition_dataset

from monai_imbalance.apps.splits import (
    fixed_split,
    holdout_split,
    items_by_ids,
    kfold_partitions,
    kfold_split,
    natural_key,
    read_id_list,
)

IDS = [f"id{i:04d}" for i in range(1000)]


def test_kfold_folds_are_disjoint_cover_everything_and_balanced():
    folds = kfold_partitions(IDS, num_folds=5, seed=0)
    assert len(folds) == 5
    flat = [i for fold in folds for i in fold]
    assert sorted(flat) == IDS and len(set(flat)) == 1000
    assert [len(f) for f in folds] == [200] * 5
    odd = kfold_partitions(IDS[:23], num_folds=5, seed=3)
    assert sorted(len(f) for f in odd) == [4, 4, 5, 5, 5]


def test_kfold_is_deterministic_order_independent_and_seeded():
    shuffled = IDS[:]
    random.Random(1).shuffle(shuffled)
    assert kfold_partitions(shuffled, 5, seed=7) == kfold_partitions(IDS, 5, seed=7)
    assert kfold_partitions(IDS, 5, seed=7) != kfold_partitions(IDS, 5, seed=8)
    # the folds are MONAI's partition_dataset of the sorted ids (then sorted inside each fold)
    expected = [sorted(p) for p in partition_dataset(IDS, num_partitions=5, shuffle=True, seed=7)]
    assert kfold_partitions(IDS, 5, seed=7) == expected


def test_kfold_split_train_and_val_complement_each_other():
    vals = []
    for fold in range(5):
        train, val = kfold_split(IDS, fold, 5, seed=2)
        assert not set(train) & set(val) and len(train) + len(val) == 1000
        vals.extend(val)
    assert sorted(vals) == IDS
    with pytest.raises(ValueError, match="fold must be in"):
        kfold_split(IDS, 5, 5)
    with pytest.raises(ValueError, match="cannot make 5 folds from 3"):
        kfold_partitions(IDS[:3], 5)
    with pytest.raises(ValueError, match="duplicate"):
        kfold_partitions(["a", "a", "b", "c", "d", "e"], 2)


def test_holdout_gives_exact_counts_and_is_seeded():
    train, val = holdout_split(IDS, (880, 120), seed=0)
    assert (len(train), len(val)) == (880, 120) and not set(train) & set(val)
    assert holdout_split(IDS, (880, 120), seed=0) == [train, val]
    assert holdout_split(IDS, (880, 120), seed=1)[1] != val
    parts = holdout_split(IDS[:10], (0.7, 0.1, 0.2), seed=0)
    assert [len(p) for p in parts] == [7, 1, 2] and sorted(sum(parts, [])) == IDS[:10]
    with pytest.raises(ValueError, match="sizes"):
        holdout_split(IDS, (1,))


def test_fixed_split_assigns_lists_and_names_problems():
    got = fixed_split(["a", "b", "c", "d"], {"test": ["b", "z"]}, rest="training")
    assert got == {"test": ["b"], "training": ["a", "c", "d"]}
    with pytest.raises(ValueError, match=r"1 listed id\(s\) are missing: \['z'\]"):
        fixed_split(["a", "b"], {"test": ["b", "z"]}, rest="training", require_all=True)
    with pytest.raises(ValueError, match="in both"):
        fixed_split(["a"], {"x": ["a"], "y": ["a"]})
    with pytest.raises(ValueError, match=r"in none of the lists.*'c'"):
        fixed_split(["a", "c"], {"x": ["a"]})


def test_read_id_list_accepts_names_paths_and_suffixes(tmp_path):
    path = tmp_path / "train.txt"
    path.write_text("# comment\nimages/a.jpg masks/a.jpg\nb\n\nc.png, d\ncase0001.npy.h5\npatient001_frame01.nii.gz\n")
    assert read_id_list(path) == ["a", "b", "c", "d", "case0001", "patient001_frame01"]
    with pytest.raises(FileNotFoundError, match="split list not found"):
        read_id_list(tmp_path / "nope.txt")


def test_natural_key_and_items_by_ids():
    assert sorted(["10", "9", "100", "1"], key=natural_key) == ["1", "9", "10", "100"]
    assert sorted(["case10_slice2", "case2_slice10", "case2_slice9"], key=natural_key) == [
        "case2_slice9", "case2_slice10", "case10_slice2"]
    items = [{"id": "a", "image": "x"}, {"id": "b", "image": "y"}, {"id": "c", "image": "z"}]
    out = items_by_ids(items, {"training": ["c", "a"], "test": ["b"]})
    assert [i["id"] for i in out["training"]] == ["a", "c"] and [i["id"] for i in out["test"]] == ["b"]
    out["training"][0]["image"] = "changed"
    assert items[0]["image"] == "x"  # copies, not the caller's dicts
