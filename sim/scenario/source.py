"""Reading scenario TOML files, following `extends` chains and merging them; best-effort line numbers for errors."""

from __future__ import annotations

import copy
import json
import os
import re
import tomllib
from dataclasses import dataclass
from typing import Any

from .errors import ScenarioError, _describe
from .writer import _to_toml

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


def _chain_source(chain: list[_Src]) -> str:
    if len(chain) == 1:
        return chain[0].text if chain[0].text is not None else _to_toml(chain[0].raw)
    parts = []
    for s in reversed(chain):
        text = s.text if s.text is not None else _to_toml(s.raw)
        parts.append(f"# ===== {s.name} =====\n{text.rstrip()}\n")
    return "\n".join(parts)
