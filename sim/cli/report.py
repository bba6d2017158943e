"""`bubblesim report`: the CLI side of sim.report (kept light: matplotlib loads only when
the command runs)."""

from __future__ import annotations

import os
import sys


def add_report_parser(sub) -> None:
    from sim.cli.common import _positive_int

    r = sub.add_parser("report", help="figures and a self-contained HTML report from results on disk",
                       description="Read every results.json under RESULTS_DIR (a run folder or a batch folder "
                       "with manifest.json; sensitivity*.json|csv and sweep*.json|csv are picked up too) and "
                       "write figures (PNG; with --hi-res also 300 dpi PNG + SVG) and report.html. Nothing is re-simulated.")
    r.add_argument("results_dir", metavar="RESULTS_DIR", help="a run folder or a batch output folder")
    r.add_argument("--out", default=None, help="report folder (default: RESULTS_DIR/report; "
                   "with --gallery-only: plots)")
    r.add_argument("--pdf", action="store_true", help="also print report.pdf with headless Chromium "
                   "(skipped with a message if none is installed)")
    r.add_argument("--gallery-only", action="store_true",
                   help="only the gallery figures (primary run + comparisons) and README.md, flat in --out "
                        "(regenerates the committed plots/: bubblesim report results/ --out plots/ --gallery-only)")
    r.add_argument("--hi-res", action="store_true",
                   help="also write every figure as PNG at 300 dpi and SVG (default: one PNG per figure, at the "
                        "resolution the report shows it; the gallery is always PNG 300 dpi + SVG)")
    r.add_argument("--workers", type=_positive_int, default=None,
                   help="processes drawing figures (default: one per available core; 1: no extra processes)")
    r.add_argument("--quiet", action="store_true", help="no progress messages")


def cmd_report(args) -> int:
    from sim.report.html import build_report

    if not os.path.exists(args.results_dir):
        print(f"bubblesim: no such results folder: {args.results_dir}", file=sys.stderr)
        return 2
    out = args.out or ("plots" if args.gallery_only else os.path.join(args.results_dir, "report"))

    def log(msg: str) -> None:
        if not args.quiet:
            print(msg, file=sys.stderr)

    result = build_report(args.results_dir, out, pdf=args.pdf, gallery_only=args.gallery_only, hi_res=args.hi_res,
                          workers=args.workers, log=log)
    if result["html"]:
        print(result["html"])
    else:
        print(f"wrote {len(result['figures'])} files to {out.rstrip('/')}/")
    if args.pdf and result.get("pdf"):
        print(result["pdf"])
    return 1 if result.get("errors") else 0
