"""`bubblesim importance SCENARIO`: the systemic-importance ranking (sim.studies.importance)."""

from __future__ import annotations

import os
import sys

from sim.cli.common import (
    EXIT_BAD_INPUT,
    EXIT_OK,
    _positive_int,
    _seed,
    add_set_option,
    apply_sets,
    out_dir_problem,
    parse_sets,
    print_warnings,
    safe,
    slug,
)


def add_importance_parser(sub) -> None:
    p = sub.add_parser("importance", help="rank entities by the harm their forced default does (common random "
                       "numbers), with DebtRank beside it",
                       description="Run the scenario once as is and once per entity with that entity forced to "
                       "default at --date, all on the same random numbers; print and write (importance.csv, "
                       "importance.json) the change in P(2+ defaults), in other entities' PDs and in losses, "
                       "with paired standard errors, and DebtRank on the starting network.")
    p.add_argument("scenario", help="scenario TOML file")
    p.add_argument("--paths", type=_positive_int, default=None, help="paths per run (default 20000)")
    p.add_argument("--seed", type=_seed, default=None, help="root seed (default: the scenario's)")
    p.add_argument("--date", type=float, default=None, metavar="YEAR",
                   help="decimal year of the forced default (default: the scenario's start year)")
    p.add_argument("--chunk-size", type=_positive_int, default=None,
                   help="paths per chunk (default 1000; use at least 10 chunks for the standard errors)")
    p.add_argument("--threads", type=_positive_int, default=None, help="worker threads (default: all cores)")
    p.add_argument("--out", default=None, help="output folder (default: runs/<scenario name>-importance)")
    p.add_argument("--quiet", action="store_true", help="no progress messages")
    add_set_option(p)


def cmd_importance(args) -> int:
    from sim.scenario import load_scenario
    from sim.studies.importance import (
        DEFAULT_CHUNK_SIZE,
        DEFAULT_PATHS,
        importance_text,
        systemic_importance,
        write_importance,
    )

    scenario = apply_sets(load_scenario(args.scenario), parse_sets(args.sets))
    print_warnings(scenario.warnings)
    stem = os.path.splitext(os.path.basename(scenario.path or ""))[0]
    out = args.out or os.path.join("runs", f"{slug(scenario.name, stem)}-importance")  # never a raw name
    problem = out_dir_problem(out)  # before the work, not after
    if problem:
        print(f"bubblesim: {problem}", file=sys.stderr)
        return EXIT_BAD_INPUT

    def progress(k, total, name):
        if not args.quiet:
            print(f"importance: run {k + 1}/{total} ({name})", file=sys.stderr)

    try:
        result = systemic_importance(scenario, paths=args.paths or DEFAULT_PATHS, seed=args.seed, date=args.date,
                                     chunk_size=args.chunk_size or DEFAULT_CHUNK_SIZE, threads=args.threads,
                                     progress=progress)
    except ValueError as err:
        print(f"bubblesim: {args.scenario}: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    files = write_importance(result, out)
    print("\n".join(safe(line) for line in importance_text(result).split("\n")))  # --quiet: no progress only
    print("wrote " + ", ".join(safe(f) for f in files))
    return EXIT_OK
