"""Protocol scenarios as transcripts (STYLE item 9): tests/raft/testdata/*.txt hold commands and the
expected output after each. Rewrite the expected parts with RAFT_REWRITE=1 and review the diff.

Format: lines starting with "> " are commands; the lines after a command, up to the next command,
are its expected output; lines starting with "#" and blank lines are kept as they are.
Commands: elect N | propose N KEY VALUE | read N CTX | isolate N | cut A B | heal | tick K |
crash N | restart N | status | log N | reads N
"""
import os
import pathlib

import pytest

from swarmnode.raft import NotLeader

from .harness import Cluster

DATA = pathlib.Path(__file__).parent / "testdata"
FILES = sorted(DATA.glob("*.txt"))


def _status(c):
    out = []
    for i in c.ids:
        n = c.nodes[i]
        if n is None:
            out.append(f"{i} down")
        else:
            out.append(f"{i} {n.role} term={n.term} leader={n.leader_id} commit={n.commit_index} "
                       f"applied={n.applied_index} last={n.last_log_index} kv={n.sm.kv}")
    return out


def run_command(c, line):
    cmd, *args = line.split()
    if cmd == "elect":
        node = c.nodes[args[0]]
        for _ in range(500):
            node.tick()
            c.pump(args[0])
            c.deliver()
            if node.role == "leader":
                break
        c.tick(2)
        return [f"leader {args[0]} term={node.term}" if node.role == "leader" else f"{args[0]} lost"]
    if cmd == "propose":
        try:
            idx = c.nodes[args[0]].propose({"op": "kv.put", "key": args[1], "value": int(args[2])})
        except NotLeader as e:
            return [f"not leader (hint {e.leader_hint})"]
        c.pump(args[0])
        return [f"index {idx}"]
    if cmd == "read":
        try:
            c.nodes[args[0]].read_index(args[1])
        except NotLeader as e:
            return [f"not leader (hint {e.leader_hint})"]
        c.pump(args[0])
        return []
    if cmd == "reads":
        rs = c.read_states[args[0]]
        dropped = [ctx for rd in c.readies[args[0]] for ctx in rd.dropped_reads]
        return [f"ready {r.ctx}@{r.index}" for r in rs] + [f"dropped {ctx}" for ctx in dropped]
    if cmd == "isolate":
        c.isolate(args[0])
        return []
    if cmd == "cut":
        c.cut.add((args[0], args[1]))
        return []
    if cmd == "heal":
        c.heal()
        return []
    if cmd == "tick":
        c.tick(int(args[0]))
        return []
    if cmd == "crash":
        c.crash(args[0])
        return []
    if cmd == "restart":
        c.start(args[0], salt=7)
        return []
    if cmd == "status":
        return _status(c)
    if cmd == "log":
        lg = c.nodes[args[0]].log
        return [" ".join(f"{e.index}/{e.term}" for e in lg.entries) or "(empty)"]
    raise ValueError(f"unknown command {cmd!r}")


def run_transcript(text):
    """Returns the transcript with each command's output recomputed."""
    c = Cluster(3, seed=0)
    out = []
    for line in text.splitlines():
        if line.startswith("> "):
            out.append(line)
            out.extend(run_command(c, line[2:]))
        elif line.startswith("#") or not line.strip():
            out.append(line)
    return "\n".join(out) + "\n"


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_transcript(path):
    text = path.read_text()
    got = run_transcript(text)
    if os.environ.get("RAFT_REWRITE") == "1":
        path.write_text(got)
        return
    assert got == text, f"{path.name} differs; rerun with RAFT_REWRITE=1 and review the diff"
