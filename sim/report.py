"""The report: one self-contained HTML file (and optionally a PDF) from results on disk.

    bubblesim report results/ --out report/ [--pdf]

Reads every ``results.json`` under the folder (a single run folder works too), the batch
``manifest.json`` if there is one, and any sensitivity or sweep tables (see
`sim.plots.inputs`). Writes the figures to ``<out>/figures/`` (PNG at 300 dpi and SVG) and
``<out>/report.html``: key findings in plain sentences generated from the numbers, the
comparison table, every figure (embedded as base64 data URIs), the method with the model's
equations (docs/model.md), the scenario assumptions with their sources (the scenario TOML
text with its comments) and the reproducibility manifest. No scripts, no external
requests (a Content-Security-Policy forbids both), and every string that comes from a
scenario or results file is HTML-escaped.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import io
import json
import math
import os
import re
import shutil
import subprocess
import tempfile
from typing import Callable

from . import __version__
from .plots import inputs as _inputs
from .plots.style import pct

# single-run figures get a section per run for at most this many runs; beyond it, runs that
# are sweep variants are covered by the comparison and sweep figures only
MAX_RUN_SECTIONS = 8
MAX_COMPARED = 14
EMBED_DPI = 150  # resolution of the PNGs embedded in the HTML (the files in figures/ are 300 dpi)

FIGURE_CAPTIONS = {
    "revenue_fan": "The lab's annualised revenue by quarter: percentile bands (darkest: 25th-75th), "
                   "the median, and the compute spend it has committed to by contract.",
    "funding_gap": "Top: the lab's need for new outside funding each quarter (percentile bands). "
                   "Bottom: probability of an unfunded gap in each year (bars, 95% interval) and of "
                   "needing any new funding (line).",
    "pd_term_structure": "Cumulative probability of default by each year end, per entity, with 95% "
                         "Wilson intervals.",
    "default_decomposition": "Probability of default by the horizon, split into fundamental defaults "
                             "(the entity would have failed even if every counterparty had paid) and "
                             "contagious ones (Elsinger-Lehar-Summer).",
    "cascade_size": "Number of entities in default by the horizon, and the probability of k or more.",
    "loss_exceedance": "Probability that total losses to outside creditors exceed x, with the 99% "
                       "value at risk and expected shortfall.",
    "network_map": "The financing web at the start: nodes sized by balance sheet and shaded by "
                   "probability of default; links by kind, width by dollars committed.",
}


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
    return f"${x:,.0f}B" if abs(x) >= 100 else f"${x:,.1f}B"


def _ci(p, lo, hi, digits: int = 1) -> str:
    if not _finite(p):
        return "n/a"
    if _finite(lo) and _finite(hi):
        return f"{pct(p, digits)} (95% interval {pct(lo, digits)} to {pct(hi, digits)})"
    return pct(p, digits)


def _png_data_uri(fig, dpi: int = EMBED_DPI) -> str:
    import matplotlib.style

    from .plots.style import STYLE_PATH

    buf = io.BytesIO()
    with matplotlib.style.context(STYLE_PATH):
        fig.savefig(buf, format="png", dpi=dpi)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


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
                       f"defaults (PD {pct(pd[k])}) happen because others fail first.")
    safe = [ents[k] for k in range(len(ents)) if _finite(pd[k]) and pd[k] < 0.001]
    if safe:
        out.append("Below 0.1% probability of default by the horizon: " + ", ".join(f"<b>{esc(e)}</b>" for e in safe)
                   + ".")
    lab = res["lab"]
    gap = res.get("p_gap") or []
    if gap and any(_finite(g) for g in gap):
        k = max(range(len(gap)), key=lambda j: gap[j] if _finite(gap[j]) else -1)
        need = res.get("p_need") or [None] * len(gap)
        s = (f"The lab (<b>{esc(lab)}</b>) is most likely to face an unfunded funding gap in {years[k]}: "
             f"{_ci(gap[k], res['p_gap_lo'][k], res['p_gap_hi'][k])}")
        if _finite(need[k]):
            s += f"; it needs new outside funding that year with probability {pct(need[k])}"
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
        out.append(f"Across the {len(runs)} runs, P(2+ defaults) ranges from {pct(p2[lo])} (<b>{esc(lo)}</b>) "
                   f"to {pct(p2[hi])} (<b>{esc(hi)}</b>).")
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
                   f"({pct(lab_pd[hi])}) and lowest in <b>{esc(lo)}</b> ({pct(lab_pd[lo])}).")
    return out


def sensitivity_findings(tables: list[dict]) -> list[str]:
    from .plots.compare import metric_label, tornado_rows

    out = []
    for t in tables:
        rows = tornado_rows(t["rows"])
        if not rows:
            continue
        r = rows[0]
        label, unit = metric_label(t["metric"])

        def f(v):
            return pct(v) if unit == "probability" else (_money(v) if unit == "$B" else f"{v:.3g}")

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
            f"{esc(ents[top])} ({pct(pd[top])})",
            f"{pct(gap[gk])} in {r['years'][gk]}" if gk is not None and _finite(gap[gk]) else "n/a",
            _money(r.get("loss_mean")), _money(r.get("loss_var99")), _money(r.get("loss_es99")),
        ]
        if same:
            cells.pop(1)
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return ('<div class="scroll"><table class="data"><thead><tr>' + "".join(f"<th>{h}</th>" for h in head)
            + "</tr></thead><tbody>" + "".join(rows) + "</tbody></table></div>")


def _cell_ci(p, lo, hi) -> str:
    if not _finite(p):
        return "n/a"
    s = pct(p)
    if _finite(lo) and _finite(hi):
        s += f' <span class="ci">[{pct(lo)}, {pct(hi)}]</span>'
    return s


def entity_table(res: dict) -> str:
    head = ["Entity", f"PD by {res['years'][-1]}", "95% interval", "Fundamental", "Contagious",
            "Loss given default", "Expected loss caused", "Expected lost backlog"]
    rows = []
    for i, e in enumerate(res["entities"]):
        lgd = (res.get("lgd") or [None] * len(res["entities"]))[i]
        cells = [esc(e), pct(res["pd"][i][-1], 2), f"{pct(res['pd_lo'][i][-1], 2)} to {pct(res['pd_hi'][i][-1], 2)}",
                 pct(res["p_fundamental"][i], 2), pct(res["p_contagious"][i], 2),
                 pct(lgd, 0) if _finite(lgd) else "-", _money(res["expected_loss"][i]),
                 _money(res["lost_backlog"][i])]
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return ('<div class="scroll"><table class="data"><thead><tr>' + "".join(f"<th>{h}</th>" for h in head)
            + "</tr></thead><tbody>" + "".join(rows) + "</tbody></table></div>")


# ------------------------------------------------------------------------------ text blocks
def markdown_to_html(text: str) -> str:
    """A small, safe Markdown subset (headings, paragraphs, lists, code, bold, italics);
    everything is escaped first, so no HTML in the source survives."""
    lines = text.splitlines()
    out: list[str] = []
    para: list[str] = []
    items: list[str] = []
    code: list[str] = []
    fence = False

    def inline(s: str) -> str:
        s = esc(s)
        s = re.sub(r"`([^`]+)`", r"<code>\1</code>", s)
        s = re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", s)
        s = re.sub(r"(?<![*\w])\*([^*\s][^*]*)\*(?![*\w])", r"<em>\1</em>", s)
        return s

    def flush():
        if para:
            out.append("<p>" + inline(" ".join(para)) + "</p>")
            para.clear()
        if items:
            out.append("<ul>" + "".join(f"<li>{inline(i)}</li>" for i in items) + "</ul>")
            items.clear()
        if code:
            out.append('<pre class="eq">' + esc("\n".join(code)) + "</pre>")
            code.clear()

    for line in lines:
        if line.strip().startswith("```"):
            if fence:
                flush()
            else:
                flush()
            fence = not fence
            continue
        if fence:
            code.append(line)
            continue
        if line.startswith("<!--"):
            continue
        if line.startswith("    ") and not items and not para:
            code.append(line[4:])
            continue
        if code and line.strip() == "":
            code.append("")
            continue
        if code:
            while code and code[-1] == "":
                code.pop()
            flush()
        m = re.match(r"^(#{1,6})\s+(.*)$", line)
        if m:
            flush()
            level = min(len(m.group(1)) + 2, 6)
            out.append(f"<h{level}>{inline(m.group(2))}</h{level}>")
        elif re.match(r"^\s*[-*]\s+", line):
            if para:
                flush()
            items.append(re.sub(r"^\s*[-*]\s+", "", line))
        elif line.strip() == "":
            flush()
        elif items and line.startswith("  "):
            items[-1] += " " + line.strip()
        else:
            para.append(line.strip())
    flush()
    return "\n".join(out)


_URL = re.compile(r"https?://[^\s\"'<>()\]]+")


def toml_to_html(text: str) -> str:
    """The scenario TOML, escaped, with comments set apart (they hold the sources)."""
    out = []
    for line in text.splitlines():
        code, comment = _split_comment(line)
        piece = esc(code)
        if comment:
            piece += f'<span class="c">{esc(comment)}</span>'
        out.append(piece)
    return '<pre class="toml">' + "\n".join(out) + "</pre>"


def _split_comment(line: str) -> tuple[str, str]:
    quote = None
    i = 0
    while i < len(line):
        ch = line[i]
        if quote:
            if ch == "\\" and quote == '"':
                i += 2
                continue
            if ch == quote:
                quote = None
        elif ch in "\"'":
            quote = ch
        elif ch == "#":
            return line[:i], line[i:]
        i += 1
    return line, ""


def cited_sources(text: str) -> list[str]:
    """The URLs cited in a scenario's comments, in order, without repeats."""
    seen = []
    for line in text.splitlines():
        _, comment = _split_comment(line)
        for url in _URL.findall(comment):
            url = url.rstrip(".,;")
            if url not in seen:
                seen.append(url)
    return seen


def method_html() -> str:
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for path in (os.path.join(root, "docs", "model.md"), os.path.join(os.getcwd(), "docs", "model.md")):
        if os.path.exists(path):
            with open(path, encoding="utf-8") as fh:
                return markdown_to_html(fh.read())
    return markdown_to_html(_METHOD_SUMMARY)


_METHOD_SUMMARY = """\
The lab's annualised revenue follows a log-Euler geometric Brownian motion whose drift decays
from `growth0` to `growth_inf`, with a boom / AI-winter Markov regime:

    ln R_{t+Δ} = ln R_t + (g_t - σ_t²/2) Δ + σ_t √Δ z_R,   g_t = g_∞ + (g_0 - g_∞) 2^(-t/h)

A common AI-sentiment factor (log Ornstein-Uhlenbeck, correlated with revenue) scales every
equity value and the lab's capacity to raise new equity. Each quarter all obligations (compute
contracts, investment tranches, network loans, outside debt service) are cleared jointly with the
Eisenberg-Noe greatest clearing vector with Rogers-Veraart default costs:

    p_i = min(p̄_i, α e_i + β Σ_j Π_ji p_j)  for defaulting i,  p_i = p̄_i otherwise

An entity defaults when it cannot pay in full (liquidity) or its book equity falls below zero
(solvency); each default is fundamental if it would have happened had every network counterparty
paid in full, contagious otherwise (Elsinger-Lehar-Summer). Probabilities carry binomial standard
errors and 95% Wilson intervals; VaR and ES come from a streamed log-spaced loss histogram.
"""


# ------------------------------------------------------------------------------ the report
CSS = """
:root { --ink:#1a1a1a; --muted:#555; --rule:#d9d9d9; --accent:#0072B2; }
* { box-sizing: border-box; }
body { font: 15px/1.5 "DejaVu Sans", Helvetica, Arial, sans-serif; color: var(--ink); margin: 0;
       background: #fff; }
main { max-width: 1060px; margin: 0 auto; padding: 28px 28px 60px; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 20px; margin: 36px 0 8px; padding-bottom: 4px; border-bottom: 2px solid var(--accent); }
h3 { font-size: 17px; margin: 26px 0 6px; }
h4, h5, h6 { font-size: 15px; margin: 18px 0 4px; }
p.meta { color: var(--muted); margin: 0 0 18px; font-size: 13px; }
nav ol { columns: 2; font-size: 14px; }
ul.findings li { margin: 4px 0; }
figure { margin: 18px 0 28px; page-break-inside: avoid; break-inside: avoid; }
figure img { display: block; max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { font-size: 13px; color: var(--muted); margin-top: 4px; }
table.data { border-collapse: collapse; font-size: 13px; margin: 8px 0 16px; }
table.data th, table.data td { border-bottom: 1px solid var(--rule); padding: 4px 8px; text-align: right;
                               vertical-align: top; white-space: nowrap; }
table.data th { background: #f3f3f3; text-align: center; }
table.data td:first-child, table.data td:nth-child(2) { text-align: left; }
.scroll { overflow-x: auto; }
.ci { color: var(--muted); font-size: 12px; white-space: nowrap; }
pre { background: #f7f7f7; border: 1px solid #e5e5e5; padding: 10px; overflow-x: auto; font-size: 12px;
      line-height: 1.35; white-space: pre-wrap; word-break: break-word; }
pre.eq { background: #fbfbfb; font-size: 13px; }
pre.toml .c { color: #3b6e3b; }
code { background: #f3f3f3; padding: 0 3px; font-size: 90%; }
details { margin: 8px 0; }
summary { cursor: pointer; font-weight: bold; }
.desc { background: #f5f9fc; border-left: 4px solid var(--accent); padding: 6px 12px; }
.note { color: var(--muted); font-size: 13px; }
@media print { main { max-width: none; padding: 0; } h2 { page-break-before: auto; } details { display: block; } }
"""


def build_report(results_dir: str, out_dir: str, *, pdf: bool = False, gallery_only: bool = False,
                 log: Callable[[str], None] | None = None) -> dict:
    """Write figures (PNG + SVG) to out_dir/figures and out_dir/report.html (+ report.pdf).

    Returns {"html": path or None, "pdf": path or None, "figures": [paths]}."""
    from .plots import gallery

    log = log or (lambda m: None)
    if gallery_only:
        files = gallery.write_gallery(results_dir, out_dir, log=log)
        return {"html": None, "pdf": None, "figures": files, "errors": []}
    inp = _inputs.load_inputs(results_dir)
    fig_dir = os.path.join(out_dir, "figures")
    made = gallery.render_all(inp, fig_dir, embed=True, log=log, max_run_sections=MAX_RUN_SECTIONS,
                              max_compared=MAX_COMPARED)
    result = {"html": None, "pdf": None, "figures": made["files"], "errors": made["errors"]}
    html_text = render_html(inp, made)
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, "report.html")
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(html_text)
    os.replace(tmp, path)
    result["html"] = path
    log(f"wrote {path} ({len(html_text) / 1e6:.1f} MB, {len(made['files'])} figure files in {fig_dir})")
    if pdf:
        result["pdf"] = html_to_pdf(path, os.path.join(out_dir, "report.pdf"), log=log)
    return result


def _figure_html(item: dict) -> str:
    cap = esc(item.get("caption") or "")
    files = " ".join(f'<a href="figures/{esc(f)}">{esc(os.path.splitext(f)[1][1:].upper())}</a>'
                     for f in item.get("rel_files", []))
    return (f'<figure id="fig-{esc(item["id"])}"><img src="{item["uri"]}" alt="{esc(item["alt"])}" '
            f'width="{item["width"]}" height="{item["height"]}">'
            f"<figcaption>{cap}" + (f' <span class="note">Files: {files}</span>' if files else "")
            + "</figcaption></figure>")


def render_html(inp, made: dict) -> str:
    runs = inp.runs
    primary = inp.primary
    now = _dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    parts = []
    toc = []

    def section(anchor, title):
        toc.append(f'<li><a href="#{anchor}">{esc(title)}</a></li>')
        parts.append(f'<h2 id="{anchor}">{esc(title)}</h2>')

    title = "bubblesim risk report"
    if inp.manifest and inp.manifest.get("batch"):
        title += f": {inp.manifest['batch']}"
    elif len(runs) == 1:
        title += f": {primary}"

    # key findings
    section("findings", "Key findings")
    bullets = run_findings(primary, runs[primary]) + comparison_findings(runs) + sensitivity_findings(inp.sensitivity)
    parts.append('<ul class="findings">' + "".join(f"<li>{b}</li>" for b in bullets) + "</ul>")
    desc = runs[primary].get("description")
    if desc:
        parts.append(f'<p class="desc"><b>Scenario {esc(runs[primary].get("scenario"))}:</b> {esc(desc)}</p>')
    parts.append('<p class="note">Probabilities are Monte Carlo estimates with 95% Wilson intervals; '
                 "money in US$ billions; \u201cby the horizon\u201d means by the end of the last simulated year.</p>")

    # comparison
    section("comparison", "Comparison of runs" if len(runs) > 1 else "Summary table")
    parts.append(comparison_table(runs))
    for item in made["items"]:
        if item["group"] == "comparison":
            parts.append(_figure_html(item))
    for group, heading in (("sensitivity", "Sensitivity (tornado)"), ("sweep", "Parameter sweeps")):
        items = [i for i in made["items"] if i["group"] == group]
        if items:
            section(group, heading)
            parts.extend(_figure_html(i) for i in items)

    # per run
    for name in made["run_sections"]:
        res = runs[name]
        anchor = "run-" + _slug(name)
        section(anchor, f"Run: {name}")
        meta = (f"Scenario {esc(res.get('scenario'))} ({esc((res.get('scenario_hash') or '')[:12])}), seed "
                f"{esc(res.get('seed'))}, {int(res.get('paths') or 0):,} paths, bubblesim "
                f"{esc(res.get('bubblesim_version'))}, run on {esc(res.get('_date'))}.")
        parts.append(f'<p class="meta">{meta}</p>')
        if res.get("description"):
            parts.append(f'<p class="desc">{esc(res["description"])}</p>')
        if name != primary:
            parts.append('<ul class="findings">' + "".join(f"<li>{b}</li>" for b in run_findings(name, res))
                         + "</ul>")
        parts.append(entity_table(res))
        for item in made["items"]:
            if item["group"] == "run" and item["run"] == name:
                parts.append(_figure_html(item))
    skipped = [n for n in runs if n not in made["run_sections"]]
    if skipped:
        parts.append(f'<p class="note">{len(skipped)} further runs (sweep variants) appear in the comparison '
                     "table and figures only: " + ", ".join(esc(n) for n in skipped) + ".</p>")

    # method
    section("method", "Method in brief")
    parts.append(method_html())

    # scenarios
    section("assumptions", "Scenario assumptions and sources")
    parts.append('<p class="note">The scenario files as run, with their comments: each number\u2019s source or '
                 "the assumption behind it. Runs of one scenario file share it.</p>")
    shown = set()
    for name, res in runs.items():
        src = res.get("_scenario_source")
        key = res.get("scenario_hash") if src else None
        variant = res.get("_variant") or {}
        base_key = (variant.get("source") or res.get("scenario"), src)
        if src is None or base_key in shown:
            continue
        shown.add(base_key)
        label = variant.get("source") or f"{res.get('scenario')}.toml"
        parts.append(f"<h3>{esc(res.get('scenario'))} <span class=\"note\">({esc(label)}, "
                     f"hash {esc((key or '')[:12])})</span></h3>")
        if res.get("description"):
            parts.append(f'<p class="desc">{esc(res["description"])}</p>')
        urls = cited_sources(src)
        if urls:
            parts.append(f"<details><summary>Sources cited ({len(urls)})</summary><ol>"
                         + "".join(f'<li><a href="{esc(u)}" rel="noopener noreferrer">{esc(u)}</a></li>' for u in urls)
                         + "</ol></details>")
        parts.append(f"<details{' open' if len(shown) == 1 else ''}><summary>Scenario file</summary>"
                     + toml_to_html(src) + "</details>")
    if not shown:
        parts.append('<p class="note">No scenario.toml next to the results (runs written by an older bubblesim).</p>')

    # reproducibility
    section("reproducibility", "Reproducibility")
    parts.append(reproducibility_html(inp))

    body = "\n".join(parts)
    csp = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{csp}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="bubblesim {esc(__version__)}">
<title>{esc(title)}</title>
<style>{CSS}</style>
</head>
<body>
<main>
<h1>{esc(title)}</h1>
<p class="meta">Generated {esc(now)} by bubblesim {esc(__version__)} from {len(runs)} run{'s' if len(runs) != 1 else ''}
in {esc(os.path.basename(os.path.abspath(inp.root)) or inp.root)}. Every number below is read from the runs' results files.</p>
<nav><ol>{''.join(toc)}</ol></nav>
{body}
</main>
</body>
</html>
"""


def reproducibility_html(inp) -> str:
    parts = []
    rows = []
    for name, r in inp.runs.items():
        info = r.get("run_info") or {}
        variant = r.get("_variant") or {}
        cmd = (f"bubblesim run {variant.get('source') or (r.get('scenario', '?') + '.toml')} "
               f"--paths {r.get('paths')} --seed {r.get('seed')} --chunk-size {info.get('chunk_size', 8192)}")
        if variant.get("overrides"):
            cmd = "(batch variant with overrides " + json.dumps(variant["overrides"], sort_keys=True) + ")"
        cells = [esc(name), esc((r.get("scenario_hash") or "")[:16]), esc(r.get("seed")),
                 f"{int(r.get('paths') or 0):,}", esc(info.get("chunk_size")), esc(info.get("chunks")),
                 esc(r.get("bubblesim_version")), f"<code>{esc(cmd)}</code>"]
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    head = ["Run", "Scenario hash", "Seed", "Paths", "Chunk size", "Chunks", "Version", "Re-run"]
    parts.append('<div class="scroll"><table class="data"><thead><tr>' + "".join(f"<th>{h}</th>" for h in head)
                 + "</tr></thead><tbody>" + "".join(rows) + "</tbody></table></div>")
    parts.append('<p class="note">The same scenario, seed and chunk size give bit-identical results on any '
                 "number of threads.</p>")
    m = inp.manifest
    if m:
        keys = ["bubblesim_version", "git_commit", "git_dirty", "python", "numpy", "numba", "platform", "seed",
                "chunk_size", "stream", "started", "finished", "wall_seconds"]
        items = "".join(f"<tr><th>{esc(k)}</th><td>{esc(m.get(k))}</td></tr>" for k in keys if k in m)
        if m.get("command"):
            cmd = m["command"] if isinstance(m["command"], str) else " ".join(str(c) for c in m["command"])
            items += f"<tr><th>command</th><td><code>{esc(cmd)}</code></td></tr>"
        parts.append(f'<h3>Batch manifest</h3><table class="data">{items}</table>')
        parts.append("<details><summary>manifest.json</summary><pre>"
                     + esc(json.dumps(m, indent=1, sort_keys=True, default=str)) + "</pre></details>")
    else:
        parts.append('<p class="note">No manifest.json (a single run); run information per run:</p>')
        for name, r in inp.runs.items():
            parts.append(f"<details><summary>{esc(name)}: run_info</summary><pre>"
                         + esc(json.dumps({"run_info": r.get("run_info"), "diagnostics": r.get("diagnostics")},
                                          indent=1, sort_keys=True, default=str)) + "</pre></details>")
    return "\n".join(parts)


# ------------------------------------------------------------------------------ PDF
def find_chromium() -> str | None:
    """A Chromium or Chrome executable: $BUBBLESIM_CHROMIUM, else the usual names on PATH."""
    env = os.environ.get("BUBBLESIM_CHROMIUM")
    if env and os.path.exists(env):
        return env
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome"):
        p = shutil.which(name)
        if p:
            return p
    return None


CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-extensions",
                  "--disable-default-apps", "--mute-audio"]


def html_to_pdf(html_path: str, pdf_path: str, log: Callable[[str], None] | None = None,
                timeout: float = 120.0) -> str | None:
    """Print the report to PDF with headless Chromium; None (and a message) if there is none."""
    log = log or (lambda m: None)
    exe = find_chromium()
    if exe is None:
        log("PDF skipped: no Chromium found (apt-get install chromium, or set BUBBLESIM_CHROMIUM)")
        return None
    with tempfile.TemporaryDirectory(prefix="bubblesim-chromium-") as profile:
        cmd = [exe, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--no-pdf-header-footer",
               f"--print-to-pdf={os.path.abspath(pdf_path)}", "file://" + os.path.abspath(html_path)]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        except (OSError, subprocess.TimeoutExpired) as err:
            log(f"PDF skipped: Chromium failed ({err})")
            return None
    if proc.returncode != 0 or not os.path.exists(pdf_path) or os.path.getsize(pdf_path) == 0:
        log(f"PDF skipped: Chromium exited with {proc.returncode}: {proc.stderr.strip()[-300:]}")
        return None
    log(f"wrote {pdf_path}")
    return pdf_path
