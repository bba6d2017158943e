"""The batch's outputs that span variants: per-chunk counts, paired differences and the tidy summary table.

Common random numbers
---------------------
Every variant of a batch runs with the same root seed and chunk size (CLI, else the
batch file, else the scenarios' common seed, else the first scenario's), so chunk k of
every variant draws the same stream. Each variant folder holds ``chunks.csv`` (per-chunk
counts); `paired_difference` turns two of them into a difference with a paired
batch-means standard error.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os

import numpy as np

from sim.io import atomic_write
from sim.studies.variants import (
    CHUNKS,
    TMP_PREFIX,
)

SUMMARY_COLUMNS = ["variant", "scenario", "entity", "year", "metric", "value", "se", "lo95", "hi95", "paths"]


# --------------------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------------------


def _write_atomic(path: str, data: bytes | str) -> None:
    atomic_write(path, data, prefix=TMP_PREFIX)


def _chunks_csv(results, summaries: np.ndarray, first_chunk: int = 0) -> str:
    """chunks.csv of `results` (kept for callers; `Results.write` writes it itself)."""
    from dataclasses import replace

    return replace(results, chunk_summaries=np.asarray(summaries),
                   run_info={**results.run_info, "first_chunk": first_chunk}).chunks_csv()


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
    return {"chunk": a[:, 0].astype(int), "paths": a[:, 1], "loss_mean": a[:, 2], "loss_var99": a[:, 3],
            "loss_es99": a[:, 4], "n_2plus": a[:, 5],
            "defaults": a[:, 6:].reshape(len(body), len(entities), len(years)),
            "entities": entities, "years": years}


def _metric_counts(ch: dict, metric: str, entity: str | None, year: int | None) -> np.ndarray:
    """Per-chunk totals of a metric named as on the command line (p2, pd:ENTITY[@YEAR],
    loss_mean) or in the older form (metric="pd" with `entity`; "p_2plus_defaults")."""
    if metric in ("p2", "p_2plus_defaults"):
        return ch["n_2plus"]
    if metric == "loss_mean":
        return ch["loss_mean"] * ch["paths"]
    if metric.startswith("pd:"):
        who, at, y = metric[3:].rpartition("@") if "@" in metric else (metric[3:], "", "")
        entity, year = who, (int(y) if at else year)
        metric = "pd"
    if metric == "pd":
        if entity is None:
            raise ValueError("metric 'pd' needs an entity: pd:ENTITY")
        if entity not in ch["entities"]:
            raise ValueError(f"unknown entity {entity!r}; entities: {', '.join(ch['entities'])}")
        i = ch["entities"].index(entity)
        j = len(ch["years"]) - 1 if year is None else ch["years"].index(year)
        return ch["defaults"][:, i, j]
    raise ValueError(f"unknown metric {metric!r}: use p2, pd:ENTITY[@YEAR] or loss_mean "
                     "(the command line's names; `bubblesim compare` covers every headline metric)")


def paired_difference(a, b, metric: str = "pd", entity: str | None = None, year: int | None = None) -> dict:
    """Difference b - a of a metric between two variants (folders or `load_chunks` dicts) on
    common random numbers, with its paired batch-means standard error over their common
    full chunks (common random numbers make it much smaller than either variant's SE).

    `metric`: the command line's names, "p2", "pd:ENTITY" / "pd:ENTITY@YEAR", "loss_mean"
    (the older "p_2plus_defaults" and "pd" with `entity=` still work). For every headline
    metric at once, over all chunks, use `sim.studies.compare.compare_runs` (`bubblesim compare`)."""
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
    from sim.engine.tidy import tidy_rows

    return [(variant, d["scenario"], *row) for row in tidy_rows(d)]


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
        log("note: pyarrow is not installed: summary.parquet not written (summary.csv holds the same rows; "
            "pip install 'bubblesim[parquet]' or pip install pyarrow)")
        return written
    cols = list(zip(*rows)) if rows else [[] for _ in SUMMARY_COLUMNS]
    types = [pa.string(), pa.string(), pa.string(), pa.int32(), pa.string(), pa.float64(), pa.float64(),
             pa.float64(), pa.float64(), pa.int64()]
    table = pa.table({c: pa.array(list(v), type=t) for c, v, t in zip(SUMMARY_COLUMNS, cols, types)})
    tmp = os.path.join(out, f"{TMP_PREFIX}summary.parquet-{os.getpid()}")
    pq.write_table(table, tmp)
    os.replace(tmp, os.path.join(out, "summary.parquet"))
    return written + ["summary.parquet"]


def write_xlsx(out: str, rows: list[tuple], manifest: dict) -> str:
    """summary.xlsx for committee packs: sheet "summary" (the rows of summary.csv, numbers as
    numbers, header frozen, autofilter) and sheet "variants" (the manifest's variants: name,
    scenario, source, overrides, paths, seed, chunk size, status, input hash) and "run"
    (version, git commit, command, dates). Needs openpyxl. Written atomically."""
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.title = "summary"
    ws.append(SUMMARY_COLUMNS)
    for r in rows:
        ws.append(list(r))
    ws.freeze_panes = "A2"
    ws.auto_filter.ref = ws.dimensions
    vs = wb.create_sheet("variants")
    cols = ["name", "scenario", "source", "overrides", "paths", "seed", "chunk_size", "chunks", "status",
            "input_hash", "finished"]
    vs.append(cols)
    for v in manifest.get("variants") or []:
        vs.append([v.get(c) if c != "overrides" else json.dumps(v.get(c) or {}, sort_keys=True) for c in cols])
    vs.freeze_panes = "A2"
    meta = wb.create_sheet("run")
    for k in ("bubblesim_version", "git_commit", "git_dirty", "started", "finished", "seed", "chunk_size"):
        meta.append([k, manifest.get(k) if not isinstance(manifest.get(k), (dict, list)) else
                     json.dumps(manifest.get(k))])
    meta.append(["command", " ".join(manifest.get("command") or [])])
    buf = io.BytesIO()
    wb.save(buf)
    _write_atomic(os.path.join(out, "summary.xlsx"), buf.getvalue())
    return "summary.xlsx"
