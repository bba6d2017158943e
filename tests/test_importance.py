"""Systemic importance (sim.studies.importance): the forced-default hook, DebtRank on hand
examples, the paired standard errors, and `bubblesim importance`."""

import copy
import json

import numpy as np
import pytest

from sim.engine.model import compile_scenario, with_forced_default
from sim.engine.runner import run_chunk
from sim.scenario.loader import scenario_from_dict
from sim.studies.importance import debtrank, exposure_matrix, systemic_importance
from tests.conftest import SMALL


def _small_with_island():
    d = copy.deepcopy(SMALL)
    # an entity with no link to anyone: whatever fails elsewhere, its defaults cannot change
    d["entity"].append({"name": "Island", "cash": 1.0, "debt": 30.0, "ocf": 4.0, "ocf_volatility": 0.6,
                        "market_equity": 20.0, "book_equity": 2.0, "refi_prob": 0.6})
    return scenario_from_dict(d)


# ---------------------------------------------------------------------------- DebtRank
def test_debtrank_chain_by_hand():
    # 0 -> 1 -> 2 with impacts 0.5 and 0.4: h = (1, 0.5, 0.2); R = (0.5 + 0.2) / 3
    W = np.array([[0, 0.5, 0], [0, 0, 0.4], [0, 0, 0]])
    assert debtrank(W, np.full(3, 1 / 3), [0]) == pytest.approx(0.7 / 3, abs=1e-15)
    assert debtrank(W, np.full(3, 1 / 3), [2]) == 0.0


def test_debtrank_each_node_propagates_once_but_keeps_receiving():
    # 0 hits 1 (0.3) and 2 (0.2); 1 hits 2 (0.5) a round later: h2 = 0.2 + 0.5 x 0.3 = 0.35;
    # the cycle 1 -> 0 cannot push 0 above 1 and 0 does not propagate a second time
    W = np.array([[0, 0.3, 0.2], [0.9, 0, 0.5], [0, 0, 0]])
    v = np.array([0.5, 0.3, 0.2])
    assert debtrank(W, v, [0]) == pytest.approx(0.3 * 0.3 + 0.35 * 0.2, abs=1e-15)
    # a partial initial distress psi = 0.5: h1 = 0.15, h2 = 0.1, then 1 passes 0.9 x 0.15 back to the
    # (inactive) node 0, h0 = 0.635, and 0.5 x 0.15 on to 2, h2 = 0.175; R = h.v - 0.5 x v0
    assert debtrank(W, v, [0], psi=0.5) == pytest.approx(0.635 * 0.5 + 0.15 * 0.3 + 0.175 * 0.2 - 0.5 * 0.5,
                                                         abs=1e-15)


def test_exposure_matrix_by_hand():
    sc = scenario_from_dict(SMALL)
    A, E, v, names = exposure_matrix(sc)
    lab, cloud, inv, builder = (names.index(x) for x in ("Lab", "Cloud", "Investor", "Builder"))
    lab_value = 25.0 * sc.data["lab"]["valuation_multiple"]
    cl = sc.data["contract"][1]  # schedule 15 + 30 + 5 x 45 = 270
    keep = cl["relet_share"] * (1 - cl["relet_discount"])
    assert A[cloud, lab] == pytest.approx(0.27 * lab_value + 270.0 * (cl["capex_share"] * (1 - keep)
                                                                      + 1 - cl["cost_ratio"]))
    build = sc.data["contract"][0]
    keep = build["relet_share"] * (1 - build["relet_discount"])
    assert A[builder, lab] == pytest.approx(300.0 * (0.5 * (1 - keep) + (1 - 0.7)))
    assert A[inv, lab] == pytest.approx(0.11 * lab_value)
    assert A[lab].sum() == 0.0 and np.all(np.diag(A) == 0)
    assert E[cloud] == 390.0 and v.sum() == pytest.approx(1.0)


# ---------------------------------------------------------------------------- forced default
def test_forced_default_changes_nothing_before_its_date_and_kills_the_entity_at_it():
    sc = _small_with_island()
    M = compile_scenario(sc)
    names = [e["name"] for e in sc.data["entity"]]
    b, s = names.index("Builder"), 6
    for chunk in range(2):
        base = run_chunk(M, 5, chunk, 600)
        forced = run_chunk(with_forced_default(M, b, s), 5, chunk, 600)
        # same random numbers: every entity's defaults before the date are path-for-path the same
        assert np.array_equal(base.default_at[:, :s], forced.default_at[:, :s])
        # alive at the date -> defaults at the date, as kind 0 ("forced"), never contagious
        alive = 600 - base.default_at[b, :s].sum()
        assert forced.default_at[b, s] == alive and forced.default_at[b, s + 1:].sum() == 0
        assert forced.kind_count[b, 0] == alive and forced.contagious[b] <= base.contagious[b]
        # the island has no link to the builder: its defaults are exactly the base run's
        isl = names.index("Island")
        assert np.array_equal(base.default_at[isl], forced.default_at[isl])
    with pytest.raises(ValueError, match="step"):
        with_forced_default(M, b, M.n_steps)


def test_never_forced_is_the_plain_run():
    M = compile_scenario(scenario_from_dict(SMALL))
    a = run_chunk(M, 3, 0, 300)
    b = run_chunk(M._replace(force_step=np.full(M.cash0.shape[0], -1, np.int64)), 3, 0, 300)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert a.kind_count[:, 0].sum() == 0


def test_importance_se_matches_the_spread_over_independent_seeds():
    sc = _small_with_island()
    res = [systemic_importance(sc, paths=2000, seed=s, chunk_size=200, threads=1) for s in range(8)]
    by = {r["entity"]: r for r in res[0]["rows"]}
    lab = by["Lab"]
    # forcing the lab to default at the start ends every contract: its payees lose their backlog
    assert lab["d_other_defaults"] > 5 * lab["se_d_other_defaults"] > 0
    assert by["Island"]["d_other_defaults"] == 0.0 and by["Island"]["se_d_other_defaults"] == 0.0
    assert by["Island"]["debtrank"] == 0.0 and lab["debtrank"] > 0.0
    # the reported paired se (batch means, 10 chunks) against the spread of 8 independent runs:
    # the ratio of the two estimates of one sd lies well inside (0.4, 2.5) for 7 and 9 d.o.f.
    for key in ("d_other_defaults", "d_loss_others", "d_p2"):
        vals = np.array([{r["entity"]: r for r in x["rows"]}["Lab"][key] for x in res])
        ses = np.array([{r["entity"]: r for r in x["rows"]}["Lab"]["se_" + key] for x in res])
        ratio = vals.std(ddof=1) / np.sqrt(np.mean(ses ** 2))
        assert 0.4 < ratio < 2.5, (key, ratio)


def test_cli_importance_prints_and_writes(tmp_path, capsys):
    from sim.cli.main import main

    f = tmp_path / "s.toml"
    f.write_text(scenario_from_dict(SMALL).source)
    out = tmp_path / "imp"
    assert main(["importance", str(f), "--paths", "1000", "--chunk-size", "100", "--out", str(out), "--quiet",
                 "--date", "2027"]) == 0
    text = capsys.readouterr().out
    assert "DebtRank" in text and "Lab" in text
    data = json.loads((out / "importance.json").read_text())
    assert [r["rank"] for r in data["rows"]] == [1, 2, 3, 4] and data["step"] == 4
    assert (out / "importance.csv").read_text().splitlines()[0].startswith("rank,entity")
    assert main(["importance", str(f), "--date", "2040", "--quiet", "--out", str(out)]) == 2
    assert "2040" in capsys.readouterr().err


def test_report_draws_the_ranking(tmp_path):
    from sim.engine.api import run
    from sim.report.html import build_report
    from sim.studies.importance import write_importance

    sc = scenario_from_dict(SMALL)
    run(sc, paths=500, seed=1).write(str(tmp_path / "small"))
    write_importance(systemic_importance(sc, paths=500, chunk_size=100, threads=1), str(tmp_path / "small"))
    html = open(build_report(str(tmp_path), str(tmp_path / "rep"))["html"], encoding="utf-8").read()
    assert 'id="importance"' in html and "DebtRank" in html
    assert (tmp_path / "rep" / "figures" / "importance_small.png").exists()
