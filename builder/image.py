"""The user's disk image file: validate it, build a complete new file next to the output, and
put it in place with one rename (house style §8 applied to a whole image).

Nothing here ever opens the user's image for writing. The build works on a copy named
`.<output>.kubeinit-build.<pid>.tmp` in the output's directory, locked with flock(2) while the
build runs; a SIGKILL leaves that file behind and the original untouched, and the next build
removes such leftovers once their lock is free.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from dataclasses import dataclass
from pathlib import Path

from kubeinit.errors import InvalidInput, KubeinitError, StateUnreadable
from kubeinit.fs import fsync_dir
from kubeinit.run import run

SUPPORTED_FORMATS = ("qcow2", "raw")
_EXT_MAGIC_OFFSET = 1080


@dataclass(frozen=True)
class ImageFile:
    path: Path
    format: str
    virtual_size: int
    actual_size: int


def check_image_file(path: Path) -> ImageFile:
    """A readable qcow2 or raw disk image without a backing file, not in use, not corrupt."""
    if not path.exists():
        raise InvalidInput(f"{path}: no such file", hint="give the path of a qcow2 disk image")
    if not path.is_file():
        raise InvalidInput(f"{path}: not a regular file", hint="give the path of a disk image")
    if not os.access(path, os.R_OK):
        raise InvalidInput(f"{path}: not readable", hint="check the file's permissions")
    # Absolute, so qemu never reads a name like "json:{...}" or "nbd://..." as a protocol.
    path = Path(os.path.abspath(path))
    try:
        res = run(["qemu-img", "info", "--output=json", path], check=False, timeout=60)
    except KubeinitError as e:
        raise InvalidInput(str(e), hint="install qemu-utils (qemu-img)") from None
    if res.returncode != 0:
        last = (res.stderr.strip().splitlines() or ["unknown error"])[-1]
        if "lock" in last:
            raise InvalidInput(
                f"{path}: the image is in use: {last}",
                hint="stop the virtual machine using it first",
            )
        raise StateUnreadable(
            f"{path}: not a readable disk image: {last}", hint="give a qcow2 (or raw) disk image"
        )
    info = json.loads(res.stdout)
    fmt = str(info.get("format", ""))
    if fmt not in SUPPORTED_FORMATS:
        raise InvalidInput(
            f"{path}: disk image format {fmt!r} is not supported",
            hint=f"convert it: qemu-img convert -O qcow2 {path} image.qcow2",
        )
    if info.get("backing-filename") or info.get("full-backing-filename"):
        backing = info.get("backing-filename") or info.get("full-backing-filename")
        raise InvalidInput(
            f"{path}: the image has a backing file ({backing})",
            hint=f"flatten it first: qemu-img convert -O qcow2 {path} flat.qcow2",
        )
    _check_no_external_reference(path, info)
    if fmt == "raw" and not _looks_like_disk(path):
        # qemu-img calls any file "raw": demand a partition table or a filesystem.
        raise StateUnreadable(
            f"{path}: not a disk image (no partition table or filesystem)",
            hint="give a qcow2 (or raw) disk image",
        )
    if fmt == "qcow2":
        chk = run(["qemu-img", "check", "-f", "qcow2", path], check=False, timeout=600)
        # exit 0: clean; 3: only leaked clusters (harmless); 1 or 2: cannot check / corrupt
        if chk.returncode not in (0, 3):
            text = (chk.stderr + chk.stdout).strip().splitlines()
            detail = next(
                (t for t in text if "ERROR" in t or "rror" in t),
                text[-1] if text else "check failed",
            )
            raise StateUnreadable(
                f"{path}: the qcow2 image is damaged: {detail.strip()}",
                hint="the file is truncated or corrupt; rebuild or re-download it",
            )
        _check_not_truncated(path)
    return ImageFile(
        path,
        fmt,
        int(info.get("virtual-size", 0)),
        int(info.get("actual-size", path.stat().st_size)),
    )


def _check_no_external_reference(path: Path, info: dict[str, object]) -> None:
    """Refuse every way a disk image can make qemu open another file or a network resource
    (the work copy would still point there, at a host file of the image author's choosing):
    a qcow2 external data file (`data-file`, `qemu-img create -o data_file=`), and any file
    name or child node qemu reports that is not this very file."""
    specific = info.get("format-specific")
    data = specific.get("data") if isinstance(specific, dict) else None
    if isinstance(data, dict) and data.get("data-file"):
        raise InvalidInput(
            f"{path}: the qcow2 image keeps its data in an external file ({data['data-file']})",
            hint=f"make it self-contained first: qemu-img convert -O qcow2 {path} whole.qcow2",
        )
    names: list[str] = []

    def collect(node: object) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                if k == "filename" and isinstance(v, str):
                    names.append(v)
                else:
                    collect(v)
        elif isinstance(node, list):
            for v in node:
                collect(v)

    collect(info)
    for name in names:
        if name != str(path):
            raise InvalidInput(
                f"{path}: the image refers to something outside itself ({name})",
                hint=f"give a plain, self-contained image: qemu-img convert -O qcow2 {path}"
                " whole.qcow2",
            )


def _check_not_truncated(path: Path) -> None:
    """`qemu-img check` does not notice a qcow2 cut short (its data clusters past the end of
    the file read as zeros): compare where the mapped data ends with the file's size."""
    res = run(["qemu-img", "map", "--output=json", "-f", "qcow2", path], check=False, timeout=600)
    if res.returncode != 0:
        last = (res.stderr.strip().splitlines() or ["map failed"])[-1]
        raise StateUnreadable(
            f"{path}: the qcow2 image is damaged: {last}", hint="rebuild or re-download it"
        )
    end = max(
        (
            int(e["offset"]) + int(e["length"])
            for e in json.loads(res.stdout)
            if e.get("data") and "offset" in e
        ),
        default=0,
    )
    size = path.stat().st_size
    if end > size:
        raise StateUnreadable(
            f"{path}: the qcow2 image is truncated: its data reaches byte"
            f" {end}, the file has {size}",
            hint="the copy or download was cut short: fetch it again",
        )


def _looks_like_disk(path: Path) -> bool:
    with path.open("rb") as f:
        head = f.read(_EXT_MAGIC_OFFSET + 2)
    mbr = len(head) >= 512 and head[510:512] == b"\x55\xaa"
    ext = len(head) >= _EXT_MAGIC_OFFSET + 2 and head[_EXT_MAGIC_OFFSET:] == b"\x53\xef"
    return mbr or ext


class WorkCopy:
    """The new image, built next to `final` and renamed over it by `commit()`."""

    def __init__(self, source: ImageFile, final: Path) -> None:
        self.source = source
        self.final = final
        self.path = final.parent / f".{final.name}.kubeinit-build.{os.getpid()}.tmp"
        self._lock_fd: int | None = None

    def create(self) -> None:
        """Claim the temporary name (this is where an unwritable directory shows), remove
        leftovers of killed builds, then copy the source into it."""
        d = self.final.parent
        if not d.is_dir():
            raise InvalidInput(f"{d}: no such directory", hint="create the output directory")
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        except OSError as e:
            raise InvalidInput(
                f"cannot write to {d}: {e.strerror}",
                hint="choose a writable output directory (--output)",
            ) from None
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        self._lock_fd = fd
        remove_stale(self.final, keep=self.path)
        res = run(
            ["cp", "--sparse=auto", "--reflink=auto", "--", self.source.path, self.path],
            check=False,
            timeout=3600,
        )
        if res.returncode != 0:
            self.discard()
            last = (res.stderr.strip().splitlines() or ["copy failed"])[-1]
            raise InvalidInput(
                f"cannot copy {self.source.path} to {d}: {last}",
                hint=f"check the free space in {d}",
            )

    def commit(self) -> None:
        """Make the new image durable, then rename it over the final name."""
        fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        mode = self.source.path.stat().st_mode & 0o7777
        os.chmod(self.path, mode)
        with contextlib.suppress(PermissionError):
            st = self.source.path.stat()
            os.chown(self.path, st.st_uid, st.st_gid)
        os.replace(self.path, self.final)
        fsync_dir(self.final.parent)
        self._unlock()

    def discard(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        self._unlock()

    def _unlock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None


def remove_stale(final: Path, *, keep: Path | None = None) -> list[Path]:
    """Remove work copies of `final` left by killed builds (their flock is free)."""
    removed = []
    for p in final.parent.glob(f".{final.name}.kubeinit-build.*.tmp"):
        if p == keep:
            continue
        try:
            fd = os.open(p, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            continue  # a running build holds it
        with contextlib.suppress(FileNotFoundError):
            p.unlink()
            removed.append(p)
        os.close(fd)
    return removed
