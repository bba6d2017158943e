import copy
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# A small network with every kind of link: the lab, a leveraged builder, a hyperscaler
# with a stake, an investor with a bridge loan. Numbers are illustrative test inputs.
SMALL = {
    "name": "small",
    "seed": 7,
    "paths": 4000,
    "revenue": {"initial": 25.0, "growth0": 0.7, "growth_inf": 0.15, "volatility": 0.3},
    "regime": {"enter_prob": 0.15, "jump_mean": -0.35, "jump_sd": 0.1, "sentiment_jump": -0.5},
    "lab": {"entity": "Lab", "raise_share": 0.05},
    "entity": [
        {"name": "Lab", "kind": "lab", "cash": 30.0, "book_equity": 30.0},
        {"name": "Builder", "cash": 8.0, "debt": 120.0, "ocf": 20.0, "market_equity": 300.0,
         "book_equity": 25.0, "refi_prob": 0.9},
        {"name": "Cloud", "cash": 90.0, "debt": 40.0, "ocf": 130.0, "market_equity": 3000.0,
         "book_equity": 390.0},
        {"name": "Investor", "cash": 40.0, "debt": 100.0, "maturities": {"2027": 40.0}, "ocf": 5.0,
         "market_equity": 150.0, "book_equity": 120.0},
    ],
    "contract": [
        {"name": "Build", "payer": "Lab", "payee": "Builder", "total": 300.0, "start": 2027.0, "years": 5,
         "ramp_years": 2, "cost_ratio": 0.7, "capex_share": 0.5},
        {"name": "Cloud", "payer": "Lab", "payee": "Cloud",
         "schedule": {"2026": 15.0, "2027": 30.0, "2028": 45.0, "2029": 45.0, "2030": 45.0, "2031": 45.0,
                      "2032": 45.0}},
    ],
    "investment": [{"name": "Round", "investor": "Investor", "investee": "Lab", "tranche": [
        {"date": 2026.25, "amount": 10.0}, {"date": 2026.5, "amount": 10.0, "probability": 0.6}]}],
    "stake": [{"holder": "Cloud", "issuer": "Lab", "share": 0.27},
              {"holder": "Investor", "issuer": "Lab", "share": 0.11}],
}


@pytest.fixture
def small_dict():
    return copy.deepcopy(SMALL)


@pytest.fixture
def make_scenario():
    from sim.scenario.loader import scenario_from_dict

    def make(d):
        return scenario_from_dict(copy.deepcopy(d))

    return make
