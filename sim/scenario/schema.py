"""The scenario schema: every field a scenario file may set, its type, range, unit and default.

One declarative table serves three purposes: the loader validates against it, the
documentation (`bubblesim schema`, docs/scenarios.md) is generated from it, and the
engine can rely on every field being present after loading (defaults filled in).

Units: money in USD billions, rates and intensities per year, time in years.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

REQUIRED = object()  # sentinel: the field has no default


@dataclass(frozen=True)
class Field:
    """One scalar field of a scenario table.

    kind: "float", "int", "bool", "str", "date" (a decimal year such as 2026.25 or a
    TOML date such as 2026-04-01), "schedule" (a table mapping calendar years to
    amounts in $B, e.g. { 2027 = 25.0, 2028 = 50.0 }), "enum" (one of `choices`),
    "ref" (the name of an entity or, with ref="contract", of a contract).
    lo/hi: inclusive bounds for numbers (None = unbounded); lo_open: lower bound is strict.
    default: REQUIRED, None (optional, absent means "not set") or a value.
    """

    kind: str
    doc: str
    unit: str = ""
    default: Any = REQUIRED
    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    choices: tuple[str, ...] = ()
    ref: str = "entity"
    warn_lo: float | None = None
    warn_hi: float | None = None
    pct: bool = False


def F(doc, unit="", default=REQUIRED, lo=None, hi=None, lo_open=False, warn_lo=None, warn_hi=None, pct=False):
    """A number. lo/hi: hard bounds (an error outside); warn_lo/warn_hi: plausible but unusual
    outside (a warning); pct: a fraction that a careless user may write as a percentage (the
    messages then ask "did you mean 0.25?" for 25)."""
    return Field("float", doc, unit, default, lo, hi, lo_open, warn_lo=warn_lo, warn_hi=warn_hi, pct=pct)


def P(doc, default=REQUIRED):
    """A probability or share in [0, 1]."""
    return Field("float", doc, "share in [0, 1]", default, 0.0, 1.0, pct=True)


# Ranges that make economic sense. Money: nothing in this model is worth more than about world
# GDP (~$100 trillion = 1e5 $B); above $20 trillion (four times the largest company's market
# value) is unusual. Log drifts above 3/yr multiply by 20 a year; volatilities above 3/sqrt(yr)
# or rates above 100%/yr are not economics but typos. Durations up to a century.
MONEY = 1e5
MONEY_WARN = 2e4
DATE_LO, DATE_HI = 1900.0, 2300.0


def M(doc, unit="$B", default=REQUIRED, lo=0.0, lo_open=False):
    """An amount of money in $B."""
    return F(doc, unit, default, lo=lo, hi=MONEY, lo_open=lo_open, warn_hi=MONEY_WARN)


def G(doc, default=REQUIRED):
    """A log drift per year."""
    return F(doc, "/yr", default, lo=-3.0, hi=3.0, warn_lo=-1.5, warn_hi=1.5, pct=True)


def V(doc, default=REQUIRED, unit="/sqrt(yr)"):
    """A volatility."""
    return F(doc, unit, default, lo=0.0, hi=3.0, warn_hi=1.5, pct=True)


def Y(doc, default=REQUIRED, lo_open=True):
    """A duration in years."""
    return F(doc, "yr", default, lo=0.0, hi=100.0, lo_open=lo_open)


def R(doc, default=REQUIRED):
    """An interest rate per year."""
    return F(doc, "/yr", default, lo=0.0, hi=1.0, warn_hi=0.3, pct=True)


def S(doc, default=REQUIRED, lo=-50.0):
    """A logit slope or shift."""
    return F(doc, "", default, lo=lo, hi=50.0, warn_lo=-10.0 if lo < 0 else None, warn_hi=10.0)


TOP = {
    "name": Field("str", "Scenario name, used in tables and file names.", default=REQUIRED),
    "description": Field("str", "Free text shown in reports (escaped).", default=""),
    "extends": Field("str", "Path (relative to this file) of a scenario this one modifies; "
                     "tables are deep-merged, arrays of tables are replaced whole.", default=None),
    "seed": Field("int", "Root seed of the random streams.", default=20260101, lo=0, hi=2**63 - 1),
    "paths": Field("int", "Default number of Monte Carlo paths.", default=100_000, lo=1, hi=1_000_000_000),
}

SECTIONS: dict[str, dict[str, Field]] = {
    "time": {
        "start_year": Field("int", "First simulated year (the grid starts on 1 January).",
                            default=2026, lo=1900, hi=2200),
        "steps_per_year": Field("int", "Time steps per year (4 = quarterly).", default=4, lo=1, hi=52),
        "horizon_years": Field("int", "Number of simulated years.", default=7, lo=1, hi=50),
    },
    "revenue": {
        "initial": M("The lab's annualised revenue at the start.", "$B/yr", lo_open=True),
        "growth0": G("Log growth drift at the start (boom regime)."),
        "growth_inf": G("Long-run log growth drift the drift decays toward."),
        "half_life": Y("Years for the drift's distance to growth_inf to halve.", default=2.0),
        "volatility": V("Volatility of log revenue (boom regime)."),
    },
    "regime": {
        "enabled": Field("bool", "Whether the boom / AI-winter Markov regime is simulated.", default=True),
        "enter_prob": P("Probability per year of moving from boom to AI winter.", 0.0),
        "exit_prob": P("Probability per year of leaving AI winter.", 0.5),
        "growth_winter": G("Log growth drift of the lab's revenue in winter.", default=0.0),
        "volatility_winter": V("Volatility of log revenue in winter.", default=0.35),
        "jump_mean": F("Mean of the one-off log-level revenue jump on entering winter.", "log", default=0.0,
                       lo=-10.0, hi=10.0, warn_lo=-3.0, warn_hi=3.0),
        "jump_sd": V("Standard deviation of that jump.", default=0.0, unit="log"),
        "sentiment_jump": F("One-off jump of log sentiment on entering winter.", "log", default=0.0,
                            lo=-10.0, hi=10.0, warn_lo=-3.0, warn_hi=3.0),
    },
    "sentiment": {
        "mean_reversion": F("Mean-reversion speed of log sentiment (Ornstein-Uhlenbeck).", "/yr",
                            default=1.0, lo=0.0, hi=100.0, warn_hi=20.0),
        "volatility": V("Volatility of log sentiment.", default=0.25),
        "rho": F("Correlation of the sentiment shock with the lab's revenue shock.", "", default=0.5,
                 lo=-1.0, hi=1.0),
    },
    "lab": {
        "entity": Field("ref", "Name of the entity that is the lab (its revenue is the revenue process)."),
        "opex_share_start": F("Non-compute operating costs as a share of revenue at the start.", "share",
                              default=0.35, lo=0.0, hi=5.0, warn_hi=1.5, pct=True),
        "opex_share_end": F("Same share at the end of the glide path.", "share", default=0.20, lo=0.0, hi=5.0,
                            warn_hi=1.5, pct=True),
        "opex_years": Y("Years of the linear glide from start to end share.", default=4.0),
        "valuation_multiple": F("Equity value / annualised revenue in boom, at sentiment 1.", "x",
                                default=25.0, lo=0.0, hi=1000.0, warn_hi=100.0),
        "valuation_multiple_winter": F("Same multiple in AI winter.", "x", default=10.0, lo=0.0, hi=1000.0,
                                       warn_hi=100.0),
        "raise_share": P("Share of its valuation the lab can raise as new equity per year (boom).", 0.10),
        "raise_share_winter": P("Same share in AI winter.", 0.03),
    },
    "refinancing": {
        "sentiment_slope": S("Logit of the roll-over probability per unit of log sentiment.", default=2.0),
        "leverage_slope": S("Logit decrease per unit of leverage (outside debt / market equity).",
                            default=1.0, lo=0.0),
        "winter_shift": S("Logit shift of the roll-over probability in AI winter.", default=-1.0),
    },
    "treasury": {
        "enabled": Field("bool", "The lab's treasury (docs/model.md, section 3b): funding rounds close as "
                         "random events and are banked, the lab raises when its runway falls below "
                         "runway_target, and it can draw a credit facility. false: the lab raises only "
                         "each step's shortfall, up to raise_share x valuation x dt (the rule before it).",
                         default=False),
        "draw_shocks": Field("bool", "Draw the treasury's uniform (one more random number per step, "
                             "drawn after all the others of the path) even when the treasury is off, so "
                             "runs with it off and on share their shocks path by path (common random "
                             "numbers). Unset: drawn exactly when the treasury is on.", default=None),
        "runway_target": F("The lab seeks a round when its cash after this step's payments is below "
                           "this many years of projected burn.", "yr", default=1.5, lo=0.0),
        "round_prob": P("Probability per year that a sought round closes, in boom at sentiment 1.", 0.6),
        "round_prob_winter": P("Same probability in AI winter.", 0.2),
        "round_sentiment_slope": F("Logit of the round's closing probability per unit of log sentiment.",
                                   "", default=2.0),
        "round_share": P("Proceeds of a round as a share of the lab's valuation.", 0.075),
        "facility": F("Undrawn committed credit facility the lab can draw for what a round does not "
                      "cover.", "$B", default=0.0, lo=0.0),
        "facility_rate": F("Interest rate on the drawn facility.", "/yr", default=0.08, lo=0.0),
    },
    "revenue_share": {
        "enabled": Field("bool", "A share of the lab's revenue owed to a partner each step (docs/model.md, "
                         "section 6b), until a date or a cumulative cap. false: no such obligation.",
                         default=False),
        "payee": Field("ref", "Entity the lab pays the share to (required when enabled).", default=None),
        "share": P("Share of the lab's revenue (R dt) owed each step.", 0.2),
        "until": Field("date", "First date the share is no longer owed (e.g. 2031-01-01: through 2030).",
                       "year", default=None),
        "cap": F("Cumulative cap on what is paid; unset: none.", "$B", default=None, lo=0.0),
    },
    "capacity": {
        "enabled": Field("bool", "The lab's compute capacity matters (docs/model.md, section 6c): when a "
                         "supplier of the lab defaults, the lab's revenue falls by revenue_elasticity x the "
                         "supplier's share of its scheduled compute until it re-sources after "
                         "resource_delay, then pays for the replacement at a premium. false: a supplier's "
                         "default only ends the lab's payments to it.", default=False),
        "revenue_elasticity": F("Fraction of the lost compute share the lab loses in revenue.", "", default=1.0,
                                lo=0.0, hi=1.0),
        "resource_delay": F("Years until lost capacity is replaced.", "yr", default=1.0, lo=0.0),
        "resource_premium": F("Price premium on replacement compute over the lost contract's schedule.",
                              "share", default=0.2, lo=0.0),
    },
    "downturn_recovery": {
        "enabled": Field("bool", "Recoveries fall in a downturn (docs/model.md, section 9): a default in AI "
                         "winter, or in a step in which another entity also defaults, recovers `scale` x "
                         "the entity's `recovery`. false: recoveries are constant.", default=False),
        "scale": P("Factor on each entity's recovery in a downturn.", 0.575),
    },
    "build": {
        "enabled": Field("bool", "Partners build with borrowed money (docs/model.md, section 6d): each "
                         "entity's `capex` schedule (capex tied to its contracts built `lead` ahead, the "
                         "rest its other business), `leases`, new debt at a spread when cash runs short, and "
                         "its covenants (`ltv_max`, `coverage_min`). false: cash moves with operating cash "
                         "flow before capex, and the debt stock only shrinks (the model before it).",
                         default=False),
        "lead": F("Capex tied to a contract is spent this long before the payment it serves (at least "
                  "one step).", "yr", default=1.0, lo=0.0, hi=10.0),
        "winter_capex_cut": P("Share of capex not tied to contracts cut in AI winter.", 0.2),
        "spread_leverage": F("Spread on new debt per unit of leverage (outside debt / market equity).",
                             "/yr", default=0.02, lo=0.0, hi=1.0),
        "spread_winter": R("Extra spread on new debt in AI winter.", default=0.03),
        "new_debt_years": Y("Tenor of new debt (a bullet).", default=5.0),
        "cash_floor": P("Cash an entity keeps before borrowing to build, as a share of its starting cash.",
                        0.5),
        "sale_discount": P("Discount on holdings sold to restore the LTV covenant.", 0.1),
        "ltv_default": P("Loan-to-value (net debt / holdings) above which, after sales, a holding "
                         "company defaults.", 0.5),
        "coverage_years": Field("int", "Consecutive calendar years of cash flow below coverage_min x "
                                "interest that make a coverage default.", default=2, lo=1, hi=50),
    },
    "restructuring": {
        "enabled": Field("bool", "Flexible contracts and restructuring before default (docs/model.md, "
                         "section 7c): the lab cuts the flexible share of its contracts when its runway "
                         "is short, and closes a remaining gap by a haircut its contract payees accept "
                         "(a distressed exchange, a credit event) up to haircut_max; only a larger gap is "
                         "a hard default. false: every contract is take-or-pay and any gap is a default.",
                         default=False),
        "cut_runway": F("The lab gives notice on every flexible share when its cash after this step's "
                        "funding is below this many years of projected burn.", "yr", default=0.5, lo=0.0),
        "cut_notice": F("Notice before the first cut payment (at least one step).", "yr", default=0.25,
                        lo=0.0),
        "cut_penalty": P("Share of each cut amount the payer still pays (the cancellation penalty).", 0.2),
        "haircut_max": F("Largest cumulative haircut on a contract's remaining payments its payee "
                         "accepts in distressed exchanges.", "share", default=0.3, lo=0.0, hi=0.95),
    },
}

ENTITY = {
    "name": Field("str", "Unique entity name."),
    "kind": Field("enum", "What the entity is.", default="other",
                  choices=("lab", "cloud", "chipmaker", "neocloud", "investor", "other")),
    "description": Field("str", "Free text.", default=""),
    "cash": M("Liquid assets at the start.", default=0.0),
    "debt": M("Debt owed to outside creditors at the start (face).", default=0.0),
    "rate": R("Coupon rate on outside debt.", default=0.05),
    "amortisation_years": Y("Years over which the debt not in `maturities` amortises evenly.",
                            default=10.0),
    "maturities": Field("schedule", "Bullet maturities of outside debt by calendar year (part of `debt`).",
                        "$B", default=None, lo=0.0, hi=MONEY, warn_hi=MONEY_WARN),
    "refi_prob": P("Probability that maturing principal rolls over, at sentiment 1, zero leverage, boom.", 0.9),
    "ocf": M("Outside operating cash flow (business not with the network) at the start.", "$B/yr",
             default=0.0),
    "ocf_growth": G("Log drift of outside cash flow.", default=0.0),
    "ocf_growth_winter": G("Log drift of outside cash flow in AI winter (default: ocf_growth).",
                           default=None),
    "ocf_volatility": V("Volatility of log outside cash flow.", default=0.15),
    "ocf_loading": F("Correlation of the cash-flow shock with the sentiment shock.", "", default=0.5,
                     lo=-1.0, hi=1.0),
    "market_equity": M("Equity market value at sentiment 1 (marks stakes in it).", default=0.0),
    "equity_beta": F("Elasticity of equity value to sentiment: E = market_equity * S^beta.", "",
                     default=1.0, lo=0.0, hi=20.0, warn_hi=5.0),
    "book_equity": M("Book equity at the start; the entity is insolvent when it falls below 0.",
                     default=0.0, lo=-MONEY),
    "solvency_default": Field("bool", "Whether negative book equity is a default (else liquidity only).",
                              default=True),
    "capex": Field("schedule", "Total capital expenditure by calendar year, $B/yr; the last listed year "
                   "holds to the horizon. Used with [build] enabled: the part not tied to contracts "
                   "(capex_share x the payments `lead` ahead) is its other business.", "$B/yr",
                   default=None, lo=0.0, hi=MONEY, warn_hi=MONEY_WARN),
    "capex_yield": F("Outside cash flow per year per $ of capex not tied to contracts, from `lead` after "
                     "it is spent ([build]).", "/yr", default=0.0, lo=0.0, hi=2.0),
    "leases": Field("schedule", "Fixed lease payments by calendar year, $B/yr, the last listed year held to "
                    "the horizon; an outside obligation ([build]).", "$B/yr", default=None, lo=0.0, hi=MONEY,
                    warn_hi=MONEY_WARN),
    "holdings": M("Marked value of holdings outside the network at sentiment 1 (moves as S^equity_beta); "
                  "sold to restore ltv_max ([build]).", default=0.0),
    "holdings_beta": F("Elasticity of the holdings' value to sentiment (an asset beta; default: "
                       "equity_beta).", "", default=None, lo=0.0, hi=20.0, warn_hi=5.0),
    "ltv_max": P("LTV covenant: net debt / (holdings + network stakes) above this forces asset sales "
                 "([build]); 0: none.", 0.0),
    "coverage_min": F("Coverage covenant: cash flow / interest below this for coverage_years years is a "
                      "default ([build]); 0: none.", "", default=0.0, lo=0.0, hi=100.0),
    "alpha": P("Rogers-Veraart share of outside assets realised in default (1 = no cost).", 1.0),
    "beta": P("Rogers-Veraart share of network receivables realised in default.", 1.0),
    "recovery": P("Recovery rate of outside debt not yet due when the entity defaults.", 0.4),
}

CONTRACT = {
    "name": Field("str", "Unique contract name."),
    "kind": Field("enum", "Edge kind in the network map.", default="compute",
                  choices=("compute", "chips", "other")),
    "payer": Field("ref", "Entity that pays (the buyer)."),
    "payee": Field("ref", "Entity that delivers and is paid."),
    "schedule": Field("schedule", "Amounts due by calendar year (paid evenly over that year's steps). "
                      "Give either this or total/start/years.", "$B", default=None, lo=0.0, hi=MONEY,
                      warn_hi=MONEY_WARN),
    "total": M("Total contract value (with start and years, instead of schedule).", default=None),
    "start": Field("date", "First date of payments.", "year", default=None),
    "years": Y("Length of the payment period.", default=None),
    "ramp_years": Y("Linear ramp-up at the start of the payment period.", default=0.0, lo_open=False),
    "cost_ratio": P("Payee's cost of delivering, as a share of each amount due.", 0.6),
    "capex_share": P("Share of the remaining contract value the payee has sunk in capacity and writes off "
                     "when the payer defaults (before re-letting).", 0.3),
    "relet_share": P("Share of lost capacity the payee re-lets after a payer default.", 0.6),
    "relet_delay": Y("Delay before re-let capacity earns.", default=2.0, lo_open=False),
    "relet_discount": P("Price discount on re-let capacity.", 0.3),
    "flexible_share": P("Share of each scheduled payment the payer may cut, with notice and a penalty "
                        "([restructuring]; 0: fully take-or-pay).", 0.0),
}

TRANCHE = {
    "date": Field("date", "Earliest date the tranche can pay.", "year"),
    "amount": M("Amount invested.", lo_open=True),
    "probability": P("Probability (drawn once per path) that the tranche's outside condition is met "
                     "(e.g. an IPO milestone).", 1.0),
    "milestone_contract": Field("ref", "Contract whose cumulative payments must reach milestone_amount.",
                                default=None, ref="contract"),
    "milestone_amount": M("Cumulative payments on milestone_contract needed.", default=0.0),
    "expires": Field("date", "Last date the tranche can pay (default: end of horizon).", "year",
                     default=None),
}

INVESTMENT = {
    "name": Field("str", "Unique investment name."),
    "investor": Field("ref", "Entity that invests (pays)."),
    "investee": Field("ref", "Entity that receives the money and issues equity."),
}

STAKE = {
    "holder": Field("ref", "Entity that owns the stake."),
    "issuer": Field("ref", "Entity whose equity it is."),
    "share": P("Share of the issuer's equity held."),
    "description": Field("str", "Free text (e.g. 'AMD warrant, 160M shares').", default=""),
}

LOAN = {
    "name": Field("str", "Unique loan name."),
    "lender": Field("ref", "Network entity that lent."),
    "borrower": Field("ref", "Network entity that owes."),
    "amount": M("Principal.", lo_open=True),
    "rate": R("Interest rate, paid every step.", default=0.05),
    "maturity": Field("date", "Date the principal is due.", "year"),
}

# Arrays of tables: TOML key -> (fields, nested arrays of tables)
ARRAYS: dict[str, tuple[dict[str, Field], dict[str, dict[str, Field]]]] = {
    "entity": (ENTITY, {}),
    "contract": (CONTRACT, {}),
    "investment": (INVESTMENT, {"tranche": TRANCHE}),
    "stake": (STAKE, {}),
    "loan": (LOAN, {}),
}


# --------------------------------------------------------------------------------------
# Documentation: docs/scenarios.md is generated from this schema (tests check it is current).
# Regenerate with:
#   .venv/bin/python -c "import sim.scenario.schema as s; open('docs/scenarios.md', 'w').write(s.schema_markdown())"
# --------------------------------------------------------------------------------------

_DOC_INTRO = """\
# Scenario files

<!-- Generated from sim/scenario/schema.py by sim.scenario.schema.schema_markdown(); do not edit by hand.
     Regenerate: .venv/bin/python -c "import sim.scenario.schema as s; open('docs/scenarios.md', 'w').write(s.schema_markdown())" -->

A scenario is a TOML file. It has a few top-level keys, one table per section
(`[time]`, `[revenue]`, ...) and arrays of tables for the network: `[[entity]]`,
`[[contract]]`, `[[investment]]` (each with one or more `[[investment.tranche]]`),
`[[stake]]` and `[[loan]]`. Every key is listed below; a key that is not listed is an
error (with a "did you mean" suggestion), never silently ignored.

**Units.** Money in USD billions ($B), rates and intensities per year, time in years.
Probabilities and shares are numbers in [0, 1]. An integer is accepted wherever a
number is expected (`cash = 5` is `5.0`); `true`/`false` and quoted numbers are not.

**Dates** (`date` fields) are decimal years (`2026.25` is 1 April 2026, roughly) or
unquoted TOML dates (`2026-04-01`), converted to `year + (day_of_year - 1) / days_in_year`.

**Schedules** (`schedule` fields) are tables from calendar year to amount in $B,
`{ 2027 = 25.0, 2028 = 50.0 }`; an amount is spread evenly over that year's time steps.

**Horizon.** The simulation covers `[time.start_year, time.start_year + time.horizon_years)`.
Schedule years, contract payment periods (`[start, start + years)`), tranche dates,
debt maturities and loan maturities must lie inside it (tranche `expires` and loan
`maturity` may equal its end).

**Contracts** give their payments either as a `schedule` or as `total` + `start` + `years`
(spread evenly after an optional linear `ramp_years`, which only this form takes),
never both and never partly.

**`extends`.** `extends = "base.toml"` (relative to the file that says it) loads another
scenario first and applies this file on top of it: tables are merged key by key,
recursively; scalars and arrays -- including arrays of tables such as `[[entity]]` --
in the child replace the parent's whole. Chains are allowed, cycles are errors, and a
scenario that extends another must set its own `name`. To change a single entity's
value without repeating the array, use an override instead: dotted keys such as
`revenue.growth0`, `entity.Oracle.cash`, `contract["Oracle OCI"].total`,
`investment.NAME.tranche.0.amount` or `stake.HOLDER->ISSUER.share`
(`Scenario.with_overrides`), re-validated like a file.

**Ranges.** Every number has a hard range (outside it is an error) chosen to make economic
sense: money up to 1e5 $B (about world GDP), log drifts within +-3/yr, volatilities up to 3,
rates up to 1 (100%/yr), durations up to 100 years, dates between 1900 and 2300. Where a
*usual* range is shown, a value inside the hard range but outside the usual one is accepted
with a warning on stderr. A fraction written as a percentage (`volatility = 25`) gets "did
you mean 0.25?".

**Checks before any simulation.** Types and ranges of every key; required keys; at
least two entities; unique entity, contract, investment and loan names; every entity
(or contract) named by a reference exists; payer != payee (and likewise for investments,
stakes and loans); horizons as above; `ramp_years` no longer than the payment period;
tranche `expires` not before its `date`; at least one tranche per investment;
`milestone_amount` only with a `milestone_contract`; debt `maturities` summing to at
most `debt`; stakes in one issuer summing to at most 1. Errors name the file, the line,
the dotted key (for example `contract["Oracle OCI"].payee`), what was expected and
what was found.

Column *default*: **required** means the key must be given; *not set* means optional
with no value (the meaning of "not set" is in the description).
"""


def _md_num(x) -> str:
    if isinstance(x, float) and x.is_integer() and abs(x) < 1e15:
        return str(int(x)) if abs(x) >= 1e4 else repr(x)
    return repr(x) if isinstance(x, float) else str(x)


def _md_bound(x) -> str:
    return format(x, "g")


def _md_type(f: Field) -> str:
    if f.kind in ("float", "int", "schedule"):
        base = {"float": "number", "int": "integer", "schedule": "schedule"}[f.kind]
        if f.lo is not None and f.hi is not None:
            rng = f"in {'(' if f.lo_open else '['}{_md_bound(f.lo)}, {_md_bound(f.hi)}]"
        elif f.lo is not None:
            rng = f"{'>' if f.lo_open else '>='} {_md_bound(f.lo)}"
        elif f.hi is not None:
            rng = f"<= {_md_bound(f.hi)}"
        else:
            rng = ""
        usual = ""
        if f.warn_lo is not None and f.warn_hi is not None:
            usual = f"; usually in [{_md_bound(f.warn_lo)}, {_md_bound(f.warn_hi)}]"
        elif f.warn_hi is not None:
            usual = f"; usually <= {_md_bound(f.warn_hi)}"
        if f.kind == "schedule":
            return "schedule (year = amount" + (f", amounts {rng}" if rng else "") + usual + ")"
        return f"{base} {rng}".strip() + usual
    if f.kind == "enum":
        return "one of " + ", ".join(f"`{c}`" for c in f.choices)
    if f.kind == "ref":
        return "contract name" if f.ref == "contract" else "entity name"
    if f.kind == "date":
        return "date"
    return {"bool": "boolean", "str": "string"}.get(f.kind, f.kind)


def _md_default(f: Field) -> str:
    d = f.default
    if d is REQUIRED:
        return "**required**"
    if d is None:
        return "*not set*"
    if isinstance(d, bool):
        return "`true`" if d else "`false`"
    if isinstance(d, str):
        return f'`"{d}"`'
    return f"`{_md_num(d)}`"


def _md_cell(s: str) -> str:
    return s.replace("|", "\\|").replace("\n", " ")


def _md_table(fields: dict[str, Field]) -> list[str]:
    out = ["| key | type | unit | default | description |", "|---|---|---|---|---|"]
    for k, f in fields.items():
        out.append("| " + " | ".join(_md_cell(x) for x in (
            f"`{k}`", _md_type(f), f.unit, _md_default(f), f.doc)) + " |")
    return out


def schema_markdown() -> str:
    """The whole schema as Markdown (the content of docs/scenarios.md)."""
    lines = [_DOC_INTRO.rstrip("\n"), "", "## Top-level keys", ""]
    lines += _md_table(TOP)
    for name, fields in SECTIONS.items():
        lines += ["", f"## `[{name}]`", ""]
        lines += _md_table(fields)
    for name, (fields, nested) in ARRAYS.items():
        lines += ["", f"## `[[{name}]]`", ""]
        lines += _md_table(fields)
        for sub, subfields in nested.items():
            lines += ["", f"### `[[{name}.{sub}]]`", "",
                      f"Each `[[{name}]]` needs at least one `[[{name}.{sub}]]` table, written after it.", ""]
            lines += _md_table(subfields)
    return "\n".join(lines) + "\n"
