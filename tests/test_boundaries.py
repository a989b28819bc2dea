"""The import rules of docs/architecture.md: the store is the only contract between stages."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "wsvad"

# package -> module prefixes it must never import (anywhere in the file, lazy imports included)
FORBIDDEN = {
    "pipeline": ("torch", "wsvad.extract", "wsvad.train", "wsvad.evaluate", "wsvad.detectors"),
    "data": ("torch", "wsvad.extract", "wsvad.train", "wsvad.evaluate", "wsvad.detectors"),
    "detectors": (
        "zarr",
        "wsvad.pipeline",
        "wsvad.extract",
        "wsvad.train",
        "wsvad.evaluate",
        "wsvad.data",
    ),
    "train": ("wsvad.extract", "wsvad.evaluate"),
    "evaluate": ("wsvad.train",),
}
MAX_LINES = 500


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_respects_import_rules(package):
    bad = []
    for path in sorted((SRC / package).rglob("*.py")):
        for name in _imports(path):
            if any(name == f or name.startswith(f + ".") for f in FORBIDDEN[package]):
                bad.append(f"{path.relative_to(SRC)} imports {name}")
    assert not bad, "\n".join(bad)


def test_no_source_file_over_the_size_budget():
    too_long = [
        f"{p.relative_to(SRC)}: {n} lines"
        for p in sorted(SRC.rglob("*.py"))
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    ]
    assert not too_long, "split these files:\n" + "\n".join(too_long)


def test_no_print_outside_the_cli():
    offenders = []
    for path in sorted(SRC.rglob("*.py")):
        if "cli" in path.relative_to(SRC).parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "print"
            ):
                offenders.append(f"{path.relative_to(SRC)}:{node.lineno}")
    assert not offenders, "use logging, not print: " + ", ".join(offenders)
