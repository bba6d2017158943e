"""The revenue share (docs/model.md section 6b): what is paid against its closed form,
path-wise monotonicity of the lab's default in the share (common random numbers), a share
of zero against the model without it, and the validation of its payee."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from sim.engine.model import compile_scenario
from sim.engine.runner import simulate
from sim.scenario import ScenarioError
from sim.scenario.loader import scenario_from_dict

from .paths import replay

try:
    from tests.test_twin import STRESSED
except ImportError:  # pragma: no cover
    from test_twin import STRESSED

SEED = 3


def _scenario(**rsh):
    d = copy.deepcopy(STRESSED)
    if rsh:
        d["revenue_share"] = {"enabled": True, "payee": "Microsoft", **rsh}
    return compile_scenario(scenario_from_dict(d))


def _paths(M, n_paths):
    out = []
    for st, rec in replay(M, n_paths, SEED):
        d = int(rec.default_step[M.lab])
        out.append((d if d >= 0 else M.n_steps, float(st.rsh_paid[0]), rec.revenue.copy(),
                    bool(st.alive[M.rsh_payee])))
    return out


def test_paid_is_the_share_of_revenue_until_the_date_within_the_cap():
    # on paths where the lab and the payee survive: sum of share x R dt over the steps
    # before `until`, capped
    share, cap = 0.2, 35.0
    M = _scenario(share=share, until=2029.0, cap=cap)
    until = 12  # 2029-01-01 on a quarterly grid from 2026
    assert M.rsh_until == until
    n_capped = n_checked = 0
    for d, paid, revenue, payee_alive in _paths(M, 200):
        if d < M.n_steps or not payee_alive:
            continue
        want = min(cap, float(np.sum(share * revenue[:until] * M.dt)))
        assert abs(paid - want) <= 1e-9 * max(1.0, want)
        n_checked += 1
        n_capped += want == cap
    assert n_checked > 10 and 0 < n_capped < n_checked


def test_a_larger_share_never_delays_the_labs_default():
    # take-or-pay, per-step raise rule: a larger share only adds to what the lab owes
    lo = np.array([p[0] for p in _paths(_scenario(share=0.05, until=2031.0), 150)])
    hi = np.array([p[0] for p in _paths(_scenario(share=0.3, until=2031.0), 150)])
    assert (hi <= lo).all() and (hi < lo).any()


def test_a_zero_share_is_the_model_without_it():
    a, _, _ = simulate(_scenario(), 150, SEED, chunk_size=50, threads=1)
    b, _, _ = simulate(_scenario(share=0.0, until=2031.0), 150, SEED, chunk_size=50, threads=1)
    assert a.default_at.sum() > 0
    assert np.array_equal(a.default_at, b.default_at) and np.array_equal(a.cascade, b.cascade)
    assert np.allclose(a.loss_sum, b.loss_sum, rtol=1e-12, atol=1e-12)


def test_revenue_share_needs_a_payee_other_than_the_lab():
    d = copy.deepcopy(STRESSED)
    d["revenue_share"] = {"enabled": True}
    with pytest.raises(ScenarioError, match="revenue_share.payee"):
        scenario_from_dict(d)
    d["revenue_share"] = {"enabled": True, "payee": "OpenAI"}
    with pytest.raises(ScenarioError, match="revenue_share.payee"):
        scenario_from_dict(d)
