"""The planner on real ACDC: what `monai-imbalance plan` chooses for the 2-D slice form and for the 3-D volumes.

ACDC in the SSL4MIS HDF5 form (``train.list`` slices, ``val.list`` / ``test.list`` volumes) is written out as a
user would hand it over: NIfTI image/label pairs in ``images/`` + ``labels/`` plus a MONAI datalist with the class
names and the modality, once as 2-D slices (the training patients' slices) and once as 3-D volumes (the volumes of
this copy: the validation and test patients). Each is planned with ``monai.plan_dataset`` and, with ``--epochs``,
trained for that many epochs with ``bundles/generic_seg`` and the plan (``--train-cases`` caps the cases, a CPU
budget). The HDF5 files store no spacing: the volumes are written with 1 mm voxels, so the 3-D plan sees isotropic
voxels where the real ones are about 1.5 x 1.5 x 5-10 mm (said in the output).

    python benchmarks/plan_acdc.py --root ../shared/data/acdc_ssl4mis/ACDC --out /tmp/acdc_plan --epochs 1 \\
        --report benchmarks/results/acdc/plan.md

Prints each plan's decisions and the training's validation Dice; ``--report`` writes them as Markdown.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
NAMES = {0: "background", 1: "RV", 2: "MYO", 3: "LV"}


def _write_nifti(array: np.ndarray, path: Path, dtype: type) -> None:
    import nibabel as nib

    nib.save(nib.Nifti1Image(array.astype(dtype), np.eye(4)), str(path))


def convert(root: Path, out: Path, form: str, max_cases: int | None) -> Path:
    """NIfTI pairs and a datalist of the slices (``form="2d"``) or volumes (``"3d"``); returns the datalist."""
    import h5py

    from monai_imbalance.apps.acdc import acdc_items

    found = acdc_items(root, form="h5", check="header")
    items = found["slices"] if form == "2d" else found["volumes"]
    items = items[:max_cases] if max_cases else items
    folder = out / form
    (folder / "images").mkdir(parents=True, exist_ok=True)
    (folder / "labels").mkdir(parents=True, exist_ok=True)
    listed = []
    for item in items:
        name = Path(item["image"]).stem
        image_path, label_path = folder / "images" / f"{name}.nii.gz", folder / "labels" / f"{name}.nii.gz"
        if not label_path.is_file():
            with h5py.File(item["image"], "r") as f:
                image, label = np.asarray(f["image"]), np.asarray(f["label"])
            if form == "3d":  # (Z, H, W) -> (H, W, Z): the through-plane axis last, as NIfTI volumes are
                image, label = np.moveaxis(image, 0, -1), np.moveaxis(label, 0, -1)
            _write_nifti(image, image_path, np.float32)
            _write_nifti(label, label_path, np.uint8)
        listed.append({"image": f"images/{image_path.name}", "label": f"labels/{label_path.name}", "id": name})
    datalist = folder / "datalist.json"
    datalist.write_text(json.dumps({
        "name": f"ACDC ({form}, from the SSL4MIS HDF5 form)", "labels": {str(k): v for k, v in NAMES.items()},
        "modality": {"0": "MR"}, "training": listed}, indent=1))
    return datalist


def train(plan_path: Path, run_dir: Path, epochs: int, overrides: dict[str, str]) -> tuple[dict[str, float], float]:
    """Train and evaluate ``bundles/generic_seg`` with the plan (``monai-imbalance bench``'s runner: one process
    each, models and metrics in ``run_dir``)."""
    from monai_imbalance.apps.bench import BundleRunner

    runner = BundleRunner(ROOT / "bundles" / "generic_seg", {"epochs": str(epochs), "progress": "False", **overrides},
                          extra_configs=[plan_path])
    start = time.perf_counter()
    metrics = runner.run(run_dir, {})
    return metrics, time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", required=True, help="the ACDC folder of the SSL4MIS HDF5 form")
    parser.add_argument("--out", required=True, help="working folder (NIfTI copies, plans, runs); not committed")
    parser.add_argument("--forms", default="2d,3d")
    parser.add_argument("--max-cases", type=int, default=None, help="convert and plan the first N cases only")
    parser.add_argument("--gpu-memory", type=float, default=8.0)
    parser.add_argument("--num-workers", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=0, help="also train this many epochs with the plan (0: no)")
    parser.add_argument("--train-cases", default=None,
                        help="training: the first N cases only (N for every form, or e.g. 2d:400,3d:20)")
    parser.add_argument("--report", default=None, help="write the results as Markdown here")
    args = parser.parse_args()

    from monai_imbalance.apps.plan import plan_dataset

    out = Path(args.out)
    began = time.perf_counter()
    sections = []
    for form in args.forms.split(","):
        start = time.perf_counter()
        datalist = convert(Path(args.root), out, form, args.max_cases)
        converted = time.perf_counter() - start
        start = time.perf_counter()
        plan = plan_dataset(datalist, gpu_memory_gib=args.gpu_memory, num_workers=args.num_workers, progress=False)
        planned = time.perf_counter() - start
        plan_path = plan.write(out / form / "plan.yaml")
        print(plan.summary())
        lines = [f"## {form.upper()}: {plan.num_cases} cases", "",
                 f"conversion {converted:.0f} s, planning {planned:.1f} s ({args.num_workers} workers)", "",
                 "| id | value | reason |", "|---|---|---|"]
        for key, reason in plan.reasons.items():
            lines.append(f"| `{key}` | `{json.dumps(plan.values[key])}` | {reason} |")
        for note in plan.notes:
            lines.append(f"\nnote: {note}")
        if args.epochs:
            overrides = {"num_workers": "0"}
            caps = dict(part.split(":") if ":" in part else (form, part)
                        for part in (args.train_cases or "").split(",") if part)
            cap = int(caps[form]) if form in caps else None
            if cap:
                subset = json.loads(Path(datalist).read_text())
                subset["training"] = subset["training"][:cap]
                small = out / form / "datalist_subset.json"
                small.write_text(json.dumps(subset, indent=1))
                overrides["datalist"] = str(small)
            metrics, seconds = train(plan_path, out / form / "run", args.epochs, overrides)
            dice = metrics.get("val_mean_dice", float("nan"))
            shown = ", ".join(f"{k} {v:.4f}" for k, v in sorted(metrics.items()) if "dice" in k)
            print(f"\ntraining {form}: {args.epochs} epoch(s), {seconds:.0f} s: {shown}")
            lines += ["", f"training with the plan: {args.epochs} epoch(s) on "
                      f"{cap or plan.num_cases} cases (fold 0 of 5 held out), {seconds:.0f} s: "
                      f"val_mean_dice {dice:.4f}; {shown}"]
        sections.append("\n".join(lines))
    if args.report:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                text=True).stdout.strip()
        head = ["# REAL: `monai-imbalance plan` on ACDC (SSL4MIS HDF5 copy in ../shared/data)", "",
                f"command: `python benchmarks/{Path(__file__).name} {' '.join(sys.argv[1:])}`", "",
                f"commit {commit}; machine: {platform.machine()}, {platform.processor() or 'CPU'}, 2 cores, no GPU; "
                f"GPU budget planned for: {args.gpu_memory:g} GiB", "",
                "The HDF5 form stores no spacing: the volumes were written with 1 mm voxels (real ACDC: about "
                "1.5 x 1.5 x 5-10 mm), so the 3-D spacing decisions are those of isotropic data.", "",
                f"wall time of the whole command: {time.perf_counter() - began:.0f} s", ""]
        Path(args.report).parent.mkdir(parents=True, exist_ok=True)
        Path(args.report).write_text("\n".join(head) + "\n" + "\n\n".join(sections) + "\n")
        print(f"report written to {args.report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
