"""JAX's programs kept on disk in the library's cache directory (``statespace._compile.use_jax_cache``).

A deep model's training step is an XLA program that takes seconds to compile in every new
process. Each test runs fresh interpreters and reads JAX's own monitoring events (cache hits and
misses), so what is checked is JAX's behaviour, not the library's account of it.
"""

import json
import os
import subprocess
import sys
import textwrap

from statespace._compile import JAX_CACHE_MARK

#: A small deep-emission HMM fit, its log-likelihoods and JAX's cache events as JSON.
FIT = textwrap.dedent(
    """
    import json, os, sys
    import numpy as np
    import statespace  # before jax, as a script imports it
    import jax
    import jax.monitoring

    events = []
    jax.monitoring.register_event_listener(lambda name, **kw: events.append(name))
    from hmm import LearnedEmissionHMM

    rng = np.random.default_rng(0)
    y = [np.cumsum(rng.normal(size=(40, 1)), axis=0) for _ in range(3)]
    model = LearnedEmissionHMM(2, 1, layer="s5", hidden=4, state=4, n_layers=1)
    fit = model.fit(y, max_iter=2, m_steps=3, rng=0, progress=False)
    print(json.dumps({
        "directory": jax.config.jax_compilation_cache_dir,
        "lls": [float(v) for v in fit.log_likelihoods],
        "hits": events.count("/jax/compilation_cache/cache_hits"),
        "misses": events.count("/jax/compilation_cache/cache_misses"),
    }))
    """
)

#: Where JAX's cache points in a fresh process, after importing ``statespace`` (and, with ``jax_first``, jax before).
WHERE = textwrap.dedent(
    """
    import json, sys
    if sys.argv[1] == "jax_first":
        import jax
        if len(sys.argv) > 2:
            jax.config.update("jax_compilation_cache_dir", sys.argv[2])
    import statespace
    import jax
    print(json.dumps({"directory": jax.config.jax_compilation_cache_dir}))
    """
)

#: A process that imports ``statespace``, then runs the code ``sys.argv[2]`` with the cache directory ``sys.argv[1]``.
PARENT = textwrap.dedent(
    """
    import os, subprocess, sys
    import statespace
    env = dict(os.environ, STATESPACE_CACHE_DIR=sys.argv[1])
    child = [sys.executable, "-c", sys.argv[2], "plain"]
    print(subprocess.run(child, env=env, capture_output=True, text=True, check=True).stdout)
    """
)


def _env(cache, **extra):
    env = {k: v for k, v in os.environ.items() if k not in ("JAX_COMPILATION_CACHE_DIR", JAX_CACHE_MARK)}
    env.update(STATESPACE_CACHE_DIR=str(cache), **extra)
    return env


def _run(code, env, *args):
    proc = subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_a_fresh_process_loads_the_deep_fit_s_programs_instead_of_compiling_them(tmp_path):
    # every program kept, however fast it compiled, so that the second process can miss none
    env = _env(tmp_path, JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0")
    first = _run(FIT, env)
    assert first["directory"] == str(tmp_path / "jax")
    assert first["misses"] > 0 and first["hits"] == 0
    assert any(p.name.endswith("-cache") for p in (tmp_path / "jax").iterdir())
    second = _run(FIT, env)
    assert second["hits"] >= first["misses"] and second["misses"] == 0
    assert second["lls"] == first["lls"]  # the loaded programs compute what the compiled ones did


def test_the_user_s_jax_cache_directory_stands(tmp_path):
    own, lib = str(tmp_path / "own"), tmp_path / "lib"
    assert _run(WHERE, _env(lib, JAX_COMPILATION_CACHE_DIR=own), "plain") == {"directory": own}
    assert _run(WHERE, _env(lib), "jax_first", own) == {"directory": own}
    # JAX imported first with nothing chosen: the library's directory, set through JAX's configuration
    assert _run(WHERE, _env(lib), "jax_first") == {"directory": str(lib / "jax")}


def test_a_child_process_with_its_own_cache_directory_uses_its_own(tmp_path):
    # the parent's setting travels in the environment; the child tells it from a user's choice
    child = _run(PARENT, _env(tmp_path / "parent"), str(tmp_path / "child"), WHERE)
    assert child == {"directory": str(tmp_path / "child" / "jax")}
