"""The worked example examples/analyst_session.ipynb runs top to bottom (nbclient, a real
kernel): load, override, run, compare, plot, write and read back."""

import os
import re

import pytest

from .conftest import ROOT

NOTEBOOK = os.path.join(ROOT, "examples", "analyst_session.ipynb")


def test_analyst_notebook_executes(monkeypatch):
    nbformat = pytest.importorskip("nbformat")  # the test extra installs nbclient, nbformat and ipykernel
    from nbclient import NotebookClient

    monkeypatch.setenv("BUBBLESIM_NOTEBOOK_PATHS", "16384")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": ROOT}}).execute()
    text = "\n".join(o.get("text", "") + str(o.get("data", {}).get("text/plain", ""))
                     for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "Paired differences B - A" in text
    assert re.search(r"revenue\.growth0: [0-9.]+ -> 0\.6\n", text)
    assert "entity.Oracle.debt:" in text
    figures = sum("image/png" in o.get("data", {}) for c in nb.cells if c.cell_type == "code"
                  for o in c.get("outputs", []))
    assert figures == 3  # pd_term_structure, scenario_comparison, revenue_fan
    for c in nb.cells:
        for o in c.get("outputs", []) if c.cell_type == "code" else []:
            assert o.get("output_type") != "error", o
