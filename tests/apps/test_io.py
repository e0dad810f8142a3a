from __future__ import annotations

import h5py
import nibabel as nib
import numpy as np
import pytest
from PIL import Image

from monai_imbalance.apps.io import find_label_files, load_label_file


def test_png_0_255_auto_binarised_and_multiclass_png_kept(tmp_path):
    Image.fromarray(np.array([[0, 255], [255, 0]], dtype=np.uint8)).save(tmp_path / "m.png")
    np.testing.assert_array_equal(load_label_file(tmp_path / "m.png"), [[0, 1], [1, 0]])
    np.testing.assert_array_equal(load_label_file(tmp_path / "m.png", threshold=None), [[0, 255], [255, 0]])
    Image.fromarray(np.array([[0, 1], [2, 8]], dtype=np.uint8)).save(tmp_path / "c.png")
    np.testing.assert_array_equal(load_label_file(tmp_path / "c.png"), [[0, 1], [2, 8]])


def test_rgb_jpeg_mask_read_as_grey_and_thresholded(tmp_path):
    mask = np.zeros((32, 32), dtype=np.uint8)
    mask[5:22, 7:20] = 255  # edges off the 8x8 JPEG blocks, so compression rings
    Image.fromarray(np.repeat(mask[..., None], 3, -1)).save(tmp_path / "m.jpg", quality=75)
    raw = load_label_file(tmp_path / "m.jpg", threshold=None)
    assert raw.ndim == 2 and len(np.unique(raw)) > 2  # compression noise is really there
    np.testing.assert_array_equal(load_label_file(tmp_path / "m.jpg"), mask > 127)


def test_nifti_npz_h5_npy(tmp_path):
    vol = np.zeros((4, 5, 6), dtype=np.float32)
    vol[1, 2, 3] = 2
    nib.save(nib.Nifti1Image(vol, np.eye(4)), str(tmp_path / "v.nii.gz"))
    np.testing.assert_array_equal(load_label_file(tmp_path / "v.nii.gz"), vol)
    nib.save(nib.Nifti1Image(vol[:, :, :1], np.eye(4)), str(tmp_path / "s.nii"))
    assert load_label_file(tmp_path / "s.nii").shape == (4, 5)
    np.savez(tmp_path / "case0005_slice010.npz", image=vol[0], label=vol[1])
    np.testing.assert_array_equal(load_label_file(tmp_path / "case0005_slice010.npz"), vol[1])
    with h5py.File(tmp_path / "p.h5", "w") as f:
        f["image"] = vol
        f["label"] = vol.astype(np.uint8)
    np.testing.assert_array_equal(load_label_file(tmp_path / "p.h5"), vol)
    np.save(tmp_path / "a.npy", vol)
    np.testing.assert_array_equal(load_label_file(tmp_path / "a.npy"), vol)


def test_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.png"):
        load_label_file(tmp_path / "missing.png")
    (tmp_path / "broken.png").write_bytes(b"not a png at all")
    with pytest.raises(ValueError, match="could not read label file .*broken.png"):
        load_label_file(tmp_path / "broken.png")
    (tmp_path / "x.txt").write_text("hi")
    with pytest.raises(ValueError, match="unsupported label format '.txt'"):
        load_label_file(tmp_path / "x.txt")
    with h5py.File(tmp_path / "q.h5", "w") as f:
        f["image"] = np.zeros(3)
    with pytest.raises(ValueError, match=r"no dataset named 'label'.*\['image'\]"):
        load_label_file(tmp_path / "q.h5")


def test_find_label_files(tmp_path):
    for name in ("b.png", "a.nii.gz", "LICENSE.txt", "c.jpg"):
        (tmp_path / name).write_bytes(b"")
    assert [p.name for p in find_label_files(tmp_path)] == ["a.nii.gz", "b.png", "c.jpg"]
    with pytest.raises(FileNotFoundError):
        find_label_files(tmp_path / "nope")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="no label files"):
        find_label_files(empty)
