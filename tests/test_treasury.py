"""The lab's treasury (docs/model.md section 3b): its off switch and its branches, against
exact identities, a binomial count and path-wise monotonicity (common random numbers).

The kernel-vs-twin agreement with the treasury on is in tests/test_twin.py."""

from __future__ import annotations

import copy
import math

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

SEED = 11


def _scenario(**treasury):
    d = copy.deepcopy(STRESSED)
    d["treasury"] = treasury
    return compile_scenario(scenario_from_dict(d))


def _stats(M, paths=200, chunk_size=50):
    s, _, _ = simulate(M, paths, SEED, chunk_size=chunk_size, threads=1)
    return s


def _same(a, b):
    return all(np.array_equal(x, y) for x, y in zip(a, b))


def test_extra_shock_is_drawn_after_the_others_and_unused_when_off():
    # one path per chunk: the treasury's column, drawn after all the other numbers of a
    # path, cannot move any of them, and with the treasury off nothing reads it
    off = _scenario()
    drawn = _scenario(draw_shocks=True)
    assert off.n_extra_shocks == 0 and drawn.n_extra_shocks == 1 and not drawn.tr_on
    assert _same(_stats(off, 60, 1), _stats(drawn, 60, 1))


def test_no_rounds_and_no_facility_is_the_old_rule_without_raising():
    # the treasury with rounds that never close and no facility raises nothing; so does the
    # old rule with raise_share 0: the same economics, bit for bit, on the same shocks
    d = copy.deepcopy(STRESSED)
    d["lab"] = {**d["lab"], "raise_share": 0.0, "raise_share_winter": 0.0}
    d["treasury"] = {"draw_shocks": True}
    old = compile_scenario(scenario_from_dict(d))
    new = _scenario(enabled=True, round_prob=0.0, round_prob_winter=0.0, round_sentiment_slope=0.0,
                    facility=0.0)
    a, b = _stats(old), _stats(new)
    assert a.default_at.sum() > 0
    for name in ("default_at", "kind_count", "contagious", "cascade", "loss_sum", "gap_year", "need_year"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name


def test_a_larger_facility_never_brings_the_labs_default_forward():
    # path by path (common random numbers): the facility is drawn only for a shortfall
    # that would otherwise be a default, so the lab defaults no earlier with more of it
    def default_steps(facility):
        M = _scenario(enabled=True, facility=facility, round_prob=0.3, round_prob_winter=0.1)
        return np.array([d if (d := int(rec.default_step[M.lab])) >= 0 else M.n_steps
                         for _, rec in replay(M, 150, SEED)])

    d0, d10, d40 = default_steps(0.0), default_steps(10.0), default_steps(40.0)
    assert (d10 >= d0).all() and (d40 >= d10).all()
    assert (d40 > d0).any()  # the facility does delay some defaults


def test_rounds_close_at_their_probability_and_raise_their_share_of_the_valuation():
    # no regime, no sentiment moves, a runway target no path reaches: the lab seeks a round
    # every step while alive; each closes with probability 1 - (1 - p)^dt and raises
    # round_share x multiple x revenue (sentiment is exactly 1)
    d = copy.deepcopy(STRESSED)
    d["regime"] = {**d["regime"], "enabled": False}
    d["sentiment"] = {**d["sentiment"], "volatility": 0.0}
    p_year, share = 0.5, 0.04
    d["treasury"] = {"enabled": True, "runway_target": 1e6, "round_prob": p_year, "round_share": share,
                     "round_sentiment_slope": 0.0}
    M = compile_scenario(scenario_from_dict(d))
    closed = tried = 0
    for _, rec in replay(M, 200, SEED, chunk=1):
        for t in range(M.n_steps):
            if rec.default_step[M.lab] >= 0 and t >= rec.default_step[M.lab]:
                break
            tried += 1
            raised = rec.flows[K.F_RAISED, t]
            if raised > 0.0:
                closed += 1
                want = share * M.multiple * rec.revenue[t]
                assert abs(raised - want) <= 1e-12 * want
    p = 1.0 - (1.0 - p_year) ** M.dt
    se = math.sqrt(p * (1.0 - p) / tried)
    assert abs(closed / tried - p) < 4.0 * se, (closed, tried, p)


def test_treasury_runs_bit_identical_across_threads_and_chunks_of_one_layout():
    M = _scenario(enabled=True, facility=8.0)
    a, _, _ = simulate(M, 120, SEED, chunk_size=40, threads=1)
    b, _, _ = simulate(M, 120, SEED, chunk_size=40, threads=2)
    assert _same(a, b)
    assert a.diag[0] <= 1e-9  # conservation in the clearing


def test_runway_is_reported_for_every_path_alive_at_each_year_end():
    # the runway histogram counts, at each year end, exactly the paths where the lab has
    # not defaulted; with the treasury on, the runway after a closed round is positive
    M = _scenario(enabled=True, facility=8.0)
    s = _stats(M, 200, 50)
    spy = M.steps_per_year
    alive = int(s.n_paths[0]) - s.default_at[M.lab].cumsum()[spy - 1::spy]
    assert np.array_equal(s.runway_hist.sum(axis=1), alive)
    assert (s.runway_hist[:, 1:].sum(axis=1) > 0).all()
