"""No import cycles: between apps, the layers below hold (inner first, each may import
only earlier ones); inside each app, no module imports one that imports it back.
Function-level imports count: a lazy import hides a cycle, it does not remove it."""

from __future__ import annotations

import ast
import collections
from pathlib import Path

import pytest

import enclave

ROOT = Path(enclave.__file__).parent
# Inner → outer. An app may import its own layer's earlier members and every earlier layer.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("config", "core"),
    ("access",),
    ("keys",),
    ("logs",),
    ("scanning",),
    ("identity",),
    ("backups",),
    ("compliance",),
    ("billing",),
    ("people",),
    ("events",),
    ("audience",),
    ("messaging",),
    ("accounts",),
    ("apikeys",),
    ("webhooks",),
    ("api",),
    ("website", "celery", "server", "deploy"),
    ("settings", "urls", "wsgi", "testing", "cli", "__main__"),
)
RANK = {app: i for i, layer in enumerate(LAYERS) for app in layer}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports() -> dict[str, set[str]]:
    """Every module of enclave → the enclave modules it imports, anywhere in its body."""
    known = {_module_name(p) for p in ROOT.rglob("*.py") if "migrations" not in p.parts}
    out: dict[str, set[str]] = collections.defaultdict(set)
    for path in ROOT.rglob("*.py"):
        if "migrations" in path.parts:
            continue
        module = _module_name(path)
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join([*package.split(".")[:len(package.split(".")) - node.level
                                                            + 1], *([base] if base else [])])
                names = [f"{base}.{a.name}" for a in node.names] + [base]
            for name in names:
                while name and name not in known:
                    name = name.rpartition(".")[0]
                if name and name != module and name.startswith("enclave."):
                    out[module].add(name)
    return out


def _app(module: str) -> str:
    return module.split(".")[1] if module.count(".") else "__init__"


IMPORTS = _imports()


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []
    counter = [0]

    def visit(node):
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                item = stack.pop()
                on_stack.discard(item)
                component.append(item)
                if item == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in list(graph):
        if node not in index:
            visit(node)
    return found


class TestLayers:
    def test_every_app_has_a_layer(self):
        apps = {_app(m) for m in IMPORTS} | {_app(t) for ts in IMPORTS.values() for t in ts}
        assert apps - set(RANK) - {"__init__"} == set()

    def test_no_app_imports_an_app_of_an_outer_layer(self):
        wrong = sorted(f"{m} → {t}" for m, targets in IMPORTS.items() for t in targets
                       if _app(t) != _app(m) and RANK[_app(t)] > RANK[_app(m)])
        assert wrong == []

    def test_there_is_no_cycle_between_apps(self):
        graph = collections.defaultdict(set)
        for module, targets in IMPORTS.items():
            graph[_app(module)] |= {_app(t) for t in targets if _app(t) != _app(module)}
        assert _cycles(graph) == []


class TestModules:
    @pytest.mark.parametrize("app", sorted({_app(m) for m in IMPORTS}))
    def test_no_module_cycle_inside_the_app(self, app):
        graph = {m: {t for t in targets if _app(t) == app}
                 for m, targets in IMPORTS.items() if _app(m) == app}
        assert _cycles(graph) == []
