"""The engine: scenario -> arrays -> numba kernels -> chunked, reproducible runs -> `Results`.

Open `model.py` for how a scenario becomes arrays (units, per-step rates), `kernel.py` for
the economics of one period and one path (docs/model.md has the equations), `clearing.py`
for the Eisenberg-Noe payment clearing, `runner.py` for chunks, seeds and threads, and
`results.py` / `stats.py` for the statistics written to disk. Imports only `sim.scenario`
and `sim.io`.
"""

from sim.engine.api import run
from sim.engine.results import Results
from sim.engine.runner import (
                               DEFAULT_CHUNK_SIZE,
                               SUMMARY_FIXED,
                               add_stats,
                               chunk_generator,
                               chunk_layout,
                               default_threads,
                               new_path_buffers,
                               new_stats,
                               run_chunk,
                               simulate,
                               warmup,
)

__all__ = ["DEFAULT_CHUNK_SIZE", "SUMMARY_FIXED", "Results", "add_stats", "chunk_generator", "chunk_layout",
           "default_threads", "new_path_buffers", "new_stats", "run", "run_chunk", "simulate", "warmup"]
