"""Rare events: importance sampling with a cross-entropy tilt, for default probabilities
far below what plain Monte Carlo resolves (1e-4 .. 1e-7).

    from sim.engine.rare import rare_run
    r = rare_run(scenario, "pd:Microsoft", paths=50000)   # r["pd"], r["pd_se"], r["ess"] ...

Change of measure (sim.engine.kernel.tilt_shocks): each path draws the plain shocks, then
shifts the means of the revenue, sentiment and jump normals and of the target entity's
cash-flow normal, and moves the probability that the regime uniform falls below p_enter
(the winter entry) from p_enter to q. Every path carries its likelihood ratio w (plain
density / tilted density of all its shocks), and every risk statistic is the w-weighted
one: PDs by year, the cascade distribution, P(2+), losses and their VaR/ES (weighted
histogram), with standard errors sqrt((mean(w^2 1_A) - p^2) / N) and the effective sample
size on each event, (sum w 1_A)^2 / sum w^2 1_A (paths' worth of plain-like information on
A). The mean weight is reported too; it is 1 in expectation, but under a strong tilt its
own variance is enormous (w is large on the paths the tilt makes unlikely), so it is no
check of the estimates on the event.

The tilt is chosen by multilevel cross-entropy (Rubinstein and Kroese, "The Cross-Entropy
Method", 2004): pilot rounds of `pilot_paths` paths each under the current tilt; the elite
is the paths whose score reaches min(target level, the (1 - rho) quantile of the scores);
the next tilt is the elite mean of each shifted normal's per-path mean (the Gaussian
mean's maximum-likelihood update) and the elite share of steps whose regime uniform is
below p_enter (the Bernoulli update), unweighted while the level is below the target's (a
likelihood-ratio-weighted mean over 28 steps of shocks is dominated by a few paths and
stalls), weighted by w once the level is the target's, for FINAL_ROUNDS rounds (the
fixed point of the cross-entropy update at the target level), which end the pilot.
Targets and their scores:

* ``revenue<K``: the lab's annualised revenue at the horizon below K ($B/yr); score
  -log revenue, level -log K (the lognormal check of tests/test_rare.py);
* ``pd:ENTITY``: ENTITY defaults by the horizon; score: hit, else -(final log revenue +
  ENTITY's final log cash flow) (a stress proxy that leads the pilot towards defaults);
* ``p2``: two or more defaults; score: hit, else the number of defaults minus final log
  revenue / 100.

Reproducibility: pilot round r uses the stream of chunk PILOT_CHUNK + r of the root seed,
the IS run chunks RARE_FIRST_CHUNK + k (`sim.engine.runner.chunk_generator`), so an IS run
is independent of the plain run of the same seed, and bit-identical for any number of
threads as plain runs are. With an empty tilt (the default) nothing of this runs and plain
results are unchanged.
"""

from __future__ import annotations

import csv
import io
import math
import os
import re

import numpy as np

from sim.engine import kernel as K
from sim.engine.model import compile_scenario
from sim.engine.runner import chunk_generator, new_path_buffers, simulate
from sim.engine.stats import Z95, loss_var_es
from sim.io import atomic_write

RARE_JSON, RARE_CSV = "rare.json", "rare_pd_by_year.csv"
RARE_FIRST_CHUNK = 1 << 30  # chunk keys of IS runs: far from any plain run's
PILOT_CHUNK = 1 << 31  # chunk keys of cross-entropy pilot rounds
HIT = 1e9  # score of a path on which the target event happened
DEFAULT_PILOT_PATHS = 4000
DEFAULT_ROUNDS = 12
RHO = 0.1
MIN_ESS = 30.0  # effective sample size on an event below which an IS estimate is not reported as resolved
FINAL_ROUNDS = 3  # weighted rounds at the target level (the cross-entropy fixed point)


def parse_target(spec: str, names: list[str]) -> tuple[str, object]:
    """("revenue", K) | ("pd", entity index) | ("p2", None); ValueError naming the spec."""
    spec = spec.strip()
    m = re.fullmatch(r"revenue\s*<\s*([0-9.eE+-]+)", spec)
    if m:
        k = float(m.group(1))
        if not k > 0:
            raise ValueError(f"rare target {spec!r}: K must be > 0")
        return "revenue", k
    if spec == "p2":
        return "p2", None
    if spec.startswith("pd:"):
        who = spec[3:]
        if who not in names:
            raise ValueError(f"rare target {spec!r}: unknown entity {who!r}; entities: {', '.join(names)}")
        return "pd", names.index(who)
    raise ValueError(f"rare target {spec!r}: use pd:ENTITY, p2 or revenue<K")


def tilt_components(M, target) -> list[int]:
    """Which entries of the tilt the pilot may move for this target (the rest stay plain)."""
    kind, arg = target
    if kind == "revenue":
        comps = [K.TILT_REV]
    else:
        comps = [K.TILT_REV, K.TILT_SENT, K.TILT_JUMP]
        if kind == "pd":
            comps.append(K.TILT_OCF + arg)
    if M.regime_on and 0.0 < M.p_enter < 1.0 and kind != "revenue":
        comps.append(K.TILT_ENTER)
    return comps


def plain_tilt(M) -> np.ndarray:
    """The tilt that changes nothing (zero shifts, entry probability p_enter)."""
    t = np.zeros(K.TILT_OCF + M.cash0.shape[0])
    t[K.TILT_ENTER] = M.p_enter
    return t


def score_and_hit(feats: np.ndarray, target, n: int) -> tuple[np.ndarray, np.ndarray, float]:
    """(score, hit, target level) of pilot paths (rows of kernel.pilot_paths)."""
    kind, arg = target
    log_rev = feats[:, 1]
    if kind == "revenue":
        score = -log_rev
        return score, score >= -math.log(arg), -math.log(arg)
    if kind == "pd":
        hit = feats[:, 3 + arg] >= 0
        score = np.where(hit, HIT, -(log_rev + feats[:, 3 + n + arg]))
    else:
        hit = feats[:, 2] >= 2
        score = np.where(hit, HIT, feats[:, 2] - log_rev / 100.0)
    return score, hit, HIT


def pilot(M, seed: int, round_: int, paths: int) -> np.ndarray:
    """One pilot round's per-path rows under M.tilt (its own chunk key)."""
    n = M.cash0.shape[0]
    st, ws, rec, shocks, tranche_u = new_path_buffers(M)
    feats = np.zeros((paths, 3 + 2 * n + 4 + n))
    K.pilot_paths(M, chunk_generator(seed, PILOT_CHUNK + round_), paths, shocks, tranche_u, st, ws, rec, feats)
    return feats


def cross_entropy_tilt(M, target, seed: int, *, pilot_paths: int = DEFAULT_PILOT_PATHS,
                       rounds: int = DEFAULT_ROUNDS, rho: float = RHO) -> tuple[np.ndarray, list[dict]]:
    """The tilt for `target` (module docstring) and the pilot's log, one dict per round."""
    n = M.cash0.shape[0]
    comps = tilt_components(M, target)
    tilt = plain_tilt(M)
    log = []
    base = 3 + 2 * n
    at_level = 0
    for r in range(rounds):
        feats = pilot(M._replace(tilt=tilt), seed, r, pilot_paths)
        score, hit, level = score_and_hit(feats, target, n)
        gamma = level if at_level else min(level, float(np.quantile(score, 1.0 - rho)))
        elite = score >= gamma
        # below the target level, the plain elite mean under the current tilt (it always moves
        # on: with 28 steps of shocks the likelihood ratios of the elite are too uneven to
        # weight them); at the target level, the weighted (proper cross-entropy) update
        w = (np.exp(feats[:, 0]) if gamma >= level else np.ones(len(score))) * elite
        log.append({"round": r, "level": gamma, "reached": bool(gamma >= level), "hits": int(hit.sum()),
                    "elite": int(elite.sum()), "tilt": tilt.tolist()})
        if w.sum() <= 0.0:
            break
        new = tilt.copy()
        for c in comps:
            v = float((w * feats[:, base + c]).sum() / w.sum())
            if c == K.TILT_ENTER:
                v = min(max(v, M.p_enter), 0.95)  # never less likely than plain, never certain
            new[c] = v
        tilt = new
        at_level += gamma >= level  # once reached, the level stays the target's
        if at_level >= FINAL_ROUNDS:
            break
    return tilt, log


def event_estimate(M, target, tilt, seed: int, paths: int, chunk_size: int = 8192) -> dict:
    """P(target) by importance sampling from per-path rows (kernel.pilot_paths) under `tilt`
    (the plain tilt: plain Monte Carlo): {"p", "se", "hits", "ess_event", "paths"}. Chunk k
    uses the stream of chunk RARE_FIRST_CHUNK + k of `seed`, the same as `rare_run`."""
    n = M.cash0.shape[0]
    Mt = M._replace(tilt=np.asarray(tilt, float))
    st, ws, rec, shocks, tranche_u = new_path_buffers(M)
    s1 = s2 = 0.0
    hits = 0
    done = 0
    k = 0
    while done < paths:
        size = min(chunk_size, paths - done)
        feats = np.zeros((size, 3 + 2 * n + 4 + n))
        K.pilot_paths(Mt, chunk_generator(seed, RARE_FIRST_CHUNK + k), size, shocks, tranche_u, st, ws, rec, feats)
        _, hit, _ = score_and_hit(feats, target, n)
        w = np.exp(feats[:, 0]) * hit
        s1 += float(w.sum())
        s2 += float((w * w).sum())
        hits += int(hit.sum())
        done += size
        k += 1
    p = s1 / paths
    return {"p": p, "se": math.sqrt(max(s2 / paths - p * p, 0.0) / paths), "hits": hits,
            "ess_event": s1 * s1 / s2 if s2 > 0 else 0.0, "paths": paths}


def weighted_estimates(M, s: K.Stats, names: list[str]) -> dict:
    """IS estimates from the weighted statistics of a tilted run (module docstring)."""
    N = float(s.n_paths[0])
    spy = M.steps_per_year
    cw = np.cumsum(s.w_default_at, axis=1)[:, spy - 1::spy] / N
    cw2 = np.cumsum(s.w2_default_at, axis=1)[:, spy - 1::spy] / N
    pd_se = np.sqrt(np.maximum(cw2 - cw ** 2, 0.0) / N)
    hits = np.cumsum(s.default_at, axis=1)[:, spy - 1::spy]
    p2 = s.w_cascade[2:].sum() / N
    p2_se = math.sqrt(max(s.w2_cascade[2:].sum() / N - p2 ** 2, 0.0) / N)
    loss_mean = s.w_loss[0] / N
    loss_se = math.sqrt(max(s.w_loss[2] / N - loss_mean ** 2, 0.0) / N)
    var, es = loss_var_es(s.w_loss_hist, s.w_loss_hist_sum, 0.99)
    w_mean = s.w_sum[0] / N
    w_se = math.sqrt(max(s.w_sum[1] / N - w_mean ** 2, 0.0) / N)
    ess = s.w_sum[0] ** 2 / s.w_sum[1] if s.w_sum[1] > 0 else 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        ess_event = np.where(cw2[:, -1] > 0, (cw[:, -1] * N) ** 2 / (cw2[:, -1] * N), 0.0)
    return {"paths": int(N), "entities": names, "pd": cw.tolist(), "pd_se": pd_se.tolist(),
            "pd_lo": np.maximum(cw - Z95 * pd_se, 0.0).tolist(), "pd_hi": (cw + Z95 * pd_se).tolist(),
            "hits": hits.tolist(), "p2": float(p2), "p2_se": p2_se,
            "cascade": (s.w_cascade / N).tolist(), "loss_mean": float(loss_mean), "loss_mean_se": loss_se,
            "loss_var99": var, "loss_es99": es, "mean_weight": float(w_mean), "mean_weight_se": w_se,
            "ess": float(ess), "ess_event": ess_event.tolist()}


def rare_run(scenario, target: str, *, paths: int = 50000, seed: int | None = None, chunk_size: int = 8192,
             threads: int | None = None, pilot_paths: int = DEFAULT_PILOT_PATHS, rounds: int = DEFAULT_ROUNDS,
             M=None) -> dict:
    """Cross-entropy pilot, then an importance-sampling run of `paths` paths: a dict with the
    weighted estimates (`weighted_estimates`), "target", "tilt", "pilot" (the rounds' log),
    "seed", "chunk_size", "wall_seconds". `M`: compiled arrays to use instead of compiling
    `scenario` (tests and benchmarks pass modified ones)."""
    M = compile_scenario(scenario) if M is None else M
    names = [e["name"] for e in scenario.data["entity"]]
    seed = int(scenario.data["seed"] if seed is None else seed)
    tgt = parse_target(target, names)
    tilt, log = cross_entropy_tilt(M, tgt, seed, pilot_paths=pilot_paths, rounds=rounds)
    stats, _, info = simulate(M._replace(tilt=tilt), paths, seed, chunk_size=chunk_size, threads=threads,
                              first_chunk=RARE_FIRST_CHUNK)
    out = weighted_estimates(M, stats, names)
    out.update({"target": target, "tilt": tilt.tolist(), "pilot": log, "seed": seed, "chunk_size": chunk_size,
                "wall_seconds": info["wall_seconds"],
                "years": [int(scenario.data["time"]["start_year"]) + y
                          for y in range(M.n_steps // M.steps_per_year)]})
    return out


def rare_csv(runs: list[dict]) -> str:
    """rare_pd_by_year.csv: target, entity, year, IS PD, se, 95% interval, tilted paths where
    the default happened, effective sample size on it (by the horizon)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["target", "entity", "year", "pd", "se", "lo95", "hi95", "hits", "ess_event"])
    for r in runs:
        for i, e in enumerate(r["entities"]):
            for k, y in enumerate(r["years"]):
                w.writerow([r["target"], e, y, f"{r['pd'][i][k]:.6g}", f"{r['pd_se'][i][k]:.3g}",
                            f"{r['pd_lo'][i][k]:.6g}", f"{r['pd_hi'][i][k]:.6g}", r["hits"][i][k],
                            f"{r['ess_event'][i]:.1f}"])
    return buf.getvalue()


def write_rare(out_dir: str, runs: list[dict]) -> list[str]:
    """rare.json (the list of IS runs, as `rare_run` returns them) and rare_pd_by_year.csv."""
    import json

    pj, pc = os.path.join(out_dir, RARE_JSON), os.path.join(out_dir, RARE_CSV)
    atomic_write(pj, json.dumps(runs, indent=1))
    atomic_write(pc, rare_csv(runs))
    return [pj, pc]


def best_small_pds(runs: list[dict], plain_hits, min_ess: float = MIN_ESS) -> dict[str, dict]:
    """For each entity no plain path saw default (plain_hits[i] == 0), the IS estimate by the
    horizon with the smallest relative se among `runs` whose effective sample size on that
    default is at least `min_ess` (below it the weights are too uneven for the estimate or
    its se to be trusted): {entity: {"pd", "se", "lo", "hi", "target", "hits", "paths"}}."""
    best: dict[str, dict] = {}
    for r in runs:
        for i, e in enumerate(r["entities"]):
            if plain_hits[i] > 0 or r["ess_event"][i] < min_ess or not r["pd"][i][-1] > 0:
                continue
            cand = {"pd": r["pd"][i][-1], "se": r["pd_se"][i][-1], "lo": r["pd_lo"][i][-1], "hi": r["pd_hi"][i][-1],
                    "target": r["target"], "hits": r["hits"][i][-1], "paths": r["paths"]}
            if e not in best or cand["se"] / cand["pd"] < best[e]["se"] / best[e]["pd"]:
                best[e] = cand
    return best
