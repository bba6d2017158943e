"""Overrides everywhere (--set on the command line, [patch] in scenario files) and the Python
API for notebooks (Results.to_frame, sim.plots on a Results or a folder, batch --xlsx)."""

import csv
import json
import os

import pytest

from sim.cli.common import parse_sets
from sim.cli.main import build_parser, main
from sim.scenario import ScenarioError, load_scenario
from sim.scenario.loader import scenario_from_dict

from .conftest import SMALL


@pytest.fixture
def small_toml(tmp_path):
    p = tmp_path / "small.toml"
    p.write_text(scenario_from_dict(SMALL).source)
    return str(p)


# ------------------------------------------------------------------ --set
def test_set_values_are_read_as_toml_else_as_strings():
    got = parse_sets(["a=0.6", "b=3", "c=true", 'd="x y"', "e=plain text", "f=[1, 2]", "g={2028 = 5.0}",
                      "a=0.7"])
    assert got == {"a": 0.7, "b": 3, "c": True, "d": "x y", "e": "plain text", "f": [1, 2], "g": {"2028": 5.0}}
    assert isinstance(got["b"], int)
    with pytest.raises(ScenarioError, match="expected KEY=VALUE"):
        parse_sets(["revenue.growth0"])


def test_run_set_changes_the_inputs_and_the_default_folder(small_toml, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    args = ["run", small_toml, "--paths", "600", "--chunk-size", "300", "--quiet"]
    assert main(args) == 0
    assert main([*args, "--set", "entity.Builder.debt=150", "--set", "revenue.growth0=0.6"]) == 0
    folders = sorted(os.listdir("runs"))
    assert len(folders) == 2  # different inputs, different runs/<scenario>-<hash>/ folders
    ins = [json.load(open(os.path.join("runs", f, "inputs.json"))) for f in folders]
    by_debt = {next(e["debt"] for e in i["entity"] if e["name"] == "Builder"): i for i in ins}
    assert set(by_debt) == {120.0, 150.0}
    assert by_debt[150.0]["revenue"]["growth0"] == 0.6 and by_debt[120.0]["revenue"]["growth0"] == 0.7
    assert by_debt[150.0]["paths"] == 600  # the paths actually run, not the scenario's default
    capsys.readouterr()
    assert main([*args, "--set", "entity.Buildr.debt=1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("bubblesim: --set: entity.Buildr.debt:") and "did you mean 'Builder'" in err
    assert main([*args, "--set", "revenue.growth0=fast"]) == 2
    assert "found string 'fast'" in capsys.readouterr().err


def test_set_on_validate_batch_and_sensitivity(small_toml, tmp_path, capsys):
    assert main(["validate", small_toml, "--set", "revenue.growth0=0.5"]) == 0
    assert "with 1 override" in capsys.readouterr().out
    assert main(["validate", small_toml, "--set", "revenue.growth0=fast"]) == 2
    out = str(tmp_path / "b")
    assert main(["batch", small_toml, "--out", out, "--paths", "600", "--chunk-size", "300", "--no-report",
                 "--quiet", "--set", "revenue.growth0=0.5"]) == 0
    man = json.load(open(os.path.join(out, "manifest.json")))
    v = man["variants"][0]
    assert v["name"] == "small[revenue.growth0=0.5]" and v["overrides"] == {"revenue.growth0": 0.5}
    assert json.load(open(os.path.join(out, v["folder"], "inputs.json")))["revenue"]["growth0"] == 0.5
    ns = build_parser().parse_args(["sensitivity", small_toml, "--set", "a.b=1", "--set", "c=2"])
    assert ns.sets == ["a.b=1", "c=2"]


# ------------------------------------------------------------------ [patch]
def _child(tmp_path, body, name="child.toml", parent="small.toml"):
    p = tmp_path / name
    p.write_text(f'extends = "{parent}"\nname = "{os.path.splitext(name)[0]}"\n\n{body}')
    return str(p)


def test_patch_changes_one_item_by_name_like_the_same_overrides(small_toml, tmp_path):
    child = _child(tmp_path, '[patch]\n"entity.Builder.debt" = 150.0\nentity.Investor.maturities.2027 = 30.0\n'
                   '"stake.Cloud->Lab.share" = 0.2\n"contract.Build.total" = 280.0\n')
    got = load_scenario(child)
    # oracle: the dotted-override machinery on the parent, renamed
    want = load_scenario(small_toml).with_overrides({
        "name": "child", "entity.Builder.debt": 150.0, "entity.Investor.maturities.2027": 30.0,
        "stake.Cloud->Lab.share": 0.2, "contract.Build.total": 280.0})
    assert {**got.data, "extends": None} == want.data
    assert len(got.data["entity"]) == len(SMALL["entity"])  # nothing copied, nothing dropped
    # parents' patches first: a grandchild's patch of the same key wins
    grand = _child(tmp_path, '[patch]\n"entity.Builder.debt" = 160.0\n', name="grand.toml", parent="child.toml")
    g = load_scenario(grand).data
    assert next(e["debt"] for e in g["entity"] if e["name"] == "Builder") == 160.0
    assert next(c["total"] for c in g["contract"] if c["name"] == "Build") == 280.0


def test_patch_errors_name_the_file_the_line_and_the_key(small_toml, tmp_path):
    bad = _child(tmp_path, '[patch]\n"entity.Buildr.debt" = 150.0\n', name="bad.toml")
    with pytest.raises(ScenarioError) as e:
        load_scenario(bad)
    assert e.value.file.endswith("bad.toml") and e.value.line == 5 and e.value.key == "patch.entity.Buildr.debt"
    assert "did you mean 'Builder'" in e.value.message
    neg = _child(tmp_path, '[patch]\n"entity.Builder.debt" = -1.0\n', name="neg.toml")
    with pytest.raises(ScenarioError) as e:
        load_scenario(neg)
    assert e.value.file.endswith("neg.toml") and e.value.line == 5 and "debt" in e.value.key


def test_a_child_that_drops_the_parents_entities_is_told_about_patch(small_toml, tmp_path):
    copy = _child(tmp_path, '[[entity]]\nname = "Lab"\nkind = "lab"\ncash = 30.0\n\n'
                  '[[entity]]\nname = "Builder"\ncash = 8.0\ndebt = 150.0\n', name="copy.toml")
    with pytest.raises(ScenarioError) as e:
        load_scenario(copy)
    first = str(e.value).splitlines()[0]
    assert "copy.toml" in first and "dropping Cloud, Investor" in first and "[patch]" in first
    assert '"entity.Builder.debt" = VALUE' in first
    assert len(e.value.errors) > 1  # the validation errors themselves follow


# ------------------------------------------------------------------ Python API
@pytest.fixture(scope="module")
def small_results():
    from sim import run

    return run(scenario_from_dict(SMALL), paths=1200, seed=3, chunk_size=300)


def test_to_frame_is_the_tidy_summary(small_results, tmp_path):
    r = small_results
    f = r.to_frame()
    assert list(f.columns) == ["scenario", "entity", "year", "metric", "value", "se", "lo95", "hi95", "paths"]
    pd_rows = f[f.metric == "pd"]
    assert len(pd_rows) == len(r.entities) * len(r.years)
    i, k = r.entity_index("Builder"), 2
    row = pd_rows[(pd_rows.entity == "Builder") & (pd_rows.year == r.years[k])].iloc[0]
    assert row.value == r.pd[i, k] and row.se == r.pd_se[i, k]
    assert f[f.metric == "p_2plus_defaults"].iloc[0].value == r.p2
    # the same rows as a batch's summary.csv
    from sim.studies.summary import summary_rows

    assert len(f) == len(summary_rows("x", r.to_dict()))


def test_every_plot_takes_a_results_a_folder_or_the_dict(small_results, tmp_path):
    import matplotlib.pyplot as plt

    import sim.plots as P

    folder = str(tmp_path / "run")
    small_results.write(folder)
    for fn in (P.revenue_fan, P.funding_gap, P.pd_term_structure, P.default_decomposition, P.cascade_size,
               P.loss_exceedance, P.network_map):
        for arg in (small_results, folder, P.load_results(folder)):
            fig = fn(arg)
            assert fig.axes, fn.__name__
            plt.close(fig)
    fig = P.scenario_comparison([small_results, P.load_results(folder)])
    assert fig.axes
    plt.close(fig)
    with pytest.raises(TypeError):
        P.revenue_fan(42)
    # across runs: a batch folder with a sweep, and a sensitivity folder
    from sim.studies.batch import run_batch
    from sim.studies.variants import collect_variants

    f = tmp_path / "sw.toml"
    f.write_text(scenario_from_dict(SMALL).source + "\n[sweep]\nrevenue.growth0 = [0.6, 0.7]\n")
    out = str(tmp_path / "batch")
    run_batch(collect_variants([str(f)], paths=600, chunk_size=300), out)
    for fig in (P.scenario_comparison(out), P.sweep_heatmap(out)):
        assert fig.axes
        plt.close(fig)
    sens = tmp_path / "sens"
    sens.mkdir()
    (sens / "sensitivity.json").write_text(json.dumps({"metric": "p2", "base": 0.3, "rows": [
        {"param": "revenue.growth0", "low_value": 0.56, "high_value": 0.84, "metric_low": 0.35, "metric_high": 0.25},
        {"param": "revenue.volatility", "low_value": 0.24, "high_value": 0.36, "metric_low": 0.28,
         "metric_high": 0.33}]}))
    fig = P.tornado(str(sens))
    assert len(fig.axes[0].patches) >= 2
    plt.close(fig)


def test_batch_xlsx_holds_the_summary(small_toml, tmp_path, capsys):
    from openpyxl import load_workbook

    out = str(tmp_path / "b")
    assert main(["batch", small_toml, "--out", out, "--paths", "600", "--chunk-size", "300", "--no-report",
                 "--quiet", "--xlsx"]) == 0
    rows = list(csv.reader(open(os.path.join(out, "summary.csv"))))
    wb = load_workbook(os.path.join(out, "summary.xlsx"), read_only=True)
    sheet = [list(r) for r in wb["summary"].iter_rows(values_only=True)]
    assert sheet[0] == rows[0] and len(sheet) == len(rows)
    for got, want in zip(sheet[1:], rows[1:]):
        assert got[4] == want[4]  # Excel keeps 15 significant digits
        assert got[5] is None if want[5] == "" else got[5] == pytest.approx(float(want[5]), rel=1e-14, abs=1e-300)
    variants = list(wb["variants"].iter_rows(values_only=True))
    assert variants[1][0] == "small" and variants[1][8] == "computed"
    assert "summary.xlsx" in json.load(open(os.path.join(out, "manifest.json")))["summary"]


# ------------------------------------------------------------------ packaging
def test_version_comes_from_the_one_place_in_pyproject():
    import subprocess
    import sys
    import tomllib

    from .conftest import ROOT

    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as fh:
        project = tomllib.load(fh)["project"]
    exe = os.path.join(os.path.dirname(sys.executable), "bubblesim")
    out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == f"bubblesim {project['version']}"
    assert project["license"] == "MIT" and os.path.exists(os.path.join(ROOT, "LICENSE"))
    assert "pyarrow" not in " ".join(project["dependencies"])  # optional: the parquet extra


def test_summary_parquet_is_skipped_with_a_note_without_pyarrow(small_toml, tmp_path, monkeypatch):
    import sys

    from sim.studies.batch import run_batch
    from sim.studies.variants import collect_variants

    monkeypatch.setitem(sys.modules, "pyarrow", None)  # import pyarrow -> ImportError
    notes = []
    out = str(tmp_path / "b")
    man = run_batch(collect_variants([small_toml], paths=600, chunk_size=300), out, log=notes.append)
    assert man["summary"] == ["summary.csv"] and not os.path.exists(os.path.join(out, "summary.parquet"))
    assert any("summary.parquet not written" in n and "pip install" in n for n in notes)
