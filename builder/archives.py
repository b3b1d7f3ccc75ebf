"""`--images DIR`: OCI image archives to preload, matched to the pinned image list.

An archive is a tar file as `ctr images export`, `docker save` or `skopeo copy ... oci-archive:`
write it. The image names it holds are read from the archive itself, never from its file name:
the `io.containerd.image.name` (or a full `org.opencontainers.image.ref.name`) annotation of
index.json, or the RepoTags of a docker manifest.json. Every image the rendered manifests need
must be there (field lessons #8, #9: one source of truth for image names); archives of other
images are left out of the image.
"""

from __future__ import annotations

import hashlib
import json
import tarfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from kubeinit.errors import InvalidInput

NODE_DIR = "/usr/lib/kubeinit/images"


@dataclass(frozen=True)
class Archive:
    path: Path
    images: frozenset[str]
    # image -> the digest of its descriptor in index.json: what containerd records as the
    # image's target on import (`ctr images ls` DIGEST). Docker archives have none: containerd
    # makes their manifest at import.
    digests: Mapping[str, str] = field(default_factory=dict)


def read_archive(path: Path) -> Archive:
    """The image names an archive holds."""
    names: set[str] = set()
    digests: dict[str, str] = {}
    try:
        with tarfile.open(path, "r:*") as tar:
            members = {m.name.removeprefix("./"): m for m in tar.getmembers() if m.isfile()}
            if "index.json" in members:
                index = _json(tar, members["index.json"], path)
                for desc in index.get("manifests", []) if isinstance(index, dict) else []:
                    ann = desc.get("annotations", {}) if isinstance(desc, dict) else {}
                    name = ann.get("io.containerd.image.name") or ann.get(
                        "org.opencontainers.image.ref.name", ""
                    )
                    if "/" in name and ":" in name:
                        names.add(name)
                        if isinstance(desc.get("digest"), str):
                            digests.setdefault(name, desc["digest"])
            if "manifest.json" in members:
                manifest = _json(tar, members["manifest.json"], path)
                for entry in manifest if isinstance(manifest, list) else []:
                    for tag in entry.get("RepoTags") or [] if isinstance(entry, dict) else []:
                        names.add(tag)
    except (tarfile.TarError, OSError) as e:
        raise InvalidInput(
            f"--images: {path}: not a readable image archive: {e}",
            hint="give OCI or docker archives (ctr images export, docker save)",
        ) from None
    return Archive(path, frozenset(names), digests)


def _json(tar: tarfile.TarFile, member: tarfile.TarInfo, path: Path) -> object:
    f = tar.extractfile(member)
    if f is None:
        return None
    try:
        return json.loads(f.read())
    except ValueError:
        raise InvalidInput(
            f"--images: {path}: {member.name} is not JSON", hint="re-export the image"
        ) from None


def match_archives(directory: Path, wanted: tuple[str, ...]) -> dict[str, Path]:
    """image name -> archive, for every name in `wanted`; a missing image is an error naming
    it."""
    if not directory.is_dir():
        raise InvalidInput(
            f"--images: {directory}: no such directory",
            hint="give a directory of image archives (*.tar)",
        )
    found: dict[str, Path] = {}
    for p in sorted(directory.iterdir()):
        if p.is_file() and p.name.endswith((".tar", ".tar.gz", ".tgz", ".oci")):
            for name in read_archive(p).images:
                found.setdefault(name, p)
    missing = [w for w in wanted if w not in found]
    if missing:
        raise InvalidInput(
            f"--images: {directory} has no archive of {missing[0]}"
            + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""),
            hint="export it (e.g. ctr -n k8s.io images export"
            f" {missing[0].rsplit('/', 1)[-1].replace(':', '_')}.tar"
            f" {missing[0]}); the pinned image list is"
            " in `kubeinit-build --dry-run` output",
        )
    return {w: found[w] for w in wanted}


def node_path(archive: Path) -> str:
    """Where an archive goes in the image: its own file name, so an archive holding several
    of the images is copied once."""
    return f"{NODE_DIR}/{archive.name}"


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return "sha256:" + h.hexdigest()


def image_digests(wanted: Mapping[str, Path]) -> dict[str, str]:
    """image -> the digest containerd will record for it, from the archives `match_archives`
    chose ("" for a docker archive)."""
    read: dict[Path, Archive] = {}
    out = {}
    for image, path in wanted.items():
        if path not in read:
            read[path] = read_archive(path)
        out[image] = read[path].digests.get(image, "")
    return out
