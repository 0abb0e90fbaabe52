"""The library's cached kernels are keyed by every source file of the library (``statespace._compile``):
a kernel that inlines a function of another file runs that function's new code once that file changes,
where Numba's own key (a hash of the kernel's file alone) would load the old machine code."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numba

from statespace import _compile

CALLEE = """
import numba as nb

OFFSET = {offset}


@nb.njit(inline="always")
def bump(x):
    return x + OFFSET
"""

CALLER = """
import numba as nb

from .callee import bump


@nb.njit(cache=True)
def caller(x):
    return bump(x) * 2.0
"""

SCRIPT = """
import json
from smc.caller import caller

value = caller(1.0)
stats = caller.stats
print(json.dumps({"value": value, "hits": sum(stats.cache_hits.values()), "misses": sum(stats.cache_misses.values())}))
"""


def _package(root, offset):
    """A stand-in for the library's ``smc`` package (any of its top-level names is covered), beside the real ones."""
    pkg = root / "smc"
    pkg.mkdir(exist_ok=True)
    (pkg / "__init__.py").write_text("import statespace  # noqa: F401\n")
    (pkg / "callee.py").write_text(CALLEE.format(offset=offset))
    (pkg / "caller.py").write_text(CALLER)


def _run(root) -> dict:
    env = dict(
        os.environ,
        NUMBA_CACHE_DIR=str(root / "numba"),
        PYTHONPATH=os.pathsep.join([str(root), str(_compile.LIBRARY_ROOT)]),
    )
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=root, env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_a_cached_kernel_runs_the_new_code_of_a_function_it_inlines_from_another_file(tmp_path):
    _package(tmp_path, "1.0")
    first = _run(tmp_path)
    assert (first["value"], first["misses"], first["hits"]) == (4.0, 1, 0)
    again = _run(tmp_path)  # nothing changed: loaded from the disk (the test would prove nothing otherwise)
    assert (again["value"], again["misses"], again["hits"]) == (4.0, 0, 1)
    (tmp_path / "smc" / "callee.py").write_text(CALLEE.format(offset="2.0"))  # the caller's file untouched
    edited = _run(tmp_path)
    assert (edited["value"], edited["misses"], edited["hits"]) == (6.0, 1, 0)


def test_only_the_library_s_files_get_the_library_key():
    assert _compile._library_package(_compile.__file__) == _compile.LIBRARY_ROOT / "statespace"
    assert _compile._library_package(__file__) is None  # the tests, a user's files: Numba's own key
    assert _compile.library_stamp(__file__) is None
    from hmm.forward_backward import forward

    locator = forward._cache._impl.locator
    assert isinstance(locator, _compile._LibraryStamp)
    assert locator.get_source_stamp()[1] == _compile.library_stamp(_compile.__file__)
    assert _compile.install_library_stamps()  # idempotent: the classes are added once
    from numba.core import caching

    impl = getattr(caching, "CacheImpl", None) or caching._CacheImpl
    assert sum(issubclass(c, _compile._LibraryStamp) for c in impl._locator_classes) == 3
    assert numba.__version__  # the locators exist in the bounded Numba versions


def test_without_numba_s_locator_classes_the_kernels_keep_numba_s_key(monkeypatch):
    """The fallback for a Numba without the private classes used: nothing is installed, nothing raises."""
    from numba.core import caching

    for name in ("CacheImpl", "_CacheImpl"):
        monkeypatch.delattr(caching, name, raising=False)
    assert _compile.install_library_stamps() is False
