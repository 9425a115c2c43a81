"""The package's shape as DESIGN.md §2 draws it: which parts may import which, no import circles, short functions.

The import graph is read from the source (``ast``), function-body imports included, so a deferred import cannot
hide an arrow.
"""

import ast
from collections import defaultdict
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "ambs_verify"
MAX_FUNCTION_LINES = 80
# Parts that must never import another part (DESIGN.md §2: data flows envs -> rollout -> trainers -> runs -> reports).
FORBIDDEN = {
    ("reports", "trainers"),
    ("rollout", "trainers"),
    ("rollout", "reports"),
    ("trainers", "reports"),
    ("agents", "trainers"),
    ("agents", "rollout"),
    ("agents", "reports"),
    ("envs", "rollout"),
    ("envs", "trainers"),
    ("envs", "reports"),
    ("envs", "agents"),
    ("estimators", "agents"),
    ("estimators", "envs"),
    ("estimators", "rollout"),
    ("estimators", "trainers"),
    ("estimators", "reports"),
}


def _module(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """The ``ambs_verify`` modules ``path`` imports (relative imports resolved; ``from pkg import mod`` counts as
    an import of ``pkg.mod`` when that is a module)."""
    name = _module(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("ambs_verify")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            if not target.startswith("ambs_verify"):
                continue
            found.add(target)
            found |= {f"{target}.{alias.name}" for alias in node.names}
    return found


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    modules = {_module(p): p for p in PACKAGE.rglob("*.py")}
    return {name: {m for m in _imports(path) if m in modules and m != name} for name, path in modules.items()}


def _part(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "ambs_verify"


def test_no_part_imports_a_part_downstream_of_it(graph):
    arrows = sorted(f"{m} -> {t}" for m, targets in graph.items() for t in targets if (_part(m), _part(t)) in FORBIDDEN)
    assert arrows == []


def test_no_private_name_is_imported_across_modules():
    private = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").startswith("ambs_verify")):
                names = [a.name for a in node.names]
                private += [f"{_module(path)}: {n}" for n in names if n.startswith("_") and not n.startswith("__")]
    assert private == []


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def test_the_parts_import_each_other_without_a_circle(graph):
    parts = defaultdict(set)
    for m, targets in graph.items():
        parts[_part(m)] |= {_part(t) for t in targets if _part(t) != _part(m)}
    parts.pop("ambs_verify", None)  # the package's __init__ and __main__ (the CLI's entry) sit above everything
    for targets in parts.values():
        targets.discard("ambs_verify")
    assert _cycles(parts) == []


def test_the_modules_import_each_other_without_a_circle(graph):
    # a package's __init__ importing its own modules is how a package presents them, not a circle
    edges = {m: {t for t in ts if not m.startswith(t + ".") and not t.startswith(m + ".")} for m, ts in graph.items()}
    assert _cycles(edges) == []


def test_no_function_is_longer_than_80_lines():
    long = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long.append(f"{_module(path)}.{node.name}: {lines} lines")
    assert long == []
