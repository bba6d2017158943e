"""The model's default probabilities beside market-implied and historical bands, one panel
per rated partner (the anchors section of the report; rows from sim.studies.anchors)."""

from __future__ import annotations

import math

from matplotlib.figure import Figure

from sim.plots.style import new_figure, percent_axis, styled


def _ok(x) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)


@styled
def pd_vs_market(pd_terms) -> Figure:
    """`pd_terms`: rows (entity, year, model pd, lo95, hi95, CDS-implied lo, hi, history lo,
    hi), as in `AnchorReport.pd_terms` (NaN or None where there is no band)."""
    names = list(dict.fromkeys(r[0] for r in pd_terms))
    fig = new_figure(figsize=(3.0 * max(len(names), 1), 2.8))
    axes = fig.subplots(1, max(len(names), 1), squeeze=False)[0]
    for ax, name in zip(axes, names):
        rows = [r for r in pd_terms if r[0] == name]
        years = [r[1] for r in rows]
        if all(_ok(r[5]) for r in rows):
            ax.fill_between(years, [r[5] for r in rows], [r[6] for r in rows], color="#D62728", alpha=0.25,
                            linewidth=1.0, edgecolor="#D62728", label="CDS-implied (risk-neutral)")
        if all(_ok(r[7]) for r in rows):
            ax.fill_between(years, [r[7] for r in rows], [r[8] for r in rows], color="#7F7F7F", alpha=0.25,
                            hatch="//", label="speculative-grade history")
        ax.fill_between(years, [r[3] for r in rows], [r[4] for r in rows], color="#1F77B4", alpha=0.3)
        ax.plot(years, [r[2] for r in rows], color="#1F77B4", marker="o", markersize=3, label="model (95% interval)")
        ax.set_title(name)
        ax.set_xlabel("year end")
        percent_axis(ax)
        ax.set_ylim(bottom=0)
        ax.legend(loc="upper left", fontsize=6)
    axes[0].set_ylabel("cumulative default probability")
    return fig
