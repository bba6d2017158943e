"""Batches: run many scenarios and their sweep variants, write one tidy summary table.

    bubblesim batch scenarios/ --out results/            # every *.toml of a folder
    bubblesim batch base.toml stress.toml --paths 20000  # a list of files
    bubblesim batch study.toml                           # a batch file

Sweeps (inside a scenario file)
-------------------------------
A ``[sweep]`` table lists values for dotted scenario keys (the keys of
`Scenario.with_overrides`); each combination is one *variant*, named like
``base[revenue.growth0=0.4,revenue.volatility=0.3]``::

    [sweep]
    mode = "grid"                     # Cartesian product (default) or "zip" (same-length lists)
    base = false                      # true: also run the scenario as written
    revenue.growth0 = [0.4, 0.6]
    "entity.Oracle.cash" = [5.0, 10.0]

`load_scenario` ignores ``[sweep]`` (so `bubblesim run` runs the file as written); only
the file named (not its `extends` parents) contributes its sweep.

Batch files
-----------
A TOML file with a top-level ``[batch]`` table (scenario files never have one; a folder
given to `bubblesim batch` skips batch files)::

    [batch]
    name = "growth-study"             # optional label in the manifest
    scenarios = ["base.toml", "stress/*.toml"]  # files or globs, relative to this file;
                                      # each file's own [sweep] applies
    paths = 50000                     # optional, every variant (CLI --paths wins)
    seed = 1                          # optional (CLI --seed wins)
    chunk_size = 8192                 # optional (CLI --chunk-size wins)

    [[run]]                           # optional: more variants of one scenario
    scenario = "base.toml"
    name = "lowvol"                   # optional label (default: the scenario's name)
    set = { "revenue.volatility" = 0.2 }      # fixed overrides
    sweep = { "revenue.growth0" = [0.3, 0.5] }  # replaces the file's own [sweep]

Common random numbers
---------------------
Every variant of a batch runs with the same root seed and chunk size (CLI, else the
batch file, else the scenarios' common seed, else the first scenario's), so chunk k of
every variant draws the same stream. Each variant folder holds ``chunks.csv`` (per-chunk
counts); `paired_difference` turns two of them into a difference with a paired
batch-means standard error.

Nothing lost
------------
Each variant is written to ``<out>/.tmp-variant-*`` and renamed into place with a
``_complete.json`` marker that holds the hash of its resolved inputs (scenario with
overrides, paths, seed, chunk size, bubblesim version). A re-run skips variants whose
marker matches; ``force=True`` recomputes. The summary and manifest are rewritten from
the variant folders at the end.
"""

from __future__ import annotations

import csv
import glob
import hashlib
import io
import itertools
import json
import math
import os
import platform
import re
import shutil
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable

import numpy as np

from . import __version__
from .engine import DEFAULT_CHUNK_SIZE, SUMMARY_FIXED, chunk_layout, simulate
from .scenario import Scenario, ScenarioError, load_scenario

__all__ = ["BatchError", "Variant", "BatchPlan", "is_batch_file", "scenario_variants", "collect_variants",
           "run_batch", "summary_rows", "load_chunks", "paired_difference", "validate_path"]

MARKER = "_complete.json"
CHUNKS = "chunks.csv"
TMP_PREFIX = ".tmp-variant-"
SUMMARY_COLUMNS = ["variant", "scenario", "entity", "year", "metric", "value", "se", "lo95", "hi95", "paths"]
STREAM = "chunk k: Generator(Philox(SeedSequence(seed, spawn_key=(k,))))"
_SIMPLE = re.compile(r"[A-Za-z0-9_-]+")


class BatchError(RuntimeError):
    """A batch cannot start: its output folder is in use, or Dask is missing."""


# --------------------------------------------------------------------------------------
# Variants
# --------------------------------------------------------------------------------------


@dataclass
class Variant:
    """One run of a batch: a scenario with overrides, paths, seed and chunk size applied."""

    name: str
    scenario: Scenario  # resolved: overrides, paths and seed are in scenario.data
    source: str  # the scenario file
    overrides: dict = field(default_factory=dict)  # dotted key -> value (sweep and set)
    chunk_size: int = DEFAULT_CHUNK_SIZE
    target_se: float | None = None  # if set: add chunks until every PD's se <= target_se ...
    max_paths: int | None = None  # ... or this many paths (then `paths` is not used)

    @property
    def paths(self) -> int:
        return int(self.scenario.data["paths"])

    @property
    def seed(self) -> int:
        return int(self.scenario.data["seed"])

    @property
    def input_hash(self) -> str:
        """Hash of everything that determines the results (same inputs -> same hash)."""
        blob = json.dumps({"bubblesim": __version__, "variant": self.name, "scenario_hash": self.scenario.hash,
                           "paths": self.paths, "seed": self.seed, "chunk_size": self.chunk_size,
                           **({"target_se": self.target_se, "max_paths": self.max_paths}
                              if self.target_se is not None else {})},
                          sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()

    @property
    def folder(self) -> str:
        """A file-system-safe folder name derived from the variant name."""
        f = re.sub(r"[^A-Za-z0-9._=,+\[\]@-]", "_", self.name).lstrip(".") or "variant"
        if len(f) > 120 or f != self.name:
            f = f[:100] + "-" + hashlib.sha256(self.name.encode()).hexdigest()[:8]
        return f

    def layout(self, paths: int | None = None) -> dict:
        """The chunk layout of `paths` (default: the variant's own) paths."""
        sizes = chunk_layout(self.paths if paths is None else paths, self.chunk_size)
        return {"chunk_size": self.chunk_size, "chunks": len(sizes), "last_chunk_paths": sizes[-1],
                "first_chunk": 0, "stream": STREAM}


def _fmt_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return format(v, ".10g")
    if isinstance(v, (int, str)):
        return str(v)
    return json.dumps(v, separators=(",", ":"), sort_keys=True, default=str)


def variant_name(label: str, overrides: dict) -> str:
    if not overrides:
        return label
    return label + "[" + ",".join(f"{k}={_fmt_value(v)}" for k, v in overrides.items()) + "]"


def _flatten(tbl: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in tbl.items():
        if not prefix:
            key = k
        elif _SIMPLE.fullmatch(k):
            key = f"{prefix}.{k}"
        else:
            key = f"{prefix}[{json.dumps(k)}]"
        if isinstance(v, dict):
            out.update(_flatten(v, key))
        else:
            out[key] = v
    return out


def parse_sweep(sweep: Any, file: str, where: str = "sweep") -> tuple[list[dict], bool]:
    """The override dicts of a [sweep] table (in order) and whether the base runs too."""
    if not isinstance(sweep, dict):
        raise ScenarioError(file, where, None, "expected a table of key = [values]")
    sweep = dict(sweep)
    mode = sweep.pop("mode", "grid")
    base = sweep.pop("base", False)
    if mode not in ("grid", "zip"):
        raise ScenarioError(file, f"{where}.mode", None, f"expected 'grid' or 'zip', found {mode!r}")
    if not isinstance(base, bool):
        raise ScenarioError(file, f"{where}.base", None, f"expected true or false, found {base!r}")
    axes = _flatten(sweep)
    if not axes:
        raise ScenarioError(file, where, None, "a sweep needs at least one key = [values]")
    for k, vals in axes.items():
        if not isinstance(vals, list) or not vals:
            raise ScenarioError(file, f"{where}.{k}", None,
                                f"expected a non-empty list of values, e.g. [0.3, 0.5], found {vals!r}")
    keys = list(axes)
    if mode == "zip":
        lengths = {k: len(v) for k, v in axes.items()}
        if len(set(lengths.values())) > 1:
            raise ScenarioError(file, where, None, "zip mode needs lists of the same length, found "
                                + ", ".join(f"{k}: {n}" for k, n in lengths.items()))
        combos = list(zip(*axes.values()))
    else:
        combos = list(itertools.product(*axes.values()))
    return [dict(zip(keys, c)) for c in combos], base


def _read_raw(path: str) -> dict:
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError):
        return {}


def is_batch_file(path: str) -> bool:
    """True for a TOML file with a top-level [batch] table."""
    return isinstance(_read_raw(path).get("batch"), dict)


def has_sweep(path: str) -> bool:
    return isinstance(_read_raw(path).get("sweep"), dict)


def scenario_variants(path: str, *, sweep: Any = None, overrides: dict | None = None, label: str | None = None,
                      use_file_sweep: bool = True, scenario: Scenario | None = None) -> list[tuple[str, Scenario, dict]]:
    """(name, scenario, overrides) for each variant of one scenario file, every one validated.

    The file's own [sweep] applies when `use_file_sweep` and no `sweep` is given.
    """
    sc = scenario or load_scenario(path)
    where = "sweep"
    if sweep is None and use_file_sweep:
        sweep = _read_raw(path).get("sweep")
    else:
        where = "run.sweep"
    fixed = dict(overrides or {})
    combos, base = parse_sweep(sweep, path, where) if sweep is not None else ([{}], False)
    if base and combos != [{}]:
        combos = [{}] + combos
    label = label or sc.name
    out = []
    for combo in combos:
        ov = {**fixed, **combo}
        try:
            s = sc.with_overrides(ov) if ov else sc
        except ScenarioError as err:
            first = err.errors[0]
            tag = where if first.key in combo else "set"
            raise ScenarioError(path, f"{tag}: {first.key}" if first.key else tag, None,
                                first.message + (f" (variant {variant_name(label, ov)})" if ov else "")) from None
        name_ov = combo if label != sc.name else ov
        out.append((variant_name(label, name_ov), s, ov))
    return out


@dataclass
class BatchPlan:
    variants: list[Variant]
    seed: int
    chunk_size: int
    name: str | None = None
    notes: list[str] = field(default_factory=list)
    inputs: list[str] = field(default_factory=list)


def _expand_input(path: str, notes: list[str]) -> list[str]:
    if os.path.isdir(path):
        files = sorted(glob.glob(os.path.join(glob.escape(path), "*.toml")))
        keep = []
        for f in files:
            if is_batch_file(f):
                notes.append(f"skipping batch file {f} in folder {path} (name it to run it)")
            else:
                keep.append(f)
        if not keep:
            raise ScenarioError(path, "", None, "no scenario files (*.toml) in this folder")
        return keep
    if not os.path.exists(path):
        raise FileNotFoundError(f"no such file or folder: {path}")
    return [path]


_BATCH_KEYS = ("name", "scenarios", "paths", "seed", "chunk_size")
_RUN_KEYS = ("scenario", "name", "set", "sweep")


def _check_int(file, key, v, lo):
    if isinstance(v, bool) or not isinstance(v, int) or v < lo:
        raise ScenarioError(file, key, None, f"expected an integer >= {lo}, found {v!r}")
    return v


def _read_batch_file(path: str, notes: list[str]) -> tuple[dict, list[dict]]:
    """The [batch] settings and the run specs ({file, sweep, set, label, use_file_sweep})."""
    from .scenario import _suggest  # the loader's did-you-mean

    with open(path, "rb") as fh:
        try:
            raw = tomllib.load(fh)
        except tomllib.TOMLDecodeError as e:
            raise ScenarioError(path, "", None, f"TOML syntax error: {e}") from None
    for k in raw:
        if k not in ("batch", "run"):
            raise ScenarioError(path, k, None, f"unknown top-level key in a batch file{_suggest(k, ['batch', 'run'])};"
                                " valid: [batch], [[run]]")
    b = raw["batch"]
    for k in b:
        if k not in _BATCH_KEYS:
            raise ScenarioError(path, f"batch.{k}", None, f"unknown key{_suggest(k, _BATCH_KEYS)}; "
                                f"valid: {', '.join(_BATCH_KEYS)}")
    settings = {}
    for k, lo in (("paths", 1), ("seed", 0), ("chunk_size", 1)):
        if k in b:
            settings[k] = _check_int(path, f"batch.{k}", b[k], lo)
    if "name" in b:
        settings["name"] = str(b["name"])
    here = os.path.dirname(path)
    specs = []
    pats = b.get("scenarios", [])
    if isinstance(pats, str):
        pats = [pats]
    if not isinstance(pats, list) or not all(isinstance(p, str) for p in pats):
        raise ScenarioError(path, "batch.scenarios", None, "expected a list of file names or globs")
    for pat in pats:
        full = os.path.join(here, pat)
        hits = sorted(glob.glob(full)) if glob.has_magic(pat) else [full]
        if not hits:
            raise ScenarioError(path, "batch.scenarios", None, f"{pat!r} matches no file")
        for f in hits:
            if os.path.isdir(f):
                for g in _expand_input(f, notes):
                    specs.append({"file": g})
            elif os.path.realpath(f) == os.path.realpath(path) or is_batch_file(f):
                if glob.has_magic(pat):
                    continue
                raise ScenarioError(path, "batch.scenarios", None, f"{pat!r} is a batch file, not a scenario")
            else:
                specs.append({"file": f})
    runs = raw.get("run", [])
    if isinstance(runs, dict):
        runs = [runs]
    if not isinstance(runs, list):
        raise ScenarioError(path, "run", None, "expected [[run]] tables")
    for i, r in enumerate(runs):
        if not isinstance(r, dict) or "scenario" not in r:
            raise ScenarioError(path, f"run[{i}]", None, "each [[run]] needs scenario = \"FILE\"")
        for k in r:
            if k not in _RUN_KEYS:
                raise ScenarioError(path, f"run[{i}].{k}", None,
                                    f"unknown key{_suggest(k, _RUN_KEYS)}; valid: {', '.join(_RUN_KEYS)}")
        sets = r.get("set", {})
        if not isinstance(sets, dict):
            raise ScenarioError(path, f"run[{i}].set", None, "expected a table of \"dotted.key\" = value")
        specs.append({"file": os.path.join(here, r["scenario"]), "sweep": r.get("sweep"),
                      "set": _flatten(sets), "label": r.get("name"), "use_file_sweep": False})
    if not specs:
        raise ScenarioError(path, "batch.scenarios", None, "a batch names no scenarios ([batch] scenarios or [[run]])")
    return settings, specs


def collect_variants(inputs: list[str], *, paths: int | None = None, seed: int | None = None,
                     chunk_size: int | None = None) -> BatchPlan:
    """Expand folders, scenario files and batch files into validated variants.

    Precedence: the arguments here (the CLI), then a batch file's [batch], then the scenario.
    One seed and one chunk size hold for the whole batch (common random numbers).
    """
    notes: list[str] = []
    specs: list[dict] = []
    batch_seed = batch_chunk = None
    batch_name = None
    for inp in inputs:
        if os.path.isfile(inp) and is_batch_file(inp):
            settings, sp = _read_batch_file(inp, notes)
            for k in ("seed", "chunk_size"):
                if k in settings:
                    prev = batch_seed if k == "seed" else batch_chunk
                    if prev is not None and prev != settings[k]:
                        raise ScenarioError(inp, f"batch.{k}", None,
                                            f"batch files disagree on {k} ({prev} vs {settings[k]}); "
                                            f"one batch uses one {k}")
                    if k == "seed":
                        batch_seed = settings[k]
                    else:
                        batch_chunk = settings[k]
            batch_name = batch_name or settings.get("name")
            for s in sp:
                s["paths"] = settings.get("paths")
            specs.extend(sp)
        else:
            specs.extend({"file": f} for f in _expand_input(inp, notes))

    loaded: dict[str, Scenario] = {}
    raw: list[tuple[str, Scenario, dict, dict]] = []
    for spec in specs:
        f = spec["file"]
        key = os.path.realpath(f)
        if key not in loaded:
            loaded[key] = load_scenario(f)
        for name, sc, ov in scenario_variants(f, sweep=spec.get("sweep"), overrides=spec.get("set"),
                                              label=spec.get("label"),
                                              use_file_sweep=spec.get("use_file_sweep", True), scenario=loaded[key]):
            raw.append((name, sc, ov, spec))

    if seed is None:
        seed = batch_seed
    if seed is None:
        seeds = sorted({int(sc.data["seed"]) for _, sc, _, _ in raw})
        seed = int(raw[0][1].data["seed"])
        if len(seeds) > 1:
            notes.append(f"scenarios have different seeds ({', '.join(map(str, seeds))}); the batch runs every "
                         f"variant with seed {seed} (common random numbers); pass --seed to choose")
    chunk_size = chunk_size or batch_chunk or DEFAULT_CHUNK_SIZE

    variants: list[Variant] = []
    by_name: dict[str, Variant] = {}
    for name, sc, ov, spec in raw:
        n = paths or spec.get("paths") or int(sc.data["paths"])
        resolved = sc.with_overrides({"paths": int(n), "seed": int(seed)})
        v = Variant(name, resolved, spec["file"], ov, chunk_size)
        if name in by_name:
            if by_name[name].input_hash == v.input_hash:
                continue  # the same variant named twice (a folder and a file in it)
            raise ScenarioError(spec["file"], "", None,
                                f"two different variants are named {name!r} (also from {by_name[name].source}); "
                                "give one a [[run]] name or rename the scenario")
        by_name[name] = v
        variants.append(v)
    folders: dict[str, str] = {}
    for v in variants:
        if v.folder in folders:
            raise ScenarioError(v.source, "", None, f"variants {v.name!r} and {folders[v.folder]!r} map to the same "
                                f"folder {v.folder!r}; rename one")
        folders[v.folder] = v.name
    return BatchPlan(variants, int(seed), int(chunk_size), batch_name, notes, list(inputs))


def validate_path(path: str) -> str:
    """The `bubblesim validate` line for a batch file or a scenario file with a [sweep]
    (ScenarioError if anything is wrong, sweep keys included)."""
    if is_batch_file(path):
        plan = collect_variants([path])
        return f"batch file, {len(plan.variants)} variants"
    s = load_scenario(path)
    extra = ""
    if has_sweep(path):
        extra = f", [sweep] of {len(scenario_variants(path, scenario=s))} variants"
    return (f"{s.name} ({len(s.data['entity'])} entities, {len(s.data.get('contract', []))} contracts{extra})")


# --------------------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------------------


def _write_atomic(path: str, data: bytes | str) -> None:
    tmp = os.path.join(os.path.dirname(path), f"{TMP_PREFIX}{os.path.basename(path)}-{os.getpid()}")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data.encode() if isinstance(data, str) else data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _chunks_csv(results, summaries: np.ndarray, first_chunk: int = 0) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["chunk", "paths", "loss_mean", "loss_var99", "loss_es99", "n_2plus"]
               + [f"defaults:{e}:{y}" for e in results.entities for y in results.years])
    for k, row in enumerate(summaries):
        w.writerow([first_chunk + k, int(row[3]), repr(float(row[0])), repr(float(row[1])), repr(float(row[2])),
                    int(row[4])] + [int(x) for x in row[SUMMARY_FIXED:]])
    return buf.getvalue()


def load_chunks(variant_dir: str) -> dict:
    """Per-chunk counts of a finished variant: paths (K,), n_2plus (K,), defaults (K, n, years)."""
    with open(os.path.join(variant_dir, CHUNKS), newline="") as fh:
        rows = list(csv.reader(fh))
    head, body = rows[0], rows[1:]
    cols = head[6:]
    parts = [c[len("defaults:"):].rsplit(":", 1) for c in cols]  # entity names may hold ':'
    entities = list(dict.fromkeys(e for e, _ in parts))
    years = list(dict.fromkeys(int(y) for _, y in parts))
    a = np.array([[float(x) for x in r] for r in body])
    return {"chunk": a[:, 0].astype(int), "paths": a[:, 1], "loss_mean": a[:, 2], "n_2plus": a[:, 5],
            "defaults": a[:, 6:].reshape(len(body), len(entities), len(years)),
            "entities": entities, "years": years}


def _metric_counts(ch: dict, metric: str, entity: str | None, year: int | None) -> np.ndarray:
    if metric == "p_2plus_defaults":
        return ch["n_2plus"]
    if metric == "pd":
        if entity is None:
            raise ValueError("metric 'pd' needs an entity")
        i = ch["entities"].index(entity)
        j = len(ch["years"]) - 1 if year is None else ch["years"].index(year)
        return ch["defaults"][:, i, j]
    raise ValueError(f"unknown metric {metric!r}: use 'pd' or 'p_2plus_defaults'")


def paired_difference(a, b, metric: str = "pd", entity: str | None = None, year: int | None = None) -> dict:
    """Difference b - a of a probability between two variants (folders or `load_chunks`
    dicts) of one batch, with its paired batch-means standard error over their common
    full chunks (common random numbers make it much smaller than either variant's SE)."""
    ca = load_chunks(a) if isinstance(a, str) else a
    cb = load_chunks(b) if isinstance(b, str) else b
    k = min(len(ca["paths"]), len(cb["paths"]))
    if not np.array_equal(ca["paths"][:k], cb["paths"][:k]) or not np.array_equal(ca["chunk"][:k], cb["chunk"][:k]):
        raise ValueError("the variants do not share a chunk layout (not from one batch?)")
    n = ca["paths"][:k]
    full = n == n[0]  # drop a short last chunk
    pa = _metric_counts(ca, metric, entity, year)[:k][full] / n[full]
    pb = _metric_counts(cb, metric, entity, year)[:k][full] / n[full]
    m = int(full.sum())

    def se(x):
        return float(np.std(x, ddof=1) / math.sqrt(m)) if m >= 2 else float("nan")

    return {"a": float(pa.mean()), "b": float(pb.mean()), "diff": float((pb - pa).mean()),
            "se_diff": se(pb - pa), "se_a": se(pa), "se_b": se(pb), "chunks": m,
            "paths": int(n[full].sum())}


def summary_rows(variant: str, d: dict) -> list[tuple]:
    """Tidy rows (SUMMARY_COLUMNS) from one variant's results.json dict."""
    from .stats import proportion_se, wilson_interval

    n = d["paths"]
    ents, years, lab = d["entities"], d["years"], d["lab"]
    last = years[-1]
    sc = d["scenario"]
    rows = []

    def nz(x):
        return None if x is None or (isinstance(x, float) and not math.isfinite(x)) else float(x)

    def prob(entity, year, metric, p, se=None, lo=None, hi=None):
        if p is not None and se is None:
            se = float(proportion_se(p * n, n))
            lo, hi = (float(x) for x in wilson_interval(round(p * n), n))
        rows.append((variant, sc, entity, year, metric, nz(p), nz(se), nz(lo), nz(hi), n))

    def val(entity, year, metric, v, se=None):
        rows.append((variant, sc, entity, year, metric, nz(v), nz(se), None, None, n))

    for i, e in enumerate(ents):
        for k, y in enumerate(years):
            prob(e, y, "pd", d["pd"][i][k], d["pd_se"][i][k], d["pd_lo"][i][k], d["pd_hi"][i][k])
        prob(e, last, "p_fundamental", d["p_fundamental"][i])
        prob(e, last, "p_contagious", d["p_contagious"][i])
        val(e, last, "contagious_share", d["contagious_share"][i])
        val(e, last, "liquidity_share", d["liquidity_share"][i])
        val(e, last, "lgd", d["lgd"][i])
        val(e, last, "expected_loss_bn", d["expected_loss"][i])
        val(e, last, "lost_backlog_bn", d["lost_backlog"][i])
    for k, y in enumerate(years):
        prob(lab, y, "p_needs_funding", d["p_need"][k])
        val(lab, y, "mean_need_bn", d["mean_need"][k])
        prob(lab, y, "p_funding_gap", d["p_gap"][k], None if d["p_gap"][k] is None else
             float(proportion_se(d["p_gap"][k] * n, n)), d["p_gap_lo"][k], d["p_gap_hi"][k])
    prob(None, last, "p_2plus_defaults", d["p2"], d["p2_se"], d["p2_lo"], d["p2_hi"])
    for k in range(1, len(ents) + 1):
        prob(None, last, f"p_at_least_{k}_defaults", d["p_at_least"][k])
    val(None, last, "loss_mean_bn", d["loss_mean"], d["loss_mean_se"])
    val(None, last, "loss_var99_bn", d["loss_var99"], d["loss_var99_se"])
    val(None, last, "loss_es99_bn", d["loss_es99"], d["loss_es99_se"])
    return rows


def _write_summary(out: str, rows: list[tuple], log) -> list[str]:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(SUMMARY_COLUMNS)
    for r in rows:
        w.writerow(["" if x is None else (repr(x) if isinstance(x, float) else x) for x in r])
    _write_atomic(os.path.join(out, "summary.csv"), buf.getvalue())
    written = ["summary.csv"]
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        log("pyarrow is not installed: summary.parquet not written (pip install pyarrow)")
        return written
    cols = list(zip(*rows)) if rows else [[] for _ in SUMMARY_COLUMNS]
    types = [pa.string(), pa.string(), pa.string(), pa.int32(), pa.string(), pa.float64(), pa.float64(),
             pa.float64(), pa.float64(), pa.int64()]
    table = pa.table({c: pa.array(list(v), type=t) for c, v, t in zip(SUMMARY_COLUMNS, cols, types)})
    tmp = os.path.join(out, f"{TMP_PREFIX}summary.parquet-{os.getpid()}")
    pq.write_table(table, tmp)
    os.replace(tmp, os.path.join(out, "summary.parquet"))
    return written + ["summary.parquet"]


def _git_commit() -> tuple[str | None, bool | None]:
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        head = subprocess.run(["git", "-C", root, "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
        if head.returncode != 0:
            return None, None
        dirty = subprocess.run(["git", "-C", root, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10)
        return head.stdout.strip(), bool(dirty.stdout.strip()) if dirty.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None, None


def environment() -> dict:
    import numba

    commit, dirty = _git_commit()
    return {"bubblesim_version": __version__, "git_commit": commit, "git_dirty": dirty,
            "python": platform.python_version(), "numpy": np.__version__, "numba": numba.__version__,
            "platform": platform.platform(), "machine": platform.machine()}


def _read_marker(folder: str) -> dict | None:
    try:
        with open(os.path.join(folder, MARKER)) as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return None


# --------------------------------------------------------------------------------------
# Running
# --------------------------------------------------------------------------------------


def _run_variant(v: Variant, out: str, *, threads, executor, progress) -> dict:
    from .model import compile_scenario
    from .results import Results

    if v.target_se is not None:
        from .sensitivity import run_to_precision_with_chunks

        results, summaries = run_to_precision_with_chunks(
            v.scenario, v.target_se, v.max_paths, v.seed, chunk_size=v.chunk_size, threads=threads,
            progress=progress, executor=executor)
        info = results.run_info
    else:
        M = compile_scenario(v.scenario)
        stats, summaries, info = simulate(M, v.paths, v.seed, chunk_size=v.chunk_size, threads=threads,
                                          progress=progress, executor=executor)
        results = Results.from_stats(v.scenario, M, stats, summaries, info)
    final = os.path.join(out, v.folder)
    tmp = os.path.join(out, f"{TMP_PREFIX}{v.folder}-{os.getpid()}")
    if os.path.exists(tmp):
        shutil.rmtree(tmp)
    try:
        results.write(tmp)
        _write_atomic(os.path.join(tmp, CHUNKS), _chunks_csv(results, summaries, info["first_chunk"]))
        marker = {"variant": v.name, "input_hash": v.input_hash, "scenario": v.scenario.name,
                  "scenario_hash": v.scenario.hash, "source": v.source, "overrides": v.overrides,
                  "paths": results.paths, "seed": v.seed, **v.layout(results.paths),
                  "precision": results.run_info.get("precision"), "wall_seconds": info["wall_seconds"],
                  "threads": info["threads"], "finished": _now()}
        _write_atomic(os.path.join(tmp, MARKER), json.dumps(marker, indent=1, default=str))
        if os.path.exists(final):  # stale or --force: swap it out, then remove it
            old = os.path.join(out, f"{TMP_PREFIX}old-{v.folder}-{os.getpid()}")
            os.rename(final, old)
            os.rename(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, final)
        _fsync_dir(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return marker


def _fsync_dir(path: str) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def run_batch(plan: BatchPlan, out: str, *, force: bool = False, threads: int | None = None, executor=None,
              engine: dict | None = None, log: Callable[[str], None] | None = None, bar: bool = False,
              argv: list[str] | None = None) -> dict:
    """Run (or skip, when already done with the same inputs) every variant of `plan`;
    write the variant folders, summary.csv / summary.parquet and manifest.json to `out`.
    Returns the manifest. `executor`: see `sim.engine.simulate` (None: local threads)."""
    os.makedirs(out, exist_ok=True)
    lock = _lock(out)  # one batch per output folder at a time (released on exit, even on kill -9)
    try:
        return _run_batch(plan, out, force=force, threads=threads, executor=executor, engine=engine, log=log,
                          bar=bar, argv=argv)
    except BaseException:  # Ctrl-C, an error: leave no temp files (a kill -9's are removed by the next run)
        _remove_temps(out, os.getpid())
        raise
    finally:
        if lock is not None:
            lock.close()


def _remove_temps(out: str, pid: int | None = None) -> None:
    for stale in glob.glob(os.path.join(glob.escape(out), TMP_PREFIX + "*" + (f"-{pid}" if pid else ""))):
        if os.path.isdir(stale) and not os.path.islink(stale):
            shutil.rmtree(stale, ignore_errors=True)
        elif os.path.exists(stale):
            os.unlink(stale)


def _run_batch(plan, out, *, force, threads, executor, engine, log, bar, argv) -> dict:
    from tqdm import tqdm

    log = log or (lambda msg: None)
    t0 = time.perf_counter()
    started = _now()
    _remove_temps(out)  # left by a killed run (the lock rules out a live one)
    for note in plan.notes:
        log(f"note: {note}")

    todo, entries = [], {}
    for v in plan.variants:
        marker = None if force else _read_marker(os.path.join(out, v.folder))
        if marker is not None and marker.get("input_hash") == v.input_hash:
            entries[v.name] = {**marker, "status": "skipped"}
            log(f"skip {v.name} (done, inputs {v.input_hash[:12]})")
        else:
            todo.append(v)

    engine = engine or {"kind": "local", "threads": threads}
    manifest = {**environment(), "command": argv if argv is not None else sys.argv, "inputs": plan.inputs,
                "batch": plan.name, "out": os.path.abspath(out), "started": started, "engine": engine,
                "seed": plan.seed, "chunk_size": plan.chunk_size, "stream": STREAM, "variants": []}

    def write_manifest(final=False):
        manifest["variants"] = [_manifest_entry(v, entries.get(v.name)) for v in plan.variants]
        manifest["wall_seconds"] = time.perf_counter() - t0
        manifest["finished"] = _now() if final else None
        _write_atomic(os.path.join(out, "manifest.json"), json.dumps(manifest, indent=1, default=str))

    total = sum(v.paths for v in todo)
    pbar = tqdm(total=total, unit="path", unit_scale=True, file=sys.stderr, disable=not bar or not todo,
                dynamic_ncols=True, smoothing=0.1)
    say = (lambda m: tqdm.write(m, file=sys.stderr)) if bar and todo else log
    try:
        for i, v in enumerate(todo):
            pbar.set_description(f"variant {i + 1}/{len(todo)}")
            seen = [0]

            def progress(done, _total, seen=seen):
                pbar.update(done - seen[0])
                seen[0] = done

            marker = _run_variant(v, out, threads=threads, executor=executor, progress=progress)
            entries[v.name] = {**marker, "status": "computed"}
            say(f"done {v.name}: {marker['paths']:,} paths in {marker['wall_seconds']:.1f}s")
            write_manifest()
    finally:
        pbar.close()

    rows = []
    for v in plan.variants:
        with open(os.path.join(out, v.folder, "results.json")) as fh:
            rows.extend(summary_rows(v.name, json.load(fh)))
    manifest["summary"] = _write_summary(out, rows, log)
    write_manifest(final=True)
    return manifest


def _lock(out: str):
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock
        return None
    fh = open(os.path.join(out, ".batch.lock"), "w")
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        fh.close()
        raise BatchError(f"another bubblesim batch is writing to {out}/ (one batch per output folder)") from None
    return fh


def _manifest_entry(v: Variant, done: dict | None) -> dict:
    e = {"name": v.name, "folder": v.folder, "scenario": v.scenario.name, "source": v.source,
         "overrides": v.overrides, "scenario_hash": v.scenario.hash, "input_hash": v.input_hash,
         "seed": v.seed, "paths": v.paths, **v.layout()}
    if done is None:
        e["status"] = "pending"
    else:
        e.update(status=done["status"], wall_seconds=done.get("wall_seconds"), threads=done.get("threads"),
                 finished=done.get("finished"))
        if done.get("paths") is not None and done["paths"] != v.paths:  # --target-se chose the paths
            e.update(paths=done["paths"], precision=done.get("precision"), **v.layout(done["paths"]))
    return e


def open_executor(scheduler: str | None = None, workers: int | None = None, log=None):
    """A context manager giving (executor, engine info) for a Dask cluster, or (None, None)."""
    import contextlib

    if not scheduler and not workers:
        return contextlib.nullcontext((None, None))
    try:
        from . import cluster
    except ImportError as err:
        raise BatchError("Dask is not installed: pip install 'bubblesim[distributed]' "
                           f"(or pip install 'dask[distributed]') -- {err}") from None
    return cluster.dask_executor(scheduler=scheduler, workers=workers, log=log)
