"""Measurements that need a fresh process (run by benchmarks/run_all.py; prints JSON).

    python benchmarks/_worker.py throughput --scenario base --paths N --threads T --repeat R
    python benchmarks/_worker.py startup --scenario base --paths N [--warmup]
    python benchmarks/_worker.py stats --scenario base --paths N --out FILE.npz

`--scenario` is a TOML path, a name under scenarios/, or `synthetic:N` (benchmarks/
synthetic.py). throughput: warms the JIT on a small run, then times R runs of N paths
(engine.simulate) and reports the peak resident memory (ru_maxrss) before and after the
timed runs. startup: times the import, `sim.engine.runner.warmup()` if asked, and two runs of N
paths, from the start of the process. stats: saves a run's statistics (seed 7, chunks of
4,096), to compare two versions of the kernel bit for bit. Works with any checkout of the package on
PYTHONPATH (run_all.py uses that to time an older commit).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time

T_START = time.perf_counter()
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.append(os.path.dirname(HERE))  # for tests.test_twin; after PYTHONPATH, whose sim wins


def _rss_kb() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux


def _scenario(spec: str):
    from sim import load_scenario
    from sim.scenario.loader import scenario_from_dict

    if spec == "stressed":  # the twin test's stress scenario
        from tests.test_twin import STRESSED

        return scenario_from_dict(STRESSED)
    if spec.startswith("synthetic:"):
        from synthetic import synthetic_scenario

        return scenario_from_dict(synthetic_scenario(int(spec.split(":", 1)[1])))
    if not spec.endswith(".toml"):
        spec = os.path.join(HERE, "..", "scenarios", spec + ".toml")
    return load_scenario(spec)


def throughput(args) -> dict:
    from sim.engine import simulate
    from sim.engine.model import compile_scenario

    M = compile_scenario(_scenario(args.scenario))
    if args.clearing_off:
        M = M._replace(clearing_on=False)
    simulate(M, min(args.paths, 2000), seed=1, threads=args.threads)  # JIT warm (or cache load)
    rss_before = _rss_kb()
    times = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        simulate(M, args.paths, seed=1, threads=args.threads)
        times.append(time.perf_counter() - t0)
    return {"times": times, "rss_before_kb": rss_before, "rss_peak_kb": _rss_kb(),
            "n_steps": M.n_steps, "n_entities": int(M.cash0.shape[0]), "paths": args.paths,
            "threads": args.threads}


def startup(args) -> dict:
    t_import0 = time.perf_counter()
    from sim.engine import simulate, warmup
    from sim.engine.model import compile_scenario

    t_import = time.perf_counter() - t_import0
    out = {"import_s": t_import}
    if args.warmup:
        out["warmup_s"] = warmup()
    M = compile_scenario(_scenario(args.scenario))
    for key in ("first_s", "second_s"):
        t0 = time.perf_counter()
        simulate(M, args.paths, seed=1, threads=args.threads)
        out[key] = time.perf_counter() - t0
        if key == "first_s":
            out["to_first_result_s"] = time.perf_counter() - T_START
    return out


def stats(args) -> dict:
    import numpy as np

    from sim.engine import simulate
    from sim.engine.model import compile_scenario

    M = compile_scenario(_scenario(args.scenario))
    st, summaries, _ = simulate(M, args.paths, seed=7, chunk_size=4096, threads=args.threads)
    np.savez(args.out, summaries=summaries, **{f: a for f, a in zip(st._fields, st)})
    return {"out": args.out}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["throughput", "startup", "stats"])
    ap.add_argument("--scenario", default="base")
    ap.add_argument("--paths", type=int, default=10_000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--clearing-off", action="store_true")
    ap.add_argument("--warmup", action="store_true")
    ap.add_argument("--out")
    args = ap.parse_args()
    result = {"throughput": throughput, "startup": startup, "stats": stats}[args.what](args)
    print("RESULT " + json.dumps(result))


if __name__ == "__main__":
    main()
