"""``[patch]``: change one entity, contract, stake or field of a parent scenario by name, without copying its array.

`extends` replaces arrays of tables whole, so a child that wants Oracle's debt changed
would have to copy every ``[[entity]]`` of its parent. A ``[patch]`` table instead holds
dotted override keys (the keys of `Scenario.with_overrides` and of ``--set``)::

    extends = "base.toml"
    name = "oracle_levered"

    [patch]
    "entity.Oracle.debt" = 140.0                       # ASSUMPTION: ...
    "contract[\"Oracle OCI\"].total" = 250.0           # names with spaces: ["..."]
    "stake.Microsoft->OpenAI.share" = 0.25
    entity.CoreWeave.maturities.2027 = 9.0             # one schedule year (plain dotted TOML keys work too)

Semantics: the chain is merged as usual, validated, then every file's ``[patch]`` is
applied, parents' first (so a child's patch of the same key wins), and the result is
validated again. A patch key that names nothing is an error at the patch's line, with a
did-you-mean. A ``[patch]`` only changes existing values; add or remove items with arrays.
"""

from __future__ import annotations

import json
import re
from typing import Any

from .context import _Ctx
from .errors import ScenarioError, _describe
from .overrides import _assign, _is_schedule_year, _resolve_override_key
from .schema import ARRAYS
from .source import _Src

PATCH = "patch"
_SIMPLE = re.compile(r"[A-Za-z0-9_-]+")


def _flatten(tbl: dict, prefix: str = "", segs: tuple = ()) -> list[tuple[str, tuple, Any]]:
    """(dotted key, TOML key path under [patch], value) for every leaf of a [patch] table."""
    out = []
    for k, v in tbl.items():
        if not prefix:
            key = k  # a quoted whole key ("entity.Oracle.debt") or the first segment
        elif _SIMPLE.fullmatch(k):
            key = f"{prefix}.{k}"
        else:
            key = f"{prefix}[{json.dumps(k)}]"  # a name with spaces: entity["Other compute suppliers"]
        if isinstance(v, dict):
            out.extend(_flatten(v, key, segs + (k,)))
        else:
            out.append((key, segs + (k,), v))
    return out


def collect_patches(chain: list[_Src]) -> list[tuple[_Src, str, tuple, Any]]:
    """Every file's [patch] entries, parents first: (file, dotted key, TOML path, value)."""
    out = []
    for src in reversed(chain):
        tbl = src.raw.get(PATCH)
        if tbl is None:
            continue
        if not isinstance(tbl, dict):
            raise ScenarioError(src.name, PATCH, src.line((PATCH,)),
                                f"expected a table of \"dotted.key\" = value, found {_describe(tbl)}")
        out.extend((src, key, segs, value) for key, segs, value in _flatten(tbl))
    return out


class _PatchCtx(_Ctx):
    """Validation context that places errors in a patched value at its [patch] line."""

    def __init__(self, srcs, data, patched: dict):
        super().__init__(srcs, data)
        self.patched = patched  # data path -> (file, line)

    def locate(self, path: tuple):
        for p, where in self.patched.items():
            if path[: len(p)] == p:
                return where
        return super().locate(path)


def apply_patches(data: dict, chain: list[_Src], patches, validate, warnings: list | None = None) -> dict:
    """`data` (validated) with the patches applied and validated again by `validate(data, ctx)`;
    that second pass's warnings (unusual values, patched ones included) go into `warnings`."""
    import copy

    data = copy.deepcopy(data)
    patched: dict = {}
    for src, key, segs, value in patches:
        line = src.line((PATCH, *segs))
        try:
            path = _resolve_override_key(data, key)
        except ScenarioError as err:
            raise ScenarioError(src.name, f"{PATCH}.{key}", line, err.message) from None
        if value is None:
            raise ScenarioError(src.name, f"{PATCH}.{key}", line, "a [patch] sets values; it cannot unset one")
        _assign(data, path, value)
        patched[path[:-1] if _is_schedule_year(data, path) else path] = (src.name, line)
    ctx = _PatchCtx(list(chain), data, patched)
    out = validate(data, ctx)
    if warnings is not None:
        warnings.extend(ctx.warnings)
    return out


def _names(items) -> list[str]:
    out = []
    for it in items if isinstance(items, list) else []:
        if isinstance(it, dict):
            n = it.get("name")
            if n is None and "holder" in it:
                n = f"{it.get('holder')}->{it.get('issuer')}"
            if n is not None:
                out.append(str(n))
    return out


def _example_key(arr: str, mine: list, theirs: list) -> str:
    """A [patch] key for the first field the child's copy changes (else the first item's first field)."""
    by_name = dict(zip(_names(theirs), [it for it in theirs if isinstance(it, dict)]))
    pick = None
    for it in mine:
        if not isinstance(it, dict):
            continue
        name = _names([it])[0] if _names([it]) else None
        old = by_name.get(name, {})
        for k, v in it.items():
            if k not in ("name", "holder", "issuer") and not isinstance(v, (dict, list)):
                if pick is None or (old and old.get(k) != v and pick[2] is False):
                    pick = (name, k, bool(old and old.get(k) != v))
    if pick is None or pick[0] is None:
        return f"{arr}.NAME.FIELD"
    name, k, _ = pick
    sel = f"{arr}.{name}" if re.fullmatch(r"[A-Za-z0-9_>-]+", name) else f"{arr}[{json.dumps(name)}]"
    return f"{sel}.{k}"


def dropped_items_hint(chain: list[_Src], err: ScenarioError | None = None) -> ScenarioError | None:
    """When the first file of `chain` redefines an array of tables (``[[entity]]`` ...) and so
    drops items its parents define that the errors of `err` mention (an unknown entity
    'Microsoft' ...), an error entry that says so and suggests [patch]."""
    if len(chain) < 2:
        return None
    child = chain[0]
    notes = []
    example = first = None
    for arr in ARRAYS:
        if not isinstance(child.raw.get(arr), list):
            continue
        parent = next((s for s in chain[1:] if isinstance(s.raw.get(arr), list)), None)
        if parent is None:
            continue
        mine = set(_names(child.raw[arr]))
        lost = [n for n in _names(parent.raw[arr]) if n not in mine]
        said = " ".join(e.message for e in err.errors) if err is not None else None
        if lost and (said is None or any(f"'{n}'" in said or f'"{n}"' in said for n in lost)):
            shown = ", ".join(lost[:5]) + (f" and {len(lost) - 5} more" if len(lost) > 5 else "")
            notes.append(f"[[{arr}]] replaces {parent.name}'s {len(parent.raw[arr])} items whole, dropping {shown}")
            first = first or arr
            if example is None:
                example = _example_key(arr, child.raw[arr], parent.raw[arr])
    if not notes:
        return None
    return ScenarioError(child.name, first, child.line((first,)),
                         "; ".join(notes) + " (extends replaces arrays of tables whole). To change one item, "
                         f"drop the copied array and write [patch] with dotted keys instead, e.g. [patch] "
                         f"\"{example}\" = VALUE")
