"""Wing-Gong-Lowe linearizability search for one register (one key), with a counterexample minimizer.

Owns: the register model (read / write / cas / delete; absent = None), the WGL search with a memo
of (linearized bitset, state), budgets per search, and the counterexample (smallest failing prefix,
then a greedy 1-minimal subset of its operations).

Must not import: click, rich, anything that does I/O. Operates on `chaos.history.Op` lists only.

Semantics (Jepsen / Knossos):
  * `ok` operations took effect exactly once, between invocation and completion;
  * `info` operations (and invocations never completed) may take effect at any time after
    invocation, or never: they get no return entry, so the search may lift them or leave them;
    an `info` read constrains nothing and is dropped;
  * `fail` operations did not take effect and are dropped;
  * `ok` delete with a boolean completion value (`existed`) must agree with the state.

Search (Wing & Gong 1993, Lowe 2017 "Testing for linearizability" §3; memo as in Porcupine): a
doubly linked list of call/return entries in history order; walking from the head, a call whose
operation the model accepts is lifted (removed with its return) and the walk restarts; a return
entry of an unlifted operation forces a backtrack. Reaching the end of the list means every `ok`
operation was linearized (info operations may never happen). A node (lifted set, state) seen
before is not explored again. Reductions, each argued where it is applied in `search`:
  * a read lifted where it matches is not tried later instead (moving a read earlier never hurts);
  * info operations are tried only after the `ok` calls at a node, one per class of identical
    ones (they are interchangeable), and only where some candidate can observe the value they
    leave (else dropping them gives the same linearization);
  * a node with an info operation lifted is covered by the same node without it (dominance);
  * the lifted set is a 128-bit Zobrist hash, so a node costs O(1) whatever the history's length.
"""

from __future__ import annotations

import bisect
import json
import random
import time
from dataclasses import dataclass, field
from typing import Any, Sequence

from chaos.history import Op

READ, WRITE, CAS, DELETE = 0, 1, 2, 3
_KIND = {"read": READ, "write": WRITE, "cas": CAS, "delete": DELETE}

LINEARIZABLE = "linearizable"
NOT_LINEARIZABLE = "not-linearizable"
BUDGET = "budget"  # search stopped at its time or state bound: no verdict


@dataclass
class SearchResult:
    outcome: str           # LINEARIZABLE, NOT_LINEARIZABLE or BUDGET
    states: int            # memo entries created
    reason: str = ""       # for BUDGET: which bound was hit
    elapsed_s: float = 0.0
    stuck_at: int | None = None  # NOT_LINEARIZABLE: history index of the furthest return reached


@dataclass
class KeyResult:
    key: Any
    outcome: str
    ops: int
    states: int
    elapsed_s: float
    reason: str = ""
    counterexample: list[str] = field(default_factory=list)
    counterexample_minimal: bool = False  # True when the greedy minimization finished in budget
    counterexample_ops: list = field(default_factory=list, repr=False)
    initial_states: list = field(default_factory=lambda: [None])  # counterexample fails from each
    context: list[str] = field(default_factory=list)  # earlier operations that leave those states


class _Interner:
    """Maps JSON values to small ints (None -> 0) so that states hash and compare fast and
    1 / True / 1.0 stay distinct."""

    def __init__(self) -> None:
        self._ids: dict[Any, int] = {}  # an int as itself, anything else as tagged text
        self.hint: Any = None  # counterexample search: the last initial state that linearized

    def __call__(self, v: Any) -> int:
        if v is None:
            return 0
        t = type(v)
        if t is int or t is str:
            k = v if t is int else "s" + v  # JSON text of anything else starts otherwise
            i = self._ids.get(k)
            if i is None:
                i = self._ids[k] = len(self._ids) + 1
            return i
        k = json.dumps(v, sort_keys=True)
        if isinstance(v, bool):
            k = "b" + k
        elif isinstance(v, float):
            k = "f" + k
        i = self._ids.get(k)
        if i is None:
            i = self._ids[k] = len(self._ids) + 1
        return i


def _encode(ops: Sequence[Op], cut: int | None, intern: _Interner):
    """Build the entry list. Returns (entries, kinds, args_a, args_b, n_ops) where entries is a list
    of (history_index, is_return, op_slot). `cut`: only events with index <= cut exist; ops whose
    completion lies beyond it are pending (info semantics)."""
    kinds: list[int] = []
    a: list[int] = []
    b: list[int] = []
    entries: list[tuple[int, int, int]] = []
    for op in ops:
        if op.type == "fail":
            continue
        if cut is not None and op.invoke_index > cut:
            continue
        completed = op.type == "ok" and (cut is None or (op.complete_index is not None and op.complete_index <= cut))
        kind = _KIND[op.f]
        if not completed and kind == READ:
            continue  # an indeterminate read constrains nothing
        slot = len(kinds)
        kinds.append(kind)
        if kind == CAS:
            exp, new = op.value
            a.append(intern(exp))
            b.append(intern(new))
        elif kind == DELETE:
            # b: -1 unconstrained, 0 must be absent, 1 must be present (only for completed ok ops)
            a.append(0)
            b.append(int(op.result) if completed and isinstance(op.result, bool) else -1)
        else:
            a.append(intern(op.value))
            b.append(0)
        entries.append((op.invoke_index, 0, slot))
        if completed:
            entries.append((op.complete_index, 1, slot))
    entries.sort()
    return entries, kinds, a, b, len(kinds)


_ZOBRIST: list[int] = []
_ZOBRIST_RNG = random.Random(0x5EED_2B)


def _zobrist(n: int) -> list[int]:
    """128-bit random keys for slots 0..n-1 (grown on demand, the same in every search)."""
    while len(_ZOBRIST) < n:
        _ZOBRIST.append(_ZOBRIST_RNG.getrandbits(128))
    return _ZOBRIST


def search(ops: Sequence[Op], *, cut: int | None = None, deadline: float | None = None,
           max_states: int = 1_000_000, intern: _Interner | None = None, init: Any = None,
           seen: set | None = None) -> SearchResult:
    """Decide whether the operations (all on one key) are linearizable from state `init` (a JSON
    value; None = absent, the initial state of every register).

    A node of the search is (the set of lifted operations, the register's state). The set is kept
    as a 128-bit Zobrist hash (the XOR of a random key per lifted operation), updated in O(1) per
    lift, so a node costs the same whatever the history's length (a bitset of a 10,000-operation
    history is 1.2 kB to build, hash and keep per node). Two different sets share a hash with
    probability 2^-128 per pair: below 10^-26 for a million nodes, far below any other failure.
    """
    t0 = time.perf_counter()
    intern = intern or _Interner()
    entries, kinds, arg_a, arg_b, n = _encode(ops, cut, intern)
    zob = _zobrist(n)
    m = len(entries)
    # The main list: a doubly linked list of the call and return entries of the operations that
    # have a return (`ok`), entry ids 1..m, head 0, tail m+1. The calls of operations without one
    # (`info`, or pending at the cut) are not in it: they are candidates at every node from their
    # invocation on, and are kept in classes (below).
    end = m + 1
    nxt = [0] * (m + 2)
    prv = [0] * (m + 2)
    is_ret = [0] * (m + 2)
    hidx = [0] * (m + 2)
    slot_of = [0] * (m + 2)
    match = [0] * (m + 2)  # call entry -> its return entry
    call_of_slot = [0] * n
    has_ret = [False] * n
    for eid, (h, r, s) in enumerate(entries, 1):
        hidx[eid] = h
        is_ret[eid] = r
        slot_of[eid] = s
        if r:
            match[call_of_slot[s]] = eid
            has_ret[s] = True
        else:
            call_of_slot[s] = eid
    # Observers: the operations whose applicability depends on the state being a given value (a
    # read of it, a cas expecting it; a delete whose `existed` is known observes presence, key -2,
    # or absence, key -3). Lifting an info operation is useful only if the state it leaves can be
    # observed next: in a linearization where the next operation overwrites it (a write, an
    # unconstrained delete) or nothing follows, dropping the info operation gives a linearization
    # too (it may never happen). The next operation is a candidate, so invoked before the first
    # unlifted return; an info operation no operation of the history observes is never tried.
    obs_h: dict[int, list[int]] = {}
    obs_s: dict[int, list[int]] = {}
    for eid, (h, r, s) in enumerate(entries, 1):
        k = kinds[s]
        if r or k == WRITE or (k == DELETE and arg_b[s] < 0):
            continue
        v = arg_a[s] if k != DELETE else (-2 if arg_b[s] else -3)
        obs_h.setdefault(v, []).append(h)
        obs_s.setdefault(v, []).append(s)
    # Info classes: info operations with the same kind and arguments. From a node where two of them
    # are both candidates they are interchangeable (neither has a return, both were invoked), so
    # only the earliest unlifted one of a class is tried: the lifted ones of a class are always its
    # first `cnt` members. (With values from 1..3, dozens of timed-out writes make a few classes.)
    # Classes are in the order of their first member's invocation.
    cls_index: dict = {}
    cls_h: list[list[int]] = []      # members' history indexes
    cls_slot: list[list[int]] = []   # members' slots
    last = 0
    for eid, (h, r, s) in enumerate(entries, 1):
        if has_ret[s]:
            nxt[last], prv[eid], last = eid, last, eid
        elif not r:
            leaves = arg_b[s] if kinds[s] == CAS else arg_a[s] if kinds[s] == WRITE else 0
            if leaves not in obs_h and (-3 if leaves == 0 else -2) not in obs_h:
                continue  # nothing observes the state it leaves: it need never happen
            ckey = (kinds[s], arg_a[s], arg_b[s])
            ci = cls_index.get(ckey)
            if ci is None:
                ci = cls_index[ckey] = len(cls_h)
                cls_h.append([])
                cls_slot.append([])
            cls_h[ci].append(h)
            cls_slot[ci].append(s)
    nxt[last], prv[end] = end, last
    ncls = len(cls_h)
    cls_first = [hs[0] for hs in cls_h]
    cls_size = [len(hs) for hs in cls_h]
    cnt = [0] * ncls
    lifted = bytearray(n)

    # Memo: the nodes seen. With info operations also a dominance check: lifting an info operation
    # only removes options (it could as well never happen, having no return), so (set, state) is
    # covered by (set minus one lifted info operation, state) if that was seen: every continuation
    # of the first is one of the second, which is (being) explored. Lifted info operations are
    # always a prefix of their class, so one look-up per class with a lifted member (its last).
    # A caller may pass `seen` from an earlier search of the same operations that ended
    # NOT_LINEARIZABLE (whatever its initial state): every node in it is dead.
    if seen is None:
        seen = set()
    nstates = 0
    # frames: (call entry, or info class, lifted; state before; a matching read?; phase-1 bound)
    stack: list[tuple[int, int, bool, int]] = []
    active: list[int] = []  # info classes with a lifted member, in the order they got one
    zh = 0
    state = intern(init)
    # At a node the alternatives are the calls of the main list before its first return (phase 0),
    # then one info operation per class invoked before that return (phase 1). Any order is
    # complete; this one meets the nodes without an info operation lifted first, so the dominance
    # check prunes more, and a linearizable history rarely needs an info operation at all.
    e = nxt[0]
    ci = 0
    bound = 0  # phase 1: history index of the main list's first return; 0 in phase 0
    steps = 0
    stuck = 0
    while True:
        if not bound:
            if e == end:
                return SearchResult(LINEARIZABLE, nstates, elapsed_s=time.perf_counter() - t0)
            if is_ret[e]:
                if ncls:
                    bound = hidx[e]
                    ci = 0
                    continue
                if hidx[e] > stuck:
                    stuck = hidx[e]
                e = 0
        else:
            while ci < ncls and cls_first[ci] < bound:
                c = cnt[ci]
                if c < cls_size[ci] and cls_h[ci][c] < bound:
                    e = -1  # a candidate: the class's next member
                    break
                ci += 1
            else:
                if bound > stuck:
                    stuck = bound
                e = 0
        if e:
            s = cls_slot[ci][cnt[ci]] if bound else slot_of[e]
            k = kinds[s]
            if k == READ:
                ok = state == arg_a[s]
                new = state
            elif k == WRITE:
                ok = True
                new = arg_a[s]
            elif k == CAS:
                ok = state == arg_a[s]
                new = arg_b[s]
            else:
                want = arg_b[s]
                ok = want < 0 or (state != 0) == want
                new = 0
            if not ok:
                if bound:
                    ci += 1
                else:
                    e = nxt[e]
                continue
            if bound and new != state and not _observable(new, bound, obs_h, obs_s, lifted):
                ci += 1
                continue
            z = zob[s]
            nz = zh ^ z
            memo = (nz, new)
            if memo in seen:
                fresh = False
            else:
                fresh = True
                for c in active:
                    if c != ci or not bound:
                        if (nz ^ zob[cls_slot[c][cnt[c] - 1]], new) in seen:
                            fresh = False
                            break
                if bound and fresh and (zh, new) in seen:
                    fresh = False  # this info operation's own subset: the node without it
                seen.add(memo)
            if fresh:
                nstates += 1
                zh = nz
                lifted[s] = 1
                if bound:
                    stack.append((ci, state, False, bound))
                    cnt[ci] += 1
                    if not cnt[ci] - 1:
                        active.append(ci)
                    bound = 0
                else:
                    stack.append((e, state, k == READ, 0))
                    # lift the call and its return
                    p, q = prv[e], nxt[e]
                    nxt[p] = q
                    prv[q] = p
                    r = match[e]
                    p, q = prv[r], nxt[r]
                    nxt[p] = q
                    prv[q] = p
                state = new
                e = nxt[0]
                steps += 1
                if not steps & 0x3FF:
                    if nstates > max_states:
                        return SearchResult(BUDGET, nstates, f"state bound {max_states} reached",
                                            time.perf_counter() - t0)
                    if deadline is not None and time.monotonic() > deadline:
                        return SearchResult(BUDGET, nstates, "time budget exceeded",
                                            time.perf_counter() - t0)
                continue
            if bound:
                ci += 1
                continue
            if k != READ:
                e = nxt[e]
                continue
            # a matching read whose successor was seen: this node is dead too (see below)
        # Backtrack. A read lifted where it matched is not tried later: if the node it was lifted
        # from had a linearization, moving the read to its front gives one from the node with the
        # read lifted (the read changes no state, nothing had to precede it, and being earlier
        # only satisfies more real-time constraints), and that node was explored. So popping a
        # read pops on.
        while True:
            if not stack:
                return SearchResult(NOT_LINEARIZABLE, nstates, elapsed_s=time.perf_counter() - t0,
                                    stuck_at=stuck)
            x, state, forced, bound = stack.pop()
            if bound:
                ci = x
                cnt[ci] -= 1
                s = cls_slot[ci][cnt[ci]]
                zh ^= zob[s]
                lifted[s] = 0
                if not cnt[ci]:
                    active.pop()
                ci += 1
                break
            e = x
            s = slot_of[e]
            zh ^= zob[s]
            lifted[s] = 0
            # unlift: reinsert the return first, then the call (reverse order of removal)
            r = match[e]
            nxt[prv[r]] = r
            prv[nxt[r]] = r
            nxt[prv[e]] = e
            prv[nxt[e]] = e
            if not forced:
                e = nxt[e]
                break


OBSERVER_SCAN = 64  # observers examined per info lift before assuming one is unlifted (sound)


def _observable(v: int, bound: int, obs_h: dict, obs_s: dict, lifted: bytearray) -> bool:
    """Whether an unlifted operation invoked before history index `bound` observes state `v`
    (or its presence / absence: a delete that knows `existed`). Scans back from `bound`; after
    OBSERVER_SCAN lifted ones it answers yes, which only costs pruning."""
    for key in (v, -3 if v == 0 else -2):
        hs = obs_h.get(key)
        if not hs:
            continue
        ss = obs_s[key]
        j = bisect.bisect_left(hs, bound) - 1
        stop = max(-1, j - OBSERVER_SCAN)
        while j > stop:
            if not lifted[ss[j]]:
                return True
            j -= 1
        if j >= 0:
            return True
    return False


def _cut_points(ops: Sequence[Op]) -> list[int]:
    return sorted(op.complete_index for op in ops if op.type == "ok" and op.complete_index is not None)


def counterexample(ops: Sequence[Op], *, deadline: float, max_states: int,
                   stuck_at: int | None = None) -> tuple[list[Op], list[Any], list[Op], bool]:
    """A small witness that `ops` are not linearizable, in three sound steps:

    1. the smallest failing prefix, by binary search over `ok` completions (a prefix treats
       operations completing after it as pending; if a prefix fails, every longer one does).
       `stuck_at`, the furthest return entry the failed search reached, is a lower bound: the path
       that reached it linearized every operation completing earlier, and a prefix only has more
       freedom, so no shorter prefix fails. It is often the answer and is tried first, but it is not
       always: an operation completing after it becomes pending in the prefix and so loses its
       result's constraint (an `ok` delete's `existed`) and its obligation to take effect, which
       can make the prefix linearizable (found by tests/checkers/test_checkers_linearizable_generated.py).
    2. the shortest suffix that fails from every state its prefix can leave (`shrink_suffix`);
    3. greedy removal of `ok` reads (in halving chunks, delta-debugging style) while the rest still
       fails from every such state. Only reads are removed: a read does not change the state, so if
       the history were linearizable it would stay so without the read. (Removing a write could
       make a later read unexplainable: a "counterexample" the history does not contain.)

    Each step keeps "no linearization exists", so the result is a genuine witness.
    Returns (operations, initial states, the earlier operations that leave those states, minimal?);
    minimal is False when the deadline cut step 3.
    """
    intern = _Interner()
    cuts = _cut_points(ops)
    lo, hi = 0, len(cuts) - 1  # the full history (cut = last) fails
    if stuck_at is not None and stuck_at in cuts:
        lo = cuts.index(stuck_at)
        res = search(ops, cut=stuck_at, deadline=deadline, max_states=max_states, intern=intern)
        if res.outcome == NOT_LINEARIZABLE:
            hi = lo
        else:
            lo += 1
    while lo < hi and time.monotonic() < deadline:
        mid = (lo + hi) // 2
        res = search(ops, cut=cuts[mid], deadline=deadline, max_states=max_states, intern=intern)
        if res.outcome == NOT_LINEARIZABLE:
            hi = mid
        else:
            lo = mid + 1
    cut = cuts[hi] if cuts else None
    kept = [_truncate(op, cut) for op in ops if op.type != "fail" and (cut is None or op.invoke_index <= cut)]
    kept = [op for op in kept if not (op.type == "info" and op.f == "read")]
    kept, states, sources = shrink_suffix(kept, deadline=deadline, max_states=max_states)
    removable = [op for op in kept if op.f == "read" and op.type == "ok" and op.complete_index != cut]
    chunk = len(removable)
    while chunk >= 1:
        i = 0
        while i < len(removable):
            if time.monotonic() > deadline:
                return kept, states, sources, False
            drop = {id(op) for op in removable[i:i + chunk]}
            trial = [op for op in kept if id(op) not in drop]
            stuck = _fails_from_all(trial, states, deadline, max_states, intern)
            if stuck is not None:
                kept = trial
                del removable[i:i + chunk]
                if cut is not None and stuck < cut:
                    # the failure may now show up earlier: cut the prefix again, if that still fails
                    # (step 1: the furthest return reached is only a lower bound for the prefix)
                    shorter = [_truncate(op, stuck) for op in kept if op.invoke_index <= stuck]
                    shorter = [op for op in shorter if not (op.type == "info" and op.f == "read")]
                    if _fails_from_all(shorter, states, deadline, max_states, intern) is not None:
                        cut, kept = stuck, shorter
                        ids = {id(op) for op in kept}
                        removable = [op for op in removable if id(op) in ids and op.complete_index != cut]
                        i = 0
            else:
                i += chunk
        chunk //= 2
    return kept, states, sources, True


def _fails_from_all(ops: list[Op], states: list[Any], deadline: float, max_states: int,
                    intern: _Interner) -> int | None:
    """If `ops` cannot be linearized from any of `states`, the furthest return reached (over all
    states: the prefix up to it fails from each); else None. The state that last allowed a
    linearization is tried first (`intern.hint`), since it usually does again."""
    stuck = -1
    hint = intern.hint
    order = sorted(states, key=lambda st: 0 if st == hint and type(st) is type(hint) else 1)
    dead: set = set()  # every node a failed search met is dead from any initial state: shared
    for st in order:
        res = search(ops, deadline=deadline, max_states=max_states, intern=intern, init=st, seen=dead)
        if res.outcome != NOT_LINEARIZABLE:
            intern.hint = st
            return None
        stuck = max(stuck, res.stuck_at if res.stuck_at is not None else -1)
    return stuck


def _effect(op: Op) -> Any:
    if op.f == "write":
        return op.value
    if op.f == "cas":
        return op.value[1]
    return None


def _states_at(before: list[Op]) -> tuple[list[Any], list[Op]]:
    """Every state the register can be in after `before` (ops entirely before a quiescent point),
    over-approximated: the effect of each mutation not known to be overwritten there (an `ok`
    mutation invoked after it completed), plus absent if no `ok` mutation precedes.
    Returns (states, the mutations that leave them)."""
    muts = [o for o in before if o.f != "read"]
    oks = [o for o in muts if o.type == "ok"]
    last_ok_invoke = max((o.invoke_index for o in oks), default=-1)
    out: dict[str, Any] = {} if oks else {"null": None}
    sources = []
    for o in muts:
        if o.type == "ok" and o.complete_index is not None and last_ok_invoke > o.complete_index:
            continue
        v = _effect(o)
        out[json.dumps(v, sort_keys=True)] = v
        sources.append(o)
    return list(out.values()), sources


def shrink_suffix(kept: list[Op], *, deadline: float,
                  max_states: int) -> tuple[list[Op], list[Any], list[Op]]:
    """Replace the start of a failing history by "any state it could leave".

    At a quiescent point Q (no `ok` operation spans it), the state is one of `_states_at(ops
    entirely before Q)`. If the operations after Q (plus `info` ones invoked before, which may still
    land) cannot be linearized from ANY of those states, they alone witness the failure. Tries the
    latest Q first; returns (suffix, initial states, the operations before Q that leave them), or
    (kept, [None], []) if no shorter witness holds.
    """
    intern = _Interner()
    oks = [o for o in kept if o.type == "ok"]
    points = sorted({o.invoke_index for o in kept}, reverse=True)
    for q in points:
        if time.monotonic() > deadline:
            break
        if any(o.invoke_index < q < o.complete_index for o in oks):
            continue
        before = [o for o in kept if o.invoke_index < q]
        if not before:
            break
        suffix = [o for o in kept if o.invoke_index >= q or o.type == "info"]
        states, sources = _states_at(before)
        if len(states) > 64:
            continue
        if _fails_from_all(suffix, states, deadline, max_states, intern) is not None:
            return suffix, states, sources
    return kept, [None], []


def _truncate(op: Op, cut: int | None) -> Op:
    """An op completing after the cut is pending there: present it as info with no completion."""
    if cut is None or op.complete_index is None or op.complete_index <= cut:
        return op
    return Op(op.process, "info", op.f, op.key, op.value if op.f != "read" else None, op.invoke_index,
              None, op.invoke_ts, None, None, None)


def check_key(key: Any, ops: Sequence[Op], *, timeout_s: float = 10.0, max_states: int = 1_000_000,
              counterexample_s: float = 2.0) -> KeyResult:
    """Check one key's operations; on NOT_LINEARIZABLE also compute a counterexample."""
    t0 = time.perf_counter()
    res = search(ops, deadline=time.monotonic() + timeout_s, max_states=max_states)
    kr = KeyResult(key, res.outcome, len(ops), res.states, 0.0, res.reason)
    if res.outcome == NOT_LINEARIZABLE:
        cex_deadline = time.monotonic() + counterexample_s
        cex, kr.initial_states, sources, minimal = counterexample(
            ops, deadline=cex_deadline, max_states=max_states, stuck_at=res.stuck_at)
        kr.context = [op.describe() for op in sources]
        kr.counterexample_ops = cex
        kr.counterexample = [op.describe() for op in cex]
        kr.counterexample_minimal = minimal
    kr.elapsed_s = time.perf_counter() - t0
    return kr
