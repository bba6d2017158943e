"""Pin the numba kernel `sim.engine.kernel.step` to its pure-Python twin (tests/twin.py).

A stressed scenario (AI winters, refinancing walls, a lab that runs out of cash, thinly
capitalised partners, milestone and Bernoulli tranches, a vendor loan, re-letting) is run
path by path with the jitted kernel. Before every step the kernel state is snapshot, the
twin advances the snapshot on the same shocks, and every state and record field must agree
to 1e-10 (relative where magnitudes exceed 1). The branches the twin went through are
counted and each must occur, so the comparison is not vacuous. Each of issue 12's
mechanisms is compared the same way on its own variant of the web (MECHANISM_CASES); for
partners that build with borrowed money (docs/model.md 6d) `build_arrays` also writes the
compiled [build] arrays out from the spec.

Run directly (`.venv/bin/python tests/test_twin.py`) to print the branch counts and discrepancy.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from sim.engine import chunk_generator, new_path_buffers
from sim.engine import kernel as K
from sim.engine.model import compile_scenario
from sim.scenario.loader import scenario_from_dict

try:
    from tests.twin import initial_state, state_as_kernel_fields, state_from_kernel, step_twin
except ImportError:  # run as a script: python tests/test_twin.py
    from twin import initial_state, state_as_kernel_fields, state_from_kernel, step_twin

TOL = 1e-10
SEED = 20260101
N_PATHS = 300

# Branches that must each occur at least once over the compared steps.
REQUIRED_EVENTS = (
    "winter_entry", "winter_exit", "refinancing_failure", "refinancing_success",
    "lab_liquidity_default", "liquidity_default", "solvency_default", "solvency_default_impaired",
    "contagious_default", "fundamental_default", "cascade_wave_default", "clearing_with_default",
    "tranche_paid", "tranche_condition_failed", "tranche_milestone_pending",
    "relet_waiting", "relet_income", "loan_principal_due", "loan_repaid",
    "stake_written_off", "impairment", "contract_terminated", "contract_underpaid",
    "lab_raised", "lab_gap", "runway_finite", "runway_capped",
)

STRESSED = {
    "name": "twin-stress",
    "time": {"start_year": 2026, "steps_per_year": 4, "horizon_years": 7},
    "revenue": {"initial": 13.0, "growth0": 0.9, "growth_inf": 0.15, "half_life": 2.0,
                "volatility": 0.35},
    "regime": {"enabled": True, "enter_prob": 0.35, "exit_prob": 0.3, "growth_winter": -0.2,
               "volatility_winter": 0.4, "jump_mean": -0.3, "jump_sd": 0.15, "sentiment_jump": -0.4},
    "sentiment": {"mean_reversion": 0.8, "volatility": 0.3, "rho": 0.5},
    "lab": {"entity": "OpenAI", "opex_share_start": 0.35, "opex_share_end": 0.2, "opex_years": 4.0,
            "valuation_multiple": 25.0, "valuation_multiple_winter": 10.0,
            "raise_share": 0.10, "raise_share_winter": 0.02},
    "refinancing": {"sentiment_slope": 2.0, "leverage_slope": 1.0, "winter_shift": -1.5},
    "entity": [
        {"name": "OpenAI", "kind": "lab", "cash": 15.0, "debt": 4.0, "amortisation_years": 3.0,
         "refi_prob": 0.9, "book_equity": 60.0, "ocf": 0.0},
        {"name": "Oracle", "kind": "cloud", "cash": 10.0, "debt": 100.0, "rate": 0.055,
         "maturities": {2027: 15.0, 2028: 20.0}, "refi_prob": 0.85, "ocf": 20.0, "ocf_volatility": 0.2,
         "market_equity": 300.0, "equity_beta": 1.5, "book_equity": 25.0, "alpha": 0.8, "beta": 0.9,
         "recovery": 0.5},
        {"name": "Microsoft", "kind": "cloud", "cash": 80.0, "debt": 40.0, "ocf": 100.0,
         "market_equity": 3000.0, "book_equity": 300.0},
        {"name": "Nvidia", "kind": "chipmaker", "cash": 50.0, "debt": 10.0, "ocf": 80.0,
         "market_equity": 4000.0, "book_equity": 150.0},
        {"name": "CoreWeave", "kind": "neocloud", "cash": 2.0, "debt": 25.0, "rate": 0.09,
         "maturities": {2027: 7.0, 2029: 6.0}, "amortisation_years": 6.0, "refi_prob": 0.8,
         "ocf": 2.0, "ocf_volatility": 0.3, "market_equity": 40.0, "equity_beta": 2.0,
         "book_equity": 6.0, "alpha": 0.7, "beta": 0.8, "recovery": 0.3},
        {"name": "SoftBank", "kind": "investor", "cash": 15.0, "debt": 60.0, "rate": 0.06,
         "maturities": {2026: 15.0}, "refi_prob": 0.75, "ocf": 5.0, "market_equity": 100.0,
         "equity_beta": 1.5, "book_equity": 40.0},
        {"name": "AMD", "kind": "chipmaker", "cash": 5.0, "debt": 2.0, "ocf": 6.0,
         "market_equity": 250.0, "book_equity": 30.0, "solvency_default": False},
    ],
    "contract": [
        {"name": "Oracle OCI", "payer": "OpenAI", "payee": "Oracle", "total": 300.0, "start": 2027.0,
         "years": 5.0, "ramp_years": 1.0, "cost_ratio": 0.6, "capex_share": 0.35,
         "relet_share": 0.5, "relet_delay": 1.0, "relet_discount": 0.3},
        {"name": "Azure", "payer": "OpenAI", "payee": "Microsoft", "cost_ratio": 0.5, "capex_share": 0.2,
         "relet_share": 0.7, "relet_delay": 0.5, "relet_discount": 0.2,
         "schedule": {2026: 10.0, 2027: 15.0, 2028: 20.0, 2029: 25.0, 2030: 25.0, 2031: 25.0, 2032: 25.0}},
        {"name": "Nvidia chips", "payer": "OpenAI", "payee": "Nvidia", "total": 100.0, "start": 2026.5,
         "years": 5.0, "cost_ratio": 0.4, "capex_share": 0.1},
        {"name": "CoreWeave", "payer": "OpenAI", "payee": "CoreWeave", "total": 22.0, "start": 2026.0,
         "years": 5.0, "cost_ratio": 0.55, "capex_share": 0.4, "relet_share": 0.6, "relet_delay": 0.75},
        {"name": "AMD chips", "payer": "OpenAI", "payee": "AMD", "total": 30.0, "start": 2026.75,
         "years": 4.0, "cost_ratio": 0.5, "capex_share": 0.1, "relet_delay": 0.25},
        {"name": "MS-CoreWeave", "payer": "Microsoft", "payee": "CoreWeave", "total": 8.0,
         "start": 2026.0, "years": 6.0, "cost_ratio": 0.55},
    ],
    "investment": [
        {"name": "Nvidia-OpenAI", "investor": "Nvidia", "investee": "OpenAI", "tranche": [
            {"date": 2026.5, "amount": 5.0, "milestone_contract": "Nvidia chips", "milestone_amount": 10.0},
            {"date": 2026.5, "amount": 5.0, "milestone_contract": "Nvidia chips", "milestone_amount": 30.0},
            {"date": 2026.5, "amount": 5.0, "milestone_contract": "Nvidia chips", "milestone_amount": 60.0},
        ]},
        {"name": "SoftBank-OpenAI", "investor": "SoftBank", "investee": "OpenAI", "tranche": [
            {"date": 2026.0, "amount": 10.0},
            {"date": 2026.75, "amount": 20.0, "probability": 0.6, "expires": 2027.0},
            {"date": 2027.5, "amount": 10.0, "probability": 0.5},
        ]},
    ],
    "stake": [
        {"holder": "Microsoft", "issuer": "OpenAI", "share": 0.27},
        {"holder": "SoftBank", "issuer": "OpenAI", "share": 0.11},
        {"holder": "OpenAI", "issuer": "AMD", "share": 0.10},
        {"holder": "OpenAI", "issuer": "CoreWeave", "share": 0.05},
        {"holder": "Nvidia", "issuer": "CoreWeave", "share": 0.07},
    ],
    "loan": [
        {"name": "Nvidia-CoreWeave", "lender": "Nvidia", "borrower": "CoreWeave", "amount": 3.0,
         "rate": 0.08, "maturity": 2028.0},
    ],
}


# The same web with the lab's treasury on (docs/model.md section 3b): rounds as events, a
# runway target, a small facility that runs out. A shorter run: the twin is slow.
STRESSED_TREASURY = {**STRESSED, "name": "twin-stress-treasury",
                     "treasury": {"enabled": True, "runway_target": 1.0, "round_prob": 0.5,
                                  "round_prob_winter": 0.15, "round_sentiment_slope": 1.5,
                                  "round_share": 0.05, "facility": 6.0, "facility_rate": 0.09}}
N_PATHS_TREASURY = 120

# ... and with flexible contracts and restructuring on (docs/model.md section 7c)
_FLEX = {"Azure": 0.25, "Oracle OCI": 0.1, "CoreWeave": 0.1, "Nvidia chips": 0.25}
STRESSED_RESTRUCTURING = {
    **STRESSED_TREASURY, "name": "twin-stress-restructuring",
    "contract": [{**c, "flexible_share": _FLEX.get(c["name"], 0.0)} for c in STRESSED["contract"]],
    "restructuring": {"enabled": True, "cut_runway": 0.75, "cut_notice": 0.5, "cut_penalty": 0.25,
                      "haircut_max": 0.35},
}
N_PATHS_RESTRUCTURING = 120

# ... and with a revenue share to Microsoft that hits its cap on some paths
STRESSED_REVENUE_SHARE = {
    **STRESSED_RESTRUCTURING, "name": "twin-stress-revenue-share",
    "revenue_share": {"enabled": True, "payee": "Microsoft", "share": 0.2, "until": 2031.0, "cap": 12.0},
}
N_PATHS_REVENUE_SHARE = 100

# ... and with the lab's compute capacity mattering (suppliers' defaults cut its revenue)
STRESSED_CAPACITY = {
    **STRESSED_REVENUE_SHARE, "name": "twin-stress-capacity",
    "capacity": {"enabled": True, "revenue_elasticity": 0.8, "resource_delay": 0.5, "resource_premium": 0.3},
}
N_PATHS_CAPACITY = 100

# ... and with recoveries that fall in a downturn
STRESSED_DOWNTURN = {**STRESSED_CAPACITY, "name": "twin-stress-downturn",
                     "downturn_recovery": {"enabled": True, "scale": 0.5}}
N_PATHS_DOWNTURN = 80
REQUIRED_EVENTS_DOWNTURN = ("downturn_recovery", "liquidity_default", "solvency_default", "winter_entry")
REQUIRED_EVENTS_CAPACITY = (
    "supplier_capacity_lost", "capacity_lost", "capacity_replaced", "lab_liquidity_default", "contagious_default",
)
REQUIRED_EVENTS_REVENUE_SHARE = (
    "revenue_share_due", "revenue_share_capped", "distressed_exchange", "lab_liquidity_default", "round_closed",
)
REQUIRED_EVENTS_RESTRUCTURING = (
    "flexible_cut_notice", "contract_cut_payment", "distressed_exchange", "restructuring_refused",
    "haircut_payment", "lab_liquidity_default", "relet_income", "impairment", "round_closed",
)
# ... and, on the base web (old funding rule), with partners that build with borrowed money
# (docs/model.md section 6d): capex schedules above what their contracts tie, leases, a
# holding company with an LTV covenant (SoftBank) and a GPU lender with a coverage covenant
# (CoreWeave). Figures are stress settings for the test, not calibrated.
_BUILD_ENTITY = {
    "Oracle": {"capex": {2026: 40.0, 2028: 55.0}, "capex_yield": 0.12, "leases": {2026: 4.0, 2027: 9.0}},
    "Microsoft": {"capex": {2026: 120.0}, "capex_yield": 0.1, "leases": {2026: 6.0}},
    "Nvidia": {"capex": {2026: 8.0}, "capex_yield": 0.2},
    "CoreWeave": {"cash": 8.0, "capex": {2026: 6.0, 2027: 9.0}, "capex_yield": 0.15, "leases": {2026: 1.0},
                  "coverage_min": 2.5},
    "SoftBank": {"holdings": 90.0, "ltv_max": 0.35},
}
STRESSED_BUILD = {
    **STRESSED, "name": "twin-stress-build",
    "entity": [{**e, **_BUILD_ENTITY.get(e["name"], {})} for e in STRESSED["entity"]],
    "build": {"enabled": True, "lead": 1.0, "winter_capex_cut": 0.3, "spread_leverage": 0.02,
              "spread_winter": 0.03, "new_debt_years": 1.5, "cash_floor": 0.0, "sale_discount": 0.1,
              "ltv_default": 0.5, "coverage_years": 2},
}
N_PATHS_BUILD = 250
REQUIRED_EVENTS_BUILD = (
    "capex_borrowed", "capex_cut_market_shut", "capex_cut_cash", "capex_skipped_in_distress", "capex_yield",
    "lease_paid", "new_debt_due",
    "ltv_breach", "asset_sale", "covenant_default_ltv", "coverage_breach", "covenant_default_coverage",
    "impairment_built", "covenant_default_fundamental", "covenant_default_contagious", "refinancing_failure",
    "liquidity_default", "solvency_default", "contagious_default", "fundamental_default",
)
REQUIRED_EVENTS_TREASURY = (
    "round_closed", "round_failed", "facility_drawn", "facility_repaid", "treasury_gap",
    "lab_liquidity_default", "clearing_with_default", "tranche_paid",
)


BUILD_DEFAULTS = {"lead": 1.0, "winter_capex_cut": 0.2, "spread_leverage": 0.02, "spread_winter": 0.03,
                  "new_debt_years": 5.0, "cash_floor": 0.5, "sale_discount": 0.1, "ltv_default": 0.5,
                  "coverage_years": 2}


def _held_schedule(schedule, year):
    """$B/yr of a {year: amount} schedule in a calendar year: the last listed year at or
    before it (held to the horizon), 0 before the first."""
    by_year = {int(y): float(v) for y, v in (schedule or {}).items()}
    past = [y for y in by_year if y <= year]
    return by_year[max(past)] if past else 0.0


def build_arrays(scenario: dict, M) -> dict:
    """The [build] fields of ModelArrays written from docs/model.md section 6d, independently
    of sim.engine.model: per-step other capex (the capex schedule less what the entity's
    contracts tie `lead` steps ahead, floored at 0) and leases, the per-entity covenant
    inputs, and the section's constants in steps."""
    b = {**BUILD_DEFAULTS, **scenario.get("build", {})}
    spy, T = scenario["time"]["steps_per_year"], M.n_steps
    start = scenario["time"]["start_year"]
    lead = max(1, int(round(b["lead"] * spy)))
    ents = scenario["entity"]
    n = len(ents)
    other, lease = np.zeros((n, T)), np.zeros((n, T))
    for i, e in enumerate(ents):
        for t in range(T):
            year = start + t // spy
            # only entities with a capex schedule build (and tie capex to their contracts)
            tied = sum(float(M.c_capex[c]) * (float(M.c_amount[c, t + lead]) if t + lead < T else 0.0)
                       for c in range(len(M.c_payer)) if int(M.c_payee[c]) == i and e.get("capex"))
            other[i, t] = max(0.0, _held_schedule(e.get("capex"), year) / spy - tied)
            lease[i, t] = _held_schedule(e.get("leases"), year) / spy
    return {
        "build_on": bool(b.get("enabled", False)), "build_lead": lead, "build_winter_cut": b["winter_capex_cut"],
        "spread_lev": b["spread_leverage"], "spread_winter": b["spread_winter"],
        "new_debt_steps": max(1, int(round(b["new_debt_years"] * spy))), "cash_floor": b["cash_floor"],
        "sale_discount": b["sale_discount"], "ltv_default": b["ltv_default"],
        "coverage_years": int(b["coverage_years"]), "capex_other": other, "lease": lease,
        "capex_yield": np.array([float(e.get("capex_yield", 0.0)) for e in ents]),
        "holdings": np.array([float(e.get("holdings", 0.0)) for e in ents]),
        "holdings_beta": np.array([float(e.get("holdings_beta", e.get("equity_beta", 1.0))) for e in ents]),
        "builds": np.array([bool(e.get("capex")) for e in ents]),
        "ltv_max": np.array([float(e.get("ltv_max", 0.0)) for e in ents]),
        "coverage_min": np.array([float(e.get("coverage_min", 0.0)) for e in ents]),
    }


class Comparison:
    def __init__(self):
        self.max_discrepancy = 0.0
        self.where = ""
        self.compared = 0

    def check(self, name, got, want, ctx):
        got = np.asarray(got)
        want = np.asarray(want)
        assert got.shape == want.shape, f"{ctx}: {name} shape {got.shape} != {want.shape}"
        self.compared += got.size
        if got.dtype == bool or want.dtype == bool or np.issubdtype(got.dtype, np.integer):
            bad = np.argwhere(got.astype(np.int64) != want.astype(np.int64))
            assert bad.size == 0, (f"{ctx}: {name} differs at {bad[0].tolist()}: "
                                   f"kernel {got[tuple(bad[0])]} twin {want[tuple(bad[0])]}")
            return
        got = got.astype(float)
        want = want.astype(float)
        d = np.abs(got - want) / np.maximum(1.0, np.maximum(np.abs(got), np.abs(want)))
        d = np.where(got == want, 0.0, d)  # equal infinities (none expected) count as agreement
        k = int(np.argmax(d)) if d.size else 0
        worst = float(d.flat[k]) if d.size else 0.0
        idx = [int(x) for x in np.unravel_index(k, d.shape)] if d.size else []
        if worst > self.max_discrepancy:
            self.max_discrepancy, self.where = worst, f"{ctx}: {name}{idx}"
        assert worst <= TOL and not np.isnan(d).any(), (
            f"{ctx}: {name}{idx}: kernel {float(got.flat[k])!r} twin {float(want.flat[k])!r} "
            f"(discrepancy {worst:.3g})")


def compare_state(cmp: Comparison, st, twin_state, ctx):
    for name, want in state_as_kernel_fields(twin_state).items():
        got = st.sc[int(name[3])] if name.startswith("sc[") else getattr(st, name)
        cmp.check(name, got, want, ctx)


def expected_record(rec_before, t, r):
    """The kernel record after a step: the record before it plus the twin's updates."""
    e = {f: np.array(getattr(rec_before, f), copy=True) for f in K.Record._fields}
    e["revenue"][t] = r.revenue
    e["need"][t] = r.need
    e["gap"][t] = r.gap
    e["winter"][t] = 1.0 if r.winter else 0.0
    for d in r.defaults:
        e["default_step"][d.entity] = t
        e["default_kind"][d.entity] = d.kind
        e["contagious"][d.entity] = d.contagious
        e["loss"][d.entity] = d.loss
        e["exposure"][d.entity] = d.exposure
    for payee, amount in r.lost_backlog.items():
        e["lost_backlog"][payee] += amount
    for f, name in enumerate(K.FLOW_NAMES[:K.N_FLOWS]):
        e["flows"][f, t] = r.flows.get(name, 0.0)
    if r.restructured and e["credit_step"][r.restructured_entity] < 0:
        e["credit_step"][r.restructured_entity] = t
    for payee, amount in r.rs_loss.items():
        e["rs_loss"][payee] += amount
    if r.runway is not None:
        e["runway"][r.runway[0]] = r.runway[1]
    if "breach_step" in e:  # [build]
        for i in r.breached:
            if e["breach_step"][i] < 0:
                e["breach_step"][i] = t
        for i, x in r.sold.items():
            e["sold"][i] += x
        for i, x in r.new_debt.items():
            e["new_debt"][i] += x
        for i in r.covenant_defaults:
            e["covenant_default"][i] = True
    e["diag"][0] = max(e["diag"][0], r.conservation_error)
    e["diag"][1] += 1.0 if r.clearing_ran else 0.0
    e["diag"][2] += r.clearing_rounds
    return e


def run_comparison(scenario: dict, n_paths: int, seed: int = SEED):
    """Run kernel and twin side by side; returns (event counts, Comparison, diag error)."""
    M = compile_scenario(scenario_from_dict(scenario))
    st, ws, rec, shocks, tranche_u = new_path_buffers(M)
    rng = chunk_generator(seed, 0)
    events = {}
    cmp = Comparison()
    max_conservation = 0.0
    for path in range(n_paths):
        K.draw_path_shocks(rng, shocks, tranche_u)
        K.reset_path(M, st, rec, tranche_u)
        compare_state(cmp, st, initial_state(M, tranche_u), f"path {path} start")
        for t in range(M.n_steps):
            ctx = f"path {path} step {t}"
            before = state_from_kernel(st)
            rec_before = K.Record(*[np.array(a, copy=True) for a in rec])
            twin_state, r = step_twin(t, M, shocks[t], before)
            K.step(t, M, shocks[t], st, ws, rec)
            compare_state(cmp, st, twin_state, ctx)
            want = expected_record(rec_before, t, r)
            for f in K.Record._fields:
                if f == "diag":
                    # clearings and rounds exactly; the conservation error is rounding noise
                    cmp.check("diag[1:]", rec.diag[1:], want["diag"][1:], ctx)
                    assert rec.diag[0] <= 1e-12 and want["diag"][0] <= 1e-12, ctx
                    max_conservation = max(max_conservation, rec.diag[0])
                else:
                    cmp.check(f, getattr(rec, f), want[f], ctx)
            for k, v in r.events.items():
                events[k] = events.get(k, 0) + v
    return events, cmp, max_conservation


@pytest.fixture(scope="module")
def comparison():
    t0 = time.perf_counter()
    out = run_comparison(STRESSED, N_PATHS)
    return out + (time.perf_counter() - t0,)


def test_kernel_step_matches_twin(comparison):
    events, cmp, _, _ = comparison
    assert cmp.compared > 0
    assert cmp.max_discrepancy <= TOL


def test_twin_comparison_covers_every_branch(comparison):
    events, _, _, _ = comparison
    missing = [e for e in REQUIRED_EVENTS if events.get(e, 0) == 0]
    assert not missing, f"branches never exercised: {missing}; counts: {dict(sorted(events.items()))}"


# Each of issue 12's mechanisms on its own stressed web: (label, scenario, paths, branches it must exercise)
MECHANISM_CASES = [
    ("treasury", STRESSED_TREASURY, N_PATHS_TREASURY, REQUIRED_EVENTS_TREASURY),
    ("restructuring", STRESSED_RESTRUCTURING, N_PATHS_RESTRUCTURING, REQUIRED_EVENTS_RESTRUCTURING),
    ("revenue share", STRESSED_REVENUE_SHARE, N_PATHS_REVENUE_SHARE, REQUIRED_EVENTS_REVENUE_SHARE),
    ("capacity", STRESSED_CAPACITY, N_PATHS_CAPACITY, REQUIRED_EVENTS_CAPACITY),
    ("downturn recoveries", STRESSED_DOWNTURN, N_PATHS_DOWNTURN, REQUIRED_EVENTS_DOWNTURN),
    ("build", STRESSED_BUILD, N_PATHS_BUILD, REQUIRED_EVENTS_BUILD),
]


@pytest.mark.parametrize("label, scenario, paths, required", MECHANISM_CASES, ids=[c[0] for c in MECHANISM_CASES])
def test_kernel_step_matches_twin_with_each_mechanism(label, scenario, paths, required):
    events, cmp, _ = run_comparison(scenario, paths)
    assert cmp.compared > 0
    assert cmp.max_discrepancy <= TOL
    missing = [e for e in required if events.get(e, 0) == 0]
    assert not missing, f"{label} branches never exercised: {missing}; counts: {dict(sorted(events.items()))}"


def test_kernel_step_matches_twin_on_the_shipped_base():
    """base.toml as shipped (every issue-12 mechanism on, partners building) on a few paths:
    the twin and the kernel agree on the real web, not only on the stressed ones."""
    import os

    from sim.scenario import load_scenario

    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    data = load_scenario(os.path.join(here, "scenarios", "base.toml")).data
    events, cmp, _ = run_comparison(data, 40)
    assert cmp.compared > 0 and cmp.max_discrepancy <= TOL
    for e in ("capex_borrowed", "lease_paid", "ltv_breach", "asset_sale", "capex_yield"):
        assert events.get(e, 0) > 0, (e, dict(sorted(events.items())))


def test_build_arrays_match_the_spec():
    """compile_scenario's [build] arrays against docs/model.md 6d written out independently
    (build_arrays): the other capex net of the tied capex `lead` steps ahead, leases per
    step, covenant inputs, the constants in steps."""
    M = compile_scenario(scenario_from_dict(STRESSED_BUILD))
    for name, want in build_arrays(STRESSED_BUILD, M).items():
        got = getattr(M, name)
        assert np.shape(got) == np.shape(want), name
        np.testing.assert_allclose(np.asarray(got, float), np.asarray(want, float), rtol=1e-12, atol=1e-12,
                                   err_msg=name)


def test_twin_step_does_not_mutate_its_input():
    M = compile_scenario(scenario_from_dict(STRESSED))
    _, _, _, shocks, tranche_u = new_path_buffers(M)
    K.draw_path_shocks(chunk_generator(SEED, 0), shocks, tranche_u)
    s0 = initial_state(M, tranche_u)
    before = state_as_kernel_fields(s0)
    s1, _ = step_twin(0, M, shocks[0], s0)
    assert state_as_kernel_fields(s0) == before
    assert s1 is not s0


if __name__ == "__main__":
    import sys

    if "--kernel-readings" in sys.argv:
        # the two readings of docs/model.md 6d on which the kernel of commit 1ddae07 differs
        # from the twin (see tests/twin.py): to check that nothing else differs
        try:
            import tests.twin as _twin
        except ImportError:
            import twin as _twin
        _twin.COVERAGE_CF_WITH_RECEIPTS = False
        _twin.LTV_STAKES_AFTER_TRANCHES = False
        print("twin readings: coverage cash flow without contract receipts; LTV stakes before tranche purchases")
    failed = []
    for _, scen, paths, required in [("base web", STRESSED, N_PATHS, REQUIRED_EVENTS), *MECHANISM_CASES]:
        t0 = time.perf_counter()
        try:
            events, cmp, cons = run_comparison(scen, paths)
        except AssertionError as exc:
            print(f"{scen['name']}: kernel and twin DISAGREE: {exc}")
            failed.append(scen["name"])
            continue
        print(f"{scen['name']}: {time.perf_counter() - t0:.1f} s, {cmp.compared} values compared, max discrepancy "
              f"{cmp.max_discrepancy:.3g} at {cmp.where}; max conservation error {cons:.3g}")
        for k, v in sorted(events.items()):
            print(f"  {k:32s} {v}")
        print("missing:", [e for e in required if events.get(e, 0) == 0])
    sys.exit(1 if failed else 0)
