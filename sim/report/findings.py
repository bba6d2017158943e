"""Key findings in plain sentences and the HTML tables, generated from the numbers of results files."""

from __future__ import annotations

import html
import math
import re

from sim.plots.style import pct, prob, prob_decimals


# ------------------------------------------------------------------------------ helpers
def esc(x) -> str:
    """HTML-escape anything (quotes too)."""
    return html.escape("" if x is None else str(x), quote=True)


def _slug(name: str) -> str:
    s = re.sub(r"[^A-Za-z0-9._=-]+", "_", name).strip("._") or "run"
    return s[:80]


def _finite(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _money(x) -> str:
    if not _finite(x):
        return "n/a"
    if abs(x) >= 100:
        return f"${x:,.0f}B"
    return f"${x:,.1f}B" if abs(x) >= 1 or x == 0 else f"${x:,.2f}B"


def _ci(p, lo, hi) -> str:
    """'0.021% (95% interval 0.014% to 0.030%)': small probabilities keep their digits."""
    if not _finite(p):
        return "n/a"
    if _finite(lo) and _finite(hi):
        d = prob_decimals(p, lo, hi)

        def f(v):
            return "0%" if v == 0 else f"{100 * v:.{d}f}%"

        return f"{f(p)} (95% interval {f(lo)} to {f(hi)})"
    return prob(p)


# ------------------------------------------------------------------------------ findings
def run_findings(name: str, res: dict) -> list[str]:
    """Plain sentences (already HTML-escaped) about one run, generated from its numbers."""
    out = []
    ents = res["entities"]
    years = res["years"]
    last = years[-1]
    pd = [row[-1] for row in res["pd"]]
    cont = res.get("p_contagious") or []
    i = max(range(len(ents)), key=lambda k: pd[k] if _finite(pd[k]) else -1)
    s = (f"In <b>{esc(name)}</b>, the entity most likely to default by the end of {last} is "
         f"<b>{esc(ents[i])}</b>, with a probability of {_ci(pd[i], res['pd_lo'][i][-1], res['pd_hi'][i][-1])}")
    if i < len(cont) and _finite(pd[i]) and pd[i] > 0 and _finite(cont[i]):
        share = cont[i] / pd[i]
        if share < 0.005:
            s += "; all of its defaults are fundamental (none is caused by another entity's failure)."
        elif share > 0.995:
            s += "; all of its defaults are contagious (caused by other entities' failures)."
        else:
            s += (f"; {pct(share, 0)} of its defaults are contagious (caused by other entities' failures) "
                  f"and {pct(1 - share, 0)} fundamental.")
    else:
        s += "."
    out.append(s)
    shares = [(cont[k] / pd[k], k) for k in range(len(ents))
              if k < len(cont) and _finite(pd[k]) and pd[k] >= 0.005 and _finite(cont[k])]
    if shares:
        sh, k = max(shares)
        if k != i and sh > 0.5:
            out.append(f"<b>{esc(ents[k])}</b> is the clearest contagion victim: {pct(sh, 0)} of its "
                       f"defaults (PD {prob(pd[k])}) happen because others fail first.")
    safe = [ents[k] for k in range(len(ents)) if _finite(pd[k]) and pd[k] < 0.001]
    if safe:
        out.append("Below 0.1% probability of default by the horizon: " + ", ".join(f"<b>{esc(e)}</b>" for e in safe)
                   + ".")
    lab = res["lab"]
    gap = res.get("p_gap") or []
    if gap and any(_finite(g) for g in gap) and max(g for g in gap if _finite(g)) <= 0:
        out.append(f"The lab (<b>{esc(lab)}</b>) never faces an unfunded funding gap: none on any of the "
                   f"{int(res.get('paths') or 0):,} paths.")
    elif gap and any(_finite(g) for g in gap):
        k = max(range(len(gap)), key=lambda j: gap[j] if _finite(gap[j]) else -1)
        need = res.get("p_need") or [None] * len(gap)
        s = (f"The lab (<b>{esc(lab)}</b>) is most likely to face an unfunded funding gap in {years[k]}: "
             f"{_ci(gap[k], res['p_gap_lo'][k], res['p_gap_hi'][k])}")
        if _finite(need[k]):
            s += f"; it needs new outside funding that year with probability {prob(need[k])}"
        if _finite((res.get("mean_need") or [None] * len(gap))[k]):
            s += f" (mean need {_money(res['mean_need'][k])})"
        out.append(s + ".")
    rev, spend = res.get("revenue_pct"), res.get("committed_spend")
    fp = res.get("fan_percentiles") or []
    if rev and spend and 50 in fp:
        med = rev[fp.index(50)]
        below = [t for t in range(len(spend)) if _finite(med[t]) and _finite(spend[t]) and med[t] < spend[t]]
        if below:
            spy = res["steps_per_year"]
            first = years[0] + below[0] // spy
            out.append(f"Median revenue falls short of the committed compute spend in {len(below)} of "
                       f"{len(spend)} quarters, from {first}; the 95th percentile peaks at "
                       f"{_money(max(v for v in rev[-1] if _finite(v)))} a year.")
        else:
            out.append("Median revenue covers the committed compute spend in every quarter.")
    out.append(f"The probability that two or more entities default by the end of {last} is "
               f"{_ci(res.get('p2'), res.get('p2_lo'), res.get('p2_hi'))}.")
    if _finite(res.get("loss_mean")):
        s = f"Losses to outside creditors average {_money(res['loss_mean'])}"
        if _finite(res.get("loss_mean_se")):
            s += f" (standard error {_money(res['loss_mean_se'])})"
        if _finite(res.get("loss_var99")):
            s += f"; in the worst 1% of paths they exceed {_money(res['loss_var99'])} (VaR 99%)"
        if _finite(res.get("loss_es99")):
            s += f" and average {_money(res['loss_es99'])} (expected shortfall 99%)"
        out.append(s + ".")
    return out


def comparison_findings(runs: dict) -> list[str]:
    if len(runs) < 2:
        return []
    out = []
    p2 = {n: r.get("p2") for n, r in runs.items() if _finite(r.get("p2"))}
    if p2:
        lo, hi = min(p2, key=p2.get), max(p2, key=p2.get)
        out.append(f"Across the {len(runs)} runs, P(2+ defaults) ranges from {prob(p2[lo])} (<b>{esc(lo)}</b>) "
                   f"to {prob(p2[hi])} (<b>{esc(hi)}</b>).")
    lab_pd = {}
    for n, r in runs.items():
        if r["lab"] in r["entities"]:
            v = r["pd"][r["entities"].index(r["lab"])][-1]
            if _finite(v):
                lab_pd[n] = v
    if lab_pd:
        hi = max(lab_pd, key=lab_pd.get)
        lo = min(lab_pd, key=lab_pd.get)
        out.append(f"The lab's probability of default by the horizon is highest in <b>{esc(hi)}</b> "
                   f"({prob(lab_pd[hi])}) and lowest in <b>{esc(lo)}</b> ({prob(lab_pd[lo])}).")
    return out


def sensitivity_findings(tables: list[dict]) -> list[str]:
    from sim.plots.compare import metric_label, tornado_rows

    out = []
    for t in tables:
        rows = tornado_rows(t["rows"])
        if not rows:
            continue
        r = rows[0]
        label, unit = metric_label(t["metric"])

        def f(v, unit=unit):
            return prob(v) if unit == "probability" else (_money(v) if unit == "$B" else f"{v:.3g}")

        out.append(f"{esc(label)} is most sensitive to <b>{esc(r['param'])}</b>: it moves from "
                   f"{f(r['metric_low'])} to {f(r['metric_high'])} as the parameter goes from "
                   f"{esc(r.get('low_value'))} to {esc(r.get('high_value'))}.")
    return out


# ------------------------------------------------------------------------------ tables
def comparison_table(runs: dict) -> str:
    head = ["Run", "Scenario", "Paths", "Seed", "P(2+ defaults)", "Lab PD", "Most likely to default",
            "Peak P(funding gap)", "Expected loss", "VaR 99%", "ES 99%"]
    same = all(name == r.get("scenario") for name, r in runs.items())  # then one name column is enough
    if same:
        head.pop(1)
    rows = []
    for name, r in runs.items():
        ents = r["entities"]
        pd = [row[-1] for row in r["pd"]]
        lab_i = ents.index(r["lab"]) if r["lab"] in ents else 0
        top = max(range(len(ents)), key=lambda k: pd[k] if _finite(pd[k]) else -1)
        gap = r.get("p_gap") or []
        gk = max(range(len(gap)), key=lambda j: gap[j] if _finite(gap[j]) else -1) if gap else None
        cells = [
            esc(name), esc(r.get("scenario")), f"{int(r.get('paths') or 0):,}", esc(r.get("seed")),
            _cell_ci(r.get("p2"), r.get("p2_lo"), r.get("p2_hi")),
            _cell_ci(pd[lab_i], r["pd_lo"][lab_i][-1], r["pd_hi"][lab_i][-1]),
            f"{esc(ents[top])} ({prob(pd[top])})",
            _peak_gap(gap, gk, r["years"]),
            _money(r.get("loss_mean")), _money(r.get("loss_var99")), _money(r.get("loss_es99")),
        ]
        if same:
            cells.pop(1)
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return ('<div class="scroll"><table class="data"><thead><tr>' + "".join(f"<th>{h}</th>" for h in head)
            + "</tr></thead><tbody>" + "".join(rows) + "</tbody></table></div>")


def _peak_gap(gap, k, years) -> str:
    """'28.4% in 2028', '0.013% in 2029', or 'none' when no path has a gap."""
    if k is None or not _finite(gap[k]):
        return "n/a"
    if gap[k] <= 0:
        return "none"
    return f"{prob(gap[k])} in {years[k]}"


def _cell_ci(p, lo, hi) -> str:
    if not _finite(p):
        return "n/a"
    if not (_finite(lo) and _finite(hi)):
        return prob(p)
    d = prob_decimals(p, lo, hi)

    def f(v):
        return "0%" if v == 0 else f"{100 * v:.{d}f}%"

    return f'{f(p)} <span class="ci">[{f(lo)}, {f(hi)}]</span>'


def entity_table(res: dict) -> str:
    head = ["Entity", f"PD by {res['years'][-1]}", "95% interval", "Fundamental", "Contagious",
            "Loss given default", "Expected loss caused", "Expected lost backlog"]
    rows = []
    small = _rare_small(res)
    for i, e in enumerate(res["entities"]):
        lgd = (res.get("lgd") or [None] * len(res["entities"]))[i]
        p, lo, hi = res["pd"][i][-1], res["pd_lo"][i][-1], res["pd_hi"][i][-1]
        pd_cell, ci_cell = prob(p, lo, hi), f"{prob(lo, p, hi)} to {prob(hi, p, lo)}"
        if e in small:  # no plain path saw it default; importance sampling resolves it
            b = small[e]
            pd_cell = f"{prob(b['pd'], b['lo'], b['hi'])}<sup>IS</sup>"
            ci_cell = f"{prob(b['lo'], b['pd'], b['hi'])} to {prob(b['hi'], b['pd'], b['lo'])}"
        cells = [esc(e), pd_cell, ci_cell,
                 prob(res["p_fundamental"][i]), prob(res["p_contagious"][i]),
                 pct(lgd, 0) if _finite(lgd) else "-", _money(res["expected_loss"][i]),
                 _money(res["lost_backlog"][i])]
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    note = ""
    if small:
        note = ('<p class="note"><sup>IS</sup> No plain path saw this default; the PD (with its 95% interval, '
                "normal approximation) is an importance-sampling estimate (<code>bubblesim run --rare</code>, "
                "rare.json): " + "; ".join(f"{esc(e)}: {b['hits']:,} of {b['paths']:,} tilted paths towards "
                                           f"{esc(b['target'])}" for e, b in small.items()) + ".</p>")
    return ('<div class="scroll"><table class="data"><thead><tr>' + "".join(f"<th>{h}</th>" for h in head)
            + "</tr></thead><tbody>" + "".join(rows) + "</tbody></table></div>" + note)


def _rare_small(res: dict) -> dict:
    """Importance-sampling PDs of the entities no plain path saw default (sim.engine.rare.best_small_pds)."""
    runs = res.get("_rare")
    if not runs:
        return {}
    from sim.engine.rare import best_small_pds

    paths = int(res.get("paths") or 0)
    hits = [round(res["pd"][i][-1] * paths) for i in range(len(res["entities"]))]
    return {e: b for e, b in best_small_pds(runs, hits).items() if e in res["entities"]}
