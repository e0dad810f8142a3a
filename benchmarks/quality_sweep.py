"""Quality benchmark on SYNTHETIC data: where does Mask-Aware Cropping beat random cropping, and dilated balanced CE
beat balanced CE, as the foreground shrinks?

Foreground fractions 30%, 16%, 3% and 0.3% are the regimes of HAM10000, Kvasir-SEG, URDE (MAC paper) and the THC
datasets (DIBE paper). For each fraction and seed, the same small U-Net is trained from the same initial weights on
the same generated data with four setups built by name (``monai_imbalance.engines.SegmentationSetup``):

- RC + CE and MAC + CE: the MAC paper's comparison (only the crop differs);
- RC + balanced CE and RC + DBCE: the DBCE paper's comparison (only the pixel weights differ).

Each (fraction, seed) pair yields one paired difference per comparison (same data, same initial weights); the
script reports the mean difference of pooled validation Dice and its 95% confidence interval over seeds
(Student's t), and the per-setup means. Everything here is synthetic: it shows how the methods behave on this
generator, not how they do on the papers' datasets.

DBCE's radius follows one rule at every fraction: about 0.3x the objects' radius (the DBCE paper's 20 px against
polyps of about 70 px radius at 320x320), at least 1 px. MAC's rho is chosen from the training labels as in the
demo (the largest of a 0.05 grid, at most 0.25, that keeps three quarters of the images croppable); tau 3.

    python benchmarks/quality_sweep.py                      # 4 fractions x 3 seeds x 4 setups, CPU
    python benchmarks/quality_sweep.py --seeds 5 --epochs 20 --out sweep.json
"""

from __future__ import annotations

import argparse
import json
import math
import time

import numpy as np
import torch

from monai_imbalance.apps.bench import confidence_interval
from monai_imbalance.apps.demo import DemoSettings, _make_data, _train_setup, choose_rho
from monai_imbalance.networks import BilinearUNet

FRACTIONS = {0.30: "HAM10000-like", 0.16: "Kvasir-like", 0.03: "URDE-like", 0.003: "THC-like"}
SETUPS = (("RC + CE", "random", "ce"), ("MAC + CE", "mac", "ce"),
          ("RC + BCE", "random", "balanced_ce"), ("RC + DBCE", "random", "dbce"))
COMPARISONS = (("MAC + CE", "RC + CE"), ("RC + DBCE", "RC + BCE"))


def dbce_radius(settings: DemoSettings, num_objects: int = 2) -> float:
    area = settings.fg_fraction * settings.image_size**2 / num_objects
    return float(max(1, round(0.3 * math.sqrt(area / math.pi))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--fractions", type=float, nargs="+", default=list(FRACTIONS))
    parser.add_argument("--out", default="quality_sweep.json")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    results: dict[str, dict] = {}
    print("SYNTHETIC data (monai_imbalance.apps.synthetic); pooled validation Dice per setup")
    for fraction in args.fractions:
        per_setup: dict[str, list[float]] = {name: [] for name, _, _ in SETUPS}
        rows = []
        for seed in range(args.seeds):
            s = DemoSettings(fg_fraction=fraction, epochs=args.epochs, seed=seed)
            s.dbce_radius = dbce_radius(s)
            train, val = _make_data(s)
            rho, kept = choose_rho([d["label"] for d in train], s.roi_size, s.mac_stride)
            torch.manual_seed(seed)
            initial = BilinearUNet(in_channels=1, out_channels=2, features=s.features).state_dict()
            dice = {}
            for name, crop, loss in SETUPS:
                result, _ = _train_setup(name, crop, loss, s, train, val, initial, rho, progress=False)
                dice[name] = result.metrics["dice"]
                per_setup[name].append(dice[name])
            rows.append({"seed": seed, "rho": rho, "croppable": kept, "dbce_radius": s.dbce_radius, **dice})
            print(f"  fg {100 * fraction:g}% seed {seed}: rho {rho} R {s.dbce_radius:g} "
                  + "  ".join(f"{k} {100 * v:.1f}" for k, v in dice.items()), flush=True)
        summary = {}
        for better, base in COMPARISONS:
            diffs = [a - b for a, b in zip(per_setup[better], per_setup[base])]
            mean, half = confidence_interval(diffs)
            summary[f"{better} - {base}"] = {"mean": mean, "ci": half, "wins": int(sum(d > 0 for d in diffs)),
                                             "n": len(diffs)}
        results[str(fraction)] = {"regime": FRACTIONS.get(fraction, ""), "runs": rows,
                                  "means": {k: float(np.mean(v)) for k, v in per_setup.items()},
                                  "differences": summary}
    print(f"\nDice difference (percentage points), mean and 95% CI over {args.seeds} seeds; SYNTHETIC data")
    header = f"{'foreground':<22}" + "".join(f"{f'{b} vs {a}':>30}" for b, a in COMPARISONS)
    print(header)
    for fraction, entry in results.items():
        cells = []
        for better, base in COMPARISONS:
            d = entry["differences"][f"{better} - {base}"]
            ci = f" ± {100 * d['ci']:.1f}" if math.isfinite(d["ci"]) else ""
            cells.append(f"{100 * d['mean']:+.1f}{ci} ({d['wins']}/{d['n']} wins)")
        label = f"{100 * float(fraction):g}% ({entry['regime']})"
        print(f"{label:<22}" + "".join(f"{c:>30}" for c in cells))
    with open(args.out, "w") as f:
        json.dump({"synthetic": True, "epochs": args.epochs, "seeds": args.seeds, "results": results}, f, indent=2)
    print(f"\n{time.perf_counter() - start:.0f} s; details in {args.out}")


if __name__ == "__main__":
    main()
