"""Load, merge and validate scenario TOML files against the declarative schema (sim.schema).

    sc = load_scenario("scenarios/base.toml")
    sc.data["revenue"]["initial"]          # every schema field present, defaults filled in
    sc2 = sc.with_overrides({"revenue.growth0": 0.4, "entity.Oracle.cash": 5.0})

What the loader guarantees about `Scenario.data`
-----------------------------------------------
* `extends` chains are resolved (tables deep-merged, scalars and arrays -- including
  arrays of tables -- replaced whole by the child).
* Every field of the schema is present: top-level fields, every section (a dict), every
  array of tables (a list of dicts; tranches under ``investment[i]["tranche"]``).
  Optional fields that are not set hold ``None``.
* float fields hold floats (ints are coerced), int fields ints, "date" fields decimal years
  (float), "schedule" fields ``dict[int, float]`` (calendar year -> $B) or ``None``.
* Every cross-reference, range and consistency rule below was checked.

Errors
------
Every problem is a `ScenarioError` whose text names the file, the line where it could be
found (best effort: tomllib reports no positions, so the loader scans the source text), the
dotted key (``contract["Oracle OCI"].payee``), what was expected and what was found, and a
"did you mean" suggestion for misspellings.  All problems of one validation pass are
collected; the first is the error's own file/key/line/message, the others are in
``err.errors``, and ``str(err)`` lists them all, one per line, ready for stderr.
Cross-checks (references, horizons, sums) run only when every field is well-typed.
"""

from __future__ import annotations

import copy
import datetime as _dt
import difflib
import hashlib
import json
import math
import os
import re
import tomllib
from dataclasses import dataclass, field
from typing import Any

from .schema import ARRAYS, REQUIRED, SECTIONS, TOP, Field

__all__ = ["ScenarioError", "Scenario", "load_scenario", "scenario_from_dict"]

TOL = 1e-9  # tolerance of horizon and sum checks
_MAX_SHOWN = 25  # errors listed in str(ScenarioError)
_OVERRIDES = "<overrides>"


# --------------------------------------------------------------------------------------
# The error
# --------------------------------------------------------------------------------------


class ScenarioError(ValueError):
    """A scenario problem: file, dotted key, line (None if unknown) and message.

    `message` is the description alone ("unknown entity 'Oracel' (did you mean 'Oracle'?)");
    `str(err)` is the full text: ``file:line: key: message``, followed by one line per
    further error found in the same pass (all of them in `errors`, this one first).
    """

    def __init__(self, file: str, key: str, line: int | None, message: str,
                 more: tuple["ScenarioError", ...] | list["ScenarioError"] = ()):
        self.file = file
        self.key = key
        self.line = line
        self.message = message
        self.more = tuple(more)
        super().__init__(self._render())

    @property
    def errors(self) -> list["ScenarioError"]:
        return [self, *self.more]

    def one_line(self) -> str:
        loc = self.file if self.line is None else f"{self.file}:{self.line}"
        return f"{loc}: {self.key}: {self.message}" if self.key else f"{loc}: {self.message}"

    def _render(self) -> str:
        errs = self.errors
        lines = [e.one_line() for e in errs[:_MAX_SHOWN]]
        if len(errs) > _MAX_SHOWN:
            lines.append(f"... and {len(errs) - _MAX_SHOWN} more errors")
        return "\n".join(lines)

    def __reduce__(self):  # picklable (multiprocessing workers)
        return (ScenarioError, (self.file, self.key, self.line, self.message, self.more))


# --------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------


def _fmt(x: Any) -> str:
    if isinstance(x, bool):
        return "true" if x else "false"
    if isinstance(x, int):
        return str(x)
    if isinstance(x, float):
        if math.isnan(x):
            return "nan"
        if math.isinf(x):
            return "inf" if x > 0 else "-inf"
        return format(x, ".10g")
    return str(x)


def _describe(v: Any) -> str:
    """What was found, for 'expected X, found Y'."""
    if isinstance(v, bool):
        return f"boolean {_fmt(v)}"
    if isinstance(v, (int, float)):
        return f"number {_fmt(v)}"
    if isinstance(v, str):
        s = v if len(v) <= 60 else v[:57] + "..."
        return f"string {s!r}"
    if isinstance(v, _dt.datetime):
        return f"datetime {v.isoformat()}"
    if isinstance(v, _dt.date):
        return f"date {v.isoformat()}"
    if isinstance(v, _dt.time):
        return f"time {v.isoformat()}"
    if isinstance(v, dict):
        return "a table"
    if isinstance(v, (list, tuple)):
        if v and all(isinstance(x, dict) for x in v):
            return "an array of tables"
        return "an array"
    return f"{type(v).__name__} {v!r}"


def _suggest(word: Any, candidates, n: int = 1) -> str:
    """' (did you mean 'x'?)' or ''."""
    if not isinstance(word, str):
        return ""
    cands = [c for c in candidates if isinstance(c, str)]
    m = difflib.get_close_matches(word, cands, n=n, cutoff=0.6)
    if not m:
        low = {c.lower(): c for c in cands}
        if word.lower() in low:
            m = [low[word.lower()]]
    if not m:
        return ""
    return " (did you mean " + " or ".join(repr(x) for x in m) + "?)"


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


_YEAR_RE = re.compile(r"^\s*[0-9]{1,4}\s*$")


# --------------------------------------------------------------------------------------
# Best-effort line numbers: a structural scan of the TOML text
# --------------------------------------------------------------------------------------

_KEYSEG = r'(?:"(?:[^"\\]|\\.)*"|\'[^\']*\'|[A-Za-z0-9_-]+)'
_DOTTED = rf"{_KEYSEG}(?:\s*\.\s*{_KEYSEG})*"
_AOT_RE = re.compile(rf"^\s*\[\[\s*({_DOTTED})\s*\]\]")
_TAB_RE = re.compile(rf"^\s*\[\s*({_DOTTED})\s*\]")
_KV_RE = re.compile(rf"^\s*({_DOTTED})\s*=(.*)$")
_INLINE_KEY_RE = re.compile(rf"[{{,]\s*({_DOTTED})\s*=")
_STR_RE = re.compile(r'"""[\s\S]*?"""|\'\'\'[\s\S]*?\'\'\'|"(?:[^"\\]|\\.)*"|\'[^\']*\'')


def _split_dotted(s: str) -> tuple[str, ...]:
    out = []
    for seg in re.findall(_KEYSEG, s):
        if seg.startswith('"'):
            try:
                seg = json.loads(seg)
            except ValueError:
                seg = seg[1:-1]
        elif seg.startswith("'"):
            seg = seg[1:-1]
        out.append(seg)
    return tuple(out)


def _bracket_delta(s: str) -> int:
    s = _STR_RE.sub("", s)
    s = s.split("#", 1)[0]
    return s.count("[") + s.count("{") - s.count("]") - s.count("}")


def _line_index(text: str) -> dict[tuple, int]:
    """Map key paths (array items as int indices) to the first line that defines them."""
    idx: dict[tuple, int] = {}
    aot_count: dict[tuple, int] = {}

    def resolve(segs: tuple[str, ...]) -> tuple:
        res: tuple = ()
        for s in segs:
            res += (s,)
            if res in aot_count:
                res += (aot_count[res] - 1,)
        return res

    cur: tuple = ()
    depth = 0
    in_ml: str | None = None
    for lineno, line in enumerate(text.splitlines(), 1):
        if in_ml:
            if in_ml in line:
                in_ml = None
            continue
        if depth > 0:
            depth += _bracket_delta(line)
            continue
        m = _AOT_RE.match(line)
        if m:
            segs = _split_dotted(m.group(1))
            arr = resolve(segs[:-1]) + (segs[-1],)
            n = aot_count.get(arr, 0)
            aot_count[arr] = n + 1
            cur = arr + (n,)
            idx.setdefault(arr, lineno)
            idx.setdefault(cur, lineno)
            continue
        m = _TAB_RE.match(line)
        if m:
            cur = resolve(_split_dotted(m.group(1)))
            idx.setdefault(cur, lineno)
            continue
        m = _KV_RE.match(line)
        if m:
            keys = _split_dotted(m.group(1))
            for k in range(1, len(keys) + 1):
                idx.setdefault(cur + keys[:k], lineno)
            p = cur + keys
            value = m.group(2).strip()
            for q in ('"""', "'''"):
                if value.startswith(q) and value.count(q) == 1:
                    in_ml = q
            if in_ml:
                continue
            if value.startswith("{"):
                for im in _INLINE_KEY_RE.finditer(_STR_RE.sub('""', value)):
                    idx.setdefault(p + _split_dotted(im.group(1)), lineno)
            depth = max(0, _bracket_delta(value))
    return idx


@dataclass
class _Src:
    """One file (or dict) of an extends chain."""

    name: str  # as shown in messages
    text: str | None
    raw: dict
    _idx: dict | None = None

    def line(self, path: tuple) -> int | None:
        if self.text is None:
            return None
        if self._idx is None:
            self._idx = _line_index(self.text)
        p = tuple(s if isinstance(s, int) else str(s) for s in path)
        for k in range(len(p), 0, -1):
            if p[:k] in self._idx:
                return self._idx[p[:k]]
        return None

    def depth(self, path: tuple) -> int:
        """How far `path` is defined by this file (full length once an array/scalar owns it)."""
        node: Any = self.raw
        for d, seg in enumerate(path):
            if isinstance(node, dict):
                if seg in node:
                    node = node[seg]
                elif isinstance(seg, int) or str(seg) not in node:
                    return d
                else:
                    node = node[str(seg)]
            else:
                return len(path)
        return len(path)


# --------------------------------------------------------------------------------------
# Validation context: collects errors with locations and human keys
# --------------------------------------------------------------------------------------


class _Ctx:
    def __init__(self, srcs: list[_Src], data: dict, override_paths=()):
        self.srcs = srcs  # child first
        self.data = data  # the merged raw data (for item labels)
        self.override_paths = set(override_paths)
        self.errors: list[ScenarioError] = []

    # -- where ------------------------------------------------------------------
    def locate(self, path: tuple) -> tuple[str, int | None]:
        for op in self.override_paths:
            if path[: len(op)] == op:
                return _OVERRIDES, None
        if not self.srcs:
            return _OVERRIDES, None
        best, best_d = self.srcs[0], -1
        for s in self.srcs:
            d = s.depth(path)
            if d > best_d:
                best, best_d = s, d
        return best.name, best.line(path)

    def label(self, path: tuple) -> str:
        out = ""
        node: Any = self.data
        prev = None
        for seg in path:
            if isinstance(seg, int):
                sel = str(seg)
                item = None
                if isinstance(node, (list, tuple)) and 0 <= seg < len(node):
                    item = node[seg]
                    sel = _item_selector(prev, node, seg)
                out += f"[{sel}]"
                node = item
            else:
                s = seg if re.fullmatch(r"[A-Za-z0-9_-]+", seg) else json.dumps(seg, ensure_ascii=False)
                out += ("." if out else "") + s
                node = node.get(seg) if isinstance(node, dict) else None
            prev = seg
        return out

    # -- report -----------------------------------------------------------------
    def error(self, path: tuple, message: str, key: str | None = None) -> None:
        file, line = self.locate(path)
        self.errors.append(ScenarioError(file, key if key is not None else self.label(path), line, message))

    def raise_if_any(self) -> None:
        if self.errors:
            first, *rest = self.errors
            raise ScenarioError(first.file, first.key, first.line, first.message, rest)


def _item_label(array: str | None, item: Any) -> str | None:
    if not isinstance(item, dict):
        return None
    if array == "stake":
        h, i = item.get("holder"), item.get("issuer")
        if isinstance(h, str) and isinstance(i, str):
            return f"{h}->{i}"
        return None
    n = item.get("name")
    if isinstance(n, str) and n.strip():
        return n
    return None


def _item_selector(array: Any, items: list, i: int) -> str:
    lab = _item_label(array if isinstance(array, str) else None, items[i])
    if lab is None:
        return str(i)
    if sum(1 for it in items if _item_label(array, it) == lab) > 1:
        return str(i)
    return json.dumps(lab, ensure_ascii=False)


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
        else:
            v = float(v)
        if not _in_range(v, f):
            ctx.error(path, f"expected {exp}, found {_fmt(v)}")
            return _BAD
        return v
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
        return v
    if k == "enum":
        if not isinstance(v, str) or v not in f.choices:
            ctx.error(path, f"expected {exp}, found {_describe(v)}{_suggest(v, f.choices)}")
            return _BAD
        return v
    if k == "date":
        if isinstance(v, _dt.date):
            return _date_to_year(v)
        if _is_number(v) and math.isfinite(v):
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
            if not _in_range(float(amt), f):
                ctx.error(ypath, f"expected an amount {_range_text(f)} ({f.unit}) for year {year}, found {_fmt(amt)}")
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
    allowed = list(TOP) + list(SECTIONS) + list(ARRAYS) + ["sweep"]  # [sweep]: read by sim.batch
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
                for j, t in enumerate(sub):
                    if not isinstance(t, dict):
                        ctx.error((a, i, nk, j), f"expected a table, found {_describe(t)}")
                        continue
                    subs.append(_check_table(t, nfields, (a, i, nk, j), ctx, f"[[{a}.{nk}]]"))
                r[nk] = subs
            items.append(r)
        out[a] = items
    return out


# --------------------------------------------------------------------------------------
# Cross-checks (run only on well-typed data)
# --------------------------------------------------------------------------------------


def _cross_checks(d: dict, ctx: _Ctx) -> None:
    t = d["time"]
    y0 = float(t["start_year"])
    y1 = y0 + t["horizon_years"]
    hz = f"the horizon is [{_fmt(y0)}, {_fmt(y1)})"

    def in_horizon(x: float, closed_end: bool = False) -> bool:
        return x >= y0 - TOL and (x <= y1 + TOL if closed_end else x < y1 - TOL)

    # names
    ents = d["entity"]
    entity_names = [e["name"] for e in ents]
    contract_names = [c["name"] for c in d["contract"]]
    if len(ents) < 2:
        ctx.error(("entity",), f"a scenario needs at least 2 entities ([[entity]] tables), found {len(ents)}")
    for arr in ("entity", "contract", "investment", "loan"):
        seen: dict[str, int] = {}
        for i, it in enumerate(d[arr]):
            n = it.get("name")
            if not isinstance(n, str):
                continue
            if not n.strip():
                ctx.error((arr, i, "name"), f"expected a non-empty {arr} name, found {_describe(n)}")
            elif n in seen:
                first = seen[n]
                ctx.error((arr, i, "name"), f"duplicate {arr} name {n!r} (also {arr}[{first}], "
                                            f"line {ctx.locate((arr, first))[1] or '?'}): names must be unique",
                          key=f"{arr}[{i}].name")
            else:
                seen[n] = i

    def ref(path: tuple, value: Any, kind: str = "entity") -> bool:
        if value is None:
            return False
        names = entity_names if kind == "entity" else contract_names
        if value in names:
            return True
        sug = _suggest(value, names)
        plural = "entities" if kind == "entity" else "contracts"
        uniq = list(dict.fromkeys(n for n in names if isinstance(n, str)))
        listing = "" if sug else f" (known {plural}: {', '.join(repr(n) for n in uniq) or 'none'})"
        ctx.error(path, f"unknown {kind} {value!r}{sug}{listing}")
        return False

    # lab
    ref(("lab", "entity"), d["lab"]["entity"])

    # contracts
    for i, c in enumerate(d["contract"]):
        p = ("contract", i)
        okp = ref(p + ("payer",), c["payer"])
        okq = ref(p + ("payee",), c["payee"])
        if okp and okq and c["payer"] == c["payee"]:
            ctx.error(p + ("payee",), f"payer and payee are the same entity {c['payer']!r}")
        terms = [k for k in ("total", "start", "years") if c[k] is not None]
        period: tuple[float, float] | None = None
        if c["schedule"] is not None:
            if terms:
                ctx.error(p + (terms[0],), "give either `schedule` or `total` + `start` + `years`, not both "
                                           f"(found schedule and {', '.join(terms)})")
            elif not c["schedule"]:
                ctx.error(p + ("schedule",), "the schedule is empty: give at least one year = amount")
            else:
                bad = [y for y in c["schedule"] if not (y0 - TOL <= y <= y1 - 1 + TOL)]
                for y in bad:
                    ctx.error(p + ("schedule", str(y)),
                              f"schedule year {y} is outside the horizon: years must be in "
                              f"{int(y0)}..{int(y1) - 1} ({hz})")
                if c["ramp_years"] > 0:
                    ctx.error(p + ("ramp_years",), "ramp_years applies only to `total` + `start` + `years`; "
                                                   "a schedule gives each year's amount directly (remove "
                                                   "ramp_years or shape the schedule)")
        elif len(terms) == 0:
            ctx.error(p + ("schedule",), "missing payment terms: give `schedule` (year = amount) or "
                                         "`total` + `start` + `years`")
        elif len(terms) < 3:
            missing = [k for k in ("total", "start", "years") if c[k] is None]
            ctx.error(p + (missing[0],), f"missing key: `total`, `start` and `years` go together "
                                         f"(found {', '.join(terms)}; missing {', '.join(missing)})")
        else:
            s, n = c["start"], c["years"]
            if not in_horizon(s):
                ctx.error(p + ("start",), f"start {_fmt(s)} is outside the horizon ({hz})")
            elif s + n > y1 + TOL:
                ctx.error(p + ("years",), f"payment period [{_fmt(s)}, {_fmt(s + n)}) ends after the "
                                          f"horizon ({hz}): shorten `years` or extend time.horizon_years")
            else:
                period = (s, s + n)
        if period is not None and c["ramp_years"] > period[1] - period[0] + TOL:
            ctx.error(p + ("ramp_years",), f"ramp_years {_fmt(c['ramp_years'])} is longer than the payment "
                                           f"period ({_fmt(period[1] - period[0])} years)")

    # investments and tranches
    for i, inv in enumerate(d["investment"]):
        p = ("investment", i)
        oka = ref(p + ("investor",), inv["investor"])
        okb = ref(p + ("investee",), inv["investee"])
        if oka and okb and inv["investor"] == inv["investee"]:
            ctx.error(p + ("investee",), f"investor and investee are the same entity {inv['investor']!r}")
        if not inv["tranche"]:
            ctx.error(p + ("tranche",), "an investment needs at least one tranche: add an "
                                        "[[investment.tranche]] table (date, amount) after it")
        for j, tr in enumerate(inv["tranche"]):
            q = p + ("tranche", j)
            if not in_horizon(tr["date"]):
                ctx.error(q + ("date",), f"date {_fmt(tr['date'])} is outside the horizon ({hz})")
            if tr["expires"] is not None:
                if tr["expires"] < tr["date"] - TOL:
                    ctx.error(q + ("expires",), f"expires {_fmt(tr['expires'])} is before the tranche date "
                                                f"{_fmt(tr['date'])}")
                elif not in_horizon(tr["expires"], closed_end=True):
                    ctx.error(q + ("expires",), f"expires {_fmt(tr['expires'])} is outside the horizon "
                                                f"({hz}; the end itself is allowed)")
            if tr["milestone_contract"] is not None:
                ref(q + ("milestone_contract",), tr["milestone_contract"], "contract")
            elif tr["milestone_amount"] > 0:
                ctx.error(q + ("milestone_amount",), f"milestone_amount {_fmt(tr['milestone_amount'])} is set "
                                                     "but milestone_contract is not: name the contract whose "
                                                     "payments count")

    # entities: maturities
    for i, e in enumerate(ents):
        m = e["maturities"]
        if not m:
            continue
        for y in m:
            if not (y0 - TOL <= y <= y1 - 1 + TOL):
                ctx.error(("entity", i, "maturities", str(y)),
                          f"maturity year {y} is outside the horizon: years must be in "
                          f"{int(y0)}..{int(y1) - 1} ({hz})")
        tot = sum(m.values())
        if tot > e["debt"] + TOL:
            ctx.error(("entity", i, "maturities"), f"maturities sum to {_fmt(tot)} $B, more than debt "
                                                   f"{_fmt(e['debt'])} $B (maturities are part of `debt`)")

    # stakes
    per_issuer: dict[str, list[tuple[int, str, float]]] = {}
    for i, s in enumerate(d["stake"]):
        p = ("stake", i)
        okh = ref(p + ("holder",), s["holder"])
        oki = ref(p + ("issuer",), s["issuer"])
        if okh and oki and s["holder"] == s["issuer"]:
            ctx.error(p + ("issuer",), f"holder and issuer are the same entity {s['holder']!r}")
        if oki:
            per_issuer.setdefault(s["issuer"], []).append((i, s["holder"], s["share"]))
    for issuer, lst in per_issuer.items():
        tot = sum(x[2] for x in lst)
        if tot > 1 + TOL:
            parts = ", ".join(f"{h} {_fmt(sh)}" for _, h, sh in lst)
            ctx.error(("stake", lst[-1][0], "share"), f"stakes in {issuer!r} sum to {_fmt(tot)} > 1 ({parts})")

    # loans
    for i, ln in enumerate(d["loan"]):
        p = ("loan", i)
        oka = ref(p + ("lender",), ln["lender"])
        okb = ref(p + ("borrower",), ln["borrower"])
        if oka and okb and ln["lender"] == ln["borrower"]:
            ctx.error(p + ("borrower",), f"lender and borrower are the same entity {ln['lender']!r}")
        if not in_horizon(ln["maturity"], closed_end=True):
            ctx.error(p + ("maturity",), f"maturity {_fmt(ln['maturity'])} is outside the horizon "
                                         f"({hz}; the end itself is allowed)")


def _validate(merged: dict, ctx: _Ctx) -> dict:
    data = _validate_structure(merged, ctx)
    ctx.raise_if_any()
    _cross_checks(data, ctx)
    ctx.raise_if_any()
    return data


# --------------------------------------------------------------------------------------
# Files, extends, merging
# --------------------------------------------------------------------------------------


def _read_toml(path: str, display: str, referrer: tuple[_Src, tuple] | None = None) -> tuple[str, dict]:
    def fail(msg: str, line: int | None = None, key: str = ""):
        if referrer is not None and line is None and not key:
            src, p = referrer
            raise ScenarioError(src.name, "extends", src.line(p), msg)
        raise ScenarioError(display, key, line, msg)

    try:
        with open(path, "rb") as fh:
            raw_bytes = fh.read()
    except FileNotFoundError:
        fail(f"file not found: {display}" + (f" (resolved to {os.path.abspath(path)})" if referrer else ""))
    except IsADirectoryError:
        fail(f"expected a TOML file, found a directory: {display}")
    except OSError as e:
        fail(f"cannot read {display}: {e.strerror or e}")
    try:
        text = raw_bytes.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ScenarioError(display, "", None, f"not UTF-8 text ({e})") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        msg = str(e)
        m = re.search(r"at line (\d+), column (\d+)", msg)
        line = int(m.group(1)) if m else None
        raise ScenarioError(display, "", line, f"TOML syntax error: {msg}") from None
    return text, raw


def _deep_merge(base: dict, child: dict) -> dict:
    out = dict(base)
    for k, v in child.items():
        if k in out and isinstance(out[k], dict) and isinstance(v, dict):
            out[k] = _deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def _resolve_chain(first: _Src, first_real: str | None, base_dir: str) -> list[_Src]:
    """Follow `extends` from `first`; return the chain child first."""
    chain = [first]
    reals = [first_real]
    cur, cur_dir = first, base_dir
    while True:
        ext = cur.raw.get("extends")
        if ext is None:
            break
        if not isinstance(ext, str) or not ext.strip():
            raise ScenarioError(cur.name, "extends", cur.line(("extends",)),
                                f"expected a file path (a string), found {_describe(ext)}")
        target = os.path.join(cur_dir, ext)
        parent_dir = os.path.dirname(cur.name) if cur.text is not None else ""
        display = os.path.normpath(os.path.join(parent_dir, ext)) if cur.text is not None else os.path.normpath(target)
        real = os.path.realpath(target)
        if real in reals:
            k = reals.index(real)
            cycle = " -> ".join([s.name for s in chain[k:]] + [chain[k].name])
            raise ScenarioError(cur.name, "extends", cur.line(("extends",)), f"extends cycle: {cycle}")
        text, raw = _read_toml(target, display, referrer=(cur, ("extends",)))
        src = _Src(display, text, raw)
        chain.append(src)
        reals.append(real)
        cur, cur_dir = src, os.path.dirname(target)
    return chain


def _merge_chain(chain: list[_Src]) -> dict:
    merged: dict = {}
    for src in reversed(chain):
        merged = _deep_merge(merged, src.raw)
    return merged


# --------------------------------------------------------------------------------------
# Minimal TOML writer (for `source` of dict scenarios and override notes)
# --------------------------------------------------------------------------------------


def _toml_key(k: Any) -> str:
    k = str(k)
    return k if re.fullmatch(r"[A-Za-z0-9_-]+", k) else json.dumps(k, ensure_ascii=False)


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, (_dt.date, _dt.time)):
        return v.isoformat()
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{_toml_key(k)} = {_toml_value(x)}" for k, x in v.items() if x is not None) + " }"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    return json.dumps(str(v))


def _is_aot(v: Any) -> bool:
    return isinstance(v, (list, tuple)) and len(v) > 0 and all(isinstance(x, dict) for x in v)


def _to_toml(d: dict) -> str:
    lines: list[str] = []

    def body(tbl: dict, prefix: str, top: bool) -> None:
        for k, v in tbl.items():
            if v is None or _is_aot(v) or (top and isinstance(v, dict)):
                continue
            lines.append(f"{_toml_key(k)} = {_toml_value(v)}")
        if top:
            for k, v in tbl.items():
                if isinstance(v, dict):
                    lines.append("")
                    lines.append(f"[{_toml_key(k)}]")
                    body(v, _toml_key(k), False)
        for k, v in tbl.items():
            if _is_aot(v):
                name = f"{prefix}.{_toml_key(k)}" if prefix else _toml_key(k)
                for item in v:
                    lines.append("")
                    lines.append(f"[[{name}]]")
                    body(item, name, False)

    body(d, "", True)
    return "\n".join(lines).strip() + "\n"


# --------------------------------------------------------------------------------------
# The scenario
# --------------------------------------------------------------------------------------


def _canonical(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _canonical(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_canonical(v) for v in x]
    return x


@dataclass(frozen=True)
class Scenario:
    """A validated scenario. `data` is fully resolved (see the module docstring)."""

    name: str
    path: str | None
    data: dict
    source: str
    _srcs: tuple = field(default=(), repr=False, compare=False)
    _override_paths: frozenset = field(default=frozenset(), repr=False, compare=False)

    @property
    def hash(self) -> str:
        """sha256 (hex) of a canonical JSON of `data`; stable across runs and machines."""
        blob = json.dumps(_canonical(self.data), sort_keys=True, separators=(",", ":"),
                          ensure_ascii=True, allow_nan=False)
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()

    def __hash__(self) -> int:
        return int(self.hash[:16], 16)

    def years(self) -> list[int]:
        """Calendar years simulated: start_year .. start_year + horizon_years - 1."""
        t = self.data["time"]
        return list(range(t["start_year"], t["start_year"] + t["horizon_years"]))

    def with_overrides(self, overrides: dict[str, object]) -> "Scenario":
        """A copy with dotted keys replaced, fully re-validated.

        Keys: ``seed``, ``revenue.growth0``, ``entity.Oracle.cash`` or ``entity["Oracle"].cash``
        or ``entity[0].cash``, ``investment.NAME.tranche.0.amount`` (or ``...tranche[0]...``),
        ``stake.HOLDER->ISSUER.share`` (or ``stake.HOLDER.share`` when HOLDER holds one stake),
        ``entity.Oracle.maturities.2028`` (one schedule year), and whole arrays (``contract``).
        A value of None unsets an optional field (its default applies).
        """
        data = copy.deepcopy(self.data)
        paths = set(self._override_paths)
        notes = []
        for key, value in overrides.items():
            path = _resolve_override_key(data, key)
            _assign(data, path, value)
            paths.add(path[:-1] if _is_schedule_year(data, path) else path)
            notes.append(f"# {key} = {_toml_value(value) if value is not None else '(unset)'}")
        ctx = _Ctx(list(self._srcs), data, paths)
        new = _validate(data, ctx)
        source = self.source.rstrip("\n") + "\n\n# ===== overrides =====\n" + "\n".join(notes) + "\n"
        return Scenario(new["name"], self.path, new, source, self._srcs, frozenset(paths))


def _override_error(key: str, message: str) -> ScenarioError:
    return ScenarioError(_OVERRIDES, key, None, message)


_BRACKET_RE = re.compile(r'^\[\s*("(?:[^"\\]|\\.)*"|\'[^\']*\'|-?\d+)\s*\]')


def _take_selector(rest: str, items: list, array: str, key: str) -> tuple[int, str]:
    """Parse an item selector at the start of `rest`; return (index, remainder after it)."""
    labels = [_item_label(array, it) for it in items]
    m = _BRACKET_RE.match(rest)
    if m:
        tok = m.group(1)
        remainder = rest[m.end():]
        if tok[0] in "\"'":
            sel = json.loads(tok) if tok[0] == '"' else tok[1:-1]
        else:
            i = int(tok)
            if not 0 <= i < len(items):
                raise _override_error(key, f"index {i} out of range: there are {len(items)} [[{array}]] items")
            return i, remainder
    else:
        if not rest.startswith("."):
            raise _override_error(key, f"expected .NAME or [\"NAME\"] after '{array}'")
        rest = rest[1:]
        # longest label that is a prefix followed by '.', '[' or the end
        cands = sorted({lab for lab in labels if lab}, key=len, reverse=True)
        sel = None
        for lab in cands:
            if rest == lab or rest.startswith(lab + ".") or rest.startswith(lab + "["):
                sel, remainder = lab, rest[len(lab):]
                break
        if sel is None:
            # also accept holder alone for stakes, or an index
            head = re.split(r"[.\[]", rest, maxsplit=1)[0]
            remainder = rest[len(head):]
            if re.fullmatch(r"\d+", head):
                i = int(head)
                if not 0 <= i < len(items):
                    raise _override_error(key, f"index {i} out of range: there are {len(items)} [[{array}]] items")
                return i, remainder
            sel = head
    hits = [i for i, lab in enumerate(labels) if lab == sel]
    if array == "stake" and not hits:
        hits = [i for i, it in enumerate(items) if isinstance(it, dict) and it.get("holder") == sel]
        if len(hits) > 1:
            opts = ", ".join(repr(labels[i]) for i in hits)
            raise _override_error(key, f"{sel!r} holds several stakes: write one of {opts}")
    if len(hits) > 1:
        raise _override_error(key, f"{array} name {sel!r} is not unique: use an index, e.g. {array}[{hits[0]}]")
    if not hits:
        sug = _suggest(sel, [lab for lab in labels if lab])
        known = "" if sug else f" (known: {', '.join(repr(lab) for lab in labels if lab) or 'none'})"
        raise _override_error(key, f"no [[{array}]] item named {sel!r}{sug}{known}")
    return hits[0], remainder


def _take_field(rest: str, fields: dict[str, Field], nested: dict, where: str, key: str,
                prefix: str) -> tuple[str, str]:
    if not rest.startswith("."):
        raise _override_error(key, f"expected .FIELD after {prefix}")
    m = re.match(r"^\.([A-Za-z0-9_-]+)", rest)
    if not m:
        raise _override_error(key, f"expected .FIELD after {prefix}")
    name = m.group(1)
    allowed = list(fields) + list(nested)
    if name not in allowed:
        sug = _suggest(name, allowed)
        raise _override_error(key, f"unknown key '{name}' in {where}"
                              + (sug or f"; valid keys: {', '.join(allowed)}"))
    return name, rest[m.end():]


def _resolve_override_key(data: dict, key: str) -> tuple:
    """Turn a dotted override key into a path in `data`; ScenarioError if it names nothing."""
    if not isinstance(key, str) or not key:
        raise _override_error(str(key), f"override keys are dotted strings, found {_describe(key)}")
    m = re.match(r"^([A-Za-z0-9_-]+)", key)
    head = m.group(1) if m else ""
    rest = key[len(head):]
    tops = list(TOP) + list(SECTIONS) + list(ARRAYS)
    if head in TOP:
        if rest:
            raise _override_error(key, f"'{head}' is a top-level value and has no sub-keys")
        if head == "extends":
            raise _override_error(key, "extends cannot be overridden (load the other scenario instead)")
        return (head,)
    if head in SECTIONS:
        fields = SECTIONS[head]
        if not rest:
            raise _override_error(key, f"name a key of [{head}], e.g. '{head}.{next(iter(fields))}'")
        m2 = re.fullmatch(r"\.([A-Za-z0-9_-]+)", rest)
        if not m2:
            raise _override_error(key, f"expected '{head}.KEY'")
        if m2.group(1) not in fields:
            full = [f"{head}.{f}" for f in fields]
            sug = _suggest(key, full)
            raise _override_error(key, f"unknown key '{m2.group(1)}' in [{head}]"
                                  + (sug or f"; valid keys: {', '.join(fields)}"))
        return (head, m2.group(1))
    if head in ARRAYS:
        fields, nested = ARRAYS[head]
        if not rest:
            return (head,)
        items = data[head]
        i, rest = _take_selector(rest, items, head, key)
        path: tuple = (head, i)
        if not rest:
            return path
        fname, rest = _take_field(rest, fields, nested, f"[[{head}]]", key, key[: len(key) - len(rest)])
        path += (fname,)
        if fname in nested:
            if not rest:
                return path
            sub = items[i].get(fname) or []
            m3 = re.match(r"^(?:\.(\d+)|\[(\d+)\])", rest)
            if not m3:
                raise _override_error(key, f"expected a tranche index after '{fname}', e.g. {fname}[0]")
            j = int(m3.group(1) or m3.group(2))
            if not 0 <= j < len(sub):
                raise _override_error(key, f"{fname} index {j} out of range: this {head} has {len(sub)}")
            rest = rest[m3.end():]
            path += (j,)
            if not rest:
                return path
            fname2, rest = _take_field(rest, nested[fname], {}, f"[[{head}.{fname}]]", key,
                                       key[: len(key) - len(rest)])
            path += (fname2,)
            fdef = nested[fname][fname2]
        else:
            fdef = fields[fname]
        if rest:
            m4 = re.fullmatch(r"(?:\.(\d{1,4})|\[(\d{1,4})\])", rest)
            if fdef.kind == "schedule" and m4:
                return path + (int(m4.group(1) or m4.group(2)),)
            raise _override_error(key, f"unexpected '{rest}' after the {fdef.kind} key '{path[-1]}'")
        return path
    raise _override_error(key, f"unknown key '{head}'{_suggest(head, tops) or _suggest(key, _all_simple_keys())}")


def _all_simple_keys() -> list[str]:
    return list(TOP) + [f"{s}.{f}" for s, fs in SECTIONS.items() for f in fs]


def _assign(data: dict, path: tuple, value: Any) -> None:
    node: Any = data
    for seg in path[:-2] if _is_schedule_year(data, path) else path[:-1]:
        node = node[seg]
    if _is_schedule_year(data, path):
        fieldname, year = path[-2], path[-1]
        sched = node.get(fieldname)
        sched = dict(sched) if isinstance(sched, dict) else {}
        if value is None:
            sched.pop(year, None)
        else:
            sched[year] = value
        node[fieldname] = sched or None
        return
    if value is None:
        if isinstance(node, dict):
            node.pop(path[-1], None)  # unset: the default applies
        else:
            del node[path[-1]]  # remove an array item
    else:
        node[path[-1]] = copy.deepcopy(value)


def _is_schedule_year(data: dict, path: tuple) -> bool:
    return len(path) >= 3 and isinstance(path[-1], int) and isinstance(path[-2], str) and \
        path[0] in ARRAYS and path[-2] not in ARRAYS[path[0]][1]


# --------------------------------------------------------------------------------------
# Entry points
# --------------------------------------------------------------------------------------


def _build(chain: list[_Src], path: str | None, source: str) -> Scenario:
    merged = _merge_chain(chain)
    if len(chain) > 1 and "name" not in chain[0].raw:
        inherited = merged.get("name")
        raise ScenarioError(chain[0].name, "name", None,
                            "missing required key: a scenario that extends another must set its own name"
                            + (f" (it would inherit {inherited!r} from {chain[1].name})"
                               if isinstance(inherited, str) else ""))
    ctx = _Ctx(chain, merged)
    data = _validate(merged, ctx)
    return Scenario(data["name"], path, data, source, tuple(chain), frozenset())


def _chain_source(chain: list[_Src]) -> str:
    if len(chain) == 1:
        return chain[0].text if chain[0].text is not None else _to_toml(chain[0].raw)
    parts = []
    for s in reversed(chain):
        text = s.text if s.text is not None else _to_toml(s.raw)
        parts.append(f"# ===== {s.name} =====\n{text.rstrip()}\n")
    return "\n".join(parts)


def load_scenario(path) -> Scenario:
    """Load, merge (`extends`) and validate a scenario file; raise ScenarioError on any problem."""
    display = os.fspath(path)
    text, raw = _read_toml(display, display)
    first = _Src(display, text, raw)
    chain = _resolve_chain(first, os.path.realpath(display), os.path.dirname(display))
    return _build(chain, display, _chain_source(chain))


def scenario_from_dict(d: dict, source_name: str = "<dict>", base_dir=None) -> Scenario:
    """Validate a scenario given as a dict (as tomllib would return it, or already resolved).

    `extends` in the dict is resolved relative to `base_dir` (default: the current directory).
    """
    if not isinstance(d, dict):
        raise ScenarioError(source_name, "", None, f"expected a table (dict), found {_describe(d)}")
    first = _Src(source_name, None, copy.deepcopy(d))
    chain = _resolve_chain(first, None, os.fspath(base_dir) if base_dir is not None else os.getcwd())
    return _build(chain, None, _chain_source(chain))
