"""Losses by who bears them (docs/model.md section 11): the outside-creditors class is the
headline loss, the network classes vanish without a network, and each class is the sum
over paths of the per-path quantities the twin pins (tests/test_twin.py)."""

from __future__ import annotations

import copy

import numpy as np

from sim.engine import kernel as K
from sim.engine.model import compile_scenario
from sim.engine.runner import new_stats, simulate
from sim.scenario.loader import scenario_from_dict

from .paths import replay

try:
    from tests.test_twin import STRESSED_DOWNTURN
except ImportError:  # pragma: no cover
    from test_twin import STRESSED_DOWNTURN

SEED = 17


def test_outside_class_is_the_headline_and_classes_sum_per_path_quantities():
    M = compile_scenario(scenario_from_dict(STRESSED_DOWNTURN))
    s, _, _ = simulate(M, 60, SEED, chunk_size=60, threads=1)
    assert s.loss_class[K.L_OUTSIDE, 0] == s.total_loss[0] and s.loss_class[K.L_OUTSIDE, 1] == s.total_loss[1]
    # the same chunk path by path: the classes are sums of end-of-path state and record
    want = np.zeros(K.N_LOSS_CLASSES)
    for st, rec in replay(M, 60, SEED):
        want += [rec.loss[rec.default_step >= 0].sum(), st.impairment.sum(), st.net_shortfall.sum(),
                 st.stake_lost.sum(), rec.rs_loss.sum()]
    assert np.allclose(s.loss_class[:, 0], want, rtol=1e-12, atol=1e-9)
    assert (s.loss_class[1:, 0] > 0).all()  # every class occurs in the stressed web


def test_network_classes_vanish_without_a_network():
    d = copy.deepcopy(STRESSED_DOWNTURN)
    d.update({"contract": [], "investment": [], "stake": [], "loan": []})
    d.pop("revenue_share")
    M = compile_scenario(scenario_from_dict(d))
    out = new_stats(M)
    s, _, _ = simulate(M, 100, SEED, chunk_size=50, threads=1)
    assert out.loss_class.shape == (K.N_LOSS_CLASSES, 2)
    assert s.default_at.sum() > 0 and s.loss_class[K.L_OUTSIDE, 0] > 0
    assert (s.loss_class[1:] == 0.0).all()


def test_every_mechanism_on_is_bit_identical_across_threads_and_conserves_payments():
    M = compile_scenario(scenario_from_dict(STRESSED_DOWNTURN))
    a, _, _ = simulate(M, 120, SEED, chunk_size=40, threads=1)
    b, _, _ = simulate(M, 120, SEED, chunk_size=40, threads=2)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert a.diag[0] <= 1e-9  # relative conservation error of the clearing
    # ELS partition: every default is fundamental or contagious, never both
    assert (a.contagious <= a.default_at.sum(axis=1)).all()
