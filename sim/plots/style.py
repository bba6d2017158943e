"""Shared look of every bubblesim figure: the packaged style, the palette, the source line
and saving. Object-oriented matplotlib only (`matplotlib.figure.Figure`), never pyplot."""

from __future__ import annotations

import datetime as _dt
import functools
import math
import os
from typing import Callable

import matplotlib
import matplotlib.colors as mcolors
import matplotlib.style
import numpy as np
from matplotlib.figure import Figure

STYLE_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bubblesim.mplstyle")

# Okabe & Ito (2008), "Color Universal Design": safe for the common colour-vision deficiencies.
OKABE_ITO = {
    "black": "#000000", "orange": "#E69F00", "sky": "#56B4E9", "green": "#009E73",
    "yellow": "#F0E442", "blue": "#0072B2", "vermillion": "#D55E00", "purple": "#CC79A7",
}
# series colours: Okabe-Ito without its yellow (too faint for lines on white), grey instead
SERIES = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#56B4E9", "#CC79A7", "#000000", "#8C8C8C"]
LINESTYLES = ["-", "--", "-.", ":", (0, (5, 1, 1, 1)), (0, (1, 1)), (0, (8, 2)), (0, (3, 2, 1, 2, 1, 2))]
MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*"]
HATCHES = ["", "///", "...", "xxx", "\\\\\\", "ooo", "---", "+++"]
SEQUENTIAL = "cividis"  # monotone in lightness: readable in grey and for colour-blind readers
# probabilities of default: a PD of 0 is a pale neutral grey (not a warning colour), rising to
# dark blue; monotone in lightness, so it reads in grey and for colour-blind readers
RISK_CMAP = mcolors.LinearSegmentedColormap.from_list(
    "bubblesim_risk", ["#EDEDED", "#C6DBEF", "#6BAED6", "#2171B5", "#08306B"])
FAN_COLOUR = "#0072B2"
SPEND_COLOUR = "#D55E00"
EDGE_STYLE = {  # network map: colour and dash per link kind (dash keeps kinds apart in grey)
    "compute": ("#0072B2", "-"),
    "chips": ("#E69F00", "-"),
    "investment": ("#009E73", "--"),
    "stake": ("#CC79A7", ":"),
    "loan": ("#D55E00", "-."),
    "other": ("#7F7F7F", (0, (5, 1, 1, 1))),
}
STEP_NAMES = {1: "year", 2: "half-year", 4: "quarter", 12: "month", 52: "week"}

SOURCE_FONTSIZE = 6.5


def styled(func: Callable) -> Callable:
    """Build the figure inside the packaged style (rcParams are read when artists are made)."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        with matplotlib.style.context(STYLE_PATH):
            return func(*args, **kwargs)

    return wrapper


def new_figure(figsize=None, **kwargs) -> Figure:
    """A bare Figure (no pyplot), laid out with constrained layout from the style."""
    return Figure(figsize=figsize, layout="constrained", **kwargs)


def fan_shades(n_bands: int, colour: str = FAN_COLOUR) -> list:
    """Band colours from the outermost (lightest) to the innermost (darkest): the colour mixed
    with white, so the ordering is a lightness ordering that survives grey printing."""
    base = np.array(mcolors.to_rgb(colour))
    out = []
    for k in range(n_bands):
        w = 0.22 + 0.78 * (k + 1) / n_bands  # share of the base colour
        out.append(tuple(1 - w * (1 - base)))
    return out


def arr(x, ndim: int | None = None) -> np.ndarray:
    """A float array from JSON data (None -> NaN)."""
    a = np.array(x if x is not None else [], dtype=float)
    if ndim is not None and a.ndim != ndim:
        raise ValueError(f"expected a {ndim}-d array, found shape {a.shape}")
    return a


def finite(x) -> bool:
    return x is not None and isinstance(x, (int, float)) and math.isfinite(x)


def run_date(res: dict) -> str:
    """Date of the run: an explicit `created` if recorded, else the results file's date
    (set by the loader as `_date`), else today."""
    for key in ("created", "date", "_date"):
        v = res.get(key) or (res.get("run_info") or {}).get(key)
        if v:
            return str(v)[:10]
    return _dt.date.today().isoformat()


def source_text(runs, names: list[str] | None = None) -> str:
    """'Source: bubblesim 0.1.0 simulation; scenario base (ab12cd34ef56), seed 1, 100,000 paths; 2026-01-01'
    for one results dict, or a compact version for several."""
    if isinstance(runs, dict):
        runs = [runs]
    runs = [r for r in runs if r]
    if not runs:
        return f"Source: bubblesim; {_dt.date.today().isoformat()}"
    version = runs[0].get("bubblesim_version") or _package_version()
    date = max(run_date(r) for r in runs)
    if len(runs) == 1:
        r = runs[0]
        h = (r.get("scenario_hash") or "")[:12]
        scen = f"scenario {r.get('scenario', '?')}" + (f" ({h})" if h else "")
        return (f"Source: bubblesim {version} Monte Carlo; {scen}, seed {r.get('seed', '?')}, "
                f"{int(r.get('paths') or 0):,} paths; {date}")
    names = ", ".join(str(n) for n in names) if names else ", ".join(dict.fromkeys(str(r.get("scenario", "?"))
                                                                                   for r in runs))
    seeds = sorted({r.get("seed") for r in runs}, key=str)
    seed_txt = f"seed {seeds[0]}" if len(seeds) == 1 else "seeds " + ", ".join(str(s) for s in seeds)
    paths = sorted({int(r.get("paths") or 0) for r in runs})
    path_txt = f"{paths[0]:,} paths each" if len(paths) == 1 else f"{paths[0]:,}-{paths[-1]:,} paths"
    return f"Source: bubblesim {version} Monte Carlo; scenarios {names}; {seed_txt}; {path_txt}; {date}"


def _package_version() -> str:
    from sim._version import __version__

    return __version__


def add_source(fig: Figure, text: str) -> None:
    """The small-print source line at the bottom left of the figure, wrapped to the figure's
    width (never cut)."""
    import textwrap

    fig.get_layout_engine().set(h_pad=0.06)
    width = max(60, int(fig.get_figwidth() * 72 / (SOURCE_FONTSIZE * 0.56)) - 4)  # characters per line
    drawn = textwrap.fill(text, width)
    fig.supxlabel(drawn, x=0.01, ha="left", fontsize=SOURCE_FONTSIZE, color="#555555", fontweight="normal",
                  multialignment="left")
    fig._bubblesim_source = drawn  # for tests


def run_label(res: dict) -> str:
    """The name a run goes by in titles: its batch variant's name, else its scenario's."""
    return str((res.get("_variant") or {}).get("name") or res.get("scenario") or "run")


def titled(text: str, res: dict, width: int = 66) -> str:
    """A figure title that names the scenario: 'base: <text>' (wrapped at `width` characters,
    so a long scenario name does not push it off the figure)."""
    import textwrap

    return textwrap.fill(f"{run_label(res)}: {text}", width)


def figure_title(fig: Figure, res: dict, text: str) -> None:
    """The title of a figure with several panels, naming the scenario (left, above the panels)."""
    fig.suptitle(titled(text, res), x=0.01, ha="left", fontsize=11, fontweight="bold")


def percent_axis(ax, axis: str = "y", decimals: int | None = None, top: float | None = None) -> None:
    """Probability axis shown in percent, each tick with the decimals it needs (2.5%, not a
    rounded 2%; 10%, not 10.0%). `decimals` fixes them instead; `top` is accepted for
    compatibility and no longer needed."""
    from matplotlib.ticker import FuncFormatter, PercentFormatter

    if decimals is not None:
        fmt = PercentFormatter(xmax=1.0, decimals=decimals)
    else:
        fmt = FuncFormatter(lambda v, _: percent_tick(v))
    (ax.yaxis if axis == "y" else ax.xaxis).set_major_formatter(fmt)


def percent_tick(v: float) -> str:
    """A tick value in percent without rounding it away or trailing zeros: 0.025 -> '2.5%'."""
    x = 100 * v
    for d in range(0, 6):
        if abs(round(x, d) - x) < 1e-9 * max(1.0, abs(x)):
            return f"{x:.{d}f}%"
    return f"{x:.6g}%"


def pct(p, digits: int = 1) -> str:
    if p is None or not math.isfinite(p):
        return "n/a"
    return f"{100 * p:.{digits}f}%"


def prob_decimals(*ps) -> int:
    """Decimals of a percentage that keep two significant digits of the smallest positive
    value below 0.1% (so 0.0002 reads 0.020%, not 0.0%), one decimal otherwise."""
    small = [p for p in ps if p is not None and math.isfinite(p) and 0 < p < 0.001]
    if not small:
        return 1
    return min(6, 1 - math.floor(math.log10(100 * min(small))))


def prob(p, *others) -> str:
    """A probability in percent that never hides a small one: '19.1%', '0.021%', '0%' (none).
    `others` (e.g. the ends of its interval) share the decimals."""
    if p is None or not math.isfinite(p):
        return "n/a"
    if p == 0:
        return "0%"
    return f"{100 * p:.{prob_decimals(p, *others)}f}%"


def prob_ci(p, lo, hi) -> str:
    """'0.021% [0.014%, 0.030%]': the estimate and its interval with the same decimals."""
    if p is None or not math.isfinite(p):
        return "n/a"
    d = prob_decimals(p, lo, hi)
    f = (lambda v: "0%" if v == 0 else f"{100 * v:.{d}f}%")
    if lo is None or hi is None or not (math.isfinite(lo) and math.isfinite(hi)):
        return f(p)
    return f"{f(p)} [{f(lo)}, {f(hi)}]"


def money(x) -> str:
    if x is None or not math.isfinite(x):
        return "n/a"
    if 0 < abs(x) < 0.005:
        return "<$0.01B" if x > 0 else ">-$0.01B"
    if abs(x) >= 100:
        return f"${x:,.0f}B"
    if abs(x) >= 10:
        return f"${x:,.1f}B"
    return f"${x:,.2f}B"


def step_name(steps_per_year: int) -> str:
    return STEP_NAMES.get(int(steps_per_year), "step")


def text_colour_on(rgba) -> str:
    """Black or white text for a cell colour, by its relative luminance."""
    r, g, b = mcolors.to_rgb(rgba)
    lum = 0.2126 * r + 0.7152 * g + 0.0722 * b
    return "black" if lum > 0.45 else "white"


def _metadata(fmt: str):
    return {"png": {"Software": f"bubblesim {_package_version()} (matplotlib)"},
            "svg": {"Date": None, "Creator": f"bubblesim {_package_version()} (matplotlib)"},
            "pdf": {"CreationDate": None, "ModDate": None}}.get(fmt)


def png_bytes(fig: Figure, dpi: float) -> bytes:
    """The figure as PNG bytes at `dpi` (no timestamp: the same results give the same bytes)."""
    import io

    buf = io.BytesIO()
    with matplotlib.style.context(STYLE_PATH):
        fig.savefig(buf, format="png", dpi=dpi, metadata=_metadata("png"))
    return buf.getvalue()


def save_figure(fig: Figure, out_dir: str, name: str, formats=("png", "svg"), dpi: int = 300) -> list[str]:
    """Write `name.png` (300 dpi) and `name.svg` to out_dir; return the paths.

    Metadata carry no timestamp, so the same results give the same files."""
    os.makedirs(out_dir, exist_ok=True)
    paths = []
    with matplotlib.style.context(STYLE_PATH):
        for fmt in formats:
            path = os.path.join(out_dir, f"{name}.{fmt}")
            tmp = path + ".tmp"
            fig.savefig(tmp, format=fmt, dpi=dpi, metadata=_metadata(fmt))
            os.replace(tmp, path)
            paths.append(path)
    return paths
