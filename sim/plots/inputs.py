"""Reading what figures and the report are made from: plain files written by runs.

* a run folder: ``results.json`` (+ optional ``scenario.toml``, ``_complete.json``)
* a batch folder: ``<variant>/results.json`` for every variant, optional ``manifest.json``
  (its ``variants`` list gives the order, sources and sweep overrides). With a manifest,
  the runs are exactly the manifest's variants (the set summary.csv describes); any other
  results.json under the folder (an older batch's variants, a stray run) is left out and
  listed in `ReportInputs.extra`, which the report names.
* optional sensitivity tables (tornado): ``sensitivity*.json|csv`` or ``tornado*.json|csv``
  anywhere under the folder: a list of {param, low_value, high_value, metric_low,
  metric_high, base}, or {"metric": name, "base": x, "rows": [...]}, or a CSV with those
  columns (and optionally a ``metric`` column naming the metric of each row)
* optional sweeps: ``sweep*.json|csv``: a list of {params: {k: v}, metric: value}, or
  {"metric": name, "x": k, "y": k, "rows": [...]}, or a CSV with one column per parameter
  and a ``metric`` (or ``value``) column. Sweeps are also derived from a batch manifest:
  variants of one scenario whose overrides vary two (or one) keys.
"""

from __future__ import annotations

import csv
import datetime as _dt
import glob
import json
import math
import os
from dataclasses import dataclass, field

RESULTS = "results.json"


def load_results(path: str) -> dict:
    """The results dict of a run folder or results.json file, with `_dir` (its folder),
    `_date` (the run's date: marker's `finished` or the file's modification date) and
    `_scenario_source` (the scenario TOML text, if the run wrote scenario.toml)."""
    file = os.path.join(path, RESULTS) if os.path.isdir(path) else path
    with open(file, encoding="utf-8") as fh:
        res = json.load(fh)
    folder = os.path.dirname(os.path.abspath(file))
    res["_dir"] = folder
    date = None
    marker = os.path.join(folder, "_complete.json")
    if os.path.exists(marker):
        try:
            with open(marker, encoding="utf-8") as fh:
                m = json.load(fh)
            date = (m.get("finished") or "")[:10] or None
            res["_marker"] = m
        except (OSError, ValueError):
            pass
    res["_date"] = date or _dt.date.fromtimestamp(os.path.getmtime(file)).isoformat()
    rare = os.path.join(folder, "rare.json")  # importance-sampling runs (`bubblesim run --rare`)
    if os.path.exists(rare):
        with open(rare, encoding="utf-8") as fh:
            res["_rare"] = json.load(fh)
    toml = os.path.join(folder, "scenario.toml")
    if os.path.exists(toml):
        with open(toml, encoding="utf-8", errors="replace") as fh:
            res["_scenario_source"] = fh.read()
    return res


@dataclass
class ReportInputs:
    root: str
    runs: dict = field(default_factory=dict)  # name -> results dict (display order)
    manifest: dict | None = None
    sensitivity: list = field(default_factory=list)  # [{"name", "metric", "base", "rows"}]
    sweeps: list = field(default_factory=list)  # [{"name", "metric", "x", "y", "rows"}]
    extra: list = field(default_factory=list)  # results beside a manifest's variants, not reported (folders)

    @property
    def primary(self) -> str:
        """The run the single-run figures of the gallery come from: 'base' if there is one,
        else the first."""
        for name in self.runs:
            if self.runs[name].get("scenario") == "base" and "[" not in name:
                return name
        return next(iter(self.runs))


def _find(root: str, patterns) -> list[str]:
    out = []
    for pat in patterns:
        out.extend(glob.glob(os.path.join(root, "**", pat), recursive=True))
    return sorted(set(p for p in out if os.path.isfile(p) and "/." not in p.replace(os.sep, "/")))


def load_inputs(root: str) -> ReportInputs:
    """Everything under `root` a report can use (see the module docstring)."""
    if os.path.isfile(root):
        root = os.path.dirname(os.path.abspath(root))
    if not os.path.isdir(root):
        raise FileNotFoundError(f"no such results folder: {root}")
    inp = ReportInputs(root=root)
    man_path = os.path.join(root, "manifest.json")
    if os.path.exists(man_path):
        with open(man_path, encoding="utf-8") as fh:
            inp.manifest = json.load(fh)
    files = _find(root, [RESULTS])
    runs = {}
    for f in files:
        rel = os.path.relpath(os.path.dirname(f), root)
        res = load_results(f)
        name = res.get("scenario", "run") if rel == "." else rel.replace(os.sep, "/")
        runs[name] = res
    # manifest order and names for batch variants
    ordered = {}
    listed = inp.manifest.get("variants") if inp.manifest else None
    if listed:
        for v in listed:
            folder = v.get("folder") or v.get("name")
            if folder in runs:
                r = runs.pop(folder)
                r["_variant"] = v
                ordered[v.get("name") or folder] = r
        inp.extra = sorted(runs)  # not this batch's: left out, and said so
        runs = {}
    for name in sorted(runs):
        ordered[name] = runs[name]
    if not ordered:
        raise FileNotFoundError(f"no {RESULTS} in {root} or its sub-folders (run `bubblesim run` or `batch` first)")
    inp.runs = ordered
    for f in _find(root, ["sensitivity*.json", "sensitivity*.csv", "tornado*.json", "tornado*.csv"]):
        inp.sensitivity.extend(_read_sensitivity(f))
    for f in _find(root, ["sweep*.json", "sweep*.csv"]):
        inp.sweeps.extend(_read_sweep(f))
    inp.sweeps.extend(manifest_sweeps(inp))
    return inp


# ------------------------------------------------------------------------------ tables
def _num(v):
    if v is None or v == "":
        return None
    if isinstance(v, (int, float)):
        return v
    try:
        x = float(v)
    except (TypeError, ValueError):
        return v
    return int(x) if x.is_integer() and "." not in str(v) and "e" not in str(v).lower() else x


def _read_csv(path: str) -> list[dict]:
    with open(path, encoding="utf-8", newline="") as fh:
        return [{k: _num(v) for k, v in row.items()} for row in csv.DictReader(fh)]


def _label(path: str) -> str:
    return os.path.splitext(os.path.basename(path))[0]


def _read_sensitivity(path: str) -> list[dict]:
    """Sensitivity tables in a file, one per metric."""
    try:
        if path.endswith(".csv"):
            rows = _read_csv(path)
            meta = {}
        else:
            with open(path, encoding="utf-8") as fh:
                data = json.load(fh)
            if isinstance(data, list):
                rows, meta = data, {}
            elif isinstance(data, dict) and isinstance(data.get("rows") or data.get("table"), list):
                rows, meta = data.get("rows") or data.get("table"), data
            elif isinstance(data, dict) and all(isinstance(v, list) for v in data.values()):
                return [{"name": f"{_label(path)}: {m}", "metric": m, "base": None, "rows": r, "file": path}
                        for m, r in data.items()]
            else:
                return []
    except (OSError, ValueError):
        return []
    groups: dict = {}
    for r in rows:
        if not isinstance(r, dict) or "param" not in r:
            continue
        groups.setdefault(r.get("metric") or meta.get("metric") or "metric", []).append(r)
    return [{"name": _label(path) if len(groups) == 1 else f"{_label(path)}: {m}", "metric": m,
             "base": meta.get("base"), "rows": g, "file": path} for m, g in groups.items()]


def _read_sweep(path: str) -> list[dict]:
    try:
        if path.endswith(".csv"):
            raw = _read_csv(path)
            if not raw:
                return []
            mcol = "metric" if "metric" in raw[0] else ("value" if "value" in raw[0] else None)
            if mcol is None:
                return []
            metric_name = "metric"
            if "metric_name" in raw[0]:
                metric_name = raw[0]["metric_name"]
            rows = [{"params": {k: v for k, v in r.items() if k not in (mcol, "metric_name")}, "metric": r[mcol]}
                    for r in raw]
            meta = {"metric": metric_name}
        else:
            with open(path, encoding="utf-8") as fh:
                data = json.load(fh)
            if isinstance(data, list):
                rows, meta = data, {}
            elif isinstance(data, dict) and isinstance(data.get("rows") or data.get("points"), list):
                rows, meta = data.get("rows") or data.get("points"), data
            else:
                return []
    except (OSError, ValueError):
        return []
    rows = [r for r in rows if isinstance(r, dict) and isinstance(r.get("params"), dict)]
    if not rows:
        return []
    return [{"name": _label(path), "metric": meta.get("metric") or "metric", "x": meta.get("x"),
             "y": meta.get("y"), "rows": rows, "file": path}]


def run_metric(res: dict, metric: str):
    """A named metric of one results dict: p2, loss_mean, loss_var99, loss_es99, lab_pd,
    pd:ENTITY (by the horizon), p_gap_max (the lab's worst year)."""
    if metric == "lab_pd":
        return res["pd"][res["entities"].index(res["lab"])][-1]
    if metric.startswith("pd:"):
        who = metric[3:]
        return res["pd"][res["entities"].index(who)][-1] if who in res["entities"] else None
    if metric == "p_gap_max":
        vals = [v for v in res.get("p_gap") or [] if v is not None]
        return max(vals) if vals else None
    v = res.get(metric)
    return v if isinstance(v, (int, float)) and math.isfinite(v) else None


def manifest_sweeps(inp: ReportInputs, metrics=("p2", "lab_pd")) -> list[dict]:
    """Sweeps implied by a batch manifest: variants of one scenario file whose overrides
    share the same keys, with at least two variants and one or two keys that vary."""
    groups: dict = {}
    for name, res in inp.runs.items():
        v = res.get("_variant") or {}
        ov = v.get("overrides") or {}
        if not ov:
            continue
        key = (v.get("source") or res.get("scenario"), tuple(sorted(ov)))
        groups.setdefault(key, []).append((name, ov, res))
    out = []
    for (_source, keys), members in groups.items():
        if len(members) < 2:
            continue
        varying = [k for k in keys if len({json.dumps(m[1][k], sort_keys=True) for m in members}) > 1]
        if not 1 <= len(varying) <= 2:
            continue
        scen = members[0][2].get("scenario", "?")
        for metric in metrics:
            rows = [{"params": {k: ov[k] for k in varying}, "metric": run_metric(res, metric)}
                    for _, ov, res in members]
            out.append({"name": f"{scen}: {' x '.join(varying)}", "metric": metric, "x": varying[0],
                        "y": varying[1] if len(varying) > 1 else None, "rows": rows,
                        "runs": [m[2] for m in members]})
    return out


# ------------------------------------------------------------------------------ adapters
def as_results_dict(x) -> dict:
    """The results dict every figure is drawn from, from what a notebook has at hand: a
    `sim.engine.Results` (its `to_dict()`, with its scenario text), a run folder or
    results.json path (`load_results`), or the dict itself (returned unchanged)."""
    if isinstance(x, dict):
        return x
    if isinstance(x, (str, os.PathLike)):
        return load_results(os.fspath(x))
    if hasattr(x, "to_dict") and hasattr(x, "entities"):
        d = x.to_dict()
        d["_date"] = _dt.date.today().isoformat()
        if getattr(x, "scenario_source", ""):
            d["_scenario_source"] = x.scenario_source
        return d
    raise TypeError(f"expected a Results, a results folder or a results dict, got {type(x).__name__}")


def as_runs(x) -> dict:
    """{name: results dict} for figures across runs, from a batch folder (its manifest's
    variants), a dict of name -> (Results | folder | dict), or a list of them (named by scenario)."""
    if isinstance(x, (str, os.PathLike)):
        return load_inputs(os.fspath(x)).runs
    if isinstance(x, dict) and "entities" not in x:
        return {str(k): as_results_dict(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        out = {}
        for item in x:
            d = as_results_dict(item)
            out[d.get("scenario", f"run{len(out) + 1}") if d.get("scenario") not in out else
                f"{d.get('scenario')}#{len(out) + 1}"] = d
        return out
    d = as_results_dict(x)
    return {d.get("scenario", "run"): d}


def as_table(x, kind: str) -> dict:
    """A sensitivity (`kind` "sensitivity") or sweep ("sweep") table {"rows", "metric", ...}
    from a folder holding one (the first found), a table dict, or a list of rows."""
    if isinstance(x, (str, os.PathLike)):
        inp = load_inputs(os.fspath(x)) if kind == "sweep" else None
        if kind == "sensitivity":
            root = os.fspath(x)
            found = []
            for f in _find(root if os.path.isdir(root) else os.path.dirname(root),
                           ["sensitivity*.json", "sensitivity*.csv", "tornado*.json", "tornado*.csv"]):
                found.extend(_read_sensitivity(f))
        else:
            found = inp.sweeps
        if not found:
            raise FileNotFoundError(f"no {kind} table in {x}")
        return found[0]
    if isinstance(x, dict) and isinstance(x.get("rows"), list):
        return x
    if isinstance(x, list):
        return {"rows": x}
    raise TypeError(f"expected a folder, a {kind} table or a list of rows, got {type(x).__name__}")
