"""chaos.env.nodeops without an engine: a pause refused because runc could not freeze a starved
container in time (seen at load 40-57 on 2 cores: "OCI runtime pause failed: unable to freeze") is
retried, since runc thaws the container again before refusing; any other refusal is not."""

import docker
import pytest

from chaos.env import nodeops
from chaos.errors import EnvironmentError_

FREEZE = ("500 Server Error: Cannot pause container 5f7d: OCI runtime pause failed: "
          "unable to freeze: unknown")


class FakeContainer:
    def __init__(self, refusals: list[str]):
        self.refusals = list(refusals)
        self.paused = False
        self.calls = 0
        self.attrs = {"State": {"Paused": False, "Status": "running"}}

    def pause(self):
        self.calls += 1
        if self.refusals:
            raise docker.errors.APIError(self.refusals.pop(0))
        self.paused = True

    def reload(self):
        self.attrs = {"State": {"Paused": self.paused, "Status": "paused" if self.paused else "running"}}


class FakeCluster:
    def __init__(self, container):
        self.c = container

    def container(self, node):
        return self.c


@pytest.fixture(autouse=True)
def no_sleep(monkeypatch):
    monkeypatch.setattr(nodeops, "PAUSE_RETRY_S", 0.0, raising=False)


def test_nodeops_pause_retries_a_freeze_that_did_not_complete():
    c = FakeContainer([FREEZE, FREEZE])
    rec = nodeops.pause(FakeCluster(c), "m1")
    assert c.paused and c.calls == 3 and rec.detail == {"freeze_retries": 2}


def test_nodeops_pause_without_refusal_records_no_retries():
    c = FakeContainer([])
    assert nodeops.pause(FakeCluster(c), "m1").detail == {} and c.calls == 1


def test_nodeops_pause_gives_up_after_its_attempts_with_the_engine_error():
    c = FakeContainer([FREEZE] * nodeops.PAUSE_ATTEMPTS)
    with pytest.raises(EnvironmentError_, match="refused to pause m1: .*unable to freeze"):
        nodeops.pause(FakeCluster(c), "m1")
    assert c.calls == nodeops.PAUSE_ATTEMPTS and not c.paused


def test_nodeops_pause_other_refusals_are_not_retried():
    c = FakeContainer(["409 Client Error: Container 5f7d is not running"])
    with pytest.raises(EnvironmentError_, match="is not running"):
        nodeops.pause(FakeCluster(c), "m1")
    assert c.calls == 1
