"""Sensitivity (tornado), reverse stress tests and runs to a target precision.

Everything here re-runs the engine on variants of one scenario (`Scenario.with_overrides`)
with the **same seed and chunk layout**, so every variant sees the same random numbers path
by path (common random numbers, sim.engine). Differences between variants are then
differences of the model, not Monte Carlo noise, and the metric as a function of a
parameter is a fixed (piecewise constant, nearly monotone) function for a given seed, on
which a root finder works.

Metrics (`parse_metric`): scalars of a `Results` with their standard errors

    p2                    P(2 or more entities default by the horizon)      [default]
    pd:ENTITY             ENTITY's probability of default by the horizon
    pd:ENTITY@YEAR        ... by the end of YEAR
    lab_pd                the lab's probability of default by the horizon
    gap:YEAR              the lab's probability of an unfunded gap in YEAR
    contagious:ENTITY     P(ENTITY defaults, contagiously, by the horizon)
    loss_mean             mean loss to outside creditors by the horizon, $B

One-at-a-time sensitivity (`sensitivity`, `bubblesim sensitivity`): each parameter at
base * (1 - step) and base * (1 + step) (low_value < high_value; clipped to the schema's
range, e.g. probabilities to [0, 1]; the values actually used are reported), the metric at
both, the swing metric_high - metric_low (signed) and its standard error. With common random
numbers the swing's standard error is the *paired* one: batch means over full chunks of the
per-chunk differences (needs >= 10 full chunks; available for p2, pd, lab_pd and loss_mean).
Otherwise (gap, contagious, or too few chunks) it is the conservative bound
se_low + se_high (Cauchy-Schwarz: it holds whatever the correlation); `swing_se_method`
says which. `swing_se_independent` = sqrt(se_low^2 + se_high^2) is what the swing's
error would be with independent runs.

Reverse stress (`reverse_stress`, `bubblesim reverse-stress`): the parameter value at
which the metric crosses a target, by the ITP root finder (`find_threshold`: bisection's
worst case, faster on smooth functions) on the common-random-numbers function, and an
interval from the Monte Carlo error: where metric - z*se and metric + z*se cross the
target (same root finder, reusing the runs already made).

Runs to a target precision (`run_to_precision`, `bubblesim run --target-se`): chunks
0, 1, 2, ... are added in groups that double the run (1, 2, 4, 8, ... chunks) until every
reported default probability (each entity by each year end, and P(2+ defaults)) has a
binomial standard error <= the target, or max_paths is reached. The reduction continues
in chunk order (`simulate(..., first_chunk=k, start=stats)`), so the result is
bit-identical to a plain run with the same number of paths.
"""

from __future__ import annotations

import csv
import difflib
import io
import json
import math
import os
import sys
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from .engine import DEFAULT_CHUNK_SIZE, SUMMARY_FIXED, simulate
from .model import compile_scenario
from .results import Results, _atomic_write
from .scenario import ScenarioError
from .stats import Z95, proportion_se

#: Parameters of a sensitivity analysis unless told otherwise (those the scenario leaves at
#: 0 are skipped: a relative step does not move them; regime.* are skipped when the regime
#: is disabled).
DEFAULT_PARAMS = (
    "revenue.initial", "revenue.growth0", "revenue.growth_inf", "revenue.half_life", "revenue.volatility",
    "regime.enter_prob", "regime.exit_prob", "regime.jump_mean", "regime.sentiment_jump",
    "sentiment.volatility",
    "lab.raise_share", "lab.valuation_multiple", "lab.opex_share_start", "lab.opex_share_end",
    "refinancing.sentiment_slope", "refinancing.winter_shift",
)

#: Paths per run of a sensitivity or reverse stress test unless told otherwise (common
#: random numbers make differences precise with far fewer paths than levels need).
DEFAULT_PATHS = 20_000

#: Metric forms, for help texts and did-you-mean.
METRIC_FORMS = {
    "p2": "P(2 or more entities default by the horizon)",
    "pd:ENTITY": "ENTITY's probability of default by the horizon",
    "pd:ENTITY@YEAR": "ENTITY's probability of default by the end of YEAR",
    "lab_pd": "the lab's probability of default by the horizon",
    "gap:YEAR": "the lab's probability of an unfunded funding gap in YEAR",
    "contagious:ENTITY": "probability that ENTITY defaults contagiously by the horizon",
    "loss_mean": "mean loss to outside creditors by the horizon ($B)",
}

MIN_PAIRED_CHUNKS = 10


class SensitivityError(ValueError):
    """Bad input to a sensitivity or reverse stress test (one clear message)."""


class BracketError(SensitivityError):
    """The range given to the root finder does not bracket the target."""


# ---------------------------------------------------------------------------------- metrics
@dataclass(frozen=True)
class Metric:
    """A scalar of a `Results` with its standard error (see the module docstring)."""

    name: str  # canonical, e.g. "pd:Oracle@2032"
    label: str  # for tables, e.g. "PD of Oracle by 2032"
    kind: str  # "p2" | "pd" | "gap" | "contagious" | "loss_mean"
    entity: int = -1
    year: int = -1  # index into the years
    is_probability: bool = True

    def value(self, r: Results) -> tuple[float, float]:
        """(value, standard error) from a Results."""
        if self.kind == "p2":
            return float(r.p2), float(r.p2_se)
        if self.kind == "pd":
            return float(r.pd[self.entity, self.year]), float(r.pd_se[self.entity, self.year])
        if self.kind == "gap":
            p = float(r.p_gap[self.year])
            return p, float(proportion_se(p * r.paths, r.paths))
        if self.kind == "contagious":
            p = float(r.p_contagious[self.entity])
            return p, float(proportion_se(p * r.paths, r.paths))
        if self.kind == "loss_mean":
            return float(r.loss_mean), float(r.loss_mean_se)
        raise AssertionError(self.kind)

    def per_chunk(self, summaries: np.ndarray, n_years: int) -> np.ndarray | None:
        """Per-chunk estimates from `engine.chunk_summary` rows (None where the summaries do
        not carry this metric)."""
        if summaries is None or len(summaries) == 0:
            return None
        n = summaries[:, 3]
        if self.kind == "p2":
            return summaries[:, 4] / n
        if self.kind == "pd":
            return summaries[:, SUMMARY_FIXED + self.entity * n_years + self.year] / n
        if self.kind == "loss_mean":
            return summaries[:, 0].copy()
        return None


def _suggest(word: str, candidates) -> str:
    m = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.5)
    if not m:
        low = {c.lower(): c for c in candidates}
        if word.lower() in low:
            m = [low[word.lower()]]
    return f" (did you mean {m[0]!r}?)" if m else ""


def parse_metric(spec: str, scenario) -> Metric:
    """The metric named by `spec` for `scenario` (a Scenario or a Results); SensitivityError
    with a did-you-mean for unknown metrics, entities or years."""
    if hasattr(scenario, "data"):
        entities = [e["name"] for e in scenario.data["entity"]]
        years = scenario.years()
        lab = scenario.data["lab"]["entity"]
    else:
        entities, years, lab = list(scenario.entities), list(scenario.years), scenario.lab
    spec = (spec or "").strip()
    forms = ", ".join(METRIC_FORMS)

    def entity_index(name: str, whole: str) -> int:
        if name in entities:
            return entities.index(name)
        raise SensitivityError(f"unknown entity {name!r} in metric {whole!r}{_suggest(name, entities)}; "
                               f"entities: {', '.join(entities)}")

    def year_index(text: str, whole: str) -> int:
        try:
            y = int(text)
        except ValueError:
            raise SensitivityError(f"bad year {text!r} in metric {whole!r}: expected a calendar year "
                                   f"{years[0]}-{years[-1]}") from None
        if y not in years:
            raise SensitivityError(f"year {y} in metric {whole!r} is outside the simulated years "
                                   f"{years[0]}-{years[-1]}")
        return years.index(y)

    if spec == "p2":
        return Metric("p2", f"P(2+ defaults by {years[-1]})", "p2")
    if spec == "loss_mean":
        return Metric("loss_mean", "mean loss to outside creditors ($B)", "loss_mean", is_probability=False)
    if spec == "lab_pd":
        i = entities.index(lab)
        return Metric("lab_pd", f"PD of {lab} by {years[-1]}", "pd", i, len(years) - 1)
    head, sep, rest = spec.partition(":")
    if head in ("pd", "contagious") and not rest:
        raise SensitivityError(f"metric {spec!r} needs an entity: {head}:ENTITY"
                               + ("[@YEAR]" if head == "pd" else "") + f"; entities: {', '.join(entities)}")
    if head == "gap" and not rest:
        raise SensitivityError(f"metric {spec!r} needs a year: gap:YEAR, {years[0]}-{years[-1]}")
    if sep and head == "pd":
        who, at, year = rest.rpartition("@") if "@" in rest else (rest, "", "")
        i = entity_index(who, spec)
        j = year_index(year, spec) if at else len(years) - 1
        return Metric(f"pd:{who}" + (f"@{years[j]}" if at else ""), f"PD of {who} by {years[j]}", "pd", i, j)
    if sep and head == "gap":
        j = year_index(rest, spec)
        return Metric(f"gap:{years[j]}", f"P({lab} funding gap in {years[j]})", "gap", year=j)
    if sep and head == "contagious":
        i = entity_index(rest, spec)
        return Metric(f"contagious:{rest}", f"P({rest} defaults contagiously by {years[-1]})", "contagious", i)
    hint = _suggest(head if sep else spec, ["p2", "pd", "lab_pd", "gap", "contagious", "loss_mean"])
    raise SensitivityError(f"unknown metric {spec!r}{hint}; metrics: {forms}")


# ---------------------------------------------------------------------------------- running
def simulate_scenario(scenario, paths: int, seed: int, *, chunk_size: int = DEFAULT_CHUNK_SIZE,
                      threads: int | None = None, progress=None, executor=None) -> tuple[Results, np.ndarray]:
    """`sim.run.run` that also returns the per-chunk summaries (for paired errors)."""
    M = compile_scenario(scenario)
    stats, summaries, info = simulate(M, int(paths), int(seed), chunk_size=chunk_size, threads=threads,
                                      progress=progress, executor=executor)
    return Results.from_stats(scenario, M, stats, summaries, info), summaries


def max_probability_se(r: Results) -> tuple[float, str]:
    """The largest standard error among the reported default probabilities (every entity
    by every year end, and P(2+ defaults)), and where it is ("pd:ENTITY@YEAR" or "p2")."""
    best, where = float(r.p2_se), "p2"
    if r.pd_se.size:
        i, j = np.unravel_index(int(np.argmax(r.pd_se)), r.pd_se.shape)
        if r.pd_se[i, j] > best:
            best, where = float(r.pd_se[i, j]), f"pd:{r.entities[i]}@{r.years[j]}"
    return best, where


def run_to_precision(scenario, target_se: float, max_paths: int | None = None, seed: int | None = None, *,
                     chunk_size: int = DEFAULT_CHUNK_SIZE, threads: int | None = None,
                     progress: Callable[[int, int], None] | None = None, executor=None,
                     log: Callable[[str], None] | None = None) -> Results:
    """See `run_to_precision_with_chunks`; returns only the results."""
    return run_to_precision_with_chunks(scenario, target_se, max_paths, seed, chunk_size=chunk_size,
                                        threads=threads, progress=progress, executor=executor, log=log)[0]


def run_to_precision_with_chunks(scenario, target_se: float, max_paths: int | None = None,
                                 seed: int | None = None, *, chunk_size: int = DEFAULT_CHUNK_SIZE,
                                 threads: int | None = None, progress: Callable[[int, int], None] | None = None,
                                 executor=None, log: Callable[[str], None] | None = None):
    """Simulate chunks 0, 1, 2, ... (doubling the run each round) until the standard error
    of every reported default probability is <= target_se, or max_paths paths are done.

    Returns (results, per-chunk summaries). The result is bit-identical to
    `run(scenario, paths=results.paths, seed=seed, chunk_size=chunk_size)`. `results.run_info["precision"]` says what was reached:
    target_se, met (bool), max_se, max_se_at, paths, max_paths, rounds.
    max_paths defaults to the count that always suffices, 0.25 / target_se^2 (a binomial
    standard error is at most 0.5 / sqrt(n)), capped at 10,000,000.
    """
    target_se = float(target_se)
    if not target_se > 0:
        raise SensitivityError(f"target standard error must be > 0, got {target_se}")
    if max_paths is None:
        max_paths = min(10_000_000, max(1, math.ceil(0.25 / target_se ** 2)))
    max_paths = int(max_paths)
    if max_paths < 1:
        raise SensitivityError(f"max_paths must be >= 1, got {max_paths}")
    chunk_size = int(chunk_size)
    if chunk_size < 1:
        raise SensitivityError(f"chunk_size must be >= 1, got {chunk_size}")
    seed = int(scenario.data["seed"] if seed is None else seed)
    M = compile_scenario(scenario)
    stats = None
    summaries: list[np.ndarray] = []
    done_paths, done_chunks, rounds, wall, used_threads = 0, 0, 0, 0.0, None
    while True:
        want_chunks = max(1, 2 * done_chunks)  # double the run
        new_paths = min(want_chunks * chunk_size, max_paths) - done_paths
        base = done_paths

        def show(done, _total, base=base, goal=done_paths + new_paths):
            if progress:
                progress(base + done, goal)

        stats, summ, info = simulate(M, new_paths, seed, chunk_size=chunk_size, threads=threads,
                                     first_chunk=done_chunks, progress=show if progress else None,
                                     executor=executor, start=stats)
        summaries.append(summ)
        done_paths += new_paths
        done_chunks += info["chunks"]
        rounds += 1
        wall += info["wall_seconds"]
        used_threads = info["threads"]
        run_info = {"paths": done_paths, "seed": seed, "chunk_size": chunk_size, "chunks": done_chunks,
                    "first_chunk": 0, "threads": used_threads, "wall_seconds": wall}
        results = Results.from_stats(scenario, M, stats, np.concatenate(summaries), run_info)
        se, where = max_probability_se(results)
        met = se <= target_se
        if log:
            log(f"{done_paths:,} paths: max se {se:.5f} at {where} "
                f"({'<=' if met else '>'} target {target_se:g})")
        if met or done_paths >= max_paths:
            results.run_info["precision"] = {"target_se": target_se, "met": bool(met), "max_se": se,
                                             "max_se_at": where, "paths": done_paths, "max_paths": max_paths,
                                             "rounds": rounds}
            return results, np.concatenate(summaries)


# ---------------------------------------------------------------------------------- parameters
@dataclass(frozen=True)
class Param:
    key: str
    value: float | None  # the scenario's value (None: optional and not set)
    lo: float | None  # schema range
    hi: float | None
    lo_open: bool
    is_int: bool


def resolve_param(scenario, key: str) -> Param:
    """The numeric scenario value named by a dotted override key (ScenarioError with a
    did-you-mean for unknown keys, SensitivityError for keys that are not numbers)."""
    from .schema import ARRAYS, SECTIONS, TOP
    from .scenario import _resolve_override_key

    path = _resolve_override_key(scenario.data, key)
    if path[0] in TOP:
        f = TOP[path[0]]
    elif path[0] in SECTIONS:
        f = SECTIONS[path[0]][path[1]]
    else:
        fields, nested = ARRAYS[path[0]]
        if len(path) < 3:
            raise SensitivityError(f"{key!r} names a whole table, not a number")
        if path[2] in nested:
            if len(path) < 5:
                raise SensitivityError(f"{key!r} names a table, not a number")
            f = nested[path[2]][path[4]]
        else:
            f = fields[path[2]]
    node = scenario.data
    for p in path:
        if isinstance(node, list):
            node = node[p]
        elif isinstance(node, dict):
            node = node.get(p)
        if node is None:
            break
    if f.kind == "schedule" and not (isinstance(path[-1], int) and len(path) >= 4):
        raise SensitivityError(f"{key!r} is a schedule; name one year, e.g. {key}.{scenario.years()[0]}")
    if f.kind not in ("float", "int", "schedule"):
        raise SensitivityError(f"{key!r} is not a number (it is a {f.kind})")
    if node is not None and (isinstance(node, bool) or not isinstance(node, (int, float))):
        raise SensitivityError(f"{key!r} is not a number (found {node!r})")
    return Param(key, None if node is None else float(node), f.lo, f.hi, f.lo_open, f.kind == "int")


def _clip(x: float, p: Param) -> float:
    if p.lo is not None and x < p.lo:
        x = p.lo
    if p.hi is not None and x > p.hi:
        x = p.hi
    return float(round(x)) if p.is_int else float(x)


def _py(v: float, p: Param):
    return int(round(v)) if p.is_int else float(v)


def parse_param_spec(spec: str) -> tuple[str, tuple[float, float] | None]:
    """'KEY' or 'KEY=LOW,HIGH' -> (key, None | (low, high))."""
    key, eq, vals = spec.partition("=")
    key = key.strip()
    if not key:
        raise SensitivityError(f"bad --param {spec!r}: expected KEY or KEY=LOW,HIGH")
    if not eq:
        return key, None
    parts = vals.split(",")
    try:
        lo, hi = (float(x) for x in parts)
    except ValueError:
        raise SensitivityError(f"bad --param {spec!r}: expected KEY=LOW,HIGH with two numbers") from None
    if not lo < hi:
        raise SensitivityError(f"bad --param {spec!r}: LOW must be below HIGH")
    return key, (lo, hi)


def _variant(scenario, key: str, value) -> "object":
    try:
        return scenario.with_overrides({key: value})
    except ScenarioError as err:
        raise SensitivityError(f"{key} = {value!r} is not a valid scenario: {err.message if not err.more else err}") \
            from None


# ---------------------------------------------------------------------------------- sensitivity
def _swing_se(metric: Metric, s_lo, s_hi, se_lo: float, se_hi: float, paths: int, chunk_size: int,
              n_years: int) -> tuple[float, str]:
    a = metric.per_chunk(s_lo, n_years)
    b = metric.per_chunk(s_hi, n_years)
    if a is not None and b is not None:
        full = s_lo[:, 3] == chunk_size
        m = int(full.sum())
        if m >= MIN_PAIRED_CHUNKS:
            d = (b - a)[full]
            # per-path variance of the difference from full chunks, scaled to all paths
            return float(np.std(d, ddof=1) * math.sqrt(chunk_size / paths)), "paired"
    return float(se_lo + se_hi), "bound"


def sensitivity_chunk_size(paths: int) -> int:
    """The engine's chunk size when that gives >= 20 chunks, else paths / 20 (>= 100), so
    the paired standard error of a swing has enough chunks."""
    if paths >= 20 * DEFAULT_CHUNK_SIZE:
        return DEFAULT_CHUNK_SIZE
    return max(100, paths // 20)


def sensitivity(scenario, params=None, *, step: float = 0.2, metric: str = "p2", paths: int | None = None,
                seed: int | None = None, chunk_size: int | None = None, threads: int | None = None,
                defaults: bool = True, target_se: float | None = None, max_paths: int | None = None,
                log: Callable[[str], None] | None = None) -> dict:
    """One-at-a-time sensitivity of `metric` (see the module docstring).

    params: extra parameters, 'KEY' or 'KEY=LOW,HIGH' (explicit values instead of the
    relative step); with defaults=True the DEFAULT_PARAMS the scenario sets (non-zero)
    come first. target_se: choose the path count by running the base scenario to this
    precision (`run_to_precision`), then run every variant with that many paths.
    Returns a dict: the run's settings, `rows` sorted by |swing| (largest first) and
    `skipped` (parameters not run, with the reason).
    """
    if not 0 < step < 1:
        raise SensitivityError(f"--step must be in (0, 1) (a relative step), got {step}")
    m = parse_metric(metric, scenario)
    seed = int(scenario.data["seed"] if seed is None else seed)
    specs: list[tuple[str, tuple[float, float] | None, bool]] = []
    skipped = []
    named = [parse_param_spec(s) for s in (params or [])]
    named_keys = {k for k, _ in named}
    if defaults:
        for key in DEFAULT_PARAMS:
            if key in named_keys:
                continue
            p = resolve_param(scenario, key)
            if key.startswith("regime.") and not scenario.data["regime"]["enabled"]:
                skipped.append({"param": key, "reason": "regime disabled"})
            elif not p.value:
                skipped.append({"param": key, "reason": "value is 0 or not set (a relative step does not move it)"})
            else:
                specs.append((key, None, False))
    for key, vals in named:
        specs.append((key, vals, True))

    # resolve every variant before running anything (bad input fails fast)
    plan = []
    for key, vals, user in specs:
        p = resolve_param(scenario, key)
        if vals is None:
            if not p.value:
                raise SensitivityError(f"{key} is {'0' if p.value == 0 else 'not set'} in the scenario, so a "
                                       f"relative step does not move it; give values: --param {key}=LOW,HIGH")
            a, b = sorted((p.value * (1 - step), p.value * (1 + step)))
            lo_v, hi_v = _clip(a, p), _clip(b, p)
        else:
            lo_v, hi_v = float(vals[0]), float(vals[1])
        sc_lo = _variant(scenario, key, _py(lo_v, p))
        sc_hi = _variant(scenario, key, _py(hi_v, p))
        plan.append((key, p.value, lo_v, hi_v, sc_lo, sc_hi))
    if not plan:
        raise SensitivityError("no parameters to vary (the defaults are all 0 or skipped; name some with --param)")

    t0 = time.perf_counter()
    total_runs = 1 + 2 * len(plan)
    if target_se is not None:
        # chunks small enough for >= 20 at the most paths the precision run may need (paired errors)
        cs = chunk_size or sensitivity_chunk_size(max_paths or min(10_000_000, math.ceil(0.25 / target_se ** 2)))
        base = run_to_precision(scenario, target_se, max_paths=max_paths, seed=seed, chunk_size=cs,
                                threads=threads, log=(lambda msg: log(f"[precision] {msg}")) if log else None)
        paths = base.paths
        chunk_size = cs
        precision = base.run_info["precision"]
    else:
        precision = None
    paths = int(paths or DEFAULT_PATHS)
    if paths < 1:
        raise SensitivityError(f"paths must be >= 1, got {paths}")
    chunk_size = int(chunk_size or sensitivity_chunk_size(paths))

    def one(sc, label, k):
        t = time.perf_counter()
        r, summ = simulate_scenario(sc, paths, seed, chunk_size=chunk_size, threads=threads)
        v, se = m.value(r)
        if log:
            log(f"[{k}/{total_runs}] {label}: {m.name} = {_fmt_metric(v, m)} (se {_fmt_se(se, m)}), "
                f"{time.perf_counter() - t:.1f}s")
        return r, summ, v, se

    r0, s0, v0, se0 = one(scenario, "base", 1)
    n_years = len(r0.years)
    rows = []
    for n, (key, base_v, lo_v, hi_v, sc_lo, sc_hi) in enumerate(plan):
        _, s_lo, v_lo, se_lo = one(sc_lo, f"{key} = {lo_v:.6g} (low)", 2 + 2 * n)
        _, s_hi, v_hi, se_hi = one(sc_hi, f"{key} = {hi_v:.6g} (high)", 3 + 2 * n)
        swing_se, method = _swing_se(m, s_lo, s_hi, se_lo, se_hi, paths, chunk_size, n_years)
        rows.append({
            "param": key, "base_value": base_v, "low_value": lo_v, "high_value": hi_v,
            "metric": m.name, "metric_base": v0, "metric_low": v_lo, "metric_high": v_hi,
            "swing": v_hi - v_lo, "swing_se": swing_se, "swing_se_method": method,
            "se_base": se0, "se_low": se_lo, "se_high": se_hi,
            "swing_se_independent": math.sqrt(se_lo ** 2 + se_hi ** 2),
            "base": v0,  # the metric at the base scenario (read by sim.plots.tornado)
        })
    rows.sort(key=lambda r: -abs(r["swing"]))
    return {
        "kind": "sensitivity", "scenario": scenario.name, "scenario_hash": scenario.hash,
        "metric": m.name, "metric_label": m.label, "base": v0, "base_se": se0,
        "step": step, "paths": paths, "seed": seed, "chunk_size": chunk_size,
        "chunks": -(-paths // chunk_size), "runs": total_runs, "precision": precision,
        "swing_se_note": ("swing = metric_high - metric_low; swing_se 'paired': batch-means standard error of "
                          "the per-chunk differences (common random numbers); 'bound': se_low + se_high, a "
                          "conservative bound used where per-chunk values are not kept or there are fewer "
                          f"than {MIN_PAIRED_CHUNKS} full chunks"),
        "wall_seconds": time.perf_counter() - t0, "rows": rows, "skipped": skipped,
    }


SENSITIVITY_COLUMNS = ("param", "base_value", "low_value", "high_value", "metric", "metric_base", "metric_low",
                       "metric_high", "swing", "swing_se", "swing_se_method", "se_base", "se_low", "se_high",
                       "swing_se_independent")


def _clean(x):
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    if isinstance(x, (float, np.floating)):
        return float(x) if math.isfinite(x) else None
    if isinstance(x, np.integer):
        return int(x)
    return x


def write_sensitivity(table: dict, out_dir: str) -> list[str]:
    """sensitivity.csv (SENSITIVITY_COLUMNS, sorted by |swing|) and sensitivity.json (the
    whole table), each written atomically."""
    os.makedirs(out_dir, exist_ok=True)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(SENSITIVITY_COLUMNS)
    for r in table["rows"]:
        w.writerow(["" if r[c] is None else (repr(float(r[c])) if isinstance(r[c], float) else r[c])
                    for c in SENSITIVITY_COLUMNS])
    return [_atomic_write(os.path.join(out_dir, "sensitivity.csv"), buf.getvalue()),
            _atomic_write(os.path.join(out_dir, "sensitivity.json"),
                          json.dumps(_clean(table), indent=1, allow_nan=False))]


def _fmt_metric(v: float, m: Metric) -> str:
    return f"{100 * v:.2f}%" if m.is_probability else f"{v:,.2f}"


def _fmt_se(v: float, m: Metric) -> str:
    return f"{100 * v:.2f}pp" if m.is_probability else f"{v:,.2f}"


def sensitivity_table(table: dict) -> str:
    """The terminal table."""
    m_prob = not table["metric"] == "loss_mean"
    fm = (lambda v: f"{100 * v:.2f}%") if m_prob else (lambda v: f"{v:,.2f}")
    fs = (lambda v: f"{100 * v:+.2f}pp") if m_prob else (lambda v: f"{v:+,.2f}")
    fe = (lambda v: f"{100 * v:.2f}pp") if m_prob else (lambda v: f"{v:,.2f}")
    lines = [f"Sensitivity of {table['metric_label']} [{table['metric']}] in {table['scenario']}: base "
             f"{fm(table['base'])} (se {fe(table['base_se'])}); each parameter x(1 -/+ {table['step']:g}); "
             f"{table['paths']:,} paths, seed {table['seed']}, chunks of {table['chunk_size']:,} "
             "(common random numbers)", ""]
    w = max([len("parameter")] + [len(r["param"]) for r in table["rows"]])
    head = (f"{'parameter':<{w}}  {'base':>10}  {'low':>10}  {'high':>10}  {'at low':>9}  {'at high':>9}  "
            f"{'swing':>10}  {'se(swing)':>12}")
    lines += [head, "-" * len(head)]
    for r in table["rows"]:
        se = fe(r["swing_se"]) + ("" if r["swing_se_method"] == "paired" else "*")
        lines.append(f"{r['param']:<{w}}  {_g(r['base_value']):>10}  {_g(r['low_value']):>10}  "
                     f"{_g(r['high_value']):>10}  {fm(r['metric_low']):>9}  {fm(r['metric_high']):>9}  "
                     f"{fs(r['swing']):>10}  {se:>12}")
    lines.append("")
    lines.append("swing = metric at high - metric at low; se(swing) paired over chunks (common random numbers)"
                 + ("; * = conservative bound se_low + se_high"
                    if any(r["swing_se_method"] != "paired" for r in table["rows"]) else ""))
    if table["skipped"]:
        lines.append("skipped: " + "; ".join(f"{s['param']} ({s['reason']})" for s in table["skipped"]))
    return "\n".join(lines)


def _g(v) -> str:
    return "-" if v is None else f"{v:.4g}"


# ---------------------------------------------------------------------------------- root finding
@dataclass
class Threshold:
    """Result of `find_threshold`: the crossing x (within tol of a point where the function
    crosses the target), the final bracket [lo, hi] with the function's values there, the
    number of function evaluations, and whether the function rises through the target."""

    x: float
    lo: float
    hi: float
    f_lo: float
    f_hi: float
    evaluations: int
    increasing: bool


def find_threshold(f: Callable[[float], float], target: float, lo: float, hi: float, tol: float | None = None, *,
                   max_evaluations: int = 200) -> Threshold:
    """The x in [lo, hi] where f crosses `target`, to within `tol` (default (hi - lo) / 1000).

    f need not be continuous: with A = {x: f(x) >= target}, the answer is within tol of a
    boundary point between A and its complement, given that lo and hi lie on different
    sides (else BracketError). Works for a step function such as a Monte Carlo metric on
    common random numbers. Method: ITP (Oliveira & Takahashi 2021, ACM TOMS 47(1)): never
    more evaluations than bisection plus one, superlinear on smooth functions.
    """
    lo, hi = float(lo), float(hi)
    if not (math.isfinite(lo) and math.isfinite(hi)) or not lo < hi:
        raise SensitivityError(f"need lo < hi, got lo={lo}, hi={hi}")
    tol = (hi - lo) / 1000 if tol is None else float(tol)
    if not tol > 0:
        raise SensitivityError(f"tol must be > 0, got {tol}")
    f_lo, f_hi = float(f(lo)), float(f(hi))
    evals = 2
    if math.isnan(f_lo) or math.isnan(f_hi):
        raise SensitivityError("the function is NaN at an end of the range")
    in_lo, in_hi = f_lo >= target, f_hi >= target
    if in_lo == in_hi:
        side = "above" if in_lo else "below"
        raise BracketError(f"[{lo:.6g}, {hi:.6g}] does not bracket the target {target:.6g}: the value is "
                           f"{f_lo:.6g} at {lo:.6g} and {f_hi:.6g} at {hi:.6g} (both {side} it)")
    increasing = in_hi
    sgn = 1.0 if increasing else -1.0  # y = sgn * (f - target): y(a) < 0 (or = 0 when falling), y(b) >= 0

    def y_of(v):
        return sgn * (v - target)

    a, b, ya, yb = lo, hi, y_of(f_lo), y_of(f_hi)
    fa, fb = f_lo, f_hi
    n_half = max(0, math.ceil(math.log2((b - a) / (2 * tol))))
    n_max = n_half + 1  # n0 = 1
    k1, k2 = 0.2 / (b - a), 2.0
    j = 0
    while b - a > 2 * tol + 8 * math.ulp(max(abs(a), abs(b))) and evals < max_evaluations:  # ulp: rounding
        x_half = 0.5 * (a + b)
        r = tol * 2.0 ** (n_max - j) - 0.5 * (b - a)
        delta = k1 * (b - a) ** k2
        x_f = (yb * a - ya * b) / (yb - ya) if yb != ya else x_half
        sigma = 1.0 if x_half - x_f > 0 else (-1.0 if x_half - x_f < 0 else 0.0)
        x_t = x_f + sigma * delta if delta <= abs(x_half - x_f) else x_half
        x = x_t if abs(x_t - x_half) <= r else x_half - sigma * r
        x = min(max(x, a), b)
        if x <= a or x >= b:  # degenerate (rounding): bisect
            x = x_half
        v = float(f(x))
        evals += 1
        if math.isnan(v):
            raise SensitivityError(f"the function is NaN at {x:.6g}")
        y = y_of(v)
        if (v >= target) == increasing:  # x is on hi's side
            b, yb, fb = x, y, v
        else:
            a, ya, fa = x, y, v
        j += 1
    return Threshold(0.5 * (a + b), a, b, fa, fb, evals, increasing)


# ---------------------------------------------------------------------------------- reverse stress
def reverse_stress(scenario, param: str, target: float, *, metric: str = "p2", lo: float | None = None,
                   hi: float | None = None, tol: float | None = None, paths: int | None = None,
                   seed: int | None = None, chunk_size: int = DEFAULT_CHUNK_SIZE, threads: int | None = None,
                   z: float = Z95, log: Callable[[str], None] | None = None) -> dict:
    """The value of `param` at which `metric` crosses `target` (see the module docstring).

    lo/hi default to the scenario's value x (1 -/+ 0.5), clipped to the parameter's range.
    Every run uses the same seed and chunk layout. Returns a dict (written as
    reverse_stress.json): the crossing, its final bracket and the metric there, the 95%
    interval (`interval`: [low, high], None where that end lies outside [lo, hi]) and every
    run made (`evaluations`).
    """
    m = parse_metric(metric, scenario)
    p = resolve_param(scenario, param)
    seed = int(scenario.data["seed"] if seed is None else seed)
    paths = int(paths or DEFAULT_PATHS)
    if lo is None or hi is None:
        if not p.value:
            raise SensitivityError(f"{param} is {'0' if p.value == 0 else 'not set'} in the scenario: "
                                   "give the range with --lo and --hi")
        a, b = sorted((p.value * 0.5, p.value * 1.5))
        lo = _clip(a, p) if lo is None else lo
        hi = _clip(b, p) if hi is None else hi
    lo, hi = float(lo), float(hi)
    if not lo < hi:
        raise SensitivityError(f"need --lo < --hi, got {lo:g} and {hi:g}")
    if m.is_probability and not 0 < target < 1:
        raise SensitivityError(f"target {target:g} is not a probability in (0, 1) (metric {m.name})")
    for v in (lo, hi):  # validate the ends before any run
        _variant(scenario, param, _py(v, p))
    if p.is_int and tol is None:
        tol = 0.5
    main_tol = (hi - lo) / 1000 if tol is None else float(tol)
    cache: dict[float, tuple[float, float]] = {}
    t0 = time.perf_counter()

    def evaluate(x: float) -> tuple[float, float]:
        x = float(x)
        if x not in cache:
            t = time.perf_counter()
            r, _ = simulate_scenario(_variant(scenario, param, _py(x, p)), paths, seed, chunk_size=chunk_size,
                                     threads=threads)
            cache[x] = m.value(r)
            if log:
                v, se = cache[x]
                log(f"[run {len(cache)}] {param} = {x:.6g}: {m.name} = {_fmt_metric(v, m)} "
                    f"(se {_fmt_se(se, m)}), {time.perf_counter() - t:.1f}s")
        return cache[x]

    try:
        main = find_threshold(lambda x: evaluate(x)[0], target, lo, hi, main_tol)
    except BracketError:
        (v_lo, _), (v_hi, _) = evaluate(lo), evaluate(hi)
        width = hi - lo
        if v_lo == v_hi:
            a, b = lo - width, hi + width
        elif (v_lo < v_hi) == (target > max(v_lo, v_hi)):  # the crossing lies above hi
            a, b = lo, hi + 2 * width
        else:
            a, b = lo - 2 * width, hi
        a, b = _clip(a, p), _clip(b, p)
        side = "above" if v_lo >= target else "below"
        hint = (f"try a wider range, e.g. --lo {a:.6g} --hi {b:.6g}" if (a, b) != (lo, hi)
                else f"the parameter's whole range does not reach it")
        raise BracketError(f"{param} in [{lo:.6g}, {hi:.6g}] does not bracket {m.name} = {_fmt_metric(target, m)}: "
                           f"{m.name} is {_fmt_metric(v_lo, m)} at {lo:.6g} and {_fmt_metric(v_hi, m)} at "
                           f"{hi:.6g} (both {side} the target); {hint}") from None

    def band_root(sign: float):
        """Root of metric + sign * z * se = target, bracketed by the runs already made."""
        def g(x):
            v, se = evaluate(x)
            return v + sign * z * se

        xs = sorted(cache)
        ins = [g(x) >= target for x in xs]
        pairs = [(xs[i], xs[i + 1]) for i in range(len(xs) - 1) if ins[i] != ins[i + 1]]
        if not pairs:
            return None
        a, b = min(pairs, key=lambda ab: abs(0.5 * (ab[0] + ab[1]) - main.x))
        if b - a <= 2 * main_tol:
            return 0.5 * (a + b)
        return find_threshold(g, target, a, b, main_tol).x

    r_minus, r_plus = band_root(-1.0), band_root(+1.0)
    # metric - z se reaches the target on the "outer" side of the crossing, + z se on the inner
    if main.increasing:
        interval = [r_plus, r_minus]
    else:
        interval = [r_minus, r_plus]
    v_a, se_a = evaluate(main.lo)
    v_b, se_b = evaluate(main.hi)
    evaluations = [{"value": x, "metric": cache[x][0], "se": cache[x][1]} for x in sorted(cache)]
    return {
        "kind": "reverse_stress", "scenario": scenario.name, "scenario_hash": scenario.hash,
        "param": param, "base_value": p.value, "metric": m.name, "metric_label": m.label, "target": target,
        "lo": lo, "hi": hi, "tol": main_tol, "paths": paths, "seed": seed, "chunk_size": chunk_size, "z": z,
        "crossing": main.x, "bracket": [main.lo, main.hi], "metric_at_bracket": [v_a, v_b],
        "se_at_bracket": [se_a, se_b], "direction": "increasing" if main.increasing else "decreasing",
        "interval": interval,
        "interval_note": (f"parameter values where {m.name} - {z:.2f} se and {m.name} + {z:.2f} se cross the "
                          "target (same seed and chunk layout); None: that end lies outside [lo, hi]"),
        "runs": len(cache), "wall_seconds": time.perf_counter() - t0, "evaluations": evaluations,
    }


def write_reverse_stress(res: dict, out_dir: str) -> str:
    os.makedirs(out_dir, exist_ok=True)
    return _atomic_write(os.path.join(out_dir, "reverse_stress.json"),
                         json.dumps(_clean(res), indent=1, allow_nan=False))


def reverse_stress_text(res: dict) -> str:
    prob = res["metric"] != "loss_mean"
    fm = (lambda v: f"{100 * v:.3f}%") if prob else (lambda v: f"{v:,.4g}")
    lo_i, hi_i = res["interval"]
    iv = (f"{'<' + format(res['lo'], '.6g') if lo_i is None else format(lo_i, '.6g')} .. "
          f"{'>' + format(res['hi'], '.6g') if hi_i is None else format(hi_i, '.6g')}")
    return "\n".join([
        f"{res['metric_label']} [{res['metric']}] crosses {fm(res['target'])} at {res['param']} = "
        f"{res['crossing']:.6g} (scenario value {_g(res['base_value'])}; {res['direction']} in the parameter)",
        f"  95% interval from the Monte Carlo error: {iv}",
        f"  bracket [{res['bracket'][0]:.6g}, {res['bracket'][1]:.6g}]: {res['metric']} = "
        f"{fm(res['metric_at_bracket'][0])} / {fm(res['metric_at_bracket'][1])}",
        f"  {res['runs']} runs of {res['paths']:,} paths, seed {res['seed']} (common random numbers), "
        f"{res['wall_seconds']:.1f}s",
    ])


# ---------------------------------------------------------------------------------- command line
def _float(text: str) -> float:
    import argparse

    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(v):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return v


def positive_float(text: str) -> float:
    import argparse

    v = _float(text)
    if v <= 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}")
    return v


def add_parsers(sub) -> None:
    """`bubblesim sensitivity` and `bubblesim reverse-stress`."""
    from .cli import _positive_int, _seed

    metric_help = "metric: " + "; ".join(f"{k} = {v}" for k, v in METRIC_FORMS.items())
    s = sub.add_parser("sensitivity", help="one-at-a-time (tornado) sensitivity of a metric",
                       description="Run the scenario with each parameter at x(1-step) and x(1+step) (common "
                       "random numbers) and rank the parameters by the swing of a metric. Default parameters: "
                       + ", ".join(DEFAULT_PARAMS) + " (those the scenario sets to non-zero values).")
    s.add_argument("scenario", help="scenario TOML file")
    s.add_argument("--param", action="append", default=[], metavar="KEY[=LOW,HIGH]",
                   help="also vary this dotted key (e.g. entity.Oracle.cash); =LOW,HIGH gives the values "
                   "instead of the relative step (repeatable)")
    s.add_argument("--no-defaults", action="store_true", help="vary only the --param keys")
    s.add_argument("--step", type=_float, default=0.2, help="relative step, in (0, 1) (default 0.2: +/-20%%)")
    s.add_argument("--metric", default="p2", help=metric_help.replace("%", "%%") + " (default p2)")
    s.add_argument("--paths", type=_positive_int, help=f"paths per run (default {DEFAULT_PATHS:,})")
    s.add_argument("--target-se", type=positive_float, default=None,
                   help="choose the paths per run by running the base scenario until every default "
                   "probability's standard error is <= this")
    s.add_argument("--max-paths", type=_positive_int, default=None, help="cap for --target-se")
    s.add_argument("--seed", type=_seed, help="root seed (default: the scenario's)")
    s.add_argument("--chunk-size", type=_positive_int, default=None,
                   help="paths per chunk (default 8192, or paths/20 when that gives fewer than 20 chunks; "
                   "with --target-se: the cap's paths/20)")
    s.add_argument("--threads", type=_positive_int, default=None, help="worker threads (default: all cores)")
    s.add_argument("--out", default=None, help="output folder (default: results/<scenario>-sensitivity)")
    s.add_argument("--quiet", action="store_true", help="no progress and no table")

    r = sub.add_parser("reverse-stress", help="find the parameter value at which a metric crosses a target",
                       description="Root-find (ITP, on common random numbers) the value of one parameter at "
                       "which the metric crosses the target, with an interval from the Monte Carlo error.")
    r.add_argument("scenario", help="scenario TOML file")
    r.add_argument("--param", required=True, metavar="KEY", help="dotted scenario key, e.g. revenue.growth0")
    r.add_argument("--metric", default="p2", help=metric_help.replace("%", "%%") + " (default p2)")
    r.add_argument("--target", required=True, type=_float, help="target value of the metric (e.g. 0.05)")
    r.add_argument("--lo", type=_float, default=None, help="low end of the search range (default: value x 0.5)")
    r.add_argument("--hi", type=_float, default=None, help="high end of the search range (default: value x 1.5)")
    r.add_argument("--tol", type=positive_float, default=None,
                   help="tolerance on the parameter (default (hi - lo)/1000)")
    r.add_argument("--paths", type=_positive_int, help=f"paths per run (default {DEFAULT_PATHS:,})")
    r.add_argument("--seed", type=_seed, help="root seed (default: the scenario's)")
    r.add_argument("--chunk-size", type=_positive_int, default=None, help="paths per chunk (default 8192)")
    r.add_argument("--threads", type=_positive_int, default=None, help="worker threads (default: all cores)")
    r.add_argument("--out", default=None, help="output folder (default: results/<scenario>-reverse-stress)")
    r.add_argument("--quiet", action="store_true", help="no progress and no summary")


def _log(quiet: bool):
    if quiet:
        return None

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    return log


def cmd_sensitivity(args) -> int:
    from .cli import EXIT_BAD_INPUT, EXIT_OK
    from .scenario import load_scenario

    scenario = load_scenario(args.scenario)
    if args.max_paths is not None and args.target_se is None:
        print("bubblesim: --max-paths needs --target-se", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.target_se is not None and args.paths is not None:
        print("bubblesim: give --paths or --target-se, not both", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        table = sensitivity(scenario, args.param, step=args.step, metric=args.metric, paths=args.paths,
                            seed=args.seed, chunk_size=args.chunk_size, threads=args.threads,
                            defaults=not args.no_defaults, target_se=args.target_se, max_paths=args.max_paths,
                            log=_log(args.quiet))
    except SensitivityError as err:
        print(f"bubblesim: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    out = args.out or os.path.join("results", f"{scenario.name}-sensitivity")
    written = write_sensitivity(table, out)
    if not args.quiet:
        print(sensitivity_table(table))
        print(f"\nwrote {', '.join(os.path.basename(w) for w in written)} to {out}/ "
              f"({table['runs']} runs, {table['wall_seconds']:.1f}s)")
    return EXIT_OK


def cmd_reverse_stress(args) -> int:
    from .cli import EXIT_BAD_INPUT, EXIT_OK
    from .scenario import load_scenario

    scenario = load_scenario(args.scenario)
    try:
        res = reverse_stress(scenario, args.param, args.target, metric=args.metric, lo=args.lo, hi=args.hi,
                             tol=args.tol, paths=args.paths, seed=args.seed,
                             chunk_size=args.chunk_size or DEFAULT_CHUNK_SIZE, threads=args.threads,
                             log=_log(args.quiet))
    except SensitivityError as err:
        print(f"bubblesim: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    out = args.out or os.path.join("results", f"{scenario.name}-reverse-stress")
    path = write_reverse_stress(res, out)
    if not args.quiet:
        print(reverse_stress_text(res))
        print(f"\nwrote {os.path.basename(path)} to {out}/")
    return EXIT_OK
