"""The engine against closed forms, invariants and its reproducibility contract."""

import math
import tracemalloc

import numpy as np
import pytest
from scipy.stats import norm

from sim.engine import add_stats, chunk_layout, new_stats, run_chunk, simulate
from sim.engine import kernel as K
from sim.engine.api import run
from sim.engine.model import compile_scenario
from sim.engine.stats import bin_edges

Z = 4.0  # tolerance in standard errors for Monte Carlo checks


def _lognormal_scenario(make_scenario, small_dict, g, s, r0=20.0):
    d = small_dict
    d["revenue"] = {"initial": r0, "growth0": g, "growth_inf": g, "volatility": s}
    d["regime"] = {"enabled": False}
    return make_scenario(d)


@pytest.mark.parametrize("g,s", [(0.4, 0.3), (0.1, 0.6)])
def test_revenue_matches_lognormal_closed_form(make_scenario, small_dict, g, s):
    """P(R_T < K) = N((ln(K/R0) - (g - s^2/2) T) / (s sqrt T)) for constant drift, no regime."""
    sc = _lognormal_scenario(make_scenario, small_dict, g, s)
    M = compile_scenario(sc)
    n = 40_000
    stats, _, _ = simulate(M, n, seed=11, chunk_size=10_000)
    edges = bin_edges(K.REV_LO, K.REV_HI, K.REV_BINS)
    checked = 0
    for years in (1, 3, 7):
        t = years * M.steps_per_year - 1  # revenue recorded at the end of step t
        hist = stats.rev_hist[t]
        for q in (0.1, 0.5, 0.9):
            target = 20.0 * math.exp((g - s * s / 2) * years + s * math.sqrt(years) * norm.ppf(q))
            k = int(np.searchsorted(edges, target))  # an edge near that quantile
            level = edges[k]
            exact = norm.cdf((math.log(level / 20.0) - (g - s * s / 2) * years) / (s * math.sqrt(years)))
            est = hist[: k + 1].sum() / n  # bins 0..k hold values below edges[k]
            se = math.sqrt(exact * (1 - exact) / n)
            assert abs(est - exact) < Z * se, (years, q, est, exact, se)
            checked += 1
    assert checked == 9


def test_regime_occupancy_matches_markov_matrix_power(make_scenario, small_dict):
    d = small_dict
    d["regime"] = {"enabled": True, "enter_prob": 0.3, "exit_prob": 0.5}
    sc = make_scenario(d)
    M = compile_scenario(sc)
    n = 30_000
    stats, _, _ = simulate(M, n, seed=3, chunk_size=10_000)
    P = np.array([[1 - M.p_enter, M.p_enter], [M.p_exit, 1 - M.p_exit]])
    for t in range(M.n_steps):
        exact = np.linalg.matrix_power(P, t + 1)[0, 1]  # regime updated at the start of each step
        est = stats.winter[t] / n
        se = math.sqrt(exact * (1 - exact) / n)
        assert abs(est - exact) < Z * se, (t, est, exact)
    assert (1 - M.p_enter) ** M.steps_per_year == pytest.approx(0.7, rel=1e-12)


def _same(a, b):
    return all(np.array_equal(x, y) for x, y in zip(a, b))


def test_same_seed_identical_for_any_thread_count(make_scenario, small_dict):
    sc = make_scenario(small_dict)
    r1 = run(sc, paths=3000, seed=5, chunk_size=500, threads=1)
    r2 = run(sc, paths=3000, seed=5, chunk_size=500, threads=2)
    d1, d2 = r1.to_dict(), r2.to_dict()
    for k in ("run_info",):
        d1.pop(k), d2.pop(k)
    assert d1 == d2


def test_run_is_its_chunks_in_order_and_prefix_of_longer_runs(make_scenario, small_dict):
    M = compile_scenario(make_scenario(small_dict))
    short, short_chunks, _ = simulate(M, 1000, seed=9, chunk_size=500, threads=2)
    long, long_chunks, _ = simulate(M, 2000, seed=9, chunk_size=500, threads=2)
    parts = add_stats(run_chunk(M, 9, 0, 500), run_chunk(M, 9, 1, 500))
    assert _same(short, parts)
    assert np.array_equal(long_chunks[:2], short_chunks)
    assert not _same(short, long)
    # a chunk alone equals the same chunk inside the full run
    assert np.array_equal(simulate(M, 500, seed=9, chunk_size=500, first_chunk=3)[1][0], long_chunks[3])


def test_different_seeds_give_different_results(make_scenario, small_dict):
    sc = make_scenario(small_dict)
    a = run(sc, paths=2000, seed=1, chunk_size=1000)
    b = run(sc, paths=2000, seed=2, chunk_size=1000)
    assert not np.array_equal(a.revenue_pct, b.revenue_pct)
    assert not np.array_equal(a.pd, b.pd)


def test_chunk_layout():
    assert chunk_layout(10, 4) == [4, 4, 2]
    assert chunk_layout(8, 4) == [4, 4]
    with pytest.raises(ValueError):
        chunk_layout(0, 4)


def test_lower_revenue_drift_never_lowers_any_default_probability(make_scenario, small_dict):
    """Common random numbers: same seed, same draws; only growth0 differs."""
    hi = make_scenario(small_dict)
    d = small_dict
    d["revenue"]["growth0"] = 0.45
    lo = make_scenario(d)
    r_hi = run(hi, paths=6000, seed=21, chunk_size=1500)
    r_lo = run(lo, paths=6000, seed=21, chunk_size=1500)
    assert np.all(r_lo.pd >= r_hi.pd)
    assert r_lo.pd[0, -1] > r_hi.pd[0, -1]  # and the lab's PD strictly rises: the test bites
    assert r_lo.p2 >= r_hi.p2


def test_elsinger_lehar_summer_split(make_scenario, small_dict):
    r = run(make_scenario(small_dict), paths=6000, seed=4, chunk_size=1500)
    assert np.allclose(r.p_fundamental + r.p_contagious, r.pd[:, -1], rtol=0, atol=1e-15)
    assert np.all(r.p_fundamental >= 0) and np.all(r.p_contagious >= 0)
    assert r.p_contagious.sum() > 0  # the small network does propagate defaults


def test_no_network_obligations_means_no_contagious_defaults(make_scenario, small_dict):
    d = small_dict
    for key in ("contract", "investment", "stake"):
        d[key] = []
    # make partners fragile on their own so defaults happen
    d["entity"][1].update(ocf=2.0, refi_prob=0.3)
    d["entity"][3].update(ocf=0.5, cash=5.0)
    r = run(make_scenario(d), paths=4000, seed=8, chunk_size=1000)
    assert r.pd[:, -1].sum() > 0
    assert np.all(r.p_contagious == 0)


def test_money_is_conserved_in_every_clearing(make_scenario, small_dict):
    r = run(make_scenario(small_dict), paths=4000, seed=12, chunk_size=1000)
    assert r.diagnostics["clearings_per_path"] > 0  # clearing actually happened
    assert r.diagnostics["max_conservation_error"] < 1e-9


def test_memory_is_bounded_by_the_chunk_not_the_paths(make_scenario, small_dict):
    """Peak traced memory of a 40-chunk run is that of a 4-chunk run: statistics are streamed.
    One thread, so the window of chunks in flight (2) is the same in both runs."""
    M = compile_scenario(make_scenario(small_dict))
    simulate(M, 200, seed=1, chunk_size=100, threads=1)  # compile outside the measurement

    def peak(paths):
        tracemalloc.start()
        simulate(M, paths, seed=1, chunk_size=100, threads=1)
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return top

    # ten times the paths may differ only by scheduling (which chunks happen to be alive at
    # the peak), never by more than a couple of chunks' statistics
    one_chunk = sum(a.nbytes for a in new_stats(M))
    small, large = peak(2000), peak(20000)
    assert large < small + 2 * one_chunk, (small, large, one_chunk)
    assert large < 2 * small


def test_results_write_json_and_csv(make_scenario, small_dict, tmp_path):
    import csv
    import json

    r = run(make_scenario(small_dict), paths=1000, seed=1, chunk_size=500)
    files = r.write(str(tmp_path))
    data = json.loads((tmp_path / "results.json").read_text())
    np.testing.assert_array_equal(np.array(data["pd"]), r.pd)
    rows = list(csv.DictReader(open(tmp_path / "pd_by_year.csv")))
    assert len(rows) == len(r.entities) * len(r.years)
    assert {f.rsplit("/", 1)[-1] for f in files} >= {"results.json", "pd_by_year.csv", "entities.csv",
                                                     "lab_by_year.csv", "cascade.csv", "system.csv"}
    assert r.cascade.sum() == pytest.approx(1.0)
    assert r.p_at_least[0] == pytest.approx(1.0)
    assert r.p2 == pytest.approx(r.p_at_least[2])
    table = r.summary_table()
    for name in r.entities:
        assert name in table
