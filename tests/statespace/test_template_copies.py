"""The disk cache of dimension-specialised template copies is invalidated by any file the template reaches.

Numba's ``cache=True`` checks only the copy's own timestamp, so the copy's name must
change whenever the template or anything its compiled functions call changes. The
oracle for "what the compiled code calls" is independent of the import parsing in
:func:`~statespace._compile.reached_files`: it follows, at run
time, the Numba dispatchers each compiled function names in its globals.
"""

from __future__ import annotations

import inspect
import shutil
import sys
from pathlib import Path

import numba
import pytest

from statespace._compile import (
    reached_files,
    specialised_copy,
    template_digest,
)
from statespace.linear_gaussian import _fast, _particle_kernels

LIBRARY = Path(_fast.__file__).resolve().parents[2]
TEMPLATES = {"kalman loops": _fast, "particle kernels": _particle_kernels}


def _names(code) -> set[str]:
    names = set(code.co_names)
    for const in code.co_consts:
        if inspect.iscode(const):
            names |= _names(const)
    return names


def compiled_callees(module) -> set[Path]:
    """Files defining the Numba functions that ``module``'s compiled functions call, transitively."""
    todo = [v for v in vars(module).values() if isinstance(v, numba.core.dispatcher.Dispatcher)]
    seen, files = set(), set()
    while todo:
        dispatcher = todo.pop()
        if id(dispatcher) in seen:
            continue
        seen.add(id(dispatcher))
        func = dispatcher.py_func
        files.add(Path(inspect.getfile(func)).resolve())
        for name in _names(func.__code__):
            value = func.__globals__.get(name)
            if isinstance(value, numba.core.dispatcher.Dispatcher):
                todo.append(value)
    return files


@pytest.mark.parametrize("template", list(TEMPLATES.values()), ids=list(TEMPLATES))
def test_every_file_the_compiled_template_calls_is_hashed(template):
    callees = compiled_callees(template)
    assert Path(template.__file__).resolve() in callees
    assert Path(_particle_kernels.__file__).resolve().with_name("_linalg.py") in callees  # the known gap
    assert callees <= set(reached_files(Path(template.__file__)))


@pytest.mark.parametrize("template", list(TEMPLATES.values()), ids=list(TEMPLATES))
def test_editing_any_reached_file_changes_the_digest(template, tmp_path):
    shutil.copytree(LIBRARY / "statespace", tmp_path / "statespace", ignore=shutil.ignore_patterns("__pycache__"))
    copy = tmp_path / Path(template.__file__).resolve().relative_to(LIBRARY)
    reached = reached_files(copy)
    assert {p.relative_to(tmp_path) for p in reached} == {
        p.relative_to(LIBRARY) for p in reached_files(Path(template.__file__))
    }
    before = template_digest(copy)
    for path in reached:
        text = path.read_text()
        path.write_text(text + "\n# edited\n")
        assert template_digest(copy) != before, f"editing {path.relative_to(tmp_path)} left the digest unchanged"
        path.write_text(text)
    assert template_digest(copy) == before
    unrelated = tmp_path / "statespace" / "plotting.py"  # imported by no template
    assert unrelated.resolve() not in reached
    unrelated.write_text(unrelated.read_text() + "\n# edited\n")
    assert template_digest(copy) == before


def test_a_copy_is_renamed_when_a_helper_it_imports_changes(tmp_path, monkeypatch):
    """A tiny template package: the copy has its dimensions fixed, and editing a helper two
    imports away writes a new copy and removes the stale one."""
    pkg = tmp_path / "src" / "tmplpkg"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "helper.py").write_text("from tmplpkg.deep import SCALE\n")
    (pkg / "deep.py").write_text("SCALE = 2\n")
    (pkg / "template.py").write_text(
        "from tmplpkg.helper import SCALE\n\nD = 0\nM = 0\n\n\ndef size():\n    return SCALE * D + M\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path / "src"))
    monkeypatch.setenv("STATESPACE_CACHE_DIR", str(tmp_path / "cache"))
    first = specialised_copy(pkg / "template.py", "test", 3, 1)
    assert first.size() == 7
    (pkg / "deep.py").write_text("SCALE = 2  # edited\n")
    second = specialised_copy(pkg / "template.py", "test", 3, 1)
    assert second.__name__ != first.__name__
    assert [p.name for p in (tmp_path / "cache").glob("*.py")] == [second.__name__ + ".py"]
    for name in (first.__name__, second.__name__):
        sys.modules.pop(name, None)
