"""The package's imports run one way: no import cycle between modules (top-level and
function-level imports alike, read from the source), and no library module imports a stage
entry point (stages/ sit on top; only the CLI and the stages themselves import them)."""

from __future__ import annotations

from trendfactory.import_closure import import_graph

TOP = ("trendfactory.stages", "trendfactory.cli")


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
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
    return found


def test_no_import_cycle():
    cycles = _cycles(import_graph())
    assert not cycles, "modules that import each other (move the shared part down a layer): " + "; ".join(" <-> ".join(c) for c in cycles)


def test_no_library_module_imports_a_stage():
    graph = import_graph()
    wrong = {m: sorted(t for t in targets if t.startswith("trendfactory.stages")) for m, targets in graph.items() if not m.startswith(TOP)}
    wrong = {m: t for m, t in wrong.items() if t}
    assert not wrong, f"library modules importing stage entry points: {wrong}"


def test_the_checks_find_a_cycle_and_a_back_import():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []
    assert "trendfactory.stages.common" in import_graph()["trendfactory.stages.train"]
