"""Figures of one run, each drawn from the parsed results.json (a dict), never re-simulated.

Every function takes that dict and returns a `matplotlib.figure.Figure` with a title that
names the scenario, labelled axes with units, Monte Carlo intervals where the numbers are
estimates, and a source line; `sim.plots.save_figure` writes PNG and SVG. The network map
lives in `sim.plots.network`.
"""

from __future__ import annotations

import math
import textwrap

import numpy as np
from matplotlib import patheffects
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from sim.engine.stats import bin_edges, wilson_interval
from sim.plots.network import network_layout, network_map
from sim.plots.style import (
    FAN_COLOUR,
    LINESTYLES,
    MARKERS,
    SERIES,
    SPEND_COLOUR,
    add_source,
    arr,
    fan_shades,
    figure_title,
    finite,
    money,
    new_figure,
    percent_axis,
    prob,
    prob_ci,
    source_text,
    step_name,
    styled,
    titled,
)

__all__ = ["SINGLE_RUN_FIGURES", "cascade_size", "default_decomposition", "funding_gap", "loss_exceedance",
           "network_layout", "network_map", "pd_term_structure", "revenue_fan"]

MIN_TAIL_PATHS = 10  # exceedance probabilities resting on fewer paths are drawn dashed and faded


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


def nice_top(v: float, floor: float = 0.0) -> float:
    """An axis top 4-25% above v, on a 1-1.2-1.4-1.6-1.8-2-2.5-3-3.5-4-4.5-5-6-7-8-9 x 10^k step."""
    v = max(float(v), floor)
    if not math.isfinite(v) or v <= 0:
        return 1.0
    mag = 10 ** math.floor(math.log10(v))
    for m in (1.0, 1.2, 1.4, 1.6, 1.8, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0):
        if m * mag >= v * 1.04:
            return m * mag
    return 10 * mag


def _halo(colour: str = "white", width: float = 3.0) -> list:
    return [patheffects.Stroke(linewidth=width, foreground=colour), patheffects.Normal()]


def _fan(ax, res: dict, pct_rows: np.ndarray, label_what: str, median: bool = True) -> list:
    """Bank of England style fan: symmetric percentile bands, darkest in the middle, and the
    median as a dark line with a white halo (it stays visible on the darkest band).
    Returns the band artists (outermost first)."""
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
    if len(p) % 2 and median:
        mid = len(p) // 2
        ax.plot(x, q[mid], color="#111111", lw=1.8, marker="", ls="-", label=f"Median {label_what}",
                path_effects=_halo("white", 3.6))
    return bands


def _interval_err(p, lo, hi) -> np.ndarray:
    p, lo, hi = arr(p), arr(lo), arr(hi)
    return np.vstack([np.clip(p - lo, 0, None), np.clip(hi - p, 0, None)])


def _paths(res: dict) -> int:
    return max(int(res.get("paths") or 1), 1)


# ------------------------------------------------------------------------------ 1. revenue fan
@styled
def revenue_fan(res: dict, log: bool = False):
    """The lab's annualised revenue by quarter as a fan of percentile bands, against its
    committed (scheduled) compute spend. log=True: logarithmic $ axis (shows the lower
    percentiles of a fan whose upper ones grow fast)."""
    fig = new_figure(figsize=(7.0, 4.8))
    ax = fig.add_subplot()
    rev = arr(res["revenue_pct"], 2)
    _fan(ax, res, rev, "revenue")
    spend = arr(res["committed_spend"], 1)
    x = _step_x(res, spend.shape[0])
    ax.plot(x, spend, color=SPEND_COLOUR, lw=2.0, ls="--", marker="", label="Committed compute spend (schedule)",
            path_effects=_halo("white", 3.4))
    ax.set_title(titled(f"{res['lab']}'s revenue against its committed compute spend", res))
    ax.set_ylabel("$B per year (annualised" + (", log scale)" if log else ")"))
    ax.set_xlabel(f"Year (values per {step_name(res['steps_per_year'])}, annualised)")
    _year_axis(ax, res)
    if log:
        ax.set_yscale("log")
        positive = rev[rev > 0]
        ax.set_ylim(bottom=max(float(positive.min()) * 0.8, 1e-3) if positive.size else None)
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.{_decimals(v)}f}"))
    else:
        ax.set_ylim(0, nice_top(max(float(np.nanmax(rev)), float(np.nanmax(spend)))))
    # below the axes: never on a line, whatever the scenario
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=3, fontsize=7.5)
    add_source(fig, source_text(res))
    return fig


# ------------------------------------------------------------------------------ 2. funding gap
@styled
def funding_gap(res: dict):
    """Top: fan of the lab's need for new outside funding each step. Bottom: probability of an
    unfunded gap (with its 95% interval) and of needing new funding, by year."""
    fig = new_figure(figsize=(7.0, 6.6))
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[1.2, 1])
    step = step_name(res["steps_per_year"])
    need = arr(res["need_pct"], 2)
    p = list(res.get("fan_percentiles") or [5, 10, 25, 50, 75, 90, 95])
    median_zero = len(p) % 2 == 1 and not np.any(need[len(p) // 2] > 0)
    _fan(top, res, need, "need", median=not median_zero)
    figure_title(fig, res, f"{res['lab']}'s need for new outside funding")
    top.set_title(f"New outside funding needed, $B per {step} (percentile bands)", pad=30)
    top.set_ylabel(f"$B per {step}")
    top.set_ylim(0, nice_top(float(np.nanmax(need)), 1e-3))
    handles, labels = top.get_legend_handles_labels()
    if median_zero:
        handles.append(top.plot([], [], color="none", label="_")[0])
        labels.append("Median need: $0 in every quarter (most paths need none)")
    # between the title and the panel: never on the fan
    top.legend(handles, labels, loc="lower left", bbox_to_anchor=(0.0, 1.0), ncol=2, fontsize=7.5,
               borderaxespad=0.15)
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
    top_b = nice_top(float(np.nanmax(np.concatenate([p_need, err[1] + p_gap]))) * 1.25, 0.01)
    bottom.set_ylim(0, min(1.0, top_b) if top_b <= 1.0 else 1.05)
    percent_axis(bottom, top=top_b)
    for xx, g, hi in zip(xc, p_gap, err[1] + p_gap):
        if 0 < g < 0.001:  # a bar too small to see: its value
            bottom.text(xx, hi, prob(g), ha="center", va="bottom", fontsize=6.5, color="#333333")
    handles, labels = bottom.get_legend_handles_labels()
    order = sorted(range(len(labels)), key=lambda i: ("gap" not in labels[i], "interval" in labels[i]))
    # below the panel: a probability near 100% would otherwise run under it
    bottom.legend([handles[i] for i in order], [labels[i] for i in order], loc="upper center",
                  bbox_to_anchor=(0.5, -0.24), ncol=3, fontsize=7.5)
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


def annual_pd(res: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Marginal (annual) probability of default, per entity and year: the share of the
    paths on which the entity is still standing at the start of the year that default in
    it (the annual hazard), h_y = (F_y - F_{y-1}) / (1 - F_{y-1}), with 95% Wilson intervals
    on those paths. Returns (h, lo, hi), each (entities, years); NaN where no path is left."""
    pd = arr(res["pd"], 2)
    n = _paths(res)
    prev = np.hstack([np.zeros((pd.shape[0], 1)), pd[:, :-1]])
    alive = np.rint(n * (1.0 - prev))
    defaults = np.clip(np.rint(n * (pd - prev)), 0, None)
    with np.errstate(invalid="ignore", divide="ignore"):
        h = np.where(alive > 0, defaults / np.maximum(alive, 1), np.nan)
    lo, hi = wilson_interval(defaults, np.maximum(alive, 1))
    lo, hi = np.where(alive > 0, lo, np.nan), np.where(alive > 0, hi, np.nan)
    return h, lo, hi


@styled
def pd_term_structure(res: dict):
    """Left: cumulative probability of default by each year end, per entity, with 95%
    intervals (bands and error bars). Right: the annual (marginal) PD of those still
    standing, the hazard, with 95% intervals. Largest first; entities below 0.1% throughout
    are named in a note."""
    fig = new_figure(figsize=(7.6, 5.8))
    gs = fig.add_gridspec(2, 2, height_ratios=[4.5, 1.35], width_ratios=[1.15, 1])
    ax, hz = fig.add_subplot(gs[0, 0]), fig.add_subplot(gs[0, 1])
    foot = fig.add_subplot(gs[1, :])
    foot.axis("off")
    years = np.array(res["years"], dtype=float) + 1.0  # by the end of each year
    pd, lo, hi = arr(res["pd"], 2), arr(res["pd_lo"], 2), arr(res["pd_hi"], 2)
    h, h_lo, h_hi = annual_pd(res)
    names = list(res["entities"])
    shown = sorted((i for i in range(len(names)) if np.nanmax(pd[i]) >= PD_FLOOR), key=lambda i: -pd[i, -1])
    quiet = [names[i] for i in range(len(names)) if i not in shown]
    widest = 0.0
    for k, i in enumerate(shown):
        st = series_style(k)
        ax.fill_between(years, lo[i], hi[i], color=st["color"], alpha=0.3, linewidth=0)
        ax.errorbar(years, pd[i], yerr=_interval_err(pd[i], lo[i], hi[i]), fmt="none", ecolor=st["color"],
                    elinewidth=1.0, capsize=2.5, zorder=3, label="_nolegend_")
        ax.plot(years, pd[i], color=st["color"], ls=st["ls"], marker=st["marker"], mfc=st["mfc"],
                mec=st["color"], label=f"{names[i]} ({prob(pd[i, -1])} by {int(years[-1]) - 1})")
        widest = max(widest, float(np.nanmax(hi[i] - lo[i])))
        ok = np.isfinite(h[i])
        hz.errorbar(years[ok], h[i][ok], yerr=_interval_err(h[i][ok], h_lo[i][ok], h_hi[i][ok]), color=st["color"],
                    ls=st["ls"], marker=st["marker"], mfc=st["mfc"], mec=st["color"], elinewidth=1.0, capsize=2.5,
                    label="_nolegend_")
    figure_title(fig, res, "probability of default by year")
    ax.set_title("Cumulative PD by year end")
    ax.set_ylabel("Probability of default (cumulative)")
    ax.set_xlabel("Year end")
    hz.set_title("Annual PD if still standing")
    hz.set_ylabel("P(default in the year | none before)")
    hz.set_xlabel("Year")
    for a in (ax, hz):
        a.set_xticks(years, [str(int(y) - 1) for y in years])
        a.set_xlim(years[0] - 0.4, years[-1] + 0.4)
        if len(years) > 6:
            a.tick_params(axis="x", labelrotation=45)
    top = nice_top(float(np.nanmax(hi[shown])), 1e-3) if shown else 0.01
    ax.set_ylim(0, min(top, 1.0))
    percent_axis(ax, top=top)
    top_h = nice_top(float(np.nanmax(h_hi[shown])), 1e-3) if shown else 0.01
    hz.set_ylim(0, min(top_h, 1.0))
    percent_axis(hz, top=top_h)
    if shown:
        foot.legend(*ax.get_legend_handles_labels(), loc="upper center", ncol=min(3, len(shown)),
                    title="Entity (PD by the horizon)", title_fontsize=8, fontsize=7.5)
    notes = []
    if shown:
        notes.append(f"95% intervals: shaded bands and error bars, at most {100 * widest:.2g} percentage points "
                     f"wide with {_paths(res):,} paths (where not visible, narrower than the markers). Right: "
                     "the hazard, P(default in the year | no default before), of each entity.")
    if quiet:
        notes.append("PD below 0.1% in every year: " + ", ".join(quiet) + ".")
    foot.text(0.0, 0.0, textwrap.fill(" ".join(notes), 118), transform=foot.transAxes, fontsize=7,
              color="#333333", va="bottom", ha="left", in_layout=False)
    fig._bubblesim_note = " ".join(notes)
    add_source(fig, source_text(res))
    return fig


# ------------------------------------------------------------------------------ 4. fundamental vs contagious
@styled
def default_decomposition(res: dict):
    """Probability of default by the horizon per entity, split into fundamental defaults and
    contagious ones (Elsinger-Lehar-Summer): stacked horizontal bars with the 95% interval of
    the total, largest on top. Entities that never default are named in a note, not drawn
    as a column of zeros; small PDs are printed with the digits they need."""
    fund, cont = arr(res["p_fundamental"], 1), arr(res["p_contagious"], 1)
    names = list(res["entities"])
    pd_lo, pd_hi = arr(res["pd_lo"], 2)[:, -1], arr(res["pd_hi"], 2)[:, -1]
    total = fund + cont
    drawn = sorted((i for i in range(len(names)) if total[i] > 0), key=lambda i: (-total[i], i))
    never = [names[i] for i in range(len(names)) if total[i] <= 0]
    fig = new_figure(figsize=(7.0, 2.3 + 0.36 * max(len(drawn), 1)))
    ax = fig.add_subplot()
    y = np.arange(len(drawn))[::-1]
    f, c = fund[drawn], cont[drawn]
    ax.barh(y, f, height=0.64, color=FAN_COLOUR, edgecolor="#1a1a1a", label="Fundamental default")
    ax.barh(y, c, height=0.64, left=f, color="#E69F00", edgecolor="#1a1a1a", hatch="///",
            label="Contagious default (caused by the network)")
    if drawn:
        t = f + c
        ax.errorbar(t, y, xerr=_interval_err(t, pd_lo[drawn], pd_hi[drawn]), fmt="none", ecolor="#1a1a1a",
                    elinewidth=1.0, capsize=3, label="95% interval of the total")
    top = nice_top(float(np.max(pd_hi[drawn])), 1e-3) if drawn else 0.01
    for k, i in enumerate(drawn):
        share = f" ({100 * c[k] / total[i]:.0f}% contagious)" if c[k] > 0 else ""
        ax.text(max(pd_hi[i], total[i]) + top * 0.015, y[k], prob(total[i]) + share, ha="left", va="center",
                fontsize=7.5, clip_on=False)
    ax.set_yticks(y, [names[i] for i in drawn])
    ax.tick_params(axis="y", length=0)
    ax.grid(True, axis="x")
    ax.grid(False, axis="y")
    years = res["years"]
    ax.set_title(titled(f"default by the end of {years[-1]}, fundamental or contagious", res))
    ax.set_xlabel("Probability of default by the horizon")
    ax.set_ylabel("Entity")
    ax.set_xlim(0, top)
    ax.set_ylim(-0.6, max(len(drawn), 1) - 0.4)
    percent_axis(ax, "x", top=top)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16 if len(drawn) > 3 else -0.3), ncol=3, fontsize=7.5)
    if never:
        note = f"No default in any of the {_paths(res):,} paths: " + ", ".join(never) + "."
        # bottom right: the bars are sorted, so the smallest (shortest) sit there
        ax.text(0.99, 0.03, textwrap.fill(note, 60), transform=ax.transAxes, fontsize=7, color="#333333",
                va="bottom", ha="right", bbox={"boxstyle": "round,pad=0.3", "fc": "white", "ec": "#CCCCCC", "lw": 0.6})
        fig._bubblesim_note = note
    if not drawn:
        ax.text(0.5, 0.5, "No entity defaults on any path", transform=ax.transAxes, ha="center")
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
    """Left: distribution of the number of defaulted entities by the horizon, each bar with
    its 95% interval and P(2+) with its interval. Right: what the defaults cost, the expected
    loss to outside creditors caused by each entity's default (with its loss given default)."""
    fig = new_figure(figsize=(7.6, 4.4))
    left, right = fig.subplots(1, 2, width_ratios=[1, 1.1])
    kmax = cascade_range(res)
    n = len(res["cascade"]) - 1
    paths = _paths(res)
    cascade = arr(res["cascade"], 1)[:kmax + 1]
    k = np.arange(kmax + 1)
    c_lo, c_hi = wilson_interval(np.rint(cascade * paths), paths)
    left.bar(k, cascade, width=0.7, color=FAN_COLOUR, edgecolor="#1a1a1a",
             yerr=_interval_err(cascade, c_lo, c_hi), error_kw={"ecolor": "#1a1a1a", "capsize": 2.5,
                                                                "elinewidth": 0.9})
    top_l = nice_top(float(max(cascade.max(), np.max(c_hi))) * 1.12, 0.01)
    for kk, p, hi in zip(k, cascade, c_hi):
        if p > 0:
            left.text(kk, max(p, hi) + top_l * 0.01, prob(p), ha="center", va="bottom", fontsize=7)
    figure_title(fig, res, "how many default, and what it costs")
    left.set_title("Entities in default by the horizon")
    note = f" (none had more than {kmax - 1} of {n})" if kmax < n else ""
    left.set_xlabel(f"Entities in default, k{note}")
    left.set_ylabel("Probability, P(exactly k)")
    left.set_xticks(k)
    left.set_ylim(0, min(top_l, 1.1))  # probabilities: room for the labels, never a 120% axis
    left.set_yticks([t for t in left.get_yticks() if 0 <= t <= 1.0 + 1e-9])
    percent_axis(left, top=top_l)
    if all(finite(res.get(key)) for key in ("p2", "p2_lo", "p2_hi")):
        left.text(0.98, 0.97, f"P(2 or more) = {prob_ci(res['p2'], res['p2_lo'], res['p2_hi'])}\n"
                  "(bars: 95% intervals)", transform=left.transAxes, ha="right", va="top", fontsize=7.5,
                  bbox={"boxstyle": "round,pad=0.3", "fc": "white", "ec": "#BBBBBB", "lw": 0.6})
    el = arr(res.get("expected_loss") or [0.0] * n, 1)
    lgd = res.get("lgd") or [None] * n
    names = list(res["entities"])
    costly = sorted((i for i in range(len(names)) if el[i] > 0), key=lambda i: -el[i])
    yy = np.arange(len(costly))[::-1]
    right.barh(yy, el[costly], height=0.5 if len(costly) > 2 else 0.35, color="#E69F00", edgecolor="#1a1a1a", hatch="///")
    top_r = nice_top(float(el[costly].max()) * 1.35, 0.01) if costly else 1.0
    for y0, i in zip(yy, costly):
        txt = money(el[i]) + (f", LGD {100 * lgd[i]:.0f}%" if finite(lgd[i]) else "")
        right.text(el[i] + top_r * 0.015, y0, txt, ha="left", va="center", fontsize=7)
    right.set_yticks(yy, [names[i] for i in costly])
    right.tick_params(axis="y", length=0)
    right.grid(True, axis="x")
    right.grid(False, axis="y")
    right.set_xlim(0, top_r)
    right.set_title("Expected loss caused, by defaulter")
    right.set_xlabel("Loss to outside creditors, $B (mean over all paths)")
    if not costly:
        right.text(0.5, 0.5, "No loss to outside creditors", transform=right.transAxes, ha="center")
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


def _decade_limits(lo: float, hi: float) -> tuple[float, float]:
    return 10 ** math.floor(math.log10(lo)), 10 ** math.ceil(math.log10(hi))


@styled
def loss_exceedance(res: dict):
    """P(total loss to outside creditors > x) on log-log axes (the same convention for every
    run), with its 95% Monte Carlo band (Wilson interval on the number of paths beyond x),
    the part resting on fewer than 10 paths dashed and faded, and VaR99 / ES99 marked."""
    fig = new_figure(figsize=(7.0, 5.0))
    ax = fig.add_subplot()
    x, p, p_any = loss_exceedance_points(res)
    var, es = res.get("loss_var99"), res.get("loss_es99")
    n = _paths(res)
    floor = 0.5 / n
    if x.size:
        ok = p > 0
        xs, ps = x[ok], p[ok]
        counts = np.rint(ps * n)
        lo, hi = wilson_interval(counts, n)
        ax.fill_between(xs, np.maximum(lo, floor), hi, step="post", color=FAN_COLOUR, alpha=0.22, lw=0,
                        label="95% Monte Carlo band")
        solid = counts >= MIN_TAIL_PATHS
        cut = int(np.argmin(solid)) if not solid.all() else len(xs)  # counts fall along x: one cut
        ax.step(xs[:cut + 1] if cut < len(xs) else xs, ps[:cut + 1] if cut < len(xs) else ps, where="post",
                color=FAN_COLOUR, lw=1.8, marker="", label="P(loss > x), from the run's histogram")
        if cut < len(xs):
            ax.step(xs[cut:], ps[cut:], where="post", color=FAN_COLOUR, lw=1.4, ls="--", alpha=0.5, marker="",
                    label=f"the same, resting on fewer than {MIN_TAIL_PATHS} paths")
        lo_x, hi_x = float(xs[0]), float(x[-1])
        if finite(es):
            hi_x = max(hi_x, es)
        ax.set_xlim(*_decade_limits(lo_x, hi_x))
        ax.set_ylim(_decade_limits(floor, 1.0)[0], 1.0)
    else:
        ax.set_xlim(1e-3, 1e3)
        ax.set_ylim(_decade_limits(floor, 1.0)[0], 1.0)
        ax.text(0.5, 0.5, "No path lost money for outside creditors", transform=ax.transAxes, ha="center")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.xaxis.set_major_locator(LogLocator(base=10))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.{_decimals(v)}f}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.axhline(0.01, color="#555555", lw=0.8, ls=":", marker="")
    ax.text(0.0, 0.01, " 1%", transform=ax.get_yaxis_transform(), ha="left", va="bottom", fontsize=7,
            color="#555555")
    if finite(var) and var > 0:
        ax.axvline(var, color=SPEND_COLOUR, ls="--", lw=1.4, marker="", label=f"VaR 99% = {money(var)}")
    if finite(es) and es > 0:
        ax.axvline(es, color="#000000", ls="-.", lw=1.4, marker="", label=f"ES 99% = {money(es)}")
    mean = res.get("loss_mean")
    ax.set_title(titled("losses to outside creditors, exceedance curve", res))
    ax.set_xlabel("Total loss to outside creditors by the horizon, x ($B, log scale)")
    ax.set_ylabel("Probability, P(loss > x) (log scale)")
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{100 * v:.{_decimals(100 * v)}f}%"))
    ax.grid(True, which="major", axis="both")
    extra = f"P(any loss) = {prob(p_any)}" + (f"; mean loss {money(mean)}" if finite(mean) else "")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2, title=extra, title_fontsize=8, fontsize=7.5)
    add_source(fig, source_text(res))
    return fig


def _decimals(v: float) -> int:
    """Decimals to print a 1-2-5 tick value without trailing noise."""
    return 0 if v >= 1 or v <= 0 else min(6, int(math.ceil(-math.log10(v) - 1e-9)))


SINGLE_RUN_FIGURES = {
    "revenue_fan": revenue_fan,
    "funding_gap": funding_gap,
    "pd_term_structure": pd_term_structure,
    "default_decomposition": default_decomposition,
    "cascade_size": cascade_size,
    "loss_exceedance": loss_exceedance,
    "network_map": network_map,
}
