"""The import graph of the library packages: no cycle, and the arrows point one way.

Every ``import`` statement of ``statespace``, ``hmm`` and ``smc`` is read with
:mod:`ast`, at module level *and* inside functions (a function-level import only
postpones a cycle to the first call; it does not remove it). Relative imports are
resolved against the importing module's package; ``from p import x`` is an edge to
the submodule ``p.x`` when that is a module and to ``p`` otherwise; importing
``a.b.c`` also runs ``a/__init__`` and ``a/b/__init__``, so it adds edges to those
packages (except to a package that contains the importer, which is already running; an
import that names such a package, ``from . import x`` with ``x`` not a submodule, is an
edge to it: it needs the package's ``__init__`` to have finished).
Cycles are the strongly connected components with more than one module (Tarjan).

Exempt by design: :func:`statespace.persistence._lookup` (and ``_lookup_legacy``)
call ``importlib.import_module`` on ``LIBRARY_MODULES`` when a file is *loaded*, so
that every loadable class has registered itself before a name is resolved. That is
a runtime registry fill, run inside a function after every package has finished
importing, never an import statement executed while a module is being imported, so
it cannot create an import-order cycle. The other exemption is
``statespace._parallel_compile._import``: a helper process that compiles kernels for the
calling process imports, by name, the library module (or generated module) that holds each
kernel, which the calling process has already imported; it runs in the helper alone, never in
the library's own import. :func:`test_dynamic_imports_only_fill_the_registry` checks that these
stay the only dynamic imports.

The one-way rule of the architecture: ``statespace`` (the shared interface, the
linear-Gaussian family, persistence) is the base and imports neither ``hmm`` nor
``smc``; ``hmm`` and ``smc`` build on ``statespace`` and never import each other.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("statespace", "hmm", "smc")


def _modules(root: Path, packages) -> dict[str, tuple[Path, bool]]:
    """``{dotted name: (file, is_package)}`` for every ``.py`` file of ``packages`` under ``root``."""
    mods = {}
    for pkg in packages:
        for f in sorted((root / pkg).rglob("*.py")):
            parts = list(f.relative_to(root).with_suffix("").parts)
            is_pkg = parts[-1] == "__init__"
            mods[".".join(parts[:-1] if is_pkg else parts)] = (f, is_pkg)
    return mods


def import_graph(root: Path = ROOT, packages=PACKAGES) -> dict[str, dict[str, int]]:
    """``{importer: {imported module: first line}}`` over the modules of ``packages``."""
    mods = _modules(root, packages)

    def resolve(name):
        # the module an import of ``name`` runs last: its longest prefix that is a library module
        parts = name.split(".")
        while parts and ".".join(parts) not in mods:
            parts.pop()
        return ".".join(parts) or None

    edges = {}
    for m, (f, is_pkg) in mods.items():
        package = m.split(".") if is_pkg else m.split(".")[:-1]
        out = edges.setdefault(m, {})
        for node in ast.walk(ast.parse(f.read_text(), str(f))):
            if isinstance(node, ast.Import):
                targets = {resolve(a.name) for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                base = package[: len(package) - node.level + 1] if node.level else []
                source = ".".join(base + ([node.module] if node.module else []))
                subs = {resolve(f"{source}.{a.name}") for a in node.names}
                # a name that is not a submodule is an attribute of ``source`` itself
                targets = {t for t in subs if t != resolve(source)}
                if len(targets) < len(node.names):
                    targets.add(resolve(source))
            else:
                continue
            for t in targets - {None, m}:
                out.setdefault(t, node.lineno)
                parts = t.split(".")
                for i in range(1, len(parts)):
                    parent = ".".join(parts[:i])
                    if parent in mods and parent != m and not m.startswith(parent + "."):
                        out.setdefault(parent, node.lineno)
    return edges


def cycles(edges: dict[str, dict[str, int]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan's algorithm, iterative)."""
    index, low, on_stack, stack, found = {}, {}, set(), [], []
    for start in sorted(edges):
        if start in index:
            continue
        work = [(start, iter(sorted(edges.get(start, {}))))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            v, children = work[-1]
            for w in children:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(edges.get(w, {})))))
                    break
                if w in on_stack:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = []
                    while True:
                        w = stack.pop()
                        on_stack.discard(w)
                        comp.append(w)
                        if w == v:
                            break
                    if len(comp) > 1:
                        found.append(sorted(comp))
    return found


def _describe(edges, comp) -> str:
    inside = set(comp)
    return "\n".join(f"    {v}:{line} -> {w}" for v in comp for w, line in sorted(edges[v].items()) if w in inside)


# ------------------------------------------------------------------------------ the checker itself
def _write_package(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_checker_finds_a_cycle_hidden_in_a_function(tmp_path):
    """A hand-made package whose only cycle goes through a function-level relative import."""
    _write_package(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/a.py": "from .b import g\n",
            "pkg/b.py": "def g():\n    from . import a\n    return a\n",
            "pkg/sub/__init__.py": "from .c import h\n",
            "pkg/sub/c.py": "import pkg.a\n",
        },
    )
    edges = import_graph(tmp_path, ("pkg",))
    assert edges["pkg.b"] == {"pkg.a": 2}
    assert edges["pkg.sub.c"] == {"pkg.a": 1}  # pkg/__init__ is already running: no edge to it
    assert cycles(edges) == [["pkg.a", "pkg.b"]]


def test_checker_sees_the_package_init_an_import_runs(tmp_path):
    """``from pkg import x`` inside ``pkg.m`` runs ``pkg/__init__``, which imports ``pkg.m``: a cycle."""
    _write_package(
        tmp_path,
        {
            "pkg/__init__.py": "from .m import f\n__version__ = '1'\n",
            "pkg/m.py": "def f():\n    from . import __version__\n    return __version__\n",
            "pkg/low.py": "X = 1\n",
            "pkg/high.py": "from .low import X\nfrom . import low\n",
        },
    )
    edges = import_graph(tmp_path, ("pkg",))
    assert cycles(edges) == [["pkg", "pkg.m"]]
    assert edges["pkg.high"] == {"pkg.low": 1}  # a sibling import does not re-enter pkg/__init__


# ------------------------------------------------------------------------------ the library
def test_no_import_cycle_between_library_modules():
    edges = import_graph()
    assert len(edges) > 50 and sum(map(len, edges.values())) > 200  # the walk saw the library
    found = cycles(edges)
    assert not found, "import cycles (module:line -> module):\n" + "\n".join(_describe(edges, c) for c in found)


#: The packages each package may import (``statespace`` is the base).
ALLOWED = {"statespace": {"statespace"}, "hmm": {"hmm", "statespace"}, "smc": {"smc", "statespace"}}


def against_the_one_way_rule(edges) -> list[str]:
    """The edges ``module:line -> module`` from a package to one :data:`ALLOWED` does not list."""
    return [
        f"{v}:{line} -> {w}"
        for v, out in sorted(edges.items())
        for w, line in sorted(out.items())
        if w.split(".")[0] not in ALLOWED[v.split(".")[0]]
    ]


def test_checker_finds_an_import_against_the_one_way_rule(tmp_path):
    _write_package(
        tmp_path,
        {
            "statespace/__init__.py": "",
            "statespace/base.py": "def f():\n    import hmm.model\n",
            "hmm/__init__.py": "from statespace import base\n",
            "hmm/model.py": "",
            "smc/__init__.py": "from hmm import model\n",
        },
    )
    assert against_the_one_way_rule(import_graph(tmp_path)) == [
        "smc:1 -> hmm",
        "smc:1 -> hmm.model",
        "statespace.base:2 -> hmm",
        "statespace.base:2 -> hmm.model",
    ]


def test_arrows_point_one_way_between_packages():
    wrong = against_the_one_way_rule(import_graph())
    assert not wrong, "imports against the one-way rule:\n" + "\n".join(wrong)


def _dynamic_imports(tree) -> list[tuple[str, str]]:
    """``(enclosing function or "<module>", first argument)`` of each ``import_module``/``__import__`` call."""
    found = []

    def visit(node, where):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            where = node.name
        if isinstance(node, ast.Call):
            name = ast.unparse(node.func)
            if name.split(".")[-1] in ("import_module", "__import__"):
                found.append((where, ast.unparse(node.args[0]) if node.args else ""))
        for child in ast.iter_child_nodes(node):
            visit(child, where)

    visit(tree, "<module>")
    return found


def test_dynamic_imports_only_fill_the_registry():
    """``importlib.import_module``/``__import__`` escape the graph above: only the persistence registry
    and the compile helpers' own process use them."""
    calls = {
        (m, *call)
        for m, (f, _) in _modules(ROOT, PACKAGES).items()
        for call in _dynamic_imports(ast.parse(f.read_text(), str(f)))
    }
    assert sorted(calls) == [
        ("statespace._parallel_compile", "_import", "name"),
        ("statespace.persistence", "_lookup", "module"),
        ("statespace.persistence", "_lookup_legacy", "module"),
    ]


if __name__ == "__main__":  # pragma: no cover
    graph = import_graph()
    for comp in cycles(graph):
        print(_describe(graph, comp))
    pytest.main([__file__, "-q"])
