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
import os
import re
import tomllib
from dataclasses import dataclass, field
from typing import Any

from sim._version import __version__
from sim.engine.runner import DEFAULT_CHUNK_SIZE, chunk_layout
from sim.scenario import Scenario, ScenarioError, load_scenario

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
    from sim.scenario.errors import _suggest  # the loader's did-you-mean

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
                     chunk_size: int | None = None, sets: dict | None = None) -> BatchPlan:
    """Expand folders, scenario files and batch files into validated variants.

    Precedence: the arguments here (the CLI), then a batch file's [batch], then the scenario.
    One seed and one chunk size hold for the whole batch (common random numbers).
    `sets` (the CLI's --set): dotted overrides applied to every variant, after a [[run]]'s
    own `set`; they become part of each variant's name (and so of its folder).
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


def validate_path(path: str, sets: dict | None = None) -> str:
    """The `bubblesim validate` line for a batch file or a scenario file with a [sweep]
    (ScenarioError if anything is wrong, sweep keys and `sets` overrides included)."""
    if is_batch_file(path):
        plan = collect_variants([path], sets=sets)
        return f"batch file, {len(plan.variants)} variants"
    s = load_scenario(path)
    extra = ""
    if sets:
        s = scenario_variants(path, overrides=sets, scenario=s, use_file_sweep=False)[0][1]
        extra = f", with {len(sets)} override{'s' if len(sets) > 1 else ''}"
    if has_sweep(path):
        extra += f", [sweep] of {len(scenario_variants(path, scenario=s, overrides=sets))} variants"
    return (f"{s.name} ({len(s.data['entity'])} entities, {len(s.data.get('contract', []))} contracts{extra})")
