"""Partners build with borrowed money (`[build]`, docs/model.md section 6d), branch by branch.

Every scenario here is tiny (2-3 entities), every volatility is 0 and the shocks are made
by hand, so each number can be worked out on paper; the arithmetic is in the comments and
the expected values are computed in the test from the scenario's inputs (never copied
from the kernel's output). The market for new debt is the refinancing draw of section 6:
with `[refinancing]` slopes at 0 and refi_prob 0.5 the probability it opens is exactly
1 / (1 + e^0) = 0.5, so the entity's uniform u = 0.25 opens it and u = 0.75 shuts it.
Shocks per step: [z_R, z_S, u_regime, z_J, (z_ocf_i, u_refi_i) per entity]; the normals stay 0.

Each path is walked one step at a time (`sim.engine.kernel.step`) and the state after
every step is kept: `walk(...)[t + 1]` is the state after step t, `walk(...)[0]` the start.

The last test is a common-random-numbers invariant on a stochastic web; its docstring says
why it must hold.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest

from sim.engine import kernel as K
from sim.engine import new_path_buffers
from sim.engine.model import compile_scenario
from sim.engine.runner import simulate
from sim.scenario.loader import scenario_from_dict

from .paths import replay

try:
    from tests.test_twin import STRESSED
except ImportError:  # pragma: no cover
    from test_twin import STRESSED

REL = 1e-12
OPEN, SHUT = 0.25, 0.75  # refinancing uniforms: below / above the market's probability 0.5

QUIET = {  # no randomness: yearly steps, flat revenue, no regime, sentiment 1 throughout
    "time": {"start_year": 2026, "steps_per_year": 1, "horizon_years": 4},
    "revenue": {"initial": 4.0, "growth0": 0.0, "growth_inf": 0.0, "volatility": 0.0},
    "regime": {"enabled": False},
    "sentiment": {"volatility": 0.0},
    "lab": {"entity": "Lab", "opex_share_start": 0.0, "opex_share_end": 0.0, "raise_share": 0.0,
            "raise_share_winter": 0.0, "valuation_multiple": 25.0},  # E_lab = 25 * 4 * 1 = 100
    "refinancing": {"sentiment_slope": 0.0, "leverage_slope": 0.0, "winter_shift": 0.0},
}
QUIET_ENTITY = {"ocf_volatility": 0.0, "ocf_growth": 0.0, "refi_prob": 0.5}
WINTER = {"enabled": True, "enter_prob": 1.0, "exit_prob": 0.0, "growth_winter": 0.0,
          "volatility_winter": 0.0}  # winter from step 0 on (u_regime 0.5 < p_enter 1), never left
LAB = {"name": "Lab", "kind": "lab", "cash": 100.0, "solvency_default": False}  # pays anything
BUILD = {"enabled": True, "lead": 1.0, "winter_capex_cut": 0.2, "spread_leverage": 0.02,
         "spread_winter": 0.03, "new_debt_years": 2.0, "cash_floor": 0.5, "sale_discount": 0.1,
         "ltv_default": 0.5, "coverage_years": 2}


def _yearly(amount, first=2026, last=2029):
    return {str(y): amount for y in range(first, last + 1)}


def model(entities, build=None, spy=1, years=4, regime=None, **arrays):
    d = copy.deepcopy(QUIET)
    d["name"] = "build-hand"
    d["time"] = {"start_year": 2026, "steps_per_year": spy, "horizon_years": years}
    if regime is not None:
        d["regime"] = regime
    d["entity"] = [{**QUIET_ENTITY, **e} for e in entities]
    d["build"] = {**BUILD, **(build or {})}
    d.update(copy.deepcopy(arrays))
    return compile_scenario(scenario_from_dict(d))


def walk(M, u):
    """States after each step: u[t][i] is entity i's refinancing (market) uniform at step t
    (a row for every step, or one row for all)."""
    st, ws, rec, shocks, tranche_u = new_path_buffers(M)
    n = M.cash0.shape[0]
    u = np.broadcast_to(np.asarray(u, float), (M.n_steps, n))
    shocks[:, 2] = 0.5  # the regime uniform
    for i in range(n):
        shocks[:, 5 + 2 * i] = u[:, i]
    K.reset_path(M, st, rec, tranche_u)
    out = [(type(st)(*[np.copy(a) for a in st]), type(rec)(*[np.copy(a) for a in rec]))]
    for t in range(M.n_steps):
        K.step(t, M, shocks[t], st, ws, rec)
        out.append((type(st)(*[np.copy(a) for a in st]), type(rec)(*[np.copy(a) for a in rec])))
    return out


def approx(x):
    return pytest.approx(x, rel=REL, abs=REL)


# --------------------------------------------------------------------------------------
# 0. The switch: [build] off is the old model, bit for bit
# --------------------------------------------------------------------------------------
def test_build_off_is_the_old_model_bit_for_bit():
    # the stochastic twin web with every new per-entity field set and [build] present but
    # off: every statistic equals the run of the same web without any of them
    old = compile_scenario(scenario_from_dict(copy.deepcopy(STRESSED)))
    d = copy.deepcopy(STRESSED)
    d["build"] = {**BUILD, "enabled": False, "lead": 0.5, "cash_floor": 0.1}
    for k, e in enumerate(d["entity"]):
        if e["kind"] == "lab":
            continue
        e.update({"capex": {2026: 20.0 + k, 2028: 40.0}, "leases": {2027: 3.0 + k},
                  "capex_yield": 0.1, "holdings": 50.0, "ltv_max": 0.35, "coverage_min": 2.0})
    off = compile_scenario(scenario_from_dict(d))
    assert not off.build_on
    a, _, _ = simulate(old, 120, 5, chunk_size=40, threads=1)
    b, _, _ = simulate(off, 120, 5, chunk_size=40, threads=1)
    assert a.default_at.sum() > 0  # the web has defaults: the comparison is not vacuous
    for name in K.Stats._fields:
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    assert b.new_debt_sum.sum() == 0.0 and b.breached.sum() == 0 and b.covenant_default.sum() == 0


# --------------------------------------------------------------------------------------
# 1. Capex from cash above the floor, capitalised; its yield from `lead` after the spend
# --------------------------------------------------------------------------------------
def test_capex_from_cash_above_the_floor_and_its_yield_from_lead_on():
    """Half-year steps (dt 0.5), lead 1 yr = 2 steps. Builder: cash 10, outside cash flow
    3/yr (1.5 a step), capex 4/yr (2 a step, 2026 held to the horizon), capex_yield 0.5,
    no debt, book equity 0 with solvency default on.
    Each step a = cash + 1.5 + yield >= floor 0.5 * 10 = 5 + 2, so capex is paid from cash
    (f = a - 5 >= plan 2), nothing is borrowed. Yield at step t = 0.5 * (capex spent up to
    t - 2) * 0.5:
      t0: cash 10 + 1.5 - 2 = 9.5      t1: 9.5 + 1.5 - 2 = 9
      t2: ripe 2, yield 0.5: 9 + 1.5 + 0.5 - 2 = 9       t3: ripe 4, yield 1: 9.5
      t4: ripe 6, yield 1.5: 10.5                          t5: ripe 8, yield 2: 12
    Capex is capitalised: book equity after t0 = 0 + (9.5 - 10) + 2 = 1.5 >= 0 (expensed,
    it would be -0.5 < 0, a solvency default)."""
    M = model([LAB, {"name": "B", "cash": 10.0, "ocf": 3.0, "capex": {"2026": 4.0}, "capex_yield": 0.5,
                     "book_equity": 0.0}], spy=2, years=3)
    assert M.build_on and M.build_lead == 2
    np.testing.assert_allclose(M.capex_other[1], [2.0] * 6, rtol=REL)  # 4/yr * 0.5, held
    states = walk(M, SHUT)
    want_cash = [9.5, 9.0, 9.0, 9.5, 10.5, 12.0]
    want_ripe = [0.0, 0.0, 2.0, 4.0, 6.0, 8.0]
    for t in range(6):
        st, rec = states[t + 1]
        assert st.cash[1] == approx(want_cash[t]), t
        assert st.ripe[1] == approx(want_ripe[t]), t
        assert st.k_hist[1, t] == approx(2.0)
        assert st.capex_book[1] == approx(2.0 * (t + 1))
        assert st.debt[1] == 0.0 and rec.new_debt[1] == 0.0
    assert states[-1][1].default_step[1] == -1


def test_capex_yield_follows_each_spend_by_exactly_lead():
    """As above, but capex 4/yr in 2026 only (2 a step at t0, t1; 0 after): ripe capex is
    what was spent `lead` = 2 steps earlier or before, k[0] at t2 and k[0] + k[1] from t3:
    ripe 0, 0, 2, 4, 4, 4 (a yield one step after the spend would give 0, 2, 4, 4, 4, 4, and
    one from the spend's own step to the previous step's would give ripe 2 at t3)."""
    M = model([LAB, {"name": "B", "cash": 10.0, "ocf": 3.0, "capex": {"2026": 4.0, "2027": 0.0},
                     "capex_yield": 0.5, "book_equity": 0.0}], spy=2, years=3)
    np.testing.assert_allclose(M.capex_other[1], [2.0, 2.0, 0.0, 0.0, 0.0, 0.0], rtol=REL)
    states = walk(M, SHUT)
    want_ripe = [0.0, 0.0, 2.0, 4.0, 4.0, 4.0]
    cash = 10.0
    for t in range(6):
        cash += 1.5 + 0.5 * want_ripe[t] * 0.5 - (2.0 if t < 2 else 0.0)
        st, _ = states[t + 1]
        assert st.ripe[1] == approx(want_ripe[t]), t
        assert st.cash[1] == approx(cash), t


def test_capex_expensed_would_be_a_solvency_default():
    # the same builder with capex above what its book equity could absorb if capex were an
    # expense: after t0 book equity = b0 + (9.5 - 10) + 2 (capitalised); with b0 = -1.4 it
    # is 0.1 >= 0 (survives), with b0 = -1.6 it is -0.1 < 0 (solvency default at t0)
    ent = {"name": "B", "cash": 10.0, "ocf": 3.0, "capex": {"2026": 4.0}}
    alive = walk(model([LAB, {**ent, "book_equity": -1.4}], spy=2, years=1), SHUT)
    dead = walk(model([LAB, {**ent, "book_equity": -1.6}], spy=2, years=1), SHUT)
    assert alive[1][1].default_step[1] == -1
    assert dead[1][1].default_step[1] == 0 and dead[1][1].default_kind[1] == K.SOLVENCY


# --------------------------------------------------------------------------------------
# 2. Borrowing when the market is open: debt, coupon, bullets, then due or rolled
# --------------------------------------------------------------------------------------
# Yearly steps, horizon 4. Builder: cash 4, ocf 3, debt 20 at 5% amortising over 10 years
# (2 a step; it rolls over when the market is open), market equity 40 (leverage D/E = D/40),
# capex 10/yr, new debt a ladder over 2 years (each issue b adds b/2 to the amortisation per
# step). Reserve at t: 0.5 * 4 + next year's principal (one step here: the amortisation 2 +
# the new debt's amortisation so far), for t + 1 < T.
BORROWER = {"name": "B", "cash": 4.0, "ocf": 3.0, "debt": 20.0, "rate": 0.05, "amortisation_years": 10.0,
            "market_equity": 40.0, "capex": {"2026": 10.0}, "solvency_default": False}
# t0 (open): interest 0.05 * 20 = 1, amortisation 2 rolls; a = 4 + 3 - 1 = 6, reserve
#     2 + 2 = 4, f = 2, borrows b0 = 10 - 2 = 8 at r0 = 0.05 + 0.02 * 20/40 = 0.06; debt 28,
#     coupon (0.05 * 20 + 0.06 * 8) / 28; new debt: its own pool 8 repaid 8/2 = 4 a step;
#     amortising 20 - 2 = 18; cash 6 + 8 - 10 = 4 (the reserve).
A0 = 4.0 + 3.0 - 0.05 * 20.0
B0, R0 = 10.0 - (A0 - (2.0 + 2.0)), 0.05 + 0.02 * 20.0 / 40.0
D1 = 20.0 + B0
C1 = (0.05 * 20.0 + R0 * B0) / D1
# t1 (open): interest C1 * 28 = 1.48; 2 + 4 = 6 rolls; a = 4 + 3 - 1.48 = 5.52 < reserve
#     2 + 2 + 4 = 8: f = 0, borrows b1 = 10 at r1 = 0.05 + 0.02 * 28/40 = 0.064; debt 38,
#     coupon (1.48 + 0.064 * 10) / 38; the pool's repayment 4 + 5 = 9 a step, the pool
#     8 - 4 + 10 = 14; amortising 18 - 2 = 16; cash 5.52.
I1 = C1 * D1
A1 = (A0 + B0 - 10.0) + 3.0 - I1
B1, R1 = 10.0, 0.05 + 0.02 * D1 / 40.0
D2 = D1 + B1
C2 = (C1 * D1 + R1 * B1) / D2
I2 = C2 * D2  # interest at t2 = 1.48 + 0.64 = 2.12


def test_borrowing_when_open_sets_debt_coupon_and_the_ladder():
    M = model([LAB, BORROWER])
    assert M.new_debt_steps == 2
    states = walk(M, [[SHUT, OPEN]] * 4)
    st, rec = states[1]  # after t0
    assert B0 == pytest.approx(8.0, rel=1e-12)
    assert st.debt[1] == approx(D1) and st.coupon[1] == approx(C1)
    assert st.cash[1] == approx(4.0) and rec.new_debt[1] == approx(B0)
    # the new debt is its own pool on its ladder; the old schedule is untouched by it
    assert st.amort_new[1] == approx(B0 / 2.0) and st.new_out[1] == approx(B0)
    assert st.amortising[1] == approx(20.0 - 2.0)
    assert st.capex_book[1] == approx(10.0) and st.k_hist[1, 0] == approx(10.0)
    st, rec = states[2]  # after t1: the coupon is the debt-weighted average
    assert I1 == pytest.approx(1.48, rel=1e-12) and A1 == pytest.approx(5.52, rel=1e-12)
    assert st.debt[1] == approx(D2) and st.coupon[1] == approx(C2)
    assert st.cash[1] == approx(A1) and rec.new_debt[1] == approx(B0 + B1)
    assert st.amort_new[1] == approx((B0 + B1) / 2.0)
    assert st.amortising[1] == approx(20.0 - 2.0 - 2.0)
    assert st.new_out[1] == approx(B0 - B0 / 2.0 + B1)  # its ladder paid (rolled) B0/2, then B1 issued
    # t2 (open): the amortisation 2 + 9 = 11 rolls; interest I2; a = 5.52 + 3 - 2.12 = 6.4 <
    #     reserve 2 + 2 + 9 = 13: f = 0, borrows 10 at 0.05 + 0.02 * 38/40; cash 6.4
    st, rec = states[3]
    r2 = 0.05 + 0.02 * D2 / 40.0
    assert st.debt[1] == approx(D2 + 10.0)
    assert st.coupon[1] == approx((C2 * D2 + r2 * 10.0) / (D2 + 10.0))
    assert rec.new_debt[1] == approx(B0 + B1 + 10.0) and st.cash[1] == approx(A1 + 3.0 - I2)
    assert st.amort_new[1] == approx((B0 + B1 + 10.0) / 2.0)
    assert st.new_out[1] == approx(B0 - B0 / 2.0 + B1 - (B0 + B1) / 2.0 + 10.0)
    assert rec.default_step[1] == -1


def test_new_debt_amortisation_is_due_in_cash_when_the_market_shuts():
    """As above, but the market shuts at t2: the amortisation 2 + the new debt's 9 is due in
    cash with interest I2: el = 2.12 + 11 = 13.12 > e = 5.52 + 3 = 8.52 -> liquidity default
    (with the old amortisation alone, el = 4.12, it would pay). Nothing is borrowed or built
    (a < 0, f = 0, shut: scale 0). Exposure el + debt left 38 - 11; loss
    el - 8.52 + (1 - 0.4) * 27."""
    M = model([LAB, BORROWER])
    st, rec = walk(M, [[SHUT, OPEN], [SHUT, OPEN], [SHUT, SHUT], [SHUT, SHUT]])[3]
    due = 2.0 + (B0 + B1) / 2.0
    el = I2 + due
    assert due == pytest.approx(11.0, rel=1e-12)
    assert rec.default_step[1] == 2 and rec.default_kind[1] == K.LIQUIDITY
    assert not rec.contagious[1] and not rec.covenant_default[1]
    assert rec.exposure[1] == approx(el + D2 - due)
    assert rec.loss[1] == approx(el - (A1 + 3.0) + 0.6 * (D2 - due))
    assert rec.new_debt[1] == approx(B0 + B1)


def test_winter_widens_the_spread_and_cuts_other_capex():
    # t0 in winter: other capex 10 * (1 - 0.2) = 8; f = 2 as above, borrows 6 at
    # 0.05 + 0.02 * 20/40 + 0.03 = 0.09; coupon (1 + 0.09 * 6) / 26; cash 6 + 6 - 8 = 4
    M = model([LAB, BORROWER], regime=WINTER)
    st, rec = walk(M, [[SHUT, OPEN]] * 4)[1]
    assert rec.winter[0] == 1.0
    assert rec.new_debt[1] == approx(6.0) and st.debt[1] == approx(26.0)
    assert st.coupon[1] == approx((0.05 * 20.0 + 0.09 * 6.0) / 26.0)
    assert st.capex_book[1] == approx(8.0) and st.cash[1] == approx(4.0)


def test_winter_cut_spares_capex_tied_to_contracts():
    """Builder with ample cash (100, floor 50) and capex 10/yr; the lab pays it 10/yr in
    2026-2029 with capex_share 0.3; lead 1 step. Tied capex at t = 0.3 * A_{t+1} = 3 for
    t = 0..2 and 0 at t3 (A_4 beyond the horizon); other capex O = max(0, 10 - 3) = 7, then
    10 at t3. Boom: 10 a step, 40 in all. Winter: 3 + 0.8 * 7 = 8.6 for t0..2 and
    0.8 * 10 = 8 at t3, 33.8 in all. Built for the contract: 0.3 * A_0 = 3 at the start,
    3 + 3 * 3 = 12 at the end, in both."""
    ent = {"name": "B", "cash": 100.0, "capex": {"2026": 10.0}, "solvency_default": False}
    con = [{"name": "C", "payer": "Lab", "payee": "B", "schedule": _yearly(10.0), "cost_ratio": 0.5,
            "capex_share": 0.3}]
    boom = model([LAB, ent], contract=con)
    np.testing.assert_allclose(boom.capex_other[1], [7.0, 7.0, 7.0, 10.0], rtol=REL)
    winter = model([LAB, ent], contract=con, regime=WINTER)
    sb = walk(boom, SHUT)
    sw = walk(winter, SHUT)
    assert sb[0][0].c_built[0] == approx(3.0) and sw[0][0].c_built[0] == approx(3.0)
    assert sb[1][0].capex_book[1] == approx(10.0) and sw[1][0].capex_book[1] == approx(3.0 + 0.8 * 7.0)
    assert sb[1][0].k_hist[1, 0] == approx(7.0) and sw[1][0].k_hist[1, 0] == approx(0.8 * 7.0)
    assert sb[-1][0].capex_book[1] == approx(40.0) and sw[-1][0].capex_book[1] == approx(3 * 8.6 + 8.0)
    assert sb[-1][0].c_built[0] == approx(12.0) and sw[-1][0].c_built[0] == approx(12.0)
    assert sb[-1][1].new_debt[1] == 0.0 and sw[-1][1].new_debt[1] == 0.0


# --------------------------------------------------------------------------------------
# 3. Market shut: the plan scaled by f/P; capex paid capped at cash; tied capex cut and
#    impaired at the payer's default
# --------------------------------------------------------------------------------------
def test_shut_market_scales_the_plan_caps_it_at_cash_and_cuts_it_after_the_payers_default():
    """Yearly, horizon 3. Lab: cash 2, revenue 4, owes the builder 10/yr 2026-2028 (cost
    ratio 0.5, capex share 0.3, re-let 50% at a 20% discount after 1 year).
    Builder: cash 4 (floor 2), no debt, no outside cash flow, capex 10/yr, no market equity.
    t0 (builder's market shut): e = 4, el = delivery cost 5, due 10: a = 4 + 10 - 5 = 9,
       f = 7; plan = tied 0.3 * A_1 = 3 + other 10 - 3 = 7 -> 10; need 3, shut: every part
       scaled by 7/10 (tied 2.1, other 4.9). The lab pays 6 of 10 (liquidity default).
       Builder's cash 4 + 6 - 5 = 5 < 7 planned: pays 5, tied 5 * 0.3 = 1.5, other 3.5;
       cash 0. Built 0.3 * A_0 + 1.5 = 4.5; impairment at the lab's default
       (4.5 - 0.3 * 10) * (1 - 0.5 * (1 - 0.2)) = 0.9 (build off: 0.3 * 20 * 0.6 = 3.6).
    t1 (open): the contract is gone: no tied capex; other 7 (the schedule, whatever happens):
       a = 0, f = 0, borrow 7 at rate 0.05 (no market equity: leverage 0); pays 7; cash 0;
       its bullet (t3) falls beyond the horizon.
       New debt 7, its own pool on a 2-year ladder: 3.5 a step.
    t2 (open): re-let income 0.5 * 10 * (0.8 - 0.5) = 1.5; interest 0.35; the amortisation
       3.5 rolls: a = 1.15 < reserve 2 (no step after t2 in the horizon), f = 0; other capex
       is the whole 10 now (nothing tied: A_3 is beyond the horizon): borrows 10 more at
       0.05, pays 10; cash 1.15."""
    lab = {"name": "Lab", "kind": "lab", "cash": 2.0, "solvency_default": False}
    ent = {"name": "B", "cash": 4.0, "capex": {"2026": 10.0}, "solvency_default": False}
    con = [{"name": "C", "payer": "Lab", "payee": "B", "schedule": _yearly(10.0, last=2028), "cost_ratio": 0.5,
            "capex_share": 0.3, "relet_share": 0.5, "relet_discount": 0.2, "relet_delay": 1.0}]
    M = model([lab, ent], contract=con, years=3)
    np.testing.assert_allclose(M.capex_other[1], [7.0, 7.0, 10.0], rtol=REL)
    s = walk(M, [[SHUT, SHUT], [SHUT, OPEN], [SHUT, OPEN]])
    st, rec = s[1]
    assert rec.default_step[0] == 0 and rec.default_step[1] == -1
    assert st.cash[1] == approx(0.0)
    assert st.capex_book[1] == approx(5.0)
    assert st.k_hist[1, 0] == approx(3.5)
    assert st.c_built[0] == approx(4.5)
    assert st.impairment[1] == approx((4.5 - 3.0) * (1.0 - 0.5 * 0.8))
    assert rec.lost_backlog[1] == approx(20.0)
    assert rec.new_debt[1] == 0.0
    st, rec = s[2]
    assert st.c_built[0] == approx(4.5)  # cut: nothing more built for a defaulted payer
    assert rec.new_debt[1] == approx(7.0) and st.debt[1] == approx(7.0) and st.coupon[1] == approx(0.05)
    assert st.k_hist[1, 1] == approx(7.0) and st.capex_book[1] == approx(12.0) and st.cash[1] == approx(0.0)
    assert st.amort_new[1] == approx(3.5) and st.new_out[1] == approx(7.0) and st.amortising[1] == 0.0
    st, rec = s[3]
    assert st.cash[1] == approx(1.5 - 0.35) and st.capex_book[1] == approx(22.0)
    assert st.k_hist[1, 2] == approx(10.0) and rec.new_debt[1] == approx(17.0)
    assert st.debt[1] == approx(17.0) and st.coupon[1] == approx(0.05)
    assert st.new_out[1] == approx(7.0 - 3.5 + 10.0) and st.amort_new[1] == approx(3.5 + 5.0)
    assert st.c_built[0] == approx(4.5) and rec.default_step[1] == -1


def test_shut_market_with_receipts_in_full_builds_f_exactly():
    # the same builder, the lab able to pay (cash 100): t0 shut, plan 10 scaled to f = 7
    # (tied 2.1, other 4.9), paid in full; cash 9 - 7 = 2 = the floor
    ent = {"name": "B", "cash": 4.0, "capex": {"2026": 10.0}, "solvency_default": False}
    con = [{"name": "C", "payer": "Lab", "payee": "B", "schedule": _yearly(10.0, last=2028), "cost_ratio": 0.5,
            "capex_share": 0.3}]
    st, rec = walk(model([LAB, ent], contract=con, years=3), SHUT)[1]
    assert st.cash[1] == approx(2.0)
    assert st.capex_book[1] == approx(7.0)
    assert st.k_hist[1, 0] == approx(4.9)
    assert st.c_built[0] == approx(3.0 + 2.1)
    assert rec.new_debt[1] == 0.0 and st.debt[1] == 0.0


def test_the_reserve_keeps_next_years_principal_and_rent():
    """Half-year steps, horizon 2 (T = 4). Builder: cash 20 (floor 0.5 * 20 = 10), no cash
    flow, leases 2/yr (1 a step), debt 3 at 0% all due as a bullet in 2027 (t2; market shut:
    paid in cash), capex 10/yr (5 a step). Reserve at t = 10 + bullets and leases due at
    t+1 .. t+2 (u < T):
      t0: a = 20 - 1 = 19, reserve 10 + (0 + 1) + (3 + 1) = 15, f = 4 < 5: shut, builds 4;
          cash 15
      t1: a = 15 - 1 = 14, reserve 10 + (3 + 1) + (0 + 1) = 15: f = 0; cash 14
      t2: a = 14 - 3 - 1 = 10, reserve 10 + 1 = 11: f = 0; cash 10
      t3: a = 10 - 1 = 9, reserve 10: f = 0; cash 9.
    (With the floor alone it would build 5, 4, 0, 0.)"""
    M = model([LAB, {"name": "B", "cash": 20.0, "leases": {"2026": 2.0}, "debt": 3.0, "rate": 0.0,
                     "maturities": {"2027": 3.0}, "capex": {"2026": 10.0}, "solvency_default": False}],
              spy=2, years=2)
    s = walk(M, SHUT)
    assert [x[0].cash[1] for x in s[1:]] == [approx(15.0), approx(14.0), approx(10.0), approx(9.0)]
    assert [x[0].capex_book[1] for x in s[1:]] == [approx(4.0)] * 4
    assert s[-1][1].new_debt[1] == 0.0 and s[-1][1].default_step[1] == -1


def test_impairment_counts_only_capex_built_ahead_for_undelivered_steps():
    """Yearly, horizon 6, lead 2 years. The lab pays the builder 10/yr 2026-2031 (capex
    share 0.3, re-let 50% at 20% off): cash 16 + 4/yr: pays at t0 (20 -> 10) and t1
    (14 -> 4), defaults at t2 (8 < 10). Built at the start 0.3 * (A_0 + A_1) = 6; then
    0.3 * A_{t+2} = 3 at t0, t1 and t2 (the payer is still alive when t2's plan is made):
    15. Delivered to t2: 30, so the impairment is (15 - 0.3 * 30) * 0.6 = 3.6 (build off:
    0.3 * the backlog 30 * 0.6 = 5.4). Nothing more is built after the default. The builder
    has a capex schedule of 3/yr (only builders build), all of it tied until t3."""
    lab = {"name": "Lab", "kind": "lab", "cash": 16.0, "solvency_default": False}
    ent = {"name": "B", "cash": 100.0, "capex": {"2026": 3.0}, "solvency_default": False}
    con = [{"name": "C", "payer": "Lab", "payee": "B", "schedule": _yearly(10.0, last=2031), "cost_ratio": 0.5,
            "capex_share": 0.3, "relet_share": 0.5, "relet_discount": 0.2, "relet_delay": 1.0}]
    M = model([lab, ent], build={"lead": 2.0}, contract=con, years=6)
    np.testing.assert_allclose(M.capex_other[1], [0.0, 0.0, 0.0, 0.0, 3.0, 3.0], rtol=REL)
    assert M.build_lead == 2
    s = walk(M, SHUT)
    assert s[0][0].c_built[0] == approx(6.0)
    assert [x[0].c_built[0] for x in s[1:4]] == [approx(9.0), approx(12.0), approx(15.0)]
    st, rec = s[3]
    assert rec.default_step[0] == 2
    assert st.impairment[1] == approx((15.0 - 0.3 * 30.0) * (1.0 - 0.5 * 0.8))
    assert s[4][0].c_built[0] == approx(15.0) and s[4][0].capex_book[1] == approx(9.0)
    # t3: other capex 0 (the schedule is net of the tied capex planned, whatever happens);
    # t4, t5: 3 each
    assert s[-1][0].c_built[0] == approx(15.0) and s[-1][0].capex_book[1] == approx(15.0)
    assert s[-1][0].impairment[1] == approx(3.6)
    # a payee without a capex schedule does not build: the old rule, capex share x backlog
    # 30 x 0.6 = 5.4
    M = model([lab, {k: v for k, v in ent.items() if k != "capex"}], build={"lead": 2.0}, contract=con, years=6)
    st, rec = walk(M, SHUT)[3]
    assert rec.default_step[0] == 2 and st.capex_book[1] == 0.0
    assert st.impairment[1] == approx(0.3 * 30.0 * (1.0 - 0.5 * 0.8))


# --------------------------------------------------------------------------------------
# 4. Leases: outside obligations; one it cannot pay is a liquidity default
# --------------------------------------------------------------------------------------
def test_leases_are_paid_each_step_and_the_last_year_is_held():
    # cash 5, ocf 3, leases 1 in 2026 and 2 from 2027 (held to 2029): cash 7, 8, 9, 10
    M = model([LAB, {"name": "B", "cash": 5.0, "ocf": 3.0, "leases": {"2026": 1.0, "2027": 2.0},
                     "solvency_default": False}])
    np.testing.assert_allclose(M.lease[1], [1.0, 2.0, 2.0, 2.0], rtol=REL)
    s = walk(M, SHUT)
    assert [x[0].cash[1] for x in s[1:]] == [approx(7.0), approx(8.0), approx(9.0), approx(10.0)]
    assert s[-1][1].default_step[1] == -1


def test_a_lease_it_cannot_pay_is_a_liquidity_default():
    # leases 1 then 12: at t1 e = 7 + 3 = 10 < 12 -> liquidity default, pays 10 of 12;
    # outside creditors (the lessor) lose 2; exposure 12 (no debt); fundamental
    M = model([LAB, {"name": "B", "cash": 5.0, "ocf": 3.0, "leases": {"2026": 1.0, "2027": 12.0},
                     "solvency_default": False}])
    st, rec = walk(M, SHUT)[2]
    assert rec.default_step[1] == 1 and rec.default_kind[1] == K.LIQUIDITY
    assert not rec.contagious[1] and not rec.covenant_default[1]
    assert rec.exposure[1] == approx(12.0) and rec.loss[1] == approx(2.0)


# --------------------------------------------------------------------------------------
# 5. The LTV covenant: asset sales, then default; fundamental or contagious
# --------------------------------------------------------------------------------------
# Holder: holdings 50 (marked at S^beta = 1), 20% of the lab (0.2 * 100 = 20), debt 40 at
# 0% amortising over 10 years (rolls: refi_prob 1), ocf 1, no capex, LTV max 0.35.
HOLDER = {"name": "H", "kind": "investor", "cash": 0.0, "ocf": 1.0, "debt": 40.0, "rate": 0.0,
          "refi_prob": 1.0, "holdings": 50.0, "ltv_max": 0.35, "book_equity": 100.0}
STAKE = [{"holder": "H", "issuer": "Lab", "share": 0.2}]
# t0: cash 1, N = 40 - 1 = 39, H = 50 + 20 = 70 > N / 0.35: breach; sells
# x = (39 - 0.35 * 70) / (1 - 0.1 - 0.35) = 14.5 / 0.55, repays 0.9 x; then
# N' = 0.35 (70 - x) <= 0.5 (70 - x): no default.
X_SALE = (39.0 - 0.35 * 70.0) / (1.0 - 0.1 - 0.35)


def test_ltv_breach_sells_holdings_and_repays_debt():
    M = model([LAB, HOLDER], stake=STAKE, years=2)
    s = walk(M, OPEN)
    st, rec = s[1]
    assert rec.breach_step[1] == 0 and rec.sold[1] == approx(X_SALE)
    assert st.debt[1] == approx(40.0 - 0.9 * X_SALE)
    assert st.amortising[1] == approx(40.0 - 4.0 - 0.9 * X_SALE)  # taken off the amortising part
    assert st.h_frac[1] == approx(1.0 - X_SALE / 50.0) and st.h_sold[1] == approx(X_SALE)
    assert st.cash[1] == approx(1.0)
    assert rec.default_step[1] == -1 and not rec.covenant_default[1]
    # t1: cash 2, N = 38 - 0.9 x, H = 70 - x: N - 0.35 H = 13.5 - 0.55 x = -1 < 0, no sale
    st, rec = s[2]
    assert rec.sold[1] == approx(X_SALE) and rec.breach_step[1] == 0
    assert st.debt[1] == approx(40.0 - 0.9 * X_SALE) and st.cash[1] == approx(2.0)


def test_ltv_sale_costs_book_equity_its_discount():
    # book equity after t0: b0 + cash 1 + debt repaid 0.9 x - holdings sold x
    # = b0 + 1 - 0.1 x = b0 - 1.63636...: b0 = 1.7 survives, b0 = 1.6 is insolvent
    assert 1.6 < 0.1 * X_SALE - 1.0 < 1.7
    ok = walk(model([LAB, {**HOLDER, "book_equity": 1.7}], stake=STAKE, years=1), OPEN)[1][1]
    bad = walk(model([LAB, {**HOLDER, "book_equity": 1.6}], stake=STAKE, years=1), OPEN)[1][1]
    assert ok.default_step[1] == -1
    assert bad.default_step[1] == 0 and bad.default_kind[1] == K.SOLVENCY and not bad.covenant_default[1]


def test_ltv_covenant_default_when_sales_cannot_cure_it_is_fundamental():
    """Holdings 10, the stake 20, debt 40, no cash flow: H = 30, N = 40 > 0.35 * 30:
    x = min(10, 29.5 / 0.55) = 10 (all sold), debt 40 - 9 = 31 > 0.5 * 20: covenant
    default at t0, kind liquidity; nothing lost to others: fundamental. Its cash (0) goes to
    its creditors as for an insolvent entity: exposure 31, loss (1 - 0.4) * 31."""
    h = {**HOLDER, "holdings": 10.0, "ocf": 0.0}
    M = model([LAB, h], stake=STAKE, years=2)
    st, rec = walk(M, OPEN)[1]
    assert rec.breach_step[1] == 0 and rec.sold[1] == approx(10.0)
    assert rec.default_step[1] == 0 and rec.default_kind[1] == K.LIQUIDITY
    assert rec.covenant_default[1] and not rec.contagious[1]
    assert rec.exposure[1] == approx(31.0) and rec.loss[1] == approx(0.6 * 31.0)
    stats, _, _ = simulate(M, 8, 3, chunk_size=4, threads=1)  # every path is this one
    assert list(stats.covenant_default) == [0, 8] and list(stats.breached) == [0, 8]
    assert list(stats.kind_count[1]) == [0, 8, 0]
    assert stats.sold_sum[1] == approx(80.0) and stats.new_debt_sum[1] == 0.0


def test_ltv_covenant_default_after_losing_a_stake_is_contagious():
    """The lab owes a bullet of 10 in 2026 with no cash (revenue 4, market shut): liquidity
    default at t0; its holder's stake (0.2 * 100 = 20) is written off. Holder: holdings 5,
    debt 8, no cash flow, book equity 100. t0: H = 25, N = 8 <= 0.35 * 25 = 8.75, no breach.
    t1: H = 5, N = 8 > 1.75: sells x = min(5, 6.25 / 0.55) = 5, debt 3.5 > 0.5 * 0 ->
    covenant default. With the lost stake added back H = 20 and 3.5 <= 0.5 * 20 (and with
    it there would have been no breach at all: 8 <= 8.75): contagious. Loss 0.6 * 3.5."""
    lab = {"name": "Lab", "kind": "lab", "cash": 0.0, "debt": 10.0, "rate": 0.0, "maturities": {"2026": 10.0},
           "solvency_default": False}
    h = {**HOLDER, "holdings": 5.0, "ocf": 0.0, "debt": 8.0}
    M = model([lab, h], stake=STAKE, years=2)
    s = walk(M, [[SHUT, OPEN]] * 2)
    st, rec = s[1]
    assert rec.default_step[0] == 0 and rec.breach_step[1] == -1 and st.stake_lost[1] == approx(20.0)
    st, rec = s[2]
    assert rec.breach_step[1] == 1 and rec.sold[1] == approx(5.0)
    assert rec.default_step[1] == 1 and rec.default_kind[1] == K.LIQUIDITY and rec.covenant_default[1]
    assert rec.contagious[1]
    assert rec.exposure[1] == approx(3.5) and rec.loss[1] == approx(0.6 * 3.5)


def test_ltv_uses_marked_holdings_and_stakes_and_is_tested_after_capex():
    """Winter from t0 with a sentiment jump ln 0.5 (S = 0.5). Holder: holdings 50 with
    equity beta 2 (marked 50 * 0.5^2 = 12.5), 20% of the lab (marked 0.2 * 10 * 4 * 0.5 = 4
    at the winter multiple 10): H = 16.5. Debt 12 at 0%, a bullet in 2028 (nothing due in
    the reserve's year), cash 10, no cash flow, capex 20/yr, cash floor 0, market shut (u 0.75 > 0.5): the
    plan is cut to f = 10 and paid, cash 0. Then N = 12 > 0.35 * 16.5 = 5.775: it sells
    x = (12 - 5.775) / 0.55 (<= 12.5), repays 0.9 x, h = 1 - x / 12.5; afterwards
    N' = 12 - 0.9 x <= 0.5 (16.5 - x): no default. Without capex N = 12 - 10 = 2: no breach.
    The holdings move with `holdings_beta` (default: the equity beta)."""
    regime = {**WINTER, "sentiment_jump": math.log(0.5)}
    h = {**HOLDER, "cash": 10.0, "ocf": 0.0, "debt": 12.0, "maturities": {"2028": 12.0}, "refi_prob": 0.5,
         "equity_beta": 2.0, "capex": {"2026": 20.0}}
    hs, hh = 50.0 * 0.5 ** 2, 50.0 * 0.5 ** 2 + 0.2 * 10.0 * 4.0 * 0.5
    M = model([LAB, h], build={"cash_floor": 0.0}, regime=regime, stake=STAKE, years=3)
    st, rec = walk(M, [[SHUT, SHUT]] * 3)[1]
    x = (12.0 - 0.35 * hh) / (1.0 - 0.1 - 0.35)
    assert 0.0 < x <= hs and 12.0 - 0.9 * x <= 0.5 * (hh - x)
    assert st.capex_book[1] == approx(10.0) and st.cash[1] == approx(0.0)
    assert rec.breach_step[1] == 0 and rec.sold[1] == approx(x)
    assert st.debt[1] == approx(12.0 - 0.9 * x)
    assert st.h_frac[1] == approx(1.0 - x / hs) and st.h_sold[1] == approx(x)
    assert rec.default_step[1] == -1 and rec.new_debt[1] == 0.0
    # holdings with their own asset beta 1 (the equity beta 2 no longer applies to them):
    # H^s = 50 * 0.5 = 25, H = 29, x = (12 - 0.35 * 29) / 0.55
    M = model([LAB, {**h, "holdings_beta": 1.0}], build={"cash_floor": 0.0}, regime=regime, stake=STAKE, years=3)
    st, rec = walk(M, [[SHUT, SHUT]] * 3)[1]
    x = (12.0 - 0.35 * 29.0) / (1.0 - 0.1 - 0.35)
    assert rec.sold[1] == approx(x) and st.h_frac[1] == approx(1.0 - x / 25.0)
    assert st.debt[1] == approx(12.0 - 0.9 * x)
    no_capex = {k: v for k, v in h.items() if k != "capex"}
    M = model([LAB, no_capex], build={"cash_floor": 0.0}, regime=regime, stake=STAKE, years=3)
    st, rec = walk(M, [[SHUT, SHUT]] * 3)[1]
    assert rec.breach_step[1] == -1 and rec.sold[1] == 0.0 and st.debt[1] == approx(12.0)


# --------------------------------------------------------------------------------------
# 6. The coverage covenant: two consecutive calendar years below coverage_min x interest
# --------------------------------------------------------------------------------------
def _coverage_model(g, years=3):
    """Half-year steps. Lender: cash 5, ocf 2/yr growing at g (vol 0), debt 20 at 10%
    (interest 1 a step, 2 a year; it rolls over), coverage_min 1.5 -> a year needs cash
    flow >= 3. Cash flow of year y: 2 * 0.5 * (e^{g (2y+1) 0.5} + e^{g (2y+2) 0.5})."""
    return model([LAB, {"name": "W", "cash": 5.0, "ocf": 2.0, "ocf_growth": g, "debt": 20.0, "rate": 0.1,
                        "refi_prob": 1.0, "coverage_min": 1.5, "solvency_default": False}], spy=2, years=years)


def _year_cf(g, y):
    return 2.0 * 0.5 * (math.exp(g * (2 * y + 1) * 0.5) + math.exp(g * (2 * y + 2) * 0.5))


def test_two_bad_years_are_a_coverage_default_at_the_second_year_end():
    # g = 0: cash flow 2 < 3 in 2026 and 2027: breach found at t1, default at t3 (kind
    # liquidity, fundamental: no network); cash stays 5 (1 in, 1 interest a step);
    # exposure 20, loss 0.6 * (20 - 5)
    M = _coverage_model(0.0)
    s = walk(M, OPEN)
    assert s[2][1].breach_step[1] == 1 and s[2][1].default_step[1] == -1
    assert s[3][1].default_step[1] == -1
    st, rec = s[4]
    assert rec.default_step[1] == 3 and rec.default_kind[1] == K.LIQUIDITY
    assert rec.covenant_default[1] and not rec.contagious[1]
    assert rec.exposure[1] == approx(20.0) and rec.loss[1] == approx(0.6 * 15.0)
    stats, _, _ = simulate(M, 6, 4, chunk_size=3, threads=1)
    assert list(stats.covenant_default) == [0, 6] and list(stats.breached) == [0, 6]


def test_one_bad_year_then_a_good_one_is_no_default():
    # g = 0.3: 2026's cash flow e^0.15 + e^0.3 = 2.51 < 3 (breach), 2027's e^0.45 + e^0.6 =
    # 3.39 >= 3 (the count restarts), 2028's higher still: no default
    g = 0.3
    assert _year_cf(g, 0) < 3.0 <= _year_cf(g, 1) <= _year_cf(g, 2)
    s = walk(_coverage_model(g), OPEN)
    st, rec = s[-1]
    assert rec.breach_step[1] == 1
    assert rec.default_step[1] == -1 and not rec.covenant_default[1]
    assert st.cov_low[1] == 0
    # the year sums restart at each year end; mid-year they hold the year so far
    st, _ = s[3]  # after t2, the first step of 2027
    assert st.cov_cf[1] == approx(2.0 * 0.5 * math.exp(g * 1.5))
    assert st.cov_int[1] == approx(1.0)


def test_coverage_counts_contract_margins_in_the_cash_flow():
    """docs/model.md 6d: the cash flow of the coverage test is the net outside cash flow of
    the clearing, contract margins included. Lender with no outside cash flow, paid 10/yr
    by the lab (delivery cost 5/yr): margin 5 >= 1.5 * interest 2 = 3 each year -> never a
    breach (delivery costs without the receipts would be -5 < 3: a default in 2027)."""
    con = [{"name": "C", "payer": "Lab", "payee": "W", "schedule": _yearly(10.0, last=2028), "cost_ratio": 0.5,
            "capex_share": 0.0}]
    M = model([LAB, {"name": "W", "cash": 5.0, "debt": 20.0, "rate": 0.1, "refi_prob": 1.0, "coverage_min": 1.5,
                     "solvency_default": False}], contract=con, years=3)
    st, rec = walk(M, OPEN)[-1]
    assert rec.breach_step[1] == -1 and rec.default_step[1] == -1


def test_coverage_default_caused_by_a_payers_default_is_contagious():
    """Yearly. The lab (cash 6, revenue 4) pays the lender 10 in 2026, 4 of 10 in 2027
    (liquidity default), then nothing. Lender: no outside cash flow, delivery cost 5/yr,
    debt 20 at 10% (interest 2), coverage_min 1.5 (needs 3), no re-letting.
      2026: margin 10 - 5 = 5 >= 3.
      2027: 4 - 5 = -1 < 3: breach (unpaid 6 is a network shortfall).
      2028: contract ended: cash flow 0 < 3: second breach -> covenant default at t2.
    With the year's shortfall (margin lost 5) added back: 5 >= 3: contagious."""
    lab = {"name": "Lab", "kind": "lab", "cash": 6.0, "solvency_default": False}
    con = [{"name": "C", "payer": "Lab", "payee": "W", "schedule": _yearly(10.0), "cost_ratio": 0.5,
            "capex_share": 0.0, "relet_share": 0.0}]
    M = model([lab, {"name": "W", "cash": 5.0, "debt": 20.0, "rate": 0.1, "refi_prob": 1.0, "coverage_min": 1.5,
                     "solvency_default": False}], contract=con)
    s = walk(M, OPEN)
    assert s[2][1].default_step[0] == 1
    assert s[2][1].breach_step[1] == 1 and s[2][1].default_step[1] == -1
    st, rec = s[3]
    assert rec.default_step[1] == 2 and rec.covenant_default[1] and rec.default_kind[1] == K.LIQUIDITY
    assert rec.contagious[1]


# --------------------------------------------------------------------------------------
# 7. Common random numbers: more capex never brings a partner's default later
# --------------------------------------------------------------------------------------
def test_more_capex_with_the_market_shut_never_delays_a_default():
    """The stochastic twin web with [build] on (cash floor 0), Oracle's market shut for new
    debt and refinancing (refi_prob 0: an open market has probability ~1e-12 a step) and no
    capex tied to its contract (capex_share 0). Then, path by path on the same shocks, more
    capex only spends more of Oracle's cash: its debt, interest, refinancing draws and book
    equity (capex is capitalised at cost) are the same, its cash never higher; the rest of
    the web sees Oracle only through its payments, made in full until it defaults. So a
    larger capex can only bring Oracle's default forward, never delay it.
    (Why these restrictions: with the market open, capex is borrowed before the clearing and
    the borrowed cash can pay other bills, so more capex can avert a liquidity default;
    with tied capex scaled down by a shut market, less is built for the contract and less
    is written off at the payer's default, so book equity can be higher with more capex.
    Oracle's bullet maturities are removed so that its defaults turn on its cash, not on two
    walls every run meets alike; a capex schedule of 0 still makes it a builder.)"""
    def oracle_defaults(capex):
        d = copy.deepcopy(STRESSED)
        d["build"] = {"enabled": True, "cash_floor": 0.0, "lead": 0.5}
        for e in d["entity"]:
            if e["name"] == "Oracle":
                e["refi_prob"] = 0.0
                e["maturities"] = {}  # no bullet walls: its defaults then depend on its cash
                e["capex"] = {2026: capex}
        for c in d["contract"]:
            if c["payee"] == "Oracle":
                c["capex_share"] = 0.0
        M = compile_scenario(scenario_from_dict(d))
        o = [e["name"] for e in d["entity"]].index("Oracle")
        return np.array([r.default_step[o] if r.default_step[o] >= 0 else M.n_steps
                         for _, r in replay(M, 300, 17)])

    d0, d20, d60 = oracle_defaults(0.0), oracle_defaults(20.0), oracle_defaults(60.0)
    assert (d20 <= d0).all() and (d60 <= d20).all()
    assert (d60 < d0).sum() >= 10  # capex does bring defaults forward: the check is not vacuous


# --------------------------------------------------------------------------------------
# Distress, the end of a ladder, and what the scenario checks refuse
# --------------------------------------------------------------------------------------
def test_no_building_or_borrowing_to_build_when_it_cannot_meet_the_step():
    """Yearly. Builder: cash 1, no outside cash flow, leases 5/yr, capex 10/yr, market open.
    t0: el = lease 5 > e = 1, so a = 1 - 5 = -4 < 0: it neither builds nor borrows (an open
    market lends for capex, not to pay the rent), and it defaults on the lease (liquidity)."""
    ent = {"name": "B", "cash": 1.0, "leases": {"2026": 5.0}, "capex": {"2026": 10.0}, "solvency_default": False}
    st, rec = walk(model([LAB, ent]), [[SHUT, OPEN]] * 4)[1]
    assert rec.new_debt[1] == 0.0 and st.capex_book[1] == 0.0
    assert rec.default_step[1] == 0 and rec.default_kind[1] == K.LIQUIDITY


def test_the_new_debt_ladder_ends_when_its_pool_is_repaid():
    """Yearly, horizon 4. Builder: cash 20 (floor 10), no debt, capex 14 in 2026 and 0 after,
    new debt over 2 years at rate 0.05 (no market equity: no leverage spread).
    t0 (open): a = 20, reserve 10, f = 10: borrows 4; pool 4, repaid 2 a step; cash 20 + 4 - 14 = 10.
    t1 (shut): interest 0.2, the ladder's 2 due in cash: cash 7.8, pool 2.
    t2 (shut): interest 0.1, 2 due: cash 5.7, pool 0: the ladder ends (repayment 0).
    t3: nothing due, no debt: cash stays 5.7."""
    ent = {"name": "B", "cash": 20.0, "capex": {"2026": 14.0, "2027": 0.0}, "solvency_default": False}
    s = walk(model([LAB, ent]), [[SHUT, OPEN], [SHUT, SHUT], [SHUT, SHUT], [SHUT, SHUT]])
    assert s[1][0].new_out[1] == approx(4.0) and s[1][0].amort_new[1] == approx(2.0) and s[1][0].cash[1] == approx(10.0)
    assert s[2][0].cash[1] == approx(10.0 - 0.2 - 2.0) and s[2][0].new_out[1] == approx(2.0)
    assert s[3][0].cash[1] == approx(10.0 - 0.2 - 2.0 - 0.1 - 2.0)
    assert s[3][0].new_out[1] == 0.0 and s[3][0].amort_new[1] == 0.0 and abs(s[3][0].debt[1]) < 1e-12
    assert s[4][0].cash[1] == approx(5.7) and s[4][1].default_step[1] == -1


@pytest.mark.parametrize("entity, build, message", [
    ({"name": "B", "capex": {"2031": 5.0}}, {}, "capex year 2031 is outside the horizon"),
    ({"name": "B", "leases": {"2025": 5.0}}, {}, "leases year 2025 is outside the horizon"),
    ({"name": "B", "ltv_max": 0.45}, {"sale_discount": 0.6, "ltv_default": 0.5}, "must be below 1"),
    ({"name": "B", "ltv_max": 0.45}, {"ltv_default": 0.4}, "above build.ltv_default"),
    ({"name": "Lab", "kind": "lab", "capex": {"2026": 5.0}}, {}, "not modelled for the lab"),
])
def test_scenario_checks_refuse_what_build_cannot_mean(entity, build, message):
    from sim.scenario.errors import ScenarioError

    d = copy.deepcopy(QUIET)
    d["name"] = "build-checks"
    d["time"] = {"start_year": 2026, "steps_per_year": 1, "horizon_years": 4}
    ents = [LAB, {"name": "B"}] if entity["name"] == "B" else [entity, {"name": "B"}]
    if entity["name"] == "B":
        ents[1] = entity
    d["entity"] = [{**QUIET_ENTITY, **e} for e in ents]
    d["build"] = {**BUILD, **build}
    with pytest.raises(ScenarioError, match=message):
        scenario_from_dict(d)
