"""What a build writes, as data: an ordered list of entries that both targets install.

A `Payload` is computed completely on the build host before anything touches the target, so
`--dry-run` can list it, the free-space check can size it, and two builds from the same inputs
can be compared entry by entry. `--image` installs it as one deterministic tar stream through
libguestfs; `--root` installs the same entries with `kubeinit.fs.write_file`.
"""

from __future__ import annotations

import hashlib
import io
import tarfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path, PurePosixPath
from typing import BinaryIO

# Every file the builder writes gets this modification time (reproducible-builds.org's
# SOURCE_DATE_EPOCH idea with a fixed value): the same inputs give byte-identical trees.
MTIME = 1_700_000_000


class Kind(StrEnum):
    DIR = "dir"  # a directory kubeinit owns: created with `mode`
    PARENT = "parent"  # a directory that must exist; created 0755 if missing, else untouched
    FILE = "file"
    SYMLINK = "symlink"
    REMOVE = "remove"  # a file that must not be in the image (e.g. /var/lib/systemd/random-seed)


@dataclass(frozen=True)
class Entry:
    path: str  # absolute node path
    kind: Kind
    mode: int = 0o644
    data: bytes = field(default=b"", repr=False)
    source: Path | None = None  # FILE content read from here instead of `data` (large files)
    link: str = ""  # SYMLINK target
    # DIR only: the directory is kubeinit's alone and is replaced as a whole (files of an
    # earlier build do not survive a rebuild).
    replace: bool = False

    def __post_init__(self) -> None:
        p = PurePosixPath(self.path)
        if not p.is_absolute() or ".." in p.parts or str(p) != self.path:
            raise ValueError(f"payload path {self.path!r} is not a normalised absolute path")

    @property
    def size(self) -> int:
        if self.kind is not Kind.FILE:
            return 0
        return self.source.stat().st_size if self.source is not None else len(self.data)

    def content(self) -> bytes:
        return self.source.read_bytes() if self.source is not None else self.data


@dataclass(frozen=True)
class Payload:
    entries: tuple[Entry, ...]

    @classmethod
    def of(cls, entries: Iterable[Entry]) -> Payload:
        """Entries sorted so that every directory comes before what it contains; the same
        path twice is a programming error."""
        by_path: dict[str, Entry] = {}
        for e in entries:
            if e.path in by_path and by_path[e.path] != e:
                raise ValueError(f"payload: two different entries for {e.path}")
            by_path[e.path] = e
        return cls(tuple(sorted(by_path.values(), key=lambda e: PurePosixPath(e.path).parts)))

    def __iter__(self) -> Iterator[Entry]:
        return iter(self.entries)

    def of_kind(self, *kinds: Kind) -> list[Entry]:
        return [e for e in self.entries if e.kind in kinds]

    def replaced_dirs(self) -> list[str]:
        return [e.path for e in self.entries if e.kind is Kind.DIR and e.replace]

    def split(self, directory: str) -> tuple[list[Entry], list[Entry]]:
        """(entries at or under `directory`, the others)."""
        inside: list[Entry] = []
        outside: list[Entry] = []
        for e in self.entries:
            under = e.path == directory or e.path.startswith(directory + "/")
            (inside if under else outside).append(e)
        return inside, outside

    @property
    def file_bytes(self) -> int:
        return sum(e.size for e in self.entries)

    def disk_bytes(self, block: int = 4096) -> int:
        """An upper estimate of the space the payload takes: files rounded up to blocks, one
        block per directory and symlink."""
        total = 0
        for e in self.entries:
            if e.kind is Kind.FILE:
                total += -(-e.size // block) * block
            elif e.kind in (Kind.DIR, Kind.PARENT, Kind.SYMLINK):
                total += block
        return total

    def write_tar(self, out: BinaryIO) -> str:
        """The payload as a tar stream (owned directories, files, symlinks; root-owned, fixed
        mtime, sorted), the same bytes for the same payload. Returns its sha256."""
        tee = _HashingWriter(out)
        with tarfile.open(fileobj=tee, mode="w|", format=tarfile.GNU_FORMAT) as tar:  # type: ignore[call-overload]
            for e in self.entries:
                if e.kind not in (Kind.DIR, Kind.FILE, Kind.SYMLINK):
                    continue
                info = tarfile.TarInfo(e.path.lstrip("/"))
                info.uid = info.gid = 0
                info.uname = info.gname = "root"
                info.mtime = MTIME
                info.mode = e.mode
                if e.kind is Kind.DIR:
                    info.type = tarfile.DIRTYPE
                    tar.addfile(info)
                elif e.kind is Kind.SYMLINK:
                    info.type = tarfile.SYMTYPE
                    info.linkname = e.link
                    info.mode = 0o777
                    tar.addfile(info)
                else:
                    info.size = e.size
                    if e.source is not None:
                        with e.source.open("rb") as f:
                            tar.addfile(info, f)
                    else:
                        tar.addfile(info, io.BytesIO(e.data))
        return tee.digest.hexdigest()

    def listing(self) -> list[str]:
        """One line per entry, as `--dry-run` prints it."""
        lines = []
        for e in self.entries:
            if e.kind is Kind.FILE:
                lines.append(f"{e.mode:04o} {e.size:>10} {e.path}")
            elif e.kind is Kind.DIR:
                lines.append(f"{e.mode:04o} {'dir':>10} {e.path}/")
            elif e.kind is Kind.SYMLINK:
                lines.append(f"{'':4} {'symlink':>10} {e.path} -> {e.link}")
            elif e.kind is Kind.REMOVE:
                lines.append(f"{'':4} {'remove':>10} {e.path}")
        return lines


class _HashingWriter:
    """A write-only stream that hashes what passes through it."""

    def __init__(self, out: BinaryIO) -> None:
        self.out = out
        self.digest = hashlib.sha256()

    def write(self, data: bytes) -> int:
        self.digest.update(data)
        return self.out.write(data)
