"""Studies: many runs of the engine on variants of scenarios, with common random numbers.

`variants.py` (sweeps, batch files), `batch.py` (running a batch resumably) and
`summary.py` (the tidy table, paired differences); `precision.py` (runs to a target
standard error, used by run and batch); `metrics.py` and `params.py` (what a study measures
and varies); `sensitivity.py` (tornado) and `reverse_stress.py`; `cluster.py` (Dask).
Studies never import `sim.report` or `sim.cli`: the command line renders the report after a
batch.
"""
