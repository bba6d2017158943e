"""The report's systemic-importance section, from the importance.json files that
`bubblesim importance ... --out` writes under the results folder (none: no section)."""

from __future__ import annotations

import glob
import json
import os

from sim.report.findings import esc

FILE = "importance.json"


def find_importance(root: str) -> list[dict]:
    """Every importance.json under `root` (sorted by path), loaded."""
    out = []
    for path in sorted(glob.glob(os.path.join(root, "**", FILE), recursive=True)):
        with open(path, encoding="utf-8") as fh:
            out.append(json.load(fh))
    return out


def importance_html(data: dict, fig_dir: str | None, log=None) -> str:
    """A ranking table (paired standard errors) and the figure, embedded (and saved as PNG
    and SVG into `fig_dir` unless None), for one ranking."""
    from sim.plots.importance import importance_figure
    from sim.plots.style import png_bytes
    from sim.report.gallery import _png_size, _uri, shown_dpi

    parts = [f"<h3>{esc(data['scenario'])}: each entity forced to default at {data['date']:g}</h3>",
             f'<p class="note">{data["paths"]:,} paths per run, seed {esc(data["seed"])}, {data["chunks"]} chunks; '
             "every run on the same random numbers as the base run, so the changes carry paired standard errors "
             "(\u00b1 one se). \u201cOther defaults\u201d: change in the expected number of other entities "
             "defaulting by the horizon. DebtRank: value lost by the others on the starting network "
             "(no shocks, no dynamics).</p>"]
    head = ["#", "entity", "base PD", "other defaults", "\u0394P(2+)", "\u0394 loss to others\u2019 creditors, $B",
            "most hit (\u0394PD)", "DebtRank"]
    body = []
    for r in data["rows"]:
        hit = f"{esc(r['most_hit'])} {100 * r['d_pd_most_hit']:+.1f}pp" if r["most_hit"] else "\u2013"
        cells = [str(r["rank"]), esc(r["entity"]), f"{100 * r['base_pd']:.2f}%",
                 f"{r['d_other_defaults']:+.3f} \u00b1 {r['se_d_other_defaults']:.3f}",
                 f"{100 * r['d_p2']:+.1f}pp \u00b1 {100 * r['se_d_p2']:.1f}",
                 f"{r['d_loss_others']:+.1f} \u00b1 {r['se_d_loss_others']:.1f}", hit, f"{r['debtrank']:.3f}"]
        body.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    parts.append('<table class="data"><thead><tr>' + "".join(f"<th>{h}</th>" for h in head) + "</tr></thead><tbody>"
                 + "".join(body) + "</tbody></table>")
    try:
        fig = importance_figure(data)
        name = "importance_" + "".join(c if c.isalnum() else "_" for c in str(data["scenario"]))
        png = png_bytes(fig, shown_dpi(fig))
        if fig_dir:
            from sim.io import atomic_write

            os.makedirs(fig_dir, exist_ok=True)
            atomic_write(os.path.join(fig_dir, f"{name}.png"), png)
        w, h = _png_size(png)
        parts.append(f'<figure><img src="{_uri(png)}" alt="systemic importance of each entity" '
                     f'width="{w}" height="{h}"><figcaption>Left: what each '
                     "entity\u2019s forced default adds to the expected number of other defaults (95% interval, "
                     "paired). Right: DebtRank on the starting network.</figcaption></figure>")
    except Exception as err:  # a figure must not sink the report
        if log:
            log(f"importance figure failed: {err}")
    return "\n".join(parts)
