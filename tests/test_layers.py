"""The import layering (README, "Layers"): app -> features -> core, no cycles.

Every import counts, also those inside functions (a lazy import is the same dependency,
only hidden). Tests and benchmarks are not part of the layering."""
from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
LAYER = {"core": 0, "ingest": 1, "scoring": 1, "sinks": 1, "yuqing": 2}


def project_modules() -> dict[str, Path]:
    out = {}
    for top in LAYER:
        for path in (REPO / top).rglob("*.py"):
            parts = list(path.relative_to(REPO).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    return out


def imported(module: str, path: Path, known: dict[str, Path]) -> set[str]:
    """Project modules `module` imports (the longest known prefix of each name)."""
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    names = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base_parts = package[: len(package) - node.level + 1] if node.level else []
            base = ".".join(base_parts + ([node.module] if node.module else []))
            names += [base] + [f"{base}.{a.name}" for a in node.names]
    out = set()
    for name in names:
        while name and name not in known:
            name = name.rpartition(".")[0]
        if name and name != module:
            out.add(name)
    return out


def graph() -> dict[str, set[str]]:
    known = project_modules()
    return {m: imported(m, p, known) for m, p in known.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (iterative Tarjan)."""
    index, low, on, stack, found, counter = {}, {}, set(), [], [], [0]
    for root in edges:
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = counter[0]; counter[0] += 1
        stack.append(root); on.add(root)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = counter[0]; counter[0] += 1
                    stack.append(w); on.add(w)
                    work.append((w, iter(sorted(edges.get(w, ())))))
                elif w in on:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop(); on.discard(w); comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    found.append(sorted(comp))
    return found


def test_the_cycle_finder_finds_a_planted_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_two_modules_import_each_other_even_through_others():
    assert cycles(graph()) == []


def test_imports_go_from_the_app_to_the_features_to_the_core_only():
    wrong = []
    for module, targets in graph().items():
        top = module.split(".")[0]
        for target in targets:
            other = target.split(".")[0]
            if other == top:
                continue
            if LAYER[other] >= LAYER[top]:  # upwards, or sideways between feature packages
                wrong.append(f"{module} -> {target}")
    assert wrong == []


def test_the_core_is_small_and_stands_alone():
    core = [m for m in project_modules() if m.split(".")[0] == "core"]
    assert {"core.post", "core.config", "core.errors", "core.levels", "core.times"} <= set(core)
    assert len(core) <= 10, core
