"""Standalone kernels: callers call their machine code instead of compiling a copy (``statespace._standalone``).

Each test runs fresh Python processes over a small pair of modules written into a temporary
folder (a standalone callee in one, a caller in the other, both cached by Numba), so that a later
process can load the caller from the disk or find its source changed:

* the caller's LLVM module declares the callee and does not define it (linked, as Numba does by
  default and as ``STATESPACE_STANDALONE=0`` restores, the callee's code is in the caller's module),
  and both give the result the callee's Python source computes;
* a later process loads the caller from the disk and compiles nothing; with the callee's cache
  gone and other kernels compiled first, the callee's symbol gets another name, and the caller
  still calls it (through the alias the caller's load adds);
* a callee whose source now returns another type, or that no longer exists, raises the library's
  error at the caller's load, instead of LLVM aborting the process on an unresolved symbol or the
  caller reading the wrong bits;
* the Kalman fits whose large kernels are standalone give the same bits as with the switch off;
* where Numba lacks an interface the mechanism uses, a kernel stays linked, with the same result.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from fresh_process import WATCH, run

from statespace import _standalone

CALLEE = """
import numba as nb
import numpy as np
from statespace._standalone import standalone


@standalone
@nb.njit(cache=True)
def big(x):
    s = 0.0
    for i in range(x.shape[0]):
        s += np.sin(x[i]) * x[i] ** RETURN_POWER
    return s
"""

CALLER = """
import numba as nb
from callee import big


@nb.njit(cache=True)
def caller(x):
    return big(x) + big(x[1:])
"""

SCRIPT = (
    WATCH
    + """
import json, sys
import numpy as np
from llvmlite import binding

aliases = []
_add = binding.add_symbol
binding.add_symbol = lambda name, address: (aliases.append(name), _add(name, address))[1]
if sys.argv[1] == "shift":  # other kernels first: the callee's symbol gets another per-process number
    import numba as nb
    for k in range(5):
        nb.njit(lambda a, k=k: a + k)(1.0)
    compiled.clear()
import caller as c

x = np.linspace(0.1, 2.0, 50)
out = {"value": c.caller(x), "compiled": compiled, "aliases": sum("3big" in name for name in aliases)}
sig = c.caller.signatures[0]
ir = c.caller.inspect_llvm(sig) if "ir" in sys.argv else ""
out["declares_callee"] = any(line.startswith("declare") and "3big" in line for line in ir.splitlines())
out["defines_callee"] = any(line.startswith("define") and "3big" in line for line in ir.splitlines())
print(json.dumps(out))
"""
)


def _write(folder, power="2"):
    (folder / "callee.py").write_text(CALLEE.replace("RETURN_POWER", power))
    (folder / "caller.py").write_text(CALLER)


def _process(folder, *args, standalone="1"):
    env = dict(
        os.environ,
        NUMBA_CACHE_DIR=str(folder / "numba"),
        PYTHONPATH=os.pathsep.join([str(folder), os.environ.get("PYTHONPATH", ""), *sys.path]),
        **{_standalone.ENV: standalone},
    )
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, *args], cwd=folder, env=env, capture_output=True, text=True, timeout=300
    )
    return proc


def _result(proc) -> dict:
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _expected(power=2):
    x = np.linspace(0.1, 2.0, 50)
    f = lambda v: float(sum(np.sin(t) * t**power for t in v))  # noqa: E731
    return f(x) + f(x[1:])


def test_a_caller_declares_the_callee_and_later_processes_load_or_alias_it(tmp_path):
    _write(tmp_path)
    first = _result(_process(tmp_path, "plain", "ir"))
    assert first["declares_callee"] and not first["defines_callee"]
    assert first["compiled"] == ["caller", "big"]
    assert first["value"] == pytest.approx(_expected(), rel=1e-13)
    # from the disk: the caller's load loads the callee first, and nothing compiles
    again = _result(_process(tmp_path, "plain"))
    assert again["compiled"] == [] and again["aliases"] == 0
    assert again["value"] == first["value"]
    # the callee's cache gone, and its symbol's number moved: the caller, from the disk, calls it by an alias
    for path in (tmp_path / "numba").rglob("callee.big-*"):
        path.unlink()
    moved = _result(_process(tmp_path, "shift"))
    assert moved["compiled"] == ["big"] and moved["aliases"] == 1
    assert moved["value"] == first["value"]


def test_switched_off_the_callee_is_linked_into_the_caller_with_the_same_result(tmp_path):
    _write(tmp_path)
    linked = _result(_process(tmp_path, "plain", "ir", standalone="0"))
    assert not linked["declares_callee"]  # its code is in the caller's module (inlined there, here)
    (tmp_path / "apart").mkdir()
    _write(tmp_path / "apart")
    apart = _result(_process(tmp_path / "apart", "plain", "ir"))
    assert apart["value"] == linked["value"]


@pytest.mark.parametrize("change", ["return type", "no longer a kernel"])
def test_a_callee_changed_under_a_cached_caller_raises_the_librarys_error(tmp_path, change):
    _write(tmp_path)
    _result(_process(tmp_path, "plain"))
    if change == "return type":  # a tuple where the caller was compiled for a float
        (tmp_path / "callee.py").write_text(CALLEE.replace("return s", "return s, 1").replace("RETURN_POWER", "2"))
    else:
        # the kernel renamed, a plain Python function under its name (the caller's module still imports)
        source = CALLEE.replace("def big", "def renamed").replace("RETURN_POWER", "2")
        (tmp_path / "callee.py").write_text(source + "\n\ndef big(x):\n    return 0.0\n")
    proc = _process(tmp_path, "plain")
    assert proc.returncode != 0
    assert "StaleCacheError" in proc.stderr and "delete Numba's cache directory" in proc.stderr
    assert "LLVM ERROR" not in proc.stderr


KALMAN = """
from statespace.linear_gaussian import LGSSMParams, LinearGaussianSSM, batch_smoother
from statespace.linear_gaussian.batch import batch_e_step

rng = np.random.default_rng(0)
lg = LGSSMParams(
    m0=np.zeros(2), P0=np.eye(2), F=np.array([[0.9, 0.2], [0.0, 0.8]]), Q=0.1 * np.eye(2),
    H=np.array([[1.0, 0.5]]), R=np.eye(1),
)
y = rng.standard_normal((12 * 40 + 17, 1))
offsets = np.array([0, *range(40, 481, 40), 497])  # 12 of one length (lock-step) and one alone
y[3, 0] = np.nan  # and a missing value: the first sequence runs alone
arrays = {}
for i, v in enumerate(batch_e_step(lg, y, offsets, n_threads=2)):
    arrays[f"fleet_{i}"] = np.asarray(v, dtype=float).ravel()
for i, v in enumerate(batch_e_step(lg, y[40:80], np.array([0, 40]), n_threads=2)):
    arrays[f"one_{i}"] = np.asarray(v, dtype=float).ravel()
fit = LinearGaussianSSM(lg).fit([y[a:b] for a, b in zip(offsets[:-1], offsets[1:])], max_iter=4, progress=False)
arrays["fit"] = np.concatenate([np.ravel(p) for p in fit.params if p is not None] + [fit.log_likelihoods])
np.savez(sys.argv[2], **arrays)
print(json.dumps({"compiled": len(compiled)}))
"""


def test_kalman_fits_with_standalone_kernels_give_the_same_bits_as_linked(tmp_path, monkeypatch):
    monkeypatch.setenv(_standalone.ENV, "0")
    run(KALMAN, "linked", tmp_path / "linked", tmp_path / "linked.npz")
    monkeypatch.delenv(_standalone.ENV)
    run(KALMAN, "apart", tmp_path / "apart", tmp_path / "apart.npz")
    linked, apart = np.load(tmp_path / "linked.npz"), np.load(tmp_path / "apart.npz")
    assert sorted(linked.files) == sorted(apart.files)
    for key in linked.files:
        np.testing.assert_array_equal(apart[key], linked[key], err_msg=key)


def test_without_numbas_interfaces_a_kernel_stays_linked_and_computes_the_same(monkeypatch):
    import numba as nb

    def body(x):
        s = 0.0
        for v in x:
            s += np.sin(v) * v**2
        return s

    body.__qualname__ = "body"  # as a module-level kernel's (a function inside another is never marked)
    x = np.linspace(0.1, 2.0, 50)
    apart = _standalone.standalone(nb.njit(body))
    assert "add_overload" in vars(apart)  # marked: its signatures are offered as declarations
    codegen = type(apart.targetctx.codegen())

    def changed(*args, **kwargs):
        raise TypeError("create_library() got an unexpected keyword argument")

    with monkeypatch.context() as patch:  # a Numba whose code libraries are made otherwise
        patch.setattr(codegen, "create_library", changed)
        linked = _standalone.standalone(nb.njit(body))
    assert "add_overload" not in vars(linked)  # left as Numba made it

    def caller_of(kernel):
        return nb.njit(lambda v: kernel(v) + kernel(v[1:]))

    expected = body(x) + body(x[1:])
    assert caller_of(linked)(x) == pytest.approx(expected, rel=1e-13)
    assert caller_of(apart)(x) == caller_of(linked)(x)
