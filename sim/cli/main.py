"""The `bubblesim` command line: the parser of every command and the dispatch.

Data go to files, the summary and progress to the terminal (progress on stderr). Each
command group lives in its own module (run.py, batch.py, compare.py, report.py, sensitivity.py); this
is the only package of `sim` that knows argparse and exit codes.
"""

from __future__ import annotations

import argparse
import sys

from sim.cli.common import EXIT_BAD_INPUT, _Parser


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="bubblesim", description="Monte Carlo funding-gap and cascade-default risk "
                "in the circular financing of AI compute.")
    from sim._version import __version__

    p.add_argument("--version", action="version", version=f"bubblesim {__version__}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    from sim.cli.anchors import add_anchors_parser
    from sim.cli.batch import add_batch_parser
    from sim.cli.calibrate import add_calibrate_parser
    from sim.cli.compare import add_compare_parser
    from sim.cli.importance import add_importance_parser
    from sim.cli.report import add_report_parser
    from sim.cli.run import add_run_parsers
    from sim.cli.sensitivity import add_parsers as add_sensitivity_parsers

    add_run_parsers(sub)
    add_batch_parser(sub)
    add_compare_parser(sub)
    add_importance_parser(sub)
    add_report_parser(sub)
    add_sensitivity_parsers(sub)
    add_calibrate_parser(sub)
    add_anchors_parser(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from sim.scenario import ScenarioError

    try:
        if args.command == "batch":
            from sim.cli.batch import cmd_batch

            return cmd_batch(args)
        if args.command == "compare":
            from sim.cli.compare import cmd_compare

            return cmd_compare(args)
        if args.command == "importance":
            from sim.cli.importance import cmd_importance

            return cmd_importance(args)
        if args.command == "report":
            from sim.cli.report import cmd_report

            return cmd_report(args)
        if args.command == "calibrate":
            from sim.cli.calibrate import cmd_calibrate

            return cmd_calibrate(args)
        if args.command == "anchors":
            from sim.cli.anchors import cmd_anchors

            return cmd_anchors(args)
        if args.command in ("sensitivity", "reverse-stress"):
            from sim.cli.sensitivity import cmd_reverse_stress, cmd_sensitivity

            return (cmd_sensitivity if args.command == "sensitivity" else cmd_reverse_stress)(args)
        from sim.cli.run import cmd_run, cmd_validate, cmd_warmup

        return {"run": cmd_run, "validate": cmd_validate, "warmup": cmd_warmup}[args.command](args)
    except ScenarioError as err:
        print(f"bubblesim: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except (FileNotFoundError, IsADirectoryError, PermissionError) as err:
        from sim.cli.common import safe

        print(f"bubblesim: {safe(err)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("\nbubblesim: interrupted", file=sys.stderr)
        return 130



if __name__ == "__main__":
    sys.exit(main())
