"""Helpers shared by the bundle tests: copy a bundle to a temporary folder, run it as a user would, parse it
in-process, and drop the OII metric when its handler (``monai_imbalance.handlers.OutputImbalanceIndex``) is not in
the installed package."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
BUNDLES = REPO / "bundles"
OII_HANDLER = "OutputImbalanceIndex"


def oii_available() -> bool:
    import monai_imbalance.handlers as handlers

    return hasattr(handlers, OII_HANDLER)


def copy_bundle(name: str, dest: Path) -> Path:
    """A copy of ``bundles/<name>`` in ``dest`` (runs write models/, logs/, eval/ into their bundle_root), plus
    ``configs/no_oii.yaml`` removing the OII metric when its handler is missing."""
    root = dest / name
    shutil.copytree(BUNDLES / name, root)
    metrics = yaml.safe_load((root / "configs" / "train.yaml").read_text())["validate"].get("additional_metrics")
    if not oii_available() and "val_oii" in (metrics or {}):  # the volumetric bundles compute OII themselves
        metrics.pop("val_oii")
        (root / "configs" / "no_oii.yaml").write_text(yaml.safe_dump({"validate#additional_metrics": metrics}))
    return root


def config_files(root: Path, *names: str) -> list[str]:
    files = [str(root / "configs" / f"{n}.yaml") for n in names]
    extra = root / "configs" / "no_oii.yaml"
    if extra.is_file() and "inference" not in names:
        files.append(str(extra))
    return files


def override_args(overrides: dict) -> list[str]:
    args = []
    for key, value in overrides.items():
        args += [f"--{key}", value if isinstance(value, str) else repr(value)]
    return args


def run_bundle(root: Path, names: tuple[str, ...], overrides: dict, torchrun: bool = False, timeout: int = 400):
    """``python -m monai.bundle run`` (or through ``torchrun --nproc_per_node 1``) in ``root``; returns the
    completed process (stdout and stderr together)."""
    files = config_files(root, *names)
    head = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nnodes=1", "--nproc_per_node=1"] \
        if torchrun else [sys.executable]
    cmd = head + ["-m", "monai.bundle", "run", "--config_file", repr(files), "--bundle_root", str(root)]
    cmd += override_args(overrides)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run(cmd, cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=timeout)
    assert proc.returncode == 0, f"{' '.join(cmd)}\n{proc.stdout[-6000:]}"
    return proc


def parse_bundle(root: Path, names: tuple[str, ...], overrides: dict):
    """A ``ConfigParser`` of the merged configs with ``overrides`` (in-process, no start-up cost)."""
    from monai.bundle import ConfigParser

    parser = ConfigParser()
    parser.read_config([str(p) for p in config_files(root, *names)])
    parser.read_meta(str(root / "configs" / "metadata.json"))
    parser["bundle_root"] = str(root)
    parser.update(overrides)
    return parser
