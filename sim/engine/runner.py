"""Run a scenario: split paths into chunks, give each chunk its own random stream, run the
chunks on worker threads, and reduce their statistics in chunk order.

Reproducibility contract: chunk k of a run with root seed s always simulates the same
paths, from `Generator(Philox(SeedSequence(s, spawn_key=(k,))))`, and statistics are
added up in chunk order. So results are bit-identical for any number of threads, and the
first K chunks of a longer run are exactly a K-chunk run. The chunk size is part of the
layout (changing it changes which paths are drawn, not their distribution).
"""

from __future__ import annotations

import os
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

import numpy as np

from sim.engine.lazy import kernel as K
from sim.engine.model import ModelArrays, compile_scenario, n_shocks

DEFAULT_CHUNK_SIZE = 8192


def chunk_generator(seed: int, chunk: int) -> np.random.Generator:
    """The random stream of chunk `chunk` of a run with root seed `seed`."""
    return np.random.Generator(np.random.Philox(np.random.SeedSequence(seed, spawn_key=(chunk,))))


def chunk_layout(paths: int, chunk_size: int) -> list[int]:
    """Number of paths in each chunk: full chunks, then the remainder."""
    if paths < 1:
        raise ValueError(f"paths must be >= 1, got {paths}")
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    full, rest = divmod(paths, chunk_size)
    return [chunk_size] * full + ([rest] if rest else [])


def new_stats(M: ModelArrays) -> K.Stats:
    n, steps = M.cash0.shape[0], M.n_steps
    years = steps // M.steps_per_year
    i64 = np.int64
    return K.Stats(
        n_paths=np.zeros(1, i64), default_at=np.zeros((n, steps), i64), kind_count=np.zeros((n, 3), i64),
        contagious=np.zeros(n, i64), cascade=np.zeros(n + 1, i64), loss_sum=np.zeros(n),
        exposure_sum=np.zeros(n), backlog_sum=np.zeros(n), total_loss=np.zeros(2),
        loss_hist=np.zeros(K.LOSS_BINS + 1, i64), loss_hist_sum=np.zeros(K.LOSS_BINS + 1),
        need_year=np.zeros(years, i64), gap_year=np.zeros(years, i64), need_sum_year=np.zeros(years),
        rev_hist=np.zeros((steps, K.REV_BINS + 1), i64), need_hist=np.zeros((steps, K.NEED_BINS + 1), i64),
        winter=np.zeros(steps, i64), diag=np.zeros(3),
        flow_sum=np.zeros((K.N_FLOW_ROWS, years)),
        flow_hist=np.zeros((K.N_FLOW_ROWS, years, 2 * K.FLOW_BINS + 1), i64),
        cum_need_hist=np.zeros((years, K.NEED_BINS + 1), i64),
        cum_burn_hist=np.zeros((years, 2 * K.FLOW_BINS + 1), i64),
        w_sum=np.zeros(2), w_default_at=np.zeros((n, steps)), w2_default_at=np.zeros((n, steps)),
        w_cascade=np.zeros(n + 1), w2_cascade=np.zeros(n + 1), w_loss=np.zeros(3),
        w_loss_hist=np.zeros(K.LOSS_BINS + 1), w_loss_hist_sum=np.zeros(K.LOSS_BINS + 1),
        w_contagious=np.zeros(n), w_loss_sum=np.zeros(n),
        runway_hist=np.zeros((years, K.RUNWAY_BINS + 1), i64),
        credit_event=np.zeros(n, i64), restructured=np.zeros(n, i64), rs_loss_sum=np.zeros(n),
        loss_class=np.zeros((K.N_LOSS_CLASSES, 2)),
        breached=np.zeros(n, i64), covenant_default=np.zeros(n, i64), new_debt_sum=np.zeros(n), sold_sum=np.zeros(n),
    )


def new_path_buffers(M: ModelArrays):
    """State, scratch and record arrays for one path (reused for every path of a chunk)."""
    n, m, q, steps = M.cash0.shape[0], M.c_payer.shape[0], M.t_amount.shape[0], M.n_steps
    st = K.State(
        sc=np.zeros(5), cash=np.zeros(n), debt=np.zeros(n), amortising=np.zeros(n),
        loan_out=np.zeros(M.l_amount.shape[0]), log_ocf=np.zeros(n), alive=np.ones(n, bool),
        share=np.zeros((n, n)), stake0=np.zeros(n), impairment=np.zeros(n), net_shortfall=np.zeros(n),
        stake_lost=np.zeros(n), c_active=np.ones(m, bool), c_paid=np.zeros(m),
        c_relet=np.full(m, -1, np.int64), t_ok=np.zeros(q, bool), t_done=np.zeros(q, bool),
        c_cut=np.full(m, -1, np.int64), c_scale=np.ones(m), rsh_paid=np.zeros(1),
        c_lost=np.full(m, -1, np.int64),
        coupon=M.rate.astype(float).copy(), amort_new=np.zeros(n), new_out=np.zeros(n), k_hist=np.zeros((n, steps)),
        ripe=np.zeros(n), capex_book=np.zeros(n), c_built=np.zeros(m), h_frac=np.ones(n), h_sold=np.zeros(n),
        cov_cf=np.zeros(n), cov_int=np.zeros(n), cov_short=np.zeros(n), cov_low=np.zeros(n, np.int64),
    )
    ws = K.new_scratch(n, q, m)
    rec = K.Record(
        default_step=np.full(n, -1, np.int64), default_kind=np.zeros(n, np.int64),
        contagious=np.zeros(n, bool), loss=np.zeros(n), exposure=np.zeros(n), lost_backlog=np.zeros(n),
        revenue=np.zeros(steps), need=np.zeros(steps), gap=np.zeros(steps), winter=np.zeros(steps),
        diag=np.zeros(3), flows=np.zeros((K.N_FLOWS, steps)), runway=np.zeros(steps // M.steps_per_year),
        credit_step=np.full(n, -1, np.int64), rs_loss=np.zeros(n),
        breach_step=np.full(n, -1, np.int64), sold=np.zeros(n), new_debt=np.zeros(n),
        covenant_default=np.zeros(n, bool),
    )
    shocks = np.zeros((steps, n_shocks(n, M.n_extra_shocks)))
    tranche_u = np.zeros(q)
    return st, ws, rec, shocks, tranche_u


def run_chunk(M: ModelArrays, seed: int, chunk: int, n_paths: int) -> K.Stats:
    """Simulate chunk `chunk` (its own stream) and return its statistics."""
    out = new_stats(M)
    st, ws, rec, shocks, tranche_u = new_path_buffers(M)
    K.simulate_chunk(M, chunk_generator(seed, chunk), n_paths, shocks, tranche_u, st, ws, rec, out)
    return out


def add_stats(total: K.Stats | None, part: K.Stats) -> K.Stats:
    """total + part, field by field (max for the conservation diagnostic)."""
    if total is None:
        return K.Stats(*[a.copy() for a in part])
    for name, a, b in zip(K.Stats._fields, total, part):
        if name == "diag":
            a[0] = max(a[0], b[0])
            a[1:] += b[1:]
        else:
            a += b
    return total


SUMMARY_FIXED = 5  # chunk_summary columns before the per-entity default counts


def chunk_summary(M: ModelArrays, s: K.Stats) -> np.ndarray:
    """Per-chunk estimates kept for batch-means standard errors:
    [mean loss, VaR99, ES99, paths, paths with 2+ defaults, then the cumulative default
    count by each year end of entity 0 (years...), entity 1, ...] (counts as floats).
    Columns 0-2 are the original ones; the counts give paired (common random numbers)
    standard errors of differences between variants (sim.studies.summary)."""
    from sim.engine.stats import loss_var_es

    n = s.n_paths[0]
    var, es = loss_var_es(s.loss_hist, s.loss_hist_sum, 0.99)
    spy = M.steps_per_year
    cum_year = np.cumsum(s.default_at, axis=1)[:, spy - 1::spy]
    return np.concatenate([[s.total_loss[0] / n, var, es, n, s.cascade[2:].sum()],
                           cum_year.ravel().astype(float)])


class _borrowed:
    """Context manager around an executor the caller owns (not shut down on exit)."""

    def __init__(self, executor):
        self.executor = executor

    def __enter__(self):
        return self.executor

    def __exit__(self, *exc):
        return False


def default_threads() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))


def simulate(M: ModelArrays, paths: int, seed: int, *, chunk_size: int = DEFAULT_CHUNK_SIZE,
             threads: int | None = None, first_chunk: int = 0,
             progress: Callable[[int, int], None] | None = None,
             executor=None, start: K.Stats | None = None) -> tuple[K.Stats, np.ndarray, dict]:
    """Run `paths` paths and return (reduced stats, per-chunk summaries, run info).

    Memory is bounded by a window of 2 x threads chunks in flight, whatever `paths` is.
    `first_chunk` offsets the chunk indices (used to extend a run with new chunks).
    `executor`: anything with `submit(fn, *args)` returning a future with `.result()`
    (a concurrent.futures executor, sim.studies.cluster.DaskExecutor); chunk tasks go there
    instead of a private thread pool, `threads` then sizes the window only. The reduction
    stays in chunk order, so results are bit-identical whatever runs the chunks.
    `start`: the reduced statistics of chunks 0..first_chunk-1 (not modified); the returned
    statistics continue that reduction, so a run extended chunk group by chunk group is
    bit-identical to one run of all its chunks (sim.studies.precision.run_to_precision).
    """
    sizes = chunk_layout(paths, chunk_size)
    threads = threads or default_threads()
    total: K.Stats | None = None if start is None else add_stats(None, start)
    summaries = []
    done = 0
    t0 = time.perf_counter()
    with (ThreadPoolExecutor(max_workers=threads) if executor is None else _borrowed(executor)) as pool:
        window: deque = deque()

        def reduce_oldest():
            nonlocal total, done
            part = window.popleft().result()
            total = add_stats(total, part)
            summaries.append(chunk_summary(M, part))
            done += int(part.n_paths[0])
            if progress:
                progress(done, paths)

        for k, size in enumerate(sizes):
            window.append(pool.submit(run_chunk, M, seed, first_chunk + k, size))
            if len(window) >= 2 * threads:
                reduce_oldest()
        while window:
            reduce_oldest()
    info = {"paths": paths, "seed": seed, "chunk_size": chunk_size, "chunks": len(sizes),
            "first_chunk": first_chunk, "threads": threads, "wall_seconds": time.perf_counter() - t0}
    return total, np.array(summaries), info


def warmup() -> float:
    """Compile (or load from cache) every kernel by running a tiny two-entity model."""
    from sim.scenario import scenario_from_dict

    t0 = time.perf_counter()
    d = {
        "name": "warmup",
        "revenue": {"initial": 1.0, "growth0": 0.1, "growth_inf": 0.1, "volatility": 0.2},
        "time": {"horizon_years": 1},
        "regime": {"enter_prob": 0.5},
        "lab": {"entity": "L"},
        "entity": [{"name": "L", "cash": 0.1}, {"name": "P", "cash": 1.0, "debt": 1.0, "book_equity": 0.5,
                                                 "market_equity": 1.0}],
        "contract": [{"name": "c", "payer": "L", "payee": "P", "schedule": {"2026": 1.0}}],
        "investment": [{"name": "i", "investor": "P", "investee": "L",
                        "tranche": [{"date": 2026.5, "amount": 0.1, "milestone_contract": "c",
                                     "milestone_amount": 0.1}]}],
        "stake": [{"holder": "P", "issuer": "L", "share": 0.1}],
        "loan": [{"name": "l", "lender": "P", "borrower": "L", "amount": 0.1, "maturity": 2026.75}],
    }
    simulate(compile_scenario(scenario_from_dict(d)), paths=64, seed=0, chunk_size=64, threads=1)
    return time.perf_counter() - t0
