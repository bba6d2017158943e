"""Sensitivity (tornado), reverse stress tests and runs to a target precision (sim.sensitivity)."""

import copy
import csv
import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest
from scipy.stats import norm

from sim.cli.main import main
from sim.engine.api import run
from sim.engine.clearing import clear
from sim.scenario.loader import load_scenario, scenario_from_dict
from sim.studies.metrics import BracketError, SensitivityError, parse_metric
from sim.studies.precision import max_probability_se, run_to_precision
from sim.studies.reverse_stress import find_threshold, reverse_stress
from sim.studies.sensitivity import sensitivity, write_sensitivity

from .conftest import ROOT, SMALL

# --------------------------------------------------------------------------- scenarios
# A lab that owes one payment of A = 10 at the end of a one-step year and has cash c plus one
# step of revenue R_1 = R0 exp(g - s^2/2 + s Z) (no opex, no equity raising, no regime):
# it defaults iff c + R_1 < A, so PD(c) = N((ln((A - c) / R0) - (g - s^2/2)) / s), and with
# s = 0 it defaults iff c < A - R0.
THRESHOLD_TOML = """\
name = "threshold"
seed = 11
paths = 20000
[time]
start_year = 2026
steps_per_year = 1
horizon_years = 1
[revenue]
initial = 5.0
growth0 = 0.0
growth_inf = 0.0
volatility = 0.4
[regime]
enabled = false
[sentiment]
volatility = 0.0
[lab]
entity = "Lab"
raise_share = 0.0
raise_share_winter = 0.0
opex_share_start = 0.0
opex_share_end = 0.0
[[entity]]
name = "Lab"
kind = "lab"
cash = 4.0
solvency_default = false
[[entity]]
name = "Supplier"
solvency_default = false
[[contract]]
name = "Compute"
payer = "Lab"
payee = "Supplier"
schedule = { 2026 = 10.0 }
cost_ratio = 0.0
"""
A, R0, S = 10.0, 5.0, 0.4


def threshold_pd(c):
    return norm.cdf((math.log((A - c) / R0) + 0.5 * S * S) / S)


def threshold_cash(target):
    """The cash at which the lab's PD is `target` (closed form above)."""
    return A - R0 * math.exp(-0.5 * S * S + S * norm.ppf(target))


@pytest.fixture
def threshold_file(tmp_path):
    p = tmp_path / "threshold.toml"
    p.write_text(THRESHOLD_TOML)
    return str(p)


@pytest.fixture
def small_file(tmp_path):
    p = tmp_path / "small.toml"
    p.write_text(scenario_from_dict(copy.deepcopy(SMALL)).source)
    return str(p)


def c4_liabilities(eps):
    """Rogers & Veraart (2013) circular network (tests/test_clearing.py, case C4): L[i][j] = what i owes j; ring 0 -> 1 -> ... -> 5 -> 0."""
    L = np.zeros((6, 6))
    for i in range(6):
        L[i, (i + 1) % 6] = 2.0 if i % 2 == 0 else 2.0 + eps
    ea = np.array([0.4 * (1 - eps) if i % 2 == 0 else 0.4 * (1 + eps) for i in range(6)])
    return L, ea


def c4_scenario(eps):
    """C4 in the scenario language: the ring as network loans due in the one step, outside
    assets as cash, alpha = beta = 1/2, deterministic; plus an unconnected lab (the schema
    needs one) with negligible revenue."""
    ents = [{"name": "Lab", "kind": "lab", "solvency_default": False}]
    _, ea = c4_liabilities(eps)
    for i in range(6):
        ents.append({"name": f"E{i}", "cash": float(ea[i]), "alpha": 0.5, "beta": 0.5, "solvency_default": False})
    loans = [{"name": f"L{i}", "borrower": f"E{i}", "lender": f"E{(i + 1) % 6}",
              "amount": 2.0 if i % 2 == 0 else 2.0 + eps, "rate": 0.0, "maturity": 2026.0} for i in range(6)]
    return scenario_from_dict({
        "name": "c4", "time": {"start_year": 2026, "steps_per_year": 1, "horizon_years": 1},
        "revenue": {"initial": 1e-6, "growth0": 0.0, "growth_inf": 0.0, "volatility": 0.0},
        "regime": {"enabled": False}, "sentiment": {"volatility": 0.0},
        "lab": {"entity": "Lab", "raise_share": 0.0, "raise_share_winter": 0.0},
        "entity": ents, "loan": loans})


# Closed form (derived by hand): with everyone paying in full, entity 1 has
# 0.4 (1 + eps) + 2 and owes 2 + eps, so it can pay iff 0.4 + 0.4 eps >= eps, i.e.
# eps <= 2/3; entity 0 has 0.4 (1 - eps) + 2 + eps >= 2 for every eps >= 0. So the first
# defaults ({1, 3, 5}) switch on just above eps* = 2/3.
C4_EPS = 2.0 / 3.0


# --------------------------------------------------------------------------- metrics
def test_metrics_parse_with_clear_errors(make_scenario):
    s = make_scenario(SMALL)
    assert parse_metric("p2", s).kind == "p2"
    m = parse_metric("pd:Builder@2028", s)
    assert (m.kind, m.entity, m.year) == ("pd", 1, 2)
    assert parse_metric("pd:Lab", s).year == 6 and parse_metric("lab_pd", s).entity == 0
    assert parse_metric("gap:2027", s).year == 1 and parse_metric("contagious:Cloud", s).entity == 2
    for spec, words in [("p3", ["unknown metric", "did you mean"]), ("pd:Biulder", ["did you mean 'Builder'"]),
                        ("pd:Lab@2040", ["outside the simulated years 2026-2032"]), ("gap", ["needs a year"]),
                        ("pd", ["needs an entity", "Builder"]), ("los_mean", ["did you mean 'loss_mean'"])]:
        with pytest.raises(SensitivityError) as e:
            parse_metric(spec, s)
        assert all(w in str(e.value) for w in words), str(e.value)
    # values and standard errors agree with the Results fields
    r = run(s, paths=500, seed=1, chunk_size=500)
    assert parse_metric("pd:Lab@2030", s).value(r) == (r.pd[0, 4], r.pd_se[0, 4])
    v, se = parse_metric("gap:2029", s).value(r)
    assert v == r.p_gap[3] and se == pytest.approx(math.sqrt(v * (1 - v) / 500))


# --------------------------------------------------------------------------- sensitivity
def test_tornado_sorted_signs_crn_and_files(make_scenario, tmp_path):
    d = copy.deepcopy(SMALL)
    d["entity"][1]["refi_prob"] = 0.98
    s = make_scenario(d)
    t = sensitivity(s, ["revenue.growth0", "regime.enter_prob", "entity.Builder.refi_prob",
                        "entity.Investor.cash=10,60"], defaults=False, step=0.05, metric="lab_pd", paths=4000,
                    seed=3, chunk_size=200)
    rows = {r["param"]: r for r in t["rows"]}
    swings = [abs(r["swing"]) for r in t["rows"]]
    assert swings == sorted(swings, reverse=True)
    g = rows["revenue.growth0"]
    assert (g["low_value"], g["high_value"]) == pytest.approx((0.665, 0.735))
    # lower revenue growth -> higher lab PD, far beyond the noise
    assert g["metric_low"] > g["metric_base"] > g["metric_high"]
    assert g["swing"] < -5 * g["swing_se"]
    assert rows["regime.enter_prob"]["swing"] > 3 * rows["regime.enter_prob"]["swing_se"]
    # common random numbers: the paired error of the swing is far below the independent one
    assert g["swing_se_method"] == "paired"
    assert g["swing_se"] < 0.5 * g["swing_se_independent"]
    # clipping to the schema range, reported: refi_prob 0.98 * 1.05 = 1.029 -> 1.0
    assert rows["entity.Builder.refi_prob"]["high_value"] == 1.0
    assert rows["entity.Builder.refi_prob"]["low_value"] == pytest.approx(0.931)
    assert (rows["entity.Investor.cash"]["low_value"], rows["entity.Investor.cash"]["high_value"]) == (10.0, 60.0)
    # the base equals a plain run with the same layout
    r = run(s, paths=4000, seed=3, chunk_size=200)
    assert t["base"] == r.pd[0, -1]

    files = write_sensitivity(t, str(tmp_path))
    with open(tmp_path / "sensitivity.csv") as fh:
        csv_rows = list(csv.DictReader(fh))
    assert [r["param"] for r in csv_rows] == [r["param"] for r in t["rows"]]
    for col in ("param", "base_value", "low_value", "high_value", "metric", "metric_base", "metric_low",
                "metric_high", "swing", "swing_se", "swing_se_method"):
        assert col in csv_rows[0]
    d = json.load(open(tmp_path / "sensitivity.json"))
    assert d["metric"] == "lab_pd" and d["rows"][0]["param"] == t["rows"][0]["param"] and len(files) == 2
    # the tornado chart reads it
    from sim.plots.inputs import _read_sensitivity

    tables = _read_sensitivity(str(tmp_path / "sensitivity.json"))
    assert tables[0]["metric"] == "lab_pd" and len(tables[0]["rows"]) == 4


def test_paired_swing_se_matches_seed_to_seed_spread(make_scenario):
    """The paired standard error is an honest error: across independent seeds, the swing
    varies by about that much (not just 'small').

    With k independent seeds, (k - 1) s^2 / sigma^2 is chi-square with k - 1 degrees of
    freedom (s the seed-to-seed standard deviation of the swing, sigma its true standard
    error, estimated by the root mean square of the reported ones). The bounds are the 0.1%
    and 99.9% points: with 40 seeds about (0.67, 1.36), so a correct error fails 1 time in
    500, and one understated or overstated 2x passes with probability about 0.2% (the old
    10-seed band (0.45, 1.9) let a 2x understatement pass about half the time). Small runs
    (600 paths in 20 chunks of 30) keep it fast.
    """
    from scipy.stats import chi2

    s = make_scenario(SMALL)
    k = 40
    swings, ses = [], []
    for seed in range(k):
        t = sensitivity(s, ["revenue.growth0"], defaults=False, metric="lab_pd", paths=600, seed=100 + seed,
                        chunk_size=30)
        assert t["rows"][0]["swing_se_method"] == "paired"
        swings.append(t["rows"][0]["swing"])
        ses.append(t["rows"][0]["swing_se"])
    ratio = np.std(swings, ddof=1) / np.sqrt(np.mean(np.square(ses)))
    lo, hi = (math.sqrt(chi2.ppf(q, k - 1) / (k - 1)) for q in (0.001, 0.999))
    assert chi2.cdf((hi / 2) ** 2 * (k - 1), k - 1) < 0.005  # a 2x understated error passes < 0.5%
    assert lo < ratio < hi, (ratio, lo, hi)


def test_default_parameter_list_skips_zero_values(make_scenario):
    d = copy.deepcopy(SMALL)
    d["regime"]["enabled"] = False
    d["paths"] = 300
    t = sensitivity(make_scenario(d), step=0.1, paths=600, seed=1, chunk_size=60)
    names = {r["param"] for r in t["rows"]}
    skipped = {x["param"]: x["reason"] for x in t["skipped"]}
    assert "revenue.growth0" in names and "lab.raise_share" in names
    assert skipped["regime.enter_prob"] == "regime disabled"
    assert "refinancing.winter_shift" in names  # -1.0 by default
    assert len(t["rows"]) + len(t["skipped"]) == 16


# --------------------------------------------------------------------------- root finding
def test_find_threshold_on_c4_clearing():
    def n_defaults(eps):
        L, ea = c4_liabilities(eps)
        return float(clear(L, ea, alpha=0.5, beta=0.5).defaulted.sum())

    # the published points: all solvent at 0.5, all insolvent at 1
    assert n_defaults(0.5) == 0 and n_defaults(1.0) == 6
    th = find_threshold(n_defaults, 0.5, 0.0, 1.0, tol=1e-9)
    assert abs(th.x - C4_EPS) <= 1e-9 and th.increasing
    assert th.evaluations <= 2 + math.ceil(math.log2(1.0 / 2e-9)) + 1  # never worse than bisection + 1


def test_find_threshold_fast_on_smooth_and_checks_bracket():
    calls = []

    def f(x):
        calls.append(x)
        return 1.0 - x ** 3  # decreasing

    th = find_threshold(f, 0.3, 0.0, 2.0, tol=1e-10)
    assert th.x == pytest.approx(0.7 ** (1 / 3), abs=1e-10) and not th.increasing
    assert th.evaluations < 20  # bisection needs 35
    with pytest.raises(BracketError, match="does not bracket"):
        find_threshold(f, 5.0, 0.0, 1.0)


def test_engine_reproduces_c4_threshold():
    """Reverse stress through the whole engine: the C4 ring in the scenario language."""
    th = find_threshold(lambda e: run(c4_scenario(e), paths=8, seed=1, chunk_size=8).p2, 0.5, 0.3, 1.0, tol=1e-5)
    assert abs(th.x - C4_EPS) <= 1e-5
    r = run(c4_scenario(1.0), paths=8, seed=1, chunk_size=8)
    assert r.pd[1:, 0].tolist() == [1.0] * 6 and r.pd[0, 0] == 0.0


def test_reverse_stress_deterministic_threshold(threshold_file):
    s = load_scenario(threshold_file).with_overrides({"revenue.volatility": 0.0})
    res = reverse_stress(s, "entity.Lab.cash", 0.5, metric="pd:Lab", lo=0.0, hi=9.0, tol=1e-4, paths=64)
    assert abs(res["crossing"] - (A - R0)) <= 1e-4 and res["direction"] == "decreasing"
    lo, hi = res["interval"]  # no Monte Carlo error: the interval is the final bracket
    assert A - R0 - 2e-4 <= lo <= hi <= A - R0 + 2e-4


def test_reverse_stress_cli_finds_closed_form_with_interval(threshold_file, tmp_path, capsys):
    out = tmp_path / "rs"
    assert main(["reverse-stress", threshold_file, "--param", "entity.Lab.cash", "--metric", "pd:Lab",
                 "--target", "0.05", "--lo", "0", "--hi", "9", "--tol", "0.001", "--paths", "20000",
                 "--out", str(out)]) == 0
    d = json.load(open(out / "reverse_stress.json"))
    exact = threshold_cash(0.05)  # 7.61...
    lo, hi = d["interval"]
    assert lo < exact < hi, (lo, exact, hi)
    assert lo < d["crossing"] < hi and hi - lo < 0.3
    # the interval matches the delta method: se(p) / |dPD/dc| at the crossing, times 1.96
    h = 1e-4
    slope = abs(threshold_pd(exact + h) - threshold_pd(exact - h)) / (2 * h)
    half = 1.96 * math.sqrt(0.05 * 0.95 / 20000) / slope
    assert (hi - lo) / 2 == pytest.approx(half, rel=0.35)
    assert abs(d["crossing"] - exact) < 3 * half
    assert d["metric"] == "pd:Lab" and d["target"] == 0.05 and d["runs"] == len(d["evaluations"])
    text = capsys.readouterr()
    assert "crosses 5.000% at entity.Lab.cash" in text.out and "[run 1]" in text.err


# --------------------------------------------------------------------------- target se
def _same(a, b):
    da, db = a.to_dict(), b.to_dict()
    da.pop("run_info"), db.pop("run_info")
    return json.dumps(da, sort_keys=True) == json.dumps(db, sort_keys=True)


def test_target_se_stops_at_the_first_doubling_that_meets_it(make_scenario):
    s = make_scenario(SMALL)
    r = run_to_precision(s, 0.012, max_paths=10**6, seed=5, chunk_size=256)
    prec = r.run_info["precision"]
    k = r.paths // 256
    assert r.paths == 256 * k and k & (k - 1) == 0 and k >= 4  # a power of two number of chunks
    assert prec["met"] and prec["max_se"] <= 0.012 and prec["paths"] == r.paths
    assert max_probability_se(r)[0] == prec["max_se"]
    half = run(s, paths=r.paths // 2, seed=5, chunk_size=256)
    assert max_probability_se(half)[0] > 0.012  # the previous doubling did not meet it
    assert _same(r, run(s, paths=r.paths, seed=5, chunk_size=256))  # bit-identical to a plain run


def test_target_se_cap_and_cli(make_scenario, small_file, tmp_path, capsys):
    s = make_scenario(SMALL)
    r = run_to_precision(s, 0.001, max_paths=1000, seed=5, chunk_size=256)
    assert r.paths == 1000 and not r.run_info["precision"]["met"]
    assert _same(r, run(s, paths=1000, seed=5, chunk_size=256))  # 3 full chunks and a short one
    out = tmp_path / "run"
    assert main(["run", small_file, "--target-se", "0.02", "--chunk-size", "512", "--out", str(out)]) == 0
    d = json.load(open(out / "results.json"))
    p = d["run_info"]["precision"]
    assert p["met"] and p["target_se"] == 0.02 and d["paths"] == p["paths"]
    assert "target se 0.02: met with" in capsys.readouterr().err


# --------------------------------------------------------------------------- command line
@pytest.mark.parametrize("argv, words", [
    (["sensitivity", "{small}", "--param", "revenue.growh0", "--no-defaults"], ["did you mean 'revenue.growth0'"]),
    (["sensitivity", "{small}", "--metric", "pd:Lba"], ["unknown entity 'Lba'", "did you mean 'Lab'"]),
    (["sensitivity", "{small}", "--metric", "p3"], ["unknown metric 'p3'"]),
    (["sensitivity", "{small}", "--step", "1.5"], ["--step must be in (0, 1)"]),
    (["sensitivity", "{small}", "--param", "entity.Lab.kind", "--no-defaults"], ["not a number"]),
    (["sensitivity", "{small}", "--param", "entity.Lab.debt", "--no-defaults"], ["is 0", "=LOW,HIGH"]),
    (["reverse-stress", "{thr}", "--param", "entity.Lab.cash", "--metric", "pd:Lab", "--target", "0.05",
      "--lo", "0", "--hi", "1", "--paths", "2000"], ["does not bracket", "both above the target", "--hi"]),
    (["reverse-stress", "{thr}", "--param", "entity.Lab.cash", "--metric", "pd:Lab", "--target", "0.05",
      "--lo", "-1", "--hi", "9"], ["entity.Lab.cash = -1.0 is not a valid scenario", "in [0, 100000]"]),
    (["reverse-stress", "{thr}", "--param", "revenue.grwth0", "--target", "0.05"], ["did you mean"]),
    (["run", "{small}", "--target-se", "0.01", "--paths", "100"], ["not both"]),
    (["run", "{small}", "--target-se", "-1"], ["expected a number > 0"]),
])
def test_cli_bad_input_exits_2_with_one_message(argv, words, small_file, threshold_file, tmp_path, capsys):
    argv = [a.format(small=small_file, thr=threshold_file) for a in argv]
    if argv[0] != "run":
        argv += ["--out", str(tmp_path / "o")]
    try:
        code = main(argv)
    except SystemExit as e:  # argparse's own errors
        code = e.code
    assert code == 2
    err = capsys.readouterr().err
    assert all(w in err for w in words), err
    assert "Traceback" not in err and not os.path.exists(tmp_path / "o")


def test_cli_subprocess_sensitivity_writes_files(small_file, tmp_path):
    out = tmp_path / "sens"
    p = subprocess.run([sys.executable, "-m", "sim", "sensitivity", small_file, "--no-defaults",
                        "--param", "revenue.growth0", "--param", "lab.raise_share", "--paths", "1000",
                        "--chunk-size", "100", "--metric", "pd:Lab@2030", "--out", str(out)],
                       capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert p.returncode == 0, p.stderr
    assert p.stderr.count("\n") == 5 and "[1/5] base" in p.stderr  # one progress line per run
    assert "revenue.growth0" in p.stdout and "se(swing)" in p.stdout
    assert os.path.exists(out / "sensitivity.csv") and os.path.exists(out / "sensitivity.json")
    bad = subprocess.run([sys.executable, "-m", "sim", "reverse-stress", small_file, "--param", "revenue.growth0",
                          "--target", "0.5", "--metric", "contagious:Nobody"], capture_output=True, text=True,
                         cwd=ROOT, timeout=120)
    assert bad.returncode == 2 and "unknown entity 'Nobody'" in bad.stderr and "Traceback" not in bad.stderr
