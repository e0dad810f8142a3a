"""Loader transforms: arrays of npz/npy/h5 files (labels checked and cast, spacing into the affine), binary masks read
as grey and thresholded with the image's axes, a 2-D slice of a volume keeping its in-plane geometry, volume file
names; and the deprecated import path ``monai_imbalance.apps.loaders``."""

from __future__ import annotations

import inspect
import warnings

import h5py
import numpy as np
import pytest
import torch
from monai.data import MetaTensor
from monai.transforms import LoadImaged
from PIL import Image

from monai_imbalance.transforms import (
    ExtractSliceD,
    ExtractSliced,
    LoadArrayd,
    LoadArrayDict,
    LoadBinaryMaskd,
    read_array,
    split_volume_name,
)

pytestmark = pytest.mark.filterwarnings("ignore:builtin type .* has no __module__ attribute")  # ITK's SWIG types



def test_load_array_reads_npz_npy_and_h5(tmp_path):
    image = np.random.default_rng(0).random((5, 6)).astype(np.float32)
    label = np.array([[0, 1, 2, 0, 0, 1]] * 5, dtype=np.float32)  # Synapse stores labels as float
    np.savez(tmp_path / "case0005_slice012.npz", image=image, label=label)
    with h5py.File(tmp_path / "case0001.npy.h5", "w") as f:
        f.create_dataset("image", data=np.stack([image] * 3))
        f.create_dataset("label", data=np.stack([label] * 3))
    np.save(tmp_path / "seg.npy", label)
    d = LoadArrayd(["image", "label"])({"image": str(tmp_path / "case0005_slice012.npz"),
                                        "label": str(tmp_path / "case0005_slice012.npz"), "spacing": [3.0, 0.8, 0.7]})
    assert isinstance(d["image"], MetaTensor) and d["image"].shape == (1, 5, 6) and d["image"].dtype == torch.float32
    assert d["label"].dtype == torch.int64 and torch.equal(d["label"][0], torch.as_tensor(label).long())
    np.testing.assert_allclose(np.diag(d["image"].affine.numpy()), [0.8, 0.7, 1.0])  # the last 2 of the spacing
    assert d["image"].meta["filename_or_obj"].endswith(".npz")
    v = LoadArrayd(["image", "label"])({"image": str(tmp_path / "case0001.npy.h5"),
                                        "label": str(tmp_path / "case0001.npy.h5")})
    assert v["image"].shape == (1, 3, 5, 6) and torch.equal(v["image"].affine, torch.eye(4, dtype=torch.float64))
    npy = LoadArrayd("seg", label_keys=["seg"], array_names={"seg": "ignored"}, ensure_channel_first=False)(
        {"seg": str(tmp_path / "seg.npy")})
    assert npy["seg"].shape == (5, 6)
    np.testing.assert_array_equal(read_array(tmp_path / "case0001.npy.h5", "image")[1], image)


def test_load_array_rejects_bad_files_and_labels(tmp_path):
    np.savez(tmp_path / "a.npz", image=np.zeros((2, 2), np.float32), label=np.full((2, 2), 0.5, np.float32))
    with pytest.raises(ValueError, match="no array named 'mask'"):
        read_array(tmp_path / "a.npz", "mask")
    with pytest.raises(FileNotFoundError):
        read_array(tmp_path / "missing.h5", "image")
    (tmp_path / "a.txt").write_text("x")
    with pytest.raises(ValueError, match="unsupported array file"):
        read_array(tmp_path / "a.txt", "image")
    with pytest.raises(ValueError):
        LoadArrayd("label")({"label": str(tmp_path / "a.npz")})  # 0.5 is not a whole number


@pytest.mark.parametrize("suffix, values", [(".png", (0, 255)), (".png", (0, 1)), (".jpg", (0, 255))])
def test_binary_masks_are_thresholded_with_the_image_axes(tmp_path, suffix, values):
    mask = np.zeros((9, 14), dtype=np.uint8)  # H x W, not square
    mask[2:6, 3:11] = 1
    path = tmp_path / f"m{suffix}"
    grey = np.where(mask > 0, values[1], values[0]).astype(np.uint8)
    picture = Image.fromarray(np.repeat(grey[..., None], 3, -1) if suffix == ".jpg" else grey)
    picture.save(path, **({"quality": 100} if suffix == ".jpg" else {}))
    image = LoadImaged("image", image_only=True, ensure_channel_first=True)({"image": str(path)})["image"]
    loaded = LoadBinaryMaskd("label")({"label": str(path)})["label"]
    assert loaded.dtype == torch.uint8 and loaded.shape == (1, *image.shape[1:])
    assert set(torch.unique(loaded).tolist()) <= {0, 1}
    np.testing.assert_array_equal(loaded[0].numpy(), mask.T)  # PILReader's (W, H) order, as the image


def test_extract_slice_keeps_the_in_plane_geometry():
    affine = torch.tensor([[1.5, 0, 0, 10], [0, 1.2, 0, -4], [0, 0, 8.0, 2], [0, 0, 0, 1]], dtype=torch.float64)
    volume = MetaTensor(torch.arange(2 * 3 * 4 * 5, dtype=torch.float32).reshape(2, 3, 4, 5), affine=affine)
    out = ExtractSliced(["image"], slice_key="slice")({"image": volume, "slice": 3})
    plane = out["image"]
    assert plane.shape == (2, 3, 4) and torch.equal(plane.as_tensor(), volume.as_tensor()[..., 3])
    np.testing.assert_allclose(plane.affine.numpy(), [[1.5, 0, 10], [0, 1.2, -4], [0, 0, 1]])
    assert plane.meta["slice_index"] == 3
    along_x = ExtractSliced("image", axis=0)({"image": volume, "slice": 1})["image"]
    np.testing.assert_allclose(along_x.affine.numpy(), [[1.2, 0, -4], [0, 8.0, 2], [0, 0, 1]])
    with pytest.raises(ValueError, match="outside"):
        ExtractSliced("image")({"image": volume, "slice": 5})
    with pytest.raises(KeyError, match="slice"):
        ExtractSliced("image")({"image": volume})
    with pytest.raises(ValueError, match="3-D"):
        ExtractSliced("image")({"image": volume[0], "slice": 0})


def test_volume_names_and_aliases():
    assert split_volume_name("/d/case0001.npy.h5") == ("case0001", ".npy.h5")
    assert split_volume_name("patient001_frame01.NII.GZ") == ("patient001_frame01", ".NII.GZ")
    assert split_volume_name("img.png") == ("img", ".png")
    assert LoadArrayDict is LoadArrayd and ExtractSliceD is ExtractSliced


def test_deprecated_apps_loaders_path_still_works():
    import monai_imbalance.apps.loaders as loaders

    for name in loaders.__all__:
        with pytest.warns(DeprecationWarning, match=f"monai_imbalance.transforms.{name}"):
            moved = getattr(loaders, name)
        import monai_imbalance.transforms as transforms

        assert moved is getattr(transforms, name)
    with pytest.warns(DeprecationWarning):
        from monai_imbalance.apps.loaders import LoadBinaryMaskd as old  # noqa: F401
    with warnings.catch_warnings():  # scanning the module (MONAI's ComponentLocator does) does not warn
        warnings.simplefilter("error", DeprecationWarning)
        inspect.getmembers(loaders)
    with pytest.raises(AttributeError):
        loaders.NoSuchTransform  # noqa: B018
