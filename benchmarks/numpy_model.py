"""The model written the way a numpy user would: paths are the array axis, time is a loop.

A benchmark alternative to the numba kernel (sim/engine/kernel.py), not part of the package. It
implements the same economics (docs/model.md): regime, revenue, sentiment, outside cash
flows, contracts with re-letting, tranches with conditions and milestones, network loans,
outside debt with refinancing, the lab's raise, the joint Rogers-Veraart clearing (the
fictitious-default algorithm, vectorised over the paths that need it, with batched
`np.linalg.solve`), settlement, liquidity and solvency defaults with the in-step cascade,
the Elsinger-Lehar-Summer classification and the consequences of each default. Loops run
over time, entities, contracts and tranches (small); every operation inside is on arrays
of paths. Paths are processed in blocks of `block` to bound memory.

    out = simulate_numpy(M, paths, seed)                 # its own draws (numpy Generator)
    out = simulate_numpy(M, paths, shocks=S, tranche_u=U)  # given shocks, kernel layout

Returns a dict of statistics comparable to the kernel's `Stats`: default_at (n, steps),
kind_count (n, 3), contagious (n,), cascade (n + 1,), total_loss (2,), need_year,
gap_year (years,), n_paths. With the kernel's own shocks it reproduces the kernel path by
path up to floating-point rounding (the clearing's linear solves differ in order); with
its own draws, within Monte Carlo error (benchmarks/run_all.py checks both).
"""

from __future__ import annotations

import numpy as np

LIQUIDITY, SOLVENCY = 1, 2
_REL_TOL = 1e-12


def _derived(M):
    """Per-step and per-entity constants (as sim.engine.kernel.derive, in numpy)."""
    dt, sqdt = M.dt, np.sqrt(M.dt)
    t = np.arange(M.n_steps)
    g = M.growth_inf + (M.growth0 - M.growth_inf) * 0.5 ** (t * dt / M.half_life)
    vol, vw = M.volatility, M.volatility_winter
    return dict(
        rev_drift=(g - 0.5 * vol * vol) * dt, rev_sd=vol * sqdt,
        winter_drift=(M.growth_winter - 0.5 * vw * vw) * dt, winter_sd=vw * sqdt,
        rho_c=np.sqrt(1.0 - M.rho * M.rho),
        ocf_c=np.sqrt(1.0 - M.ocf_loading ** 2),
        ocf_drift=(M.ocf_growth - 0.5 * M.ocf_vol ** 2) * dt,
        ocf_drift_winter=(M.ocf_growth_winter - 0.5 * M.ocf_vol ** 2) * dt,
        ocf_sd=M.ocf_vol * sqdt,
    )


def _clear(L, e, el, pbar, alpha, beta):
    """Greatest Rogers-Veraart clearing vector for a stack of networks (P, n, n), by the
    fictitious-default algorithm: each round adds everyone who cannot pay given the others'
    payments, then solves the defaulters' payments (batched). Returns (p, defaulted)."""
    P, n = e.shape
    p = pbar.copy()
    dflt = np.zeros((P, n), bool)
    safe = np.where(pbar > 0.0, pbar, 1.0)
    Pi = L / safe[:, :, None]  # Pi[j, i]: share of j's payments that goes to i
    eye = np.eye(n)
    todo = np.arange(P)
    for _ in range(n + 1):
        frac = np.where(pbar[todo] > 0.0, p[todo] / safe[todo], 0.0)
        receipts = np.einsum("pji,pj->pi", L[todo], frac)
        pb = pbar[todo]
        new = ~dflt[todo] & (pb > 0.0) & (e[todo] + receipts < pb - _REL_TOL * np.maximum(1.0, pb))
        grew = new.any(axis=1)
        if not grew.any():
            break
        todo = todo[grew]
        dflt[todo] |= new[grew]
        d = dflt[todo]
        # p_i = pbar_i (solvent); p_i - beta_i sum_j Pi[j, i] p_j = alpha_i e_i (defaulted)
        A = eye - np.where(d[:, :, None], beta[None, :, None] * np.transpose(Pi[todo], (0, 2, 1)), 0.0)
        rhs = np.where(d, alpha * e[todo], pbar[todo])
        sol = np.linalg.solve(A, rhs[:, :, None])[:, :, 0]
        p[todo] = np.where(d, np.clip(sol, 0.0, pbar[todo]), pbar[todo])
    return p, dflt


def _draw(rng, P, M):
    """A block's shocks in the kernel's layout, drawn the numpy way (whole arrays)."""
    n = M.cash0.shape[0]
    q = M.t_amount.shape[0]
    tranche_u = rng.random((P, q))
    shocks = np.empty((P, M.n_steps, 4 + 2 * n))
    z = rng.standard_normal((P, M.n_steps, 3 + n))
    u = rng.random((P, M.n_steps, 1 + n))
    shocks[:, :, 0] = z[:, :, 0]
    shocks[:, :, 1] = z[:, :, 1]
    shocks[:, :, 2] = u[:, :, 0]
    shocks[:, :, 3] = z[:, :, 2]
    shocks[:, :, 4::2] = z[:, :, 3:]
    shocks[:, :, 5::2] = u[:, :, 1:]
    return shocks, tranche_u


def _block(M, D, shocks, tranche_u, out):
    """Simulate one block of paths (shocks (P, steps, width), tranche_u (P, q))."""
    P = shocks.shape[0]
    n, m, q, nl = M.cash0.shape[0], M.c_payer.shape[0], M.t_amount.shape[0], M.l_amount.shape[0]
    T, dt, lab, spy = M.n_steps, M.dt, M.lab, M.steps_per_year
    # state
    log_r = np.full(P, M.log_r0)
    log_s = np.zeros(P)
    winter = np.zeros(P, bool)
    cash = np.tile(M.cash0, (P, 1))
    debt = np.tile(M.debt0, (P, 1))
    amortising = np.tile(M.debt0 - M.bullet_total, (P, 1))
    loan_out = np.tile(M.l_amount, (P, 1))
    log_ocf = np.zeros((P, n))
    alive = np.ones((P, n), bool)
    share = np.tile(M.share0, (P, 1, 1))
    eq0 = M.market_equity.copy()
    eq0[lab] = M.multiple * np.exp(M.log_r0)
    stake0 = (M.share0 * eq0).sum(axis=1)
    impairment = np.zeros((P, n))
    net_shortfall = np.zeros((P, n))
    stake_lost = np.zeros((P, n))
    c_active = np.ones((P, m), bool)
    c_paid = np.zeros((P, m))
    c_relet = np.full((P, m), -1, np.int64)
    t_ok = tranche_u < M.t_prob
    t_done = np.zeros((P, q), bool)
    # record
    default_step = np.full((P, n), -1, np.int64)
    kind = np.zeros((P, n), np.int64)
    contagious = np.zeros((P, n), bool)
    loss = np.zeros((P, n))
    need_rec = np.zeros((P, T))
    gap_rec = np.zeros((P, T))

    def loan_position():
        v = np.zeros((P, n))
        for k in range(nl):
            d = loan_out[:, k] - M.l_amount[k]
            v[:, M.l_lender[k]] += d
            v[:, M.l_borrower[k]] -= d
        return v

    for t in range(T):
        sh = shocks[:, t, :]
        # 1. regime, revenue, sentiment, outside cash flows, equity marks
        entered = np.zeros(P, bool)
        if M.regime_on:
            u = sh[:, 2]
            entered = ~winter & (u < M.p_enter)
            winter = np.where(winter, ~(u < M.p_exit), entered)
        z_r = sh[:, 0]
        z_s = M.rho * z_r + D["rho_c"] * sh[:, 1]
        log_r += np.where(winter, D["winter_drift"] + D["winter_sd"] * z_r, D["rev_drift"][t] + D["rev_sd"] * z_r)
        log_s = log_s * M.sent_decay + M.sent_sd * z_s
        log_r += np.where(entered, M.jump_mean + M.jump_sd * sh[:, 3], 0.0)
        log_s += np.where(entered, M.sentiment_jump, 0.0)
        revenue = np.exp(log_r)
        sentiment = np.exp(log_s)
        w2 = winter[:, None]
        z = M.ocf_loading * z_s[:, None] + D["ocf_c"] * sh[:, 4::2]
        log_ocf += np.where(w2, D["ocf_drift_winter"], D["ocf_drift"]) + D["ocf_sd"] * z
        net_out = np.where(alive, M.ocf0 * np.exp(log_ocf) * dt, 0.0)
        equity = M.market_equity * sentiment[:, None] ** M.equity_beta
        equity[:, lab] = np.where(winter, M.multiple_winter, M.multiple) * revenue * sentiment
        equity = np.where(alive, equity, 0.0)
        net_out[:, lab] += np.where(alive[:, lab], revenue * dt * (1.0 - M.opex_share[t]), 0.0)

        # 2. obligations: contracts (delivery costs, re-letting), tranches, loans
        L = np.zeros((P, n, n))
        shortfall_now = np.zeros((P, n))
        margin_lost = np.zeros((P, n))
        for c in range(m):
            a, b = M.c_payer[c], M.c_payee[c]
            amount, cost = M.c_amount[c, t], M.c_cost[c]
            act = c_active[:, c]
            L[:, a, b] += np.where(act, amount, 0.0)
            net_out[:, b] -= np.where(act, cost * amount, 0.0)
            lapsed = ~act & (c_relet[:, c] >= 0) & alive[:, b]
            if lapsed.any():
                lost = (1.0 - cost) * amount
                relet = np.where(t >= c_relet[:, c],
                                 M.c_relet_share[c] * amount * ((1.0 - M.c_relet_discount[c]) - cost), 0.0)
                net_out[:, b] += np.where(lapsed, relet, 0.0)
                margin_lost[:, b] += np.where(lapsed, lost - relet, 0.0)
                shortfall_now[:, b] += np.where(lapsed, lost - relet, 0.0)
        pending = np.zeros((P, q), bool)
        for k in range(q):
            if not (M.t_first[k] <= t <= M.t_last[k]):
                continue
            a, b = M.t_investor[k], M.t_investee[k]
            ok = ~t_done[:, k] & t_ok[:, k] & alive[:, a] & alive[:, b]
            c = M.t_contract[k]
            if c >= 0:
                ok &= ~(c_paid[:, c] < M.t_milestone[k] - 1e-12)
            pending[:, k] = ok
            L[:, a, b] += np.where(ok, M.t_amount[k], 0.0)
        for k in range(nl):
            a, b = M.l_borrower[k], M.l_lender[k]
            ok = alive[:, a] & alive[:, b] & (loan_out[:, k] > 0.0)
            due_k = M.l_rate[k] * loan_out[:, k] * dt + (loan_out[:, k] if t == M.l_maturity[k] else 0.0)
            L[:, a, b] += np.where(ok, due_k, 0.0)

        # outside debt service with refinancing
        interest = M.rate * debt * dt
        scheduled = np.where(alive, np.minimum(amortising, M.amort), 0.0)
        due = scheduled + M.bullet[:, t]
        with np.errstate(divide="ignore", invalid="ignore"):
            lev = np.where(equity > 0.0, debt / np.where(equity > 0.0, equity, 1.0), 0.0)
        x = M.refi_logit + M.refi_sent_slope * log_s[:, None] - M.refi_lev_slope * lev
        x = np.where(w2, x + M.refi_winter_shift, x)
        roll = sh[:, 5::2] < 1.0 / (1.0 + np.exp(-x))
        principal = np.where(alive & (due > 0.0) & ~roll, due, 0.0)
        el = np.where(alive, interest + principal + np.maximum(-net_out, 0.0), 0.0)
        e = np.where(alive, cash + np.maximum(net_out, 0.0), 0.0)
        pbar = el + L.sum(axis=2)
        due_in = L.sum(axis=1)

        # 3. the lab's raise
        la = alive[:, lab]
        need = np.where(la, np.maximum(0.0, pbar[:, lab] - e[:, lab] - due_in[:, lab]), 0.0)
        cap = np.where(winter, M.raise_share_winter, M.raise_share) * equity[:, lab] * dt
        raised = np.minimum(need, cap)
        e[:, lab] += np.where(la, raised, 0.0)
        need_rec[:, t] = need
        gap_rec[:, t] = need - raised

        # 4. clearing, only where someone cannot pay in full
        p = pbar.copy()
        dflt = np.zeros((P, n), bool)
        if M.clearing_on:
            short = (pbar > 0.0) & (e + due_in < pbar - _REL_TOL * np.maximum(1.0, pbar))
            idx = np.nonzero(short.any(axis=1))[0]
            if idx.size:
                p[idx], dflt[idx] = _clear(L[idx], e[idx], el[idx], pbar[idx], M.alpha, M.beta)
        with np.errstate(divide="ignore", invalid="ignore"):
            frac = np.where(pbar > 0.0, p / np.where(pbar > 0.0, pbar, 1.0), 1.0)
        receipts = np.einsum("pji,pj->pi", L, frac)

        # 5. settle
        for c in range(m):
            act = c_active[:, c]
            c_paid[:, c] += np.where(act, M.c_amount[c, t] * frac[:, M.c_payer[c]], 0.0)
        shortfall_now += np.where(alive, np.maximum(0.0, due_in - receipts), 0.0)
        pays = alive & ~dflt
        cash = np.where(alive, np.where(dflt, 0.0, np.maximum(0.0, e + receipts - p)), cash)
        debt = np.where(pays, debt - principal, debt)
        amortising = np.where(pays, amortising - scheduled, amortising)
        for k in range(nl):
            if t == M.l_maturity[k]:
                b, l_ = M.l_borrower[k], M.l_lender[k]
                done = (loan_out[:, k] > 0.0) & alive[:, b] & alive[:, l_] & ~dflt[:, b]
                loan_out[:, k] = np.where(done, 0.0, loan_out[:, k])
        for k in range(q):
            a, b = M.t_investor[k], M.t_investee[k]
            pk = pending[:, k]
            if not pk.any():
                continue
            paid = M.t_amount[k] * frac[:, a]
            t_done[:, k] |= pk
            buy = pk & (paid > 0.0) & (equity[:, b] > 0.0)
            share[buy, a, b] += paid[buy] / equity[buy, b]

        # 6. defaults and the cascade
        net_shortfall += shortfall_now
        new = alive & dflt
        kind[new] = LIQUIDITY
        for _wave in range(n + 1):
            held = np.einsum("pij,pj->pi", np.where(share > 0.0, share, 0.0), np.where(alive, equity, 0.0))
            lp = loan_position()
            book = (M.book0 + (cash - M.cash0) - (debt - M.debt0) + (held - stake0) + lp - impairment)
            solv = alive & ~new & M.solvency_on & (book < 0.0)
            new |= solv
            kind[solv] = SOLVENCY
            if not new.any():
                break
            # Elsinger-Lehar-Summer: fundamental if it defaults even with everything paid
            cash_cf = e + due_in - pbar + (net_shortfall - shortfall_now) + margin_lost
            fundamental = cash_cf < -1e-12 * np.maximum(1.0, pbar)
            debt_cf = np.where(dflt, debt - principal, debt)
            w = (M.book0 + (cash_cf - M.cash0) - (debt_cf - M.debt0) + (held - stake0) + lp + stake_lost)
            fundamental |= M.solvency_on & (w < 0.0)
            contagious[new] = ~fundamental[new]
            for i in range(n):
                hit = new[:, i]
                if not hit.any():
                    continue
                default_step[hit, i] = t
                rem = debt[:, i] - principal[:, i]
                li = np.where(dflt[:, i], (el[:, i] - el[:, i] * frac[:, i]) + (1.0 - M.recovery[i]) * rem,
                              (1.0 - M.recovery[i]) * np.maximum(debt[:, i] - cash[:, i], 0.0))
                loss[hit, i] = li[hit]
                for h in range(n):
                    if h != i:
                        g = hit & alive[:, h] & (share[:, h, i] > 0.0)
                        stake_lost[g, h] += share[g, h, i] * equity[g, i]
                for k in range(nl):
                    if M.l_borrower[k] == i:
                        g = hit & (loan_out[:, k] > 0.0)
                        lend = M.l_lender[k]
                        gl = g & alive[:, lend]
                        stake_lost[gl, lend] += loan_out[gl, k]
                        loan_out[g, k] = 0.0
                    elif M.l_lender[k] == i:
                        loan_out[hit, k] = 0.0
                alive[hit, i] = False
                cash[hit, i] = 0.0
                debt[hit, i] = 0.0
                for c in range(m):
                    a, b = M.c_payer[c], M.c_payee[c]
                    if a != i and b != i:
                        continue
                    g = hit & c_active[:, c]
                    c_active[g, c] = False
                    if a == i:
                        g2 = g & alive[:, b] & ~new[:, b]
                        backlog = M.c_remaining[c, t + 1]
                        keep = M.c_relet_share[c] * (1.0 - M.c_relet_discount[c])
                        impairment[g2, b] += M.c_capex[c] * backlog * (1.0 - keep)
                        c_relet[g2, c] = t + 1 + M.c_relet_delay[c]
            new[:] = False

    # statistics
    years = T // spy
    for i in range(n):
        d = default_step[:, i]
        out["default_at"][i] += np.bincount(d[d >= 0], minlength=T)[:T]
        for k in (LIQUIDITY, SOLVENCY):
            out["kind_count"][i, k] += int(((d >= 0) & (kind[:, i] == k)).sum())
        out["contagious"][i] += int(((d >= 0) & contagious[:, i]).sum())
    count = (default_step >= 0).sum(axis=1)
    out["cascade"] += np.bincount(count, minlength=n + 1)
    total = np.where(default_step >= 0, loss, 0.0).sum(axis=1)
    out["total_loss"] += [total.sum(), (total * total).sum()]
    need_y = need_rec[:, :years * spy].reshape(P, years, spy)
    gap_y = gap_rec[:, :years * spy].reshape(P, years, spy)
    out["need_year"] += (need_y > 0.0).any(axis=2).sum(axis=0)
    out["gap_year"] += (gap_y > 1e-12).any(axis=2).sum(axis=0)
    out["n_paths"] += P


def new_out(M):
    n, T = M.cash0.shape[0], M.n_steps
    years = T // M.steps_per_year
    return dict(default_at=np.zeros((n, T), np.int64), kind_count=np.zeros((n, 3), np.int64),
                contagious=np.zeros(n, np.int64), cascade=np.zeros(n + 1, np.int64), total_loss=np.zeros(2),
                need_year=np.zeros(years, np.int64), gap_year=np.zeros(years, np.int64), n_paths=0)


def simulate_numpy(M, paths, seed=0, shocks=None, tranche_u=None, block=8192):
    """Simulate `paths` paths; with `shocks` (paths, steps, width) and `tranche_u`
    (paths, q) given, on those, else on draws from Generator(Philox(seed))."""
    D = _derived(M)
    out = new_out(M)
    rng = np.random.Generator(np.random.Philox(seed))
    for start in range(0, paths, block):
        P = min(block, paths - start)
        if shocks is None:
            sh, tu = _draw(rng, P, M)
        else:
            sh, tu = shocks[start:start + P], tranche_u[start:start + P]
        _block(M, D, sh, tu, out)
    return out
