"""A fast subset of the scenario fuzzer (tests/fuzz): mutants of the shipped scenarios through
`validate` in this process, the special-file ones and two accepted ones through a real process.
The long run (10,000+ mutants) is `python -m tests.fuzz.run`; see its docstring."""

import os

from tests.fuzz.mutate import Workspace
from tests.fuzz.run import check_results, classify, cli_subprocess, fuzz, validate_in_process


def test_fuzz_subset_keeps_the_contract(tmp_path):
    report = fuzz(40, seed=7, workdir=str(tmp_path), run_sample=2, paths=128, log=lambda m: None)
    assert report["problems"] == [], report["problems"][:3]
    assert sum(report["validate"].values()) == 40
    assert report["accepted"] >= 1 and report["runs"].get("ok", 0) >= 1, report


def test_special_extends_targets_end_cleanly_in_a_process(tmp_path):
    ws = Workspace(str(tmp_path / "ws"))
    for target in ("pipe.toml", "/dev/zero", "/dev/stdin", "dir.toml", "big.toml", "binary.toml"):
        path = os.path.join(ws.folder, "child.toml")
        with open(path, "w") as fh:
            fh.write(f'extends = "{target}"\nname = "child"\n')
        outcome = cli_subprocess(["validate", path])
        cat, problem = classify(outcome, ws.folder)
        assert problem is None and outcome["rc"] == 2, (target, outcome)


def test_the_checker_catches_what_it_must(tmp_path):
    """The fuzzer's own oracle: it flags a traceback, an unnamed file, a null and a bad probability."""
    assert classify({"hang": False, "crash": "Traceback ...", "rc": 1, "stderr": ""}, "/x")[0] == "traceback"
    assert classify({"hang": True, "crash": None, "rc": None, "stderr": ""}, "/x")[0] == "hang"
    assert classify({"hang": False, "crash": None, "rc": 2, "stderr": "INVALID something\n"}, "/x")[1]
    ok = classify({"hang": False, "crash": None, "rc": 2, "stderr": "INVALID /x/a.toml:3: revenue.x: bad\n"}, "/x")
    assert ok == ("exit 2, file + key + line", None)
    (tmp_path / "results.json").write_text('{"pd": [[0.1, null]]}')
    assert "pd" in check_results(str(tmp_path))
    (tmp_path / "results.json").write_text('{"pd": [[0.1, 1.5]]}')
    assert check_results(str(tmp_path))  # 1.5 is not a probability, and the other fields are missing
    res = validate_in_process(os.devnull)
    assert res["rc"] == 2 and "regular file" in res["stderr"]
