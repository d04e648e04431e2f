"""The live console of `chaos run`: phase, elapsed and remaining time, operations per second
(ok / refused / fail / info), the current leader and term, and the faults in effect. A cas refused
on a value mismatch was served: it is shown as `refused`, never as `fail`.

In a terminal (and without NO_COLOR) a rich Live panel on stderr, refreshed twice a second and
stopped before anything else is printed; otherwise plain lines (phase changes, fault events, and a
status line every 5 s), so CI logs stay readable. Data is never interpreted as markup.
Must not import: click, docker.
"""

from __future__ import annotations

import os
import sys
import threading
import time

from rich.console import Console
from rich.text import Text

PLAIN_EVERY_S = 5.0


class LiveDisplay:
    def __init__(self, experiment: str, bound_s: float, force_plain: bool | None = None):
        self.console = Console(stderr=True, highlight=False, markup=False, emoji=False, soft_wrap=True)
        plain = force_plain if force_plain is not None else (
            not self.console.is_terminal or bool(os.environ.get("NO_COLOR")))
        self.plain = plain
        self.experiment = experiment
        self.bound_s = bound_s
        self.runner = None
        self._live = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._t0 = time.monotonic()
        self._last_counts: dict[str, int] = {}
        self._last_t = time.monotonic()
        self._rates = {"ok": 0.0, "refused": 0.0, "fail": 0.0, "info": 0.0}
        self._events: list[str] = []
        self._lock = threading.Lock()

    # -- called by the runner --

    def start(self, runner) -> None:
        self.runner = runner
        self._t0 = time.monotonic()
        if not self.plain:
            from rich.live import Live
            self._live = Live(self._render(), console=self.console, refresh_per_second=4, transient=True)
            self._live.start()
        self._thread = threading.Thread(target=self._loop, name="live-display", daemon=True)
        self._thread.start()

    def phase(self, name: str) -> None:
        self.event(f"phase {name}")

    def event(self, text: str) -> None:
        stamp = f"{time.monotonic() - self._t0:7.1f}s"
        with self._lock:
            self._events = (self._events + [f"{stamp} {text}"])[-4:]
        if self.plain:
            self.console.print(Text(f"[{stamp}] {text}"))

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
            self._thread = None
        if self._live is not None:
            self._live.stop()
            self._live = None

    # -- internals --

    def _loop(self) -> None:
        last_plain = time.monotonic()
        while not self._stop.wait(0.5):
            self._sample()
            if self._live is not None:
                self._live.update(self._render())
            elif time.monotonic() - last_plain >= PLAIN_EVERY_S:
                last_plain = time.monotonic()
                self.console.print(Text(self._status_line()))

    def _sample(self) -> None:
        writer = getattr(self.runner, "writer", None)
        if writer is None:
            return
        counts = dict(writer.counts)
        counts["fail"] = counts.get("fail", 0) - counts.get("refused", 0)  # `fail` lines include refused cas
        now = time.monotonic()
        dt = max(1e-6, now - self._last_t)
        for k in self._rates:
            self._rates[k] = (counts.get(k, 0) - self._last_counts.get(k, 0)) / dt
        self._last_counts, self._last_t = counts, now

    def _leader(self) -> str:
        poller = getattr(self.runner, "poller", None)
        last = dict(getattr(poller, "last", {}) or {})
        best = None
        for node, st in last.items():
            if st and st.get("role") == "leader":
                if best is None or (st.get("term") or 0) > best[1]:
                    best = (node, st.get("term") or 0)
        return f"{best[0]} (term {best[1]})" if best else "none"

    def _faults(self) -> str:
        nem = getattr(self.runner, "nemesis", None)
        if nem is None:
            return "-"
        act = nem.active()
        if not act:
            return "none"
        return "; ".join(f"{a.fid} {a.kind} {_targets(a.targets)}" for a in act)

    def _status_line(self) -> str:
        elapsed = time.monotonic() - self._t0
        phase = self.runner.current_phase() if self.runner else "-"
        return (f"{self.experiment} | {phase} | {elapsed:5.0f}s / ~{self.bound_s:.0f}s | ops/s {self._rates_text(' ')} "
                f"| leader {self._leader()} | faults {self._faults()}")

    def _rates_text(self, gap: str) -> str:
        r = self._rates
        return gap.join(f"{k} {r[k]:.0f}" for k in ("ok", "refused", "fail", "info"))

    def _render(self):
        from rich.table import Table
        elapsed = time.monotonic() - self._t0
        t = Table.grid(padding=(0, 2))
        t.add_column(style="bold")
        t.add_column()
        phase = self.runner.current_phase() if self.runner else "starting"
        t.add_row("experiment", Text(self.experiment))
        t.add_row("phase", Text(f"{phase}   {elapsed:.0f} s elapsed, about {max(0.0, self.bound_s - elapsed):.0f} s left"))
        t.add_row("ops/s", Text(self._rates_text("   ")))
        t.add_row("leader", Text(self._leader()))
        t.add_row("faults", Text(self._faults()))
        with self._lock:
            events = list(self._events)
        for e in events:
            t.add_row("", Text(e, style="dim"))
        return t


def _targets(targets) -> str:
    if targets and isinstance(targets[0], list):
        return " | ".join(",".join(g) for g in targets)
    return ",".join(targets) if targets else "-"


def stderr_is_terminal() -> bool:
    return sys.stderr.isatty()
