"""`chaos doctor`'s netem line: whether this machine's kernel has sch_netem (packet-level loss,
duplication, reordering), told from files a normal user can read, on fake root trees."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys

from chaos.env import doctor
from chaos.env.netem import CLOSEST, netem_state

RELEASE = "6.1.0-test"


def _tree(tmp_path, *, sys_module=False, proc_modules=None, config=None, builtin=None, ko=False):
    root = tmp_path / "root"
    (root / "proc/sys/kernel").mkdir(parents=True)
    (root / "proc/sys/kernel/osrelease").write_text(RELEASE + "\n")
    if sys_module:
        (root / "sys/module/sch_netem").mkdir(parents=True)
    if proc_modules is not None:
        (root / "proc/modules").write_text(proc_modules)
    if config is not None:
        with gzip.open(root / "proc/config.gz", "wt") as fh:
            fh.write(config)
    mod = root / "lib/modules" / RELEASE
    if builtin is not None or ko:
        mod.mkdir(parents=True)
        (mod / "modules.builtin").write_text(builtin or "")
    if ko:
        (mod / "kernel/net/sched").mkdir(parents=True)
        (mod / "kernel/net/sched/sch_netem.ko.xz").write_bytes(b"")
    return str(root)


def test_netem_states_from_the_kernels_files(tmp_path):
    assert netem_state(_tree(tmp_path / "a", sys_module=True))[0] == "loaded"
    assert netem_state(_tree(tmp_path / "b", proc_modules="sch_netem 28672 0 - Live 0x0\n"))[0] == "loaded"
    assert netem_state(_tree(tmp_path / "c", config="CONFIG_NET_SCH_NETEM=y\n"))[0] == "builtin"
    state, how = netem_state(_tree(tmp_path / "d", config="# CONFIG_NET_SCH_NETEM is not set\n"))
    assert state == "absent" and "CONFIG_NET_SCH_NETEM is not set" in how
    assert netem_state(_tree(tmp_path / "e", proc_modules="", ko=True))[0] == "module"
    assert netem_state(_tree(tmp_path / "f", builtin="kernel/net/sched/sch_netem.ko\n"))[0] == "builtin"
    assert netem_state(_tree(tmp_path / "g", proc_modules="", builtin=""))[0] == "absent"
    state, how = netem_state(_tree(tmp_path / "h"))
    assert state == "unknown" and "could not read" in how


def test_netem_doctor_line_says_what_is_missing_and_what_comes_closest(tmp_path):
    absent = doctor.netem_check(_tree(tmp_path / "a", config="# CONFIG_NET_SCH_NETEM is not set\n"))
    assert absent.name == "netem" and absent.status == doctor.WARN
    assert "does NOT have it" in absent.detail and "loss, duplication, reordering" in absent.detail
    assert absent.fix == CLOSEST and "flaky" in absent.fix and "latency" in absent.fix
    have = doctor.netem_check(_tree(tmp_path / "b", sys_module=True))
    assert have.status == doctor.OK and "has it" in have.detail
    unknown = doctor.netem_check(_tree(tmp_path / "c"))
    assert unknown.status == doctor.WARN and "unknown" in unknown.detail


def test_netem_line_in_doctor_json_even_without_an_engine():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, DOCKER_HOST=f"tcp://127.0.0.1:{port}")
    proc = subprocess.run([sys.executable, "-m", "chaos.cli", "doctor", "--json"], capture_output=True, text=True,
                          env=env, timeout=60)
    checks = {c["name"]: c for c in json.loads(proc.stdout)}
    assert "netem" in checks and "sch_netem" in checks["netem"]["detail"]
    assert checks["netem"]["status"] in (doctor.OK, doctor.WARN)
