"""The import layering of docs/architecture.md, file and function size budgets, no print().

The store is the only contract between stages; these tests keep it that way by reading the import
statements of every file under src/wsvad (lazy imports inside functions included).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "wsvad"

# Which wsvad packages each package may import: the diagram "Import layering" of
# docs/architecture.md, written as a table. Change the two together.
FOUNDATION = {"__init__", "errors", "config", "checksums", "runs", "atomic", "locks"}
MAY_IMPORT = {
    "__init__": set(),
    "errors": set(),
    "checksums": set(),
    "runs": set(),
    "atomic": set(),
    "locks": {"errors"},
    "config": {"errors", "atomic"},
    "pipeline": FOUNDATION,
    "data": FOUNDATION,
    "detectors": FOUNDATION,
    "extract": FOUNDATION | {"pipeline", "data"},
    "transfer": FOUNDATION | {"pipeline", "data", "extract"},
    "scoring": FOUNDATION | {"pipeline", "detectors"},
    "train": FOUNDATION | {"pipeline", "data", "detectors", "scoring"},
    "evaluate": FOUNDATION | {"pipeline", "data", "detectors", "extract", "scoring"},
    "cli": FOUNDATION
    | {"pipeline", "data", "detectors", "extract", "transfer", "scoring", "train", "evaluate"},
    "__main__": {"cli"},
}
# Third-party modules a package must never import: pipeline/ and data/ stay torch-free (a store can
# be read without torch); detectors/ compute, they do not read stores.
MUST_NOT_IMPORT = {"pipeline": ("torch",), "data": ("torch",), "detectors": ("zarr",)}
MAX_FILE_LINES = 500
MAX_FUNCTION_LINES = 60


def _top_level(path: Path, src: Path = SRC) -> str:
    """The src/wsvad entry of a file: ``train`` for train/run.py, ``config`` for config.py."""
    return path.relative_to(src).parts[0].removesuffix(".py")


def _imported_modules(path: Path, src: Path = SRC) -> set[str]:
    """Dotted names of everything ``path`` imports, relative imports made absolute.

    ``from a.b import c`` gives ``a.b.c``: ``from wsvad import errors`` imports wsvad.errors.
    """
    package = ["wsvad", *path.relative_to(src).parts[:-1]]
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # level 1 is this package, 2 its parent...
                anchor = package[: len(package) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def _wsvad_target(name: str, src: Path = SRC) -> str | None:
    """The src/wsvad entry an imported name lands in; None for a third-party module."""
    parts = name.split(".")
    if parts[0] != "wsvad":
        return None
    if len(parts) > 1 and ((src / parts[1]).is_dir() or (src / f"{parts[1]}.py").is_file()):
        return parts[1]
    return "__init__"  # a name defined in wsvad/__init__.py: __version__


def _source_files(src: Path = SRC) -> list[Path]:
    return sorted(src.rglob("*.py"))


def test_the_layering_table_names_every_package_and_module():
    entries = {
        p.name.removesuffix(".py")
        for p in SRC.iterdir()
        if p.suffix == ".py" or (p / "__init__.py").is_file()
    }
    assert entries == set(MAY_IMPORT), (
        "add it to MAY_IMPORT here and to the diagram in docs/architecture.md"
    )


@pytest.mark.parametrize("package", sorted(MAY_IMPORT))
def test_package_imports_only_what_the_layering_allows(package):
    bad = []
    for path in _source_files():
        if _top_level(path) != package:
            continue
        for name in sorted(_imported_modules(path)):
            target = _wsvad_target(name)
            wsvad_ok = target in (None, package) or target in MAY_IMPORT[package]
            third_party_ok = name.split(".")[0] not in MUST_NOT_IMPORT.get(package, ())
            if not (wsvad_ok and third_party_ok):
                bad.append(f"{path.relative_to(SRC)} imports {name}")
    assert not bad, "\n".join(bad)


def test_the_import_reader_sees_lazy_relative_and_from_imports(tmp_path):
    """The layering test is only as good as this reader: it must see every form of import."""
    for package in ("train", "evaluate", "extract"):
        (tmp_path / package).mkdir()
    (tmp_path / "errors.py").write_text("")
    path = tmp_path / "train" / "run.py"
    path.write_text(
        "import torch.nn\n"
        "from wsvad import __version__, errors\n"
        "def f():\n"
        "    from ..evaluate import metrics\n"
        "    from . import loop\n"
        "    import wsvad.extract.run\n"
    )
    names = _imported_modules(path, tmp_path)
    assert names == {
        "torch.nn",
        "wsvad.__version__",
        "wsvad.errors",
        "wsvad.evaluate.metrics",
        "wsvad.train.loop",
        "wsvad.extract.run",
    }
    targets = {_wsvad_target(name, tmp_path) for name in names}
    assert targets == {None, "__init__", "errors", "evaluate", "train", "extract"}
    assert _top_level(path, tmp_path) == "train"


def test_no_source_file_over_the_size_budget():
    too_long = [
        f"{p.relative_to(SRC)}: {n} lines"
        for p in _source_files()
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_FILE_LINES
    ]
    assert not too_long, "split these files:\n" + "\n".join(too_long)


def _states_why_it_is_long(node: ast.FunctionDef | ast.AsyncFunctionDef, lines: list[str]) -> bool:
    """A comment between the signature and the first statement, or a docstring line starting
    with "Long because", says why a function is over the budget."""
    args = node.args
    signature = [node.returns, *args.defaults, *args.kw_defaults, args.vararg, args.kwarg]
    signature += [a.annotation for a in (*args.posonlyargs, *args.args, *args.kwonlyargs)]
    signature_end = max([node.lineno] + [n.end_lineno for n in signature if n is not None])
    top = lines[signature_end : node.body[0].lineno - 1]  # the lines after the signature's last
    if any(line.strip().startswith("#") for line in top):
        return True
    docstring = ast.get_docstring(node) or ""
    return any(line.strip().startswith("Long because") for line in docstring.splitlines())


def _long_functions(path: Path, src: Path = SRC) -> list[str]:
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    found = []
    for node in ast.walk(ast.parse(text)):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        length = node.end_lineno - node.lineno + 1  # from `def` to its last line, no decorators
        if length > MAX_FUNCTION_LINES and not _states_why_it_is_long(node, lines):
            found.append(f"{path.relative_to(src)}:{node.lineno} {node.name}: {length} lines")
    return found


def test_no_function_over_the_size_budget_without_a_reason():
    too_long = [entry for path in _source_files() for entry in _long_functions(path)]
    assert not too_long, (
        f"split these functions, or say at their top why they need over {MAX_FUNCTION_LINES} "
        "lines (a comment, or a docstring line starting with 'Long because'):\n"
        + "\n".join(too_long)
    )


def test_the_function_budget_accepts_a_reason_and_only_a_reason(tmp_path):
    body = "    x = 1\n" * MAX_FUNCTION_LINES
    reasoned = "    Long because ten steps share their locals.\n"
    text = (
        f"def bare():\n{body}\n"
        f"def commented(\n    a: int,\n) -> None:\n    # one line per CLI option\n{body}\n"
        f'def documented():\n    """Do it.\n\n{reasoned}    """\n{body}\n'
        f'def said_elsewhere():\n    """Do it; long because."""\n{body}\n'
        "def short():\n    # a comment\n    return 1\n"
    )
    path = tmp_path / "f.py"
    path.write_text(text)
    elsewhere = text.splitlines().index("def said_elsewhere():") + 1
    assert _long_functions(path, tmp_path) == [
        f"f.py:1 bare: {MAX_FUNCTION_LINES + 1} lines",
        f"f.py:{elsewhere} said_elsewhere: {MAX_FUNCTION_LINES + 2} lines",
    ]


def test_no_print_outside_the_cli():
    offenders = []
    for path in _source_files():
        if _top_level(path) == "cli":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "print"
            ):
                offenders.append(f"{path.relative_to(SRC)}:{node.lineno}")
    assert not offenders, "use logging, not print: " + ", ".join(offenders)
