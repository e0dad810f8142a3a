"""The networks of the papers' setups, where MONAI has no exact equivalent.

- :class:`BilinearUNet`: the U-Net of the MAC paper (Sec. 4.1): two 3x3 conv + BN + ReLU per block, four max-pool
  down blocks of 32, 64, 128 and 256 filters, four bilinear up blocks. With ``in_channels=3, out_channels=1`` it has
  exactly the paper's 1,080,929 parameters.
- :class:`DeepSupervisionFlexibleUNet`: MONAI's ``FlexibleUNet`` (e.g. a ResNet34 encoder) with the DBCE paper's
  deep supervision (Sec. 3.2): segmentation heads at 1/4, 1/8 and 1/16 of the input, each a conv and a bilinear
  up-sampling to the input size; training returns every head (for a summed deep-supervision loss), inference
  returns the 1/4 head, as the paper does. ``torch.jit.script`` of it gives :class:`DeepSupervisionInference`, that
  1/4-head path with the same state dict, so ``python -m monai.bundle ckpt_export`` exports the bundles' network as-is.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import torch
import torch.nn as nn
import torch.nn.functional as F
from monai.networks.nets import FlexibleUNet
from monai.networks.nets.resnet import ResNetBlock, ResNetBottleneck

__all__ = ["BilinearUNet", "DeepSupervisionFlexibleUNet", "DeepSupervisionInference"]


def _conv(spatial_dims: int) -> type[nn.Module]:
    return nn.Conv2d if spatial_dims == 2 else nn.Conv3d


def _norm(spatial_dims: int) -> type[nn.Module]:
    return nn.BatchNorm2d if spatial_dims == 2 else nn.BatchNorm3d


class _DoubleConv(nn.Sequential):
    def __init__(self, spatial_dims: int, in_channels: int, out_channels: int, mid_channels: int | None = None):
        mid = mid_channels or out_channels
        conv, norm = _conv(spatial_dims), _norm(spatial_dims)
        super().__init__(
            conv(in_channels, mid, 3, padding=1, bias=False),
            norm(mid),
            nn.ReLU(inplace=True),
            conv(mid, out_channels, 3, padding=1, bias=False),
            norm(out_channels),
            nn.ReLU(inplace=True),
        )


class BilinearUNet(nn.Module):
    """U-Net with max-pool down-sampling and (bi/tri)linear up-sampling: the MAC paper's network.

    The deepest block has half the last feature count so that up-sampling needs no transposed convolution; each up
    block concatenates the skip connection and halves the channels. Inputs whose size is not a multiple of 16 are
    handled by padding the up-sampled map to the skip's size.

    Args:
        spatial_dims: 2 or 3.
        in_channels: input channels (3 for RGB endoscopy/dermoscopy).
        out_channels: output channels (1 for binary segmentation with a sigmoid, C for softmax).
        features: five feature counts; the MAC paper's are ``(16, 32, 64, 128, 256)``.

    Example:
        >>> net = BilinearUNet(in_channels=3, out_channels=1)
        >>> sum(p.numel() for p in net.parameters())  # the MAC paper, Sec. 4.1
        1080929
        >>> net(torch.zeros(1, 3, 224, 224)).shape
        torch.Size([1, 1, 224, 224])
    """

    def __init__(
        self,
        spatial_dims: int = 2,
        in_channels: int = 3,
        out_channels: int = 1,
        features: Sequence[int] = (16, 32, 64, 128, 256),
    ) -> None:
        super().__init__()
        if spatial_dims not in (2, 3):
            raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims}.")
        if len(features) != 5 or any(f % 2 for f in features):
            raise ValueError(f"features must be 5 even numbers, got {tuple(features)}.")
        f = list(features)
        self.spatial_dims = spatial_dims
        self.inc = _DoubleConv(spatial_dims, in_channels, f[0])
        self.downs = nn.ModuleList(
            [_DoubleConv(spatial_dims, f[i], f[i + 1]) for i in range(3)] + [_DoubleConv(spatial_dims, f[3], f[4] // 2)]
        )
        # up i takes the concatenation of the previous output and the skip (both with half of the next level's)
        self.ups = nn.ModuleList(
            [
                _DoubleConv(spatial_dims, f[4], f[2], f[3]),
                _DoubleConv(spatial_dims, f[3], f[1], f[2]),
                _DoubleConv(spatial_dims, f[2], f[0], f[1]),
                _DoubleConv(spatial_dims, f[1], f[0], f[0]),
            ]
        )
        self.outc = _conv(spatial_dims)(f[0], out_channels, 1)
        self.pool = nn.MaxPool2d(2) if spatial_dims == 2 else nn.MaxPool3d(2)
        self.mode = "bilinear" if spatial_dims == 2 else "trilinear"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != self.spatial_dims + 2:
            # the shape written as a tuple by hand: TorchScript has no tuple(list)
            shape = "(" + ", ".join([str(size) for size in x.shape]) + ")"
            raise ValueError(
                f"input must be (B, C, *spatial) with {self.spatial_dims} spatial dims, got shape {shape}."
            )
        skips = [self.inc(x)]
        for down in self.downs:
            skips.append(down(self.pool(skips[-1])))
        y = skips.pop()
        for up in self.ups:
            skip = skips.pop()
            y = F.interpolate(y, scale_factor=2.0, mode=self.mode, align_corners=True)
            pad: list[int] = []
            for axis in range(1, self.spatial_dims + 1):  # F.pad lists the last axis first
                diff = skip.shape[-axis] - y.shape[-axis]
                pad += [diff // 2, diff - diff // 2]
            if any(pad):
                y = F.pad(y, pad)
            y = up(torch.cat([skip, y], dim=1))
        return self.outc(y)


class _ZeroPadShortcut(nn.Module):
    """Shortcut "A" of MONAI's ResNet (resnet18 and resnet34) as a module, for TorchScript.

    ``monai.networks.nets.ResNet`` builds this shortcut as a ``functools.partial`` of its bound method
    ``_downsample_basic_block``, which ``torch.jit.script`` cannot compile ("failed to convert Python type:
    'functools.partial'"). This module computes the same thing: a strided 1-voxel average pooling, then zero channels
    up to ``planes``. It has no parameters, so the state dict is unchanged.
    """

    def __init__(self, planes: int, stride: int, spatial_dims: int) -> None:
        super().__init__()
        self.planes = planes
        self.pool = (nn.AvgPool2d if spatial_dims == 2 else nn.AvgPool3d)(kernel_size=1, stride=stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.pool(x)
        size = list(out.shape)
        size[1] = self.planes - size[1]
        zero_pads = torch.zeros(size, dtype=out.dtype, device=out.device)
        # ``.data`` as in MONAI's block: no gradient flows through this shortcut, training is unchanged
        return torch.cat([out.data, zero_pads], dim=1)


def _scriptable_shortcuts(encoder: nn.Module) -> None:
    """Replace, in place, the ``functools.partial`` shortcuts of a MONAI ResNet by :class:`_ZeroPadShortcut`."""
    for block in encoder.modules():
        if isinstance(block, (ResNetBlock, ResNetBottleneck)) and isinstance(block.downsample, partial):
            keywords = block.downsample.keywords
            block.downsample = _ZeroPadShortcut(keywords["planes"], keywords["stride"], keywords["spatial_dims"])


class DeepSupervisionFlexibleUNet(FlexibleUNet):
    """``FlexibleUNet`` with segmentation heads at 1/4, 1/8 and 1/16 of the input (DBCE paper, Sec. 3.2).

    The decoder runs down to 1/4 of the input; each supervised scale has a head (a 1x1 convolution) whose output
    is up-sampled (bilinear/trilinear) to the input size, so every head is compared with the full-resolution label
    (and its weight map). In ``train()`` mode the forward returns ``[head_1/4, head_1/8, head_1/16]``, for a loss
    that sums the heads (e.g. ``monai.losses.DeepSupervisionLoss(loss, weight_mode="same")``, the paper's sum);
    in ``eval()`` mode it returns the 1/4 head only, the paper's inference output.

    ``torch.jit.script(net)`` (what ``python -m monai.bundle ckpt_export`` runs) scripts :meth:`inference_network`,
    the eval-mode output path with the same state dict, whose forward returns a tensor in either mode (TorchScript
    compiles one forward, and this one returns a list or a tensor). The ResNet encoders' parameter-free shortcuts
    (``functools.partial`` in MONAI, not scriptable) are modules here, with the same outputs and state dict.
    Scripting a module that contains this network also puts the inference module in that container's place (torch
    writes what ``__prepare_scriptable__`` returns into the parent's submodules): script the network itself, as
    ``ckpt_export`` does, or build containers from :meth:`inference_network`.

    Args:
        in_channels, out_channels, backbone, pretrained, spatial_dims: as ``monai.networks.nets.FlexibleUNet``
            (the DBCE paper uses ``backbone="resnet34"``; pretrained weights need a download).
        supervision_scales: down-sampling factors of the heads, the first being the inference head; each must be
            one of the decoder's scales (16, 8, 4, 2, 1).
        kwargs: other ``FlexibleUNet`` arguments (``decoder_channels``, ``norm``, ...).

    Example:
        >>> net = DeepSupervisionFlexibleUNet(3, 2, backbone="resnet34").eval()
        >>> scripted = torch.jit.script(net)  # a DeepSupervisionInference sharing net's parameters
        >>> scripted(torch.zeros(1, 3, 64, 64)).shape
        torch.Size([1, 2, 64, 64])
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        backbone: str = "resnet34",
        pretrained: bool = False,
        spatial_dims: int = 2,
        supervision_scales: Sequence[int] = (4, 8, 16),
        **kwargs,
    ) -> None:
        super().__init__(
            in_channels, out_channels, backbone=backbone, pretrained=pretrained, spatial_dims=spatial_dims, **kwargs
        )
        n_blocks = len(self.decoder.blocks)
        decoder_scales = [2 ** (n_blocks - 1 - i) for i in range(n_blocks)]  # 16, 8, 4, 2, 1 for five blocks
        bad = [s for s in supervision_scales if s not in decoder_scales]
        if bad or not supervision_scales:
            raise ValueError(
                f"supervision_scales must be taken from {decoder_scales}, got {tuple(supervision_scales)}."
            )
        self.supervision_scales = tuple(int(s) for s in supervision_scales)
        self._block_of_scale = {s: decoder_scales.index(s) for s in self.supervision_scales}
        self._last_block = max(self._block_of_scale.values())
        channels = kwargs.get("decoder_channels", (256, 128, 64, 32, 16))
        conv = _conv(spatial_dims)
        self.heads = nn.ModuleDict({str(s): conv(channels[self._block_of_scale[s]], out_channels, 1)
                                    for s in self.supervision_scales})
        self.interp_mode = "bilinear" if spatial_dims == 2 else "trilinear"
        # the full-resolution blocks and head are unused: drop them so they hold no parameters
        self.decoder.blocks = self.decoder.blocks[: self._last_block + 1]
        self.segmentation_head = nn.Identity()
        _scriptable_shortcuts(self.encoder)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor | list[torch.Tensor]:
        features = self.encoder(inputs)
        skips = features[:-1][::-1]
        x = features[1:][::-1][0]
        outputs: dict[int, torch.Tensor] = {}
        wanted = self.supervision_scales if self.training else self.supervision_scales[:1]
        for i, block in enumerate(self.decoder.blocks):
            x = block(x, skips[i] if i < self.skip_connect else None)
            for scale in wanted:
                if self._block_of_scale[scale] == i:
                    head = self.heads[str(scale)](x)
                    outputs[scale] = F.interpolate(head, size=inputs.shape[2:], mode=self.interp_mode,
                                                   align_corners=False)
            if len(outputs) == len(wanted):
                break
        if self.training:
            return [outputs[s] for s in self.supervision_scales]
        return outputs[self.supervision_scales[0]]

    def inference_network(self) -> DeepSupervisionInference:
        """The eval-mode output path (the first of ``supervision_scales``) as a scriptable module sharing this
        network's submodules, hence its parameters and state dict keys."""
        return DeepSupervisionInference(self)

    def __prepare_scriptable__(self) -> DeepSupervisionInference:
        # torch.jit.script calls this hook and compiles what it returns (as torchvision and torchaudio models do)
        return self.inference_network()


class DeepSupervisionInference(nn.Module):
    """The inference path of a :class:`DeepSupervisionFlexibleUNet`: encoder, decoder down to the inference head's
    scale, that head and its up-sampling to the input size; what the network returns in ``eval()`` mode.

    It holds the network's ``encoder``, ``decoder`` and ``heads`` under the same names (shared, not copied), so its
    state dict has the same keys and a checkpoint of the network loads into it unchanged. Its forward is TorchScript
    code returning a tensor (the network's returns a list in ``train()`` mode): ``torch.jit.script`` of a
    ``DeepSupervisionFlexibleUNet`` compiles this module.

    Args:
        network: the network whose inference path this is.

    Example:
        >>> net = DeepSupervisionFlexibleUNet(3, 2, backbone="resnet34").eval()
        >>> inference = net.inference_network()
        >>> inference.state_dict().keys() == net.state_dict().keys()
        True
    """

    def __init__(self, network: DeepSupervisionFlexibleUNet) -> None:
        super().__init__()
        _scriptable_shortcuts(network.encoder)  # already done for networks built by this version
        self.encoder = network.encoder
        self.decoder = network.decoder
        self.heads = network.heads
        scale = network.supervision_scales[0]
        self.head_name = str(scale)
        self.head_block = network._block_of_scale[scale]
        self.skip_connect = network.skip_connect
        self.interp_mode = network.interp_mode
        self.training = network.training  # the flag only: train() would also switch the shared submodules

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        features = self.encoder(inputs)
        skips = features[:-1][::-1]
        x = features[-1]
        for i, block in enumerate(self.decoder.blocks):
            if i <= self.head_block:  # the blocks after the inference head's are for the other heads only
                x = block(x, skips[i] if i < self.skip_connect else None)
        logits = x
        for name, head in self.heads.items():  # TorchScript indexes a ModuleDict by literals only
            if name == self.head_name:
                logits = head(x)
        return F.interpolate(logits, size=inputs.shape[2:], mode=self.interp_mode, align_corners=False)
