"""Generate the API reference from the packages themselves, and fail the build on undocumented public objects.

The reference has one page per *namespace*: the packages ``statespace``, ``hmm``, ``smc`` and every
public subpackage (``hmm.rul``, ``statespace.datasets.cmapss``, ...), plus the public modules users import
from directly (the plotting modules, ...) and the modules a namespace exports by name (``hmm.forward_backward``). A namespace's
public names are its ``__all__`` when it has one, otherwise every non-underscore name its source
binds (imports and definitions). Each object is documented once, on the page of the first namespace
that exports it (``statespace.LinearGaussianSSM`` rather than
``statespace.linear_gaussian.LinearGaussianSSM``); the other namespaces list it in their summary
table with a link to that entry, so each page still lists every name it exports.

The pages are written to ``docs/api/`` at ``builder-inited`` (they are build outputs, ignored by
git), so they never drift from the code. An ``autodoc-process-docstring`` hook warns about every
documented public class, function, method or property without a docstring of its own; under ``-W``
that fails the build.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import inspect
import pkgutil
import re
import types
from pathlib import Path

from sphinx.util import logging

logger = logging.getLogger(__name__)

PACKAGES = ("statespace", "hmm", "smc")
#: Public modules that are not packages but are imported from directly (examples, README).
EXTRA_MODULES = (
    "statespace.plotting",
    "statespace.diagnostics",
    "statespace.prognostics.plots",
    "statespace.persistence",
    "smc.plotting",
)


def _is_public(modname: str) -> bool:
    return not any(part.startswith("_") for part in modname.split("."))


def public_names(modname: str) -> list[str]:
    """The names a namespace exports: its ``__all__``, or the non-underscore names its source binds at the
    top level -- a package's ``__init__`` by its relative imports and definitions, a plain module by its
    definitions only (what it imports is for its own use)."""
    module = importlib.import_module(modname)
    if hasattr(module, "__all__"):
        return list(module.__all__)
    tree = ast.parse(Path(module.__file__).read_text())
    names: list[str] = []
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.level > 0 and hasattr(module, "__path__"):
            names += [a.asname or a.name for a in node.names]
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef)):
            names.append(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names += [t.id for t in targets if isinstance(t, ast.Name)]
    return [n for n in dict.fromkeys(names) if not n.startswith("_")]


def namespaces() -> list[str]:
    """Every documented namespace, parents before children."""
    found: list[str] = []
    for top in PACKAGES:
        pkg = importlib.import_module(top)
        found.append(top)
        for info in pkgutil.walk_packages(pkg.__path__, top + "."):
            if info.ispkg and _is_public(info.name):
                found.append(info.name)
    # a public module that has been removed or renamed simply drops out of the reference
    found += [m for m in EXTRA_MODULES if m not in found and importlib.util.find_spec(m) is not None]
    # modules exported by name (``from . import forward_backward``) get a page of their own
    i = 0
    while i < len(found):
        module = importlib.import_module(found[i])
        for name in public_names(found[i]):
            obj = getattr(module, name, None)
            if isinstance(obj, types.ModuleType) and obj.__name__ not in found and _is_public(obj.__name__):
                found.append(obj.__name__)
        i += 1
    return found


def _kind(obj) -> str:
    if isinstance(obj, types.ModuleType):
        return "module"
    if inspect.isclass(obj):
        return "exception" if issubclass(obj, BaseException) else "class"
    if callable(obj):
        return "function"
    return "data"


def _title(text: str) -> str:
    return f"{text}\n{'=' * len(text)}\n"


def write_pages(outdir: Path) -> dict[str, list[str]]:
    """Write ``outdir/<namespace>.rst`` and ``outdir/index.rst``; return ``namespace -> public names``."""
    outdir.mkdir(parents=True, exist_ok=True)
    spaces = namespaces()
    canonical: dict = {}  # id(object) -> the qualified name it is documented under
    listing: dict[str, list[str]] = {}
    pages: dict[str, str] = {}
    for ns in spaces:
        module = importlib.import_module(ns)
        names = public_names(ns)
        listing[ns] = names
        rows, bodies = [], []
        for name in names:
            if not hasattr(module, name):
                logger.warning(f"{ns}.__all__ names {name!r}, which the module does not define")
                continue
            obj = getattr(module, name)
            kind = _kind(obj)
            if kind == "module":  # autosummary wants a child module relative to the current one
                rows.append("   " + obj.__name__.removeprefix(ns + "."))
                continue
            key = id(obj) if kind != "data" else (ns, name)
            if key in canonical:
                rows.append(f"   ~{canonical[key]}")
                continue
            canonical[key] = f"{ns}.{name}"
            rows.append(f"   {name}")
            if kind in ("class", "exception"):
                opts = "   :members:\n   :undoc-members:\n   :show-inheritance:\n"
                bodies.append(f".. auto{kind}:: {ns}.{name}\n{opts}")
            else:
                bodies.append(f".. auto{kind}:: {ns}.{name}\n")
        text = [_title(ns), f".. automodule:: {ns}\n   :no-members:\n"]
        if rows:
            text.append(".. autosummary::\n   :nosignatures:\n\n" + "\n".join(rows) + "\n")
        text += bodies
        pages[ns] = "\n".join(text)
    for stale in set(outdir.glob("*.rst")) - {outdir / f"{ns}.rst" for ns in pages} - {outdir / "index.rst"}:
        stale.unlink()  # a namespace that no longer exists (renamed, removed) loses its page
    for ns, text in pages.items():
        path = outdir / f"{ns}.rst"
        if not path.exists() or path.read_text() != text:  # unchanged pages keep their mtime: no rebuild
            path.write_text(text)
    index = _title("API reference") + (
        "\nEvery public name of :mod:`statespace`, :mod:`hmm` and :mod:`smc`, generated from the docstrings. "
        "An object exported by several namespaces is documented once, under the first of them; the others "
        "link to it.\n\n.. toctree::\n   :maxdepth: 1\n\n" + "\n".join(f"   {ns}" for ns in spaces) + "\n"
    )
    if not (outdir / "index.rst").exists() or (outdir / "index.rst").read_text() != index:
        (outdir / "index.rst").write_text(index)
    return listing


def _own_doc(obj) -> str | None:
    if inspect.isclass(obj):
        doc = obj.__dict__.get("__doc__")
        # typing.NamedTuple writes "Name(field, ...)" when the class has no docstring
        if doc and getattr(obj, "_fields", None) is not None and doc.startswith(f"{obj.__name__}("):
            return None
        return doc
    if isinstance(obj, property):
        return obj.__doc__
    return inspect.getdoc(obj)  # a method may inherit its base's documentation


_SHARED_FIELD = re.compile(
    r"^(\s*):(ivar|param|parameter|arg|argument|keyword|kwarg|cvar|var) ([\w, ]+,[\w, ]*\w):(.*)$"
)


def split_shared_fields(app, what, name, obj, options, lines):
    """``a, b: text`` in a Google "Args:"/"Attributes:" section documents two names; napoleon turns it
    into ``:ivar a, b:``, which Sphinx would read as the name ``b`` of *type* ``a,`` (a cross-reference
    to whatever ``a`` happens to be). Give each name its own field with the shared text."""
    out = []
    for line in lines:
        m = _SHARED_FIELD.match(line)
        if m:
            indent, field, names, text = m.groups()
            out += [f"{indent}:{field} {n.strip()}:{text}" for n in names.split(",") if n.strip()]
        else:
            out.append(line)
    lines[:] = out


def check_docstring(app, what, name, obj, options, lines):
    if (
        what in ("data", "attribute")
        and obj is not None
        and getattr(obj, "__doc__", None) == getattr(type(obj), "__doc__", 0)
    ):
        lines[:] = []  # a constant's value is not its documentation (autodoc would show ``dict.__doc__``)
        return
    if what not in ("class", "exception", "function", "method", "property", "module"):
        return
    if not _is_public(name):
        return
    if what == "module":
        doc = obj.__doc__
    else:
        doc = _own_doc(obj)
    if not (doc and doc.strip()):
        logger.warning(f"public {what} {name} has no docstring", type="public_api", subtype="docstring")


def _generate(app):
    write_pages(Path(app.srcdir) / "api")


def setup(app):
    app.connect("builder-inited", _generate)
    app.connect("autodoc-process-docstring", split_shared_fields, priority=600)  # after napoleon (500)
    app.connect("autodoc-process-docstring", check_docstring)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
