"""CUDA check of the package (run by ``benchmarks/gpu_check.sh``): every loss forward + backward and every map
transform on GPU tensors, each compared with the CPU result on the same inputs, and timed.

1. Losses: forward + backward on ``8x9x224x224`` and on ``2x4x64x64x64`` logits, float32 and under
   ``torch.autocast`` (bf16/fp16 AMP as the bundles run it), against ``F.cross_entropy`` in the same run; the
   value on a small case equals the CPU value (relative 1e-4).
2. Maps: ``DilationWeightMap``, ``UncertaintyWeightMap``, ``SignedDistanceMap``, ``BorderWeightMap``,
   ``ConnectedComponents`` on a CUDA label (``1x160x160x96``, 9 classes) against the same label on the CPU: equal
   values (1e-5), and the time of each. Which path ran (cuCIM on the GPU, or one host copy) is printed.

Prints one line per case and exits non-zero when a GPU result differs from the CPU one.

    python benchmarks/gpu_check.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from monai.losses import DiceCELoss, DiceFocalLoss

from monai_imbalance.losses import (
    BalancedCELoss,
    BlobLoss,
    BorderWeightedCELoss,
    BoundaryLoss,
    ComboLoss,
    DIBEDisLoss,
    DIBELoss,
    DIBERegLoss,
    DilatedBalancedCELoss,
    ExpLogLoss,
    FocalTverskyLoss,
    HybridFocalLoss,
    ModifiedBoundaryLoss,
    UncertaintyWeightedCELoss,
)
from monai_imbalance.transforms import (
    BorderWeightMap,
    ConnectedComponents,
    DilationWeightMap,
    SignedDistanceMap,
    UncertaintyWeightMap,
)
from monai_imbalance.transforms.utils import gpu_distance_available

FAILURES: list[str] = []


def cuda_time(fn: Callable[[], object], repeats: int) -> float:
    fn()
    torch.cuda.synchronize()
    best = float("inf")
    for _ in range(repeats):
        torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return best


def losses() -> dict[str, torch.nn.Module]:
    kw = {"softmax": True, "to_onehot_y": True}
    return {
        "DiceCELoss (MONAI)": DiceCELoss(**kw),
        "DiceFocalLoss (MONAI)": DiceFocalLoss(**kw),
        "DIBELoss": DIBELoss(**kw),
        "DIBEDisLoss": DIBEDisLoss(**kw),
        "DIBERegLoss": DIBERegLoss(**kw),
        "FocalTverskyLoss": FocalTverskyLoss(**kw),
        "ComboLoss": ComboLoss(**kw),
        "ExpLogLoss": ExpLogLoss(**kw),
        "HybridFocalLoss": HybridFocalLoss(**kw),
        "BalancedCELoss": BalancedCELoss(**kw),
        "DilatedBalancedCELoss": DilatedBalancedCELoss(radius=10.0, **kw),
        "UncertaintyWeightedCELoss": UncertaintyWeightedCELoss(**kw),
        "BorderWeightedCELoss": BorderWeightedCELoss(**kw),
        "BoundaryLoss": BoundaryLoss(**kw),
        "ModifiedBoundaryLoss": ModifiedBoundaryLoss(**kw),
        "BlobLoss(FocalTversky)": BlobLoss(FocalTverskyLoss(**kw)),
    }


def step(loss: torch.nn.Module | None, logits: torch.Tensor, labels: torch.Tensor, amp: bool) -> torch.Tensor:
    x = logits.detach().clone().requires_grad_(True)
    dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    with torch.autocast("cuda", dtype=dtype, enabled=amp and x.is_cuda):
        z = x.to(dtype) if amp else x  # under autocast a network's last convolution gives half-precision logits
        value = F.cross_entropy(z, labels[:, 0].long()) if loss is None else loss(z, labels)
    value.backward()
    return value.detach()


def check_losses(shape: tuple[int, ...], repeats: int) -> None:
    gen = torch.Generator().manual_seed(0)
    small = (2, shape[1], *[16] * (len(shape) - 2))
    print(f"\n1. losses, logits {'x'.join(map(str, shape))}: forward + backward ms (float32 / AMP), / cross entropy")
    logits = torch.randn(shape, generator=gen).cuda()
    labels = torch.randint(0, shape[1], (shape[0], 1, *shape[2:]), generator=gen).float().cuda()
    x_small = torch.randn(small, generator=gen)
    y_small = torch.randint(0, small[1], (small[0], 1, *small[2:]), generator=gen).float()
    ce = cuda_time(lambda: step(None, logits, labels, False), repeats)
    print(f"  {'cross entropy':<28}{1e3 * ce:>8.2f} ms")
    for name, loss in losses().items():
        cpu = float(step(loss, x_small, y_small, False))
        gpu = float(step(loss.cuda(), x_small.cuda(), y_small.cuda(), False))
        same = abs(cpu - gpu) <= 1e-4 * max(1.0, abs(cpu))
        if not same:
            FAILURES.append(f"{name}: CPU {cpu} GPU {gpu}")
        fp32 = cuda_time(lambda loss=loss: step(loss, logits, labels, False), repeats)
        amp = cuda_time(lambda loss=loss: step(loss, logits, labels, True), repeats)
        print(f"  {name:<28}{1e3 * fp32:>8.2f} / {1e3 * amp:>7.2f} ms  {fp32 / ce:>6.2f}x CE   "
              f"{'CPU value equal' if same else f'DIFFERS: CPU {cpu:.6f} GPU {gpu:.6f}'}")


def check_maps(repeats: int) -> None:
    rng = np.random.default_rng(0)
    label = np.zeros((1, 160, 160, 96), dtype=np.uint8)
    for i in range(40):
        side = rng.integers(4, 30, 3)
        start = rng.integers(0, np.array(label.shape[1:]) - side)
        label[(0, *[slice(a, a + s) for a, s in zip(start, side)])] = 1 + i % 8
    where = "on the GPU (cuCIM)" if gpu_distance_available() else "on the host (no cuCIM: one copy each way)"
    print(f"\n2. maps of a CUDA label 1x160x160x96, 9 classes, computed {where}: seconds, CPU seconds")
    cuda_label = torch.as_tensor(label, device="cuda").float()  # what LoadImaged + ToDevice give
    for name, transform in (
        ("DilationWeightMap R=10", DilationWeightMap(10.0)),
        ("UncertaintyWeightMap", UncertaintyWeightMap(2.0)),
        ("SignedDistanceMap 9 classes", SignedDistanceMap(num_classes=9)),
        ("BorderWeightMap", BorderWeightMap()),
        ("ConnectedComponents", ConnectedComponents()),
    ):
        expected = transform(label)
        got = transform(cuda_label)
        on_gpu = isinstance(got, torch.Tensor) and got.device.type == "cuda"
        values = got.cpu().numpy() if isinstance(got, torch.Tensor) else np.asarray(got)
        same = values.shape == expected.shape and np.allclose(values, expected, rtol=1e-5, atol=1e-5)
        if not same:
            FAILURES.append(f"{name}: GPU map differs from the CPU map")
        gpu_s = cuda_time(lambda t=transform: t(cuda_label), repeats)
        start = time.perf_counter()
        transform(label)
        cpu_s = time.perf_counter() - start
        print(f"  {name:<30}{gpu_s:>8.3f} s  CPU {cpu_s:>7.3f} s  output on {'cuda' if on_gpu else 'host'}  "
              f"{'equal' if same else 'DIFFERS'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        sys.exit("gpu_check.py needs a CUDA GPU.")
    print(f"{torch.cuda.get_device_name(0)}, torch {torch.__version__}, CUDA {torch.version.cuda}, "
          f"cuCIM {'yes' if gpu_distance_available() else 'no'}")
    check_losses((8, 9, 224, 224), args.repeats)
    check_losses((2, 4, 64, 64, 64), args.repeats)
    check_maps(args.repeats)
    if FAILURES:
        print("\nFAILED:\n  " + "\n  ".join(FAILURES))
        sys.exit(1)
    print("\nall GPU results equal the CPU results")


if __name__ == "__main__":
    main()
