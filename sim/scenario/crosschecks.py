"""Cross-checks that need the whole scenario: references between entities and contracts, horizons, sums."""

from __future__ import annotations

from typing import Any

from .context import _Ctx
from .errors import _describe, _fmt, _suggest

TOL = 1e-9  # tolerance of horizon and sum checks


# --------------------------------------------------------------------------------------
# Cross-checks (run only on well-typed data)
# --------------------------------------------------------------------------------------


def _cross_checks(d: dict, ctx: _Ctx) -> None:
    t = d["time"]
    y0 = float(t["start_year"])
    y1 = y0 + t["horizon_years"]
    hz = f"the horizon is [{_fmt(y0)}, {_fmt(y1)})"

    def in_horizon(x: float, closed_end: bool = False) -> bool:
        return x >= y0 - TOL and (x <= y1 + TOL if closed_end else x < y1 - TOL)

    tr = d["treasury"]
    if tr["enabled"] and tr["draw_shocks"] is False:
        ctx.error(("treasury", "draw_shocks"), "expected true or unset with treasury.enabled = true "
                  "(the treasury draws its own shocks), found false")

    # names
    ents = d["entity"]
    entity_names = [e["name"] for e in ents]
    contract_names = [c["name"] for c in d["contract"]]
    if len(ents) < 2:
        ctx.error(("entity",), f"a scenario needs at least 2 entities ([[entity]] tables), found {len(ents)}")
    for arr in ("entity", "contract", "investment", "loan"):
        seen: dict[str, int] = {}
        for i, it in enumerate(d[arr]):
            n = it.get("name")
            if not isinstance(n, str):
                continue
            if not n.strip():
                ctx.error((arr, i, "name"), f"expected a non-empty {arr} name, found {_describe(n)}")
            elif n in seen:
                first = seen[n]
                ctx.error((arr, i, "name"), f"duplicate {arr} name {n!r} (also {arr}[{first}], "
                                            f"line {ctx.locate((arr, first))[1] or '?'}): names must be unique",
                          key=f"{arr}[{i}].name")
            else:
                seen[n] = i

    def ref(path: tuple, value: Any, kind: str = "entity") -> bool:
        if value is None:
            return False
        names = entity_names if kind == "entity" else contract_names
        if value in names:
            return True
        sug = _suggest(value, names)
        plural = "entities" if kind == "entity" else "contracts"
        uniq = list(dict.fromkeys(n for n in names if isinstance(n, str)))
        listing = "" if sug else f" (known {plural}: {', '.join(repr(n) for n in uniq) or 'none'})"
        ctx.error(path, f"unknown {kind} {value!r}{sug}{listing}")
        return False

    # lab
    ref(("lab", "entity"), d["lab"]["entity"])
    rsh = d["revenue_share"]
    if rsh["enabled"]:
        if rsh["payee"] is None:
            ctx.error(("revenue_share", "payee"), "missing: expected an entity name when revenue_share.enabled = true")
        elif ref(("revenue_share", "payee"), rsh["payee"]) and rsh["payee"] == d["lab"]["entity"]:
            ctx.error(("revenue_share", "payee"), f"expected an entity other than the lab, found {rsh['payee']!r}")

    # contracts
    for i, c in enumerate(d["contract"]):
        p = ("contract", i)
        okp = ref(p + ("payer",), c["payer"])
        okq = ref(p + ("payee",), c["payee"])
        if okp and okq and c["payer"] == c["payee"]:
            ctx.error(p + ("payee",), f"payer and payee are the same entity {c['payer']!r}")
        terms = [k for k in ("total", "start", "years") if c[k] is not None]
        period: tuple[float, float] | None = None
        if c["schedule"] is not None:
            if terms:
                ctx.error(p + (terms[0],), "give either `schedule` or `total` + `start` + `years`, not both "
                                           f"(found schedule and {', '.join(terms)})")
            elif not c["schedule"]:
                ctx.error(p + ("schedule",), "the schedule is empty: give at least one year = amount")
            else:
                bad = [y for y in c["schedule"] if not (y0 - TOL <= y <= y1 - 1 + TOL)]
                for y in bad:
                    ctx.error(p + ("schedule", str(y)),
                              f"schedule year {y} is outside the horizon: years must be in "
                              f"{int(y0)}..{int(y1) - 1} ({hz})")
                if c["ramp_years"] > 0:
                    ctx.error(p + ("ramp_years",), "ramp_years applies only to `total` + `start` + `years`; "
                                                   "a schedule gives each year's amount directly (remove "
                                                   "ramp_years or shape the schedule)")
        elif len(terms) == 0:
            ctx.error(p + ("schedule",), "missing payment terms: give `schedule` (year = amount) or "
                                         "`total` + `start` + `years`")
        elif len(terms) < 3:
            missing = [k for k in ("total", "start", "years") if c[k] is None]
            ctx.error(p + (missing[0],), f"missing key: `total`, `start` and `years` go together "
                                         f"(found {', '.join(terms)}; missing {', '.join(missing)})")
        else:
            s, n = c["start"], c["years"]
            if not in_horizon(s):
                ctx.error(p + ("start",), f"start {_fmt(s)} is outside the horizon ({hz})")
            elif s + n > y1 + TOL:
                ctx.error(p + ("years",), f"payment period [{_fmt(s)}, {_fmt(s + n)}) ends after the "
                                          f"horizon ({hz}): shorten `years` or extend time.horizon_years")
            else:
                period = (s, s + n)
        if period is not None and c["ramp_years"] > period[1] - period[0] + TOL:
            ctx.error(p + ("ramp_years",), f"ramp_years {_fmt(c['ramp_years'])} is longer than the payment "
                                           f"period ({_fmt(period[1] - period[0])} years)")

    # investments and tranches
    for i, inv in enumerate(d["investment"]):
        p = ("investment", i)
        oka = ref(p + ("investor",), inv["investor"])
        okb = ref(p + ("investee",), inv["investee"])
        if oka and okb and inv["investor"] == inv["investee"]:
            ctx.error(p + ("investee",), f"investor and investee are the same entity {inv['investor']!r}")
        if not inv["tranche"]:
            ctx.error(p + ("tranche",), "an investment needs at least one tranche: add an "
                                        "[[investment.tranche]] table (date, amount) after it")
        for j, tr in enumerate(inv["tranche"]):
            q = p + ("tranche", j)
            if not in_horizon(tr["date"]):
                ctx.error(q + ("date",), f"date {_fmt(tr['date'])} is outside the horizon ({hz})")
            if tr["expires"] is not None:
                if tr["expires"] < tr["date"] - TOL:
                    ctx.error(q + ("expires",), f"expires {_fmt(tr['expires'])} is before the tranche date "
                                                f"{_fmt(tr['date'])}")
                elif not in_horizon(tr["expires"], closed_end=True):
                    ctx.error(q + ("expires",), f"expires {_fmt(tr['expires'])} is outside the horizon "
                                                f"({hz}; the end itself is allowed)")
            if tr["milestone_contract"] is not None:
                ref(q + ("milestone_contract",), tr["milestone_contract"], "contract")
            elif tr["milestone_amount"] > 0:
                ctx.error(q + ("milestone_amount",), f"milestone_amount {_fmt(tr['milestone_amount'])} is set "
                                                     "but milestone_contract is not: name the contract whose "
                                                     "payments count")

    # entities: maturities
    for i, e in enumerate(ents):
        m = e["maturities"]
        if not m:
            continue
        for y in m:
            if not (y0 - TOL <= y <= y1 - 1 + TOL):
                ctx.error(("entity", i, "maturities", str(y)),
                          f"maturity year {y} is outside the horizon: years must be in "
                          f"{int(y0)}..{int(y1) - 1} ({hz})")
        tot = sum(m.values())
        if tot > e["debt"] + TOL:
            ctx.error(("entity", i, "maturities"), f"maturities sum to {_fmt(tot)} $B, more than debt "
                                                   f"{_fmt(e['debt'])} $B (maturities are part of `debt`)")

    # entities: capex and lease schedules, covenants ([build])
    build = d.get("build") or {}
    for i, e in enumerate(ents):
        for key in ("capex", "leases"):
            for y in e.get(key) or {}:
                if not (y0 - TOL <= y <= y1 - 1 + TOL):
                    ctx.error(("entity", i, key, str(y)),
                              f"{key} year {y} is outside the horizon: years must be in "
                              f"{int(y0)}..{int(y1) - 1} ({hz}; the last year listed holds to the end)")
        c = e.get("ltv_max") or 0.0
        if c > 0 and c + build.get("sale_discount", 0.1) >= 1 - TOL:
            ctx.error(("entity", i, "ltv_max"), f"ltv_max {_fmt(c)} + build.sale_discount "
                                                f"{_fmt(build.get('sale_discount', 0.1))} must be below 1 "
                                                "(sales could never restore the covenant)")
        if c > build.get("ltv_default", 0.5) + TOL:
            ctx.error(("entity", i, "ltv_max"), f"ltv_max {_fmt(c)} is above build.ltv_default "
                                                f"{_fmt(build.get('ltv_default', 0.5))}: the covenant "
                                                "would default before it forces a sale")

    # stakes
    per_issuer: dict[str, list[tuple[int, str, float]]] = {}
    for i, s in enumerate(d["stake"]):
        p = ("stake", i)
        okh = ref(p + ("holder",), s["holder"])
        oki = ref(p + ("issuer",), s["issuer"])
        if okh and oki and s["holder"] == s["issuer"]:
            ctx.error(p + ("issuer",), f"holder and issuer are the same entity {s['holder']!r}")
        if oki:
            per_issuer.setdefault(s["issuer"], []).append((i, s["holder"], s["share"]))
    for issuer, lst in per_issuer.items():
        tot = sum(x[2] for x in lst)
        if tot > 1 + TOL:
            parts = ", ".join(f"{h} {_fmt(sh)}" for _, h, sh in lst)
            ctx.error(("stake", lst[-1][0], "share"), f"stakes in {issuer!r} sum to {_fmt(tot)} > 1 ({parts})")

    # loans
    for i, ln in enumerate(d["loan"]):
        p = ("loan", i)
        oka = ref(p + ("lender",), ln["lender"])
        okb = ref(p + ("borrower",), ln["borrower"])
        if oka and okb and ln["lender"] == ln["borrower"]:
            ctx.error(p + ("borrower",), f"lender and borrower are the same entity {ln['lender']!r}")
        if not in_horizon(ln["maturity"], closed_end=True):
            ctx.error(p + ("maturity",), f"maturity {_fmt(ln['maturity'])} is outside the horizon "
                                         f"({hz}; the end itself is allowed)")
