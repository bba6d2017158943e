"""Render every figure a results folder supports, for the report and for the committed
gallery `plots/`.

Regenerate the gallery (after `bubblesim batch scenarios/ --out results/`):

    bubblesim report results/ --out plots/ --gallery-only

or from Python: ``sim.report.gallery.write_gallery("results", "plots")``. The gallery holds
the single-run figures of the primary run (the scenario named "base" if any, else the
first) plus the cross-run figures (comparison, tornado, sweeps), each as PNG (300 dpi)
and SVG, and an index README.md.

Speed (benchmarks/bench_report.py). Each figure is one job, rendered in a pool of worker
processes (matplotlib holds the GIL, so threads would not help); results come back in job
order, so the report is the same whatever the number of workers. The report's figures are
drawn once, as PNG at the resolution the page shows them (`EMBED_WIDTH_PX` wide): the
bytes written to figures/ are the bytes embedded in the HTML. PNG at 300 dpi and SVG are
written only on request (`hi_res=True`, `bubblesim report --hi-res`) and for the gallery;
the embedded copy is then scaled down from the 300 dpi PNG, not drawn again.
"""

from __future__ import annotations

import base64
import io
import multiprocessing
import os
import re
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Callable

from sim.io import atomic_write
from sim.plots import compare, figures
from sim.plots.inputs import ReportInputs, load_inputs
from sim.plots.style import png_bytes, save_figure

GALLERY_COMMAND = "bubblesim report results/ --out plots/ --gallery-only"

EMBED_WIDTH_PX = 1000  # the report's figure column: <main> is 1060 CSS px wide less 2 x 28 px padding
EMBED_MAX_DPI = 150  # narrow figures are not drawn finer than this
HI_RES_DPI = 300
LEGACY_EMBED_DPI = 150  # the embedded PNGs of the old path (a second drawing of each figure)

FIGURE_CAPTIONS = {
    "revenue_fan": "The lab's annualised revenue by quarter: percentile bands (darkest: 25th-75th), "
                   "the median, and the compute spend it has committed to by contract.",
    "funding_gap": "Top: the lab's need for new outside funding each quarter (percentile bands). "
                   "Bottom: probability of an unfunded gap in each year (bars, 95% interval) and of "
                   "needing any new funding (line).",
    "pd_term_structure": "Left: cumulative probability of default by each year end, per entity, with 95% "
                         "Wilson intervals. Right: the annual (marginal) probability of default of those "
                         "still standing at the start of each year (the hazard), with 95% intervals.",
    "default_decomposition": "Probability of default by the horizon with its 95% interval, split into "
                             "fundamental defaults (the entity would have failed even if every counterparty "
                             "had paid) and contagious ones (Elsinger-Lehar-Summer).",
    "cascade_size": "Left: number of entities in default by the horizon (95% intervals) and P(2 or more). "
                    "Right: the expected loss to outside creditors each defaulter causes, with its loss "
                    "given default.",
    "loss_exceedance": "Probability that total losses to outside creditors exceed x (log-log axes, the "
                       "same convention for every run), with its 95% Monte Carlo band, the 99% value at "
                       "risk and expected shortfall; dashed where fewer than 10 paths lie beyond x.",
    "network_map": "The financing web at the start: nodes sized by balance sheet and shaded by "
                   "probability of default (0: pale grey); links by kind, width and label by dollars "
                   "committed, the arrow at the middle of each link.",
}


@dataclass(frozen=True)
class RenderOptions:
    """How figures are written.

    hi_res: PNG at 300 dpi and SVG in the folder (else one PNG at the resolution shown).
    embed: return each figure as a PNG data URI for the HTML.
    workers: processes drawing figures (None: one per available core; 1: in this process).
    legacy: the old path, kept for benchmarks/bench_report.py only: serial, PNG 300 dpi +
    SVG, and a second drawing of every figure at 150 dpi for the HTML."""

    hi_res: bool = False
    embed: bool = True
    workers: int | None = None
    legacy: bool = False


def shown_dpi(fig) -> float:
    """The dpi at which the figure is as wide as the report shows it (at most 150)."""
    return min(float(EMBED_MAX_DPI), EMBED_WIDTH_PX / fig.get_figwidth())


def available_cpus() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))


def _slug(name: str) -> str:
    return (re.sub(r"[^A-Za-z0-9._=-]+", "_", name).strip("._") or "run")[:80]


def _uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def png_data_uri(fig) -> str:
    """A figure as a PNG data URI at the width the report shows it (for figures drawn outside the jobs)."""
    return _uri(png_bytes(fig, shown_dpi(fig)))


# ------------------------------------------------------------------------------ jobs
def plan_jobs(inp: ReportInputs, *, flat: bool = False, max_run_sections: int = 8,
              max_compared: int = 14) -> tuple[list[dict], list[str]]:
    """The figures to draw, in report order, as plain dicts (picklable), and the runs that
    get a section of their own.

    flat=True (the gallery): the primary run's figures at the top of the folder, other
    runs' single-run figures skipped."""
    runs = inp.runs
    primary = inp.primary
    if flat:
        sections = [primary]
    else:
        plain = [n for n in runs if not (runs[n].get("_variant") or {}).get("overrides")]
        sections = list(runs) if len(runs) <= max_run_sections else ([primary] + [n for n in plain if n != primary])
        sections = sections[:max_run_sections]
    jobs: list[dict] = []
    for name in sections:
        sub = "" if flat else _slug(name)
        for fig_name in figures.SINGLE_RUN_FIGURES:
            jobs.append({"kind": "run", "name": fig_name, "sub": sub, "run": name, "group": "run",
                         "label": f"{fig_name} ({name})", "caption": FIGURE_CAPTIONS.get(fig_name, ""),
                         "alt": f"{fig_name.replace('_', ' ')} for {name}"})
    if len(runs) >= 2:
        compared = list(runs)
        if len(runs) > max_compared:
            plain = [n for n, r in runs.items() if not (r.get("_variant") or {}).get("overrides")]
            compared = (plain if len(plain) >= 2 else list(runs))[:max_compared]
        jobs.append({"kind": "comparison", "name": "scenario_comparison", "sub": "", "run": None,
                     "group": "comparison", "compared": compared, "label": "scenario_comparison",
                     "caption": "Probability of default by entity and run on one shared colour scale (base "
                                "first, then by severity), and the key system metrics with 95% intervals.",
                     "alt": "scenario comparison heatmap and bars"})
    for k, t in enumerate(inp.sensitivity):
        name = "tornado" if len(inp.sensitivity) == 1 else f"tornado-{_slug(t['name'])}"
        jobs.append({"kind": "tornado", "index": k, "name": name, "sub": "", "run": None, "group": "sensitivity",
                     "label": f"tornado {t['name']}",
                     "caption": f"One-at-a-time sensitivity of {t['metric']} ({t['name']}): bars sorted by swing.",
                     "alt": f"tornado chart of {t['metric']}"})
    for k, s in enumerate(inp.sweeps):
        one_d = not s.get("y")
        jobs.append({"kind": "sweep", "index": k, "name": f"sweep-{_slug(s['name'])}-{_slug(s['metric'])}",
                     "sub": "", "run": None, "group": "sweep", "label": f"sweep {s['name']} {s['metric']}",
                     "caption": f"{s['metric']} over the swept parameter{'' if one_d else 's'} ({s['name']})"
                                + (", with 95% intervals." if one_d else "."),
                     "alt": f"sweep {'line' if one_d else 'heatmap'} of {s['metric']}"})
    return jobs, sections


def build_figure(inp: ReportInputs, job: dict):
    """The matplotlib Figure of one job."""
    runs = inp.runs
    if job["kind"] == "run":
        return figures.SINGLE_RUN_FIGURES[job["name"]](runs[job["run"]])
    if job["kind"] == "comparison":
        return compare.scenario_comparison({n: runs[n] for n in job["compared"]})
    meta = runs[inp.primary]
    if job["kind"] == "tornado":
        t = inp.sensitivity[job["index"]]
        return compare.tornado(t["rows"], metric=t["metric"], base=t.get("base"), meta=meta)
    if job["kind"] == "sweep":
        s = inp.sweeps[job["index"]]
        return compare.sweep_figure(s, meta=s.get("runs") or meta)
    raise ValueError(f"unknown figure job {job['kind']!r}")


def render_job(inp: ReportInputs, job: dict, out_dir: str, opts: RenderOptions) -> dict:
    """Draw one figure and write its files; {"item": ..., "files": [...]} or {"error": msg}."""
    try:
        fig = build_figure(inp, job)
        folder = os.path.join(out_dir, job["sub"]) if job["sub"] else out_dir
        os.makedirs(folder, exist_ok=True)
        uri, size = None, None
        if opts.hi_res or opts.legacy:
            files = save_figure(fig, folder, job["name"], formats=("png", "svg"), dpi=HI_RES_DPI)
            if opts.embed and opts.legacy:
                png = png_bytes(fig, LEGACY_EMBED_DPI)
                w, h = fig.get_size_inches()
                uri, size = _uri(png), (int(round(w * LEGACY_EMBED_DPI)), int(round(h * LEGACY_EMBED_DPI)))
            elif opts.embed:
                uri, size = _downscaled_uri(files[0], fig)
        else:
            png = png_bytes(fig, shown_dpi(fig))
            path = atomic_write(os.path.join(folder, f"{job['name']}.png"), png)
            files = [path]
            if opts.embed:
                uri, size = _uri(png), _png_size(png)
    except Exception as err:  # one bad input must not sink the whole report
        return {"error": f"figure {job['label']} skipped: {type(err).__name__}: {err}"}
    item = {"id": (f"{job['sub']}-" if job["sub"] else "") + job["name"], "group": job["group"],
            "run": job["run"], "caption": job["caption"], "alt": job["alt"],
            "rel_files": [os.path.relpath(f, out_dir).replace(os.sep, "/") for f in files]}
    if uri is not None:
        item["uri"] = uri
        item["width"], item["height"] = size
    return {"item": item, "files": files}


def _png_size(png: bytes) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk."""
    return int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")


def _downscaled_uri(png_path: str, fig) -> tuple[str, tuple[int, int]]:
    """The 300 dpi PNG scaled to the width the report shows (Lanczos), as a data URI."""
    from PIL import Image

    w, h = fig.get_size_inches()
    dpi = shown_dpi(fig)
    size = (int(round(w * dpi)), int(round(h * dpi)))
    with Image.open(png_path) as im:
        small = im.convert("RGB").resize(size, Image.LANCZOS)
    buf = io.BytesIO()
    small.save(buf, format="PNG", optimize=False)
    return _uri(buf.getvalue()), size


# ------------------------------------------------------------------------------ the pool
_WORKER_INPUTS: ReportInputs | None = None


def _init_worker(inp: ReportInputs) -> None:
    global _WORKER_INPUTS
    _WORKER_INPUTS = inp


def _worker_render(job: dict, out_dir: str, opts: RenderOptions) -> dict:
    return render_job(_WORKER_INPUTS, job, out_dir, opts)


def _pool_context():
    """fork where the platform has it and this process runs no other thread (the workers
    inherit the imported matplotlib: no second start-up); else forkserver or the platform's
    default (forking a process with other threads can copy a held lock into the child)."""
    import threading

    methods = multiprocessing.get_all_start_methods()
    if "fork" in methods and threading.active_count() == 1:
        return multiprocessing.get_context("fork")
    if "forkserver" in methods:
        return multiprocessing.get_context("forkserver")
    return multiprocessing.get_context()


def render_jobs(inp: ReportInputs, jobs: list[dict], out_dir: str, opts: RenderOptions,
                log: Callable[[str], None] | None = None) -> list[dict]:
    """Render every job; the outcomes come back in job order whatever the workers."""
    log = log or (lambda m: None)
    workers = 1 if opts.legacy else min(len(jobs), opts.workers or available_cpus())
    if workers > 1:
        try:
            out: list = [None] * len(jobs)
            with ProcessPoolExecutor(max_workers=workers, mp_context=_pool_context(), initializer=_init_worker,
                                     initargs=(inp,)) as pool:
                futures = {pool.submit(_worker_render, job, out_dir, opts): k for k, job in enumerate(jobs)}
                for done, fut in enumerate(as_completed(futures), 1):
                    out[futures[fut]] = fut.result()
                    if done % 10 == 0 or done == len(jobs):
                        log(f"figures: {done}/{len(jobs)} drawn ({workers} processes)")
            return out
        except (OSError, RuntimeError) as err:  # no process pool here (sandbox, /dev/shm): draw in-process
            log(f"figures: no worker processes ({type(err).__name__}: {err}); drawing in this process")
    return [render_job(inp, job, out_dir, opts) for job in jobs]


def render_all(inp: ReportInputs, out_dir: str, *, embed: bool = True, flat: bool = False,
               log: Callable[[str], None] | None = None, max_run_sections: int = 8,
               max_compared: int = 14, hi_res: bool = False, workers: int | None = None,
               legacy: bool = False) -> dict:
    """Draw and save every figure; return {"files", "items", "run_sections", "errors"}
    (items in report order, each with a PNG data URI when embed=True).

    flat=True (the gallery): the primary run's figures at the top of out_dir, other runs'
    single-run figures skipped. See `RenderOptions` for hi_res, workers and legacy."""
    log = log or (lambda m: None)
    jobs, sections = plan_jobs(inp, flat=flat, max_run_sections=max_run_sections, max_compared=max_compared)
    opts = RenderOptions(hi_res=hi_res, embed=embed, workers=workers, legacy=legacy)
    made = {"files": [], "items": [], "run_sections": sections, "errors": []}
    for outcome in render_jobs(inp, jobs, out_dir, opts, log=log):
        if "error" in outcome:
            made["errors"].append(outcome["error"])
            log(outcome["error"])
        else:
            made["items"].append(outcome["item"])
            made["files"].extend(outcome["files"])
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
    atomic_write(path, "\n".join(lines) + "\n")
    return path


def write_gallery(results_dir: str, out_dir: str, log: Callable[[str], None] | None = None,
                  workers: int | None = None) -> list[str]:
    """Regenerate the committed gallery in out_dir from the results in results_dir (never
    re-simulated): PNG at 300 dpi and SVG; returns the files written (figures and README.md)."""
    inp = load_inputs(results_dir)
    os.makedirs(out_dir, exist_ok=True)
    made = render_all(inp, out_dir, embed=False, flat=True, log=log, hi_res=True, workers=workers)
    return made["files"] + [write_index(inp, out_dir, made)]
