"""Where the kernel's time goes: a sampling profile of the hot loop with Linux `perf`.

    python benchmarks/profile_kernel.py [--scenario base] [--paths 200000] [--json]

Compiles a copy of `sim.engine.kernel._run` with debug line tables (same optimisation; numba's
cache is pointed at a throw-away folder so that every kernel is compiled in this process
and its object code can be read), runs the scenario on one thread while `perf record`
samples this process, and attributes each sample: to a source line of `_run`, to the
random-number code (numba's samplers in `draw_path_shocks`, numpy's Philox), to libm
(exp, pow, log), to the clearing, or elsewhere. Needs `perf` (kernel.perf_event_paranoid
<= 2 lets a user profile their own processes); prints a table, or JSON with --json.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def _object_ranges(dispatcher, objdir):
    """{symbol: (runtime start, size)} for every function in a dispatcher's compiled library,
    and the path of its object file."""
    sig = dispatcher.signatures[0]
    lib = dispatcher.overloads[sig].library
    path = os.path.join(objdir, f"{dispatcher.__name__}.o")
    with open(path, "wb") as f:
        f.write(lib._get_compiled_object())
    table = subprocess.run(["objdump", "-t", path], capture_output=True, text=True).stdout
    out = {}
    for line in table.splitlines():
        parts = line.split()
        if " F " in line and len(parts) >= 6:
            name, size = parts[-1], int(parts[-2], 16)
            try:
                out[name] = (lib.get_pointer_to_function(name), size, int(parts[0], 16))
            except Exception:  # noqa: BLE001 - symbols not exported by the library
                pass
    return out, path


def profile(scenario: str, paths: int) -> dict:
    sys.path.insert(0, HERE)
    from _worker import _scenario
    from numba import njit

    from sim.engine import chunk_generator, new_path_buffers, new_stats
    from sim.engine import kernel as K
    from sim.engine.model import compile_scenario

    M = compile_scenario(_scenario(scenario))
    st, ws, rec, shocks, tranche_u = new_path_buffers(M)
    out = new_stats(M)
    run_dbg = njit(nogil=True, debug=True, boundscheck=False)(K._run.py_func)
    D = K.derive(M)
    rng = chunk_generator(1, 0)
    run_dbg(M, D, rng, 20, 0, M.n_steps, shocks, tranche_u, st, ws, rec, out)
    # make the clearing compile in this process too (it is called from inside _run)
    K.clearing_vector(ws.L, ws.e, ws.el, M.alpha, M.beta, ws.p, ws.dflt, ws.work)

    objdir = tempfile.mkdtemp(prefix="bubblesim-prof-")
    ranges = {}
    run_syms, run_obj = _object_ranges(run_dbg, objdir)
    run_name = run_dbg.overloads[run_dbg.signatures[0]].fndesc.llvm_func_name
    run_start, run_size, run_off = run_syms[run_name]
    for disp, label in ((K.draw_path_shocks, "random numbers: numba's samplers (draw_path_shocks)"),
                        (K.clearing_vector, "clearing (sim.engine.clearing)")):
        syms, _ = _object_ranges(disp, objdir)
        for name, (start, size, _) in syms.items():
            if not name.startswith(("_ZN7cpython", "cfunc.")):
                ranges[(start, size)] = label

    data = os.path.join(objdir, "perf.data")
    perf = subprocess.Popen(["perf", "record", "-q", "-o", data, "-p", str(os.getpid())],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)
    t0 = time.perf_counter()
    run_dbg(M, D, rng, paths, 0, M.n_steps, shocks, tranche_u, st, ws, rec, out)
    wall = time.perf_counter() - t0
    perf.send_signal(2)
    perf.wait()
    ns = wall / paths / M.n_steps * 1e9

    samples = subprocess.run(["perf", "script", "-i", data, "-F", "ip,sym,dso"],
                             capture_output=True, text=True).stdout.splitlines()
    dis = subprocess.run(["objdump", "-dl", "--no-show-raw-insn", run_obj], capture_output=True, text=True).stdout
    addr_line, cur = {}, None
    for line in dis.splitlines():
        m = re.match(r"^(/\S+\.py):(\d+)", line)
        if m:
            cur = (os.path.basename(m.group(1)), int(m.group(2)))
            continue
        m = re.match(r"^\s+([0-9a-f]+):", line)
        if m and cur:
            addr_line[int(m.group(1), 16)] = cur
    cats, lines = collections.Counter(), collections.Counter()
    for s in samples:
        parts = s.split(None, 1)
        if not parts:
            continue
        ip, rest = int(parts[0], 16), (parts[1] if len(parts) > 1 else "")
        if run_start <= ip < run_start + run_size:
            cats["kernel: the step itself (_run)"] += 1
            lines[addr_line.get(ip - run_start + run_off, ("?", 0))] += 1
            continue
        label = next((lab for (a, z), lab in ranges.items() if a <= ip < a + z), None)
        if label is None:
            if "philox" in rest:
                label = "random numbers: numpy's Philox bit generator"
            elif re.search(r"\b(__ieee754_|__)?(exp|pow|log)\w*", rest) and "libm" in rest:
                label = "libm: " + re.search(r"(exp|pow|log)", rest).group(1)
            elif "NRT_" in rest:
                label = "reference counting (NRT)"
            else:
                label = "other"
        cats[label] += 1
    total = max(sum(cats.values()), 1)
    src = open(os.path.join(ROOT, "sim", "engine", "kernel.py")).read().splitlines()
    top = [{"line": ln, "share": n / total, "code": src[ln - 1].strip() if f == "kernel.py" and ln else "?"}
           for (f, ln), n in lines.most_common(15)]
    shutil.rmtree(objdir, ignore_errors=True)
    return {"ns_per_path_step_1_thread_under_perf": ns, "samples": total,
            "categories": {k: v / total for k, v in cats.most_common()}, "top_lines": top}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenario", default="base")
    ap.add_argument("--paths", type=int, default=200_000)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if shutil.which("perf") is None:
        sys.exit("perf not found")
    if "NUMBA_CACHE_DIR" not in os.environ:  # compile everything here (object code readable)
        env = dict(os.environ, NUMBA_CACHE_DIR=tempfile.mkdtemp(prefix="bubblesim-nc-"))
        sys.exit(subprocess.call([sys.executable] + sys.argv, env=env))
    r = profile(args.scenario, args.paths)
    if args.json:
        print("RESULT " + json.dumps(r))
        return
    print(f"{r['ns_per_path_step_1_thread_under_perf']:.0f} ns per path-step (1 thread, under perf), "
          f"{r['samples']} samples")
    for k, v in r["categories"].items():
        print(f"  {100 * v:5.1f}%  {k}")
    print("hottest lines of _run:")
    for t in r["top_lines"]:
        print(f"  {100 * t['share']:5.1f}%  kernel.py:{t['line']:<5} {t['code'][:80]}")


if __name__ == "__main__":
    main()
