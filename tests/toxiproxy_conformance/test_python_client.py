"""Conformance: the unchanged toxiproxy-python 0.1.1 client works against the server under test
(create, list, add/remove toxics, enable/disable, destroy, reset, version). Black-box over
TOXIPROXY_URL. Must not import `chaos` or `swarmnode`.
"""

from __future__ import annotations

import json
import time
from urllib.parse import urlparse

import pytest

from .conftest import connect, recv_exact

toxiproxy = pytest.importorskip("toxiproxy")
from toxiproxy.api import APIConsumer  # noqa: E402

pytestmark = pytest.mark.process


@pytest.fixture
def client(server_url):
    u = urlparse(server_url)
    saved = (APIConsumer.host, APIConsumer.port)
    tp = toxiproxy.Toxiproxy()
    tp.update_api_consumer(u.hostname, u.port)     # the client keeps its address as class state
    yield tp
    APIConsumer.host, APIConsumer.port = saved


def test_python_client_full_cycle(client, api, echo):
    assert client.running() is True
    version = json.loads(client.version())
    assert version["version"].count(".") == 2

    name = api.name("pyclient")
    proxy = client.create(upstream=echo.addr, name=name)
    api.created.append(name)
    assert proxy.name == name and proxy.enabled is True
    assert proxy.listen.startswith("127.0.0.1:")
    assert name in client.proxies()
    assert client.get_proxy(name).upstream == echo.addr
    with pytest.raises(toxiproxy.exceptions.ProxyExists):
        client.create(upstream=echo.addr, name=name)

    proxy.add_toxic(type="latency", attributes={"latency": 100})
    proxy.add_toxic(type="noop", stream="upstream", name="quiet", toxicity=0.5)
    toxics = proxy.toxics()
    assert set(toxics) == {"latency_downstream", "quiet"}
    assert toxics["latency_downstream"].attributes == {"latency": 100, "jitter": 0}
    with pytest.raises(toxiproxy.exceptions.InvalidToxic):
        proxy.add_toxic(type="nonsense")

    as_json = {"name": name, "listen": proxy.listen}
    s = connect(as_json)
    t0 = time.monotonic()
    s.sendall(b"hey")
    assert recv_exact(s, 3) == b"hey"
    assert time.monotonic() - t0 >= 0.099
    s.close()

    assert proxy.destroy_toxic("latency_downstream") is True
    assert set(proxy.toxics()) == {"quiet"}

    proxy.disable()
    assert client.get_proxy(name).enabled is False
    with pytest.raises(OSError):
        connect(as_json, timeout=2)
    proxy.enable()
    assert client.get_proxy(name).enabled is True
    with proxy.down():
        assert client.get_proxy(name).enabled is False
    assert client.get_proxy(name).enabled is True

    assert client.reset() is True
    assert proxy.toxics() == {}

    assert client.destroy(proxy) is True
    assert client.get_proxy(name) is None
    with pytest.raises(toxiproxy.exceptions.NotFound):
        proxy.destroy()
