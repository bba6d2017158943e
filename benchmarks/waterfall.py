"""The issue-12 waterfall: run benchmarks/waterfall.toml and print each step's paired
difference (common random numbers) with its batch-means standard error.

    .venv/bin/python benchmarks/waterfall.py [--out results/waterfall] [--paths N]
    .venv/bin/python benchmarks/waterfall.py --batch benchmarks/build_parts.toml --against-first

Rows: OpenAI's PD by 2032, P(2+ defaults), Oracle's, CoreWeave's and SoftBank's PDs by 2032.
Columns: each variant's level, then each step's difference from the previous variant
(± its paired standard error). The step 0 -> 1 changes only the random stream (the
treasury's shock is drawn but unused), so it is not paired: its difference is noise.
--batch runs another batch file the same way; --against-first pairs every variant with the
first instead of with the one before it.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

from sim.studies.summary import paired_difference  # noqa: E402

METRICS = [("OpenAI PD by 2032", "pd:OpenAI"), ("P(2+ defaults)", "p2"), ("Oracle PD", "pd:Oracle"),
           ("CoreWeave PD", "pd:CoreWeave"), ("SoftBank PD", "pd:SoftBank"),
           ("mean loss to outside creditors, $B", "loss_mean")]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=os.path.join(ROOT, "results", "waterfall"))
    ap.add_argument("--paths", type=int, default=None)
    ap.add_argument("--batch", default=os.path.join(HERE, "waterfall.toml"))
    ap.add_argument("--against-first", action="store_true")
    a = ap.parse_args(argv)
    cmd = [sys.executable, "-c", "import sys; from sim.cli.main import main; sys.exit(main(sys.argv[1:]))",
           "batch", os.path.abspath(a.batch),
           "--out", a.out, "--quiet", "--no-report"]
    if a.paths:
        cmd += ["--paths", str(a.paths)]
    subprocess.run(cmd, check=True, cwd=ROOT)
    variants = sorted(d for d in glob.glob(os.path.join(a.out, "*")) if os.path.isdir(d)
                      and os.path.exists(os.path.join(d, "chunks.csv")))
    names = [os.path.basename(v) for v in variants]
    print("| metric | " + " | ".join(names) + " | " +
          " | ".join(f"{names[k]} - {names[0 if a.against_first else k - 1]}" for k in range(1, len(names))) + " |")
    print("|---" * (2 * len(names)) + "|")
    for label, metric in METRICS:
        levels, steps = [], []
        for k, v in enumerate(variants):
            ref = (variants[0] if a.against_first else variants[k - 1]) if k else v
            d = paired_difference(ref, v, metric)
            pct = metric != "loss_mean"
            levels.append(f"{100 * d['b']:.2f}%" if pct else f"{d['b']:.2f}")
            if k:
                steps.append(f"{100 * d['diff']:+.2f} ± {100 * d['se_diff']:.2f}pp" if pct
                             else f"{d['diff']:+.2f} ± {d['se_diff']:.2f}")
        print(f"| {label} | " + " | ".join(levels) + " | " + " | ".join(steps) + " |")
    # credit events are not in the per-chunk counts: levels only (no paired error)
    for v, name in zip(variants, names):
        with open(os.path.join(v, "results.json")) as f:
            r = json.load(f)
        i = r["entities"].index(r["lab"])
        ce = r.get("p_credit_event") or [0.0] * len(r["entities"])
        rs = r.get("p_restructured") or [0.0] * len(r["entities"])
        print(f"{name}: {r['lab']} P(credit event) {100 * ce[i]:.2f}%, P(distressed exchange) "
              f"{100 * rs[i]:.2f}%, P(hard default) {100 * r['pd'][i][-1]:.2f}%")
        if r.get("p_covenant_breach"):  # [build] on: covenants and new debt (levels only)
            cells = [f"{e} breach {100 * r['p_covenant_breach'][k]:.1f}% / covenant default "
                     f"{100 * r['p_covenant_default'][k]:.1f}% / new debt {r['new_debt_mean'][k]:.0f} $B"
                     for k, e in enumerate(r["entities"]) if r["new_debt_mean"][k] > 0 or r["p_covenant_breach"][k] > 0]
            print(f"{name}: " + "; ".join(cells))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
