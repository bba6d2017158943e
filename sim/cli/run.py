"""`bubblesim run`, `validate` and `warmup`: one scenario at a time."""

from __future__ import annotations

import math
import sys

from sim.cli.common import (
    EXIT_BAD_INPUT,
    EXIT_OK,
    OutputError,
    _positive_int,
    _progress_printer,
    _seed,
    add_precision_options,
    check_out_dir,
    default_out,
    print_warnings,
    run_size_problem,
    safe,
)


def add_run_parsers(sub) -> None:
    """`bubblesim run`, `bubblesim validate`, `bubblesim warmup`."""
    r = sub.add_parser("run", help="simulate one scenario, print the summary, write results")
    r.add_argument("scenario", help="scenario TOML file")
    r.add_argument("--paths", type=_positive_int, help="Monte Carlo paths (default: the scenario's)")
    r.add_argument("--seed", type=_seed, help="root seed (default: the scenario's)")
    r.add_argument("--out", default=None, help="output folder (default: results/<scenario name, made file-name "
                   "safe>)")
    r.add_argument("--threads", type=_positive_int, default=None, help="worker threads (default: all cores)")
    r.add_argument("--chunk-size", type=_positive_int, default=None,
                   help="paths per chunk (part of the random layout; default 8192)")
    r.add_argument("--quiet", action="store_true", help="no progress and no summary table")
    add_precision_options(r)

    v = sub.add_parser("validate", help="check scenario files without running them")
    v.add_argument("scenarios", nargs="+", help="scenario TOML files")
    v.add_argument("--max-variants", type=_positive_int, default=None,
                   help="largest [sweep] accepted (default 1000 variants)")

    sub.add_parser("warmup", help="compile every numba kernel once (cached on disk)")


def cmd_run(args) -> int:
    from sim.engine.api import run
    from sim.engine.runner import DEFAULT_CHUNK_SIZE
    from sim.scenario import load_scenario

    scenario = load_scenario(args.scenario)
    print_warnings(scenario.warnings)
    from sim.studies.variants import has_sweep

    if has_sweep(args.scenario) and not args.quiet:
        print(f"note: {safe(args.scenario)} has a [sweep]: run simulates the file as written; "
              "`bubblesim batch` runs its variants", file=sys.stderr)
    out = args.out or default_out(scenario)  # never a path taken raw from the scenario
    show = _progress_printer(safe(scenario.name), not args.quiet and sys.stderr.isatty())
    if args.target_se is None and args.max_paths is not None:
        print("bubblesim: --max-paths needs --target-se", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.target_se is not None and args.paths is not None:
        print("bubblesim: give --paths or --target-se (with --max-paths), not both", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.target_se is not None:  # the cap run_to_precision uses
        most = args.max_paths or min(10_000_000, max(1, math.ceil(0.25 / args.target_se ** 2)))
    else:
        most = args.paths or scenario.data["paths"]
    problem = run_size_problem(scenario, most, args.chunk_size or DEFAULT_CHUNK_SIZE, args.threads)
    if problem is None:
        try:
            check_out_dir(out)
        except OutputError as err:
            problem = str(err)
    if problem:
        print(f"bubblesim: {problem}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.target_se is not None:
        from sim.studies.precision import run_to_precision

        results = run_to_precision(scenario, args.target_se, max_paths=args.max_paths, seed=args.seed,
                                   chunk_size=args.chunk_size or DEFAULT_CHUNK_SIZE, threads=args.threads,
                                   progress=show)
    else:
        results = run(scenario, paths=args.paths, seed=args.seed, threads=args.threads,
                      chunk_size=args.chunk_size or DEFAULT_CHUNK_SIZE, progress=show)
    from sim.engine.results import check_finite

    check_finite(results, args.scenario)  # an error naming the field, never NaN written as null
    written = results.write(out)
    prec = results.run_info.get("precision")
    if prec and not args.quiet:
        print(f"target se {prec['target_se']:g}: {'met' if prec['met'] else 'NOT met'} with {prec['paths']:,} "
              f"paths (largest se {prec['max_se']:.5f}, at {prec['max_se_at']}; cap {prec['max_paths']:,} "
              f"paths)", file=sys.stderr)
    if not args.quiet:
        print("\n".join(safe(line) for line in results.summary_table().split("\n")))
        print(f"\nwrote {len(written)} files to {safe(out)}/ ({results.run_info['wall_seconds']:.1f}s, "
              f"{results.run_info['threads']} threads)")
    return EXIT_OK


def cmd_validate(args) -> int:
    from sim.scenario import ScenarioError
    from sim.studies.variants import DEFAULT_MAX_VARIANTS, validate_path  # also batch files and [sweep] keys

    status = EXIT_OK
    for path in args.scenarios:
        warnings: list[str] = []
        try:
            line = validate_path(path, max_variants=args.max_variants or DEFAULT_MAX_VARIANTS, warnings=warnings)
        except ScenarioError as err:
            print(f"INVALID {err}", file=sys.stderr)
            status = EXIT_BAD_INPUT
        else:
            print_warnings(warnings)
            print(f"ok      {safe(path)}: {safe(line)}")
    return status


def cmd_warmup(args) -> int:
    from sim.engine.runner import warmup

    seconds = warmup()
    print(f"kernels ready ({seconds:.1f}s)")
    return EXIT_OK
