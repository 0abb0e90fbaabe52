"""Throughput of the deep SSM layers: parallel (convolution / associative scan) against step recurrence.

For each layer at hidden size 128, state size 64, length 4096 (CPU, float32) prints
JSON lines (GUIDE section 3):

* ``<layer>_parallel``: inference, parallel mode vs the recurrent mode (``lax.scan``
  over the step function) of the same layer; ``speedup = recurrent_s / parallel_s``;
* ``<layer>_parallel_train``: one training step (loss, gradient, Adam update) through
  each mode, same peer and speedup;
* ``<layer>_cold``: first call of the jitted parallel apply in this process (trace + compile + run).

``throughput`` fields are sequences x steps per second. Best of ``--repeats`` warm runs.
Run ``python benchmarks/deep_layers.py [--length 4096 --batch 2 --layers s4d,s5]``.
"""

from __future__ import annotations

import argparse
import json
import platform
import time


def _best(fn, repeats):
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--state", type=int, default=64)
    ap.add_argument("--length", type=int, default=4096)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--layers", default="s4d,s5,lru,selective_scan")
    args = ap.parse_args(argv)

    import jax
    import jax.numpy as jnp
    import optax

    from statespace.deep import LAYERS

    device = f"{jax.devices()[0].platform} ({platform.processor() or platform.machine()})"
    H, P, L, B = args.hidden, args.state, args.length, args.batch
    case = f"H{H}_P{P}_L{L}_B{B}"
    u = jax.random.normal(jax.random.key(0), (B, L, H), dtype=jnp.float32)
    for name in args.layers.split(","):
        mod = LAYERS[name]
        params = mod.init(jax.random.key(1), H, P)
        par = jax.jit(mod.apply)
        rec = jax.jit(mod.apply_recurrent)
        t0 = time.perf_counter()
        par(params, u).block_until_ready()
        cold = time.perf_counter() - t0
        print(
            json.dumps({"bench": f"{name}_cold", "case": case, "ours_s": round(cold, 4), "device": device}), flush=True
        )
        rec(params, u).block_until_ready()
        t_par = _best(lambda: par(params, u).block_until_ready(), args.repeats)
        t_rec = _best(lambda: rec(params, u).block_until_ready(), args.repeats)
        print(
            json.dumps(
                {
                    "bench": f"{name}_parallel",
                    "case": case,
                    "ours_s": round(t_par, 5),
                    "peer": f"{name} recurrent",
                    "peer_s": round(t_rec, 5),
                    "speedup": round(t_rec / t_par, 2),
                    "throughput": round(B * L / t_par, 1),
                    "peer_throughput": round(B * L / t_rec, 1),
                    "device": device,
                }
            ),
            flush=True,
        )

        opt = optax.adam(1e-3)

        def train_step(apply_fn):
            @jax.jit
            def stepper(p, s):
                loss, g = jax.value_and_grad(lambda q: jnp.mean(apply_fn(q, u) ** 2))(p)
                upd, s = opt.update(g, s, p)
                return optax.apply_updates(p, upd), s, loss

            return stepper

        times = {}
        for mode, fn in (("parallel", mod.apply), ("recurrent", mod.apply_recurrent)):
            stepper = train_step(fn)
            state = opt.init(params)
            jax.block_until_ready(stepper(params, state))
            times[mode] = _best(lambda: jax.block_until_ready(stepper(params, state)), args.repeats)
        print(
            json.dumps(
                {
                    "bench": f"{name}_parallel_train",
                    "case": case,
                    "ours_s": round(times["parallel"], 5),
                    "peer": f"{name} recurrent",
                    "peer_s": round(times["recurrent"], 5),
                    "speedup": round(times["recurrent"] / times["parallel"], 2),
                    "throughput": round(B * L / times["parallel"], 1),
                    "peer_throughput": round(B * L / times["recurrent"], 1),
                    "device": device,
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
