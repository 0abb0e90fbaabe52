"""Large kernels that their callers call, instead of compiling a copy of them.

When a Numba kernel calls another, Numba links the callee's whole LLVM module into the caller's
and optimises and generates machine code for the result again (so that LLVM may inline the
callee). A chain of large kernels therefore pays for its deepest one at every level: of the 34 s
that the first E-step of a Kalman fleet compiled (``batch_loop`` -> ``_filter_smooth`` ->
``_filter``, ...), ``batch_loop`` spent 13.5 s in LLVM, 2.3 s once its callees were called
instead; and a callee loaded from the disk cache is re-optimised the same way, since Numba keeps
its IR beside its machine code for that purpose. Inlining only pays for small functions; the kernels marked here run a
whole sequence or a block of one per call, so a call costs nothing measurable.

:func:`standalone` marks such a kernel. Each compiled (or loaded) signature of it is then
offered to callers as a *declaration* of its machine-code symbol: the caller's module calls it
and the JIT engine resolves the symbol to the one copy already loaded. Two things Numba would
otherwise get from the linked copy are restored:

* A caller loaded from the disk cache in a later process needs the callee's code loaded
  first, or LLVM aborts on the missing symbol. Numba runs a compile result's ``reload_init``
  callables before it loads the result's machine code, and a caller inherits those of the
  libraries it links: the declaration's library carries a :class:`_LoadCallee`, which finds the
  callee in its module (imported by the caller's), compiles or loads the recorded signature, and
  checks its return type.
* A symbol's name carries a per-process counter (Numba's function identities), so the callee
  loaded in that later process (compiled by another process, or again after its source
  changed) may define another name than the one the caller calls: the recorded name is then
  added as an alias of the callee's address (``llvmlite.binding.add_symbol``). The argument
  types are part of the record and the return type is checked, which fixes the calling
  convention.

What is computed does not change: the callee runs the same machine code it runs when called
from Python, and no floating-point transformation crosses a call (the tests compare every bit
with the linked build). ``STATESPACE_STANDALONE=0`` switches the mechanism off (kernels are
then linked as Numba does by default); a cache written in either mode loads in the other.

This relies on Numba internals (its target context's user-function registry, its code
libraries' ``reload_init`` and JIT engine; Numba's version is bounded in ``pyproject.toml``). If
they are missing, :func:`standalone` returns the kernel unchanged.
"""

from __future__ import annotations

import itertools
import os
import sys
from typing import NamedTuple

from llvmlite import binding as llvm
from llvmlite import ir
from numba.core.dispatcher import Dispatcher

from statespace.errors import StaleCacheError

#: Environment switch: ``0`` links every kernel into its callers, as Numba does by default.
ENV = "STATESPACE_STANDALONE"
_ANCHORS = itertools.count()
#: What every stale-cache error tells the user to do.
_REMEDY = "delete Numba's cache directory (or the library's __pycache__ folders) and run again"


class _LoadCallee(NamedTuple):
    """Run before a cached caller's machine code loads: make the callee's symbol resolvable."""

    module: str
    qualname: str
    argtypes: tuple
    restype: object
    symbol: str

    def __call__(self) -> None:
        dispatcher = _find(self.module, self.qualname)
        if dispatcher is None:
            raise StaleCacheError(
                f"a cached kernel calls {self.module}.{self.qualname}, which no longer exists; {_REMEDY}"
            )
        dispatcher.compile(self.argtypes)
        cres = dispatcher.overloads[self.argtypes]
        if cres.signature.return_type != self.restype:
            raise StaleCacheError(
                f"a cached kernel calls {self.module}.{self.qualname}{self.argtypes} for a result of type "
                f"{self.restype}, and it now returns {cres.signature.return_type}; {_REMEDY}"
            )
        if self.symbol != cres.fndesc.mangled_name and not _engine(dispatcher).is_symbol_defined(self.symbol):
            address = cres.library.get_pointer_to_function(cres.fndesc.mangled_name)
            if not address:  # never alias a null address: the caller would jump to it
                raise StaleCacheError(
                    f"{self.module}.{self.qualname}{self.argtypes} has no machine code to call; {_REMEDY}"
                )
            llvm.add_symbol(self.symbol, address)


def _find(module: str, qualname: str):
    """The kernel ``module.qualname``, from a module already imported: a caller's module imports its
    callees' modules (nothing named in a cache file is imported for it)."""
    found = getattr(sys.modules.get(module), qualname, None)
    return found if isinstance(found, Dispatcher) else None


def _engine(dispatcher: Dispatcher):
    return dispatcher.targetctx.codegen()._engine


def _supported(dispatcher: Dispatcher) -> bool:
    """Whether this Numba has what :func:`_offer_declaration` and :class:`_LoadCallee` use."""
    ctx = dispatcher.targetctx
    try:
        library = ctx.codegen().create_library("statespace._standalone.probe")
        return (
            all(hasattr(ctx, name) for name in ("remove_user_function", "insert_user_function", "declare_function"))
            and isinstance(getattr(library, "_reload_init", None), set)
            and hasattr(library, "create_ir_module")
            and hasattr(_engine(dispatcher), "is_symbol_defined")
            and hasattr(llvm, "add_symbol")
        )
    except Exception:
        return False


def _offer_declaration(dispatcher: Dispatcher, cres) -> None:
    """Register ``cres`` for callers as a declaration whose library loads it (module docstring)."""
    if cres.objectmode:
        return
    ctx = dispatcher.targetctx
    fndesc = cres.fndesc
    try:
        library = ctx.codegen().create_library(f"{fndesc.qualname}.declaration")
        module = library.create_ir_module(fndesc.unique_name)
        # Numba links only libraries that define a function, and its optimiser drops a lone declaration
        anchor_name = f"{fndesc.mangled_name}.anchor{next(_ANCHORS)}"
        anchor = ir.Function(module, ir.FunctionType(ir.VoidType(), ()), anchor_name)
        ir.IRBuilder(anchor.append_basic_block()).ret_void()
        library.add_ir_module(module)
        fn = dispatcher.py_func
        load = _LoadCallee(fn.__module__, fn.__qualname__, tuple(cres.signature.args), cres.signature.return_type, fndesc.mangled_name)  # fmt: skip
        library._reload_init.add(load)
    except Exception:  # Numba's internals changed: callers link this signature, as Numba does by default
        return
    ctx.remove_user_function(cres.entry_point)
    ctx.insert_user_function(cres.entry_point, fndesc, [library])


def standalone(dispatcher: Dispatcher) -> Dispatcher:
    """Mark ``dispatcher`` (a module-level ``@njit`` kernel) as called by its callers, not copied into them."""
    if os.environ.get(ENV, "1") == "0" or "<locals>" in dispatcher.py_func.__qualname__ or not _supported(dispatcher):
        return dispatcher
    add_overload = dispatcher.add_overload

    def add_overload_and_offer(cres):
        # every signature passes here, compiled or loaded from the disk, before any caller types its call
        add_overload(cres)
        _offer_declaration(dispatcher, cres)

    dispatcher.add_overload = add_overload_and_offer
    return dispatcher
