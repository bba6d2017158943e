"""Cost of the issue-12 economics: ns per path-step on base.toml with the new mechanisms on
(as shipped) against the same kernel with them off, in one process, one run.

    .venv/bin/python benchmarks/bench_economics.py [--paths 40000] [--repeat 7]

Variants (all compiled once, the same jitted code; timings interleaved round by round so
machine load hits them alike; each figure is the median over rounds, single thread):
  off-old-stream  every new mechanism off, their shocks not drawn (the model before issue 12)
  off             every new mechanism off, their shocks drawn (what the waterfall pairs with)
  on              base.toml as shipped
Prints a markdown table and the ratio on / off-old-stream (aim: within 1.5x).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

from sim.engine import simulate  # noqa: E402
from sim.engine.model import compile_scenario  # noqa: E402
from sim.scenario import load_scenario  # noqa: E402

OFF = {"treasury.enabled": False, "restructuring.enabled": False, "revenue_share.enabled": False,
       "capacity.enabled": False, "build.enabled": False, "downturn_recovery.enabled": False}
OFF_DRAWN = {**OFF, "treasury.draw_shocks": True}


def measure(paths: int, repeat: int, threads: int = 1) -> dict:
    """ns per path-step of each variant (median of `repeat` interleaved rounds) and the
    ratio of each to off-old-stream; the same jitted code, the same threads and paths."""
    base = load_scenario(os.path.join(ROOT, "scenarios", "base.toml"))
    variants = {"off-old-stream": compile_scenario(base.with_overrides(OFF)),
                "off": compile_scenario(base.with_overrides(OFF_DRAWN)),
                "on": compile_scenario(base)}
    times = {k: [] for k in variants}
    for M in variants.values():
        simulate(M, 2000, seed=1, threads=threads)  # compile / warm
    for _ in range(repeat):
        for k, M in variants.items():
            t0 = time.perf_counter()
            simulate(M, paths, seed=1, threads=threads)
            times[k].append(time.perf_counter() - t0)
    steps = variants["on"].n_steps
    ns = {k: statistics.median(v) / (paths * steps) * 1e9 for k, v in times.items()}
    return {"paths": paths, "steps": steps, "threads": threads, "repeat": repeat, "ns": ns,
            "ratio": {k: v / ns["off-old-stream"] for k, v in ns.items()}, "runs": times}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--paths", type=int, default=40000)
    ap.add_argument("--repeat", type=int, default=7)
    a = ap.parse_args(argv)
    r = measure(a.paths, a.repeat)
    print(f"base.toml, {a.paths} paths x {r['steps']} steps, 1 thread, median of {a.repeat} interleaved rounds")
    print("| variant | ns per path-step | ratio to off-old-stream |")
    print("|---|---|---|")
    for k, v in r["ns"].items():
        print(f"| {k} | {v:.0f} | {r['ratio'][k]:.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
