"""Figures: each renders headless from a small real run's results.json (never re-simulated)
and contains what it claims; saved PNGs decode and SVGs parse."""

import copy
import io
import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET

import matplotlib

matplotlib.use("Agg")

import matplotlib.colors as mcolors  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.collections import PathCollection, PolyCollection  # noqa: E402
from matplotlib.container import BarContainer  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.image import imread  # noqa: E402
from matplotlib.patches import FancyArrowPatch, Rectangle  # noqa: E402

from sim import (
    __version__,  # noqa: E402
    plots,  # noqa: E402
)
from sim.plots import figures as F  # noqa: E402
from sim.plots.inputs import load_inputs, load_results  # noqa: E402

from .conftest import ROOT, SMALL  # noqa: E402

PATHS = 3000


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    from sim.engine.api import run
    from sim.scenario.loader import scenario_from_dict

    d = copy.deepcopy(SMALL)
    d["description"] = "Small test network."
    out = tmp_path_factory.mktemp("plots") / "small"
    run(scenario_from_dict(d), paths=PATHS).write(str(out))
    return str(out)


@pytest.fixture(scope="module")
def res(run_dir):
    return load_results(run_dir)


def data_axes(fig):
    """Axes that carry data (not colour bars, not the network map's legend panel)."""
    return [ax for ax in fig.axes if ax.get_label() != "<colorbar>"
            and (ax.get_lines() or ax.collections or ax.patches or ax.images)]


def plotted_values(fig):
    """Every number the figure draws: line data, filled-area vertices, bar geometry, images,
    scatter offsets."""
    vals = []
    for ax in fig.axes:
        for ln in ax.get_lines():
            xy = np.asarray(ln.get_xydata(), dtype=float)
            vals.append(xy.ravel())
        for c in ax.collections:
            if isinstance(c, PolyCollection):
                for p in c.get_paths():
                    vals.append(p.vertices.ravel())
            elif isinstance(c, PathCollection):
                vals.append(np.asarray(c.get_offsets(), dtype=float).ravel())
        for p in ax.patches:
            if isinstance(p, Rectangle):
                vals.append(np.array([p.get_x(), p.get_y(), p.get_width(), p.get_height()], dtype=float))
        for im in ax.images:
            a = im.get_array()
            vals.append(np.ma.filled(np.ma.asarray(a, dtype=float), 0.0).ravel())
    return np.concatenate(vals) if vals else np.zeros(0)


def title(ax):
    return " ".join(ax.get_title(loc=loc) for loc in ("left", "center", "right")).strip()


def check_common(fig, res_like, scenario="small"):
    assert isinstance(fig, Figure)
    axes = data_axes(fig)
    assert axes, "no data axes"
    assert any(title(ax) for ax in fig.axes), "figure has no title"
    for ax in axes:
        assert title(ax), "every panel has a title"
        if ax.name == "rectilinear" and ax.get_xlabel() + ax.get_ylabel():
            assert ax.get_ylabel() or ax.get_xlabel()
    src = getattr(fig, "_bubblesim_source", "")
    assert src.startswith("Source: bubblesim " + __version__)
    assert scenario in src and "seed" in src and "paths" in src
    assert any(t.get_text() == src for t in fig.texts), "source line is drawn on the figure"
    vals = plotted_values(fig)
    assert vals.size > 0
    assert np.all(np.isfinite(vals)), "NaN or inf in plotted data"
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=40)  # renders headless (Agg) without error
    assert buf.getvalue()[:8] == b"\x89PNG\r\n\x1a\n"


def units_in(text):
    return "$B" in text or "robab" in text or "%" in text


# ------------------------------------------------------------------------------ single-run figures
def test_revenue_fan(res):
    fig = plots.revenue_fan(res)
    check_common(fig, res)
    ax = fig.axes[0]
    bands = [c for c in ax.collections if hasattr(c, "_bubblesim_band")]
    assert len(bands) == len(res["fan_percentiles"]) // 2 == 3
    # Bank of England: darkest at the median, lighter outward (lightness, so it survives grey print)
    lum = [np.dot(mcolors.to_rgb(b.get_facecolor()[0]), [0.2126, 0.7152, 0.0722]) for b in bands]
    assert lum[0] > lum[1] > lum[2]
    assert [b._bubblesim_band for b in bands] == [(5, 95), (10, 90), (25, 75)]
    spend = [ln for ln in ax.get_lines() if "Committed" in ln.get_label()]
    assert len(spend) == 1
    np.testing.assert_allclose(spend[0].get_ydata(), res["committed_spend"])
    median = [ln for ln in ax.get_lines() if ln.get_label().startswith("Median")]
    np.testing.assert_allclose(median[0].get_ydata(), res["revenue_pct"][3])
    assert units_in(ax.get_ylabel()) and "Year" in ax.get_xlabel()
    assert len(ax.get_xticklabels()) == len(res["years"])


def test_funding_gap(res):
    fig = plots.funding_gap(res)
    check_common(fig, res)
    top, bottom = data_axes(fig)
    assert len([c for c in top.collections if hasattr(c, "_bubblesim_band")]) == 3
    assert "$B" in top.get_ylabel()
    bars = [c for c in bottom.containers if isinstance(c, BarContainer)]
    assert len(bars) == 1 and len(bars[0]) == len(res["years"])
    np.testing.assert_allclose([r.get_height() for r in bars[0]], res["p_gap"])
    need = [ln for ln in bottom.get_lines() if "needs" in ln.get_label()]
    np.testing.assert_allclose(need[0].get_ydata(), res["p_need"])
    assert "Probability" in bottom.get_ylabel()


def test_pd_term_structure(res):
    fig = plots.pd_term_structure(res)
    check_common(fig, res)
    ax = data_axes(fig)[0]
    lines = [ln for ln in ax.get_lines() if not ln.get_label().startswith("_")]
    drawn = [i for i, row in enumerate(res["pd"]) if max(row) >= F.PD_FLOOR]
    quiet = [res["entities"][i] for i in range(len(res["entities"])) if i not in drawn]
    assert len(lines) == len(drawn) >= 2
    order = sorted(drawn, key=lambda i: -res["pd"][i][-1])  # largest first
    for ln, i in zip(lines, order):
        assert ln.get_label().startswith(res["entities"][i])
        np.testing.assert_allclose(ln.get_ydata(), res["pd"][i])
    bands = [c for c in ax.collections if isinstance(c, PolyCollection)]
    assert len(bands) == len(drawn), "one 95% band per entity drawn"
    assert "Cloud" in quiet  # (practically) never defaults in the small network: named, not drawn
    note = [t.get_text() for t in ax.texts if t.get_text().startswith("PD below 0.1%")]
    assert note and all(q in note[0] for q in quiet)
    # series differ by line style or marker too, not by hue alone
    assert len({(str(ln.get_linestyle()), ln.get_marker()) for ln in lines}) == len(lines)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [ln.get_label() for ln in lines]


def test_default_decomposition(res):
    fig = plots.default_decomposition(res)
    check_common(fig, res)
    ax = data_axes(fig)[0]
    fund, cont = [c for c in ax.containers if isinstance(c, BarContainer)]
    n = len(res["entities"])
    assert len(fund) == len(cont) == n, "one bar per entity"
    ticks = sorted(zip(ax.get_yticks(), [t.get_text() for t in ax.get_yticklabels()]), reverse=True)
    labels = [t for _, t in ticks]  # top to bottom
    assert sorted(labels) == sorted(res["entities"])
    totals = [res["p_fundamental"][res["entities"].index(e)] + res["p_contagious"][res["entities"].index(e)]
              for e in labels]
    assert totals == sorted(totals, reverse=True), "largest on top"
    for bar_f, bar_c in zip(fund, cont):
        name = dict(ticks)[bar_f.get_y() + bar_f.get_height() / 2]
        i = res["entities"].index(name)
        assert bar_f.get_width() == pytest.approx(res["p_fundamental"][i])
        assert bar_c.get_width() == pytest.approx(res["p_contagious"][i])
        assert bar_c.get_x() == pytest.approx(res["p_fundamental"][i])  # stacked
    assert cont[0].get_hatch()  # contagious bars hatched: readable in grey
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any("Fundamental" in t for t in legend) and any("Contagious" in t for t in legend)


def test_cascade_size(res):
    fig = plots.cascade_size(res)
    check_common(fig, res)
    left, right = data_axes(fig)
    n = len(res["entities"])
    kmax = F.cascade_range(res)
    seen = max(k for k, p in enumerate(res["cascade"]) if p > 0)
    assert kmax == min(n, seen + 1), "up to one past the largest cascade seen"
    (lb,) = [c for c in left.containers if isinstance(c, BarContainer)]
    (rb,) = [c for c in right.containers if isinstance(c, BarContainer)]
    assert len(lb) == kmax + 1 and len(rb) == kmax
    np.testing.assert_allclose([r.get_height() for r in lb], res["cascade"][:kmax + 1])
    np.testing.assert_allclose([r.get_height() for r in rb], res["p_at_least"][1:kmax + 1])
    assert sum(res["cascade"][kmax + 1:]) == 0
    assert [t.get_text() for t in right.get_xticklabels()] == [f"{k}+" for k in range(1, kmax + 1)]


def test_loss_exceedance(res):
    fig = plots.loss_exceedance(res)
    check_common(fig, res)
    ax = data_axes(fig)[0]
    curve = [ln for ln in ax.get_lines() if "P(loss > x)" in ln.get_label()]
    assert len(curve) == 1
    y = curve[0].get_ydata()
    assert np.all(np.diff(y) <= 1e-15), "exceedance probabilities never increase"
    assert y[0] == pytest.approx(1 - res["loss_hist"]["counts"][0] / res["paths"])
    var = [ln for ln in ax.get_lines() if ln.get_label().startswith("VaR 99%")]
    es = [ln for ln in ax.get_lines() if ln.get_label().startswith("ES 99%")]
    assert var and es
    assert var[0].get_xdata()[0] == pytest.approx(res["loss_var99"])
    assert es[0].get_xdata()[0] == pytest.approx(res["loss_es99"])
    assert "$B" in ax.get_xlabel()
    # the curve crosses 1% at VaR99 to within a histogram bin
    x = curve[0].get_xdata()
    cross = x[np.argmax(y <= 0.01)]
    assert cross == pytest.approx(res["loss_var99"], rel=0.05)


def test_loss_exceedance_points_match_histogram():
    counts = [5, 0, 3, 0, 2]  # 5 zero losses, 3 in bin 2, 2 in bin 4
    res = {"loss_hist": {"lo": 1.0, "hi": 16.0, "bins": 4, "counts": counts, "sums": [0, 0, 9, 0, 20]},
           "paths": 10}
    x, p, p_any = F.loss_exceedance_points(res)
    assert p_any == pytest.approx(0.5)
    np.testing.assert_allclose(x, [2.0, 4.0, 8.0, 16.0])
    np.testing.assert_allclose(p, [0.5, 0.2, 0.2, 0.0])


def test_network_map(res):
    fig = plots.network_map(res)
    check_common(fig, res)
    (ax,) = data_axes(fig)
    (nodes,) = [c for c in ax.collections if isinstance(c, PathCollection)]
    assert sorted(nodes._bubblesim_nodes) == sorted(res["entities"])
    edges = [p for p in ax.patches if isinstance(p, FancyArrowPatch) and hasattr(p, "_bubblesim_edge")]
    net = res["network"]
    assert len(edges) == len(net["edges"]) == 2 + 1 + 2  # contracts, investment, stakes
    kinds = {e._bubblesim_edge["kind"] for e in edges}
    assert kinds == {"compute", "investment", "stake"}
    # width grows with $ committed
    by_amount = sorted(edges, key=lambda e: e._bubblesim_edge["amount"])
    assert by_amount[0].get_linewidth() < by_amount[-1].get_linewidth()
    # node colour encodes PD by the horizon: the riskiest node is the darkest
    order = nodes._bubblesim_nodes
    pd_h = {n: res["pd"][res["entities"].index(n)][-1] for n in order}
    lum = {n: np.dot(nodes.get_facecolors()[k][:3], [0.2126, 0.7152, 0.0722]) for k, n in enumerate(order)}
    assert min(lum, key=lum.get) == max(pd_h, key=pd_h.get)
    labels = " ".join(t.get_text() for t in ax.texts)
    for name in res["entities"]:
        assert name in labels
    assert any(a.get_label() == "<colorbar>" for a in fig.axes)
    assert any(t.get_text().startswith("Node") for t in ax.texts)


def test_network_layout_is_fixed(res):
    net = res["network"]
    a = F.network_layout(net)
    shuffled = dict(net, entities=list(reversed(net["entities"])))
    assert F.network_layout(shuffled) == a, "layout does not depend on order or numbers"
    assert a[net["lab"]] == (0.0, 0.0)
    for name, (x, y) in a.items():
        if name != net["lab"]:
            assert x * x + y * y == pytest.approx(1.0)


def test_network_block_amounts(res):
    net = res["network"]
    edges = {e["name"]: e for e in net["edges"]}
    assert edges["Build"]["amount"] == pytest.approx(300.0)
    assert edges["Cloud"]["amount"] == pytest.approx(15 + 30 + 45 * 5)
    assert edges["Round"]["amount"] == pytest.approx(20.0) and edges["Round"]["kind"] == "investment"
    ents = {e["name"]: e for e in net["entities"]}
    assert ents["Builder"]["size"] == pytest.approx(300.0 + 120.0)
    assert ents["Lab"]["equity_value"] > 0  # valued as a revenue multiple


# ------------------------------------------------------------------------------ cross-run figures
def _variant(res, name, scale):
    r = copy.deepcopy(res)
    r["scenario"] = name
    r["pd"] = [[min(1.0, v * scale) for v in row] for row in r["pd"]]
    return r


def test_scenario_comparison(res):
    runs = {"small": res, "stressed": _variant(res, "stressed", 1.4), "calm": _variant(res, "calm", 0.5)}
    fig = plots.scenario_comparison(runs)
    check_common(fig, res, scenario="stressed")
    hm = fig.axes[0]
    (im,) = hm.images
    n = len(res["entities"])
    assert im.get_array().shape == (n, 3)
    assert [t.get_text() for t in hm.get_xticklabels()] == list(runs)
    assert [t.get_text() for t in hm.get_yticklabels()] == res["entities"]
    cells = [t.get_text() for t in hm.texts]
    assert len(cells) == 3 * n and all(c.endswith("%") for c in cells)
    assert cells[1] == f"{100 * runs['stressed']['pd'][0][-1]:.1f}%"
    # one shared scale: one image, normalised from 0
    assert im.norm.vmin == 0.0 and im.norm.vmax >= max(r["pd"][i][-1] for r in runs.values() for i in range(n))
    bars = [c for ax in fig.axes[1:] for c in ax.containers if isinstance(c, BarContainer)]
    assert len(bars) == 3 and all(len(b) == 3 for b in bars)  # P(2+), lab PD, expected loss


def test_tornado_sorted_by_swing(res):
    rows = [
        {"param": "small", "low_value": 1, "high_value": 2, "metric_low": 0.30, "metric_high": 0.31, "base": 0.3},
        {"param": "big", "low_value": 0.4, "high_value": 0.9, "metric_low": 0.5, "metric_high": 0.1, "base": 0.3},
        {"param": "mid", "low_value": 5, "high_value": 9, "metric_low": 0.2, "metric_high": 0.35, "base": 0.3},
        {"param": "broken", "low_value": 5, "high_value": 9, "metric_low": None, "metric_high": 0.35, "base": 0.3},
    ]
    fig = plots.tornado(rows, metric="p2", meta=res)
    check_common(fig, res)
    ax = data_axes(fig)[0]
    ticks = sorted(zip(ax.get_yticks(), [t.get_text() for t in ax.get_yticklabels()]), reverse=True)
    assert [t for _, t in ticks] == ["big", "mid", "small"], "largest swing on top; NaN rows dropped"
    lo_bars, hi_bars = [c for c in ax.containers if isinstance(c, BarContainer)]
    assert len(lo_bars) == len(hi_bars) == 3
    assert all(r.get_x() == pytest.approx(0.3) for r in lo_bars)  # bars start at the base
    assert "P(2+" in ax.get_xlabel()


def test_sweep_heatmap(res):
    rows = [{"params": {"revenue.growth0": g, "regime.enter_prob": e, "fixed": 1}, "metric": 0.1 * g + e}
            for g in (0.4, 0.6, 0.8) for e in (0.05, 0.1)]
    fig = plots.sweep_heatmap(rows, metric="p2", meta=res)
    check_common(fig, res)
    ax = data_axes(fig)[0]
    (im,) = ax.images
    assert im.get_array().shape == (2, 3)
    assert ax.get_xlabel() == "revenue.growth0" and ax.get_ylabel() == "regime.enter_prob"
    assert len(ax.texts) == 6
    assert im.get_array()[1, 2] == pytest.approx(0.1 * 0.8 + 0.1)


# ------------------------------------------------------------------------------ files
@pytest.mark.parametrize("name", list(F.SINGLE_RUN_FIGURES))
def test_saved_png_decodes_and_svg_parses(res, tmp_path, name):
    fig = F.SINGLE_RUN_FIGURES[name](res)
    paths = plots.save_figure(fig, str(tmp_path), name)
    png, svg = paths
    img = imread(png)
    w, h = fig.get_size_inches()
    assert img.shape[0] == pytest.approx(h * 300, abs=2) and img.shape[1] == pytest.approx(w * 300, abs=2)
    assert img[..., :3].std() > 0.05, "not a blank image"
    root = ET.parse(svg).getroot()
    assert root.tag.endswith("svg")
    assert b"<dc:date>" not in open(svg, "rb").read(), "no timestamp: same results, same file"


def test_style_file_is_packaged():
    assert os.path.exists(plots.STYLE_PATH)
    with open(os.path.join(ROOT, "pyproject.toml")) as fh:
        assert 'plots/*.mplstyle' in fh.read()


def test_library_never_uses_pyplot(run_dir, tmp_path):
    code = (
        "import sys, matplotlib; matplotlib.use('Agg')\n"
        "from sim.plots import load_results, save_figure\n"
        "from sim.plots.figures import SINGLE_RUN_FIGURES\n"
        f"res = load_results({run_dir!r})\n"
        "for n, f in SINGLE_RUN_FIGURES.items(): save_figure(f(res), sys.argv[1], n)\n"
        "assert 'matplotlib.pyplot' not in sys.modules, 'pyplot was imported'\n"
    )
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, cwd=ROOT,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert len(list(tmp_path.glob("*.png"))) == len(F.SINGLE_RUN_FIGURES)


def test_gallery(run_dir, tmp_path):
    from sim.report.gallery import write_gallery

    # a batch-like folder: two runs and a sensitivity table
    root = tmp_path / "results"
    os.makedirs(root)
    os.symlink(run_dir, root / "small")
    with open(root / "sensitivity.json", "w") as fh:
        json.dump({"metric": "p2", "rows": [{"param": "a", "low_value": 1, "high_value": 2, "metric_low": 0.2,
                                             "metric_high": 0.4, "base": 0.3}]}, fh)
    files = write_gallery(str(root), str(tmp_path / "plots"))
    names = {os.path.basename(f) for f in files}
    for n in F.SINGLE_RUN_FIGURES:
        assert f"{n}.png" in names and f"{n}.svg" in names
    assert "tornado.png" in names and "README.md" in names
    inp = load_inputs(str(root))
    assert list(inp.runs) == ["small"] and inp.sensitivity[0]["metric"] == "p2"
