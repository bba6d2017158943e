"""The systemic-importance figure: what each entity's forced default adds elsewhere, with
95% intervals from the paired standard errors, and DebtRank beside it (sim.studies.importance
writes the importance.json it reads)."""

from __future__ import annotations

import numpy as np

from sim.plots.style import OKABE_ITO, new_figure, styled


@styled
def importance_figure(data: dict):
    """Two panels, entities in rank order: left, the change in the expected number of other
    entities defaulting by the horizon (bars, 95% interval); right, DebtRank on the
    starting network (the static cross-check)."""
    rows = data["rows"]
    names = [r["entity"] for r in rows][::-1]
    d = np.array([r["d_other_defaults"] for r in rows])[::-1]
    se = np.array([r["se_d_other_defaults"] for r in rows])[::-1]
    dr = np.array([r["debtrank"] for r in rows])[::-1]
    y = np.arange(len(rows))
    fig = new_figure(figsize=(7.5, 0.32 * len(rows) + 1.4))
    ax, ax2 = fig.subplots(1, 2, sharey=True, gridspec_kw={"width_ratios": [3, 1.3]})
    colours = [OKABE_ITO["vermillion"] if v > 0 else OKABE_ITO["blue"] for v in d]
    ax.barh(y, d, xerr=1.96 * se, color=colours, ecolor="#333333", capsize=2, height=0.65)
    ax.axvline(0.0, color="black", lw=0.8)
    ax.set_yticks(y, names)
    ax.set_xlabel("change in expected number of other defaults")
    ax.set_title(f"Forced default at {data['date']:g}", loc="left")
    ax2.barh(y, dr, color=OKABE_ITO["green"], height=0.65)
    ax2.set_xlabel("DebtRank (start)")
    ax2.set_xlim(0, max(0.05, float(dr.max()) * 1.1) if len(dr) else 1)
    return fig
