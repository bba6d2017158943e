"""Dotted-key overrides (`revenue.growth0`, `entity.Oracle.cash`, ...): resolving a key to a path in the data and assigning it."""

from __future__ import annotations

import copy
import json
import re
from typing import Any

from .context import _item_label
from .errors import _OVERRIDES, ScenarioError, _describe, _suggest
from .schema import ARRAYS, SECTIONS, TOP, Field


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
        if not isinstance(items, list):  # an earlier override replaced the whole array
            raise _override_error(key, f"[[{head}]] is {_describe(items)} here (an earlier override replaced it), "
                                  "so it has no items to select")
        i, rest = _take_selector(rest, items, head, key)
        if not isinstance(items[i], dict):
            raise _override_error(key, f"{head}[{i}] is {_describe(items[i])}, not a table")
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
