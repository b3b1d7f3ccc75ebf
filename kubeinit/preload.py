"""The images first boot runs, without a pull: kubeinit's air-gapped equivalent of kubeadm's
image pull (field lessons #8), in one of two modes the profile's `imageStore.mode` records.

unpacked  `kubeinit-build` wrote them into the image's containerd store already imported,
          unpacked and pinned (builder/containerd_store.py). First boot imports nothing: the
          preflight ImagePull check only verifies, with two metadata reads (`list_store`: `ctr
          images ls` and `ctr images check`), that containerd holds every image under the digest
          the build recorded, complete, unpacked and pinned (`verify_store`).
archives  the fallback when the build could not write a store the image's containerd would
          read (another containerd minor, snapshotter or root: the build said why). The OCI
          archives are in /usr/lib/kubeinit/images and the profile records which image each
          holds and the sha256 of the archive file (`Preload`). ImagePull calls
          `import_archives`: every archive holding an image the runtime does not have yet is
          checked against its sha256 and imported with containerd's own CLI into `k8s.io`,
          where the CRI plugin (and so the kubelet) finds images:

              ctr --address /var/run/containerd/containerd.sock --namespace k8s.io \\
                  images import --label io.cri-containerd.pinned=pinned ARCHIVE

          then verifies the store as above.

The pinned label (containerd's `labels.PinnedImageLabelKey`) makes the CRI report the images as
pinned, so the kubelet's image garbage collector never removes them: this node could not pull
them back. Nothing here pulls; an image that is neither present nor preloaded is reported by the
presence check that follows.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from kubeinit import paths
from kubeinit.errors import PhaseFailed
from kubeinit.run import run

CTR = "ctr"
NAMESPACE = "k8s.io"  # containerd's namespace for CRI images (criconfig.K8sContainerdNamespace)
PINNED_LABEL = "io.cri-containerd.pinned=pinned"
MANAGED_LABEL = "io.cri-containerd.image=managed"  # as a CRI pull labels its images
IMPORT_TIMEOUT = 900.0  # one archive; a slow (emulated) disk needs minutes for the largest
LIST_TIMEOUT = 60.0
# imageStore.mode: how the image carries its images
MODE_UNPACKED = "unpacked"  # already in containerd's store (builder/containerd_store.py)
MODE_ARCHIVES = "archives"  # archives in /usr/lib/kubeinit/images, imported at first boot
MODES = ("", MODE_UNPACKED, MODE_ARCHIVES)  # "": no images preloaded


@dataclass(frozen=True)
class Preload:
    image: str  # e.g. registry.k8s.io/kube-apiserver:v1.37.2
    archive: str  # node path of the OCI/docker archive
    digest: str  # "sha256:<hex>" of the archive file


@dataclass(frozen=True)
class ImageStore:
    """What containerd must hold at first boot: each preloaded image and the digest containerd
    records for it (the manifest or index digest `ctr images ls` prints; "" when the build could
    not know it, e.g. a docker archive, whose manifest containerd makes at import)."""

    mode: str = ""
    images: Mapping[str, str] = field(default_factory=dict)
    snapshotter: str = ""  # unpacked: the snapshotter the layers were unpacked for
    containerd: str = ""  # unpacked: the containerd version that wrote the store
    reason: str = ""  # archives: why the build did not unpack them


@dataclass(frozen=True)
class StoredImage:
    digest: str
    pinned: bool
    complete: bool
    unpacked: bool


@dataclass
class ImportReport:
    imported: list[str] = field(default_factory=list)  # archive node paths
    already_present: list[str] = field(default_factory=list)  # archive node paths
    errors: list[str] = field(default_factory=list)


def containerd_address(cri_socket: str) -> str | None:
    """The socket path of a `unix://` CRI endpoint (or a bare path), else None."""
    if cri_socket.startswith("unix://"):
        return cri_socket.removeprefix("unix://")
    if cri_socket.startswith("/"):
        return cri_socket
    return None


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return "sha256:" + h.hexdigest()


def by_archive(preload: Sequence[Preload]) -> dict[str, list[Preload]]:
    """Archive node path -> the entries it holds (an archive may hold several images), in the
    profile's order."""
    out: dict[str, list[Preload]] = {}
    for p in preload:
        out.setdefault(p.archive, []).append(p)
    return out


def import_archives(
    cri_socket: str,
    preload: Sequence[Preload],
    root: Path,
    present: Callable[[str], bool],
    log: Callable[[str], None] | None = None,
) -> ImportReport:
    """Import every archive of `preload` whose images are not all `present` in the runtime,
    saying so through `log` as each one is done. Errors are collected (one line each,
    kubeadm-style), never raised: the caller reports them as the ImagePull check's errors."""
    report = ImportReport()
    groups = by_archive(preload)
    if not groups:
        return report
    address = containerd_address(cri_socket)
    for archive, entries in groups.items():
        if all(present(e.image) for e in entries):
            report.already_present.append(archive)
            continue
        if address is None:
            report.errors.append(
                f"cannot import {archive}: the CRI endpoint {cri_socket} is not a unix socket"
            )
            continue
        path = paths.under(root, archive)
        try:
            digest = sha256_file(path)
        except OSError as e:
            report.errors.append(f"cannot read the preloaded archive {path}: {e.strerror or e}")
            continue
        want = {e.digest for e in entries}
        if want != {digest}:
            report.errors.append(
                f"the preloaded archive {path} has {digest}, the image was built with"
                f" {', '.join(sorted(want))}: it is damaged or was replaced"
            )
            continue
        argv = [
            CTR,
            "--address",
            address,
            "--namespace",
            NAMESPACE,
            "images",
            "import",
            "--label",
            PINNED_LABEL,
            "--label",
            MANAGED_LABEL,
            str(path),
        ]
        started = time.monotonic()
        try:
            run(argv, timeout=IMPORT_TIMEOUT)
        except PhaseFailed as e:
            report.errors.append(f"failed to import {archive}: {e.message}")
            continue
        report.imported.append(archive)
        if log is not None:
            log(
                f"imported {archive} ({', '.join(e.image for e in entries)}) into namespace"
                f" {NAMESPACE} in {time.monotonic() - started:.1f}s"
            )
    if report.imported:
        # containerd wrote the content and snapshots through the page cache; a power cut right
        # after preflight must not leave a journal saying "done" and a store without them.
        os.sync()
    return report


def list_store(
    address: str, snapshotter: str = "", *, pinned: Mapping[str, bool] | None = None
) -> dict[str, StoredImage]:
    """containerd's own records of namespace k8s.io, no import: `ctr images check` (digest,
    blobs present, top snapshot unpacked) and, unless the caller has the CRI's `pinned` flags
    already (`crictl images`), `ctr images ls` for the pinned label."""
    base = [CTR, "--address", address, "--namespace", NAMESPACE, "images"]
    check = [*base, "check"] + (["--snapshotter", snapshotter] if snapshotter else [])
    checked = run(check, timeout=LIST_TIMEOUT).stdout
    labelled: dict[str, bool] = dict(pinned or {})
    if pinned is None:
        key, _, value = PINNED_LABEL.partition("=")
        for line in run([*base, "ls"], timeout=LIST_TIMEOUT).stdout.splitlines()[1:]:
            f = line.split()  # REF TYPE DIGEST SIZE(2 fields) PLATFORMS LABELS
            if len(f) >= 4:
                labels = dict(kv.partition("=")[::2] for kv in f[-1].split(","))
                labelled[f[0]] = labels.get(key) == value
    out: dict[str, StoredImage] = {}
    for line in checked.splitlines()[1:]:
        f = line.split()  # REF TYPE DIGEST STATUS... SIZE... UNPACKED (STATUS, SIZE: spaces)
        if len(f) >= 5:
            out[f[0]] = StoredImage(f[2], labelled.get(f[0], False), f[3] == "complete",
                                    f[-1] == "true")  # fmt: skip
    return out


def verify_store(store: ImageStore, stored: Mapping[str, StoredImage]) -> list[str]:
    """One error line per image of the profile that containerd does not hold as built: missing,
    another digest under its name (replaced or tampered with), content incomplete, not
    unpacked (an unpacked image), not pinned."""
    errors = []
    for image, digest in sorted(store.images.items()):
        got = stored.get(image)
        if got is None:
            errors.append(
                f"the preloaded image {image} is not in containerd (namespace {NAMESPACE})"
            )
        elif digest and got.digest != digest:
            errors.append(
                f"containerd holds {image} as {got.digest}, the image was built with {digest}:"
                " it was replaced or tampered with"
            )
        elif not got.complete:
            errors.append(f"the content of the preloaded image {image} is incomplete in containerd")
        elif store.mode == MODE_UNPACKED and not got.unpacked:
            errors.append(
                f"the preloaded image {image} is not unpacked for the {store.snapshotter}"
                " snapshotter in containerd"
            )
        elif not got.pinned:
            errors.append(f"the preloaded image {image} is not labelled {PINNED_LABEL}")
    return errors
