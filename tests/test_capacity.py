"""The lab's compute capacity (docs/model.md section 6c): stressing a supplier must raise
the lab's risk (common random numbers), and the revenue the lab serves after a supplier's
default against its closed form."""

from __future__ import annotations

import copy
import math
import os

import numpy as np

from sim.engine import kernel as K
from sim.engine.model import compile_scenario
from sim.scenario.loader import load_scenario, scenario_from_dict

from .paths import replay

try:
    from tests.test_twin import STRESSED
except ImportError:  # pragma: no cover
    from test_twin import STRESSED

SEED = 9
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _scenario(capacity=None, stress_oracle=False):
    d = copy.deepcopy(STRESSED)
    if capacity is not None:
        d["capacity"] = capacity
    if stress_oracle:  # Oracle with no cash and a shut credit market
        d["entity"] = [{**e, "cash": 0.0, "refi_prob": 0.2} if e["name"] == "Oracle" else e for e in d["entity"]]
    return compile_scenario(scenario_from_dict(d))


def _run(M, n_paths):
    return [(rec.default_step.copy(), rec.revenue.copy(), rec.flows.copy()) for _, rec in replay(M, n_paths, SEED)]


def _lab_defaults(M, n_paths):
    return np.array([d[M.lab] >= 0 for d, _, _ in _run(M, n_paths)], dtype=float)


def _base(capacity: bool, stress_oracle: bool):
    sc = load_scenario(os.path.join(ROOT, "scenarios", "base.toml"))
    ov = {"capacity.enabled": capacity}
    if stress_oracle:  # Oracle with no cash and a shut credit market: it defaults in 2027
        ov.update({"entity.Oracle.cash": 0.0, "entity.Oracle.refi_prob": 0.2})
    return compile_scenario(sc.with_overrides(ov))


def test_stressing_a_supplier_raises_the_labs_risk_only_when_capacity_matters():
    # base.toml, paired paths: with capacity on, Oracle's default costs OpenAI the revenue
    # its compute served and then a dearer replacement, so OpenAI defaults more often; with
    # it off, Oracle's default only ends OpenAI's payments to it (the old artefact)
    n = 300
    diff_on = _lab_defaults(_base(True, True), n) - _lab_defaults(_base(True, False), n)
    diff_off = _lab_defaults(_base(False, True), n) - _lab_defaults(_base(False, False), n)
    se = diff_on.std(ddof=1) / math.sqrt(n)
    assert diff_on.mean() > 3.0 * se > 0.0, (diff_on.mean(), se)
    assert diff_off.mean() < 0.0 < diff_on.mean()


def test_revenue_served_after_a_suppliers_default():
    # never replaced (delay past the horizon): after its supplier's default, in steps where
    # the lab is alive, its revenue is R dt (1 - e x lost schedule / its whole schedule)
    e = 0.7
    M = _scenario({"enabled": True, "revenue_elasticity": e, "resource_delay": 10.0, "resource_premium": 0.0},
                  stress_oracle=True)
    lab_c = [c for c in range(len(M.c_payer)) if M.c_payer[c] == M.lab]
    checked = 0
    for dsteps, revenue, flows in _run(M, 150):
        dl = dsteps[M.lab] if dsteps[M.lab] >= 0 else M.n_steps
        for t in range(dl):
            sched = sum(M.c_amount[c, t] for c in lab_c)
            lost = sum(M.c_amount[c, t] for c in lab_c if 0 <= dsteps[M.c_payee[c]] < t)
            want = revenue[t] * M.dt * (1.0 - e * lost / sched) if lost > 0 else revenue[t] * M.dt
            assert abs(flows[K.F_REVENUE, t] - want) <= 1e-12 * max(1.0, want)
            checked += lost > 0
    assert checked > 20
