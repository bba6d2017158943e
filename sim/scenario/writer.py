"""A minimal TOML writer (the `source` of dict scenarios, override notes) and the canonical form hashed by `Scenario.hash`."""

from __future__ import annotations

import datetime as _dt
import json
import math
import re
from typing import Any

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
