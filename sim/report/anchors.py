"""Report tables for issue 10: the lab's sources and uses by year (from a run's
results.json) and the section "How the model compares with published figures and market
prices" (from the anchors.json that `bubblesim anchors --json` writes into the results
folder; sim.studies.anchors computes it)."""

from __future__ import annotations

import json
import math
import os

from sim.report.findings import esc

ANCHORS_JSON = "anchors.json"
TITLE = "How the model compares with published figures and market prices"
_LABELS = {"revenue": "Revenue", "opex": "Non-compute opex", "compute_paid": "Compute paid",
           "debt_service": "Debt service", "equity_raised": "New equity raised",
           "investment_received": "Investment tranches received", "other": "Other (residual)",
           "cash_change": "Change in cash", "burn": "Burn (financing - change in cash)",
           "funding_need": "Funding need (before raising)"}


def _num(x, digits=1) -> str:
    return "n/a" if not isinstance(x, (int, float)) or not math.isfinite(x) else f"{x:,.{digits}f}"


def flows_table(res: dict) -> str:
    """The lab's sources and uses by year, $B: mean, and median [p5, p95] of the per-path
    yearly totals; then the cumulative funding need and burn to each year end. '' for
    results without these outputs (older runs)."""
    names, mean, pct = res.get("flow_names"), res.get("flow_mean"), res.get("flow_pct")
    if not names or not mean or not pct:
        return ""
    ps = list(res.get("fan_percentiles") or [5, 10, 25, 50, 75, 90, 95])
    i5, i50, i95 = ps.index(5), ps.index(50), ps.index(95)
    years = res["years"]
    head = "".join(f"<th>{y}</th>" for y in years)

    def cell(m, p, k):
        return (f"<td>{_num(m[k])}<br><span class=\"note\">{_num(p[i50][k])} "
                f"[{_num(p[i5][k])}, {_num(p[i95][k])}]</span></td>")

    rows = [f"<tr><td>{esc(_LABELS.get(n, n))}</td>" + "".join(cell(mean[f], pct[f], k) for k in range(len(years)))
            + "</tr>" for f, n in enumerate(names)]
    for label, m, p in (("Cumulative funding need to year end", res.get("cum_need_mean"), res.get("cum_need_pct")),
                        ("Cumulative burn to year end", res.get("cum_burn_mean"), res.get("cum_burn_pct"))):
        if m and p:
            rows.append(f"<tr><td><b>{esc(label)}</b></td>" + "".join(cell(m, p, k) for k in range(len(years)))
                        + "</tr>")
    lab = esc(res.get("lab", "the lab"))
    return (f"<h3>{lab}: sources and uses by year, $B</h3>"
            '<p class="note">Each cell: the mean over paths, then the median [5th, 95th percentile] of the '
            "per-path totals. Means add up across rows; percentiles do not. Cumulative rows are per-path "
            "sums from the start of the run (docs/model.md, section 11).</p>"
            f"<table><tr><th></th>{head}</tr>{''.join(rows)}</table>")


def load_anchors(results_dir: str) -> dict | None:
    path = os.path.join(results_dir, ANCHORS_JSON)
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def anchors_html(results_dir: str) -> str:
    """The anchors section body, or a note saying how to produce it."""
    rep = load_anchors(results_dir)
    if rep is None:
        return ('<p class="note">Not computed for these results: run <code>bubblesim anchors --json '
                f"{esc(os.path.join(os.path.basename(os.path.normpath(results_dir)), ANCHORS_JSON))}</code> "
                "and rebuild the report.</p>")
    out = [f'<p class="note">From <code>bubblesim anchors</code>: {int(rep.get("paths") or 0):,} paths a '
           f'scenario, seed {esc(rep.get("seed"))}. Verdicts are within the stated tolerance; CDS-implied '
           "default probabilities are risk-neutral (constant hazard spread / (1 - recovery)) and exceed "
           "physical ones. Sources: docs/sources.md.</p>",
           "<table><tr><th>Outside figure</th><th>Scenario</th><th>Outside</th><th>Model [interval]</th>"
           "<th>Difference</th><th>Verdict</th></tr>"]
    for r in rep.get("rows", []):
        out.append(f"<tr><td>{esc(r['figure'])}<br><span class=\"note\">{esc(r.get('note'))}</span></td>"
                   f"<td>{esc(r['scenario'])}</td><td>{esc(r['outside'])}</td><td>{esc(r['model'])}</td>"
                   f"<td>{esc(r['difference'])}</td><td><b>{esc(r['verdict'])}</b></td></tr>")
    out.append("</table>")
    lines = rep.get("hsbc_lines") or []
    if lines:
        out.append("<h3>HSBC's sources and uses through 2030 beside the model's (hsbc.toml, need measured "
                   "with the raising limit lifted; model: means over paths), $B</h3><table>"
                   "<tr><th>Line</th><th>HSBC</th><th>Model</th></tr>")
        for name, hv, mv in lines:
            out.append(f"<tr><td>{esc(name)}</td><td>{_num(hv)}</td><td>{_num(mv)}</td></tr>")
        out.append("</table><p class=\"note\">HSBC's components as published do not add up to its headline "
                   "(792 - 282 - 26 - 24 - 17.5 = 442.5, not 207). Reading taken: the components are flows "
                   "through 2030, so the $207B needs about $235B of sources the reports do not itemise; "
                   "the model's need is compared with both.</p>")
    terms = rep.get("pd_terms") or []
    if terms:
        try:
            from sim.plots.anchors import pd_vs_market
            from sim.report.gallery import png_data_uri

            uri = png_data_uri(pd_vs_market([[float("nan") if v is None else v for v in r] for r in terms]))
            out.append(f'<figure><img src="{uri}" alt="Model default probabilities beside CDS-implied and '
                       'historical bands, per partner"><figcaption>The model\u2019s cumulative default '
                       "probability (base, 95% interval) beside the risk-neutral probability implied by the "
                       "partner\u2019s 5-year CDS and the speculative-grade historical band.</figcaption></figure>")
        except Exception as err:  # a figure must not cost the report its table
            out.append(f'<p class="note">Figure not drawn: {esc(err)}</p>')
        out.append("<h3>Default probability term structure (base): model beside market and history, %</h3>"
                   "<table><tr><th>Entity</th><th>Year</th><th>Model [95%]</th><th>CDS-implied</th>"
                   "<th>Speculative-grade history</th></tr>")
        for name, y, pd, lo, hi, a, b, c, d in terms:
            def band(x, z):
                return "" if x is None or not math.isfinite(x) else f"{100 * x:.1f} to {100 * z:.1f}"
            out.append(f"<tr><td>{esc(name)}</td><td>{y}</td><td>{100 * pd:.2f} [{100 * lo:.2f}, {100 * hi:.2f}]"
                       f"</td><td>{band(a, b)}</td><td>{band(c, d)}</td></tr>")
        out.append("</table>")
    return "".join(out)
