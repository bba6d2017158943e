"""Citations lead somewhere: every [SRC:id] resolves to an entry of docs/sources.md.

Standard library only; it does not import `sim`. Checks:
- docs/sources.md: anchors are unique; every entry has a table whose rows each give an
  as-of date, a reliability mark and a source (http(s) URLs, or citations of other
  entries for derived rows and assumptions); every URL in it is http(s).
- scenarios/*.toml, scenarios/README.md, docs/*.md, README.md: every citation resolves,
  citations are well formed, every scenario file cites at least once, every `[S]` label in
  a scenario comment has a citation in its comment block, and every URL a scenario cites
  is listed in docs/sources.md.
- scenarios/, docs/, sim/, README.md name no path outside the repository.
"""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ROOT / "docs" / "sources.md"

CITE = re.compile(r"\[SRC:([a-z0-9-]+)\]")
CITE_START = re.compile(r"\[SRC:")
LINK = re.compile(r"sources\.md#([A-Za-z0-9_-]+)")
ANCHOR = re.compile(r'<a id="([a-z0-9-]+)"></a>')
URL = re.compile(r"https?://[^\s|)\]>\"']+")
URL_LIKE = re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s|)\]>\"']+", re.IGNORECASE)
MARK = re.compile(r"^(ASSUMPTION\b|[FPALSD](?![A-Za-z]))")
TABLE_HEADER = ["what", "as of", "mark", "source"]

# Paths outside the repository that shipped files must not name.
FORBIDDEN = [
    ("/tmp", re.compile(r"/tmp\b")),
    ("/work/", re.compile(r"/work/")),
    ("../shared", re.compile(r"\.\./shared")),
    ("CALIBRATION.md", re.compile(r"CALIBRATION\.md")),
    ("shared/<FILE>.md", re.compile(r"\bshared/[A-Z][A-Z_]*\.md")),
]
# Reference documents that live outside the repository (the repository's own docs are
# lower-case: docs/model.md, docs/scenarios.md, docs/sources.md).
UNSHIPPED_DOCS = re.compile(r"\b(?:MODEL|VALIDATION|ARTICLE|STYLE|CALIBRATION)\.md\b")


def _read(path):
    return path.read_text(encoding="utf-8")


def _strip_code(markdown):
    """Markdown without fenced blocks and inline code spans (examples, not citations)."""
    text = re.sub(r"^```.*?^```[^\n]*$", "", markdown, flags=re.MULTILINE | re.DOTALL)
    return re.sub(r"`[^`\n]*`", "", text)


def _anchors():
    ids = ANCHOR.findall(_strip_code(_read(SOURCES)))
    return ids


def _cited_files():
    files = sorted((ROOT / "scenarios").glob("*.toml"))
    files += sorted((ROOT / "scenarios" / "targets").glob("*.toml"))  # calibrate / anchors targets
    files += [ROOT / "scenarios" / "README.md", ROOT / "README.md"]
    files += sorted((ROOT / "docs").glob("*.md"))
    return [f for f in files if f.exists()]


def _entries():
    """(anchor, heading, body lines) for every anchored heading of docs/sources.md."""
    entries, current = [], None
    in_fence = False
    for line in _read(SOURCES).splitlines():
        if line.startswith("```"):
            in_fence = not in_fence
        if not in_fence and line.startswith("#"):
            m = ANCHOR.search(line)
            current = (m.group(1), line, []) if m else None
            if current:
                entries.append(current)
            continue
        if current is not None:
            current[2].append(line)
    return entries


def _table_rows(lines):
    rows = [ln for ln in lines if ln.strip().startswith("|")]
    cells = [[c.strip() for c in ln.strip().strip("|").split("|")] for ln in rows]
    return cells


def _toml_comment(line):
    """The comment part of a TOML line ('' when none); '#' inside strings is not one."""
    quote = None
    for i, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "\"'":
            quote = ch
        elif ch == "#":
            return line[i:]
    return ""


# ---------------------------------------------------------------------------- (a)

def test_sources_has_unique_anchors():
    ids = _anchors()
    assert len(ids) > 50, "docs/sources.md should define its entries with <a id=...> anchors"
    dup = sorted({i for i in ids if ids.count(i) > 1})
    assert not dup, f"duplicate anchors in docs/sources.md: {dup}"


# ---------------------------------------------------------------------------- (b)

@pytest.mark.parametrize("path", _cited_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_citations_resolve(path):
    anchors = set(_anchors())
    text = _read(path)
    if path.suffix == ".md":
        text = _strip_code(text)
    bad = sorted({c for c in CITE.findall(text) if c not in anchors})
    assert not bad, f"{path.relative_to(ROOT)} cites ids with no anchor in docs/sources.md: {bad}"
    bad_links = sorted({c for c in LINK.findall(text) if c not in anchors})
    assert not bad_links, f"{path.relative_to(ROOT)} links to missing sources.md anchors: {bad_links}"


@pytest.mark.parametrize("path", _cited_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_citations_well_formed(path):
    text = _read(path)
    if path.suffix == ".md":
        text = _strip_code(text)
    malformed = []
    for n, line in enumerate(text.splitlines(), 1):
        for m in CITE_START.finditer(line):
            if not CITE.match(line, m.start()):
                malformed.append(f"line {n}: {line[m.start():m.start() + 30]!r}")
    assert not malformed, f"{path.relative_to(ROOT)}: malformed citations (use [SRC:id]): {malformed}"


# ---------------------------------------------------------------------------- (c)

SCENARIOS = sorted((ROOT / "scenarios").glob("*.toml"))


def test_there_are_scenarios():
    assert SCENARIOS


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.name)
def test_every_scenario_cites(path):
    assert CITE.search(_read(path)), f"{path.name} has no [SRC:id] citation"


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.name)
def test_every_sourced_label_is_cited(path):
    """An `[S]` label has a citation in its comment block (or points to one 'above')."""
    lines = _read(path).splitlines()
    comments = [_toml_comment(ln) for ln in lines]
    full = [ln.lstrip().startswith("#") for ln in lines]
    missing = []
    for i, c in enumerate(comments):
        if "[S]" not in c:
            continue
        if full[i]:
            a = i
            while a > 0 and full[a - 1]:
                a -= 1
            b = i
            while b + 1 < len(lines) and full[b + 1]:
                b += 1
            block = " ".join(comments[a:b + 1])
        else:
            block = c
        if not CITE.search(block) and not re.search(r"see above|same source", block):
            missing.append(f"line {i + 1}: {c.strip()[:70]}")
    assert not missing, f"{path.name}: [S] figures with no [SRC:id] citation: {missing}"


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.name)
def test_scenario_urls_are_listed_in_sources(path):
    listed = {u.rstrip(".,;") for u in URL.findall(_read(SOURCES))}
    cited = {u.rstrip(".,;") for ln in _read(path).splitlines() for u in URL.findall(_toml_comment(ln))}
    missing = sorted(cited - listed)
    assert not missing, f"{path.name} cites URLs that docs/sources.md does not list: {missing}"


# ---------------------------------------------------------------------------- (d)

def _shipped_text_files():
    paths = [ROOT / "README.md"]
    for folder in ("scenarios", "docs", "sim"):
        paths += sorted(p for p in (ROOT / folder).rglob("*") if p.is_file())
    for p in paths:
        if p.suffix == ".pyc" or "__pycache__" in p.parts or not p.exists():
            continue
        data = p.read_bytes()
        if b"\0" in data:
            continue  # binary
        yield p, data.decode("utf-8", errors="replace")


def test_no_paths_outside_the_repository():
    hits = []
    for path, text in _shipped_text_files():
        for n, line in enumerate(text.splitlines(), 1):
            for label, pattern in FORBIDDEN:
                if pattern.search(line):
                    hits.append(f"{path.relative_to(ROOT)}:{n}: {label}: {line.strip()[:90]}")
    assert not hits, "shipped files name paths outside the repository:\n" + "\n".join(hits)


def test_no_unshipped_reference_documents():
    """MODEL.md, VALIDATION.md, ARTICLE.md, ... are not in the repository; cite docs/ or sources.md."""
    hits = []
    for path, text in _shipped_text_files():
        for n, line in enumerate(text.splitlines(), 1):
            if UNSHIPPED_DOCS.search(line):
                hits.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()[:90]}")
    assert not hits, "shipped files name documents that are not shipped:\n" + "\n".join(hits)


# ---------------------------------------------------------------------------- (e)

def test_every_url_in_sources_is_http():
    text = _read(SOURCES)
    bad = sorted({u for u in URL_LIKE.findall(text) if not re.match(r"https?://", u)})
    assert not bad, f"non-http(s) URLs in docs/sources.md: {bad}"
    assert URL.search(text)


def test_every_entry_has_dated_marked_sourced_rows():
    anchors = set(_anchors())
    problems = []
    entries = _entries()
    assert entries
    for anchor, _heading, body in entries:
        if anchor == "suggested-parameters":
            continue  # a section heading, not an entry
        table = _table_rows(body)
        if len(table) < 3:
            problems.append(f"{anchor}: no table with at least one row")
            continue
        header, sep, rows = table[0], table[1], table[2:]
        if [h.lower() for h in header] != TABLE_HEADER:
            problems.append(f"{anchor}: table header {header} is not {TABLE_HEADER}")
            continue
        if not all(set(c) <= set("-: ") for c in sep):
            problems.append(f"{anchor}: second table line is not a separator")
        for row in rows:
            if len(row) != 4:
                problems.append(f"{anchor}: row with {len(row)} cells: {row}")
                continue
            what, as_of, mark, source = row
            if not what:
                problems.append(f"{anchor}: row with no description")
            if not re.search(r"\d{4}", as_of):
                problems.append(f"{anchor}: row {what[:40]!r} has no as-of date")
            if not MARK.match(mark):
                problems.append(f"{anchor}: row {what[:40]!r} has no reliability mark (F/P/A/L/S/D/ASSUMPTION)")
                continue
            urls = URL.findall(source)
            cites = CITE.findall(source)
            if any(c not in anchors for c in cites):
                problems.append(f"{anchor}: row {what[:40]!r} cites a missing anchor")
            if mark.startswith("ASSUMPTION"):
                if not source:
                    problems.append(f"{anchor}: assumption {what[:40]!r} gives no basis")
            elif not urls and not cites:
                problems.append(f"{anchor}: row {what[:40]!r} ({mark}) gives no URL or citation")
    assert not problems, "docs/sources.md entries:\n" + "\n".join(problems)
