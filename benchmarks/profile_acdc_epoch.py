"""Where one training epoch of the ACDC bench goes: data pipeline, forward, loss, backward + optimizer, validation.

Builds the ACDC bundle with a budget override (default ``configs/bench_cpu.yaml``) in this process, like
``monai-imbalance bench`` runs it, and times one epoch in parts for each loss asked:

- ``data``: one pass over the training ``DataLoader`` alone (the cached resize, the random augmentation, the loss's
  maps computed per sample, collation);
- ``forward``, ``loss``, ``backward+step``: the same batches through the network, the loss (with its maps) and
  the optimizer, timed separately;
- ``validation``: one run of the bundle's evaluator on the validation volumes.

    python benchmarks/profile_acdc_epoch.py --dataset_dir /path/to/ACDC --losses dice_ce,boundary,dbce,dibe

Numbers are seconds of wall time on this machine; the shares add up to the sum of the parts (a trainer overlaps
none of them with num_workers=0).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def _plain(tensor: torch.Tensor) -> torch.Tensor:
    return tensor.as_tensor() if hasattr(tensor, "as_tensor") else tensor


def profile(loss: str, dataset_dir: str, budget: Path, max_batches: int | None) -> dict[str, float]:
    from monai.bundle import ConfigParser
    from monai.utils import set_determinism

    bundle = ROOT / "bundles" / "acdc_seg"
    parser = ConfigParser()
    parser.read_config([str(bundle / "configs" / "train.yaml"), str(budget)])
    parser.update({"bundle_root": str(bundle), "dataset_dir": dataset_dir, "loss": loss,
                   "ckpt_dir": "/tmp/profile_acdc/models", "log_dir": "/tmp/profile_acdc/logs"})
    set_determinism(0)
    start = time.perf_counter()
    loader = parser.get_parsed_content("train#dataloader")
    cache_seconds = time.perf_counter() - start
    network = parser.get_parsed_content("network")
    optimizer = parser.get_parsed_content("optimizer")
    loss_function = parser.get_parsed_content("loss_function")
    loss_inputs = parser.get_parsed_content("setup").loss_inputs
    times = {"cache (once per run)": cache_seconds, "data": 0.0, "forward": 0.0, "loss": 0.0, "backward+step": 0.0}
    network.train()
    tick = time.perf_counter()
    batches = 0
    for batch in loader:
        now = time.perf_counter()
        times["data"] += now - tick
        image, label = _plain(batch["image"]), _plain(batch["label"])
        extra = {arg: _plain(batch[key]) for arg, key in loss_inputs.items()}
        t0 = time.perf_counter()
        pred = network(image)
        t1 = time.perf_counter()
        value = loss_function(pred, label, **extra)
        t2 = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        value.backward()
        optimizer.step()
        t3 = time.perf_counter()
        times["forward"] += t1 - t0
        times["loss"] += t2 - t1
        times["backward+step"] += t3 - t2
        batches += 1
        if max_batches and batches >= max_batches:
            break
        tick = time.perf_counter()
    evaluator = parser.get_parsed_content("validate#evaluator")
    t0 = time.perf_counter()
    evaluator.run()
    times["validation"] = time.perf_counter() - t0
    times["batches"] = batches
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset_dir", required=True)
    parser.add_argument("--losses", default="dice_ce,boundary,dbce,dibe")
    parser.add_argument("--budget", default=str(ROOT / "bundles" / "acdc_seg" / "configs" / "bench_cpu.yaml"))
    parser.add_argument("--max-batches", type=int, default=None, help="stop the epoch early (a quicker profile)")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; budget {args.budget}")
    print(f"{'loss':<18}{'batches':>8}{'data':>9}{'forward':>9}{'loss':>9}{'bwd+step':>10}{'val':>8}{'epoch':>8}"
          f"   shares data/fwd/loss/bwd/val")
    for loss in args.losses.split(","):
        t = profile(loss.strip(), args.dataset_dir, Path(args.budget), args.max_batches)
        parts = ["data", "forward", "loss", "backward+step", "validation"]
        total = sum(t[p] for p in parts)
        shares = "/".join(f"{100 * t[p] / total:.0f}" for p in parts)
        print(f"{loss:<18}{t['batches']:>8}{t['data']:>9.1f}{t['forward']:>9.1f}{t['loss']:>9.1f}"
              f"{t['backward+step']:>10.1f}{t['validation']:>8.1f}{total:>8.1f}   {shares} %"
              f"   (cache {t['cache (once per run)']:.1f} s once)")


if __name__ == "__main__":
    main()
