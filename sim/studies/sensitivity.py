"""One-at-a-time (tornado) sensitivity of a metric to scenario parameters.

Everything in sim.studies re-runs the engine on variants of one scenario (`Scenario.with_overrides`)
with the **same seed and chunk layout**, so every variant sees the same random numbers path
by path (common random numbers, sim.engine). Differences between variants are then
differences of the model, not Monte Carlo noise, and the metric as a function of a
parameter is a fixed (piecewise constant, nearly monotone) function for a given seed, on
which a root finder works.

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
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import time
from typing import Callable

import numpy as np

from sim.engine.runner import DEFAULT_CHUNK_SIZE
from sim.io import atomic_write as _atomic_write
from sim.studies.metrics import (
    Metric,
    SensitivityError,
    _clean,
    _fmt_metric,
    _fmt_se,
    _g,
    parse_metric,
)
from sim.studies.params import (
    _clip,
    _py,
    _variant,
    parse_param_spec,
    resolve_param,
)
from sim.studies.precision import (
    run_to_precision,
    simulate_scenario,
)

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


MIN_PAIRED_CHUNKS = 10


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
    for key, vals, _user in specs:
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


