"""Scenario parameters addressed by dotted key: their value, schema range and a variant that changes them."""

from __future__ import annotations

from dataclasses import dataclass

from sim.scenario import ScenarioError
from sim.studies.metrics import (
    SensitivityError,
)


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
    from sim.scenario.overrides import _resolve_override_key
    from sim.scenario.schema import ARRAYS, SECTIONS, TOP

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
