"""Every example in the docstrings of the public modules of statespace, hmm and smc runs.

An example is a ``>>>`` doctest, a fenced Markdown ```` ```python ```` block, or, the library's usual
form, a reStructuredText literal block (the indented block after a line ending in ``::``) that is
valid Python (kernel signatures, JSON headers and ``.. math::`` blocks are not, and are left out).
Each runs on its own, in a fresh namespace and a temporary working directory, so it must import
and build everything it uses: a reader can paste it into a session.

An example that needs files the repository does not ship (the NASA CMAPSS data) says so in its
first line, ``# needs data: <what>``; it runs when ``$CMAPSS_DIR`` (or ``../shared/data/cmapss``)
holds FD001, and is skipped with that reason otherwise. Only the CMAPSS loaders use it.
"""

from __future__ import annotations

import ast
import doctest
import importlib
import inspect
import os
import pkgutil
import re
import textwrap
from pathlib import Path

import pytest

PACKAGES = ("statespace", "hmm", "smc")
FENCE = re.compile(r"```python\n(.*?)```", re.S)
NEEDS_DATA = re.compile(r"^#\s*needs data:\s*(.+)$", re.M)
CMAPSS = Path(os.environ.get("CMAPSS_DIR", Path(__file__).resolve().parents[2] / "shared" / "data" / "cmapss"))


def _modules():
    for top in PACKAGES:
        pkg = importlib.import_module(top)
        yield top
        for m in pkgutil.walk_packages(pkg.__path__, top + "."):
            if not any(p.startswith("_") for p in m.name.split(".")):
                yield m.name


def _docstrings(modname):
    """``(where, docstring)`` of the module and of the public classes, functions and methods it defines."""
    mod = importlib.import_module(modname)
    yield modname, inspect.getdoc(mod) or ""
    for name, obj in vars(mod).items():
        if name.startswith("_") or getattr(obj, "__module__", None) != modname:
            continue
        if inspect.isclass(obj) or inspect.isfunction(obj):
            yield f"{modname}.{name}", inspect.getdoc(obj) or ""
        if inspect.isclass(obj):
            for mname, member in vars(obj).items():
                if mname.startswith("_"):
                    continue
                if isinstance(member, (classmethod, staticmethod)):
                    member = member.__func__
                elif isinstance(member, property):
                    member = member.fget
                if inspect.isfunction(member):
                    yield f"{modname}.{name}.{mname}", inspect.getdoc(member) or ""


def _literal_blocks(doc: str):
    """The literal blocks of a reStructuredText docstring that parse as Python."""
    lines = doc.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line.rstrip().endswith("::") or line.strip().startswith(".."):
            i += 1
            continue
        indent = len(line) - len(line.lstrip())
        k = i + 1
        while k < len(lines) and not lines[k].strip():
            k += 1
        block = []
        while k < len(lines) and (not lines[k].strip() or len(lines[k]) - len(lines[k].lstrip()) > indent):
            block.append(lines[k])
            k += 1
        src = textwrap.dedent("\n".join(block)).strip("\n")
        if src:
            try:
                ast.parse(src)
            except SyntaxError:
                pass
            else:
                yield src
        i = max(k, i + 1)


def _examples():
    """``{id: (kind, source)}`` of every example, each docstring once (re-exports are not repeated)."""
    out, seen = {}, set()
    for modname in _modules():
        for where, doc in _docstrings(modname):
            if not doc or doc in seen:
                continue
            seen.add(doc)
            found = [("doctest", doc)] if doctest.DocTestParser().get_examples(doc) else []
            found += [("python", src) for src in FENCE.findall(doc)]
            found += [("python", src) for src in _literal_blocks(doc)]
            for n, item in enumerate(found):
                out[f"{where}[{n}]" if len(found) > 1 else where] = item
    return out


EXAMPLES = _examples()


def test_the_collector_finds_the_examples():
    """The collector sees examples of all three packages (a collector that finds nothing tests nothing)."""
    assert {k.split(".")[0] for k in EXAMPLES} == set(PACKAGES)
    assert len(EXAMPLES) >= 30
    assert any(k.startswith("hmm.rul.models") for k in EXAMPLES)


@pytest.mark.parametrize("where", sorted(EXAMPLES))
def test_docstring_example_runs(where, tmp_path, monkeypatch):
    kind, src = EXAMPLES[where]
    need = NEEDS_DATA.search(src)
    if need:
        if not (CMAPSS / "train_FD001.txt").is_file():
            pytest.skip(f"{where} needs data: {need.group(1)} (set CMAPSS_DIR)")
        monkeypatch.setenv("CMAPSS_DIR", str(CMAPSS))
    monkeypatch.chdir(tmp_path)
    pytest.importorskip("matplotlib").use("Agg")
    # an example may register a class for persistence: keep the library's registry as it was
    from statespace import persistence

    monkeypatch.setattr(persistence, "_REGISTRY", dict(persistence._REGISTRY))
    monkeypatch.setattr(persistence, "_NAMES", dict(persistence._NAMES))
    if kind == "doctest":
        test = doctest.DocTestParser().get_doctest(src, {}, where, where, 0)
        runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
        runner.run(test)
        assert runner.failures == 0, f"{where}: {runner.failures} doctest example(s) failed"
    else:
        exec(compile(src, f"<docstring example {where}>", "exec"), {"__name__": "__docstring_example__"})
