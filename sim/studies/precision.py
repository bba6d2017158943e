"""Runs to a target precision and plain runs of a scenario with a chunk layout.

Runs to a target precision (`run_to_precision`, `bubblesim run --target-se`): chunks
0, 1, 2, ... are added in groups that double the run (1, 2, 4, 8, ... chunks) until every
reported default probability (each entity by each year end, and P(2+ defaults)) has a
binomial standard error <= the target, or max_paths is reached. The reduction continues
in chunk order (`simulate(..., first_chunk=k, start=stats)`), so the result is
bit-identical to a plain run with the same number of paths.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

from sim.engine.model import compile_scenario
from sim.engine.results import Results
from sim.engine.runner import DEFAULT_CHUNK_SIZE, simulate
from sim.studies.metrics import (
    SensitivityError,
)


# ---------------------------------------------------------------------------------- running
def simulate_scenario(scenario, paths: int, seed: int, *, chunk_size: int = DEFAULT_CHUNK_SIZE,
                      threads: int | None = None, progress=None, executor=None) -> tuple[Results, np.ndarray]:
    """`sim.engine.run` that also returns the per-chunk summaries (for paired errors)."""
    M = compile_scenario(scenario)
    stats, summaries, info = simulate(M, int(paths), int(seed), chunk_size=chunk_size, threads=threads,
                                      progress=progress, executor=executor)
    return Results.from_stats(scenario, M, stats, summaries, info), summaries


def max_probability_se(r: Results) -> tuple[float, str]:
    """The largest standard error among the reported default probabilities (every entity
    by every year end, and P(2+ defaults)), and where it is ("pd:ENTITY@YEAR" or "p2")."""
    best, where = float(r.p2_se), "p2"
    if r.pd_se.size:
        i, j = np.unravel_index(int(np.argmax(r.pd_se)), r.pd_se.shape)
        if r.pd_se[i, j] > best:
            best, where = float(r.pd_se[i, j]), f"pd:{r.entities[i]}@{r.years[j]}"
    return best, where


def run_to_precision(scenario, target_se: float, max_paths: int | None = None, seed: int | None = None, *,
                     chunk_size: int = DEFAULT_CHUNK_SIZE, threads: int | None = None,
                     progress: Callable[[int, int], None] | None = None, executor=None,
                     log: Callable[[str], None] | None = None) -> Results:
    """See `run_to_precision_with_chunks`; returns only the results."""
    return run_to_precision_with_chunks(scenario, target_se, max_paths, seed, chunk_size=chunk_size,
                                        threads=threads, progress=progress, executor=executor, log=log)[0]


def run_to_precision_with_chunks(scenario, target_se: float, max_paths: int | None = None,
                                 seed: int | None = None, *, chunk_size: int = DEFAULT_CHUNK_SIZE,
                                 threads: int | None = None, progress: Callable[[int, int], None] | None = None,
                                 executor=None, log: Callable[[str], None] | None = None):
    """Simulate chunks 0, 1, 2, ... (doubling the run each round) until the standard error
    of every reported default probability is <= target_se, or max_paths paths are done.

    Returns (results, per-chunk summaries). The result is bit-identical to
    `run(scenario, paths=results.paths, seed=seed, chunk_size=chunk_size)`. `results.run_info["precision"]` says what was reached:
    target_se, met (bool), max_se, max_se_at, paths, max_paths, rounds.
    max_paths defaults to the count that always suffices, 0.25 / target_se^2 (a binomial
    standard error is at most 0.5 / sqrt(n)), capped at 10,000,000.
    """
    target_se = float(target_se)
    if not target_se > 0:
        raise SensitivityError(f"target standard error must be > 0, got {target_se}")
    if max_paths is None:
        max_paths = min(10_000_000, max(1, math.ceil(0.25 / target_se ** 2)))
    max_paths = int(max_paths)
    if max_paths < 1:
        raise SensitivityError(f"max_paths must be >= 1, got {max_paths}")
    chunk_size = int(chunk_size)
    if chunk_size < 1:
        raise SensitivityError(f"chunk_size must be >= 1, got {chunk_size}")
    seed = int(scenario.data["seed"] if seed is None else seed)
    M = compile_scenario(scenario)
    stats = None
    summaries: list[np.ndarray] = []
    done_paths, done_chunks, rounds, wall, used_threads = 0, 0, 0, 0.0, None
    while True:
        want_chunks = max(1, 2 * done_chunks)  # double the run
        new_paths = min(want_chunks * chunk_size, max_paths) - done_paths
        base = done_paths

        def show(done, _total, base=base, goal=done_paths + new_paths):
            if progress:
                progress(base + done, goal)

        stats, summ, info = simulate(M, new_paths, seed, chunk_size=chunk_size, threads=threads,
                                     first_chunk=done_chunks, progress=show if progress else None,
                                     executor=executor, start=stats)
        summaries.append(summ)
        done_paths += new_paths
        done_chunks += info["chunks"]
        rounds += 1
        wall += info["wall_seconds"]
        used_threads = info["threads"]
        run_info = {"paths": done_paths, "seed": seed, "chunk_size": chunk_size, "chunks": done_chunks,
                    "first_chunk": 0, "threads": used_threads, "wall_seconds": wall}
        results = Results.from_stats(scenario, M, stats, np.concatenate(summaries), run_info)
        se, where = max_probability_se(results)
        met = se <= target_se
        if log:
            log(f"{done_paths:,} paths: max se {se:.5f} at {where} "
                f"({'<=' if met else '>'} target {target_se:g})")
        if met or done_paths >= max_paths:
            results.run_info["precision"] = {"target_se": target_se, "met": bool(met), "max_se": se,
                                             "max_se_at": where, "paths": done_paths, "max_paths": max_paths,
                                             "rounds": rounds}
            return results, np.concatenate(summaries)
