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


MAX_INT_ARG = 10**12  # no count argument is larger (the run-size checks below say why)
SEED_MAX = 2**63 - 1


def _positive_int(text: str) -> int:
    """A count such as --paths: an integer or a float-style 1e6; at most 10^12 (finer limits follow)."""
    try:
        if "e" in text.lower() or "." in text:
            f = float(text)
            if not math.isfinite(f) or not f.is_integer():
                raise ValueError
            value = int(f)
        else:
            value = int(text.replace("_", ""))
    except (ValueError, OverflowError):
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {safe(text[:40])!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {safe(text[:40])!r}")
    if value > MAX_INT_ARG:
        raise argparse.ArgumentTypeError(f"{value:.3g} is above the largest accepted value ({MAX_INT_ARG:.0e})")
    return value


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer seed, got {safe(text[:40])!r}") from None
    if not 0 <= value <= SEED_MAX:
        raise argparse.ArgumentTypeError(f"expected a seed in [0, 2^63 - 1], got {safe(text[:40])!r}")
    return value


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors: `bubblesim run: error: ... (see bubblesim run --help)`, exit 2."""

    def error(self, message):
        print(f"{self.prog}: error: {safe(message)} (see {self.prog} --help)", file=sys.stderr)
        raise SystemExit(EXIT_BAD_INPUT)


def safe(text) -> str:
    """`text` for a terminal: control and format characters (ANSI escapes, newlines, bidi overrides)
    escaped, so a name from a file cannot fake or garble terminal output."""
    from sim.scenario.limits import printable

    return printable(str(text))


def slug(name: str, fallback: str = "scenario") -> str:
    """A file-name-safe folder name from a scenario name: letters, digits, '.', '_', '-' only,
    no leading dot, at most 80 characters, so it is one path component inside the results
    folder whatever the name holds ('../x', '/etc', '..'). Falls back to `fallback`'s slug."""
    import re

    s = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._-")[:80].rstrip("._-")
    if not s:
        s = re.sub(r"[^A-Za-z0-9._-]+", "_", fallback).strip("._-")[:80] or "scenario"
    return s


def default_out(scenario, suffix: str = "") -> str:
    """results/<slug of the scenario name><suffix>: always one folder inside results/."""
    import os

    stem = os.path.splitext(os.path.basename(scenario.path or ""))[0]
    return os.path.join("results", slug(scenario.name, stem) + suffix)


class OutputError(Exception):
    """An output folder cannot be written (reported before any simulation starts)."""


def check_out_dir(out: str, flag: str = "--out") -> None:
    """Make sure `out` is, or can become, a writable folder, before any work: OutputError if not.

    Nothing is created: a probe file is written (and removed at once) in `out` or, if it does not
    exist yet, in its nearest existing parent, which answers for permissions, read-only file
    systems and quotas alike, as root too."""
    import os
    import tempfile

    shown = safe(out)
    if os.path.exists(out) and not os.path.isdir(out):
        what = "a file" if os.path.isfile(out) else "not a folder (a device or special file)"
        raise OutputError(f"{flag} {shown} exists and is {what}; give a folder")
    probe = os.path.abspath(out)
    while not os.path.exists(probe):
        probe = os.path.dirname(probe)
    if not os.path.isdir(probe):
        raise OutputError(f"{flag} {shown} cannot be created: {safe(probe)} is not a folder")
    try:
        with tempfile.TemporaryFile(dir=probe, prefix=".write-probe-"):
            pass
    except OSError as err:
        raise OutputError(f"{flag} {shown} is not writable: {err.strerror or err}") from None



def out_dir_problem(out: str, flag: str = "--out") -> str | None:
    """Why `out` cannot be written (`check_out_dir`'s message), or None when it can."""
    try:
        check_out_dir(out, flag)
    except OutputError as err:
        return str(err)
    return None

# Run size: per chunk in flight, the statistics (histograms per step) and one path's buffers;
# time from about 1e-7 s per path, entity and step on one core of the 2-core reference machine.
MAX_PATHS = 1_000_000_000
MAX_CHUNKS = 200_000
SECONDS_PER_PATH_ENTITY_STEP = 1e-7


def _human_time(seconds: float) -> str:
    if seconds < 3600:
        return f"about {seconds / 60:,.0f} minutes"
    hours = seconds / 3600
    return f"about {hours:,.0f} hours" + (f" ({hours / 24:,.0f} days)" if hours >= 48 else "")


def _human_bytes(n: float) -> str:
    return f"{n / 1e9:,.1f} GB" if n >= 1e8 else f"{n / 1e6:,.1f} MB"


def run_size_problem(scenario, paths: int, chunk_size: int, threads: int | None) -> str | None:
    """None if a run of `paths` paths in chunks of `chunk_size` on `threads` threads is within the
    limits, else a one-line message with the estimated time and memory and what to change."""
    from sim.engine import kernel as K
    from sim.engine.runner import default_threads

    t = scenario.data["time"]
    n, steps = len(scenario.data["entity"]), t["steps_per_year"] * t["horizon_years"]
    threads = threads or default_threads()
    cores = default_threads()
    chunks = -(-paths // chunk_size)
    per_chunk = 8 * (steps * (K.REV_BINS + K.NEED_BINS + 2) + 2 * K.LOSS_BINS + n * steps + n * n + steps * (2 * n + 12))
    summaries = chunks * 8 * (5 + n * t["horizon_years"])
    secs = paths * n * steps * SECONDS_PER_PATH_ENTITY_STEP / max(1, min(threads, cores))
    if paths > MAX_PATHS:
        return (f"--paths {paths:,} is above the limit of {MAX_PATHS:,}: this scenario would take "
                f"{_human_time(secs)} on {min(threads, cores)} threads; use --target-se to stop at a precision")
    if chunks > MAX_CHUNKS:
        return (f"{paths:,} paths in chunks of {chunk_size:,} make {chunks:,} chunks, above the limit of "
                f"{MAX_CHUNKS:,} (their summaries alone take {_human_bytes(summaries)}); use a larger --chunk-size")
    max_threads = max(64, 4 * cores)
    if threads > max_threads:
        return (f"--threads {threads:,} is above the limit of {max_threads} (4 x the {cores} cores here): each thread "
                f"keeps up to 2 chunks in flight ({_human_bytes(per_chunk)} each, {_human_bytes(2 * threads * per_chunk)}"
                f" for a long run) for no speed-up")
    return None


def print_warnings(lines) -> None:
    """Warnings about unusual scenario values, one line each on stderr (never silenced by --quiet)."""
    for w in lines:
        text = w.one_line() if hasattr(w, "one_line") else safe(w)
        print(f"warning: {text}", file=sys.stderr)


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
