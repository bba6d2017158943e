"""The hot loop does no reference counting (see the note above `sim.engine.kernel._run`).

numba increments and decrements, atomically, the reference count of every array a function
receives unless it can prove that redundant. `_run` binds its arrays once per chunk and
keeps every call inside its loops to leaf functions, which made the kernel several times
faster; a call with the model's tuples inside the loop would bring back ~200 atomic
operations per step without changing any result. This test compiles a fresh (uncached)
copy of `_run` and checks that its reference-count operations sit only in its entry and
exit blocks. It takes ~10 s (one compilation).
"""

import re

from numba import njit

from sim.engine import chunk_generator, new_path_buffers, new_stats
from sim.engine import kernel as K
from sim.engine.model import compile_scenario


def test_run_loops_hold_no_reference_counting(make_scenario, small_dict):
    M = compile_scenario(make_scenario(small_dict))
    st, ws, rec, shocks, tranche_u = new_path_buffers(M)
    out = new_stats(M)
    fresh = njit(nogil=True)(K._run.py_func)  # inspect_llvm needs code compiled in this process
    fresh(M, K.derive(M), chunk_generator(0, 0), 2, 0, M.n_steps, shocks, tranche_u, st, ws, rec, out)
    sig = fresh.signatures[0]
    name = fresh.overloads[sig].fndesc.llvm_func_name
    ir = fresh.inspect_llvm(sig)
    bodies = {}
    for chunk in ir.split("\ndefine ")[1:]:
        m = re.search(r'@"?([^"( ]+)', chunk)
        bodies[m.group(1)] = chunk[:chunk.index("\n}\n")] if "\n}\n" in chunk else chunk
    body = bodies[name]
    blocks = re.split(r"\n(?=[A-Za-z_.0-9\"$]+:)", body)
    assert len(blocks) > 100  # really the kernel's body
    # in _run itself: the entry block (increfs of its arguments) and one exit block
    with_refops = [b.split("\n", 1)[0][:40] for b in blocks if "@NRT_incref" in b or "@NRT_decref" in b]
    assert len(with_refops) <= 2, f"reference counting inside _run's loops, blocks: {with_refops}"
    # and in what it calls (each call of a function that counts references pays for all
    # the arrays it receives), except the clearing, which runs only when someone cannot pay
    callees = set(re.findall(r'call [^@\n]*@"?(_ZN[^"( ]+)', body))
    assert callees, "expected calls (draw_path_shocks, the clearing)"
    counting = [c for c in callees if c in bodies and "@NRT_incref" in bodies[c] and "clearing" not in c]
    assert not counting, f"_run calls functions that count references: {counting}"
