"""Does this machine's kernel have sch_netem (packet loss, duplication, reordering, delay)?

Owns the check `chaos doctor` reports as `netem`. Packet-level faults need the netem queueing
discipline in the kernel that runs the containers (and CAP_NET_ADMIN to attach it, which chaos's
containers do not have: they drop every capability). chaos has no packet-level fault kind; every
link fault goes through Toxiproxy, which works on TCP streams (experiments/README.md, "Packet-level
faults"). The check reads, without privileges: /sys/module/sch_netem (loaded or built in),
/proc/modules, the kernel's build configuration (/proc/config.gz, /boot/config-RELEASE:
CONFIG_NET_SCH_NETEM), modules.builtin and the kernel's module tree (present but not loaded). It says
"unknown" when none of these can be read, and that it describes this host, not a remote engine
(DOCKER_HOST).

Must not import: click, docker.
"""

from __future__ import annotations

import os
from pathlib import Path

CLOSEST = ("closest Toxiproxy toxics: loss -> `flaky` (a share of connections cut or reset, not "
           "single packets) or `reset`/`limit`; delay and jitter -> `latency` with `jitter_ms` (per "
           "chunk, order kept); duplication and reordering -> none (TCP streams hide both)")


def netem_state(root: str = "/") -> tuple[str, str]:
    """(state, how it was told): state is `loaded`, `builtin`, `module` (present, not loaded),
    `absent` or `unknown`."""
    base = Path(root)
    if (base / "sys/module/sch_netem").exists():
        return "loaded", "/sys/module/sch_netem exists"
    modules = base / "proc/modules"
    readable = False
    try:
        text = modules.read_text()
        readable = True
        if any(line.split(" ", 1)[0] == "sch_netem" for line in text.splitlines()):
            return "loaded", "listed in /proc/modules"
    except OSError:
        pass
    release = os.uname().release if root == "/" else _release(base)
    config, where = _kernel_config(base, release)
    if config is not None:
        if "CONFIG_NET_SCH_NETEM=y" in config:
            return "builtin", f"CONFIG_NET_SCH_NETEM=y in {where}"
        if "CONFIG_NET_SCH_NETEM=m" not in config:
            return "absent", f"CONFIG_NET_SCH_NETEM is not set in {where} (kernel {release})"
    moddir = base / "lib/modules" / release
    if moddir.is_dir():
        try:
            if "sch_netem.ko" in (moddir / "modules.builtin").read_text():
                return "builtin", f"built into kernel {release} (modules.builtin)"
        except OSError:
            pass
        found = sorted(moddir.glob("kernel/net/sched/sch_netem.ko*"))
        if found:
            return "module", f"{found[0].relative_to(base)} present but not loaded"
        return "absent", f"not in kernel {release}'s modules, not loaded"
    if readable:
        return "unknown", f"not loaded; no module tree for kernel {release} to tell whether it could be"
    return "unknown", "could not read /proc/modules, the kernel's configuration or its module tree"


def _kernel_config(base: Path, release: str) -> tuple[str | None, str]:
    """The running kernel's build configuration (/proc/config.gz or /boot/config-RELEASE)."""
    import gzip

    for path, opener in ((base / "proc/config.gz", gzip.open), (base / "boot" / f"config-{release}", open)):
        try:
            with opener(path, "rt") as fh:
                return fh.read(), str(path.relative_to(base)) if base != Path("/") else str(path)
        except (OSError, EOFError, gzip.BadGzipFile):
            continue
    return None, ""


def _release(base: Path) -> str:
    try:
        return (base / "proc/sys/kernel/osrelease").read_text().strip()
    except OSError:
        return os.uname().release
