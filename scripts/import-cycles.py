#!/usr/bin/env python3
"""Finds import cycles between the modules of each crate (docs/architecture.md,
"Crates and what they may import": imports run one way inside a crate too;
Cargo already keeps the crates themselves acyclic).

A file's module is its path under src/ (`dir/mod.rs` is `dir`). An edge is a
`crate::…` or `super::…` path in the file, outside its `#[cfg(test)]` part
and its comments, cut to DEPTH path segments. Every depth from 1 to 3 is
checked. Prints each cycle and exits 1 when there is one.

    python3 scripts/import-cycles.py
"""
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CRATES = ["pipeline", "sources", "operators", "sinks", "sql", "api", "."]


def module_of(rel: Path) -> list[str]:
    parts = list(rel.with_suffix("").parts)
    if parts[-1] in ("mod", "lib", "main"):
        parts.pop()
    return parts


def references(path: Path, me: list[str]) -> list[list[str]]:
    """Module paths a file names, as absolute paths from the crate root."""
    text = path.read_text()
    cut = text.find("#[cfg(test)]")
    if cut >= 0:
        text = text[:cut]
    text = re.sub(r"//.*", "", text)
    refs = []
    for m in re.finditer(r"\bcrate::((?:\w+::)*)\{([^}]*)\}", text):
        prefix = m.group(1).split("::")[:-1]
        refs += [prefix + i.strip().split("::") for i in m.group(2).split(",") if i.strip()]
    for m in re.finditer(r"\bcrate::((?:\w+::)*\w+)", text):
        refs.append(m.group(1).split("::"))
    for m in re.finditer(r"\b((?:super::)+)(?:\{([^}]*)\}|(\w+))", text):
        base = me[: len(me) - m.group(1).count("super::")]
        items = m.group(2).split(",") if m.group(2) else [m.group(3)]
        for item in items:
            head = item.strip().split("::")[0]
            if head and head != "self":
                refs.append(base + [head])
    return refs


def cycles(crate: str, depth: int) -> list[list[tuple[str, ...]]]:
    src = ROOT / crate / "src"
    edges: dict[tuple[str, ...], set[tuple[str, ...]]] = {}
    for path in sorted(src.rglob("*.rs")):
        me = module_of(path.relative_to(src))
        a = tuple(me[:depth])
        for ref in references(path, me):
            b = tuple(ref[:depth])
            if b and b != a:
                edges.setdefault(a, set()).add(b)
    # Tarjan's strongly connected components: each with two or more modules is a cycle.
    index: dict = {}
    low: dict = {}
    stack: list = []
    on_stack: set = set()
    found = []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(10_000)
    for v in sorted(set(edges) | {w for ws in edges.values() for w in ws}):
        if v not in index:
            visit(v)
    return found


def main() -> int:
    failed = False
    for crate in CRATES:
        name = "somaflow" if crate == "." else f"somaflow-{crate}"
        for depth in (1, 2, 3):
            for component in cycles(crate, depth):
                failed = True
                print(f"{name}: import cycle: {' <-> '.join('::'.join(m) for m in component)}")
    if failed:
        print("modules import each other in a circle; move what both need into a module both may import")
        return 1
    print("no import cycles between modules")
    return 0


if __name__ == "__main__":
    sys.exit(main())
