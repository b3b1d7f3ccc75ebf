"""Preloaded image archives: kubeinit's air-gapped equivalent of kubeadm's image pull
(field lessons #8).

`kubeinit-build --images DIR` copies OCI archives into /usr/lib/kubeinit/images and records in
the profile which image each archive holds and the sha256 of the archive file (`Preload`). On
the node, before the kubelet starts, the preflight phase's ImagePull check calls
`import_archives`: every archive holding an image the container runtime does not have yet is
checked against its recorded sha256 and imported with containerd's own CLI into the `k8s.io`
namespace, where the CRI plugin (and so the kubelet) finds images:

    ctr --address /var/run/containerd/containerd.sock --namespace k8s.io \\
        images import --label io.cri-containerd.pinned=pinned ARCHIVE

The pinned label (containerd's `labels.PinnedImageLabelKey`) makes the CRI report the images as
pinned, so the kubelet's image garbage collector never removes them: this node could not pull
them back. Nothing here pulls; an image that is neither present nor preloaded is reported by the
presence check that follows.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from kubeinit import paths
from kubeinit.errors import PhaseFailed
from kubeinit.run import run

CTR = "ctr"
NAMESPACE = "k8s.io"  # containerd's namespace for CRI images (criconfig.K8sContainerdNamespace)
PINNED_LABEL = "io.cri-containerd.pinned=pinned"
IMPORT_TIMEOUT = 900.0  # one archive; a slow (emulated) disk needs minutes for the largest


@dataclass(frozen=True)
class Preload:
    image: str  # e.g. registry.k8s.io/kube-apiserver:v1.37.2
    archive: str  # node path of the OCI/docker archive
    digest: str  # "sha256:<hex>" of the archive file


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
