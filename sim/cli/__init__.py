"""The `bubblesim` command line (`sim.cli.main`); the only package of `sim` that knows argparse."""

from sim.cli.main import main

__all__ = ["main"]
