"""`bubblesim anchors`: the model against published figures and market prices (the
table of sim.studies.anchors, printed; optionally written as JSON)."""

from __future__ import annotations

import sys


def add_anchors_parser(sub) -> None:
    p = sub.add_parser("anchors", help="compare the model with published figures and market prices",
                       description="Run base, management_case and hsbc (twice: as shipped and with the "
                       "raising limit lifted to measure the need) and print the anchors table.")
    p.add_argument("--paths", type=int, default=None, help="paths per scenario (default: each scenario's)")
    p.add_argument("--seed", type=int, default=None, help="root seed (default: each scenario's)")
    p.add_argument("--threads", type=int, default=None, help="worker threads (default: all cores)")
    p.add_argument("--scenarios", default=None, help="folder with the shipped scenarios (default: scenarios/)")
    p.add_argument("--json", default=None, help="also write the table to this JSON file")


def cmd_anchors(args) -> int:
    import dataclasses
    import json

    from sim.io import atomic_write
    from sim.studies.anchors import SCENARIOS, format_anchors, run_anchors

    if args.paths is not None and args.paths < 1:
        print("bubblesim: anchors: --paths must be >= 1", file=sys.stderr)
        return 2
    rep = run_anchors(paths=args.paths, seed=args.seed, threads=args.threads,
                      scenario_dir=args.scenarios or SCENARIOS,
                      progress=lambda key: print(f"running {key} ...", file=sys.stderr))
    print(format_anchors(rep))
    if args.json:
        def clean(x):
            if isinstance(x, float):
                return x if x == x and abs(x) != float("inf") else None
            if isinstance(x, (list, tuple)):
                return [clean(v) for v in x]
            if isinstance(x, dict):
                return {k: clean(v) for k, v in x.items()}
            return float(x) if hasattr(x, "dtype") else x

        atomic_write(args.json, json.dumps(clean(dataclasses.asdict(rep)), indent=1, allow_nan=False))
        print(f"wrote {args.json}", file=sys.stderr)
    return 0
