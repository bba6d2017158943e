"""Systemic importance: which entity's failure would hurt the system most?

    bubblesim importance scenarios/base.toml --paths 20000 --date 2026 --out runs/importance

For each entity i, the scenario is run again with i forced to default at a chosen date
(`sim.engine.model.with_forced_default`: after that step's clearing, i is written off as any
defaulter is) and compared with the base run on the same random numbers (same seed and
chunk layout: common random numbers, so the difference is measured far more precisely
than either run alone). Per entity:

* ``d_p2``: change in P(2+ defaults by the horizon) (i's own forced default counts as one),
* ``d_other_defaults``: change in the expected number of *other* entities that default by
  the horizon (the ranking key: the defaults i's failure adds elsewhere),
* ``d_pd[j]``: change in each other entity's PD by the horizon (the largest is reported),
* ``d_loss``: change in mean total losses to outside creditors, $B, and ``d_loss_others``
  the same without the losses caused by i's own default.

Standard errors are paired batch means over chunks, the ratio estimator of
`sim.studies.compare`: with per-chunk totals ``y_k = forced_k - base_k`` over ``n_k`` paths,
``d = sum y_k / N`` and ``se = sqrt(K/(K-1) sum (y_k - d n_k)^2) / N`` (K chunks; use 10 or
more). A forced default at the date does not change the random numbers, only what they
do after it, so an entity that has no link to i keeps its defaults path by path unless a
default elsewhere reaches it.

DebtRank (Battiston, Puliga, Kaushik, Tasca and Caldarelli, "DebtRank: too central to fail?",
Scientific Reports 2, 541, 2012) on the starting network is reported beside it as a static
cross-check: it uses only the balance sheets at the start, no shocks and no dynamics.
Impact matrix ``W[i, j] = min(1, A[j, i] / E_j)``: ``A[j, i]`` is what j writes off if i
fails at the start (stakes j holds in i at their start value; network loans j made to i;
for contracts i pays j, the capacity j writes off, capex share x backlog x (1 - re-let
share x (1 - re-let discount)), plus the margin j loses, (1 - cost ratio) x backlog), ``E_j``
j's book equity (its equity value at the start where book equity is not positive).
Economic weights ``v_j`` are balance-sheet sizes (equity value + outside debt,
`sim.engine.network`) over their total. Distress ``h`` starts at 1 for i, 0 elsewhere; each
round, every newly distressed node passes ``W[i, j] h_i`` to its neighbours (capped at 1)
and then becomes inactive; ``R_i = sum_j h_j v_j - v_i`` (the value lost elsewhere).
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

import numpy as np

from sim.engine.model import compile_scenario, step_of, with_forced_default
from sim.engine.network import network_block
from sim.engine.runner import chunk_layout, default_threads, run_chunk
from sim.io import atomic_write

IMPORTANCE_JSON = "importance.json"
IMPORTANCE_CSV = "importance.csv"
DEFAULT_PATHS = 20000
DEFAULT_CHUNK_SIZE = 1000  # 20 chunks at the default path count: enough for batch-means errors
CSV_COLUMNS = ["rank", "entity", "base_pd", "d_other_defaults", "se_d_other_defaults", "d_p2", "se_d_p2",
               "d_loss", "se_d_loss", "d_loss_others", "se_d_loss_others", "most_hit", "d_pd_most_hit",
               "se_d_pd_most_hit", "debtrank"]


# ------------------------------------------------------------------------------ DebtRank
def debtrank(W: np.ndarray, v: np.ndarray, shocked, psi: float = 1.0) -> float:
    """DebtRank of the set `shocked` (indices), initial distress `psi`: value lost by the others.

    W[i, j]: fraction of j's capital lost when i is fully distressed (capped at 1); v: economic
    weights summing to 1. Each node propagates once, in the round after it becomes distressed
    (Battiston et al. 2012, eqs. 2-3)."""
    W = np.asarray(W, float)
    v = np.asarray(v, float)
    n = W.shape[0]
    h = np.zeros(n)
    state = np.zeros(n, np.int8)  # 0 undistressed, 1 distressed (propagates next round), 2 inactive
    for i in np.atleast_1d(shocked):
        h[i] = psi
        state[i] = 1
    h1 = h.copy()
    while (state == 1).any():
        active = state == 1
        new_h = np.minimum(1.0, h + (W[active].T @ h[active]))
        state[active] = 2
        state[(new_h > 0.0) & (state == 0)] = 1
        h = new_h
    return float(h @ v - h1 @ v)


def exposure_matrix(scenario) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """(A, E, v, names) of the starting network: A[j, i] what j writes off if i fails at the
    start, E_j j's capital, v_j its share of total balance-sheet size (module docstring)."""
    M = compile_scenario(scenario)
    net = network_block(scenario)
    names = [e["name"] for e in net["entities"]]
    n = len(names)
    A = np.zeros((n, n))
    value = np.array([e["equity_value"] for e in net["entities"]])
    for j in range(n):
        for i in range(n):
            if M.share0[j, i] > 0.0:
                A[j, i] += M.share0[j, i] * value[i]
    for k in range(M.l_amount.shape[0]):
        A[M.l_lender[k], M.l_borrower[k]] += M.l_amount[k]
    for c in range(M.c_payer.shape[0]):
        payer, payee = M.c_payer[c], M.c_payee[c]
        backlog = M.c_remaining[c, 0]
        keep = M.c_relet_share[c] * (1.0 - M.c_relet_discount[c])
        A[payee, payer] += M.c_capex[c] * backlog * (1.0 - keep) + (1.0 - M.c_cost[c]) * backlog
    np.fill_diagonal(A, 0.0)
    E = np.where(M.book0 > 0.0, M.book0, value)
    size = np.array([e["size"] for e in net["entities"]])
    v = size / size.sum() if size.sum() > 0 else np.full(n, 1.0 / n)
    return A, E, v, names


def debtrank_all(scenario) -> dict[str, float]:
    """DebtRank of each entity failing alone on the starting network."""
    A, E, v, names = exposure_matrix(scenario)
    with np.errstate(divide="ignore", invalid="ignore"):
        W = np.where(A.T > 0.0, np.minimum(1.0, A.T / np.where(E > 0.0, E, np.nan)[None, :]), 0.0)
    W = np.nan_to_num(W, nan=1.0)  # no capital at all: any exposure distresses fully
    return {name: debtrank(W, v, [i]) for i, name in enumerate(names)}


# ------------------------------------------------------------------------------ forced defaults
def _chunk_row(M, s) -> np.ndarray:
    """What one chunk contributes: [paths, paths with 2+ defaults, total loss, defaults of
    each entity by the horizon (n), losses caused by each entity (n)]."""
    n = M.cash0.shape[0]
    return np.concatenate([[s.n_paths[0], s.cascade[2:].sum(), s.total_loss[0]],
                           s.default_at.sum(axis=1).astype(float), s.loss_sum[:n]])


def chunk_rows(M, paths: int, seed: int, chunk_size: int, threads: int) -> np.ndarray:
    """Per-chunk rows (`_chunk_row`) of one run, chunk by chunk in order ((K, 3 + 2n))."""
    sizes = chunk_layout(paths, chunk_size)
    with ThreadPoolExecutor(max_workers=threads) as pool:
        futures = [pool.submit(run_chunk, M, seed, k, size) for k, size in enumerate(sizes)]
        return np.array([_chunk_row(M, f.result()) for f in futures])


def paired(y_forced: np.ndarray, y_base: np.ndarray, n: np.ndarray) -> tuple[float, float]:
    """(difference of means, paired batch-means standard error) from per-chunk totals."""
    y = np.asarray(y_forced, float) - np.asarray(y_base, float)
    N = float(n.sum())
    K = len(n)
    d = float(y.sum() / N)
    se = math.sqrt(K / (K - 1) * float(((y - d * n) ** 2).sum())) / N if K >= 2 else float("nan")
    return d, se


def systemic_importance(scenario, *, paths: int = DEFAULT_PATHS, seed: int | None = None, date: float | None = None,
                        chunk_size: int = DEFAULT_CHUNK_SIZE, threads: int | None = None,
                        progress: Callable[[int, int, str], None] | None = None) -> dict:
    """The ranking (module docstring): a dict with "rows" (one per entity, highest
    d_other_defaults first), "entities", "date", "step", "paths", "seed", "chunk_size",
    "chunks", "base" (base PDs, P(2+), mean loss)."""
    d = scenario.data
    seed = int(d["seed"] if seed is None else seed)
    t0 = d["time"]
    start, spy = int(t0["start_year"]), int(t0["steps_per_year"])
    horizon = int(t0["horizon_years"])
    date = float(start if date is None else date)
    if not start <= date < start + horizon:
        raise ValueError(f"date {date:g} outside the horizon {start}-{start + horizon}")
    step = step_of(date, start, spy)
    threads = threads or default_threads()
    M = compile_scenario(scenario)
    names = [e["name"] for e in d["entity"]]
    n = len(names)
    if progress:
        progress(0, n + 1, "base")
    base = chunk_rows(M, paths, seed, chunk_size, threads)
    N = base[:, 0]
    base_pd = base[:, 3:3 + n].sum(axis=0) / N.sum()
    ranks = debtrank_all(scenario)
    rows = []
    for i, name in enumerate(names):
        if progress:
            progress(i + 1, n + 1, name)
        f = chunk_rows(with_forced_default(M, i, step), paths, seed, chunk_size, threads)
        dp2, se_p2 = paired(f[:, 1], base[:, 1], N)
        others = [j for j in range(n) if j != i]
        d_oth, se_oth = paired(f[:, 3 + np.array(others)].sum(axis=1), base[:, 3 + np.array(others)].sum(axis=1), N)
        dl, se_l = paired(f[:, 2], base[:, 2], N)
        dlo, se_lo = paired(f[:, 2] - f[:, 3 + n + i], base[:, 2] - base[:, 3 + n + i], N)
        d_pd = {names[j]: paired(f[:, 3 + j], base[:, 3 + j], N) for j in others}
        hit = max(d_pd, key=lambda k: d_pd[k][0]) if d_pd else ""
        if hit and d_pd[hit][0] <= 0.0:
            hit = ""  # nobody's PD rises
        rows.append({"entity": name, "base_pd": float(base_pd[i]), "d_other_defaults": d_oth,
                     "se_d_other_defaults": se_oth, "d_p2": dp2, "se_d_p2": se_p2, "d_loss": dl, "se_d_loss": se_l,
                     "d_loss_others": dlo, "se_d_loss_others": se_lo, "most_hit": hit,
                     "d_pd_most_hit": d_pd[hit][0] if hit else 0.0, "se_d_pd_most_hit": d_pd[hit][1] if hit else 0.0,
                     "d_pd": {k: {"diff": v[0], "se": v[1]} for k, v in d_pd.items()},
                     "debtrank": ranks[name]})
    rows.sort(key=lambda r: (-r["d_other_defaults"], r["entity"]))
    for k, r in enumerate(rows):
        r["rank"] = k + 1
    base_p2 = float(base[:, 1].sum() / N.sum())
    return {"scenario": scenario.name, "entities": names, "date": date, "step": step, "paths": int(N.sum()),
            "seed": seed, "chunk_size": chunk_size, "chunks": int(len(N)),
            "base": {"pd": dict(zip(names, map(float, base_pd))), "p2": base_p2,
                     "loss_mean": float(base[:, 2].sum() / N.sum())},
            "rows": rows}


# ------------------------------------------------------------------------------ output
def importance_csv(result: dict) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    for r in result["rows"]:
        w.writerow([r[c] if isinstance(r[c], str) else (r[c] if isinstance(r[c], int) else f"{r[c]:.6g}")
                    for c in CSV_COLUMNS])
    return buf.getvalue()


def write_importance(result: dict, out: str) -> list[str]:
    """Write importance.json and importance.csv into folder `out` (atomically)."""
    os.makedirs(out, exist_ok=True)
    pj, pc = os.path.join(out, IMPORTANCE_JSON), os.path.join(out, IMPORTANCE_CSV)
    atomic_write(pj, json.dumps(result, indent=1))
    atomic_write(pc, importance_csv(result))
    return [pj, pc]


def importance_text(result: dict) -> str:
    """The ranking as a plain-text table."""
    head = (f"Systemic importance: {result['scenario']}, each entity forced to default at {result['date']:g} "
            f"(step {result['step']}); {result['paths']:,} paths x {len(result['rows']) + 1} runs on common random "
            f"numbers, seed {result['seed']}, {result['chunks']} chunks (paired se)\n"
            f"base: P(2+) {100 * result['base']['p2']:.2f}%, mean loss ${result['base']['loss_mean']:.2f}B\n")
    lines = [f"{'#':>2}  {'entity':<18} {'base PD':>8}  {'+other defaults':>17}  {'dP(2+)':>15}  "
             f"{'d loss others $B':>18}  {'most hit (dPD)':<28} {'DebtRank':>8}"]
    for r in result["rows"]:
        hit = f"{r['most_hit']} {100 * r['d_pd_most_hit']:+.1f}pp" if r["most_hit"] else ""
        lines.append(f"{r['rank']:>2}  {r['entity'][:18]:<18} {100 * r['base_pd']:>7.2f}%  "
                     f"{r['d_other_defaults']:>+8.3f} ±{r['se_d_other_defaults']:.3f}  "
                     f"{100 * r['d_p2']:>+6.1f}pp ±{100 * r['se_d_p2']:.1f}  "
                     f"{r['d_loss_others']:>+8.1f} ±{r['se_d_loss_others']:.1f}  {hit[:28]:<28} {r['debtrank']:>8.3f}")
    return head + "\n".join(lines)
