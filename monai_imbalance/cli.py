"""The ``monai-imbalance`` command: what MONAI bundles do not do (dataset statistics, synthetic data, ...).

    monai-imbalance stats --datalist data.json --num-classes 2 --json stats.json
    monai-imbalance stats --folder Kvasir-SEG/masks --roi-size 224 224
    monai-imbalance synth --out /tmp/synthetic --num-images 50 --fg-fraction 0.03

Errors in the data (missing or unreadable files, labels out of range) end the command with a one-line
message naming the file and exit status 1, not a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

__all__ = ["main", "build_parser"]


def _threshold(value: str) -> float | str | None:
    if value == "auto":
        return "auto"
    if value.lower() == "none":
        return None
    try:
        return float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"threshold must be 'auto', 'none' or a number, got {value!r}") from None


def _add_stats(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "stats",
        help="how imbalanced a segmentation dataset is, per class, with the papers' suggestions",
        description="Stream over the labels of a MONAI datalist or a folder of label files and report per class: "
        "pixels, share, FG:BG ratio, per-image share quartiles, absence, connected components, class frequency "
        "weights; plus the DIBE imbalance level and MAC rho suggestions.",
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--datalist", help="MONAI datalist JSON (paths relative to its folder)")
    src.add_argument("--folder", help="folder of label files (NIfTI, PNG, JPEG, TIFF, npy/npz, h5)")
    p.add_argument("--key", default="label", help="label key in datalist items (default: label)")
    p.add_argument("--data-list-key", default="training", help="list to read in the datalist (default: training)")
    p.add_argument("--num-classes", type=int, default=None, help="classes incl. background (default: max + 1)")
    p.add_argument("--class-names", nargs="+", default=None, help="class names, background first")
    p.add_argument(
        "--threshold",
        type=_threshold,
        default="auto",
        help="'auto' (default) binarises JPEG and 0/255 masks at 127; a number binarises at it; 'none' keeps values",
    )
    p.add_argument("--roi-size", type=int, nargs="+", default=None, help="crop size for the MAC suggestions")
    p.add_argument("--stride", type=int, default=16, help="MAC window stride (default: 16)")
    p.add_argument("--connectivity", type=int, default=None, help="1 = face neighbours; default full")
    p.add_argument("--num-workers", type=int, default=0, help="reader processes (default: 0)")
    p.add_argument("--json", dest="json_out", default=None, help="also write the report as JSON here")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=_run_stats)


def _run_stats(args: argparse.Namespace) -> int:
    from monai_imbalance.stats import ImbalanceStatistics

    roi = args.roi_size[0] if args.roi_size and len(args.roi_size) == 1 else args.roi_size
    stats = ImbalanceStatistics(
        num_classes=args.num_classes,
        label_key=args.key,
        class_names=args.class_names,
        connectivity=args.connectivity,
        roi_size=roi,
        stride=args.stride,
        threshold=args.threshold,
    )
    report = stats.run(
        args.datalist or args.folder,
        data_list_key=args.data_list_key,
        num_workers=args.num_workers,
        progress=not args.no_progress,
    )
    print(report.format())
    if args.json_out:
        report.to_json(args.json_out)
        print(f"\nreport written to {args.json_out}")
    return 0


def _add_synth(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "synth",
        help="write a SYNTHETIC imbalanced dataset (files + MONAI datalist)",
        description="Write seeded synthetic image/label pairs with a requested foreground fraction, as PNG/JPEG or "
        "NIfTI files plus datalist.json. The data are synthetic and the datalist says so.",
    )
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--num-images", type=int, default=20)
    p.add_argument("--size", type=int, nargs="+", default=[128, 128], help="H W [D] (3-D needs nii.gz)")
    p.add_argument("--fg-fraction", type=float, default=0.03)
    p.add_argument("--num-classes", type=int, default=2)
    p.add_argument("--num-objects", type=int, default=3)
    p.add_argument("--shape", choices=("blob", "thin", "mixed"), default="blob")
    p.add_argument("--channels", type=int, choices=(1, 3), default=1)
    p.add_argument("--border-rate", type=float, default=0.0)
    p.add_argument("--empty-rate", type=float, default=0.0)
    p.add_argument("--image-format", choices=("png", "jpg", "nii.gz"), default=None)
    p.add_argument("--label-format", choices=("png", "jpg", "nii.gz"), default=None)
    p.add_argument("--spacing", type=float, nargs="+", default=None, help="voxel size in mm (NIfTI)")
    p.add_argument("--val-fraction", type=float, default=0.2)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_run_synth)


def _run_synth(args: argparse.Namespace) -> int:
    from monai_imbalance.apps.synthetic import write_synthetic_dataset

    is_3d = len(args.size) == 3
    path = write_synthetic_dataset(
        args.out,
        args.num_images,
        image_format=args.image_format or ("nii.gz" if is_3d else "png"),
        label_format=args.label_format,
        val_fraction=args.val_fraction,
        empty_rate=args.empty_rate,
        seed=args.seed,
        spacing=args.spacing,
        spatial_size=tuple(args.size),
        fg_fraction=args.fg_fraction,
        num_classes=args.num_classes,
        num_objects=args.num_objects,
        shape=args.shape,
        channels=args.channels,
        border_rate=args.border_rate,
    )
    print(f"SYNTHETIC dataset of {args.num_images} pairs written; datalist: {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from monai_imbalance import __version__

    parser = argparse.ArgumentParser(
        prog="monai-imbalance",
        description="monai_imbalance: pixel-level class imbalance in medical image segmentation (MONAI plugin).",
    )
    parser.add_argument("--version", action="version", version=f"monai-imbalance {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_stats(sub)
    _add_synth(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError) as err:
        print(f"monai-imbalance {args.command}: error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
