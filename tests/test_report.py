"""The HTML report: self-contained, escaped, generated from results on disk, and loading
cleanly in a real headless Chromium (skipped only where no Chromium is installed)."""

import base64
import copy
import io
import json
import os
import re
import xml.etree.ElementTree as ET

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402

from sim.cli.main import main  # noqa: E402
from sim.plots.inputs import load_inputs, manifest_sweeps  # noqa: E402
from sim.report.findings import run_findings  # noqa: E402
from sim.report.text import cited_sources, markdown_to_html, toml_to_html  # noqa: E402

from .cdp import Browser, find_chromium  # noqa: E402
from .conftest import SMALL  # noqa: E402

XSS = "<script>alert(1)</script>"
EVIL_ENTITY = 'Inv<img src=x onerror="alert(2)">'
PATHS = 3000


def _rename(d, old, new):
    for e in d["entity"]:
        if e["name"] == old:
            e["name"] = new
    for inv in d.get("investment", []):
        inv["investor"] = new if inv["investor"] == old else inv["investor"]
    for s in d.get("stake", []):
        s["holder"] = new if s["holder"] == old else s["holder"]
    return d


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    from sim.engine.api import run
    from sim.scenario.loader import scenario_from_dict

    root = tmp_path_factory.mktemp("report")
    results = root / "results"
    base = copy.deepcopy(SMALL)
    base["description"] = "Plain small network."
    run(scenario_from_dict(base), paths=PATHS).write(str(results / "small"))
    evil = _rename(copy.deepcopy(SMALL), "Investor", EVIL_ENTITY)
    evil["name"] = "evil"
    evil["description"] = f"A description with {XSS} & <b>markup</b>"
    evil["regime"]["enter_prob"] = 0.3
    run(scenario_from_dict(evil), paths=PATHS).write(str(results / "evil"))
    manifest = {"bubblesim_version": "test", "seed": 7, "chunk_size": 8192, "command": ["bubblesim", "batch", "x"],
                "variants": [{"name": "small", "folder": "small", "source": "small.toml", "overrides": {}},
                             {"name": "evil", "folder": "evil", "source": "evil.toml", "overrides": {}}]}
    (results / "manifest.json").write_text(json.dumps(manifest))
    (results / "sensitivity.json").write_text(json.dumps({"metric": "p2", "rows": [
        {"param": "revenue.growth0", "low_value": 0.5, "high_value": 0.9, "metric_low": 0.4, "metric_high": 0.2,
         "base": 0.3},
        {"param": EVIL_ENTITY, "low_value": 1, "high_value": 2, "metric_low": 0.29, "metric_high": 0.33, "base": 0.3}]}))
    (results / "sweep_growth.csv").write_text("revenue.growth0,regime.enter_prob,metric\n"
                                              + "".join(f"{g},{e},{0.1 * g + e}\n" for g in (0.4, 0.7)
                                                        for e in (0.1, 0.2)))
    out = root / "report"
    argv = ["report", str(results), "--out", str(out), "--quiet"]
    chromium = find_chromium()
    if chromium:
        argv.append("--pdf")
    assert main(argv) == 0
    html = (out / "report.html").read_text(encoding="utf-8")
    return {"root": root, "results": results, "out": out, "html": html, "pdf": bool(chromium)}


def test_report_writes_each_figure_once_as_shown(built):
    """Default: one PNG per figure, as wide as the page shows it; the embedded image is the
    file's bytes (drawn once); no SVG, no 300 dpi copy unless asked for (--hi-res)."""
    from sim.report.gallery import EMBED_WIDTH_PX

    figs = built["out"] / "figures"
    pngs = sorted(figs.rglob("*.png"))
    # 7 single-run figures for each of 2 runs, the comparison, one tornado, one sweep
    assert len(pngs) == 7 * 2 + 3
    assert not list(figs.rglob("*.svg"))
    embedded = {base64.b64decode(src.split(",", 1)[1])
                for src in re.findall(r'<img[^>]*\ssrc="([^"]*)"', built["html"])}
    for p in pngs:
        data = p.read_bytes()
        width = int.from_bytes(data[16:20], "big")
        assert 600 <= width <= EMBED_WIDTH_PX + 1
        assert data in embedded, f"{p.name}: the page embeds the file's own bytes"


def test_hi_res_figure_files(built, tmp_path):
    """--hi-res: PNG at 300 dpi and SVG; the page gets the 300 dpi PNG scaled to its width
    (not a second drawing)."""
    from matplotlib.image import imread

    from sim.report.gallery import EMBED_WIDTH_PX, RenderOptions, plan_jobs, render_job

    inp = load_inputs(str(built["results"]))
    jobs, _ = plan_jobs(inp)
    job = next(j for j in jobs if j["name"] == "cascade_size")
    out = render_job(inp, job, str(tmp_path), RenderOptions(hi_res=True))
    png, svg = out["files"]
    assert png.endswith(".png") and svg.endswith(".svg")
    assert ET.parse(svg).getroot().tag.endswith("svg")
    h, w = imread(png).shape[:2]
    assert w > 2000  # 300 dpi
    assert out["item"]["width"] <= EMBED_WIDTH_PX + 1 and out["item"]["height"] < h
    small = base64.b64decode(out["item"]["uri"].split(",", 1)[1])
    assert int.from_bytes(small[16:20], "big") == out["item"]["width"]


def test_parallel_rendering_is_deterministic(built, tmp_path):
    """Figures drawn in worker processes come back in job order, byte for byte as drawn in one."""
    from sim.report.gallery import RenderOptions, plan_jobs, render_jobs

    inp = load_inputs(str(built["results"]))
    jobs, _ = plan_jobs(inp)
    jobs = [j for j in jobs if j["name"] in ("revenue_fan", "default_decomposition")][:3]
    serial = render_jobs(inp, jobs, str(tmp_path / "a"), RenderOptions(workers=1))
    pooled = render_jobs(inp, jobs, str(tmp_path / "b"), RenderOptions(workers=3))
    assert [o["item"]["id"] for o in serial] == [o["item"]["id"] for o in pooled] == [
        (f"{j['sub']}-" if j["sub"] else "") + j["name"] for j in jobs]
    assert [o["item"]["uri"] for o in serial] == [o["item"]["uri"] for o in pooled]


def test_small_probabilities_keep_their_digits(built):
    """Text never hides 0.02% as 0.0%, and a gap that never happens is 'none', not '0.0% in 2029'."""
    from sim.report.findings import comparison_table

    res = copy.deepcopy(load_inputs(str(built["results"])).runs["small"])
    res["p2"], res["p2_lo"], res["p2_hi"] = 0.0002, 0.00014, 0.0003
    res["p_gap"] = [0.0] * len(res["p_gap"])
    text = " ".join(run_findings("small", res))
    assert "0.020% (95% interval 0.014% to 0.030%)" in text
    assert "never faces an unfunded funding gap" in text
    assert "0.0%" not in text
    table = comparison_table({"small": res})
    assert "0.020%" in table and "0.0% " not in table and ">none<" in table


def test_report_is_self_contained(built):
    html = built["html"]
    assert "<script" not in html.lower()
    assert "<link" not in html.lower()
    assert "Content-Security-Policy" in html and "default-src 'none'" in html
    srcs = re.findall(r'<img[^>]*\ssrc="([^"]*)"', html)
    assert len(srcs) == 7 * 2 + 3
    for src in srcs:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    assert not re.search(r'\ssrc="(?!data:)', html), "no external resources"
    assert not re.search(r'url\((?!data:)', html)


def test_scenario_strings_are_escaped(built):
    html = built["html"]
    assert XSS not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<img src=x" not in html
    assert not re.search(r"<[^>]*\sonerror\s*=", html), "no event-handler attribute in any tag"
    assert "Inv&lt;img src=x onerror=&quot;alert(2)&quot;&gt;" in html
    assert "&lt;b&gt;markup&lt;/b&gt;" in html


def test_report_sections_and_findings(built):
    html = built["html"]
    for section in ("Key findings", "Comparison of runs", "Sensitivity (tornado)", "Parameter sweeps",
                    "Method in brief", "Scenario assumptions and sources", "Reproducibility"):
        assert f">{section}</h2>" in html
    inp = load_inputs(str(built["results"]))
    assert list(inp.runs) == ["small", "evil"]  # manifest order
    res = inp.runs["small"]
    pd = [row[-1] for row in res["pd"]]
    top = res["entities"][pd.index(max(pd))]
    first = run_findings("small", res)[0]
    assert f"<b>{top}</b>" in first and f"{100 * max(pd):.1f}%" in first
    assert first in html
    assert "P(2+ defaults) ranges from" in html
    assert "most sensitive to <b>revenue.growth0</b>" in html
    # comparison table: one row per run, with the numbers of the results
    table = html.split('id="comparison"')[1].split("</table>")[0]
    assert table.count("<tr>") == 1 + 2
    assert f"{100 * res['p2']:.1f}%" in table
    # the scenario file with its comments, and the manifest
    assert "[[entity]]" in html and "manifest.json" in html


def test_pdf_when_chromium_present(built):
    if not built["pdf"]:
        # ./test.sh installs chromium where it can (as root with apt-get, as in CI): there it must work
        assert not os.environ.get("CI"), "CI: chromium should have been installed by ./test.sh"
        pytest.skip("no Chromium: --pdf skipped gracefully")
    data = (built["out"] / "report.pdf").read_bytes()
    assert data[:5] == b"%PDF-" and len(data) > 50_000


def test_report_in_headless_chromium(built):
    exe = find_chromium()
    if exe is None:
        print("SKIP REASON: /usr/bin/chromium not found (apt-get install -y chromium)")
        assert not os.environ.get("CI"), "CI: chromium should have been installed by ./test.sh"
        pytest.skip("Chromium is not installed (/usr/bin/chromium); apt-get install -y chromium")
    b = Browser(exe)
    try:
        for domain in ("Page", "Runtime", "Log"):
            b.call(f"{domain}.enable")
        b.call("Emulation.setDeviceMetricsOverride", width=1200, height=1600, deviceScaleFactor=1, mobile=False)
        url = "file://" + os.path.abspath(built["out"] / "report.html")
        b.call("Page.navigate", url=url)
        b.wait_event("Page.loadEventFired")
        images = b.evaluate("Promise.all(Array.from(document.images).map(i => i.decode().then("
                            "() => [i.naturalWidth, i.naturalHeight], () => [0, 0])))")
        assert len(images) == 7 * 2 + 3
        assert all(w > 0 and h > 0 for w, h in images), images
        assert b.evaluate("document.querySelectorAll('script').length") == 0
        text = b.evaluate("document.body.innerText")
        assert XSS in text, "the <script> of the description is shown as text"
        assert EVIL_ENTITY in text
        assert b.evaluate("document.querySelectorAll('img[onerror]').length") == 0
        shot = b.call("Page.captureScreenshot", format="png")["data"]
        errors = b.console_errors()
    finally:
        b.close()
    assert errors == [], errors
    from PIL import Image, ImageStat

    img = Image.open(io.BytesIO(base64.b64decode(shot))).convert("L")
    assert img.size[0] >= 1000
    stat = ImageStat.Stat(img)
    assert stat.stddev[0] > 10, "screenshot is blank"
    dark = sum(img.histogram()[:200]) / (img.size[0] * img.size[1])
    assert dark > 0.01, "screenshot has almost no ink"


# ------------------------------------------------------------------------------ pieces
def test_markdown_is_escaped_and_structured():
    md = "# Title\n\nText with `code` and **bold** <script>x</script>.\n\n    y = a + b\n\n- one\n- two\n"
    out = markdown_to_html(md)
    assert "<script>" not in out and "&lt;script&gt;" in out
    assert "<h3>Title</h3>" in out and "<code>code</code>" in out and "<strong>bold</strong>" in out
    assert '<pre class="eq">y = a + b</pre>' in out
    assert "<ul><li>one</li><li>two</li></ul>" in out


def test_toml_comments_and_sources():
    src = 'name = "a # not a comment"  # [S] 10-K, https://example.com/x.\n# <b>note</b>\n'
    out = toml_to_html(src)
    assert '"a # not a comment"' in out.replace("&quot;", '"')
    assert '<span class="c"># [S] 10-K, https://example.com/x.</span>' in out
    assert "&lt;b&gt;note&lt;/b&gt;" in out
    assert cited_sources(src) == ["https://example.com/x"]


def test_manifest_sweeps(built):
    inp = load_inputs(str(built["results"]))
    r = inp.runs["small"]
    inp.runs = {}
    for g in (0.4, 0.6):
        for e in (0.1, 0.2):
            rr = copy.deepcopy(r)
            rr["_variant"] = {"source": "s.toml", "overrides": {"revenue.growth0": g, "regime.enter_prob": e}}
            inp.runs[f"s[{g},{e}]"] = rr
    sweeps = manifest_sweeps(inp)
    assert {s["metric"] for s in sweeps} == {"p2", "lab_pd"}
    s = sweeps[0]
    assert s["x"] == "regime.enter_prob" or s["x"] == "revenue.growth0"
    assert len(s["rows"]) == 4 and all(set(row["params"]) == {"revenue.growth0", "regime.enter_prob"}
                                       for row in s["rows"])


def test_report_cli_bad_folder(tmp_path, capsys):
    assert main(["report", str(tmp_path / "missing"), "--out", str(tmp_path / "r")]) == 2
    assert "no such results folder" in capsys.readouterr().err
