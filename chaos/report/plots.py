"""PNG plots of one run (matplotlib, Agg canvas; no pyplot, so no global backend state).

Owns the drawing: the timeline (fault bands over per-node role/term lanes), client latency and
throughput, availability per phase, and the picture of a linearizability counterexample. What is
drawn comes from `chaos.report.timeline` and `chaos.report.evidence`; this module only draws.

Every plot is a `Plot` (file name, title, caption, PNG bytes); `chaos.report.html` writes the files
next to report.html and embeds the same bytes as data: URIs.

Must not import: docker, requests, the runner.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from chaos.report import evidence as evi
from chaos.report import timeline as tl
from chaos.report.load import RunView

DPI = 100
AXIS = "seconds since the cluster came up (the first phase start)"
MAX_CEX_OPS = 60  # operations drawn in a counterexample picture (the checker keeps up to 200 lines)
ROLE_COLORS = {
    "leader": "#2e7d32", "candidate": "#f9a825", "precandidate": "#ffe082", "follower": "#90caf9",
    "booting": "#cfd8dc", "up": "#b0bec5", "unreachable": "#424242", "unknown": "#eeeeee",
}
EFFECT = "#d32f2f"
INTENDED = "#ffcdd2"
OK, FAIL, INFO, OPEN, REFUSED = "#1976d2", "#d32f2f", "#ef6c00", "#6a1b9a", "#7b1fa2"
MARKS = {"suspect": ("v", "#ef6c00"), "dead": ("X", "#000000"), "alive": ("^", "#2e7d32"),
         "left": ("s", "#757575"), "restart": ("o", "#1565c0")}


@dataclass
class Plot:
    name: str       # file name, e.g. plot-timeline.png
    title: str
    caption: str
    png: bytes


def _t(text: object) -> str:
    """Data as literal text: matplotlib reads `$...$` as math (and raises on bad math)."""
    return str(text).replace("$", r"\$")


def _png(fig: Figure) -> bytes:
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    return buf.getvalue()


def _phase_marks(ax, view: RunView, t0: float, label: bool) -> None:
    for p in view.run.get("phases") or []:
        if not isinstance(p, dict) or not isinstance(p.get("start"), (int, float)):
            continue
        x = p["start"] - t0
        ax.axvline(x, color="#9e9e9e", lw=0.8, ls=":")
        if label:
            ax.text(x, 1.0, " " + _t(p.get("name", "")), transform=ax.get_xaxis_transform(), va="bottom",
                    ha="left", fontsize=8, color="#616161")
    heal = view.run.get("heal_ts")
    if isinstance(heal, (int, float)):
        ax.axvline(heal - t0, color="#2e7d32", lw=1.2, ls="--")
        if label:
            ax.text(heal - t0, 0.01, " heal", transform=ax.get_xaxis_transform(), va="bottom", ha="left",
                    fontsize=8, color="#2e7d32", fontweight="bold")


def _band_parts(b: tl.FaultBand, t_end: float) -> list[tuple[float, float, str]]:
    """(start, end, part) with part in intended / effect / healing."""
    out = []
    end = b.stopped if b.stopped is not None else t_end
    if b.intended_start is not None and b.in_effect is not None and b.in_effect > b.intended_start:
        out.append((b.intended_start, b.in_effect, "intended"))
    if b.in_effect is not None:
        eff_end = b.intended_stop if b.intended_stop is not None else end
        out.append((b.in_effect, max(b.in_effect, eff_end), "effect"))
        if b.intended_stop is not None and end > b.intended_stop:
            out.append((b.intended_stop, end, "healing"))
    elif b.intended_start is not None:  # never verified in effect
        out.append((b.intended_start, end, "intended"))
    return out


def _draw_band_part(ax, y: float, h: float, x0: float, x1: float, part: str, alpha: float = 1.0,
                    outline: bool = False) -> None:
    if outline:  # on a node lane: a frame, so the role colours underneath stay readable
        ax.broken_barh([(x0, x1 - x0)], (y, h), facecolors="none", edgecolor=EFFECT,
                       linewidth=1.6 if part == "effect" else 0.8, linestyle="-" if part == "effect" else "--")
        return
    if part == "effect":
        ax.broken_barh([(x0, x1 - x0)], (y, h), facecolors=EFFECT, alpha=alpha, edgecolor="none")
    else:
        ax.broken_barh([(x0, x1 - x0)], (y, h), facecolors=INTENDED, alpha=alpha, edgecolor=EFFECT,
                       hatch="////" if part == "intended" else "\\\\\\\\", linewidth=0.5)


def timeline_plot(view: RunView, lanes: list[tl.Lane], bands: list[tl.FaultBand]) -> Plot:
    t0, t_end = view.t0(), view.t_end()
    rows = len(bands) + len(lanes)
    height = 1.6 + 0.42 * max(rows, 2)
    fig = Figure(figsize=(14, height))
    ax = fig.add_axes((0.1, 1.05 / height, 0.88, 1 - 1.5 / height))
    labels, y = [], rows - 1
    span = max(1e-9, t_end - t0)
    for b in bands:
        for x0, x1, part in _band_parts(b, t_end):
            _draw_band_part(ax, y + 0.15, 0.7, x0 - t0, x1 - t0, part)
        if b.at is not None and b.outcome in ("error", "skipped"):
            ax.plot([b.at - t0], [y + 0.5], marker="X" if b.outcome == "error" else "o", markersize=9,
                    color="#000000" if b.outcome == "error" else "#9e9e9e", linestyle="none")
        start = b.begin if b.begin is not None else b.at
        if start is not None:
            label = b.label if len(b.label) <= 70 else b.label[:69] + "…"
            ax.text(start - t0, y + 0.5, f" {_t(label)}" + ("" if b.stopped is not None or b.outcome else " (never healed)"),
                    va="center", ha="left", fontsize=8, color="#000000", clip_on=True)
        labels.append((y, f"fault {b.fault}"))
        y -= 1
    lane_y = {}
    for lane in lanes:
        lane_y[lane.node] = y
        for s in lane.segments:
            c = ROLE_COLORS.get(s.role, "#e0e0e0")
            ax.broken_barh([(s.start - t0, max(s.end - s.start, span / 2000))], (y + 0.2, 0.6), facecolors=c,
                           edgecolor="white", linewidth=0.3)
            w = (s.end - s.start) / span
            text = f"{s.role} t{s.term}" if s.role == "leader" and s.term is not None else (
                f"t{s.term}" if s.term is not None else "")
            if text and s.end > t0 and (w > 0.03 or s.role == "leader"):  # a segment over before t0: no label
                ax.text(max(s.start - t0, 0.0) + span * 0.002, y + 0.5, text, va="center", ha="left", fontsize=7,
                        color="white" if s.role in ("leader", "unreachable") else "black", clip_on=True)
        for a, b in lane.unreachable:
            ax.broken_barh([(a - t0, max(b - a, span / 2000))], (y + 0.12, 0.12), facecolors=ROLE_COLORS["unreachable"],
                           edgecolor="none")
        for ts, what in lane.marks:
            key = what.split(" ")[0]
            marker, color = MARKS.get(key, ("d", "#000000"))
            ax.plot([ts - t0], [y + 0.85], marker=marker, color=color, markersize=6, linestyle="none")
        if lane.source == "none":
            ax.text(0, y + 0.5, " no journal or status polls", fontsize=7, va="center", color="#9e9e9e")
        labels.append((y, f"{lane.node} ({lane.kind[0] if lane.kind != 'node' else '?'}"
                          f"{', polls' if lane.source == 'status' else ''})"))
        y -= 1
    for b in bands:  # shade the lanes of the nodes a fault targets
        for node in tl.band_targets(b):
            if node in lane_y:
                for x0, x1, part in _band_parts(b, t_end):
                    _draw_band_part(ax, lane_y[node] + 0.08, 0.84, x0 - t0, x1 - t0, part, outline=True)
    if bands:
        ax.axhline(rows - len(bands) - 0.02, color="#616161", lw=0.8)
    _phase_marks(ax, view, t0, label=True)
    ax.set_yticks([yy + 0.5 for yy, _ in labels])
    ax.set_yticklabels([_t(lab) for _, lab in labels], fontsize=8)
    ax.set_ylim(-0.1, rows + 0.05)
    ax.set_xlim(-span * 0.01, span * 1.01)
    ax.set_xlabel(AXIS)
    ax.grid(axis="x", color="#eeeeee")
    handles = [Patch(facecolor=ROLE_COLORS[r], label=r) for r in
               ("leader", "candidate", "precandidate", "follower", "booting", "up")]
    handles.append(Patch(facecolor=ROLE_COLORS["unreachable"], label="unreachable (status polls failed)"))
    handles += [Patch(facecolor=EFFECT, label="fault in effect (verified)"),
                Patch(facecolor=INTENDED, edgecolor=EFFECT, hatch="////", label="fault intended, not yet verified"),
                Patch(facecolor=INTENDED, edgecolor=EFFECT, hatch="\\\\\\\\", label="heal begun, not yet verified")]
    handles += [Line2D([], [], marker=m, color=c, linestyle="none", label=k) for k, (m, c) in MARKS.items()]
    fig.legend(handles=handles, loc="lower center", ncol=9, fontsize=7, frameon=False)
    changes = tl.leader_changes(lanes)
    caption = (f"{len(bands)} fault band(s), {len(lanes)} node lane(s); leaders: "
               + (", ".join(f"{n} t{t} at {ts - t0:.1f} s" for ts, n, t in changes[:12]) or "none seen")
               + ("…" if len(changes) > 12 else ""))
    return Plot("plot-timeline.png", "Timeline: faults and node roles", caption, _png(fig))


def latency_plot(view: RunView, pts: tl.LatencyPoints, bin_s: float, counts: dict[str, list[int]],
                 bands: list[tl.FaultBand]) -> Plot:
    t0, t_end = view.t0(), view.t_end()
    fig = Figure(figsize=(14, 6.2))
    ax = fig.add_axes((0.07, 0.42, 0.9, 0.52))
    ax2 = fig.add_axes((0.07, 0.1, 0.9, 0.24), sharex=ax)
    for b in bands:
        for x0, x1, part in _band_parts(b, t_end):
            for a in (ax, ax2):
                a.axvspan(x0 - t0, x1 - t0, color=EFFECT if part == "effect" else INTENDED,
                          alpha=0.12 if part == "effect" else 0.25, lw=0)
    ax.plot(pts.ok_x, pts.ok_y, ".", color=OK, markersize=2, alpha=0.5, rasterized=True,
            label=f"ok ({pts.ok_shown:,} of {pts.ok_total:,} shown)")
    ax.plot(pts.fail_x, pts.fail_y, "x", color=FAIL, markersize=4, label=f"fail ({len(pts.fail_x):,}, all)")
    ax.plot(pts.info_x, pts.info_y, "d", color=INFO, markersize=3, label=f"info ({len(pts.info_x):,}, all)")
    if pts.refused_x:
        ax.plot(pts.refused_x, pts.refused_y, "+", color=REFUSED, markersize=4, alpha=0.7,
                label=f"refused: cas value mismatch, served ({len(pts.refused_x):,}, all)")
    ys = pts.ok_y + pts.fail_y + pts.info_y + pts.refused_y
    y_top = max(ys) * 1.5 if ys else 1.0
    y_bot = max(1e-5, min(y for y in ys if y > 0) / 1.5) if any(y > 0 for y in ys) else 1e-4
    if pts.open_x:
        ax.plot(pts.open_x, [y_top] * len(pts.open_x), "^", color=OPEN, markersize=5,
                label=f"never completed ({len(pts.open_x):,}, all; drawn at the top)")
    ax.set_yscale("log")
    ax.set_ylim(y_bot, y_top * 1.4)
    ax.set_ylabel("latency (s, log)")
    ax.grid(color="#eeeeee")
    ax.legend(loc="upper left", fontsize=8, markerscale=2, framealpha=0.9)
    _phase_marks(ax, view, t0, label=True)
    xs = [i * bin_s for i in range(len(counts["ok"]))]
    for typ, color in (("ok", OK), ("refused", REFUSED), ("fail", FAIL), ("info", INFO)):
        ax2.step(xs, [c / bin_s for c in counts[typ]], where="post", color=color, lw=1, label=typ)
    _phase_marks(ax2, view, t0, label=False)
    ax2.set_ylabel(f"ops/s ({bin_s:g} s bins)")
    ax2.text(1.0, 1.01, "refused: a cas whose expected value did not match; served, a definite answer",
             transform=ax2.transAxes, ha="right", va="bottom", fontsize=7, color="#616161")
    ax2.set_xlabel(f"{AXIS} (operations by invocation time; throughput by completion)")
    ax2.grid(color="#eeeeee")
    ax2.legend(loc="upper left", fontsize=8)
    span = max(1e-9, t_end - t0)
    ax.set_xlim(-span * 0.01, span * 1.01)
    caption = (f"{pts.ok_total + len(pts.fail_x) + len(pts.info_x) + len(pts.open_x) + len(pts.refused_x):,} operations; "
               + (f"ok points downsampled to {pts.ok_shown:,} (every ok slower than p99 kept); "
                  if pts.ok_shown < pts.ok_total else "")
               + "every refused, fail and info operation is drawn")
    return Plot("plot-latency.png", "Client latency and throughput", caption, _png(fig))


def availability_plot(stats: list[tl.PhaseStat]) -> Plot:
    fig = Figure(figsize=(7, 2.8))
    ax = fig.add_axes((0.1, 0.18, 0.86, 0.7))
    names = [_t(s.name) for s in stats]
    shares = [s.ok_share if s.ok_share is not None else 0.0 for s in stats]
    bars = ax.bar(names, shares, color=[OK if s.ok_share is not None else "#e0e0e0" for s in stats])
    for bar, s in zip(bars, stats):
        text = f"{s.ok_share:.1%}\n{s.served:,}/{s.total:,}" if s.ok_share is not None else "no ops"
        ax.text(bar.get_x() + bar.get_width() / 2, max(bar.get_height(), 0.02), text, ha="center",
                va="bottom", fontsize=8)
    ax.set_ylim(0, 1.3)
    ax.set_ylabel("served share\n(ok + refused cas)")
    ax.set_title("availability per phase (by invocation time)", fontsize=9)
    return Plot("plot-availability.png", "Availability per phase",
                "; ".join(f"{s.name}: {s.served}/{s.total} served ({s.ok} ok, {s.refused} refused)"
                          for s in stats), _png(fig))


def counterexample_plot(view: RunView, key: str, ops: list[evi.CexOp], n: int) -> Plot | None:
    """Operations of the processes involved as bars on a time axis; the linearizable prefix, the
    operation that cannot be placed, and the earlier operations that fix the starting state."""
    if not ops:
        return None
    shown = len(ops)
    if len(ops) > MAX_CEX_OPS:  # bound the picture: the unplaceable op and those just before it
        stuck_at = next((i for i, o in enumerate(ops) if o.stuck), len(ops) - 1)
        keep = sorted(range(len(ops)), key=lambda i: (i != stuck_at, abs(i - stuck_at)))[:MAX_CEX_OPS]
        ops = [ops[i] for i in sorted(keep)]
    use_ts = all(o.invoke_index in view.index_ts for o in ops)
    xt = (lambda i: view.index_ts[i]) if use_ts else (lambda i: float(i))
    starts = [xt(o.invoke_index) for o in ops]
    ends = [xt(o.complete_index) for o in ops if o.complete_index is not None and
            (not use_ts or o.complete_index in view.index_ts)]
    origin = min(starts)
    right = max(starts + ends)
    scale = 1000.0 if use_ts else 1.0
    width = max(1e-9, (right - origin) * scale)
    procs = sorted({o.process for o in ops}, key=lambda p: (len(p), p))
    row = {p: i for i, p in enumerate(reversed(procs))}
    height = 1.4 + 0.5 * len(procs)
    fig = Figure(figsize=(14, height))
    ax = fig.add_axes((0.08, 0.6 / height, 0.9, 1 - 1.0 / height))
    for o in ops:
        x0 = (xt(o.invoke_index) - origin) * scale
        done = o.complete_index is not None and (not use_ts or o.complete_index in view.index_ts)
        x1 = (xt(o.complete_index) - origin) * scale if done else width * 1.08
        if o.stuck:
            face, edge, hatch, what = FAIL, "#7f0000", None, "CANNOT BE PLACED"
        elif o.context:
            face, edge, hatch, what = "#e8f5e9", "#66bb6a", None, "prefix: sets the starting state"
        elif not done or o.type == "info":
            face, edge, hatch, what = "#fff3e0", INFO, "////", "indeterminate (info)"
        else:
            face, edge, hatch, what = "#a5d6a7", "#2e7d32", None, "linearizable prefix"
        y = row[o.process]
        ax.broken_barh([(x0, max(x1 - x0, width / 400))], (y + 0.15, 0.7), facecolors=face, edgecolor=edge,
                       hatch=hatch, linewidth=1.2 if o.stuck else 0.6)
        label = f"{o.f} {o.value}" + ("" if done else "  (no completion →)")
        ax.text(x0 + width * 0.003, y + 0.5, _t(label), va="center", ha="left", fontsize=8,
                color="white" if o.stuck else "black", fontweight="bold" if o.stuck else "normal")
        if o.stuck:
            ax.text(x1 + width * 0.01, y + 0.5, f"← {what}", va="center", ha="left", fontsize=9,
                    color="#b71c1c", fontweight="bold")
    ax.set_yticks([row[p] + 0.5 for p in procs])
    ax.set_yticklabels([_t(f"process {p}") for p in procs], fontsize=8)
    ax.set_ylim(0, len(procs))
    ax.set_xlim(-width * 0.02, width * 1.3)
    ax.set_xlabel("ms since the first operation shown" if use_ts else "history index (no timestamps)")
    ax.grid(axis="x", color="#eeeeee")
    handles = [Patch(facecolor="#a5d6a7", edgecolor="#2e7d32", label="linearizable prefix"),
               Patch(facecolor=FAIL, edgecolor="#7f0000", label="operation that cannot be placed"),
               Patch(facecolor="#fff3e0", edgecolor=INFO, hatch="////", label="indeterminate (may or may not happen)"),
               Patch(facecolor="#e8f5e9", edgecolor="#66bb6a",
                     label="linearizable prefix: earlier ops that leave the starting state(s)")]
    ax.legend(handles=handles, loc="lower center", bbox_to_anchor=(0.5, 1.0),
              ncol=4, fontsize=8, frameon=False)
    stuck = next((o for o in ops if o.stuck), None)
    caption = (f"key {key}: every operation but the red one is in the longest linearizable prefix; "
               + (f"cannot place: {stuck.line}" if stuck else "no unplaceable operation identified")
               + (f" (showing {len(ops)} of {shown} operations, those nearest it)" if shown > len(ops) else ""))
    return Plot(f"plot-counterexample-{n}.png", f"Linearizability counterexample, key {key}", caption, _png(fig))


def render_all(view: RunView) -> list[Plot]:
    """Every plot this run supports (no history: no latency plots; no failure: no counterexample)."""
    plots = []
    lanes = tl.node_lanes(view)
    bands = tl.fault_bands(view.faults)
    if lanes or bands:
        plots.append(timeline_plot(view, lanes, bands))
    if view.ops:
        bin_s, counts = tl.throughput(view)
        plots.append(latency_plot(view, tl.latency_points(view), bin_s, counts, bands))
        stats = tl.phase_stats(view)
        plots.append(availability_plot(stats))
    n = 0
    for c in view.checks:
        if c.get("checker") == "linearizable" and c.get("verdict") == "INVALID":
            for fk in (c.get("evidence") or {}).get("failed_keys", [])[:3]:
                if isinstance(fk, dict):
                    n += 1
                    p = counterexample_plot(view, str(fk.get("key")), evi.parse_counterexample(fk), n)
                    if p is not None:
                        plots.append(p)
    return plots

