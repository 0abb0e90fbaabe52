"""Compile the kernels of one call side by side, in helper processes, when the disk cache lacks them.

A call that runs several compiled kernels in turn (a fleet's Kalman smoother runs four) pays,
on an empty cache, each kernel's compilation one after the other: Numba compiles under one
process-wide lock, so threads cannot share the work. Kernels compiled with ``cache=True``
leave their machine code on disk, where any process loads it in milliseconds. So
:func:`compile_together`, given the kernels a call is about to run and their arguments:

1. loads each kernel whose machine code for these argument types is on disk (what its first
   call would have done) and drops it, with any already compiled in this process;
2. if two or more are left and the call may use more than one thread, starts up to
   ``threads - 1`` helper processes (``sys.executable -c``, this process's import path, then
   :func:`_helper`), each given through a pipe the module, name and Numba signature of some of
   the kernels, which it imports and compiles into the disk cache;
3. compiles its own share meanwhile (the first kernel missing, or those of the first calls the
   caller names), waits for the helpers, and loads theirs from
   the disk (or compiles one itself if its helper failed: a helper can only save time).

Kernels a call may need *later*, depending on its data (a fleet's one-sequence forward-backward,
which only sequences the vector lanes cannot carry run), are given as ``later``: a helper compiles
them after its share, at the lowest priority, and the caller does not wait for them. A kernel's
call site asks :func:`wait_for_helper` first: if a helper is still compiling that kernel, the call
waits for it and then loads it from the disk, rather than compiling it a second time beside it. A
helper still at work when the process exits is stopped (its finished kernels stay on the disk).

A helper's kernel may also be a callee of the first: Numba compiles a kernel's callees while it
types the kernel, and loads from the disk any that a helper has finished by then (the Kalman
E-step's ``batch_loop`` and its lock-step ``_lockstep_e_step``, a third of the whole). The caller
then builds the argument types the kernel passes to that callee, and names it among the kernel's
``needs``: this process waits for the helper to finish it before compiling the kernel, rather than
compiling a second copy when it gets there first.

What is computed does not change: the helpers compile the same source for the same
signatures, and the call runs the machine code Numba would have compiled itself. Set
``STATESPACE_PARALLEL_COMPILE=0`` to compile everything in the calling process.

Numba offers no public way to load a signature from its cache without compiling on a miss,
so step 1 uses the dispatcher's cache object as :meth:`numba.core.dispatcher.Dispatcher.compile`
does (Numba's version is bounded in ``pyproject.toml``); if that interface is missing,
:func:`compile_together` does nothing and each kernel compiles at its call, as before.
"""

from __future__ import annotations

import atexit
import importlib
import importlib.util
import os
import pickle
import subprocess
import sys
import threading

from numba.core import types
from numba.core.dispatcher import Dispatcher

from statespace._compile import GENERATED_PREFIX, LIBRARY_PACKAGES

#: Environment switch: ``0`` keeps every compilation in the calling process.
ENV = "STATESPACE_PARALLEL_COMPILE"
#: Longest wait for a helper (seconds); past it the helper is stopped and this process compiles.
HELPER_TIMEOUT_S = 600.0


def _signature(dispatcher: Dispatcher, args) -> tuple:
    """The argument types a call with ``args`` compiles for (Numba's own ``typeof`` of each); an argument
    given as a Numba type is that type (a literal, which a kernel's caller passes and no value's
    ``typeof`` gives)."""
    return tuple(a if isinstance(a, types.Type) else dispatcher.typeof_pyval(a) for a in args)


def _load_from_disk(dispatcher: Dispatcher, sig: tuple) -> bool:
    """Load ``sig`` of ``dispatcher`` from its disk cache as ``Dispatcher.compile`` does; ``False`` on a miss."""
    from numba.core.compiler_lock import global_compiler_lock

    cache = getattr(dispatcher, "_cache", None)
    if cache is None or not hasattr(cache, "load_overload"):
        return False
    with global_compiler_lock:  # as Dispatcher.compile: another thread may be compiling this kernel
        if sig in dispatcher.overloads:
            return True
        cres = cache.load_overload(sig, dispatcher.targetctx)
        if cres is None:
            return False
        if not cres.objectmode:
            dispatcher.targetctx.insert_user_function(cres.entry_point, cres.fndesc, [cres.library])
        dispatcher.add_overload(cres)
    return True


def _where(dispatcher: Dispatcher) -> tuple[str, str, str] | None:
    """Module name, module file and qualified name by which a helper finds ``dispatcher``: only the
    library's own modules and the ones it generates (a helper never imports a user's module, whose
    import could run a script)."""
    fn = dispatcher.py_func
    name = fn.__module__
    file = getattr(sys.modules.get(name), "__file__", None)
    if file is None or not (name.split(".")[0] in LIBRARY_PACKAGES or name.startswith(GENERATED_PREFIX)):
        return None
    return name, file, fn.__qualname__


def _runs_python() -> bool:
    """Whether ``sys.executable`` starts a Python interpreter (not a frozen application or an
    embedding server, which a helper's ``-c`` would not reach)."""
    return not getattr(sys, "frozen", False) and "python" in os.path.basename(sys.executable or "").lower()


def _pending(calls) -> list[tuple[Dispatcher, tuple]]:
    """The ``(dispatcher, signature)`` of the calls neither compiled here nor on disk (loading those that are)."""
    pending, seen = [], set()
    for dispatcher, args in calls:
        if not isinstance(dispatcher, Dispatcher) or not dispatcher._can_compile:
            continue
        if not getattr(dispatcher, "_cache", None) or type(dispatcher._cache).__name__ == "NullCache":
            continue  # not cached on disk: a helper's work would be lost
        if _where(dispatcher) is None:
            continue
        sig = _signature(dispatcher, args)
        if (id(dispatcher), sig) in seen:
            continue
        seen.add((id(dispatcher), sig))
        if not _load_from_disk(dispatcher, sig):
            pending.append((dispatcher, sig))
    return pending


def _shares(local, remote, helpers: int) -> list[list]:
    """Cut ``remote`` into ``helpers`` shares, every signature of one kernel in one share (two
    processes saving the same kernel's cache index would race), leaving out the kernels of ``local``
    (this process compiles every signature of those)."""
    here = {id(d) for d, _ in local}
    by_kernel: dict[int, list] = {}
    for dispatcher, sig in remote:
        if id(dispatcher) not in here:
            by_kernel.setdefault(id(dispatcher), []).append((dispatcher, sig))
    shares = [[] for _ in range(helpers)]
    for i, group in enumerate(by_kernel.values()):
        shares[i % helpers].extend(group)
    return [s for s in shares if s]


#: A helper's first statements: this process's import path (read before anything it imports),
#: then :func:`_helper` on the rest of the pipe.
_BOOT = (
    "import pickle, sys; sys.path[:] = pickle.load(sys.stdin.buffer); "
    "from statespace._parallel_compile import _helper; _helper(sys.stdin.buffer)"
)


class _Helper:
    """A helper process and how many of its kernels it has finished: it writes one byte to its
    standard output after each (a thread here counts them, so that a caller can wait for the first
    ``n`` with a timeout)."""

    def __init__(self, proc: subprocess.Popen):
        self.proc, self.finished, self.exited, self.owner = proc, 0, False, os.getpid()
        self._cond = threading.Condition()
        threading.Thread(target=self._count, daemon=True).start()

    def _count(self) -> None:
        try:
            while self.proc.stdout.read(1):
                with self._cond:
                    self.finished += 1
                    self._cond.notify_all()
            self.proc.wait()  # reaped here: no caller waits for a helper's exit
        finally:
            with self._cond:
                self.exited = True
                self._cond.notify_all()

    def wait(self, n: int, timeout: float = HELPER_TIMEOUT_S) -> None:
        """Wait until the helper has finished its first ``n`` kernels (or exited); stop it past ``timeout``."""
        with self._cond:
            if self._cond.wait_for(lambda: self.finished >= n or self.exited, timeout):
                return
        self.stop()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


def _start(share, now: int) -> _Helper | None:
    """A helper compiling ``share``, the first ``now`` kernels at normal priority, the rest at the lowest."""
    try:
        payload = pickle.dumps(list(sys.path)) + pickle.dumps(([(*_where(d), sig) for d, sig in share], now))
        proc = subprocess.Popen(
            [sys.executable, "-c", _BOOT],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=dict(os.environ, **{ENV: "0"}),
        )
    except Exception:  # nothing lost: this process compiles the share itself
        return None
    try:
        proc.stdin.write(payload)
        proc.stdin.close()
    except OSError:
        proc.kill()
        proc.wait()
        return None
    return _Helper(proc)


#: ``id(dispatcher) -> (helper, n)``: kernels a helper compiles for later, finished once the helper has
#: finished ``n`` kernels (:func:`wait_for_helper`).
_LATER: dict[int, tuple[_Helper, int]] = {}
_LATER_LOCK = threading.Lock()


def wait_for_helper(*dispatchers) -> None:
    """Before a call of one of ``dispatchers`` that a helper is compiling for later
    (``compile_together(..., later=...)``), wait for the helper to finish it, so that the call loads it
    from the disk instead of compiling it a second time. Does nothing otherwise (one dictionary test)."""
    if not _LATER:
        return
    with _LATER_LOCK:
        waits = [_LATER[id(d)] for d in dispatchers if id(d) in _LATER]
    for helper, n in waits:  # every thread that reaches the kernel meanwhile waits too
        helper.wait(n)
    with _LATER_LOCK:
        for d in dispatchers:
            _LATER.pop(id(d), None)


@atexit.register
def _stop_helpers() -> None:
    """Stop the helpers still compiling for later when the process ends (their work was a guess)."""
    with _LATER_LOCK:
        helpers = {id(h): h for h, _ in _LATER.values()}.values()
        _LATER.clear()
    for helper in helpers:
        if helper.owner == os.getpid():  # not a forked child's copy of its parent's helpers
            helper.stop()


def first_use(*dispatchers) -> bool:
    """Whether one of ``dispatchers`` has compiled nothing yet in this process.

    A caller asks this (a dictionary's length per kernel) before building arguments for
    :func:`compile_together`, which serves a process's first calls: a later call with new argument
    types compiles them at the call, as it would without this module.
    """
    return any(not getattr(d, "overloads", True) for d in dispatchers)


def compile_together(calls, threads: int, here: int = 1, later=(), needs=None) -> int:
    """Make sure each ``(dispatcher, args)`` of ``calls`` is compiled for its arguments' types,
    compiling those the disk cache lacks in up to ``threads - 1`` helper processes beside this one.

    This process compiles the missing kernels among the first ``here`` calls (at least one kernel),
    the helpers the others: a caller that knows its kernels' costs orders and cuts them so that both
    sides take about as long. ``later``: calls the caller may run afterwards, depending on its data;
    a helper compiles those the disk cache lacks after its share, without this call waiting for them
    (their call sites ask :func:`wait_for_helper`), when it starts one for ``calls``. Returns the
    number of helpers started (0 when everything was compiled or cached, one kernel was missing,
    ``threads`` is 1, or :data:`ENV` is ``0``). The kernels themselves are not run.

    ``needs`` maps a kernel of this process's share to the callees it types (and so compiles) that are
    in a helper's: this process waits for the helper to finish those before it compiles the caller,
    which then loads them from the disk. Without the wait, a caller reached before its helper is done
    would compile a second copy of the callee beside the helper's (seconds lost, on a slower machine
    or a larger model, where a share's cost was estimated on another).
    """
    if os.environ.get(ENV, "1") == "0" or threads < 2 or not _runs_python():
        return 0
    try:
        calls = list(calls)
        local, remote = _pending(calls[:here]), _pending(calls[here:])
        if not local and remote:
            local.append(remote.pop(0))
        if not remote:
            return 0
        # looked up only when a helper starts: a warm process loads none of them before it needs them
        now = {id(d) for d, _ in local + remote}
        after = [(d, sig) for d, sig in _pending(later) if id(d) not in now and id(d) not in _LATER]
    except Exception:  # Numba's cache interface changed: compile at each call, as without this module
        return 0
    shares = _shares(local, remote, min(threads - 1, len(remote)))
    # the kernels for later go last, to the first helper: one process saves every signature of a kernel.
    # Only with a helper started anyway (an empty cache): a process that finds the call's own kernels on
    # the disk starts none for a guess.
    helpers = [_start(share + (after if i == 0 else []), len(share)) for i, share in enumerate(shares)]
    if helpers and helpers[0] is not None:
        with _LATER_LOCK:
            for n, (dispatcher, _) in enumerate(after, start=len(shares[0]) + 1):
                _LATER[id(dispatcher)] = (helpers[0], n)  # its last signature: the helper's n-th kernel
    finishes = {}  # id(kernel) -> (its helper, how many of the helper's kernels end with its last signature)
    for helper, share in zip(helpers, shares):
        if helper is not None:  # a helper that failed to start: this process compiles its share after its own
            for n, (dispatcher, _) in enumerate(share, start=1):
                finishes[id(dispatcher)] = (helper, n)
    try:
        for dispatcher, sig in local:
            for callee in (needs or {}).get(dispatcher, ()):
                if id(callee) in finishes:
                    helper, n = finishes[id(callee)]
                    helper.wait(n)
            dispatcher.compile(sig)
    finally:
        for helper, share in zip(helpers, shares):
            if helper is not None:
                helper.wait(len(share))
    for dispatcher, sig in remote:
        dispatcher.compile(sig)  # from the disk, where a helper put it
    return sum(h is not None for h in helpers)


def _import(name: str, file: str | None):
    """The module ``name`` at ``file``: imported by name, or, for a generated module, from its file."""
    try:
        module = importlib.import_module(name)
        if file is None or os.path.samefile(module.__file__, file):
            return module
    except (ImportError, OSError, TypeError):
        pass
    spec = importlib.util.spec_from_file_location(name, file)  # a generated module (statespace._compile)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _helper(stream) -> None:
    """A helper's work: compile each kernel listed on ``stream`` into the disk cache, the first ``now`` at
    normal priority and the rest (wanted later, perhaps) at the lowest; one byte out after each."""
    kernels, now = pickle.load(stream)  # written by the parent process through a pipe, never read from a file
    progress = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)  # anything else printed goes where errors go, not into the count
    for i, (name, file, qualname, sig) in enumerate(kernels):
        if i == now and hasattr(os, "nice"):
            os.nice(19)  # the caller no longer waits: its own threads come first
        target = _import(name, file)
        for part in qualname.split("."):
            target = getattr(target, part)
        target.compile(sig)
        try:
            progress.write(b"+")
        except OSError:  # the caller has gone: the kernels still go to the disk
            pass
