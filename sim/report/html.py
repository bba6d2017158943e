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

import datetime as _dt
import json
import os
from typing import Callable

from sim._version import __version__
from sim.plots import inputs as _inputs
from sim.plots.compare import severity_order
from sim.report.anchors import TITLE as anchors_title
from sim.report.anchors import anchors_html, flows_table
from sim.report.browser import html_to_pdf
from sim.report.findings import (
    _slug,
    comparison_findings,
    comparison_table,
    entity_table,
    esc,
    run_findings,
    sensitivity_findings,
)
from sim.report.text import cited_sources, method_html, toml_to_html

MAX_RUN_SECTIONS = 8
MAX_COMPARED = 14


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
                 hi_res: bool = False, workers: int | None = None, legacy: bool = False,
                 log: Callable[[str], None] | None = None) -> dict:
    """Write the figures to out_dir/figures and out_dir/report.html (+ report.pdf).

    Figures are drawn in `workers` processes (default: one per core), once each, as PNG at
    the resolution the page shows them; hi_res=True also writes PNG at 300 dpi and SVG (the
    gallery always does). legacy=True is the old serial path (for benchmarks/bench_report.py).
    Returns {"html": path or None, "pdf": path or None, "figures": [paths], "errors": [...]}."""
    from sim.report import gallery

    log = log or (lambda m: None)
    if gallery_only:
        files = gallery.write_gallery(results_dir, out_dir, log=log, workers=workers)
        return {"html": None, "pdf": None, "figures": files, "errors": []}
    inp = _inputs.load_inputs(results_dir)
    if inp.extra:
        log(f"note: the report covers the {len(inp.runs)} variants of manifest.json; left out, beside them: "
            + ", ".join(inp.extra))
    fig_dir = os.path.join(out_dir, "figures")
    made = gallery.render_all(inp, fig_dir, embed=True, log=log, max_run_sections=MAX_RUN_SECTIONS,
                              max_compared=MAX_COMPARED, hi_res=hi_res, workers=workers, legacy=legacy)
    made["fig_dir"] = fig_dir
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
    if getattr(inp, "extra", None):  # results beside the manifest's variants (see sim.plots.inputs)
        parts.append(f'<p class="note"><b>This report covers the {len(runs)} variants of manifest.json</b> (the '
                     f"same set as summary.csv); {len(inp.extra)} other result folders sit beside them and are "
                     "not shown: " + ", ".join(esc(x) for x in inp.extra) + ".</p>")

    # comparison
    section("comparison", "Comparison of runs" if len(runs) > 1 else "Summary table")
    parts.append(comparison_table({n: runs[n] for n in severity_order(runs)} if len(runs) > 1 else runs))
    if len(runs) > 1:
        parts.append('<p class="note">Runs in the table and the comparison figure: the base scenario first, then '
                     "from the mildest to the most severe (by P(2+ defaults)).</p>")
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
        parts.append(flows_table(res))
        for item in made["items"]:
            if item["group"] == "run" and item["run"] == name:
                parts.append(_figure_html(item))
    skipped = [n for n in runs if n not in made["run_sections"]]
    if skipped:
        parts.append(f'<p class="note">{len(skipped)} further runs (sweep variants) appear in the comparison '
                     "table and figures only: " + ", ".join(esc(n) for n in skipped) + ".</p>")

    from sim.report.importance import find_importance, importance_html

    for k, imp in enumerate(find_importance(inp.root)):
        if k == 0:
            section("importance", "Systemic importance")
        parts.append(importance_html(imp, made.get("fig_dir")))

    section("anchors", anchors_title)
    parts.append(anchors_html(inp.root))

    # method
    section("method", "Method in brief")
    parts.append(method_html())

    # scenarios
    section("assumptions", "Scenario assumptions and sources")
    parts.append('<p class="note">The scenario files as run, with their comments: each number\u2019s source or '
                 "the assumption behind it. Runs of one scenario file share it.</p>")
    shown = set()
    for res in runs.values():
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
                     + toml_to_html(redact_paths(src)) + "</details>")
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


def redact_paths(text: str) -> str:
    """`text` with the user's home folder shown as ~ (absolute `extends` paths as typed, commands):
    a report is shared, its author's user name and folders are not part of it."""
    home = os.path.expanduser("~").rstrip("/")
    if len(home) > 1:
        text = text.replace(home + "/", "~/")
    return text


def reproducibility_html(inp) -> str:
    """The reproducibility section: per run its hash, seed, paths, chunks and a re-run command, and
    the batch manifest. Paths are as the manifest records them (relative to the results folder);
    the home folder is shown as ~."""
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
                 esc(r.get("bubblesim_version")), f"<code>{esc(redact_paths(cmd))}</code>"]
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
            items += f"<tr><th>command</th><td><code>{esc(redact_paths(cmd))}</code></td></tr>"
        parts.append(f'<h3>Batch manifest</h3><table class="data">{items}</table>')
        parts.append('<p class="note">Paths are relative to the results folder.</p>')
        parts.append("<details><summary>manifest.json</summary><pre>"
                     + esc(redact_paths(json.dumps(m, indent=1, sort_keys=True, default=str))) + "</pre></details>")
    else:
        parts.append('<p class="note">No manifest.json (a single run); run information per run:</p>')
        for name, r in inp.runs.items():
            parts.append(f"<details><summary>{esc(name)}: run_info</summary><pre>"
                         + esc(json.dumps({"run_info": r.get("run_info"), "diagnostics": r.get("diagnostics")},
                                          indent=1, sort_keys=True, default=str)) + "</pre></details>")
    return "\n".join(parts)
