"""Structural validation of merged scenario data against the schema: types, ranges, defaults, locations of every error."""

from __future__ import annotations

import copy
import datetime as _dt
import math
import re
from typing import Any

from .context import _Ctx
from .crosschecks import _cross_checks
from .errors import _describe, _fmt, _suggest
from .limits import has_unsafe, limit, over
from .schema import ARRAYS, DATE_HI, DATE_LO, REQUIRED, SECTIONS, TOP, Field
from .source import _YEAR_RE


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _range_text(f: Field) -> str:
    lo, hi = f.lo, f.hi
    if lo is not None and hi is not None:
        return f"in {'(' if f.lo_open else '['}{_fmt(lo)}, {_fmt(hi)}]"
    if lo is not None:
        return f"{'>' if f.lo_open else '>='} {_fmt(lo)}"
    if hi is not None:
        return f"<= {_fmt(hi)}"
    return ""


def _in_range(x: float, f: Field) -> bool:
    if f.lo is not None and (x <= f.lo if f.lo_open else x < f.lo):
        return False
    if f.hi is not None and x > f.hi:
        return False
    return True


def _pct_hint(x: float, f: Field) -> str:
    """' (did you mean 0.25? ...)' when x looks like a percentage typed for a fraction."""
    if not f.pct or abs(x) < 1 or abs(x) > 1e6:
        return ""
    guess = x / 100
    plain = Field(f.kind, f.doc, lo=f.lo, hi=f.hi, lo_open=f.lo_open)
    if not _in_range(guess, plain) or _unusual(guess, f):
        return ""
    return f" (did you mean {_fmt(guess)}? this is a fraction, not a percentage)"


def _unusual(x: float, f: Field) -> str:
    """'' or why x, inside the hard range, is unusual for this field."""
    if f.warn_hi is not None and x > f.warn_hi:
        return f"unusually high (above {_fmt(f.warn_hi)})"
    if f.warn_lo is not None and x < f.warn_lo:
        return f"unusually low (below {_fmt(f.warn_lo)})"
    return ""


def _out_of_range(x, f: Field, ctx: _Ctx, path: tuple, what: str) -> bool:
    """Report x outside the field's hard range (error) or its usual range (warning); True on error."""
    if not _in_range(x, f):
        ctx.error(path, f"expected {what}, found {_fmt(x)}{_pct_hint(x, f)}")
        return True
    why = _unusual(x, f)
    if why:
        ctx.warn(path, f"{_fmt(x)} is {why} for {f.unit or 'this field'}{_pct_hint(x, f)}")
    return False


def _expected(f: Field) -> str:
    unit = f" ({f.unit})" if f.unit and f.kind in ("float", "int", "schedule") \
        and not f.unit.startswith("share in") else ""
    rng = _range_text(f)
    if f.kind == "float":
        return f"a number{(' ' + rng) if rng else ''}{unit}"
    if f.kind == "int":
        return f"an integer{(' ' + rng) if rng else ''}{unit}"
    if f.kind == "bool":
        return "true or false"
    if f.kind == "str":
        return "a string"
    if f.kind == "date":
        return "a decimal year (e.g. 2026.25) or a TOML date (e.g. 2026-04-01, unquoted)"
    if f.kind == "schedule":
        amt = f"amounts {rng}" if rng else "amounts"
        return f"a table of year = amount, e.g. {{ 2027 = 25.0, 2028 = 50.0 }} ({amt}{', ' + f.unit if f.unit else ''})"
    if f.kind == "enum":
        return "one of " + ", ".join(repr(c) for c in f.choices)
    if f.kind == "ref":
        return f"the name of {'a contract' if f.ref == 'contract' else 'an entity'} (a string)"
    return f.kind


def _date_to_year(d: _dt.date) -> float:
    days = 366 if (d.year % 4 == 0 and (d.year % 100 != 0 or d.year % 400 == 0)) else 365
    frac = d.timetuple().tm_yday - 1
    if isinstance(d, _dt.datetime):
        frac += (d.hour * 3600 + d.minute * 60 + d.second + d.microsecond / 1e6) / 86400.0
    return d.year + frac / days


# --------------------------------------------------------------------------------------
# Field-level validation
# --------------------------------------------------------------------------------------

_BAD = object()


def _check_value(v: Any, f: Field, path: tuple, ctx: _Ctx) -> Any:
    """Type/range-check one value; return it converted, or _BAD after reporting."""
    exp = _expected(f)
    k = f.kind
    if k in ("float", "int"):
        if not _is_number(v):
            hint = ""
            if isinstance(v, str):
                try:
                    float(v)
                    hint = " (remove the quotes)"
                except ValueError:
                    pass
            ctx.error(path, f"expected {exp}, found {_describe(v)}{hint}")
            return _BAD
        if isinstance(v, float) and not math.isfinite(v):
            ctx.error(path, f"expected {exp}, found {_describe(v)}")
            return _BAD
        if k == "int":
            if isinstance(v, float):
                if not v.is_integer():
                    ctx.error(path, f"expected {exp}, found {_describe(v)}")
                    return _BAD
                v = int(v)
        if _out_of_range(v, f, ctx, path, exp):  # before float(): an integer literal may exceed float range
            return _BAD
        try:
            return float(v) if k == "float" else v
        except OverflowError:
            ctx.error(path, f"expected {exp}, found an integer too large for a number")
            return _BAD
    if k == "bool":
        if not isinstance(v, bool):
            hint = " (write true or false, unquoted)" if isinstance(v, str) and v.lower() in ("true", "false") else ""
            ctx.error(path, f"expected {exp}, found {_describe(v)}{hint}")
            return _BAD
        return v
    if k in ("str", "ref"):
        if not isinstance(v, str):
            ctx.error(path, f"expected {exp}, found {_describe(v)}")
            return _BAD
        bad = has_unsafe(v) if (k == "ref" or path[-1] == "name") else None
        if bad:
            ctx.error(path, f"names may not contain a control character ({bad} found): names are printed "
                            "in terminals and used in file names")
            return _BAD
        return v
    if k == "enum":
        if not isinstance(v, str) or v not in f.choices:
            ctx.error(path, f"expected {exp}, found {_describe(v)}{_suggest(v, f.choices)}")
            return _BAD
        return v
    if k == "date":
        if isinstance(v, _dt.date):
            v = _date_to_year(v)
        if _is_number(v) and (isinstance(v, int) or math.isfinite(v)):
            if not DATE_LO <= v <= DATE_HI:
                ctx.error(path, f"expected a date between {DATE_LO:g} and {DATE_HI:g}, found {_fmt(v)}")
                return _BAD
            return float(v)
        hint = ""
        if isinstance(v, str) and re.match(r"^\d{4}-\d{2}-\d{2}", v):
            hint = " (write the date without quotes)"
        ctx.error(path, f"expected {exp}, found {_describe(v)}{hint}")
        return _BAD
    if k == "schedule":
        if not isinstance(v, dict):
            ctx.error(path, f"expected {exp}, found {_describe(v)}")
            return _BAD
        out: dict[int, float] = {}
        ok = True
        for yk, amt in v.items():
            ypath = path + (str(yk),)
            if isinstance(yk, bool) or not (isinstance(yk, int) or (isinstance(yk, str) and _YEAR_RE.match(yk))):
                ctx.error(ypath, f"schedule keys must be calendar years such as 2027, found {yk!r}")
                ok = False
                continue
            year = int(yk)
            if not _is_number(amt) or (isinstance(amt, float) and not math.isfinite(amt)):
                ctx.error(ypath, f"expected an amount {_range_text(f)} ({f.unit}) for year {year}, "
                                 f"found {_describe(amt)}")
                ok = False
                continue
            if _out_of_range(amt, f, ctx, ypath, f"an amount {_range_text(f)} ({f.unit}) for year {year}"):
                ok = False
                continue
            if year in out:
                ctx.error(ypath, f"year {year} given twice")
                ok = False
                continue
            out[year] = float(amt)
        return dict(sorted(out.items())) if ok else _BAD
    raise AssertionError(f"unknown field kind {k!r}")  # schema bug


def _default(f: Field) -> Any:
    d = f.default
    if d is None or d is REQUIRED:
        return None
    if f.kind == "float":
        return float(d)
    return copy.deepcopy(d)


def _where_else(key: str) -> str:
    """A hint when an unknown key is a valid key somewhere else."""
    if key in TOP:
        return (f" ('{key}' is a top-level key: top-level keys must come before the first "
                f"[table] or [[array]] header)")
    if key in SECTIONS:
        return f" ('{key}' is a section: write it as [{key}] at top level)"
    if key in ARRAYS:
        return f" ('{key}' is an array of tables: write it as [[{key}]] at top level)"
    homes = [f"[{s}]" for s, fields in SECTIONS.items() if key in fields]
    homes += [f"[[{a}]]" for a, (fields, _) in ARRAYS.items() if key in fields]
    homes += [f"[[investment.{n}]]" for n, fields in ARRAYS["investment"][1].items() if key in fields]
    if homes:
        return f" ('{key}' is a key of {' / '.join(homes)})"
    return ""


def _check_table(tbl: dict, fields: dict[str, Field], path: tuple, ctx: _Ctx, where: str,
                 nested: dict[str, dict[str, Field]] | None = None) -> dict:
    nested = nested or {}
    allowed = list(fields) + list(nested)
    for k in tbl:
        if k not in allowed:
            sug = _suggest(k, allowed)
            ctx.error(path + (k,), f"unknown key '{k}' in {where}"
                      + (sug or _where_else(k))
                      + ("" if sug else f"; valid keys: {', '.join(allowed)}"))
    out: dict = {}
    for k, f in fields.items():
        v = tbl.get(k)
        if v is None:
            if f.default is REQUIRED:
                ctx.error(path + (k,), f"missing required key: expected {_expected(f)} -- {f.doc}")
            out[k] = _default(f)
            continue
        r = _check_value(v, f, path + (k,), ctx)
        out[k] = None if r is _BAD else r
    return out


def _validate_structure(merged: dict, ctx: _Ctx) -> dict:
    out: dict = {}
    allowed = list(TOP) + list(SECTIONS) + list(ARRAYS) + ["sweep", "patch"]  # [sweep]: sim.studies.variants;
    # [patch]: sim.scenario.patch (taken out before validation, listed here for did-you-mean)
    for k in merged:
        if k not in allowed:
            sug = _suggest(k, allowed)
            what = f"section [{k}]" if isinstance(merged[k], dict) else f"top-level key '{k}'"
            ctx.error((k,), f"unknown {what}" + (sug or _where_else(k))
                      + ("" if sug else f"; valid: {', '.join(allowed)}"))
    for k, f in TOP.items():
        v = merged.get(k)
        if v is None:
            if f.default is REQUIRED:
                ctx.error((k,), f"missing required key: expected {_expected(f)} -- {f.doc}")
            out[k] = _default(f)
        else:
            r = _check_value(v, f, (k,), ctx)
            out[k] = None if r is _BAD else r
    for s, fields in SECTIONS.items():
        tbl = merged.get(s)
        if tbl is None:
            tbl = {}
        if not isinstance(tbl, dict):
            ctx.error((s,), f"expected a table [{s}], found {_describe(tbl)}")
            tbl = {}
        out[s] = _check_table(tbl, fields, (s,), ctx, f"[{s}]")
    for a, (fields, nested) in ARRAYS.items():
        arr = merged.get(a)
        if arr is None:
            arr = []
        if isinstance(arr, dict):
            ctx.error((a,), f"expected an array of tables (write [[{a}]] before each item), "
                            f"found a table ([{a}])")
            arr = []
        elif not isinstance(arr, (list, tuple)):
            ctx.error((a,), f"expected an array of tables [[{a}]], found {_describe(arr)}")
            arr = []
        cap_name = "BUBBLESIM_MAX_ENTITIES" if a == "entity" else "BUBBLESIM_MAX_CONTRACTS"
        if len(arr) > limit(cap_name):
            ctx.error((a,), f"too many [[{a}]] tables: " + over(cap_name, len(arr)))
            arr = []
        items = []
        for i, item in enumerate(arr):
            if not isinstance(item, dict):
                ctx.error((a, i), f"expected a table, found {_describe(item)}")
                continue
            r = _check_table(item, fields, (a, i), ctx, f"[[{a}]]", nested)
            for nk, nfields in nested.items():
                sub = item.get(nk)
                subs = []
                if sub is None:
                    sub = []
                if isinstance(sub, dict):
                    ctx.error((a, i, nk), f"expected an array of tables (write [[{a}.{nk}]] before each "
                                          f"item), found a table ([{a}.{nk}])")
                    sub = []
                elif not isinstance(sub, (list, tuple)):
                    ctx.error((a, i, nk), f"expected an array of tables [[{a}.{nk}]], found {_describe(sub)}")
                    sub = []
                if len(sub) > limit("BUBBLESIM_MAX_CONTRACTS"):
                    ctx.error((a, i, nk), f"too many [[{a}.{nk}]] tables: "
                              + over("BUBBLESIM_MAX_CONTRACTS", len(sub)))
                    sub = []
                for j, t in enumerate(sub):
                    if not isinstance(t, dict):
                        ctx.error((a, i, nk, j), f"expected a table, found {_describe(t)}")
                        continue
                    subs.append(_check_table(t, nfields, (a, i, nk, j), ctx, f"[[{a}.{nk}]]"))
                r[nk] = subs
            items.append(r)
        out[a] = items
    return out


def _validate(merged: dict, ctx: _Ctx) -> dict:
    data = _validate_structure(merged, ctx)
    ctx.raise_if_any()
    _cross_checks(data, ctx)
    ctx.raise_if_any()
    return data
