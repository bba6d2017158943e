"""Compile a validated scenario into the flat arrays the numba kernel works on.

Everything economic lives in the scenario; this module only converts units (per year ->
per step), maps dates to step indices and names to integer indices. The result, a
`ModelArrays` named tuple, crosses the jit boundary as is.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np


class ModelArrays(NamedTuple):
    # grid
    n_steps: int
    steps_per_year: int
    dt: float
    lab: int
    # lab revenue process
    log_r0: float
    growth0: float
    growth_inf: float
    half_life: float
    volatility: float
    # regime
    regime_on: bool
    p_enter: float  # per step
    p_exit: float  # per step
    growth_winter: float
    volatility_winter: float
    jump_mean: float
    jump_sd: float
    sentiment_jump: float
    # sentiment (exact OU step)
    sent_decay: float
    sent_sd: float
    rho: float
    # lab costs and funding
    opex_share: np.ndarray  # (n_steps,)
    multiple: float
    multiple_winter: float
    raise_share: float
    raise_share_winter: float
    # refinancing
    refi_sent_slope: float
    refi_lev_slope: float
    refi_winter_shift: float
    # entities (n,)
    cash0: np.ndarray
    debt0: np.ndarray
    rate: np.ndarray
    amort: np.ndarray  # principal per step of the amortising part
    bullet: np.ndarray  # (n, n_steps) bullet maturities
    bullet_total: np.ndarray  # (n,)
    refi_logit: np.ndarray
    ocf0: np.ndarray
    ocf_growth: np.ndarray
    ocf_growth_winter: np.ndarray
    ocf_vol: np.ndarray
    ocf_loading: np.ndarray
    market_equity: np.ndarray
    equity_beta: np.ndarray
    book0: np.ndarray
    solvency_on: np.ndarray  # bool
    alpha: np.ndarray
    beta: np.ndarray
    recovery: np.ndarray
    share0: np.ndarray  # (n, n) holder x issuer
    # contracts (m,)
    c_payer: np.ndarray
    c_payee: np.ndarray
    c_amount: np.ndarray  # (m, n_steps)
    c_remaining: np.ndarray  # (m, n_steps + 1): value still due from step t on
    c_cost: np.ndarray
    c_capex: np.ndarray
    c_relet_share: np.ndarray
    c_relet_delay: np.ndarray  # steps (int)
    c_relet_discount: np.ndarray
    # tranches (q,)
    t_investor: np.ndarray
    t_investee: np.ndarray
    t_first: np.ndarray
    t_last: np.ndarray
    t_amount: np.ndarray
    t_prob: np.ndarray
    t_contract: np.ndarray  # -1: no milestone
    t_milestone: np.ndarray
    # network loans (l,)
    l_lender: np.ndarray
    l_borrower: np.ndarray
    l_amount: np.ndarray
    l_rate: np.ndarray
    l_maturity: np.ndarray  # step index
    # systemic importance (sim.studies.importance): the step at which each entity is forced
    # to default, -1 never (what `compile_scenario` sets; `with_forced_default` changes one)
    force_step: np.ndarray  # (n,) int
    # importance sampling (sim.engine.rare): the change of measure of the shocks, laid out as
    # kernel.TILT_* (4 + n values); empty: plain Monte Carlo (what `compile_scenario` sets)
    tilt: np.ndarray
    # switches (benchmarks)
    clearing_on: bool = True  # False: everyone pays in full, no clearing (the no-clearing floor)
    # the lab's treasury (issue 12, mechanism 1; docs/model.md section 3b). Off: the old rule.
    n_extra_shocks: int = 0  # 1: each path also draws one treasury uniform per step (see n_shocks)
    tr_on: bool = False
    tr_runway: float = 0.0  # years of projected burn the lab wants to hold
    tr_logit: float = 0.0  # logit of the per-step probability that a sought round closes (boom)
    tr_logit_winter: float = 0.0  # the same in winter
    tr_sent_slope: float = 0.0  # logit per unit of log sentiment
    tr_share: float = 0.0  # round proceeds / valuation
    tr_facility: float = 0.0  # committed credit facility, $B
    tr_fac_rate: float = 0.0  # interest on the drawn facility, per year
    # flexible contracts and restructuring (issue 12, mechanism 2; docs/model.md section 7c)
    c_flex: np.ndarray = np.zeros(0)  # (m,) share of each payment the payer may cut
    rs_on: bool = False
    rs_cut_runway: float = 0.0  # cut when the runway after funding is below this, years
    rs_notice: int = 1  # steps from the notice to the first cut payment
    rs_penalty: float = 0.0  # share of the cut amounts still paid (penalty)
    rs_haircut_max: float = 0.0  # largest cumulative haircut counterparties accept
    # the revenue share (issue 12, mechanism 3; docs/model.md section 6b)
    rsh_on: bool = False
    rsh_payee: int = 0
    rsh_share: float = 0.0
    rsh_until: int = 0  # first step it is no longer owed
    rsh_cap: float = 0.0  # cumulative cap, $B (inf: none)
    # compute capacity (issue 12, mechanism 4; docs/model.md section 6c)
    cap_on: bool = False
    cap_elasticity: float = 0.0
    cap_delay: int = 0  # steps from the supplier's default to the replacement
    cap_premium: float = 0.0
    # downturn recoveries (issue 12, mechanism 6; docs/model.md section 9)
    dr_on: bool = False
    dr_scale: float = 1.0
    # partners build with borrowed money (issue 12, mechanism 5; docs/model.md section 6d)
    build_on: bool = False
    build_lead: int = 1  # steps between tied capex and the payment it serves (>= 1)
    build_winter_cut: float = 0.0
    spread_lev: float = 0.0
    spread_winter: float = 0.0
    new_debt_steps: int = 0  # tenor of new debt, steps
    cash_floor: float = 0.0  # share of starting cash kept before borrowing to build
    sale_discount: float = 0.0
    ltv_default: float = 0.0
    coverage_years: int = 1
    capex_other: np.ndarray = np.zeros((0, 0))  # (n, n_steps) capex not tied to contracts, per step
    lease: np.ndarray = np.zeros((0, 0))  # (n, n_steps) lease payments per step
    capex_yield: np.ndarray = np.zeros(0)  # (n,) per year
    holdings: np.ndarray = np.zeros(0)  # (n,) $B at sentiment 1
    holdings_beta: np.ndarray = np.zeros(0)  # (n,) holdings move as S ** holdings_beta
    ltv_max: np.ndarray = np.zeros(0)  # (n,) 0: no covenant
    coverage_min: np.ndarray = np.zeros(0)  # (n,) 0: no covenant
    builds: np.ndarray = np.zeros(0, np.bool_)  # (n,) has a capex schedule: only those build
    b_ent: np.ndarray = np.zeros(0, np.int64)  # entities that build or have a covenant (the only ones visited)
    b_con: np.ndarray = np.zeros(0, np.int64)  # contracts whose payee builds


def n_shocks(n_entities: int, n_extra: int = 0) -> int:
    """Random numbers drawn per path and step: revenue normal, sentiment normal, regime
    uniform, jump normal, then per entity a cash-flow normal and a refinancing uniform; then
    `n_extra` (0 or 1) more columns: the treasury's round uniform (`ModelArrays.n_extra_shocks`),
    drawn after all the other numbers of the path so the others stay where they were."""
    if n_extra not in (0, 1):
        raise ValueError(f"n_extra must be 0 or 1, got {n_extra}")
    return 4 + 2 * n_entities + n_extra


def step_of(year: float, start_year: int, steps_per_year: int) -> int:
    """Index of the step containing a decimal calendar year."""
    return int(math.floor((year - start_year) * steps_per_year + 1e-9))


def _per_step_probability(p_year: float, dt: float) -> float:
    """A per-year probability turned into the per-step probability of the same intensity."""
    if p_year >= 1.0:
        return 1.0
    return 1.0 - (1.0 - p_year) ** dt


def _logit(p: float) -> float:
    p = min(max(p, 1e-12), 1.0 - 1e-12)
    return math.log(p / (1.0 - p))


def _year_schedule_to_steps(schedule: dict, start_year: int, spy: int, n_steps: int) -> np.ndarray:
    out = np.zeros(n_steps)
    for year, amount in schedule.items():
        first = (int(year) - start_year) * spy
        out[first:first + spy] += float(amount) / spy
    return out


def contract_steps(contract: dict, start_year: int, spy: int, n_steps: int) -> np.ndarray:
    """Amount due each step: an explicit yearly schedule spread evenly over the year's
    steps, or `total` spread over `years` from `start` with a linear ramp of `ramp_years`
    (the rate rises linearly during the ramp, then stays flat; it integrates to total)."""
    if contract.get("schedule"):
        return _year_schedule_to_steps(contract["schedule"], start_year, spy, n_steps)
    out = np.zeros(n_steps)
    dt = 1.0 / spy
    t0 = contract["start"] - start_year
    t1 = t0 + contract["years"]
    ramp = contract.get("ramp_years") or 0.0

    def cumulative(t):
        # integral of the unnormalised rate profile from t0 to t
        s = min(max(t - t0, 0.0), t1 - t0)
        if ramp <= 0:
            return s
        if s <= ramp:
            return 0.5 * s * s / ramp
        return 0.5 * ramp + (s - ramp)

    total_weight = cumulative(t1)
    for k in range(n_steps):
        w = cumulative((k + 1) * dt) - cumulative(k * dt)
        out[k] = contract["total"] * w / total_weight
    return out


def compile_scenario(scenario) -> ModelArrays:
    """Turn a validated `Scenario` into `ModelArrays` (all rates per step, names -> indices)."""
    d = scenario.data
    time = d["time"]
    start_year, spy = int(time["start_year"]), int(time["steps_per_year"])
    n_steps = spy * int(time["horizon_years"])
    dt = 1.0 / spy
    ents = d["entity"]
    names = [e["name"] for e in ents]
    idx = {name: i for i, name in enumerate(names)}
    n = len(ents)
    contracts = d.get("contract", [])
    cidx = {c["name"]: k for k, c in enumerate(contracts)}

    rev, reg, sen, lab, refi = d["revenue"], d["regime"], d["sentiment"], d["lab"], d["refinancing"]
    kappa = sen["mean_reversion"]
    decay = math.exp(-kappa * dt)
    sent_sd = sen["volatility"] * (math.sqrt((1 - decay**2) / (2 * kappa)) if kappa > 0 else math.sqrt(dt))

    t_mid = np.arange(n_steps) * dt  # time at the start of each step, years
    frac = np.clip(t_mid / lab["opex_years"], 0.0, 1.0)
    opex_share = lab["opex_share_start"] + (lab["opex_share_end"] - lab["opex_share_start"]) * frac

    def col(key, default=0.0):
        return np.array([default if e[key] is None else float(e[key]) for e in ents])

    debt0 = col("debt")
    bullet = np.zeros((n, n_steps))
    for i, e in enumerate(ents):
        if e.get("maturities"):
            for year, amount in e["maturities"].items():
                bullet[i, (int(year) - start_year) * spy] += float(amount)
    amortising = debt0 - bullet.sum(axis=1)
    amort = np.maximum(amortising, 0.0) / col("amortisation_years") * dt
    ocf_growth = col("ocf_growth")
    ocf_growth_winter = np.array([e["ocf_growth"] if e["ocf_growth_winter"] is None else e["ocf_growth_winter"]
                                  for e in ents], dtype=float)

    share0 = np.zeros((n, n))
    for s in d.get("stake", []):
        share0[idx[s["holder"]], idx[s["issuer"]]] += s["share"]

    m = len(contracts)
    c_amount = np.zeros((m, n_steps))
    for k, c in enumerate(contracts):
        c_amount[k] = contract_steps(c, start_year, spy, n_steps)
    c_remaining = np.zeros((m, n_steps + 1))
    c_remaining[:, :n_steps] = np.cumsum(c_amount[:, ::-1], axis=1)[:, ::-1]

    def cfield(key):
        return np.array([float(c[key]) for c in contracts]) if m else np.zeros(0)

    tranches = [(inv, tr) for inv in d.get("investment", []) for tr in inv["tranche"]]
    t_first = np.array([step_of(tr["date"], start_year, spy) for _, tr in tranches], dtype=np.int64)
    t_last = np.array([n_steps - 1 if tr["expires"] is None else step_of(tr["expires"], start_year, spy)
                       for _, tr in tranches], dtype=np.int64)

    loans = d.get("loan", [])

    def ivec(values):
        return np.array(values, dtype=np.int64)

    return ModelArrays(
        n_steps=n_steps, steps_per_year=spy, dt=dt, lab=idx[lab["entity"]],
        log_r0=math.log(rev["initial"]), growth0=rev["growth0"], growth_inf=rev["growth_inf"],
        half_life=rev["half_life"], volatility=rev["volatility"],
        regime_on=bool(reg["enabled"]),
        p_enter=_per_step_probability(reg["enter_prob"], dt),
        p_exit=_per_step_probability(reg["exit_prob"], dt),
        growth_winter=reg["growth_winter"], volatility_winter=reg["volatility_winter"],
        jump_mean=reg["jump_mean"], jump_sd=reg["jump_sd"], sentiment_jump=reg["sentiment_jump"],
        sent_decay=decay, sent_sd=sent_sd, rho=sen["rho"],
        opex_share=opex_share.astype(float),
        multiple=lab["valuation_multiple"], multiple_winter=lab["valuation_multiple_winter"],
        raise_share=lab["raise_share"], raise_share_winter=lab["raise_share_winter"],
        refi_sent_slope=refi["sentiment_slope"], refi_lev_slope=refi["leverage_slope"],
        refi_winter_shift=refi["winter_shift"],
        cash0=col("cash"), debt0=debt0, rate=col("rate"), amort=amort, bullet=bullet, bullet_total=bullet.sum(axis=1),
        refi_logit=np.array([_logit(e["refi_prob"]) for e in ents]),
        ocf0=col("ocf"), ocf_growth=ocf_growth, ocf_growth_winter=ocf_growth_winter,
        ocf_vol=col("ocf_volatility"), ocf_loading=col("ocf_loading"),
        market_equity=col("market_equity"), equity_beta=col("equity_beta"), book0=col("book_equity"),
        solvency_on=np.array([bool(e["solvency_default"]) for e in ents]),
        alpha=col("alpha"), beta=col("beta"), recovery=col("recovery"), share0=share0,
        c_payer=ivec([idx[c["payer"]] for c in contracts]),
        c_payee=ivec([idx[c["payee"]] for c in contracts]),
        c_amount=c_amount, c_remaining=c_remaining,
        c_cost=cfield("cost_ratio"), c_capex=cfield("capex_share"), c_relet_share=cfield("relet_share"),
        c_relet_delay=ivec([int(round(c["relet_delay"] * spy)) for c in contracts]),
        c_relet_discount=cfield("relet_discount"),
        t_investor=ivec([idx[inv["investor"]] for inv, _ in tranches]),
        t_investee=ivec([idx[inv["investee"]] for inv, _ in tranches]),
        t_first=t_first, t_last=t_last,
        t_amount=np.array([float(tr["amount"]) for _, tr in tranches]),
        t_prob=np.array([float(tr["probability"]) for _, tr in tranches]),
        t_contract=ivec([-1 if tr["milestone_contract"] is None else cidx[tr["milestone_contract"]]
                         for _, tr in tranches]),
        t_milestone=np.array([float(tr["milestone_amount"]) for _, tr in tranches]),
        l_lender=ivec([idx[x["lender"]] for x in loans]),
        l_borrower=ivec([idx[x["borrower"]] for x in loans]),
        l_amount=np.array([float(x["amount"]) for x in loans]),
        l_rate=np.array([float(x["rate"]) for x in loans]),
        l_maturity=ivec([step_of(x["maturity"], start_year, spy) for x in loans]),
        force_step=np.full(n, -1, np.int64), tilt=np.zeros(0),
        **_treasury_arrays(d["treasury"], dt),
        c_flex=cfield("flexible_share"), rs_on=bool(d["restructuring"]["enabled"]),
        rs_cut_runway=float(d["restructuring"]["cut_runway"]),
        rs_notice=max(1, int(round(d["restructuring"]["cut_notice"] * spy))),
        rs_penalty=float(d["restructuring"]["cut_penalty"]),
        rs_haircut_max=float(d["restructuring"]["haircut_max"]),
        **_revenue_share_arrays(d["revenue_share"], idx, start_year, spy, n_steps),
        cap_on=bool(d["capacity"]["enabled"]), cap_elasticity=float(d["capacity"]["revenue_elasticity"]),
        cap_delay=int(round(d["capacity"]["resource_delay"] * spy)),
        cap_premium=float(d["capacity"]["resource_premium"]),
        dr_on=bool(d["downturn_recovery"]["enabled"]), dr_scale=float(d["downturn_recovery"]["scale"]),
        **_build_arrays(d["build"], ents, c_amount, cfield("capex_share"), ivec([idx[c["payee"]] for c in contracts]),
                        start_year, spy, n_steps),
    )


def _held_schedule(schedule, start_year: int, spy: int, n_steps: int) -> np.ndarray:
    """$B per step from a {year: $B/yr} schedule whose last listed year holds to the horizon."""
    out = np.zeros(n_steps)
    if not schedule:
        return out
    years = sorted(int(y) for y in schedule)
    for y, nxt in zip(years, years[1:] + [start_year + n_steps // spy]):
        first, last = (y - start_year) * spy, min((nxt - start_year) * spy, n_steps)
        out[first:last] = float(schedule[y] if y in schedule else schedule[str(y)]) / spy
    return out


def _build_arrays(b: dict, ents: list, c_amount: np.ndarray, c_capex: np.ndarray, c_payee: np.ndarray,
                  start_year: int, spy: int, n_steps: int) -> dict:
    """The [build] fields of `ModelArrays`: capex not tied to contracts (the total less the
    scheduled tied capex `lead` ahead, floored at 0) and leases, per step."""
    if not b["enabled"]:
        return {}
    n = len(ents)
    lead = max(1, int(round(b["lead"] * spy)))
    builds = np.array([bool(e["capex"]) for e in ents])
    capex_other = np.zeros((n, n_steps))
    lease = np.zeros((n, n_steps))
    for i, e in enumerate(ents):
        capex_other[i] = _held_schedule(e["capex"], start_year, spy, n_steps)
        lease[i] = _held_schedule(e["leases"], start_year, spy, n_steps)
    tied = np.zeros((n, n_steps))
    for c in range(c_amount.shape[0]):
        if not ents[c_payee[c]]["capex"]:
            continue
        ahead = np.zeros(n_steps)
        ahead[:n_steps - lead] = c_amount[c, lead:]
        tied[c_payee[c]] += c_capex[c] * ahead
    capex_other = np.maximum(capex_other - tied, 0.0)

    def col(key):
        return np.array([float(e[key]) for e in ents])

    return dict(build_on=True, build_lead=lead, build_winter_cut=float(b["winter_capex_cut"]),
                spread_lev=float(b["spread_leverage"]), spread_winter=float(b["spread_winter"]),
                new_debt_steps=max(1, int(round(b["new_debt_years"] * spy))), cash_floor=float(b["cash_floor"]),
                sale_discount=float(b["sale_discount"]), ltv_default=float(b["ltv_default"]),
                coverage_years=int(b["coverage_years"]), capex_other=capex_other, lease=lease,
                capex_yield=col("capex_yield"), holdings=col("holdings"),
                holdings_beta=np.array([float(e["equity_beta"] if e["holdings_beta"] is None else e["holdings_beta"])
                                        for e in ents]), ltv_max=col("ltv_max"),
                coverage_min=col("coverage_min"), builds=builds,
                b_ent=np.array([i for i, e in enumerate(ents) if builds[i] or e["ltv_max"] > 0 or e["coverage_min"] > 0],
                               dtype=np.int64),
                b_con=np.array([c for c in range(c_amount.shape[0]) if builds[c_payee[c]]], dtype=np.int64))


def _revenue_share_arrays(rsh: dict, idx: dict, start_year: int, spy: int, n_steps: int) -> dict:
    """The revenue share's fields of `ModelArrays`."""
    if not rsh["enabled"]:
        return {}
    until = n_steps if rsh["until"] is None else min(max(step_of(rsh["until"], start_year, spy), 0), n_steps)
    return dict(rsh_on=True, rsh_payee=idx[rsh["payee"]], rsh_share=float(rsh["share"]), rsh_until=until,
                rsh_cap=math.inf if rsh["cap"] is None else float(rsh["cap"]))


def _treasury_arrays(tr: dict, dt: float) -> dict:
    """The treasury's fields of `ModelArrays` (probabilities per year -> logits per step)."""
    on = bool(tr["enabled"])
    draw = on if tr["draw_shocks"] is None else bool(tr["draw_shocks"])
    if on and not draw:
        raise ValueError("treasury.draw_shocks = false with treasury.enabled = true: the treasury needs its shocks")
    return dict(
        n_extra_shocks=1 if draw else 0, tr_on=on, tr_runway=float(tr["runway_target"]),
        tr_logit=_logit(_per_step_probability(tr["round_prob"], dt)),
        tr_logit_winter=_logit(_per_step_probability(tr["round_prob_winter"], dt)),
        tr_sent_slope=float(tr["round_sentiment_slope"]), tr_share=float(tr["round_share"]),
        tr_facility=float(tr["facility"]), tr_fac_rate=float(tr["facility_rate"]),
    )


def with_forced_default(arrays: ModelArrays, entity: int, step: int) -> ModelArrays:
    """The same model with `entity` forced to default at step `step` (if still alive then):
    after that step's clearing it is written off as any defaulter is (kind 0, "forced",
    never counted as contagious); everything else, random numbers included, is unchanged."""
    n = arrays.cash0.shape[0]
    if not 0 <= entity < n:
        raise ValueError(f"entity index {entity} outside 0..{n - 1}")
    if not 0 <= step < arrays.n_steps:
        raise ValueError(f"forced-default step {step} outside 0..{arrays.n_steps - 1}")
    force = np.full(n, -1, np.int64)
    force[entity] = step
    return arrays._replace(force_step=force)


def lab_committed_spend(arrays: ModelArrays) -> np.ndarray:
    """The lab's scheduled contract payments per step ($B per step), if nobody defaults."""
    mask = arrays.c_payer == arrays.lab
    return arrays.c_amount[mask].sum(axis=0) if mask.any() else np.zeros(arrays.n_steps)
