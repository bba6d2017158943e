"""The main job's report and cold start, before and after, measured in one run.

    python benchmarks/bench_report.py [--results DIR] [--repeat N] [--old-src DIR] [--no-cold]

1. Report of the shipped batch (6 scenarios: 42 single-run figures + the comparison),
   each timed as a fresh process (imports included), alternating so that the load of a
   shared machine hits both alike:
   - before: the old path (`build_report(..., legacy=True)`): figures drawn one after
     another, each saved as PNG at 300 dpi and SVG, then drawn a second time at 150 dpi
     for the HTML;
   - after: `bubblesim report DIR` as shipped: one process per core, each figure drawn
     once, as a PNG at the resolution the page shows it.
2. Cold numba compile (`bubblesim warmup` with an empty NUMBA_CACHE_DIR), before and after:
   before = the kernels as they were, with the jitted `simulate_chunk` wrapper around
   `derive` and `_run` (recreated here, so both compile the same kernel source); after =
   `simulate_chunk` as a plain Python call. Then the same command with the cache warm.
3. Whether `bubblesim --version`, `validate` and `report` import numba.

DIR defaults to a fresh `bubblesim batch scenarios/ --out <tmp> --no-report`. --old-src
also times the report and the cold compile of another checkout (e.g. the commit before:
`git worktree add /tmp/old <commit>`), as a third column. Prints medians, the ratios and
the load average before and after. A benchmark, not a test: nothing here fails on time.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

REPORT_BEFORE = ("import sys; from sim.report.html import build_report; "
                 "r = build_report(sys.argv[1], sys.argv[2], legacy=True); sys.exit(1 if r['errors'] else 0)")
REPORT_AFTER = "import sys; from sim.cli.main import main; sys.exit(main(['report', sys.argv[1], '--out', sys.argv[2], '--quiet']))"
REPORT_OLD = ("import sys; from sim.report.html import build_report; "
              "r = build_report(sys.argv[1], sys.argv[2]); sys.exit(1 if r['errors'] else 0)")

WARMUP_AFTER = "from sim.engine.runner import warmup; warmup()"
# the kernels as they were before: a jitted wrapper calls derive and _run (numba links _run into
# the wrapper's module and LLVM optimises all of it again)
WARMUP_BEFORE = """
from numba import njit
from sim.engine import kernel as K
from sim.engine import runner

_run, derive = K._run, K.derive

@njit(nogil=True)  # (cache=True cannot cache code given with -c; writing the cache entry is cheap)
def simulate_chunk(M, rng, n_paths, shocks, tranche_u, st, ws, rec, out):
    _run(M, derive(M), rng, n_paths, 0, M.n_steps, shocks, tranche_u, st, ws, rec, out)

K.simulate_chunk = simulate_chunk
runner.warmup()
"""

IMPORTS = r"""
import contextlib, io, json, sys
from sim.cli.main import main
def quiet(argv):
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        try:
            main(argv)
        except SystemExit:
            pass
quiet(["--version"]); v = "numba" in sys.modules
quiet(["validate", "scenarios/base.toml"]); va = "numba" in sys.modules
quiet(["report", sys.argv[1], "--out", sys.argv[2], "--quiet"]); r = "numba" in sys.modules
print(json.dumps({"--version": v, "validate": va, "report": r}))
"""


CPU: dict = {}  # the last timed command's CPU seconds (user + sys, itself and its worker processes)


def timed(code: str, args: list[str], src: str = ROOT, env: dict | None = None) -> float:
    """Wall seconds of a fresh Python process running `code` (its CPU seconds go to CPU["last"])."""
    import resource

    e = dict(os.environ, PYTHONPATH=src, **(env or {}))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code, *args], cwd=src, env=e, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    CPU["last"] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode != 0:
        raise SystemExit(f"benchmark step failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return wall


def load() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", help="results of `bubblesim batch scenarios/` (default: run one, no report)")
    ap.add_argument("--repeat", type=int, default=1, help="timed runs of each report variant (median)")
    ap.add_argument("--old-src", help="another checkout to time as well (its report and cold compile)")
    ap.add_argument("--no-cold", action="store_true", help="skip the cold-compile measurement")
    ap.add_argument("--json", help="also write the numbers to this file")
    args = ap.parse_args()
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    work = tempfile.mkdtemp(prefix="bench_report-")
    out: dict = {"cpus": cpus, "load_before": load(), "python": sys.version.split()[0]}
    print(f"{cpus} cores available; load average (1/5/15 min) before: {out['load_before']}")
    try:
        results = args.results
        if not results:
            results = os.path.join(work, "results")
            t = timed("import sys; from sim.cli.main import main; sys.exit(main(sys.argv[1:]))",
                      ["batch", "scenarios/", "--out", results, "--no-report", "--quiet"])
            print(f"shipped batch simulated in {t:.1f} s (kernels from the cache if warm)")

        # 1. the report
        cols = {"before": (REPORT_BEFORE, ROOT), "after": (REPORT_AFTER, ROOT)}
        if args.old_src:
            cols["old checkout"] = (REPORT_OLD, os.path.abspath(args.old_src))
        times: dict = {k: [] for k in cols}
        cpu: dict = {k: [] for k in cols}
        for r in range(args.repeat):
            for name, (code, src) in cols.items():
                dest = os.path.join(work, f"report-{name.replace(' ', '_')}-{r}")
                times[name].append(timed(code, [results, dest], src=src))
                cpu[name].append(CPU["last"])
                print(f"  report {name:12s} run {r + 1}: {times[name][-1]:6.1f} s wall, {cpu[name][-1]:6.1f} s CPU",
                      flush=True)
        med = {k: statistics.median(v) for k, v in times.items()}
        med_cpu = {k: statistics.median(v) for k, v in cpu.items()}
        out["report_seconds"] = med
        out["report_cpu_seconds"] = med_cpu
        files = {}
        for name in cols:
            d = os.path.join(work, f"report-{name.replace(' ', '_')}-0", "figures")
            files[name] = sum(len(f) for _, _, f in os.walk(d))
        out["report_figure_files"] = files

        # 2. cold compile
        if not args.no_cold:
            cold: dict = {}
            cold_cpu: dict = {}
            variants = {"before": (WARMUP_BEFORE, ROOT), "after": (WARMUP_AFTER, ROOT)}
            if args.old_src:
                variants["old checkout"] = (WARMUP_AFTER, os.path.abspath(args.old_src))
            for name, (code, src) in variants.items():
                cache = os.path.join(work, f"numba-cache-{name.replace(' ', '_')}")
                cold[name] = timed(code, [], src=src, env={"NUMBA_CACHE_DIR": cache})
                cold_cpu[name] = CPU["last"]
                print(f"  cold compile {name:12s}: {cold[name]:6.1f} s wall, {cold_cpu[name]:6.1f} s CPU", flush=True)
            warm = timed(WARMUP_AFTER, [], env={"NUMBA_CACHE_DIR": os.path.join(work, "numba-cache-after")})
            out["cold_compile_seconds"] = cold
            out["cold_compile_cpu_seconds"] = cold_cpu
            out["warm_start_seconds"] = warm

        # 3. who imports numba
        imports = subprocess.run([sys.executable, "-c", IMPORTS, results, os.path.join(work, "report-imports")],
                                 cwd=ROOT, env=dict(os.environ, PYTHONPATH=ROOT), capture_output=True, text=True)
        out["imports_numba"] = json.loads(imports.stdout.strip().splitlines()[-1]) if imports.returncode == 0 else None
        out["load_after"] = load()

        print()
        print("| measure | " + " | ".join(cols) + " | before / after |")
        print("|---|" + "---:|" * (len(cols) + 1))
        print("| report of the shipped batch, s | " + " | ".join(f"{med[k]:.1f}" for k in cols)
              + f" | **{med['before'] / med['after']:.1f}x** |")
        print("| its CPU time (all processes), s | " + " | ".join(f"{med_cpu[k]:.1f}" for k in cols)
              + f" | {med_cpu['before'] / med_cpu['after']:.1f}x |")
        print("| figure files written | " + " | ".join(str(files[k]) for k in cols) + " | |")
        if not args.no_cold:
            c = out["cold_compile_seconds"]
            print("| cold numba compile (`warmup`, empty cache), s | " + " | ".join(f"{c.get(k, float('nan')):.1f}"
                                                                                  for k in cols)
                  + f" | **{c['before'] / c['after']:.2f}x** |")
            cc = out["cold_compile_cpu_seconds"]
            print("| its CPU time, s | " + " | ".join(f"{cc.get(k, float('nan')):.1f}" for k in cols)
                  + f" | {cc['before'] / cc['after']:.2f}x |")
            print(f"| warm start (`warmup`, cache filled), s | | {out['warm_start_seconds']:.1f} | |")
        print(f"\nnumba imported by: {out['imports_numba']}")
        print(f"load average before: {out['load_before']}, after: {out['load_after']} ({cpus} cores)")
        if args.json:
            with open(args.json, "w", encoding="utf-8") as fh:
                json.dump(out, fh, indent=1)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
