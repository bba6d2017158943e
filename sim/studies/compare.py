"""Comparing two runs on common random numbers: paired differences with standard errors, and what changed in the inputs.

    bubblesim run scenarios/base.toml --paths 20000 --out A
    bubblesim run scenarios/base.toml --paths 20000 --set revenue.growth0=0.6 --out B
    bubblesim compare A B

A and B are folders written by `bubblesim run` or variant folders of a batch: each holds
results.json, chunks.csv (per-chunk counts) and inputs.json (the resolved scenario). Two
runs with the same seed and chunk layout draw the same random numbers chunk by chunk, so
the difference B - A of a metric is estimated far more precisely than either metric alone.

Standard errors of a difference (batch means over chunks, paired)
-----------------------------------------------------------------
For a probability or a mean, with per-chunk totals ``y_k = total_B,k - total_A,k`` over
``n_k`` paths (every chunk, the short last one included) and ``N = sum n_k``, the
difference is ``d = sum y_k / N`` (exactly B's full-run value minus A's) and its standard
error is the ratio estimator's ``sqrt(K/(K-1) * sum (y_k - d n_k)^2) / N``. For VaR99 and
ES99 the difference is of the full-run values and the error comes from the per-chunk
differences of full chunks (`sim.engine.stats.batch_means_se`, needs 10 chunks). With fewer
than 10 chunks the errors are themselves uncertain: `compare` says so (use more paths or a
smaller ``--chunk-size``, the same for both runs).

Metric names are the command line's (`sim.studies.metrics.METRIC_FORMS`): p2, lab_pd,
pd:ENTITY, pd:ENTITY@YEAR, loss_mean, plus loss_var99 and loss_es99.
"""

from __future__ import annotations

import json
import math
import os
import re

import numpy as np

from sim.engine.stats import batch_means_se
from sim.studies.metrics import MIN_PAIRED_CHUNKS
from sim.studies.summary import load_chunks
from sim.studies.variants import CHUNKS

INPUTS = "inputs.json"


class CompareError(ValueError):
    """The two runs cannot be paired (different seed or chunk layout, missing files)."""


# ---------------------------------------------------------------------------------- loading
def load_run(folder: str) -> dict:
    """{"folder", "results" (results.json), "chunks" (`load_chunks`), "inputs" (inputs.json or None)}."""
    if not os.path.isdir(folder):
        raise CompareError(f"no such run folder: {folder}")
    res_path = os.path.join(folder, "results.json")
    if not os.path.exists(res_path):
        raise CompareError(f"{folder}/ holds no results.json (not a run folder: give a folder written by "
                           "`bubblesim run` or a batch's variant folder)")
    with open(res_path, encoding="utf-8") as fh:
        results = json.load(fh)
    if not os.path.exists(os.path.join(folder, CHUNKS)):
        raise CompareError(f"{folder}/ holds no {CHUNKS} (written by bubblesim run/batch since this version): "
                           "re-run it to compare on common random numbers")
    inputs = None
    if os.path.exists(os.path.join(folder, INPUTS)):
        with open(os.path.join(folder, INPUTS), encoding="utf-8") as fh:
            inputs = json.load(fh)
    return {"folder": folder, "results": results, "chunks": load_chunks(folder), "inputs": inputs}


def run_from_results(results, label: str = "") -> dict:
    """The `load_run` form of an in-memory `Results` (chunk summaries included), for notebooks."""
    import csv
    import io

    d = results.to_dict()
    rows = list(csv.reader(io.StringIO(results.chunks_csv())))
    head, body = rows[0], rows[1:]
    a = np.array([[float(x) for x in r] for r in body])
    n_e, n_y = len(results.entities), len(results.years)
    assert len(head) == 6 + n_e * n_y
    chunks = {"chunk": a[:, 0].astype(int), "paths": a[:, 1], "loss_mean": a[:, 2], "loss_var99": a[:, 3],
              "loss_es99": a[:, 4], "n_2plus": a[:, 5], "defaults": a[:, 6:].reshape(len(body), n_e, n_y),
              "entities": list(results.entities), "years": list(results.years)}
    return {"folder": label or results.scenario, "results": d, "chunks": chunks, "inputs": results.inputs}


def _as_run(x, side: str = "") -> dict:
    if isinstance(x, dict) and "chunks" in x:
        return x
    if isinstance(x, (str, os.PathLike)):
        return load_run(os.fspath(x))
    if hasattr(x, "chunks_csv"):
        return run_from_results(x, f"{side or x.scenario} (in memory)")
    raise TypeError(f"expected a run folder, a Results or a load_run dict, got {type(x).__name__}")


def check_pairable(a: dict, b: dict) -> None:
    """CompareError (one line saying what differs) unless A and B share seed and chunk layout."""
    ra, rb = a["results"], b["results"]
    problems = []
    if ra.get("seed") != rb.get("seed"):
        problems.append(f"seed {ra.get('seed')} vs {rb.get('seed')}")
    csa, csb = (r.get("run_info", {}).get("chunk_size") for r in (ra, rb))
    if csa != csb:
        problems.append(f"chunk size {csa} vs {csb}")
    ca, cb = a["chunks"], b["chunks"]
    if not problems and (len(ca["paths"]) != len(cb["paths"]) or not np.array_equal(ca["paths"], cb["paths"])
                         or not np.array_equal(ca["chunk"], cb["chunk"])):
        problems.append(f"chunk layout {len(ca['paths'])} chunks / {int(ca['paths'].sum()):,} paths vs "
                        f"{len(cb['paths'])} chunks / {int(cb['paths'].sum()):,} paths")
    if problems:
        raise CompareError(f"{a['folder']} and {b['folder']} do not share common random numbers ("
                           + "; ".join(problems) + "): run both with the same --seed, --paths and --chunk-size")


# ---------------------------------------------------------------------------------- metrics
def headline_metrics(a: dict, b: dict) -> list[str]:
    """p2, lab_pd, pd:ENTITY for every entity of both runs (A's order), loss_mean, loss_var99, loss_es99."""
    ents_b = set(b["results"]["entities"])
    return (["p2", "lab_pd"] + [f"pd:{e}" for e in a["results"]["entities"] if e in ents_b]
            + ["loss_mean", "loss_var99", "loss_es99"])


def _totals(run: dict, metric: str) -> tuple[np.ndarray, float, float, str, bool]:
    """(per-chunk totals, full-run value, its own se, label, is_probability) of `metric` in one run."""
    r, ch = run["results"], run["chunks"]
    ents, years = r["entities"], r["years"]
    if metric == "p2":
        return ch["n_2plus"], r["p2"], r["p2_se"], f"P(2+ defaults by {years[-1]})", True
    if metric == "loss_mean":
        return ch["loss_mean"] * ch["paths"], r["loss_mean"], r["loss_mean_se"], "mean loss to outside creditors, $B", \
            False
    m = re.fullmatch(r"pd:(.+?)(?:@(\d{4}))?", metric)
    if metric == "lab_pd" or m:
        who = r["lab"] if metric == "lab_pd" else m.group(1)
        year = int(m.group(2)) if m and m.group(2) else years[-1]
        if who not in ents or who not in ch["entities"]:
            raise CompareError(f"unknown entity {who!r} in metric {metric!r}; entities: {', '.join(ents)}")
        if year not in years:
            raise CompareError(f"year {year} in metric {metric!r} is outside {years[0]}-{years[-1]}")
        i, k = ents.index(who), years.index(year)
        j = ch["entities"].index(who)
        return ch["defaults"][:, j, ch["years"].index(year)], r["pd"][i][k], r["pd_se"][i][k], \
            f"PD of {who} by {year}", True
    raise CompareError(f"unknown metric {metric!r}: use p2, lab_pd, pd:ENTITY[@YEAR], loss_mean, loss_var99 "
                       "or loss_es99")


def paired_metric(a, b, metric: str) -> dict:
    """B - A of one metric with its paired standard error (see the module docstring).

    Returns {metric, label, a, se_a, b, se_b, diff, se_diff, chunks, paths, probability}."""
    a, b = _as_run(a, "A"), _as_run(b, "B")
    check_pairable(a, b)
    n = a["chunks"]["paths"]
    K = len(n)
    if metric in ("loss_var99", "loss_es99"):
        ra, rb = a["results"], b["results"]
        full = n == n[0]  # the short last chunk is left out of batch means, as in Results
        col = metric
        da = a["chunks"].get(col)
        db = b["chunks"].get(col)
        se = batch_means_se(db[full] - da[full]) if da is not None and db is not None else float("nan")
        label = "VaR99 of losses to outside creditors, $B" if metric == "loss_var99" else \
            "ES99 of losses to outside creditors, $B"
        va, vb = ra[metric], rb[metric]
        return {"metric": metric, "label": label, "a": va, "se_a": _nan(ra.get(metric + "_se")), "b": vb,
                "se_b": _nan(rb.get(metric + "_se")), "diff": vb - va, "se_diff": float(se), "chunks": int(full.sum()),
                "paths": int(n[full].sum()), "probability": False}
    ya, va, sea, label, prob = _totals(a, metric)
    yb, vb, seb, _, _ = _totals(b, metric)
    N = float(n.sum())
    y = np.asarray(yb, float) - np.asarray(ya, float)
    d = float(y.sum() / N)
    se = math.sqrt(K / (K - 1) * float(((y - d * n) ** 2).sum())) / N if K >= 2 else float("nan")
    return {"metric": metric, "label": label, "a": float(va), "se_a": _nan(sea), "b": float(vb), "se_b": _nan(seb),
            "diff": d, "se_diff": se, "chunks": K, "paths": int(N), "probability": prob}


def _nan(x) -> float:
    return float("nan") if x is None else float(x)


# ---------------------------------------------------------------------------------- inputs
def flatten_inputs(d: dict, prefix: str = "") -> dict:
    """Dotted keys (the override keys: ``revenue.growth0``, ``entity.Oracle.debt``,
    ``contract["Oracle OCI"].schedule.2028``, ``stake.Microsoft->OpenAI.share``) -> values."""
    out = {}
    for k, v in d.items():
        key = f"{prefix}.{k}" if prefix else str(k)
        if isinstance(v, dict):
            out.update(flatten_inputs(v, key))
        elif isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
            for i, item in enumerate(v):
                lab = item.get("name")
                if lab is None and "holder" in item and "issuer" in item:
                    lab = f"{item['holder']}->{item['issuer']}"
                if lab is None:
                    sel = f"[{i}]"
                elif re.fullmatch(r"[A-Za-z0-9_>-]+", str(lab)):
                    sel = f".{lab}"
                else:
                    sel = f"[{json.dumps(lab)}]"
                out.update(flatten_inputs(item, key + sel))
        else:
            out[key] = v
    return out


def inputs_diff(a: dict | None, b: dict | None) -> list[tuple[str, object, object]] | None:
    """[(dotted key, A's value, B's value)] for every resolved input that differs (None: not
    recorded in one of the runs). A key only one side has shows the other as None."""
    if a is None or b is None:
        return None
    fa, fb = flatten_inputs(a), flatten_inputs(b)
    keys = list(fa) + [k for k in fb if k not in fa]
    return [(k, fa.get(k), fb.get(k)) for k in keys if fa.get(k) != fb.get(k)]


# ---------------------------------------------------------------------------------- the comparison
def compare_runs(a, b, metrics: list[str] | None = None) -> dict:
    """Paired B - A of every headline metric (or `metrics`), and the inputs that differ.

    `a`, `b`: run folders, `Results` objects or `load_run` dicts. CompareError when they do
    not share seed and chunk layout."""
    a, b = _as_run(a, "A"), _as_run(b, "B")
    check_pairable(a, b)
    names = metrics or headline_metrics(a, b)
    rows = [paired_metric(a, b, m) for m in names]
    ra, rb = a["results"], b["results"]
    return {"a": {"folder": a["folder"], "scenario": ra["scenario"], "scenario_hash": ra["scenario_hash"],
                  "paths": ra["paths"]},
            "b": {"folder": b["folder"], "scenario": rb["scenario"], "scenario_hash": rb["scenario_hash"],
                  "paths": rb["paths"]},
            "seed": ra["seed"], "chunk_size": ra.get("run_info", {}).get("chunk_size"),
            "chunks": len(a["chunks"]["paths"]), "rows": rows, "inputs_diff": inputs_diff(a["inputs"], b["inputs"])}


def compare_frame_rows(cmp: dict) -> list[dict]:
    """The rows of a comparison as plain dicts (for CSV or pandas)."""
    return [{k: r[k] for k in ("metric", "a", "se_a", "b", "se_b", "diff", "se_diff")} for r in cmp["rows"]]


def _fmt(v: float, prob: bool, signed: bool = False, digits: int = 2) -> str:
    if v is None or not math.isfinite(v):
        return "n/a"
    x = 100 * v if prob else v
    return f"{x:+,.{digits}f}" if signed else f"{x:,.{digits}f}"


def compare_text(cmp: dict) -> str:
    """The terminal table of `compare_runs`: A, B, B - A with paired se and z, then the inputs."""
    a, b = cmp["a"], cmp["b"]
    lines = [f"A: {a['folder']} ({a['scenario']}, {a['paths']:,} paths, scenario {a['scenario_hash'][:12]})",
             f"B: {b['folder']} ({b['scenario']}, {b['paths']:,} paths, scenario {b['scenario_hash'][:12]})",
             f"common random numbers: seed {cmp['seed']}, chunk size {cmp['chunk_size']}, {cmp['chunks']} chunks",
             "", "Paired differences B - A (probabilities in %, losses in $B; se: paired batch means over chunks)"]
    w = max(len(r["metric"]) for r in cmp["rows"]) + 2
    lines.append(f"{'metric':<{w}}{'A':>10}{'se':>7}{'B':>10}{'se':>7}{'B - A':>10}{'se':>8}{'z':>7}"
                 f"{'se ratio':>10}")
    for r in cmp["rows"]:
        p = r["probability"]
        z = r["diff"] / r["se_diff"] if r["se_diff"] and math.isfinite(r["se_diff"]) and r["se_diff"] > 0 else None
        indep = math.sqrt(r["se_a"] ** 2 + r["se_b"] ** 2) if math.isfinite(r["se_a"]) and \
            math.isfinite(r["se_b"]) else float("nan")
        ratio = r["se_diff"] / indep if indep > 0 and math.isfinite(r["se_diff"]) else None
        lines.append(f"{r['metric']:<{w}}{_fmt(r['a'], p):>10}{_fmt(r['se_a'], p):>7}{_fmt(r['b'], p):>10}"
                     f"{_fmt(r['se_b'], p):>7}{_fmt(r['diff'], p, True):>10}{_fmt(r['se_diff'], p, digits=3):>8}"
                     f"{'-' if z is None else f'{z:+.1f}':>7}{'-' if ratio is None else f'{ratio:.2f}':>10}")
    lines.append("se ratio: paired se / the se the two runs would give on independent random numbers")
    if cmp["chunks"] < MIN_PAIRED_CHUNKS:
        k = cmp["chunks"]
        lines.append(f"note: only {k} chunk{'' if k == 1 else 's'}: the paired standard errors are rough (VaR/ES "
                     f"ones need {MIN_PAIRED_CHUNKS} full chunks); run both with more paths or a smaller --chunk-size")
    lines.append("")
    diff = cmp["inputs_diff"]
    if diff is None:
        lines.append("Inputs: not recorded in one of the runs (no inputs.json; written since this version)")
    elif not diff:
        lines.append("Inputs: identical resolved scenarios")
    else:
        lines.append(f"Inputs that differ ({len(diff)}), A -> B:")
        for k, va, vb in diff:
            lines.append(f"  {k}: {_short(va)} -> {_short(vb)}")
    return "\n".join(lines)


def _short(v) -> str:
    if v is None:
        return "(absent)"
    s = json.dumps(v, default=str) if not isinstance(v, str) else repr(v)
    return s if len(s) <= 80 else s[:77] + "..."
