"""Scenarios: the TOML schema, reading and `extends`, validation, cross-checks and overrides.

The bottom layer of bubblesim: it imports nothing else of `sim`. Open `schema.py` to add a
field, `crosschecks.py` for a rule that spans sections, `overrides.py` for dotted keys.
"""

from .errors import ScenarioError
from .loader import Scenario, load_scenario, scenario_from_dict

__all__ = ["Scenario", "ScenarioError", "load_scenario", "scenario_from_dict"]
