"""Replaying a chunk's paths one at a time, exactly as the engine draws them.

Tests that inspect a path's record or end state (default steps, flows, cuts, losses) share
this loop instead of writing it again: chunk `chunk` of root seed `seed`, the same shocks
`simulate` would draw, path by path.
"""

from __future__ import annotations

from sim.engine import chunk_generator, new_path_buffers
from sim.engine import kernel as K


def replay(M, n_paths: int, seed: int, chunk: int = 0):
    """Yield (state, record) after each of the first `n_paths` paths of the chunk.

    The buffers are reused from one path to the next: copy what you keep."""
    st, ws, rec, shocks, tranche_u = new_path_buffers(M)
    rng = chunk_generator(seed, chunk)
    for _ in range(n_paths):
        K.draw_path_shocks(rng, shocks, tranche_u)
        K.simulate_path(M, shocks, tranche_u, st, ws, rec)
        yield st, rec
