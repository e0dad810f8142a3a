"""benchmarks/README.md names every benchmark script, and help texts and skip reasons say what a behaviour is, not
which tracker entry asked for it (no ``issue`` followed by a number)."""

from __future__ import annotations

import argparse
import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "benchmarks"
TESTS = ROOT / "tests"
ISSUE_NUMBER = re.compile(r"\bissues?\s*(?:no\.?\s*)?#?\s*\d+", re.IGNORECASE)
SKIP_CALLS = {"skip", "skipif", "xfail", "importorskip"}

SCRIPTS = sorted(p.name for p in BENCHMARKS.iterdir() if p.suffix in (".py", ".sh"))


def test_there_are_benchmark_scripts():
    assert "bench_crop.py" in SCRIPTS and "gpu_check.sh" in SCRIPTS


@pytest.mark.parametrize("script", SCRIPTS)
def test_benchmarks_readme_names_every_script(script):
    readme = (BENCHMARKS / "README.md").read_text()
    assert f"`{script}" in readme, f"benchmarks/README.md does not name {script}"
    table = [line for line in readme.splitlines() if line.startswith(f"| `{script}` |")]
    assert len(table) == 1, f"benchmarks/README.md's table has no (or more than one) row for {script}"
    assert table[0].rstrip().endswith("|") and table[0].count("|") == 5  # measures, baseline, last output


@pytest.mark.parametrize("script", SCRIPTS)
def test_benchmark_scripts_name_no_issue_number(script):
    """The whole file: the module docstring is the argparse description, the comments of a .sh its usage."""
    text = (BENCHMARKS / script).read_text()
    assert not ISSUE_NUMBER.findall(text), f"{script}: {ISSUE_NUMBER.findall(text)}"


def _parsers(parser: argparse.ArgumentParser):
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from _parsers(sub)


def test_cli_help_names_no_issue_number():
    from monai_imbalance.cli import build_parser

    for parser in _parsers(build_parser()):
        found = ISSUE_NUMBER.findall(parser.format_help())
        assert not found, f"{parser.prog}: {found}"


def _strings(node: ast.AST) -> list[str]:
    return [n.value for n in ast.walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, str)]


def _skip_reasons_and_docstrings(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            doc = ast.get_docstring(node, clean=False)
            if doc:
                found.append((getattr(node, "lineno", 1), doc))
        elif isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in SKIP_CALLS:
                found.extend((node.lineno, s) for s in _strings(node))
    return found


TEST_FILES = sorted(TESTS.rglob("*.py"))


@pytest.mark.parametrize("path", TEST_FILES, ids=lambda p: str(p.relative_to(TESTS)))
def test_skip_reasons_and_docstrings_name_no_issue_number(path):
    bad = [(line, text) for line, text in _skip_reasons_and_docstrings(path) if ISSUE_NUMBER.search(text)]
    assert not bad, f"{path.relative_to(ROOT)}: {bad}"


def test_the_issue_pattern_finds_what_it_should():
    assert ISSUE_NUMBER.search("handler (issue 5) is not") and ISSUE_NUMBER.search("see Issue #17")
    assert not ISSUE_NUMBER.search("issues with 3 classes") and not ISSUE_NUMBER.search("tissue 5 mm")
