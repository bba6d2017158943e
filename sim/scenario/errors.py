"""The one error type of scenario handling, and the did-you-mean and value formatting it uses."""

from __future__ import annotations

import datetime as _dt
import difflib
import math
from typing import Any

from .limits import printable

_MAX_SHOWN = 25  # errors listed in str(ScenarioError)
_OVERRIDES = "<overrides>"  # the file name shown for errors in overrides


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
        """`file:line: key: message` on one line, control characters escaped (safe for a terminal)."""
        loc = self.file if self.line is None else f"{self.file}:{self.line}"
        text = f"{loc}: {self.key}: {self.message}" if self.key else f"{loc}: {self.message}"
        return printable(text)

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
        return str(x) if abs(x) < 10**21 else f"{str(x)[:6]}... (an integer of {len(str(x))} digits)"
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
