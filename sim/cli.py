"""The `bubblesim` command line.

Data go to files, the summary and progress to the terminal (progress on stderr). Exit
status: 0 success, 2 bad input (a scenario or argument error, reported in one message,
never a traceback), 1 anything unexpected.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

EXIT_OK, EXIT_FAILURE, EXIT_BAD_INPUT = 0, 1, 2


def _positive_int(text: str) -> int:
    try:
        value = int(float(text)) if "e" in text.lower() else int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer seed, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer seed, got {text!r}")
    return value


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse's default exit status is 2 already; keep one line
        self.print_usage(sys.stderr)
        print(f"bubblesim: error: {message}", file=sys.stderr)
        raise SystemExit(EXIT_BAD_INPUT)


def add_precision_options(parser) -> None:
    """--target-se / --max-paths, shared by `run` and `batch`."""
    from .sensitivity import positive_float

    parser.add_argument("--target-se", type=positive_float, default=None, metavar="X",
                        help="add chunks (doubling the run) until every default probability's standard error "
                        "is <= X, or --max-paths (instead of --paths)")
    parser.add_argument("--max-paths", type=_positive_int, default=None,
                        help="cap for --target-se (default: 0.25/X^2, which always suffices, at most 10M)")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="bubblesim", description="Monte Carlo funding-gap and cascade-default risk "
                "in the circular financing of AI compute.")
    from . import __version__

    p.add_argument("--version", action="version", version=f"bubblesim {__version__}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    r = sub.add_parser("run", help="simulate one scenario, print the summary, write results")
    r.add_argument("scenario", help="scenario TOML file")
    r.add_argument("--paths", type=_positive_int, help="Monte Carlo paths (default: the scenario's)")
    r.add_argument("--seed", type=_seed, help="root seed (default: the scenario's)")
    r.add_argument("--out", default=None, help="output folder (default: results/<scenario name>)")
    r.add_argument("--threads", type=_positive_int, default=None, help="worker threads (default: all cores)")
    r.add_argument("--chunk-size", type=_positive_int, default=None,
                   help="paths per chunk (part of the random layout; default 8192)")
    r.add_argument("--quiet", action="store_true", help="no progress and no summary table")
    add_precision_options(r)

    v = sub.add_parser("validate", help="check scenario files without running them")
    v.add_argument("scenarios", nargs="+", help="scenario TOML files")

    sub.add_parser("warmup", help="compile every numba kernel once (cached on disk)")

    from .batch_cli import add_batch_parser

    add_batch_parser(sub)

    from .report_cli import add_report_parser

    add_report_parser(sub)

    from .sensitivity import add_parsers as add_sensitivity_parsers

    add_sensitivity_parsers(sub)
    return p


def _progress_printer(label: str, enabled: bool):
    if not enabled:
        return None
    start = time.perf_counter()

    def show(done: int, total: int):
        elapsed = time.perf_counter() - start
        eta = elapsed / done * (total - done) if done else float("nan")
        print(f"\r{label}: {done:,}/{total:,} paths, {elapsed:.1f}s elapsed, ETA {eta:.1f}s",
              end="" if done < total else "\n", file=sys.stderr, flush=True)

    return show


def cmd_run(args) -> int:
    from .engine import DEFAULT_CHUNK_SIZE
    from .run import run
    from .scenario import load_scenario

    scenario = load_scenario(args.scenario)
    from .batch import has_sweep

    if has_sweep(args.scenario) and not args.quiet:
        print(f"note: {args.scenario} has a [sweep]: run simulates the file as written; "
              "`bubblesim batch` runs its variants", file=sys.stderr)
    out = args.out or os.path.join("results", scenario.name)
    show = _progress_printer(scenario.name, not args.quiet and sys.stderr.isatty())
    if args.target_se is None and args.max_paths is not None:
        print("bubblesim: --max-paths needs --target-se", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.target_se is not None:
        if args.paths is not None:
            print("bubblesim: give --paths or --target-se (with --max-paths), not both", file=sys.stderr)
            return EXIT_BAD_INPUT
        from .sensitivity import run_to_precision

        results = run_to_precision(scenario, args.target_se, max_paths=args.max_paths, seed=args.seed,
                                   chunk_size=args.chunk_size or DEFAULT_CHUNK_SIZE, threads=args.threads,
                                   progress=show)
    else:
        results = run(scenario, paths=args.paths, seed=args.seed, threads=args.threads,
                      chunk_size=args.chunk_size or DEFAULT_CHUNK_SIZE, progress=show)
    written = results.write(out)
    prec = results.run_info.get("precision")
    if prec and not args.quiet:
        print(f"target se {prec['target_se']:g}: {'met' if prec['met'] else 'NOT met'} with {prec['paths']:,} "
              f"paths (largest se {prec['max_se']:.5f}, at {prec['max_se_at']}; cap {prec['max_paths']:,} "
              f"paths)", file=sys.stderr)
    if not args.quiet:
        print(results.summary_table())
        print(f"\nwrote {len(written)} files to {out}/ ({results.run_info['wall_seconds']:.1f}s, "
              f"{results.run_info['threads']} threads)")
    return EXIT_OK


def cmd_validate(args) -> int:
    from .scenario import ScenarioError

    status = EXIT_OK
    for path in args.scenarios:
        try:
            from .batch import validate_path  # also batch files and [sweep] keys

            line = validate_path(path)
        except ScenarioError as err:
            print(f"INVALID {err}", file=sys.stderr)
            status = EXIT_BAD_INPUT
        else:
            print(f"ok      {path}: {line}")
    return status


def cmd_warmup(args) -> int:
    from .engine import warmup

    seconds = warmup()
    print(f"kernels ready ({seconds:.1f}s)")
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from .scenario import ScenarioError

    try:
        if args.command == "batch":
            from .batch_cli import cmd_batch

            return cmd_batch(args)
        if args.command == "report":
            from .report_cli import cmd_report

            return cmd_report(args)
        if args.command in ("sensitivity", "reverse-stress"):
            from .sensitivity import cmd_reverse_stress, cmd_sensitivity

            return (cmd_sensitivity if args.command == "sensitivity" else cmd_reverse_stress)(args)
        return {"run": cmd_run, "validate": cmd_validate, "warmup": cmd_warmup}[args.command](args)
    except ScenarioError as err:
        print(f"bubblesim: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except (FileNotFoundError, IsADirectoryError, PermissionError) as err:
        print(f"bubblesim: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("\nbubblesim: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
