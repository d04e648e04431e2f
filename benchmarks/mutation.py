"""Benchmark: mutation testing of the protocol cores, judged by the simulators and the fast tests.

A small AST mutation runner (written for this project): each mutant changes one site of
node_image/swarmnode/raft/core.py, raft/log.py or swim/core.py with one operator --
  cmp      flip a comparison (< <=, > >=, == !=, is / is not, in / not in)
  const    off-by-one on an integer constant (n+1 and n-1)
  negate   negate the condition of an if / while / ternary
  boolop   and <-> or
  arith    + <-> - on a binary operation
  drop     replace one statement of a function body by `pass`
-- and is judged in a subprocess on a copy of node_image/swarmnode (PYTHONPATH puts the copy first):
  1. the simulator: Raft mutants run seeds of the hunting profile (+ one default-profile seed);
     SWIM mutants run seeded chaos runs of swarmnode.sim.swim_checks; any violation, liveness or
     efficiency failure, or hit bound kills;
  2. if it survives, the fast unit tests of that core (pytest -x).
A mutant that fails to import, raises in the judge or exceeds the per-judge timeout is killed.
`equivalent`: surviving mutants that only touch observability counters (self.counters), which no
behaviour reads, that drop an `assert` (a self-check), or that are listed, each with its reason, in
the reviewed data file benchmarks/mutation_equivalent.json (notes: benchmarks/MUTATION_NOTES.md);
listed apart under `equivalent_list` with their reason, left out of the score. Everything else that survives is
listed in `survivors` with its file, line, operator and the mutated source line.

Plant switches (`"<bug>" in self._bugs` lines: the planted bugs of the planted-bug tests, and the
bodies of `if` statements whose whole test is such a switch) are no mutation sites: mutating a
switch only changes a bug that no run switches on.

--receiver (issue 26) restricts the sample to the message-handling methods of raft/core.py and
raft/log.py (RECEIVER_FUNCTIONS) and reports `receiver_score`: the per-file scores weighted by each
file's number of mutation sites in those methods. The JSON records the git commit it was drawn at
(`commit`, and `dirty` when judged files or tests differed from it).

Prints one JSON object: mutants, killed, equivalent, survived, score, seconds, per_file, survivors.
Never passes or fails on time; with --fail-under-raft / --fail-under-swim it exits 1 when a score
is below the given value (a nightly gate), else 0.
Usage: python benchmarks/mutation.py [--quick] [--per-file 40] [--seed 1] [--files raft/core.py,...]
       [--recheck earlier.json,...] [--fail-under-raft 0.9] [--fail-under-swim 0.8] [--receiver]
"""
from __future__ import annotations

import argparse
import ast
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
PKG = os.path.join(ROOT, "node_image", "swarmnode")
FILES = ("raft/core.py", "raft/log.py", "swim/core.py")
RAFT_TESTS = ["tests/raft/test_raft_receiver_rules.py", "tests/raft/test_raft_paths.py", "tests/raft/test_raft_core.py", "tests/raft/test_raft_figure8.py",
              "tests/raft/test_raft_vote_durability.py", "tests/raft/test_raft_transcripts.py",
              "tests/raft/test_raft_hygiene.py", "tests/raft/test_raft_quorum.py", "tests/raft/test_raft_stale_tail.py"]
# the message-handling methods (issue 26's receiver sample): what a node does with a message it
# receives, and the log operations those handlers use
RECEIVER_FUNCTIONS = {
    "raft/core.py": ("step", "_accept_leader", "_on_append", "_reject_append", "_on_snapshot", "_log_ok",
                     "_on_vote_request", "_on_vote_response", "_on_append_response"),
    "raft/log.py": ("last_index", "last_term", "term", "hash", "entry", "slice", "append", "truncate_from",
                    "first_index_of_term", "last_index_of_term", "reset"),
}
SWIM_TESTS = ["tests/swim/test_swim_paths.py", "tests/swim/test_swim_core.py", "tests/swim/test_swim_formulas.py",
              "tests/swim/test_swim_transcripts.py", "tests/swim/test_swim_purity.py",
              "tests/swim/test_swim_props.py", "tests/swim/test_swim_sim.py", "tests/swim/test_swim_lifecycle.py"]
RAFT_HUNT_SEEDS = 12
SWIM_SEEDS = 6
JUDGE_TIMEOUT_S = 120

_CMP_FLIP = {ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt, ast.Eq: ast.NotEq,
             ast.NotEq: ast.Eq, ast.Is: ast.IsNot, ast.IsNot: ast.Is, ast.In: ast.NotIn, ast.NotIn: ast.In}


# ---- mutation sites -----------------------------------------------------------------------------

def _docstring_ids(tree) -> set:
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                    and isinstance(body[0].value.value, str):
                out.add(id(body[0]))
    return out


def _in_function(tree) -> set:
    """ids of every node inside a function body (module/class-level code is not mutated)."""
    out = set()
    for f in ast.walk(tree):
        if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for stmt in f.body:
                for n in ast.walk(stmt):
                    out.add(id(n))
    return out


def _is_switch(test) -> bool:
    """`"<bug>" in self._bugs` (or self.plant): a planted bug's switch."""
    return (isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], (ast.In, ast.NotIn))
            and isinstance(test.comparators[0], ast.Attribute) and test.comparators[0].attr in ("_bugs", "plant"))


def _plant_ids(tree, lines) -> set:
    """ids of nodes on a plant-switch line, or inside an `if` whose whole test is a switch."""
    out = set()
    for node in ast.walk(tree):
        ln = getattr(node, "lineno", None)
        if ln and ("in self._bugs" in lines[ln - 1] or "in self.plant" in lines[ln - 1]):
            out.add(id(node))
        if isinstance(node, ast.If) and _is_switch(node.test):
            out |= {id(n) for n in ast.walk(node)}
    return out


def _function_ids(tree, names) -> set:
    """ids of every node inside the named functions."""
    out = set()
    for f in ast.walk(tree):
        if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef)) and f.name in names:
            out |= {id(n) for stmt in f.body for n in ast.walk(stmt)}
    return out


def sites(source: str, functions=None) -> list:
    """Every (node_index, operator, detail) the operators apply to, in a stable order (plant
    switches excluded; only inside `functions` when given)."""
    tree = ast.parse(source)
    docs, inside = _docstring_ids(tree), _in_function(tree)
    plant = _plant_ids(tree, source.splitlines())
    only = _function_ids(tree, functions) if functions is not None else None
    out = []
    for k, node in enumerate(ast.walk(tree)):
        if id(node) not in inside or id(node) in docs or id(node) in plant:
            continue
        if only is not None and id(node) not in only:
            continue
        if isinstance(node, ast.Compare):
            for j, op in enumerate(node.ops):
                if type(op) in _CMP_FLIP:
                    out.append((k, "cmp", j))
        elif isinstance(node, ast.Constant) and type(node.value) is int:
            out.append((k, "const", +1))
            out.append((k, "const", -1))
        elif isinstance(node, (ast.If, ast.While, ast.IfExp)):
            out.append((k, "negate", 0))
        elif isinstance(node, ast.BoolOp):
            out.append((k, "boolop", 0))
        elif isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub)):
            out.append((k, "arith", 0))
        if isinstance(node, (ast.Expr, ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Return, ast.Delete,
                             ast.If, ast.For, ast.While, ast.Raise, ast.Assert)) and not isinstance(node, ast.Module):
            out.append((k, "drop", 0))
    return out


def mutate(source: str, site) -> tuple:
    """Apply one site; returns (mutated source, line number, description)."""
    k, op, arg = site
    tree = ast.parse(source)
    nodes = list(ast.walk(tree))
    node = nodes[k]
    line = getattr(node, "lineno", 0)
    if op == "cmp":
        old = type(node.ops[arg])
        node.ops[arg] = _CMP_FLIP[old]()
        desc = f"{old.__name__} -> {_CMP_FLIP[old].__name__}"
    elif op == "const":
        desc = f"{node.value} -> {node.value + arg}"
        node.value = node.value + arg
    elif op == "negate":
        node.test = ast.UnaryOp(op=ast.Not(), operand=node.test)
        desc = "negate condition"
    elif op == "boolop":
        new = ast.Or() if isinstance(node.op, ast.And) else ast.And()
        desc = f"{type(node.op).__name__} -> {type(new).__name__}"
        node.op = new
    elif op == "arith":
        new = ast.Sub() if isinstance(node.op, ast.Add) else ast.Add()
        desc = f"{type(node.op).__name__} -> {type(new).__name__}"
        node.op = new
    else:
        parent = _parent_body(tree, node)
        if parent is None:
            return None, line, "drop (no parent)"
        body, idx = parent
        body[idx] = ast.copy_location(ast.Pass(), node)
        desc = "drop statement"
    ast.fix_missing_locations(tree)
    return ast.unparse(tree), line, f"{op}: {desc}"


def _parent_body(tree, target):
    for node in ast.walk(tree):
        for field in ("body", "orelse", "finalbody"):
            body = getattr(node, field, None)
            if isinstance(body, list):
                for i, s in enumerate(body):
                    if s is target:
                        return body, i
    return None


# Survivors reviewed by hand and found equivalent live in a data file, each with its reason:
# benchmarks/mutation_equivalent.json, rows {file, function, source, mutation, why, reviewed}. Keyed
# by function and the mutated line's text, not line numbers, so edits elsewhere keep a review valid;
# a row whose line no longer exists is reported under `stale_reviews` (review it again or delete it).
# benchmarks/MUTATION_NOTES.md explains the reviews.
EQUIVALENT_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "mutation_equivalent.json")


def load_reviewed(path: str = EQUIVALENT_FILE) -> dict:
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        rows = json.load(f)
    return {(r["file"], r["function"], r["source"], r["mutation"]): r["why"] for r in rows}


REVIEWED_EQUIVALENT = load_reviewed()


def enclosing_function(source: str, line: int) -> str:
    best = ("", -1)
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.lineno <= line <= node.end_lineno:
            if node.lineno > best[1]:
                best = (node.name, node.lineno)
    return best[0]


def equivalent_reason(source_line: str, mutation: str, rel: str = "", func: str = ""):
    """Mutants equivalent by construction (no behaviour of a correct run can differ), or None."""
    why = REVIEWED_EQUIVALENT.get((rel, func, source_line, mutation))
    if why:
        return "reviewed: " + why
    if "self.counters[" in source_line or source_line.startswith("self.counters = {"):
        return "observability counter only (no behaviour reads self.counters)"
    if mutation.startswith("drop") and source_line.startswith("assert "):
        return "drops a self-check assertion (no behaviour change on any run it did not abort)"
    return None


# ---- judging ------------------------------------------------------------------------------------

def judge_in_process(kind: str) -> str | None:
    """Run inside the subprocess (the mutated package is first on sys.path): None if every
    simulated run is clean, else the first failure."""
    if kind == "raft":
        from swarmnode.sim.raft_sim import run_seed
        from swarmnode.sim.raft_sim import HUNT_PROFILE as hunt   # with the stale_tail fault (issue 26)
        runs = [(s, hunt) for s in range(RAFT_HUNT_SEEDS)] + [(1000, {})]
        for seed, kw in runs:
            r = run_seed(seed, **kw)
            if r["violation_count"] or r["liveness_ok"] is not True or not r["efficiency_ok"] or r["bound_exceeded"]:
                first = r["violations"][0]["kind"] if r["violations"] else (
                    "liveness" if r["liveness_ok"] is not True else "efficiency")
                return f"raft sim seed {seed}: {first}"
        return None
    from swarmnode.sim.swim_checks import run_checked
    for seed in range(SWIM_SEEDS):
        r = run_checked(seed)
        if r["violations"]:
            return f"swim sim seed {seed}: {r['violations'][0]['kind']}"
    return None


def _run(cmd, env, timeout):
    try:
        p = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
        return p.returncode, (p.stdout + p.stderr)[-400:]
    except subprocess.TimeoutExpired:
        return "timeout", ""


def judge(rel: str, mutated: str, workdir: str) -> tuple:
    """(killed?, by what). Builds a package copy with one file replaced and runs the judges."""
    pkg = os.path.join(workdir, "swarmnode")
    if os.path.exists(pkg):
        shutil.rmtree(pkg)
    shutil.copytree(os.path.join(workdir, "pristine"), pkg)
    with open(os.path.join(pkg, rel), "w") as f:
        f.write(mutated)
    env = dict(os.environ, PYTHONPATH=workdir, PYTHONDONTWRITEBYTECODE="1")
    kind = "raft" if rel.startswith("raft/") else "swim"
    rc, out = _run([sys.executable, os.path.abspath(__file__), "--judge", kind], env, JUDGE_TIMEOUT_S)
    if rc != 0:
        return True, "sim timeout" if rc == "timeout" else (out.strip().splitlines() or ["sim"])[-1][:160]
    tests = RAFT_TESTS if kind == "raft" else SWIM_TESTS
    rc, out = _run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "-m", "not slow",
                    *tests], env, JUDGE_TIMEOUT_S)
    if rc != 0:
        return True, "tests timeout" if rc == "timeout" else "tests"
    return False, None


def git_state() -> dict:
    """The commit the sample is drawn at, and whether the judged package or tests differ from it."""
    def git(*args):
        try:
            return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=30).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            return ""
    return {"commit": git("rev-parse", "HEAD"),
            "dirty": bool(git("status", "--porcelain", "--", "node_image/swarmnode", "tests/raft", "tests/swim"))}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="a fixed seeded sample of --per-file mutants per file")
    ap.add_argument("--per-file", type=int, default=40)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--files", default=",".join(FILES))
    ap.add_argument("--recheck", help="re-judge only the survivors listed in these earlier JSON outputs (comma-separated)")
    ap.add_argument("--fail-under-raft", type=float, default=None,
                    help="exit 1 when score_raft_core_and_log is below this (a nightly gate)")
    ap.add_argument("--fail-under-swim", type=float, default=None,
                    help="exit 1 when score_swim is below this (a nightly gate)")
    ap.add_argument("--receiver", action="store_true",
                    help="only the message-handling methods of raft/core.py and raft/log.py; adds receiver_score")
    ap.add_argument("--judge", choices=("raft", "swim"), help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.judge:
        why = judge_in_process(a.judge)
        if why:
            print(why)
            return 1
        return 0
    if a.receiver:
        a.files = ",".join(RECEIVER_FUNCTIONS)
    t0 = time.monotonic()
    work = tempfile.mkdtemp(prefix="mutation-")
    # one copy of the package taken now: edits to the tree during a long run change no judge
    shutil.copytree(PKG, os.path.join(work, "pristine"), ignore=shutil.ignore_patterns("__pycache__"))
    recheck = None
    if a.recheck:
        recheck = set()
        for path in a.recheck.split(","):       # several earlier outputs may be given
            prev = json.load(open(path))
            # by the mutated line's text, not its number: the file may have changed since
            recheck |= {(r["file"], r["source"], r["mutation"]) for r in prev["survivors"]}
        a.files = ",".join(sorted({f for f, _, _ in recheck}))
    out = {"mutants": 0, "killed": 0, "equivalent": 0, "survived": 0, "per_file": {}, "survivors": [],
           "equivalent_list": [], "quick": a.quick, "sample_seed": a.seed, "receiver": a.receiver,
           **git_state()}
    try:
        for rel in a.files.split(","):
            src = open(os.path.join(work, "pristine", rel)).read()
            lines = src.splitlines()
            all_sites = sites(src, RECEIVER_FUNCTIONS.get(rel) if a.receiver else None)
            chosen = all_sites
            if recheck is not None:
                chosen = []
                for st in all_sites:
                    _, ln, desc = mutate(src, st)
                    if (rel, lines[ln - 1].strip()[:120] if ln else "", desc) in recheck:
                        chosen.append(st)
            elif a.quick:
                chosen = sorted(random.Random(f"{a.seed}:{rel}").sample(all_sites, min(a.per_file, len(all_sites))))
            # the unmutated code must pass the same judges, or nothing below means anything
            ok, why = judge(rel, src, work)
            if ok:
                raise SystemExit(f"baseline fails for {rel}: {why}")
            pf = {"sites": len(all_sites), "mutants": 0, "killed": 0, "equivalent": 0, "survived": 0,
                  "seconds": 0.0}
            f0 = time.monotonic()
            for site in chosen:
                mutated, line, desc = mutate(src, site)
                if mutated is None or mutated == ast.unparse(ast.parse(src)):
                    continue
                pf["mutants"] += 1
                text = lines[line - 1].strip() if line else ""
                killed, by = judge(rel, mutated, work)
                func = enclosing_function(src, line)
                row = {"file": rel, "line": line, "function": func, "mutation": desc, "source": text[:120]}
                if killed:
                    pf["killed"] += 1
                elif equivalent_reason(text, desc, rel, func):
                    pf["equivalent"] += 1
                    out["equivalent_list"].append(dict(row, why=equivalent_reason(text, desc, rel, func)))
                else:
                    pf["survived"] += 1
                    out["survivors"].append(row)
                print(f"{rel}:{line} {desc}: {'killed by ' + by if killed else 'SURVIVED'}", file=sys.stderr)
            pf["seconds"] = round(time.monotonic() - f0, 1)
            pf["score"] = round(pf["killed"] / max(1, pf["mutants"] - pf["equivalent"]), 3)
            out["per_file"][rel] = pf
            for k in ("mutants", "killed", "equivalent", "survived"):
                out[k] += pf[k]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    stale = []
    for (rel, func, text, mut) in REVIEWED_EQUIVALENT:
        path = os.path.join(PKG, rel)
        if rel in a.files.split(",") and os.path.exists(path):
            if not any(ln.strip() == text for ln in open(path).read().splitlines()):
                stale.append({"file": rel, "function": func, "source": text, "mutation": mut})
    out["stale_reviews"] = stale
    out["score"] = round(out["killed"] / max(1, out["mutants"] - out["equivalent"]), 3)
    raft = [out["per_file"][f] for f in out["per_file"] if f.startswith("raft/")]
    if raft:
        m = sum(p["mutants"] - p["equivalent"] for p in raft)
        out["score_raft_core_and_log"] = round(sum(p["killed"] for p in raft) / max(1, m), 3)
        # each file's score weighted by its number of mutation sites (a file sampled at the same
        # per-file count as a much larger one must not weigh as much as it): issue 21 section 6
        sized = [p for p in raft if p["mutants"] - p["equivalent"] > 0]
        w = sum(p["sites"] for p in sized)
        if w:
            out["score_raft_weighted_by_sites"] = round(sum(p["score"] * p["sites"] for p in sized) / w, 3)
    if a.receiver:
        pfs = [out["per_file"][f] for f in RECEIVER_FUNCTIONS if f in out["per_file"]]
        weight = sum(p["sites"] for p in pfs)
        out["receiver_score"] = round(sum(p["score"] * p["sites"] for p in pfs) / max(1, weight), 3)
    if "swim/core.py" in out["per_file"]:
        out["score_swim"] = out["per_file"]["swim/core.py"]["score"]
    out["seconds"] = round(time.monotonic() - t0, 1)
    print(json.dumps(out, sort_keys=True))
    low = [(k, lim) for k, lim in (("score_raft_core_and_log", a.fail_under_raft), ("score_swim", a.fail_under_swim))
           if lim is not None and k in out and out[k] < lim]
    for k, lim in low:
        print(f"{k} {out[k]} is below {lim}", file=sys.stderr)
    return 1 if low else 0


if __name__ == "__main__":
    sys.exit(main())
