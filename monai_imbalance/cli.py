"""The ``monai-imbalance`` command: what MONAI bundles do not do.

    monai-imbalance demo                                          # the main job: MAC vs RC, DBCE vs CE (SYNTHETIC)
    monai-imbalance stats --datalist data.json --num-classes 2 --json stats.json
    monai-imbalance stats --folder Kvasir-SEG/masks --roi-size 224 224
    monai-imbalance plan --datalist data.json --out plan.yaml --gpu-memory 8  # a generic_seg bundle override
    monai-imbalance synth --out /tmp/synthetic --num-images 50 --fg-fraction 0.03
    monai-imbalance prepare kvasir --root /data --download --split pranet
    monai-imbalance bench --bundle bundles/kvasir_seg --setups NC,RC,PC,MAC,NCW,RCW --folds 5 \\
        -- --dataset_dir /data/Kvasir-SEG
    monai-imbalance tune --bundle bundles/kvasir_seg --loss dibe_dis --grid 4 -- --dataset_dir /data/Kvasir-SEG

Errors in the data (missing or unreadable files, labels out of range) end the command with a one-line
message naming the file and exit status 1, not a traceback.
"""

from __future__ import annotations

import argparse
import os
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


def _positive_int(value: str) -> int:
    """argparse type: an integer >= 1 (argparse names the option in its error)."""
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {value!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {number}")
    return number


def _add_stats(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "stats",
        help="how imbalanced a segmentation dataset is, per class, with the papers' suggestions",
        description="Stream over the labels of a MONAI datalist or a folder of label files and report per class: "
        "pixels, share, FG:BG ratio, per-image share quartiles, absence, connected components, class frequency "
        "weights; plus the DIBE imbalance level, MAC rho suggestions and the objects that deep supervision's "
        "downsampled targets lose.",
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
    p.add_argument(
        "--ds-levels",
        type=int,
        default=4,
        help="deep-supervision levels whose lost objects are counted per target rule (nearest, max, area): "
        "level l is the label at 1/2**l resolution; default 4 (1/2 .. 1/16), 0 skips them",
    )
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
        ds_levels=args.ds_levels,
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


def _add_plan(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "plan",
        help="plan the generic_seg bundle for your own dataset: geometry and imbalance handling, with reasons",
        description="Stream over the training cases of a MONAI datalist JSON, a Medical Segmentation Decathlon "
        "dataset.json (or its Task folder), or a folder of image/label pairs, and write a bundle override for "
        "bundles/generic_seg: dimensionality, channels, classes, intensity normalisation, target spacing, the "
        "DynUNet and the largest patch that fits the GPU memory, then the crop and MAC rho, DBCE radius, class "
        "weights, loss family and deep-supervision heads from the imbalance statistics, each with its reason.",
    )
    p.add_argument("--datalist", required=True,
                   help="datalist JSON, Decathlon dataset.json or Task folder, or a folder of image/label pairs")
    p.add_argument("--data-root", default=None, help="base of relative paths (default: the JSON's folder)")
    p.add_argument("--out", default="plan.yaml", help="the override to write (default: plan.yaml)")
    p.add_argument("--gpu-memory", type=float, default=8.0, metavar="GIB",
                   help="GPU memory the training may use, in GiB (default: 8, nnU-Net's reference)")
    p.add_argument("--croppable-share", type=float, default=0.8,
                   help="share of the images with foreground that MAC's rho keeps croppable (default: 0.8)")
    p.add_argument("--num-workers", type=int, default=0, help="reader processes (default: 0)")
    p.add_argument("--max-cases", type=_positive_int, default=None, help="plan on the first N training cases only")
    p.add_argument("--seed", type=int, default=0, help="seed of the intensity sampling (default: 0)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    p.set_defaults(func=_run_plan)


def _run_plan(args: argparse.Namespace) -> int:
    from monai_imbalance.apps.plan import plan_dataset

    plan = plan_dataset(args.datalist, data_root=args.data_root, gpu_memory_gib=args.gpu_memory,
                        croppable_share=args.croppable_share, num_workers=args.num_workers,
                        progress=not args.no_progress, seed=args.seed, max_cases=args.max_cases)
    print(plan.summary())
    path = plan.write(args.out)
    print(f"\nplan written to {path}; train with (from bundles/generic_seg):\n"
          f"  python -m monai.bundle run --config_file \"['configs/train.yaml','{path.resolve()}']\"")
    return 0


def _add_synth(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "synth",
        help="write a SYNTHETIC imbalanced dataset (files + MONAI datalist)",
        description="Write seeded synthetic image/label pairs with a requested foreground fraction, as PNG/JPEG or "
        "NIfTI files plus datalist.json. The data are synthetic and the datalist says so.",
    )
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--num-images", type=_positive_int, default=20, help="pairs to write (default: 20)")
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


def _add_prepare(sub: argparse._SubParsersAction) -> None:
    from monai_imbalance.apps.registry import DATASETS

    p = sub.add_parser(
        "prepare",
        help="check a dataset folder (" + ", ".join(spec.title for spec in DATASETS.values()) + ") and write a "
        "MONAI datalist",
        description="Check a dataset in its official layout (counts, image/mask pairs, readable files, mask values), "
        "downloading it first with --download where an official URL exists, and write a MONAI datalist JSON with the "
        "chosen split. --synthetic first writes a SYNTHETIC look-alike of the layout into --root. One sub-command per "
        "dataset: `monai-imbalance prepare <dataset> --help` lists its options.",
    )
    datasets = p.add_subparsers(dest="dataset", required=True, metavar="DATASET")
    for spec in DATASETS.values():
        d = datasets.add_parser(spec.name, help=spec.description or spec.title,
                                description=f"Check {spec.title} in its real layout and write a MONAI datalist JSON.")
        d.add_argument("--root", required=True, help="dataset folder, in the dataset's own layout")
        d.add_argument("--out", default=None, help="datalist JSON to write (default: inside the dataset folder)")
        d.add_argument("--download", action="store_true", help="download from the official location first")
        d.add_argument("--split", default=None, choices=spec.splits, help=f"default: {spec.default_split}")
        d.add_argument("--fold", type=int, default=0, help="k-fold splits: the validation fold (0-based)")
        d.add_argument("--num-folds", type=int, default=5)
        d.add_argument("--seed", type=int, default=0)
        d.add_argument("--check", choices=spec.checks, default="full",
                       help="full: decode masks/labels; images: also every image; header: headers only")
        d.add_argument("--no-count-check", action="store_true", help="do not compare counts with the official numbers")
        d.add_argument("--num-workers", type=int, default=0, help="reader threads")
        d.add_argument("--synthetic", action="store_true", help="first write a SYNTHETIC look-alike into --root")
        d.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                       help="progress bars on stderr for the long steps (mask checks, resizing, conversion; "
                       "default: when stderr is a terminal)")
        if spec.lookalike_size:
            d.add_argument("--num-images", type=int, default=None,
                           help=f"--synthetic size ({spec.lookalike_size.replace('_', ' ')})")
        for option in spec.options:
            kwargs = dict(option.cli)
            if kwargs.get("action") == "boolean":
                kwargs["action"] = argparse.BooleanOptionalAction
            kwargs.setdefault("default", None)
            d.add_argument(option.flag, dest=option.name, help=option.help, **kwargs)
        d.set_defaults(func=_run_prepare)


def _run_prepare(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from monai_imbalance.apps.registry import get_dataset, prepare_dataset

    spec = get_dataset(args.dataset)
    options = {o.name: getattr(args, o.name) for o in spec.options if getattr(args, o.name) is not None}
    root = Path(args.root)
    if args.synthetic:
        if root.exists() and any(root.iterdir()):
            raise ValueError(f"--synthetic writes a look-alike into --root, but {root} is not empty")
        root = spec.write_lookalike(root, num_images=getattr(args, "num_images", None), options=options)
        print(f"SYNTHETIC look-alike of {spec.name} written to {root}")
    path = prepare_dataset(
        spec.name, root, args.out, split=args.split, download=args.download, fold=args.fold,
        num_folds=args.num_folds, seed=args.seed, expected_count=None if args.no_count_check else "auto",
        check=args.check, num_workers=args.num_workers, progress=args.progress, **options,
    )
    data = json.loads(Path(path).read_text())
    counts = ", ".join(f"{k} {data[f'num{k.capitalize()}']}" for k in ("training", "validation", "test"))
    flag = "SYNTHETIC " if data.get("synthetic") else ""
    if data.get("layout"):
        print(f"{flag}{data['name']} found: {data['layout']}")
    print(f"{flag}{data['name']} datalist ({data['split']['name']} split: {counts}) written to {path}")
    return 0


def _add_demo(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo",
        help="the main job: random crop vs Mask-Aware Cropping, CE vs dilated balanced CE, on SYNTHETIC data",
        description="Generate a strongly imbalanced SYNTHETIC 2-D dataset (about 3% foreground), train the same small "
        "U-Net with random cropping vs Mask-Aware Cropping and cross entropy vs dilated balanced CE, and print the "
        "papers' metrics per setup; writes results.json and demo.png. No download; a few minutes on 2 CPU cores.",
    )
    p.add_argument("--out", default="monai_imbalance_demo", help="output folder (default: monai_imbalance_demo)")
    p.add_argument("--epochs", type=int, default=None, help="epochs per setup (default: 15)")
    p.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:N or mps")
    p.add_argument("--seed", type=int, default=0, help="seed of the data, initial weights and crops (default: 0)")
    p.add_argument("--seeds", type=int, nargs="+", default=None, metavar="S",
                   help="run once per seed (into OUT/seed_S) and print the spread of Dice over the seeds")
    p.add_argument("--threads", type=int, default=2,
                   help="CPU threads (default: 2). Results repeat exactly for the same seed, thread count and machine; "
                   "another thread count or CPU type sums in another order and gives other numbers")
    p.add_argument("--quick", action="store_true", help="a budget of seconds (tiny images, one epoch): a smoke run")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    p.set_defaults(func=_run_demo)


def _run_demo(args: argparse.Namespace) -> int:
    from monai_imbalance.apps.demo import DemoSettings, check_device, run_demo, run_demo_seeds

    if args.epochs is not None and args.epochs < 1:
        raise ValueError(f"--epochs must be >= 1, got {args.epochs}.")
    if args.threads < 1:
        raise ValueError(f"--threads must be >= 1, got {args.threads}.")
    check_device(args.device)
    settings = DemoSettings.tiny() if args.quick else DemoSettings()
    settings.device, settings.seed, settings.num_threads = args.device, args.seed, args.threads
    if args.epochs is not None:
        settings.epochs = args.epochs
    try:
        if args.seeds:
            run_demo_seeds(args.out, settings, args.seeds, progress=not args.no_progress)
        else:
            run_demo(args.out, settings, progress=not args.no_progress)
    except KeyboardInterrupt:
        print(f"\nmonai-imbalance demo: interrupted; the setups that had finished are not saved ({args.out} may "
              "hold an earlier run's files).", file=sys.stderr)
        return 130
    return 0


def _bundle_overrides(extra: Sequence[str]) -> dict[str, str]:
    """``--key value`` pairs after ``--`` (as ``python -m monai.bundle run`` takes them)."""
    items = list(extra)
    if items and items[0] == "--":
        items = items[1:]
    if len(items) % 2 or any(not k.startswith("--") for k in items[::2]):
        raise ValueError(f"bundle overrides after '--' must be '--key value' pairs, got {' '.join(items)!r}.")
    return {k[2:]: v for k, v in zip(items[::2], items[1::2])}


def _add_bench(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bench",
        help="the papers' comparison tables through a bundle, over k folds, resumable",
        description="Train and evaluate a bundle for every setup and fold (each in OUT/<setup>/fold<k>), skip runs "
        "finished earlier, and print mean and 95% confidence interval per metric, best in bold (MAC paper, "
        "Table 1). Bundle overrides go after '--', e.g. -- --dataset_dir /data/Kvasir-SEG --epochs 50.",
    )
    p.add_argument("--bundle", required=True, help="bundle folder, e.g. bundles/kvasir_seg")
    p.add_argument("--setups", default=None, help="paper setups (NC,RC,PC,MAC,NCW,RCW) or crop/loss pairs (mac/dbce)")
    p.add_argument("--losses", default=None, help="loss names (ce,balanced_ce,dice_ce,dbce,...) with the bundle's crop")
    p.add_argument("--folds", type=int, default=None,
                   help="folds 0..N-1 (default: 5, the MAC paper; none when only --seeds is given)")
    p.add_argument("--seeds", type=int, default=None,
                   help="seeds 0..N-1, each run with --seed s: same initial weights and data order for every setup")
    p.add_argument("--config", action="append", default=[], metavar="YAML",
                   help="an override config file merged after the bundle's own (repeatable), e.g. "
                   "bundles/acdc_seg/configs/bench_cpu.yaml")
    p.add_argument("--out", default="bench", help="output folder (default: bench)")
    p.add_argument("--nproc", type=int, default=1, help="GPUs per run, through torchrun (default: 1)")
    p.add_argument("--baseline", default=None, help="setup to take paired differences against (e.g. dice_ce)")
    p.add_argument("--small-structures", action="store_true",
                   help="volumetric bundles (ACDC, Synapse): per-slice Dice on the smallest cross-sections and the "
                   "share of slices where a present structure is missed (report.md, report.csv, dice.png)")
    p.add_argument("--percentile", type=float, default=25.0,
                   help="--small-structures: a cross-section is small at or below this percentile of its class's "
                   "true areas (default 25)")
    p.add_argument("--report-only", action="store_true", help="train nothing: report on the finished runs")
    p.add_argument("--parallel", type=int, default=1,
                   help="runs trained at the same time, one process each (e.g. 7 on one large GPU; default 1)")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("overrides", nargs=argparse.REMAINDER, help="-- --key value ... bundle overrides for every run")
    p.set_defaults(func=_run_bench)


def _run_bench(args: argparse.Namespace) -> int:
    from monai_imbalance.apps.bench import BundleRunner, format_table, parse_setups, run_bench, run_folder_name

    folds = 5 if args.folds is None and args.seeds is None else args.folds
    for flag, value in (("--folds", folds), ("--seeds", args.seeds)):
        if value is not None and value < 1:
            raise ValueError(f"{flag} must be >= 1, got {value}.")
    for config in args.config:
        if not os.path.isfile(config):
            raise FileNotFoundError(f"--config file not found: {config}")
    runner = BundleRunner(args.bundle, _bundle_overrides(args.overrides), nproc=args.nproc,
                          extra_configs=args.config)
    setups = parse_setups(args.setups, args.losses)
    if args.baseline is not None and args.baseline not in setups:
        raise ValueError(f"--baseline {args.baseline!r} is not one of the setups {list(setups)}.")
    runs, summary = run_bench(runner, setups, folds, args.out, progress=not args.no_progress, seeds=args.seeds,
                              train=not args.report_only, parallel=args.parallel)
    if args.small_structures:
        from monai_imbalance.apps.bench_report import bench_report

        bench_report(runner, runs, args.out, baseline=args.baseline, percentile=args.percentile,
                     title=f"{runner.bundle.name}: {', '.join(setups)}")
        print(f"small-structure report: {os.path.join(args.out, 'report.md')}")
    elif args.baseline is not None:
        from monai_imbalance.apps.bench import paired_differences, write_paired_table

        write_paired_table(paired_differences(runs, args.baseline), args.out, args.baseline)
    done = sum(r.status == "done" for r in runs)
    skipped = sum(r.status == "skipped" for r in runs)
    failed = [r for r in runs if r.status == "failed"]
    pending = sum(r.status == "pending" for r in runs)
    print(f"\n{done} runs done, {skipped} skipped (finished earlier), {len(failed)} failed"
          + (f", {pending} not run (--report-only)" if pending else "") + f"; results in {args.out}")
    for r in failed:
        print(f"  failed: {r.setup} {run_folder_name(r.fold, r.seed)}: {r.error.splitlines()[0]}")
    print(format_table(summary, unit="seeds" if folds is None else "folds"))
    return 1 if failed else 0


def _add_tune(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "tune",
        help="OII-guided search of a loss's alpha/beta through a bundle (DIBE paper), optionally vs grid search",
        description="Bisect alpha (false-positive weight; beta = 1 - alpha weighs false negatives) of a loss of the "
        "bundle until the validation OII falls in the target interval (DIBE paper, Fig. 4 and Appendix B); each "
        "step trains one model. Prints the trace in the layout of the paper's Table 3; --grid K also runs the grid "
        "search over K + 1 values for comparison. Resumable: finished trainings are reused.",
    )
    p.add_argument("--bundle", required=True, help="bundle folder, e.g. bundles/kvasir_seg")
    p.add_argument("--loss", default="dibe_dis", help="dibe_dis (default), dibe, dibe_reg, focal_tversky")
    p.add_argument("--interval", type=float, nargs=2, default=(0.3, 0.4), metavar=("M0", "M1"),
                   help="target OII interval (default: the paper's 0.3 0.4, data dependent)")
    p.add_argument("--low", type=float, default=0.1)
    p.add_argument("--high", type=float, default=0.9)
    p.add_argument("--max-steps", type=int, default=5, help="most models the OII-guided search trains (default 5)")
    p.add_argument("--grid", type=int, default=None, metavar="K", help="also grid search K + 1 values, to compare")
    p.add_argument("--fold", type=int, default=0)
    p.add_argument("--out", default="tune", help="output folder (default: tune)")
    p.add_argument("--nproc", type=int, default=1, help="GPUs per run, through torchrun (default: 1)")
    p.add_argument("overrides", nargs=argparse.REMAINDER, help="-- --key value ... bundle overrides for every run")
    p.set_defaults(func=_run_tune)


def _run_tune(args: argparse.Namespace) -> int:
    from pathlib import Path

    from monai_imbalance.apps.bench import BundleRunner, bundle_alpha_evaluator
    from monai_imbalance.tuning import format_trace, grid_search, oii_guided_search

    runner = BundleRunner(args.bundle, _bundle_overrides(args.overrides), nproc=args.nproc)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    evaluate = bundle_alpha_evaluator(runner, args.loss, out / "runs", fold=args.fold)
    columns = ["step", "alpha", "beta", "iou", "pa", "oii", "in_interval"]
    guided = oii_guided_search(evaluate, tuple(args.interval), args.low, args.high, args.max_steps,
                               trace_file=out / "oii_guided_trace.json")
    title = f"OII guidance ({args.loss}, target OII in {tuple(args.interval)})"
    print(format_trace(guided.trace, columns, title=title))
    chosen = next(r for r in guided.trace if r["alpha"] == guided.chosen)
    print(f"chosen alpha {guided.chosen:g} (beta {1 - guided.chosen:g}): IoU {chosen['iou']:.3f}, "
          f"PA {chosen.get('pa', float('nan')):.3f}, OII {chosen['oii']:+.3f}; {len(guided.trace)} models trained")
    if args.grid is not None:
        grid = grid_search(evaluate, tuple(args.interval), args.low, args.high, args.grid,
                           trace_file=out / "grid_trace.json")
        print("\n" + format_trace(grid.trace, columns, title=f"grid search ({args.grid + 1} values, chosen by IoU)"))
        best = next(r for r in grid.trace if r["alpha"] == grid.chosen)
        print(f"chosen alpha {grid.chosen:g}: IoU {best['iou']:.3f}, PA {best.get('pa', float('nan')):.3f}, "
              f"OII {best['oii']:+.3f}; {len(grid.trace)} models trained")
        print(f"\ncost: OII guidance {len(guided.trace)} models, grid search {len(grid.trace)} models "
              "(trainings at the same alpha are shared between the two here)")
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
    _add_plan(sub)
    _add_synth(sub)
    _add_prepare(sub)
    _add_demo(sub)
    _add_bench(sub)
    _add_tune(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError) as err:
        print(f"monai-imbalance {args.command}: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # Ctrl-C: one line and the shell's status for SIGINT, not a traceback
        print(f"\nmonai-imbalance {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
