"""Render every figure a results folder supports, for the report and for the committed
gallery `plots/`.

Regenerate the gallery (after `bubblesim batch scenarios/ --out results/`):

    bubblesim report results/ --out plots/ --gallery-only

or from Python: ``sim.report.gallery.write_gallery("results", "plots")``. The gallery holds
the single-run figures of the primary run (the scenario named "base" if any, else the
first) plus the cross-run figures (comparison, tornado, sweeps), each as PNG (300 dpi)
and SVG, and an index README.md.
"""

from __future__ import annotations

import base64
import io
import os
import re
from typing import Callable

from sim.plots import compare, figures
from sim.plots.inputs import ReportInputs, load_inputs
from sim.plots.style import save_figure

GALLERY_COMMAND = "bubblesim report results/ --out plots/ --gallery-only"


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


def _png_data_uri(fig, dpi: int = EMBED_DPI) -> str:
    import matplotlib.style

    from sim.plots.style import STYLE_PATH

    buf = io.BytesIO()
    with matplotlib.style.context(STYLE_PATH):
        fig.savefig(buf, format="png", dpi=dpi)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _slug(name: str) -> str:
    return (re.sub(r"[^A-Za-z0-9._=-]+", "_", name).strip("._") or "run")[:80]


def render_all(inp: ReportInputs, out_dir: str, *, embed: bool = True, flat: bool = False,
               log: Callable[[str], None] | None = None, max_run_sections: int = 8,
               max_compared: int = 14) -> dict:
    """Draw and save every figure; return {"files", "items", "run_sections", "errors"}.

    flat=True (the gallery): the primary run's figures at the top of out_dir, other runs'
    single-run figures skipped. embed=True: each item also carries a PNG data URI."""
    log = log or (lambda m: None)
    made = {"files": [], "items": [], "run_sections": [], "errors": []}
    runs = inp.runs

    def emit(fig, group, name, sub, caption, alt, run=None):
        folder = os.path.join(out_dir, sub) if sub else out_dir
        files = save_figure(fig, folder, name)
        made["files"].extend(files)
        item = {"id": (f"{sub}-" if sub else "") + name, "group": group, "run": run, "caption": caption,
                "alt": alt, "rel_files": [os.path.relpath(f, out_dir).replace(os.sep, "/") for f in files]}
        if embed:

            item["uri"] = _png_data_uri(fig, EMBED_DPI)
            w, h = fig.get_size_inches()
            item["width"], item["height"] = int(round(w * EMBED_DPI)), int(round(h * EMBED_DPI))
        made["items"].append(item)

    def attempt(label, fn):
        try:
            fn()
        except Exception as err:  # one bad input must not sink the whole report
            msg = f"figure {label} skipped: {type(err).__name__}: {err}"
            made["errors"].append(msg)
            log(msg)

    # which runs get their own figures
    primary = inp.primary
    if flat:
        sections = [primary]
    else:
        plain = [n for n in runs if not (runs[n].get("_variant") or {}).get("overrides")]
        sections = list(runs) if len(runs) <= max_run_sections else ([primary] + [n for n in plain if n != primary])
        sections = sections[:max_run_sections]
    made["run_sections"] = sections


    for name in sections:
        res = runs[name]
        sub = "" if flat else _slug(name)
        for fig_name, fn in figures.SINGLE_RUN_FIGURES.items():
            def one(fig_name=fig_name, fn=fn, res=res, sub=sub, name=name):
                fig = fn(res)
                emit(fig, "run", fig_name, sub, FIGURE_CAPTIONS.get(fig_name, ""),
                     f"{fig_name.replace('_', ' ')} for {name}", run=name)
            attempt(f"{fig_name} ({name})", one)

    if len(runs) >= 2:
        compared = runs
        if len(runs) > max_compared:
            plain = {n: r for n, r in runs.items() if not (r.get("_variant") or {}).get("overrides")}
            compared = plain if len(plain) >= 2 else dict(list(runs.items())[:max_compared])
            compared = dict(list(compared.items())[:max_compared])

        def comp():
            fig = compare.scenario_comparison(compared)
            emit(fig, "comparison", "scenario_comparison", "", "Probability of default by entity and run on one "
                 "shared colour scale, and the key system metrics with 95% intervals.",
                 "scenario comparison heatmap and bars")
        attempt("scenario_comparison", comp)

    meta = runs[primary]
    for k, t in enumerate(inp.sensitivity):
        def tor(t=t, k=k):
            fig = compare.tornado(t["rows"], metric=t["metric"], base=t.get("base"), meta=meta)
            name = "tornado" if len(inp.sensitivity) == 1 else f"tornado-{_slug(t['name'])}"
            emit(fig, "sensitivity", name, "", f"One-at-a-time sensitivity of {t['metric']} "
                 f"({t['name']}): bars sorted by swing.", f"tornado chart of {t['metric']}")
        attempt(f"tornado {t['name']}", tor)

    for s in inp.sweeps:
        def sw(s=s):
            fig = compare.sweep_heatmap(s["rows"], metric=s["metric"], x=s.get("x"), y=s.get("y"),
                                        meta=s.get("runs") or meta)
            name = f"sweep-{_slug(s['name'])}-{_slug(s['metric'])}"
            emit(fig, "sweep", name, "", f"{s['metric']} over the swept parameters ({s['name']}).",
                 f"sweep heatmap of {s['metric']}")
        attempt(f"sweep {s['name']} {s['metric']}", sw)
    return made


def write_index(inp: ReportInputs, out_dir: str, made: dict) -> str:
    """A README.md listing the gallery's figures and the command that regenerates them."""
    lines = ["# Figure gallery", "",
             "Generated from the results of the shipped scenarios; do not edit by hand. Regenerate with:", "",
             "    bubblesim batch scenarios/ --out results/", f"    {GALLERY_COMMAND}", "",
             f"Single-run figures are from the run `{inp.primary}`; the others compare all runs.", ""]
    for item in made["items"]:
        png = next((f for f in item["rel_files"] if f.endswith(".png")), None)
        svg = next((f for f in item["rel_files"] if f.endswith(".svg")), None)
        if png:
            lines.append(f"- [{item['id']}]({png}) ([SVG]({svg})): {item['caption']}")
    if made["errors"]:
        lines += ["", "Skipped:", *[f"- {e}" for e in made["errors"]]]
    path = os.path.join(out_dir, "README.md")
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n")
    return path


def write_gallery(results_dir: str, out_dir: str, log: Callable[[str], None] | None = None) -> list[str]:
    """Regenerate the committed gallery in out_dir from the results in results_dir (never
    re-simulated); returns the files written (figures and README.md)."""
    inp = load_inputs(results_dir)
    os.makedirs(out_dir, exist_ok=True)
    made = render_all(inp, out_dir, embed=False, flat=True, log=log)
    return made["files"] + [write_index(inp, out_dir, made)]
