"""Baseline throughput of the base scenario: path-steps per second, JIT warm.

    python benchmarks/bench_base.py [--paths N] [--threads T] [--repeat R]

Prints the median of R timed runs (after one warm-up run that compiles or loads the
numba cache). A benchmark, not a test: nothing here fails on time.
"""

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from sim import load_scenario, run  # noqa: E402
from sim.engine.model import compile_scenario  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenario", default=os.path.join(os.path.dirname(__file__), "..", "scenarios", "base.toml"))
    ap.add_argument("--paths", type=int, default=200_000)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    sc = load_scenario(args.scenario)
    M = compile_scenario(sc)
    run(sc, paths=2000, seed=1, threads=args.threads)  # warm the JIT
    times = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        r = run(sc, paths=args.paths, seed=1, threads=args.threads)
        times.append(time.perf_counter() - t0)
    wall = statistics.median(times)
    steps = args.paths * M.n_steps
    print(f"scenario {sc.name}: {len(M.cash0)} entities, {M.n_steps} steps, {args.paths:,} paths, "
          f"{r.run_info['threads']} threads")
    print(f"median wall {wall:.3f} s over {args.repeat} runs; "
          f"{steps / wall:,.0f} path-steps/s; {wall / steps * 1e9:.0f} ns per path-step; "
          f"{args.paths / wall:,.0f} paths/s")


if __name__ == "__main__":
    main()
