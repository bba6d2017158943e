"""Estimators on the streamed statistics: intervals for probabilities, quantiles and tail
measures from the fixed log-spaced histograms of sim.engine.kernel."""

from __future__ import annotations

import math

import numpy as np

from sim.engine.lazy import kernel as K

Z95 = 1.959963984540054


def proportion_se(count, n):
    """Binomial standard error of count / n."""
    p = np.asarray(count, dtype=float) / n
    return np.sqrt(p * (1.0 - p) / n)


def wilson_interval(count, n, z: float = Z95):
    """Wilson score interval for a binomial proportion (sound also near 0 and 1)."""
    count = np.asarray(count, dtype=float)
    p = count / n
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return np.maximum(centre - half, 0.0), np.minimum(centre + half, 1.0)


def bin_edges(lo: float, hi: float, bins: int) -> np.ndarray:
    """Edges of the positive bins 1..bins (bin 0 holds values <= 0)."""
    return np.exp(np.linspace(math.log(lo), math.log(hi), bins + 1))


def hist_quantiles(hist: np.ndarray, lo: float, hi: float, qs) -> np.ndarray:
    """Quantiles from a histogram with a zero bin and log-spaced positive bins, by
    log-linear interpolation inside the bin (relative error below one bin width)."""
    hist = np.asarray(hist)
    edges = bin_edges(lo, hi, hist.shape[-1] - 1)
    total = hist.sum()
    cum = np.cumsum(hist)
    out = []
    for q in np.atleast_1d(qs):
        target = q * total
        k = int(np.searchsorted(cum, target, side="left"))
        k = min(k, hist.shape[0] - 1)
        if k == 0:
            out.append(0.0)
            continue
        below = cum[k - 1]
        frac = (target - below) / hist[k] if hist[k] > 0 else 0.0
        lo_e, hi_e = edges[k - 1], edges[k]
        out.append(float(math.exp(math.log(lo_e) + frac * (math.log(hi_e) - math.log(lo_e)))))
    return np.array(out)


def signed_hist_quantiles(hist: np.ndarray, lo: float, hi: float, qs) -> np.ndarray:
    """Quantiles from a signed histogram (sim.engine.kernel.signed_bin: `bins` log-spaced
    bins of negative values, most negative first, a zero bin, then `bins` of positive
    values), by log-linear interpolation of the magnitude inside the bin."""
    hist = np.asarray(hist)
    bins = (hist.shape[-1] - 1) // 2
    edges = bin_edges(lo, hi, bins)
    total = hist.sum()
    cum = np.cumsum(hist)
    out = []
    for q in np.atleast_1d(qs):
        if total == 0:
            out.append(float("nan"))
            continue
        target = q * total
        k = min(int(np.searchsorted(cum, target, side="left")), hist.shape[0] - 1)
        below = cum[k - 1] if k > 0 else 0
        frac = (target - below) / hist[k] if hist[k] > 0 else 0.0
        if k == bins:
            out.append(0.0)
        elif k > bins:  # positive bin j: values from edges[j-1] up to edges[j]
            j = k - bins
            out.append(float(math.exp(math.log(edges[j - 1]) + frac * (math.log(edges[j]) - math.log(edges[j - 1])))))
        else:  # negative bin j: values from -edges[j] up to -edges[j-1]
            j = bins - k
            out.append(-float(math.exp(math.log(edges[j]) + frac * (math.log(edges[j - 1]) - math.log(edges[j])))))
    return np.array(out)


def loss_var_es(hist: np.ndarray, hist_sum: np.ndarray, level: float = 0.99) -> tuple[float, float]:
    """Value at risk and expected shortfall at `level` from the loss histogram.

    ES is the mean of the worst (1 - level) share of paths: whole bins above the VaR bin
    with their exact sums, plus the needed part of the VaR bin at that bin's mean.
    """
    n = hist.sum()
    if n == 0:
        return float("nan"), float("nan")
    var = float(hist_quantiles(hist, K.LOSS_LO, K.LOSS_HI, [level])[0])
    tail = (1.0 - level) * n
    cum_from_top = np.cumsum(hist[::-1])[::-1]  # paths in bins >= k
    k = int(np.nonzero(cum_from_top >= tail)[0][-1])  # highest bin reaching the tail count
    above = cum_from_top[k + 1] if k + 1 < hist.shape[0] else 0
    sum_above = hist_sum[k + 1:].sum()
    take = tail - above
    mean_k = hist_sum[k] / hist[k] if hist[k] > 0 else 0.0
    es = (sum_above + take * mean_k) / tail
    return var, float(max(es, var))


def batch_means_se(values: np.ndarray, weights: np.ndarray | None = None) -> float:
    """Standard error of a mean of per-chunk estimates (needs at least 10 chunks)."""
    values = np.asarray(values, dtype=float)
    if values.shape[0] < 10:
        return float("nan")
    return float(np.std(values, ddof=1) / math.sqrt(values.shape[0]))
