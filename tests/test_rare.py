"""Importance sampling (sim.engine.rare): the likelihood ratio, the weighted statistics, and
the estimates against a closed form (lognormal revenue) and against plain Monte Carlo."""

import copy
import math
from statistics import NormalDist

import numpy as np
import pytest

from sim.engine import kernel as K
from sim.engine.model import compile_scenario
from sim.engine.rare import (
    cross_entropy_tilt,
    event_estimate,
    parse_target,
    plain_tilt,
    rare_run,
    weighted_estimates,
)
from sim.engine.runner import run_chunk, simulate
from sim.scenario.loader import scenario_from_dict
from tests.conftest import ROOT, SMALL


def test_zero_tilt_is_the_plain_run_with_unit_weights():
    M = compile_scenario(scenario_from_dict(SMALL))
    a = run_chunk(M, 4, 0, 400)
    b = run_chunk(M._replace(tilt=plain_tilt(M)), 4, 0, 400)
    for name, x, y in zip(K.Stats._fields, a, b):
        if not name.startswith("w"):
            assert np.array_equal(x, y), name
    assert np.array_equal(b.w_default_at, a.default_at) and np.array_equal(b.w_cascade, a.cascade)
    assert b.w_sum[0] == 400 and a.w_sum.sum() == 0  # plain runs leave the weighted fields at zero


def test_likelihood_ratio_of_each_shock_by_hand():
    rng = np.random.default_rng(1)
    n = 2
    sh = np.zeros((3, 4 + 2 * n))
    sh[:, [0, 1, 3, 4, 6]] = rng.standard_normal((3, 5))
    sh[:, [2, 5, 7]] = rng.random((3, 3))
    tilt = np.array([-0.3, 0.2, 0.4, -0.5, 0.0, 0.7])
    p = 0.1
    x = sh.copy()
    logw = K.tilt_shocks(x, tilt, p)
    expect = 0.0
    for t in range(3):
        for col, m in ((0, -0.3), (1, 0.2), (3, -0.5), (6, 0.7)):
            assert x[t, col] == pytest.approx(sh[t, col] + m, abs=1e-15)
            expect += math.log(NormalDist(0, 1).pdf(x[t, col]) / NormalDist(m, 1).pdf(x[t, col]))
        u = sh[t, 2]
        below = u < 0.4
        assert (x[t, 2] < p) == below  # entry with probability q = 0.4 instead of p = 0.1
        expect += math.log(p / 0.4) if below else math.log(0.9 / 0.6)
        assert x[t, 4] == sh[t, 4] and x[t, 5] == sh[t, 5]  # untilted entity, refinancing uniforms
    assert logw == pytest.approx(expect, rel=1e-12)


def _lognormal():
    d = copy.deepcopy(SMALL)
    d["revenue"].update({"growth0": 0.3, "growth_inf": 0.3, "volatility": 0.4})
    d["regime"] = {"enabled": False}
    sc = scenario_from_dict(d)
    T = sc.data["time"]["horizon_years"]
    mu, sd = math.log(25.0) + (0.3 - 0.5 * 0.4 ** 2) * T, 0.4 * math.sqrt(T)
    return sc, mu, sd


def test_lognormal_one_in_a_million_against_the_closed_form():
    sc, mu, sd = _lognormal()
    M = compile_scenario(sc)
    k = math.exp(mu + sd * NormalDist().inv_cdf(1e-6))
    p = NormalDist().cdf((math.log(k) - mu) / sd)  # log R_T ~ N(mu, sd^2): p = 1e-6
    tgt = parse_target(f"revenue<{k!r}", [])
    tilt, log = cross_entropy_tilt(M, tgt, seed=11, pilot_paths=2000)
    assert log[-1]["reached"] and len(log) <= 9
    e = event_estimate(M, tgt, tilt, seed=11, paths=20000, chunk_size=5000)
    assert abs(e["p"] - p) < 3 * e["se"]
    assert abs(e["p"] - p) < 0.1 * p
    assert e["se"] < 0.05 * p  # resolved: plain Monte Carlo would see no hit in 20,000 paths
    # the tilt found is close to the optimal mean shift (the event's boundary in per-step units)
    assert tilt[K.TILT_REV] == pytest.approx((math.log(k) - mu) / sd / math.sqrt(M.n_steps), rel=0.15)


@pytest.mark.parametrize("scenario,target", [("small", "pd:Builder"), ("base", "pd:CoreWeave")])
def test_importance_sampling_agrees_with_plain_monte_carlo(scenario, target):
    if scenario == "small":
        sc = scenario_from_dict(SMALL)
    else:
        from sim.scenario import load_scenario

        sc = load_scenario(f"{ROOT}/scenarios/base.toml")
    M = compile_scenario(sc)
    names = [e["name"] for e in sc.data["entity"]]
    plain, _, _ = simulate(M, 40000, 5, chunk_size=8192, threads=1)
    n = float(plain.n_paths[0])
    r = rare_run(sc, target, paths=40000, seed=6, threads=1, pilot_paths=2000, M=M)
    assert r["tilt"] != plain_tilt(M).tolist()  # the pilot moved something
    pd = plain.default_at.sum(axis=1) / n
    checked = 0
    for i, name in enumerate(names):
        if pd[i] > 0.01:
            se = math.sqrt(pd[i] * (1 - pd[i]) / n + r["pd_se"][i][-1] ** 2)
            assert abs(r["pd"][i][-1] - pd[i]) < 3 * se, (name, pd[i], r["pd"][i][-1], se)
            checked += 1
    assert checked >= 2
    p2 = plain.cascade[2:].sum() / n
    assert abs(r["p2"] - p2) < 3 * math.sqrt(p2 * (1 - p2) / n + r["p2_se"] ** 2)


def test_rare_run_is_the_same_for_any_number_of_threads():
    sc = scenario_from_dict(SMALL)
    a = rare_run(sc, "pd:Builder", paths=3000, chunk_size=500, threads=1, pilot_paths=1000)
    b = rare_run(sc, "pd:Builder", paths=3000, chunk_size=500, threads=2, pilot_paths=1000)
    for key in ("pd", "pd_se", "p2", "loss_mean", "tilt", "ess_event"):
        assert a[key] == b[key], key


def test_bad_targets_are_refused():
    with pytest.raises(ValueError, match="unknown entity 'Nobody'"):
        parse_target("pd:Nobody", ["A"])
    with pytest.raises(ValueError, match="use pd:ENTITY"):
        parse_target("pd", ["A"])
    with pytest.raises(ValueError, match="K must be > 0"):
        parse_target("revenue<0", ["A"])


def test_weighted_estimates_of_a_plain_tilt_are_the_plain_proportions():
    sc = scenario_from_dict(SMALL)
    M = compile_scenario(sc)
    s, _, _ = simulate(M._replace(tilt=plain_tilt(M)), 2000, 2, chunk_size=500, threads=1)
    r = weighted_estimates(M, s, [e["name"] for e in sc.data["entity"]])
    pd = s.default_at.sum(axis=1) / 2000
    assert np.allclose([x[-1] for x in r["pd"]], pd, rtol=0, atol=1e-15)
    assert np.allclose([x[-1] for x in r["pd_se"]], np.sqrt(pd * (1 - pd) / 2000), atol=1e-15)
    assert r["ess"] == pytest.approx(2000)


def test_run_rare_writes_its_files_and_refuses_bad_targets(tmp_path, capsys):
    from sim.cli.main import main

    f = tmp_path / "s.toml"
    f.write_text(scenario_from_dict(SMALL).source)
    out = tmp_path / "run"
    assert main(["run", str(f), "--paths", "2000", "--out", str(out), "--rare", "pd:Builder",
                 "--rare-paths", "2000", "--rare-pilot-paths", "1000"]) == 0
    import json

    runs = json.loads((out / "rare.json").read_text())
    assert [r["target"] for r in runs] == ["pd:Builder"] and runs[0]["paths"] == 2000
    assert (out / "rare_pd_by_year.csv").read_text().startswith("target,entity,year,pd,se")
    assert (out / "results.json").exists()
    assert main(["run", str(f), "--paths", "100", "--out", str(tmp_path / "x"), "--rare", "pd:Nobody"]) == 2
    assert "unknown entity 'Nobody'" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()  # refused before simulating anything


def test_report_shows_is_pds_only_where_plain_saw_none_and_the_ess_suffices():
    from sim.report.findings import entity_table

    res = {"entities": ["A", "B", "C"], "years": [2026], "paths": 1000, "pd": [[0.5], [0.0], [0.0]],
           "pd_lo": [[0.47], [0.0], [0.0]], "pd_hi": [[0.53], [0.0], [0.0]], "p_fundamental": [0.5, 0, 0],
           "p_contagious": [0, 0, 0], "lgd": [0.5, None, None], "expected_loss": [1.0, 0, 0],
           "lost_backlog": [0, 0, 0]}
    rare = {"target": "pd:B", "entities": ["A", "B", "C"], "paths": 5000, "pd": [[0.49], [3.1e-6], [2e-9]],
            "pd_se": [[0.01], [4e-7], [2e-9]], "pd_lo": [[0.47], [2.3e-6], [0.0]], "pd_hi": [[0.51], [3.9e-6], [6e-9]],
            "hits": [[2500], [900], [3]], "ess_event": [2000.0, 640.0, 1.2]}
    html = entity_table({**res, "_rare": [rare]})
    # B: resolved, in percent with the digits a small probability needs (3.1e-6 = 0.00031%)
    assert "0.00031%<sup>IS</sup>" in html and "0.00023% to 0.00039%" in html
    assert "IS</sup>" not in html.split("<td>C</td>")[1].split("</tr>")[0]  # C: ESS 1.2, not trusted
    assert "0.49" not in html  # A: plain saw it, plain stays
    assert "<sup>IS</sup>" not in entity_table(res)
