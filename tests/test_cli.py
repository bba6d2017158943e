"""The command line: bad input exits 2 with the key named and no traceback; run writes results."""

import glob
import json
import os
import subprocess
import sys

import pytest

from sim.cli.main import main

from .conftest import ROOT

VALID = """
name = "cli"
seed = 3
paths = 1000

[revenue]
initial = 25.0
growth0 = 0.7
growth_inf = 0.15
volatility = 0.3

[lab]
entity = "Lab"

[[entity]]
name = "Lab"
cash = 30.0
book_equity = 30.0

[[entity]]
name = "Builder"
cash = 8.0
debt = 120.0
ocf = 20.0
market_equity = 300.0
book_equity = 25.0

[[contract]]
name = "Build"
payer = "Lab"
payee = "Builder"
total = 300.0
start = 2027.0
years = 5
relet_share = 0.6

[[investment]]
name = "Round"
investor = "Builder"
investee = "Lab"

[[investment.tranche]]
date = 2026.5
amount = 1.0

[[stake]]
holder = "Builder"
issuer = "Lab"
share = 0.1
"""

# (description, original text, replacement, text the error must contain)
MALFORMED = [
    ("unknown top-level key", 'seed = 3', 'seed = 3\nsede = 4', "sede"),
    ("misspelled section key", "growth0 = 0.7", "growht0 = 0.7", "growht0"),
    ("did-you-mean section key", "growth0 = 0.7", "growht0 = 0.7", "growth0"),
    ("misspelled entity field", "cash = 8.0", "cahs = 8.0", "cahs"),
    ("unknown payee entity", 'payee = "Builder"', 'payee = "Buidler"', "Builder"),
    ("negative cash", "cash = 8.0", "cash = -8.0", "cash"),
    ("probability above one", "relet_share = 0.6", "relet_share = 1.5", "relet_share"),
    ("bool for a number", "volatility = 0.3", "volatility = true", "volatility"),
    ("string for a number", "initial = 25.0", 'initial = "lots"', "initial"),
    ("schedule outside horizon", "total = 300.0\nstart = 2027.0\nyears = 5",
     "schedule = { 2040 = 10.0 }", "schedule"),
    ("both schedule and total", "total = 300.0", "total = 300.0\nschedule = { 2027 = 1.0 }", "schedule"),
    ("total without start", "start = 2027.0\n", "", "start"),
    ("payer equals payee", 'payee = "Builder"', 'payee = "Lab"', "payee"),
    ("stake share above one", "share = 0.1", "share = 1.1", "share"),
    ("unknown lab entity", 'entity = "Lab"', 'entity = "Labb"', "lab.entity"),
    ("missing required revenue.initial", "initial = 25.0\n", "", "initial"),
    ("tranche date outside horizon", "date = 2026.5", "date = 2045.0", "date"),
    ("duplicate entity", 'name = "Builder"', 'name = "Lab"', "name"),
    ("maturities above debt", "debt = 120.0", "debt = 120.0\nmaturities = { 2027 = 200.0 }", "maturities"),
    ("TOML syntax error", "growth0 = 0.7", "growth0 = = 0.7", "line"),
]


@pytest.mark.parametrize("desc,old,new,needle", MALFORMED, ids=[m[0] for m in MALFORMED])
def test_validate_rejects_malformed_with_exit_2(tmp_path, capsys, desc, old, new, needle):
    assert old in VALID, desc
    path = tmp_path / "bad.toml"
    path.write_text(VALID.replace(old, new, 1))
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert "bad.toml" in err
    assert needle in err, err
    assert "Traceback" not in err


def test_validate_accepts_valid_file(tmp_path, capsys):
    path = tmp_path / "ok.toml"
    path.write_text(VALID)
    assert main(["validate", str(path)]) == 0
    assert "ok" in capsys.readouterr().out


def test_every_shipped_scenario_validates(capsys):
    files = sorted(glob.glob(os.path.join(ROOT, "scenarios", "*.toml")))
    assert len(files) >= 6
    assert main(["validate", *files]) == 0


def test_run_on_bad_file_exits_2_in_a_real_process(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text(VALID.replace('payee = "Builder"', 'payee = "Buidler"'))
    proc = subprocess.run([sys.executable, "-m", "sim", "run", str(path)], capture_output=True, text=True)
    assert proc.returncode == 2
    assert 'contract["Build"].payee' in proc.stderr and "Builder" in proc.stderr
    assert "Traceback" not in proc.stderr
    missing = subprocess.run([sys.executable, "-m", "sim", "run", str(tmp_path / "nope.toml")],
                             capture_output=True, text=True)
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
    bad_arg = subprocess.run([sys.executable, "-m", "sim", "run", str(path), "--paths", "-5"],
                             capture_output=True, text=True)
    assert bad_arg.returncode == 2 and "--paths" in bad_arg.stderr


def test_run_prints_summary_and_writes_results(tmp_path):
    path = tmp_path / "ok.toml"
    path.write_text(VALID)
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "sim", "run", str(path), "--paths", "2000", "--seed", "4",
                           "--out", str(out)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "P(2+ defaults)" in proc.stdout and "Builder" in proc.stdout
    data = json.loads((out / "results.json").read_text())
    assert data["paths"] == 2000 and data["seed"] == 4
    assert (out / "pd_by_year.csv").exists()


@pytest.mark.parametrize("path", sorted(glob.glob(os.path.join(ROOT, "scenarios", "*.toml"))))
def test_every_shipped_scenario_runs(path):
    from sim import load_scenario, run

    r = run(load_scenario(path), paths=2000, seed=1, chunk_size=1000)
    assert r.paths == 2000
    assert r.diagnostics["max_conservation_error"] < 1e-9
    assert r.pd.shape == (len(r.entities), len(r.years))
