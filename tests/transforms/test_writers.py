"""Writers of predictions like their inputs: binary masks in the input image's format and axes, label volumes as
NIfTI with the input's affine and header or as h5 of the input's shape."""

from __future__ import annotations

import h5py
import nibabel as nib
import numpy as np
import pytest
import torch
from monai.transforms import LoadImaged
from PIL import Image

from monai_imbalance.transforms import (
    LoadArrayd,
    LoadBinaryMaskd,
    SaveLabelVolumeLikeInputD,
    SaveLabelVolumeLikeInputd,
    SaveMaskLikeInputd,
    SaveMaskLikeInputDict,
)

pytestmark = pytest.mark.filterwarnings("ignore:builtin type .* has no __module__ attribute")  # ITK's SWIG types



@pytest.mark.parametrize("suffix", [".jpg", ".png", ".tif"])
def test_mask_writer_keeps_the_input_axes_and_format(tmp_path, suffix):
    mask = np.zeros((30, 47), dtype=np.uint8)  # H x W, not square, not symmetric
    mask[3:12, 5:40] = 255
    mask[20:28, 2:6] = 255
    src = tmp_path / f"frame{suffix}"
    Image.fromarray(np.repeat(mask[..., None], 3, -1)).save(src, **({"quality": 100} if suffix == ".jpg" else {}))
    data = LoadImaged("image", image_only=True, ensure_channel_first=True)({"image": str(src)})
    data["pred"] = LoadBinaryMaskd("label")({"label": str(src)})["label"].float()
    out = SaveMaskLikeInputd("pred", tmp_path / "out", meta_source_key="image")(data)
    with Image.open(out["pred_path"]) as saved:
        assert saved.size == (47, 30) and out["pred_path"].endswith(f"frame_mask{suffix}")
        np.testing.assert_array_equal(np.asarray(saved) > 127, mask > 127)


def test_label_volumes_written_like_their_inputs(tmp_path):
    affine = np.array([[0, -1.5, 0, 10], [1.4, 0, 0, -3], [0, 0, 8.0, 2], [0, 0, 0, 1]])
    nib.save(nib.Nifti1Image(np.random.default_rng(0).random((7, 5, 3)).astype(np.float32), affine),
             str(tmp_path / "patient001_frame01.nii.gz"))
    with h5py.File(tmp_path / "case0001.npy.h5", "w") as f:
        f.create_dataset("image", data=np.zeros((3, 7, 5), np.float32))
    nifti = LoadImaged("image", reader="NibabelReader", image_only=True, ensure_channel_first=True)(
        {"image": str(tmp_path / "patient001_frame01.nii.gz")})
    h5 = LoadArrayd("image")({"image": str(tmp_path / "case0001.npy.h5")})
    labels = torch.randint(0, 4, (1, 7, 5, 3)).float()
    writer = SaveLabelVolumeLikeInputd("pred", tmp_path / "out")
    out = writer({**nifti, "pred": labels})
    saved = nib.load(out["pred_path"])
    assert out["pred_path"].endswith("patient001_frame01_pred.nii.gz")
    np.testing.assert_allclose(saved.affine, affine)
    assert saved.get_data_dtype() == np.uint8
    np.testing.assert_array_equal(np.asanyarray(saved.dataobj), labels[0].numpy().astype(np.uint8))
    out = writer({**h5, "pred": labels.permute(0, 3, 1, 2)})
    with h5py.File(out["pred_path"]) as f:
        assert out["pred_path"].endswith("case0001_pred.npy.h5") and f["label"].shape == (3, 7, 5)
        np.testing.assert_array_equal(f["label"][()], labels[0].permute(2, 0, 1).numpy().astype(np.uint8))
    with pytest.raises(ValueError, match="differs"):
        writer({**nifti, "pred": labels[..., :2]})
    with pytest.raises(ValueError, match="one-channel"):
        writer({**nifti, "pred": torch.zeros(2, 7, 5, 3)})


def test_nifti_output_keeps_the_input_header_codes(tmp_path):
    """The input's qform/sform codes survive (MONAI's NibabelWriter would set both to 1), so an input whose codes
    are 1 gives the same header as MONAI's writer would, and others keep theirs."""
    data = np.zeros((4, 3, 2), np.int16)
    for codes in ((1, 1), (0, 2), (1, 0)):
        image = nib.Nifti1Image(data, np.diag([1.5, 1.5, 10.0, 1.0]))
        image.set_qform(image.affine, code=codes[0])
        image.set_sform(image.affine if codes[1] else None, code=codes[1])
        src = tmp_path / f"q{codes[0]}s{codes[1]}.nii"
        nib.save(image, str(src))
        loaded = LoadImaged("image", reader="NibabelReader", image_only=True, ensure_channel_first=True)(
            {"image": str(src)})
        out = SaveLabelVolumeLikeInputd("pred", tmp_path / "out", output_postfix="")({**loaded,
                                                                                        "pred": torch.ones(1, 4, 3, 2)})
        saved = nib.load(out["pred_path"])
        assert out["pred_path"].endswith(f"q{codes[0]}s{codes[1]}.nii")
        assert (int(saved.header["qform_code"]), int(saved.header["sform_code"])) == codes
        np.testing.assert_array_equal(np.asanyarray(saved.dataobj), np.ones((4, 3, 2), np.uint8))


def test_dictionary_aliases():
    assert SaveLabelVolumeLikeInputD is SaveLabelVolumeLikeInputd and SaveMaskLikeInputDict is SaveMaskLikeInputd
