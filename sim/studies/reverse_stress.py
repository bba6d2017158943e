"""Reverse stress: the parameter value at which a metric crosses a target.

Reverse stress (`reverse_stress`, `bubblesim reverse-stress`): the parameter value at
which the metric crosses a target, by the ITP root finder (`find_threshold`: bisection's
worst case, faster on smooth functions) on the common-random-numbers function, and an
interval from the Monte Carlo error: where metric - z*se and metric + z*se cross the
target (same root finder, reusing the runs already made).
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass
from typing import Callable

from sim.engine.runner import DEFAULT_CHUNK_SIZE
from sim.engine.stats import Z95
from sim.io import atomic_write as _atomic_write
from sim.studies.metrics import (
    BracketError,
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
    resolve_param,
)
from sim.studies.precision import (
    simulate_scenario,
)
from sim.studies.sensitivity import (
    DEFAULT_PATHS,
)


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
                else "the parameter's whole range does not reach it")
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
