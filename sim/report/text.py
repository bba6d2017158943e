"""Text blocks of the report: a small Markdown subset and scenario TOML to HTML (escaped), cited URLs, the method."""

from __future__ import annotations

import os
import re

from sim.report.findings import esc


# ------------------------------------------------------------------------------ text blocks
def markdown_to_html(text: str) -> str:
    """A small, safe Markdown subset (headings, paragraphs, lists, code, bold, italics);
    everything is escaped first, so no HTML in the source survives."""
    lines = text.splitlines()
    out: list[str] = []
    para: list[str] = []
    items: list[str] = []
    code: list[str] = []
    fence = False

    def inline(s: str) -> str:
        s = esc(s)
        s = re.sub(r"`([^`]+)`", r"<code>\1</code>", s)
        s = re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", s)
        s = re.sub(r"(?<![*\w])\*([^*\s][^*]*)\*(?![*\w])", r"<em>\1</em>", s)
        return s

    def flush():
        if para:
            out.append("<p>" + inline(" ".join(para)) + "</p>")
            para.clear()
        if items:
            out.append("<ul>" + "".join(f"<li>{inline(i)}</li>" for i in items) + "</ul>")
            items.clear()
        if code:
            out.append('<pre class="eq">' + esc("\n".join(code)) + "</pre>")
            code.clear()

    for line in lines:
        if line.strip().startswith("```"):
            if fence:
                flush()
            else:
                flush()
            fence = not fence
            continue
        if fence:
            code.append(line)
            continue
        if line.startswith("<!--"):
            continue
        if line.startswith("    ") and not items and not para:
            code.append(line[4:])
            continue
        if code and line.strip() == "":
            code.append("")
            continue
        if code:
            while code and code[-1] == "":
                code.pop()
            flush()
        m = re.match(r"^(#{1,6})\s+(.*)$", line)
        if m:
            flush()
            level = min(len(m.group(1)) + 2, 6)
            out.append(f"<h{level}>{inline(m.group(2))}</h{level}>")
        elif re.match(r"^\s*[-*]\s+", line):
            if para:
                flush()
            items.append(re.sub(r"^\s*[-*]\s+", "", line))
        elif line.strip() == "":
            flush()
        elif items and line.startswith("  "):
            items[-1] += " " + line.strip()
        else:
            para.append(line.strip())
    flush()
    return "\n".join(out)


_URL = re.compile(r"https?://[^\s\"'<>()\]]+")


def toml_to_html(text: str) -> str:
    """The scenario TOML, escaped, with comments set apart (they hold the sources)."""
    out = []
    for line in text.splitlines():
        code, comment = _split_comment(line)
        piece = esc(code)
        if comment:
            piece += f'<span class="c">{esc(comment)}</span>'
        out.append(piece)
    return '<pre class="toml">' + "\n".join(out) + "</pre>"


def _split_comment(line: str) -> tuple[str, str]:
    quote = None
    i = 0
    while i < len(line):
        ch = line[i]
        if quote:
            if ch == "\\" and quote == '"':
                i += 2
                continue
            if ch == quote:
                quote = None
        elif ch in "\"'":
            quote = ch
        elif ch == "#":
            return line[:i], line[i:]
        i += 1
    return line, ""


def cited_sources(text: str) -> list[str]:
    """The URLs cited in a scenario's comments, in order, without repeats."""
    seen = []
    for line in text.splitlines():
        _, comment = _split_comment(line)
        for url in _URL.findall(comment):
            url = url.rstrip(".,;")
            if url not in seen:
                seen.append(url)
    return seen


def method_html() -> str:
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    for path in (os.path.join(root, "docs", "model.md"), os.path.join(os.getcwd(), "docs", "model.md")):
        if os.path.exists(path):
            with open(path, encoding="utf-8") as fh:
                return markdown_to_html(fh.read())
    return markdown_to_html(_METHOD_SUMMARY)


_METHOD_SUMMARY = """\
The lab's annualised revenue follows a log-Euler geometric Brownian motion whose drift decays
from `growth0` to `growth_inf`, with a boom / AI-winter Markov regime:

    ln R_{t+Δ} = ln R_t + (g_t - σ_t²/2) Δ + σ_t √Δ z_R,   g_t = g_∞ + (g_0 - g_∞) 2^(-t/h)

A common AI-sentiment factor (log Ornstein-Uhlenbeck, correlated with revenue) scales every
equity value and the lab's capacity to raise new equity. Each quarter all obligations (compute
contracts, investment tranches, network loans, outside debt service) are cleared jointly with the
Eisenberg-Noe greatest clearing vector with Rogers-Veraart default costs:

    p_i = min(p̄_i, α e_i + β Σ_j Π_ji p_j)  for defaulting i,  p_i = p̄_i otherwise

An entity defaults when it cannot pay in full (liquidity) or its book equity falls below zero
(solvency); each default is fundamental if it would have happened had every network counterparty
paid in full, contagious otherwise (Elsinger-Lehar-Summer). Probabilities carry binomial standard
errors and 95% Wilson intervals; VaR and ES come from a streamed log-spaced loss histogram.
"""
