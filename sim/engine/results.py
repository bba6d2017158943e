"""The results of a run: every reported number as arrays, plus JSON/CSV output and the
terminal summary table. Built from the reduced chunk statistics, never from paths."""

from __future__ import annotations

import csv
import json
import math
import os
from dataclasses import dataclass, field

import numpy as np

from sim._version import __version__
from sim.engine.lazy import kernel as K
from sim.engine.model import ModelArrays, lab_committed_spend
from sim.engine.network import network_block
from sim.engine.runner import SUMMARY_FIXED
from sim.engine.stats import (
    batch_means_se,
    bin_edges,
    hist_quantiles,
    loss_var_es,
    proportion_se,
    signed_hist_quantiles,
    wilson_interval,
)
from sim.io import atomic_write as _atomic_write
from sim.scenario.writer import _canonical

FAN_PERCENTILES = (5, 10, 25, 50, 75, 90, 95)


@dataclass
class Results:
    """All outputs of one scenario run (docs/model.md section 11), each with its Monte Carlo error.

    Probabilities come with binomial standard errors and 95% Wilson intervals; the mean
    loss with its sample standard error; VaR and ES with batch-means standard errors over
    full chunks (NaN with fewer than 10 chunks).

    Axes: ``entities`` (list of names, in the scenario's order) indexes the first axis of
    every per-entity array (``pd[i, k]``, ``p_contagious[i]``, ...); ``years`` (calendar
    years, first to last simulated) indexes the year axis (``pd[i, k]``, ``p_gap[k]``);
    ``lab`` is the lab's name (one of ``entities``). `entity_index(name)` finds a row.
    `to_frame()` gives every number as one tidy pandas DataFrame (needs pandas:
    ``pip install 'bubblesim[frames]'``).
    """

    scenario: str
    scenario_hash: str
    entities: list[str]
    lab: str
    years: list[int]
    steps_per_year: int
    paths: int
    seed: int
    run_info: dict
    # per entity x year: cumulative probability of default by the end of each year
    pd: np.ndarray
    pd_se: np.ndarray
    pd_lo: np.ndarray
    pd_hi: np.ndarray
    default_time: np.ndarray  # (n, steps) probability of defaulting in each step
    p_fundamental: np.ndarray  # (n,) by the horizon
    p_contagious: np.ndarray
    contagious_share: np.ndarray  # share of defaults that are contagious (NaN if none)
    liquidity_share: np.ndarray  # share of defaults that are liquidity defaults
    lgd: np.ndarray  # loss given default on outside claims (NaN if none)
    expected_loss: np.ndarray  # (n,) expected losses to outside creditors from each entity
    lost_backlog: np.ndarray  # (n,) expected contract value lost as payee
    # the lab
    p_need: np.ndarray  # (years,) P(the lab needs new outside funding in the year)
    p_gap: np.ndarray  # (years,) P(an unfunded gap in the year: commitments due > resources)
    p_gap_lo: np.ndarray
    p_gap_hi: np.ndarray
    mean_need: np.ndarray  # (years,) expected new funding needed in the year, $B
    need_pct: np.ndarray  # (len(FAN_PERCENTILES), steps) funding need per step, $B
    revenue_pct: np.ndarray  # (len(FAN_PERCENTILES), steps) annualised revenue, $B/yr
    committed_spend: np.ndarray  # (steps,) lab's scheduled contract payments, annualised $B/yr
    p_winter: np.ndarray  # (steps,) probability of AI winter at each step
    # the system
    cascade: np.ndarray  # (n+1,) P(exactly k defaults by the horizon)
    p_at_least: np.ndarray  # (n+1,) P(k or more defaults)
    p2: float
    p2_se: float
    p2_lo: float
    p2_hi: float
    loss_mean: float
    loss_mean_se: float
    loss_var99: float
    loss_var99_se: float
    loss_es99: float
    loss_es99_se: float
    loss_hist: np.ndarray = field(repr=False)
    loss_hist_sum: np.ndarray = field(repr=False)
    diagnostics: dict = field(default_factory=dict)
    description: str = ""  # the scenario's free text (escape it before showing it in HTML)
    network: dict = field(default_factory=dict)  # entities and edges for the network map (sim.engine.network)
    scenario_source: str = field(default="", repr=False)  # the scenario's TOML text, written as scenario.toml
    # provenance for `bubblesim compare`: the resolved inputs (inputs.json) and per-chunk counts (chunks.csv)
    inputs: dict = field(default_factory=dict, repr=False)
    chunk_summaries: np.ndarray | None = field(default=None, repr=False)
    # the lab's sources and uses by year (rows: flow_names, docs/model.md section 11), $B:
    # the mean over paths and the FAN_PERCENTILES of the per-path yearly totals (streamed
    # histograms; the percentiles of different rows do not add up, the means do)
    flow_names: list = field(default_factory=list)
    flow_mean: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))  # (rows, years)
    flow_pct: np.ndarray = field(default_factory=lambda: np.zeros((0, 0, 0)))  # (rows, percentiles, years)
    # per-path totals from the start to each year end: funding need (before raising) and burn
    cum_need_mean: np.ndarray = field(default_factory=lambda: np.zeros(0))  # (years,)
    cum_need_pct: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))  # (percentiles, years)
    cum_burn_mean: np.ndarray = field(default_factory=lambda: np.zeros(0))
    cum_burn_pct: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    # the lab's runway at each year end (cash / projected burn of the next year, years;
    # capped at kernel.RUNWAY_HI), FAN_PERCENTILES over the paths where it is alive
    runway_pct: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))  # (percentiles, years)
    # credit events by the horizon ([restructuring], docs/model.md section 7c), per entity:
    # P(credit event: a distressed exchange or a default), P(distressed exchange), and the
    # expected contract value it gave up in others' distressed exchanges (as payee), $B
    p_credit_event: np.ndarray = field(default_factory=lambda: np.zeros(0))
    p_restructured: np.ndarray = field(default_factory=lambda: np.zeros(0))
    restructuring_loss: np.ndarray = field(default_factory=lambda: np.zeros(0))
    # partners build ([build], docs/model.md section 6d), per entity: P(covenant breach),
    # P(covenant default) (part of the PD), mean new debt issued to build and mean mark of
    # holdings sold under the LTV covenant, $B per path to the horizon
    p_covenant_breach: np.ndarray = field(default_factory=lambda: np.zeros(0))
    p_covenant_default: np.ndarray = field(default_factory=lambda: np.zeros(0))
    new_debt_mean: np.ndarray = field(default_factory=lambda: np.zeros(0))
    holdings_sold_mean: np.ndarray = field(default_factory=lambda: np.zeros(0))
    # losses by who bears them (kernel.LOSS_CLASS_NAMES), mean per path to the horizon, $B,
    # and their standard errors; loss_mean is the outside-creditors class
    loss_by_class: dict = field(default_factory=dict)
    loss_by_class_se: dict = field(default_factory=dict)

    # ------------------------------------------------------------------ building
    @classmethod
    def from_stats(cls, scenario, M: ModelArrays, s: K.Stats, chunk_summaries: np.ndarray, info: dict):
        n_paths = int(s.n_paths[0])
        spy = M.steps_per_year
        names = [e["name"] for e in scenario.data["entity"]]
        years = scenario.years()
        cum_steps = np.cumsum(s.default_at, axis=1)
        cum_year = cum_steps[:, spy - 1::spy]
        pd = cum_year / n_paths
        lo, hi = wilson_interval(cum_year, n_paths)
        defaults = s.default_at.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            contagious_share = np.where(defaults > 0, s.contagious / np.maximum(defaults, 1), np.nan)
            liquidity_share = np.where(defaults > 0, s.kind_count[:, K.LIQUIDITY] / np.maximum(defaults, 1), np.nan)
            lgd = np.where(s.exposure_sum > 0, s.loss_sum / np.where(s.exposure_sum > 0, s.exposure_sum, 1), np.nan)
        cascade = s.cascade / n_paths
        p_at_least = np.cumsum(cascade[::-1])[::-1]
        c2 = int(s.cascade[2:].sum())
        p2_lo, p2_hi = wilson_interval(c2, n_paths)
        var, es = loss_var_es(s.loss_hist, s.loss_hist_sum, 0.99)
        mean = s.total_loss[0] / n_paths
        var_loss = max(s.total_loss[1] / n_paths - mean * mean, 0.0)
        full = chunk_summaries[:-1] if info["chunks"] > 1 and n_paths % info["chunk_size"] else chunk_summaries
        gap_lo, gap_hi = wilson_interval(s.gap_year, n_paths)
        pct = [p / 100 for p in FAN_PERCENTILES]
        return cls(
            scenario=scenario.name, scenario_hash=scenario.hash, entities=names, lab=names[M.lab],
            years=years, steps_per_year=spy, paths=n_paths, seed=info["seed"], run_info=info,
            pd=pd, pd_se=proportion_se(cum_year, n_paths), pd_lo=lo, pd_hi=hi,
            default_time=s.default_at / n_paths,
            p_fundamental=(defaults - s.contagious) / n_paths, p_contagious=s.contagious / n_paths,
            contagious_share=contagious_share, liquidity_share=liquidity_share, lgd=lgd,
            expected_loss=s.loss_sum / n_paths, lost_backlog=s.backlog_sum / n_paths,
            p_need=s.need_year / n_paths, p_gap=s.gap_year / n_paths, p_gap_lo=gap_lo, p_gap_hi=gap_hi,
            mean_need=s.need_sum_year / n_paths,
            need_pct=np.array([hist_quantiles(h, K.NEED_LO, K.NEED_HI, pct) for h in s.need_hist]).T,
            revenue_pct=np.array([hist_quantiles(h, K.REV_LO, K.REV_HI, pct) for h in s.rev_hist]).T,
            committed_spend=lab_committed_spend(M) * spy,
            p_winter=s.winter / n_paths,
            cascade=cascade, p_at_least=p_at_least,
            p2=c2 / n_paths, p2_se=float(proportion_se(c2, n_paths)), p2_lo=float(p2_lo), p2_hi=float(p2_hi),
            loss_mean=mean, loss_mean_se=math.sqrt(var_loss / n_paths),
            loss_var99=var, loss_var99_se=batch_means_se(full[:, 1]) if len(full) else float("nan"),
            loss_es99=es, loss_es99_se=batch_means_se(full[:, 2]) if len(full) else float("nan"),
            loss_hist=s.loss_hist.copy(), loss_hist_sum=s.loss_hist_sum.copy(),
            diagnostics={
                "max_conservation_error": float(s.diag[0]),
                "clearings_per_path": float(s.diag[1] / n_paths),
                "mean_clearing_rounds": float(s.diag[2] / s.diag[1]) if s.diag[1] else 0.0,
            },
            description=scenario.data.get("description") or "", network=network_block(scenario),
            scenario_source=scenario.source or "",
            inputs={**_canonical(scenario.data), "paths": n_paths, "seed": int(info["seed"])},
            chunk_summaries=np.asarray(chunk_summaries),
            flow_names=list(K.FLOW_NAMES), flow_mean=s.flow_sum / n_paths,
            flow_pct=np.array([[signed_hist_quantiles(h, K.FLOW_LO, K.FLOW_HI, pct) for h in row]
                               for row in s.flow_hist]).transpose(0, 2, 1),
            cum_need_mean=np.cumsum(s.flow_sum[K.F_NEED]) / n_paths,
            cum_need_pct=np.array([hist_quantiles(h, K.NEED_LO, K.NEED_HI, pct) for h in s.cum_need_hist]).T,
            cum_burn_mean=np.cumsum(s.flow_sum[K.F_BURN]) / n_paths,
            cum_burn_pct=np.array([signed_hist_quantiles(h, K.FLOW_LO, K.FLOW_HI, pct)
                                   for h in s.cum_burn_hist]).T,
            runway_pct=_runway_quantiles(s.runway_hist, pct),
            p_credit_event=s.credit_event / n_paths, p_restructured=s.restructured / n_paths,
            restructuring_loss=s.rs_loss_sum / n_paths,
            p_covenant_breach=s.breached / n_paths, p_covenant_default=s.covenant_default / n_paths,
            new_debt_mean=s.new_debt_sum / n_paths, holdings_sold_mean=s.sold_sum / n_paths,
            loss_by_class={name: float(s.loss_class[k, 0] / n_paths) for k, name in enumerate(K.LOSS_CLASS_NAMES)},
            loss_by_class_se={name: math.sqrt(max(s.loss_class[k, 1] / n_paths - (s.loss_class[k, 0] / n_paths) ** 2,
                                                  0.0) / n_paths) for k, name in enumerate(K.LOSS_CLASS_NAMES)},
        )

    def flow(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """(mean by year, percentiles x years) of one of the lab's flows (`flow_names`)."""
        k = self.flow_names.index(name)
        return self.flow_mean[k], self.flow_pct[k]

    # ------------------------------------------------------------------ views
    def entity_index(self, name: str) -> int:
        try:
            return self.entities.index(name)
        except ValueError:
            raise KeyError(f"unknown entity {name!r}; entities: {', '.join(self.entities)}") from None

    def to_dict(self) -> dict:
        """Every number, JSON-ready (NaN -> None)."""

        def clean(x):
            if isinstance(x, np.ndarray):
                return clean(x.tolist())
            if isinstance(x, (list, tuple)):
                return [clean(v) for v in x]
            if isinstance(x, dict):
                return {k: clean(v) for k, v in x.items()}
            if isinstance(x, (float, np.floating)):
                return None if not math.isfinite(x) else float(x)
            if isinstance(x, np.integer):
                return int(x)
            return x

        skip = ("loss_hist", "loss_hist_sum", "scenario_source", "inputs", "chunk_summaries")
        d = {k: getattr(self, k) for k in self.__dataclass_fields__ if k not in skip}
        d["bubblesim_version"] = __version__
        d["fan_percentiles"] = list(FAN_PERCENTILES)
        d["loss_hist"] = {"lo": K.LOSS_LO, "hi": K.LOSS_HI, "bins": K.LOSS_BINS,
                          "counts": self.loss_hist, "sums": self.loss_hist_sum}
        return clean(d)

    def write(self, out_dir: str) -> list[str]:
        """Write results.json and the CSV tables to `out_dir` (each file atomically), plus
        what `bubblesim compare` pairs runs with: chunks.csv (per-chunk counts) and
        inputs.json (the resolved scenario, every default filled in); never NaN/inf where a
        number is due (`check_finite` raises first)."""
        check_finite(self)
        os.makedirs(out_dir, exist_ok=True)
        written = [_atomic_write(os.path.join(out_dir, "results.json"),
                                 json.dumps(self.to_dict(), indent=1, allow_nan=False))]
        for name, header, rows in self.tables():
            written.append(_atomic_csv(os.path.join(out_dir, name), header, rows))
        if self.scenario_source:  # the assumptions with their comments, for the report
            written.append(_atomic_write(os.path.join(out_dir, "scenario.toml"), self.scenario_source))
        if self.chunk_summaries is not None and len(self.chunk_summaries):
            written.append(_atomic_write(os.path.join(out_dir, "chunks.csv"), self.chunks_csv()))
        if self.inputs:
            written.append(_atomic_write(os.path.join(out_dir, "inputs.json"),
                                         json.dumps(self.inputs, indent=1, sort_keys=True, default=str) + "\n"))
        return written

    def chunks_csv(self) -> str:
        """Per-chunk counts (chunk index, paths, mean/VaR99/ES99 loss, paths with 2+ defaults,
        cumulative defaults of each entity by each year end): the basis of paired standard
        errors between two runs on common random numbers."""
        import io

        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["chunk", "paths", "loss_mean", "loss_var99", "loss_es99", "n_2plus"]
                   + [f"defaults:{e}:{y}" for e in self.entities for y in self.years])
        first = int(self.run_info.get("first_chunk", 0))
        for k, row in enumerate(self.chunk_summaries):
            w.writerow([first + k, int(row[3]), repr(float(row[0])), repr(float(row[1])), repr(float(row[2])),
                        int(row[4])] + [int(x) for x in row[SUMMARY_FIXED:]])
        return buf.getvalue()

    def to_frame(self):
        """Every reported number as one tidy pandas DataFrame, one row per number.

        Columns: entity (None for system-wide numbers), year (None for non-annual ones),
        metric (the names of summary.csv: pd, p_fundamental, p_contagious, ..., p_2plus_defaults,
        loss_mean_bn, ...), value, se, lo95, hi95 (None where not defined), paths. The same
        rows as a batch's summary.csv, so a notebook and a batch read alike. Needs pandas
        (``pip install 'bubblesim[frames]'``).
        """
        try:
            import pandas as pd
        except ImportError:
            raise ImportError("Results.to_frame needs pandas: pip install 'bubblesim[frames]' "
                              "(or pip install pandas)") from None
        from sim.engine.tidy import tidy_rows

        rows = tidy_rows(self.to_dict())
        cols = ["entity", "year", "metric", "value", "se", "lo95", "hi95", "paths"]
        frame = pd.DataFrame(rows, columns=cols)
        frame.insert(0, "scenario", self.scenario)
        return frame

    def tables(self):
        """(file name, header, rows) of the tidy CSV tables."""
        pd_rows = [(e, y, self.pd[i, k], self.pd_se[i, k], self.pd_lo[i, k], self.pd_hi[i, k])
                   for i, e in enumerate(self.entities) for k, y in enumerate(self.years)]
        ent_rows = [(e, self.pd[i, -1], self.pd_se[i, -1], self.p_fundamental[i], self.p_contagious[i],
                     self.contagious_share[i], self.liquidity_share[i], self.lgd[i], self.expected_loss[i],
                     self.lost_backlog[i]) for i, e in enumerate(self.entities)]
        lab_rows = [(y, self.p_need[k], self.mean_need[k], self.p_gap[k], self.p_gap_lo[k], self.p_gap_hi[k])
                    for k, y in enumerate(self.years)]
        q_rows = []
        for t in range(self.revenue_pct.shape[1]):
            year = self.years[0] + t / self.steps_per_year
            q_rows.append((round(year, 4), self.committed_spend[t], self.p_winter[t],
                           *self.revenue_pct[:, t], *self.need_pct[:, t]))
        sys_rows = [(k, self.cascade[k], self.p_at_least[k]) for k in range(len(self.cascade))]
        flow_rows = [(y, name, self.flow_mean[f, k], *self.flow_pct[f, :, k])
                     for k, y in enumerate(self.years) for f, name in enumerate(self.flow_names)]
        cum_rows = [(y, name, mean[k], *pct[:, k]) for k, y in enumerate(self.years)
                    for name, mean, pct in (("funding_need", self.cum_need_mean, self.cum_need_pct),
                                            ("burn", self.cum_burn_mean, self.cum_burn_pct))]
        pcols = [f"p{p}" for p in FAN_PERCENTILES]
        credit_rows = [(e, self.p_credit_event[i], self.p_restructured[i], self.pd[i, -1], self.restructuring_loss[i])
                       for i, e in enumerate(self.entities)] if self.p_credit_event.size else []
        runway_rows = [(y, *self.runway_pct[:, k]) for k, y in enumerate(self.years)] if self.runway_pct.size else []
        summary = [("p_2plus_defaults", self.p2, self.p2_se, self.p2_lo, self.p2_hi),
                   *[(f"loss_{k}", v, self.loss_by_class_se.get(k, ""), "", "") for k, v in self.loss_by_class.items()],
                   ("loss_mean", self.loss_mean, self.loss_mean_se, "", ""),
                   ("loss_var99", self.loss_var99, self.loss_var99_se, "", ""),
                   ("loss_es99", self.loss_es99, self.loss_es99_se, "", "")]
        return [
            ("pd_by_year.csv", ["entity", "year", "pd", "se", "lo95", "hi95"], pd_rows),
            ("entities.csv", ["entity", "pd_horizon", "se", "p_fundamental", "p_contagious", "contagious_share",
                              "liquidity_share", "lgd", "expected_loss_bn", "lost_backlog_bn"], ent_rows),
            ("lab_by_year.csv", ["year", "p_needs_funding", "mean_need_bn", "p_funding_gap", "lo95", "hi95"],
             lab_rows),
            ("lab_by_step.csv", ["year", "committed_spend_bn_per_yr", "p_winter"]
             + [f"revenue_p{p}" for p in FAN_PERCENTILES] + [f"need_p{p}" for p in FAN_PERCENTILES], q_rows),
            ("cascade.csv", ["defaults", "probability", "p_at_least"], sys_rows),
            ("lab_flows_by_year.csv", ["year", "item", "mean_bn"] + pcols, flow_rows),
            ("lab_cumulative_by_year.csv", ["year_end", "measure", "mean_bn"] + pcols, cum_rows),
            ("system.csv", ["metric", "value", "se", "lo95", "hi95"], summary),
            ("lab_runway_by_year.csv", ["year_end"] + [f"runway_years_p{p}" for p in FAN_PERCENTILES], runway_rows),
            ("credit_events.csv", ["entity", "p_credit_event", "p_distressed_exchange", "p_hard_default",
                                   "restructuring_loss_as_payee_bn"], credit_rows),
        ]

    def summary_table(self) -> str:
        """The terminal summary: PDs by year with 95% intervals, contagion shares, the lab's
        funding gap, the cascade and the tail of losses to outside creditors."""
        lines = []
        head = f"{self.scenario}: {self.paths:,} paths, seed {self.seed}, scenario {self.scenario_hash[:12]}"
        lines.append(head)
        lines.append("")
        lines.append("Cumulative probability of default by year end, % [95% interval]")
        width = max(len(e) for e in self.entities) + 2
        lines.append(" " * width + "".join(f"{y:>23}" for y in self.years) + "   contagious")
        for i, e in enumerate(self.entities):
            cells = "".join(f"{_pct_ci(self.pd[i, k], self.pd_lo[i, k], self.pd_hi[i, k]):>23}"
                            for k in range(len(self.years)))
            share = self.contagious_share[i]
            lines.append(f"{e:<{width}}{cells}   {'-' if not np.isfinite(share) else f'{100 * share:.0f}%':>10}")
        lines.append("")
        lines.append(f"The lab ({self.lab}) by year")
        lines.append(f"{'':<34}" + "".join(f"{y:>23}" for y in self.years))
        lines.append(f"{'P(needs new funding), %':<34}" + "".join(f"{100 * v:>23.1f}" for v in self.p_need))
        lines.append(f"{'Mean new funding needed, $B':<34}" + "".join(f"{v:>23.1f}" for v in self.mean_need))
        lines.append(f"{'P(funding gap), % [95%]':<34}" + "".join(
            f"{_pct_ci(self.p_gap[k], self.p_gap_lo[k], self.p_gap_hi[k]):>23}" for k in range(len(self.years))))
        if len(self.cum_burn_mean):
            mid = FAN_PERCENTILES.index(50)
            lines.append(f"{'Cumulative need, median $B':<34}" + "".join(
                f"{v:>23.1f}" for v in self.cum_need_pct[mid]))
            lines.append(f"{'Cumulative burn, median $B':<34}" + "".join(
                f"{v:>23.1f}" for v in self.cum_burn_pct[mid]))
        if self.runway_pct.size:
            mid = FAN_PERCENTILES.index(50)
            lines.append(f"{'Runway at year end, median yrs':<34}" + "".join(
                f"{'>=' + format(K.RUNWAY_HI, 'g') if v >= K.RUNWAY_HI else format(v, '.2f'):>23}"
                for v in self.runway_pct[mid]))
        if self.p_restructured.size and (self.p_restructured.any() or self.restructuring_loss.any()):
            lines.append("")
            lines.append("Credit events by the horizon, % (distressed exchanges count; hard default = PD)")
            for i, e in enumerate(self.entities):
                if self.p_credit_event[i] > 0 or self.restructuring_loss[i] > 0:
                    lines.append(f"  {e:<{width}} credit event {100 * self.p_credit_event[i]:6.2f}   distressed "
                                 f"exchange {100 * self.p_restructured[i]:6.2f}   hard default {100 * self.pd[i, -1]:6.2f}"
                                 f"   given up as payee {self.restructuring_loss[i]:,.1f} $B")
        lines.append("")
        lines.append("System, by the horizon")
        lines.append(f"  P(2+ defaults)                 {_pct_ci(self.p2, self.p2_lo, self.p2_hi)}")
        lines.append(f"  Losses to outside creditors    mean {self.loss_mean:,.1f} $B (se {self.loss_mean_se:.2f})")
        lines.append(f"                                 VaR99 {self.loss_var99:,.1f} $B{_se(self.loss_var99_se)}"
                     f"   ES99 {self.loss_es99:,.1f} $B{_se(self.loss_es99_se)}")
        if self.loss_by_class:
            c = self.loss_by_class
            lines.append("  Losses by who bears them, mean $B (the line above is the first class only)")
            lines.append(f"    outside creditors {c['outside_creditors']:,.1f} + impaired capacity "
                         f"{c['impaired_capacity']:,.1f} + network shortfalls {c['network_shortfall']:,.1f} "
                         f"+ stakes written off {c['stakes_written_off']:,.1f} = "
                         f"{sum(v for k, v in c.items() if k != 'given_up_in_exchanges'):,.1f}")
            lines.append(f"    (given up in distressed exchanges {c['given_up_in_exchanges']:,.1f}: partly in network "
                         "shortfalls as the haircut payments fall due)")
        return "\n".join(lines)


# Every number that must be finite, and those that are probabilities. NaN is legitimate only
# where a quantity is undefined: shares of defaults and LGD with no default, batch-means
# standard errors with fewer than 10 chunks.
_FINITE = ("pd", "pd_se", "pd_lo", "pd_hi", "default_time", "p_fundamental", "p_contagious", "expected_loss",
           "lost_backlog", "p_need", "p_gap", "p_gap_lo", "p_gap_hi", "mean_need", "need_pct", "revenue_pct",
           "committed_spend", "p_winter", "cascade", "p_at_least", "p2", "p2_se", "p2_lo", "p2_hi", "loss_mean",
           "loss_mean_se", "loss_var99", "loss_es99")
_PROBABILITIES = ("pd", "pd_lo", "pd_hi", "default_time", "p_fundamental", "p_contagious", "p_need", "p_gap",
                  "p_gap_lo", "p_gap_hi", "p_winter", "cascade", "p_at_least", "p2", "p2_lo", "p2_hi",
                  "contagious_share", "liquidity_share")


def check_finite(results: "Results", file: str | None = None) -> None:
    """Raise ScenarioError naming the first result field that holds NaN/inf where a number is due,
    or a probability outside [0, 1]: such a run is an error, never a file with nulls in it."""
    from sim.scenario import ScenarioError

    where = file or results.scenario
    for name in _FINITE:
        a = np.asarray(getattr(results, name), dtype=float)
        if not np.all(np.isfinite(a)):
            raise ScenarioError(where, name, None, "the run produced NaN or infinity in this result (nothing "
                                "was written): some inputs are too large or extreme for double precision; "
                                "bring the largest values nearer the ranges of docs/scenarios.md")
    for name in _PROBABILITIES:
        a = np.asarray(getattr(results, name), dtype=float)
        a = a[np.isfinite(a)]
        if a.size and (a.min() < -1e-9 or a.max() > 1 + 1e-9):
            raise ScenarioError(where, name, None, f"a probability outside [0, 1] ({a.min():.6g} .. {a.max():.6g}; "
                                "nothing was written): a bug or inputs beyond double precision; please report it")
def _runway_quantiles(hist: np.ndarray, pct) -> np.ndarray:
    """(percentiles, years) runway quantiles; those in the top bin (runway at the cap, or no
    burn) are the cap itself, kernel.RUNWAY_HI; NaN for a year with no path alive."""
    top = bin_edges(K.RUNWAY_LO, K.RUNWAY_HI, K.RUNWAY_BINS)[-2]
    out = []
    for h in hist:
        q = hist_quantiles(h, K.RUNWAY_LO, K.RUNWAY_HI, pct) if h.sum() else np.full(len(pct), np.nan)
        out.append(np.where(q >= top, K.RUNWAY_HI, q))
    return np.array(out).T


def _pct_ci(p, lo, hi) -> str:
    return f"{100 * p:.2f} [{100 * lo:.2f},{100 * hi:.2f}]"


def _se(se) -> str:
    return f" (se {se:.1f})" if np.isfinite(se) else " (se n/a: <10 chunks)"


def _atomic_csv(path: str, header, rows) -> str:
    import io

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    for row in rows:
        w.writerow([_fmt(v) for v in row])
    return _atomic_write(path, buf.getvalue())


def _fmt(v):
    if isinstance(v, (float, np.floating)):
        return "" if not math.isfinite(v) else repr(float(v))
    return v
