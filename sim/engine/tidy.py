"""One tidy table of every reported number of a run: the rows of a batch's summary.csv and of
`Results.to_frame()`, from a results.json dict (so files on disk and objects in memory read alike)."""

from __future__ import annotations

import math

from sim.engine.stats import proportion_se, wilson_interval

#: Columns of `tidy_rows`.
TIDY_COLUMNS = ["entity", "year", "metric", "value", "se", "lo95", "hi95", "paths"]


def tidy_rows(d: dict) -> list[tuple]:
    """Rows (TIDY_COLUMNS) from one results.json dict (`Results.to_dict()`).

    Probabilities without a stored standard error get the binomial one and a Wilson 95%
    interval; NaN becomes None."""
    n = d["paths"]
    ents, years, lab = d["entities"], d["years"], d["lab"]
    last = years[-1]
    rows = []

    def nz(x):
        return None if x is None or (isinstance(x, float) and not math.isfinite(x)) else float(x)

    def prob(entity, year, metric, p, se=None, lo=None, hi=None):
        if p is not None and se is None:
            se = float(proportion_se(p * n, n))
            lo, hi = (float(x) for x in wilson_interval(round(p * n), n))
        rows.append((entity, year, metric, nz(p), nz(se), nz(lo), nz(hi), n))

    def val(entity, year, metric, v, se=None):
        rows.append((entity, year, metric, nz(v), nz(se), None, None, n))

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
    for name, v in (d.get("loss_by_class") or {}).items():  # losses by who bears them
        val(None, last, f"loss_{name}_bn", v, (d.get("loss_by_class_se") or {}).get(name))
    for i, e in enumerate(ents if d.get("p_covenant_breach") else []):  # [build] on
        prob(e, last, "p_covenant_breach", d["p_covenant_breach"][i])
        prob(e, last, "p_covenant_default", d["p_covenant_default"][i])
        val(e, last, "new_debt_bn", d["new_debt_mean"][i])
        val(e, last, "holdings_sold_bn", d["holdings_sold_mean"][i])
    for i, e in enumerate(ents if d.get("p_credit_event") else []):
        prob(e, last, "p_credit_event", d["p_credit_event"][i])
        prob(e, last, "p_distressed_exchange", d["p_restructured"][i])
        val(e, last, "restructuring_loss_bn", d["restructuring_loss"][i])
    return rows
