"""Running a batch: every variant to its folder, atomically, resumably, then the summary and manifest.

Nothing lost
------------
Each variant is written to ``<out>/.tmp-variant-*`` and renamed into place with a
``_complete.json`` marker that holds the hash of its resolved inputs (scenario with
overrides, paths, seed, chunk size, bubblesim version) and the sha256 of every file it
vouches for (results.json, chunks.csv, the CSV tables ...). A re-run skips a variant only
when its marker's input hash matches *and* every file still has the recorded hash: a
results.json overwritten by hand or by another command is recomputed, never summarised
under the manifest's paths. ``force=True`` recomputes. The summary and manifest are
rewritten from the variant folders at the end, for exactly the variants of this batch.
"""

from __future__ import annotations

import glob
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from datetime import datetime, timezone
from typing import Callable

import numpy as np

from sim._version import __version__
from sim.engine.runner import simulate
from sim.io import fsync_dir, sha256_file
from sim.studies.summary import (
    _write_atomic,
    _write_summary,
    load_chunks,
    paired_difference,
    summary_rows,
)
from sim.studies.variants import (
    CHUNKS,
    MARKER,
    STREAM,
    TMP_PREFIX,
    BatchError,
    BatchPlan,
    Variant,
    collect_variants,
    is_batch_file,
    scenario_variants,
    validate_path,
)

__all__ = ["BatchError", "Variant", "BatchPlan", "is_batch_file", "scenario_variants", "collect_variants",
           "run_batch", "summary_rows", "load_chunks", "paired_difference", "validate_path"]


def _git_commit() -> tuple[str | None, bool | None]:
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
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
            "platform": f"{platform.system()} {platform.release().split('-')[0]}", "machine": platform.machine()}


def _read_marker(folder: str) -> dict | None:
    try:
        with open(os.path.join(folder, MARKER)) as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return None


def _file_hashes(folder: str) -> dict[str, str]:
    """sha256 of every plain file of a variant folder but the marker (sorted by name)."""
    return {name: sha256_file(os.path.join(folder, name)) for name in sorted(os.listdir(folder))
            if name != MARKER and not name.startswith(".") and os.path.isfile(os.path.join(folder, name))}


def stale_reason(folder: str, marker: dict | None, input_hash: str) -> str | None:
    """Why a variant folder cannot be trusted as done for `input_hash` (None: it can).

    The marker must name the same inputs and every file it vouches for must still have its
    recorded sha256 (results.json and chunks.csv at least)."""
    if marker is None:
        return "no completeness marker"
    if marker.get("input_hash") != input_hash:
        return "inputs changed"
    files = marker.get("files")
    if not isinstance(files, dict) or "results.json" not in files or CHUNKS not in files:
        return "marker from an older bubblesim (no file hashes)"
    for name in sorted(files, key=lambda n: (n != "results.json", n != CHUNKS, n)):  # the main file first
        digest = files[name]
        path = os.path.join(folder, name)
        if not os.path.isfile(path):
            return f"{name} is missing"
        if sha256_file(path) != digest:
            return f"{name} changed since the batch wrote it"
    return None


# --------------------------------------------------------------------------------------
# Running
# --------------------------------------------------------------------------------------


def _run_variant(v: Variant, out: str, *, threads, executor, progress) -> dict:
    from sim.engine.model import compile_scenario
    from sim.engine.results import Results

    scenario = v.scenario  # built from the base and the overrides, for this run only
    if v.target_se is not None:
        from sim.studies.precision import run_to_precision_with_chunks

        results, summaries = run_to_precision_with_chunks(
            scenario, v.target_se, v.max_paths, v.seed, chunk_size=v.chunk_size, threads=threads,
            progress=progress, executor=executor)
        info = results.run_info
    else:
        M = compile_scenario(scenario)
        stats, summaries, info = simulate(M, v.paths, v.seed, chunk_size=v.chunk_size, threads=threads,
                                          progress=progress, executor=executor)
        results = Results.from_stats(scenario, M, stats, summaries, info)
    from sim.engine.results import check_finite

    check_finite(results, v.source)  # an error naming the field, before anything is written
    final = os.path.join(out, v.folder)
    tmp = os.path.join(out, f"{TMP_PREFIX}{v.folder}-{os.getpid()}")
    if os.path.exists(tmp):
        shutil.rmtree(tmp)
    try:
        results.write(tmp)  # results.json, the CSV tables, chunks.csv, inputs.json, scenario.toml
        marker = {"variant": v.name, "input_hash": v.input_hash, "scenario": scenario.name,
                  "scenario_hash": scenario.hash, "source": _relative(v.source, out), "overrides": v.overrides,
                  "paths": results.paths, "seed": v.seed, **v.layout(results.paths),
                  "precision": results.run_info.get("precision"), "wall_seconds": info["wall_seconds"],
                  "threads": info["threads"], "finished": _now(), "files": _file_hashes(tmp)}
        _write_atomic(os.path.join(tmp, MARKER), json.dumps(marker, indent=1, default=str))
        if os.path.exists(final):  # stale or --force: swap it out, then remove it
            old = os.path.join(out, f"{TMP_PREFIX}old-{v.folder}-{os.getpid()}")
            os.rename(final, old)
            os.rename(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, final)
        fsync_dir(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return marker


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def run_batch(plan: BatchPlan, out: str, *, force: bool = False, threads: int | None = None, executor=None,
              engine: dict | None = None, log: Callable[[str], None] | None = None, bar: bool = False,
              argv: list[str] | None = None, xlsx: bool = False) -> dict:
    """Run (or skip, when already done with the same inputs) every variant of `plan`;
    write the variant folders, summary.csv / summary.parquet (and summary.xlsx with
    `xlsx`, which needs openpyxl) and manifest.json to `out`.
    Returns the manifest. `executor`: see `sim.engine.simulate` (None: local threads)."""
    os.makedirs(out, exist_ok=True)
    lock = _lock(out)  # one batch per output folder at a time (released on exit, even on kill -9)
    try:
        return _run_batch(plan, out, force=force, threads=threads, executor=executor, engine=engine, log=log,
                          bar=bar, argv=argv, xlsx=xlsx)
    except BaseException:  # Ctrl-C, an error: leave no temp files (a kill -9's are removed by the next run)
        _remove_temps(out, os.getpid())
        raise
    finally:
        lock.close()


def _remove_temps(out: str, pid: int | None = None) -> None:
    for stale in glob.glob(os.path.join(glob.escape(out), TMP_PREFIX + "*" + (f"-{pid}" if pid else ""))):
        if os.path.isdir(stale) and not os.path.islink(stale):
            shutil.rmtree(stale, ignore_errors=True)
        elif os.path.exists(stale):
            os.unlink(stale)


def _run_batch(plan, out, *, force, threads, executor, engine, log, bar, argv, xlsx=False) -> dict:
    from tqdm import tqdm

    log = log or (lambda msg: None)
    t0 = time.perf_counter()
    started = _now()
    _remove_temps(out)  # left by a killed run (the lock rules out a live one)
    for note in plan.notes:
        log(f"note: {note}")

    todo, entries = [], {}
    for v in plan.variants:
        folder = os.path.join(out, v.folder)
        marker = None if force else _read_marker(folder)
        why = None if force else stale_reason(folder, marker, v.input_hash)
        if not force and why is None:
            entries[v.name] = {**marker, "status": "skipped"}
            log(f"skip {v.name} (done, inputs {v.input_hash[:12]}, files verified)")
        else:
            if marker is not None and why is not None:
                log(f"recompute {v.name}: {why}")
            todo.append(v)

    engine = engine or {"kind": "local", "threads": threads}
    # paths relative to the results folder (`out` is "."): no absolute paths, no user names
    manifest = {**environment(), "command": _command(argv if argv is not None else sys.argv, out),
                "inputs": [_relative(i, out) for i in plan.inputs], "paths_note": "inputs and sources are relative to the results folder; the command is as typed, "
                "with absolute paths made relative to the results folder",
                "batch": plan.name, "out": ".", "started": started, "engine": engine,
                "seed": plan.seed, "chunk_size": plan.chunk_size, "stream": STREAM, "variants": []}

    def write_manifest(final=False):
        manifest["variants"] = [_manifest_entry(v, entries.get(v.name), out) for v in plan.variants]
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
    if xlsx:
        from sim.studies.summary import write_xlsx

        manifest["summary"].append(write_xlsx(out, rows, manifest))
        write_manifest(final=True)
    return manifest


class _Lock:
    """The held batch lock of one output folder (`close()` releases it)."""

    def __init__(self, lock):
        self._lock = lock

    def close(self) -> None:
        self._lock.release()


def _lock(out: str) -> _Lock:
    """Hold `out/.batch.lock` (filelock: flock on POSIX, released when the process dies, even by kill -9).

    The lock file is never followed through a symbolic link: one planted there (to truncate or
    overwrite its target) is refused before anything opens it, and filelock itself opens the file
    with O_NOFOLLOW where the platform has it.
    """
    from filelock import FileLock, Timeout

    path = os.path.join(out, ".batch.lock")
    if os.path.islink(path):
        raise BatchError(f"{path} is a symbolic link; bubblesim never follows one for its lock file "
                         "(remove it if it is not yours)")
    if os.path.lexists(path) and not os.path.isfile(path):
        raise BatchError(f"{path} exists and is not a regular file; remove it")
    lock = FileLock(path, timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise BatchError(f"another bubblesim batch is writing to {out}/ (one batch per output folder)") from None
    except OSError as err:
        raise BatchError(f"cannot lock {path}: {err.strerror or err}") from None
    return _Lock(lock)


def _relative(path: str, out: str) -> str:
    """`path` relative to the results folder `out` (the manifest records no absolute paths)."""
    try:
        return os.path.relpath(os.path.abspath(path), os.path.abspath(out))
    except ValueError:  # another drive (Windows)
        return os.path.basename(path)


def _command(argv: list[str], out: str) -> list[str]:
    """The command line with absolute paths made relative to the results folder (no user names)."""
    return [_relative(a, out) if os.path.isabs(a) else a for a in argv]


def _manifest_entry(v: Variant, done: dict | None, out: str) -> dict:
    e = {"name": v.name, "folder": v.folder, "scenario": v.scenario_name, "source": _relative(v.source, out),
         "overrides": v.overrides, "scenario_hash": v.scenario_hash, "input_hash": v.input_hash,
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
        from sim.studies import cluster
    except ImportError as err:
        raise BatchError("Dask is not installed: pip install 'bubblesim[distributed]' "
                           f"(or pip install 'dask[distributed]') -- {err}") from None
    return cluster.dask_executor(scheduler=scheduler, workers=workers, log=log)
