"""The report: the HTML page with findings, tables and every figure, the gallery, the PDF.

`html.py` assembles the page (`build_report`), `findings.py` writes sentences and tables
from the numbers, `gallery.py` renders every figure of a results folder, `text.py` turns the
model notes and scenario files into escaped HTML, `browser.py` finds Chromium for the PDF.
The figures themselves live in `sim.plots`.
"""
