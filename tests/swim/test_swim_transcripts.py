"""Scenario transcripts (etcd-io/raft datadriven style): tests/swim/testdata/*.txt hold commands
and the membership trace they must produce. SWIM_REWRITE=1 regenerates the expected parts; review
the diff like code.

Commands (one per line, prefixed by "> "; the lines after a command are its expected output):
  sim n=4 seed=3 [loss=0.1]      new simulator (bootstrap: all members know each other)
  run MS                         advance virtual time; output: trace lines "t observer member state inc"
  crash X | restart X | pause X | resume X | leave X | stop_left X
  partition a,b|c,d | heal
  set X key value | del X key    endpoint table writes at node X
  members X | endpoints X        X's view
Must not import: chaos, asyncio, socket (simulation only).
"""

import os
import pathlib

import pytest

from swarmnode.sim.swim_sim import SwimSim

DATA = pathlib.Path(__file__).parent / "testdata"
FILES = sorted(DATA.glob("*.txt"))


def _execute(sim_box, line):
    words = line.split()
    cmd, args = words[0], words[1:]
    sim = sim_box.get("sim")
    if cmd == "sim":
        kw = dict(a.split("=") for a in args)
        sim_box["sim"] = SwimSim(n=int(kw.get("n", 4)), seed=int(kw.get("seed", 0)),
                                 loss=float(kw.get("loss", 0)))
        return []
    mark = len(sim.trace)
    if cmd == "run":
        sim.run_for(int(args[0]))
    elif cmd in ("crash", "restart", "pause", "resume", "leave", "stop_left"):
        getattr(sim, cmd)(args[0])
    elif cmd == "partition":
        sim.partition(*[g.split(",") for g in args[0].split("|")])
    elif cmd == "heal":
        sim.heal()
    elif cmd == "set":
        sim.local(args[0], lambda nd: nd.set_endpoint(args[1], args[2]))
    elif cmd == "del":
        sim.local(args[0], lambda nd: nd.delete_endpoint(args[1]))
    elif cmd == "members":
        return [f"{m} {s} {i}" for m, (s, i) in sorted(sim.view(args[0]).items())]
    elif cmd == "endpoints":
        return [f"{k} = {e.value} (owner {e.owner} v{e.version})"
                for k, e in sorted(sim.nodes[args[0]].endpoints().items())]
    else:
        raise ValueError(f"unknown transcript command {cmd!r}")
    return [f"{t} {o} {m} {s} {i}" for (t, o, m, s, i) in sim.trace[mark:]]


def run_transcript(path):
    """Returns (expected text, actual text). Commands, comments and blank lines are the input;
    every other line is expected output and is regenerated after its command."""
    text = path.read_text()
    out, box = [], {}
    for line in text.splitlines():
        if line.startswith("> "):
            out.append(line)
            out.extend(_execute(box, line[2:]))
        elif line.startswith("#") or not line.strip():
            out.append(line)
    return text, "\n".join(out) + "\n"


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_transcript_matches(path):
    expected, actual = run_transcript(path)
    if os.environ.get("SWIM_REWRITE"):
        path.write_text(actual)
        return
    assert actual == expected, f"{path.name} differs; regenerate with SWIM_REWRITE=1 and review"
