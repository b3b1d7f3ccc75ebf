"""A control-plane node image for the end-to-end demo (test and demo tooling): the base image
(hack/base-image), the control-plane images (hack/oci-images) and `kubeinit-build --image
--images` on top, each step cached.

    image = node_image(config)   # ~/.cache/kubeinit/e2e/<config id>-<key>/node.qcow2

The built image is cached under ${KUBEINIT_CACHE_DIR:-~/.cache/kubeinit}/e2e/<config id>-<key>/
(one build at a time, under a lock; concurrent sessions wait and reuse it), keyed by
what it is made of: the base image file (its recipe hash is in its path), the archives'
digests (images.json), the configuration, every file of kubeinit's runtime, builder, unit
and preset, pyproject.toml (kubeinit's declared dependencies) and the versions of the Python
dependencies bundled into the image (the `name-version.dist-info` directories of every complete
tree in <cache>/pysite/, which the builder installs onto the node). A tree made by the build
itself is keyed after the build, so the next session finds the image under the key it computes.
Only the newest build of each configuration is kept. Each step says what it does and how long
it took.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SOURCES = ("kubeinit", "firstboot", "builder", "units", "packaging")


def cache_root() -> Path:
    base = os.environ.get("KUBEINIT_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "kubeinit")
    return Path(base)


def _stderr(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _last_line(argv: list[str], what: str, log: Callable[[str], None]) -> str:
    """Run a hack/ tool, its progress (stderr) passed through, and return its last stdout
    line (the path it prints)."""
    t0 = time.monotonic()
    log(f"== {what}")
    proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=None, text=True, timeout=7200,
                          check=False, cwd=REPO)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {proc.returncode}")
    out = proc.stdout.strip().splitlines()[-1]
    log(f"   {out} ({time.monotonic() - t0:.1f} s)")
    return out


def bundled_versions() -> list[str]:
    """`<tree>: name-version` of every Python dependency the builder bundles (builder/pydeps.py
    keeps each installed tree under <cache>/pysite/<key>/, marked complete)."""
    out = []
    for tree in sorted((cache_root() / "pysite").glob("*/.complete")):
        out += [f"{tree.parent.name}: {d.name.removesuffix('.dist-info')}"
                for d in sorted(tree.parent.glob("*.dist-info"))]
    return out


def source_digest(config: Path, base: Path, images: Path) -> str:
    h = hashlib.sha256()
    h.update((REPO / "pyproject.toml").read_bytes())
    h.update("\n".join(bundled_versions()).encode() + b"\0")
    st = base.stat()
    h.update(f"{base}\0{st.st_size}\0{st.st_mtime_ns}\0".encode())
    h.update((images / "images.json").read_bytes())
    h.update(config.read_bytes())
    for top in SOURCES:
        for p in sorted((REPO / top).rglob("*")):
            if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc":
                h.update(str(p.relative_to(REPO)).encode() + b"\0" + p.read_bytes())
    return h.hexdigest()[:16]


@dataclass(frozen=True)
class NodeImage:
    image: Path  # the built node image (a template: boot overlays of it)
    base: Path  # the base image it was built from
    images: Path  # the OCI archives preloaded into it (images.json lists them)


def node_image(config: Path, *, python: str = sys.executable,
               log: Callable[[str], None] = _stderr) -> Path:
    return build_node_image(config, python=python, log=log).image


def _lock(path: Path, timeout: float, log: Callable[[str], None]) -> int:
    """An exclusive flock on `path` (released when the process ends), waited for at most
    `timeout` seconds: one node-image build at a time on this machine."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    deadline = time.monotonic() + timeout
    said = False
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            if time.monotonic() > deadline:
                os.close(fd)
                raise RuntimeError(f"another node-image build held {path} for {timeout:.0f} s"
                                   ) from None
            if not said:
                log(f"   waiting for another node-image build ({path})")
                said = True
            time.sleep(2)


def build_node_image(config: Path, *, python: str = sys.executable,
                     log: Callable[[str], None] = _stderr) -> NodeImage:
    base = Path(_last_line([str(REPO / "hack" / "base-image")],
                           "base image (hack/base-image; cached by recipe)", log))
    images = Path(_last_line([python, str(REPO / "hack" / "oci-images")],
                             "control-plane images (hack/oci-images; cached by content)", log))
    # Builds are per configuration (`<config id>-<key>`): a build of one configuration (the
    # demo's) never removes the image of another (the test's) that a session may be booting.
    config_id = hashlib.sha256(str(config.resolve()).encode()).hexdigest()[:8]
    root = cache_root() / "e2e"
    fd = _lock(root / ".build.lock", 3600, log)
    try:
        key = source_digest(config, base, images)
        image = root / f"{config_id}-{key}" / "node.qcow2"
        if image.is_file():
            log(f"== node image: cached ({image})")
            return NodeImage(image, base, images)
        log(f"== node image: kubeinit-build --image {base.name} --config {config} --images"
            f" {images}")
        t0 = time.monotonic()
        tmp = root / f"{config_id}-{key}.{os.getpid()}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        proc = subprocess.run([python, "-m", "builder", "--image", str(base), "--output",
                               str(tmp / "node.qcow2"), "--config", str(config), "--images",
                               str(images)], cwd=REPO, timeout=3600, check=False,
                              stdout=sys.stderr)  # progress only; stdout is for the path
        if proc.returncode != 0:
            shutil.rmtree(tmp, ignore_errors=True)
            raise RuntimeError(f"kubeinit-build exited {proc.returncode}")
        # the build may have made the bundled dependency tree: key the image by what it holds
        key = source_digest(config, base, images)
        out_dir = root / f"{config_id}-{key}"
        image = out_dir / "node.qcow2"
        shutil.rmtree(out_dir, ignore_errors=True)
        tmp.rename(out_dir)
        for old in root.iterdir():  # older builds of this configuration: ~1.3 GB each
            if (old.name.startswith(f"{config_id}-") and old.name != out_dir.name
                    and not old.name.endswith(".tmp") and old.is_dir()):
                shutil.rmtree(old, ignore_errors=True)
        log(f"   {image} ({time.monotonic() - t0:.1f} s)")
        return NodeImage(image, base, images)
    finally:
        os.close(fd)
