"""Tests of sim.engine.clearing against published cases, an LP, a Picard iteration and theory.

Oracles: C1 the manual example of the R package systemicrisk (Gandy & Veraart, `default_clearing`),
C2 its vignette "an example with 3 banks", C3 the default-wave cases of the FinNetValu test
suite, C4 the circular network of Rogers & Veraart (2013, Management Science) with its closed
form; C5 the
Eisenberg-Noe linear program (scipy HiGHS); for Rogers-Veraart, Picard iteration of the
clearing map from full payment (a monotone decreasing sequence that converges to the
greatest clearing vector), written here in plain numpy.
"""

import numpy as np
import pytest
from numba import njit
from scipy.optimize import linprog

from sim.engine.clearing import ClearingResult, all_can_pay, clear, clear_detailed, clearing_vector

# ---------------------------------------------------------------- helpers and oracles

def pbar_of(L, el):
    return np.asarray(L).sum(axis=1) + el


def relative_liabilities(L, el):
    pbar = pbar_of(L, el)
    return np.divide(L, pbar[:, None], out=np.zeros_like(L), where=pbar[:, None] > 0)


def lp_clearing(L, e, el):
    """Eisenberg-Noe greatest clearing vector: max sum p, p <= Pi^T p + e, 0 <= p <= pbar."""
    n = len(e)
    pbar = pbar_of(L, el)
    Pi = relative_liabilities(L, el)
    res = linprog(-np.ones(n), A_ub=np.eye(n) - Pi.T, b_ub=e,
                  bounds=list(zip(np.zeros(n), pbar)), method="highs",
                  options={"primal_feasibility_tolerance": 1e-10,
                           "dual_feasibility_tolerance": 1e-10})
    assert res.status == 0, res.message
    return res.x


def picard_rv(L, e, el, alpha, beta, max_iter=100_000):
    """Greatest RV clearing vector by iterating the clearing map down from p = pbar."""
    pbar = pbar_of(L, el)
    Pi = relative_liabilities(L, el)
    p = pbar.copy()
    for _ in range(max_iter):
        r = Pi.T @ p
        new = np.where(e + r >= pbar - 1e-12 * np.maximum(1, pbar), pbar,
                       np.minimum(pbar, alpha * e + beta * r))
        if np.max(np.abs(new - p)) <= 1e-15 * max(1.0, pbar.max()):
            return new
        p = new
    raise AssertionError("Picard iteration did not converge")


def random_network(rng):
    """A random network with outside creditors, stressed so that many cases default."""
    n = int(rng.integers(2, 13))
    density = rng.uniform(0.15, 1.0)
    scale = 10.0 ** rng.uniform(-2, 3)
    L = scale * rng.exponential(1.0, (n, n)) * (rng.random((n, n)) < density)
    np.fill_diagonal(L, 0.0)
    el = scale * rng.exponential(1.0, n) * (rng.random(n) < 0.7)
    pbar = pbar_of(L, el)
    e = rng.uniform(0.5, 1.0, n) * rng.uniform(0.0, 1.5) * pbar
    return L, e, el


def random_networks(seed, count):
    rng = np.random.default_rng(seed)
    return [random_network(rng) for _ in range(count)]


NETWORKS = random_networks(20260101, 250)


def clearing_residual(L, e, el, p, alpha=1.0, beta=1.0):
    """Max violation of the RV clearing equations, relative to the largest obligation."""
    pbar = pbar_of(L, el)
    r = relative_liabilities(L, el).T @ p
    solvent = e + r >= pbar - 1e-9 * np.maximum(1, pbar)
    target = np.where(solvent, pbar, np.minimum(pbar, alpha * e + beta * r))
    return np.max(np.abs(p - target)) / max(1.0, pbar.max())


# ---------------------------------------------------------------- C5: LP and Picard oracles

def test_equals_linear_program_on_random_networks():
    with_default = 0
    for L, e, el in NETWORKS:
        p, d = clear(L, e, el)
        p_lp = lp_clearing(L, e, el)
        pbar = pbar_of(L, el)
        np.testing.assert_allclose(p, p_lp, rtol=1e-7, atol=1e-7 * pbar.max())
        # The default set agrees wherever the LP answer is unambiguous.
        clear_cut = np.abs(p_lp - pbar) > 1e-6 * pbar.max()
        np.testing.assert_array_equal(d[clear_cut], True)
        with_default += d.any()
    frac = with_default / len(NETWORKS)
    assert 0.4 <= frac <= 0.9, f"{frac:.2f} of cases had a default: the test would be vacuous"


def test_rogers_veraart_equals_picard_iteration():
    rng = np.random.default_rng(7)
    strictly_lower = 0
    for L, e, el in NETWORKS[:120]:
        n = len(e)
        alpha = rng.uniform(0.0, 1.0, n)
        beta = rng.uniform(0.0, 0.95, n)
        p, d = clear(L, e, el, alpha, beta)
        pbar = pbar_of(L, el)
        np.testing.assert_allclose(p, picard_rv(L, e, el, alpha, beta),
                                   rtol=1e-9, atol=1e-9 * pbar.max())
        assert clearing_residual(L, e, el, p, alpha, beta) < 1e-9
        strictly_lower += np.any(p < clear(L, e, el).payments - 1e-9 * pbar.max())
    assert strictly_lower >= 30  # default costs bite in many cases


# ---------------------------------------------------------------- C1-C4 published cases

C1_EA, C1_EL = [1 / 2, 5 / 8, 3 / 4], [3 / 2, 1 / 2, 1 / 2]
C1_L = [[0, .5, .5], [.5, 0, .5], [.5, .5, 0]]
C1_L2 = [[0, .75, .25], [.25, 0, .75], [.75, .25, 0]]


@pytest.mark.parametrize("L, alpha, beta, p_ref, d_ref", [
    (C1_L, 1, 1, [165 / 112, 159 / 112, 3 / 2], [1, 1, 0]),
    (C1_L, 0.5, 0.7, [0.5020199620, 0.5147049378, 0.5653806135], [1, 1, 1]),
    (C1_L2, 1, 1, [335 / 228, 25 / 19, 1.5], [1, 1, 0]),
    (C1_L2, 0.5, 0.7, [0.5103464484, 0.4874966987, 0.5813480959], [1, 1, 1]),
], ids=["EN", "RV", "variant-EN", "variant-RV"])
def test_c1_systemicrisk_manual(L, alpha, beta, p_ref, d_ref):
    p, d = clear(L, C1_EA, C1_EL, alpha, beta)
    np.testing.assert_allclose(p, p_ref, rtol=0, atol=5e-10)
    np.testing.assert_array_equal(d, np.array(d_ref, dtype=bool))


@pytest.mark.parametrize("ab, p_ref", [
    (1.0, [653 / 385, 3.5, 304 / 77]),
    (0.98, [1.6548940077, 3.5, 3.8488980638]),
])
def test_c2_systemicrisk_vignette(ab, p_ref):
    L = [[0, 0, 1], [0.4, 0, 2.1], [0.3, 2.7, 0]]
    p, d = clear(L, [1, 1, 1], [1, 1, 1], alpha=ab, beta=ab)
    np.testing.assert_allclose(p, p_ref, rtol=0, atol=5e-10)
    np.testing.assert_array_equal(d, [True, False, True])


@pytest.mark.parametrize("ea, p_ref, waves", [
    ([1, 1, 1], [0.8, 9.5, 8.4], [0, 1, 0]),
    ([0, 0, 0.1], [0.8, 5.625, 5.525], [0, 1, 2]),
])
def test_c3_default_waves(ea, p_ref, waves):
    L = [[0, 0.1, 0.7], [2, 0, 10.5], [0, 8.4, 0]]
    res = clear_detailed(L, ea)
    np.testing.assert_allclose(res.payments, p_ref, rtol=1e-13)
    np.testing.assert_array_equal(res.default_round, waves)
    np.testing.assert_array_equal(res.defaulted, np.array(waves) > 0)
    assert res.rounds == max(waves) + 1


def c4_network(eps):
    L = np.zeros((6, 6))
    for i in range(6):
        L[i, (i + 1) % 6] = 2.0 if i % 2 == 0 else 2.0 + eps
    ea = np.array([0.4 * (1 - eps) if i % 2 == 0 else 0.4 * (1 + eps) for i in range(6)])
    return L, ea


def test_c4_rogers_veraart_circle_all_insolvent():
    eps, alpha, beta, gamma = 1.0, 0.5, 0.5, 0.4
    L, ea = c4_network(eps)
    res = clear_detailed(L, ea, alpha=alpha, beta=beta)
    even = alpha * gamma / (1 - beta**2) * ((1 - eps) + beta * (1 + eps))
    odd = alpha * gamma / (1 - beta**2) * (beta * (1 - eps) + (1 + eps))
    np.testing.assert_allclose(res.payments, [even, odd] * 3, rtol=1e-13)
    np.testing.assert_allclose(res.payments, [0.26667, 0.53333] * 3, atol=5e-6)
    assert res.defaulted.all()
    np.testing.assert_array_equal(res.default_round, [2, 1, 2, 1, 2, 1])
    assert res.rounds == 3


def test_c4_rogers_veraart_circle_all_solvent():
    L, ea = c4_network(0.5)
    p, d = clear(L, ea, alpha=0.5, beta=0.5)
    np.testing.assert_allclose(p, [2, 2.5] * 3, rtol=1e-15)
    assert not d.any()


def test_c4_threshold_found_by_bisection():
    # Odd entities fail iff 0.4 (1 + eps) + 2 < 2 + eps, i.e. eps > 2/3; then all fail.
    lo, hi = 0.5, 1.0
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        L, ea = c4_network(mid)
        if clear(L, ea, alpha=0.5, beta=0.5).defaulted.any():
            hi = mid
        else:
            lo = mid
    # The solvency tolerance (1e-12 relative, exact balance is solvent) moves it by ~4e-12.
    assert hi == pytest.approx(2 / 3, abs=1e-11)
    L, ea = c4_network(hi)
    assert clear(L, ea, alpha=0.5, beta=0.5).defaulted.all()


# ---------------------------------------------------------------- properties

def test_limited_liability_absolute_priority_and_pro_rata():
    for L, e, el in NETWORKS:
        p, d = clear(L, e, el)
        pbar = pbar_of(L, el)
        assert np.all(p >= 0) and np.all(p <= pbar * (1 + 1e-15))  # 1 ulp: sum order
        # Pro rata: creditor j of i receives p_i L[i, j] / pbar_i, and each entity pays
        # exactly min(pbar, e + receipts) under EN: the clearing equation holds.
        assert clearing_residual(L, e, el, p) < 1e-12
        equity = e + relative_liabilities(L, el).T @ p - p
        tol = 1e-12 * max(1.0, pbar.max())
        assert np.all(equity >= -tol)
        short = p < pbar * (1 - 1e-13)  # not paying in full, beyond summation-order ulps
        np.testing.assert_allclose(equity[short], 0.0, atol=tol)   # absolute priority
        np.testing.assert_array_equal(d, short)


def test_money_is_conserved():
    for L, e, el in NETWORKS:
        for alpha, beta in ((1.0, 1.0), (0.6, 0.8)):
            p, _ = clear(L, e, el, alpha, beta)
            pbar = pbar_of(L, el)
            frac = np.divide(p, pbar, out=np.zeros_like(p), where=pbar > 0)
            network_received = (frac[:, None] * L).sum()
            outside_received = (frac * el).sum()
            assert p.sum() == pytest.approx(network_received + outside_received, rel=1e-12)


def test_monotone_in_external_assets():
    rng = np.random.default_rng(11)
    for L, e, el in NETWORKS[:100]:
        alpha, beta = (1.0, 1.0) if rng.random() < 0.5 else (0.5, 0.8)
        p0, d0 = clear(L, e, el, alpha, beta)
        e1 = e + rng.exponential(1.0, len(e)) * (rng.random(len(e)) < 0.5) * e.mean()
        p1, d1 = clear(L, e1, el, alpha, beta)
        assert np.all(p1 >= p0 - 1e-12 * max(1.0, p0.max()))
        assert np.all(d0 >= d1)  # nobody who was solvent defaults with more assets


def test_scale_invariance():
    for L, e, el in NETWORKS[:60]:
        p, d = clear(L, e, el, 0.7, 0.9)
        for c in (1e-3, 7.0, 1e6):
            pc, dc = clear(c * L, c * e, c * el, 0.7, 0.9)
            np.testing.assert_allclose(pc, c * p, rtol=1e-10, atol=1e-12 * c * p.max())
            np.testing.assert_array_equal(dc, d)


def test_relabelling_invariance():
    rng = np.random.default_rng(3)
    for L, e, el in NETWORKS[:80]:
        n = len(e)
        alpha, beta = rng.uniform(0.3, 1, n), rng.uniform(0.3, 1, n)
        perm = rng.permutation(n)
        p, d = clear(L, e, el, alpha, beta)
        pp, dp = clear(L[np.ix_(perm, perm)], e[perm], el[perm], alpha[perm], beta[perm])
        np.testing.assert_allclose(pp, p[perm], rtol=1e-10, atol=1e-12 * p.max())
        np.testing.assert_array_equal(dp, d[perm])


def test_rounds_bounded_and_bound_is_attained():
    for L, e, el in NETWORKS:
        res = clear_detailed(L, e, el, 0.5, 0.5)
        n = len(e)
        assert 1 <= res.rounds <= n + 1
        assert res.default_round.max() == res.rounds - 1
        np.testing.assert_array_equal(res.defaulted, res.default_round > 0)
    # A chain 0 -> 1 -> ... -> n-1 where each default topples the next: one per round.
    n = 8
    L = np.zeros((n, n))
    for i in range(n - 1):
        L[i, i + 1] = 1.0
    res = clear_detailed(L, np.zeros(n), np.r_[np.zeros(n - 1), 1.0])
    np.testing.assert_array_equal(res.default_round, np.arange(1, n + 1))
    assert res.rounds == n + 1
    np.testing.assert_array_equal(res.payments, 0.0)


def test_rogers_veraart_one_one_is_eisenberg_noe_and_costs_only_hurt():
    rng = np.random.default_rng(5)
    for L, e, el in NETWORKS[:120]:
        n = len(e)
        p_en, d_en = clear(L, e, el)
        p_rv1, d_rv1 = clear(L, e, el, np.ones(n), [1.0] * n)
        np.testing.assert_array_equal(p_rv1, p_en)
        np.testing.assert_array_equal(d_rv1, d_en)
        # Raising alpha and beta raises the greatest clearing vector; defaults shrink
        # toward EN's, which every RV default set contains.
        a_lo, b_lo = rng.uniform(0, 1, n), rng.uniform(0, 1, n)
        a_hi, b_hi = a_lo + rng.uniform(0, 1, n) * (1 - a_lo), b_lo + rng.uniform(0, 1, n) * (1 - b_lo)
        p_lo, d_lo = clear(L, e, el, a_lo, b_lo)
        p_hi, d_hi = clear(L, e, el, a_hi, b_hi)
        tol = 1e-12 * max(1.0, p_en.max())
        assert np.all(p_lo <= p_hi + tol) and np.all(p_hi <= p_en + tol)
        assert np.all(d_lo >= d_hi) and np.all(d_hi >= d_en)


def test_no_network_means_only_own_shortfalls():
    e = np.array([1.0, 2.0, 0.5])
    el = np.array([2.0, 1.0, 0.5])
    p, d = clear(np.zeros((3, 3)), e, el, alpha=0.5, beta=0.5)
    np.testing.assert_allclose(p, [0.5, 1.0, 0.5])
    np.testing.assert_array_equal(d, [True, False, False])


# ---------------------------------------------------------------- API

def test_lists_and_arrays_give_the_same_result():
    L, e, el = NETWORKS[0]
    a = clear(L, e, el, 0.5, 0.9)
    b = clear(L.tolist(), e.tolist(), el.tolist(), [0.5] * len(e), (0.9,) * len(e))
    assert isinstance(b, ClearingResult)
    np.testing.assert_array_equal(a.payments, b.payments)
    np.testing.assert_array_equal(a.defaulted, b.defaulted)
    assert b.defaulted.dtype == np.bool_
    payments, defaulted = b  # unpacks into two names
    assert payments is b.payments and defaulted is b.defaulted


def test_outside_liabilities_default_to_none():
    p, d = clear([[0, 1], [0, 0]], [0.5, 0])
    np.testing.assert_allclose(p, [0.5, 0.0])
    np.testing.assert_array_equal(d, [True, False])


GOOD_L = [[0, 1], [1, 0]]


@pytest.mark.parametrize("kwargs, match", [
    (dict(liabilities=[1, 2], external_assets=[1, 1]), "square 2-D"),
    (dict(liabilities=[[0, 1, 2], [1, 0, 2]], external_assets=[1, 1]), "square 2-D"),
    (dict(liabilities=np.zeros((0, 0)), external_assets=[]), "empty network"),
    (dict(liabilities=[[0, -1], [1, 0]], external_assets=[1, 1]), "negative"),
    (dict(liabilities=[[0, np.nan], [1, 0]], external_assets=[1, 1]), "NaN or inf"),
    (dict(liabilities=[[0, np.inf], [1, 0]], external_assets=[1, 1]), "NaN or inf"),
    (dict(liabilities=[[1, 1], [1, 0]], external_assets=[1, 1]), "diagonal"),
    (dict(liabilities=GOOD_L, external_assets=[1, 1, 1]), "external_assets must have length 2"),
    (dict(liabilities=GOOD_L, external_assets=[1, -1]), "external_assets has negative"),
    (dict(liabilities=GOOD_L, external_assets=[1, np.nan]), "external_assets contains NaN"),
    (dict(liabilities=GOOD_L, external_assets=[1, 1], external_liabilities=[1]),
     "external_liabilities must have length 2"),
    (dict(liabilities=GOOD_L, external_assets=[1, 1], external_liabilities=[1, -2]),
     "external_liabilities has negative"),
    (dict(liabilities=GOOD_L, external_assets=[1, 1], external_liabilities=[np.inf, 0]),
     "external_liabilities contains NaN or inf"),
    (dict(liabilities=GOOD_L, external_assets=[1, 1], alpha=[1, 1, 1]), "alpha must have length 2"),
    (dict(liabilities=GOOD_L, external_assets=[1, 1], beta=[1]), "beta must have length 2"),
    (dict(liabilities=GOOD_L, external_assets=[1, 1], alpha=1.5), r"alpha must lie in \[0, 1\]"),
    (dict(liabilities=GOOD_L, external_assets=[1, 1], beta=[0.5, -0.1]), r"beta must lie in \[0, 1\]"),
    (dict(liabilities=GOOD_L, external_assets=[1, 1], beta=np.nan), "beta contains NaN"),
])
def test_bad_input_is_rejected(kwargs, match):
    with pytest.raises(ValueError, match=match):
        clear(**kwargs)


# ---------------------------------------------------------------- the kernel itself

def test_kernel_with_caller_buffers_equals_clear_and_precheck_is_exact():
    rng = np.random.default_rng(17)
    agree_no_default = 0
    for L, e, el in NETWORKS:
        n = len(e)
        alpha, beta = rng.uniform(0, 1, n), rng.uniform(0, 1, n)
        payments = np.full(n, np.nan)
        defaulted = np.ones(n, dtype=np.bool_)
        work = np.full((n, n + 4), np.nan)  # stale garbage must not matter
        rounds = clearing_vector(L, e, el, alpha, beta, payments, defaulted, work)
        ref = clear_detailed(L, e, el, alpha, beta)
        np.testing.assert_array_equal(payments, ref.payments)
        np.testing.assert_array_equal(defaulted, ref.defaulted)
        assert rounds == ref.rounds
        # The pre-check is the same exact test as round 1, hence independent of alpha, beta.
        assert all_can_pay(L, e, el) == (not ref.defaulted.any())
        agree_no_default += all_can_pay(L, e, el)
    # Exact balance counts as paying: a network that just balances needs no clearing.
    L = np.array([[0.0, 0.3, 0.7], [0.1, 0.0, 0.2], [0.2, 0.4, 0.0]])
    el = np.array([0.5, 0.1, 0.0])
    e = pbar_of(L, el) - L.sum(axis=0)
    e = np.maximum(e, 0.0)
    assert all_can_pay(L, e, el) and not clear(L, e, el).defaulted.any()
    # Balanced in decimals, short by one ulp in floats (0.1 + 0.2 > 0.3): still solvent.
    L, e, el = np.array([[0.0, 0.2], [0.0, 0.0]]), np.array([0.3, 0.0]), np.array([0.1, 0.0])
    assert 0.1 + 0.2 > 0.3
    assert all_can_pay(L, e, el) and not clear(L, e, el).defaulted.any()
    assert agree_no_default >= 10


@njit
def _repeat_kernel(L, e, el, alpha, beta, payments, defaulted, work, reps):
    total = 0
    for _ in range(reps):
        if not all_can_pay(L, e, el):
            total += clearing_vector(L, e, el, alpha, beta, payments, defaulted, work)
    return total


def test_kernel_does_not_allocate():
    nrt = pytest.importorskip("numba.core.runtime._nrt_python")
    from numba.core.runtime import rtsys
    L, ea = c4_network(1.0)
    n = 6
    args = (L, ea, np.zeros(n), np.full(n, 0.5), np.full(n, 0.5), np.empty(n),
            np.empty(n, dtype=np.bool_), np.empty((n, n + 4)))
    _repeat_kernel(*args, 1)  # compile
    nrt.memsys_enable_stats()
    try:
        def allocations(reps):
            before = rtsys.get_allocation_stats().alloc
            assert _repeat_kernel(*args, reps) == 3 * reps
            return rtsys.get_allocation_stats().alloc - before
        # Only the unboxing of the arguments allocates (a fixed count), never the loop.
        assert allocations(1) == allocations(500)
    finally:
        nrt.memsys_disable_stats()


def test_in_place_solver_pivots_and_leaves_bookkeeping_columns_alone():
    from sim.engine.clearing import _solve_in_place
    rng = np.random.default_rng(23)
    for k in (1, 2, 5, 9):
        n = k + 2
        A = rng.normal(size=(k, k))
        A[np.arange(k), np.arange(k)] = 0.0 if k > 1 else 1.0  # zero pivots need row swaps
        b = rng.normal(size=k)
        work = rng.normal(size=(n, n + 4))
        work[:k, :k], work[:k, n] = A, b
        keep = work[:, n + 1:].copy()
        _solve_in_place(work, k, n)
        np.testing.assert_allclose(work[:k, n], np.linalg.solve(A, b), rtol=1e-9, atol=1e-12)
        np.testing.assert_array_equal(work[:, n + 1:], keep)
