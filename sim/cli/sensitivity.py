"""`bubblesim sensitivity` and `bubblesim reverse-stress`."""

from __future__ import annotations

import os
import sys

from sim.cli.common import _float, _log, default_out, out_dir_problem, print_warnings
from sim.engine.runner import DEFAULT_CHUNK_SIZE
from sim.studies.metrics import (
    METRIC_FORMS,
    SensitivityError,
)
from sim.studies.reverse_stress import (
    reverse_stress,
    reverse_stress_text,
    write_reverse_stress,
)
from sim.studies.sensitivity import (
    DEFAULT_PARAMS,
    DEFAULT_PATHS,
    sensitivity,
    sensitivity_table,
    write_sensitivity,
)


# ---------------------------------------------------------------------------------- command line
def add_parsers(sub) -> None:
    """`bubblesim sensitivity` and `bubblesim reverse-stress`."""
    from sim.cli.common import _positive_int, _seed, positive_float

    metric_help = "metric: " + "; ".join(f"{k} = {v}" for k, v in METRIC_FORMS.items())
    s = sub.add_parser("sensitivity", help="one-at-a-time (tornado) sensitivity of a metric",
                       description="Run the scenario with each parameter at x(1-step) and x(1+step) (common "
                       "random numbers) and rank the parameters by the swing of a metric. Default parameters: "
                       + ", ".join(DEFAULT_PARAMS) + " (those the scenario sets to non-zero values).")
    s.add_argument("scenario", help="scenario TOML file")
    s.add_argument("--param", action="append", default=[], metavar="KEY[=LOW,HIGH]",
                   help="also vary this dotted key (e.g. entity.Oracle.cash); =LOW,HIGH gives the values "
                   "instead of the relative step (repeatable)")
    s.add_argument("--no-defaults", action="store_true", help="vary only the --param keys")
    s.add_argument("--step", type=_float, default=0.2, help="relative step, in (0, 1) (default 0.2: +/-20%%)")
    s.add_argument("--metric", default="p2", help=metric_help.replace("%", "%%") + " (default p2)")
    s.add_argument("--paths", type=_positive_int, help=f"paths per run (default {DEFAULT_PATHS:,})")
    s.add_argument("--target-se", type=positive_float, default=None,
                   help="choose the paths per run by running the base scenario until every default "
                   "probability's standard error is <= this")
    s.add_argument("--max-paths", type=_positive_int, default=None, help="cap for --target-se")
    s.add_argument("--seed", type=_seed, help="root seed (default: the scenario's)")
    s.add_argument("--chunk-size", type=_positive_int, default=None,
                   help="paths per chunk (default 8192, or paths/20 when that gives fewer than 20 chunks; "
                   "with --target-se: the cap's paths/20)")
    s.add_argument("--threads", type=_positive_int, default=None, help="worker threads (default: all cores)")
    s.add_argument("--out", default=None, help="output folder (default: results/<scenario>-sensitivity)")
    s.add_argument("--quiet", action="store_true", help="no progress and no table")
    from sim.cli.common import add_set_option

    add_set_option(s)

    r = sub.add_parser("reverse-stress", help="find the parameter value at which a metric crosses a target",
                       description="Root-find (ITP, on common random numbers) the value of one parameter at "
                       "which the metric crosses the target, with an interval from the Monte Carlo error.")
    r.add_argument("scenario", help="scenario TOML file")
    r.add_argument("--param", required=True, metavar="KEY", help="dotted scenario key, e.g. revenue.growth0")
    r.add_argument("--metric", default="p2", help=metric_help.replace("%", "%%") + " (default p2)")
    r.add_argument("--target", required=True, type=_float, help="target value of the metric (e.g. 0.05)")
    r.add_argument("--lo", type=_float, default=None, help="low end of the search range (default: value x 0.5)")
    r.add_argument("--hi", type=_float, default=None, help="high end of the search range (default: value x 1.5)")
    r.add_argument("--tol", type=positive_float, default=None,
                   help="tolerance on the parameter (default (hi - lo)/1000)")
    r.add_argument("--paths", type=_positive_int, help=f"paths per run (default {DEFAULT_PATHS:,})")
    r.add_argument("--seed", type=_seed, help="root seed (default: the scenario's)")
    r.add_argument("--chunk-size", type=_positive_int, default=None, help="paths per chunk (default 8192)")
    r.add_argument("--threads", type=_positive_int, default=None, help="worker threads (default: all cores)")
    r.add_argument("--out", default=None, help="output folder (default: results/<scenario>-reverse-stress)")
    r.add_argument("--quiet", action="store_true", help="no progress and no summary")


def cmd_sensitivity(args) -> int:
    from sim.cli.common import EXIT_BAD_INPUT, EXIT_OK, apply_sets, parse_sets
    from sim.scenario import load_scenario

    scenario = apply_sets(load_scenario(args.scenario), parse_sets(args.sets))
    print_warnings(scenario.warnings)
    out = args.out or default_out(scenario, "-sensitivity")  # never a path taken raw from the scenario
    problem = out_dir_problem(out)  # before the work, not after
    if problem:
        print(f"bubblesim: {problem}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.max_paths is not None and args.target_se is None:
        print("bubblesim: --max-paths needs --target-se", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.target_se is not None and args.paths is not None:
        print("bubblesim: give --paths or --target-se, not both", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        table = sensitivity(scenario, args.param, step=args.step, metric=args.metric, paths=args.paths,
                            seed=args.seed, chunk_size=args.chunk_size, threads=args.threads,
                            defaults=not args.no_defaults, target_se=args.target_se, max_paths=args.max_paths,
                            log=_log(args.quiet))
    except SensitivityError as err:
        print(f"bubblesim: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    written = write_sensitivity(table, out)
    if not args.quiet:
        print(sensitivity_table(table))
        print(f"\nwrote {', '.join(os.path.basename(w) for w in written)} to {out}/ "
              f"({table['runs']} runs, {table['wall_seconds']:.1f}s)")
    return EXIT_OK


def cmd_reverse_stress(args) -> int:
    from sim.cli.common import EXIT_BAD_INPUT, EXIT_OK
    from sim.scenario import load_scenario

    scenario = load_scenario(args.scenario)
    print_warnings(scenario.warnings)
    out = args.out or default_out(scenario, "-reverse-stress")  # never a path taken raw from the scenario
    problem = out_dir_problem(out)  # before the work, not after
    if problem:
        print(f"bubblesim: {problem}", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        res = reverse_stress(scenario, args.param, args.target, metric=args.metric, lo=args.lo, hi=args.hi,
                             tol=args.tol, paths=args.paths, seed=args.seed,
                             chunk_size=args.chunk_size or DEFAULT_CHUNK_SIZE, threads=args.threads,
                             log=_log(args.quiet))
    except SensitivityError as err:
        print(f"bubblesim: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    path = write_reverse_stress(res, out)
    if not args.quiet:
        print(reverse_stress_text(res))
        print(f"\nwrote {os.path.basename(path)} to {out}/")
    return EXIT_OK
