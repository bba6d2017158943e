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
from sim.plots import network as F_net  # noqa: E402
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


def check_common(fig, res_like, scenario="small", single_run=True):
    assert isinstance(fig, Figure)
    axes = data_axes(fig)
    assert axes, "no data axes"
    assert any(title(ax) for ax in fig.axes), "figure has no title"
    if single_run:  # the scenario is named in the title, not only in the small print
        titles = [title(ax) for ax in fig.axes] + [fig._suptitle.get_text() if fig._suptitle else ""]
        assert any(t.startswith(f"{scenario}: ") for t in titles), titles
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
    # the y-axis is scaled to the data (no fixed 5% floor), the top above every interval
    top_hi = max(res["pd_hi"][i][j] for i in drawn for j in range(len(res["years"])))
    assert top_hi <= ax.get_ylim()[1] <= 1.3 * top_hi + 1e-3
    quiet = [res["entities"][i] for i in range(len(res["entities"])) if i not in drawn]
    assert len(lines) == len(drawn) >= 2
    order = sorted(drawn, key=lambda i: -res["pd"][i][-1])  # largest first
    for ln, i in zip(lines, order):
        assert ln.get_label().startswith(res["entities"][i])
        np.testing.assert_allclose(ln.get_ydata(), res["pd"][i])
    bands = [c for c in ax.collections if isinstance(c, PolyCollection)]
    assert len(bands) == len(drawn), "one 95% band per entity drawn"
    assert "Cloud" in quiet  # (practically) never defaults in the small network: named, not drawn
    note = fig._bubblesim_note
    assert "PD below 0.1%" in note and all(q in note.split("PD below 0.1%")[1] for q in quiet)
    assert any(note.replace("\n", " ") in t.get_text().replace("\n", " ") or
               t.get_text().replace("\n", " ") == note for a in fig.axes for t in a.texts), "note drawn"
    # series differ by line style or marker too, not by hue alone
    assert len({(str(ln.get_linestyle()), ln.get_marker()) for ln in lines}) == len(lines)
    (legend,) = [a.get_legend() for a in fig.axes if a.get_legend() is not None]
    assert [t.get_text() for t in legend.get_texts()] == [ln.get_label() for ln in lines]


def test_pd_term_structure_hazard_panel(res):
    """Right panel: annual PD of those still standing, h_y = (F_y - F_{y-1}) / (1 - F_{y-1});
    oracle: the survival product 1 - prod(1 - h) gives back the cumulative PD."""
    fig = plots.pd_term_structure(res)
    hz = data_axes(fig)[1]
    assert "standing" in title(hz)
    h, lo, hi = F.annual_pd(res)
    n = res["paths"]
    for i, row in enumerate(res["pd"]):
        prev = np.concatenate([[0.0], row[:-1]])
        expected = (np.array(row) - prev) / (1 - prev)
        np.testing.assert_allclose(h[i], expected, atol=1.0 / n)
        np.testing.assert_allclose(1 - np.prod(1 - h[i]), row[-1], atol=1e-12 + len(row) / n)
        assert np.all(lo[i] <= h[i] + 1e-12) and np.all(h[i] <= hi[i] + 1e-12)
    drawn = sorted((i for i, row in enumerate(res["pd"]) if max(row) >= F.PD_FLOOR), key=lambda i: -res["pd"][i][-1])
    data = [c.lines[0] for c in hz.containers]
    assert len(data) == len(drawn)
    for ln, i in zip(data, drawn):
        np.testing.assert_allclose(ln.get_ydata(), h[i])


def test_default_decomposition(res):
    fig = plots.default_decomposition(res)
    check_common(fig, res)
    ax = data_axes(fig)[0]
    fund, cont = [c for c in ax.containers if isinstance(c, BarContainer)]
    defaulting = [e for i, e in enumerate(res["entities"]) if res["p_fundamental"][i] + res["p_contagious"][i] > 0]
    never = [e for e in res["entities"] if e not in defaulting]
    assert len(fund) == len(cont) == len(defaulting), "one bar per entity that defaults on some path"
    ticks = sorted(zip(ax.get_yticks(), [t.get_text() for t in ax.get_yticklabels()]), reverse=True)
    labels = [t for _, t in ticks]  # top to bottom
    assert sorted(labels) == sorted(defaulting)
    if never:  # named in a note, not drawn as a column of "0.0%"
        assert all(e in fig._bubblesim_note for e in never)
    assert not any(t.get_text().startswith("0.0%") for t in ax.texts)
    # the axis ends just above the largest interval, not at 1.45 x the largest bar
    top_hi = max(res["pd_hi"][res["entities"].index(e)][-1] for e in defaulting)
    assert top_hi <= ax.get_xlim()[1] <= 1.3 * top_hi + 1e-3
    (err,) = [c for c in ax.containers if not isinstance(c, BarContainer)]  # 95% intervals of the totals
    assert len(err.lines[2][0].get_segments()) == len(defaulting)
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
    assert len(lb) == kmax + 1
    np.testing.assert_allclose([r.get_height() for r in lb], res["cascade"][:kmax + 1])
    assert sum(res["cascade"][kmax + 1:]) == 0
    assert any("P(2 or more)" in t.get_text() for t in left.texts)
    # right: not the left panel again, but the expected loss each defaulter causes, largest on top
    (rb,) = [c for c in right.containers if isinstance(c, BarContainer)]
    costly = sorted((i for i, v in enumerate(res["expected_loss"]) if v > 0), key=lambda i: -res["expected_loss"][i])
    assert len(rb) == len(costly)
    ticks = sorted(zip(right.get_yticks(), [t.get_text() for t in right.get_yticklabels()]), reverse=True)
    assert [t for _, t in ticks] == [res["entities"][i] for i in costly]
    np.testing.assert_allclose(sorted((r.get_width() for r in rb), reverse=True),
                               [res["expected_loss"][i] for i in costly])


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
    # log-log whatever the run (one convention across scenarios)
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    # a 95% Monte Carlo band around the curve (binomial on the paths beyond x)
    (band,) = [c for c in ax.collections if isinstance(c, PolyCollection)]
    assert band.get_label().startswith("95% Monte Carlo")
    # the tail resting on fewer than 10 paths is drawn dashed, and only that tail
    xs, ps, _ = F.loss_exceedance_points(res)
    counts = np.rint(ps * res["paths"])
    assert np.all(np.rint(y * res["paths"])[:-1] >= F.MIN_TAIL_PATHS)
    tail = [ln for ln in ax.get_lines() if "fewer than" in ln.get_label()]
    if (counts[counts > 0] < F.MIN_TAIL_PATHS).any():
        assert len(tail) == 1 and tail[0].get_linestyle() == "--"
    # the legend sits outside the axes, where the VaR line cannot cross it
    fig.canvas.draw()
    leg = ax.get_legend().get_window_extent()
    assert leg.y1 <= ax.get_window_extent().y0 + 1


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
    # a PD of 0 is a pale neutral, not a warning colour
    safe = [k for k, n in enumerate(order) if pd_h[n] == 0]
    for k in safe:
        r, g, b = nodes.get_facecolors()[k][:3]
        assert min(r, g, b) > 0.85 and max(r, g, b) - min(r, g, b) < 0.05
    # one arrowhead per link, at the middle of the link, not on the target node
    heads = [p for p in ax.patches if hasattr(p, "_bubblesim_head")]
    assert len(heads) == len(edges)
    pos = F.network_layout(net)
    for h in heads:
        e = h._bubblesim_head
        (x0, y0), (x1, y1) = pos[e["source"]], pos[e["target"]]
        tip = np.array(h._posA_posB[1])
        assert np.hypot(*(tip - (x1, y1))) > 0.2 * np.hypot(x1 - x0, y1 - y0)
    # dollar labels on the larger links
    big = [e for e in net["edges"] if e["amount"] >= F_net.LABEL_SHARE * max(x["amount"] for x in net["edges"])]
    money = [t.get_text() for t in ax.texts if "B" in t.get_text() and "$" in t.get_text()]
    assert len(money) == len(big)
    # links between the same two nodes never share a bend
    bends = F_net.edge_bends(net["edges"])
    seen = {}
    for e, b in zip(net["edges"], bends):
        key = tuple(sorted((e["source"], e["target"])))
        signed = b if e["source"] == key[0] else -b
        assert signed not in seen.get(key, set())
        seen.setdefault(key, set()).add(signed)


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
    check_common(fig, res, scenario="stressed", single_run=False)
    hm = fig.axes[0]
    (im,) = hm.images
    # no run is the base scenario: mildest first (same P(2+), so by the lab's PD)
    order = ["calm", "small", "stressed"]
    assert [t.get_text() for t in hm.get_xticklabels()] == order
    ents = [e for i, e in enumerate(res["entities"]) if any(r["pd"][i][-1] > 0 for r in runs.values())]
    never = [e for e in res["entities"] if e not in ents]
    assert im.get_array().shape == (len(ents), 3)
    assert [t.get_text() for t in hm.get_yticklabels()] == ents
    assert all(e in hm.get_xlabel() for e in never), "entities that never default: a note, not a row"
    cells = [t.get_text() for t in hm.texts]
    assert len(cells) == 3 * len(ents)
    assert cells[2] == f"{100 * runs['stressed']['pd'][0][-1]:.1f}%"
    assert "0.0%" not in cells
    # one shared scale: one image, normalised from 0
    assert im.norm.vmin == 0.0 and im.norm.vmax >= max(r["pd"][i][-1] for r in runs.values()
                                                       for i in range(len(res["entities"])))
    bars = [c for ax in fig.axes[1:] for c in ax.containers if isinstance(c, BarContainer)]
    assert len(bars) == 3 and all(len(b) == 3 for b in bars)  # P(2+), lab PD, expected loss
    values = [t.get_text() for ax in fig.axes[1:] if ax.get_label() != "<colorbar>" for t in ax.texts]
    assert len(values) == 3 * 3, "every bar carries its value"


def test_scenario_comparison_base_first_and_sweep_names(res):
    mild = _variant(res, "mild", 0.5)
    mild["p2"] = res["p2"] / 2
    harsh = _variant(res, "harsh", 1.5)
    harsh["p2"] = min(1.0, res["p2"] * 2)
    base = _variant(res, "base", 1.0)
    long = {f"base[revenue.growth0={g},regime.enter_prob=0.1]": _variant(res, "base", 1.0 + g) for g in (0.4, 0.6)}
    for r in long.values():
        r["_variant"] = {"overrides": {"revenue.growth0": 1}}
    runs = {"harsh": harsh, "base": base, "mild": mild, **long}
    assert plots.compare.severity_order(runs)[:1] == ["base"]
    assert plots.compare.severity_order({"harsh": harsh, "base": base, "mild": mild}) == ["base", "mild", "harsh"]
    fig = plots.scenario_comparison(runs)
    labels = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert labels[0] == "base"
    assert "base\ngrowth0=0.4\nenter_prob=0.1" in labels, "sweep variants: short, one override a line"
    src = fig._bubblesim_source
    assert "..." not in src and "paths" in src and src.count("\n") >= 0


def test_tornado_sorted_by_swing(res):
    rows = [
        {"param": "small", "low_value": 1, "high_value": 2, "metric_low": 0.30, "metric_high": 0.31, "base": 0.3},
        {"param": "big", "low_value": 0.4, "high_value": 0.9, "metric_low": 0.5, "metric_high": 0.1, "base": 0.3},
        {"param": "mid", "low_value": 5, "high_value": 9, "metric_low": 0.2, "metric_high": 0.35, "base": 0.3},
        {"param": "broken", "low_value": 5, "high_value": 9, "metric_low": None, "metric_high": 0.35, "base": 0.3},
    ]
    fig = plots.tornado(rows, metric="p2", meta=res)
    check_common(fig, res, single_run=False)
    ax = data_axes(fig)[0]
    ticks = sorted(zip(ax.get_yticks(), [t.get_text() for t in ax.get_yticklabels()]), reverse=True)
    assert [t for _, t in ticks] == ["big", "mid", "small"], "largest swing on top; NaN rows dropped"
    lo_bars, hi_bars = [c for c in ax.containers if isinstance(c, BarContainer)]
    assert len(lo_bars) == len(hi_bars) == 3
    assert all(r.get_x() == pytest.approx(0.3) for r in lo_bars)  # bars start at the base
    assert "P(2+" in ax.get_xlabel()


def test_sweep_line_one_parameter(res):
    """A one-parameter sweep is a line with the runs' 95% intervals as error bars."""
    runs = [_variant(res, "base", s) for s in (0.5, 1.0, 1.5)]
    for k, r in enumerate(runs):
        r["p2"], r["p2_lo"], r["p2_hi"] = 0.1 * (k + 1), 0.1 * (k + 1) - 0.01, 0.1 * (k + 1) + 0.02
    rows = [{"params": {"revenue.growth0": g}, "metric": r["p2"]} for g, r in zip((0.4, 0.6, 0.8), runs)]
    fig = plots.sweep_figure({"rows": rows, "metric": "p2", "x": "revenue.growth0", "y": None, "runs": runs},
                             meta=runs)
    check_common(fig, res, scenario="base", single_run=False)
    ax = data_axes(fig)[0]
    (cont,) = ax.containers
    line, _caps, (bars,) = cont.lines[0], cont.lines[1], cont.lines[2]
    np.testing.assert_allclose(line.get_xdata(), [0.4, 0.6, 0.8])
    np.testing.assert_allclose(line.get_ydata(), [0.1, 0.2, 0.3])
    segs = bars.get_segments()
    np.testing.assert_allclose([s[0][1] for s in segs], [r["p2_lo"] for r in runs])
    np.testing.assert_allclose([s[1][1] for s in segs], [r["p2_hi"] for r in runs])
    assert "revenue.growth0" in ax.get_xlabel() and "P(2+" in ax.get_ylabel()
    assert [t.get_text() for t in ax.texts] == ["10.0%", "20.0%", "30.0%"]


def test_sweep_heatmap(res):
    rows = [{"params": {"revenue.growth0": g, "regime.enter_prob": e, "fixed": 1}, "metric": 0.1 * g + e}
            for g in (0.4, 0.6, 0.8) for e in (0.05, 0.1)]
    fig = plots.sweep_heatmap(rows, metric="p2", meta=res)
    check_common(fig, res, single_run=False)
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
