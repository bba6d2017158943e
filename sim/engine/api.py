"""The Python entry point: run a scenario and get a `Results` object."""

from __future__ import annotations

from typing import Callable

from sim.engine.model import compile_scenario
from sim.engine.results import Results
from sim.engine.runner import DEFAULT_CHUNK_SIZE, simulate


def run(scenario, paths: int | None = None, seed: int | None = None, *, chunk_size: int = DEFAULT_CHUNK_SIZE,
        threads: int | None = None, progress: Callable[[int, int], None] | None = None) -> Results:
    """Simulate `scenario` (from `load_scenario`) and return its results.

    paths and seed default to the scenario's own; the same scenario, seed and chunk size
    give bit-identical results for any number of threads.
    """
    paths = int(scenario.data["paths"] if paths is None else paths)
    seed = int(scenario.data["seed"] if seed is None else seed)
    if paths < 1:
        raise ValueError(f"paths must be >= 1, got {paths}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    M = compile_scenario(scenario)
    stats, summaries, info = simulate(M, paths, seed, chunk_size=chunk_size, threads=threads, progress=progress)
    return Results.from_stats(scenario, M, stats, summaries, info)
