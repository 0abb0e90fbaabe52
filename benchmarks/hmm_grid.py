"""Grid benchmark: HMM smoothing and Baum-Welch against dynamax and hmmlearn, over states, emissions, dimensions and batches.

Problems (seeded, one per cell): ``pi0`` uniform, ``A = 0.8 I + 0.2 D`` with
Dirichlet(1) rows ``D``, and the emission of the cell's kind:

* ``full`` / ``diag`` / ``tied`` Gaussian: means ``N(0, 4 I)``, covariances
  ``W W^T / d + 0.5 I`` (diagonal: uniform variances in [0.3, 1.3]; tied: one shared);
* ``ar1``: first-order autoregressive Gaussian, ``y_t = b_k + A_k y_{t-1} + e``,
  ``A_k`` of spectral radius 0.5, full covariances (no hmmlearn model: dynamax only);
* ``categorical``: ``M = 10`` symbols, Dirichlet(1) rows (one cell per K, d = 1).

Cases (one JSON line each):

* ``hmm_grid_smooth``: smoothed state probabilities of one sequence of ``T``
  steps, emission log-likelihoods included, at ``K in {2, 5, 10, 30}`` x kind x
  ``d in {1, 3, 8}``. Ours ``model.smooth``; dynamax ``hmm_smoother`` with the
  emission log-likelihoods in the same ``jax.jit`` (x64, warm); hmmlearn
  ``predict_proba`` (``implementation="scaling"``, its faster one). ``peer`` is
  the faster of the two, ``speedup`` against it; both ratios are in the line,
  with the largest difference of the smoothed probabilities to each peer.
* ``hmm_grid_baum_welch``: ``EM_ITERS`` EM iterations from the same start (the
  truth with flattened transitions, shifted means and inflated covariances)
  against hmmlearn's ``fit`` (``init_params=""``, ``tol=-inf``, scaling).
* ``hmm_grid_batch_smooth`` / ``hmm_grid_batch_baum_welch``: ``B in {1, 100, 2000}``
  sequences with lengths drawn uniformly in ``[0.8 T, 1.2 T]`` for ``T in {100,
  1000, 100000}`` (full Gaussian, K = 5, d = 3). Ours: the list; hmmlearn:
  ``lengths=``; dynamax: ``vmap`` over the batch padded to the longest sequence
  (padded steps get emission log-likelihood 0, which leaves the real steps'
  posteriors exact). Cells above a cap of ``B * T`` are skipped for the side
  that would not finish in the grid's budget, and the line says so.

Targets (issue 17): smoothing at least 3x the faster of dynamax and hmmlearn
everywhere, batches included; Baum-Welch at least 10x hmmlearn everywhere.

Run: ``python benchmarks/hmm_grid.py`` (``--quick``: tiny subset; ``--no-peer``: ours only).
"""

from __future__ import annotations

import argparse
import zlib

import _gridlib as g  # first: fixes sys.path and BLAS threads
import numpy as np

EM_ITERS = 5
KINDS = ("full", "diag", "tied", "ar1", "categorical")
N_SYMBOLS = 10
HMMLEARN_CAP = 2_000_000  # B*T beyond which hmmlearn's smoothing/EM would dominate the grid's time budget
DYNAMAX_CAP = 10_000_000  # padded B*T beyond which dynamax's arrays no longer fit the 24 GB machine beside ours
OURS_CAP = 10_000_000


# --------------------------------------------------------------------------- problems
def spd(rng, d):
    w = rng.standard_normal((d, d))
    return w @ w.T / d + 0.5 * np.eye(d)


def problem(K: int, kind: str, d: int, seed: int = 0):
    """(our model, plain parameter dict for the peers)."""
    from hmm import HMM

    rng = np.random.default_rng(zlib.crc32(f"{K}-{kind}-{d}-{seed}".encode()))
    pi0 = np.full(K, 1.0 / K)
    A = 0.8 * np.eye(K) + 0.2 * rng.dirichlet(np.ones(K), size=K)
    p = {"kind": kind, "K": K, "d": d, "pi0": pi0, "A": A}
    if kind == "categorical":
        p["probs"] = rng.dirichlet(np.ones(N_SYMBOLS), size=K)
        return HMM(K, 1, "categorical", n_symbols=N_SYMBOLS, params=our_params(p)), p
    means = 2.0 * rng.standard_normal((K, d))
    if kind == "diag":
        covs = np.stack([np.diag(rng.uniform(0.3, 1.3, d)) for _ in range(K)])
    elif kind == "tied":
        covs = np.repeat(spd(rng, d)[None], K, axis=0)
    else:
        covs = np.stack([spd(rng, d) for _ in range(K)])
    p.update(means=means, covs=covs)
    if kind == "ar1":
        ar = np.empty((K, d, d))
        for k in range(K):
            q, _ = np.linalg.qr(rng.standard_normal((d, d)))
            ar[k] = 0.5 * q
        p.update(ar=ar, init_means=means / 0.5)  # roughly the stationary mean
        return HMM(K, d, "ar", lags=1, params=our_params(p)), p
    return HMM(K, d, "gaussian", covariance_type=kind, params=our_params(p)), p


def our_params(p):
    from hmm import CategoricalEmissionParams, GaussianEmissionParams, HMMParams

    if p["kind"] == "categorical":
        em = CategoricalEmissionParams(p["probs"])
    elif p["kind"] == "ar1":
        em = GaussianEmissionParams.from_ar(
            p["means"], p["covs"], ar_coefs=p["ar"][:, None], init_means=p["init_means"], init_covs=p["covs"]
        )
    else:
        em = GaussianEmissionParams.from_ar(p["means"], p["covs"])
    return HMMParams(p["pi0"], p["A"], em)


def em_start(p):
    """A start away from the truth (flattened A, shifted means, inflated covariances), the same for every side,
    so that EM runs all its iterations instead of stopping at the optimum."""
    rng = np.random.default_rng(5)
    K = p["K"]
    q = dict(p, A=0.5 * p["A"] + 0.5 / K)
    if p["kind"] == "categorical":
        q["probs"] = 0.5 * p["probs"] + 0.5 / N_SYMBOLS
    else:
        q.update(means=p["means"] + 0.5 * rng.standard_normal(p["means"].shape), covs=1.5 * p["covs"])
    return q


def ragged_lengths(B: int, T: int, rng) -> list[int]:
    if B == 1:
        return [T]
    return [int(n) for n in rng.integers(int(0.8 * T), int(1.2 * T) + 1, size=B)]


# --------------------------------------------------------------------------- peers
def hmmlearn_model(p, **kw):
    """hmmlearn model holding the same parameters, or None for kinds it lacks (AR)."""
    from hmmlearn import hmm as H

    K, kind = p["K"], p["kind"]
    if kind == "ar1":
        return None
    if kind == "categorical":
        m = H.CategoricalHMM(n_components=K, n_features=N_SYMBOLS, init_params="", implementation="scaling", **kw)
        m.startprob_, m.transmat_, m.emissionprob_ = p["pi0"], p["A"], p["probs"]
        return m
    m = H.GaussianHMM(n_components=K, covariance_type=kind, init_params="", implementation="scaling", **kw)
    m.startprob_, m.transmat_, m.means_ = p["pi0"], p["A"], p["means"]
    covs = p["covs"]
    m.covars_ = {"full": covs, "diag": np.diagonal(covs, axis1=1, axis2=2), "tied": covs[0]}[kind]
    return m


def hmmlearn_data(p, ys):
    X = np.concatenate(ys)
    if p["kind"] == "categorical":
        X = X.astype(np.int64)
    return X, [len(y) for y in ys]


def dynamax_smoother(jax, p):
    """jitted ``Y (B, Tmax, d), lengths (B,) -> smoothed probs (B, Tmax, K)``, emission log-likelihoods inside."""
    import jax.numpy as jnp
    from dynamax.hidden_markov_model import hmm_smoother

    kind, d = p["kind"], p["d"]
    pi0, A = jnp.asarray(p["pi0"]), jnp.asarray(p["A"])
    c = -0.5 * d * np.log(2 * np.pi)
    if kind == "categorical":
        logB = jnp.asarray(np.log(p["probs"]).T)  # (M, K)

        def loglik(y):
            return logB[y[:, 0].astype(jnp.int32)]
    else:
        Linv = jnp.asarray(np.linalg.inv(np.linalg.cholesky(p["covs"])))  # (K, d, d)
        half_logdet = jnp.asarray(np.log(np.diagonal(np.linalg.cholesky(p["covs"]), axis1=1, axis2=2)).sum(1))
        mu = jnp.asarray(p["means"])

        def gauss(diff, Li, hl):  # diff (T, K, d)
            if kind == "diag":
                z = diff * jnp.diagonal(Li, axis1=-2, axis2=-1)
            elif kind == "tied":
                z = diff @ Li[0].T
            else:
                z = jnp.einsum("kij,tkj->tki", Li, diff)
            return c - hl - 0.5 * jnp.sum(z * z, axis=-1)

        if kind == "ar1":
            ar = jnp.asarray(p["ar"])
            m0 = jnp.asarray(p["init_means"])

            def loglik(y):
                mean = mu[None] + jnp.einsum("kij,tj->tki", ar, y[:-1])
                rest = gauss(y[1:, None, :] - mean, Linv, half_logdet)
                first = gauss(y[:1, None, :] - m0[None], Linv, half_logdet)
                return jnp.concatenate([first, rest])
        else:

            def loglik(y):
                return gauss(y[:, None, :] - mu[None], Linv, half_logdet)

    def one(y, n):
        ll = loglik(y)
        ll = jnp.where((jnp.arange(y.shape[0]) < n)[:, None], ll, 0.0)
        return hmm_smoother(pi0, A, ll).smoothed_probs

    return jax.jit(jax.vmap(one))


def pad(ys, d):
    n = max(len(y) for y in ys)
    Y = np.zeros((len(ys), n, d))
    for i, y in enumerate(ys):
        Y[i, : len(y)] = y.reshape(len(y), d)
    return Y


# --------------------------------------------------------------------------- one cell
def smooth_cell(args, bench, case, model, p, ys, peers, caps_note):
    """Interleaved smoothing of the batch ``ys`` by ours and the available peers; one JSON line."""
    single = len(ys) == 1
    arg = ys[0] if single else ys
    outs = {}

    def keep(name, fn):  # the timed call also leaves its output for the agreement check
        return lambda: outs.__setitem__(name, fn())

    fns = {"ours": keep("ours", lambda: model.smooth(arg))}
    names = {}
    d = 1 if p["kind"] == "categorical" else p["d"]
    if "dynamax" in peers:
        jax = peers["dynamax"]
        run = dynamax_smoother(jax, p)
        Y, n = jax.numpy.asarray(pad(ys, d)), jax.numpy.asarray([len(y) for y in ys])
        fns["dynamax"] = keep("dynamax", lambda: run(Y, n).block_until_ready())
        names["dynamax"] = f"dynamax {g.version('dynamax')}"
    if "hmmlearn" in peers:
        ref = hmmlearn_model(p)
        if ref is not None:
            X, lengths = hmmlearn_data(p, ys)
            fns["hmmlearn"] = keep("hmmlearn", lambda: ref.predict_proba(X, lengths))
            names["hmmlearn"] = f"hmmlearn {g.version('hmmlearn')}"
    counts = {}
    t = g.interleaved(fns, rounds=args.rounds, budget_s=args.budget, nocompile=("hmmlearn",), counts=counts)
    if len(fns) == 1:
        g.emit({"bench": bench, "case": case, "ours_s": g.sig(t["ours"]), "peer": "none", **caps_note})
        return
    ours_probs = [r.smoothed_probs for r in ([outs["ours"]] if single else outs["ours"])]
    diffs = {}
    if "dynamax" in outs:
        out = np.asarray(outs["dynamax"])
        diffs["dynamax"] = max(float(np.max(np.abs(o - out[i, : len(o)]))) for i, o in enumerate(ours_probs))
    if "hmmlearn" in outs:
        diffs["hmmlearn"] = float(np.max(np.abs(np.concatenate(ours_probs) - outs["hmmlearn"])))
    fastest = min(names, key=lambda k: t[k])
    extra = {f"speedup_{k}": g.sig(t[k] / t["ours"], 3) for k in names}
    extra.update({f"{k}_s": g.sig(t[k]) for k in names})
    extra.update({f"max_abs_diff_{k}": diffs[k] for k in names})
    extra["timed_calls"] = counts
    g.emit(g.ratio_line(bench, case, t["ours"], names[fastest], t[fastest], 3.0, **extra, **caps_note))


def baum_welch_cell(args, bench, case, model, p, ys, peers, caps_note):
    """``EM_ITERS`` Baum-Welch iterations from ``em_start``, ours against hmmlearn."""
    if "hmmlearn" not in peers or p["kind"] == "ar1":
        why = (
            "no hmmlearn model for AR emissions"
            if p["kind"] == "ar1"
            else caps_note.get("hmmlearn", "hmmlearn not available (not installed, or --no-peer)")
        )
        g.emit({"bench": bench, "case": case, "skipped": why})
        return
    q = em_start(p)
    start = our_params(q)
    arg = ys[0] if len(ys) == 1 else ys
    res = {}

    def ours():
        model.params = start
        res["ours"] = model.fit(
            arg, max_iter=args.em_iters, tol=0.0, progress=False, **g.fit_start_kw(model.fit, start)
        )

    X, lengths = hmmlearn_data(p, ys)
    params = "ste" if p["kind"] == "categorical" else "stmc"

    def theirs():
        ref = hmmlearn_model(q, params=params, n_iter=args.em_iters, tol=-np.inf)
        ref.fit(X, lengths)
        res["peer"] = ref

    counts = {}
    t = g.interleaved(
        {"ours": ours, "peer": theirs}, rounds=3, block=1, budget_s=args.budget, nocompile=("peer",), counts=counts
    )
    model.params = our_params(p)
    g.emit(
        g.ratio_line(
            bench,
            case,
            t["ours"],
            f"hmmlearn {g.version('hmmlearn')}",
            t["peer"],
            10.0,
            iterations=args.em_iters,
            ours_iterations_run=int(res["ours"].n_iter),
            peer_iterations_run=int(res["peer"].monitor_.iter),
            timed_calls=counts,
        )
    )


# --------------------------------------------------------------------------- grids
def available_peers(no_peer: bool) -> dict:
    peers = {}
    if no_peer:
        return peers
    jax = g.jax_x64()
    if jax is not None:
        peers["dynamax"] = jax
    if g.version("hmmlearn") is not None:
        peers["hmmlearn"] = True
    return peers


def kinds_grid(args, peers):
    if args.quick:
        cells = [(2, "full", 2), (3, "ar1", 2), (3, "categorical", 1)]
        T = 300
    else:
        T = args.T
        cells = [
            (K, kind, d)
            for K in (2, 5, 10, 30)
            for kind in KINDS
            for d in ((1,) if kind == "categorical" else (1, 3, 8))
        ]
    for K, kind, d in cells:
        model, p = problem(K, kind, d)
        _, y = model.sample(T, rng=1)
        case = f"K{K}_{kind}_d{d}_T{T}"
        smooth_cell(args, "hmm_grid_smooth", case, model, p, [y], peers, {})
        baum_welch_cell(args, "hmm_grid_baum_welch", case, model, p, [y], peers, {})


def batch_grid(args, peers):
    K, kind, d = 5, "full", 3
    model, p = problem(K, kind, d)
    rng = np.random.default_rng(11)
    shapes = [(20, 50)] if args.quick else [(B, T) for B in (1, 100, 2000) for T in (100, 1000, 100_000)]
    for B, T in shapes:
        case = f"K{K}_{kind}_d{d}_B{B}_T{T}"
        steps = B * T
        if steps > OURS_CAP:
            why = (
                f"B*T = {steps:.0e} > {OURS_CAP:.0e}: the smoothed and filtered probabilities alone take "
                f"{2 * steps * K * 8 / 1e9:.0f} GB per side on the 24 GB machine"
            )
            for bench in ("hmm_grid_batch_smooth", "hmm_grid_batch_baum_welch"):
                g.emit({"bench": bench, "case": case, "skipped": why})
            continue
        cell_peers, note = dict(peers), {}
        if "hmmlearn" in cell_peers and steps > HMMLEARN_CAP:
            del cell_peers["hmmlearn"]
            note["hmmlearn"] = (
                f"capped: B*T = {steps:.0e} > {HMMLEARN_CAP:.0e} (hmmlearn would take most of the "
                "grid's 25-minute budget); compared with dynamax only"
            )
        if "dynamax" in cell_peers and steps > DYNAMAX_CAP:
            del cell_peers["dynamax"]
            note["dynamax"] = f"capped: padded B*T above {DYNAMAX_CAP:.0e}"
        ys = [model.sample(n, rng=rng)[1] for n in ragged_lengths(B, T, rng)]
        smooth_cell(args, "hmm_grid_batch_smooth", case, model, p, ys, cell_peers, note)
        baum_welch_cell(args, "hmm_grid_batch_baum_welch", case, model, p, ys, cell_peers, note)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="tiny subset (smoke test)")
    ap.add_argument("--no-peer", action="store_true", help="ours only")
    ap.add_argument("--T", type=int, default=20_000, help="length of the single-sequence cases")
    ap.add_argument("--em-iters", type=int, default=EM_ITERS)
    ap.add_argument("--rounds", type=int, default=5, help="most interleaved rounds per case")
    ap.add_argument("--budget", type=float, default=4.0, help="seconds of timed rounds per case (at least 2 rounds)")
    ap.add_argument("--only", choices=("kinds", "batch"), help="one part of the grid")
    args = ap.parse_args(argv)
    if args.quick:
        args.em_iters, args.rounds, args.budget = 2, 2, 1.0
    peers = available_peers(args.no_peer)
    g.emit(g.run_meta("hmm_grid", peers=[f"{k} {g.version(k)}" for k in peers]))
    for name in ("dynamax", "hmmlearn"):
        if name not in peers and not args.no_peer:
            g.emit({"bench": "hmm_grid", "skipped_peer": f"{name} not installed"})
    if args.only in (None, "kinds"):
        kinds_grid(args, peers)
    if args.only in (None, "batch"):
        batch_grid(args, peers)
    g.done("hmm_grid")


if __name__ == "__main__":
    main()
