"""`bubblesim batch`: the command line of sim.batch (parser and command)."""

from __future__ import annotations

import contextlib
import os
import sys


def add_batch_parser(sub) -> None:
    from sim.cli.common import _positive_int, _seed

    b = sub.add_parser("batch", help="run many scenarios and sweep variants; one summary table",
                       description="Run every scenario and [sweep] variant of the inputs (folders of *.toml, "
                       "scenario files, batch files with a [batch] table) with common random numbers; write a "
                       "folder per variant, summary.csv / summary.parquet and manifest.json. Re-running skips "
                       "variants already finished with the same inputs.")
    b.add_argument("inputs", nargs="+", help="scenario folders, scenario files or batch files")
    b.add_argument("--out", default="results", help="output folder (default: results)")
    b.add_argument("--paths", type=_positive_int, help="paths of every variant (default: batch file, else scenario)")
    b.add_argument("--seed", type=_seed, help="root seed of every variant (default: batch file, else scenarios')")
    b.add_argument("--chunk-size", type=_positive_int, default=None,
                   help="paths per chunk (part of the random layout; default 8192)")
    b.add_argument("--threads", type=_positive_int, default=None,
                   help="local worker threads (default: all cores; ignored with Dask)")
    b.add_argument("--force", action="store_true", help="recompute variants that are already done")
    from sim.cli.common import add_precision_options, add_set_option

    add_precision_options(b)
    add_set_option(b)
    b.add_argument("--xlsx", action="store_true",
                   help="also write summary.xlsx (the summary table and the manifest's variants, for committee "
                   "packs; needs openpyxl: pip install 'bubblesim[xlsx]')")
    b.add_argument("--list", action="store_true", help="list the variants and exit")
    b.add_argument("--max-variants", type=_positive_int, default=None,
                   help="largest number of variants accepted (default 1000; each is a full run)")
    b.add_argument("--no-report", action="store_true",
                   help="do not write the HTML report and figures (default: OUT/report/report.html)")
    g = b.add_mutually_exclusive_group()
    g.add_argument("--scheduler", metavar="ADDRESS", help="send chunks to this Dask scheduler (tcp://HOST:PORT)")
    g.add_argument("--workers", type=_positive_int, metavar="N",
                   help="start a local Dask cluster of N single-threaded worker processes")
    q = b.add_mutually_exclusive_group()
    q.add_argument("--quiet", action="store_true", help="no progress, log or summary")
    q.add_argument("--progress", action="store_true", help="progress bar even when stderr is not a terminal")


def cmd_batch(args) -> int:
    from sim.cli.common import (
        EXIT_BAD_INPUT,
        EXIT_OK,
        out_dir_problem,
        parse_sets,
        print_warnings,
        run_size_problem,
        safe,
    )
    from sim.studies.batch import BatchError, collect_variants, open_executor, run_batch
    from sim.studies.variants import DEFAULT_MAX_VARIANTS

    if args.xlsx:
        try:
            import openpyxl  # noqa: F401
        except ImportError:
            print("bubblesim: --xlsx needs openpyxl: pip install 'bubblesim[xlsx]' (or pip install openpyxl)",
                  file=sys.stderr)
            return EXIT_BAD_INPUT
    plan = collect_variants(args.inputs, paths=args.paths, seed=args.seed, chunk_size=args.chunk_size,
                            sets=parse_sets(args.sets), max_variants=args.max_variants or DEFAULT_MAX_VARIANTS)
    print_warnings(plan.warnings)
    if args.target_se is not None:
        if args.paths is not None:
            print("bubblesim: give --paths or --target-se, not both", file=sys.stderr)
            return EXIT_BAD_INPUT
        for v in plan.variants:
            v.target_se, v.max_paths = args.target_se, args.max_paths
    if args.list:
        for note in plan.notes:
            print(f"note: {safe(note)}", file=sys.stderr)
        for v in plan.variants:
            print(f"{safe(v.name)}\t{v.paths} paths\tseed {v.seed}\t{safe(v.folder)}")
        return EXIT_OK
    biggest = max(plan.variants, key=lambda v: v.max_paths or v.paths)
    problem = run_size_problem(biggest.base, biggest.max_paths or biggest.paths, plan.chunk_size, args.threads)
    problem = problem or out_dir_problem(args.out)
    if problem:
        print(f"bubblesim: {problem}", file=sys.stderr)
        return EXIT_BAD_INPUT

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    log_fn = None if args.quiet else log
    bar = not args.quiet and (args.progress or sys.stderr.isatty())
    with contextlib.ExitStack() as stack:
        try:
            executor, engine = stack.enter_context(open_executor(args.scheduler, args.workers, log=log_fn))
        except (BatchError, OSError, TimeoutError) as err:  # dask missing, cluster unreachable
            print(f"bubblesim: {err}", file=sys.stderr)
            return EXIT_BAD_INPUT
        threads = executor.nthreads if executor is not None else args.threads
        if engine is None:
            from sim.engine.runner import default_threads

            engine = {"kind": "local", "threads": threads or default_threads()}
        try:
            manifest = run_batch(plan, args.out, force=args.force, threads=threads, executor=executor,
                                 engine=engine, log=log_fn, bar=bar, argv=["bubblesim", *sys.argv[1:]],
                                 xlsx=args.xlsx)
        except BatchError as err:  # another batch holds the output folder
            print(f"bubblesim: {err}", file=sys.stderr)
            return EXIT_BAD_INPUT
    if not args.quiet:
        _print_overview(manifest, args.out)
    if args.no_report:
        return EXIT_OK
    from sim.report.html import build_report

    report_dir = os.path.join(args.out, "report")
    result = build_report(args.out, report_dir, log=log_fn or (lambda msg: None))
    if not args.quiet:
        print(f"report: {safe(result['html'])}")
    return 1 if result.get("errors") else EXIT_OK


def _print_overview(manifest: dict, out: str) -> None:
    import json

    from sim.cli.common import safe

    width = max(len(safe(v["name"])) for v in manifest["variants"])
    print(f"{'variant':<{width}}  {'P(2+ defaults), % [95%]':>26}  {'mean loss $B':>12}  status")
    for v in manifest["variants"]:
        with open(os.path.join(out, v["folder"], "results.json")) as fh:
            d = json.load(fh)
        ci = f"{100 * d['p2']:.2f} [{100 * d['p2_lo']:.2f},{100 * d['p2_hi']:.2f}]"
        print(f"{safe(v['name']):<{width}}  {ci:>26}  {d['loss_mean']:>12.1f}  {v['status']}")
    done = sum(v["status"] == "computed" for v in manifest["variants"])
    print(f"\n{len(manifest['variants'])} variants ({done} computed, {len(manifest['variants']) - done} skipped) "
          f"in {manifest['wall_seconds']:.1f}s -> {safe(out)}/ ({', '.join(manifest['summary'])}, manifest.json)")
