"""Publication figures from bubblesim results (never re-simulated).

Each figure function takes parsed results (the dict in results.json, or several of them,
or a sensitivity / sweep table) and returns a `matplotlib.figure.Figure` built with the
object-oriented API under the packaged style `bubblesim.mplstyle`:

    from sim.plots import load_results, revenue_fan, save_figure
    res = load_results("results/base")            # folder or results.json
    save_figure(revenue_fan(res), "figures", "revenue_fan")   # PNG (300 dpi) + SVG

Single run: revenue_fan, funding_gap, pd_term_structure, default_decomposition,
cascade_size, loss_exceedance, network_map. Across runs: scenario_comparison (a batch),
tornado (a sensitivity table), sweep_line / sweep_heatmap (a one- / two-parameter sweep;
sweep_figure picks one).
"""

from sim.plots.compare import scenario_comparison, sweep_figure, sweep_heatmap, sweep_line, tornado
from sim.plots.figures import (
                      SINGLE_RUN_FIGURES,
                      cascade_size,
                      default_decomposition,
                      funding_gap,
                      loss_exceedance,
                      network_map,
                      pd_term_structure,
                      revenue_fan,
)
from sim.plots.inputs import ReportInputs, load_inputs, load_results
from sim.plots.style import STYLE_PATH, save_figure

__all__ = [
    "SINGLE_RUN_FIGURES", "STYLE_PATH", "ReportInputs", "cascade_size", "default_decomposition", "funding_gap",
    "load_inputs", "load_results", "loss_exceedance", "network_map", "pd_term_structure", "revenue_fan",
    "save_figure", "scenario_comparison", "sweep_figure", "sweep_heatmap", "sweep_line", "tornado",
]
