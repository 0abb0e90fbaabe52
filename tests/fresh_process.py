"""A fresh Python process with empty caches, for the tests of what a first call compiles.

:func:`run` executes :data:`PRELUDE` and then a test's own code in a new interpreter whose Numba
and library caches are the given folder. The prelude (:data:`WATCH`) keeps, in ``compiled``, the qualified name
of every kernel the process compiles itself (Numba's compile events), and gives ``spy``, a
``compile_together`` that records in ``helpers`` how many helper processes each call started
(the test's code installs it where the library looks it up). With ``mode == "failing"`` every
helper exits at once, so the process compiles everything itself.
"""

import json
import os
import subprocess
import sys
import textwrap

#: Keeps, in ``compiled``, the qualified name of every kernel the process compiles itself.
WATCH = textwrap.dedent(
    """
    from numba.core import event

    compiled = []

    class Watch(event.Listener):
        def on_start(self, ev):
            compiled.append(ev.data["dispatcher"].py_func.__qualname__)

        def on_end(self, ev):
            pass

    event.register("numba:compile", Watch())
    """
)

PRELUDE = WATCH + textwrap.dedent(
    """
    import json, sys

    import numpy as np

    from statespace import _parallel_compile as pc

    helpers = []

    def spy(calls, threads, here=1, later=(), needs=None):
        helpers.append(pc.compile_together(calls, threads, here, later, needs))
        return helpers[-1]

    if sys.argv[1] == "failing":
        pc._BOOT = "raise SystemExit(3)"
    """
)


def run(code: str, mode: str, cache, *args) -> dict:
    """Run :data:`PRELUDE` and ``code`` (``sys.argv[1:]`` = ``mode, *args``) with caches under ``cache``, two
    compiled-code threads and the helpers on; return the JSON object the code prints last."""
    from statespace import _parallel_compile as pc

    env = dict(
        os.environ,
        NUMBA_CACHE_DIR=str(cache / "numba"),
        STATESPACE_CACHE_DIR=str(cache / "statespace"),
        NUMBA_NUM_THREADS="2",
    )
    env.pop(pc.ENV, None)
    argv = [sys.executable, "-c", PRELUDE + textwrap.dedent(code), mode, *map(str, args)]
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])
