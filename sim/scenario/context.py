"""The validation context: collects every error of a pass with its file, line and human-readable key."""

from __future__ import annotations

import json
import re
from typing import Any

from .errors import _OVERRIDES, ScenarioError
from .source import _Src

# --------------------------------------------------------------------------------------
# Validation context: collects errors with locations and human keys
# --------------------------------------------------------------------------------------


class _Ctx:
    def __init__(self, srcs: list[_Src], data: dict, override_paths=()):
        self.srcs = srcs  # child first
        self.data = data  # the merged raw data (for item labels)
        self.override_paths = set(override_paths)
        self.errors: list[ScenarioError] = []
        self.warnings: list[ScenarioError] = []  # plausible but unusual values: reported, not fatal

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

    def warn(self, path: tuple, message: str) -> None:
        file, line = self.locate(path)
        self.warnings.append(ScenarioError(file, self.label(path), line, message))

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
