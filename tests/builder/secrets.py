"""Scan a whole raw disk image for secrets: PEM private keys, bootstrap-token-shaped and
certificate-key-shaped strings.

Only the data extents of the sparse raw file are read (SEEK_DATA/SEEK_HOLE) and streamed
through GNU grep (-z: newlines are ordinary characters, so a PEM header and its body match as
one string). A PEM private key is a header followed by base64: any is a failure. Token shapes
([a-z0-9]{6}.[a-z0-9]{16}) and 64-hex-digit strings also occur in ordinary files (Rust crate
hashes in shared libraries, checksums), so those count only when they are new compared with
the base image and do not occur in the public code the build copied in (`exclude_from`). PEM
private keys count when new compared with the base image: Debian's libgnutls carries its FIPS
self-test keys.
"""

from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

PEM_KEY = r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----[[:space:]]+[A-Za-z0-9+/=]{40}"
TOKEN = r"[a-z0-9]{6}\.[a-z0-9]{16}"
# a digest written as sha256:<hex> (OCI, the profile) or .../sha256/<hex> is not a key
CERT_KEY = r"(sha256[:/])?[0-9a-f]{64}"
_CHUNK = 16 << 20


def _extents(fd: int) -> Iterator[tuple[int, int]]:
    size = os.fstat(fd).st_size
    pos = 0
    while pos < size:
        try:
            start = os.lseek(fd, pos, os.SEEK_DATA)
        except OSError:  # ENXIO: no data after pos
            return
        end = os.lseek(fd, start, os.SEEK_HOLE)
        yield start, end
        pos = end


def _chunks(paths: Iterable[Path]) -> Iterator[bytes]:
    for path in paths:
        if path.is_dir():
            yield from _chunks(sorted(p for p in path.rglob("*") if p.is_file()
                                      and not p.is_symlink()))
            continue
        fd = os.open(path, os.O_RDONLY)
        try:
            for start, end in _extents(fd):
                off = start
                while off < end:
                    data = os.pread(fd, min(_CHUNK, end - off), off)
                    if not data:
                        break
                    yield data
                    off += len(data)
                yield b"\0"  # never join the end of one extent to the next
        finally:
            os.close(fd)


def grep(paths: Iterable[Path], pattern: str, *, words: bool = True) -> set[bytes]:
    """Every distinct match of the extended regular expression `pattern` (as whole words
    unless `words` is false)."""
    proc = subprocess.Popen(["grep", "-a", "-z", "-o", *(["-w"] if words else []), "-E", "-e",
                             pattern],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            env={"LC_ALL": "C", "PATH": os.environ.get("PATH", "")})
    assert proc.stdin is not None and proc.stdout is not None

    def feed() -> None:
        assert proc.stdin is not None
        try:
            for chunk in _chunks(paths):
                proc.stdin.write(chunk)
        finally:
            proc.stdin.close()

    writer = threading.Thread(target=feed)
    writer.start()
    out = proc.stdout.read()
    writer.join()
    proc.wait()
    return {m for m in out.split(b"\0") if m}


@dataclass
class Found:
    new_private_keys: set[bytes] = field(default_factory=set)
    new_tokens: set[bytes] = field(default_factory=set)
    new_certificate_keys: set[bytes] = field(default_factory=set)


def scan_image(raw: Path, *, baseline: Path | None = None,
               exclude_from: Iterable[Path] = ()) -> Found:
    exclude = list(exclude_from)
    found = Found(new_private_keys=grep([raw], PEM_KEY, words=False))
    tokens = grep([raw], TOKEN)
    keys = grep([raw], CERT_KEY)
    if baseline is not None:
        found.new_private_keys -= grep([baseline], PEM_KEY, words=False)
        tokens -= grep([baseline], TOKEN)
        keys -= grep([baseline], CERT_KEY)
    if exclude:
        tokens -= grep(exclude, TOKEN)
        keys -= grep(exclude, CERT_KEY)
    found.new_tokens = tokens
    found.new_certificate_keys = {k for k in keys if not k.startswith(b"sha256")}
    return found


def public_image_data(oci_dir: Path, dest: Path) -> Path:
    """What the images given to the build make public, computed from the OCI archives alone
    (not from what the build wrote): every blob digest, every layer's diff ID and chain ID (the
    names containerd gives the unpacked snapshots), and the decompressed layers themselves. The
    image's containerd store is full of these 64-hex-digit names; they are not secrets, while
    any other new 64-hex string still is. Written under `dest`, for `scan_image(exclude_from=)`.
    """
    import gzip
    import hashlib
    import json
    import tarfile

    dest.mkdir(parents=True, exist_ok=True)
    names: set[str] = set()
    for n, archive in enumerate(sorted(oci_dir.glob("*.tar"))):
        with tarfile.open(archive) as tar:
            blobs = {m.name.rsplit("/", 1)[1]: m for m in tar.getmembers()
                     if m.isfile() and "/sha256/" in f"/{m.name}"}
            # containerd's importer stores the archive's index.json as a blob of its own
            for m in tar.getmembers():
                f = tar.extractfile(m) if m.isfile() and "/sha256/" not in f"/{m.name}" else None
                if f is not None:
                    names.add(hashlib.sha256(f.read()).hexdigest())
            names.update(blobs)
            for digest, member in blobs.items():
                f = tar.extractfile(member)
                assert f is not None
                data = f.read()
                if data[:2] == b"\x1f\x8b":  # a gzip layer: its content is public too
                    data = gzip.decompress(data)
                    names.add(hashlib.sha256(data).hexdigest())
                (dest / f"{n}-{digest}").write_bytes(data)
                try:
                    doc = json.loads(data)
                except (UnicodeDecodeError, ValueError):
                    continue
                diff_ids = doc.get("rootfs", {}).get("diff_ids") if isinstance(doc, dict) else None
                chain = ""
                for diff_id in diff_ids or []:
                    chain = diff_id if not chain else "sha256:" + hashlib.sha256(
                        f"{chain} {diff_id}".encode()).hexdigest()
                    names.update({diff_id.removeprefix("sha256:"), chain.removeprefix("sha256:")})
    (dest / "digests.txt").write_text("\n".join(sorted(names)) + "\n")
    return dest
