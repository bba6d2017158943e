"""Batch wall time locally vs a Dask LocalCluster, and the overhead per chunk task.

    python benchmarks/bench_batch_dask.py [--workers 2] [--paths N] [--repeat 2] [inputs ...]

1. The batch (default: scenarios/ at each scenario's own path count) run in-process on
   `--workers` threads and on a LocalCluster of `--workers` single-threaded worker
   processes, alternating `--repeat` times in one run (so load from other processes hits
   both alike); the outputs are checked to be bit-identical.
2. Overhead per chunk task: the base scenario in chunks of one path (near-empty tasks),
   wall time per task in-process vs through Dask.
Needs the `distributed` extra.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from sim.engine import simulate, warmup  # noqa: E402
from sim.engine.model import compile_scenario  # noqa: E402
from sim.scenario import load_scenario  # noqa: E402
from sim.studies.batch import run_batch  # noqa: E402
from sim.studies.cluster import dask_executor  # noqa: E402
from sim.studies.variants import collect_variants  # noqa: E402


def _same(a: str, b: str, plan) -> bool:
    for v in plan.variants:
        ra = json.load(open(os.path.join(a, v.folder, "results.json")))
        rb = json.load(open(os.path.join(b, v.folder, "results.json")))
        ra.pop("run_info"), rb.pop("run_info")
        if ra != rb:
            return False
    return open(os.path.join(a, "summary.csv")).read() == open(os.path.join(b, "summary.csv")).read()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("inputs", nargs="*", default=[os.path.join(ROOT, "scenarios")])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--paths", type=int, default=None)
    ap.add_argument("--tiny-tasks", type=int, default=400)
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    warmup()
    plan = collect_variants(args.inputs, paths=args.paths)
    total = sum(v.paths for v in plan.variants)
    print(f"batch: {len(plan.variants)} variants, {total:,} paths, chunk size {plan.chunk_size}")
    base = os.path.join(ROOT, "scenarios", "base.toml")
    M = compile_scenario(load_scenario(base))
    n = args.tiny_tasks
    local_t, dask_t = [], []
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        with dask_executor(workers=args.workers) as (ex, info):
            t_start = time.perf_counter() - t0
            for r in range(args.repeat):  # alternate, so load from other processes hits both alike
                t1 = time.perf_counter()
                run_batch(plan, os.path.join(tmp, "local"), threads=args.workers, force=True)
                local_t.append(time.perf_counter() - t1)
                t1 = time.perf_counter()
                run_batch(plan, os.path.join(tmp, "dask"), threads=ex.nthreads, executor=ex, engine=info, force=True)
                dask_t.append(time.perf_counter() - t1)
                print(f"round {r + 1}: local ({args.workers} threads) {local_t[-1]:7.2f}s   "
                      f"dask ({args.workers} workers) {dask_t[-1]:7.2f}s   ratio {dask_t[-1] / local_t[-1]:.3f}")
            t1 = time.perf_counter()
            simulate(M, n, 1, chunk_size=1, threads=ex.nthreads, executor=ex)
            per_dask = (time.perf_counter() - t1) / n
        t1 = time.perf_counter()
        simulate(M, n, 1, chunk_size=1, threads=args.workers)
        per_local = (time.perf_counter() - t1) / n
        same = _same(os.path.join(tmp, "local"), os.path.join(tmp, "dask"), plan)
    print(f"best: local {min(local_t):.2f}s, dask {min(dask_t):.2f}s, ratio {min(dask_t) / min(local_t):.3f}; "
          f"cluster start + worker warm-up {t_start:.1f}s")
    print(f"bit-identical outputs: {same}")
    print(f"tiny tasks (1 path, {n} chunks): local {1e3 * per_local:.2f} ms/chunk, dask {1e3 * per_dask:.2f} ms/chunk "
          f"-> overhead {1e3 * (per_dask - per_local):.2f} ms per chunk task ({2 * args.workers} in flight)")

if __name__ == "__main__":
    main()
