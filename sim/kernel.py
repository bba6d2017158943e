"""The numba kernels: one simulation period, one path, one chunk of paths.

Plain functions on arrays. Configuration arrives as `ModelArrays`; the mutable per-path
state, the per-step scratch, the per-path record and the per-chunk statistics are named
tuples of arrays that the Python layer (sim.engine) allocates once per chunk, so nothing
is allocated inside the hot loop. The equations are documented in docs/model.md.

Random numbers: each path draws its shocks for all steps up front, in a fixed order, from
the chunk's own Generator (`draw_path_shocks`), whatever happens on the path; so two
scenarios run with the same seed see the same shocks path by path (common random numbers),
and `step` can be replayed on hand-made shocks.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numba import njit

from .clearing import all_can_pay, clearing_vector

# Fixed histogram grids (log-spaced) for streaming quantiles; bin 0 holds exact zeros.
REV_LO, REV_HI, REV_BINS = 1e-2, 1e5, 1400  # lab revenue, $B/yr
NEED_LO, NEED_HI, NEED_BINS = 1e-3, 1e4, 1400  # funding need per step, $B
LOSS_LO, LOSS_HI, LOSS_BINS = 1e-3, 1e5, 1600  # total losses to outside creditors per path, $B

LIQUIDITY, SOLVENCY = 1, 2


class State(NamedTuple):
    """Per-path state, reset at the start of each path."""
    sc: np.ndarray  # [log revenue, log sentiment, winter flag (0/1), unused]
    cash: np.ndarray  # (n,)
    debt: np.ndarray  # (n,)
    amortising: np.ndarray  # (n,) part of the outside debt still on its amortisation schedule
    loan_out: np.ndarray  # (l,) outstanding principal of each network loan
    log_ocf: np.ndarray  # (n,) log of outside cash flow relative to its start
    alive: np.ndarray  # (n,) bool
    share: np.ndarray  # (n, n) stakes held, holder x issuer
    stake0: np.ndarray  # (n,) marked stakes at the start (book equity counts changes from it)
    impairment: np.ndarray  # (n,) cumulative write-offs of capacity built for defaulted payers
    net_shortfall: np.ndarray  # (n,) cumulative cash the network did not deliver (for ELS)
    stake_lost: np.ndarray  # (n,) stakes and loans written off through others' defaults (for ELS)
    c_active: np.ndarray  # (m,) bool
    c_paid: np.ndarray  # (m,) cumulative payments made on each contract
    c_relet: np.ndarray  # (m,) int: step from which lost capacity is re-let, -1 if none
    t_ok: np.ndarray  # (q,) bool: the tranche's outside condition holds on this path
    t_done: np.ndarray  # (q,) bool: paid (or attempted) already


class Scratch(NamedTuple):
    """Per-step work arrays."""
    L: np.ndarray  # (n, n) obligations due this step
    e: np.ndarray  # (n,) outside assets available this step
    el: np.ndarray  # (n,) due to outside creditors this step
    net_out: np.ndarray  # (n,) outside cash flow this step (may be negative)
    principal: np.ndarray  # (n,) principal due in cash this step
    scheduled: np.ndarray  # (n,) amortisation scheduled this step (paid or rolled over)
    p: np.ndarray  # (n,) clearing payments
    dflt: np.ndarray  # (n,) bool, defaulted in the clearing
    work: np.ndarray  # (n, n + 4) clearing workspace
    equity: np.ndarray  # (n,) market equity this step
    receipts: np.ndarray  # (n,)
    pending: np.ndarray  # (q,) bool tranches due this step
    new: np.ndarray  # (n,) bool: defaults found this step not yet processed
    shortfall_now: np.ndarray  # (n,) network shortfall this step (lost margin + unpaid receivables)
    margin_lost: np.ndarray  # (n,) margin lost this step on contracts ended by payers' defaults


class Record(NamedTuple):
    """What one path produced (consumed by `accumulate`)."""
    default_step: np.ndarray  # (n,) int, -1 if no default
    default_kind: np.ndarray  # (n,) int: LIQUIDITY or SOLVENCY
    contagious: np.ndarray  # (n,) bool
    loss: np.ndarray  # (n,) losses to outside creditors caused by each entity's default
    exposure: np.ndarray  # (n,) outside claims on it when it defaulted
    lost_backlog: np.ndarray  # (n,) contract value it lost as payee to payers' defaults
    revenue: np.ndarray  # (n_steps,) lab's annualised revenue
    need: np.ndarray  # (n_steps,) lab's need for new outside funding (before raising), $B
    gap: np.ndarray  # (n_steps,) lab's unfunded gap (after raising), $B
    winter: np.ndarray  # (n_steps,) 1.0 where the path is in AI winter
    diag: np.ndarray  # [max relative conservation error, clearings, rounds]


class Stats(NamedTuple):
    """Per-chunk statistics: sums and counts, reduced across chunks in chunk order."""
    n_paths: np.ndarray  # (1,) int
    default_at: np.ndarray  # (n, n_steps) int
    kind_count: np.ndarray  # (n, 3) int by kind
    contagious: np.ndarray  # (n,) int
    cascade: np.ndarray  # (n + 1,) int: paths by number of defaulted entities
    loss_sum: np.ndarray  # (n,) float
    exposure_sum: np.ndarray  # (n,)
    backlog_sum: np.ndarray  # (n,)
    total_loss: np.ndarray  # (2,) sum and sum of squares of the per-path total loss
    loss_hist: np.ndarray  # (LOSS_BINS + 1,) int
    loss_hist_sum: np.ndarray  # (LOSS_BINS + 1,) float
    need_year: np.ndarray  # (years,) int: paths with need > 0 in the year (lab alive)
    gap_year: np.ndarray  # (years,) int: paths with an unfunded gap in the year
    need_sum_year: np.ndarray  # (years,) float
    rev_hist: np.ndarray  # (n_steps, REV_BINS + 1) int
    need_hist: np.ndarray  # (n_steps, NEED_BINS + 1) int
    winter: np.ndarray  # (n_steps,) int: paths in AI winter at each step
    diag: np.ndarray  # [max conservation error, clearings, rounds]


@njit(cache=True, nogil=True)
def log_bin(value, lo, hi, bins):
    """Bin index on a log grid with `bins` bins in [lo, hi]; 0 for value <= 0; clipped."""
    if not value > 0.0:
        return 0
    k = 1 + int((math.log(value) - math.log(lo)) / (math.log(hi) - math.log(lo)) * bins)
    if k < 1:
        return 1
    if k > bins:
        return bins
    return k


@njit(cache=True, nogil=True)
def draw_path_shocks(rng, shocks, tranche_u):
    """Draw one path's random numbers in a fixed order (see sim.model.n_shocks)."""
    for k in range(tranche_u.shape[0]):
        tranche_u[k] = rng.random()
    n_steps, width = shocks.shape
    n = (width - 4) // 2
    for t in range(n_steps):
        shocks[t, 0] = rng.standard_normal()
        shocks[t, 1] = rng.standard_normal()
        shocks[t, 2] = rng.random()
        shocks[t, 3] = rng.standard_normal()
        for i in range(n):
            shocks[t, 4 + 2 * i] = rng.standard_normal()
            shocks[t, 5 + 2 * i] = rng.random()


@njit(cache=True, nogil=True)
def market_equity(M, st, i):
    """Equity value of entity i at the current state (0 once it has defaulted)."""
    if not st.alive[i]:
        return 0.0
    s = math.exp(st.sc[1])
    if i == M.lab:
        mult = M.multiple_winter if st.sc[2] > 0.5 else M.multiple
        return mult * math.exp(st.sc[0]) * s
    return M.market_equity[i] * s ** M.equity_beta[i]


@njit(cache=True, nogil=True)
def stake_value(M, st, equity, i):
    """Marked value of i's stakes, given each issuer's equity value (0 once defaulted)."""
    v = 0.0
    for j in range(st.alive.shape[0]):
        if st.share[i, j] > 0.0 and st.alive[j]:
            v += st.share[i, j] * equity[j]
    return v


@njit(cache=True, nogil=True)
def reset_path(M, st, rec, tranche_u):
    n = M.cash0.shape[0]
    st.sc[0] = M.log_r0
    st.sc[1] = 0.0
    st.sc[2] = 0.0
    st.sc[3] = 0.0
    for i in range(n):
        st.cash[i] = M.cash0[i]
        st.debt[i] = M.debt0[i]
        st.amortising[i] = M.debt0[i] - M.bullet_total[i]
        st.log_ocf[i] = 0.0
        st.alive[i] = True
        st.impairment[i] = 0.0
        st.net_shortfall[i] = 0.0
        st.stake_lost[i] = 0.0
        for j in range(n):
            st.share[i, j] = M.share0[i, j]
        rec.default_step[i] = -1
        rec.default_kind[i] = 0
        rec.contagious[i] = False
        rec.loss[i] = 0.0
        rec.exposure[i] = 0.0
        rec.lost_backlog[i] = 0.0
    for i in range(n):
        st.stake0[i] = 0.0
        for j in range(n):
            if st.share[i, j] > 0.0:
                st.stake0[i] += st.share[i, j] * market_equity(M, st, j)
    for k in range(st.loan_out.shape[0]):
        st.loan_out[k] = M.l_amount[k]
    for c in range(st.c_active.shape[0]):
        st.c_active[c] = True
        st.c_paid[c] = 0.0
        st.c_relet[c] = -1
    for k in range(st.t_ok.shape[0]):
        st.t_ok[k] = tranche_u[k] < M.t_prob[k]
        st.t_done[k] = False
    for k in range(rec.diag.shape[0]):
        rec.diag[k] = 0.0


@njit(cache=True, nogil=True)
def loan_position(M, st, i):
    """Network loans i has lent minus those it owes, outstanding (change from the start)."""
    v = 0.0
    for k in range(st.loan_out.shape[0]):
        if M.l_lender[k] == i:
            v += st.loan_out[k] - M.l_amount[k]
        elif M.l_borrower[k] == i:
            v -= st.loan_out[k] - M.l_amount[k]
    return v


@njit(cache=True, nogil=True)
def book_equity(M, st, equity, i, extra_cash):
    """Book equity: start value plus retained cash, less debt added, plus the change in
    marked stakes, less impairments. `extra_cash` adds a counterfactual amount."""
    return (M.book0[i] + (st.cash[i] + extra_cash - M.cash0[i]) - (st.debt[i] - M.debt0[i])
            + (stake_value(M, st, equity, i) - st.stake0[i]) + loan_position(M, st, i) - st.impairment[i])


@njit(cache=True, nogil=True)
def step(t, M, sh, st, ws, rec):
    """Advance one path by one period (MODEL.md section 4); `sh` are this step's shocks."""
    n = M.cash0.shape[0]
    m = M.c_payer.shape[0]
    q = M.t_amount.shape[0]
    dt = M.dt
    sqdt = math.sqrt(dt)
    lab = M.lab

    # 1. regime, revenue, sentiment, outside cash flows
    entered = False
    if M.regime_on:
        if st.sc[2] < 0.5:
            if sh[2] < M.p_enter:
                st.sc[2] = 1.0
                entered = True
        elif sh[2] < M.p_exit:
            st.sc[2] = 0.0
    winter = st.sc[2] > 0.5
    if winter:
        g, vol = M.growth_winter, M.volatility_winter
    else:
        g = M.growth_inf + (M.growth0 - M.growth_inf) * 0.5 ** (t * dt / M.half_life)
        vol = M.volatility
    z_r = sh[0]
    z_s = M.rho * z_r + math.sqrt(1.0 - M.rho * M.rho) * sh[1]
    st.sc[0] += (g - 0.5 * vol * vol) * dt + vol * sqdt * z_r
    st.sc[1] = st.sc[1] * M.sent_decay + M.sent_sd * z_s
    if entered:
        st.sc[0] += M.jump_mean + M.jump_sd * sh[3]
        st.sc[1] += M.sentiment_jump
    revenue = math.exp(st.sc[0])
    sentiment = math.exp(st.sc[1])
    rec.revenue[t] = revenue
    rec.winter[t] = 1.0 if winter else 0.0

    for i in range(n):
        gi = M.ocf_growth_winter[i] if winter else M.ocf_growth[i]
        s = M.ocf_vol[i]
        load = M.ocf_loading[i]
        z = load * z_s + math.sqrt(1.0 - load * load) * sh[4 + 2 * i]
        st.log_ocf[i] += (gi - 0.5 * s * s) * dt + s * sqdt * z
        ws.net_out[i] = M.ocf0[i] * math.exp(st.log_ocf[i]) * dt if st.alive[i] else 0.0
        ws.equity[i] = market_equity(M, st, i)
        ws.shortfall_now[i] = 0.0
        ws.margin_lost[i] = 0.0
        for j in range(n):
            ws.L[i, j] = 0.0
    if st.alive[lab]:
        ws.net_out[lab] += revenue * dt * (1.0 - M.opex_share[t])

    # 2. obligations due this step: contracts (and their delivery costs), re-let income
    for c in range(m):
        a, b = M.c_payer[c], M.c_payee[c]
        amount = M.c_amount[c, t]
        if st.c_active[c]:
            ws.L[a, b] += amount
            ws.net_out[b] -= M.c_cost[c] * amount
        elif st.c_relet[c] >= 0 and st.alive[b]:
            lost = (1.0 - M.c_cost[c]) * amount  # margin the payer would have paid
            relet = 0.0
            if t >= st.c_relet[c]:
                relet = M.c_relet_share[c] * amount * ((1.0 - M.c_relet_discount[c]) - M.c_cost[c])
                ws.net_out[b] += relet
            ws.margin_lost[b] += lost - relet
            ws.shortfall_now[b] += lost - relet

    # investment tranches whose conditions hold
    for k in range(q):
        ws.pending[k] = False
        if st.t_done[k] or not st.t_ok[k] or t < M.t_first[k] or t > M.t_last[k]:
            continue
        a, b = M.t_investor[k], M.t_investee[k]
        if not (st.alive[a] and st.alive[b]):
            continue
        c = M.t_contract[k]
        if c >= 0 and st.c_paid[c] < M.t_milestone[k] - 1e-12:
            continue
        ws.pending[k] = True
        ws.L[a, b] += M.t_amount[k]

    # network loans
    for k in range(M.l_amount.shape[0]):
        a, b = M.l_borrower[k], M.l_lender[k]
        if st.alive[a] and st.alive[b] and st.loan_out[k] > 0.0:
            ws.L[a, b] += M.l_rate[k] * st.loan_out[k] * dt
            if t == M.l_maturity[k]:
                ws.L[a, b] += st.loan_out[k]

    # outside debt service, with refinancing of maturing principal
    for i in range(n):
        ws.principal[i] = 0.0
        ws.scheduled[i] = 0.0
        ws.el[i] = 0.0
        ws.e[i] = 0.0
        if not st.alive[i]:
            continue
        interest = M.rate[i] * st.debt[i] * dt
        ws.scheduled[i] = min(st.amortising[i], M.amort[i])
        due = ws.scheduled[i] + M.bullet[i, t]
        if due > 0.0:
            lev = st.debt[i] / ws.equity[i] if ws.equity[i] > 0.0 else 0.0
            x = M.refi_logit[i] + M.refi_sent_slope * st.sc[1] - M.refi_lev_slope * lev
            if winter:
                x += M.refi_winter_shift
            if not sh[5 + 2 * i] < 1.0 / (1.0 + math.exp(-x)):
                ws.principal[i] = due
        ws.el[i] = interest + ws.principal[i]
        if ws.net_out[i] >= 0.0:
            ws.e[i] = st.cash[i] + ws.net_out[i]
        else:
            ws.e[i] = st.cash[i]
            ws.el[i] -= ws.net_out[i]

    # 3. the lab raises new equity for what it cannot otherwise pay, up to its capacity
    if st.alive[lab]:
        owed = ws.el[lab]
        due_in = 0.0
        for j in range(n):
            owed += ws.L[lab, j]
            due_in += ws.L[j, lab]
        need = max(0.0, owed - ws.e[lab] - due_in)
        share = M.raise_share_winter if winter else M.raise_share
        raised = min(need, share * ws.equity[lab] * dt)
        ws.e[lab] += raised
        rec.need[t] = need
        rec.gap[t] = need - raised
    else:
        rec.need[t] = 0.0
        rec.gap[t] = 0.0

    # 4. clear all obligations jointly
    if all_can_pay(ws.L, ws.e, ws.el):
        for i in range(n):
            pb = ws.el[i]
            for j in range(n):
                pb += ws.L[i, j]
            ws.p[i] = pb
            ws.dflt[i] = False
    else:
        rounds = clearing_vector(ws.L, ws.e, ws.el, M.alpha, M.beta, ws.p, ws.dflt, ws.work)
        rec.diag[1] += 1.0
        rec.diag[2] += rounds

    paid_total = 0.0
    received_total = 0.0
    for i in range(n):
        ws.receipts[i] = 0.0
    for j in range(n):
        pb = ws.el[j]
        for k in range(n):
            pb += ws.L[j, k]
        paid_total += ws.p[j]
        if pb > 0.0:
            f = ws.p[j] / pb
            received_total += ws.el[j] * f
            for k in range(n):
                ws.receipts[k] += ws.L[j, k] * f
    for k in range(n):
        received_total += ws.receipts[k]
    if paid_total > 0.0:
        err = abs(paid_total - received_total) / paid_total
        if err > rec.diag[0]:
            rec.diag[0] = err

    # 5. settle: cash, debt, contract and tranche progress, network shortfalls
    for c in range(m):
        if st.c_active[c]:
            a = M.c_payer[c]
            pb = ws.el[a]
            for k in range(n):
                pb += ws.L[a, k]
            st.c_paid[c] += M.c_amount[c, t] * (ws.p[a] / pb if pb > 0.0 else 1.0)
    for i in range(n):
        if not st.alive[i]:
            continue
        due_in = 0.0
        pb = ws.el[i]
        for j in range(n):
            due_in += ws.L[j, i]
            pb += ws.L[i, j]
        ws.shortfall_now[i] += max(0.0, due_in - ws.receipts[i])
        if ws.dflt[i]:
            st.cash[i] = 0.0
        else:
            st.cash[i] = max(0.0, ws.e[i] + ws.receipts[i] - ws.p[i])
            st.debt[i] -= ws.principal[i]
            # scheduled amortisation leaves the schedule whether paid or refinanced
            st.amortising[i] -= ws.scheduled[i]
    for k in range(M.l_amount.shape[0]):
        if t == M.l_maturity[k] and st.loan_out[k] > 0.0 and st.alive[M.l_borrower[k]] \
                and st.alive[M.l_lender[k]] and not ws.dflt[M.l_borrower[k]]:
            st.loan_out[k] = 0.0
    for k in range(q):
        if ws.pending[k]:
            a, b = M.t_investor[k], M.t_investee[k]
            pb = ws.el[a]
            for j in range(n):
                pb += ws.L[a, j]
            paid = M.t_amount[k] * (ws.p[a] / pb if pb > 0.0 else 1.0)
            st.t_done[k] = True
            if paid > 0.0 and ws.equity[b] > 0.0:
                st.share[a, b] += paid / ws.equity[b]  # shares bought at the current mark

    # 6. defaults: liquidity (could not pay in full), solvency (book equity < 0); a default
    # writes down its counterparties, which may make others insolvent in the same step.
    for i in range(n):
        st.net_shortfall[i] += ws.shortfall_now[i]
        ws.new[i] = False
        if st.alive[i] and ws.dflt[i]:
            ws.new[i] = True
            rec.default_kind[i] = LIQUIDITY
    for _round in range(n + 1):
        for i in range(n):
            if st.alive[i] and not ws.new[i] and M.solvency_on[i] and book_equity(M, st, ws.equity, i, 0.0) < 0.0:
                ws.new[i] = True
                rec.default_kind[i] = SOLVENCY
        any_new = False
        for i in range(n):
            if ws.new[i]:
                any_new = True
                rec.contagious[i] = not _defaults_anyway(M, st, ws, i)
        if not any_new:
            break
        for i in range(n):
            if ws.new[i]:
                _process_default(t, M, st, ws, rec, i)
                ws.new[i] = False


@njit(cache=True, nogil=True)
def _defaults_anyway(M, st, ws, i):
    """Elsinger-Lehar-Summer test: would entity i default even had every network
    counterparty paid in full, this step and all earlier ones (no unpaid receivables, no
    lost contracts, no write-offs of capacity or stakes caused by others' defaults)?"""
    n = M.cash0.shape[0]
    pb = ws.el[i]
    due_in = 0.0
    for j in range(n):
        pb += ws.L[i, j]
        due_in += ws.L[j, i]
    prior = st.net_shortfall[i] - ws.shortfall_now[i]
    cash_cf = ws.e[i] + due_in - pb + prior + ws.margin_lost[i]
    if cash_cf < -1e-12 * max(1.0, pb):
        return True
    if not M.solvency_on[i]:
        return False
    # book equity with that cash, its principal paid, and no write-downs caused by others
    debt_cf = st.debt[i] - ws.principal[i] if ws.dflt[i] else st.debt[i]
    w = (M.book0[i] + (cash_cf - M.cash0[i]) - (debt_cf - M.debt0[i])
         + (stake_value(M, st, ws.equity, i) - st.stake0[i]) + loan_position(M, st, i) + st.stake_lost[i])
    return w < 0.0


@njit(cache=True, nogil=True)
def _process_default(t, M, st, ws, rec, i):
    """Record entity i's default at step t and pass its consequences to the network."""
    n = M.cash0.shape[0]
    rec.default_step[i] = t
    pb = ws.el[i]
    for j in range(n):
        pb += ws.L[i, j]
    outside_paid = ws.el[i] * (ws.p[i] / pb if pb > 0.0 else 1.0)
    if ws.dflt[i]:  # could not pay this step: its outside creditors' claims include what was due
        remaining_debt = st.debt[i] - ws.principal[i]
        rec.exposure[i] = ws.el[i] + remaining_debt
        rec.loss[i] = (ws.el[i] - outside_paid) + (1.0 - M.recovery[i]) * remaining_debt
    else:  # insolvent after paying this step: its cash goes to its creditors first
        rec.exposure[i] = st.debt[i]
        rec.loss[i] = (1.0 - M.recovery[i]) * max(st.debt[i] - st.cash[i], 0.0)
    # stakes in i are worth nothing from now on
    value_i = ws.equity[i]
    for h in range(n):
        if st.alive[h] and h != i and st.share[h, i] > 0.0:
            st.stake_lost[h] += st.share[h, i] * value_i
    # network loans with i end: its lenders write off what it owed; what it lent is lost
    for k in range(st.loan_out.shape[0]):
        if st.loan_out[k] > 0.0 and M.l_borrower[k] == i:
            if st.alive[M.l_lender[k]]:
                st.stake_lost[M.l_lender[k]] += st.loan_out[k]
            st.loan_out[k] = 0.0
        elif st.loan_out[k] > 0.0 and M.l_lender[k] == i:
            st.loan_out[k] = 0.0
    st.alive[i] = False
    st.cash[i] = 0.0
    st.debt[i] = 0.0
    # contracts with i end; payees of i lose the backlog and write off sunk capacity
    for c in range(M.c_payer.shape[0]):
        if not st.c_active[c]:
            continue
        a, b = M.c_payer[c], M.c_payee[c]
        if a != i and b != i:
            continue
        st.c_active[c] = False
        if a == i and st.alive[b] and not ws.new[b]:
            backlog = M.c_remaining[c, t + 1]
            rec.lost_backlog[b] += backlog
            keep = M.c_relet_share[c] * (1.0 - M.c_relet_discount[c])
            st.impairment[b] += M.c_capex[c] * backlog * (1.0 - keep)
            st.c_relet[c] = t + 1 + M.c_relet_delay[c]


@njit(cache=True, nogil=True)
def simulate_path(M, shocks, tranche_u, st, ws, rec):
    reset_path(M, st, rec, tranche_u)
    for t in range(M.n_steps):
        step(t, M, shocks[t], st, ws, rec)


@njit(cache=True, nogil=True)
def accumulate(M, rec, out):
    """Add one path's record to the chunk statistics."""
    n = M.cash0.shape[0]
    spy = M.steps_per_year
    out.n_paths[0] += 1
    count = 0
    total = 0.0
    for i in range(n):
        s = rec.default_step[i]
        if s >= 0:
            count += 1
            out.default_at[i, s] += 1
            out.kind_count[i, rec.default_kind[i]] += 1
            if rec.contagious[i]:
                out.contagious[i] += 1
            out.loss_sum[i] += rec.loss[i]
            out.exposure_sum[i] += rec.exposure[i]
            total += rec.loss[i]
        out.backlog_sum[i] += rec.lost_backlog[i]
    out.cascade[count] += 1
    out.total_loss[0] += total
    out.total_loss[1] += total * total
    k = log_bin(total, LOSS_LO, LOSS_HI, LOSS_BINS)
    out.loss_hist[k] += 1
    out.loss_hist_sum[k] += total
    years = M.n_steps // spy
    for y in range(years):
        need_pos = False
        gap_pos = False
        need_sum = 0.0
        for t in range(y * spy, (y + 1) * spy):
            need_sum += rec.need[t]
            if rec.need[t] > 0.0:
                need_pos = True
            if rec.gap[t] > 1e-12:
                gap_pos = True
        if need_pos:
            out.need_year[y] += 1
        if gap_pos:
            out.gap_year[y] += 1
        out.need_sum_year[y] += need_sum
    for t in range(M.n_steps):
        if rec.winter[t] > 0.5:
            out.winter[t] += 1
        out.rev_hist[t, log_bin(rec.revenue[t], REV_LO, REV_HI, REV_BINS)] += 1
        out.need_hist[t, log_bin(rec.need[t], NEED_LO, NEED_HI, NEED_BINS)] += 1
    if rec.diag[0] > out.diag[0]:
        out.diag[0] = rec.diag[0]
    out.diag[1] += rec.diag[1]
    out.diag[2] += rec.diag[2]


@njit(cache=True, nogil=True)
def simulate_chunk(M, rng, n_paths, shocks, tranche_u, st, ws, rec, out):
    """Simulate `n_paths` paths with the chunk's generator and accumulate into `out`."""
    for _ in range(n_paths):
        draw_path_shocks(rng, shocks, tranche_u)
        simulate_path(M, shocks, tranche_u, st, ws, rec)
        accumulate(M, rec, out)
