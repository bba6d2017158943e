"""Start-up cost. Commands that only read files never import numba (importing it costs ~1 s; compiling the
kernels on a cold cache tens of seconds): `bubblesim --version`, `validate`, and everything
`report` draws from results on disk. sim.engine reaches the kernels through
sim.engine.lazy, so numba loads when a simulation first touches one."""

import os
import subprocess
import sys

from .conftest import ROOT

CODE = r"""
import contextlib, io, json, sys
from sim.cli.main import main

def quiet(argv):
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        try:
            return main(argv)
        except SystemExit as e:
            return e.code

out = {}
out["version"] = (quiet(["--version"]), "numba" in sys.modules)
out["validate"] = (quiet(["validate", "scenarios/base.toml"]), "numba" in sys.modules)
# what `report` runs: the CLI module, the report, every figure and the findings of a results dict
import matplotlib
matplotlib.use("Agg")
import sim.cli.report, sim.report.html, sim.report.gallery
from sim.plots.figures import SINGLE_RUN_FIGURES
from sim.engine import stats, results, runner
out["report_imports"] = (0, "numba" in sys.modules)
print(json.dumps(out))
"""


def test_read_only_commands_do_not_import_numba():
    env = dict(os.environ, PYTHONPATH=ROOT)
    proc = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, cwd=ROOT, env=env,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    import json

    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["version"] == [0, False], out
    assert out["validate"] == [0, False], out
    assert out["report_imports"] == [0, False], out


def test_the_kernel_proxy_imports_on_first_use():
    code = ("import sys\nfrom sim.engine.lazy import kernel as K\nassert 'numba' not in sys.modules\n"
            "assert K.LOSS_BINS > 0\nassert 'numba' in sys.modules\nprint('ok')")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120,
                          env=dict(os.environ, PYTHONPATH=ROOT))
    assert proc.returncode == 0 and "ok" in proc.stdout, proc.stderr


def test_clearing_compiles_one_specialisation(tmp_path):
    """Every kernel compiles once per cold start: `_solve_in_place` used to be compiled twice,
    once for a literal k = 0 (a numba literal type) and once for int64."""
    code = ("import numpy as np\nfrom sim.engine import clearing as C\nn = 3\n"
            "C.clearing_vector(np.ones((n, n)), np.ones(n), 5 * np.ones(n), np.ones(n), np.ones(n), np.zeros(n),"
            " np.zeros(n, np.bool_), np.zeros((n, n + 4)))\n"
            "print(len(C._solve_in_place.signatures), len(C.clearing_vector.signatures))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300,
                          env=dict(os.environ, PYTHONPATH=ROOT, NUMBA_CACHE_DIR=str(tmp_path)))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["1", "1"], proc.stdout
