"""The image build chain: a Python base image without a registry, then the node image.

Owns: choosing the base image (DESIGN.md section 6), bootstrapping one with mmdebstrap/debootstrap
and `docker import` when nothing else works, downloading aiohttp wheels on the host for a bare
`python:3.11-slim` base, assembling the build context, and building `chaos-node:<content hash>` with
the Docker SDK (never the docker CLI, never a shell string). Records which path was taken as image
labels (`chaos.base-path`, `chaos.base`) so `chaos doctor` and reports can say it.

Base order (first that works):
  1. configured: `--base-image` / CHAOS_BASE_IMAGE, a local image with python3 + aiohttp;
  2. `chaos-base:bookworm-<hash of DEBIAN_PACKAGES>` already on the engine (made by path 4 earlier: reused, not rebuilt);
  3. `python:3.11-slim`, local or pulled; aiohttp comes from wheels the host downloads (`pip
     download`) into the build context — the build itself never reaches the network;
  4. mmdebstrap (else debootstrap) a Debian bookworm rootfs with python3, python3-aiohttp and
     python3-uvloop and libfaketime, imported as `chaos-base:bookworm-<hash>`.

Must not import: click, chaos.cli, chaos.env.cluster.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import docker
import docker.errors

from chaos.env.engine import engine_errors
from chaos.env.labels import TOOL_LABEL, TOOL_NAME
from chaos.env.progress import NullProgress, Progress
from chaos.errors import EnvironmentError_, UsageError

NODE_REPO = "chaos-node"
DEBIAN_PACKAGES = ("python3", "python3-aiohttp", "python3-uvloop", "libfaketime")
"""What the bootstrapped base holds. libfaketime: the `clock` fault preloads it (node_image/Dockerfile
links it to FAKETIME_LIB)."""
BOOTSTRAP_REPO = "chaos-base"
BOOTSTRAP_TAG = "bookworm-" + hashlib.sha256(",".join(DEBIAN_PACKAGES).encode()).hexdigest()[:8]
"""The tag changes with the package list: a checkout with another list bootstraps its own base and
leaves the others' (an older `chaos-base:bookworm` is never reused for a list it does not hold)."""
BOOTSTRAP_REF = f"{BOOTSTRAP_REPO}:{BOOTSTRAP_TAG}"
FAKETIME_LIB = "/opt/chaos/faketime/libfaketime.so.1"
"""Where the node image links Debian's libfaketime (its multiarch path differs per architecture);
absent when the base has no libfaketime (then a `clock` fault is refused when it is applied)."""
PULL_REPO, PULL_TAG = "python", "3.11-slim"
PULL_REF = f"{PULL_REPO}:{PULL_TAG}"
BASE_ENV = "CHAOS_BASE_IMAGE"
MIRROR_ENV = "CHAOS_DEBIAN_MIRROR"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
# The agent needs aiohttp 3.8 API only (contracts.md section 1); pin below 3.9 to match Debian.
WHEEL_REQUIREMENTS = ("aiohttp>=3.8,<3.9", "uvloop>=0.17,<0.20")
BOOTSTRAP_TIMEOUT_S = 900
WHEELS_TIMEOUT_S = 300
PATH_LABEL = "chaos.base-path"
BASE_LABEL = "chaos.base"

PATH_CONFIGURED, PATH_REUSED, PATH_PULL, PATH_BOOTSTRAP = "configured", "bootstrap-reused", "pull", "bootstrap"


@dataclass(frozen=True)
class BaseChoice:
    ref: str           # image reference usable in FROM
    path: str          # one of PATH_*
    needs_wheels: bool  # True for python:3.11-slim: aiohttp comes from host-downloaded wheels
    note: str = ""


@dataclass(frozen=True)
class ImageResult:
    tag: str           # chaos-node:<hash>
    image_id: str
    base: str
    base_path: str
    built: bool        # False when an image with this content hash already existed
    seconds: float


def node_image_dir() -> Path:
    """node_image/ of this checkout (where the Dockerfile and the swarmnode package live)."""
    import swarmnode

    root = Path(swarmnode.__file__).resolve().parent.parent
    if not (root / "Dockerfile").is_file():
        raise EnvironmentError_(f"no Dockerfile in {root}",
                                hint="run chaos from a checkout of the project (pip install -e .)")
    return root


def _tree_files(root: Path) -> list[Path]:
    files = []
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if any(part.startswith(".") or part == "__pycache__" for part in rel.parts):
            continue
        if path.is_file() and path.suffix not in (".pyc", ".pyo", ".tmp"):
            files.append(path)
    return files


def content_hash(root: Path, base_id: str, extra: tuple[str, ...] = ()) -> str:
    """sha256 over node_image/ (relative paths + bytes), the base image id and wheel names; 12 hex."""
    digest = hashlib.sha256()
    for path in _tree_files(root):
        digest.update(str(path.relative_to(root)).encode() + b"\0")
        digest.update(path.read_bytes())
        digest.update(b"\0")
    digest.update(base_id.encode())
    for item in extra:
        digest.update(item.encode() + b"\0")
    return digest.hexdigest()[:12]


def _local_image(client: docker.DockerClient, ref: str):
    try:
        return client.images.get(ref)
    except docker.errors.ImageNotFound:
        return None


def _has_aiohttp(client: docker.DockerClient, ref: str) -> bool:
    try:
        client.containers.run(ref, ["python3", "-c", "import aiohttp"], entrypoint=[], remove=True,
                              network_mode="none", labels={TOOL_LABEL: TOOL_NAME})
        return True
    except (docker.errors.ContainerError, docker.errors.APIError):
        return False


def choose_base(client: docker.DockerClient, configured: str | None, progress: Progress,
                allow_pull: bool = True) -> BaseChoice:
    """Walk the base order (module docstring); bootstraps only as the last resort."""
    configured = configured or os.environ.get(BASE_ENV) or None
    if configured:
        progress.step(f"checking configured base image {configured}")
        with engine_errors(f"inspect image {configured}"):
            if _local_image(client, configured) is None:
                raise UsageError(f"base image {configured!r} is not on the engine",
                                 hint=f"load or build it first, or unset --base-image/{BASE_ENV}")
            if not _has_aiohttp(client, configured):
                raise UsageError(f"base image {configured!r} has no python3 with aiohttp",
                                 hint="use an image with python3 >= 3.11 and aiohttp 3.8, "
                                      "or omit --base-image to let chaos make one")
        return BaseChoice(configured, PATH_CONFIGURED, False)
    with engine_errors("list images"):
        if _local_image(client, BOOTSTRAP_REF) is not None:
            return BaseChoice(BOOTSTRAP_REF, PATH_REUSED, False, "bootstrapped earlier")
        if _local_image(client, PULL_REF) is not None:
            return BaseChoice(PULL_REF, PATH_PULL, True, "already local")
    if allow_pull:
        progress.step(f"trying to pull {PULL_REF}")
        try:
            client.images.pull(PULL_REPO, tag=PULL_TAG)
            return BaseChoice(PULL_REF, PATH_PULL, True, "pulled")
        except (docker.errors.APIError, docker.errors.DockerException) as exc:
            progress.step(f"pull failed ({_first_line(exc)}); bootstrapping a Debian base instead")
    bootstrap_base(client, progress)
    return BaseChoice(BOOTSTRAP_REF, PATH_BOOTSTRAP, False, "bootstrapped now")


def bootstrap_tool() -> str | None:
    """'mmdebstrap' or 'debootstrap' if on PATH (mmdebstrap preferred), else None."""
    for tool in ("mmdebstrap", "debootstrap"):
        if shutil.which(tool):
            return tool
    return None


def _mirror_lines(mirror: str) -> list[str]:
    lines = [f"deb {mirror} bookworm main", f"deb {mirror} bookworm-updates main"]
    if mirror.rstrip("/") == DEFAULT_MIRROR:
        lines.append("deb http://deb.debian.org/debian-security bookworm-security main")
    return lines


def mmdebstrap_argv(out_tar: Path, mirror: str) -> list[str]:
    """The mmdebstrap command: Essential packages + python3/aiohttp/uvloop, no docs or locales."""
    return [
        "mmdebstrap", "--variant=essential", "--include=" + ",".join(DEBIAN_PACKAGES),
        "--dpkgopt=path-exclude=/usr/share/doc/*",
        "--dpkgopt=path-include=/usr/share/doc/*/copyright",
        "--dpkgopt=path-exclude=/usr/share/man/*",
        "--dpkgopt=path-exclude=/usr/share/info/*",
        "--dpkgopt=path-exclude=/usr/share/locale/*",
        '--customize-hook=rm -rf "$1"/var/cache/apt/* "$1"/var/lib/apt/lists/*',
        "bookworm", str(out_tar), *_mirror_lines(mirror),
    ]


def _run_streaming(argv: list[str], progress: Progress, timeout_s: int, what: str) -> None:
    """Run argv (no shell), showing output lines as progress detail; bounded by timeout_s."""
    deadline = time.monotonic() + timeout_s
    tail: list[str] = []
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            progress.detail(line.strip())
            tail = (tail + [line.strip()])[-5:]
            if time.monotonic() > deadline:
                raise EnvironmentError_(f"{what} took longer than {timeout_s} s", hint="check the mirror")
        rc = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired as exc:
        raise EnvironmentError_(f"{what} took longer than {timeout_s} s", hint="check the mirror") from exc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if rc != 0:
        raise EnvironmentError_(f"{what} failed (exit {rc}): {' | '.join(tail)}",
                                hint=f"check network access to the Debian mirror ({MIRROR_ENV})")


def bootstrap_base(client: docker.DockerClient, progress: Progress) -> None:
    """Make `chaos-base:bookworm-<hash>` from a bootstrapped Debian rootfs (about 20 s, 150 MB here)."""
    tool = bootstrap_tool()
    if tool is None:
        raise EnvironmentError_(
            "no base image: no local python image, pulling failed, and neither mmdebstrap nor "
            "debootstrap is installed",
            hint="apt-get install mmdebstrap, or pass --base-image with python3 + aiohttp")
    mirror = os.environ.get(MIRROR_ENV, DEFAULT_MIRROR)
    with tempfile.TemporaryDirectory(prefix="chaos-rootfs-") as tmp:
        tar = Path(tmp) / "rootfs.tar"
        progress.step(f"bootstrapping Debian bookworm with {tool} from {mirror}")
        if tool == "mmdebstrap":
            _run_streaming(mmdebstrap_argv(tar, mirror), progress, BOOTSTRAP_TIMEOUT_S, "mmdebstrap")
        else:
            root = Path(tmp) / "root"
            _run_streaming(["debootstrap", "--variant=minbase", "--include=" + ",".join(DEBIAN_PACKAGES),
                            "bookworm", str(root), mirror], progress, BOOTSTRAP_TIMEOUT_S, "debootstrap")
            _run_streaming(["tar", "-C", str(root), "-cf", str(tar), "."], progress, 300, "tar")
        progress.step(f"importing the root filesystem as {BOOTSTRAP_REF}")
        changes = [f"LABEL {TOOL_LABEL}={TOOL_NAME}", f"LABEL {PATH_LABEL}=bootstrap",
                   f"LABEL chaos.bootstrap-tool={tool}", "ENV LANG=C.UTF-8",
                   "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                   'CMD ["python3"]']
        with engine_errors("import the bootstrapped root filesystem"):
            client.api.import_image_from_file(str(tar), repository=BOOTSTRAP_REPO, tag=BOOTSTRAP_TAG,
                                              changes=changes)


def wheels_argv(dest: Path, machine: str) -> list[str]:
    """`pip download` of aiohttp (+ deps) as cp311 manylinux wheels for the engine's architecture."""
    arch = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "aarch64", "arm64": "aarch64"}.get(machine, machine)
    return [sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "--quiet",
            "--only-binary=:all:", "--platform", f"manylinux2014_{arch}", "--python-version", "3.11",
            "--implementation", "cp", "--abi", "cp311", "--dest", str(dest), *WHEEL_REQUIREMENTS]


def _assemble_context(ctx: Path, source: Path, wheels_from: Path | None) -> list[str]:
    shutil.copy2(source / "Dockerfile", ctx / "Dockerfile")
    (ctx / ".dockerignore").write_text("Dockerfile\n.dockerignore\n")
    shutil.copytree(source / "swarmnode", ctx / "swarmnode",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".*"))
    wheels = ctx / "wheels"
    wheels.mkdir()
    (wheels / "README").write_text("aiohttp wheels downloaded by the host (empty when the base has it)\n")
    names: list[str] = []
    if wheels_from is not None:
        for whl in sorted(wheels_from.glob("*.whl")):
            shutil.copy2(whl, wheels / whl.name)
            names.append(whl.name)
    return names


def build_node_image(client: docker.DockerClient, base_image: str | None = None, force: bool = False,
                     progress: Progress | None = None, allow_pull: bool = True,
                     source: Path | None = None) -> ImageResult:
    """Build (or reuse) `chaos-node:<hash>`; also tags it `chaos-node:latest`. `source` overrides
    the node_image/ directory (a Dockerfile + swarmnode/), e.g. to try a patched tree."""
    progress = progress or NullProgress()
    started = time.monotonic()
    source = Path(source) if source is not None else node_image_dir()
    choice = choose_base(client, base_image, progress, allow_pull=allow_pull)
    with engine_errors(f"inspect base image {choice.ref}"):
        base = client.images.get(choice.ref)
        machine = client.info().get("Architecture", "x86_64")
    with tempfile.TemporaryDirectory(prefix="chaos-build-") as tmp:
        tmpdir = Path(tmp)
        wheel_dir = None
        if choice.needs_wheels:
            wheel_dir = tmpdir / "downloaded"
            progress.step("downloading aiohttp wheels on the host (pip download)")
            _run_streaming(wheels_argv(wheel_dir, machine), progress, WHEELS_TIMEOUT_S, "pip download")
        ctx = tmpdir / "context"
        ctx.mkdir()
        wheel_names = _assemble_context(ctx, source, wheel_dir)
        tag = f"{NODE_REPO}:{content_hash(source, base.id, tuple(wheel_names))}"
        with engine_errors(f"inspect image {tag}"):
            existing = _local_image(client, tag)
        if existing is not None and not force:
            progress.step(f"node image {tag} is up to date (base: {choice.ref}, {choice.path})")
            existing.tag(NODE_REPO, "latest")
            return ImageResult(tag, existing.id, choice.ref, existing.labels.get(PATH_LABEL, choice.path),
                               False, time.monotonic() - started)
        progress.step(f"building {tag} from {choice.ref} ({choice.path})")
        image_id = _build(client, ctx, tag, choice, force, progress)
    with engine_errors("tag the node image"):
        client.images.get(image_id).tag(NODE_REPO, "latest")
    seconds = time.monotonic() - started
    progress.step(f"built {tag} in {seconds:.1f} s")
    return ImageResult(tag, image_id, choice.ref, choice.path, True, seconds)


def _build(client: docker.DockerClient, ctx: Path, tag: str, choice: BaseChoice, force: bool,
           progress: Progress) -> str:
    image_id = None
    errors: list[str] = []
    with engine_errors(f"build {tag}"):
        stream = client.api.build(path=str(ctx), tag=tag, buildargs={"BASE_IMAGE": choice.ref, "CHAOS_BASE_PATH": choice.path},
                                  rm=True, forcerm=True, pull=False, nocache=force,
                                  decode=True)
        for chunk in stream:
            if "stream" in chunk:
                line = chunk["stream"].strip()
                if line:
                    progress.detail(line)
            if "aux" in chunk and "ID" in chunk["aux"]:
                image_id = chunk["aux"]["ID"]
            if "error" in chunk:
                errors.append(chunk["error"].strip())
    if errors or image_id is None:
        raise EnvironmentError_(f"building {tag} failed: {' | '.join(errors) or 'no image id'}",
                                hint=f"check the base image ({choice.ref}) has python3 and aiohttp; "
                                     "`chaos image build --force` retries from scratch")
    return image_id


def find_node_image(client: docker.DockerClient):
    """The newest local chaos-node image, or None."""
    with engine_errors("list images"):
        images = client.images.list(name=NODE_REPO, filters={"label": f"{TOOL_LABEL}={TOOL_NAME}"})
    if not images:
        return None
    return max(images, key=lambda im: im.attrs.get("Created", ""))


def remove_tool_images(client: docker.DockerClient, include_base: bool) -> list[str]:
    """Remove chaos-node images (and chaos-base when include_base); returns removed references."""
    removed = []
    with engine_errors("remove images"):
        repos = [NODE_REPO] + ([BOOTSTRAP_REPO] if include_base else [])
        for repo in repos:
            for image in client.images.list(name=repo):
                for ref in image.tags or [image.id]:
                    try:
                        client.images.remove(ref, force=True)
                        removed.append(ref)
                    except docker.errors.ImageNotFound:
                        pass
    return removed


def _first_line(exc: BaseException) -> str:
    text = getattr(exc, "explanation", None) or str(exc)
    return " ".join(str(text).split())[:160]
