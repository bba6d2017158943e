"""bubblesim: Monte Carlo cascade-default risk in the circular financing of AI compute.

    from sim import load_scenario, run
    results = run(load_scenario("scenarios/base.toml"), paths=100_000, seed=1)

The package is built in layers that import downward only (checked by import-linter, see
pyproject.toml):

    sim.cli       the command line (argparse, exit codes)
    sim.studies   batches, sweeps, precision targets, sensitivity, reverse stress, Dask
    sim.report    the HTML report, gallery and PDF
    sim.plots     the figures (matplotlib), from results on disk or in memory
    sim.engine    scenario -> arrays -> numba kernels -> Results
    sim.scenario  the TOML schema, reading, validation, overrides
    sim.io        atomic writes and hashes

`run` and `load_scenario` are imported on first use, so `import sim` (and
`bubblesim --version`) does not load numba.
"""

from sim._version import __version__

__all__ = ["ScenarioError", "load_scenario", "run", "__version__"]


def __getattr__(name):
    if name == "run":
        from sim.engine.api import run

        return run
    if name in ("load_scenario", "ScenarioError"):
        import sim.scenario

        return getattr(sim.scenario, name)
    raise AttributeError(f"module 'sim' has no attribute {name!r}")
