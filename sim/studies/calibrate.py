"""Fits of the revenue process to published target paths (`bubblesim calibrate`).

The targets are data, in scenarios/targets/calibration.toml: for each scenario, the median
annual revenue by year (and optionally the dispersion of log revenue at a year end), each
with its source, and which [revenue] parameters are fitted. The fit is a weighted least
squares (scipy.optimize.least_squares) on

- log(model median annual revenue / target), year by year, and
- (model sd of log revenue / target - 1) for each dispersion target,

where the model is the boom regime alone (no AI winter): log R moves by (g_t - vol^2/2) dt
plus vol sqrt(dt) z each step, with g_t = growth_inf + (growth0 - growth_inf) 2^(-t dt /
half_life) (docs/model.md). The "median annual revenue" of a year is the sum over its
steps of exp(E[log R_t]) dt, the revenue of the median path (the convention the scenario
comments state); the sd of log R at the end of year k is vol sqrt(k). Both are closed
forms, so a fit is deterministic and takes milliseconds.

The fitted values are rounded to the precision the scenarios state them in (`PRECISION`),
and `write_fit` puts them into the scenario file by a targeted text edit of each value
(comments and layout untouched).
"""

from __future__ import annotations

import math
import os
import re
import tomllib
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import least_squares

from sim.scenario import ScenarioError, load_scenario

PARAMS = ("growth0", "growth_inf", "half_life", "volatility")
PRECISION = {"growth0": 3, "growth_inf": 3, "half_life": 2, "volatility": 2}  # decimals written
DEFAULT_BOUNDS = {"growth0": (0.0, 3.0), "growth_inf": (-0.5, 1.0), "half_life": (0.25, 50.0),
                  "volatility": (0.01, 1.0)}
TARGETS_FILE = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                            "scenarios", "targets", "calibration.toml")


@dataclass
class Targets:
    """What one scenario is fitted to (one table of the targets file)."""
    scenario: str
    fit: list
    median_revenue: dict  # year -> $B
    weights: dict = field(default_factory=dict)  # year -> weight (default 1)
    log_sd: dict = field(default_factory=dict)  # year -> sd of log revenue at that year's end
    bounds: dict = field(default_factory=dict)  # param -> (lo, hi)


@dataclass
class Fit:
    scenario: str
    params: dict  # every revenue parameter after the fit (fitted ones rounded)
    raw: dict  # the fitted parameters unrounded
    fitted: list
    years: list
    median: np.ndarray  # model median annual revenue by year (rounded parameters)
    rows: list  # (kind, year, target, model, weight, residual) for each target
    cost: float
    success: bool
    message: str


def load_targets(path: str = TARGETS_FILE) -> dict[str, Targets]:
    """The calibration targets by scenario name (`ScenarioError` naming file and key)."""
    with open(path, "rb") as f:
        try:
            raw = tomllib.load(f)
        except tomllib.TOMLDecodeError as err:
            raise ScenarioError(path, "", None, f"not valid TOML: {err}") from None
    out = {}
    for name, t in raw.items():
        if not isinstance(t, dict):
            raise ScenarioError(path, name, None, "expected a table per scenario")
        for key in t:
            if key not in ("fit", "median_revenue", "weights", "log_sd", "bounds"):
                raise ScenarioError(path, f"{name}.{key}", None, "unknown key")
        fit = list(t.get("fit", []))
        bad = [p for p in fit if p not in PARAMS]
        if not fit or bad:
            raise ScenarioError(path, f"{name}.fit", None, f"expected a non-empty list of {', '.join(PARAMS)}")
        med = {int(y): float(v) for y, v in t.get("median_revenue", {}).items()}
        if not med or any(v <= 0 for v in med.values()):
            raise ScenarioError(path, f"{name}.median_revenue", None, "expected positive revenue by year")
        out[name] = Targets(name, fit, med, {int(y): float(w) for y, w in t.get("weights", {}).items()},
                            {int(y): float(v) for y, v in t.get("log_sd", {}).items()},
                            {k: tuple(v) for k, v in t.get("bounds", {}).items()})
    return out


def median_path(params: dict, r0: float, start_year: int, steps_per_year: int, years: int):
    """(median annual revenue by year, median run-rate R_t by step) of the boom process."""
    dt = 1.0 / steps_per_year
    t = np.arange(years * steps_per_year)
    g = params["growth_inf"] + (params["growth0"] - params["growth_inf"]) * 0.5 ** (t * dt / params["half_life"])
    log_r = math.log(r0) + np.cumsum((g - 0.5 * params["volatility"] ** 2) * dt)
    rate = np.exp(log_r)
    return (rate * dt).reshape(years, steps_per_year).sum(axis=1), rate


def _residuals(params, targets: Targets, r0, start, spy, years):
    annual, _ = median_path(params, r0, start, spy, years)
    res = []
    for y, v in sorted(targets.median_revenue.items()):
        res.append(targets.weights.get(y, 1.0) * math.log(annual[y - start] / v))
    for y, v in sorted(targets.log_sd.items()):
        res.append(targets.weights.get(y, 1.0) * (params["volatility"] * math.sqrt(y - start + 1) / v - 1.0))
    return np.array(res)


def fit_scenario(scenario_path: str, targets: Targets | None = None) -> Fit:
    """Fit the scenario's revenue parameters to its targets; nothing is written."""
    sc = load_scenario(scenario_path)
    if targets is None:
        all_targets = load_targets()
        if sc.name not in all_targets:
            raise ScenarioError(TARGETS_FILE, sc.name, None,
                                f"no calibration targets for scenario {sc.name!r} "
                                f"(targets exist for: {', '.join(all_targets)})")
        targets = all_targets[sc.name]
    rev, tm = sc.data["revenue"], sc.data["time"]
    start, spy, years = tm["start_year"], tm["steps_per_year"], tm["horizon_years"]
    for y in list(targets.median_revenue) + list(targets.log_sd):
        if not start <= y < start + years:
            raise ScenarioError(TARGETS_FILE, f"{targets.scenario}.median_revenue.{y}", None,
                                f"outside the scenario's years {start}-{start + years - 1}")
    base = {p: float(rev[p]) for p in PARAMS}
    r0 = float(rev["initial"])
    names = targets.fit
    lo = [targets.bounds.get(p, DEFAULT_BOUNDS[p])[0] for p in names]
    hi = [targets.bounds.get(p, DEFAULT_BOUNDS[p])[1] for p in names]
    x0 = [min(max(base[p], a + 1e-6), b - 1e-6) for p, a, b in zip(names, lo, hi)]

    def f(x):
        return _residuals({**base, **dict(zip(names, x))}, targets, r0, start, spy, years)

    sol = least_squares(f, x0, bounds=(lo, hi), xtol=1e-12, ftol=1e-12, gtol=1e-12)
    raw = dict(zip(names, (float(v) for v in sol.x)))
    params = {**base, **{p: round(v, PRECISION[p]) for p, v in raw.items()}}
    annual, _ = median_path(params, r0, start, spy, years)
    rows = []
    for y, v in sorted(targets.median_revenue.items()):
        m = float(annual[y - start])
        rows.append(("median revenue $B", y, v, m, targets.weights.get(y, 1.0), m / v - 1.0))
    for y, v in sorted(targets.log_sd.items()):
        m = params["volatility"] * math.sqrt(y - start + 1)
        rows.append(("sd of log revenue", y, v, m, targets.weights.get(y, 1.0), m / v - 1.0))
    return Fit(sc.name, params, raw, names, list(range(start, start + years)), annual, rows,
               float(sol.cost), bool(sol.success), str(sol.message))


_REVENUE_TABLE = re.compile(r"^\[revenue\][^\n]*\n(?P<body>(?:(?!\[).*\n?)*)", re.M)


def write_fit(scenario_path: str, fit: Fit) -> list[str]:
    """Write the fitted values into the scenario's own [revenue] table (a text edit of each
    value; a key the file inherits is added under the table header). Returns what changed."""
    with open(scenario_path, encoding="utf-8") as f:
        text = f.read()
    m = _REVENUE_TABLE.search(text)
    if m is None:
        raise ScenarioError(scenario_path, "revenue", None, "no [revenue] table to write the fit into")
    body = m.group("body")
    changes = []
    for p in fit.fitted:
        value = f"{fit.params[p]:.{PRECISION[p]}f}"
        key = re.compile(rf"^(?P<lead>{p}\s*=\s*)(?P<val>[-+0-9.eE]+)", re.M)
        k = key.search(body)
        if k:
            if float(k.group("val")) != float(value):
                changes.append(f"{p}: {k.group('val')} -> {value}")
            body = body[:k.start("val")] + value + body[k.end("val"):]
        else:
            body = f"{p} = {value}   # fitted by bubblesim calibrate\n" + body
            changes.append(f"{p}: (inherited) -> {value}")
    new = text[:m.start("body")] + body + text[m.end("body"):]
    if new != text:
        from sim.io import atomic_write

        atomic_write(scenario_path, new)
    return changes
