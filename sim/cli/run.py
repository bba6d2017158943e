"""`bubblesim run`, `validate` and `warmup`: one scenario at a time."""

from __future__ import annotations

import math
import os
import sys

from sim.cli.common import (
    EXIT_BAD_INPUT,
    EXIT_OK,
    _positive_int,
    _progress_printer,
    _seed,
    add_precision_options,
    add_set_option,
    apply_sets,
    out_dir_problem,
    parse_sets,
    print_warnings,
    run_size_problem,
    safe,
    slug,
)


def add_run_parsers(sub) -> None:
    """`bubblesim run`, `bubblesim validate`, `bubblesim warmup`."""
    r = sub.add_parser("run", help="simulate one scenario, print the summary, write results")
    r.add_argument("scenario", help="scenario TOML file")
    r.add_argument("--paths", type=_positive_int, help="Monte Carlo paths (default: the scenario's)")
    r.add_argument("--seed", type=_seed, help="root seed (default: the scenario's)")
    r.add_argument("--out", default=None, help="output folder (default: runs/<scenario name>-<short hash of the "
                   "inputs, paths and seed>; never a batch's variant folder)")
    r.add_argument("--threads", type=_positive_int, default=None, help="worker threads (default: all cores)")
    r.add_argument("--chunk-size", type=_positive_int, default=None,
                   help="paths per chunk (part of the random layout; default 8192)")
    r.add_argument("--quiet", action="store_true", help="no progress and no summary table")
    r.add_argument("--rare", action="append", default=[], metavar="TARGET",
                   help="also estimate small probabilities by importance sampling towards TARGET (repeatable): "
                   "pd:ENTITY, p2 or revenue<K; writes rare.json and rare_pd_by_year.csv (sim.engine.rare)")
    r.add_argument("--rare-paths", type=_positive_int, default=None,
                   help="importance-sampling paths per --rare target (default: the run's paths)")
    r.add_argument("--rare-pilot-paths", type=_positive_int, default=None,
                   help="paths per cross-entropy pilot round (default 4000)")
    add_precision_options(r)
    add_set_option(r)

    v = sub.add_parser("validate", help="check scenario files without running them")
    v.add_argument("scenarios", nargs="+", help="scenario TOML files")
    add_set_option(v)
    v.add_argument("--max-variants", type=_positive_int, default=None,
                   help="largest [sweep] accepted (default 1000 variants)")

    sub.add_parser("warmup", help="compile every numba kernel once (cached on disk)")


def cmd_run(args) -> int:
    from sim.engine.api import run
    from sim.engine.runner import DEFAULT_CHUNK_SIZE
    from sim.scenario import load_scenario

    scenario = apply_sets(load_scenario(args.scenario), parse_sets(args.sets))
    print_warnings(scenario.warnings)
    from sim.studies.variants import has_sweep

    if has_sweep(args.scenario) and not args.quiet:
        print(f"note: {safe(args.scenario)} has a [sweep]: run simulates the file as written; "
              "`bubblesim batch` runs its variants", file=sys.stderr)
    out = args.out or default_run_folder(scenario, args)  # never a path taken raw from the scenario
    refusal = batch_folder_refusal(out)
    if refusal:
        print(f"bubblesim: {safe(refusal)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    rare_targets = _check_rare(args, scenario)
    if rare_targets is None:
        return EXIT_BAD_INPUT
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
    problem = problem or out_dir_problem(out)
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
    if rare_targets:
        written += _run_rare(args, scenario, results, out, rare_targets)
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


def _check_rare(args, scenario):
    """The --rare targets, checked (None: a bad one, reported)."""
    from sim.engine.rare import parse_target

    names = [e["name"] for e in scenario.data["entity"]]
    try:
        for t in args.rare:
            parse_target(t, names)
    except ValueError as err:
        print(f"bubblesim: --rare: {err}", file=sys.stderr)
        return None
    return list(args.rare)


def _run_rare(args, scenario, results, out, targets) -> list[str]:
    """Importance-sampling runs for each target; write rare.json / rare_pd_by_year.csv; print the small PDs."""
    from sim.engine.rare import DEFAULT_PILOT_PATHS, MIN_ESS, best_small_pds, rare_run, write_rare

    runs = []
    for t in targets:
        if not args.quiet:
            print(f"importance sampling towards {t} ...", file=sys.stderr)
        runs.append(rare_run(scenario, t, paths=args.rare_paths or results.paths, seed=results.seed,
                             threads=args.threads, pilot_paths=args.rare_pilot_paths or DEFAULT_PILOT_PATHS))
    files = write_rare(out, runs)
    if not args.quiet:
        for r in runs:
            print(f"IS {r['target']}: {r['paths']:,} paths, tilt from {len(r['pilot'])} pilot rounds, "
                  f"{r['wall_seconds']:.1f}s")
        hits = [round(p[-1] * results.paths) for p in results.pd]
        best = best_small_pds(runs, hits)
        for e, b in best.items():
            print(f"  {e}: PD {b['pd']:.3g} (se {b['se']:.2g}; 95% {b['lo']:.3g} to {b['hi']:.3g}) by importance "
                  f"sampling towards {b['target']}, where {results.paths:,} plain paths saw none")
        for i, e in enumerate(results.entities):
            if hits[i] == 0 and e not in best:
                seen = max((r["hits"][i][-1], r["ess_event"][i], r["target"]) for r in runs)
                why = (f"effective sample size {seen[1]:.1f} < {MIN_ESS:g} on {seen[0]:,} tilted defaults "
                       f"towards {seen[2]}" if seen[0] else "no default on any tilted path")
                print(f"  {e}: not resolved ({why})")
    return files


def default_run_folder(scenario, args) -> str:
    """runs/<slug of the scenario name>-<8 hex> (one folder inside runs/, whatever the name holds): the hash covers the resolved scenario (with --set), paths,
    seed, chunk size and precision target, so different runs never share a folder and a
    run never lands in a batch's results/<variant>/."""
    import hashlib
    import json

    key = json.dumps({"scenario": scenario.hash, "paths": args.paths, "seed": args.seed,
                      "chunk_size": args.chunk_size, "target_se": args.target_se, "max_paths": args.max_paths,
                      **({"rare": args.rare, "rare_paths": args.rare_paths} if getattr(args, "rare", None) else {})},
                     sort_keys=True)
    stem = os.path.splitext(os.path.basename(scenario.path or ""))[0]
    return os.path.join("runs", f"{slug(scenario.name, stem)}-{hashlib.sha256(key.encode()).hexdigest()[:8]}")


def batch_folder_refusal(out: str) -> str | None:
    """Why `run` must not write to `out` (None: it may): `out` is a batch's variant folder
    (it holds a completeness marker, or its parent a batch manifest) or a batch's output folder."""
    from sim.studies.variants import MARKER

    parent = os.path.dirname(os.path.abspath(out))
    if os.path.exists(os.path.join(out, MARKER)) or os.path.exists(os.path.join(parent, "manifest.json")):
        return (f"{out}/ is a variant folder of a batch (see {os.path.join(os.path.dirname(out) or '.', 'manifest.json')}"
                "); writing a run there would make the batch's results disagree with its manifest. Choose another "
                "--out, or leave it out (default runs/<scenario>-<hash>/)")
    if os.path.exists(os.path.join(out, "manifest.json")):
        return f"{out}/ is a batch's output folder (it holds manifest.json); choose another --out"
    return None


def cmd_validate(args) -> int:
    from sim.scenario import ScenarioError
    from sim.studies.variants import DEFAULT_MAX_VARIANTS, validate_path  # also batch files and [sweep] keys

    status = EXIT_OK
    sets = parse_sets(args.sets)
    for path in args.scenarios:
        warnings: list[str] = []
        try:
            from sim.studies.variants import (
                validate_path,  # also batch files and [sweep] keys
            )

            line = validate_path(path, sets=sets, max_variants=args.max_variants or DEFAULT_MAX_VARIANTS,
                                 warnings=warnings)
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
