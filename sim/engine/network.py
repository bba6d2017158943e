"""The structure of a scenario's financing web as plain data, for the network map.

`network_block(scenario)` returns a JSON-ready dict that a run stores in results.json
(key ``network``) so figures are drawn from results alone:

    {"lab": "OpenAI",
     "entities": [{"name", "kind", "cash", "debt", "market_equity", "book_equity",
                   "equity_value", "size"}, ...],
     "edges": [{"source", "target", "kind", "amount", "name"}, ...]}

Edge kinds: the contract's own kind ("compute", "chips", "other"), "investment"
(committed tranches), "stake" (holder -> issuer, valued at the issuer's equity value at
the start) and "loan". Amounts are $B committed: a contract's total scheduled payments,
an investment's tranches summed, a loan's principal, a stake's value.

Balance-sheet size (node size) = equity value + outside debt, where the equity value is
`market_equity` (at sentiment 1); for the lab, whose equity is valued as a revenue
multiple, valuation_multiple x initial revenue; for an entity with neither, its book
equity (floored at 0) plus cash.
"""

from __future__ import annotations

from sim.engine.model import contract_steps


def _equity_value(scenario, e: dict) -> float:
    d = scenario.data
    if e["name"] == d["lab"]["entity"] and not e["market_equity"]:
        return float(d["lab"]["valuation_multiple"]) * float(d["revenue"]["initial"])
    if e["market_equity"]:
        return float(e["market_equity"])
    return max(float(e["book_equity"]), 0.0) + float(e["cash"])


def network_block(scenario) -> dict:
    """Entities (with balance-sheet size) and directed edges with $B committed."""
    d = scenario.data
    time = d["time"]
    start, spy = int(time["start_year"]), int(time["steps_per_year"])
    n_steps = spy * int(time["horizon_years"])
    ents = []
    value = {}
    for e in d["entity"]:
        eq = _equity_value(scenario, e)
        value[e["name"]] = eq
        ents.append({"name": e["name"], "kind": e["kind"], "cash": float(e["cash"]), "debt": float(e["debt"]),
                     "market_equity": float(e["market_equity"]), "book_equity": float(e["book_equity"]),
                     "equity_value": eq, "size": eq + float(e["debt"])})
    edges = []
    for c in d.get("contract", []):
        amount = float(contract_steps(c, start, spy, n_steps).sum())
        edges.append({"source": c["payer"], "target": c["payee"], "kind": c.get("kind") or "compute",
                      "amount": amount, "name": c["name"]})
    for inv in d.get("investment", []):
        amount = sum(float(tr["amount"]) for tr in inv["tranche"])
        edges.append({"source": inv["investor"], "target": inv["investee"], "kind": "investment",
                      "amount": amount, "name": inv["name"]})
    for s in d.get("stake", []):
        edges.append({"source": s["holder"], "target": s["issuer"], "kind": "stake",
                      "amount": float(s["share"]) * value.get(s["issuer"], 0.0),
                      "name": f"{s['holder']}->{s['issuer']}", "share": float(s["share"])})
    for ln in d.get("loan", []):
        edges.append({"source": ln["lender"], "target": ln["borrower"], "kind": "loan",
                      "amount": float(ln["amount"]), "name": ln["name"]})
    return {"lab": d["lab"]["entity"], "entities": ents, "edges": edges}
