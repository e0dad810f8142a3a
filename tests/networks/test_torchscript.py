"""The networks script with ``torch.jit.script`` (no tracing), as the MONAI model zoo exports every bundle with
``monai.bundle.ckpt_export``: the scripted module, saved and loaded, gives the eager ``eval()`` output on inputs of
two sizes, and takes the network's state dict unchanged."""

from __future__ import annotations

import json
from functools import partial

import pytest
import torch
from ignite.engine import Engine, Events
from monai.networks.nets.resnet import ResNetEncoder

from monai_imbalance.networks import BilinearUNet, DeepSupervisionFlexibleUNet, DeepSupervisionInference
from tests.bundles import BUNDLES, parse_bundle


def _randomize_norm_stats(net: torch.nn.Module) -> torch.nn.Module:
    """Non-default batch norm statistics, so that a buffer that is not saved, loaded or used shows in the output."""
    generator = torch.Generator().manual_seed(1)
    for module in net.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.running_mean.copy_(0.1 * torch.randn(module.running_mean.shape, generator=generator))
            module.running_var.copy_(1 + 0.2 * torch.rand(module.running_var.shape, generator=generator))
    return net


def _script_save_load(net: torch.nn.Module, tmp_path) -> torch.jit.ScriptModule:
    path = tmp_path / "model.ts"
    torch.jit.save(torch.jit.script(net), str(path))
    return torch.jit.load(str(path))


def _assert_same_outputs(eager: torch.nn.Module, scripted: torch.nn.Module, shapes) -> None:
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for shape in shapes:
            x = torch.randn(shape, generator=generator)
            expected = eager(x)
            assert isinstance(expected, torch.Tensor) and expected.shape == (shape[0], expected.shape[1], *shape[2:])
            torch.testing.assert_close(scripted(x), expected, rtol=0, atol=1e-5)


def _assert_same_state(scripted: torch.nn.Module, eager: torch.nn.Module) -> None:
    ours, theirs = scripted.state_dict(), eager.state_dict()
    assert list(ours) == list(theirs)
    for key, value in theirs.items():
        assert torch.equal(ours[key], value), key


# ------------------------------------------------------------------------------------------------- BilinearUNet


@pytest.mark.parametrize("spatial_dims, kwargs, shapes", [
    (2, {"in_channels": 3, "out_channels": 1}, [(1, 3, 64, 64), (2, 3, 96, 128)]),
    (3, {"in_channels": 1, "out_channels": 3, "features": (4, 8, 16, 32, 64)},
     [(1, 1, 16, 16, 16), (2, 1, 24, 33, 17)]),
])
def test_bilinear_unet_scripts_like_eager(tmp_path, spatial_dims, kwargs, shapes):
    torch.manual_seed(0)
    net = _randomize_norm_stats(BilinearUNet(spatial_dims=spatial_dims, **kwargs)).eval()
    if spatial_dims == 2:
        assert sum(p.numel() for p in net.parameters()) == 1_080_929  # the MAC paper's count, unchanged
    loaded = _script_save_load(net, tmp_path)
    _assert_same_outputs(net, loaded, shapes)
    _assert_same_state(loaded, net)
    fresh = BilinearUNet(spatial_dims=spatial_dims, **kwargs).eval()
    fresh.load_state_dict(loaded.state_dict())  # strict
    _assert_same_outputs(net, fresh, shapes[:1])


@pytest.mark.parametrize("spatial_dims, shape", [(2, (1, 3, 8, 8, 8)), (3, (1, 3, 8, 8))])
def test_bilinear_unet_scripted_raises_the_eager_message_on_a_wrong_ndim(spatial_dims, shape):
    net = BilinearUNet(spatial_dims=spatial_dims, features=(4, 8, 16, 32, 64)).eval()
    with pytest.raises(ValueError, match=f"{spatial_dims} spatial dims") as eager_error:
        net(torch.zeros(shape))
    assert str(eager_error.value).endswith(f"got shape {shape}.")
    with pytest.raises(torch.jit.Error) as scripted_error:  # TorchScript raises its own error type with the message
        torch.jit.script(net)(torch.zeros(shape))
    assert f"builtins.ValueError: {eager_error.value}" in str(scripted_error.value)


# ------------------------------------------------------------------------------------ DeepSupervisionFlexibleUNet


@pytest.mark.parametrize("spatial_dims, backbone, shapes", [
    (2, "resnet34", [(1, 3, 64, 64), (2, 3, 96, 128)]),
    (3, "resnet18", [(1, 3, 32, 32, 32), (1, 3, 32, 64, 64)]),
])
def test_deep_supervision_scripts_to_its_eval_output(tmp_path, spatial_dims, backbone, shapes):
    torch.manual_seed(0)
    net = _randomize_norm_stats(DeepSupervisionFlexibleUNet(3, 2, backbone=backbone, spatial_dims=spatial_dims))
    net.eval()
    loaded = _script_save_load(net, tmp_path)
    assert loaded.original_name == "DeepSupervisionInference"
    _assert_same_outputs(net, loaded, shapes)
    _assert_same_state(loaded, net)
    # the scripted module's state dict is the network's checkpoint: it loads strictly into a fresh network
    fresh = DeepSupervisionFlexibleUNet(3, 2, backbone=backbone, spatial_dims=spatial_dims).eval()
    fresh.load_state_dict(loaded.state_dict())  # strict
    _assert_same_outputs(fresh, loaded, shapes[:1])
    # scripting left the network itself as it was: every head in train mode
    assert type(net) is DeepSupervisionFlexibleUNet and not net.training
    heads = net.train()(torch.randn(2, *shapes[0][1:]))  # batch norm in train mode needs 2 values a channel
    assert isinstance(heads, list) and len(heads) == 3


def test_inference_network_shares_the_parameters_and_stops_at_its_head(tmp_path):
    # the inference head at 1/8 while the decoder runs on to 1/4 for the other head
    torch.manual_seed(0)
    net = _randomize_norm_stats(DeepSupervisionFlexibleUNet(3, 2, backbone="resnet18", supervision_scales=(8, 4)))
    inference = net.eval().inference_network()
    assert isinstance(inference, DeepSupervisionInference) and not inference.training
    assert inference.encoder is net.encoder and inference.decoder is net.decoder and inference.heads is net.heads
    assert list(inference.state_dict()) == list(net.state_dict())
    shapes = [(1, 3, 64, 64), (2, 3, 96, 128)]
    _assert_same_outputs(net, inference, shapes)
    _assert_same_outputs(net, _script_save_load(net, tmp_path), shapes)
    with torch.no_grad():
        net.training = True  # every head of the eval-mode layers
        heads = net(torch.randn(shapes[0]))
        net.training = False
    assert not torch.allclose(heads[0], heads[1])  # the 1/8 and 1/4 heads differ: the right one was compared


@pytest.mark.parametrize("backbone, spatial_dims, shortcuts", [("resnet34", 2, 3), ("resnet18", 3, 3)])
def test_scriptable_shortcuts_compute_monais_resnet(backbone, spatial_dims, shortcuts):
    """The encoder's zero-padding shortcuts (a ``functools.partial`` in MONAI, not scriptable) are modules with the
    same outputs, the same (absent) gradient through the shortcut, and the same state dict as MONAI's encoder."""
    torch.manual_seed(0)
    ours = DeepSupervisionFlexibleUNet(3, 2, backbone=backbone, spatial_dims=spatial_dims).encoder
    theirs = ResNetEncoder(backbone, pretrained=False, spatial_dims=spatial_dims, in_channels=3)
    assert sum(isinstance(m.downsample, partial) for m in theirs.modules() if hasattr(m, "downsample")) == shortcuts
    assert not any(isinstance(m.downsample, partial) for m in ours.modules() if hasattr(m, "downsample"))
    theirs.load_state_dict(ours.state_dict())  # strict: the same keys
    assert list(theirs.state_dict()) == list(ours.state_dict())
    shape = (2, 3, *([32] * spatial_dims))
    for mode in (True, False):
        ours.train(mode)
        theirs.train(mode)
        inputs = [torch.randn(shape, generator=torch.Generator().manual_seed(2)).requires_grad_() for _ in range(2)]
        features = [encoder(x) for encoder, x in zip((ours, theirs), inputs)]
        for a, b in zip(*features):
            torch.testing.assert_close(a, b, rtol=0, atol=0)
        sum(f.square().mean() for f in features[0]).backward()
        sum(f.square().mean() for f in features[1]).backward()
        torch.testing.assert_close(inputs[0].grad, inputs[1].grad, rtol=1e-6, atol=1e-7)
        grads = [dict(e.named_parameters()) for e in (ours, theirs)]
        for name, parameter in grads[0].items():
            torch.testing.assert_close(parameter.grad, grads[1][name].grad, rtol=1e-6, atol=1e-7)
        ours.zero_grad()
        theirs.zero_grad()


# ---------------------------------------------------------------------------------- ckpt_export of the bundles


def _save_model_pt(network: torch.nn.Module, ckpt_dir) -> None:
    """``models/model.pt`` as the bundles' train.yaml writes it: ``AtomicCheckpointSaver`` with ``save_dict: {model:
    "@network"}``, keeping the best key metric. With one object in ``save_dict``, ignite's ``Checkpoint`` writes that
    object's state dict itself (not ``{"model": ...}``): ``ckpt_export``'s default ``key_in_ckpt`` reads it."""
    from monai_imbalance.handlers import AtomicCheckpointSaver

    engine = Engine(lambda engine, batch: None)
    engine.add_event_handler(Events.EPOCH_COMPLETED, lambda e: e.state.metrics.update(score=float(e.state.epoch)))
    AtomicCheckpointSaver(str(ckpt_dir), {"model": network}, save_key_metric=True, key_metric_name="score",
                          key_metric_filename="model.pt").attach(engine)
    engine.run([0], max_epochs=1)


@pytest.mark.parametrize("name, in_channels", [("kvasir_seg", 3), ("isic2018_seg", 3), ("synapse_seg", 1),
                                               ("acdc_seg", 1)])
def test_ckpt_export_of_the_bundles_inference_network(tmp_path, name, in_channels):
    from monai.bundle import ckpt_export

    bundle = BUNDLES / name
    config_file = bundle / "configs" / "inference.yaml"
    parser = parse_bundle(bundle, ("inference",), {"dataset_dir": str(tmp_path / "no_data")})
    torch.manual_seed(0)
    network = _randomize_norm_stats(parser.get_parsed_content("network_def"))
    _save_model_pt(network, tmp_path / "models")
    ckpt_file = tmp_path / "models" / "model.pt"
    checkpoint = torch.load(ckpt_file, weights_only=True)
    assert list(checkpoint) == list(network.state_dict())  # the state dict itself, no "model" level

    filepath = tmp_path / "model.ts"
    ckpt_export(net_id="network_def", filepath=str(filepath), ckpt_file=str(ckpt_file), config_file=str(config_file),
                bundle_root=str(bundle))
    extra_files = {"metadata.json": "", "inference.json": ""}
    loaded = torch.jit.load(str(filepath), _extra_files=extra_files)
    assert json.loads(extra_files["inference.json"])["network_def"] == parser.get("network_def")
    assert json.loads(extra_files["metadata.json"])["version"] == parser.get("_meta_#version")
    _assert_same_state(loaded, network)  # the trained weights, not ckpt_export's fresh network_def
    _assert_same_outputs(network.eval(), loaded, [(1, in_channels, 64, 64), (2, in_channels, 96, 128)])
