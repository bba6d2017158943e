"""The package's architecture, checked: layers import downward only, no import cycles, lint clean.

The contracts live in pyproject.toml ([tool.importlinter]); import-linter checks them. The
cycle check below is an independent oracle over `ast` (it also sees imports inside
functions, which are how the layers defer heavy imports).
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SIM = os.path.join(ROOT, "sim")
BIN = os.path.dirname(sys.executable)
KERNEL_EXEMPT = {"sim.engine.kernel"}  # the one-big-function kernel (measured, documented)
MAX_LINES = 600


def _tool(name: str) -> str:
    path = os.path.join(BIN, name)
    if not os.path.exists(path):
        path = shutil.which(name)
    if path is None:  # test.sh installs the [test] extra, which has both tools
        pytest.fail(f"{name} is not installed; install the test extra: pip install -e '.[test]'")
    return path


def _modules(root: str = SIM) -> dict[str, str]:
    """dotted module name -> file path, for every .py file of the package."""
    out = {}
    base = os.path.dirname(root)
    for folder, _dirs, files in os.walk(root):
        for f in files:
            if f.endswith(".py"):
                path = os.path.join(folder, f)
                rel = os.path.relpath(path, base)[:-3].replace(os.sep, ".")
                out[rel[: -len(".__init__")] if rel.endswith(".__init__") else rel] = path
    return out


def _imports(name: str, path: str, known: set[str]) -> set[str]:
    """The sim modules that `name` imports anywhere in its file (top level or inside functions)."""
    tree = ast.parse(open(path, encoding="utf-8").read())
    is_pkg = path.endswith("__init__.py")
    out = set()
    for node in ast.walk(tree):
        targets = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                pkg = name if is_pkg else name.rpartition(".")[0]
                for _ in range(node.level - 1):
                    pkg = pkg.rpartition(".")[0]
                mod = f"{pkg}.{node.module}" if node.module else pkg
            else:
                mod = node.module or ""
            targets = [mod] + [f"{mod}.{a.name}" for a in node.names]
        for t in targets:
            while t and t not in known:
                t = t.rpartition(".")[0]
            if t and t != name:
                out.add(t)
    return out


def _graph() -> dict[str, set[str]]:
    mods = _modules()
    known = set(mods)
    graph = {m: _imports(m, p, known) for m, p in mods.items()}
    # importing a package runs its __init__: an edge to a.b.c is also an edge to a.b and a
    for m, deps in graph.items():
        for d in list(deps):
            parts = d.split(".")
            deps.update(".".join(parts[:k]) for k in range(2, len(parts)) if ".".join(parts[:k]) != m)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_cycle_finder_finds_a_planted_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles_anywhere_in_sim():
    graph = _graph()
    # a package importing its own submodules is how a package exports; exclude parent->child edges
    pruned = {m: {d for d in deps if not d.startswith(m + ".")} for m, deps in graph.items()}
    assert _cycles(pruned) == []


def test_library_modules_never_import_the_cli():
    graph = _graph()
    offenders = sorted(m for m, deps in graph.items()
                       if not m.startswith("sim.cli") and m != "sim.__main__" and any(d.startswith("sim.cli") for d in deps))
    assert offenders == []


def test_modules_are_small():
    sizes = {m: sum(1 for _ in open(p, encoding="utf-8")) for m, p in _modules().items()}
    big = {m: n for m, n in sizes.items() if n > MAX_LINES and m not in KERNEL_EXEMPT}
    assert big == {}, f"modules over {MAX_LINES} lines: {big}"


def test_import_linter_contracts_are_kept():
    res = subprocess.run([_tool("lint-imports")], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "0 broken" in res.stdout


def test_import_linter_catches_a_library_module_that_imports_the_cli(tmp_path):
    """The contracts can fail: a copy of the package where the engine imports sim.cli breaks them."""
    shutil.copytree(SIM, tmp_path / "sim", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(os.path.join(ROOT, "pyproject.toml"), tmp_path / "pyproject.toml")
    stats = tmp_path / "sim" / "engine" / "stats.py"
    stats.write_text(stats.read_text(encoding="utf-8") + "\n\ndef _bad():\n    import sim.cli.common  # noqa\n")
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    res = subprocess.run([_tool("lint-imports"), "--no-cache"], cwd=tmp_path, capture_output=True, text=True,
                         timeout=300, env=env)
    assert res.returncode != 0
    assert "BROKEN" in res.stdout and "sim.engine.stats -> sim.cli.common" in res.stdout


def test_ruff_is_clean():
    res = subprocess.run([_tool("ruff"), "check", "--no-cache", "."], cwd=ROOT, capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
