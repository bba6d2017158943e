"""Fuzz the scenario reader and the command line with mutants of the shipped scenarios.

    .venv/bin/python -m tests.fuzz.run --mutants 10000 --run-sample 200 --paths 256

Every mutant goes through `bubblesim validate` (in this process, through sim.cli.main.main with
stderr captured and a 30 s alarm; mutants whose `extends` names a special file -- a FIFO,
/dev/zero, /dev/stdin -- run in their own process with a 30 s timeout instead, stdin held open).
A sample of the accepted ones then goes through `bubblesim run --paths N` in its own process.

What must hold (the figures printed at the end count each):
* validate and run exit 0 or 2, never anything else, never a traceback, never a hang (> 30 s);
* exit 2 comes with one clean first line (warnings aside) that starts with the file's path
  and names a key or a line; no control character reaches the terminal;
* a run that exits 0 wrote results.json with a number (not null) in every field that must have
  one and every probability in [0, 1] (checked here, independently of sim.engine.results).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter

from tests.fuzz.mutate import Workspace

TIMEOUT = 30
# results.json fields that must be numbers (null would be NaN/inf) and those that are probabilities
MUST_BE_NUMBERS = ["pd", "pd_se", "pd_lo", "pd_hi", "default_time", "p_fundamental", "p_contagious",
                   "expected_loss", "lost_backlog", "p_need", "p_gap", "p_gap_lo", "p_gap_hi", "mean_need",
                   "need_pct", "revenue_pct", "committed_spend", "p_winter", "cascade", "p_at_least", "p2", "p2_se",
                   "p2_lo", "p2_hi", "loss_mean", "loss_mean_se", "loss_var99", "loss_es99"]
PROBABILITIES = ["pd", "pd_lo", "pd_hi", "default_time", "p_fundamental", "p_contagious", "p_need", "p_gap",
                 "p_gap_lo", "p_gap_hi", "p_winter", "cascade", "p_at_least", "p2", "p2_lo", "p2_hi",
                 "contagious_share", "liquidity_share"]
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e]")


class _Hang(Exception):
    pass


def _alarm(signum, frame):
    raise _Hang()


def validate_in_process(path: str, timeout: int = TIMEOUT) -> dict:
    """`bubblesim validate PATH` through sim.cli.main.main: exit code, captured output, crash, hang."""
    from sim.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(timeout)
    t0 = time.perf_counter()
    rc, crash, hang = None, None, False
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            rc = main(["validate", path])
    except SystemExit as e:
        rc = e.code if isinstance(e.code, int) else 1
    except _Hang:
        hang = True
    except BaseException as e:  # noqa: BLE001 -- a crash is what we count
        import traceback

        crash = "".join(traceback.format_exception(e))[-2000:]
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    return {"rc": rc, "stdout": out.getvalue(), "stderr": err.getvalue() + (crash or ""), "crash": crash,
            "hang": hang, "seconds": time.perf_counter() - t0}


def cli_subprocess(args: list[str], timeout: int = TIMEOUT) -> dict:
    """bubblesim ARGS in its own process, stdin an open pipe (so /dev/stdin would block)."""
    t0 = time.perf_counter()
    try:
        proc = subprocess.run([sys.executable, "-m", "sim", *args], capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.PIPE, errors="replace")
    except subprocess.TimeoutExpired:
        return {"rc": None, "stdout": "", "stderr": "", "crash": None, "hang": True, "seconds": timeout}
    crash = proc.stderr if "Traceback" in proc.stderr else None
    return {"rc": proc.returncode, "stdout": proc.stdout, "stderr": proc.stderr, "crash": crash, "hang": False,
            "seconds": time.perf_counter() - t0}


_LINE = re.compile(r"^(?:INVALID |bubblesim: )(.*)$")


def classify(outcome: dict, folder: str) -> tuple[str, str | None]:
    """(category, problem or None) of one validate/run outcome."""
    if outcome["hang"]:
        return "hang", "no answer within 30 s"
    if outcome["crash"]:
        return "traceback", outcome["crash"][-600:]
    if "Traceback" in outcome["stderr"]:
        return "traceback", outcome["stderr"][-600:]
    rc = outcome["rc"]
    if rc == 0:
        return "ok", None
    if rc != 2:
        return f"exit {rc}", outcome["stderr"][-600:]
    lines = [x for x in outcome["stderr"].splitlines() if x.strip() and not x.startswith("warning: ")]
    if not lines:
        return "exit 2, no message", "empty stderr"
    first = lines[0]
    if _CONTROL.search(first):
        return "control character", repr(first[:300])
    m = _LINE.match(first)
    # the file named first: a mutant or workspace file, or another existing file an extends reached
    loc = re.match(r"^(/[^:]*?)(:(\d+))?: (.*)$", m.group(1)) if m else None
    if not loc or not (loc.group(1).startswith(folder) or os.path.exists(loc.group(1))):
        return "first line names no file", first[:300]
    has_line = loc.group(3) is not None
    has_key = re.match(r'^[^\s:][^:]*?: ', loc.group(4)) is not None and not loc.group(4).startswith(
        ("expected a TOML", "not UTF-8", "the file is", "TOML syntax", "file not found"))
    return ("exit 2, file + key" + (" + line" if has_line else "") if has_key
            else "exit 2, file + line" if has_line else "exit 2, file only"), None


def check_results(folder: str) -> str | None:
    """None if results.json has a number in every required field and probabilities in [0, 1]."""
    try:
        with open(os.path.join(folder, "results.json")) as fh:
            d = json.load(fh)
    except (OSError, ValueError) as e:
        return f"no readable results.json: {e}"

    def flat(x):
        if isinstance(x, list):
            for y in x:
                yield from flat(y)
        else:
            yield x

    for k in MUST_BE_NUMBERS:
        vals = list(flat(d.get(k)))
        if not vals or any(not isinstance(v, (int, float)) or isinstance(v, bool) for v in vals):
            return f"{k} holds null (NaN/inf) or is missing"
    for k in PROBABILITIES:
        for v in flat(d.get(k)):
            if v is not None and not (-1e-12 <= v <= 1 + 1e-12):
                return f"{k} = {v} is not a probability"
    return None


def fuzz(n: int, seed: int = 1, workdir: str | None = None, run_sample: int = 100, paths: int = 256,
         log=print, start: int = 0) -> dict:
    """Validate `n` mutants, run a sample of the accepted ones; return the figures."""
    own = workdir is None
    workdir = workdir or tempfile.mkdtemp(prefix="bubblesim-fuzz-")
    ws = Workspace(os.path.join(workdir, "ws"), seed)
    folder = ws.folder
    cats: Counter = Counter()
    run_cats: Counter = Counter()
    ops: Counter = Counter()
    problems: list[dict] = []
    examples: dict[str, list[str]] = {}
    accepted: list[int] = []
    slowest = 0.0
    in_process = subprocesses = 0
    t0 = time.perf_counter()
    every = max(1, n // 20)
    for i in range(start, start + n):
        path, used, special = ws.mutant(i)
        ops.update(used)
        if special:
            outcome = cli_subprocess(["validate", path])
            subprocesses += 1
        else:
            outcome = validate_in_process(path)
            in_process += 1
        slowest = max(slowest, outcome["seconds"])
        cat, problem = classify(outcome, folder)
        cats[cat] += 1
        if cat.startswith("exit 2") and len(examples.setdefault(cat, [])) < 4:
            examples[cat].append(outcome["stderr"].strip().splitlines()[0][len(folder) + 8:][:200])
        if problem:
            problems.append({"mutant": i, "ops": used, "what": cat, "detail": problem})
        if cat == "ok" and len(accepted) < 50 * max(run_sample, 1):
            with open(path, "rb") as fh:
                data = fh.read()
            if b"[batch]" not in data:  # batch files are validated, not run
                accepted.append(i)
                with open(os.path.join(folder, f"accepted-{i}.toml"), "wb") as out:  # beside its extends targets
                    out.write(data)
        os.unlink(path)
        if (i - start + 1) % every == 0:
            log(f"  {i - start + 1:,}/{n:,} mutants, {time.perf_counter() - t0:.0f}s: {dict(cats)}")
    # the run sample: spread over the accepted mutants
    sample = accepted[:: max(1, len(accepted) // max(run_sample, 1))][:run_sample] if run_sample else []
    run_seconds = 0.0
    for k, i in enumerate(sample):
        path = os.path.join(folder, f"accepted-{i}.toml")
        out = os.path.join(workdir, f"run-{i}")
        outcome = cli_subprocess(["run", path, "--paths", str(paths), "--threads", "1", "--quiet", "--out", out])
        run_seconds += outcome["seconds"]
        cat, problem = classify(outcome, folder)
        if cat == "ok":
            bad = check_results(out)
            if bad:
                cat, problem = "results with NaN/inf or a bad probability", bad
        run_cats[cat] += 1
        if problem:
            problems.append({"mutant": i, "run": True, "what": cat, "detail": problem})
        if (k + 1) % max(1, len(sample) // 10) == 0:
            log(f"  runs {k + 1}/{len(sample)}: {dict(run_cats)}")
    if own:
        import shutil

        shutil.rmtree(workdir, ignore_errors=True)
    return {"mutants": n, "seed": seed, "validate": dict(cats), "in_process": in_process,
            "subprocess": subprocesses, "accepted": cats.get("ok", 0), "runs": dict(run_cats),
            "runs_total": len(sample), "paths": paths, "slowest_validate_s": round(slowest, 2),
            "run_seconds": round(run_seconds, 1), "wall_seconds": round(time.perf_counter() - t0, 1),
            "operators": dict(ops), "examples": examples, "problems": problems}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mutants", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--run-sample", type=int, default=200, help="accepted mutants to run (default 200)")
    ap.add_argument("--paths", type=int, default=256, help="paths per sample run (default 256)")
    ap.add_argument("--json", default=None, help="write the full report (problems included) here")
    args = ap.parse_args(argv)
    os.environ.setdefault("NUMBA_CACHE_DIR", os.path.join(os.getcwd(), ".numba_cache"))
    report = fuzz(args.mutants, args.seed, run_sample=args.run_sample, paths=args.paths,
                  log=lambda m: print(m, file=sys.stderr, flush=True))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(report, fh, indent=1)
    v, r = report["validate"], report["runs"]
    print(f"mutants: {report['mutants']:,} (seed {report['seed']}; {report['in_process']:,} validated in process, "
          f"{report['subprocess']:,} in their own process), {report['wall_seconds']:.0f}s")
    for k, c in sorted(v.items(), key=lambda kv: -kv[1]):
        print(f"  validate  {k:<40} {c:>7,}  {100 * c / report['mutants']:6.2f}%")
    print(f"  slowest validate: {report['slowest_validate_s']} s")
    for k, ex in report["examples"].items():
        print(f"  e.g. {k}: " + " | ".join(ex[:2]))
    print(f"runs (--paths {report['paths']}): {report['runs_total']} of {report['accepted']:,} accepted mutants, "
          f"{report['run_seconds']:.0f}s")
    for k, c in sorted(r.items(), key=lambda kv: -kv[1]):
        print(f"  run       {k:<40} {c:>7,}")
    bad = report["problems"]  # every outcome but exit 0 and a clean exit 2
    print(f"contract violations: {len(bad)}")
    for p in bad[:20]:
        print(f"  mutant {p['mutant']} {p.get('ops', 'run')}: {p['what']}: {p['detail'][:300]!r}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
