"""Provenance that cannot drift (issue 13): the three ways a results folder used to disagree
with its own manifest, each reproduced as a new user would meet it."""

import csv
import json
import os

from sim.cli.main import main
from sim.scenario.loader import scenario_from_dict

from .conftest import SMALL

BATCH = ["--paths", "1200", "--chunk-size", "300", "--seed", "4", "--no-report", "--quiet"]


def _write(tmp_path, name, **changes):
    p = tmp_path / f"{name}.toml"
    p.write_text(scenario_from_dict({**SMALL, "name": name, **changes}).source)
    return str(p)


def _summary_paths(out):
    """{variant: paths} from summary.csv (the P(2+) row of each variant)."""
    with open(os.path.join(out, "summary.csv")) as fh:
        return {r["variant"]: int(r["paths"]) for r in csv.DictReader(fh) if r["metric"] == "p_2plus_defaults"}


def _manifest(out):
    with open(os.path.join(out, "manifest.json")) as fh:
        return json.load(fh)


def _assert_consistent(out):
    """summary.csv, manifest.json and every variant's results.json describe the same runs."""
    man = _manifest(out)
    summ = _summary_paths(out)
    assert list(summ) == [v["name"] for v in man["variants"]]
    for v in man["variants"]:
        with open(os.path.join(out, v["folder"], "results.json")) as fh:
            res = json.load(fh)
        assert summ[v["name"]] == v["paths"] == res["paths"], (v["name"], summ[v["name"]], v["paths"], res["paths"])
        assert res["scenario_hash"] == v["scenario_hash"] and res["seed"] == v["seed"]


def test_run_with_default_output_never_lands_in_a_batch_folder(tmp_path, monkeypatch, capsys):
    """Failure 1: after a batch into results/, `bubblesim run base.toml --paths N` wrote to
    results/base/ (the batch's variant folder); the next batch trusted the old marker and its
    summary held N-path numbers under a manifest that said otherwise."""
    monkeypatch.chdir(tmp_path)
    f = _write(tmp_path, "small")
    assert main(["batch", f, "--out", "results", *BATCH]) == 0
    assert main(["run", f, "--paths", "600", "--seed", "4", "--chunk-size", "300", "--quiet"]) == 0
    assert main(["batch", f, "--out", "results", *BATCH]) == 0
    _assert_consistent("results")
    assert _summary_paths("results") == {"small": 1200}
    runs = os.listdir("runs")  # the run went to runs/<scenario>-<hash>/
    assert len(runs) == 1 and runs[0].startswith("small-")
    with open(os.path.join("runs", runs[0], "results.json")) as fh:
        assert json.load(fh)["paths"] == 600
    # naming the batch's variant folder (or the batch folder) explicitly is refused, exit 2, one line
    capsys.readouterr()
    assert main(["run", f, "--paths", "600", "--out", os.path.join("results", "small"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "variant folder of a batch" in err and "Traceback" not in err
    assert main(["run", f, "--paths", "600", "--out", "results", "--quiet"]) == 2
    _assert_consistent("results")


def test_an_overwritten_variant_is_recomputed_not_trusted(tmp_path, capsys):
    """Failure 2: the completeness marker vouched for the inputs only, so a variant whose
    results.json was overwritten (by hand, a script, an older `run --out`) was skipped and
    summarised as if it were the batch's."""
    from sim import load_scenario, run

    f = _write(tmp_path, "small")
    out = str(tmp_path / "results")
    assert main(["batch", f, "--out", out, *BATCH]) == 0
    folder = os.path.join(out, "small")
    run(load_scenario(f), paths=600, seed=4, chunk_size=300).write(folder)  # overwrite in place
    capsys.readouterr()
    assert main(["batch", f, "--out", out, "--paths", "1200", "--chunk-size", "300", "--seed", "4", "--no-report"]) == 0
    cap = capsys.readouterr()
    assert "recompute small: results.json changed since the batch wrote it" in cap.err
    assert "1 variants (1 computed, 0 skipped)" in cap.out
    _assert_consistent(out)
    # an untouched folder is still skipped (files verified), and a missing chunks.csv is recomputed
    assert main(["batch", f, "--out", out, *BATCH[:-1]]) == 0
    assert "(0 computed, 1 skipped)" in capsys.readouterr().out
    os.unlink(os.path.join(folder, "chunks.csv"))
    assert main(["batch", f, "--out", out, *BATCH[:-1]]) == 0
    assert "(1 computed, 0 skipped)" in capsys.readouterr().out
    _assert_consistent(out)


def test_report_reads_the_manifests_variants_and_names_the_others(tmp_path):
    """Failure 3: a batch of a subset of scenarios into an existing folder rewrote manifest and
    summary for the subset, while the report read every results.json under the folder."""
    from sim.plots.inputs import load_inputs
    from sim.report.html import render_html

    a, b = _write(tmp_path, "alpha"), _write(tmp_path, "beta", revenue={**SMALL["revenue"], "growth0": 0.5})
    out = str(tmp_path / "results")
    assert main(["batch", a, b, "--out", out, *BATCH]) == 0
    assert main(["batch", a, "--out", out, *BATCH]) == 0  # the subset, into the same folder
    _assert_consistent(out)
    inp = load_inputs(out)
    assert list(inp.runs) == [v["name"] for v in _manifest(out)["variants"]] == list(_summary_paths(out)) == ["alpha"]
    assert inp.extra == ["beta"]
    html = render_html(inp, {"items": [], "run_sections": [], "files": []})
    assert "covers the 1 variants of manifest.json" in html and "beta" in html
    # a folder without a manifest (runs side by side) still reads every results.json
    os.unlink(os.path.join(out, "manifest.json"))
    assert sorted(load_inputs(out).runs) == ["alpha", "beta"]
