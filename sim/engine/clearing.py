"""Clearing a network of obligations: Eisenberg-Noe with Rogers-Veraart default costs.

Convention: ``L[i, j]`` is what entity i **owes** entity j; ``e`` (external assets) is
what each entity holds outside the network; ``el`` (external liabilities) is what it owes
outside creditors, who share pro rata with its network creditors. Each entity's total
obligation is ``pbar_i = sum_j L[i, j] + el_i`` and its creditors receive the fraction
``p_i / pbar_i`` of their claims, where ``p_i`` is its total payment.

A clearing vector ``p`` satisfies, with receipts ``r_i = sum_j L[j, i] / pbar_j * p_j``::

    p_i = pbar_i                        if e_i + r_i >= pbar_i   (solvent, pays in full)
    p_i = alpha_i * e_i + beta_i * r_i  otherwise                (defaults)

alpha = beta = 1 is Eisenberg & Noe (2001, Management Science 47(2)); alpha, beta < 1 are
the default costs of Rogers & Veraart (2013, Management Science 59(4)). We compute the
*greatest* clearing vector with Rogers & Veraart's greatest-clearing-vector ("fictitious
default") algorithm: start with nobody in default and everyone paying in full; each round,
add to the default set every entity that cannot pay given the others' current payments,
then re-solve the linear system for the defaulters' payments; stop when the set stops
growing. The set only grows, so it ends within n + 1 rounds, and the answer is exact (no
fixed-point iteration to a tolerance).

The numba kernel :func:`clearing_vector` works on caller-owned arrays and allocates
nothing, for the Monte Carlo hot loop; :func:`all_can_pay` is the cheap exact check that
lets a caller skip clearing when every entity can pay in full. :func:`clear` and
:func:`clear_detailed` are the validated public API.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

# An entity is insolvent when e_i + r_i < pbar_i - _REL_TOL * max(1, pbar_i): exact balance
# (up to rounding) counts as solvent, so a network that just balances has no defaults.
_REL_TOL = 1e-12


@njit(cache=True, nogil=True)
def all_can_pay(liabilities, external_assets, external_liabilities):
    """True when every entity can pay in full if every other one does (no clearing needed).

    Then p = pbar is the greatest clearing vector. Uses the same arithmetic, in the same
    order, as round 1 of :func:`clearing_vector`, so it is True exactly when that kernel
    reports no default. Allocates nothing.
    """
    n = liabilities.shape[0]
    for i in range(n):
        pbar = external_liabilities[i]
        for j in range(n):
            if j != i:
                pbar += liabilities[i, j]
        if pbar <= 0.0:
            continue
        receipts = 0.0
        for j in range(n):
            if j != i:
                receipts += liabilities[j, i] * 1.0
        if external_assets[i] + receipts < pbar - _REL_TOL * max(1.0, pbar):
            return False
    return True


@njit(cache=True, nogil=True)
def _solve_in_place(work, k, rhs):
    """Solve work[:k, :k] x = work[:k, rhs] by Gaussian elimination with partial pivoting.

    x overwrites work[:k, rhs]. Only columns 0..k-1 and `rhs` are touched (row swaps
    included), so the bookkeeping columns of the clearing kernel survive. The clearing
    matrix I - diag(beta) Pi_DD^T is column diagonally dominant and non-singular (a closed
    group of entities can never all default), so pivots are bounded away from zero.
    """
    for c in range(k):
        piv = c
        big = abs(work[c, c])
        for r in range(c + 1, k):
            v = abs(work[r, c])
            if v > big:
                big = v
                piv = r
        if piv != c:
            for col in range(c, k):
                t = work[c, col]
                work[c, col] = work[piv, col]
                work[piv, col] = t
            t = work[c, rhs]
            work[c, rhs] = work[piv, rhs]
            work[piv, rhs] = t
        d = work[c, c]
        for r in range(c + 1, k):
            f = work[r, c] / d
            if f != 0.0:
                for col in range(c + 1, k):
                    work[r, col] -= f * work[c, col]
                work[r, rhs] -= f * work[c, rhs]
    for c in range(k - 1, -1, -1):
        s = work[c, rhs]
        for col in range(c + 1, k):
            s -= work[c, col] * work[col, rhs]
        work[c, rhs] = s / work[c, c]


@njit(cache=True, nogil=True)
def clearing_vector(liabilities, external_assets, external_liabilities, alpha, beta,
                    payments, defaulted, work):
    """Greatest Rogers-Veraart clearing vector, in place; returns the number of rounds.

    liabilities (n, n): L[i, j] = what i owes j (diagonal ignored). external_assets,
    external_liabilities, alpha, beta (n,): all >= 0, alpha and beta in [0, 1]; a negative
    outside position belongs in external_liabilities, not in negative assets.
    Outputs: payments (n,) total payment of each entity, defaulted (n,) bool.
    work: float64 scratch of shape (n, n + 4). Columns 0..n-1 hold the linear system,
    column n the right-hand side (or the fraction paid), n + 1 pbar, n + 2 the defaulters'
    indices; on return column n + 3 holds the round in which each entity entered default
    (0.0 = never). Rounds <= n + 1; the last round is the one that finds no new default.
    """
    n = liabilities.shape[0]
    RHS = n
    PBAR = n + 1
    IDX = n + 2
    ROUND = n + 3
    for i in range(n):
        pbar = external_liabilities[i]
        for j in range(n):
            if j != i:
                pbar += liabilities[i, j]
        work[i, PBAR] = pbar
        payments[i] = pbar
        defaulted[i] = False
        work[i, ROUND] = 0.0

    rounds = 0
    while True:
        rounds += 1
        # Fraction of its obligations each entity currently pays (1.0 exactly when in full).
        for j in range(n):
            pbar = work[j, PBAR]
            work[j, RHS] = payments[j] / pbar if pbar > 0.0 else 0.0
        grew = False
        for i in range(n):
            pbar = work[i, PBAR]
            if defaulted[i] or pbar <= 0.0:
                continue
            receipts = 0.0
            for j in range(n):
                if j != i:
                    receipts += liabilities[j, i] * work[j, RHS]
            # Solvency uses the full outside assets: default costs hit only defaulters.
            if external_assets[i] + receipts < pbar - _REL_TOL * max(1.0, pbar):
                defaulted[i] = True
                work[i, ROUND] = rounds
                grew = True
        if not grew:
            return rounds

        # Defaulters pay alpha_i e_i + beta_i (receipts from solvent + from defaulters):
        # (I - diag(beta) Pi_DD^T) p_D = alpha e_D + beta * (L_SD^T 1), solvent paying pbar.
        k = np.int64(0)  # not a literal 0, which would make numba compile _solve_in_place twice
        for i in range(n):
            if defaulted[i]:
                work[k, IDX] = i
                k += 1
        for a in range(k):
            i = int(work[a, IDX])
            b_i = beta[i]
            from_solvent = 0.0
            for j in range(n):
                if j != i and not defaulted[j]:
                    from_solvent += liabilities[j, i]
            work[a, RHS] = alpha[i] * external_assets[i] + b_i * from_solvent
            for b in range(k):
                j = int(work[b, IDX])
                if j == i:
                    work[a, b] = 1.0
                else:
                    work[a, b] = -b_i * liabilities[j, i] / work[j, PBAR]
        _solve_in_place(work, k, RHS)
        for a in range(k):
            i = int(work[a, IDX])
            # Limited liability; exact arithmetic keeps p inside [0, pbar] already.
            payments[i] = min(max(work[a, RHS], 0.0), work[i, PBAR])


class ClearingResult(NamedTuple):
    """Outcome of a clearing: unpacks as ``payments, defaulted = clear(...)``."""

    payments: np.ndarray   # (n,) total payment of each entity (network + outside creditors)
    defaulted: np.ndarray  # (n,) bool: paid less than its total obligation


class ClearingDetail(NamedTuple):
    """A clearing with the workings of the fictitious default algorithm."""

    payments: np.ndarray
    defaulted: np.ndarray
    rounds: int                # rounds used, <= n + 1 (the last one finds no new default)
    default_round: np.ndarray  # (n,) int: round in which each entity defaulted, 0 = never


def _vector(name, value, n, allow_scalar):
    if allow_scalar and np.ndim(value) == 0:
        value = np.full(n, value, dtype=float)
    arr = np.asarray(value, dtype=float)
    if arr.ndim != 1 or arr.shape[0] != n:
        raise ValueError(f"{name} must have length {n} (one entry per entity), "
                         f"got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or inf")
    return np.ascontiguousarray(arr)


def _validated(liabilities, external_assets, external_liabilities, alpha, beta):
    L = np.asarray(liabilities, dtype=float)
    if L.ndim != 2 or L.shape[0] != L.shape[1]:
        raise ValueError(f"liabilities must be a square 2-D matrix, got shape {L.shape}")
    n = L.shape[0]
    if n == 0:
        raise ValueError("empty network: liabilities has no entities")
    if not np.all(np.isfinite(L)):
        raise ValueError("liabilities contains NaN or inf")
    if np.any(L < 0):
        raise ValueError("liabilities has negative entries")
    if np.any(np.diag(L) != 0):
        raise ValueError("liabilities has a non-zero diagonal (an entity owing itself)")
    e = _vector("external_assets", external_assets, n, allow_scalar=False)
    if np.any(e < 0):
        raise ValueError("external_assets has negative entries "
                         "(put a net outside shortfall into external_liabilities)")
    el = np.zeros(n) if external_liabilities is None else _vector(
        "external_liabilities", external_liabilities, n, allow_scalar=False)
    if np.any(el < 0):
        raise ValueError("external_liabilities has negative entries")
    a = _vector("alpha", alpha, n, allow_scalar=True)
    b = _vector("beta", beta, n, allow_scalar=True)
    for name, v in (("alpha", a), ("beta", b)):
        if np.any((v < 0) | (v > 1)):
            raise ValueError(f"{name} must lie in [0, 1]")
    return np.ascontiguousarray(L), e, el, a, b


def clear_detailed(liabilities, external_assets, external_liabilities=None,
                   alpha=1.0, beta=1.0) -> ClearingDetail:
    """Like :func:`clear`, also reporting the rounds used and each entity's default round.

    ``default_round[i] = k`` means entity i was found unable to pay in round k of the
    fictitious default algorithm (round 1 tests everyone against full payment by all;
    later rounds are the contagion "waves"); 0 means it never defaulted.
    """
    L, e, el, a, b = _validated(liabilities, external_assets, external_liabilities, alpha, beta)
    n = L.shape[0]
    payments = np.empty(n)
    defaulted = np.empty(n, dtype=np.bool_)
    work = np.empty((n, n + 4))
    rounds = clearing_vector(L, e, el, a, b, payments, defaulted, work)
    return ClearingDetail(payments, defaulted, int(rounds), work[:, n + 3].astype(np.int64))


def clear(liabilities, external_assets, external_liabilities=None,
          alpha=1.0, beta=1.0) -> ClearingResult:
    """Greatest clearing vector of a network of obligations.

    Eisenberg & Noe (2001), "Systemic risk in financial systems", Management Science 47(2),
    with the default costs of Rogers & Veraart (2013), "Failure and rescue in an interbank
    network", Management Science 59(4): a defaulting entity i pays
    ``alpha_i * external_assets_i + beta_i * (what it receives from the network)``, capped at
    its total obligation. alpha = beta = 1 (the default) is Eisenberg-Noe.

    liabilities: (n, n), ``L[i][j]`` = what entity i owes entity j (zero diagonal).
    external_assets: (n,) outside assets. external_liabilities: (n,) owed to outside
    creditors (default none), paid pro rata with network creditors. alpha, beta: scalars or
    (n,) sequences in [0, 1]. Lists or numpy arrays.

    Returns ``ClearingResult(payments, defaulted)``: each entity's total payment (network and
    outside creditors together; creditor k of i receives ``payments[i] * claim / pbar_i``) and
    whether it paid less than in full. Raises ValueError on malformed input.
    """
    d = clear_detailed(liabilities, external_assets, external_liabilities, alpha, beta)
    return ClearingResult(d.payments, d.defaulted)
