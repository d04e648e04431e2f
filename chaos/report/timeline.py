"""What the report's pictures show, as plain data (no drawing): fault bands, node lanes, latency
points, throughput and availability per phase.

Owns the rules that turn run-directory records into intervals:
  * fault bands (faults.jsonl): one band per application of a fault, from `intend-start` (the harness
    began applying it) through `start` (verified in effect) and `intend-stop` (heal begun) to `stop`
    (heal verified). Older runs with only `start` / `stop` give bands without an intended part. A
    band never stopped runs to the end of the run and says so.
  * node lanes: a manager's role and term over time from its journal (`role`, `term`, `boot`
    events, contracts section 4) with the periods its status polls failed, else from status.jsonl
    polls; a worker's lane from status polls
    (reachable or not), else its journal boots; gossip `member` events about a node become marks
    on its lane (suspected / dead / alive by whom).
  * latency points: every refused, fail and info operation, and the ok operations downsampled to a
    bound (all ok operations slower than the 99th percentile are kept, the rest by even stride).
  * a cas refused on a value mismatch (`fail` with error `cas-mismatch` in the history) was served:
    it is counted and drawn as `refused`, never as `fail`, and counts as served for availability.
  * the time origin of every picture is where the cluster came up (`RunView.t0`: the first phase
    start), not where the command started (an image build can take most of that time).

Must not import: docker, requests, matplotlib, the runner.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from dataclasses import dataclass, field
from typing import Any

from chaos.report.load import RunView, is_num

MAX_OK_POINTS = 20_000
RAFT_ROLES = ("leader", "candidate", "precandidate", "follower")


@dataclass
class FaultBand:
    fault: str
    kind: str
    groups: list[list[str]]   # targets: one group per node, or a partition's sides
    details: Any
    intended_start: float | None = None  # intend-start (or the start's intended_ts)
    in_effect: float | None = None       # start: verified in effect
    intended_stop: float | None = None   # intend-stop: heal begun
    stopped: float | None = None         # stop: heal verified
    outcome: str = ""                    # "", or error / skipped / aborted, with `reason`
    reason: str = ""
    at: float | None = None              # when it errored or was skipped
    planned: float | None = None         # the plan's start (intend-start planned_ts)
    selector_wait: float | None = None   # of the lateness: the selector's wait (no leader, `of:` not fired)

    @property
    def begin(self) -> float | None:
        return self.intended_start if self.intended_start is not None else self.in_effect

    @property
    def partition_sides(self) -> bool:
        return len(self.groups) > 1 and any(len(g) > 1 for g in self.groups)

    @property
    def where(self) -> str:
        """`m1, m2` for plain targets; `m1 | m2 m3` for the sides of a partition."""
        if self.partition_sides:
            return " | ".join(" ".join(g) for g in self.groups)
        return ", ".join(n for g in self.groups for n in g) or "?"

    @property
    def label(self) -> str:
        text = f"{self.fault} {self.kind} → {self.where}"
        return f"{text} ({self.outcome}: {self.reason})" if self.outcome else text


def _flat_targets(t: Any) -> list[str]:
    if isinstance(t, list):
        out: list[str] = []
        for x in t:
            out.extend(_flat_targets(x) if isinstance(x, list) else [str(x)])
        return out
    return [str(t)] if t is not None else []


def _groups(t: Any) -> list[list[str]]:
    """Targets as groups: a list of lists stays grouped (a partition's sides), anything else is one
    group per node."""
    if isinstance(t, list) and t and all(isinstance(x, list) for x in t):
        return [_flat_targets(g) for g in t]
    return [[n] for n in _flat_targets(t)]


def _reason(rec: dict) -> str:
    d = rec.get("details")
    if isinstance(d, dict):
        for k in ("error", "reason"):
            if d.get(k):
                return str(d[k])
    return ""


def fault_bands(faults: list[dict]) -> list[FaultBand]:
    """Bands in the order faults began. Besides the four actions: `error` (the fault could not be
    applied or verified), `skipped` (e.g. no leader to target) and a `stop` with `aborted` (the run
    was interrupted) mark the band; `heal` (the final heal of every link) is no band."""
    bands: list[FaultBand] = []
    open_by_id: dict[str, FaultBand] = {}
    for i, rec in enumerate(sorted(faults, key=lambda r: r["ts"])):
        action = rec.get("action")
        if action == "heal":
            continue
        fid = str(rec.get("fault") or f"{rec.get('kind', 'fault')}#{i}")
        ts = float(rec["ts"])
        band = open_by_id.get(fid)
        new = action in ("intend-start", "start") and (band is None or action == "intend-start"
                                                       or band.in_effect is not None)
        if new or (band is None and action in ("error", "skipped")):
            band = FaultBand(fid, str(rec.get("kind") or "?"), _groups(rec.get("targets")), rec.get("details"))
            bands.append(band)
            open_by_id[fid] = band
        if band is None:
            continue
        if action == "intend-start":
            band.intended_start = ts
            band.planned = float(rec["planned_ts"]) if is_num(rec.get("planned_ts")) else None
            band.selector_wait = float(rec["selector_wait_s"]) if is_num(rec.get("selector_wait_s")) else None
        elif action == "start":
            band.in_effect = ts
            band.details = rec.get("details", band.details)
            if band.intended_start is None and is_num(rec.get("intended_ts")):
                band.intended_start = float(rec["intended_ts"])
        elif action == "intend-stop":
            band.intended_stop = ts
        elif action == "stop":
            band.stopped = ts
            if rec.get("aborted"):
                band.outcome, band.reason = "aborted", _reason(rec) or "the run was interrupted"
            open_by_id.pop(fid, None)
        elif action in ("error", "skipped"):
            band.outcome, band.reason, band.at = action, _reason(rec), ts
            if not band.groups:
                band.groups = _groups(rec.get("targets"))
            open_by_id.pop(fid, None)
    return bands


def band_targets(band: FaultBand) -> set[str]:
    """Nodes to mark on their lanes: the targets, or for a partition given as groups the smallest
    group (the side cut off; marking both sides would mark every node)."""
    groups = band.groups
    if band.partition_sides:
        smallest = min(len(g) for g in groups)
        return {n for g in groups if len(g) == smallest for n in g}
    return {n for g in groups for n in g}


@dataclass
class Segment:
    start: float
    end: float
    role: str           # leader / candidate / precandidate / follower / booting / up / unreachable / ...
    term: int | None = None


@dataclass
class Lane:
    node: str
    kind: str           # manager / worker / node
    source: str         # "journal", "status" or "none"
    segments: list[Segment] = field(default_factory=list)
    marks: list[tuple[float, str]] = field(default_factory=list)
    # periods its status polls failed (drawn under a journal lane: a killed node's journal simply
    # stops, so without them a killed leader would look like a leader until it restarts)
    unreachable: list[tuple[float, float]] = field(default_factory=list)


def _unreachable(polls: list[dict], t_end: float) -> list[tuple[float, float]]:
    out: list[tuple[float, float]] = []
    start = None
    for p in polls:
        st = p.get("status")
        failed = not isinstance(st, dict) or "error" in st
        if failed and start is None:
            start = float(p["ts"])
        elif not failed and start is not None:
            out.append((start, float(p["ts"])))
            start = None
    if start is not None:
        out.append((start, t_end))
    return out


def _close(segs: list[Segment], t_end: float) -> list[Segment]:
    out: list[Segment] = []
    for i, s in enumerate(segs):
        s.end = segs[i + 1].start if i + 1 < len(segs) else max(t_end, s.start)
        if out and out[-1].role == s.role and out[-1].term == s.term:
            out[-1].end = s.end
        elif s.end > s.start or i + 1 == len(segs):
            out.append(s)
    return out


def _journal_segments(evs: list[dict], t_end: float) -> list[Segment]:
    segs: list[Segment] = []
    role, term = None, None
    for e in evs:
        if not is_num(e.get("ts")):
            continue
        typ = e.get("type")
        if typ == "boot":
            role = "booting"
        elif typ == "role" and isinstance(e.get("role"), str):
            role = e["role"]
            term = e.get("term") if is_num(e.get("term")) else term
        elif typ == "term" and is_num(e.get("term")):
            term = e["term"]
        else:
            continue
        segs.append(Segment(float(e["ts"]), float(e["ts"]), role or "unknown", int(term) if term is not None else None))
    return _close(segs, t_end)


def _status_segments(polls: list[dict], t_end: float) -> list[Segment]:
    segs: list[Segment] = []
    for p in polls:
        st = p.get("status")
        if not isinstance(st, dict) or "error" in st:
            role, term = "unreachable", None
        else:
            role = st.get("role") if st.get("role") in RAFT_ROLES else "up"
            term = st.get("term") if is_num(st.get("term")) else None
        segs.append(Segment(float(p["ts"]), float(p["ts"]), role, int(term) if term is not None else None))
    return _close(segs, t_end)


def node_lanes(view: RunView) -> list[Lane]:
    t_end = view.t_end()
    polls: dict[str, list[dict]] = {}
    for s in view.status:
        if isinstance(s.get("node"), str):
            polls.setdefault(s["node"], []).append(s)
    lanes = []
    for node, kind in view.node_roles().items():
        evs = view.journals.get(node, [])
        has_roles = any(e.get("type") == "role" for e in evs)
        if kind != "worker" and has_roles:
            lane = Lane(node, kind, "journal", _journal_segments(evs, t_end))
            lane.unreachable = _unreachable(sorted(polls.get(node, []), key=lambda p: p["ts"]), t_end)
        elif polls.get(node):
            lane = Lane(node, kind, "status", _status_segments(sorted(polls[node], key=lambda p: p["ts"]), t_end))
        elif evs:
            lane = Lane(node, kind, "journal", _journal_segments(evs, t_end))
            for s in lane.segments:
                if s.role == "booting":
                    s.role = "up"
        else:
            lane = Lane(node, kind, "none")
        for e in evs:
            if e.get("type") == "boot" and is_num(e.get("ts")) and (e.get("boot") or 1) > 1:
                lane.marks.append((float(e["ts"]), f"restart (boot {e.get('boot')})"))
        lanes.append(lane)
    by_node = {lane.node: lane for lane in lanes}
    for node, evs in view.journals.items():
        last: dict[str, str] = {}  # member -> state as this node saw it
        for e in evs:
            member, state = e.get("member"), e.get("state")
            if e.get("type") != "member" or member not in by_node or member == node or not is_num(e.get("ts")):
                continue
            before = last.get(member)
            last[member] = state
            # joining as alive is no news; alive again after suspect/dead is a recovery
            if state in ("suspect", "dead", "left") or (state == "alive" and before in ("suspect", "dead")):
                by_node[member].marks.append((float(e["ts"]), f"{state} (by {node})"))
    for lane in lanes:
        lane.marks.sort()
    return lanes


def leader_changes(lanes: list[Lane]) -> list[tuple[float, str, int | None]]:
    """(time, node, term) of every leader segment start, in time order."""
    out = [(s.start, lane.node, s.term) for lane in lanes for s in lane.segments if s.role == "leader"]
    return sorted(out, key=lambda x: x[0])


# --- client operations ------------------------------------------------------------------------


@dataclass
class LatencyPoints:
    ok_x: list[float]
    ok_y: list[float]
    fail_x: list[float]
    fail_y: list[float]
    info_x: list[float]     # completed info operations (timeouts, lost connections)
    info_y: list[float]
    refused_x: list[float]  # cas refused with cas-mismatch: served (fail in the history, served for availability)
    refused_y: list[float]
    open_x: list[float]     # invoked, never completed: drawn at the top of the plot
    ok_total: int
    ok_shown: int


def latency_points(view: RunView, max_ok: int = MAX_OK_POINTS) -> LatencyPoints:
    t0 = view.t0()
    oks: list[tuple[float, float]] = []
    pts = LatencyPoints([], [], [], [], [], [], [], [], [], 0, 0)
    for op in view.ops:
        if op.invoke_ts is None:
            continue
        x = op.invoke_ts - t0
        lat = op.latency_s
        if lat is None:
            pts.open_x.append(x)
        elif op.type == "ok":
            oks.append((x, lat))
        elif op.refused:
            pts.refused_x.append(x)
            pts.refused_y.append(lat)
        elif op.type == "fail":
            pts.fail_x.append(x)
            pts.fail_y.append(lat)
        else:
            pts.info_x.append(x)
            pts.info_y.append(lat)
    pts.ok_total = len(oks)
    if len(oks) > max_ok:
        lats = sorted(lat for _, lat in oks)
        p99 = lats[int(0.99 * (len(lats) - 1))]
        tail = [o for o in oks if o[1] > p99]
        rest = [o for o in oks if o[1] <= p99]
        stride = max(1, math.ceil(len(rest) / max(1, max_ok - len(tail))))
        oks = sorted(tail + rest[::stride])
    pts.ok_shown = len(oks)
    pts.ok_x = [x for x, _ in oks]
    pts.ok_y = [y for _, y in oks]
    return pts


def throughput(view: RunView, bin_s: float | None = None) -> tuple[float, dict[str, list[int]]]:
    """Completions per bin by kind (ok / refused / fail / info; a never-completed op counts as info at
    its invocation; a cas refused with cas-mismatch is `refused`, not `fail`). Returns (bin width in
    seconds, {kind: counts}); bin 0 starts at t0."""
    t0, t1 = view.t0(), view.t_end()
    span = max(1e-9, t1 - t0)
    if bin_s is None:
        want = span / 240
        bin_s = next((b for b in (0.25, 0.5, 1, 2, 5, 10, 30, 60, 300) if b >= want), 600)
    n = max(1, math.ceil(span / bin_s))
    out = {"ok": [0] * n, "refused": [0] * n, "fail": [0] * n, "info": [0] * n}
    for op in view.ops:
        t = op.complete_ts if op.complete_ts is not None else op.invoke_ts
        if t is None:
            continue
        i = min(n - 1, max(0, int((t - t0) / bin_s)))
        typ = "refused" if op.refused else op.type
        out[typ if typ in out else "info"][i] += 1
    return bin_s, out


@dataclass
class PhaseStat:
    name: str
    start: float
    end: float
    ok: int = 0
    refused: int = 0   # cas refused on a value mismatch: served, a definite answer
    fail: int = 0
    info: int = 0

    @property
    def total(self) -> int:
        return self.ok + self.refused + self.fail + self.info

    @property
    def served(self) -> int:
        """ok and refused: the operations the cluster answered for good (what availability counts)."""
        return self.ok + self.refused

    @property
    def ok_share(self) -> float | None:
        """The share served (ok or refused), as the availability checker's `ok_share`."""
        return self.served / self.total if self.total else None


def phase_stats(view: RunView) -> list[PhaseStat]:
    """Operations per run.json phase by invocation time (as the availability checker assigns them);
    without phases, one phase `run`. A cas refused with `cas-mismatch` is counted as `refused` (served)."""
    phases = [p for p in (view.run.get("phases") or []) if isinstance(p, dict) and is_num(p.get("start"))]
    stats = [PhaseStat(str(p.get("name", "?")), float(p["start"]),
                       float(p["end"]) if is_num(p.get("end")) else math.inf) for p in phases]
    if not stats:
        stats = [PhaseStat("run", -math.inf, math.inf)]
    stats.sort(key=lambda s: s.start)
    starts = [s.start for s in stats]
    for op in view.ops:
        if op.invoke_ts is None:
            continue
        i = bisect_right(starts, op.invoke_ts) - 1
        if i < 0 or op.invoke_ts >= stats[i].end:
            continue
        s = stats[i]
        if op.type == "ok":
            s.ok += 1
        elif op.refused:
            s.refused += 1
        elif op.type == "fail":
            s.fail += 1
        else:
            s.info += 1
    return stats
