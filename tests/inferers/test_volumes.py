"""Slice-by-slice inference of volumes: slices restacked in place, resized in-plane and back as TransUNet does, the same
labels as the implementation before it was built on MONAI's ``SliceInferer`` (random volumes), and the volume files
to run it on."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from monai.data import MetaTensor

import monai_imbalance.inferers.volumes as volumes
from monai_imbalance.inferers import SliceBySliceInferer, volume_format, volume_items


def _reference(inferer: SliceBySliceInferer, inputs: torch.Tensor, network, *args, **kwargs) -> torch.Tensor:
    """The inferer as written before it used ``SliceInferer``: the volume reshaped into planes, ``sw_batch_size``
    planes per forward pass, the labels reshaped back (the test oracle for the rewrite)."""
    x = inputs.as_tensor() if isinstance(inputs, MetaTensor) else torch.as_tensor(inputs)
    axis = 2 + inferer.spatial_dim
    vol = x.movedim(axis, 2)
    batch, channels, num_slices, a, b = vol.shape
    planes = vol.permute(0, 2, 1, 3, 4).reshape(batch * num_slices, channels, a, b)
    if inferer.transpose:
        planes = planes.transpose(-1, -2)
    labels = torch.empty((batch * num_slices, *planes.shape[-2:]), dtype=torch.float32, device=x.device)
    for start in range(0, planes.shape[0], inferer.sw_batch_size):
        stop = start + inferer.sw_batch_size
        labels[start:stop] = inferer._predict(planes[start:stop], network, *args, **kwargs).to(labels.device)
    if inferer.transpose:
        labels = labels.transpose(-1, -2)
    return labels.reshape(batch, num_slices, a, b).unsqueeze(1).movedim(2, axis).contiguous()


@pytest.mark.parametrize("spatial_dim", [0, 1, 2])
@pytest.mark.parametrize("transpose", [False, True])
def test_inferer_restacks_slices_in_place(spatial_dim, transpose, oracle_network):
    labels = torch.randint(0, 3, (2, 1, 5, 6, 7)).float()
    net = oracle_network()
    out = SliceBySliceInferer(spatial_dim=spatial_dim, transpose=transpose, sw_batch_size=4)(labels, net)
    assert torch.equal(out, labels)
    num_slices = labels.shape[2 + spatial_dim] * 2
    assert len(net.seen) == math.ceil(num_slices / 4) and sum(s[0] for s in net.seen) == num_slices
    in_plane = [n for d, n in enumerate(labels.shape[2:]) if d != spatial_dim]
    assert list(net.seen[0][2:]) == (in_plane[::-1] if transpose else in_plane)


def test_inferer_resizes_in_plane_and_back(oracle_network):
    labels = torch.randint(0, 3, (1, 1, 3, 8, 8)).float()
    net = oracle_network()
    out = SliceBySliceInferer(spatial_dim=0, roi_size=(16, 16), mode="nearest-exact")(labels, net)
    assert all(s[2:] == (16, 16) for s in net.seen) and torch.equal(out, labels)  # nearest x2 and back: exact
    # TransUNet's procedure written slice by slice: resize the image, argmax, nearest back
    conv = torch.nn.Conv2d(1, 3, 3, padding=1).eval()
    image = torch.rand(1, 1, 4, 20, 12)
    with torch.no_grad():
        for resample in ("label", "logits"):
            got = SliceBySliceInferer(spatial_dim=0, roi_size=(16, 16), resample=resample, sw_batch_size=3)(image,
                                                                                                            conv)
            for k in range(4):
                logits = conv(F.interpolate(image[:, :, k], size=(16, 16), mode="bilinear", align_corners=False))
                if resample == "label":
                    want = F.interpolate(logits.argmax(1, keepdim=True).float(), size=(20, 12), mode="nearest-exact")
                else:
                    want = F.interpolate(logits, size=(20, 12), mode="bilinear",
                                         align_corners=False).argmax(1, keepdim=True).float()
                assert torch.equal(got[:, :, k], want)
    with pytest.raises(ValueError, match="3-D"):
        SliceBySliceInferer()(torch.zeros(1, 1, 8, 8), conv)
    with pytest.raises(ValueError, match="resample"):
        SliceBySliceInferer(resample="probabilities")


@pytest.mark.parametrize("spatial_dim, transpose", list(itertools.product([0, 1, 2], [False, True])))
def test_same_labels_as_before_on_random_volumes(spatial_dim, transpose):
    torch.manual_seed(spatial_dim + 3 * transpose)
    nets = [torch.nn.Sequential(torch.nn.Conv2d(2, 6, 3, padding=1), torch.nn.ReLU(),
                                torch.nn.Conv2d(6, 4, 3, padding=1)).eval(),
            torch.nn.Conv2d(2, 1, 3, padding=1).eval()]  # softmax-style and one-channel (logit > 0) outputs
    checked = 0
    with torch.no_grad():
        for roi, resample, sw_batch_size, mode in itertools.product(
                [None, (16, 16), (12, 20)], ["label", "logits"], [1, 3, 32], ["bicubic"]):
            x = torch.randn(2, 2, 5, 9, 7)
            for net in nets:
                inferer = SliceBySliceInferer(spatial_dim=spatial_dim, roi_size=roi, mode=mode,
                                              sw_batch_size=sw_batch_size, resample=resample, transpose=transpose)
                got, want = inferer(x, net), _reference(inferer, x, net)
                assert got.dtype == want.dtype == torch.float32 and got.is_contiguous()
                assert torch.equal(got, want), (roi, resample, sw_batch_size, mode)
                checked += 1
    assert checked == 3 * 2 * 3 * 2


def test_runs_through_monai_slice_inferer_and_keeps_the_contract(monkeypatch):
    calls = []

    class Counting(volumes.SliceInferer):
        def __call__(self, inputs, network, *args, **kwargs):
            calls.append((self.spatial_dim, self.sw_batch_size))
            return super().__call__(inputs, network, *args, **kwargs)

    monkeypatch.setattr(volumes, "SliceInferer", Counting)
    seen_kwargs = []

    def network(x, scale=1.0):
        seen_kwargs.append(scale)
        return torch.cat([-x, x], 1) * scale  # label 1 where the image is positive

    image = MetaTensor(torch.randn(1, 1, 3, 4, 5, dtype=torch.float64), meta={"filename_or_obj": "a.h5"})
    out = SliceBySliceInferer(spatial_dim=1, sw_batch_size=2)(image, network, scale=2.0)
    assert calls == [(1, 2)] and set(seen_kwargs) == {2.0}  # the network's extra arguments reach it
    assert type(out) is torch.Tensor and out.dtype == torch.float32  # a plain float32 tensor, as before
    assert torch.equal(out, (image.as_tensor() > 0).float())


def test_volume_items_and_format(tmp_path):
    for name in ("patient001_frame01.nii.gz", "patient001_frame01_gt.nii.gz", "patient001_4d.nii.gz", "Info.cfg"):
        (tmp_path / "patient001").mkdir(exist_ok=True)
        (tmp_path / "patient001" / name).write_bytes(b"")
    items = volume_items(tmp_path, recursive=True)
    assert [i["id"] for i in items] == ["patient001_frame01"] and volume_format(items) == "nifti"
    with pytest.raises(FileNotFoundError):
        volume_items(tmp_path)  # not recursive: no volume at the top
    assert volume_format([{"image": "a/case0001.npy.h5"}]) == "h5"
    with pytest.raises(ValueError, match="must all be h5 or all NIfTI"):
        volume_format([{"image": "a.h5"}, {"image": "b.nii.gz"}])


def test_volume_items_skip_slice_files_and_name_a_2d_file(tmp_path):
    import h5py

    from monai_imbalance.apps.lookalike import write_acdc_lookalike

    data = write_acdc_lookalike(tmp_path / "ACDC", form="h5", patients=[99, 28, 11], h5_set="minimal") / "data"
    items = volume_items(data)  # public copies keep the training slices beside the val/test volumes
    assert [it["id"] for it in items] == ["patient011_frame01", "patient011_frame02", "patient028_frame01",
                                          "patient028_frame02"]
    odd = data / "patient099_extra.h5"  # a 2-D file not named like a slice
    with h5py.File(odd, "w") as f:
        f.create_dataset("image", data=np.zeros((8, 8), np.float32))
    with pytest.raises(ValueError, match=r"patient099_extra\.h5 holds a 2-D image of shape \(8, 8\)"):
        volume_items(data)
    odd.unlink()
    with pytest.raises(ValueError, match="patient099_frame01_slice_1.h5 holds a 2-D image"):
        volume_items(data, skip_slices=False)
