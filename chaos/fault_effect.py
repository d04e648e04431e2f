"""Evidence that a fault took effect (not only that it was started): pure judgments from what the
harness saw, each an `effect` object for faults.jsonl: `{"effective": true|false, "evidence": ...,
"why": text}`. The `fault-effective:NAME` expectation (chaos.checkers.expectations) reads them.

- partition (`partition_effect`): the verification probes showed the cut: at least one link this
  fault must cut was probed and did not carry the probe, and the links it must leave open that were
  probed still carried theirs (a verification that failed never gets here: it raises).
- node fault (`node_down_effect`, `node_back_effect`): every target stopped answering its status
  probe while the fault was on (start record), or came back with a higher boot count (stop record).
- link fault (`link_effect`): timed probes through the fault's links while the toxic was listed:
  latency / stall: most probes came back late by at least the added delay (latency - jitter), or
  not within their timeout (a flaky one: any probe); reset / flaky-cut / flaky-reset / limit: a probe did not get through; for the toxics a
  small probe cannot feel (bandwidth, slice, slow-close, a flaky one of those) the evidence is that
  the links carried probe traffic while the server listed the toxic on them (the server applies a
  listed toxic to every byte it forwards), which is weaker and says so (`acted: "listed-while-carrying"`).

Must not import: click, docker, requests (the callers do the I/O).
"""

from __future__ import annotations

from typing import Iterable, Mapping

# ops whose effect a small probe sees, and how
DELAY_OPS = ("latency", "stall", "flaky-latency", "flaky-stall")
DROP_OPS = ("reset", "flaky-cut", "flaky-reset", "flaky-timeout")
# how many probes a link fault's evidence takes at most (a flaky toxic acts on a share of connections)
LINK_PROBES = 16
LINK_PROBES_FLAKY = 24


def partition_effect(fault_cut: Iterable, agreed_cut: Iterable, agreed_open: Iterable,
                     dropped: Iterable = ()) -> dict:
    """`fault_cut`: the (src, dst) links this fault cuts; `agreed_cut` / `agreed_open`: the links
    the verification probed and found cut / open (src, dst); `dropped`: not asserted (a node down)."""
    mine = {tuple(x) for x in fault_cut}
    seen_cut = sorted(mine & {tuple(x) for x in agreed_cut})
    seen_open = sorted({tuple(x) for x in agreed_open} - mine)
    ev = {"cut_links": len(mine), "probed_cut": len(seen_cut), "probed_open": len(seen_open),
          "dropped": len(list(dropped)), "examples": [f"{a}->{b}" for a, b in seen_cut[:3]]}
    if not mine:
        return {"effective": False, "evidence": ev, "why": "the partition cuts no link"}
    if not seen_cut:
        return {"effective": False, "evidence": ev,
                "why": "no link of this cut was probed as cut (already cut by another fault, or its nodes down)"}
    return {"effective": True, "evidence": ev,
            "why": f"{len(seen_cut)} link(s) of the cut did not carry a probe; {len(seen_open)} open link(s) did"}


def node_down_effect(answers: Mapping[str, dict | None]) -> dict:
    """`answers`: target -> its status answer right after the fault was applied (None: no answer)."""
    silent = sorted(n for n, a in answers.items() if a is None)
    talking = sorted(n for n, a in answers.items() if a is not None)
    ev = {"silent": silent, "answering": talking}
    if not answers:
        return {"effective": False, "evidence": ev, "why": "no target was probed"}
    if talking:
        return {"effective": False, "evidence": ev, "why": f"{', '.join(talking)} still answered its status probe"}
    return {"effective": True, "evidence": ev, "why": f"{', '.join(silent)} stopped answering"}


def node_back_effect(boot_before: Mapping[str, int | None], boot_after: Mapping[str, int | None]) -> dict:
    """After the undo (restart / start): which targets came back with a higher boot count."""
    rebooted = sorted(n for n, b in boot_after.items()
                      if isinstance(b, int) and isinstance(boot_before.get(n), int) and b > boot_before[n])
    ev = {"boot_before": dict(boot_before), "boot_after": dict(boot_after), "rebooted": rebooted}
    if boot_after and len(rebooted) == len(boot_after):
        return {"effective": True, "evidence": ev, "why": f"{', '.join(rebooted)} booted again"}
    return {"effective": False, "evidence": ev, "why": "no higher boot count seen on every target"}


def link_effect(op: str, params: Mapping, probes: list[Mapping]) -> dict:
    """`probes`: [{"link", "reachable", "rtt_ms", "timeout_ms"}] taken through the fault's links while
    its toxic was listed on them."""
    ev = {"probes": len(probes), "through": sum(1 for p in probes if p.get("reachable")),
          "rtts_ms": sorted(p["rtt_ms"] for p in probes if p.get("rtt_ms") is not None)[:8]}
    if not probes:
        return {"effective": False, "evidence": ev, "why": "no probe could be taken through the links"}
    if op in DELAY_OPS:
        # A toxic that acts delays every probe by at least its added delay (latency - jitter); a loaded
        # machine delays some probes without any toxic, so most probes must be that late (any one
        # for a flaky toxic, which acts on a share of connections only).
        added = _added_delay_ms(params)
        late = [p for p in probes if not p.get("reachable")
                or (p.get("rtt_ms") is not None and p["rtt_ms"] >= added)]
        ev["added_ms"] = added
        need = 1 if op.startswith("flaky-") else len(probes) // 2 + 1
        if len(late) >= need:
            return {"effective": True, "acted": "delayed", "evidence": ev,
                    "why": f"{len(late)} of {len(probes)} probe(s) late by >= {added:g} ms or unanswered"}
        return {"effective": False, "evidence": ev,
                "why": f"{len(late)} of {len(probes)} probe(s) delayed by {added:g} ms or more (needed {need})"}
    if op in DROP_OPS or op == "limit":
        dropped = [p for p in probes if not p.get("reachable")]
        if dropped:
            return {"effective": True, "acted": "dropped", "evidence": ev,
                    "why": f"{len(dropped)} of {len(probes)} probe(s) did not get through"}
        if op == "limit":  # a limit above a probe's few bytes: the probes carried traffic through it
            return _carried(ev)
        return {"effective": False, "evidence": ev, "why": "every probe got through"}
    return _carried(ev)


def _carried(ev: dict) -> dict:
    if ev["through"]:
        return {"effective": True, "acted": "listed-while-carrying", "evidence": ev,
                "why": f"{ev['through']} probe(s) carried through links listing the toxic"}
    return {"effective": False, "evidence": ev, "why": "no probe got through the links"}


def _added_delay_ms(params: Mapping) -> float:
    for key in ("ms", "latency"):
        v = params.get(key)
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return max(0.0, float(v) - float(params.get("jitter_ms") or params.get("jitter") or 0))
    return 0.0


def probe_timeout_ms(op: str, params: Mapping) -> int:
    """A probe's timeout for this link fault: long enough to see an added delay come back."""
    if op in DELAY_OPS:
        return int(min(3000, max(500, _added_delay_ms(params) * 2 + 300)))
    return 500


def resource_effect(kind: str, asked, applied: Mapping[str, dict], undone: Mapping[str, dict]) -> dict:
    """cpu / memory: the engine reported the asked limit on every target's container after the
    update (`applied[node]["after"]`), read back from its settings; a memory fault that made the
    kernel kill the agent (`undone[node]["oom_killed"]`) took effect beyond doubt and says so.
    Weaker than a probe: the settings show the limit was in force, not that the node felt it."""
    per, wrong = {}, []
    for node, rec in sorted(applied.items()):
        after = (rec or {}).get("after") or {}
        got = after.get("cpus") if kind == "cpu" else after.get("memory")
        ok = got is not None and (abs(float(got) - float(asked)) < 1e-6 if kind == "cpu" else int(got) == int(asked))
        back = undone.get(node) or {}
        per[node] = {"limit_read_back": got, "oom_killed": bool(back.get("oom_killed")),
                     **({"usage_before": rec.get("usage")} if rec.get("usage") is not None else {})}
        if not ok:
            wrong.append(node)
    ev = {"asked": asked, "nodes": per}
    if not applied:
        return {"effective": False, "evidence": ev, "why": "no target's limit was read back"}
    if wrong:
        return {"effective": False, "evidence": ev,
                "why": f"{', '.join(wrong)}: the container does not show the asked {kind} limit"}
    oom = sorted(n for n, p in per.items() if p["oom_killed"])
    if oom:
        return {"effective": True, "acted": "oom-killed", "evidence": ev,
                "why": f"{', '.join(oom)}: the kernel OOM-killed the node under the {asked}-byte limit"}
    return {"effective": True, "acted": "limit-in-force", "evidence": ev,
            "why": f"{', '.join(sorted(per))}: the engine shows the {kind} limit {asked} on the container"}


def power_loss_effect(down: Mapping, boot_before: Mapping[str, int | None], restarted: Mapping[str, Mapping]) -> dict:
    """A power loss took effect when every target answered again after its restart AND reported (its
    `/status` `power_loss`, for the boot it answered with) that it found this fault's marker and cut
    its files back to their synced lengths before reading them; where the boot count before is known
    (managers: the nemesis's view), it must also have risen. `restarted`: target -> its restart
    record (`boot`, `power_loss`). The evidence keeps the bytes dropped per file and node; 0 bytes
    dropped is still a power loss that took effect (everything written had been fsynced: what a
    correct agent usually shows)."""
    cut, missing = {}, []
    boot_after = {}
    for n in sorted(boot_before):
        rec = restarted.get(n) if isinstance(restarted.get(n), Mapping) else {}
        boot_after[n] = rec.get("boot")
        pl = rec.get("power_loss")
        before = boot_before.get(n)
        rose = not isinstance(before, int) or (isinstance(rec.get("boot"), int) and rec["boot"] > before)
        if isinstance(pl, Mapping) and isinstance(rec.get("boot"), int) and pl.get("boot") == rec["boot"] and rose:
            cut[n] = {"dropped_bytes": pl.get("dropped_bytes"),
                      "files": {f: (r or {}).get("dropped") for f, r in (pl.get("files") or {}).items()},
                      **({"removed_tmp": pl["removed_tmp"]} if pl.get("removed_tmp") else {})}
        else:
            missing.append(n)
    ev = {"down": down, "boot_before": dict(boot_before), "boot_after": boot_after, "cut": cut}
    if not boot_before:
        return {"effective": False, "evidence": ev, "why": "no target"}
    if missing:
        return {"effective": False, "evidence": ev,
                "why": f"{', '.join(missing)}: no power-loss cut reported for a new boot (not back, the "
                       "marker not honoured, or already down by another fault)"}
    total = sum(c.get("dropped_bytes") or 0 for c in cut.values())
    return {"effective": True, "evidence": ev,
            "why": f"{', '.join(sorted(cut))} booted again cut back to their last fsync ({total} bytes dropped)"}


def wipe_effect(down: Mapping, wiped: Mapping[str, Mapping], restarted: Mapping[str, Mapping]) -> dict:
    """A wipe took effect when every target stopped answering while it was wiped (`down`), this fault's
    helper emptied its data volume (`wiped`: node -> its apply record, `detail.wiped` from
    swarmnode.durability wipe, which removes at least the boot counter of a node that ever booted),
    and it came back as a fresh node: boot count 1 (`restarted`: its start record). Whether it then
    rejoined the gossip network and was given tasks is for the checks (convergence, swarm-liveness
    `rejoin`). A target another fault had already taken down was not wiped by this one."""
    def removed(rec):
        det = rec.get("detail") if isinstance(rec, Mapping) else None
        w = det.get("wiped") if isinstance(det, Mapping) else None
        return w.get("removed_files") if isinstance(w, Mapping) else None

    targets = sorted(set(restarted) | set(wiped))
    boot_after = {n: (restarted[n].get("boot") if isinstance(restarted.get(n), Mapping) else None) for n in targets}
    emptied = {n: removed(wiped.get(n)) for n in targets}
    fresh = sorted(n for n in targets if boot_after.get(n) == 1 and (emptied.get(n) or 0) >= 1)
    ev = {"down": down, "removed_files": emptied, "boot_after": boot_after, "fresh": fresh}
    if not targets:
        return {"effective": False, "evidence": ev, "why": "no target"}
    if not down.get("effective"):
        return {"effective": False, "evidence": ev, "why": down.get("why") or "the targets did not go silent"}
    stale = [n for n in targets if n not in fresh]
    if stale:
        return {"effective": False, "evidence": ev,
                "why": f"{', '.join(stale)}: not emptied by this fault or not back as a fresh node "
                       f"(files removed {[emptied.get(n) for n in stale]}, boot {[boot_after.get(n) for n in stale]})"}
    return {"effective": True, "evidence": ev,
            "why": f"{', '.join(fresh)} went silent, had its disk emptied and booted again as a fresh node"}


def disk_full_effect(filled: Mapping[str, Mapping], freed: Mapping[str, Mapping],
                     seen: Mapping[str, Mapping | None]) -> dict:
    """A disk-full took effect when every target's data volume refused a write probe (ENOSPC) after
    its ballast was written (`filled`: node -> fill record, its `detail` from swarmnode.durability
    fill), and (stop) a write probe succeeded again once it was removed (`freed`). `seen`: the
    node's status taken while full: whether the agent's own writes had failed yet (`disk_error`,
    `journal_disk`) is kept as evidence, not required (an idle node may not have written)."""
    def detail(rec):
        return (rec.get("detail") if isinstance(rec, Mapping) and isinstance(rec.get("detail"), Mapping) else rec) or {}

    full = {n: detail(r) for n, r in filled.items()}
    back = {n: detail(r) for n, r in freed.items() if isinstance(r, Mapping) and not r.get("kept")}
    agent = {n: bool(s and (s.get("disk_error") or s.get("journal_disk"))) for n, s in seen.items()}
    ev = {"full": {n: {k: d.get(k) for k in ("free_before", "ballast_bytes", "free_after", "probe")} for n, d in full.items()},
          "freed": {n: {k: d.get(k) for k in ("free_after", "probe")} for n, d in back.items()},
          "agent_saw_write_errors": agent}
    refused = sorted(n for n, d in full.items() if d.get("probe") == "ENOSPC")
    if not full or len(refused) < len(full):
        return {"effective": False, "evidence": ev,
                "why": "no target's data volume was filled by this fault" if not full
                else f"a write probe was not refused on {sorted(set(full) - set(refused))}"}
    unfreed = sorted(n for n, d in back.items() if d.get("probe") != "ok")
    if unfreed:
        return {"effective": False, "evidence": ev, "why": f"writes still failed after the fault on {unfreed}"}
    return {"effective": True, "evidence": ev,
            "why": f"{', '.join(refused)} refused writes (ENOSPC) while full"
                   + (f"; the agent on {', '.join(n for n, s in agent.items() if s)} saw its writes fail"
                      if any(agent.values()) else "")}
