"""Scalar metrics of a `Results` with their standard errors, parsed from text (`p2`, `pd:Oracle@2028`, ...).

Metrics (`parse_metric`): scalars of a `Results` with their standard errors

    p2                    P(2 or more entities default by the horizon)      [default]
    pd:ENTITY             ENTITY's probability of default by the horizon
    pd:ENTITY@YEAR        ... by the end of YEAR
    lab_pd                the lab's probability of default by the horizon
    gap:YEAR              the lab's probability of an unfunded gap in YEAR
    contagious:ENTITY     P(ENTITY defaults, contagiously, by the horizon)
    loss_mean             mean loss to outside creditors by the horizon, $B
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass

import numpy as np

from sim.engine.results import Results
from sim.engine.runner import SUMMARY_FIXED
from sim.engine.stats import proportion_se

#: Metric forms, for help texts and did-you-mean.
METRIC_FORMS = {
    "p2": "P(2 or more entities default by the horizon)",
    "pd:ENTITY": "ENTITY's probability of default by the horizon",
    "pd:ENTITY@YEAR": "ENTITY's probability of default by the end of YEAR",
    "lab_pd": "the lab's probability of default by the horizon",
    "gap:YEAR": "the lab's probability of an unfunded funding gap in YEAR",
    "contagious:ENTITY": "probability that ENTITY defaults contagiously by the horizon",
    "loss_mean": "mean loss to outside creditors by the horizon ($B)",
}

MIN_PAIRED_CHUNKS = 10


class SensitivityError(ValueError):
    """Bad input to a sensitivity or reverse stress test (one clear message)."""


class BracketError(SensitivityError):
    """The range given to the root finder does not bracket the target."""


# ---------------------------------------------------------------------------------- metrics
@dataclass(frozen=True)
class Metric:
    """A scalar of a `Results` with its standard error (see the module docstring)."""

    name: str  # canonical, e.g. "pd:Oracle@2032"
    label: str  # for tables, e.g. "PD of Oracle by 2032"
    kind: str  # "p2" | "pd" | "gap" | "contagious" | "loss_mean"
    entity: int = -1
    year: int = -1  # index into the years
    is_probability: bool = True

    def value(self, r: Results) -> tuple[float, float]:
        """(value, standard error) from a Results."""
        if self.kind == "p2":
            return float(r.p2), float(r.p2_se)
        if self.kind == "pd":
            return float(r.pd[self.entity, self.year]), float(r.pd_se[self.entity, self.year])
        if self.kind == "gap":
            p = float(r.p_gap[self.year])
            return p, float(proportion_se(p * r.paths, r.paths))
        if self.kind == "contagious":
            p = float(r.p_contagious[self.entity])
            return p, float(proportion_se(p * r.paths, r.paths))
        if self.kind == "loss_mean":
            return float(r.loss_mean), float(r.loss_mean_se)
        raise AssertionError(self.kind)

    def per_chunk(self, summaries: np.ndarray, n_years: int) -> np.ndarray | None:
        """Per-chunk estimates from `engine.chunk_summary` rows (None where the summaries do
        not carry this metric)."""
        if summaries is None or len(summaries) == 0:
            return None
        n = summaries[:, 3]
        if self.kind == "p2":
            return summaries[:, 4] / n
        if self.kind == "pd":
            return summaries[:, SUMMARY_FIXED + self.entity * n_years + self.year] / n
        if self.kind == "loss_mean":
            return summaries[:, 0].copy()
        return None


def _suggest(word: str, candidates) -> str:
    m = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.5)
    if not m:
        low = {c.lower(): c for c in candidates}
        if word.lower() in low:
            m = [low[word.lower()]]
    return f" (did you mean {m[0]!r}?)" if m else ""


def parse_metric(spec: str, scenario) -> Metric:
    """The metric named by `spec` for `scenario` (a Scenario or a Results); SensitivityError
    with a did-you-mean for unknown metrics, entities or years."""
    if hasattr(scenario, "data"):
        entities = [e["name"] for e in scenario.data["entity"]]
        years = scenario.years()
        lab = scenario.data["lab"]["entity"]
    else:
        entities, years, lab = list(scenario.entities), list(scenario.years), scenario.lab
    spec = (spec or "").strip()
    forms = ", ".join(METRIC_FORMS)

    def entity_index(name: str, whole: str) -> int:
        if name in entities:
            return entities.index(name)
        raise SensitivityError(f"unknown entity {name!r} in metric {whole!r}{_suggest(name, entities)}; "
                               f"entities: {', '.join(entities)}")

    def year_index(text: str, whole: str) -> int:
        try:
            y = int(text)
        except ValueError:
            raise SensitivityError(f"bad year {text!r} in metric {whole!r}: expected a calendar year "
                                   f"{years[0]}-{years[-1]}") from None
        if y not in years:
            raise SensitivityError(f"year {y} in metric {whole!r} is outside the simulated years "
                                   f"{years[0]}-{years[-1]}")
        return years.index(y)

    if spec == "p2":
        return Metric("p2", f"P(2+ defaults by {years[-1]})", "p2")
    if spec == "loss_mean":
        return Metric("loss_mean", "mean loss to outside creditors ($B)", "loss_mean", is_probability=False)
    if spec == "lab_pd":
        i = entities.index(lab)
        return Metric("lab_pd", f"PD of {lab} by {years[-1]}", "pd", i, len(years) - 1)
    head, sep, rest = spec.partition(":")
    if head in ("pd", "contagious") and not rest:
        raise SensitivityError(f"metric {spec!r} needs an entity: {head}:ENTITY"
                               + ("[@YEAR]" if head == "pd" else "") + f"; entities: {', '.join(entities)}")
    if head == "gap" and not rest:
        raise SensitivityError(f"metric {spec!r} needs a year: gap:YEAR, {years[0]}-{years[-1]}")
    if sep and head == "pd":
        who, at, year = rest.rpartition("@") if "@" in rest else (rest, "", "")
        i = entity_index(who, spec)
        j = year_index(year, spec) if at else len(years) - 1
        return Metric(f"pd:{who}" + (f"@{years[j]}" if at else ""), f"PD of {who} by {years[j]}", "pd", i, j)
    if sep and head == "gap":
        j = year_index(rest, spec)
        return Metric(f"gap:{years[j]}", f"P({lab} funding gap in {years[j]})", "gap", year=j)
    if sep and head == "contagious":
        i = entity_index(rest, spec)
        return Metric(f"contagious:{rest}", f"P({rest} defaults contagiously by {years[-1]})", "contagious", i)
    hint = _suggest(head if sep else spec, ["p2", "pd", "lab_pd", "gap", "contagious", "loss_mean"])
    raise SensitivityError(f"unknown metric {spec!r}{hint}; metrics: {forms}")


def _clean(x):
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    if isinstance(x, (float, np.floating)):
        return float(x) if math.isfinite(x) else None
    if isinstance(x, np.integer):
        return int(x)
    return x


def _fmt_metric(v: float, m: Metric) -> str:
    return f"{100 * v:.2f}%" if m.is_probability else f"{v:,.2f}"


def _fmt_se(v: float, m: Metric) -> str:
    return f"{100 * v:.2f}pp" if m.is_probability else f"{v:,.2f}"


def _g(v) -> str:
    return "-" if v is None else f"{v:.4g}"
