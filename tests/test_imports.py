"""The package's import graph: no cycles, and gradfit's own modules imported at module level.

Parsed from the source (ast), not by importing, so every import counts, those inside functions
too. An edge A -> B means module A names module B in an import: ``from .x import y`` is an edge
to ``x.y`` when that is a module, else to ``x``. The implicit import of a package's
``__init__`` by its submodules is not an edge (Python's import system, not the code's choice).
"""
import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "gradfit"


def modules() -> dict:
    """{dotted name: path} of every module of gradfit."""
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _package_of(name, path):
    return name if path.name == "__init__.py" else name.rpartition(".")[0]


def imports(name, path, known):
    """[(target module, line, at module level?)] of gradfit modules imported by `name`."""
    tree = ast.parse(path.read_text(), str(path))
    top = set(map(id, tree.body))
    found = []

    def add(target, node, nested):
        while target and target not in known:       # an attribute of a module: its module
            target = target.rpartition(".")[0]
        if target:
            found.append((target, node.lineno, not nested))

    def visit(node, nested):
        for child in ast.iter_child_nodes(node):
            inner = nested or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.Import):
                for alias in child.names:
                    if alias.name.split(".")[0] == "gradfit":
                        add(alias.name, child, nested)
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = _package_of(name, path).split(".")
                    base = base[:len(base) - child.level + 1]
                    mod = ".".join(base + ([child.module] if child.module else []))
                else:
                    mod = child.module or ""
                if mod.split(".")[0] != "gradfit":
                    continue
                for alias in child.names:
                    full = f"{mod}.{alias.name}"
                    add(full if full in known else mod, child, nested)
            visit(child, inner)
    visit(tree, False)
    return found


def graph():
    known = modules()
    edges = {}
    for name, path in known.items():
        targets = {t for t, _, _ in imports(name, path, known)
                   if t != name and not name.startswith(t + ".")}   # parent packages: implicit
        edges[name] = targets
    return edges


def cycles(edges) -> list:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def strong(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))
    for v in sorted(edges):
        if v not in index:
            strong(v)
    return out


def test_no_import_cycles():
    found = cycles(graph())
    assert not found, "import cycles between gradfit modules:\n" + "\n".join(
        " <-> ".join(c) for c in found)


def test_gradfit_modules_are_imported_at_module_level():
    known = modules()
    inner = [f"{path.relative_to(PACKAGE.parent)}:{line} imports {target}"
             for name, path in known.items()
             for target, line, top in imports(name, path, known) if not top]
    assert not inner, ("imports of gradfit's own modules inside functions (hide the dependency "
                       "graph; import at module level):\n" + "\n".join(inner))


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []
