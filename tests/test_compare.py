"""`bubblesim compare`: paired differences on common random numbers, their standard errors
checked against the spread of differences over independent replications, the inputs diff,
and a clear refusal for runs that do not share random numbers."""

import json
import math
import os

import numpy as np
import pytest

from sim.cli.main import main
from sim.engine.api import run
from sim.scenario.loader import scenario_from_dict
from sim.studies.compare import CompareError, compare_runs, compare_text, paired_metric, run_from_results
from sim.studies.summary import load_chunks, paired_difference

from .conftest import SMALL


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """Two CLI runs of the small scenario, B with a --set override, same seed and layout (20 chunks)."""
    d = tmp_path_factory.mktemp("cmp")
    f = d / "small.toml"
    f.write_text(scenario_from_dict(SMALL).source)
    a, b = str(d / "A"), str(d / "B")
    common = ["--paths", "4000", "--chunk-size", "200", "--seed", "11", "--quiet"]
    assert main(["run", str(f), *common, "--out", a]) == 0
    assert main(["run", str(f), *common, "--set", "revenue.growth0=0.6", "--out", b]) == 0
    return str(f), a, b


def _res(folder):
    with open(os.path.join(folder, "results.json")) as fh:
        return json.load(fh)


def test_differences_are_the_full_run_differences_and_the_se_is_the_paired_batch_means(pair):
    _, a, b = pair
    cmp = compare_runs(a, b)
    ra, rb = _res(a), _res(b)
    names = [r["metric"] for r in cmp["rows"]]
    assert names[:2] == ["p2", "lab_pd"] and "pd:Builder" in names and names[-3:] == ["loss_mean", "loss_var99",
                                                                                       "loss_es99"]
    rows = {r["metric"]: r for r in cmp["rows"]}
    # the point estimates are B's full-run values minus A's (not a chunk average)
    assert rows["p2"]["diff"] == pytest.approx(rb["p2"] - ra["p2"], abs=1e-12)
    i = ra["entities"].index("Builder")
    assert rows["pd:Builder"]["diff"] == pytest.approx(rb["pd"][i][-1] - ra["pd"][i][-1], abs=1e-12)
    assert rows["loss_mean"]["diff"] == pytest.approx(rb["loss_mean"] - ra["loss_mean"], rel=1e-9)
    # with equal chunks, the ratio estimator's se is the textbook batch-means se of the
    # per-chunk differences of proportions (computed here from chunks.csv with numpy)
    ca, cb = load_chunks(a), load_chunks(b)
    d = (cb["n_2plus"] - ca["n_2plus"]) / ca["paths"]
    assert rows["p2"]["se_diff"] == pytest.approx(np.std(d, ddof=1) / math.sqrt(len(d)), rel=1e-9)
    # and the older helper, now with the CLI's names, agrees (all chunks full here)
    old = paired_difference(a, b, "p2")
    assert old["diff"] == pytest.approx(rows["p2"]["diff"], abs=1e-12)
    assert old["se_diff"] == pytest.approx(rows["p2"]["se_diff"], rel=1e-9)
    assert paired_difference(a, b, "pd:Lab")["se_diff"] == pytest.approx(rows["lab_pd"]["se_diff"], rel=1e-9)
    assert paired_difference(a, b, "p_2plus_defaults")["diff"] == old["diff"]  # the old name still works
    # common random numbers: the paired se is far below the independent-streams one
    for m in ("p2", "lab_pd", "loss_mean"):
        r = rows[m]
        assert r["se_diff"] < 0.75 * math.hypot(r["se_a"], r["se_b"]), r  # independent streams: ~1
    # slower growth: more lab defaults, resolved by many paired standard errors
    assert rows["lab_pd"]["diff"] > 5 * rows["lab_pd"]["se_diff"]


def test_run_against_itself_is_exactly_zero(pair):
    _, a, _ = pair
    for r in compare_runs(a, a)["rows"]:
        assert r["diff"] == 0 and (r["se_diff"] == 0 or math.isnan(r["se_diff"]))


def test_paired_se_matches_the_spread_over_independent_replications(pair):
    """Oracle: over R replications with different seeds (A and B sharing each seed), the
    standard deviation of the estimated differences is what the paired se estimates."""
    f, _, _ = pair
    from sim.scenario import load_scenario

    sa = load_scenario(f)
    sb = sa.with_overrides({"revenue.growth0": 0.66})
    diffs, ses = [], []
    for seed in range(40):
        ra = run_from_results(run(sa, paths=2000, seed=seed, chunk_size=100))
        rb = run_from_results(run(sb, paths=2000, seed=seed, chunk_size=100))
        r = paired_metric(ra, rb, "lab_pd")
        diffs.append(r["diff"])
        ses.append(r["se_diff"])
    sd, se = float(np.std(diffs, ddof=1)), float(np.mean(ses))
    # the sd of 40 draws is itself uncertain by ~1/sqrt(2*39) = 11%: allow a factor 1.5 each way
    assert 1 / 1.5 < se / sd < 1.5, (se, sd)


def test_cli_prints_every_metric_with_se_and_the_inputs_diff(pair, capsys):
    _, a, b = pair
    assert main(["compare", a, b]) == 0
    out = capsys.readouterr().out
    assert "common random numbers: seed 11, chunk size 200, 20 chunks" in out
    for name in ("p2", "lab_pd", "pd:Builder", "loss_mean", "loss_var99"):
        assert f"\n{name} " in out
    assert "Inputs that differ (1), A -> B:\n  revenue.growth0: 0.7 -> 0.6" in out
    assert compare_text(compare_runs(a, a)).endswith("Inputs: identical resolved scenarios")


def test_runs_that_do_not_share_random_numbers_are_refused(pair, tmp_path, capsys):
    f, a, _ = pair
    other_seed, other_chunks = str(tmp_path / "s"), str(tmp_path / "c")
    assert main(["run", f, "--paths", "4000", "--chunk-size", "200", "--seed", "12", "--quiet", "--out",
                 other_seed]) == 0
    assert main(["run", f, "--paths", "4000", "--chunk-size", "400", "--seed", "11", "--quiet", "--out",
                 other_chunks]) == 0
    capsys.readouterr()
    assert main(["compare", a, other_seed]) == 2
    err = capsys.readouterr().err
    assert "do not share common random numbers (seed 11 vs 12)" in err and len(err.strip().splitlines()) == 1
    assert main(["compare", a, other_chunks]) == 2
    assert "chunk size 200 vs 400" in capsys.readouterr().err
    assert main(["compare", a, str(tmp_path / "missing")]) == 2
    with pytest.raises(CompareError):
        compare_runs(a, other_seed)
