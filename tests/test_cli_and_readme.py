from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from monai_imbalance.apps.synthetic import make_synthetic_dataset
from monai_imbalance.cli import main
from monai_imbalance.stats import ImbalanceStatistics

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_synth_then_stats_on_png_files_matches_arrays(tmp_path, capsys):
    out = tmp_path / "data"
    assert main(["synth", "--out", str(out), "--num-images", "6", "--size", "48", "40", "--num-classes", "3",
                 "--fg-fraction", "0.05", "--val-fraction", "0", "--seed", "3"]) == 0
    assert "SYNTHETIC" in capsys.readouterr().out
    json_out = tmp_path / "stats.json"
    assert main(["stats", "--datalist", str(out / "datalist.json"), "--num-classes", "3", "--json", str(json_out),
                 "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "foreground:background" in text and "class 2" in text
    arrays = [p["label"] for p in make_synthetic_dataset(6, seed=3, spatial_size=(48, 40), num_classes=3,
                                                         fg_fraction=0.05)]
    expected = ImbalanceStatistics(num_classes=3).run(arrays, progress=False)
    got = json.loads(json_out.read_text())
    assert [c["pixels"] for c in got["classes"]] == [c.pixels for c in expected.classes]
    assert got["ratio"] == expected.ratio


def test_stats_on_folder_of_jpeg_masks_and_nifti_volumes(tmp_path, capsys):
    main(["synth", "--out", str(tmp_path / "k"), "--num-images", "4", "--label-format", "jpg", "--image-format",
          "jpg", "--channels", "3", "--fg-fraction", "0.16"])
    assert main(["stats", "--folder", str(tmp_path / "k" / "labels"), "--json", str(tmp_path / "k.json"),
                 "--roi-size", "64", "--no-progress"]) == 0
    got = json.loads((tmp_path / "k.json").read_text())
    assert got["num_classes"] == 2  # JPEG masks are binarised at 127, not read as 256 grey levels
    assert abs(got["foreground_fraction"] - 0.16) < 0.01  # compression noise moves a few edge pixels
    main(["synth", "--out", str(tmp_path / "v"), "--num-images", "3", "--size", "24", "24", "12", "--num-classes",
          "3", "--spacing", "1.5", "1.5", "8"])
    assert main(["stats", "--folder", str(tmp_path / "v" / "labels"), "--num-classes", "3", "--no-progress"]) == 0
    assert "class 2" in capsys.readouterr().out


def test_cli_errors_are_one_line_messages(tmp_path, capsys):
    assert main(["stats", "--folder", str(tmp_path / "absent"), "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("monai-imbalance stats: error:") and "absent" in err and "Traceback" not in err
    main(["synth", "--out", str(tmp_path / "d"), "--num-images", "2", "--num-classes", "3"])
    assert main(["stats", "--folder", str(tmp_path / "d" / "labels"), "--num-classes", "2", "--no-progress"]) == 1
    assert "num_classes=2" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["stats", "--folder", "x", "--threshold", "high"])


def test_console_script_is_installed():
    result = subprocess.run(["monai-imbalance", "--version"], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.startswith("monai-imbalance ")


def test_readme_python_examples_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    blocks = re.findall(r"```python\n(.*?)```", README, re.S)
    assert blocks
    for block in blocks:
        exec(compile(block, "README.md", "exec"), {})
    assert (tmp_path / "synthetic_demo" / "stats.json").exists()


@pytest.mark.slow
def test_readme_bash_examples_run(tmp_path):
    commands = [line.strip() for block in re.findall(r"```bash\n(.*?)```", README, re.S)
                for line in block.splitlines() if line.strip().startswith("monai-imbalance")]
    assert len(commands) >= 3
    for command in commands:
        result = subprocess.run(command, shell=True, cwd=tmp_path, capture_output=True, text=True)
        assert result.returncode == 0, (command, result.stderr)


def test_ci_runs_exactly_the_readme_test_command():
    section = README.split("## Tests", 1)[1]
    command = re.search(r"```bash\n(?:.*\n)*?(python -m pytest[^\n]*)\n", section).group(1)
    ci = (ROOT / ".ci" / "run").read_text()
    assert command in ci.splitlines(), f"{command!r} is not a line of .ci/run"


def test_synthetic_arrays_unchanged_by_cli_path(tmp_path):
    # the CLI passes its size as a tuple: same pairs as the Python API
    main(["synth", "--out", str(tmp_path), "--num-images", "1", "--size", "32", "32", "--val-fraction", "0"])
    from monai_imbalance.apps.io import load_label_file

    label = load_label_file(tmp_path / "labels" / "case_0000.png")
    np.testing.assert_array_equal(label, make_synthetic_dataset(1, spatial_size=(32, 32))[0]["label"][0])


if __name__ == "__main__":
    sys.exit(pytest.main([__file__]))


def test_readme_layout_matches_the_package_tree():
    layout = README.split("## Layout", 1)[1].split("```", 2)[1]
    package = ROOT / "monai_imbalance"
    folders = sorted(p.name for p in package.iterdir() if p.is_dir() and (p / "__init__.py").is_file())
    listed = sorted(re.findall(r"^  ([a-z_]+)/", layout, re.M))
    assert listed == folders
    for folder in folders:  # every module a line names exists
        line = next(line for line in layout.splitlines() if line.startswith(f"  {folder}/"))
        for name in re.findall(r"([a-z_]+\.py)", line):
            assert (package / folder / name).is_file(), f"{folder}/{name}"
    for module in re.findall(r"^  ([a-z_]+\.py) ", layout, re.M):
        assert (package / module).is_file(), module
