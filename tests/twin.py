"""A pure-Python twin of one simulation period (no numba), for pinning `sim.engine.kernel.step`.

Written from the economics (docs/model.md, sections 1-11, with issue 12's treasury (7b),
restructuring (7c), revenue share (6b), capacity (6c), downturn recoveries (9) and partners
that build with borrowed money (6d), and the documented conventions of
sim/engine/kernel.py), for readability rather than speed: plain Python floats and lists, one
function per stage of the period. The joint clearing goes through the public, validated
API `sim.engine.clearing.clear_detailed`, not the kernel's internal routines.

    state = state_from_kernel(st)                    # snapshot of a kernel State
    new_state, rec = step_twin(t, M, shocks[t], state)

`rec` (a `StepRecord`) says what the period produced: the lab's revenue, funding need and
gap, the regime, each default (kind, ELS class, outside creditors' loss and exposure),
the backlog payees lost, clearing diagnostics, and `events`, a Counter of the branches
the period went through (used by the test to prove its coverage).

Conventions the twin shares with the kernel (they are modelling choices, documented
there): per-step amounts are annual amounts times dt; shocks per step are
[z_revenue, z_sentiment, u_regime, z_jump, (z_ocf_i, u_refi_i) for each entity i], then,
when the treasury's shock is drawn, u_treasury (docs/model.md sections 1, 7b);
obligations due in a period are cleared jointly; a defaulted entity neither pays nor
receives from the next period on.
"""

from __future__ import annotations

import copy
import math
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from sim.engine.clearing import clear_detailed

LIQUIDITY, SOLVENCY = 1, 2
# Tolerances shared with the kernel's documented conventions.
MILESTONE_TOL = 1e-12  # cumulative payments within this of a milestone count as reaching it
ELS_CASH_TOL = 1e-12  # relative: counterfactual cash this far below zero is still "can pay"


# ---------------------------------------------------------------------------- data


@dataclass
class TwinState:
    """Everything that carries from one period to the next on one path."""

    log_revenue: float
    log_sentiment: float
    winter: bool
    cash: list  # per entity
    debt: list  # outside debt (face)
    amortising: list  # part of the outside debt still on its amortisation schedule
    loan_out: list  # outstanding principal per network loan
    log_ocf: list  # log outside cash flow relative to its start
    alive: list  # bool
    share: list  # share[h][i]: stake of holder h in issuer i
    stake0: list  # marked value of each entity's stakes at the start of the path
    impairment: list  # cumulative write-offs of capacity built for defaulted payers
    net_shortfall: list  # cumulative cash the network failed to deliver (lost margin + unpaid)
    stake_lost: list  # value of stakes lost to issuers' defaults
    contract_active: list  # bool per contract
    contract_paid: list  # cumulative payments per contract
    relet_from: list  # per contract: step from which lost capacity is re-let (-1: none)
    tranche_ok: list  # bool: the tranche's outside (Bernoulli) condition holds on this path
    tranche_done: list  # bool: the tranche was paid (or attempted)
    facility_drawn: float = 0.0  # the lab's drawn credit facility (treasury), part of its debt
    cut_from: list = None  # per contract: step from which its flexible share is cut (-1: never)
    price_scale: list = None  # per contract: price left after distressed-exchange haircuts
    rsh_paid: float = 0.0  # revenue share paid so far
    lost_from: list = None  # per contract: step its lost capacity is replaced from (-1: none)
    # partners build with borrowed money (docs/model.md section 6d)
    coupon: list = None  # per entity: average coupon on outside debt (starts at `rate`)
    amort_new: list = None  # per entity: the new debt's repayment per step (a ladder over its tenor)
    new_out: list = None  # per entity: new debt still to repay on that ladder
    k_hist: list = None  # [i][t]: other (untied) capex paid at step t
    ripe: list = None  # per entity: other capex paid at least `lead` steps ago (earns capex_yield)
    capex_book: list = None  # per entity: cumulative capex paid (capitalised at cost)
    c_built: list = None  # per contract: capex its payee has built for it
    h_frac: list = None  # per entity: share of its outside holdings not yet sold
    h_sold: list = None  # per entity: cumulative mark of the holdings sold
    cov_cf: list = None  # per entity: operating cash flow summed over the current calendar year
    cov_int: list = None  # per entity: interest on outside debt summed over the year
    cov_short: list = None  # per entity: network shortfall summed over the year
    cov_low: list = None  # per entity: consecutive year ends in breach of the coverage covenant


@dataclass
class DefaultEvent:
    entity: int
    kind: int  # LIQUIDITY or SOLVENCY
    contagious: bool  # ELS: would not have defaulted had the network paid in full
    loss: float  # loss to outside creditors
    exposure: float  # outside claims on it when it defaulted
    cascade_round: int  # 0: found right after clearing; k: k-th wave of the in-step cascade


@dataclass
class StepRecord:
    revenue: float
    winter: bool
    need: float
    gap: float
    defaults: list = field(default_factory=list)  # DefaultEvent, in processing order
    lost_backlog: dict = field(default_factory=dict)  # payee -> backlog lost this period
    clearing_ran: bool = False  # True when somebody could not pay in full
    clearing_rounds: int = 0
    conservation_error: float = 0.0  # relative |paid - received| in the clearing
    events: Counter = field(default_factory=Counter)
    # the lab's sources and uses this period, by name (sim.engine.kernel.FLOW_NAMES[:N_FLOWS]);
    # empty when the lab was already in default
    flows: dict = field(default_factory=dict)
    # at a year end: (year index, the lab's runway in years; -1.0 when it is in default)
    runway: tuple | None = None
    restructured: bool = False  # the lab closed its gap by a distressed exchange this period
    restructured_entity: int = -1  # who did (the lab)
    rs_loss: dict = field(default_factory=dict)  # payee -> contract value given up in it
    # [build]: entities in breach of a covenant this period, the mark of the holdings each
    # sold, the new debt each issued, entities that defaulted on a covenant
    breached: set = field(default_factory=set)
    sold: dict = field(default_factory=dict)
    new_debt: dict = field(default_factory=dict)
    covenant_defaults: set = field(default_factory=set)


def state_from_kernel(st) -> TwinState:
    """A TwinState holding a copy of a kernel `State`."""
    def fl(a):
        return [float(x) for x in a]

    def bl(a):
        return [bool(x) for x in a]

    return TwinState(
        log_revenue=float(st.sc[0]), log_sentiment=float(st.sc[1]), winter=bool(st.sc[2] > 0.5),
        cash=fl(st.cash), debt=fl(st.debt), amortising=fl(st.amortising), loan_out=fl(st.loan_out),
        log_ocf=fl(st.log_ocf), alive=bl(st.alive),
        share=[fl(row) for row in st.share], stake0=fl(st.stake0), impairment=fl(st.impairment),
        net_shortfall=fl(st.net_shortfall), stake_lost=fl(st.stake_lost),
        contract_active=bl(st.c_active), contract_paid=fl(st.c_paid),
        relet_from=[int(x) for x in st.c_relet], tranche_ok=bl(st.t_ok), tranche_done=bl(st.t_done),
        facility_drawn=float(st.sc[3]), cut_from=[int(x) for x in st.c_cut], price_scale=fl(st.c_scale),
        rsh_paid=float(st.rsh_paid[0]), lost_from=[int(x) for x in st.c_lost],
        **_build_from_kernel(st),
    )


BUILD_FIELDS = ("coupon", "amort_new", "new_out", "k_hist", "ripe", "capex_book", "c_built", "h_frac", "h_sold",
                "cov_cf", "cov_int", "cov_short", "cov_low")  # kernel State names = TwinState names


def _build_from_kernel(st) -> dict:
    """The [build] part of a kernel State as TwinState fields (nothing for a kernel
    without them)."""
    if not hasattr(st, "coupon"):
        return {}
    out = {}
    for name in BUILD_FIELDS:
        a = np.asarray(getattr(st, name))
        conv = int if name == "cov_low" else float
        out[name] = [[conv(x) for x in row] for row in a] if a.ndim == 2 else [conv(x) for x in a]
    return out


def state_as_kernel_fields(s: TwinState) -> dict:
    """The state under the kernel's field names (for comparison with a kernel `State`)."""
    return {
        "sc[0]": s.log_revenue, "sc[1]": s.log_sentiment, "sc[2]": 1.0 if s.winter else 0.0,
        "sc[3]": s.facility_drawn,
        "cash": s.cash, "debt": s.debt, "amortising": s.amortising, "loan_out": s.loan_out,
        "log_ocf": s.log_ocf, "alive": s.alive, "share": s.share,
        "stake0": s.stake0, "impairment": s.impairment, "net_shortfall": s.net_shortfall,
        "stake_lost": s.stake_lost, "c_active": s.contract_active, "c_paid": s.contract_paid,
        "c_relet": s.relet_from, "t_ok": s.tranche_ok, "t_done": s.tranche_done,
        "c_cut": s.cut_from, "c_scale": s.price_scale, "rsh_paid": [s.rsh_paid],
        "c_lost": s.lost_from,
        **({name: getattr(s, name) for name in BUILD_FIELDS} if s.coupon is not None else {}),
    }


def initial_state(M, tranche_u) -> TwinState:
    """The state at the start of a path (tranche conditions drawn from `tranche_u`)."""
    n, m = len(M.cash0), len(M.c_payer)
    s = TwinState(
        log_revenue=float(M.log_r0), log_sentiment=0.0, winter=False,
        cash=[float(x) for x in M.cash0], debt=[float(x) for x in M.debt0],
        amortising=[float(d) - float(np.sum(b)) for d, b in zip(M.debt0, M.bullet)],
        loan_out=[float(x) for x in M.l_amount], log_ocf=[0.0] * n,
        alive=[True] * n, share=[[float(x) for x in row] for row in M.share0], stake0=[0.0] * n,
        impairment=[0.0] * n, net_shortfall=[0.0] * n, stake_lost=[0.0] * n,
        contract_active=[True] * m, contract_paid=[0.0] * m, relet_from=[-1] * m,
        tranche_ok=[bool(u < p) for u, p in zip(tranche_u, M.t_prob)],
        tranche_done=[False] * len(M.t_amount), cut_from=[-1] * m, price_scale=[1.0] * m,
        lost_from=[-1] * m,
    )
    s.stake0 = [stakes_value(M, s, h) for h in range(n)]
    if hasattr(M, "build_on"):
        T = M.n_steps
        lead = int(M.build_lead) if M.build_on else 0
        s.coupon = [float(x) for x in M.rate]
        s.amort_new = [0.0] * n
        s.new_out = [0.0] * n
        s.k_hist = [[0.0] * T for _ in range(n)]
        s.ripe, s.capex_book, s.h_sold = [0.0] * n, [0.0] * n, [0.0] * n
        s.h_frac = [1.0] * n
        s.cov_cf, s.cov_int, s.cov_short, s.cov_low = [0.0] * n, [0.0] * n, [0.0] * n, [0] * n
        # capex for the first `lead` steps of the grid was spent before it
        s.c_built = [float(M.c_capex[c]) * sum(float(M.c_amount[c, u]) for u in range(min(lead, T)))
                     for c in range(m)]
    return s


# ------------------------------------------------------------------ valuations


def equity_value(M, s: TwinState, i: int) -> float:
    """Market value of i's equity: the lab at a revenue multiple (lower in winter), others
    at their start value scaled by sentiment^beta; zero once defaulted."""
    if not s.alive[i]:
        return 0.0
    sentiment = math.exp(s.log_sentiment)
    if i == M.lab:
        multiple = M.multiple_winter if s.winter else M.multiple
        return multiple * math.exp(s.log_revenue) * sentiment
    return float(M.market_equity[i]) * sentiment ** float(M.equity_beta[i])


def stakes_value(M, s: TwinState, h: int) -> float:
    """Marked value of the stakes h holds."""
    return sum(s.share[h][i] * equity_value(M, s, i) for i in range(len(s.alive)) if s.share[h][i] > 0.0)


def loans_change(M, s: TwinState, i: int) -> float:
    """Change since the start of network loans i is owed less those it owes."""
    lent = sum(s.loan_out[k] - M.l_amount[k] for k in range(len(s.loan_out)) if M.l_lender[k] == i)
    owed = sum(s.loan_out[k] - M.l_amount[k] for k in range(len(s.loan_out)) if M.l_borrower[k] == i)
    return lent - owed


def book_equity(M, s: TwinState, i: int) -> float:
    """Start book equity + retained cash - new debt + change in marked stakes and network
    loans - impairments."""
    return (float(M.book0[i]) + (s.cash[i] - float(M.cash0[i])) - (s.debt[i] - float(M.debt0[i]))
            + (stakes_value(M, s, i) - s.stake0[i]) + loans_change(M, s, i) - s.impairment[i]
            + _build_book(M, s, i))


def _build_book(M, s: TwinState, i: int) -> float:
    """[build]: capex is capitalised at cost (no depreciation); holdings sold leave the
    books at their mark (the debt they repaid is in the debt term)."""
    if not _build(M):
        return 0.0
    return s.capex_book[i] - s.h_sold[i]


def _build(M) -> bool:
    return bool(getattr(M, "build_on", False))


# ----------------------------------------------------------------------- stages


def _advance_markets(t, M, sh, s: TwinState, ev: Counter):
    """Stage 1: regime switch, lab revenue (log-Euler GBM), sentiment (exact OU step), and
    the winter-entry jumps. Returns (revenue, sentiment shock z_s)."""
    dt = M.dt
    entered = False
    if M.regime_on:
        u = sh[2]
        if not s.winter and u < M.p_enter:
            s.winter, entered = True, True
            ev["winter_entry"] += 1
        elif s.winter and u < M.p_exit:
            s.winter = False
            ev["winter_exit"] += 1
    if s.winter:
        drift, vol = M.growth_winter, M.volatility_winter
    else:
        years = t * dt  # time at the start of the step
        drift = M.growth_inf + (M.growth0 - M.growth_inf) * 0.5 ** (years / M.half_life)
        vol = M.volatility
    z_revenue = sh[0]
    z_sentiment = M.rho * z_revenue + math.sqrt(1.0 - M.rho ** 2) * sh[1]
    s.log_revenue += (drift - 0.5 * vol ** 2) * dt + vol * math.sqrt(dt) * z_revenue
    s.log_sentiment = s.log_sentiment * M.sent_decay + M.sent_sd * z_sentiment
    if entered:
        s.log_revenue += M.jump_mean + M.jump_sd * sh[3]
        s.log_sentiment += M.sentiment_jump
    return math.exp(s.log_revenue), z_sentiment


def _outside_cash_flows(t, M, sh, s: TwinState, revenue, z_sentiment):
    """Stage 1b: each entity's outside operating cash flow this step (the lab's includes its
    revenue net of non-compute opex). Dead entities earn nothing (their process still runs)."""
    dt = M.dt
    n = len(s.alive)
    flow = [0.0] * n
    for i in range(n):
        drift = M.ocf_growth_winter[i] if s.winter else M.ocf_growth[i]
        vol, loading = M.ocf_vol[i], M.ocf_loading[i]
        z = loading * z_sentiment + math.sqrt(1.0 - loading ** 2) * sh[4 + 2 * i]
        s.log_ocf[i] += (drift - 0.5 * vol ** 2) * dt + vol * math.sqrt(dt) * z
        if s.alive[i]:
            flow[i] = M.ocf0[i] * math.exp(s.log_ocf[i]) * dt
    if s.alive[M.lab]:
        flow[M.lab] += revenue * dt * (1.0 - M.opex_share[t])
    return flow


def _contracts(t, M, s: TwinState, owe, flow, shortfall, margin_lost, ev: Counter):
    """Stage 2a: take-or-pay amounts due on live contracts (payee bears its delivery cost);
    on contracts ended by a payer's default, the payee's lost margin and, after the delay,
    its margin on the re-let share of the capacity (at a discount)."""
    if M.rs_on:
        return _contracts_flexible(t, M, s, owe, flow, shortfall, margin_lost, ev)
    for c in range(len(M.c_payer)):
        payer, payee = int(M.c_payer[c]), int(M.c_payee[c])
        amount, cost = float(M.c_amount[c, t]), float(M.c_cost[c])
        if s.contract_active[c]:
            owe[payer][payee] += amount
            flow[payee] -= cost * amount
        elif s.relet_from[c] >= 0 and s.alive[payee]:
            # what the defaulted payer's business would have earned
            _relet(t, M, s, c, payee, amount, 1.0, (1.0 - cost) * amount, flow, margin_lost, shortfall, ev)


def _relet(t, M, s: TwinState, c, payee, amount, volume, margin, flow, margin_lost, shortfall, ev: Counter):
    """A payee whose payer defaulted: from its re-let date it earns relet_share of the
    (delivered) volume at the discounted price less its cost; until then nothing. What it
    misses of `margin` (the contract's margin this step) is lost margin and a shortfall."""
    cost = float(M.c_cost[c])
    relet_margin = 0.0
    if t >= s.relet_from[c]:
        relet_margin = float(M.c_relet_share[c]) * amount * volume * (1.0 - float(M.c_relet_discount[c]) - cost)
        flow[payee] += relet_margin
        if amount > 0.0:
            ev["relet_income"] += 1
    elif amount > 0.0:
        ev["relet_waiting"] += 1
    margin_lost[payee] += margin - relet_margin
    shortfall[payee] += margin - relet_margin


def _terms(M, s: TwinState, c, k):
    """(volume share delivered, share of the scheduled amount due) of contract c at step k:
    after its cut takes effect the payee delivers 1 - flexible_share of the volume and is
    paid that plus the penalty share of the cut part; before, all of it."""
    if s.cut_from[c] >= 0 and k >= s.cut_from[c]:
        volume = 1.0 - float(M.c_flex[c])
        return volume, volume + (1.0 - volume) * M.rs_penalty
    return 1.0, 1.0


def _value_due(M, s: TwinState, c, k0, k1):
    """What contract c owes over steps k0 .. k1 - 1 after cuts, before haircuts."""
    return sum(float(M.c_amount[c, k]) * _terms(M, s, c, k)[1] for k in range(k0, min(k1, M.n_steps)))


def _contracts_flexible(t, M, s: TwinState, owe, flow, shortfall, margin_lost, ev: Counter):
    """Stage 2a with restructuring on: the cut share of a contract is neither delivered nor
    paid (bar the penalty), and haircuts scale what is paid; the haircut part is cash the
    network does not deliver (a shortfall for ELS). After a payer's default the payee loses
    its margin on what was still to be delivered, and re-lets a share of that volume."""
    for c in range(len(M.c_payer)):
        payer, payee = int(M.c_payer[c]), int(M.c_payee[c])
        amount, cost = float(M.c_amount[c, t]), float(M.c_cost[c])
        volume, share_due = _terms(M, s, c, t)
        full = amount * share_due
        if volume < 1.0 and amount > 0.0:
            ev["contract_cut_payment"] += 1
        if s.contract_active[c]:
            paid = full * s.price_scale[c]
            owe[payer][payee] += paid
            flow[payee] -= cost * amount * volume
            if paid < full:
                margin_lost[payee] += full - paid
                shortfall[payee] += full - paid
                ev["haircut_payment"] += 1
        elif s.relet_from[c] >= 0 and s.alive[payee]:
            _relet(t, M, s, c, payee, amount, volume, full - cost * amount * volume, flow, margin_lost, shortfall, ev)


def _restructure(t, M, s: TwinState, owe, assets, outside_due, need_gap, revenue, rec, ev: Counter,
                 shortfall, margin_lost):
    """Stage 3c (restructuring on): if the lab's cash after this step's funding is below
    cut_runway years of projected burn, it gives notice on every flexible share not yet cut
    (effective cut_notice later). If a gap remains, a haircut h = gap / (this step's payments
    to its contract payees) on all their remaining payments closes it, if no contract's
    cumulative haircut then exceeds haircut_max; each payee gives up h of the value still
    due from this step on (a distressed exchange). Otherwise the gap stands (hard default).
    Returns the gap left."""
    lab, n = M.lab, len(s.alive)
    spy = M.steps_per_year
    interest = M.rate[lab] * (s.debt[lab] - s.facility_drawn) + M.tr_fac_rate * s.facility_drawn
    burn = revenue * float(M.opex_share[t]) - revenue + interest
    mine = [c for c in range(len(M.c_payer)) if s.contract_active[c] and int(M.c_payer[c]) == lab]
    for c in mine:
        burn += _value_due(M, s, c, t + 1, t + 1 + spy) * s.price_scale[c]
    burn += _revenue_share_projected(t, M, s, revenue)
    cash_after = assets[lab] + sum(owe[j][lab] for j in range(n)) - outside_due[lab] - sum(owe[lab])
    if cash_after < M.rs_cut_runway * max(0.0, burn):
        for c in mine:
            if s.cut_from[c] < 0 and M.c_flex[c] > 0.0:
                s.cut_from[c] = t + M.rs_notice
                ev["flexible_cut_notice"] += 1
    gap = need_gap
    if gap <= 0.0:
        return gap
    due_now = sum(float(M.c_amount[c, t]) * _terms(M, s, c, t)[1] * s.price_scale[c] for c in mine)
    h = gap / due_now if due_now > 0.0 else math.inf
    if any(1.0 - s.price_scale[c] * (1.0 - h) > M.rs_haircut_max + 1e-12 for c in mine) or due_now <= 0.0:
        ev["restructuring_refused"] += 1
        return gap
    for c in mine:
        payee = int(M.c_payee[c])
        full = float(M.c_amount[c, t]) * _terms(M, s, c, t)[1]
        given_up = h * s.price_scale[c] * _value_due(M, s, c, t, M.n_steps)
        rec.rs_loss[payee] = rec.rs_loss.get(payee, 0.0) + given_up
        cut = full * s.price_scale[c] * h
        owe[lab][payee] -= cut
        shortfall[payee] += cut  # withheld by the haircut this step (ELS)
        margin_lost[payee] += cut
        s.price_scale[c] *= 1.0 - h
    rec.restructured, rec.restructured_entity = True, lab
    ev["distressed_exchange"] += 1
    return 0.0


def _capacity(t, M, s: TwinState, flow, margin_lost, shortfall, revenue, ev: Counter):
    """Stage 1c (capacity on): the share of the lab's scheduled compute that sat with
    suppliers now in default, and not yet replaced, cuts the revenue it can serve by
    revenue_elasticity x that share; replaced capacity costs the lost schedule x (1 +
    resource_premium), bought outside the network. Both are losses the network caused the
    lab (ELS). Returns (share of revenue served, replacement due)."""
    lab = M.lab
    if not (M.cap_on and s.alive[lab]):
        return 1.0, 0.0
    mine = [c for c in range(len(M.c_payer)) if int(M.c_payer[c]) == lab]
    scheduled = sum(float(M.c_amount[c, t]) for c in mine)
    lost = sum(float(M.c_amount[c, t]) for c in mine if s.lost_from[c] >= 0 and t < s.lost_from[c])
    replaced = sum(float(M.c_amount[c, t]) for c in mine if 0 <= s.lost_from[c] <= t)
    served = 1.0
    if lost > 0.0:
        served = max(0.0, 1.0 - M.cap_elasticity * lost / scheduled)
        ev["capacity_lost"] += 1
    if replaced > 0.0:
        ev["capacity_replaced"] += 1
    cash_revenue = revenue * M.dt * (1.0 - float(M.opex_share[t]))
    flow[lab] -= cash_revenue * (1.0 - served)
    margin_lost[lab] += cash_revenue * (1.0 - served) + replaced * M.cap_premium
    shortfall[lab] += cash_revenue * (1.0 - served) + replaced * M.cap_premium
    return served, replaced * (1.0 + M.cap_premium)


def _revenue_share(t, M, s: TwinState, owe, revenue, ev: Counter):
    """Stage 2a': the revenue share, share x R dt owed to its payee while both are alive,
    before its end date, and up to what is left of its cap. Returns the amount due."""
    if not M.rsh_on or not (s.alive[M.lab] and s.alive[M.rsh_payee]) or t >= M.rsh_until:
        return 0.0
    due = min(M.rsh_share * revenue * M.dt, max(0.0, M.rsh_cap - s.rsh_paid))
    owe[M.lab][M.rsh_payee] += due
    ev["revenue_share_capped" if due < M.rsh_share * revenue * M.dt else "revenue_share_due"] += 1
    return due


def _revenue_share_projected(t, M, s: TwinState, revenue):
    """The revenue share of the next year's steps (t+1 .. t+steps_per_year, before its end
    date) at today's revenue, within what is left of the cap: part of the projected burn."""
    if not M.rsh_on:
        return 0.0
    steps = sum(1 for k in range(t + 1, min(t + 1 + M.steps_per_year, M.n_steps)) if k < M.rsh_until)
    return min(M.rsh_share * revenue * M.dt * steps, max(0.0, M.rsh_cap - s.rsh_paid))


def _tranches(t, M, s: TwinState, owe, ev: Counter):
    """Stage 2b: investment tranches that fall due: inside their window, the Bernoulli
    condition drawn for the path holds, investor and investee alive, milestone reached
    (cumulative payments on the linked contract up to the previous step)."""
    due = []
    for k in range(len(M.t_amount)):
        if s.tranche_done[k] or not (M.t_first[k] <= t <= M.t_last[k]):
            continue
        if not s.tranche_ok[k]:
            ev["tranche_condition_failed"] += 1
            continue
        investor, investee = int(M.t_investor[k]), int(M.t_investee[k])
        if not (s.alive[investor] and s.alive[investee]):
            continue
        c = int(M.t_contract[k])
        if c >= 0 and s.contract_paid[c] < M.t_milestone[k] - MILESTONE_TOL:
            ev["tranche_milestone_pending"] += 1
            continue
        owe[investor][investee] += float(M.t_amount[k])
        due.append(k)
    return due


def _network_loans(t, M, s: TwinState, owe, ev: Counter):
    """Stage 2c: interest every step on network loans, principal at maturity."""
    for k in range(len(M.l_amount)):
        borrower, lender = int(M.l_borrower[k]), int(M.l_lender[k])
        if s.alive[borrower] and s.alive[lender] and s.loan_out[k] > 0.0:
            owe[borrower][lender] += float(M.l_rate[k]) * s.loan_out[k] * M.dt
            if t == M.l_maturity[k]:
                owe[borrower][lender] += s.loan_out[k]
                ev["loan_principal_due"] += 1


def _outside_debt(t, M, sh, s: TwinState, flow, equity, ev: Counter):
    """Stage 2d: interest and scheduled principal on outside debt. Scheduled principal rolls
    over when the credit market is open to the entity (a logistic probability falling with
    leverage, rising with sentiment, shifted in winter); otherwise it is due in cash.
    Returns (outside assets, outside liabilities, principal due in cash, amortisation
    scheduled, interest) per entity; a negative outside cash flow is a liability to outside
    creditors. [build]: interest at the entity's average coupon, the new debt's ladder in the
    amortisation (the total due capped at the debt), leases due."""
    n = len(s.alive)
    assets, outside_due, principal = [0.0] * n, [0.0] * n, [0.0] * n
    amortisation, interests, ladder = [0.0] * n, [0.0] * n, [0.0] * n
    build = _build(M)
    for i in range(n):
        if not s.alive[i]:
            continue
        if i == M.lab and s.facility_drawn > 0.0:  # the drawn facility at its own rate
            interest = (M.rate[i] * (s.debt[i] - s.facility_drawn) + M.tr_fac_rate * s.facility_drawn) * M.dt
        elif build and i != M.lab:  # [build]: the debt-weighted coupon of old and new debt
            interest = s.coupon[i] * s.debt[i] * M.dt
        else:
            interest = M.rate[i] * s.debt[i] * M.dt
        interests[i] = interest
        if build:
            # new debt is a pool repaid on its own ladder (the sum of its issues' per-step
            # repayments, until the pool is empty); never more due than the debt there is
            amortisation[i] = min(s.amortising[i], M.amort[i])
            ladder[i] = min(s.new_out[i], s.amort_new[i])
            scheduled = min(amortisation[i] + ladder[i] + M.bullet[i, t], s.debt[i])
            if ladder[i] > 0.0:
                ev["new_debt_due"] += 1
        else:
            amortisation[i] = min(s.amortising[i], M.amort[i])
            scheduled = amortisation[i] + M.bullet[i, t]
        if scheduled > 0.0:
            leverage = s.debt[i] / equity[i] if equity[i] > 0.0 else 0.0
            logit = M.refi_logit[i] + M.refi_sent_slope * s.log_sentiment - M.refi_lev_slope * leverage
            if s.winter:
                logit += M.refi_winter_shift
            p_roll = 1.0 / (1.0 + math.exp(-logit))
            if sh[5 + 2 * i] >= p_roll:
                principal[i] = scheduled
                ev["refinancing_failure"] += 1
            else:
                ev["refinancing_success"] += 1
        outside_due[i] = interest + principal[i]
        if build:
            outside_due[i] += float(M.lease[i, t])  # leases: an outside obligation
        if flow[i] >= 0.0:
            assets[i] = s.cash[i] + flow[i]
        else:
            assets[i] = s.cash[i]
            outside_due[i] += -flow[i]
    return assets, outside_due, principal, amortisation, interests, ladder


def _capex_yield(t, M, s: TwinState, flow, ev: Counter):
    """Stage 1d ([build]): other capex spent at least `lead` steps ago earns capex_yield x
    (what was spent) x dt of outside cash flow each step (the business it builds)."""
    lead = int(M.build_lead)
    for i in range(len(s.alive)):
        if s.alive[i]:  # (a defaulted entity's ripe capex is left as it was: it earns nothing)
            if t - lead >= 0:
                s.ripe[i] += s.k_hist[i][t - lead]
            y = float(M.capex_yield[i]) * s.ripe[i] * M.dt
            flow[i] += y
            if y > 0.0:
                ev["capex_yield"] += 1


def _build_funding(t, M, sh, s: TwinState, owe, assets, outside_due, equity, rec, ev: Counter):
    """Stage 3d ([build], docs/model.md 6d): each live entity's capex plan this step, the
    capex tied to its live contracts if it builds (capex_share x the amount due `lead` steps
    ahead, times the delivered volume there with restructuring on) plus its other capex (cut
    in AI winter), funded from the cash it would have left after this step above a reserve
    (cash_floor x its starting cash plus next year's amortisation, bullets and leases); the
    rest is borrowed when the credit market is open to it (its refinancing uniform and
    probability), at a spread over its rate, as a ladder amortising over new_debt_years;
    when shut, the plan is cut to what it can fund. Returns {entity: (tied parts {contract:
    amount}, other part)} of the plans after any cut."""
    n, T = len(s.alive), M.n_steps
    lead = int(M.build_lead)
    plans = {}
    for i in range(n):
        if not s.alive[i]:
            continue
        tied = {}
        for c in range(len(M.c_payer)):
            if not M.builds[i] or int(M.c_payee[c]) != i or not s.contract_active[c] or t + lead >= T:
                continue
            k = float(M.c_capex[c]) * float(M.c_amount[c, t + lead])
            if M.rs_on:
                k *= _terms(M, s, c, t + lead)[0]  # the volume it will deliver then
            tied[c] = k
        other = float(M.capex_other[i, t]) * ((1.0 - M.build_winter_cut) if s.winter else 1.0)
        plan = sum(tied.values()) + other
        if not plan > 0.0:
            continue
        due_in = sum(owe[j][i] for j in range(n))
        pbar = outside_due[i] + sum(owe[i])
        avail = assets[i] + due_in - pbar  # cash left after this step if everybody pays
        if avail < 0.0:  # it cannot meet this step's obligations: no building, no borrowing to build
            plans[i] = ({c: 0.0 for c in tied}, 0.0)
            ev["capex_skipped_in_distress"] += 1
            continue
        # the reserve: a share of its starting cash and next year's principal and rent
        reserve = M.cash_floor * float(M.cash0[i])
        for u in range(t + 1, min(t + M.steps_per_year, T - 1) + 1):
            reserve += float(M.amort[i]) + s.amort_new[i] + float(M.bullet[i, u]) + float(M.lease[i, u])
        funded = max(0.0, avail - reserve)
        borrow = max(0.0, plan - funded)
        scale = 1.0
        if borrow > 0.0:
            leverage = s.debt[i] / equity[i] if equity[i] > 0.0 else 0.0
            logit = M.refi_logit[i] + M.refi_sent_slope * s.log_sentiment - M.refi_lev_slope * leverage
            if s.winter:
                logit += M.refi_winter_shift
            if sh[5 + 2 * i] < 1.0 / (1.0 + math.exp(-logit)):
                r_new = float(M.rate[i]) + M.spread_lev * leverage + (M.spread_winter if s.winter else 0.0)
                s.coupon[i] = (s.coupon[i] * s.debt[i] + r_new * borrow) / (s.debt[i] + borrow)
                s.debt[i] += borrow
                assets[i] += borrow
                s.new_out[i] += borrow  # a ladder over new_debt_years
                s.amort_new[i] += borrow / int(M.new_debt_steps)
                rec.new_debt[i] = rec.new_debt.get(i, 0.0) + borrow
                ev["capex_borrowed"] += 1
            else:
                scale = funded / plan
                ev["capex_cut_market_shut"] += 1
        plans[i] = ({c: k * scale for c, k in tied.items()}, other * scale)
    return plans


# The LTV covenant's "marked value of its network stakes" (docs/model.md 6d), tested "after
# capex", i.e. after the settlement: True counts the stakes the entity bought with
# investment tranches it paid this step (their cash is already out of its net debt); False
# tests before this step's tranche purchases are booked (only to measure a kernel that does).
LTV_STAKES_AFTER_TRANCHES = True


def _build_settle(t, M, s: TwinState, plans, in_default, flow, interests, shortfall, frac, rsh_due, rec,
                  ev: Counter):
    """Stages 5c-d ([build]): capex paid, then the covenants. Returns (capex paid,
    covenant defaults with their ELS class)."""
    paid_now = _pay_capex(t, M, s, plans, in_default, ev)
    covenant = _covenants(t, M, s, in_default, flow, interests, shortfall,
                          _contract_receipts(t, M, s, frac, rsh_due), rec, ev)
    return paid_now, covenant


def _contract_receipts(t, M, s: TwinState, frac, rsh_due):
    """What each entity received this step as payee of live contracts (after cuts and
    haircuts) and of the revenue share: the revenue side of its contract margins."""
    got = [0.0] * len(s.alive)
    for c in range(len(M.c_payer)):
        if s.contract_active[c]:
            due = float(M.c_amount[c, t])
            if M.rs_on:
                due *= _terms(M, s, c, t)[1] * s.price_scale[c]
            got[int(M.c_payee[c])] += due * frac[int(M.c_payer[c])]
    if rsh_due > 0.0:
        got[M.rsh_payee] += rsh_due * frac[M.lab]
    return got


def _pay_capex(t, M, s: TwinState, plans, in_default, ev: Counter):
    """Stage 5c ([build]): after settlement each entity that paid in full pays its capex
    plan from cash, at most the cash it has (tied and other parts shrink in proportion);
    capex is capitalised. Returns {entity: capex paid}."""
    paid_now = {}
    for i, (tied, other) in plans.items():
        if in_default[i]:
            continue
        planned = sum(tied.values()) + other
        paid = min(planned, s.cash[i])
        if paid < planned:
            ev["capex_cut_cash"] += 1
        if not paid > 0.0:
            continue
        share = paid / planned
        s.cash[i] -= paid
        s.capex_book[i] += paid
        s.k_hist[i][t] += other * share
        for c, k in tied.items():
            s.c_built[c] += k * share
        paid_now[i] = paid
    return paid_now


# How the coverage covenant reads "operating cash flow". docs/model.md 6d: "the net outside
# cash flow of the clearing, contract margins and capex yield included, before capex and
# leases". The net outside cash flow of the clearing carries a payee's delivery costs but not
# what its payers pay it (that is a network receipt), so the contract margin is the outside
# flow plus the contract payments received; True reads it so. False: the outside flow alone
# (the kernel of commit 1ddae07 sums the net outside cash flow alone).
COVERAGE_CF_WITH_RECEIPTS = True


def _covenants(t, M, s: TwinState, in_default, flow, interests, shortfall, receipts, rec, ev: Counter):
    """Stage 5d ([build]): covenants of the entities alive that paid in full. LTV (ltv_max >
    0): net debt above ltv_max x (holdings at their mark + marked network stakes) forces a
    sale of holdings at a discount that brings it back to the ceiling (at most all of them),
    the proceeds repaying debt (the amortising part first); still above ltv_default
    afterwards: a covenant default. Coverage (coverage_min > 0): the year's operating cash
    flow below coverage_min x the year's interest is a breach; coverage_years consecutive
    breaches are a covenant default. Returns {entity: fundamental?}, the ELS class of each
    covenant default: fundamental if the test still fails with what the network failed to
    deliver added back (stakes lost to others' defaults; the year's network shortfall)."""
    n = len(s.alive)
    spy = M.steps_per_year
    sentiment = math.exp(s.log_sentiment)
    out = {}
    for i in range(n):
        if not s.alive[i] or in_default[i]:
            continue
        if M.ltv_max[i] > 0.0:
            ltv, disc = float(M.ltv_max[i]), M.sale_discount
            h_mark = float(M.holdings[i]) * sentiment ** float(M.holdings_beta[i]) * s.h_frac[i]
            value = h_mark + stakes_value(M, s, i)
            net = s.debt[i] - s.cash[i]
            if net > ltv * value:
                ev["ltv_breach"] += 1
                rec.breached.add(i)
                x = min(h_mark, (net - ltv * value) / (1.0 - disc - ltv))
                if x > 0.0:
                    repay = (1.0 - disc) * x
                    rest = repay - s.amortising[i]  # off the amortising part first, then the new pool
                    s.amortising[i] -= min(s.amortising[i], repay)
                    if rest > 0.0 and s.new_out[i] > 0.0:
                        s.new_out[i] = max(0.0, s.new_out[i] - rest)
                        if s.new_out[i] <= 0.0:
                            s.amort_new[i] = 0.0
                    s.debt[i] -= repay
                    s.h_frac[i] *= 1.0 - x / h_mark
                    s.h_sold[i] += x
                    rec.sold[i] = rec.sold.get(i, 0.0) + x
                    ev["asset_sale"] += 1
                    value -= x
                    net -= repay
                if net > M.ltv_default * value:
                    ev["covenant_default_ltv"] += 1
                    out[i] = net > M.ltv_default * (value + s.stake_lost[i])
                    continue
        if M.coverage_min[i] > 0.0:
            s.cov_cf[i] += flow[i] + (receipts[i] if COVERAGE_CF_WITH_RECEIPTS else 0.0)
            s.cov_int[i] += interests[i]
            s.cov_short[i] += shortfall[i]
            if t % spy == spy - 1:
                cov = float(M.coverage_min[i])
                if s.cov_int[i] > 0.0 and s.cov_cf[i] < cov * s.cov_int[i]:
                    ev["coverage_breach"] += 1
                    rec.breached.add(i)
                    s.cov_low[i] += 1
                    if s.cov_low[i] >= int(M.coverage_years):
                        ev["covenant_default_coverage"] += 1
                        out[i] = s.cov_cf[i] + s.cov_short[i] < cov * s.cov_int[i]
                else:
                    s.cov_low[i] = 0
                s.cov_cf[i] = s.cov_int[i] = s.cov_short[i] = 0.0
    return out


def _lab_raise(t, M, sh, s: TwinState, owe, assets, outside_due, equity, revenue, ev: Counter):
    """Stage 3: the lab's funding. Returns (need, gap, equity raised, net facility draw).

    Old rule (treasury off): it raises new equity for what its cash, cash flow and incoming
    payments (tranches included, assumed paid) do not cover, up to a share of its valuation.
    Treasury on: see `_treasury`."""
    lab = M.lab
    if not s.alive[lab]:
        return 0.0, 0.0, 0.0, 0.0
    n = len(s.alive)
    owed = outside_due[lab] + sum(owe[lab][j] for j in range(n))
    incoming = sum(owe[j][lab] for j in range(n))
    need = max(0.0, owed - assets[lab] - incoming)
    if M.tr_on:
        raised, drawn = _treasury(t, M, sh, s, need, assets[lab] + incoming - owed, equity, revenue, ev)
        assets[lab] += raised + drawn
        return need, max(0.0, need - raised - drawn), raised, drawn
    capacity = (M.raise_share_winter if s.winter else M.raise_share) * equity[lab] * M.dt
    raised = min(need, capacity)
    assets[lab] += raised
    if need > 0.0:
        ev["lab_raised"] += 1
    if need - raised > 0.0:
        ev["lab_gap"] += 1
    return need, need - raised, raised, 0.0


def _treasury(t, M, sh, s: TwinState, need, cash_after, equity, revenue, ev: Counter):
    """Stage 3b: the lab's treasury. Projected burn over the next year = non-compute opex
    less revenue at today's run-rate, plus a year's interest, plus the compute due on its
    live contracts in the next four quarters. If the cash left after this step (all paying)
    is below runway_target years of that burn, the lab seeks a round; it closes when the
    step's treasury uniform (the last shock) is below a logistic probability in the regime
    and log sentiment, and raises round_share of the valuation, banked whole. Proceeds
    beyond this step's need first repay the facility; a need the round leaves open is drawn
    on the facility, up to its limit. Returns (equity raised, net facility draw)."""
    lab, n = M.lab, len(s.alive)
    spy = M.steps_per_year
    interest = M.rate[lab] * (s.debt[lab] - s.facility_drawn) + M.tr_fac_rate * s.facility_drawn
    burn = revenue * float(M.opex_share[t]) - revenue + interest
    for c in range(len(M.c_payer)):
        if s.contract_active[c] and int(M.c_payer[c]) == lab:
            if M.rs_on:
                burn += _value_due(M, s, c, t + 1, t + 1 + spy) * s.price_scale[c]
            else:
                burn += float(np.sum(M.c_amount[c, t + 1:t + 1 + spy]))
    burn += _revenue_share_projected(t, M, s, revenue)
    raised = 0.0
    if M.tr_runway * max(0.0, burn) > cash_after:
        logit = (M.tr_logit_winter if s.winter else M.tr_logit) + M.tr_sent_slope * s.log_sentiment
        if sh[4 + 2 * n] < 1.0 / (1.0 + math.exp(-logit)):
            raised = M.tr_share * equity[lab]
            ev["round_closed"] += 1
        else:
            ev["round_failed"] += 1
    if raised > need:
        drawn = -min(s.facility_drawn, raised - need)
        if drawn < 0.0:
            ev["facility_repaid"] += 1
    else:
        drawn = min(need - raised, M.tr_facility - s.facility_drawn)
        if drawn > 0.0:
            ev["facility_drawn"] += 1
        if need - raised - drawn > 0.0:
            ev["treasury_gap"] += 1
    s.facility_drawn += drawn
    s.debt[lab] += drawn
    return raised, drawn


def _defaults_anyway(M, s: TwinState, i, ctx) -> bool:
    """Elsinger-Lehar-Summer: would i default had every network counterparty paid in full,
    this step and all earlier ones (no unpaid receivables, no lost margin, no write-offs of
    capacity or stakes caused by others' defaults)?"""
    full_cash = (ctx["assets"][i] + ctx["due_in"][i] - ctx["pbar"][i]
                 + (s.net_shortfall[i] - ctx["shortfall"][i]) + ctx["margin_lost"][i])
    if full_cash < -ELS_CASH_TOL * max(1.0, ctx["pbar"][i]):
        return True  # cannot pay even with everything it was owed
    if not M.solvency_on[i]:
        return False
    # its own principal paid (and, with [build], the debt its asset sales repaid)
    debt = s.debt[i] - (ctx["principal"][i] if ctx["in_default"][i] else 0.0)
    # [build]: the capex it paid this step turned cash into capitalised capex (in _build_book)
    full_cash -= ctx.get("capex_paid", {}).get(i, 0.0)
    equity = (float(M.book0[i]) + (full_cash - float(M.cash0[i])) - (debt - float(M.debt0[i]))
              + (stakes_value(M, s, i) - s.stake0[i]) + loans_change(M, s, i)
              + s.stake_lost[i] + _build_book(M, s, i))  # no impairment
    return equity < 0.0


def _process_default(t, M, s: TwinState, i, ctx, rec: StepRecord, ev: Counter):
    """Consequences of i's default: outside creditors recover what the clearing paid them now
    and `recovery` of the debt not yet due; stakes in i go to zero; all contracts with i end;
    payees of i lose the backlog and write off the unrecoverable part of the capacity sunk
    for it, and may re-let a share after the delay. Returns (loss, exposure)."""
    frac = ctx["frac"][i]
    outside_due = ctx["outside_due"][i]
    recovery = float(M.recovery[i])
    if M.dr_on:  # downturn: AI winter, or another default in this period (this wave or before)
        others = (ctx["wave"] | ctx["defaulted_now"]) - {i}
        if s.winter or others:
            recovery *= M.dr_scale
            ev["downturn_recovery"] += 1
    if ctx["in_default"][i]:  # could not pay this step
        remaining_debt = ctx["debt_start"][i] - ctx["principal"][i]
        exposure = outside_due + remaining_debt
        loss = (outside_due - outside_due * frac) + (1.0 - recovery) * remaining_debt
    else:  # paid this step, then insolvent: its cash goes to creditors first
        exposure = s.debt[i]
        loss = (1.0 - recovery) * max(s.debt[i] - s.cash[i], 0.0)
    value = equity_value(M, s, i)
    for h in range(len(s.alive)):
        if h != i and s.alive[h] and s.share[h][i] > 0.0:
            s.stake_lost[h] += s.share[h][i] * value
            ev["stake_written_off"] += 1
    for k in range(len(s.loan_out)):
        if s.loan_out[k] > 0.0 and M.l_borrower[k] == i:
            if s.alive[M.l_lender[k]]:
                s.stake_lost[M.l_lender[k]] += s.loan_out[k]  # the lender writes it off
            s.loan_out[k] = 0.0
        elif s.loan_out[k] > 0.0 and M.l_lender[k] == i:
            s.loan_out[k] = 0.0  # a defaulted lender's loan is not collected
    s.alive[i] = False
    s.cash[i] = 0.0
    s.debt[i] = 0.0
    if i == M.lab:
        s.facility_drawn = 0.0  # part of the debt just defaulted on
    for c in range(len(M.c_payer)):
        payer, payee = int(M.c_payer[c]), int(M.c_payee[c])
        if not s.contract_active[c] or i not in (payer, payee):
            continue
        s.contract_active[c] = False
        ev["contract_terminated"] += 1
        if M.cap_on and payee == i and payer == M.lab and s.alive[M.lab] and M.lab not in ctx["wave"]:
            s.lost_from[c] = t + 1 + int(M.cap_delay)  # its capacity is replaced after the delay
            ev["supplier_capacity_lost"] += 1
        if payer == i and s.alive[payee] and payee not in ctx["wave"]:
            backlog = float(np.sum(M.c_amount[c, t + 1:]))  # value still due after this step
            volume = backlog
            if M.rs_on:  # after cuts (volume and value) and haircuts (value)
                volume = sum(float(M.c_amount[c, k]) * _terms(M, s, c, k)[0] for k in range(t + 1, M.n_steps))
                backlog = _value_due(M, s, c, t + 1, M.n_steps) * s.price_scale[c]
            rec.lost_backlog[payee] = rec.lost_backlog.get(payee, 0.0) + backlog
            kept = float(M.c_relet_share[c]) * (1.0 - float(M.c_relet_discount[c]))
            if _build(M) and M.builds[payee]:
                # [build]: the capex built for deliveries not yet made (built ahead)
                delivered = float(np.sum(M.c_amount[c, :t + 1]))
                write_off = max(0.0, s.c_built[c] - float(M.c_capex[c]) * delivered) * (1.0 - kept)
                if write_off > 0.0:
                    ev["impairment_built"] += 1
            else:
                write_off = float(M.c_capex[c]) * volume * (1.0 - kept)
            s.impairment[payee] += write_off
            if write_off > 0.0:
                ev["impairment"] += 1
            s.relet_from[c] = t + 1 + int(M.c_relet_delay[c])
    return loss, exposure


# ----------------------------------------------------------------------- the step


def step_twin(t: int, M, sh, state: TwinState):
    """Advance one path by one period from `state` (not modified) on the shocks `sh`.
    Returns (new state, StepRecord)."""
    s = copy.deepcopy(state)
    sh = [float(x) for x in sh]
    ev: Counter = Counter()
    n, lab = len(s.alive), M.lab

    # 1. markets and outside business
    revenue, z_sentiment = _advance_markets(t, M, sh, s, ev)
    flow = _outside_cash_flows(t, M, sh, s, revenue, z_sentiment)
    build = _build(M)
    if build:
        _capex_yield(t, M, s, flow, ev)
    equity = [equity_value(M, s, i) for i in range(n)]  # marks before this period's defaults

    # 2. obligations due this period
    owe = [[0.0] * n for _ in range(n)]  # owe[i][j]: i owes j
    shortfall = [0.0] * n  # cash the network fails to deliver to each entity this step
    margin_lost = [0.0] * n
    served, replacement = _capacity(t, M, s, flow, margin_lost, shortfall, revenue, ev)
    _contracts(t, M, s, owe, flow, shortfall, margin_lost, ev)
    rsh_due = _revenue_share(t, M, s, owe, revenue, ev)
    due_tranches = _tranches(t, M, s, owe, ev)
    _network_loans(t, M, s, owe, ev)
    assets, outside_due, principal, amortisation, interests, ladder = _outside_debt(t, M, sh, s, flow, equity, ev)
    outside_due[lab] += replacement  # bought outside the network

    # 3. the lab's funding (and, with restructuring on, cuts and distressed exchanges)
    need, gap, raised, drawn = _lab_raise(t, M, sh, s, owe, assets, outside_due, equity, revenue, ev)
    rec = StepRecord(revenue=revenue, winter=s.winter, need=need, gap=gap)
    if M.rs_on and s.alive[lab]:
        gap = rec.gap = _restructure(t, M, s, owe, assets, outside_due, gap, revenue, rec, ev,
                                     shortfall, margin_lost)
    # 3d. [build]: partners plan their capex and borrow what their cash does not cover
    plans = _build_funding(t, M, sh, s, owe, assets, outside_due, equity, rec, ev) if build else {}
    debt_start = list(s.debt)  # after the facility draw and new debt, before principal is paid

    # 4. joint clearing (greatest Rogers-Veraart clearing vector, public API)
    L = np.array(owe, dtype=float)
    res = clear_detailed(L, np.array(assets), np.array(outside_due), M.alpha, M.beta)
    pay = [float(x) for x in res.payments]
    in_default = [bool(x) for x in res.defaulted]
    rec.clearing_ran = any(in_default)
    rec.clearing_rounds = res.rounds if rec.clearing_ran else 0
    pbar = [outside_due[i] + sum(owe[i]) for i in range(n)]
    frac = [pay[i] / pbar[i] if pbar[i] > 0.0 else 1.0 for i in range(n)]
    due_in = [sum(owe[j][i] for j in range(n)) for i in range(n)]
    received = [sum(owe[j][i] * frac[j] for j in range(n)) for i in range(n)]
    paid_total = sum(pay)
    received_total = sum(received) + sum(outside_due[j] * frac[j] for j in range(n))
    if paid_total > 0.0:
        rec.conservation_error = abs(paid_total - received_total) / paid_total
    if rec.clearing_ran:
        ev["clearing_with_default"] += 1

    # 5. settlement
    for c in range(len(M.c_payer)):
        if s.contract_active[c]:
            payer = int(M.c_payer[c])
            due = float(M.c_amount[c, t])
            if M.rs_on:
                due *= _terms(M, s, c, t)[1] * s.price_scale[c]
            s.contract_paid[c] += due * frac[payer]
            if frac[payer] < 1.0 and M.c_amount[c, t] > 0.0:
                ev["contract_underpaid"] += 1
    s.rsh_paid += rsh_due * frac[lab]
    for i in range(n):
        if not s.alive[i]:
            continue
        unpaid = max(0.0, due_in[i] - received[i])
        shortfall[i] += unpaid
        if in_default[i]:
            s.cash[i] = 0.0
        else:
            s.cash[i] = max(0.0, assets[i] + received[i] - pay[i])
            s.debt[i] -= principal[i]
            s.amortising[i] -= amortisation[i]  # leaves the schedule, paid or refinanced
            if ladder[i] > 0.0:  # the new debt's ladder likewise; an empty pool ends it
                s.new_out[i] -= ladder[i]
                if s.new_out[i] <= 0.0:
                    s.new_out[i] = 0.0
                    s.amort_new[i] = 0.0
            if build and float(M.lease[i, t]) > 0.0:
                ev["lease_paid"] += 1
    paid_now, covenant = {}, {}
    if build and not LTV_STAKES_AFTER_TRANCHES:
        paid_now, covenant = _build_settle(t, M, s, plans, in_default, flow, interests, shortfall, frac,
                                           rsh_due, rec, ev)
    for k in range(len(M.l_amount)):
        borrower, lender = int(M.l_borrower[k]), int(M.l_lender[k])
        if (t == M.l_maturity[k] and s.loan_out[k] > 0.0 and s.alive[borrower] and s.alive[lender]
                and not in_default[borrower]):
            s.loan_out[k] = 0.0
    for k in due_tranches:
        investor, investee = int(M.t_investor[k]), int(M.t_investee[k])
        paid = float(M.t_amount[k]) * frac[investor]
        s.tranche_done[k] = True
        if paid > 0.0 and equity[investee] > 0.0:
            s.share[investor][investee] += paid / equity[investee]  # bought at the current mark
            ev["tranche_paid"] += 1
    for k in range(len(M.l_amount)):
        borrower, lender = int(M.l_borrower[k]), int(M.l_lender[k])
        if t == M.l_maturity[k] and state.alive[borrower] and state.alive[lender] and pay[borrower] > 0.0:
            ev["loan_repaid"] += 1

    # 5c-d. [build]: capex paid from what cash is left; then the covenants
    if build and LTV_STAKES_AFTER_TRANCHES:
        paid_now, covenant = _build_settle(t, M, s, plans, in_default, flow, interests, shortfall, frac,
                                           rsh_due, rec, ev)

    # 6. defaults and the in-step solvency cascade
    for i in range(n):
        s.net_shortfall[i] += shortfall[i]
    ctx = {"assets": assets, "due_in": due_in, "pbar": pbar, "shortfall": shortfall,
           "margin_lost": margin_lost, "debt_start": debt_start, "principal": principal,
           "frac": frac, "outside_due": outside_due, "in_default": in_default, "wave": set(),
           "defaulted_now": set(), "capex_paid": paid_now}
    new = {i: LIQUIDITY for i in range(n) if s.alive[i] and (in_default[i] or i in covenant)}
    rec.covenant_defaults = set(covenant)
    for wave in range(n + 1):
        for i in range(n):
            if s.alive[i] and i not in new and M.solvency_on[i] and book_equity(M, s, i) < 0.0:
                new[i] = SOLVENCY
        if not new:
            break
        # classify the whole wave first (simultaneous defaults), then apply its consequences
        # a covenant default is fundamental if the covenant's own counterfactual fails too
        classes = {i: not (covenant.get(i, False) or _defaults_anyway(M, s, i, ctx)) for i in new}
        ctx["wave"] = set(new)
        for i in sorted(new):
            impaired = s.impairment[i] > 0.0
            loss, exposure = _process_default(t, M, s, i, ctx, rec, ev)
            ctx["defaulted_now"].add(i)
            rec.defaults.append(DefaultEvent(i, new[i], classes[i], loss, exposure, wave))
            ev["liquidity_default" if new[i] == LIQUIDITY else "solvency_default"] += 1
            if classes[i]:
                ev["contagious_default"] += 1
            else:
                ev["fundamental_default"] += 1
            if i == lab:
                ev[f"lab_{'liquidity' if new[i] == LIQUIDITY else 'solvency'}_default"] += 1
            if new[i] == SOLVENCY and impaired:
                ev["solvency_default_impaired"] += 1
            if wave > 0:
                ev["cascade_wave_default"] += 1
            if i in covenant:
                ev["covenant_default_contagious" if classes[i] else "covenant_default_fundamental"] += 1
        new = {}
    if state.alive[lab]:
        rev = revenue * M.dt * served
        opex = rev * float(M.opex_share[t])
        compute = sum(float(M.c_amount[c, t]) * ((_terms(M, s, c, t)[1] * s.price_scale[c]) if M.rs_on else 1.0)
                      * frac[lab] for c in range(len(M.c_payer))
                      if int(M.c_payer[c]) == lab and state.contract_active[c])
        compute += replacement * frac[lab]
        # what was paid to outside creditors, without the negative outside cash flow it covers
        # and the replacement compute it includes
        debt_service = (outside_due[lab] + min(flow[lab], 0.0) - replacement) * frac[lab]
        invested = sum(float(M.t_amount[k]) * frac[int(M.t_investor[k])] for k in due_tranches
                       if int(M.t_investee[k]) == lab)
        cash_change = s.cash[lab] - state.cash[lab]
        rec.flows = {"revenue": rev, "opex": opex, "compute_paid": compute, "debt_service": debt_service,
                     "equity_raised": raised, "investment_received": invested,
                     "other": cash_change - (rev - opex - compute - debt_service + raised + invested),
                     "cash_change": cash_change, "burn": raised + invested + drawn - cash_change}
    if t % M.steps_per_year == M.steps_per_year - 1:
        rec.runway = (t // M.steps_per_year, _runway(t, M, s, revenue, ev))
    rec.events = ev
    return s, rec


RUNWAY_CAP = 100.0  # years: the top of the kernel's runway histogram (kernel.RUNWAY_HI)


def _runway(t, M, s: TwinState, revenue, ev: Counter) -> float:
    """The lab's runway at a year end: its cash over the burn projected for the next year
    (as in `_treasury`, on the state after the step), capped at RUNWAY_CAP; -1 in default."""
    lab = M.lab
    if not s.alive[lab]:
        return -1.0
    interest = M.rate[lab] * (s.debt[lab] - s.facility_drawn) + M.tr_fac_rate * s.facility_drawn
    burn = revenue * float(M.opex_share[t]) - revenue + interest
    for c in range(len(M.c_payer)):
        if s.contract_active[c] and int(M.c_payer[c]) == lab:
            if M.rs_on:
                burn += _value_due(M, s, c, t + 1, t + 1 + M.steps_per_year) * s.price_scale[c]
            else:
                burn += float(np.sum(M.c_amount[c, t + 1:t + 1 + M.steps_per_year]))
    burn += _revenue_share_projected(t, M, s, revenue)
    if burn > 0.0 and s.cash[lab] < RUNWAY_CAP * burn:
        ev["runway_finite"] += 1
        return s.cash[lab] / burn
    ev["runway_capped"] += 1
    return RUNWAY_CAP
