"""Figures of one run, each drawn from the parsed results.json (a dict), never re-simulated.

Every function takes that dict and returns a `matplotlib.figure.Figure` with a title,
labelled axes with units and a source line; `sim.plots.save_figure` writes PNG and SVG.
"""

from __future__ import annotations

import math
import textwrap

import numpy as np
from matplotlib.lines import Line2D
from matplotlib.patches import FancyArrowPatch
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from sim.engine.stats import bin_edges
from sim.plots.style import (
    EDGE_STYLE,
    FAN_COLOUR,
    LINESTYLES,
    MARKERS,
    RISK_CMAP,
    SERIES,
    SPEND_COLOUR,
    add_source,
    arr,
    fan_shades,
    finite,
    money,
    new_figure,
    pct,
    percent_axis,
    source_text,
    step_name,
    styled,
)


# ------------------------------------------------------------------------------ helpers
def _step_x(res: dict, n: int) -> np.ndarray:
    """Mid-points of the time steps, in decimal calendar years."""
    spy = int(res["steps_per_year"])
    return res["years"][0] + (np.arange(n) + 0.5) / spy


def _year_axis(ax, res: dict) -> None:
    years = res["years"]
    ax.set_xlim(years[0], years[-1] + 1)
    ax.set_xticks([y + 0.5 for y in years], [str(y) for y in years])
    ax.set_xticks(list(range(years[0], years[-1] + 2)), minor=True)
    ax.tick_params(axis="x", which="major", length=0)
    ax.tick_params(axis="x", which="minor", length=3)
    ax.grid(False, axis="x")


def _fan(ax, res: dict, pct_rows: np.ndarray, label_what: str) -> list:
    """Bank of England style fan: symmetric percentile bands, darkest in the middle, and the
    median as a line. Returns the band artists (outermost first)."""
    p = list(res.get("fan_percentiles") or [5, 10, 25, 50, 75, 90, 95])
    q = np.asarray(pct_rows, dtype=float)
    x = _step_x(res, q.shape[1])
    n_bands = len(p) // 2
    shades = fan_shades(n_bands)
    bands = []
    for k in range(n_bands):
        lo, hi = q[k], q[len(p) - 1 - k]
        cover = p[len(p) - 1 - k] - p[k]
        poly = ax.fill_between(x, lo, hi, color=shades[k], linewidth=0,
                               label=f"{cover:g}% band ({p[k]:g}th-{p[len(p) - 1 - k]:g}th pct)")
        poly._bubblesim_band = (p[k], p[len(p) - 1 - k])
        bands.append(poly)
    if len(p) % 2:
        mid = len(p) // 2
        ax.plot(x, q[mid], color=_darken(FAN_COLOUR, 0.3), lw=1.8, marker="", ls="-",
                label=f"Median {label_what}")
    return bands


def _darken(colour: str, k: float = 0.65):
    import matplotlib.colors as mcolors

    return tuple(c * k for c in mcolors.to_rgb(colour))


def _interval_err(p, lo, hi) -> np.ndarray:
    p, lo, hi = arr(p), arr(lo), arr(hi)
    return np.vstack([np.clip(p - lo, 0, None), np.clip(hi - p, 0, None)])


# ------------------------------------------------------------------------------ 1. revenue fan
@styled
def revenue_fan(res: dict):
    """The lab's annualised revenue by quarter as a fan of percentile bands, against its
    committed (scheduled) compute spend."""
    fig = new_figure()
    ax = fig.add_subplot()
    rev = arr(res["revenue_pct"], 2)
    _fan(ax, res, rev, "revenue")
    spend = arr(res["committed_spend"], 1)
    x = _step_x(res, spend.shape[0])
    ax.plot(x, spend, color=SPEND_COLOUR, lw=2.0, ls="--", marker="", label="Committed compute spend (schedule)")
    ax.set_title(f"{res['lab']}: revenue against committed compute spend")
    ax.set_ylabel("$B per year (annualised)")
    ax.set_xlabel(f"Year (values per {step_name(res['steps_per_year'])}, annualised)")
    _year_axis(ax, res)
    ax.set_ylim(bottom=0)
    ax.legend(loc="upper left", ncol=1)
    add_source(fig, source_text(res))
    return fig


# ------------------------------------------------------------------------------ 2. funding gap
@styled
def funding_gap(res: dict):
    """Top: fan of the lab's need for new outside funding each step. Bottom: probability of an
    unfunded gap (with its 95% interval) and of needing new funding, by year."""
    fig = new_figure(figsize=(7.0, 6.2))
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[1.25, 1])
    step = step_name(res["steps_per_year"])
    _fan(top, res, arr(res["need_pct"], 2), "need")
    top.set_title(f"{res['lab']}: new outside funding needed")
    top.set_ylabel(f"$B per {step}")
    top.set_ylim(bottom=0)
    top.legend(loc="upper left")
    years = np.array(res["years"], dtype=float)
    xc = years + 0.5
    p_gap, p_need = arr(res["p_gap"], 1), arr(res["p_need"], 1)
    err = _interval_err(p_gap, res["p_gap_lo"], res["p_gap_hi"])
    bottom.bar(xc, p_gap, width=0.55, color=FAN_COLOUR, edgecolor="#1a1a1a", linewidth=0.6,
               label="P(unfunded gap in the year)", yerr=err,
               error_kw={"ecolor": "#1a1a1a", "elinewidth": 1.0, "capsize": 3, "label": "95% interval"})
    bottom.plot(xc, p_need, color=SPEND_COLOUR, ls="--", marker="s", mfc="white", mec=SPEND_COLOUR,
                label="P(needs new outside funding in the year)")
    bottom.set_title("Probability of a funding gap (95% interval) and of needing funding")
    bottom.set_ylabel("Probability")
    bottom.set_xlabel("Year")
    top_b = max(0.05, float(np.nanmax(np.concatenate([p_need, err[1] + p_gap]))) * 1.3)
    bottom.set_ylim(0, top_b)
    percent_axis(bottom, top=top_b)
    handles, labels = bottom.get_legend_handles_labels()
    order = sorted(range(len(labels)), key=lambda i: ("gap" not in labels[i], "interval" in labels[i]))
    bottom.legend([handles[i] for i in order], [labels[i] for i in order], loc="upper right")
    _year_axis(bottom, res)
    add_source(fig, source_text(res))
    return fig


# ------------------------------------------------------------------------------ 3. PD term structure
PD_FLOOR = 0.001  # entities that never reach this PD are listed in a note instead of drawn as flat lines


def series_style(i: int) -> dict:
    """Colour, line style and marker of the i-th series: distinct for every i < 32, so
    series stay apart in grey and for colour-blind readers (hollow markers after 8)."""
    return {"color": SERIES[i % len(SERIES)], "ls": LINESTYLES[(i + 3 * (i // len(SERIES))) % len(LINESTYLES)],
            "marker": MARKERS[(i + 5 * (i // len(SERIES))) % len(MARKERS)],
            "mfc": "white" if (i // len(SERIES)) % 2 else SERIES[i % len(SERIES)]}


@styled
def pd_term_structure(res: dict):
    """Cumulative probability of default by each year end, per entity, with 95% bands
    (largest first; entities below 0.1% throughout are named in a note)."""
    fig = new_figure(figsize=(7.0, 4.6))
    ax = fig.add_subplot()
    years = np.array(res["years"], dtype=float) + 1.0  # by the end of each year
    pd, lo, hi = arr(res["pd"], 2), arr(res["pd_lo"], 2), arr(res["pd_hi"], 2)
    names = list(res["entities"])
    shown = sorted((i for i in range(len(names)) if np.nanmax(pd[i]) >= PD_FLOOR), key=lambda i: -pd[i, -1])
    quiet = [names[i] for i in range(len(names)) if i not in shown]
    for k, i in enumerate(shown):
        st = series_style(k)
        ax.fill_between(years, lo[i], hi[i], color=st["color"], alpha=0.18, linewidth=0)
        ax.plot(years, pd[i], color=st["color"], ls=st["ls"], marker=st["marker"], mfc=st["mfc"],
                mec=st["color"], label=f"{names[i]} ({pct(pd[i, -1])} by {int(years[-1]) - 1})")
    ax.set_title("Cumulative probability of default by year end (shaded: 95% interval)")
    ax.set_ylabel("Probability of default (cumulative)")
    ax.set_xlabel("Year end")
    ax.set_xticks(years, [str(int(y) - 1) for y in years])
    ax.set_xlim(years[0] - 0.3, years[-1] + 0.3)
    top = max(0.05, float(np.nanmax(hi[shown])) * 1.08) if shown else 0.05
    ax.set_ylim(0, top)
    percent_axis(ax, top=top)
    if shown:
        ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), title="Entity (PD by horizon)",
                  title_fontsize=8)
    if quiet:
        note = "PD below 0.1% in every year: " + ", ".join(quiet)
        ax.text(0.0, -0.16, textwrap.fill(note, 110), transform=ax.transAxes, fontsize=7, color="#333333",
                va="top")
    add_source(fig, source_text(res))
    return fig


# ------------------------------------------------------------------------------ 4. fundamental vs contagious
@styled
def default_decomposition(res: dict):
    """Probability of default by the horizon per entity, split into fundamental defaults and
    contagious ones (Elsinger-Lehar-Summer): stacked horizontal bars, largest total on top."""
    fund, cont = arr(res["p_fundamental"], 1), arr(res["p_contagious"], 1)
    names = list(res["entities"])
    fig = new_figure(figsize=(7.0, 1.9 + 0.34 * len(names)))
    ax = fig.add_subplot()
    order = sorted(range(len(names)), key=lambda i: (-(fund[i] + cont[i]), i))
    y = np.arange(len(order))[::-1]
    f, c = fund[order], cont[order]
    ax.barh(y, f, height=0.64, color=FAN_COLOUR, edgecolor="#1a1a1a", label="Fundamental default")
    ax.barh(y, c, height=0.64, left=f, color="#E69F00", edgecolor="#1a1a1a", hatch="///",
            label="Contagious default (caused by the network)")
    top = max(0.05, float(np.max(f + c)) * 1.45) if len(y) else 1.0
    for k in range(len(order)):
        total = f[k] + c[k]
        share = f" ({100 * c[k] / total:.0f}% contagious)" if total > 0 and c[k] > 0 else ""
        ax.text(total + top * 0.01, y[k], pct(total) + share, ha="left", va="center", fontsize=7.5)
    ax.set_yticks(y, [names[i] for i in order])
    ax.tick_params(axis="y", length=0)
    ax.grid(True, axis="x")
    ax.grid(False, axis="y")
    years = res["years"]
    ax.set_title(f"Default by the end of {years[-1]}: fundamental or contagious")
    ax.set_xlabel("Probability of default by the horizon")
    ax.set_ylabel("Entity")
    ax.set_xlim(0, top)
    percent_axis(ax, "x", top=top)
    ax.legend(loc="lower right")
    add_source(fig, source_text(res))
    return fig


# ------------------------------------------------------------------------------ 5. cascade size
def cascade_range(res: dict) -> int:
    """Largest k shown: one past the largest number of defaults seen (at most all entities)."""
    cascade = arr(res["cascade"], 1)
    seen = np.nonzero(cascade > 0)[0]
    return int(min(len(cascade) - 1, (seen[-1] if seen.size else 0) + 1))


@styled
def cascade_size(res: dict):
    """Distribution of the number of defaulted entities by the horizon, and P(k or more)."""
    fig = new_figure(figsize=(7.0, 4.0))
    left, right = fig.subplots(1, 2)
    kmax = cascade_range(res)
    n = len(res["cascade"]) - 1
    cascade, atleast = arr(res["cascade"], 1)[:kmax + 1], arr(res["p_at_least"], 1)[:kmax + 1]
    k = np.arange(kmax + 1)
    left.bar(k, cascade, width=0.7, color=FAN_COLOUR, edgecolor="#1a1a1a")
    for kk, p in zip(k, cascade):
        if p > 0:
            left.text(kk, p, pct(p), ha="center", va="bottom", fontsize=7)
    left.set_title("Number of defaults by the horizon")
    note = f" (none had more than {kmax - 1} of {n})" if kmax < n else ""
    left.set_xlabel(f"Entities in default, k{note}")
    left.set_ylabel("Probability, P(exactly k)")
    left.set_xticks(k)
    top_l = max(0.05, float(cascade.max()) * 1.15)
    left.set_ylim(0, top_l)
    percent_axis(left, top=top_l)
    kr = k[1:]
    right.bar(kr, atleast[1:], width=0.7, color="#E69F00", edgecolor="#1a1a1a", hatch="///")
    tops = atleast[1:].copy()
    has_ci = kmax >= 2 and all(finite(res.get(key)) for key in ("p2", "p2_lo", "p2_hi"))
    if has_ci:
        right.errorbar([2], [res["p2"]], yerr=[[res["p2"] - res["p2_lo"]], [res["p2_hi"] - res["p2"]]],
                       fmt="none", ecolor="#1a1a1a", capsize=4, lw=1.1, label="95% interval of P(2+)")
        tops[1] = max(tops[1], res["p2_hi"])
        right.legend(loc="upper right")
    for kk, p, t in zip(kr, atleast[1:], tops):
        if p > 0:
            right.text(kk, t, pct(p), ha="center", va="bottom", fontsize=7)
    right.set_title("Cascades: k or more defaults")
    right.set_xlabel("At least k entities in default")
    right.set_ylabel("Probability, P(k or more)")
    right.set_xticks(kr, [f"{v}+" for v in kr])
    top_r = max(0.05, float(tops.max()) * 1.25) if len(kr) else 1.0
    right.set_ylim(0, top_r)
    percent_axis(right, top=top_r)
    add_source(fig, source_text(res))
    return fig


# ------------------------------------------------------------------------------ 6. loss exceedance
def loss_exceedance_points(res: dict) -> tuple[np.ndarray, np.ndarray, float]:
    """(x, P(loss > x), P(loss > 0)) from the stored histogram (bin 0: no loss; bins 1..B
    log-spaced between lo and hi). x runs from the lower edge of the first non-empty bin to
    the upper edge of the last; P(loss > x) is exact at bin edges."""
    h = res["loss_hist"]
    counts = arr(h["counts"], 1)
    n = counts.sum()
    if n <= 0:
        return np.zeros(0), np.zeros(0), float("nan")
    edges = bin_edges(h["lo"], h["hi"], int(h["bins"]))  # bin k >= 1 is (edges[k-1], edges[k]]
    p_any = 1.0 - counts[0] / n
    nz = np.nonzero(counts[1:])[0] + 1
    if nz.size == 0:
        return np.zeros(0), np.zeros(0), p_any
    first, last = int(nz[0]), int(nz[-1])
    above = counts[::-1].cumsum()[::-1] / n  # P(in bin >= k)
    x = edges[first - 1:last + 1]  # lower edge of `first` .. upper edge of `last`
    p = np.append(above[first:last + 1], 0.0)  # P(L > edges[k-1]) = P(bin >= k)
    return x, p, p_any


@styled
def loss_exceedance(res: dict):
    """P(total loss to outside creditors > x), with VaR99 and ES99 marked."""
    fig = new_figure()
    ax = fig.add_subplot()
    x, p, p_any = loss_exceedance_points(res)
    var, es = res.get("loss_var99"), res.get("loss_es99")
    if x.size:
        ok = p > 0
        xs, ps = x[ok], p[ok]
        ax.step(xs, ps, where="post", color=FAN_COLOUR, lw=1.8, marker="",
                label="P(loss > x), from the run's histogram")
        ax.set_yscale("log")
        floor = 0.5 / max(int(res.get("paths") or 1), 1)
        ax.set_ylim(max(floor, float(ps.min()) * 0.5), min(1.0, float(ps.max()) * 2.0))
        lo_x, hi_x = float(xs[0]), float(x[-1])
        if finite(es):
            hi_x = max(hi_x, es)
        if hi_x / max(lo_x, 1e-12) > 20:
            ax.set_xscale("log")
            ax.set_xlim(lo_x / 1.5, hi_x * 1.5)
            ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
            ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.{_decimals(v)}f}"))
            ax.xaxis.set_minor_formatter(NullFormatter())
            scale = ", log scale"
        else:
            pad = 0.06 * (hi_x - lo_x + 1e-9)
            ax.set_xlim(max(0.0, lo_x - pad), hi_x + pad)
            scale = ""
    else:
        scale = ""
        ax.text(0.5, 0.5, "No path lost money for outside creditors", transform=ax.transAxes, ha="center")
    ax.axhline(0.01, color="#555555", lw=0.8, ls=":", marker="")
    ax.text(1.0, 0.01, "1% ", transform=ax.get_yaxis_transform(), ha="right", va="bottom", fontsize=7,
            color="#555555")
    if finite(var) and var > 0:
        ax.axvline(var, color=SPEND_COLOUR, ls="--", lw=1.4, marker="", label=f"VaR 99% = {money(var)}")
    if finite(es) and es > 0:
        ax.axvline(es, color="#000000", ls="-.", lw=1.4, marker="", label=f"ES 99% = {money(es)}")
    mean = res.get("loss_mean")
    ax.set_title("Losses to outside creditors: exceedance curve")
    ax.set_xlabel(f"Total loss to outside creditors by the horizon, x ($B{scale})")
    ax.set_ylabel("Probability, P(loss > x) (log scale)")
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{100 * v:.{_decimals(100 * v)}f}%"))
    ax.grid(True, which="major", axis="both")
    extra = f"P(any loss) = {pct(p_any)}" + (f"; mean loss {money(mean)}" if finite(mean) else "")
    ax.legend(loc="lower left", title=extra, title_fontsize=8, alignment="left")
    add_source(fig, source_text(res))
    return fig


def _decimals(v: float) -> int:
    """Decimals to print a 1-2-5 tick value without trailing noise."""
    return 0 if v >= 1 or v <= 0 else min(6, int(math.ceil(-math.log10(v) - 1e-9)))


# ------------------------------------------------------------------------------ 7. network map
KIND_ORDER = {"lab": 0, "cloud": 1, "chipmaker": 2, "neocloud": 3, "investor": 4, "other": 5}


def network_layout(network: dict) -> dict[str, tuple[float, float]]:
    """Deterministic positions: the lab in the centre, the others on a circle ordered by
    kind then name (so the picture does not move between runs or with the numbers)."""
    lab = network.get("lab")
    names = [e["name"] for e in network["entities"]]
    kinds = {e["name"]: e.get("kind", "other") for e in network["entities"]}
    others = sorted((n for n in names if n != lab), key=lambda n: (KIND_ORDER.get(kinds[n], 9), n))
    pos = {}
    if lab in names:
        pos[lab] = (0.0, 0.0)
    m = len(others)
    for k, n in enumerate(others):
        a = math.pi / 2 - 2 * math.pi * k / max(m, 1)
        pos[n] = (round(math.cos(a), 12), round(math.sin(a), 12))
    return pos


@styled
def network_map(res: dict, network: dict | None = None):
    """The circular web: nodes sized by balance sheet and coloured by PD by the horizon;
    directed edges with width by $ committed and colour and dash by kind."""
    import matplotlib.colors as mcolors
    from matplotlib import colormaps
    from matplotlib.cm import ScalarMappable
    from matplotlib.ticker import PercentFormatter

    network = network or res.get("network")
    if not network or not network.get("entities"):
        raise ValueError("results have no 'network' block (re-run with this bubblesim version)")
    fig = new_figure(figsize=(7.2, 7.0))
    gs = fig.add_gridspec(2, 1, height_ratios=[6, 1])
    ax = fig.add_subplot(gs[0])
    leg_ax = fig.add_subplot(gs[1])
    leg_ax.axis("off")
    ax.set_aspect("equal")
    ax.axis("off")
    pos = network_layout(network)
    names = list(res.get("entities") or [])
    pd_h = {n: float(arr(res["pd"], 2)[i, -1]) for i, n in enumerate(names)} if names else {}
    cmap = colormaps[RISK_CMAP]
    vmax = max(0.05, max(pd_h.values(), default=0.0))
    vmax = min(1.0, math.ceil(vmax * 10) / 10)
    norm = mcolors.Normalize(0.0, vmax)
    sizes = {e["name"]: max(float(e.get("size") or 0.0), 0.0) for e in network["entities"]}
    smax = max(sizes.values(), default=1.0) or 1.0
    # marker radius in points: area proportional to balance-sheet size (with a floor to stay visible)
    radius = {n: max(7.0, 34.0 * math.sqrt(s / smax)) for n, s in sizes.items()}

    edges = [e for e in network.get("edges", []) if e["source"] in pos and e["target"] in pos]
    amax = max((float(e["amount"]) for e in edges), default=1.0) or 1.0

    def width(a):
        return 0.7 + 6.3 * math.sqrt(max(a, 0.0) / amax)

    pair_count: dict = {}
    for e in sorted(edges, key=lambda e: -float(e["amount"])):
        key = (e["source"], e["target"])
        k = pair_count.get(key, 0)
        pair_count[key] = k + 1
        colour, ls = EDGE_STYLE.get(e["kind"], EDGE_STYLE["other"])
        lw = width(float(e["amount"]))
        rad = 0.2 + 0.16 * k
        head_w = 5.0 + 1.6 * lw  # points
        head_l = 1.1 * head_w
        common = {"connectionstyle": f"arc3,rad={rad}", "shrinkA": radius[e["source"]] + 1, "zorder": 2}
        # the body, dashed by kind, stops under the head; the head is a separate solid triangle
        # (a dashed or thick outline would deform it)
        body = FancyArrowPatch(pos[e["source"]], pos[e["target"]], arrowstyle="-", lw=lw, color=colour,
                               linestyle=ls, alpha=0.9, capstyle="butt", shrinkB=radius[e["target"]] + 0.8 * head_l,
                               **common)
        head = FancyArrowPatch(pos[e["source"]], pos[e["target"]],
                               arrowstyle=f"simple,head_length={head_l},head_width={head_w},tail_width=0.01",
                               mutation_scale=1.0, lw=0, color=colour, alpha=0.95,
                               shrinkB=radius[e["target"]] + 1, **common)
        body._bubblesim_edge = e
        ax.add_patch(body)
        ax.add_patch(head)

    order = list(pos)
    xs = [pos[n][0] for n in order]
    ys = [pos[n][1] for n in order]
    colours = [cmap(norm(pd_h.get(n, 0.0))) for n in order]
    sc = ax.scatter(xs, ys, s=[(2 * radius[n]) ** 2 for n in order], c=colours, edgecolors="#1a1a1a",
                    linewidths=1.0, zorder=3, marker="o")
    sc._bubblesim_nodes = order
    for n in order:
        x, y = pos[n]
        label = f"{n}\nPD {pct(pd_h[n])}" if n in pd_h else n
        if (x, y) == (0.0, 0.0):
            ax.annotate(label, (x, y), xytext=(0, -(radius[n] + 4)), textcoords="offset points", ha="center",
                        va="top", fontsize=8, fontweight="bold", zorder=4,
                        bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": "none", "alpha": 0.85})
        else:
            ax.annotate(label, (x, y), xytext=(x * (radius[n] + 5), y * (radius[n] + 5)),
                        textcoords="offset points",
                        ha="center" if abs(x) < 0.3 else ("left" if x > 0 else "right"),
                        va="center" if abs(y) < 0.3 else ("bottom" if y > 0 else "top"), fontsize=8, zorder=4)
    ax.set_xlim(min(xs) - 0.62, max(xs) + 0.62)
    ax.set_ylim(min(ys) - 0.5, max(ys) + 0.5)

    cb = fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), ax=ax, shrink=0.5, pad=0.01, aspect=22)
    cb.set_label(f"Node colour: probability of default by the end of {res['years'][-1]}")
    cb.ax.yaxis.set_major_formatter(PercentFormatter(xmax=1.0, decimals=0))
    kinds = sorted({e["kind"] for e in edges}, key=lambda k: list(EDGE_STYLE).index(k) if k in EDGE_STYLE else 99)
    handles = [Line2D([], [], color=EDGE_STYLE.get(k, EDGE_STYLE["other"])[0],
                      ls=EDGE_STYLE.get(k, EDGE_STYLE["other"])[1], lw=2.2, label=_kind_label(k)) for k in kinds]
    for a in _nice_amounts(amax):
        handles.append(Line2D([], [], color="#7F7F7F", lw=width(a), label=f"${a:,.0f}B committed"))
    leg_ax.legend(handles=handles, loc="center", ncol=2, fontsize=7.5, handlelength=3.0,
               title="Links: arrows run payer to payee, investor to investee, holder to issuer,\n"
                     "lender to borrower; width: $B committed over the horizon",
               title_fontsize=7.5)
    ax.set_title("The financing web: who owes and owns what")
    ax.text(0.0, 1.0, "Node area: equity value + outside debt at the start",
            transform=ax.transAxes, fontsize=7.5, color="#333333", va="top")
    add_source(fig, source_text(res))
    return fig


def _kind_label(kind: str) -> str:
    return {"compute": "Compute contract", "chips": "Chip purchase contract", "investment": "Investment commitment",
            "stake": "Equity stake (at start value)", "loan": "Loan"}.get(kind, f"{kind.capitalize()} contract")


def _nice_amounts(amax: float) -> list[float]:
    if amax <= 0:
        return []
    top = 10 ** math.floor(math.log10(amax))
    for m in (5, 2, 1):
        if m * top <= amax:
            top = m * top
            break
    return [v for v in (top / 10, top) if v > 0]


SINGLE_RUN_FIGURES = {
    "revenue_fan": revenue_fan,
    "funding_gap": funding_gap,
    "pd_term_structure": pd_term_structure,
    "default_decomposition": default_decomposition,
    "cascade_size": cascade_size,
    "loss_exceedance": loss_exceedance,
    "network_map": network_map,
}
