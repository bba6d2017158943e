"""`bubblesim compare A B`: paired differences of two runs on common random numbers, and their inputs' diff."""

from __future__ import annotations

import sys


def add_compare_parser(sub) -> None:
    c = sub.add_parser("compare", help="paired differences B - A of two runs (common random numbers)",
                       description="Compare two run folders (from `bubblesim run` or a batch's variant folders) "
                       "that share seed and chunk layout: B - A of every headline metric (p2, lab_pd, pd:ENTITY, "
                       "loss_mean, loss_var99, loss_es99) with paired standard errors, then the resolved inputs "
                       "that differ. Exit 2 when the runs cannot be paired.")
    c.add_argument("a", help="run folder A (the reference)")
    c.add_argument("b", help="run folder B")
    c.add_argument("--metric", action="append", default=[], metavar="NAME",
                   help="only these metrics (repeatable): p2, lab_pd, pd:ENTITY, pd:ENTITY@YEAR, loss_mean, "
                   "loss_var99, loss_es99")
    c.add_argument("--json", dest="json_out", default=None, metavar="FILE",
                   help="also write the comparison as JSON to FILE")


def cmd_compare(args) -> int:
    import json

    from sim.cli.common import EXIT_BAD_INPUT, EXIT_OK
    from sim.io import atomic_write
    from sim.studies.compare import CompareError, compare_runs, compare_text

    try:
        cmp = compare_runs(args.a, args.b, args.metric or None)
    except CompareError as err:
        print(f"bubblesim: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(compare_text(cmp))
    if args.json_out:
        def clean(x):
            if isinstance(x, float) and x != x:
                return None
            if isinstance(x, dict):
                return {k: clean(v) for k, v in x.items()}
            if isinstance(x, (list, tuple)):
                return [clean(v) for v in x]
            return x

        atomic_write(args.json_out, json.dumps(clean(cmp), indent=1, default=str))
    return EXIT_OK
