"""Reading scenario TOML files, following `extends` chains and merging them; best-effort line numbers for errors."""

from __future__ import annotations

import copy
import json
import os
import re
import stat
import tomllib
from dataclasses import dataclass
from typing import Any

from .errors import ScenarioError, _describe
from .limits import limit, over
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


_NOT_REGULAR = ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
                (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def _read_bytes(path: str, fail) -> bytes:
    """The bytes of a regular file, at most BUBBLESIM_MAX_FILE_BYTES of them; `fail(msg)` otherwise.

    Opened without blocking (a FIFO with no writer would wait forever) and checked with fstat on
    the open descriptor, so a FIFO, a device (/dev/zero never ends), a socket or a folder is refused
    before a byte is read, and a file that grows while being read is cut at the cap.
    """
    if "\x00" in path:
        fail("the file name contains a NUL character")
    cap = limit("BUBBLESIM_MAX_FILE_BYTES")
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        fail("file not found")
    except IsADirectoryError:
        fail("expected a TOML file, found a directory")
    except OSError as e:
        fail(f"cannot read it: {e.strerror or e}")
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            fail("expected a TOML file, found a directory")
        if not stat.S_ISREG(st.st_mode):
            what = next((w for test, w in _NOT_REGULAR if test(st.st_mode)), "not a regular file")
            fail(f"expected a TOML file (a regular file), found {what}")
        if st.st_size > cap:
            fail(over("BUBBLESIM_MAX_FILE_BYTES", st.st_size))
        parts, n = [], 0
        while n <= cap:
            block = os.read(fd, min(1 << 20, cap + 1 - n))
            if not block:
                break
            parts.append(block)
            n += len(block)
        if n > cap:
            fail(over("BUBBLESIM_MAX_FILE_BYTES", n))
        return b"".join(parts)
    except OSError as e:
        fail(f"cannot read it: {e.strerror or e}")
    finally:
        os.close(fd)


def _decode(data: bytes, display: str) -> str:
    """UTF-8 text (a leading byte-order mark is dropped); a clean error naming line and column otherwise."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        raise ScenarioError(display, "", None, "the file is UTF-16 text (it starts with a UTF-16 byte-order mark); "
                            "save it as UTF-8")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        col = e.start - (data.rfind(b"\n", 0, e.start) + 1) + 1
        raise ScenarioError(display, "", line, f"not UTF-8 text: byte 0x{data[e.start]:02x} at line {line}, "
                            f"column {col} ({e.reason}); save the file as UTF-8") from None


# Strings and comments (skipped whole) and brackets (counted): enough to bound the nesting of
# inline arrays and tables before tomllib, which recurses on them, sees the text.
_NEST_TOKEN_RE = re.compile(r'"""[\s\S]*?"""|\'\'\'[\s\S]*?\'\'\'|"(?:[^"\\\n]|\\.)*"|\'[^\'\n]*\'|#[^\n]*|[\[\]{}]')


_KEY_CHARS_RE = re.compile(r'[\w\-."\s]*')


def _check_dotted_keys(text: str, display: str, cap: int) -> None:
    """Refuse dotted keys and table headers of more than `cap` parts (tomllib takes time quadratic
    in their length: 20,000 parts take a minute). Only lines with more than `cap` dots are looked at."""
    if text.count(".") <= cap:
        return
    for lineno, line in enumerate(text.splitlines(), 1):
        if line.count(".") <= cap:
            continue
        t = _STR_RE.sub('""', line).split("#", 1)[0]
        st = t.lstrip()
        if st.startswith("["):
            key = st.lstrip("[").split("]", 1)[0]
        elif "=" in t:
            key = t.split("=", 1)[0]
        else:
            continue
        if _KEY_CHARS_RE.fullmatch(key) and key.count(".") + 1 > cap:
            raise ScenarioError(display, "", lineno, "a dotted key nested too deeply: "
                                + over("BUBBLESIM_MAX_DEPTH", key.count(".") + 1))


def _check_nesting(text: str, display: str) -> None:
    cap = limit("BUBBLESIM_MAX_DEPTH")
    _check_dotted_keys(text, display, cap)
    depth = 0
    for m in _NEST_TOKEN_RE.finditer(text):
        t = m.group()
        if t == "[" or t == "{":
            depth += 1
            if depth > cap:
                line = text.count("\n", 0, m.start()) + 1
                raise ScenarioError(display, "", line, "arrays or tables nested too deeply: "
                                    + over("BUBBLESIM_MAX_DEPTH", depth))
        elif t == "]" or t == "}":
            depth = max(0, depth - 1)


def _label(path: tuple) -> str:
    out = ""
    for seg in path[:8]:
        if isinstance(seg, int):
            out += f"[{seg}]"
        else:
            seg = seg if re.fullmatch(r"[A-Za-z0-9_-]+", seg) else json.dumps(seg[:40])
            out += ("." if out else "") + seg
    return out + ("..." if len(path) > 8 else "")


def _check_shape(raw: dict, display: str, text: str | None = None) -> None:
    """Depth, string length, array length and the number of values of parsed TOML, without recursion."""
    max_depth, max_str, max_arr = limit("BUBBLESIM_MAX_DEPTH"), limit("BUBBLESIM_MAX_STRING"), limit(
        "BUBBLESIM_MAX_ARRAY")
    max_keys = limit("BUBBLESIM_MAX_KEYS")
    seen = 0
    stack: list[tuple[tuple, Any]] = [((), raw)]
    while stack:
        path, node = stack.pop()
        seen += 1
        if seen > max_keys:
            raise ScenarioError(display, "", None, "too many values: " + over("BUBBLESIM_MAX_KEYS", seen))
        if len(path) > max_depth:
            raise ScenarioError(display, _label(path), None, "tables nested too deeply: "
                                + over("BUBBLESIM_MAX_DEPTH", len(path)))
        if isinstance(node, dict):
            for k, v in node.items():
                if len(k) > max_str:
                    raise ScenarioError(display, _label(path + (k[:40],)), None,
                                        "key too long: " + over("BUBBLESIM_MAX_STRING", len(k)))
                stack.append((path + (k,), v))
        elif isinstance(node, list):
            if len(node) > max_arr:
                raise ScenarioError(display, _label(path), None, "array too long: "
                                    + over("BUBBLESIM_MAX_ARRAY", len(node)))
            stack.extend((path + (i,), v) for i, v in enumerate(node))
        elif isinstance(node, str) and len(node) > max_str:
            raise ScenarioError(display, _label(path), None, "string too long: "
                                + over("BUBBLESIM_MAX_STRING", len(node)))


def parse_toml_text(text: str, display: str) -> dict:
    """tomllib.loads with the nesting and size limits, every failure a ScenarioError naming `display`."""
    _check_nesting(text, display)
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        msg = str(e)
        m = re.search(r"at line (\d+), column (\d+)", msg)
        line = int(m.group(1)) if m else (text.count("\n") + 1 if "end of document" in msg else None)
        raise ScenarioError(display, "", line, f"TOML syntax error: {msg}") from None
    except RecursionError:
        raise ScenarioError(display, "", None, "arrays or tables nested too deeply to parse "
                            "(BUBBLESIM_MAX_DEPTH)") from None
    except ValueError as e:  # e.g. an integer literal of more than 4,300 digits
        raise ScenarioError(display, "", None, f"a value cannot be read: {str(e).split(';')[0]}") from None
    _check_shape(raw, display)
    return raw


def read_toml(path: str, display: str | None = None) -> tuple[str, dict]:
    """(text, parsed table) of a TOML file, with every reading limit of sim.scenario.limits applied.

    Only regular files are read; bad UTF-8, a UTF-16 file, deep nesting, oversized files,
    strings or arrays are ScenarioErrors naming the file (and the limit, and how to raise it).
    """
    display = path if display is None else display

    def fail(msg):
        raise ScenarioError(display, "", None, msg)

    data = _read_bytes(path, fail)
    text = _decode(data, display)
    return text, parse_toml_text(text, display)


def _read_toml(path: str, display: str, referrer: tuple[_Src, tuple] | None = None) -> tuple[str, dict]:
    def fail(msg: str):
        if referrer is not None:
            src, p = referrer
            raise ScenarioError(src.name, "extends", src.line(p), f"{display}: {msg}"
                                + (f" (resolved to {os.path.abspath(path)})" if msg == "file not found" else ""))
        raise ScenarioError(display, "", None, msg)

    data = _read_bytes(path, fail)
    text = _decode(data, display)
    return text, parse_toml_text(text, display)


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
        if "\x00" in ext:
            raise ScenarioError(cur.name, "extends", cur.line(("extends",)),
                                "expected a file path, found a string with a NUL character")
        if len(chain) >= limit("BUBBLESIM_MAX_EXTENDS"):
            raise ScenarioError(cur.name, "extends", cur.line(("extends",)),
                                "extends chain too long: " + over("BUBBLESIM_MAX_EXTENDS", len(chain) + 1))
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
