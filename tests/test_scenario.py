"""Tests of sim.scenario: loading, extends, overrides and validation errors."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from sim.scenario.errors import ScenarioError
from sim.scenario.loader import Scenario, load_scenario, scenario_from_dict

ROOT = Path(__file__).resolve().parents[1]

BASE = """\
name = "mini"
seed = 42

[time]
start_year = 2026
steps_per_year = 4
horizon_years = 7

[revenue]
initial = 13.0
growth0 = 0.8
growth_inf = 0.1
volatility = 0.3

[lab]
entity = "OpenAI"

[[entity]]
name = "OpenAI"
kind = "lab"
cash = 10

[[entity]]
name = "Oracle"
kind = "cloud"
cash = 5.0
debt = 100.0
maturities = { 2028 = 10.0, 2030 = 20.0 }

[[entity]]
name = "Nvidia"
kind = "chipmaker"

[[contract]]
name = "Oracle OCI"
payer = "OpenAI"
payee = "Oracle"
total = 300.0
start = 2027-07-01
years = 5
ramp_years = 1

[[contract]]
name = "Nvidia chips"
kind = "chips"
payer = "Oracle"
payee = "Nvidia"
schedule = { 2026 = 10.0, 2027 = 20 }

[[investment]]
name = "Nvidia-OpenAI"
investor = "Nvidia"
investee = "OpenAI"

  [[investment.tranche]]
  date = 2026.5
  amount = 10

  [[investment.tranche]]
  date = 2027.0
  amount = 10
  milestone_contract = "Oracle OCI"
  milestone_amount = 50

[[stake]]
holder = "Nvidia"
issuer = "OpenAI"
share = 0.02

[[loan]]
name = "vendor loan"
lender = "Nvidia"
borrower = "Oracle"
amount = 5
maturity = 2030.0
"""


def write(tmp_path: Path, text: str, name: str = "s.toml") -> Path:
    p = tmp_path / name
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text, encoding="utf-8")
    return p


def sub(text: str, old: str, new: str, count: int = 1) -> str:
    assert old in text, f"test bug: {old!r} not in text"
    return text.replace(old, new, count)


def line_of(text: str, needle: str | tuple[str, int]) -> int:
    """Line number (1-based) of the first (or, for (needle, n), the n-th) line containing needle."""
    needle, nth = needle if isinstance(needle, tuple) else (needle, 1)
    for i, line in enumerate(text.splitlines(), 1):
        if needle in line:
            nth -= 1
            if nth == 0:
                return i
    raise AssertionError(f"test bug: {needle!r} not in text")


# ---------------------------------------------------------------------------------------
# A valid scenario
# ---------------------------------------------------------------------------------------


def test_minimal_valid_scenario_loads_with_defaults(tmp_path):
    sc = load_scenario(write(tmp_path, BASE))
    d = sc.data
    assert isinstance(sc, Scenario)
    assert sc.name == "mini" and d["name"] == "mini"
    assert sc.path == str(tmp_path / "s.toml")
    assert sc.source == BASE
    # defaults filled everywhere
    assert d["description"] == "" and d["paths"] == 100_000 and d["extends"] is None
    assert d["revenue"]["half_life"] == 2.0
    assert d["regime"] == {"enabled": True, "enter_prob": 0.0, "exit_prob": 0.5, "growth_winter": 0.0,
                           "volatility_winter": 0.35, "jump_mean": 0.0, "jump_sd": 0.0, "sentiment_jump": 0.0}
    assert set(d["sentiment"]) == {"mean_reversion", "volatility", "rho"}
    assert d["refinancing"]["winter_shift"] == -1.0
    nv = d["entity"][2]
    assert nv["name"] == "Nvidia" and nv["cash"] == 0.0 and nv["recovery"] == 0.4
    assert nv["maturities"] is None and nv["ocf_growth_winter"] is None
    # ints coerced to float for float fields; int fields stay int
    assert d["entity"][0]["cash"] == 10.0 and type(d["entity"][0]["cash"]) is float
    assert type(d["time"]["horizon_years"]) is int and type(d["seed"]) is int
    # schedules: int years -> float amounts
    assert d["entity"][1]["maturities"] == {2028: 10.0, 2030: 20.0}
    sched = d["contract"][1]["schedule"]
    assert sched == {2026: 10.0, 2027: 20.0} and all(type(k) is int and type(v) is float
                                                     for k, v in sched.items())
    # dates -> decimal years (2027-07-01 is day 182 of a 365-day year)
    assert d["contract"][0]["start"] == pytest.approx(2027 + 181 / 365, abs=1e-12)
    assert d["contract"][0]["years"] == 5.0 and d["contract"][1]["total"] is None
    # arrays of tables with nested tranches
    tr = d["investment"][0]["tranche"]
    assert len(tr) == 2 and tr[0]["probability"] == 1.0 and tr[0]["expires"] is None
    assert tr[1]["milestone_contract"] == "Oracle OCI" and tr[1]["milestone_amount"] == 50.0
    assert d["stake"][0]["description"] == "" and d["loan"][0]["rate"] == 0.05
    assert sc.years() == list(range(2026, 2033))


def test_hash_stable_and_sensitive(tmp_path):
    a = load_scenario(write(tmp_path, BASE, "a.toml"))
    b = load_scenario(write(tmp_path, BASE, "b.toml"))
    assert len(a.hash) == 64 and a.hash == b.hash
    # same values written differently (int vs float, date vs decimal year) -> same hash
    c = load_scenario(write(tmp_path, sub(BASE, "cash = 10\n", "cash = 10.0\n"), "c.toml"))
    assert c.hash == a.hash
    # a changed value -> a different hash
    d = load_scenario(write(tmp_path, sub(BASE, "growth0 = 0.8", "growth0 = 0.81"), "d.toml"))
    assert d.hash != a.hash
    assert a.with_overrides({"revenue.growth0": 0.81}).hash == d.hash
    # stable across interpreter runs (no dependence on PYTHONHASHSEED, dict order, ...)
    code = ("import sys; from sim.scenario import load_scenario; "
            "print(load_scenario(sys.argv[1]).hash)")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "a.toml")], cwd=ROOT,
                         env={**os.environ, "PYTHONHASHSEED": "123"}, capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == a.hash


def test_scenario_from_dict_matches_file(tmp_path):
    a = load_scenario(write(tmp_path, BASE))
    b = scenario_from_dict(tomllib.loads(BASE))
    assert b.path is None and b.data == a.data and b.hash == a.hash
    # the rendered source is valid TOML giving the same scenario
    assert scenario_from_dict(tomllib.loads(b.source)).hash == a.hash
    # already-resolved data validates to itself (idempotent)
    assert scenario_from_dict(a.data).data == a.data


# ---------------------------------------------------------------------------------------
# extends
# ---------------------------------------------------------------------------------------

CHILD = """\
name = "child"
extends = "base.toml"

[revenue]
growth0 = 0.5

[[stake]]
holder = "Oracle"
issuer = "OpenAI"
share = 0.01
"""


def test_extends_deep_merge(tmp_path):
    write(tmp_path, BASE, "base.toml")
    sc = load_scenario(write(tmp_path, CHILD, "child.toml"))
    d = sc.data
    assert sc.name == "child" and d["extends"] == "base.toml"
    assert d["revenue"]["growth0"] == 0.5                       # changed
    assert d["revenue"]["initial"] == 13.0 and d["revenue"]["volatility"] == 0.3  # parent's kept
    assert d["seed"] == 42 and [e["name"] for e in d["entity"]] == ["OpenAI", "Oracle", "Nvidia"]
    assert d["stake"] == [{"holder": "Oracle", "issuer": "OpenAI", "share": 0.01, "description": ""}]  # replaced
    assert "base.toml" in sc.source and "child.toml" in sc.source
    assert sc.hash != load_scenario(tmp_path / "base.toml").hash


def test_extends_chain_of_three_with_relative_paths(tmp_path):
    write(tmp_path, BASE, "a/base.toml")
    write(tmp_path, sub(CHILD, '"base.toml"', '"../a/base.toml"'), "b/child.toml")
    grand = 'name = "grand"\nextends = "b/child.toml"\n\n[sentiment]\nrho = 0.1\n\n[time]\nhorizon_years = 8\n'
    sc = load_scenario(write(tmp_path, grand, "grand.toml"))
    d = sc.data
    assert sc.name == "grand"
    assert d["sentiment"]["rho"] == 0.1 and d["sentiment"]["volatility"] == 0.25
    assert d["time"] == {"start_year": 2026, "steps_per_year": 4, "horizon_years": 8}
    assert d["revenue"]["growth0"] == 0.5 and d["revenue"]["initial"] == 13.0
    assert len(d["stake"]) == 1 and d["stake"][0]["holder"] == "Oracle"
    assert sc.years()[-1] == 2033


def test_extends_cycle_is_reported(tmp_path):
    write(tmp_path, 'name = "a"\nextends = "b.toml"\n', "a.toml")
    write(tmp_path, 'name = "b"\nextends = "c.toml"\n', "b.toml")
    write(tmp_path, 'name = "c"\nextends = "a.toml"\n', "c.toml")
    with pytest.raises(ScenarioError) as ei:
        load_scenario(tmp_path / "a.toml")
    e = ei.value
    assert e.key == "extends" and "extends cycle" in str(e)
    assert e.file.endswith("c.toml") and e.line == 2
    msg = str(e)
    i, j, k = msg.index("a.toml ->"), msg.index("b.toml ->"), msg.index("c.toml ->")
    assert i < j < k and msg.rstrip().endswith("a.toml")


def test_extends_self_cycle(tmp_path):
    with pytest.raises(ScenarioError, match="extends cycle"):
        load_scenario(write(tmp_path, 'name = "a"\nextends = "./s.toml"\n'))


def test_extends_missing_parent(tmp_path):
    p = write(tmp_path, 'name = "x"\n\nextends = "nope/base.toml"\n')
    with pytest.raises(ScenarioError) as ei:
        load_scenario(p)
    e = ei.value
    assert e.file == str(p) and e.key == "extends" and e.line == 3
    assert "file not found" in str(e) and "base.toml" in str(e)


def test_extends_child_must_name_itself(tmp_path):
    write(tmp_path, BASE, "base.toml")
    with pytest.raises(ScenarioError) as ei:
        load_scenario(write(tmp_path, 'extends = "base.toml"\n', "child.toml"))
    assert ei.value.key == "name" and "own name" in str(ei.value) and "'mini'" in str(ei.value)


def test_extends_error_located_in_the_defining_file(tmp_path):
    bad = sub(BASE, 'payee = "Oracle"', 'payee = "Oracel"')
    write(tmp_path, bad, "base.toml")
    with pytest.raises(ScenarioError) as ei:
        load_scenario(write(tmp_path, CHILD, "child.toml"))
    e = ei.value
    assert e.file.endswith("base.toml") and e.line == line_of(bad, '"Oracel"')
    assert e.key == 'contract["Oracle OCI"].payee'
    # ... and an error the child introduces points into the child
    write(tmp_path, BASE, "base.toml")
    child = sub(CHILD, "share = 0.01", "share = 2.0")
    with pytest.raises(ScenarioError) as ei:
        load_scenario(write(tmp_path, child, "child.toml"))
    assert ei.value.file.endswith("child.toml") and ei.value.line == line_of(child, "share = 2.0")


def test_extends_syntax_error_in_parent(tmp_path):
    write(tmp_path, "name = \n", "base.toml")
    with pytest.raises(ScenarioError) as ei:
        load_scenario(write(tmp_path, CHILD, "child.toml"))
    assert ei.value.file.endswith("base.toml") and ei.value.line == 1


def test_scenario_from_dict_extends_relative_to_base_dir(tmp_path):
    write(tmp_path, BASE, "sub/base.toml")
    sc = scenario_from_dict({"name": "d", "extends": "base.toml", "revenue": {"initial": 20}},
                            source_name="inline", base_dir=tmp_path / "sub")
    assert sc.name == "d" and sc.data["revenue"]["initial"] == 20.0 and sc.data["seed"] == 42
    with pytest.raises(ScenarioError) as ei:
        scenario_from_dict({"name": "d", "extends": "missing.toml"}, source_name="inline", base_dir=tmp_path)
    assert ei.value.file == "inline" and ei.value.key == "extends" and "file not found" in str(ei.value)


# ---------------------------------------------------------------------------------------
# with_overrides
# ---------------------------------------------------------------------------------------


def test_with_overrides(tmp_path):
    sc = load_scenario(write(tmp_path, BASE))
    before = sc.hash
    o = sc.with_overrides({
        "revenue.growth0": 0.4,
        "seed": 7,
        "entity.Oracle.cash": 5,
        'contract["Oracle OCI"].total': 200.0,
        "contract.Nvidia chips.schedule.2028": 30,
        "investment.Nvidia-OpenAI.tranche.1.amount": 3.0,
        "investment[0].tranche[0].probability": 0.5,
        "stake.Nvidia.share": 0.05,
        "entity.Oracle.maturities.2030": None,
        "loan.vendor loan.rate": 0.07,
        "regime.enter_prob": 0.2,
    })
    d = o.data
    assert d["revenue"]["growth0"] == 0.4 and d["seed"] == 7 and d["regime"]["enter_prob"] == 0.2
    assert d["entity"][1]["cash"] == 5.0 and type(d["entity"][1]["cash"]) is float
    assert d["contract"][0]["total"] == 200.0
    assert d["contract"][1]["schedule"] == {2026: 10.0, 2027: 20.0, 2028: 30.0}
    assert d["investment"][0]["tranche"][1]["amount"] == 3.0
    assert d["investment"][0]["tranche"][0]["probability"] == 0.5
    assert d["stake"][0]["share"] == 0.05 and d["loan"][0]["rate"] == 0.07
    assert d["entity"][1]["maturities"] == {2028: 10.0}
    assert o.name == "mini" and o.path == sc.path and "revenue.growth0 = 0.4" in o.source
    # the original is untouched
    assert sc.hash == before and sc.data["revenue"]["growth0"] == 0.8
    # overrides are cumulative and addressing by "holder->issuer" works
    o2 = o.with_overrides({"stake.Nvidia->OpenAI.share": 0.03})
    assert o2.data["stake"][0]["share"] == 0.03 and o2.data["revenue"]["growth0"] == 0.4
    # None unsets (default applies); removing an item
    assert sc.with_overrides({"revenue.half_life": None}).data["revenue"]["half_life"] == 2.0
    assert len(sc.with_overrides({"stake.Nvidia->OpenAI": None}).data["stake"]) == 0


@pytest.mark.parametrize("key, expected", [
    ("revenue.grwoth0", "did you mean 'revenue.growth0'"),
    ("revnue.growth0", "did you mean 'revenue'"),
    ("entity.Oracel.cash", "did you mean 'Oracle'"),
    ("entity.Oracle.csh", "did you mean 'cash'"),
    ('contract["Oracle OC"].total', "did you mean 'Oracle OCI'"),
    ("investment.Nvidia-OpenAI.tranche.5.amount", "out of range"),
    ("investment.Nvidia-OpenAI.tranche.0.amont", "did you mean 'amount'"),
    ("sede", "did you mean 'seed'"),
    ("extends", "cannot be overridden"),
])
def test_override_unknown_keys(tmp_path, key, expected):
    sc = load_scenario(write(tmp_path, BASE))
    with pytest.raises(ScenarioError) as ei:
        sc.with_overrides({key: 1.0})
    assert ei.value.key == key and expected in str(ei.value)


def test_override_values_are_revalidated(tmp_path):
    sc = load_scenario(write(tmp_path, BASE))
    with pytest.raises(ScenarioError) as ei:
        sc.with_overrides({"entity.Oracle.cash": -1.0})
    assert ei.value.key == 'entity["Oracle"].cash' and ei.value.file == "<overrides>" and "in [0, 100000]" in str(ei.value)
    # an override that breaks a cross-check elsewhere is reported at the affected key, in the file
    with pytest.raises(ScenarioError) as ei:
        sc.with_overrides({"time.horizon_years": 3})
    keys = [e.key for e in ei.value.errors]
    assert 'contract["Oracle OCI"].years' in keys and 'entity["Oracle"].maturities.2030' in keys
    assert all(e.file == sc.path for e in ei.value.errors)
    with pytest.raises(ScenarioError, match=r"unknown entity 'Nvidai' \(did you mean 'Nvidia'\?\)"):
        sc.with_overrides({"loan.vendor loan.lender": "Nvidai"})


# ---------------------------------------------------------------------------------------
# Malformed scenarios
# ---------------------------------------------------------------------------------------

# (id, transform of BASE, expected dotted key, substrings of the message, text on the reported line)
BAD = [
    ("unknown top key", lambda t: sub(t, "seed = 42\n", "seed = 42\nseeed = 1\n"),
     "seeed", ["did you mean 'seed'"], "seeed"),
    ("top key after a table header", lambda t: t + "paths = 1000\n",
     'loan["vendor loan"].paths', ["top-level key"], "paths = 1000"),
    ("unknown section", lambda t: sub(t, "[revenue]", "[revenu]"),
     "revenu", ["did you mean 'revenue'"], "[revenu]"),
    ("misspelled section key", lambda t: sub(t, "growth0 = 0.8", "grwoth0 = 0.8"),
     "revenue.grwoth0", ["did you mean 'growth0'"], "grwoth0"),
    ("misspelled entity field", lambda t: sub(t, "cash = 10\n", "csh = 10\n"),
     'entity["OpenAI"].csh', ["did you mean 'cash'"], "csh = 10"),
    ("misspelled tranche field", lambda t: sub(t, "  amount = 10\n", "  amout = 10\n"),
     'investment["Nvidia-OpenAI"].tranche[0].amout', ["did you mean 'amount'"], "amout"),
    ("misspelled enum", lambda t: sub(t, 'kind = "cloud"', 'kind = "clod"'),
     'entity["Oracle"].kind', ["did you mean 'cloud'", "found string 'clod'"], '"clod"'),
    ("unknown payer", lambda t: sub(t, 'payer = "OpenAI"', 'payer = "OpenAi"'),
     'contract["Oracle OCI"].payer', ["unknown entity 'OpenAi'", "did you mean 'OpenAI'"], '"OpenAi"'),
    ("negative cash", lambda t: sub(t, "cash = 5.0", "cash = -5.0"),
     'entity["Oracle"].cash', ["expected a number in [0, 100000] ($B)", "found -5"], "cash = -5.0"),
    ("probability > 1", lambda t: sub(t, "ramp_years = 1\n", "ramp_years = 1\nrelet_share = 1.5\n"),
     'contract["Oracle OCI"].relet_share', ["in [0, 1]", "found 1.5"], "relet_share"),
    ("bool for number", lambda t: sub(t, "initial = 13.0", "initial = true"),
     "revenue.initial", ["expected a number in (0, 100000]", "found boolean true"], "initial = true"),
    ("string for number", lambda t: sub(t, "debt = 100.0", 'debt = "100"'),
     'entity["Oracle"].debt', ["found string '100'", "remove the quotes"], 'debt = "100"'),
    ("number for bool", lambda t: sub(t, "[revenue]", "[regime]\nenabled = 1\n\n[revenue]"),
     "regime.enabled", ["expected true or false", "found number 1"], "enabled = 1"),
    ("non-integer int", lambda t: sub(t, "horizon_years = 7", "horizon_years = 7.5"),
     "time.horizon_years", ["expected an integer", "found number 7.5"], "horizon_years"),
    ("quoted date", lambda t: sub(t, "start = 2027-07-01", 'start = "2027-07-01"'),
     'contract["Oracle OCI"].start', ["without quotes"], "start ="),
    ("schedule year outside horizon", lambda t: sub(t, "2027 = 20 }", "2035 = 20 }"),
     'contract["Nvidia chips"].schedule.2035', ["outside the horizon", "2026..2032"], "2035 = 20"),
    ("negative schedule amount", lambda t: sub(t, "2027 = 20 }", "2027 = -20 }"),
     'contract["Nvidia chips"].schedule.2027', ["found -20"], "2027 = -20"),
    ("bad schedule key", lambda t: sub(t, "2027 = 20 }", "y2027 = 20 }"),
     'contract["Nvidia chips"].schedule.y2027', ["calendar years"], "y2027"),
    ("schedule and total", lambda t: sub(t, "schedule = {", "total = 30.0\nschedule = {"),
     'contract["Nvidia chips"].total', ["not both"], "total = 30.0"),
    ("total without start", lambda t: sub(t, "start = 2027-07-01\n", ""),
     'contract["Oracle OCI"].start', ["go together", "missing start"], "[[contract]]"),
    ("no payment terms", lambda t: sub(t, "schedule = { 2026 = 10.0, 2027 = 20 }\n", ""),
     'contract["Nvidia chips"].schedule', ["missing payment terms"], ("[[contract]]", 2)),
    ("payer == payee", lambda t: sub(t, 'payee = "Oracle"', 'payee = "OpenAI"'),
     'contract["Oracle OCI"].payee', ["same entity 'OpenAI'"], 'payee = "OpenAI"'),
    ("period past horizon", lambda t: sub(t, "years = 5\n", "years = 6\n"),
     'contract["Oracle OCI"].years', ["ends after the horizon"], "years = 6"),
    ("ramp longer than period", lambda t: sub(t, "ramp_years = 1", "ramp_years = 5.5"),
     'contract["Oracle OCI"].ramp_years', ["longer than the payment period"], "ramp_years"),
    ("ramp with a schedule", lambda t: sub(t, 'kind = "chips"\n', 'kind = "chips"\nramp_years = 1\n'),
     'contract["Nvidia chips"].ramp_years', ["applies only to `total`"], ("ramp_years = 1", 2)),
    ("unknown milestone contract", lambda t: sub(t, 'milestone_contract = "Oracle OCI"',
                                                 'milestone_contract = "Oracle OC"'),
     'investment["Nvidia-OpenAI"].tranche[1].milestone_contract',
     ["unknown contract 'Oracle OC'", "did you mean 'Oracle OCI'"], "milestone_contract"),
    ("milestone amount without contract", lambda t: sub(t, '  milestone_contract = "Oracle OCI"\n', ""),
     'investment["Nvidia-OpenAI"].tranche[1].milestone_amount', ["milestone_contract is not"],
     "milestone_amount"),
    ("tranche date outside horizon", lambda t: sub(t, "date = 2026.5", "date = 2025.5"),
     'investment["Nvidia-OpenAI"].tranche[0].date', ["outside the horizon", "2025.5"], "date = 2025.5"),
    ("expires before date", lambda t: sub(t, "  date = 2026.5\n", "  date = 2026.5\n  expires = 2026.25\n"),
     'investment["Nvidia-OpenAI"].tranche[0].expires', ["before the tranche date"], "expires"),
    ("investment without tranche", lambda t: t + '\n[[investment]]\nname = "x"\ninvestor = "Oracle"\n'
                                                 'investee = "OpenAI"\n',
     'investment["x"].tranche', ["at least one tranche"], ("[[investment]]", 2)),
    ("investor == investee", lambda t: sub(t, 'investor = "Nvidia"', 'investor = "OpenAI"'),
     'investment["Nvidia-OpenAI"].investee', ["same entity"], 'investee = "OpenAI"'),
    ("stake shares over 1", lambda t: t + '\n[[stake]]\nholder = "Oracle"\nissuer = "OpenAI"\nshare = 0.99\n',
     'stake["Oracle->OpenAI"].share', ["stakes in 'OpenAI' sum to 1.01 > 1"], "share = 0.99"),
    ("stake in itself", lambda t: sub(t, 'holder = "Nvidia"', 'holder = "OpenAI"'),
     'stake["OpenAI->OpenAI"].issuer', ["same entity"], 'issuer = "OpenAI"'),
    ("maturities over debt", lambda t: sub(t, "debt = 100.0", "debt = 25.0"),
     'entity["Oracle"].maturities', ["sum to 30", "more than debt 25"], "maturities"),
    ("maturity year outside horizon", lambda t: sub(t, "2030 = 20.0 }", "2040 = 20.0 }"),
     'entity["Oracle"].maturities.2040', ["outside the horizon"], "maturities"),
    ("duplicate entity names", lambda t: sub(t, 'name = "Nvidia"', 'name = "Oracle"'),
     "entity[2].name", ["duplicate entity name 'Oracle'", "also entity[1]"], ('name = "Oracle"', 2)),
    ("duplicate contract names", lambda t: sub(t, 'name = "Nvidia chips"', 'name = "Oracle OCI"'),
     "contract[1].name", ["duplicate contract name"], ('name = "Oracle OCI"', 2)),
    ("missing revenue.initial", lambda t: sub(t, "initial = 13.0\n", ""),
     "revenue.initial", ["missing required key", "a number in (0, 100000]"], "[revenue]"),
    ("lab.entity unknown", lambda t: sub(t, 'entity = "OpenAI"', 'entity = "OpenAl"'),
     "lab.entity", ["unknown entity 'OpenAl'", "did you mean 'OpenAI'"], 'entity = "OpenAl"'),
    ("lender == borrower", lambda t: sub(t, 'borrower = "Oracle"', 'borrower = "Nvidia"'),
     'loan["vendor loan"].borrower', ["same entity"], 'borrower = "Nvidia"'),
    ("loan maturity outside horizon", lambda t: sub(t, "maturity = 2030.0", "maturity = 2040.0"),
     'loan["vendor loan"].maturity', ["outside the horizon"], "maturity = 2040.0"),
    ("unknown table", lambda t: t + '\n[loan2]\nx = 1\n',
     "loan2", ["unknown section [loan2]", "did you mean 'loan'"], "[loan2]"),
    ("nan value", lambda t: sub(t, "volatility = 0.3", "volatility = nan"),
     "revenue.volatility", ["found number nan"], "volatility = nan"),
]


@pytest.mark.parametrize("case", BAD, ids=[c[0] for c in BAD])
def test_malformed_scenarios(tmp_path, case):
    _, transform, key, needles, line_text = case
    text = transform(BASE)
    p = write(tmp_path, text)
    with pytest.raises(ScenarioError) as ei:
        load_scenario(p)
    e = ei.value
    msg = str(e)
    assert e.file == str(p)
    assert e.key == key, msg
    for n in needles:
        assert n in msg, msg
    assert e.line == line_of(text, line_text), msg
    assert msg.startswith(f"{p}:{e.line}: {key}: ")
    assert "Traceback" not in msg and len(msg.splitlines()) <= 10


def test_too_few_entities(tmp_path):
    d = tomllib.loads(BASE)
    d["entity"] = d["entity"][:1]
    d["lab"]["entity"] = "OpenAI"
    for k in ("contract", "investment", "stake", "loan"):
        d.pop(k)
    with pytest.raises(ScenarioError) as ei:
        scenario_from_dict(d, source_name="mem")
    e = ei.value
    assert e.key == "entity" and "at least 2 entities" in str(e) and e.file == "mem" and e.line is None


def test_table_instead_of_array_of_tables():
    d = tomllib.loads(BASE)
    d["loan"] = d["loan"][0]  # as if written [loan] instead of [[loan]]
    with pytest.raises(ScenarioError) as ei:
        scenario_from_dict(d)
    assert ei.value.key == "loan" and "write [[loan]]" in str(ei.value)
    d = tomllib.loads(BASE)
    d["revenue"] = 13.0
    with pytest.raises(ScenarioError, match=r"revenue: expected a table \[revenue\], found number 13"):
        scenario_from_dict(d)


def test_scenario_is_picklable_and_hashable(tmp_path):
    sc = load_scenario(write(tmp_path, BASE))
    sc2 = pickle.loads(pickle.dumps(sc))
    assert sc2 == sc and sc2.hash == sc.hash and hash(sc2) == hash(sc)
    assert sc2.with_overrides({"seed": 1}).data["seed"] == 1


def test_toml_syntax_error_has_line(tmp_path):
    text = sub(BASE, "growth0 = 0.8", "growth0 = 0.8.1")
    p = write(tmp_path, text)
    with pytest.raises(ScenarioError) as ei:
        load_scenario(p)
    n = line_of(text, "0.8.1")
    assert ei.value.line == n
    assert str(ei.value).startswith(f"{p}:{n}: TOML syntax error") and f"line {n}" in str(ei.value)


def test_missing_file():
    with pytest.raises(ScenarioError, match="file not found"):
        load_scenario("/nonexistent/dir/x.toml")


def test_several_errors_are_all_listed(tmp_path):
    text = sub(sub(BASE, "cash = 5.0", "cash = -5.0"), "volatility = 0.3", 'volatility = "high"')
    with pytest.raises(ScenarioError) as ei:
        load_scenario(write(tmp_path, text))
    e = ei.value
    assert [x.key for x in e.errors] == ["revenue.volatility", 'entity["Oracle"].cash']
    lines = str(e).splitlines()
    assert len(lines) == 2 and all(line.startswith(str(tmp_path)) for line in lines)
    # picklable, for worker processes
    e2 = pickle.loads(pickle.dumps(e))
    assert str(e2) == str(e) and e2.key == e.key and e2.line == e.line


def test_multiline_array_does_not_confuse_line_numbers(tmp_path):
    text = sub(BASE, 'name = "mini"\n', 'name = "mini"\ndescription = """\n[[entity]]\nname = 1\n"""\n')
    text = sub(text, "cash = 5.0", "cash = -5.0")
    with pytest.raises(ScenarioError) as ei:
        load_scenario(write(tmp_path, text))
    assert ei.value.key == 'entity["Oracle"].cash' and ei.value.line == line_of(text, "cash = -5.0")


# ---------------------------------------------------------------------------------------
# Generated documentation
# ---------------------------------------------------------------------------------------


def test_docs_scenarios_md_is_current():
    from sim.scenario.schema import schema_markdown

    path = ROOT / "docs" / "scenarios.md"
    regen = ('.venv/bin/python -c "import sim.scenario.schema as s; '
             "open('docs/scenarios.md', 'w').write(s.schema_markdown())\"")
    assert path.exists(), f"docs/scenarios.md is missing; generate it with:\n  {regen}"
    assert path.read_text(encoding="utf-8") == schema_markdown(), (
        f"docs/scenarios.md is out of date with sim/scenario/schema.py; regenerate it with:\n  {regen}")


def test_docs_cover_every_schema_key():
    from sim.scenario.schema import ARRAYS, SECTIONS, TOP, schema_markdown

    md = schema_markdown()
    keys = list(TOP) + [k for s in SECTIONS.values() for k in s]
    keys += [k for f, nested in ARRAYS.values() for k in f]
    keys += [k for _, nested in ARRAYS.values() for n in nested.values() for k in n]
    for k in keys:
        assert f"| `{k}` |" in md
