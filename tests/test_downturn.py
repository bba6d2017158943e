"""Recoveries that fall in a downturn (docs/model.md section 9): they change losses only,
never who defaults; scale 1 is the model without them; and with every default in AI winter
the losses are affine in the scale, (1 - recovery x scale) x the claims, exactly."""

from __future__ import annotations

import copy

import numpy as np

from sim.engine.model import compile_scenario
from sim.engine.runner import simulate
from sim.scenario.loader import scenario_from_dict

try:
    from tests.test_twin import STRESSED
except ImportError:  # pragma: no cover
    from test_twin import STRESSED

SEED = 13


def _stats(scale=None, always_winter=False):
    d = copy.deepcopy(STRESSED)
    if scale is not None:
        d["downturn_recovery"] = {"enabled": True, "scale": scale}
    if always_winter:  # winter from the first step on, for good
        d["regime"] = {**d["regime"], "enter_prob": 1.0, "exit_prob": 0.0}
    s, _, _ = simulate(compile_scenario(scenario_from_dict(d)), 200, SEED, chunk_size=50, threads=1)
    return s


def test_downturn_recoveries_change_losses_not_defaults():
    off, on = _stats(), _stats(0.5)
    assert off.default_at.sum() > 0
    for name in ("default_at", "kind_count", "contagious", "cascade", "exposure_sum"):
        assert np.array_equal(getattr(off, name), getattr(on, name)), name
    assert (on.loss_sum >= off.loss_sum).all() and on.loss_sum.sum() > off.loss_sum.sum()
    one = _stats(1.0)
    assert np.array_equal(one.loss_sum, off.loss_sum)


def test_losses_are_affine_in_the_scale_when_every_default_is_in_winter():
    l0, lh, l1 = (_stats(x, always_winter=True).loss_sum for x in (0.0, 0.5, 1.0))
    assert l1.sum() < l0.sum()
    assert np.allclose(lh, 0.5 * (l0 + l1), rtol=1e-9, atol=1e-9)
