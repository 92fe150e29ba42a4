"""The apps depend in one direction: cskpi → ingestion → metrics.

cskpi imports neither ingestion nor metrics; ingestion imports cskpi only; metrics may import both.
What flows the other way (a record changed, a zone changed, the health backlog) goes through the
signals of cskpi.signals and ingestion.signals, connected in metrics.apps. No import is hidden in a
function to dodge a cycle: only an AppConfig.ready may import inside a function (Django's way to
connect receivers once the models are loaded).
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
APPS = ("cskpi", "ingestion", "metrics")
MAY_NOT_IMPORT = {"cskpi": {"ingestion", "metrics"}, "ingestion": {"metrics"}, "metrics": set()}


def _modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def _imports(tree: ast.AST, module: str) -> list[tuple[int, str, ast.AST]]:
    """(line, top-level package, node) of every import in the module, relative ones resolved."""
    found = []
    package_parts = module.split(".")[:-1]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name.split(".")[0], node) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package_parts[: len(package_parts) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            found.append((node.lineno, name.split(".")[0], node))
    return found


def _module_name(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts)


@pytest.mark.parametrize("package", ["cskpi", "ingestion"])
def test_a_lower_app_imports_no_app_built_on_it(package):
    forbidden = MAY_NOT_IMPORT[package]
    offending = []
    for path in _modules(package):
        module = _module_name(path)
        tree = ast.parse(path.read_text(), filename=str(path))
        offending += [f"{module}:{line} imports {top}" for line, top, _ in _imports(tree, module) if top in forbidden]
    assert not offending, "cskpi → ingestion → metrics is the only direction:\n" + "\n".join(offending)


def _function_imports(tree: ast.AST) -> list[tuple[str, ast.AST]]:
    """(enclosing function name, import node) for each import inside a function."""
    found = []

    def visit(node: ast.AST, function: str | None) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                visit(child, child.name)
            elif isinstance(child, ast.Import | ast.ImportFrom):
                if function is not None:
                    found.append((function, child))
            else:
                visit(child, function)

    visit(tree, None)
    return found


def test_no_app_import_is_hidden_in_a_function():
    offending = []
    for package in APPS:
        for path in _modules(package):
            module = _module_name(path)
            tree = ast.parse(path.read_text(), filename=str(path))
            nested = {id(node): function for function, node in _function_imports(tree)}
            for line, top, node in _imports(tree, module):
                if top in APPS and id(node) in nested and not (path.name == "apps.py" and nested[id(node)] == "ready"):
                    offending.append(f"{module}:{line} imports {top} inside {nested[id(node)]}()")
    assert not offending, "imports of cskpi/ingestion/metrics belong at the top of the module:\n" + "\n".join(offending)


def test_the_checks_see_imports_of_every_form():
    """The parser above finds plain, from-, relative and nested imports (so the checks can fail)."""
    source = "import metrics.tasks\nfrom ingestion import models\nfrom . import x\ndef f():\n    from metrics import y\n"
    tree = ast.parse(source)
    assert [top for _, top, _ in _imports(tree, "cskpi.selectors")] == ["metrics", "ingestion", "cskpi", "metrics"]
    assert [function for function, _ in _function_imports(tree)] == ["f"]
