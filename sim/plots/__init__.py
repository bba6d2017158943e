"""Publication figures from bubblesim results (never re-simulated).

Each figure function returns a `matplotlib.figure.Figure` built with the object-oriented
API under the packaged style `bubblesim.mplstyle`, and takes what a notebook has at hand:

* single-run figures (revenue_fan, funding_gap, pd_term_structure, default_decomposition,
  cascade_size, loss_exceedance, network_map): a `Results` from `sim.run`, a run folder
  (or its results.json), or the results dict;
* scenario_comparison: a batch folder (its manifest's variants), a dict of name -> any of
  the above, or a list of them;
* tornado: a sensitivity folder or table (`bubblesim sensitivity` output) or its rows;
* sweep_line / sweep_heatmap (a one- / two-parameter sweep; sweep_figure picks one): a batch
  folder with a sweep, a sweep table or its rows.

    from sim.plots import revenue_fan, save_figure
    fig = revenue_fan("results/base")            # or revenue_fan(results), or a dict
    save_figure(fig, "figures", "revenue_fan")   # PNG (300 dpi) + SVG

The functions of sim.plots.figures / sim.plots.compare themselves take the dicts only;
the ones here adapt their first argument (sim.plots.inputs.as_results_dict, as_runs, as_table).
"""

import functools as _functools

from sim.plots import compare as _compare
from sim.plots import figures as _figures
from sim.plots.figures import SINGLE_RUN_FIGURES
from sim.plots.inputs import ReportInputs, as_results_dict, as_runs, as_table, load_inputs, load_results
from sim.plots.style import STYLE_PATH, save_figure


def _single_run(fn):
    @_functools.wraps(fn)
    def figure(res, *args, **kwargs):
        return fn(as_results_dict(res), *args, **kwargs)

    return figure


revenue_fan = _single_run(_figures.revenue_fan)
funding_gap = _single_run(_figures.funding_gap)
pd_term_structure = _single_run(_figures.pd_term_structure)
default_decomposition = _single_run(_figures.default_decomposition)
cascade_size = _single_run(_figures.cascade_size)
loss_exceedance = _single_run(_figures.loss_exceedance)
network_map = _single_run(_figures.network_map)


@_functools.wraps(_compare.scenario_comparison)
def scenario_comparison(runs, *args, **kwargs):
    return _compare.scenario_comparison(as_runs(runs), *args, **kwargs)


@_functools.wraps(_compare.tornado)
def tornado(rows, *args, **kwargs):
    if isinstance(rows, list) and (not rows or "param" in rows[0]):
        return _compare.tornado(rows, *args, **kwargs)
    t = as_table(rows, "sensitivity")
    for k in ("metric", "base"):
        if t.get(k) is not None and k not in kwargs and not args:
            kwargs[k] = t[k]
    return _compare.tornado(t["rows"], *args, **kwargs)


def _sweep(fn, keys):
    @_functools.wraps(fn)
    def figure(rows, *args, **kwargs):
        if isinstance(rows, list) and (not rows or "params" in rows[0]):
            return fn(rows, *args, **kwargs)
        t = as_table(rows, "sweep")
        for k in keys:
            if t.get(k) is not None and k not in kwargs and not args:
                kwargs[k] = t[k]
        return fn(t["rows"], *args, **kwargs)

    return figure


sweep_heatmap = _sweep(_compare.sweep_heatmap, ("metric", "x", "y"))
sweep_line = _sweep(_compare.sweep_line, ("metric", "x"))
sweep_figure = _compare.sweep_figure  # takes a sweep table (sim.plots.inputs), as the report does


__all__ = [
    "SINGLE_RUN_FIGURES", "STYLE_PATH", "ReportInputs", "as_results_dict", "as_runs", "as_table", "cascade_size",
    "default_decomposition", "funding_gap", "load_inputs", "load_results", "loss_exceedance", "network_map",
    "pd_term_structure", "revenue_fan", "save_figure", "scenario_comparison", "sweep_figure", "sweep_heatmap",
    "sweep_line", "tornado",
]
