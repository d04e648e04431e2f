"""Headless Chromium for looking at reports as a person would: a screenshot, console messages,
and a test for a blank page.

Chromium is Debian's `chromium` package (.ci/run installs it). Without it the browser tests skip,
unless CI is set: then they fail, so CI can never pass without having looked at a report.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from PIL import Image

_CONSOLE = re.compile(r":(INFO|WARNING|ERROR):CONSOLE[^\]]*\]\s*(.*)")


def chromium_or_skip() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        exe = shutil.which(name)
        if exe:
            return exe
    if os.environ.get("CI", "").lower() not in ("", "0", "false", "no"):
        pytest.fail("chromium is not installed but CI is set: install it (apt-get install -y chromium)")
    pytest.skip("chromium not installed (apt-get install -y chromium); CI unset")


def screenshot(page: Path, png: Path, width: int = 1400, height: int = 3000) -> list[str]:
    """Render `page` headless into `png`; return the page's console messages (errors included)."""
    exe = chromium_or_skip()
    with tempfile.TemporaryDirectory(prefix="chaos-chromium-") as profile:
        proc = subprocess.run(
            [exe, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions",
             f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0", "--hide-scrollbars",
             f"--screenshot={png}", f"--window-size={width},{height}", page.resolve().as_uri()],
            capture_output=True, text=True, timeout=180)
    assert png.exists() and png.stat().st_size > 0, f"no screenshot: rc={proc.returncode}\n{proc.stderr[-2000:]}"
    return [m.group(2) for m in map(_CONSOLE.search, proc.stderr.splitlines()) if m]


def ink_share(png: Path) -> float:
    """Share of pixels that differ from the most common colour (0.0: a uniform, blank image)."""
    img = Image.open(png).convert("RGB")
    img.thumbnail((700, 1500))
    colors = img.getcolors(maxcolors=1 << 20) or []
    if not colors:
        return 1.0
    background = max(c for c, _ in colors)
    total = img.width * img.height
    return 1.0 - background / total
