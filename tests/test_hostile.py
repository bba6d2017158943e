"""Hostile and careless input (issue 9): a scenario file can neither escape its folder nor crash,
hang or silently corrupt a run. Each test is one finding of the issue; each failed before the fix.

Runs are tiny (64 paths); the special-file and size cases run in a subprocess with a timeout,
so a hang fails the test instead of the suite.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time

import numpy as np
import pytest

from sim.cli.main import main
from sim.scenario.loader import scenario_from_dict

from .conftest import SMALL

TINY = ["--paths", "64", "--chunk-size", "64", "--threads", "1", "--quiet"]


def _text(**changes) -> str:
    return scenario_from_dict({**SMALL, **changes}).source


def _write(path, text: str | bytes):
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return str(path)


def _sub(args, timeout=60, **kw):
    """bubblesim in a fresh process; a hang fails the test (TimeoutExpired) instead of the suite."""
    env = {**os.environ, **kw.pop("env", {})}
    return subprocess.run([sys.executable, "-m", "sim", *args], capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL, env=env, **kw)


def _one_clean_line(err: str, file_part: str):
    first = err.strip().splitlines()[0]
    assert "Traceback" not in err, err
    assert file_part in first, err
    return first


# ------------------------------------------------------------------ output paths


@pytest.mark.parametrize("name", ["../escaped", "..", "ABSOLUTE", "a/../../b", "."])
def test_run_writes_inside_runs_whatever_the_name(tmp_path, monkeypatch, name):
    work = tmp_path / "work"
    work.mkdir()
    name = str(tmp_path / "abs-escape") if name == "ABSOLUTE" else name
    f = _write(tmp_path / "evil.toml", _text(name=name))
    monkeypatch.chdir(work)
    assert main(["run", f, *TINY]) == 0
    written = [os.path.join(d, x) for d, _, xs in os.walk(tmp_path) for x in xs]
    outside = [w for w in written if not w.startswith(str(work / "runs") + os.sep) and w != f]
    assert outside == [], outside
    assert len(os.listdir(work / "runs")) == 1


def test_batch_lock_never_follows_a_symlink(tmp_path, capsys):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    out = tmp_path / "out"
    out.mkdir()
    os.symlink(victim, out / ".batch.lock")
    f = _write(tmp_path / "s.toml", _text())
    assert main(["batch", f, "--out", str(out), *TINY, "--no-report"]) == 2
    assert victim.read_text() == "precious\n"
    assert ".batch.lock" in capsys.readouterr().err


@pytest.mark.parametrize("kind", ["file", "devnull", "readonly", "procfs"])
def test_unwritable_out_is_an_error_before_any_simulation(tmp_path, monkeypatch, capsys, kind):
    import sim.engine.api

    def boom(*a, **k):
        raise AssertionError("simulated before checking --out")

    monkeypatch.setattr(sim.engine.api, "run", boom)
    f = _write(tmp_path / "s.toml", _text())
    if kind == "file":
        out = _write(tmp_path / "existing", "x")
    elif kind == "devnull":
        out = os.devnull
    elif kind == "procfs":  # not writable even by root
        if not os.path.isdir("/proc/self"):
            pytest.skip("no procfs: this case needs Linux's /proc, a folder even root cannot write to")
        out = "/proc/self/bubblesim-out"
    else:
        if os.geteuid() == 0:
            pytest.skip("running as root, whom permission bits do not stop; the procfs case checks the same "
                        "refusal (an unwritable --out, before any simulation) for root too")
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o500)
        out = str(ro / "sub")
    assert main(["run", f, "--out", out, *TINY]) == 2
    err = capsys.readouterr().err
    assert "--out" in err and len(err.strip().splitlines()) == 1, err


def test_batch_out_that_is_a_file_fails_before_running(tmp_path, capsys):
    f = _write(tmp_path / "s.toml", _text())
    out = _write(tmp_path / "existing", "x")
    t0 = time.perf_counter()
    assert main(["batch", f, "--out", out, *TINY]) == 2
    assert "--out" in capsys.readouterr().err
    assert time.perf_counter() - t0 < 60


# ------------------------------------------------------------------ reading


def test_bad_utf8_is_one_clean_line_through_validate_and_run(tmp_path, capsys):
    f = _write(tmp_path / "bad.toml", _text().encode() + b"\n# caf\xe9\n")
    assert main(["validate", f]) == 2
    first = _one_clean_line(capsys.readouterr().err, "bad.toml")
    assert "UTF-8" in first and "line" in first
    assert main(["run", f, *TINY]) == 2
    _one_clean_line(capsys.readouterr().err, "bad.toml")


def test_bom_is_accepted_and_utf16_named(tmp_path, capsys):
    f = _write(tmp_path / "bom.toml", b"\xef\xbb\xbf" + _text().encode())
    assert main(["validate", f]) == 0, capsys.readouterr().err
    g = _write(tmp_path / "u16.toml", _text().encode("utf-16"))
    assert main(["validate", g]) == 2
    assert "UTF-16" in _one_clean_line(capsys.readouterr().err, "u16.toml")


@pytest.mark.parametrize("body", ["x = " + "[" * 100_000 + "]" * 100_000,
                                  "x = " + "{a = " * 5000 + "1" + "}" * 5000,
                                  "[" + ".".join(["a"] * 3000) + "]\nb = 1",
                                  ".".join(["k"] * 3000) + " = 1"])
def test_deep_nesting_is_refused_quickly(tmp_path, body):
    f = _write(tmp_path / "deep.toml", body + "\n" + _text())
    proc = _sub(["validate", f], timeout=60)
    assert proc.returncode == 2, proc.stderr[-2000:]
    first = _one_clean_line(proc.stderr, "deep.toml")
    assert "nest" in first and "BUBBLESIM_MAX_DEPTH" in first


def test_huge_integer_literal_names_the_key(tmp_path, capsys):
    f = _write(tmp_path / "big.toml", _text().replace("cash = 8.0", "cash = 1" + "0" * 400, 1))
    assert main(["validate", f]) == 2
    assert "cash" in _one_clean_line(capsys.readouterr().err, "big.toml")
    g = _write(tmp_path / "huge.toml", _text().replace("cash = 8.0", "cash = 1" + "0" * 5000, 1))
    assert main(["validate", g]) == 2
    _one_clean_line(capsys.readouterr().err, "huge.toml")


def test_nul_in_extends_names_extends(tmp_path, capsys):
    f = _write(tmp_path / "nul.toml", 'extends = "a\\u0000b.toml"\n' + _text())
    assert main(["validate", f]) == 2
    assert "extends" in _one_clean_line(capsys.readouterr().err, "nul.toml")


@pytest.mark.parametrize("target", ["fifo", "/dev/zero", "/dev/stdin", "dir", "/dev/null"])
def test_extends_accepts_only_regular_files(tmp_path, target):
    if target == "fifo":
        os.mkfifo(tmp_path / "pipe.toml")
        target = "pipe.toml"
    elif target == "dir":
        (tmp_path / "d.toml").mkdir()
        target = "d.toml"
    elif not os.path.exists(target):
        pytest.skip(f"{target} does not exist on this platform (a Unix special file)")
    f = _write(tmp_path / "child.toml", f'extends = "{target}"\n' + _text())
    proc = subprocess.run([sys.executable, "-m", "sim", "validate", f], capture_output=True, text=True,
                          timeout=30, stdin=subprocess.PIPE)  # an open pipe: /dev/stdin would block
    assert proc.returncode == 2
    first = _one_clean_line(proc.stderr, "child.toml")
    assert "extends" in first and ("regular file" in first or "directory" in first), first


def test_a_fifo_in_a_batch_folder_is_an_error_not_a_hang(tmp_path):
    folder = tmp_path / "scen"
    folder.mkdir()
    _write(folder / "a.toml", _text())
    os.mkfifo(folder / "b.toml")
    proc = subprocess.run([sys.executable, "-m", "sim", "batch", str(folder), "--list"], capture_output=True,
                          text=True, timeout=60, stdin=subprocess.PIPE)
    assert proc.returncode == 2 and "b.toml" in _one_clean_line(proc.stderr, "b.toml")


def test_oversized_file_names_the_limit_and_how_to_raise_it(tmp_path):
    f = _write(tmp_path / "big.toml", _text() + "\n" + "# " + "x" * 5000 + "\n")
    proc = _sub(["validate", f], env={"BUBBLESIM_MAX_FILE_BYTES": "4000"})
    assert proc.returncode == 2
    first = _one_clean_line(proc.stderr, "big.toml")
    assert "4,000" in first and "BUBBLESIM_MAX_FILE_BYTES" in first


def test_long_strings_and_arrays_are_capped(tmp_path):
    f = _write(tmp_path / "long.toml", _text(description="x" * 5000))
    proc = _sub(["validate", f], env={"BUBBLESIM_MAX_STRING": "1000"})
    assert proc.returncode == 2 and "BUBBLESIM_MAX_STRING" in _one_clean_line(proc.stderr, "long.toml")
    g = _write(tmp_path / "arr.toml", "junk = [" + "1," * 200 + "]\n" + _text())
    proc = _sub(["validate", g], env={"BUBBLESIM_MAX_ARRAY": "100"})
    assert proc.returncode == 2 and "BUBBLESIM_MAX_ARRAY" in _one_clean_line(proc.stderr, "arr.toml")


def test_too_many_entities_is_capped(tmp_path):
    many = [{"name": f"E{i}", "cash": 1.0} for i in range(40)]
    f = _write(tmp_path / "many.toml", _text(entity=SMALL["entity"] + many))
    proc = _sub(["validate", f], env={"BUBBLESIM_MAX_ENTITIES": "20"})
    assert proc.returncode == 2
    first = _one_clean_line(proc.stderr, "many.toml")
    assert "entity" in first and "BUBBLESIM_MAX_ENTITIES" in first


# ------------------------------------------------------------------ sweeps


def test_non_numeric_sweep_values_name_the_sweep_key(tmp_path, capsys):
    f = _write(tmp_path / "sw.toml", _text() + '\n[sweep]\n"revenue.growth0" = [0.5, "high", true]\n')
    assert main(["validate", f]) == 2
    assert "growth0" in _one_clean_line(capsys.readouterr().err, "sw.toml")


def test_huge_sweep_is_counted_and_refused_before_building(tmp_path):
    keys = ["revenue.growth0", "revenue.growth_inf", "revenue.volatility", "regime.enter_prob", "regime.exit_prob",
            "lab.raise_share", "lab.raise_share_winter", "entity.Builder.cash"]
    sweep = "\n".join(f'"{k}" = [{", ".join(str(0.1 + i / 100) for i in range(10))}]' for k in keys)
    f = _write(tmp_path / "sw.toml", _text() + "\n[sweep]\n" + sweep + "\n")
    proc = _sub(["validate", f], timeout=60)
    assert proc.returncode == 2
    first = _one_clean_line(proc.stderr, "sw.toml")
    assert "100,000,000" in first and "--max-variants" in first
    proc = _sub(["batch", f, "--list", "--max-variants", "1000"], timeout=60)
    assert proc.returncode == 2 and "--max-variants" in proc.stderr


def test_sweep_variants_hold_only_their_overrides(tmp_path):
    from sim.studies.variants import collect_variants

    f = _write(tmp_path / "sw.toml", _text() + '\n[sweep]\n"revenue.growth0" = [0.4, 0.5, 0.6]\n')
    plan = collect_variants([f])
    assert len(plan.variants) == 3
    for v in plan.variants:
        assert "scenario" not in vars(v)  # resolved on demand from the shared base and the overrides
        assert v.base is plan.variants[0].base
    assert [v.scenario.data["revenue"]["growth0"] for v in plan.variants] == [0.4, 0.5, 0.6]


# ------------------------------------------------------------------ values


@pytest.mark.parametrize("old,new,key", [
    ("capex_share = 0.5", "capex_share = 0.5\nrelet_delay = 1e19", "relet_delay"),
    ("debt = 120.0", "debt = 1e308", "debt"),
    ("raise_share = 0.05", "raise_share = 0.05\nopex_share_start = 1e308", "opex_share_start"),
    ("cash = 90.0", "cash = 1e308", "cash"),
    ("raise_share = 0.05", "raise_share = 0.05\nvaluation_multiple = 1e308", "valuation_multiple"),
    ('2031 = 45.0', '2031 = 1e308', "schedule"),
    ("seed = 7", "seed = 100000000000000000000000", "seed"),
    ("paths = 4000", "paths = 100000000000000000000", "paths"),
    ("date = 2026.25", "date = 1e19", "date"),
])
def test_absurd_values_fail_validation_naming_the_key(tmp_path, capsys, old, new, key):
    text = _text()
    assert old in text, old
    f = _write(tmp_path / "v.toml", text.replace(old, new, 1))
    assert main(["validate", f]) == 2
    assert key in _one_clean_line(capsys.readouterr().err, "v.toml")


@pytest.mark.parametrize("old,new,hint", [
    ("volatility = 0.3", "volatility = 25", "did you mean 0.25?"),
    ("cash = 90.0", "cash = 90.0\nrate = 5", "did you mean 0.05?"),
    ("cost_ratio = 0.7", "cost_ratio = 70", "did you mean 0.7?"),
])
def test_percent_for_fraction_is_an_error_with_a_hint(tmp_path, capsys, old, new, hint):
    text = _text()
    assert old in text, old
    f = _write(tmp_path / "p.toml", text.replace(old, new, 1))
    assert main(["validate", f]) == 2
    assert hint in _one_clean_line(capsys.readouterr().err, "p.toml")


def test_plausible_but_unusual_values_warn_on_stderr(tmp_path, capsys):
    f = _write(tmp_path / "w.toml", _text().replace("volatility = 0.3", "volatility = 2", 1))
    assert main(["validate", f]) == 0
    err = capsys.readouterr().err
    assert "warning" in err and "revenue.volatility" in err and "did you mean 0.02?" in err
    assert main(["run", f, *TINY, "--out", str(tmp_path / "o")]) == 0
    assert "did you mean 0.02?" in capsys.readouterr().err
    assert main(["batch", f, *TINY, "--out", str(tmp_path / "b"), "--no-report"]) == 0
    assert "did you mean 0.02?" in capsys.readouterr().err


def test_a_run_that_would_write_nan_is_an_error_naming_the_field(tmp_path):
    from sim import load_scenario, run
    from sim.engine.results import check_finite
    from sim.scenario import ScenarioError

    r = run(load_scenario(_write(tmp_path / "s.toml", _text())), paths=64, seed=1, chunk_size=64, threads=1)
    check_finite(r)  # a normal run passes
    r.loss_mean = float("nan")
    with pytest.raises(ScenarioError, match="loss_mean"):
        check_finite(r)
    r.loss_mean = 1.0
    r.pd[0, -1] = 1.5
    with pytest.raises(ScenarioError, match="pd"):
        check_finite(r)


# ------------------------------------------------------------------ run size


@pytest.mark.parametrize("args,needles", [
    (["--paths", "1e12"], ["--paths", "hours"]),
    (["--paths", "1e400"], ["--paths"]),
    (["--threads", "100000"], ["--threads", "GB"]),
    (["--paths", "100000000", "--chunk-size", "1"], ["chunks", "--chunk-size"]),
])
def test_run_size_limits_are_one_line_with_estimates(tmp_path, args, needles):
    f = _write(tmp_path / "s.toml", _text())
    proc = _sub(["run", f, *args, "--out", str(tmp_path / "o")], timeout=60)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    for n in needles:
        assert n in proc.stderr, proc.stderr


# ------------------------------------------------------------------ privacy and the terminal


def test_manifest_and_report_hold_no_absolute_paths(tmp_path, capsys):
    from types import SimpleNamespace

    from sim.report.html import reproducibility_html

    f = _write(tmp_path / "s.toml", _text())
    out = tmp_path / "out"
    assert main(["batch", f, "--out", str(out), *TINY, "--no-report"]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    text = json.dumps(manifest)
    assert str(tmp_path) not in text and os.path.expanduser("~") + "/" not in text
    marker = (out / "small" / "_complete.json").read_text()
    assert str(tmp_path) not in marker
    runs = {"small": {**json.loads((out / "small" / "results.json").read_text()),
                      "_variant": manifest["variants"][0]}}
    html = reproducibility_html(SimpleNamespace(runs=runs, manifest=manifest))
    assert str(tmp_path) not in html


@pytest.mark.parametrize("field", ["name", "entity"])
def test_control_characters_in_names_are_refused(tmp_path, capsys, field):
    from sim.scenario.writer import _to_toml

    evil = "Evil\x1b[2J\nok      fake.toml: all good"
    if field == "name":
        text = _to_toml({**SMALL, "name": evil})
    else:
        ents = [dict(e) for e in SMALL["entity"]]
        ents[3]["name"] = evil
        stakes = [dict(s) for s in SMALL["stake"]]
        stakes[1]["holder"] = evil
        d = {**SMALL, "entity": ents, "stake": stakes}
        d["investment"] = [{**SMALL["investment"][0], "investor": evil}]
        text = _to_toml(d)
    f = _write(tmp_path / "n.toml", text)
    assert main(["validate", f]) == 2
    err = capsys.readouterr().err
    assert "\x1b" not in err and "control character" in err.splitlines()[0], err


def test_file_names_are_escaped_on_the_terminal(tmp_path, capsys):
    f = _write(tmp_path / "a\x1b[31mb.toml", _text())
    assert main(["validate", f]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\\x1b" in out


def test_argparse_errors_are_one_line_with_a_hint(capsys):
    with pytest.raises(SystemExit) as e:
        main(["run", "x.toml", "--paths", "many"])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--paths" in err and "--help" in err, err


def test_run_and_batch_files_get_the_same_mode(tmp_path):
    f = _write(tmp_path / "s.toml", _text())
    assert main(["run", f, *TINY, "--out", str(tmp_path / "r")]) == 0
    assert main(["batch", f, *TINY, "--out", str(tmp_path / "b"), "--no-report"]) == 0
    mask = os.umask(0)
    os.umask(mask)
    want = 0o666 & ~mask
    modes = {p: stat.S_IMODE(os.stat(os.path.join(d, p)).st_mode)
             for base in ("r", "b") for d, _, xs in os.walk(tmp_path / base) for p in xs if not p.startswith(".")}
    assert set(modes.values()) == {want}, modes


def test_fixed_results_are_finite_probabilities(tmp_path):
    """A guard against regressions of the range work: the small scenario's results hold no NaN
    where a number is due, and every probability is in [0, 1]."""
    from sim import load_scenario, run

    r = run(load_scenario(_write(tmp_path / "s.toml", _text())), paths=256, seed=2, chunk_size=64, threads=1)
    for name in ("pd", "p_need", "p_gap", "cascade", "p_at_least", "p_winter"):
        a = np.asarray(getattr(r, name))
        assert np.all(np.isfinite(a)) and np.all((a >= 0) & (a <= 1 + 1e-12)), name


def test_report_shows_the_home_folder_as_tilde(monkeypatch):
    from types import SimpleNamespace

    from sim.report.html import redact_paths, reproducibility_html

    monkeypatch.setenv("HOME", "/home/alice")
    assert redact_paths('extends = "/home/alice/work/base.toml"') == 'extends = "~/work/base.toml"'
    manifest = {"command": ["bubblesim", "batch", "/home/alice/s.toml"], "out": ".", "variants": []}
    html = reproducibility_html(SimpleNamespace(runs={}, manifest=manifest))
    assert "alice" not in html and "~/s.toml" in html


@pytest.mark.parametrize("body,key", [
    ('[batch]\nscenarios = ["s.toml"]\n\n[[run]]\nscenario = 10000000000000000000_000\n', "run[0].scenario"),
    ('[batch]\nscenarios = ["nope.toml"]\n', "batch.scenarios"),
])
def test_batch_file_mistakes_found_by_the_fuzzer_name_the_key(tmp_path, capsys, body, key):
    _write(tmp_path / "s.toml", _text())
    f = _write(tmp_path / "b.toml", body)
    assert main(["validate", f]) == 2
    assert key in _one_clean_line(capsys.readouterr().err, "b.toml")


def test_sweep_that_replaces_an_array_then_selects_in_it(tmp_path, capsys):
    """Found by the fuzzer: `entity = [0.1]` then `entity.X.cash` in one sweep was a TypeError."""
    f = _write(tmp_path / "sw.toml", _text() + '\n[sweep]\n"entity" = [0.1, 0.2]\n"entity.Lab.cash" = [1.0, 2.0]\n')
    assert main(["validate", f]) == 2
    assert "entity.Lab.cash" in _one_clean_line(capsys.readouterr().err, "sw.toml")


def test_a_patched_unusual_value_warns_like_any_other(tmp_path):
    """[patch] values are validated in a second pass; its warnings must reach the user too."""
    from sim.scenario import load_scenario

    base = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "scenarios", "base.toml")
    child = tmp_path / "child.toml"
    child.write_text(f'extends = "{base}"\nname = "child"\n\n[patch]\n"lab.valuation_multiple" = 150.0\n')
    warned = load_scenario(str(child)).warnings
    assert any("valuation_multiple" in w.key for w in warned), warned
    assert load_scenario(base).warnings == ()  # the shipped file itself warns of nothing
