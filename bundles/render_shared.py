"""Write the parts the bundles share into each of them, from one source: ``bundles/_shared``.

A bundle stays a self-contained folder (MONAI's model zoo ships one folder per bundle, and
``python -m monai.bundle run --config_file configs/train.yaml`` keeps working), while its shared definitions are
written once. In a bundle's config a shared part sits between two marker lines::

    # >>> shared: train_engine (bundles/_shared/train_engine.yaml; edit it there, then python bundles/render_shared.py)
    ...
    # <<< shared: train_engine

and ``python bundles/render_shared.py`` replaces what lies between them with ``bundles/_shared/<name>.yaml``, at the
marker's indentation. Whole files (``logging.conf``) are copied. ``--check`` changes nothing and exits with 1 when a
bundle differs from its rendering (the test suite runs it).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

BUNDLES = Path(__file__).resolve().parent
SHARED = BUNDLES / "_shared"
NAMES = ("kvasir_seg", "isic2018_seg", "synapse_seg", "acdc_seg", "generic_seg")
# configs with shared parts, and the files copied whole
CONFIGS = ("train.yaml", "multi_gpu_train.yaml", "evaluate.yaml", "multi_gpu_evaluate.yaml")
WHOLE_FILES = ("logging.conf",)

_BEGIN = re.compile(r"^(?P<indent> *)# >>> shared: (?P<name>[\w.-]+)\b.*$")
_END = "# <<< shared: {name}"


def begin_marker(name: str, indent: str = "") -> str:
    return (f"{indent}# >>> shared: {name} (bundles/_shared/{name}.yaml; edit it there, then python "
            "bundles/render_shared.py)")


def end_marker(name: str, indent: str = "") -> str:
    return indent + _END.format(name=name)


def block_text(name: str, indent: str) -> list[str]:
    """The lines of ``_shared/<name>.yaml``, indented by ``indent`` (blank lines stay blank)."""
    path = SHARED / f"{name}.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"shared block {name!r} is used by a bundle but {path} does not exist.")
    return [indent + line if line.strip() else "" for line in path.read_text().rstrip("\n").split("\n")]


def render(text: str, where: str = "") -> tuple[str, list[str]]:
    """``text`` with every shared part replaced by its source; also the names of the parts found."""
    lines = text.split("\n")
    out: list[str] = []
    used: list[str] = []
    i = 0
    while i < len(lines):
        match = _BEGIN.match(lines[i])
        if match is None:
            out.append(lines[i])
            i += 1
            continue
        name, indent = match.group("name"), match.group("indent")
        end = end_marker(name, indent)
        try:
            j = lines.index(end, i + 1)
        except ValueError:
            raise ValueError(
                f"{where}: line {i + 1} opens shared part {name!r} but no line {end!r} closes it."
            ) from None
        out += [begin_marker(name, indent), *block_text(name, indent), end]
        used.append(name)
        i = j + 1
    return "\n".join(out), used


def rendered_files() -> dict[Path, str]:
    """``{path: text it must have}`` for every bundle file with shared parts or copied whole."""
    files: dict[Path, str] = {}
    for bundle in NAMES:
        configs = BUNDLES / bundle / "configs"
        for name in CONFIGS:
            path = configs / name
            if path.is_file():
                files[path] = render(path.read_text(), str(path))[0]
        for name in WHOLE_FILES:
            files[configs / name] = (SHARED / name).read_text()
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write bundles/_shared into the bundles.")
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 when a bundle differs")
    args = parser.parse_args(argv)
    stale = []
    for path, text in rendered_files().items():
        if not path.is_file() or path.read_text() != text:
            stale.append(path)
            if not args.check:
                path.write_text(text)
    for path in stale:
        print(f"{'differs from its rendering' if args.check else 'rendered'}: {path.relative_to(BUNDLES.parent)}")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
