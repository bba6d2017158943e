"""`bubblesim calibrate SCENARIO [--write]`: fit the revenue process to the scenario's
targets (scenarios/targets/calibration.toml), print the fit and its residuals, and
optionally write the fitted values into the scenario file."""

from __future__ import annotations

import sys

from sim.cli.common import EXIT_BAD_INPUT


def add_calibrate_parser(sub) -> None:
    p = sub.add_parser("calibrate", help="fit the revenue process to the scenario's published targets",
                       description="Fit [revenue] parameters to the target median path and dispersion "
                       "in scenarios/targets/calibration.toml (least squares on log residuals).")
    p.add_argument("scenario", help="scenario TOML file")
    p.add_argument("--targets", default=None, help="targets file (default: scenarios/targets/calibration.toml)")
    p.add_argument("--write", action="store_true", help="write the fitted values into the scenario file")


def format_fit(fit) -> str:
    lines = [f"{fit.scenario}: fitted {', '.join(fit.fitted)} ({'converged' if fit.success else 'NOT converged'}"
             f": {fit.message})", ""]
    lines.append(f"{'parameter':<12}{'fit':>12}{'written':>10}")
    for p in fit.fitted:
        lines.append(f"{p:<12}{fit.raw[p]:>12.5f}{fit.params[p]:>10g}")
    lines.append("")
    lines.append(f"{'target':<20}{'year':>6}{'target':>10}{'model':>10}{'weight':>8}{'residual':>10}")
    for kind, y, t, m, w, r in fit.rows:
        lines.append(f"{kind:<20}{y:>6}{t:>10.4g}{m:>10.4g}{w:>8g}{100 * r:>9.1f}%")
    lines.append("")
    lines.append("median annual revenue by year, $B (written values): "
                 + " / ".join(f"{v:.1f}" for v in fit.median) + f" ({fit.years[0]}..{fit.years[-1]})")
    return "\n".join(lines)


def cmd_calibrate(args) -> int:
    from sim.studies.calibrate import fit_scenario, load_targets, write_fit

    targets = None
    if args.targets:
        from sim.scenario import load_scenario

        name = load_scenario(args.scenario).name
        all_t = load_targets(args.targets)
        if name not in all_t:
            print(f"bubblesim: {args.targets}: no targets for scenario {name!r}", file=sys.stderr)
            return EXIT_BAD_INPUT
        targets = all_t[name]
    fit = fit_scenario(args.scenario, targets)
    print(format_fit(fit))
    if args.write:
        changes = write_fit(args.scenario, fit)
        print(f"wrote {args.scenario}: " + ("; ".join(changes) if changes else "no change"))
    return 0
