"""The network map of one run: who owes and owns what, and how likely each is to default."""

from __future__ import annotations

import math

from matplotlib.lines import Line2D
from matplotlib.patches import FancyArrowPatch

from sim.plots.style import (
    EDGE_STYLE,
    RISK_CMAP,
    add_source,
    arr,
    money,
    new_figure,
    prob,
    source_text,
    styled,
    titled,
)

KIND_ORDER = {"lab": 0, "cloud": 1, "chipmaker": 2, "neocloud": 3, "investor": 4, "other": 5}
LABEL_SHARE = 0.04  # links worth at least this share of the largest get a dollar label


def network_layout(network: dict) -> dict[str, tuple[float, float]]:
    """Deterministic positions: the lab in the centre, the others on a circle ordered by
    kind then name (so the picture does not move between runs or with the numbers)."""
    lab = network.get("lab")
    names = [e["name"] for e in network["entities"]]
    kinds = {e["name"]: e.get("kind", "other") for e in network["entities"]}
    others = sorted((n for n in names if n != lab), key=lambda n: (KIND_ORDER.get(kinds[n], 9), n))
    pos = {}
    if lab in names:
        pos[lab] = (0.0, 0.0)
    m = len(others)
    for k, n in enumerate(others):
        a = math.pi / 2 - 2 * math.pi * k / max(m, 1)
        pos[n] = (round(math.cos(a), 12), round(math.sin(a), 12))
    return pos


def edge_bends(edges: list[dict]) -> list[float]:
    """The arc3 bend of each edge so that no two links between the same pair of nodes
    coincide: the links of a pair, both directions together, get distinct bends fanned out
    on both sides of the straight line (arc3 bends a reversed link to the other side, so a
    link B->A takes the negated bend of the A->B slot it fills)."""
    slots = [0.22, -0.22, 0.5, -0.5, 0.72, -0.72, 0.9, -0.9]
    used: dict = {}
    out = []
    for e in edges:
        a, b = e["source"], e["target"]
        key = (min(a, b), max(a, b))
        k = used.get(key, 0)
        used[key] = k + 1
        bend = slots[k % len(slots)] * (1 + 0.25 * (k // len(slots)))
        out.append(bend if a == key[0] else -bend)
    return out


def _arc_point(p0, p1, rad: float, t: float = 0.5):
    """The point at parameter t of matplotlib's arc3 curve from p0 to p1 (a quadratic Bezier
    whose control point is the chord's mid-point moved by rad x the chord, perpendicular), and
    the unit chord (the curve's direction at t = 0.5)."""
    (x0, y0), (x1, y1) = p0, p1
    dx, dy = x1 - x0, y1 - y0
    cx, cy = (x0 + x1) / 2 + rad * dy, (y0 + y1) / 2 - rad * dx
    a, b, c = (1 - t) ** 2, 2 * (1 - t) * t, t * t
    norm = math.hypot(dx, dy) or 1.0
    return (a * x0 + b * cx + c * x1, a * y0 + b * cy + c * y1), (dx / norm, dy / norm)


@styled
def network_map(res: dict, network: dict | None = None):
    """The circular web: nodes sized by balance sheet and shaded by PD by the horizon (a PD
    of 0 is pale grey); links with width by $ committed, colour and dash by kind, one
    arrowhead at the middle of each link (so heads do not pile up on the lab) and dollar
    labels on the larger links."""
    import matplotlib.colors as mcolors
    from matplotlib.cm import ScalarMappable
    from matplotlib.ticker import PercentFormatter

    network = network or res.get("network")
    if not network or not network.get("entities"):
        raise ValueError("results have no 'network' block (re-run with this bubblesim version)")
    fig = new_figure(figsize=(7.2, 7.2))
    gs = fig.add_gridspec(2, 1, height_ratios=[6, 1])
    ax = fig.add_subplot(gs[0])
    leg_ax = fig.add_subplot(gs[1])
    leg_ax.axis("off")
    ax.set_aspect("equal")
    ax.axis("off")
    pos = network_layout(network)
    names = list(res.get("entities") or [])
    pd_h = {n: float(arr(res["pd"], 2)[i, -1]) for i, n in enumerate(names)} if names else {}
    cmap = RISK_CMAP
    vmax = max(0.05, max(pd_h.values(), default=0.0))
    vmax = min(1.0, math.ceil(vmax * 10) / 10)
    norm = mcolors.Normalize(0.0, vmax)
    sizes = {e["name"]: max(float(e.get("size") or 0.0), 0.0) for e in network["entities"]}
    smax = max(sizes.values(), default=1.0) or 1.0
    # marker radius in points: area proportional to balance-sheet size (with a floor to stay visible)
    radius = {n: max(7.0, 30.0 * math.sqrt(s / smax)) for n, s in sizes.items()}

    edges = sorted((e for e in network.get("edges", []) if e["source"] in pos and e["target"] in pos),
                   key=lambda e: -float(e["amount"]))
    amax = max((float(e["amount"]) for e in edges), default=1.0) or 1.0

    def width(a):
        return 0.6 + 5.4 * math.sqrt(max(a, 0.0) / amax)

    rank: dict = {}
    for e, rad in zip(edges, edge_bends(edges)):
        pair = tuple(sorted((e["source"], e["target"])))
        k = rank[pair] = rank.get(pair, -1) + 1  # k-th link of this pair of nodes
        colour, ls = EDGE_STYLE.get(e["kind"], EDGE_STYLE["other"])
        lw = width(float(e["amount"]))
        p0, p1 = pos[e["source"]], pos[e["target"]]
        body = FancyArrowPatch(p0, p1, arrowstyle="-", lw=lw, color=colour, linestyle=ls, alpha=0.85,
                               capstyle="butt", connectionstyle=f"arc3,rad={rad}", shrinkA=radius[e["source"]] + 1,
                               shrinkB=radius[e["target"]] + 1, zorder=2)
        body._bubblesim_edge = e
        ax.add_patch(body)
        (mx, my), (ux, uy) = _arc_point(p0, p1, rad)
        head_w = 4.0 + 1.1 * lw
        eps = 0.012
        head = FancyArrowPatch((mx - eps * ux, my - eps * uy), (mx + eps * ux, my + eps * uy),
                               arrowstyle=f"-|>,head_length={0.9 * head_w / 5:.3f},head_width={0.55 * head_w / 5:.3f}",
                               mutation_scale=5.0, lw=0.6, color=colour, ec="white", zorder=2.5)
        head._bubblesim_head = e
        ax.add_patch(head)
        if float(e["amount"]) >= LABEL_SHARE * amax:
            # on the link, toward its outer end (the centre is crowded with the lab's links)
            # (the k-th link of a pair a little further in, so that its label clears the others')
            out = 0.72 - 0.13 * min(k, 3)
            t = out if e["source"] == network.get("lab") else (1 - out if e["target"] == network.get("lab") else 0.5)
            (lx, ly), _ = _arc_point(p0, p1, rad, t)
            ax.text(lx, ly, money(float(e["amount"])).replace("$", "\\$"), ha="center", va="center", fontsize=6.5,
                    color="#222222", zorder=5,
                    bbox={"boxstyle": "round,pad=0.12", "fc": "white", "ec": colour, "lw": 0.5, "alpha": 0.9})

    order = list(pos)
    xs = [pos[n][0] for n in order]
    ys = [pos[n][1] for n in order]
    colours = [cmap(norm(pd_h.get(n, 0.0))) for n in order]
    sc = ax.scatter(xs, ys, s=[(2 * radius[n]) ** 2 for n in order], c=colours, edgecolors="#1a1a1a",
                    linewidths=1.0, zorder=3, marker="o")
    sc._bubblesim_nodes = order
    for n in order:
        x, y = pos[n]
        label = f"{n}\nPD {prob(pd_h[n])}" if n in pd_h else n
        if (x, y) == (0.0, 0.0):
            ax.annotate(label, (x, y), xytext=(0, -(radius[n] + 4)), textcoords="offset points", ha="center",
                        va="top", fontsize=8, fontweight="bold", zorder=6,
                        bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": "none", "alpha": 0.85})
        else:
            ax.annotate(label, (x, y), xytext=(x * (radius[n] + 5), y * (radius[n] + 5)),
                        textcoords="offset points",
                        ha="center" if abs(x) < 0.3 else ("left" if x > 0 else "right"),
                        va="center" if abs(y) < 0.3 else ("bottom" if y > 0 else "top"), fontsize=8, zorder=6)
    ax.set_xlim(min(xs) - 0.62, max(xs) + 0.62)
    ax.set_ylim(min(ys) - 0.5, max(ys) + 0.5)

    cb = fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), ax=ax, shrink=0.45, pad=0.01, aspect=22)
    cb.set_label(f"Node shade: PD by the end of {res['years'][-1]}", fontsize=8)
    cb.ax.yaxis.set_major_formatter(PercentFormatter(xmax=1.0, decimals=0))
    kinds = sorted({e["kind"] for e in edges}, key=lambda k: list(EDGE_STYLE).index(k) if k in EDGE_STYLE else 99)
    handles = [Line2D([], [], color=EDGE_STYLE.get(k, EDGE_STYLE["other"])[0],
                      ls=EDGE_STYLE.get(k, EDGE_STYLE["other"])[1], lw=2.2, label=_kind_label(k)) for k in kinds]
    for a in _nice_amounts(amax):
        handles.append(Line2D([], [], color="#7F7F7F", lw=width(a), label=f"${a:,.0f}B committed"))
    leg_ax.legend(handles=handles, loc="center", ncol=2, fontsize=7.5, handlelength=3.0,
                  title="Links: the arrow on each runs payer to payee, investor to investee, holder to issuer,\n"
                        "lender to borrower; width and label: $B committed over the horizon",
                  title_fontsize=7.5)
    ax.set_title(titled("the financing web, who owes and owns what", res))
    ax.text(0.0, 1.0, "Node area: equity value + outside debt at the start",
            transform=ax.transAxes, fontsize=7.5, color="#333333", va="top")
    add_source(fig, source_text(res))
    return fig


def _kind_label(kind: str) -> str:
    return {"compute": "Compute contract", "chips": "Chip purchase contract", "investment": "Investment commitment",
            "stake": "Equity stake (at start value)", "loan": "Loan"}.get(kind, f"{kind.capitalize()} contract")


def _nice_amounts(amax: float) -> list[float]:
    if amax <= 0:
        return []
    top = 10 ** math.floor(math.log10(amax))
    for m in (5, 2, 1):
        if m * top <= amax:
            top = m * top
            break
    return [v for v in (top / 10, top) if v > 0]

