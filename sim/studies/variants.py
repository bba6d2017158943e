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
"""

from __future__ import annotations

import glob
import hashlib
import itertools
import json
import math
import os
import re
from dataclasses import dataclass, field
from typing import Any

from sim._version import __version__
from sim.engine.runner import DEFAULT_CHUNK_SIZE, chunk_layout
from sim.scenario import Scenario, ScenarioError, load_scenario
from sim.scenario.source import read_toml

MARKER = "_complete.json"
CHUNKS = "chunks.csv"
TMP_PREFIX = ".tmp-variant-"


STREAM = "chunk k: Generator(Philox(SeedSequence(seed, spawn_key=(k,))))"
_SIMPLE = re.compile(r"[A-Za-z0-9_-]+")


class BatchError(RuntimeError):
    """A batch cannot start: its output folder is in use, or Dask is missing."""


# --------------------------------------------------------------------------------------
# Variants
# --------------------------------------------------------------------------------------


class Variant:
    """One run of a batch: a scenario with overrides, paths, seed and chunk size applied.

    A variant holds only its overrides: `base` (the scenario file as loaded) is shared by every
    variant of a file, and `scenario` is rebuilt (and re-validated) from it on each access, so
    a sweep of many variants costs memory for its override dicts alone.
    """

    def __init__(self, name: str, base: Scenario, source: str, overrides: dict | None = None,
                 chunk_size: int = DEFAULT_CHUNK_SIZE, *, paths: int, seed: int,
                 target_se: float | None = None, max_paths: int | None = None):
        self.name = name
        self.base = base
        self.source = source  # the scenario file
        self.overrides = dict(overrides or {})  # dotted key -> value (sweep and set)
        self.chunk_size = chunk_size
        self.paths = int(paths)
        self.seed = int(seed)
        self.target_se = target_se  # if set: add chunks until every PD's se <= target_se ...
        self.max_paths = max_paths  # ... or this many paths (then `paths` is not used)
        self._hash: str | None = None
        self._scenario_name: str | None = None

    def __repr__(self) -> str:
        return f"Variant({self.name!r}, {self.paths} paths, seed {self.seed})"

    @property
    def scenario(self) -> Scenario:
        """The resolved scenario: overrides, then paths and seed, applied to the base (built on demand)."""
        s = self.base.with_overrides(self.overrides) if self.overrides else self.base
        return s.with_overrides({"paths": self.paths, "seed": self.seed})

    def _resolve_ids(self) -> None:
        sc = self.scenario
        self._hash, self._scenario_name = sc.hash, sc.name

    @property
    def scenario_hash(self) -> str:
        """The resolved scenario's hash (computed once; the scenario itself is not kept)."""
        if self._hash is None:
            self._resolve_ids()
        return self._hash

    @property
    def scenario_name(self) -> str:
        if self._hash is None:
            self._resolve_ids()
        return self._scenario_name

    @property
    def input_hash(self) -> str:
        """Hash of everything that determines the results (same inputs -> same hash)."""
        blob = json.dumps({"bubblesim": __version__, "variant": self.name, "scenario_hash": self.scenario_hash,
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


DEFAULT_MAX_VARIANTS = 1000  # more needs --max-variants: each variant is a full run


class Sweep:
    """The override dicts of a [sweep], generated one at a time (counted without building them)."""

    def __init__(self, keys: list[str], axes: list[list], mode: str, base: bool):
        self.keys, self.axes, self.mode, self.base = keys, axes, mode, base

    def __len__(self) -> int:
        n = len(self.axes[0]) if self.mode == "zip" else math.prod(len(a) for a in self.axes)
        return n + (1 if self.base else 0)

    def __iter__(self):
        if self.base:
            yield {}
        combos = zip(*self.axes) if self.mode == "zip" else itertools.product(*self.axes)
        for c in combos:
            yield dict(zip(self.keys, c))


def parse_sweep(sweep: Any, file: str, where: str = "sweep") -> tuple[Sweep, bool]:
    """The override dicts of a [sweep] table (a lazy, sized iterable, the base first when it
    runs too) and whether the base runs too."""
    if not isinstance(sweep, dict):
        raise ScenarioError(file, where, None, "expected a table of key = [values]")
    sweep = dict(sweep)
    mode = sweep.pop("mode", "grid")
    base = sweep.pop("base", False)
    if mode not in ("grid", "zip"):
        raise ScenarioError(file, f"{where}.mode", None, f"expected 'grid' or 'zip', found {_short(mode)}")
    if not isinstance(base, bool):
        raise ScenarioError(file, f"{where}.base", None, f"expected true or false, found {_short(base)}")
    axes = _flatten(sweep)
    if not axes:
        raise ScenarioError(file, where, None, "a sweep needs at least one key = [values]")
    for k, vals in axes.items():
        if not isinstance(vals, list) or not vals:
            raise ScenarioError(file, f"{where}.{k}", None,
                                f"expected a non-empty list of values, e.g. [0.3, 0.5], found {_short(vals)}")
    if mode == "zip":
        lengths = {k: len(v) for k, v in axes.items()}
        if len(set(lengths.values())) > 1:
            raise ScenarioError(file, where, None, "zip mode needs lists of the same length, found "
                                + ", ".join(f"{k}: {n}" for k, n in lengths.items()))
    return Sweep(list(axes), list(axes.values()), mode, base), base


def _short(v: Any) -> str:
    r = repr(v)
    return r if len(r) <= 80 else r[:77] + "..."


def _too_many(file: str, key: str, n: int, max_variants: int) -> ScenarioError:
    return ScenarioError(file, key, None, f"{n:,} variants is above the limit of {max_variants:,} "
                         f"(each is a full run; pass --max-variants {n} to run them all)")


def _read_raw(path: str) -> dict:
    """The parsed TOML of `path`, or {} if it cannot be read (the loader then says why)."""
    try:
        return read_toml(path)[1]
    except ScenarioError:
        return {}


def is_batch_file(path: str) -> bool:
    """True for a TOML file with a top-level [batch] table."""
    return isinstance(_read_raw(path).get("batch"), dict)


def has_sweep(path: str) -> bool:
    return isinstance(_read_raw(path).get("sweep"), dict)


def _variant_specs(path: str, sc: Scenario, sweep: Any, overrides: dict | None, label: str | None,
                   use_file_sweep: bool):
    """(where, label, fixed overrides, lazy sized iterable of sweep combos) of one scenario file."""
    where = "sweep"
    if sweep is None and use_file_sweep:
        sweep = _read_raw(path).get("sweep")
    else:
        where = "run.sweep"
    combos = parse_sweep(sweep, path, where)[0] if sweep is not None else [{}]
    return where, label or sc.name, dict(overrides or {}), combos


def iter_variants(path: str, sc: Scenario, where: str, label: str, fixed: dict, combos):
    """(name, scenario, overrides) for each variant, validated one at a time (a generator)."""
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
        yield variant_name(label, name_ov), s, ov


def scenario_variants(path: str, *, sweep: Any = None, overrides: dict | None = None, label: str | None = None,
                      use_file_sweep: bool = True, scenario: Scenario | None = None,
                      max_variants: int = DEFAULT_MAX_VARIANTS) -> list[tuple[str, Scenario, dict]]:
    """(name, scenario, overrides) for each variant of one scenario file, every one validated.

    The file's own [sweep] applies when `use_file_sweep` and no `sweep` is given. The variants
    are counted first: more than `max_variants` is a ScenarioError before any is built.
    """
    sc = scenario or load_scenario(path)
    where, label, fixed, combos = _variant_specs(path, sc, sweep, overrides, label, use_file_sweep)
    if len(combos) > max_variants:
        raise _too_many(path, where, len(combos), max_variants)
    return list(iter_variants(path, sc, where, label, fixed, combos))


@dataclass
class BatchPlan:
    variants: list[Variant]
    seed: int
    chunk_size: int
    name: str | None = None
    notes: list[str] = field(default_factory=list)
    inputs: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # unusual values, one line each (ScenarioError.one_line)


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


def _check_int(file, key, v, lo, hi):
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise ScenarioError(file, key, None, f"expected an integer in [{lo}, {hi:,}], found {_short(v)}")
    return v


def _read_batch_file(path: str, notes: list[str]) -> tuple[dict, list[dict]]:
    """The [batch] settings and the run specs ({file, sweep, set, label, use_file_sweep})."""
    from sim.scenario.errors import _suggest  # the loader's did-you-mean

    raw = read_toml(path)[1]
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
    for k, lo, hi in (("paths", 1, 10**9), ("seed", 0, 2**63 - 1), ("chunk_size", 1, 10**9)):
        if k in b:
            settings[k] = _check_int(path, f"batch.{k}", b[k], lo, hi)
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
        if hits == [full] and not os.path.exists(full):
            raise ScenarioError(path, "batch.scenarios", None, f"{_short(pat)}: file not found")
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
        if not isinstance(r["scenario"], str) or not os.path.exists(os.path.join(here, r["scenario"])):
            raise ScenarioError(path, f"run[{i}].scenario", None, f"{_short(r['scenario'])}: no such scenario file")
        specs.append({"file": os.path.join(here, r["scenario"]), "sweep": r.get("sweep"),
                      "set": _flatten(sets), "label": r.get("name"), "use_file_sweep": False})
    if not specs:
        raise ScenarioError(path, "batch.scenarios", None, "a batch names no scenarios ([batch] scenarios or [[run]])")
    return settings, specs


def collect_variants(inputs: list[str], *, paths: int | None = None, seed: int | None = None,
                     chunk_size: int | None = None, sets: dict | None = None,
                     max_variants: int = DEFAULT_MAX_VARIANTS) -> BatchPlan:
    """Expand folders, scenario files and batch files into validated variants.

    Precedence: the arguments here (the CLI), then a batch file's [batch], then the scenario.
    One seed and one chunk size hold for the whole batch (common random numbers).
    `sets` (the CLI's --set): dotted overrides applied to every variant, after a [[run]]'s
    own `set`; they become part of each variant's name (and so of its folder). The variants
    are counted before any is built; more than `max_variants` is a ScenarioError. Each is then
    validated once, and kept as its overrides only (see `Variant`).
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

    if sets:
        for spec in specs:
            spec["set"] = {**(spec.get("set") or {}), **sets}
    loaded: dict[str, Scenario] = {}
    plans = []
    total = 0
    for spec in specs:
        f = spec["file"]
        key = os.path.realpath(f)
        if key not in loaded:
            loaded[key] = load_scenario(f)
        sc = loaded[key]
        where, label, fixed, combos = _variant_specs(f, sc, spec.get("sweep"), spec.get("set"), spec.get("label"),
                                                     spec.get("use_file_sweep", True))
        total += len(combos)
        if total > max_variants:
            raise _too_many(f, where, total, max_variants)
        plans.append((spec, sc, where, label, fixed, combos))

    raw: list[tuple[str, Scenario, dict, dict, int, int]] = []  # name, base, overrides, spec, seed, paths
    warnings: dict[str, None] = {}
    for spec, sc, where, label, fixed, combos in plans:
        for w in sc.warnings:
            warnings[w.one_line()] = None
        for name, s, ov in iter_variants(spec["file"], sc, where, label, fixed, combos):
            for w in s.warnings:
                warnings[w.one_line()] = None
            raw.append((name, sc, ov, spec, int(s.data["seed"]), int(s.data["paths"])))

    if seed is None:
        seed = batch_seed
    if seed is None:
        seeds = sorted({r[4] for r in raw})
        seed = raw[0][4]
        if len(seeds) > 1:
            notes.append(f"scenarios have different seeds ({', '.join(map(str, seeds))}); the batch runs every "
                         f"variant with seed {seed} (common random numbers); pass --seed to choose")
    chunk_size = chunk_size or batch_chunk or DEFAULT_CHUNK_SIZE

    variants: list[Variant] = []
    by_name: dict[str, Variant] = {}
    for name, sc, ov, spec, _seed, own_paths in raw:
        n = paths or spec.get("paths") or own_paths
        v = Variant(name, sc, spec["file"], ov, chunk_size, paths=int(n), seed=int(seed))
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
    return BatchPlan(variants, int(seed), int(chunk_size), batch_name, notes, list(inputs), list(warnings))


def validate_path(path: str, sets: dict | None = None, *, max_variants: int = DEFAULT_MAX_VARIANTS,
                  warnings: list | None = None) -> str:
    """The `bubblesim validate` line for a batch file or a scenario file with a [sweep]
    (ScenarioError if anything is wrong, sweep keys and `sets` overrides included). Warnings
    about unusual values (one line each) are appended to `warnings` when it is given."""
    warnings = warnings if warnings is not None else []
    if is_batch_file(path):
        plan = collect_variants([path], sets=sets, max_variants=max_variants)
        warnings.extend(plan.warnings)
        return f"batch file, {len(plan.variants)} variants"
    s = load_scenario(path)
    warnings.extend(w.one_line() for w in s.warnings)
    extra = ""
    if sets:
        s = scenario_variants(path, overrides=sets, scenario=s, use_file_sweep=False)[0][1]
        extra = f", with {len(sets)} override{'s' if len(sets) > 1 else ''}"
    if has_sweep(path):
        vs = scenario_variants(path, scenario=s, overrides=sets, max_variants=max_variants)
        for _, v, _ in vs:
            warnings.extend(w.one_line() for w in v.warnings if w.one_line() not in warnings)
        extra += f", [sweep] of {len(vs)} variants"
    return (f"{s.name} ({len(s.data['entity'])} entities, {len(s.data.get('contract', []))} contracts{extra})")
