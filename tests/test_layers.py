"""The layers of docs/architecture.md, enforced on the import graph of the product.

Every ``import`` of every product module counts, those inside functions too: a module may import
only from its own layer and the layers below it, and the lower layers stay free of the command
line's and the reports' libraries.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PRODUCT = ("auditor", "checks", "repairs")

#: Bottom to top; a module belongs to the first layer whose prefix it has (longest prefix wins).
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("core", ("auditor", "auditor.core")),
    ("checks", ("checks",)),
    ("audit", ("auditor.audit",)),
    ("repairs", ("repairs",)),
    ("reports", ("auditor.reports",)),
    ("cli", ("auditor.cli", "auditor.demo", "auditor.__main__")),
)
#: The demo's server and controller-shaped data stand on the core alone (the demo, the tests and
#: the benchmark use them).
TOOLS = ("auditor.testbed",)
#: Third-party libraries a layer must not import (the core, the checks, the engine and the repairs
#: know nothing of click, tables or templates; only the command line speaks click).
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "core": ("click", "tabulate", "jinja2", "markupsafe", "sqlglot"),
    "checks": ("click", "tabulate", "jinja2", "markupsafe", "sqlglot"),
    "audit": ("click", "tabulate", "jinja2", "markupsafe", "sqlglot"),
    "repairs": ("click", "tabulate", "jinja2", "markupsafe"),
    "reports": ("click",),
}
#: The one module that may use sqlglot: ``plan sql`` / ``undo sql`` render statements for review.
SQLGLOT_ALLOWED = ("repairs.script",)
#: What ``apply`` and ``undo`` execute and write: never through sqlglot.
WRITE_PATH = ("repairs.executor", "repairs.statements", "repairs.commit", "repairs.undofile", "repairs.planfile",
              "repairs.planner")


def _is_module(name: str) -> bool:
    where = ROOT / name.replace(".", "/")
    return where.with_suffix(".py").exists() or (where / "__init__.py").exists()


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@cache
def graph() -> dict[str, set[str]]:
    """Product module -> every module name it imports (project and third-party, top-level names kept whole)."""
    out: dict[str, set[str]] = {}
    for package in PRODUCT:
        for path in (ROOT / package).rglob("*.py"):
            name = _module_name(path)
            here = name if path.name == "__init__.py" else name.rpartition(".")[0]
            found: set[str] = set()
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    found |= {a.name for a in node.names}
                elif isinstance(node, ast.ImportFrom):
                    base = node.module or ""
                    if node.level:
                        anchor = here.split(".")[: len(here.split(".")) - node.level + 1]
                        base = ".".join([*anchor, *([base] if base else [])])
                    found.add(base)
                    found |= {f"{base}.{a.name}" for a in node.names if _is_module(f"{base}.{a.name}")}
            out[name] = found
    return out


def layer_of(module: str) -> int | None:
    """The index of ``module``'s layer in :data:`LAYERS`; None for the tools and outside modules."""
    best: tuple[int, int] | None = None
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if module == prefix or module.startswith(prefix + "."):
                if best is None or len(prefix) > best[1]:
                    best = (index, len(prefix))
    if any(module == t or module.startswith(t + ".") for t in TOOLS):
        return None
    return None if best is None else best[0]


def _project(name: str) -> bool:
    return name.split(".")[0] in PRODUCT


def test_every_product_module_has_a_layer():
    homeless = [m for m in graph() if layer_of(m) is None and not any(m.startswith(t) for t in TOOLS)]
    assert homeless == []


@pytest.mark.parametrize("module", sorted(graph()))
def test_imports_only_from_its_layer_and_below(module):
    mine = layer_of(module)
    imported = {name for name in graph()[module] if _project(name)}
    if mine is None:  # the tools: the core only
        upward = {name for name in imported if layer_of(name) not in (0, None) or name.startswith("auditor.demo")}
    else:
        upward = {name for name in imported if (layer_of(name) or 0) > mine}
    assert upward == set(), f"{module} ({LAYERS[mine][0] if mine is not None else 'tools'}) imports from above"


@pytest.mark.parametrize("module", sorted(graph()))
def test_lower_layers_stay_free_of_the_cli_and_report_libraries(module):
    mine = layer_of(module)
    layer = LAYERS[mine][0] if mine is not None else "core"
    banned = set(FORBIDDEN.get(layer, ()))
    if module in SQLGLOT_ALLOWED:
        banned.discard("sqlglot")
    used = {name.split(".")[0] for name in graph()[module]} & banned
    assert used == set(), f"{module} ({layer}) imports {sorted(used)}"


def test_the_write_path_reaches_no_sqlglot():
    """Nothing ``apply`` or ``undo`` runs imports sqlglot, directly or through another module."""
    seen: set[str] = set()
    todo = [m for m in WRITE_PATH if m in graph()]
    assert todo, "the write path's modules moved: update WRITE_PATH"
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        assert "sqlglot" not in {n.split(".")[0] for n in graph()[module]}, f"{module} imports sqlglot"
        todo += [n for n in graph()[module] if n in graph()]
