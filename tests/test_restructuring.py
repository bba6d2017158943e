"""Flexible contracts and restructuring before default (docs/model.md section 7c): the off
switch, the payments after a cut against their closed form, path-wise monotonicity of the
lab's default in the haircut ceiling (common random numbers), and the credit-event counts.

The kernel-vs-twin agreement with restructuring on is in tests/test_twin.py."""

from __future__ import annotations

import copy

import numpy as np

from sim.engine import kernel as K
from sim.engine.model import compile_scenario
from sim.engine.runner import simulate
from sim.scenario.loader import scenario_from_dict

from .paths import replay

try:
    from tests.test_twin import STRESSED
except ImportError:  # pragma: no cover
    from test_twin import STRESSED

SEED = 5
FLEX = {"Azure": 0.25, "Oracle OCI": 0.1, "CoreWeave": 0.1, "Nvidia chips": 0.25}


def _scenario(flex=True, treasury=None, **restructuring):
    d = copy.deepcopy(STRESSED)
    if flex:
        d["contract"] = [{**c, "flexible_share": FLEX.get(c["name"], 0.0)} for c in d["contract"]]
    d["restructuring"] = restructuring
    if treasury:
        d["treasury"] = treasury
    return compile_scenario(scenario_from_dict(d))


def _paths(M, n_paths, seed=SEED):
    """(default step of the lab or n_steps, credit step, flows, c_cut, first default of
    anyone or n_steps) per path."""
    out = []
    for st, rec in replay(M, n_paths, seed):
        d = int(rec.default_step[M.lab])
        first = min([int(x) for x in rec.default_step if x >= 0], default=M.n_steps)
        out.append((d if d >= 0 else M.n_steps, int(rec.credit_step[M.lab]), rec.flows.copy(), st.c_cut.copy(),
                    first))
    return out


def test_flexible_shares_do_nothing_while_restructuring_is_off():
    a, _, _ = simulate(_scenario(flex=False), 150, SEED, chunk_size=50, threads=1)
    b, _, _ = simulate(_scenario(flex=True), 150, SEED, chunk_size=50, threads=1)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert a.restructured.sum() == 0 and np.array_equal(a.credit_event, a.default_at.sum(axis=1))


def test_on_with_nothing_to_cut_or_haircut_is_the_take_or_pay_model():
    # restructuring on, but no flexible share and a haircut ceiling of 0: the same defaults
    # (the on-branch computes the same amounts, in a different order: equal to rounding)
    off, _, _ = simulate(_scenario(flex=False), 150, SEED, chunk_size=50, threads=1)
    on, _, _ = simulate(_scenario(flex=False, enabled=True, haircut_max=0.0), 150, SEED, chunk_size=50, threads=1)
    assert off.default_at.sum() > 0
    assert np.array_equal(off.default_at, on.default_at) and np.array_equal(off.contagious, on.contagious)
    assert np.allclose(off.loss_sum, on.loss_sum, rtol=1e-9, atol=1e-9)
    assert on.restructured.sum() == 0


def test_payments_after_a_cut_are_the_kept_volume_plus_the_penalty():
    # no haircuts (ceiling 0); on steps before anyone's default and after a cut took
    # effect, what it paid for compute is, contract by contract, the scheduled amount x
    # (1 - flex + flex x penalty), and the full amount before the cut
    pen = 0.25
    M = _scenario(enabled=True, cut_runway=2.0, cut_notice=0.5, cut_penalty=pen, haircut_max=0.0)
    lab_c = [c for c in range(len(M.c_payer)) if M.c_payer[c] == M.lab]
    checked = cut_steps = 0
    for _, _, flows, c_cut, first in _paths(M, 150):
        for t in range(first):
            want = 0.0
            for c in lab_c:
                f = 1.0
                if 0 <= c_cut[c] <= t:
                    f = (1.0 - M.c_flex[c]) + M.c_flex[c] * pen
                    cut_steps += 1
                want += M.c_amount[c, t] * f
            assert abs(flows[K.F_COMPUTE, t] - want) <= 1e-9 * max(1.0, want), (t, flows[K.F_COMPUTE, t], want)
            checked += 1
    assert checked > 100 and cut_steps > 10


def test_a_higher_haircut_ceiling_never_brings_the_labs_default_forward():
    # per-step raise rule (treasury off): a distressed exchange only closes a gap that
    # would otherwise be a default, and lowers what is still owed, so path by path the lab
    # defaults no earlier with a higher ceiling; the exchanges are credit events
    lo = _paths(_scenario(flex=False, enabled=True, haircut_max=0.0), 120)
    hi = _paths(_scenario(flex=False, enabled=True, haircut_max=0.5), 120)
    d_lo = np.array([p[0] for p in lo])
    d_hi = np.array([p[0] for p in hi])
    assert (d_hi >= d_lo).all() and (d_hi > d_lo).any()
    for (d, credit, _, _, _) in hi:
        assert credit < 0 or credit <= d  # the first credit event is never after the default


def test_credit_events_count_exchanges_and_defaults():
    s, _, _ = simulate(_scenario(enabled=True, haircut_max=0.4), 200, SEED, chunk_size=50, threads=1)
    lab = 0
    defaults = s.default_at.sum(axis=1)
    assert s.restructured[lab] > 0
    assert (s.credit_event >= np.maximum(defaults, s.restructured)).all()
    assert (s.credit_event <= defaults + s.restructured).all()
    others = np.arange(len(defaults)) != lab
    assert (s.restructured[others] == 0).all()  # only the lab restructures
    assert s.rs_loss_sum[lab] == 0.0 and s.rs_loss_sum[others].sum() > 0.0
