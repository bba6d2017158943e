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
import math
import os

import numpy as np

from sim.engine.runner import SUMMARY_FIXED
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
    from sim.engine.stats import proportion_se, wilson_interval

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
