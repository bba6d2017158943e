"""Headless Chromium: finding it and printing the report to PDF."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from typing import Callable


# ------------------------------------------------------------------------------ PDF
def find_chromium() -> str | None:
    """A Chromium or Chrome executable: $BUBBLESIM_CHROMIUM, else the usual names on PATH, else Debian's path.

    The one place that looks for a browser: the PDF export and the browser tests both use it.
    """
    env = os.environ.get("BUBBLESIM_CHROMIUM")
    if env and os.path.exists(env):
        return env
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome"):
        p = shutil.which(name)
        if p:
            return p
    for path in ("/usr/bin/chromium", "/usr/bin/chromium-browser"):  # Debian's, when PATH lacks /usr/bin
        if os.path.exists(path):
            return path
    return None


CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-extensions",
                  "--disable-default-apps", "--mute-audio"]


def html_to_pdf(html_path: str, pdf_path: str, log: Callable[[str], None] | None = None,
                timeout: float = 120.0) -> str | None:
    """Print the report to PDF with headless Chromium; None (and a message) if there is none."""
    log = log or (lambda m: None)
    exe = find_chromium()
    if exe is None:
        log("PDF skipped: no Chromium found (apt-get install chromium, or set BUBBLESIM_CHROMIUM)")
        return None
    with tempfile.TemporaryDirectory(prefix="bubblesim-chromium-") as profile:
        cmd = [exe, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--no-pdf-header-footer",
               f"--print-to-pdf={os.path.abspath(pdf_path)}", "file://" + os.path.abspath(html_path)]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        except (OSError, subprocess.TimeoutExpired) as err:
            log(f"PDF skipped: Chromium failed ({err})")
            return None
    if proc.returncode != 0 or not os.path.exists(pdf_path) or os.path.getsize(pdf_path) == 0:
        log(f"PDF skipped: Chromium exited with {proc.returncode}: {proc.stderr.strip()[-300:]}")
        return None
    log(f"wrote {pdf_path}")
    return pdf_path
