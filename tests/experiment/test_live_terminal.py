"""The console in a real terminal (a pseudo-terminal): the start-up spinner stops for good before
the run's live display takes over, and nothing is glued onto a stale spinner line (issue 16 item 6);
piped, the same run prints plain lines without control sequences."""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import sys
import time

SCRIPT = r"""
import time
from chaos.env.progress import RichProgress
from chaos.live import LiveDisplay

class W:  # the runner's parts the display reads
    counts = {"ok": 0, "fail": 0, "info": 0}
class R:
    writer = W(); poller = None; nemesis = None
    def current_phase(self): return "steady"

p = RichProgress()
p.step("waiting for a leader")
for i in range(5):
    p.detail(f"{i} node(s)")
    time.sleep(0.1)
p.close()
print("cluster up", flush=True)
time.sleep(0.6)          # a spinner still running would draw frames here
live = LiveDisplay("exp", 10.0)
live.start(R())
live.event("phase steady")
time.sleep(1.2)
live.stop()
print("verdict table", flush=True)
"""

SPINNER = re.compile("[\u2800-\u28ff]")  # rich's dots spinner frames are braille characters


def _run_in_pty() -> str:
    master, slave = pty.openpty()
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "120", "LINES": "40"}
    env.pop("NO_COLOR", None)
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT], stdin=slave, stdout=slave, stderr=slave, env=env,
                            close_fds=True)
    os.close(slave)
    chunks = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        r, _, _ = select.select([master], [], [], 0.2)
        if r:
            try:
                data = os.read(master, 65536)
            except OSError:
                break
            if not data:
                break
            chunks.append(data)
        elif proc.poll() is not None:
            break
    proc.wait(timeout=10)
    os.close(master)
    return b"".join(chunks).decode("utf-8", "replace")


def test_live_terminal_spinner_stops_before_the_run_display():
    out = _run_in_pty()
    assert "cluster up" in out and "verdict table" in out, out
    before, after_up = out.split("cluster up", 1)
    assert SPINNER.search(before), "the spinner never ran in the terminal (test is not testing)"
    gap, _ = after_up.split("phase", 1) if "phase" in after_up else (after_up, "")
    assert not SPINNER.search(gap), "spinner frames after the spinner was closed"
    tail = after_up.split("verdict table", 1)[1]
    assert not SPINNER.search(tail)
    assert "waiting for a leader" not in after_up.split("verdict table", 1)[0].split("exp", 1)[-1], \
        "stale spinner text glued onto later lines"


def test_live_terminal_piped_output_is_plain_lines():
    proc = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=30)
    text = proc.stdout + proc.stderr
    assert "\x1b[" not in text, "control sequences in piped output"
    assert "[    0.0s] phase steady" in text or "phase steady" in text
    assert not SPINNER.search(text)
