"""Limits on what a scenario file may make bubblesim read: sizes, nesting, counts.

A scenario may come from someone else. These caps keep a hostile or careless file from
exhausting memory or time before validation can say what is wrong. Each is far above what a
real scenario needs (the shipped ones use a few percent of each) and can be raised with an
environment variable of the same name, which every error names:

    BUBBLESIM_MAX_FILE_BYTES=20000000 bubblesim validate big.toml
"""

from __future__ import annotations

import os
import re

# name -> (default, what it counts)
DEFAULTS: dict[str, tuple[int, str]] = {
    "BUBBLESIM_MAX_FILE_BYTES": (4_000_000, "bytes in one scenario or batch file"),
    "BUBBLESIM_MAX_DEPTH": (24, "levels of nested tables and arrays"),
    "BUBBLESIM_MAX_STRING": (100_000, "characters in one string"),
    "BUBBLESIM_MAX_ARRAY": (10_000, "items in one array"),
    "BUBBLESIM_MAX_KEYS": (200_000, "keys and values in one file"),
    "BUBBLESIM_MAX_ENTITIES": (500, "[[entity]] tables"),
    "BUBBLESIM_MAX_CONTRACTS": (5_000, "[[contract]], [[investment]], [[stake]] or [[loan]] tables of one kind"),
    "BUBBLESIM_MAX_EXTENDS": (32, "files in one extends chain"),
}


def limit(name: str) -> int:
    """The value of limit `name`: the environment variable if set to a positive integer, else the default."""
    default = DEFAULTS[name][0]
    raw = os.environ.get(name, "").strip().replace("_", "").replace(",", "")
    if raw.isdigit() and int(raw) > 0:
        return int(raw)
    return default


def over(name: str, found: int) -> str:
    """The message for `found` above limit `name`, saying how to raise it."""
    return (f"{found:,} {DEFAULTS[name][1]} is above the limit of {limit(name):,} "
            f"(set {name} to raise it)")


# Characters that must not reach a terminal raw: C0/C1 controls, DEL, bidi overrides and other
# format characters, line and paragraph separators.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]")


def has_unsafe(text: str) -> str | None:
    """The first control or format character of `text` as U+XXXX, or None."""
    m = _UNSAFE.search(text)
    return None if m is None else f"U+{ord(m.group()):04X}"


def printable(text: str) -> str:
    """`text` with every control or format character escaped (\\x1b, \\u202e), safe for a terminal line."""
    def esc(m):
        c = ord(m.group())
        return f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}"

    return _UNSAFE.sub(esc, text)
