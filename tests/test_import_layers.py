"""The project's imports form no circle, and they point down the layers docs/architecture.md draws.

Read with the standard library's ``ast`` from the source files (nothing is imported): every ``import``
and ``from ... import`` of a project module counts, at the top of a file or inside a function (a deferred
import is still a dependency; ``if TYPE_CHECKING:`` blocks are the only ones left out).  The one edge
allowed to point up is ``tasks.base`` → ``worker.delivery`` (a task, when it runs, calls the pipeline;
see tasks/__init__.py).  A few edges are forbidden by name besides (``FORBIDDEN``): web/ and support/
never import commands/, the store never imports the destinations."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("signing", "worker", "tasks")

# Lowest first.  A module may import modules of its own layer or below.  The most specific prefix wins;
# ``*`` stands for one name (every destination's settings declaration is in layer 1: worker.settings reads
# them).
LAYERS: list[tuple[str, ...]] = [
    ("signing", "worker", "worker.settings", "worker.errors", "worker.redaction", "worker.encoding",
     "tasks.schemas",
     "worker.destinations.declaration", "worker.destinations.declared", "worker.destinations.*.declaration"),
    ("worker.store",),
    ("worker.observe", "worker.destinations", "worker.sandbox", "worker.flow"),
    ("tasks", "worker.celery", "worker.broker"),
    ("worker.delivery",),
    ("worker.scheduling", "worker.support"),
    ("worker.commands", "worker.web", "worker.cli"),
]
ALLOWED_UPWARD = {("tasks.base", "worker.delivery")}
# Edges no module may have, whatever the layers say (a package's own layer is open to it, so these are
# spelled out), each with the reason a failure prints.
FORBIDDEN = [
    ("worker.web", "worker.commands",
     "the web processes read support's views and act through worker/support/, never through a CLI command "
     "module: move what both need into worker/support/ (status_report, event_view, retry_view, actions)"),
    ("worker.support", "worker.commands",
     "support's actions and read models are what the CLI commands present: a command imports them, never "
     "the other way round"),
    ("worker.store", "worker.destinations",
     "the store sits below the destinations: hand it what it needs (a delivery ref function, the queue "
     "list) instead of importing the table"),
]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST, module: str, is_package: bool) -> set[str]:
    found: set[str] = set()
    pending = [tree]
    while pending:
        node = pending.pop()
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                pending.extend(child.orelse)
                continue
            if isinstance(child, ast.Import):
                found.update(alias.name for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    anchor = module.split(".") if is_package else module.split(".")[:-1]
                    anchor = anchor[:len(anchor) - (child.level - 1)]
                    base = ".".join(anchor + ([base] if base else []))
                found.add(base)
                found.update(f"{base}.{alias.name}" for alias in child.names)
            pending.append(child)
    return found


def project_graph() -> dict[str, set[str]]:
    """module -> the project modules it imports."""
    files = {_module_name(p): p for package in PACKAGES for p in (ROOT / package).rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for module, path in files.items():
        names = _imports(ast.parse(path.read_text(), str(path)), module, path.name == "__init__.py")
        graph[module] = {name for name in names if name in files and name != module}
    return graph


def _starts_with(module: str, prefix: str) -> bool:
    names, wanted = module.split("."), prefix.split(".")
    return len(names) >= len(wanted) and all(w in ("*", n) for n, w in zip(names, wanted))


def _layer(module: str) -> int:
    best, best_len = None, -1
    for index, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if _starts_with(module, prefix) and len(prefix) > best_len:
                best, best_len = index, len(prefix)
    if best is None:
        raise AssertionError(f"{module} is in no layer: add its package to LAYERS (and docs/architecture.md)")
    return best


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def visit(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_circle():
    assert _circles(project_graph()) == []


def test_imports_point_down_the_layers():
    upward = []
    for module, targets in sorted(project_graph().items()):
        for target in sorted(targets):
            if _layer(target) > _layer(module) and not any(
                    module == a and (target == b or target.startswith(b + ".")) for a, b in ALLOWED_UPWARD):
                upward.append(f"{module} -> {target}")
    assert upward == []


def _under(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def forbidden_edges(graph: dict[str, set[str]]) -> list[str]:
    """Every edge FORBIDDEN names, with its reason."""
    return [f"{module} -> {target}: {why}"
            for module, targets in sorted(graph.items()) for target in sorted(targets)
            for importer, imported, why in FORBIDDEN if _under(module, importer) and _under(target, imported)]


def test_no_forbidden_edge():
    assert forbidden_edges(project_graph()) == []


def test_the_forbidden_edges_are_found():
    graph = {"worker.web.desk.services": {"worker.commands.status", "worker.support.status_report"},
             "worker.support.event_view": {"worker.commands.event"},
             "worker.commands.status": {"worker.support.status_report"},
             "worker.store.dead_letters": {"worker.destinations.table", "worker.store.requests"},
             "worker.destinations.stocktrim.forecast": {"worker.store.requests"}}
    found = forbidden_edges(graph)
    assert [edge.split(":")[0] for edge in found] == [
        "worker.store.dead_letters -> worker.destinations.table",
        "worker.support.event_view -> worker.commands.event",
        "worker.web.desk.services -> worker.commands.status"]


def stale_prefixes(modules: set[str], layers: list[tuple[str, ...]] = LAYERS) -> list[str]:
    """The prefixes of ``layers`` that name no module or package among ``modules`` (a rule a move left
    behind: it would place nothing, and a module later given that name would land in a layer unseen)."""
    return [prefix for prefixes in layers for prefix in prefixes
            if not any(_starts_with(module, prefix) for module in modules)]


def test_every_layer_names_modules_that_exist():
    assert stale_prefixes(set(project_graph())) == []


def test_a_prefix_left_behind_by_a_move_is_found():
    modules = set(project_graph())
    before_the_move = LAYERS[:3] + [("tasks", "worker.celery", "worker.celery_config", "worker.broker")]
    assert stale_prefixes(modules, before_the_move) == ["worker.celery_config"]
    assert stale_prefixes({m for m in modules if not m.startswith("worker.broker")}) == ["worker.broker"]


def test_worker_has_at_most_ten_plain_modules_at_its_top_level():
    plain = sorted(p.name for p in (ROOT / "worker").glob("*.py"))
    assert len(plain) <= 10, plain


@pytest.mark.parametrize("graph, circles", [
    ({"a": {"b"}, "b": {"a"}, "c": {"a"}}, [["a", "b"]]),
    ({"a": {"b"}, "b": {"c"}, "c": set()}, []),
])
def test_the_circle_finder_finds_circles(graph, circles):
    assert _circles(graph) == circles


def test_a_star_stands_for_one_name():
    destinations = _layer("worker.destinations")
    assert _layer("worker.destinations.kaching.declaration") == 0 < destinations
    assert _layer("worker.destinations.kaching.operations") == destinations
    assert _layer("worker.destinations.declared") == 0 and _layer("worker.destinations.table") == destinations


def test_deferred_imports_count_and_type_checking_ones_do_not():
    tree = ast.parse("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import worker.cli\n"
                     "def f():\n    from worker.store import ledger\n")
    assert _imports(tree, "x", False) >= {"worker.store", "worker.store.ledger"}
    assert "worker.cli" not in _imports(tree, "x", False)
