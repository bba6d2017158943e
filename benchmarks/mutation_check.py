"""Mutation check: plant plausible bugs one at a time in a copy of the repository and see
which tests catch each.

    .venv/bin/python benchmarks/mutation_check.py            # all mutants, default test files
    .venv/bin/python benchmarks/mutation_check.py --twin     # also run tests/test_twin.py
    .venv/bin/python benchmarks/mutation_check.py --only recovery_as_lgd,drift_sign

The repository's tracked files are copied once into a temporary directory; before each
mutant the copy is restored, the one edit is made (the text it replaces must occur exactly
once, so a mutant cannot silently stop applying when the code moves), and the chosen test
files run there with the interpreter running this script (the copy's `sim` comes first on
sys.path) and a timeout. Numba's cache: mutants of pure-Python modules reuse a cache built
once from the unmodified copy (same paths, same sources); mutants of numba modules
(kernel.py, clearing.py) start from an empty cache, because numba does not invalidate a
cached function when a function it calls changes.

Prints a markdown table: planted bug | where | caught by (test files and tests, the twin
excluded) | twin. Exit status 1 if a mutant is caught by no test other than the twin, or
the unmodified copy fails a selected test. Heavy (each numba mutant recompiles the
kernel): run it with `nice -n 10` on a shared machine.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# The test files run for every mutant (the twin excluded: it reads the same compiled
# arrays as the kernel, so it cannot see a wrong conversion in model.py).
DEFAULT_TESTS = [
    "tests/test_compile_oracles.py",
    "tests/test_closed_forms.py",
    "tests/test_hand_computed.py",
    "tests/test_se_calibration.py",
    "tests/test_engine.py",
    "tests/test_clearing.py",
    "tests/test_build.py",
]
TWIN = "tests/test_twin.py"
NUMBA_MODULES = ("sim/engine/kernel.py", "sim/engine/clearing.py")


@dataclass(frozen=True)
class Mutant:
    name: str
    description: str
    path: str
    old: str
    new: str


MUTANTS = [
    # the five bugs of issue 11
    Mutant("drift_sign", "drift sign `g - vol^2/2` -> `g + vol^2/2`", "sim/engine/kernel.py",
           "rev_drift[t] = (g - 0.5 * vol * vol) * dt", "rev_drift[t] = (g + 0.5 * vol * vol) * dt"),
    Mutant("recovery_kernel", "recovery `(1-R) remaining` -> `R remaining`", "sim/engine/kernel.py",
           "(1.0 - rec_i) * remaining_debt", "rec_i * remaining_debt"),
    Mutant("half_life_index", "half-life step index `t` -> `t+1`", "sim/engine/kernel.py",
           "0.5 ** (t * dt / M.half_life)", "0.5 ** ((t + 1) * dt / M.half_life)"),
    Mutant("sentiment_sqrt", "missing square root in the sentiment step size", "sim/engine/model.py",
           "math.sqrt((1 - decay**2) / (2 * kappa))", "((1 - decay**2) / (2 * kappa))"),
    Mutant("recovery_as_lgd", "recovery read as loss given default (`1 - recovery`)", "sim/engine/model.py",
           'recovery=col("recovery")', 'recovery=1.0 - col("recovery")'),
    # others: model.py
    Mutant("step_probability", "per-step probability `1-(1-p)^dt` -> `p dt`", "sim/engine/model.py",
           "return 1.0 - (1.0 - p_year) ** dt", "return p_year * dt"),
    Mutant("refi_logit_sign", "refinancing logit of `1 - refi_prob`", "sim/engine/model.py",
           "return math.log(p / (1.0 - p))", "return math.log((1.0 - p) / p)"),
    Mutant("amortisation_units", "amortisation per year used as per step", "sim/engine/model.py",
           'np.maximum(amortising, 0.0) / col("amortisation_years") * dt',
           'np.maximum(amortising, 0.0) / col("amortisation_years")'),
    Mutant("bullet_at_year_end", "bullet maturity on the year's last step", "sim/engine/model.py",
           "bullet[i, (int(year) - start_year) * spy] += float(amount)",
           "bullet[i, (int(year) - start_year) * spy + spy - 1] += float(amount)"),
    Mutant("schedule_not_spread", "yearly schedule amount due in every step of the year", "sim/engine/model.py",
           "out[first:first + spy] += float(amount) / spy", "out[first:first + spy] += float(amount)"),
    # others: kernel
    Mutant("delivery_cost_sign", "payee's delivery cost added instead of paid", "sim/engine/kernel.py",
           "L[a, b] += amount\n                    net_out[b] -= c_cost[c] * amount",
           "L[a, b] += amount\n                    net_out[b] += c_cost[c] * amount"),
    Mutant("backlog_index", "lost backlog counted from this step, not the next", "sim/engine/kernel.py",
           "backlog = c_remaining[c, t + 1]", "backlog = c_remaining[c, t]"),
    Mutant("els_ignores_stake_loss", "ELS counterfactual keeps others' stake write-offs", "sim/engine/kernel.py",
           "loan_position(l_lender, l_borrower, l_amount, loan_out, i) + stake_lost[i])",
           "loan_position(l_lender, l_borrower, l_amount, loan_out, i))"),
    Mutant("opex_sign", "lab revenue net of (1 + opex)", "sim/engine/kernel.py",
           "net_out[lab] += revenue * dt * (1.0 - opex_share[t])",
           "net_out[lab] += revenue * dt * (1.0 + opex_share[t])"),
    # clearing
    Mutant("clearing_alpha_ignored", "Rogers-Veraart alpha ignored (no cost on outside assets)",
           "sim/engine/clearing.py",
           "work[a, RHS] = alpha[i] * external_assets[i] + b_i * from_solvent",
           "work[a, RHS] = external_assets[i] + b_i * from_solvent"),
    Mutant("clearing_transposed", "relative liabilities transposed in the defaulters' system",
           "sim/engine/clearing.py",
           "work[a, b] = -b_i * liabilities[j, i] / work[j, PBAR]",
           "work[a, b] = -b_i * liabilities[i, j] / work[j, PBAR]"),
    # stats / results
    Mutant("fundamental_contagious_swapped", "fundamental and contagious PD swapped", "sim/engine/results.py",
           "p_fundamental=(defaults - s.contagious) / n_paths, p_contagious=s.contagious / n_paths",
           "p_fundamental=s.contagious / n_paths, p_contagious=(defaults - s.contagious) / n_paths"),
    Mutant("liquidity_share_kind", "liquidity share counts solvency defaults", "sim/engine/results.py",
           "s.kind_count[:, K.LIQUIDITY] / np.maximum(defaults, 1)",
           "s.kind_count[:, K.SOLVENCY] / np.maximum(defaults, 1)"),
    Mutant("loss_se_no_sqrt_n", "standard error of the mean loss without 1/sqrt(n)", "sim/engine/results.py",
           "loss_mean_se=math.sqrt(var_loss / n_paths)", "loss_mean_se=math.sqrt(var_loss)"),
    Mutant("proportion_se_halved", "binomial standard error halved", "sim/engine/stats.py",
           "return np.sqrt(p * (1.0 - p) / n)", "return np.sqrt(p * (1.0 - p) / n) / 2"),
    Mutant("wilson_centre", "Wilson interval centre without the z^2/2n shift", "sim/engine/stats.py",
           "centre = (p + z * z / (2 * n)) / denom", "centre = p / denom"),
    # partners that build (issue 12, mechanism 5; docs/model.md section 6d)
    Mutant("build_coupon_mean", "new debt's coupon a plain mean, not debt-weighted", "sim/engine/kernel.py",
           "coupon[i] = (coupon[i] * debt[i] + r_new * short) / (debt[i] + short)",
           "coupon[i] = 0.5 * (coupon[i] + r_new)"),
    Mutant("build_sale_size", "LTV sale size ignores the sale discount", "sim/engine/kernel.py",
           "/ (1.0 - M.sale_discount - M.ltv_max[i])", "/ (1.0 - M.ltv_max[i])"),
    Mutant("build_coverage_years", "coverage default one breach year late", "sim/engine/kernel.py",
           "if cov_low[i] >= M.coverage_years:", "if cov_low[i] > M.coverage_years:"),
    Mutant("build_reserve_leases", "capex reserve forgets next year's leases", "sim/engine/kernel.py",
           "keep += amort[i] + amort_new[i] + bullet[i, u] + M.lease[i, u]",
           "keep += amort[i] + amort_new[i] + bullet[i, u]"),
    Mutant("build_impairment_all", "built-ahead impairment writes off all capex built, delivered or not",
           "sim/engine/kernel.py",
           "max(0.0, c_built[c] - c_capex[c] * (c_remaining[c, 0]", "max(0.0, c_built[c] - 0.0 * (c_remaining[c, 0]"),
    Mutant("build_tied_not_ahead", "capex tied to contracts netted at the payment's own step, not `lead` ahead",
           "sim/engine/model.py", "ahead[:n_steps - lead] = c_amount[c, lead:]", "ahead[:] = c_amount[c, :]"),
    Mutant("build_winter_cuts_tied", "winter cut applied to capex tied to contracts too", "sim/engine/kernel.py",
           "plan = plan_tied[i] + plan_other[i]\n                    if plan <= 0.0:",
           "plan_tied[i] *= (1.0 - M.build_winter_cut) if winter else 1.0\n"
           "                    plan = plan_tied[i] + plan_other[i]\n                    if plan <= 0.0:"),
    Mutant("build_yield_no_lag", "capex yield from the step it is spent, not `lead` later", "sim/engine/kernel.py",
           "ripe[i] += k_hist[i, t - lead]", "ripe[i] += k_hist[i, t - 1]"),
]


def _tracked_files() -> list[str]:
    out = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout
    return [f for f in out.splitlines() if f and os.path.isfile(os.path.join(ROOT, f))]


def _copy_tree(files, dest):
    for f in files:
        target = os.path.join(dest, f)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copy2(os.path.join(ROOT, f), target)


_FAILED = re.compile(r"^(?:FAILED|ERROR) (\S+?)(?: - .*)?$")


def run_tests(copy_dir: str, tests: list[str], cache_dir: str, timeout: float) -> tuple[str, list[str], float]:
    """Run pytest on `tests` inside the copy; returns (status, failed test ids, seconds)."""
    env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir, PYTHONPATH=copy_dir, PYTHONDONTWRITEBYTECODE="1")
    env.pop("CI", None)
    t0 = time.perf_counter()
    try:
        p = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--tb=no", "-rfE",
                            "--no-header", *tests], cwd=copy_dir, env=env, capture_output=True, text=True,
                           timeout=timeout)
    except subprocess.TimeoutExpired:
        return "timeout", [], time.perf_counter() - t0
    failed = []
    for line in p.stdout.splitlines():
        m = _FAILED.match(line.strip())
        if m:
            failed.append(m.group(1))
    status = "pass" if p.returncode == 0 else ("fail" if failed else f"error (exit {p.returncode})")
    if status.startswith("error"):
        failed = [p.stdout.strip().splitlines()[-1] if p.stdout.strip() else p.stderr.strip()[-200:]]
    return status, failed, time.perf_counter() - t0


def _summarise(failed: list[str]) -> str:
    """'test_file.py: test_a, test_b[x,y]; other.py: ...' (parametrisations after the name)."""
    by_file: dict[str, dict[str, list[str]]] = {}
    for f in failed:
        path, _, test = f.partition("::")
        m = re.match(r"^(.*?)(?:\[(.*)\])?$", test)
        params = by_file.setdefault(os.path.basename(path), {}).setdefault(m.group(1), [])
        if m.group(2) and m.group(2) not in params:
            params.append(m.group(2))
    return "; ".join(f"{k}: " + ", ".join(name + (f"[{','.join(p)}]" if p else "") for name, p in v.items())
                     for k, v in by_file.items())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tests", default=",".join(DEFAULT_TESTS), help="comma-separated test files")
    ap.add_argument("--twin", action="store_true", help="also run tests/test_twin.py per mutant")
    ap.add_argument("--only", default="", help="comma-separated mutant names")
    ap.add_argument("--timeout", type=float, default=900.0, help="seconds per test run")
    ap.add_argument("--keep", action="store_true", help="keep the temporary copy")
    args = ap.parse_args(argv)
    tests = [t for t in args.tests.split(",") if t]
    mutants = [m for m in MUTANTS if not args.only or m.name in args.only.split(",")]

    files = _tracked_files()
    work = tempfile.mkdtemp(prefix="bubblesim-mutation-")
    repo = os.path.join(work, "repo")
    base_cache = os.path.join(work, "cache-base")
    rows = []
    ok = True
    try:
        _copy_tree(files, repo)
        print(f"copy of {len(files)} files in {repo}", file=sys.stderr)
        where = subprocess.run([sys.executable, "-c", "import sim; print(sim.__file__)"], cwd=repo,
                               env=dict(os.environ, PYTHONPATH=repo), capture_output=True, text=True).stdout
        if not where.startswith(repo):
            raise SystemExit(f"the copy's sim is not the one imported ({where.strip()}); check the install")
        status, failed, secs = run_tests(repo, tests + ([TWIN] if args.twin else []), base_cache, args.timeout)
        print(f"unmodified: {status} ({secs:.0f} s) {failed}", file=sys.stderr)
        if status != "pass":
            print("the unmodified copy does not pass the selected tests; fix that first", file=sys.stderr)
            return 1
        for m in mutants:
            src = os.path.join(repo, m.path)
            shutil.copy2(os.path.join(ROOT, m.path), src)  # restore (other mutants' files too)
            for other in {x.path for x in MUTANTS} - {m.path}:
                shutil.copy2(os.path.join(ROOT, other), os.path.join(repo, other))
            text = open(src).read()
            if text.count(m.old) != 1:
                raise SystemExit(f"mutant {m.name}: the text to replace occurs {text.count(m.old)} times in {m.path}")
            with open(src, "w") as fh:
                fh.write(text.replace(m.old, m.new))
            cache = os.path.join(work, f"cache-{m.name}")
            if m.path not in NUMBA_MODULES:
                shutil.copytree(base_cache, cache)  # same sources for every jitted function
            status, failed, secs = run_tests(repo, tests, cache, args.timeout)
            caught = _summarise(failed) if status != "pass" else ""
            if status == "timeout":
                caught = "timeout"
            twin = ""
            if args.twin:
                t_status, t_failed, t_secs = run_tests(repo, [TWIN], cache, args.timeout)
                twin = "caught" if t_status != "pass" else "not caught"
                secs += t_secs
            if not caught:
                ok = False
            print(f"{m.name}: {status} in {secs:.0f} s: {caught or 'NOT CAUGHT'}", file=sys.stderr)
            rows.append((m, caught, twin))
            shutil.rmtree(cache, ignore_errors=True)
            shutil.copy2(os.path.join(ROOT, m.path), src)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    head = "| planted bug | where | caught by (other than the twin) |" + (" twin |" if args.twin else "")
    print(head)
    print("|---|---|---|" + ("---|" if args.twin else ""))
    for m, caught, twin in rows:
        print(f"| {m.description} | `{m.path}` | {caught or '**nothing**'} |" + (f" {twin} |" if args.twin else ""))
    print(f"\n{sum(1 for _, c, _ in rows if c)} of {len(rows)} planted bugs caught by a test other than the twin; "
          f"test files: {', '.join(tests)}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
