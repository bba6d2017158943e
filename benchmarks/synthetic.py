"""Synthetic scenarios of any size, for scaling benchmarks (not calibrated to anything).

`synthetic_scenario(n)` returns a scenario dict with one lab and n - 1 partners that cycle
through four kinds: leveraged builders (paid by the lab, bullet maturities, thin equity),
hyperscale clouds (paid by the lab, pay builders in turn, hold stakes in the lab),
investors (fund the lab in tranches, hold stakes) and chipmakers (paid by the lab, lend to
builders, the lab holds warrants in them). The lab's total commitments and funding are
fixed and shared among the partners, so the economics stay comparable as n grows and the
work per step grows with the network: n entities, about n contracts, n/4 tranches, stakes
and loans.
"""

from __future__ import annotations


def synthetic_scenario(n: int, seed: int = 1) -> dict:
    if n < 2:
        raise ValueError("need at least the lab and one partner")
    kinds = ["builder", "cloud", "investor", "chip"]
    partners = [(f"{kinds[(k - 1) % 4]}-{k}", kinds[(k - 1) % 4]) for k in range(1, n)]
    count = {kind: sum(1 for _, kk in partners if kk == kind) for kind in kinds}
    entities = [{"name": "Lab", "kind": "lab", "cash": 40.0, "debt": 4.0, "amortisation_years": 3.0,
                 "refi_prob": 0.9, "book_equity": 60.0, "ocf": 0.0}]
    contracts, investments, stakes, loans = [], [], [], []
    builders = [name for name, kind in partners if kind == "builder"]
    for k, (name, kind) in enumerate(partners):
        if kind == "builder":
            s = 1.0 / max(count["builder"], 1)
            entities.append({"name": name, "kind": "neocloud", "cash": 10.0 * s + 1.0, "debt": 120.0 * s + 2.0,
                             "rate": 0.08, "maturities": {2028: 40.0 * s + 0.5, 2030: 30.0 * s + 0.5},
                             "amortisation_years": 6.0, "refi_prob": 0.85, "ocf": 15.0 * s + 0.5,
                             "ocf_volatility": 0.3, "market_equity": 150.0 * s + 3.0, "equity_beta": 1.8,
                             "book_equity": 25.0 * s + 1.0, "alpha": 0.7, "beta": 0.8, "recovery": 0.35})
            contracts.append({"name": f"c-{name}", "payer": "Lab", "payee": name, "total": 250.0 * s,
                              "start": 2027.0, "years": 5.0, "ramp_years": 1.0, "cost_ratio": 0.65,
                              "capex_share": 0.45, "relet_share": 0.6, "relet_delay": 1.0, "relet_discount": 0.3})
        elif kind == "cloud":
            s = 1.0 / max(count["cloud"], 1)
            entities.append({"name": name, "kind": "cloud", "cash": 80.0 * s + 2.0, "debt": 40.0 * s + 1.0,
                             "ocf": 120.0 * s + 2.0, "ocf_volatility": 0.1, "market_equity": 3000.0 * s + 20.0,
                             "equity_beta": 0.8, "book_equity": 350.0 * s + 5.0})
            contracts.append({"name": f"c-{name}", "payer": "Lab", "payee": name, "total": 200.0 * s,
                              "start": 2026.0, "years": 7.0, "ramp_years": 2.0, "cost_ratio": 0.6,
                              "capex_share": 0.3, "relet_share": 0.6, "relet_delay": 2.0, "relet_discount": 0.3})
            if builders:
                b = builders[k % len(builders)]
                contracts.append({"name": f"c-{name}-{b}", "payer": name, "payee": b, "total": 8.0 * s + 0.2,
                                  "start": 2026.0, "years": 6.0, "cost_ratio": 0.55})
            stakes.append({"holder": name, "issuer": "Lab", "share": 0.25 * s})
        elif kind == "investor":
            s = 1.0 / max(count["investor"], 1)
            entities.append({"name": name, "kind": "investor", "cash": 20.0 * s + 1.0, "debt": 60.0 * s + 1.0,
                             "rate": 0.06, "maturities": {2027: 15.0 * s + 0.2}, "refi_prob": 0.75,
                             "ocf": 5.0 * s + 0.1, "market_equity": 120.0 * s + 2.0, "equity_beta": 1.4,
                             "book_equity": 50.0 * s + 1.0})
            investments.append({"name": f"i-{name}", "investor": name, "investee": "Lab", "tranche": [
                {"date": 2026.25, "amount": 20.0 * s},
                {"date": 2026.75, "amount": 20.0 * s, "probability": 0.6}]})
            stakes.append({"holder": name, "issuer": "Lab", "share": 0.1 * s})
        else:  # chip
            s = 1.0 / max(count["chip"], 1)
            entities.append({"name": name, "kind": "chipmaker", "cash": 40.0 * s + 1.0, "debt": 10.0 * s + 0.5,
                             "ocf": 80.0 * s + 1.0, "ocf_volatility": 0.25, "market_equity": 3000.0 * s + 10.0,
                             "equity_beta": 1.2, "book_equity": 150.0 * s + 2.0})
            contracts.append({"name": f"c-{name}", "payer": "Lab", "payee": name, "total": 100.0 * s,
                              "start": 2026.5, "years": 5.0, "cost_ratio": 0.4, "capex_share": 0.1})
            stakes.append({"holder": "Lab", "issuer": name, "share": 0.05})
            if builders:
                b = builders[k % len(builders)]
                loans.append({"name": f"l-{name}-{b}", "lender": name, "borrower": b, "amount": 3.0 * s + 0.1,
                              "rate": 0.08, "maturity": 2029.0})
    return {
        "name": f"synthetic-{n}", "seed": seed, "paths": 10000,
        "time": {"start_year": 2026, "steps_per_year": 4, "horizon_years": 7},
        "revenue": {"initial": 20.0, "growth0": 0.7, "growth_inf": 0.08, "half_life": 2.9, "volatility": 0.25},
        "regime": {"enabled": True, "enter_prob": 0.12, "exit_prob": 0.5, "growth_winter": 0.0,
                   "volatility_winter": 0.35, "jump_mean": -0.35, "jump_sd": 0.1, "sentiment_jump": -0.69},
        "sentiment": {"mean_reversion": 0.5, "volatility": 0.25, "rho": 0.6},
        "lab": {"entity": "Lab", "opex_share_start": 0.35, "opex_share_end": 0.2, "opex_years": 4.0,
                "valuation_multiple": 25.0, "valuation_multiple_winter": 10.0,
                "raise_share": 0.1, "raise_share_winter": 0.02},
        "refinancing": {"sentiment_slope": 2.0, "leverage_slope": 1.0, "winter_shift": -1.5},
        "entity": entities, "contract": contracts, "investment": investments, "stake": stakes, "loan": loans,
    }
