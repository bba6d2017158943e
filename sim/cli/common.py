"""What every command shares: exit codes, argument types, one-line errors, progress on stderr.

Exit status: 0 success, 2 bad input (a scenario or argument error, reported in one message,
never a traceback), 1 anything unexpected, 130 interrupted.
"""

from __future__ import annotations

import argparse
import math
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
    parser.add_argument("--target-se", type=positive_float, default=None, metavar="X",
                        help="add chunks (doubling the run) until every default probability's standard error "
                        "is <= X, or --max-paths (instead of --paths)")
    parser.add_argument("--max-paths", type=_positive_int, default=None,
                        help="cap for --target-se (default: 0.25/X^2, which always suffices, at most 10M)")


def _float(text: str) -> float:
    import argparse

    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(v):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return v


def positive_float(text: str) -> float:
    import argparse

    v = _float(text)
    if v <= 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}")
    return v


def _log(quiet: bool):
    if quiet:
        return None

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    return log


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


# ---------------------------------------------------------------------------------- --set
def add_set_option(parser) -> None:
    """--set KEY=VALUE (repeatable), shared by run, batch, validate and sensitivity."""
    parser.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                        help="override one scenario input by its dotted key, e.g. --set revenue.growth0=0.6 or "
                        "--set entity.Oracle.debt=120 (repeatable; VALUE is read as a TOML value, "
                        "else as a string)")


def parse_sets(items: list[str] | None) -> dict:
    """{dotted key: value} from --set KEY=VALUE strings, in order (a later key wins).

    VALUE is parsed as a TOML value (0.6, 120, true, "text", [1, 2], {2028 = 5.0}); anything
    that is not valid TOML is taken as a string (so --set name=my_case works unquoted)."""
    import tomllib

    from sim.scenario import ScenarioError

    out: dict = {}
    for item in items or []:
        key, eq, text = item.partition("=")
        key = key.strip()
        if not eq or not key:
            raise ScenarioError("--set", item, None, "expected KEY=VALUE, e.g. --set revenue.growth0=0.6")
        try:
            value = tomllib.loads(f"v = {text.strip()}")["v"]
        except tomllib.TOMLDecodeError:
            value = text.strip()
        out[key] = value
    return out


def apply_sets(scenario, sets: dict):
    """`scenario` with the --set overrides applied (errors name --set and the key)."""
    if not sets:
        return scenario
    from sim.scenario import ScenarioError

    try:
        return scenario.with_overrides(sets)
    except ScenarioError as err:
        errs = [ScenarioError("--set", e.key, None, e.message) if e.file == "<overrides>" else e
                for e in err.errors]
        raise ScenarioError(errs[0].file, errs[0].key, errs[0].line, errs[0].message, errs[1:]) from None
