"""Process level: a link fault's toxic operations batched per server (`POST /toxics/batch` of the
compatible server) and the fallback to parallel single requests against a server without the
endpoint (`-no-batch`, answering 404 like the real Toxiproxy); a sharded pair of one of each; the
verification by the servers' listing; and faults.jsonl carrying apply and verify timings."""

from __future__ import annotations

import collections
import json
import threading
import time

import pytest

from chaos.errors import EnvironmentError_, FaultError
from chaos.nemesis import FaultLog, Nemesis, View
from chaos.runner import ClusterEffects
from chaos.topology import Endpoint, Topology
from chaos.toxi import LinkController, ShardedToxiproxyAPI, ToxiproxyAPI

from .conftest import compat_server, free_port_block

pytestmark = [pytest.mark.process, pytest.mark.timeout(120)]

M, W = ["m1", "m2", "m3"], ["w1", "w2", "w3", "w4", "w5"]


class CountingAPI(ToxiproxyAPI):
    """A ToxiproxyAPI that counts its requests by (method, first path segment pair)."""

    def __init__(self, url):
        super().__init__(url)
        self.count: collections.Counter = collections.Counter()
        self._count_lock = threading.Lock()

    def request(self, method, path, body=None, **kw):
        kind = "toxic" if "/toxics" in path and path.startswith("/proxies/") else path
        with self._count_lock:
            self.count[(method, kind)] += 1
        return super().request(method, path, body, **kw)


@pytest.fixture(scope="module")
def servers():
    with compat_server() as batch_url, compat_server("-no-batch") as plain_url:
        yield batch_url, plain_url


def topology(seed: int, shards: int = 1) -> Topology:
    nodes = M + W
    base = free_port_block(len(nodes) ** 2 + len(nodes) + 1, seed)
    # both test servers listen on 127.0.0.1: one port space for all shards (ports are per shard otherwise)
    return Topology(M, W, base_port=base, shards=shards, shared_port_space=shards > 1,
                    endpoints={n: Endpoint("127.0.0.1", 9, 9) for n in nodes})  # upstreams never dialled


def worker_links():
    return [(a, b) for a in W for b in W if a != b]


def teardown(api, topo):
    for link in topo.links:
        api.delete_proxy(link.name)


def test_batch_supported_is_probed_once(servers):
    batch_url, plain_url = servers
    a, b = CountingAPI(batch_url), CountingAPI(plain_url)
    assert a.batch_supported() and a.batch_supported()
    assert not b.batch_supported() and not b.batch_supported()
    assert a.count[("POST", "/toxics/batch")] == 1 and b.count[("POST", "/toxics/batch")] == 1


@pytest.mark.parametrize("which", ["batch", "plain"])
def test_link_fault_lands_the_same_with_and_without_the_batch_endpoint(servers, which):
    url = servers[0] if which == "batch" else servers[1]
    topo = topology(11 if which == "batch" else 12)
    api = CountingAPI(url)
    ctl = LinkController(api, topo, seed=1)
    ctl.create_proxies("127.0.0.1")
    try:
        links = worker_links()                                  # 20 links, 40 toxics
        ctl.flaky(links, 0.5, kind="cut")
        assert ctl.listing_mismatches(links, "flaky-cut") == {}
        listed = api.proxies()
        for a, b in links:
            names = {t["name"]: t for t in listed[f"{a}-{b}"]["toxics"]}
            assert set(names) == {"chaos-flaky-cut-up", "chaos-flaky-cut-down"}
            assert names["chaos-flaky-cut-up"]["toxicity"] == 0.5
            assert names["chaos-flaky-cut-up"]["attributes"]["timeout"] == 0
        assert listed["m1-m2"]["toxics"] == []
        if which == "batch":   # one probe + one batch; no single toxic request
            assert api.count[("POST", "/toxics/batch")] == 2 and api.count[("POST", "toxic")] == 0
        else:                  # one probe (404), then one request per toxic
            assert api.count[("POST", "/toxics/batch")] == 1 and api.count[("POST", "toxic")] == 40
        ctl.flaky(links, 0.25, kind="cut")                      # again: updated in place, not duplicated
        assert ctl.listing_mismatches(links, "flaky-cut") == {}
        ctl.remove(links, "flaky-cut")
        assert ctl.listing_mismatches(links, "flaky-cut", present=False) == {}
        assert all(not p["toxics"] for p in api.proxies().values() if p["name"] in {f"{a}-{b}" for a, b in links})
    finally:
        teardown(api, topo)


def test_rejected_batch_falls_back_to_singles_and_names_only_the_bad_proxy(servers):
    topo = topology(13)
    api = CountingAPI(servers[0])
    ctl = LinkController(api, topo, seed=1)
    ctl.create_proxies("127.0.0.1")
    try:
        api.delete_proxy("w1-w2")                              # the batch is refused (404 on this item)
        with pytest.raises(FaultError, match=r"latency failed on 1 of 20 proxies: w1-w2: .*404 proxy not found"):
            ctl.latency(worker_links(), 5)
        others = [l for l in worker_links() if l != ("w1", "w2")]
        assert ctl.listing_mismatches(others, "latency") == {}   # every other link got its toxic
        assert api.count[("POST", "toxic")] == 20                # tried one by one after the refusal
    finally:
        for link in topo.links:
            if link.name != "w1-w2":
                api.delete_proxy(link.name)


def test_sharded_batch_and_plain_servers_together(servers):
    topo = topology(14, shards=2)
    apis = [CountingAPI(servers[0]), CountingAPI(servers[1])]
    sharded = ShardedToxiproxyAPI(apis, topo)
    ctl = LinkController(sharded, topo, seed=1)
    ctl.create_proxies("127.0.0.1")
    try:
        links = worker_links()
        ctl.cut(links)
        assert ctl.listing_mismatches(links, "cut") == {}
        on_plain = sum(1 for a, b in links if topo.shard_of((a, b)) == 1) * 2
        assert apis[0].count[("POST", "toxic")] == 0 and apis[1].count[("POST", "toxic")] == on_plain > 0
        ctl.heal()
        assert ctl.listing_mismatches(links, "cut", present=False) == {}
    finally:
        teardown(sharded, topo)


def test_listing_missing_a_toxic_fails_the_link_fault(servers):
    """Someone removes one toxic between apply and verification: the listing check names it."""
    topo = topology(15)
    api = ToxiproxyAPI(servers[0])
    ctl = LinkController(api, topo, seed=1)
    ctl.create_proxies("127.0.0.1")
    eff = ClusterEffects(None, ctl, clock=time.time)
    real = ctl.flaky

    def flaky_then_lose_one(*a, **kw):
        rec = real(*a, **kw)
        api.delete_toxic("w3-w4", "chaos-flaky-cut-down")
        return rec

    ctl.flaky = flaky_then_lose_one
    try:
        with pytest.raises(FaultError, match="listing disagrees on 1 of 20 link.*w3-w4: chaos-flaky-cut-down not listed"):
            eff.add_link_fault("flaky-cut", worker_links(), {"toxicity": 0.5, "kind": "cut"})
    finally:
        teardown(api, topo)


class LinkOnlyEffects:
    """The nemesis's effects: a fixed view, link faults through the real ClusterEffects."""

    def __init__(self, real: ClusterEffects):
        self.real = real

    def view(self):
        st = {m: {"role": "leader" if m == "m1" else "follower", "term": 2, "leader": "m1"} for m in M}
        return View(tuple(M), tuple(W), st)

    def add_link_fault(self, op, links, params):
        return self.real.add_link_fault(op, links, params)

    def remove_link_fault(self, op, links):
        return self.real.remove_link_fault(op, links)

    def mark_unavailable(self, node, unavailable):
        pass


def test_faults_jsonl_records_apply_and_verify_ms(servers, tmp_path):
    topo = topology(16)
    api = ToxiproxyAPI(servers[0])
    ctl = LinkController(api, topo, seed=1)
    ctl.create_proxies("127.0.0.1")
    try:
        log = FaultLog(tmp_path / "faults.jsonl")
        fault = {"id": "f", "kind": "flaky", "start": {"at_s": 0.0}, "for_s": 0.2, "until": None, "max_s": None,
                 "spec": {"fault": "flaky", "target": "workers", "peers": "workers", "toxicity": 0.5},
                 "seed": 1, "origin": "t"}
        nem = Nemesis([fault], LinkOnlyEffects(ClusterEffects(None, ctl, clock=time.time)), log)
        nem.start(time.monotonic())
        assert nem.wait(30)
        assert nem.error is None
        rows = {r["action"]: r for r in map(json.loads, (tmp_path / "faults.jsonl").read_text().splitlines())}
        for action in ("start", "stop"):
            d = rows[action]["details"]
            assert d["links"] == 20
            assert isinstance(d["apply_ms"], float) and d["apply_ms"] > 0
            assert isinstance(d["verify_ms"], float) and d["verify_ms"] > 0
        assert rows["start"]["details"]["verified"] == {"toxics_listed_on": 20}
        assert ctl.listing_mismatches(worker_links(), "flaky-cut", present=False) == {}
    finally:
        teardown(api, topo)


def test_unanswered_batch_fails_every_item_of_it_and_heal_cleans_up(servers):
    topo = topology(17)
    api = ToxiproxyAPI(servers[0])
    ctl = LinkController(api, topo, seed=1)
    ctl.create_proxies("127.0.0.1")
    assert api.batch_supported()   # the probe (a batch itself) answered before the hook below
    real = api.request

    def no_answer(method, path, body=None, **kw):
        if path == "/toxics/batch" and body:
            real(method, path, body, **kw)                    # it lands, but the answer is lost
            raise EnvironmentError_("Toxiproxy did not answer POST /toxics/batch within 30 s")
        return real(method, path, body, **kw)

    api.request = no_answer
    try:
        with pytest.raises(FaultError, match="failed on 20 of 20 proxies.*did not answer"):
            ctl.latency(worker_links(), 5)
        api.request = real
        ctl.heal()
        assert ctl.listing_mismatches(worker_links(), "latency", present=False) == {}
    finally:
        api.request = real
        teardown(api, topo)
