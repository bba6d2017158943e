"""Mutations of the shipped scenarios, as an attacker or a careless user would make them.

`Workspace(folder)` copies scenarios/*.toml into `folder` (so `extends` targets exist) and adds
the special files a hostile `extends` may point at (a FIFO, a folder named like a TOML file, a
binary file). `Workspace.mutant(i)` writes mutant number `i` (deterministic in the seed and i)
and returns (path, operators applied, special: whether it points at a special file and should
run in its own process, with a timeout).

Operators (each mutant applies one to three): value types, value ranges (scaling, extremes,
huge integers), key typos, references, deleted / duplicated lines, truncation, garbage bytes,
encodings (BOM, UTF-16, Latin-1, CRLF), nesting depth (arrays, inline tables, dotted keys,
table headers), sizes (long strings, long arrays, many entities, big files), sweeps (types,
keys, modes, huge grids), names (path traversal, absolute, control characters), extends
targets (special files, devices, cycles, missing files, NUL, very long paths) and batch files.
"""

from __future__ import annotations

import glob
import os
import random
import re
import shutil

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHIPPED = sorted(glob.glob(os.path.join(ROOT, "scenarios", "*.toml")))

_KV = re.compile(r"^(\s*)([A-Za-z0-9_\"'.-]+)(\s*=\s*)(.+?)\s*$")
_NUM = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?")
REF_KEYS = ("payer", "payee", "investor", "investee", "holder", "issuer", "lender", "borrower", "entity",
            "milestone_contract")

WEIRD_VALUES = ['"text"', "true", "false", "[1, 2]", "{ a = 1 }", "1979-05-27", "2026-01-01T00:00:00",
                '"0.5"', "nan", "inf", "-inf", "+inf", "1e308", "-1e308", "1" + "0" * 400, "-1", "0", "1e-320",
                '""', '"\\u001b[31mred"', "[]", "{}", "[[1], [2]]", '["a", 1]', "0x10", "1_000", "-0.0",
                "9223372036854775808", "-9223372036854775809", "12:30:00", '"""multi\nline"""', "'lit'"]
SCALES = [100, 1e3, 1e6, 1e19, 1e300, -1, 0, 0.01, 1e-9, 1 + 1e-12, 7, 52, 2**31]
NAMES = ["../escaped", "..", ".", "/tmp/abs-name", "a/b/c", "", " ", "x" * 300, "\x1b[2J\x1b[31mfake",
         "line\nbreak", "\u202eevil", "con", "name with spaces", "ünïcödé", "a\tb", "NUL?\\u0000", "*", "~"]
SWEEP_KEYS = ["revenue.growth0", "revenue.volatility", "regime.enter_prob", "entity.Oracle.cash",
              'entity["OpenAI"].cash', "entity.Nobody.cash", "revenue.nope", "seed", "paths", "name",
              "time.horizon_years", "contract.0.total", "stake.Microsoft->OpenAI.share", "lab.raise_share",
              "entity.CoreWeave.maturities.2027", "refinancing.sentiment_slope", "", "a..b", "entity"]
SWEEP_VALUES = ["[0.1, 0.2]", "[0.5]", "[]", '["high", "low"]', "[true, false]", "[1e308]", "[-1, 2]",
                "[[1, 2]]", "[{ a = 1 }]", "0.3", '"x"', "[1979-05-27]", "[nan]", "[0.1, 0.2, 0.3, 0.4, 0.5]",
                "[" + ", ".join(str(i / 100) for i in range(40)) + "]", "[25, 50]", "[1" + "0" * 400 + "]"]


class Workspace:
    """A folder with the shipped scenarios and the special files mutants may reference."""

    def __init__(self, folder: str, seed: int = 0):
        self.folder = folder
        self.seed = seed
        os.makedirs(folder, exist_ok=True)
        for f in SHIPPED:
            shutil.copy(f, folder)
        self.texts = {os.path.basename(f): open(f, encoding="utf-8").read() for f in SHIPPED}
        self.fifo = os.path.join(folder, "pipe.toml")
        if hasattr(os, "mkfifo") and not os.path.exists(self.fifo):
            os.mkfifo(self.fifo)
        os.makedirs(os.path.join(folder, "dir.toml"), exist_ok=True)
        with open(os.path.join(folder, "binary.toml"), "wb") as fh:
            fh.write(bytes(range(256)) * 16)
        with open(os.path.join(folder, "big.toml"), "w") as fh:
            fh.write("# " + "x" * 5_000_000 + "\n")
        with open(os.path.join(folder, "cycle_a.toml"), "w") as fh:
            fh.write('extends = "cycle_b.toml"\nname = "a"\n')
        with open(os.path.join(folder, "cycle_b.toml"), "w") as fh:
            fh.write('extends = "cycle_a.toml"\nname = "b"\n')
        self.special_targets = ["pipe.toml", "/dev/zero", "/dev/stdin", "/dev/urandom", "/dev/null", "dir.toml",
                                "/dev/tty", "/proc/self/fd/0", "/proc/self/mem", "/"]
        self.plain_targets = ["base.toml", "nope.toml", "binary.toml", "big.toml", "cycle_a.toml",
                              "../" * 40 + "etc/passwd", "x" * 5000 + ".toml", "a\\u0000b.toml", "",
                              "ai_winter.toml", "./base.toml", "scenarios/../base.toml"]

    # ------------------------------------------------------------------ operators
    def mutant(self, i: int) -> tuple[str, list[str], bool]:
        rng = random.Random(f"{self.seed}-{i}")
        name = rng.choice(sorted(self.texts))
        text = self.texts[name]
        ops: list[str] = []
        special = False
        data: bytes | None = None
        for _ in range(rng.choice((1, 1, 1, 2, 2, 3))):
            op = rng.choice(OPERATORS)
            ops.append(op.__name__.lstrip("_"))
            out = op(self, rng, text)
            if isinstance(out, tuple):
                out, flag = out
                special = special or flag
            if isinstance(out, bytes):
                data = out
                break  # encodings end the chain: later text operators would undo them
            text = out
        path = os.path.join(self.folder, f"m{i}.toml")
        with open(path, "wb") as fh:
            fh.write(data if data is not None else text.encode("utf-8", "surrogatepass"))
        return path, ops, special


def _kv_lines(text: str, keys=None) -> list[int]:
    lines = text.split("\n")
    out = []
    for n, line in enumerate(lines):
        m = _KV.match(line)
        if m and not line.lstrip().startswith("#") and (keys is None or m.group(2) in keys):
            out.append(n)
    return out


def _edit_kv_line(text: str, rng, edit) -> str:
    """One key = value line chosen at random, replaced by edit(match) (unchanged if none)."""
    lines = text.split("\n")
    idx = _kv_lines(text)
    if not idx:
        return text
    n = rng.choice(idx)
    lines[n] = edit(_KV.match(lines[n]))
    return "\n".join(lines)


def _replace_value(text: str, rng, new_value) -> str:
    return _edit_kv_line(text, rng, lambda m: m.group(1) + m.group(2) + m.group(3) + new_value(m.group(4)))


def _value_type(ws, rng, text):
    return _replace_value(text, rng, lambda v: rng.choice(WEIRD_VALUES))


def _value_range(ws, rng, text):
    def scale(v):
        m = _NUM.search(v)
        if not m or v.strip().startswith('"'):
            return rng.choice(WEIRD_VALUES)
        x = float(m.group()) * rng.choice(SCALES)
        s = repr(x) if rng.random() < 0.8 else str(int(x)) if abs(x) < 1e30 else repr(x)
        return v[:m.start()] + s + v[m.end():]

    return _replace_value(text, rng, scale)


def _percent_slip(ws, rng, text):
    def pct(v):
        m = _NUM.search(v)
        if not m:
            return v
        return v[:m.start()] + format(float(m.group()) * 100, "g") + v[m.end():]

    return _replace_value(text, rng, pct)


def _key_typo(ws, rng, text):
    def typo(m):
        k = list(m.group(2))
        j = rng.randrange(len(k))
        choice = rng.randrange(4)
        if choice == 0 and len(k) > 1:
            k[j], k[j - 1] = k[j - 1], k[j]
        elif choice == 1:
            del k[j]
        elif choice == 2:
            k.insert(j, k[j])
        else:
            k = list("".join(k).upper())
        return m.group(1) + ("".join(k) or "x") + m.group(3) + m.group(4)
    return _edit_kv_line(text, rng, typo)


def _reference(ws, rng, text):
    lines = text.split("\n")
    idx = _kv_lines(text, REF_KEYS)
    if not idx:
        return text
    n = rng.choice(idx)
    m = _KV.match(lines[n])
    names = re.findall(r'^name = "([^"]*)"', text, re.M) or ["X"]
    new = rng.choice([f'"{rng.choice(names)}"', f'"{rng.choice(names)[::-1]}"', '""', '"nobody"', "1",
                      f'"{rng.choice(names).lower()}"', f'"{rng.choice(names)} "'])
    lines[n] = m.group(1) + m.group(2) + m.group(3) + new
    return "\n".join(lines)


def _delete_line(ws, rng, text):
    lines = text.split("\n")
    del lines[rng.randrange(len(lines))]
    return "\n".join(lines)


def _duplicate_line(ws, rng, text):
    lines = text.split("\n")
    n = rng.randrange(len(lines))
    lines.insert(rng.randrange(len(lines)), lines[n])
    return "\n".join(lines)


def _truncate(ws, rng, text):
    return text[:rng.randrange(len(text) + 1)]


def _garbage(ws, rng, text):
    data = text.encode()
    pos = rng.randrange(len(data) + 1)
    junk = rng.choice([b"\xff", b"\x00", b"\xc3", b"\xe2\x82", b"\xed\xa0\x80", bytes(rng.randrange(256)
                       for _ in range(rng.randrange(1, 20))), b"\x1b[2J", b"\r", b"\x7f"])
    return data[:pos] + junk + data[pos:]


def _encoding(ws, rng, text):
    kind = rng.randrange(6)
    if kind == 0:
        return b"\xef\xbb\xbf" + text.encode()
    if kind == 1:
        return text.encode("utf-16")
    if kind == 2:
        return text.replace("# ", "# caf\u00e9 ", 1).encode("latin-1", "replace")
    if kind == 3:
        return text.replace("\n", "\r\n").encode()
    if kind == 4:
        return text.encode("utf-16-le")
    return b"\xef\xbb\xbf\xef\xbb\xbf" + text.encode()


def _nesting(ws, rng, text):
    depth = rng.choice([5, 20, 30, 100, 1000, 10_000, 100_000])
    kind = rng.randrange(5)
    if kind == 0:
        extra = "deep = " + "[" * depth + "]" * depth
    elif kind == 1:
        extra = "deep = " + "{ a = " * depth + "1" + " }" * depth
    elif kind == 2:
        extra = ".".join(["k"] * min(depth, 20_000)) + " = 1"
    elif kind == 3:
        extra = "[" + ".".join(["t"] * min(depth, 20_000)) + "]\nx = 1"
        return text + "\n" + extra + "\n"
    else:
        extra = "deep = " + "[" * depth  # unbalanced
    return extra + "\n" + text


def _sizes(ws, rng, text):
    kind = rng.randrange(5)
    if kind == 0:
        n = rng.choice([10**3, 10**5, 10**6, 5 * 10**6])
        return text.replace('description = "', 'description = "' + "x" * n, 1) if 'description = "' in text \
            else f'description = "{"x" * n}"\n' + text
    if kind == 1:
        n = rng.choice([100, 20_000, 200_000])
        return "junk = [" + "1," * n + "]\n" + text
    if kind == 2:
        n = rng.choice([5, 50, 600])
        ents = "".join(f'\n[[entity]]\nname = "E{k}"\ncash = 1.0\n' for k in range(n))
        return text + ents
    if kind == 3:
        n = rng.choice([10, 6000])
        return text + "".join('\n[[stake]]\nholder = "Microsoft"\nissuer = "OpenAI"\nshare = 0.0000001\n'
                              for _ in range(n))
    return text + "\n# " + "y" * rng.choice([10**4, 5 * 10**6]) + "\n"


def _sweep(ws, rng, text):
    body = []
    if rng.random() < 0.3:
        body.append("mode = " + rng.choice(['"grid"', '"zip"', '"bogus"', "1"]))
    if rng.random() < 0.2:
        body.append("base = " + rng.choice(["true", "false", '"yes"']))
    for _ in range(rng.choice([1, 1, 2, 3, 6, 9])):
        body.append(f'"{rng.choice(SWEEP_KEYS)}" = {rng.choice(SWEEP_VALUES)}')
    if rng.random() < 0.1:
        body.append("nested = { a = [1, 2] }")
    return text + "\n[sweep]\n" + "\n".join(body) + "\n"


def _name(ws, rng, text):
    import json

    new = json.dumps(rng.choice(NAMES), ensure_ascii=rng.random() < 0.5)
    if re.search(r"^name = ", text, re.M):
        return re.sub(r"^name = .*$", lambda m: "name = " + new, text, count=1, flags=re.M)
    return f"name = {new}\n" + text


def _extends(ws, rng, text):
    import json

    special = rng.random() < 0.5
    target = rng.choice(ws.special_targets if special else ws.plain_targets)
    if target == "a\\u0000b.toml":
        value = '"a\\u0000b.toml"'
    else:
        value = json.dumps(target)
    text = re.sub(r"^extends = .*$\n?", "", text, flags=re.M)
    return f"extends = {value}\n" + text, special


def _batch(ws, rng, text):
    pats = rng.choice(['["base.toml"]', '["*.toml"]', '["nope.toml"]', '"base.toml"', "[1]", '["dir.toml"]',
                       '["pipe.toml"]'])
    extra = rng.choice(["", "paths = 100\n", "paths = 0\n", "seed = -1\n", "chunk_size = 1e400\n", "bogus = 1\n"])
    run = rng.choice(["", '\n[[run]]\nscenario = "base.toml"\nset = { "revenue.growth0" = 0.5 }\n',
                      '\n[[run]]\nscenario = "base.toml"\nsweep = { "revenue.growth0" = [0.1, "x"] }\n',
                      '\n[[run]]\nname = "n"\n'])
    return f"[batch]\nscenarios = {pats}\n{extra}{run}", "pipe" in pats or "*" in pats


def _schedule(ws, rng, text):
    return _replace_value(text, rng, lambda v: rng.choice([
        '{ 2027 = 1.0, "abc" = 2.0 }', "{ 1999 = 1.0 }", "{ 2027 = -5.0 }", "{ 2027 = 1e308 }",
        '{ "2027" = 1.0, 2027 = 2.0 }', "{ 2027 = [1] }", "{ 99999999999999999999 = 1 }", "{}"]))


def _time(ws, rng, text):
    key = rng.choice(["steps_per_year", "horizon_years", "start_year"])
    value = rng.choice(["1", "12", "52", "53", "50", "51", "0", "-1", "1900", "2200", "99999", "2.5", '"4"'])
    if "[time]" in text:
        return text.replace("[time]", f"[time]\n{key} = {value}", 1)
    return text + f"\n[time]\n{key} = {value}\n"


OPERATORS = [_value_type, _value_type, _value_range, _value_range, _value_range, _percent_slip, _key_typo,
             _reference, _delete_line, _duplicate_line, _truncate, _garbage, _encoding, _nesting, _sizes, _sweep,
             _sweep, _name, _extends, _batch, _schedule, _time]
