"""bubblesim: Monte Carlo cascade-default risk in the circular financing of AI compute.

    from sim import load_scenario, run
    results = run(load_scenario("scenarios/base.toml"), paths=100_000, seed=1)
"""

__version__ = "0.1.0"

from .run import run  # noqa: E402
from .scenario import ScenarioError, load_scenario  # noqa: E402

__all__ = ["ScenarioError", "load_scenario", "run", "__version__"]
