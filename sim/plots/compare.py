"""Figures across runs: scenario comparison (a batch), tornado (a sensitivity table) and
sweep heatmap (a two-parameter sweep). Inputs are plain structures, see each function."""

from __future__ import annotations

import math
import textwrap

import numpy as np

from sim.plots.style import (
    HATCHES,
    RISK_CMAP,
    SEQUENTIAL,
    SERIES,
    add_source,
    arr,
    finite,
    money,
    new_figure,
    pct,
    percent_axis,
    prob,
    prob_decimals,
    source_text,
    styled,
    text_colour_on,
)

# ------------------------------------------------------------------------------ metric names
METRIC_LABELS = {
    "p2": ("P(2+ defaults by the horizon)", "probability"),
    "p_2plus_defaults": ("P(2+ defaults by the horizon)", "probability"),
    "loss_mean": ("Expected loss to outside creditors", "$B"),
    "expected_loss": ("Expected loss to outside creditors", "$B"),
    "loss_var99": ("VaR 99% of losses to outside creditors", "$B"),
    "loss_es99": ("ES 99% of losses to outside creditors", "$B"),
    "lab_pd": ("Lab's probability of default by the horizon", "probability"),
}


def metric_label(name: str) -> tuple[str, str]:
    """(readable label, unit) of a metric name: 'probability' or '$B' or ''."""
    if name in METRIC_LABELS:
        return METRIC_LABELS[name]
    low = name.lower()
    if low.startswith("pd") or low.startswith("p_") or low.startswith("p(") or "prob" in low:
        who = name.split(":", 1)[1] if ":" in name else ""
        return ((f"PD of {who} by the horizon" if who and low.startswith("pd") else name), "probability")
    if "loss" in low or low.endswith("_bn") or "need" in low:
        return name, "$B"
    return name, ""


def _axis_label(name: str) -> str:
    label, unit = metric_label(name)
    if not unit or (unit == "probability" and (label.startswith("P") or "prob" in label.lower())):
        return label
    return f"{label} ({unit})"


def _fmt_metric(v: float, unit: str) -> str:
    if not finite(v):
        return "n/a"
    if unit == "probability":
        return pct(v, 1 if abs(v) >= 0.001 else 2)
    if unit == "$B":
        return money(v)
    return f"{v:.3g}"


def _cell_fmt(v: float, unit: str) -> str:
    if not finite(v):
        return "-"
    if unit == "probability":
        if v == 0:
            return "0"
        return f"{100 * v:.{prob_decimals(v)}f}" if v < 0.995 or v == 1 else f"{100 * v:.0f}"
    if unit == "$B":
        return f"{v:,.0f}" if abs(v) >= 100 else f"{v:,.1f}"
    return f"{v:.3g}"


# ------------------------------------------------------------------------------ 8. scenario comparison
def system_metrics(res: dict) -> dict:
    """Key system numbers of one run, with intervals where the run has them."""
    lab = res["entities"].index(res["lab"])
    pd = arr(res["pd"], 2)
    el = res.get("loss_mean")
    el_se = res.get("loss_mean_se")
    return {
        "p2": (res["p2"], res.get("p2_lo"), res.get("p2_hi")),
        "lab_pd": (float(pd[lab, -1]), float(arr(res["pd_lo"], 2)[lab, -1]), float(arr(res["pd_hi"], 2)[lab, -1])),
        "loss_mean": (el, el - 1.96 * el_se if finite(el_se) else None, el + 1.96 * el_se if finite(el_se) else None),
    }


def severity_order(runs: dict[str, dict]) -> list[str]:
    """Run names, the base scenario first (a run whose scenario is named 'base' and that has
    no overrides, else none), then the others from the mildest to the most severe: by
    P(2+ defaults), then the lab's PD, then expected loss (ties: the given order)."""
    names = list(runs)
    base = next((n for n in names if runs[n].get("scenario") == "base"
                 and not (runs[n].get("_variant") or {}).get("overrides")), None)

    def key(n):
        m = system_metrics(runs[n])
        return tuple(v[0] if finite(v[0]) else math.inf for v in (m["p2"], m["lab_pd"], m["loss_mean"]))

    rest = sorted((n for n in names if n != base), key=lambda n: (key(n), names.index(n)))
    return ([base] if base else []) + rest


def short_name(name: str, res: dict | None = None) -> str:
    """A tick label for a run: a sweep variant 'base[revenue.growth0=0.4,regime.enter_prob=0.1]'
    becomes 'base\ngrowth0=0.4\nenter_prob=0.1' (last part of each key, one per line)."""
    if "[" in name and name.endswith("]"):
        head, inner = name[:-1].split("[", 1)
        parts = [p.strip() for p in inner.split(",") if p.strip()]
        shortened = []
        for p in parts:
            k, _, v = p.partition("=")
            shortened.append(f"{k.rsplit('.', 1)[-1]}={v}" if v else k)
        return "\n".join([head] + shortened)
    return name


def _cell_text(v: float) -> str:
    if not np.isfinite(v):
        return "-"
    if v == 0:
        return "0"
    return prob(v)


@styled
def scenario_comparison(runs: dict[str, dict], order: str = "severity"):
    """PD by entity x scenario (one shared colour scale, numbers in the cells) and bars of key
    system metrics: P(2+ defaults), the lab's PD and expected loss (95% intervals, values
    printed on the bars).

    `runs`: variant name -> results dict. order="severity" (default): the base scenario
    first, then from the mildest to the most severe (`severity_order`); "given": as passed.
    Entities that never default in any run are named in a note instead of drawn as a row
    of zeros."""
    import matplotlib.colors as mcolors

    if not runs:
        raise ValueError("no runs to compare")
    names = severity_order(runs) if order == "severity" else list(runs)
    labels = [short_name(n) for n in names]
    entities: list[str] = []
    for r in runs.values():
        for e in r["entities"]:
            if e not in entities:
                entities.append(e)
    grid = np.full((len(entities), len(names)), np.nan)
    for j, v in enumerate(names):
        pd = arr(runs[v]["pd"], 2)
        for i, e in enumerate(runs[v]["entities"]):
            grid[entities.index(e), j] = pd[i, -1]
    never = [e for i, e in enumerate(entities) if not np.any(np.nan_to_num(grid[i]) > 0)]
    rows = [i for i, e in enumerate(entities) if e not in never] or list(range(len(entities)))
    grid = grid[rows]
    shown = [entities[i] for i in rows]
    lines = max(label.count("\n") + 1 for label in labels)
    width = max(7.0, min(9.5, 3.2 + 0.95 * len(names)))
    hm_h = 0.9 + 0.3 * len(shown)
    bars_h = 1.3 + 0.42 * len(names)
    fig = new_figure(figsize=(width, hm_h + bars_h + 1.0 + 0.14 * lines))
    gs = fig.add_gridspec(2, 2, height_ratios=[hm_h + 0.14 * lines, bars_h], width_ratios=[1.6, 1])
    hm = fig.add_subplot(gs[0, :])
    cmap = RISK_CMAP
    vmax = float(np.nanmax(grid)) if np.isfinite(grid).any() else 1.0
    vmax = min(1.0, max(0.05, math.ceil(vmax * 20) / 20))
    norm = mcolors.Normalize(0.0, vmax)
    masked = np.ma.masked_invalid(grid)
    cm = cmap.with_extremes(bad="#FFFFFF")
    im = hm.imshow(masked, cmap=cm, norm=norm, aspect="auto", interpolation="nearest")
    for i in range(len(shown)):
        quiet_row = np.nanmax(np.nan_to_num(grid[i])) < 0.001
        for j in range(len(names)):
            v = grid[i, j]
            colour = "#888888" if (not np.isfinite(v) or v == 0 or quiet_row) else text_colour_on(cm(norm(v)))
            hm.text(j, i, _cell_text(v), ha="center", va="center", fontsize=7.5 if len(names) > 8 else 8,
                    color=colour)
    hm.set_xticks(range(len(names)), labels, fontsize=7.5 if lines > 1 or len(names) > 4 else None)
    hm.xaxis.tick_top()
    hm.set_yticks(range(len(shown)), shown)
    for t, i in zip(hm.get_yticklabels(), range(len(shown))):
        if np.nanmax(np.nan_to_num(grid[i])) < 0.001:
            t.set_color("#888888")
    hm.grid(False)
    hm.tick_params(length=0)
    for sp in hm.spines.values():
        sp.set_visible(False)
    hm.set_ylabel("Entity")
    years = [r["years"][-1] for r in runs.values()]
    by = f"by the end of {years[0]}" if len(set(years)) == 1 else "by each scenario's horizon"
    order_note = " (base first, then by severity)" if order == "severity" else ""
    hm.set_title(textwrap.fill(f"PD {by}, by entity and scenario{order_note}", int(width * 11)))
    if never:
        hm.set_xlabel(textwrap.fill("No default in any scenario: " + ", ".join(never) + ".", int(width * 15)),
                      fontsize=7.5, color="#444444")
    cb = fig.colorbar(im, ax=hm, pad=0.01, aspect=20, shrink=0.9)
    cb.set_label("PD (one scale)")
    percent_axis(cb.ax, top=vmax)

    metrics = {v: system_metrics(runs[v]) for v in names}
    # bottom row: horizontal bars (long run names read on one line), one row per run in the
    # heatmap's order top to bottom, the two panels sharing the rows
    ax = fig.add_subplot(gs[1, 0])
    series = [("p2", "P(2+ defaults)"), ("lab_pd", "Lab PD")]
    w = 0.8 / len(series)
    yy = np.arange(len(names))[::-1].astype(float)
    ends = []
    for k, (key, label) in enumerate(series):
        vals = np.array([metrics[v][key][0] for v in names], dtype=float)
        lo = np.array([metrics[v][key][1] if finite(metrics[v][key][1]) else metrics[v][key][0] for v in names],
                      dtype=float)
        hi = np.array([metrics[v][key][2] if finite(metrics[v][key][2]) else metrics[v][key][0] for v in names],
                      dtype=float)
        ys = yy - (k - (len(series) - 1) / 2) * w
        ax.barh(ys, vals, height=w * 0.92, color=SERIES[k], edgecolor="#1a1a1a", hatch=HATCHES[k], label=label,
                xerr=np.vstack([np.clip(vals - lo, 0, None), np.clip(hi - vals, 0, None)]),
                error_kw={"ecolor": "#1a1a1a", "capsize": 2, "elinewidth": 0.9})
        ends.append((ys, vals, hi))
    peak = max(0.05, max(float(np.nanmax(e[2])) for e in ends))
    ax.set_xlim(0, peak * 1.28)  # room for the values
    ax.set_xticks([t for t in ax.get_xticks() if 0 <= t <= min(1.0, peak * 1.28) + 1e-9])
    for ys, vals, hi in ends:
        for y0, v, h in zip(ys, vals, hi):
            ax.text(h + peak * 0.015, y0, prob(v), ha="left", va="center", fontsize=6.5, color="#222222")
    ax.set_yticks(yy, [lab.replace("\n", " ") for lab in labels], fontsize=7 if len(names) > 6 else 8)
    ax.set_ylim(-0.6, len(names) - 0.4)
    ax.tick_params(axis="y", length=0)
    ax.grid(True, axis="x")
    ax.grid(False, axis="y")
    ax.set_xlabel("Probability by the horizon")
    ax.set_title("System risk by scenario (95% intervals)", pad=16)
    percent_axis(ax, "x", top=peak)
    ax.legend(loc="lower left", bbox_to_anchor=(0.0, 0.995), ncol=2, fontsize=7.5, borderaxespad=0.1,
              handlelength=1.6)  # between the title and the bars: never on a bar
    ax2 = fig.add_subplot(gs[1, 1], sharey=ax)
    el = np.array([metrics[v]["loss_mean"][0] for v in names], dtype=float)
    el_hi = np.array([metrics[v]["loss_mean"][2] if finite(metrics[v]["loss_mean"][2]) else metrics[v]["loss_mean"][0]
                      for v in names], dtype=float)
    ax2.barh(yy, el, height=0.6, color=SERIES[2], edgecolor="#1a1a1a", hatch=HATCHES[2],
             xerr=np.vstack([np.clip(el - (2 * el - el_hi), 0, None), np.clip(el_hi - el, 0, None)]),
             error_kw={"ecolor": "#1a1a1a", "capsize": 2.5, "elinewidth": 0.9})
    top2 = max(float(np.nanmax(el_hi)), 1e-9) * 1.4
    for y0, v, h in zip(yy, el, el_hi):
        ax2.text(h + top2 * 0.02, y0, money(v), ha="left", va="center", fontsize=6.5)
    ax2.set_xlim(0, top2)
    ax2.tick_params(axis="y", length=0, labelleft=False)
    ax2.grid(True, axis="x")
    ax2.grid(False, axis="y")
    ax2.set_xlabel("Expected loss to outside creditors ($B)")
    ax2.set_title("Expected loss (95% interval)", pad=16)
    add_source(fig, source_text([runs[n] for n in names], names=_source_names(runs, names)))
    return fig


def _source_names(runs: dict, names: list[str]) -> list[str]:
    """Names for the source line: the scenarios (not every sweep variant) when there are many."""
    if len(names) <= 8 and not any("[" in n for n in names):
        return names
    out: list[str] = []
    for n in names:
        scen = str(runs[n].get("scenario", n))
        if scen not in out:
            out.append(scen)
    return out + [f"({len(names)} runs)"]


# ------------------------------------------------------------------------------ 9. tornado
def tornado_rows(rows: list[dict]) -> list[dict]:
    """Rows with finite numbers, sorted by swing |metric_high - metric_low|, largest first."""
    ok = [r for r in rows if finite(r.get("metric_low")) and finite(r.get("metric_high"))]
    return sorted(ok, key=lambda r: -abs(float(r["metric_high"]) - float(r["metric_low"])))


@styled
def tornado(rows: list[dict], metric: str = "metric", base: float | None = None, meta=None, title: str | None = None):
    """Tornado chart of a one-at-a-time sensitivity table, bars sorted by swing (largest on top).

    rows: [{param, low_value, high_value, metric_low, metric_high, base}], `base` the metric
    at the base scenario (taken from the rows if not given); meta: results dict(s) or a
    dict with scenario/seed/paths for the source line."""
    rows = tornado_rows(rows)
    if not rows:
        raise ValueError("no sensitivity rows with finite metrics")
    if base is None:
        bases = [r.get("base") for r in rows if finite(r.get("base"))]
        base = float(bases[0]) if bases else float(np.mean([(r["metric_low"] + r["metric_high"]) / 2 for r in rows]))
    label, unit = metric_label(metric)
    fig = new_figure(figsize=(7.0, 2.1 + 0.42 * len(rows)))
    ax = fig.add_subplot()
    y = np.arange(len(rows))[::-1]
    lo_vals = np.array([float(r["metric_low"]) for r in rows])
    hi_vals = np.array([float(r["metric_high"]) for r in rows])
    ax.barh(y, lo_vals - base, left=base, height=0.62, color=SERIES[0], edgecolor="#1a1a1a",
            label="Parameter at its low value")
    ax.barh(y, hi_vals - base, left=base, height=0.62, color=SERIES[1], edgecolor="#1a1a1a", hatch="///",
            label="Parameter at its high value")
    ax.axvline(base, color="#000000", lw=1.0, marker="", label=f"Base: {_fmt_metric(base, unit)}")
    span = max(float(np.max(np.abs(np.concatenate([lo_vals, hi_vals]) - base))), 1e-12)
    for yy, r, lo, hi in zip(y, rows, lo_vals, hi_vals):
        for v, val in ((lo, r.get("low_value")), (hi, r.get("high_value"))):
            side = 1 if v >= base else -1
            ax.text(v + side * span * 0.02, yy, f"{_fmt_metric(v, unit)}" + (f" @ {_short(val)}" if val is not None
                                                                              else ""),
                    ha="left" if side > 0 else "right", va="center", fontsize=7)
    ax.set_yticks(y, [str(r["param"]) for r in rows])
    ax.set_xlim(base - span * 1.45, base + span * 1.45)
    ax.grid(True, axis="x")
    ax.grid(False, axis="y")
    if unit == "probability":
        percent_axis(ax, "x")
    ax.set_xlabel(_axis_label(metric))
    ax.set_ylabel("Parameter (sorted by swing)")
    ax.set_title(title or f"Sensitivity of {label}")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16 - 0.5 / max(len(rows), 1)), ncol=3, fontsize=7.5)
    add_source(fig, _meta_source(meta))
    return fig


def _short(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def _meta_source(meta) -> str:
    if meta is None:
        return source_text([])
    if isinstance(meta, (list, tuple)):
        return source_text(list(meta))
    return source_text(meta)


# ------------------------------------------------------------------------------ 10. sweep heatmap
def sweep_grid(rows: list[dict], x: str | None = None, y: str | None = None):
    """(x name, y name, x values, y values, grid[y, x]) from [{params: {k: v}, metric: value}]."""
    if not rows:
        raise ValueError("no sweep rows")
    keys: list[str] = []
    for r in rows:
        for k in r["params"]:
            if k not in keys:
                keys.append(k)
    varying = [k for k in keys if len({repr(r["params"].get(k)) for r in rows}) > 1] or keys
    x = x or varying[0]
    y = y or (varying[1] if len(varying) > 1 else None)

    def uniq(k):
        vals = sorted({r["params"].get(k) for r in rows}, key=lambda v: (isinstance(v, str), v))
        return vals

    xs = uniq(x)
    ys = uniq(y) if y else [None]
    grid = np.full((len(ys), len(xs)), np.nan)
    for r in rows:
        j = xs.index(r["params"].get(x))
        i = ys.index(r["params"].get(y)) if y else 0
        v = r.get("metric")
        grid[i, j] = float(v) if finite(v) else np.nan
    return x, y, xs, ys, grid


@styled
def sweep_heatmap(rows: list[dict], metric: str = "metric", x: str | None = None, y: str | None = None,
                  meta=None, title: str | None = None, runs: list[dict] | None = None):
    """Heatmap of a metric over a grid of two swept parameters, values written in the cells.

    rows: [{"params": {name: value, ...}, "metric": value}]; x, y: which parameters (default:
    the first two that vary)."""
    import matplotlib.colors as mcolors
    from matplotlib import colormaps

    xname, yname, xs, ys, grid = sweep_grid(rows, x, y)
    label, unit = metric_label(metric)
    fig = new_figure(figsize=(max(5.5, min(10.0, 2.6 + 0.75 * len(xs))), max(3.2, 1.9 + 0.42 * len(ys))))
    ax = fig.add_subplot()
    cmap = (RISK_CMAP if unit == "probability" else colormaps[SEQUENTIAL]).with_extremes(bad="#FFFFFF")
    finite_vals = grid[np.isfinite(grid)]
    lo = float(finite_vals.min()) if finite_vals.size else 0.0
    hi = float(finite_vals.max()) if finite_vals.size else 1.0
    if unit == "probability":
        lo = 0.0
    norm = mcolors.Normalize(lo, hi if hi > lo else lo + 1e-9)
    im = ax.imshow(np.ma.masked_invalid(grid), cmap=cmap, norm=norm, aspect="auto", origin="lower",
                   interpolation="nearest")
    half = np.full_like(grid, np.nan)  # 95% interval half-widths, where the runs have them
    if runs and len(runs) == len(rows):
        for r, res in zip(rows, runs):
            a, b = metric_interval(res, metric)
            if finite(a) and finite(b):
                half[ys.index(r["params"].get(yname)) if yname else 0, xs.index(r["params"].get(xname))] = (b - a) / 2
    for i in range(len(ys)):
        for j in range(len(xs)):
            v = grid[i, j]
            text = _cell_fmt(v, unit)
            if np.isfinite(half[i, j]):
                text += "\n\u00b1" + _cell_fmt(half[i, j], unit)
            ax.text(j, i, text, ha="center", va="center", fontsize=8 if not np.isfinite(half[i, j]) else 7,
                    color="black" if not np.isfinite(v) else text_colour_on(cmap(norm(v))))
    ax.set_xticks(range(len(xs)), [_short(v) for v in xs])
    ax.set_yticks(range(len(ys)), [_short(v) for v in ys] if yname else [""])
    ax.set_xlabel(xname)
    ax.set_ylabel(yname or "")
    ax.grid(False)
    ax.tick_params(length=0)
    for s in ax.spines.values():
        s.set_visible(False)
    cb = fig.colorbar(im, ax=ax, pad=0.02, aspect=20)
    cb.set_label(_axis_label(metric))
    if unit == "probability":
        percent_axis(cb.ax)
    cell_unit = " (cells in %" if unit == "probability" else (" (cells in $B" if unit == "$B" else "")
    if cell_unit:
        cell_unit += ", \u00b1 half the 95% interval)" if np.isfinite(half).any() else ")"
    text = (title or f"{label} over {xname}" + (f" and {yname}" if yname else "")) + cell_unit
    ax.set_title(textwrap.fill(text, width=int(fig.get_figwidth() * 10)))
    add_source(fig, _meta_source(meta))
    return fig


# ------------------------------------------------------------------------------ 11. one-parameter sweep
def metric_interval(res: dict, metric: str) -> tuple[float | None, float | None]:
    """The 95% interval of a named metric of one run, where the run has it (p2, lab_pd,
    pd:ENTITY, loss_mean), else (None, None)."""
    if metric == "p2":
        return res.get("p2_lo"), res.get("p2_hi")
    if metric in ("lab_pd",) or metric.startswith("pd:"):
        who = res["lab"] if metric == "lab_pd" else metric[3:]
        if who in res["entities"]:
            i = res["entities"].index(who)
            return res["pd_lo"][i][-1], res["pd_hi"][i][-1]
    if metric in ("loss_mean", "expected_loss") and finite(res.get("loss_mean_se")):
        return res["loss_mean"] - 1.96 * res["loss_mean_se"], res["loss_mean"] + 1.96 * res["loss_mean_se"]
    return None, None


@styled
def sweep_line(rows: list[dict], metric: str = "metric", x: str | None = None, runs: list[dict] | None = None,
               meta=None, title: str | None = None):
    """A metric over one swept parameter: a line with 95% error bars (from `runs`, the
    results of each row in the same order, when given) and the value printed at each point.

    rows: [{"params": {name: value}, "metric": value}]; x: the parameter (default: the one
    that varies)."""
    xname, _, xs, _, grid = sweep_grid(rows, x, None)
    label, unit = metric_label(metric)
    vals = grid[0]
    lo = np.full(len(xs), np.nan)
    hi = np.full(len(xs), np.nan)
    if runs and len(runs) == len(rows):
        for r, res in zip(rows, runs):
            j = xs.index(r["params"].get(xname))
            a, b = metric_interval(res, metric)
            lo[j], hi[j] = (a if finite(a) else np.nan), (b if finite(b) else np.nan)
    numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in xs)
    xpos = np.array(xs, dtype=float) if numeric else np.arange(len(xs), dtype=float)
    fig = new_figure(figsize=(7.0, 4.4))
    ax = fig.add_subplot()
    has_ci = np.isfinite(lo).any()
    yerr = np.vstack([np.clip(vals - np.where(np.isfinite(lo), lo, vals), 0, None),
                      np.clip(np.where(np.isfinite(hi), hi, vals) - vals, 0, None)])
    ax.errorbar(xpos, vals, yerr=yerr if has_ci else None, color=SERIES[0], marker="o", lw=1.6, capsize=3,
                elinewidth=1.0, label=label + (" (95% interval)" if has_ci else ""))
    span = float(np.nanmax(np.where(np.isfinite(hi), hi, vals))) if np.isfinite(vals).any() else 1.0
    for xx, v, h in zip(xpos, vals, np.where(np.isfinite(hi), hi, vals)):
        if np.isfinite(v):
            ax.text(xx, h + 0.02 * span, _fmt_metric(v, unit), ha="center", va="bottom", fontsize=7)
    ax.set_xticks(xpos, [_short(v) for v in xs])
    ax.set_xlabel(f"{xname} (swept)")
    ax.set_ylabel(_axis_label(metric))
    if unit == "probability":
        ax.set_ylim(0, min(1.0, max(span * 1.2, 1e-3)))
        percent_axis(ax, top=span)
    elif unit == "$B":
        ax.set_ylim(bottom=0, top=max(span * 1.2, 1e-9))
    ax.set_title(textwrap.fill(title or f"{label} as {xname} varies", 80))
    note = ("error bars: 95% Monte Carlo intervals of each run" if has_ci
            else "no intervals in the sweep table: Monte Carlo error not shown")
    ax.legend(loc="best", title=note, title_fontsize=7, fontsize=7.5)
    add_source(fig, _meta_source(meta if meta is not None else runs))
    return fig


def sweep_figure(sweep: dict, meta=None):
    """The figure of one sweep (as `sim.plots.inputs` reads them): a line with error bars
    when one parameter varies, a heatmap when two do."""
    label, _ = metric_label(sweep["metric"])
    scen = ((sweep.get("runs") or [{}])[0].get("scenario") or "").strip()
    prefix = f"{scen}: " if scen else ""
    if sweep.get("y"):
        return sweep_heatmap(sweep["rows"], metric=sweep["metric"], x=sweep.get("x"), y=sweep.get("y"), meta=meta,
                             runs=sweep.get("runs"), title=f"{prefix}{label} over {sweep['x']} and {sweep['y']}")
    return sweep_line(sweep["rows"], metric=sweep["metric"], x=sweep.get("x"), runs=sweep.get("runs"), meta=meta,
                      title=f"{prefix}{label} as {sweep.get('x') or 'the parameter'} varies")
