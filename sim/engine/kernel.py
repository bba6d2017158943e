"""The numba kernels: one simulation period, one path, one chunk of paths.

Plain functions on arrays. Configuration arrives as `ModelArrays`; the mutable per-path
state, the per-step scratch, the per-path record and the per-chunk statistics are named
tuples of arrays that the Python layer (sim.engine) allocates once per chunk, so nothing
is allocated inside the hot loop. The equations are documented in docs/model.md.

Random numbers: each path draws its shocks for all steps up front, in a fixed order, from
the chunk's own Generator (`draw_path_shocks`), whatever happens on the path; so two
scenarios run with the same seed see the same shocks path by path (common random numbers),
and `step` can be replayed on hand-made shocks. The treasury's uniform, when drawn, comes
after all the other numbers of the path, so the others stay where they were. Importance
sampling (sim.engine.rare) transforms those same draws (`tilt_shocks`) and carries each
path's likelihood ratio into weighted statistics (the Stats.w_* fields); with an empty
`ModelArrays.tilt` (the default) none of that runs. `ModelArrays.force_step` forces an
entity to default at a step (sim.studies.importance); -1 (the default) never does.

The credit economics (treasury, flexible contracts and restructuring, the revenue share,
compute capacity, partners that build with borrowed money, downturn recoveries, losses by
who bears them) each sit behind a switch of `ModelArrays` (tr_on, rs_on, rsh_on, cap_on,
build_on, dr_on); with all of them off the operations, and so the results, are exactly
those of the model before them.

Speed (benchmarks/RESULTS.md). All the work of a chunk runs inside one function, `_run`:
what does not change along a path (per-step drifts, square roots, the sparsity pattern of
the obligations and stakes, the starting marks) is computed once per chunk by `derive`
into a `Derived` tuple; per-step totals (each entity's total obligation p-bar, the payments
due to it, the fraction it paid) are computed once per step into `Scratch`; the obligation
matrix is touched only where an obligation can exist; the clearing runs only when someone
cannot pay in full. The operations, and their order, are exactly those of the
straightforward formulation (a full dense sum adds zeros; x ** 1.0 == x; entities with the
same equity beta share one power), so results are bit-identical to it; tests/twin.py pins
`step` to a pure-Python twin. Why one big function: see the note above `_run`.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numba import njit

from sim.engine.clearing import _REL_TOL, clearing_vector

# Fixed histogram grids (log-spaced) for streaming quantiles; bin 0 holds exact zeros.
REV_LO, REV_HI, REV_BINS = 1e-2, 1e5, 1400  # lab revenue, $B/yr
NEED_LO, NEED_HI, NEED_BINS = 1e-3, 1e4, 1400  # funding need per step, $B
LOSS_LO, LOSS_HI, LOSS_BINS = 1e-3, 1e5, 1600  # total losses to outside creditors per path, $B
# Signed flows of the lab ($B per year or cumulated): FLOW_BINS log-spaced bins for each sign
# around a zero bin at index FLOW_BINS; index 0 is the most negative (see `signed_bin`).
FLOW_LO, FLOW_HI, FLOW_BINS = 1e-2, 1e4, 1500
# The lab's runway at each year end (cash / projected annual burn, years; RUNWAY_HI when it
# burns nothing), on paths where it is alive; bin 0 holds zero cash.
RUNWAY_LO, RUNWAY_HI, RUNWAY_BINS = 1e-2, 1e2, 800

# The lab's sources and uses, per step (Record.flows rows) and per year (Stats.flow_*
# rows, which add the year's funding need as row F_NEED). Signs: every row is the amount of
# its own kind (uses positive); `F_CASH_CHANGE` and `F_OTHER` are signed.
F_REVENUE = 0  # revenue earned, R dt
F_OPEX = 1  # non-compute operating costs, R dt x opex share
F_COMPUTE = 2  # contract payments made as payer (what the clearing paid of them)
F_DEBT_SERVICE = 3  # interest and principal paid in cash on outside debt
F_RAISED = 4  # new equity raised (step 3 of the model)
F_INVESTED = 5  # investment tranches received
F_OTHER = 6  # everything else that moved its cash (other receipts and payments, cash lost in default,
#             net facility draws)
F_CASH_CHANGE = 7  # change in cash over the step
F_BURN = 8  # cash burn: new equity + tranches received - change in cash
N_FLOWS = 9
F_NEED = 9  # (Stats rows only) funding need before raising (Record.need)
N_FLOW_ROWS = 10
FLOW_NAMES = ("revenue", "opex", "compute_paid", "debt_service", "equity_raised", "investment_received",
              "other", "cash_change", "burn", "funding_need")

LIQUIDITY, SOLVENCY = 1, 2
FORCED = 0  # default kind of an entity forced to default (ModelArrays.force_step; never contagious)

# Losses by who bears them (Stats.loss_class rows, per path summed to the horizon, $B;
# docs/model.md section 11): L_OUTSIDE is the headline "losses to outside creditors".
L_OUTSIDE = 0  # outside creditors of defaulted entities (after recoveries)
L_IMPAIRED = 1  # capacity partners built for payers that defaulted, written off
L_SHORTFALL = 2  # cash the network did not deliver: unpaid receivables, margin lost net of
#                  re-letting, haircuts as they fall due, the lab's revenue lost with its capacity
L_STAKES = 3  # stakes and network loans written off through issuers' and borrowers' defaults
L_EXCHANGE = 4  # contract value payees gave up in distressed exchanges (overlaps L_SHORTFALL)
N_LOSS_CLASSES = 5
LOSS_CLASS_NAMES = ("outside_creditors", "impaired_capacity", "network_shortfall", "stakes_written_off",
                    "given_up_in_exchanges")

# Equity marks: how `Derived.pow_group` tells the step to value an entity other than the lab.
_NO_MARKET_EQUITY = -1  # market_equity is 0: the mark is 0 whatever the sentiment
_BETA_ONE = -2  # equity_beta is 1: the mark is market_equity * sentiment (x ** 1.0 == x)


class State(NamedTuple):
    """Per-path state, reset at the start of each path."""
    sc: np.ndarray  # [log revenue, log sentiment, winter flag (0/1), the lab's drawn facility $B,
    #                  the path's log likelihood ratio (importance sampling; 0 otherwise)]
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
    c_cut: np.ndarray  # (m,) int: step from which the flexible share is cut, -1 if never (restructuring)
    c_scale: np.ndarray  # (m,) price factor left after distressed-exchange haircuts (1.0: none)
    rsh_paid: np.ndarray  # (1,) revenue share paid so far, $B
    c_lost: np.ndarray  # (m,) int: for the lab's contracts whose supplier defaulted, the step the
    #                     capacity is replaced from (-1: none) (capacity)
    # partners build ([build], docs/model.md section 6d; untouched when it is off)
    coupon: np.ndarray  # (n,) average coupon on outside debt
    amort_new: np.ndarray  # (n,) amortisation per step of the new debt (a ladder over its tenor)
    new_out: np.ndarray  # (n,) new debt still on that ladder
    k_hist: np.ndarray  # (n, n_steps) capex not tied to contracts paid at each step
    ripe: np.ndarray  # (n,) that capex paid up to `lead` steps ago (earns capex_yield)
    capex_book: np.ndarray  # (n,) capex paid, capitalised (book equity)
    c_built: np.ndarray  # (m,) capex built for each contract
    h_frac: np.ndarray  # (n,) share of holdings not yet sold
    h_sold: np.ndarray  # (n,) marked value of holdings sold
    cov_cf: np.ndarray  # (n,) operating cash flow over the current calendar year (coverage)
    cov_int: np.ndarray  # (n,) interest over the current calendar year
    cov_short: np.ndarray  # (n,) network shortfall over the current calendar year
    cov_low: np.ndarray  # (n,) int: consecutive year ends with a coverage breach


class Scratch(NamedTuple):
    """Per-step work arrays (`new_scratch` allocates them)."""
    L: np.ndarray  # (n, n) obligations due this step; zero outside Derived's pattern
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
    pbar: np.ndarray  # (n,) total obligation: outside + network (sum_j L[i, j] + el[i])
    due_in: np.ndarray  # (n,) network payments due to each entity (sum_j L[j, i])
    frac: np.ndarray  # (n,) fraction of its obligations each entity paid (1.0 if none due)
    spow: np.ndarray  # (n,) sentiment ** beta, one entry per distinct equity_beta
    plan_tied: np.ndarray  # (n,) capex tied to contracts planned this step ([build])
    built_share: np.ndarray  # (n,) share of this step's plan actually built (after cuts and cash)
    c_plan: np.ndarray  # (m,) capex planned this step for each contract (0: not built for)
    plan_other: np.ndarray  # (n,) other capex planned this step
    bscale: np.ndarray  # (n,) share of the plan kept (f / P when the market is shut, else 1)
    interest_now: np.ndarray  # (n,) interest on outside debt this step
    covenant: np.ndarray  # (n,) bool: covenant default this step
    cov_fund: np.ndarray  # (n,) bool: the covenant fails even without others' defaults (ELS)
    sched_new: np.ndarray  # (n,) new debt's ladder payment scheduled this step
    p_open: np.ndarray  # (n,) probability the market is open to it this step (-1: not computed yet)
    capex_paid: np.ndarray  # (n,) capex paid this step


def new_scratch(n: int, q: int, m: int) -> Scratch:
    """Per-step work arrays for n entities, q tranches and m contracts (L starts, and stays,
    zero outside the obligation pattern)."""
    z = np.zeros
    return Scratch(L=z((n, n)), e=z(n), el=z(n), net_out=z(n), principal=z(n), scheduled=z(n), p=z(n),
                   dflt=z(n, np.bool_), work=z((n, n + 4)), equity=z(n), receipts=z(n), pending=z(q, np.bool_),
                   new=z(n, np.bool_), shortfall_now=z(n), margin_lost=z(n), pbar=z(n), due_in=z(n), frac=z(n),
                   spow=z(n), plan_tied=z(n), built_share=z(n), c_plan=z(m), plan_other=z(n), bscale=z(n), interest_now=z(n),
                   covenant=z(n, np.bool_), cov_fund=z(n, np.bool_), sched_new=z(n), p_open=z(n), capex_paid=z(n))


class Record(NamedTuple):
    """What one path produced (added to the chunk's `Stats` when the path ends)."""
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
    flows: np.ndarray  # (N_FLOWS, n_steps) the lab's sources and uses in each step, $B (F_* rows)
    runway: np.ndarray  # (years,) the lab's runway at each year end, years (-1: in default)
    credit_step: np.ndarray  # (n,) int: step of the first distressed exchange, -1 if none
    rs_loss: np.ndarray  # (n,) contract value each payee gave up in distressed exchanges, $B
    breach_step: np.ndarray  # (n,) int: step of the first covenant breach, -1 if none ([build])
    sold: np.ndarray  # (n,) marked value of holdings sold to restore the LTV covenant, $B
    new_debt: np.ndarray  # (n,) new debt issued to build, $B
    covenant_default: np.ndarray  # (n,) bool: its default was a covenant default


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
    flow_sum: np.ndarray  # (N_FLOW_ROWS, years) float: the lab's flows by year, summed over paths
    flow_hist: np.ndarray  # (N_FLOW_ROWS, years, 2 FLOW_BINS + 1) int: their per-path values (signed_bin)
    cum_need_hist: np.ndarray  # (years, NEED_BINS + 1) int: funding need summed to each year end, per path
    cum_burn_hist: np.ndarray  # (years, 2 FLOW_BINS + 1) int: burn summed to each year end, per path
    # importance sampling (ModelArrays.tilt non-empty; zeros otherwise): sums of the per-path
    # likelihood ratio w (and w^2, for standard errors) over the paths where each event happened
    w_sum: np.ndarray  # (2,) [sum w, sum w^2] over all paths
    w_default_at: np.ndarray  # (n, n_steps) float: sum of w over paths defaulting at the step
    w2_default_at: np.ndarray  # (n, n_steps) float: sum of w^2
    w_cascade: np.ndarray  # (n + 1,) float: sum of w by number of defaults
    w2_cascade: np.ndarray  # (n + 1,)
    w_loss: np.ndarray  # (3,) [sum w L, sum w L^2, sum w^2 L^2] of the per-path total loss L
    w_loss_hist: np.ndarray  # (LOSS_BINS + 1,) float: sum of w by loss bin
    w_loss_hist_sum: np.ndarray  # (LOSS_BINS + 1,) float: sum of w L by loss bin
    w_contagious: np.ndarray  # (n,) float
    w_loss_sum: np.ndarray  # (n,) float: sum of w x loss caused by each entity
    runway_hist: np.ndarray  # (years, RUNWAY_BINS + 1) int: the lab's runway at each year end, alive paths
    credit_event: np.ndarray  # (n,) int: paths with a credit event (distressed exchange or default)
    restructured: np.ndarray  # (n,) int: paths with a distressed exchange
    rs_loss_sum: np.ndarray  # (n,) float: value given up in distressed exchanges, as payee
    loss_class: np.ndarray  # (N_LOSS_CLASSES, 2): sum and sum of squares over paths of each class
    breached: np.ndarray  # (n,) int: paths with a covenant breach ([build])
    covenant_default: np.ndarray  # (n,) int: paths with a covenant default
    new_debt_sum: np.ndarray  # (n,) float: new debt issued, summed over paths
    sold_sum: np.ndarray  # (n,) float: holdings sold, summed over paths


class Derived(NamedTuple):
    """What a step needs that is fixed for a scenario: computed once per chunk by `derive`,
    with the same operations, in the same order, as they would be inside the step."""
    rev_drift: np.ndarray  # (n_steps,) boom drift of log revenue over the step, (g_t - vol^2/2) dt
    rev_sd: float  # vol sqrt(dt)
    winter_drift: float  # (growth_winter - volatility_winter^2/2) dt
    winter_sd: float  # volatility_winter sqrt(dt)
    rho_c: float  # sqrt(1 - rho^2)
    ocf_c: np.ndarray  # (n,) sqrt(1 - loading^2)
    ocf_drift: np.ndarray  # (n,) (g_i - s_i^2/2) dt, boom
    ocf_drift_winter: np.ndarray  # (n,) the same in winter
    ocf_sd: np.ndarray  # (n,) s_i sqrt(dt)
    pow_group: np.ndarray  # (n,) int: index into Scratch.spow, or _NO_MARKET_EQUITY / _BETA_ONE
    pow_beta: np.ndarray  # (k,) the distinct equity_beta values that need a power
    stake0: np.ndarray  # (n,) marked stakes at the start of every path
    ob_debtor: np.ndarray  # every (debtor, creditor) pair an obligation can link, by debtor,
    ob_creditor: np.ndarray  # then creditor (row-major)
    ob_debtor_t: np.ndarray  # the same pairs by creditor, then debtor (column-major)
    ob_creditor_t: np.ndarray
    st_ptr: np.ndarray  # (n + 1,) CSR of every (holder, issuer) pair a stake can link
    st_col: np.ndarray  # issuers of each holder, ascending


@njit(cache=True, nogil=True)
def _csr(mask):
    """Row pointers and column indices (ascending within a row) of a boolean (n, n) mask."""
    n = mask.shape[0]
    ptr = np.zeros(n + 1, np.int64)
    cols = np.zeros(mask.sum(), np.int64)
    k = 0
    for i in range(n):
        for j in range(n):
            if mask[i, j]:
                cols[k] = j
                k += 1
        ptr[i + 1] = k
    return ptr, cols


@njit(cache=True, nogil=True)
def derive(M):
    """The `Derived` constants of a scenario (allocates; once per chunk)."""
    n = M.cash0.shape[0]
    dt = M.dt
    sqdt = math.sqrt(dt)
    vol = M.volatility
    rev_drift = np.empty(M.n_steps)
    for t in range(M.n_steps):
        g = M.growth_inf + (M.growth0 - M.growth_inf) * 0.5 ** (t * dt / M.half_life)
        rev_drift[t] = (g - 0.5 * vol * vol) * dt
    vw = M.volatility_winter
    ocf_c = np.empty(n)
    ocf_drift = np.empty(n)
    ocf_drift_winter = np.empty(n)
    ocf_sd = np.empty(n)
    for i in range(n):
        s = M.ocf_vol[i]
        load = M.ocf_loading[i]
        ocf_c[i] = math.sqrt(1.0 - load * load)
        ocf_drift[i] = (M.ocf_growth[i] - 0.5 * s * s) * dt
        ocf_drift_winter[i] = (M.ocf_growth_winter[i] - 0.5 * s * s) * dt
        ocf_sd[i] = s * sqdt

    # entities with the same equity_beta share one power of the sentiment per step
    pow_group = np.empty(n, np.int64)
    pow_beta = np.empty(n)
    k = 0
    for i in range(n):
        b = M.equity_beta[i]
        if i == M.lab or M.market_equity[i] == 0.0:
            pow_group[i] = _NO_MARKET_EQUITY
        elif b == 1.0:
            pow_group[i] = _BETA_ONE
        else:
            pow_group[i] = -3  # not yet seen
            for g in range(k):
                if pow_beta[g] == b:
                    pow_group[i] = g
            if pow_group[i] == -3:
                pow_beta[k] = b
                pow_group[i] = k
                k += 1

    # marks at the start of a path (sentiment exp(0) = 1, boom): the stakes' start value
    equity0 = np.empty(n)
    for j in range(n):
        s = math.exp(0.0)
        if j == M.lab:
            equity0[j] = M.multiple * math.exp(M.log_r0) * s
        else:
            equity0[j] = M.market_equity[j] * s ** M.equity_beta[j]
    stake0 = np.zeros(n)
    for i in range(n):
        for j in range(n):
            if M.share0[i, j] > 0.0:
                stake0[i] += M.share0[i, j] * equity0[j]

    # where obligations and stakes can exist: contracts, tranches, loans; stakes held
    # at the start or bought through tranches
    ob = np.zeros((n, n), np.bool_)
    held = M.share0 > 0.0
    for c in range(M.c_payer.shape[0]):
        ob[M.c_payer[c], M.c_payee[c]] = True
    for k2 in range(M.t_amount.shape[0]):
        ob[M.t_investor[k2], M.t_investee[k2]] = True
        held[M.t_investor[k2], M.t_investee[k2]] = True
    for k2 in range(M.l_amount.shape[0]):
        ob[M.l_borrower[k2], M.l_lender[k2]] = True
    if M.rsh_on:
        ob[M.lab, M.rsh_payee] = True
    for i in range(n):
        ob[i, i] = False  # the scenario forbids self-links; the clearing ignores the diagonal
    debtor, creditor = np.nonzero(ob)  # row-major order
    creditor_t, debtor_t = np.nonzero(ob.T.copy())  # column-major order
    st_ptr, st_col = _csr(held)
    return Derived(rev_drift, vol * sqdt, (M.growth_winter - 0.5 * vw * vw) * dt, vw * sqdt,
                   math.sqrt(1.0 - M.rho * M.rho), ocf_c, ocf_drift, ocf_drift_winter, ocf_sd,
                   pow_group, pow_beta[:k].copy(), stake0, debtor, creditor, debtor_t, creditor_t,
                   st_ptr, st_col)


@njit(cache=True, nogil=True, inline="always")
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


@njit(cache=True, nogil=True, inline="always")
def signed_bin(value, lo, hi, bins):
    """Bin index on a signed log grid: `bins` + log_bin(value) for value > 0, `bins` for 0,
    `bins` - log_bin(-value) for value < 0; so indices ascend with the value (0 .. 2 bins)."""
    if value > 0.0:
        return bins + log_bin(value, lo, hi, bins)
    if value < 0.0:
        return bins - log_bin(-value, lo, hi, bins)
    return bins


@njit(cache=True, nogil=True)
def draw_path_shocks(rng, shocks, tranche_u):
    """Draw one path's random numbers in a fixed order (see sim.engine.model.n_shocks)."""
    for k in range(tranche_u.shape[0]):
        tranche_u[k] = rng.random()
    n_steps, width = shocks.shape
    n = (width - 4) // 2
    extra = width - 4 - 2 * n  # 1 with the treasury's column (ModelArrays.n_extra_shocks)
    for t in range(n_steps):
        shocks[t, 0] = rng.standard_normal()
        shocks[t, 1] = rng.standard_normal()
        shocks[t, 2] = rng.random()
        shocks[t, 3] = rng.standard_normal()
        for i in range(n):
            shocks[t, 4 + 2 * i] = rng.standard_normal()
            shocks[t, 5 + 2 * i] = rng.random()
    # appended after all the others, so the draws above are those of a path without them
    for t in range(n_steps):
        for k in range(extra):
            shocks[t, 4 + 2 * n + k] = rng.random()


# Importance sampling: `ModelArrays.tilt` (empty: plain Monte Carlo) holds the change of
# measure, per step, of the shocks `draw_path_shocks` drew: a mean shift of the revenue,
# sentiment and jump normals (TILT_REV, TILT_SENT, TILT_JUMP) and of each entity's
# cash-flow normal (TILT_OCF + i), and the probability TILT_ENTER with which the regime
# uniform falls below p_enter (the winter entry; p_enter itself: no change). The draws are
# the plain ones, transformed, so a zero tilt reproduces the plain path exactly.
TILT_REV, TILT_SENT, TILT_ENTER, TILT_JUMP, TILT_OCF = 0, 1, 2, 3, 4


@njit(cache=True, nogil=True, error_model="numpy")  # no exception paths: no reference counting
def tilt_shocks(shocks, tilt, p_enter):
    """Move one path's plain shocks to the tilted measure in place; return the log of the
    likelihood ratio (plain density / tilted density) of the path's shocks.

    A normal z shifted to x = z + m has ratio phi(x) / phi(x - m) = exp(-m z - m^2 / 2). The
    regime uniform u becomes u' = u p / q for u < q (then u' < p: ratio p / q) and
    p + (u - q)(1 - p) / (1 - q) otherwise (ratio (1 - p) / (1 - q))."""
    n_steps, width = shocks.shape
    n = (width - 4) // 2
    m_r, m_s, q, m_j = tilt[TILT_REV], tilt[TILT_SENT], tilt[TILT_ENTER], tilt[TILT_JUMP]
    p = p_enter
    uni = q != p and 0.0 < p < 1.0 and 0.0 < q < 1.0
    lo_w = math.log(p / q) if uni else 0.0
    hi_w = math.log((1.0 - p) / (1.0 - q)) if uni else 0.0
    below = p - p * 1e-15  # largest u' still below p after rounding
    logw = 0.0
    for t in range(n_steps):
        z = shocks[t, 0]
        shocks[t, 0] = z + m_r
        logw -= m_r * z + 0.5 * m_r * m_r
        z = shocks[t, 1]
        shocks[t, 1] = z + m_s
        logw -= m_s * z + 0.5 * m_s * m_s
        if uni:
            u = shocks[t, 2]
            if u < q:
                shocks[t, 2] = min(u * p / q, below)
                logw += lo_w
            else:
                shocks[t, 2] = p + (u - q) * (1.0 - p) / (1.0 - q)
                logw += hi_w
        z = shocks[t, 3]
        shocks[t, 3] = z + m_j
        logw -= m_j * z + 0.5 * m_j * m_j
        for i in range(n):
            m_i = tilt[TILT_OCF + i]
            if m_i != 0.0:
                z = shocks[t, 4 + 2 * i]
                shocks[t, 4 + 2 * i] = z + m_i
                logw -= m_i * z + 0.5 * m_i * m_i
    return logw


@njit(cache=True, nogil=True, inline="always")
def stake_value(share, alive, equity, st_ptr, st_col, i):
    """Marked value of i's stakes, given each issuer's equity value (0 once defaulted).

    Sums over the issuers in which i can hold stakes (Derived.st_ptr/st_col), ascending:
    the terms a sum over all issuers would add, in the same order (the others are zero)."""
    v = 0.0
    for k in range(st_ptr[i], st_ptr[i + 1]):
        j = st_col[k]
        if share[i, j] > 0.0 and alive[j]:
            v += share[i, j] * equity[j]
    return v


@njit(cache=True, nogil=True, inline="always")
def loan_position(l_lender, l_borrower, l_amount, loan_out, i):
    """Network loans i has lent minus those it owes, outstanding (change from the start)."""
    v = 0.0
    for k in range(loan_out.shape[0]):
        if l_lender[k] == i:
            v += loan_out[k] - l_amount[k]
        elif l_borrower[k] == i:
            v -= loan_out[k] - l_amount[k]
    return v


@njit(cache=True, nogil=True, inline="always")
def contract_value(rem_k, rem_cut, cut, flex, penalty):
    """What a contract still owes from step k on, with its flexible share cut from step
    `cut` (-1: never) and the penalty paid on the cut part (before any haircut), from
    rem_k = c_remaining[c, k] and rem_cut = c_remaining[c, max(cut, k)]. (Scalars, not the
    array: an array used in a branch of an inlined helper brings back reference counting.)"""
    v = rem_k
    if cut >= 0:
        v -= rem_cut * flex * (1.0 - penalty)
    return v


@njit(cache=True, nogil=True, inline="always")
def contract_volume(rem_k, rem_cut, cut, flex):
    """The compute volume (schedule units) a contract still has to deliver from step k on."""
    v = rem_k
    if cut >= 0:
        v -= rem_cut * flex
    return v


@njit(cache=True, nogil=True, inline="always")
def rsh_year(share, revenue, until, t, t_next, cap_left, dt):
    """The revenue share projected for steps t+1 .. t_next-1 at today's revenue, within the
    end date and what is left of the cap (for the lab's projected burn)."""
    steps = max(0, min(t_next, until) - (t + 1))
    return min(share * revenue * dt * steps, max(0.0, cap_left))


@njit(cache=True, nogil=True, inline="always")
def add_projected_compute(total, t, t_next, lab, c_active, c_payer, c_remaining, c_cut, c_flex, c_scale, rs_on,
                          rs_pen):
    """`total` plus the lab's committed compute over steps t+1 .. t_next-1 as it stands (after
    cuts and haircuts when restructuring is on): the contract part of its projected burn,
    added contract by contract in order (so the sum is the same to the last bit wherever used)."""
    for c in range(c_active.shape[0]):
        if c_active[c] and c_payer[c] == lab:
            if rs_on:
                total += (contract_value(c_remaining[c, t + 1],
                                         c_remaining[c, max(c_cut[c], t + 1)], c_cut[c], c_flex[c], rs_pen)
                          - contract_value(c_remaining[c, t_next],
                                           c_remaining[c, max(c_cut[c], t_next)], c_cut[c], c_flex[c], rs_pen)) * c_scale[c]
            else:
                total += c_remaining[c, t + 1] - c_remaining[c, t_next]
    return total


@njit(cache=True, nogil=True, inline="always")
def due_factors(t, cut, flex, penalty):
    """(volume share delivered, share of the schedule due) of a contract at step t."""
    if cut >= 0 and t >= cut:
        v = 1.0 - flex
        return v, v + (1.0 - v) * penalty
    return 1.0, 1.0


# ---------------------------------------------------------------------------------------
# The hot loop
# ---------------------------------------------------------------------------------------
# numba counts references to arrays with atomic operations. A function that receives the
# model's tuples (about 110 arrays) increments each on entry and decrements it on exit,
# unless its optimiser proves that redundant, which it cannot for a function of this size;
# calling such functions every step (and for every entity) cost more than the economics
# (avoiding it is most of the ~3x of benchmarks/RESULTS.md, section 0). So
# `_run` binds every array it needs to a local name once, per chunk, and the whole step and
# the bookkeeping of a path run inside its loops. Inside them it calls only leaf functions
# that compile to no reference counting (`draw_path_shocks`, `_reset_path`, the
# inline="always" helpers) and, when someone cannot pay in full, the clearing (8 arrays).
# tests/test_kernel_refcount.py checks that no reference counting is left in the loops.


@njit(cache=True, nogil=True)
def _run(M, D, rng, n_paths, t_begin, t_end, shocks, tranche_u, st, ws, rec, out):
    """Run `n_paths` paths over steps t_begin .. t_end - 1 (step t uses shocks row
    t - t_begin). With a generator `rng` and `tranche_u`, each path first draws its shocks
    and starts afresh; with `out`, each finished path is added to the statistics.
    `simulate_chunk` passes all three; `step` none (one step of the current path)."""
    n = M.cash0.shape[0]
    m = M.c_payer.shape[0]
    q = M.t_amount.shape[0]
    nl = M.l_amount.shape[0]
    dt = M.dt
    lab = M.lab
    spy = M.steps_per_year
    (sc, cash, debt, amortising, loan_out, log_ocf, alive, share, stake0, impairment, net_shortfall,
     stake_lost, c_active, c_paid, c_relet, t_ok, t_done, c_cut, c_scale, rsh_paid, c_lost,
     coupon, amort_new, new_out, k_hist, ripe, capex_book, c_built, h_frac, h_sold, cov_cf, cov_int, cov_short,
     cov_low) = st
    (L, e, el, net_out, principal, scheduled, p, dflt, work, equity, receipts, pending, new,
     shortfall_now, margin_lost, pbar, due_in, frac, spow, plan_tied, built_share, c_plan, plan_other, bscale, interest_now,
     covenant, cov_fund, sched_new, p_open, capex_paid) = ws
    (r_default_step, r_default_kind, r_contagious, r_loss, r_exposure, r_lost_backlog, r_revenue,
     r_need, r_gap, r_winter, r_diag, r_flows, r_runway, r_credit_step, r_rs_loss, r_breach_step, r_sold,
     r_new_debt, r_covenant_default) = rec
    build_on = M.build_on
    lead = M.build_lead
    b_ent, b_con = M.b_ent, M.b_con
    opex_share, cash0, debt0, rate, amort, bullet = M.opex_share, M.cash0, M.debt0, M.rate, M.amort, M.bullet
    refi_logit, ocf0, ocf_loading, market_equity = M.refi_logit, M.ocf0, M.ocf_loading, M.market_equity
    book0, solvency_on, alpha, beta = M.book0, M.solvency_on, M.alpha, M.beta
    force_step = M.force_step
    tilt = M.tilt
    tilted = tilt.shape[0] > 0
    logw = 0.0  # log likelihood ratio of the current path (importance sampling)
    c_payer, c_payee, c_amount, c_cost = M.c_payer, M.c_payee, M.c_amount, M.c_cost
    c_relet_share, c_relet_discount, c_relet_delay = M.c_relet_share, M.c_relet_discount, M.c_relet_delay
    c_remaining, c_capex, recovery = M.c_remaining, M.c_capex, M.recovery
    c_flex, rs_pen = M.c_flex, M.rs_penalty
    t_investor, t_investee, t_first, t_last = M.t_investor, M.t_investee, M.t_first, M.t_last
    t_amount, t_contract, t_milestone = M.t_amount, M.t_contract, M.t_milestone
    l_lender, l_borrower, l_amount, l_rate, l_maturity = M.l_lender, M.l_borrower, M.l_amount, M.l_rate, M.l_maturity
    rev_drift, ocf_c, ocf_drift, ocf_drift_winter, ocf_sd = D.rev_drift, D.ocf_c, D.ocf_drift, D.ocf_drift_winter, D.ocf_sd
    pow_group, pow_beta, st_ptr, st_col = D.pow_group, D.pow_beta, D.st_ptr, D.st_col
    ob_debtor, ob_creditor, ob_debtor_t, ob_creditor_t = D.ob_debtor, D.ob_creditor, D.ob_debtor_t, D.ob_creditor_t
    n_links = ob_debtor.shape[0]
    if out is not None:
        (o_n_paths, o_default_at, o_kind_count, o_contagious, o_cascade, o_loss_sum, o_exposure_sum,
         o_backlog_sum, o_total_loss, o_loss_hist, o_loss_hist_sum, o_need_year, o_gap_year,
         o_need_sum_year, o_rev_hist, o_need_hist, o_winter, o_diag, o_flow_sum, o_flow_hist,
         o_cum_need_hist, o_cum_burn_hist, o_w_sum, o_w_default_at, o_w2_default_at, o_w_cascade, o_w2_cascade,
         o_w_loss, o_w_loss_hist, o_w_loss_hist_sum, o_w_contagious, o_w_loss_sum, o_runway_hist, o_credit_event,
         o_restructured, o_rs_loss_sum, o_loss_class, o_breached, o_covenant_default, o_new_debt_sum,
         o_sold_sum) = out

    for _ in range(n_paths):
        if rng is not None:
            draw_path_shocks(rng, shocks, tranche_u)
            if tilted:
                logw = tilt_shocks(shocks, tilt, M.p_enter)
            _reset_path(M, D, st, rec, tranche_u)
            if tilted:
                sc[4] = logw  # kept with the path's state (State.sc[4]) for `pilot_paths`

        for t in range(t_begin, t_end):
            s = t - t_begin  # this step's row of shocks
            lab_cash_start = cash[lab]  # for the lab's sources and uses (Record.flows)
            lab_alive_start = alive[lab]
            lab_compute = 0.0
            lab_invested = 0.0
            lab_drawn = 0.0  # net facility draw this step (treasury)
            cap_factor = 1.0  # share of its revenue the lab can serve with its compute (capacity)
            cap_repl = 0.0  # replacement compute due this step (capacity)

            # 1. regime, revenue, sentiment, outside cash flows, equity marks
            entered = False
            if M.regime_on:
                if sc[2] < 0.5:
                    if shocks[s, 2] < M.p_enter:
                        sc[2] = 1.0
                        entered = True
                elif shocks[s, 2] < M.p_exit:
                    sc[2] = 0.0
            winter = sc[2] > 0.5
            z_r = shocks[s, 0]
            z_s = M.rho * z_r + D.rho_c * shocks[s, 1]
            if winter:
                sc[0] += D.winter_drift + D.winter_sd * z_r
            else:
                sc[0] += rev_drift[t] + D.rev_sd * z_r
            sc[1] = sc[1] * M.sent_decay + M.sent_sd * z_s
            if entered:
                sc[0] += M.jump_mean + M.jump_sd * shocks[s, 3]
                sc[1] += M.sentiment_jump
            revenue = math.exp(sc[0])
            sentiment = math.exp(sc[1])
            r_revenue[t] = revenue
            r_winter[t] = 1.0 if winter else 0.0
            for g in range(pow_beta.shape[0]):
                spow[g] = sentiment ** pow_beta[g]

            for i in range(n):
                z = ocf_loading[i] * z_s + ocf_c[i] * shocks[s, 4 + 2 * i]
                log_ocf[i] += (ocf_drift_winter[i] if winter else ocf_drift[i]) + ocf_sd[i] * z
                shortfall_now[i] = 0.0
                margin_lost[i] = 0.0
                if not alive[i]:
                    net_out[i] = 0.0
                    equity[i] = 0.0
                    continue
                net_out[i] = ocf0[i] * math.exp(log_ocf[i]) * dt if ocf0[i] != 0.0 else ocf0[i] * dt
                if build_on:  # the business other capex built, from `lead` steps after it was spent
                    if t >= lead:
                        ripe[i] += k_hist[i, t - lead]
                    net_out[i] += M.capex_yield[i] * ripe[i] * dt
                g = pow_group[i]
                if i == lab:
                    equity[i] = (M.multiple_winter if winter else M.multiple) * revenue * sentiment
                elif g >= 0:
                    equity[i] = market_equity[i] * spow[g]
                elif g == _BETA_ONE:
                    equity[i] = market_equity[i] * sentiment
                else:
                    equity[i] = market_equity[i]  # 0.0
            if alive[lab] and M.cap_on:
                # compute capacity (docs/model.md section 6c): capacity lost with a defaulted
                # supplier cuts the revenue the lab can serve until it is replaced; then the
                # replacement costs the schedule plus a premium
                sched = 0.0
                lost_c = 0.0
                for c in range(m):
                    if c_payer[c] == lab:
                        sched += c_amount[c, t]
                        if c_lost[c] >= 0:
                            if t < c_lost[c]:
                                lost_c += c_amount[c, t]
                            else:
                                cap_repl += c_amount[c, t] * (1.0 + M.cap_premium)
                if lost_c > 0.0:
                    cap_factor = max(0.0, 1.0 - M.cap_elasticity * lost_c / sched)
                served = revenue * dt * (1.0 - opex_share[t])
                net_out[lab] += served * cap_factor
                # what the failed supplier costs the lab is a network shortfall (ELS)
                cost_lost = served - served * cap_factor + (cap_repl - cap_repl / (1.0 + M.cap_premium))
                margin_lost[lab] += cost_lost
                shortfall_now[lab] += cost_lost
            elif alive[lab]:
                net_out[lab] += revenue * dt * (1.0 - opex_share[t])

            # 2. obligations due this step (L is zero outside the pattern of possible links):
            # contracts and their delivery costs, re-let income
            for k in range(n_links):
                L[ob_debtor[k], ob_creditor[k]] = 0.0
            for c in range(m):
                a, b = c_payer[c], c_payee[c]
                amount = c_amount[c, t]
                if M.rs_on:
                    # flexible cuts and haircuts (docs/model.md section 7c): the payee delivers
                    # v of the volume for `full` (the penalty on the cut part included), less
                    # its haircuts; what the haircuts withhold is a shortfall of the network
                    v, fdue = due_factors(t, c_cut[c], c_flex[c], rs_pen)
                    full = amount * fdue
                    if c_active[c]:
                        due = full * c_scale[c]
                        L[a, b] += due
                        net_out[b] -= c_cost[c] * amount * v
                        if due < full:
                            margin_lost[b] += full - due
                            shortfall_now[b] += full - due
                    elif c_relet[c] >= 0 and alive[b]:
                        lost = full - c_cost[c] * amount * v
                        relet = 0.0
                        if t >= c_relet[c]:
                            relet = c_relet_share[c] * amount * v * ((1.0 - c_relet_discount[c]) - c_cost[c])
                            net_out[b] += relet
                        margin_lost[b] += lost - relet
                        shortfall_now[b] += lost - relet
                elif c_active[c]:
                    L[a, b] += amount
                    net_out[b] -= c_cost[c] * amount
                elif c_relet[c] >= 0 and alive[b]:
                    lost = (1.0 - c_cost[c]) * amount  # margin the payer would have paid
                    relet = 0.0
                    if t >= c_relet[c]:
                        relet = c_relet_share[c] * amount * ((1.0 - c_relet_discount[c]) - c_cost[c])
                        net_out[b] += relet
                    margin_lost[b] += lost - relet
                    shortfall_now[b] += lost - relet

            # the revenue share (docs/model.md section 6b): share x R dt to its payee, until
            # its end date or its cap
            rsh_due = 0.0
            if M.rsh_on and alive[lab] and alive[M.rsh_payee] and t < M.rsh_until:
                rsh_due = min(M.rsh_share * revenue * dt, max(0.0, M.rsh_cap - rsh_paid[0]))
                L[lab, M.rsh_payee] += rsh_due

            # investment tranches whose conditions hold
            for k in range(q):
                pending[k] = False
                if t_done[k] or not t_ok[k] or t < t_first[k] or t > t_last[k]:
                    continue
                a, b = t_investor[k], t_investee[k]
                if not (alive[a] and alive[b]):
                    continue
                c = t_contract[k]
                if c >= 0 and c_paid[c] < t_milestone[k] - 1e-12:
                    continue
                pending[k] = True
                L[a, b] += t_amount[k]

            # network loans
            for k in range(nl):
                a, b = l_borrower[k], l_lender[k]
                if alive[a] and alive[b] and loan_out[k] > 0.0:
                    L[a, b] += l_rate[k] * loan_out[k] * dt
                    if t == l_maturity[k]:
                        L[a, b] += loan_out[k]

            # outside debt service, with refinancing of maturing principal
            for i in range(n):
                principal[i] = 0.0
                scheduled[i] = 0.0
                interest_now[i] = 0.0
                sched_new[i] = 0.0
                p_open[i] = -1.0
                el[i] = 0.0
                e[i] = 0.0
                if not alive[i]:
                    continue
                if i == lab and sc[3] > 0.0:  # the drawn facility (in debt) at its own rate
                    interest = (rate[i] * (debt[i] - sc[3]) + M.tr_fac_rate * sc[3]) * dt
                elif build_on and i != lab:  # the average coupon of a debt stock that moves
                    interest = coupon[i] * debt[i] * dt
                else:
                    interest = rate[i] * debt[i] * dt
                if build_on:
                    interest_now[i] = interest
                    scheduled[i] = min(amortising[i], amort[i])
                    sched_new[i] = min(new_out[i], amort_new[i])
                    due = min(scheduled[i] + sched_new[i] + bullet[i, t], debt[i])
                else:
                    scheduled[i] = min(amortising[i], amort[i])
                    due = scheduled[i] + bullet[i, t]
                if due > 0.0:
                    lev = debt[i] / equity[i] if equity[i] > 0.0 else 0.0
                    x = refi_logit[i] + M.refi_sent_slope * sc[1] - M.refi_lev_slope * lev
                    if winter:
                        x += M.refi_winter_shift
                    p_roll = 1.0 / (1.0 + math.exp(-x))
                    if build_on:
                        p_open[i] = p_roll  # the same market, the same probability for new debt (3d)
                    if not shocks[s, 5 + 2 * i] < p_roll:
                        principal[i] = due
                el[i] = interest + principal[i]
                if build_on:
                    el[i] += M.lease[i, t]  # leases: a fixed outside obligation
                if i == lab and cap_repl > 0.0:
                    el[i] += cap_repl  # replacement compute, bought outside the network
                if net_out[i] >= 0.0:
                    e[i] = cash[i] + net_out[i]
                else:
                    e[i] = cash[i]
                    el[i] -= net_out[i]

            # each entity's total obligation p-bar = el + sum_j L[i, j] and the network payments
            # due to it, sum_j L[j, i]: summing over the links, in row-major (column-major)
            # order, adds the same numbers in the same order as a full row (column) would
            for i in range(n):
                pbar[i] = el[i]
                due_in[i] = 0.0
            for k in range(n_links):
                pbar[ob_debtor[k]] += L[ob_debtor[k], ob_creditor[k]]
            for k in range(n_links):
                due_in[ob_creditor_t[k]] += L[ob_debtor_t[k], ob_creditor_t[k]]

            # 3. the lab raises new equity for what it cannot otherwise pay, up to its capacity
            if alive[lab] and not M.tr_on:
                need = max(0.0, pbar[lab] - e[lab] - due_in[lab])
                raise_share = M.raise_share_winter if winter else M.raise_share
                raised = min(need, raise_share * equity[lab] * dt)
                e[lab] += raised
                r_need[t] = need
                r_gap[t] = need - raised
            elif alive[lab]:
                # 3b. the treasury: below its runway target the lab seeks a round, which closes
                # with a logistic probability (regime, sentiment) and is banked whole; the
                # facility covers what is still missing this step and is repaid from rounds
                need = max(0.0, pbar[lab] - e[lab] - due_in[lab])
                avail = e[lab] + due_in[lab] - pbar[lab]  # cash left after this step if all pay
                burn = revenue * opex_share[t] - revenue + (rate[lab] * (debt[lab] - sc[3])
                                                            + M.tr_fac_rate * sc[3])
                t_next = min(t + 1 + spy, M.n_steps)
                burn = add_projected_compute(burn, t, t_next, lab, c_active, c_payer, c_remaining, c_cut, c_flex,
                                             c_scale, M.rs_on, rs_pen)  # the next year's committed compute
                if M.rsh_on:
                    burn += rsh_year(M.rsh_share, revenue, M.rsh_until, t, t_next, M.rsh_cap - rsh_paid[0], dt)
                raised = 0.0
                if M.tr_runway * max(0.0, burn) - avail > 0.0:
                    x = (M.tr_logit_winter if winter else M.tr_logit) + M.tr_sent_slope * sc[1]
                    if shocks[s, 4 + 2 * n] < 1.0 / (1.0 + math.exp(-x)):
                        raised = M.tr_share * equity[lab]
                if raised > need:
                    lab_drawn = -min(sc[3], raised - need)
                else:
                    lab_drawn = min(need - raised, M.tr_facility - sc[3])
                sc[3] += lab_drawn
                debt[lab] += lab_drawn
                e[lab] += raised + lab_drawn
                r_need[t] = need
                r_gap[t] = max(0.0, need - raised - lab_drawn)
            else:
                raised = 0.0
                r_need[t] = 0.0
                r_gap[t] = 0.0

            # 3c. flexible cuts and restructuring before default (docs/model.md section 7c)
            if M.rs_on and alive[lab]:
                burn = revenue * opex_share[t] - revenue + (rate[lab] * (debt[lab] - sc[3])
                                                            + M.tr_fac_rate * sc[3])
                t_next = min(t + 1 + spy, M.n_steps)
                for c in range(m):
                    if c_active[c] and c_payer[c] == lab:
                        burn += (contract_value(c_remaining[c, t + 1],
                                                c_remaining[c, max(c_cut[c], t + 1)], c_cut[c], c_flex[c], rs_pen)
                                 - contract_value(c_remaining[c, t_next],
                                                  c_remaining[c, max(c_cut[c], t_next)], c_cut[c], c_flex[c], rs_pen)) * c_scale[c]
                if M.rsh_on:
                    burn += rsh_year(M.rsh_share, revenue, M.rsh_until, t, t_next, M.rsh_cap - rsh_paid[0], dt)
                # runway short after this step's funding: give notice on every flexible share
                if e[lab] + due_in[lab] - pbar[lab] < M.rs_cut_runway * max(0.0, burn):
                    for c in range(m):
                        if c_active[c] and c_payer[c] == lab and c_cut[c] < 0 and c_flex[c] > 0.0:
                            c_cut[c] = t + M.rs_notice
                # still short: a haircut hcut on every remaining payment to its contract payees
                # closes the gap if the cumulative haircut stays within haircut_max; the
                # payees give up hcut of the value still due (a distressed exchange)
                if r_gap[t] > 0.0:
                    due_now = 0.0
                    h_cap = 1.0
                    for c in range(m):
                        if c_active[c] and c_payer[c] == lab:
                            v, fdue = due_factors(t, c_cut[c], c_flex[c], rs_pen)
                            due_now += c_amount[c, t] * fdue * c_scale[c]
                            h_cap = min(h_cap, 1.0 - (1.0 - M.rs_haircut_max) / c_scale[c])
                    if due_now > 0.0 and r_gap[t] <= h_cap * due_now:
                        hcut = r_gap[t] / due_now
                        for c in range(m):
                            if c_active[c] and c_payer[c] == lab:
                                b = c_payee[c]
                                v, fdue = due_factors(t, c_cut[c], c_flex[c], rs_pen)
                                full = c_amount[c, t] * fdue
                                old = full * c_scale[c]
                                r_rs_loss[b] += hcut * c_scale[c] * contract_value(c_remaining[c, t],
                                                                                   c_remaining[c, max(c_cut[c], t)], c_cut[c], c_flex[c], rs_pen)
                                c_scale[c] *= 1.0 - hcut
                                dd = full * c_scale[c] - old
                                L[lab, b] += dd
                                pbar[lab] += dd
                                due_in[b] += dd
                                margin_lost[b] -= dd
                                shortfall_now[b] -= dd
                        r_gap[t] = 0.0
                        if r_credit_step[lab] < 0:
                            r_credit_step[lab] = t

            # 3d. partners build (docs/model.md section 6d): capex tied to live contracts, built
            # `lead` ahead, and other capex, funded by cash above a floor and then by new debt
            # when the market is open to the entity (its refinancing draw); shut, the plan shrinks
            if build_on:
                for kb in range(b_ent.shape[0]):
                    i = b_ent[kb]
                    plan_tied[i] = 0.0
                    plan_other[i] = 0.0
                    bscale[i] = 1.0
                if t + lead < M.n_steps:
                    for kc in range(b_con.shape[0]):
                        c = b_con[kc]
                        c_plan[c] = 0.0
                        if c_active[c]:
                            k_c = c_capex[c] * c_amount[c, t + lead]
                            if M.rs_on:
                                v, fdue = due_factors(t + lead, c_cut[c], c_flex[c], rs_pen)
                                k_c *= v
                            c_plan[c] = k_c
                            plan_tied[c_payee[c]] += k_c
                for kb in range(b_ent.shape[0]):
                    i = b_ent[kb]
                    if not alive[i]:
                        continue
                    plan_other[i] = M.capex_other[i, t] * (1.0 - M.build_winter_cut) if winter \
                        else M.capex_other[i, t]
                    plan = plan_tied[i] + plan_other[i]
                    if plan <= 0.0:
                        continue
                    # it keeps a floor of cash and next year's principal and leases before building
                    keep = M.cash_floor * cash0[i]
                    for u in range(t + 1, min(t + 1 + spy, M.n_steps)):
                        keep += amort[i] + amort_new[i] + bullet[i, u] + M.lease[i, u]
                    a = e[i] + due_in[i] - pbar[i]
                    if a < 0.0:  # cannot meet this step's obligations: it neither builds nor borrows to
                        bscale[i] = 0.0
                        continue
                    f = max(0.0, a - keep)
                    short = plan - f
                    if short > 0.0:
                        lev = debt[i] / equity[i] if equity[i] > 0.0 else 0.0
                        if p_open[i] < 0.0:  # not computed for a maturity this step: the same formula
                            x = refi_logit[i] + M.refi_sent_slope * sc[1] - M.refi_lev_slope * lev
                            if winter:
                                x += M.refi_winter_shift
                            p_open[i] = 1.0 / (1.0 + math.exp(-x))
                        if shocks[s, 5 + 2 * i] < p_open[i]:
                            r_new = rate[i] + M.spread_lev * lev
                            if winter:
                                r_new += M.spread_winter
                            coupon[i] = (coupon[i] * debt[i] + r_new * short) / (debt[i] + short)
                            debt[i] += short
                            e[i] += short
                            new_out[i] += short
                            amort_new[i] += short / M.new_debt_steps
                            r_new_debt[i] += short
                        else:
                            bscale[i] = f / plan

            # 4. clear all obligations jointly. Skipped when everyone can pay in full if
            # everyone else does (then p = p-bar): exactly the test of round 1 of the
            # clearing (sim.engine.clearing.all_can_pay; L has a zero diagonal).
            full = True
            if M.clearing_on:
                for i in range(n):
                    pb = pbar[i]
                    if pb > 0.0 and e[i] + due_in[i] < pb - _REL_TOL * max(1.0, pb):
                        full = False
                        break
            if full:
                for i in range(n):
                    p[i] = pbar[i]
                    dflt[i] = False
                    frac[i] = 1.0  # p / p-bar is exactly 1.0 when it pays in full
                    receipts[i] = due_in[i]  # sum_j L[j, i] * 1.0
            else:
                rounds = clearing_vector(L, e, el, alpha, beta, p, dflt, work)
                r_diag[1] += 1.0
                r_diag[2] += rounds
                for i in range(n):
                    receipts[i] = 0.0
                    frac[i] = p[i] / pbar[i] if pbar[i] > 0.0 else 1.0
                for k in range(n_links):  # row-major: for each creditor, debtors ascending
                    j, i = ob_debtor[k], ob_creditor[k]
                    if pbar[j] > 0.0:
                        receipts[i] += L[j, i] * frac[j]

            # conservation: what was paid equals what was received (outside creditors included)
            paid_total = 0.0
            received_total = 0.0
            for j in range(n):
                paid_total += p[j]
                if pbar[j] > 0.0:
                    received_total += el[j] * frac[j]
            for k in range(n):
                received_total += receipts[k]
            if paid_total > 0.0:
                err = abs(paid_total - received_total) / paid_total
                if err > r_diag[0]:
                    r_diag[0] = err

            # 5. settle: cash, debt, contract and tranche progress, network shortfalls
            for c in range(m):
                if c_active[c] and M.rs_on:
                    v, fdue = due_factors(t, c_cut[c], c_flex[c], rs_pen)
                    paid_c = c_amount[c, t] * fdue * c_scale[c] * frac[c_payer[c]]
                    c_paid[c] += paid_c
                    if c_payer[c] == lab:
                        lab_compute += paid_c
                elif c_active[c]:
                    c_paid[c] += c_amount[c, t] * frac[c_payer[c]]
                    if c_payer[c] == lab:
                        lab_compute += c_amount[c, t] * frac[lab]
            if rsh_due > 0.0:
                rsh_paid[0] += rsh_due * frac[lab]
            for i in range(n):
                if not alive[i]:
                    continue
                shortfall_now[i] += max(0.0, due_in[i] - receipts[i])
                if dflt[i]:
                    cash[i] = 0.0
                else:
                    cash[i] = max(0.0, e[i] + receipts[i] - p[i])
                    debt[i] -= principal[i]
                    # scheduled amortisation leaves the schedule whether paid or refinanced
                    amortising[i] -= scheduled[i]
                    if build_on and sched_new[i] > 0.0:
                        new_out[i] -= sched_new[i]
                        if new_out[i] <= 0.0:  # the ladder is repaid
                            new_out[i] = 0.0
                            amort_new[i] = 0.0
            for k in range(nl):
                if t == l_maturity[k] and loan_out[k] > 0.0 and alive[l_borrower[k]] \
                        and alive[l_lender[k]] and not dflt[l_borrower[k]]:
                    loan_out[k] = 0.0
            for k in range(q):
                if pending[k]:
                    a, b = t_investor[k], t_investee[k]
                    paid = t_amount[k] * frac[a]
                    t_done[k] = True
                    if b == lab:
                        lab_invested += paid
                    if paid > 0.0 and equity[b] > 0.0:
                        share[a, b] += paid / equity[b]  # shares bought at the current mark

            if build_on:
                # 5b. after settlement (this step's tranche stakes booked): capex paid from cash (at
                # most the cash there is), then the covenants
                # (docs/model.md section 6d): LTV (asset sales, then default) and coverage;
                # only the entities that build or have a covenant (ModelArrays.b_ent) do any
                for kb in range(b_ent.shape[0]):
                    i = b_ent[kb]
                    covenant[i] = False
                    cov_fund[i] = False
                    capex_paid[i] = 0.0
                    built_share[i] = 0.0
                    if not alive[i] or dflt[i]:
                        continue
                    plan = (plan_tied[i] + plan_other[i]) * bscale[i]
                    if plan > 0.0:
                        paid = min(plan, cash[i])
                        capex_paid[i] = paid
                        cash[i] -= paid
                        capex_book[i] += paid
                        built_share[i] = bscale[i] * (paid / plan)
                        k_hist[i, t] += plan_other[i] * built_share[i]
                    if M.ltv_max[i] > 0.0:
                        hb = M.holdings_beta[i]
                        h_s = M.holdings[i] * (sentiment if hb == 1.0 else sentiment ** hb) * h_frac[i]  # x ** 1.0 == x
                        h_all = h_s + stake_value(share, alive, equity, st_ptr, st_col, i)
                        nd = debt[i] - cash[i]
                        if nd > M.ltv_max[i] * h_all:
                            if r_breach_step[i] < 0:
                                r_breach_step[i] = t
                            x = min(h_s, (nd - M.ltv_max[i] * h_all) / (1.0 - M.sale_discount - M.ltv_max[i]))
                            if x > 0.0:
                                repay = (1.0 - M.sale_discount) * x
                                debt[i] -= repay
                                rest = repay - amortising[i]  # off the amortising part first
                                amortising[i] = max(0.0, amortising[i] - repay)
                                if rest > 0.0 and new_out[i] > 0.0:
                                    new_out[i] = max(0.0, new_out[i] - rest)
                                    if new_out[i] <= 0.0:
                                        amort_new[i] = 0.0
                                h_frac[i] *= 1.0 - x / h_s
                                h_sold[i] += x
                                r_sold[i] += x
                                nd -= repay
                                h_all -= x
                            if nd > M.ltv_default * h_all:
                                covenant[i] = True
                                cov_fund[i] = nd > M.ltv_default * (h_all + stake_lost[i])
                    if M.coverage_min[i] > 0.0 and not covenant[i]:
                        # operating cash flow: outside flow net of delivery costs, plus what its
                        # contracts' payers and the revenue share paid it this step
                        cf = net_out[i]
                        for c in range(m):
                            if c_active[c] and c_payee[c] == i:
                                if M.rs_on:
                                    v, fdue = due_factors(t, c_cut[c], c_flex[c], rs_pen)
                                    cf += c_amount[c, t] * fdue * c_scale[c] * frac[c_payer[c]]
                                else:
                                    cf += c_amount[c, t] * frac[c_payer[c]]
                        if rsh_due > 0.0 and M.rsh_payee == i:
                            cf += rsh_due * frac[lab]
                        cov_cf[i] += cf
                        cov_int[i] += interest_now[i]
                        cov_short[i] += shortfall_now[i]
                        if t % spy == spy - 1:
                            if cov_int[i] > 0.0 and cov_cf[i] < M.coverage_min[i] * cov_int[i]:
                                cov_low[i] += 1
                                if r_breach_step[i] < 0:
                                    r_breach_step[i] = t
                                if cov_low[i] >= M.coverage_years:
                                    covenant[i] = True
                                    cov_fund[i] = cov_cf[i] + cov_short[i] < M.coverage_min[i] * cov_int[i]
                            else:
                                cov_low[i] = 0
                            cov_cf[i] = 0.0
                            cov_int[i] = 0.0
                            cov_short[i] = 0.0
                # what each live contract's payee built this step
                if t + lead < M.n_steps:
                    for kc in range(b_con.shape[0]):
                        c = b_con[kc]
                        if c_plan[c] > 0.0 and built_share[c_payee[c]] > 0.0:
                            c_built[c] += c_plan[c] * built_share[c_payee[c]]

            # 6. defaults: liquidity (could not pay in full), solvency (book equity < 0); a
            # default writes down its counterparties, which may make others insolvent in
            # the same step: waves until none is new (at most n + 1)
            for i in range(n):
                net_shortfall[i] += shortfall_now[i]
                new[i] = False
                if alive[i] and dflt[i]:
                    new[i] = True
                    r_default_kind[i] = LIQUIDITY
                elif build_on and alive[i] and covenant[i]:  # a covenant default (section 6d)
                    new[i] = True
                    r_default_kind[i] = LIQUIDITY
                    r_covenant_default[i] = True
                elif alive[i] and force_step[i] == t:  # systemic importance: forced default
                    new[i] = True
                    r_default_kind[i] = FORCED
            for _wave in range(n + 1):
                any_new = False
                for i in range(n):
                    if alive[i] and not new[i] and solvency_on[i]:
                        # book equity: start value plus retained cash, less debt added, plus
                        # the change in marked stakes and network loans, less impairments
                        w = (book0[i] + (cash[i] - cash0[i]) - (debt[i] - debt0[i])
                             + (stake_value(share, alive, equity, st_ptr, st_col, i) - stake0[i])
                             + loan_position(l_lender, l_borrower, l_amount, loan_out, i) - impairment[i])
                        if build_on:  # capex is an asset at cost; sold holdings leave the books
                            w += capex_book[i] - h_sold[i]
                        if w < 0.0:
                            new[i] = True
                            r_default_kind[i] = SOLVENCY
                    any_new = any_new or new[i]
                if not any_new:
                    break

                # classify the whole wave first (Elsinger-Lehar-Summer): would the entity
                # default even had every network counterparty paid in full, this step and
                # all earlier ones (no unpaid receivables, no lost contracts, no write-offs
                # of capacity or stakes caused by others' defaults)? If not, contagious.
                for i in range(n):
                    if new[i]:
                        pb = pbar[i]
                        prior = net_shortfall[i] - shortfall_now[i]
                        cash_cf = e[i] + due_in[i] - pb + prior + margin_lost[i]
                        fundamental = cash_cf < -1e-12 * max(1.0, pb)
                        if not fundamental and solvency_on[i]:
                            # book equity with that cash, its principal paid, no write-downs by others
                            debt_cf = debt[i] - principal[i] if dflt[i] else debt[i]
                            w = (book0[i] + (cash_cf - cash0[i]) - (debt_cf - debt0[i])
                                 + (stake_value(share, alive, equity, st_ptr, st_col, i) - stake0[i])
                                 + loan_position(l_lender, l_borrower, l_amount, loan_out, i) + stake_lost[i])
                            if build_on:  # this step's capex came out of that cash
                                w += capex_book[i] - h_sold[i] - capex_paid[i]
                            fundamental = w < 0.0
                        if not fundamental and build_on and covenant[i]:
                            fundamental = cov_fund[i]
                        r_contagious[i] = not fundamental and r_default_kind[i] != FORCED

                # then record each default and pass its consequences to the network
                for i in range(n):
                    if not new[i]:
                        continue
                    r_default_step[i] = t
                    rec_i = recovery[i]
                    if M.dr_on:  # a downturn: AI winter, or others defaulting in this step too
                        clustered = False
                        for j in range(n):
                            if j != i and (new[j] or r_default_step[j] == t):
                                clustered = True
                        if winter or clustered:
                            rec_i = recovery[i] * M.dr_scale
                    if dflt[i]:  # could not pay this step: outside claims include what was due
                        remaining_debt = debt[i] - principal[i]
                        r_exposure[i] = el[i] + remaining_debt
                        r_loss[i] = (el[i] - el[i] * frac[i]) + (1.0 - rec_i) * remaining_debt
                    else:  # insolvent after paying this step: its cash goes to its creditors first
                        r_exposure[i] = debt[i]
                        r_loss[i] = (1.0 - rec_i) * max(debt[i] - cash[i], 0.0)
                    # stakes in i are worth nothing from now on
                    for h in range(n):
                        if alive[h] and h != i and share[h, i] > 0.0:
                            stake_lost[h] += share[h, i] * equity[i]
                    # network loans with i end: its lenders write off what it owed; what it
                    # lent is lost
                    for k in range(nl):
                        if loan_out[k] > 0.0 and l_borrower[k] == i:
                            if alive[l_lender[k]]:
                                stake_lost[l_lender[k]] += loan_out[k]
                            loan_out[k] = 0.0
                        elif loan_out[k] > 0.0 and l_lender[k] == i:
                            loan_out[k] = 0.0
                    alive[i] = False
                    cash[i] = 0.0
                    debt[i] = 0.0
                    if i == lab:
                        sc[3] = 0.0  # the drawn facility is part of the debt just defaulted on
                    # contracts with i end; payees of i lose the backlog, write off sunk capacity
                    for c in range(m):
                        if not c_active[c]:
                            continue
                        a, b = c_payer[c], c_payee[c]
                        if a != i and b != i:
                            continue
                        c_active[c] = False
                        if M.cap_on and b == i and a == lab and alive[lab] and not new[lab]:
                            c_lost[c] = t + 1 + M.cap_delay
                        if a == i and alive[b] and not new[b]:
                            backlog = c_remaining[c, t + 1]
                            volume = backlog
                            if M.rs_on:  # what is left after cuts (volume) and haircuts (value)
                                volume = contract_volume(c_remaining[c, t + 1],
                                                         c_remaining[c, max(c_cut[c], t + 1)], c_cut[c], c_flex[c])
                                backlog = contract_value(c_remaining[c, t + 1],
                                                         c_remaining[c, max(c_cut[c], t + 1)], c_cut[c], c_flex[c], rs_pen) * c_scale[c]
                            r_lost_backlog[b] += backlog
                            keep = c_relet_share[c] * (1.0 - c_relet_discount[c])
                            if build_on and M.builds[b]:  # what it built for deliveries not yet made
                                impairment[b] += max(0.0, c_built[c] - c_capex[c] * (c_remaining[c, 0]
                                                                                   - c_remaining[c, t + 1])) * (1.0 - keep)
                            else:
                                impairment[b] += c_capex[c] * volume * (1.0 - keep)
                            c_relet[c] = t + 1 + c_relet_delay[c]
                    new[i] = False

            # the lab's sources and uses this step (a record only: nothing above reads it)
            if lab_alive_start:
                rev_dt = revenue * dt
                debt_service = el[lab] + net_out[lab] if net_out[lab] < 0.0 else el[lab]
                if cap_repl > 0.0:  # replacement compute is compute, not debt service
                    debt_service -= cap_repl
                    lab_compute += cap_repl * frac[lab]
                if M.cap_on:
                    rev_dt *= cap_factor  # the revenue the lab could serve
                debt_service *= frac[lab]
                d_cash = cash[lab] - lab_cash_start
                r_flows[F_REVENUE, t] = rev_dt
                r_flows[F_OPEX, t] = rev_dt * opex_share[t]
                r_flows[F_COMPUTE, t] = lab_compute
                r_flows[F_DEBT_SERVICE, t] = debt_service
                r_flows[F_RAISED, t] = raised
                r_flows[F_INVESTED, t] = lab_invested
                other = d_cash - (rev_dt - rev_dt * opex_share[t] - lab_compute - debt_service
                                  + raised + lab_invested)
                if abs(other) <= 1e-9 * max(1.0, abs(d_cash)):
                    other = 0.0  # rounding noise of the sum above
                r_flows[F_OTHER, t] = other
                r_flows[F_CASH_CHANGE, t] = d_cash
                if M.tr_on:  # facility draws are funding too (they sit in F_OTHER)
                    r_flows[F_BURN, t] = raised + lab_invested + lab_drawn - d_cash
                else:
                    r_flows[F_BURN, t] = raised + lab_invested - d_cash
            else:
                for f in range(N_FLOWS):
                    r_flows[f, t] = 0.0

            # the lab's runway at the year end: cash over the burn projected for the next
            # year (docs/model.md section 7b; a record only)
            if t % spy == spy - 1:
                if alive[lab]:
                    burn_y = revenue * opex_share[t] - revenue + (rate[lab] * (debt[lab] - sc[3])
                                                                  + M.tr_fac_rate * sc[3])
                    t_next = min(t + 1 + spy, M.n_steps)
                    burn_y = add_projected_compute(burn_y, t, t_next, lab, c_active, c_payer, c_remaining, c_cut,
                                                   c_flex, c_scale, M.rs_on, rs_pen)
                    if M.rsh_on:
                        burn_y += rsh_year(M.rsh_share, revenue, M.rsh_until, t, t_next, M.rsh_cap - rsh_paid[0], dt)
                    if burn_y > 0.0 and cash[lab] < RUNWAY_HI * burn_y:
                        r_runway[t // spy] = cash[lab] / burn_y
                    else:
                        r_runway[t // spy] = RUNWAY_HI
                else:
                    r_runway[t // spy] = -1.0

        if out is not None:
            # add the finished path to the chunk statistics
            o_n_paths[0] += 1
            count = 0
            total = 0.0
            for i in range(n):
                d = r_default_step[i]
                if d >= 0:
                    count += 1
                    o_default_at[i, d] += 1
                    o_kind_count[i, r_default_kind[i]] += 1
                    if r_contagious[i]:
                        o_contagious[i] += 1
                    o_loss_sum[i] += r_loss[i]
                    o_exposure_sum[i] += r_exposure[i]
                    total += r_loss[i]
                o_backlog_sum[i] += r_lost_backlog[i]
                if r_credit_step[i] >= 0:
                    o_restructured[i] += 1
                if r_credit_step[i] >= 0 or d >= 0:
                    o_credit_event[i] += 1
                o_rs_loss_sum[i] += r_rs_loss[i]
                if build_on:
                    if r_breach_step[i] >= 0:
                        o_breached[i] += 1
                    if r_covenant_default[i]:
                        o_covenant_default[i] += 1
                    o_new_debt_sum[i] += r_new_debt[i]
                    o_sold_sum[i] += r_sold[i]
            o_cascade[count] += 1
            # losses by who bears them (L_* classes)
            imp = 0.0
            short = 0.0
            stakes = 0.0
            given = 0.0
            for i in range(n):
                imp += impairment[i]
                short += net_shortfall[i]
                stakes += stake_lost[i]
                given += r_rs_loss[i]
            for kc, v in ((L_OUTSIDE, total), (L_IMPAIRED, imp), (L_SHORTFALL, short), (L_STAKES, stakes),
                          (L_EXCHANGE, given)):
                o_loss_class[kc, 0] += v
                o_loss_class[kc, 1] += v * v
            o_total_loss[0] += total
            o_total_loss[1] += total * total
            k = log_bin(total, LOSS_LO, LOSS_HI, LOSS_BINS)
            o_loss_hist[k] += 1
            o_loss_hist_sum[k] += total
            for y in range(M.n_steps // spy):
                need_pos = False
                gap_pos = False
                need_sum = 0.0
                for t in range(y * spy, (y + 1) * spy):
                    need_sum += r_need[t]
                    if r_need[t] > 0.0:
                        need_pos = True
                    if r_gap[t] > 1e-12:
                        gap_pos = True
                if need_pos:
                    o_need_year[y] += 1
                if gap_pos:
                    o_gap_year[y] += 1
                o_need_sum_year[y] += need_sum
            # the lab's flows by year and their running totals (cumulative need and burn)
            cum_need = 0.0
            cum_burn = 0.0
            for y in range(M.n_steps // spy):
                for f in range(N_FLOW_ROWS):
                    v = 0.0
                    for t in range(y * spy, (y + 1) * spy):
                        v += r_need[t] if f == F_NEED else r_flows[f, t]
                    o_flow_sum[f, y] += v
                    o_flow_hist[f, y, signed_bin(v, FLOW_LO, FLOW_HI, FLOW_BINS)] += 1
                    if f == F_NEED:
                        cum_need += v
                    elif f == F_BURN:
                        cum_burn += v
                o_cum_need_hist[y, log_bin(cum_need, NEED_LO, NEED_HI, NEED_BINS)] += 1
                o_cum_burn_hist[y, signed_bin(cum_burn, FLOW_LO, FLOW_HI, FLOW_BINS)] += 1
                if r_runway[y] >= 0.0:
                    o_runway_hist[y, log_bin(r_runway[y], RUNWAY_LO, RUNWAY_HI, RUNWAY_BINS)] += 1
            for t in range(M.n_steps):
                if r_winter[t] > 0.5:
                    o_winter[t] += 1
                o_rev_hist[t, log_bin(r_revenue[t], REV_LO, REV_HI, REV_BINS)] += 1
                o_need_hist[t, log_bin(r_need[t], NEED_LO, NEED_HI, NEED_BINS)] += 1
            if r_diag[0] > o_diag[0]:
                o_diag[0] = r_diag[0]
            o_diag[1] += r_diag[1]
            o_diag[2] += r_diag[2]
            if tilted:  # the same statistics weighted by the path's likelihood ratio
                w = math.exp(logw)
                w2 = w * w
                o_w_sum[0] += w
                o_w_sum[1] += w2
                for i in range(n):
                    d = r_default_step[i]
                    if d >= 0:
                        o_w_default_at[i, d] += w
                        o_w2_default_at[i, d] += w2
                        if r_contagious[i]:
                            o_w_contagious[i] += w
                        o_w_loss_sum[i] += w * r_loss[i]
                o_w_cascade[count] += w
                o_w2_cascade[count] += w2
                o_w_loss[0] += w * total
                o_w_loss[1] += w * total * total
                o_w_loss[2] += w2 * total * total
                kb = log_bin(total, LOSS_LO, LOSS_HI, LOSS_BINS)
                o_w_loss_hist[kb] += w
                o_w_loss_hist_sum[kb] += w * total


def simulate_chunk(M, rng, n_paths, shocks, tranche_u, st, ws, rec, out):
    """Simulate `n_paths` paths with the chunk's generator and accumulate into `out`.

    A plain Python function on purpose: `derive` and `_run` are compiled as they are, and
    called from here. A jitted wrapper around them costs a third of the cold compile
    (numba links `_run` into the wrapper's module and LLVM optimises the whole of it a
    second time, ~10 s of ~40 s on the reference machine) to save one dispatch per chunk.
    Same arithmetic, in the same order: the results are bit-identical."""
    _run(M, derive(M), rng, n_paths, 0, M.n_steps, shocks, tranche_u, st, ws, rec, out)


@njit(cache=True, nogil=True)
def pilot_paths(M, rng, n_paths, shocks, tranche_u, st, ws, rec, feats):
    """Importance-sampling pilot (sim.engine.rare): simulate `n_paths` paths under M.tilt
    and write one row of `feats` per path: [log likelihood ratio, final log revenue, number
    of defaults, each entity's default step (-1: none) (n), each entity's final log outside
    cash flow (n), then the path's sufficient statistics for the cross-entropy update: mean
    revenue, sentiment and jump normal, share of steps whose regime uniform is below
    p_enter, mean cash-flow normal of each entity (n)]."""
    D = derive(M)
    n = M.cash0.shape[0]
    T = M.n_steps
    for k in range(n_paths):
        _run(M, D, rng, 1, 0, T, shocks, tranche_u, st, ws, rec, None)
        feats[k, 0] = st.sc[4] if M.tilt.shape[0] > 0 else 0.0
        feats[k, 1] = st.sc[0]
        c = 0
        for i in range(n):
            feats[k, 3 + i] = rec.default_step[i]
            feats[k, 3 + n + i] = st.log_ocf[i]
            if rec.default_step[i] >= 0:
                c += 1
        feats[k, 2] = c
        base = 3 + 2 * n
        for j in range(4 + n):
            feats[k, base + j] = 0.0
        for t in range(T):
            feats[k, base + TILT_REV] += shocks[t, 0] / T
            feats[k, base + TILT_SENT] += shocks[t, 1] / T
            if shocks[t, 2] < M.p_enter:
                feats[k, base + TILT_ENTER] += 1.0 / T
            feats[k, base + TILT_JUMP] += shocks[t, 3] / T
            for i in range(n):
                feats[k, base + TILT_OCF + i] += shocks[t, 4 + 2 * i] / T


@njit(cache=True, nogil=True)
def simulate_path(M, shocks, tranche_u, st, ws, rec):
    """One whole path on the given shocks (derives the scenario constants: allocates)."""
    D = derive(M)
    _reset_path(M, D, st, rec, tranche_u)
    _run(M, D, None, 1, 0, M.n_steps, shocks, None, st, ws, rec, None)


@njit(cache=True, nogil=True)
def step(t, M, sh, st, ws, rec):
    """Advance one path by one period (docs/model.md); `sh` are this step's shocks.

    The replay and test entry point: the code of the hot loop, but it derives the
    scenario constants on every call (which allocates)."""
    row = np.ascontiguousarray(sh).reshape((1, sh.shape[0]))
    _run(M, derive(M), None, 1, t, t + 1, row, None, st, ws, rec, None)


@njit(cache=True, nogil=True)
def reset_path(M, st, rec, tranche_u):
    """Start a path: the scenario's initial state; tranche conditions from `tranche_u`."""
    _reset_path(M, derive(M), st, rec, tranche_u)


@njit(cache=True, nogil=True)
def _reset_path(M, D, st, rec, tranche_u):
    """The state at the start of a path (a leaf: see the note above `_run`)."""
    n = M.cash0.shape[0]
    st.sc[0] = M.log_r0
    st.sc[1] = 0.0
    st.sc[2] = 0.0
    st.sc[3] = 0.0
    st.sc[4] = 0.0
    for i in range(n):
        st.cash[i] = M.cash0[i]
        st.debt[i] = M.debt0[i]
        st.amortising[i] = M.debt0[i] - M.bullet_total[i]
        st.log_ocf[i] = 0.0
        st.alive[i] = True
        st.impairment[i] = 0.0
        st.net_shortfall[i] = 0.0
        st.stake_lost[i] = 0.0
        st.stake0[i] = D.stake0[i]
        for j in range(n):
            st.share[i, j] = M.share0[i, j]
        rec.default_step[i] = -1
        rec.default_kind[i] = 0
        rec.contagious[i] = False
        rec.loss[i] = 0.0
        rec.exposure[i] = 0.0
        rec.lost_backlog[i] = 0.0
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
    for k in range(rec.runway.shape[0]):
        rec.runway[k] = 0.0
    for i in range(n):
        rec.credit_step[i] = -1
        rec.rs_loss[i] = 0.0
    for c in range(st.c_cut.shape[0]):
        st.c_cut[c] = -1
        st.c_scale[c] = 1.0
    st.rsh_paid[0] = 0.0
    for c in range(st.c_lost.shape[0]):
        st.c_lost[c] = -1
    if M.build_on:
        _reset_build(M, st, rec)


@njit(cache=True, nogil=True)
def _reset_build(M, st, rec):
    """The [build] part of a path's starting state (a leaf, arrays bound once)."""
    n, T, lead = M.cash0.shape[0], M.n_steps, M.build_lead
    rate, c_capex, c_remaining = M.rate, M.c_capex, M.c_remaining
    coupon, amort_new, new_out, ripe = st.coupon, st.amort_new, st.new_out, st.ripe
    capex_book, h_frac, h_sold = st.capex_book, st.h_frac, st.h_sold
    cov_cf, cov_int, cov_short, cov_low, k_hist, c_built = st.cov_cf, st.cov_int, st.cov_short, st.cov_low, st.k_hist, st.c_built
    breach_step, sold, new_debt, covenant_default = rec.breach_step, rec.sold, rec.new_debt, rec.covenant_default
    for i in range(n):
        coupon[i] = rate[i]
        amort_new[i] = 0.0
        new_out[i] = 0.0
        ripe[i] = 0.0
        capex_book[i] = 0.0
        h_frac[i] = 1.0
        h_sold[i] = 0.0
        cov_cf[i] = 0.0
        cov_int[i] = 0.0
        cov_short[i] = 0.0
        cov_low[i] = 0
        breach_step[i] = -1
        sold[i] = 0.0
        new_debt[i] = 0.0
        covenant_default[i] = False
        for t in range(T):
            k_hist[i, t] = 0.0
    for c in range(c_built.shape[0]):
        # capex for the first `lead` steps' payments was spent before the grid
        c_built[c] = c_capex[c] * (c_remaining[c, 0] - c_remaining[c, min(lead, T)])
