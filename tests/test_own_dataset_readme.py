"""The README's "Your own dataset" path, run as written: plan, train, bench on generated 2-D and 3-D folders
(SYNTHETIC look-alikes; a budget of one epoch appended to the commands)."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
BUDGET = ["--epochs", "1", "--val_interval", "1", "--num_workers", "0", "--cache_rate", "0", "--progress", "False"]


def _commands() -> list[list[str]]:
    section = README.split("## Your own dataset", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```console\n(.*?)```", section, re.S).group(1)
    return [shlex.split(line) for line in block.strip().splitlines()]


def test_readme_has_the_three_commands():
    commands = _commands()
    assert [c[:2] for c in commands] == [["monai-imbalance", "plan"], ["python", "-m"], ["monai-imbalance", "bench"]]
    assert "my_data" in commands[0] and "plan.yaml" in commands[1][-1]


def _run(command: list[str], cwd: Path) -> str:
    # the README's paths are relative to the repository root; the commands run in a scratch folder
    command = [c.replace("bundles/generic_seg", str(ROOT / "bundles" / "generic_seg")) for c in command]
    if command[0] == "monai-imbalance":
        command = [sys.executable, "-m", "monai_imbalance.cli", *command[1:]]
    elif command[0] == "python":
        command = [sys.executable, *command[1:]]
    proc = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    assert proc.returncode == 0, f"{' '.join(command)}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


@pytest.mark.slow
@pytest.mark.parametrize("dims", [2, 3])
def test_readme_own_dataset_path_end_to_end(tmp_path, dims):
    from monai_imbalance.apps.synthetic import write_synthetic_dataset

    if dims == 2:  # RGB PNGs with 0/255 masks, as most 2-D datasets come
        write_synthetic_dataset(tmp_path / "my_data", 8, image_format="png", spatial_size=(64, 64), channels=3,
                                fg_fraction=0.05, seed=1)
    else:  # NIfTI volumes, three classes, anisotropic voxels
        write_synthetic_dataset(tmp_path / "my_data", 6, image_format="nii.gz", spatial_size=(32, 32, 16),
                                num_classes=3, fg_fraction=0.06, spacing=(1.0, 1.0, 2.5), seed=1)
    plan_cmd, train_cmd, bench_cmd = _commands()
    printed = _run([*plan_cmd, "--no-progress"], tmp_path)
    assert "plan for" in printed and "loss =" in printed
    plan = yaml.safe_load((tmp_path / "plan.yaml").read_text())
    assert plan["spatial_dims"] == dims and plan["out_channels"] == (2 if dims == 2 else 3)
    assert plan["label_threshold"] == (127.0 if dims == 2 else None)

    _run([*train_cmd, *BUDGET], tmp_path)
    assert (tmp_path / "models" / "model.pt").is_file()
    setup = json.loads((tmp_path / "models" / "setup.json").read_text())
    assert setup["loss"]["name"] == plan["loss"] and setup["crop"]["name"] == plan["crop"]

    _run([*bench_cmd, "--no-progress", "--", *BUDGET], tmp_path)
    summary = json.loads((tmp_path / "bench" / "summary.json").read_text())
    assert list(summary) == ["dice_ce", "dbce"]
    for entry in summary.values():
        assert entry["folds"] == 2 and entry["failed"] == 0
        assert all(0.0 <= v <= 1.0 for v in entry["val_mean_dice"]["values"])
    assert (tmp_path / "bench" / "table.md").is_file()
