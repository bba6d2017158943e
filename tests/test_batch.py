"""Batches: sweeps, batch files, the summary table and manifest, common random numbers,
resume after kill -9 / Ctrl-C, progress, and bit-identical results through Dask."""

import csv
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from sim.cli.main import main
from sim.scenario.errors import ScenarioError
from sim.scenario.loader import load_scenario, scenario_from_dict
from sim.studies.batch import run_batch
from sim.studies.summary import paired_difference
from sim.studies.variants import MARKER, TMP_PREFIX, collect_variants, parse_sweep, scenario_variants

from .conftest import ROOT, SMALL

BUBBLESIM = os.path.join(os.path.dirname(sys.executable), "bubblesim")


def _toml(extra: str = "", **changes) -> str:
    d = {**SMALL, **changes}
    return scenario_from_dict(d).source + ("\n" + extra if extra else "")


@pytest.fixture
def small_file(tmp_path):
    def write(extra="", name="small.toml", **changes):
        p = tmp_path / name
        p.write_text(_toml(extra, **changes))
        return str(p)

    return write


def _results_equal(a_dir, b_dir):
    a = json.load(open(os.path.join(a_dir, "results.json")))
    b = json.load(open(os.path.join(b_dir, "results.json")))
    a.pop("run_info"), b.pop("run_info")  # wall time, threads
    return a == b and open(os.path.join(a_dir, "chunks.csv")).read() == open(os.path.join(b_dir, "chunks.csv")).read()


# ------------------------------------------------------------------ sweeps and batch files

def test_sweep_grid_and_zip_expand_into_named_variants(small_file):
    grid = small_file('[sweep]\nrevenue.growth0 = [0.5, 0.6]\n"revenue.volatility" = [0.2, 0.3, 0.4]\n')
    vs = scenario_variants(grid)
    assert len(vs) == 6
    assert vs[0][0] == "small[revenue.growth0=0.5,revenue.volatility=0.2]"
    assert vs[-1][1].data["revenue"]["growth0"] == 0.6 and vs[-1][1].data["revenue"]["volatility"] == 0.4
    z = small_file('[sweep]\nmode = "zip"\nbase = true\nrevenue.growth0 = [0.5, 0.6]\n'
                   'entity.Builder.cash = [1.0, 2.0]\n', name="zip.toml")
    names = [n for n, _, _ in scenario_variants(z)]
    assert names == ["small", "small[revenue.growth0=0.5,entity.Builder.cash=1]",
                     "small[revenue.growth0=0.6,entity.Builder.cash=2]"]
    with pytest.raises(ScenarioError, match="same length"):
        parse_sweep({"mode": "zip", "a.b": [1, 2], "c.d": [1]}, "f")
    with pytest.raises(ScenarioError, match="grid' or 'zip"):
        parse_sweep({"mode": "cartesian", "a.b": [1]}, "f")


def test_loader_ignores_sweep_and_validate_checks_its_keys(small_file, capsys):
    plain = load_scenario(small_file())
    swept = small_file('[sweep]\nrevenue.growth0 = [0.5]\n', name="swept.toml")
    assert load_scenario(swept).hash == plain.hash  # [sweep] is not part of the scenario
    assert main(["validate", swept]) == 0
    assert "[sweep] of 1 variants" in capsys.readouterr().out
    bad = small_file('[sweep]\nrevenue.growht0 = [0.5]\n', name="bad.toml")
    assert main(["validate", bad]) == 2
    err = capsys.readouterr().err
    assert "bad.toml" in err and "did you mean 'revenue.growth0'" in err
    bad2 = small_file('[sweep]\n"entity.Bulder.cash" = [1.0]\n', name="bad2.toml")
    assert main(["validate", bad2]) == 2
    assert "did you mean 'Builder'" in capsys.readouterr().err
    out_of_range = small_file('[sweep]\nrevenue.volatility = [-1.0]\n', name="bad3.toml")
    assert main(["validate", out_of_range]) == 2
    assert "revenue.volatility" in capsys.readouterr().err


def test_batch_file_folder_and_precedence(tmp_path, small_file):
    small_file('[sweep]\nrevenue.growth0 = [0.5, 0.6]\n')
    (tmp_path / "other.toml").write_text(_toml(name="other", seed=99, paths=3000))
    (tmp_path / "study.toml").write_text(
        '[batch]\nname = "study"\nscenarios = ["small.toml"]\npaths = 1500\nseed = 5\n\n'
        '[[run]]\nscenario = "other.toml"\nname = "lowvol"\nset = { "revenue.volatility" = 0.2 }\n'
        'sweep = { mode = "zip", "revenue.growth0" = [0.4, 0.5] }\n')
    # a folder: both scenarios, the batch file skipped, one seed for all (the first's, with a note)
    plan = collect_variants([str(tmp_path)])
    assert [v.name for v in plan.variants] == ["other", "small[revenue.growth0=0.5]", "small[revenue.growth0=0.6]"]
    assert {v.seed for v in plan.variants} == {99} and any("different seeds" in n for n in plan.notes)
    assert any("skipping batch file" in n for n in plan.notes)
    assert [v.paths for v in plan.variants] == [3000, 4000, 4000]
    # the batch file: its paths/seed, its [[run]] (set + its own sweep, not the file's)
    plan = collect_variants([str(tmp_path / "study.toml")])
    assert [v.name for v in plan.variants] == ["small[revenue.growth0=0.5]", "small[revenue.growth0=0.6]",
                                              "lowvol[revenue.growth0=0.4]", "lowvol[revenue.growth0=0.5]"]
    assert {(v.paths, v.seed) for v in plan.variants} == {(1500, 5)}
    assert plan.variants[2].scenario.data["revenue"]["volatility"] == 0.2
    assert plan.variants[2].scenario.name == "other"
    # the command line wins
    plan = collect_variants([str(tmp_path / "study.toml")], paths=700, seed=3, chunk_size=100)
    assert {(v.paths, v.seed, v.chunk_size) for v in plan.variants} == {(700, 3, 100)}
    # a typo in a batch file
    (tmp_path / "typo.toml").write_text('[batch]\nscenarios = ["small.toml"]\nseeds = 1\n')
    with pytest.raises(ScenarioError, match="did you mean 'seed'"):
        collect_variants([str(tmp_path / "typo.toml")])


# ------------------------------------------------------------------ outputs

def test_batch_writes_variants_summary_and_manifest(tmp_path, small_file, capsys):
    f = small_file('[sweep]\nrevenue.growth0 = [0.6, 0.7]\n')
    out = str(tmp_path / "out")
    assert main(["batch", f, "--out", out, "--paths", "1200", "--chunk-size", "300", "--seed", "4"]) == 0
    cap = capsys.readouterr()
    assert "2 variants (2 computed, 0 skipped)" in cap.out
    assert "\r" not in cap.err  # stderr is not a terminal: log lines, no progress bar
    man = json.load(open(os.path.join(out, "manifest.json")))
    for k in ("bubblesim_version", "git_commit", "python", "numpy", "numba", "seed", "chunk_size", "wall_seconds"):
        assert k in man
    assert man["seed"] == 4 and man["chunk_size"] == 300 and man["engine"]["kind"] == "local"
    v0 = man["variants"][0]
    assert v0["name"] == "small[revenue.growth0=0.6]" and v0["chunks"] == 4 and v0["paths"] == 1200
    assert v0["status"] == "computed" and v0["wall_seconds"] > 0
    res = json.load(open(os.path.join(out, v0["folder"], "results.json")))
    assert res["scenario_hash"] == v0["scenario_hash"] and res["seed"] == 4
    assert json.load(open(os.path.join(out, v0["folder"], MARKER)))["input_hash"] == v0["input_hash"]
    # the tidy table: one row per variant x entity x year x metric, CSV == Parquet
    rows = list(csv.DictReader(open(os.path.join(out, "summary.csv"))))
    assert list(rows[0]) == ["variant", "scenario", "entity", "year", "metric", "value", "se", "lo95", "hi95", "paths"]
    keys = [(r["variant"], r["entity"], r["year"], r["metric"]) for r in rows]
    assert len(keys) == len(set(keys))
    ents, years = res["entities"], res["years"]
    pd_rows = [r for r in rows if r["metric"] == "pd" and r["variant"] == v0["name"]]
    assert len(pd_rows) == len(ents) * len(years)
    r = next(r for r in pd_rows if r["entity"] == "Builder" and r["year"] == str(years[-1]))
    i = ents.index("Builder")
    assert float(r["value"]) == res["pd"][i][-1] and float(r["se"]) == res["pd_se"][i][-1]
    p2 = next(r for r in rows if r["metric"] == "p_2plus_defaults" and r["variant"] == v0["name"])
    assert p2["entity"] == "" and float(p2["value"]) == res["p2"]
    import pyarrow.parquet as pq

    t = pq.read_table(os.path.join(out, "summary.parquet")).to_pylist()
    assert len(t) == len(rows)
    assert t[0]["variant"] == rows[0]["variant"] and t[0]["year"] == int(rows[0]["year"])
    assert t[0]["value"] == float(rows[0]["value"])


def test_common_random_numbers_make_differences_precise(tmp_path, small_file):
    """Two close variants of one batch share their streams, so the paired (batch means over
    chunks of the per-chunk difference) standard error of their PD difference is far below
    either variant's own standard error; with independent streams it would be above both."""
    f = small_file('[sweep]\nrevenue.growth0 = [0.70, 0.72]\n')
    plan = collect_variants([f], paths=6000, chunk_size=300)  # 20 chunks
    out = str(tmp_path / "crn")
    run_batch(plan, out)
    a, b = (os.path.join(out, v.folder) for v in plan.variants)
    for entity in ("Lab", "Builder"):
        d = paired_difference(a, b, "pd", entity)
        assert d["chunks"] == 20
        assert d["se_diff"] < 0.4 * min(d["se_a"], d["se_b"]), d
    d = paired_difference(a, b, "pd", "Lab")
    assert d["diff"] < 0 and abs(d["diff"]) > 4 * d["se_diff"]  # faster growth: fewer defaults, resolved
    # the same pair on independent streams (another seed for b): no variance reduction
    plan2 = collect_variants([f], paths=6000, chunk_size=300, seed=12345)
    out2 = str(tmp_path / "indep")
    run_batch(plan2, out2)
    d_ind = paired_difference(a, os.path.join(out2, plan2.variants[1].folder), "pd", "Lab")
    assert d_ind["se_diff"] > 2 * d["se_diff"]


# ------------------------------------------------------------------ nothing lost

def _kill_test_inputs(tmp_path):
    p = tmp_path / "k.toml"
    p.write_text(_toml('[sweep]\nrevenue.growth0 = [0.5, 0.55, 0.6, 0.65, 0.7, 0.75]\n'))
    return str(p)


def _batch_cmd(f, out, *extra):
    return [BUBBLESIM, "batch", f, "--out", out, "--paths", "8000", "--chunk-size", "1000", "--threads", "2", *extra]


def _done(out):
    return sorted(d for d in os.listdir(out) if os.path.exists(os.path.join(out, d, MARKER))) \
        if os.path.isdir(out) else []


def test_kill_9_mid_batch_then_resume_skips_finished_variants(tmp_path):
    f = _kill_test_inputs(tmp_path)
    out = str(tmp_path / "out")
    proc = subprocess.Popen(_batch_cmd(f, out), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t0 = time.time()
    while not _done(out) and proc.poll() is None and time.time() - t0 < 300:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    finished = _done(out)
    assert 1 <= len(finished) < 6, finished  # killed mid-batch, at least one variant finished
    # every visible variant folder is complete (partial ones only ever live in .tmp-variant-*)
    assert all(os.path.exists(os.path.join(out, d, MARKER)) for d in os.listdir(out)
               if os.path.isdir(os.path.join(out, d)) and not d.startswith(TMP_PREFIX))
    stamps = {d: os.stat(os.path.join(out, d, MARKER)).st_mtime_ns for d in finished}

    rerun = subprocess.run(_batch_cmd(f, out), capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    skipped = sorted(line.split()[1] for line in rerun.stderr.splitlines() if line.startswith("skip "))
    computed = [line.split()[1].rstrip(":") for line in rerun.stderr.splitlines() if line.startswith("done ")]
    assert skipped == finished
    assert len(computed) == 6 - len(finished) and not set(computed) & set(finished)
    assert all(os.stat(os.path.join(out, d, MARKER)).st_mtime_ns == stamps[d] for d in finished)
    assert not [d for d in os.listdir(out) if d.startswith(".tmp")]  # the killed run's temp folder is gone

    clean = str(tmp_path / "clean")
    subprocess.run(_batch_cmd(f, clean, "--quiet"), check=True, timeout=300)
    assert _done(clean) == _done(out) and len(_done(out)) == 6
    for d in _done(out):
        assert _results_equal(os.path.join(out, d), os.path.join(clean, d)), d
    assert open(os.path.join(out, "summary.csv")).read() == open(os.path.join(clean, "summary.csv")).read()

    # --force recomputes everything; other inputs (a new seed) recompute too
    forced = subprocess.run(_batch_cmd(f, out, "--force"), capture_output=True, text=True, timeout=300)
    assert "skip " not in forced.stderr and forced.stderr.count("done ") == 6
    assert all(os.stat(os.path.join(out, d, MARKER)).st_mtime_ns != stamps[d] for d in finished)


def test_ctrl_c_stops_cleanly_and_resumes(tmp_path):
    f = _kill_test_inputs(tmp_path)
    out = str(tmp_path / "out")
    proc = subprocess.Popen(_batch_cmd(f, out), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    t0 = time.time()
    while not _done(out) and proc.poll() is None and time.time() - t0 < 300:
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted" in err
    assert not [d for d in os.listdir(out) if d.startswith(".tmp")]
    n = len(_done(out))
    rerun = subprocess.run(_batch_cmd(f, out), capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0 and rerun.stderr.count("skip ") == n and len(_done(out)) == 6


def test_one_batch_per_output_folder(tmp_path, small_file, capsys):
    from sim.studies.batch import _lock

    out = tmp_path / "out"
    out.mkdir()
    held = _lock(str(out))
    try:
        assert main(["batch", small_file(), "--out", str(out), "--paths", "100"]) == 2
        assert "another bubblesim batch is writing" in capsys.readouterr().err
    finally:
        held.close()
    assert main(["batch", small_file(), "--out", str(out), "--paths", "100", "--quiet"]) == 0


# ------------------------------------------------------------------ progress

def test_progress_bar_only_when_asked_or_on_a_terminal(tmp_path, small_file, capsys):
    f = small_file()
    args = ["batch", f, "--paths", "600", "--chunk-size", "200"]
    assert main([*args, "--out", str(tmp_path / "a"), "--progress"]) == 0
    err = capsys.readouterr().err
    assert "variant 1/1" in err and "path" in err and "done small" in err
    assert main([*args, "--out", str(tmp_path / "b"), "--quiet"]) == 0
    cap = capsys.readouterr()
    assert cap.err == "" and cap.out == ""
    assert main([*args, "--out", str(tmp_path / "c")]) == 0
    err = capsys.readouterr().err
    assert "variant 1/1" not in err and "done small" in err


# ------------------------------------------------------------------ Dask

def test_dask_local_cluster_is_bit_identical_to_local(tmp_path, small_file):
    pytest.importorskip("distributed")
    from distributed import LocalCluster

    from sim.engine import simulate
    from sim.engine.model import compile_scenario
    from sim.studies.cluster import WORKER_ENV, dask_executor

    f = small_file('[sweep]\nrevenue.growth0 = [0.6, 0.7]\n')
    plan = collect_variants([f], paths=3000, chunk_size=250)
    run_batch(plan, str(tmp_path / "local"), threads=2)
    M = compile_scenario(plan.variants[0].scenario)
    ref, ref_sum, _ = simulate(M, 3000, 9, chunk_size=250, threads=2)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address="127.0.0.1:0", env=WORKER_ENV) as cluster:
        with dask_executor(scheduler=cluster.scheduler_address) as (ex, info):
            assert info["workers"] == 2 and ex.nthreads == 2
            st, sums, _ = simulate(M, 3000, 9, chunk_size=250, threads=ex.nthreads, executor=ex)
            man = run_batch(plan, str(tmp_path / "dask"), threads=ex.nthreads, executor=ex, engine=info)
            envs = ex.client.run(lambda: os.environ.get("NUMBA_NUM_THREADS"))
    assert set(envs.values()) == {"1"}
    for name, a, b in zip(st._fields, st, ref):
        assert np.array_equal(a, b), name
    assert np.array_equal(sums, ref_sum)
    assert man["engine"]["kind"] == "dask"
    for v in plan.variants:
        assert _results_equal(str(tmp_path / "local" / v.folder), str(tmp_path / "dask" / v.folder))
    assert open(tmp_path / "local" / "summary.csv").read() == open(tmp_path / "dask" / "summary.csv").read()


def test_scheduler_and_workers_are_exclusive_and_dask_is_optional(small_file, capsys, monkeypatch):
    with pytest.raises(SystemExit):
        main(["batch", small_file(), "--workers", "2", "--scheduler", "tcp://127.0.0.1:1"])
    assert "not allowed with" in capsys.readouterr().err
    import sim.studies

    monkeypatch.setitem(sys.modules, "sim.studies.cluster", None)  # as if dask were not installed
    monkeypatch.delattr(sim.studies, "cluster", raising=False)
    assert main(["batch", small_file(), "--workers", "2", "--out", "/nonexistent/x"]) == 2
    assert "pip install 'bubblesim[distributed]'" in capsys.readouterr().err


def test_shipped_scenarios_expand(tmp_path):
    folder = os.path.join(ROOT, "scenarios")
    assert any(n.endswith(".toml") for n in os.listdir(folder)), "the shipped scenarios are missing"
    plan = collect_variants([folder], paths=10)
    assert len(plan.variants) >= 1 and len({v.seed for v in plan.variants}) == 1


def test_batch_target_se_adds_chunks_until_met_and_equals_a_plain_run(tmp_path, small_file):
    """--target-se on a batch: each variant stops at the doubling that meets the target, and
    its results equal a plain run of that many paths (same chunk streams)."""
    from sim.engine.api import run

    plan = collect_variants([small_file()], chunk_size=250)
    for v in plan.variants:
        v.target_se, v.max_paths = 0.02, 8000
    out = tmp_path / "out"
    run_batch(plan, str(out), threads=2)
    folder = out / plan.variants[0].folder
    data = json.loads((folder / "results.json").read_text())
    precision = data["run_info"]["precision"]
    assert precision["met"] and precision["max_se"] <= 0.02
    paths = data["paths"]
    assert paths < 8000 and paths % 250 == 0 and (paths // 250) & (paths // 250 - 1) == 0  # power of 2 chunks
    plain = run(plan.variants[0].scenario, paths=paths, seed=plan.variants[0].seed, chunk_size=250)
    assert plain.pd.tolist() == data["pd"]
    assert json.loads((out / "manifest.json").read_text())["variants"][0]["paths"] == paths
    # the target is part of the inputs: a re-run with the same target skips, a new target recomputes
    again = run_batch(plan, str(out), threads=2)
    assert again["variants"][0]["status"] == "skipped"
    for v in plan.variants:
        v.target_se = 0.03
    assert run_batch(plan, str(out), threads=2)["variants"][0]["status"] == "computed"
