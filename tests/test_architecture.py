"""The shape of the source tree, read from the files (static imports; TYPE_CHECKING blocks
aside): app/ in layers that import one way only, no import cycle among app modules, svdcore
free of app, exports free of Dash views, no module over 500 lines, and a CLI whose `layers`
and `zoo` commands load no web code."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MAX_LINES = 500

# The layers of app/, bottom first: a module imports modules of its own layer or below only.
LAYERS: list[tuple[str, ...]] = [
    ("app.config", "app.ids", "app.formatting"),  # configuration, component ids, number formats
    ("app.storage", "app.figures"),  # uploads and sessions; pure figure builders
    ("app.services",),  # the only bridge to svdcore
    ("app.export",),  # exports and reports: services and figures, never views
    ("app.views", "app.tours"),  # Dash layouts and callbacks, one folder per tab
    ("app.web",),  # routes, job managers, deployment
    ("app.main", "app.worker", "app.gunicorn_conf", "app.cli"),  # app factory, entry points
]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _sources(package: str) -> dict[str, Path]:
    return {_module_name(p): p for p in sorted((ROOT / package).rglob("*.py"))}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(path: Path, module: str) -> set[str]:
    """Every module `path` imports (at any depth, TYPE_CHECKING blocks left out), absolute."""
    tree = ast.parse(path.read_text(), filename=str(path))
    is_package = path.name == "__init__.py"
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                visit(ast.Module(body=child.orelse, type_ignores=[]))
                continue
            if isinstance(child, ast.Import):
                found.update(alias.name for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = module.split(".")
                    base = base if is_package else base[:-1]
                    base = base[: len(base) - (child.level - 1)]
                    target = ".".join([*base, child.module] if child.module else base)
                else:
                    target = child.module or ""
                found.add(target)
                found.update(f"{target}.{alias.name}" for alias in child.names)
            visit(child)

    visit(tree)
    return found


def _app_graph() -> dict[str, set[str]]:
    modules = _sources("app")
    graph = {}
    for name, path in modules.items():
        if name == "app":  # the bare package: nothing in it
            continue
        graph[name] = {m for m in _imports(path, name) if m in modules and m not in (name, "app")}
    return graph


def _layer(module: str) -> int:
    for i, prefixes in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return i
    raise AssertionError(f"{module} belongs to no layer of tests/test_architecture.py")


def test_app_layers_import_one_way_only():
    wrong = [
        f"{module} (layer {_layer(module)}) imports {target} (layer {_layer(target)})"
        for module, targets in _app_graph().items()
        for target in targets
        if _layer(target) > _layer(module)
    ]
    assert not wrong, "\n".join(wrong)


def test_no_import_cycle_among_app_modules():
    graph = _app_graph()
    # a package's __init__ importing its own submodules is how a package exports them
    graph = {m: {t for t in ts if not t.startswith(m + ".")} for m, ts in graph.items()}
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def walk(node: str, stack: list[str]) -> None:
        state[node] = 1
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                cycles.append([*stack[stack.index(target) :], target])
            elif target not in state:
                walk(target, [*stack, target])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            walk(node, [node])
    assert not cycles, "\n".join(" -> ".join(c) for c in cycles)


def test_svdcore_imports_nothing_of_app():
    wrong = [
        f"{name} imports {target}"
        for name, path in _sources("svdcore").items()
        for target in _imports(path, name)
        if target == "app" or target.startswith("app.")
    ]
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("package", ["app.export", "app.cli"])
def test_exports_and_the_cli_import_no_dash_views(package):
    graph = _app_graph()
    wrong = [
        f"{name} imports {target}"
        for name, targets in graph.items()
        if name == package or name.startswith(package + ".")
        for target in targets
        if target.startswith("app.views")
    ]
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("package", ["app", "svdcore", "svdscope"])
def test_no_module_over_500_lines(package):
    long = {
        str(p.relative_to(ROOT)): n
        for p in (ROOT / package).rglob("*.py")
        if (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert not long, f"modules over {MAX_LINES} lines: {long}"


def test_test_modules_have_unique_basenames():
    """The suite has no __init__.py files, so pytest imports each test module by its basename:
    two test files of one name in different folders fail collection (a fresh clone's CI did)."""
    seen: dict[str, list[str]] = {}
    for p in sorted((ROOT / "tests").rglob("test_*.py")):
        seen.setdefault(p.name, []).append(str(p.relative_to(ROOT)))
    twins = {name: paths for name, paths in seen.items() if len(paths) > 1}
    assert not twins, f"test modules sharing a basename: {twins}"


def test_the_import_checker_sees_relative_and_guarded_imports(tmp_path):
    src = tmp_path / "mod.py"
    src.write_text(
        "from typing import TYPE_CHECKING\nfrom . import sibling\nfrom .. import up\n"
        "if TYPE_CHECKING:\n    import hidden\nelse:\n    import shown\n"
        "def f():\n    import inner\n"
    )
    found = _imports(src, "pkg.sub.mod")
    assert {"pkg.sub.sibling", "pkg.up", "shown", "inner"} <= found
    assert "hidden" not in found


@pytest.mark.parametrize("command", [["zoo", "list"], ["layers", "deernet", "--format", "csv"]])
def test_cli_layers_and_zoo_load_no_web_code(command):
    code = (
        "import sys, io, contextlib\n"
        "from app.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    assert main({command!r}) == 0\n"
        "web = sorted(m for m in sys.modules if m.split('.')[0] in ('dash', 'flask')\n"
        "    or m.startswith(('app.views', 'app.web', 'app.main')))\n"
        "print(' '.join(web))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "", f"`svdscope {' '.join(command)}` loaded {out.stdout}"
