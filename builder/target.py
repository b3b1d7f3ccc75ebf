"""The system being built: a directory tree (`--root`) or a disk image opened with libguestfs
(`--image`). Both answer the same questions (what is at this path, read these bytes, how much
room is there) and install the same `Payload`; everything above this module is shared.

Paths are absolute node paths. Symlinks are resolved here, with chroot semantics, by one
function for both targets: an absolute link in an image tree (Debian's
/etc/alternatives/iptables -> /usr/sbin/iptables-legacy) points into the image, never at the
build host.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Literal, Protocol

from builder.payload import Entry, Kind, Payload
from kubeinit import hostfs
from kubeinit.errors import PhaseFailed, StateUnreadable
from kubeinit.fs import write_file

FileKind = Literal["file", "dir", "link", "other"]
# systemd's default PATH (systemd.exec(5)): where the node finds kubelet, conntrack, ...
NODE_PATH = ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin")
_MAX_LINKS = 40


@dataclass(frozen=True)
class Space:
    available: int  # bytes root can still write
    filesystem: str  # an identifier: two paths on the same filesystem share it


class Target(Protocol):
    description: str

    def kind(self, path: str) -> FileKind | None:
        """What is at `path` itself (symlinks not followed); None when nothing is."""

    def readlink(self, path: str) -> str: ...

    def read(self, path: str, offset: int = 0, size: int = -1) -> bytes:
        """Bytes of a regular file (`path` already resolved)."""

    def listdir(self, path: str) -> list[str]: ...

    def space(self, path: str) -> Space: ...

    def version_output(self, path: str) -> str | None:
        """`<path> --version`, run as the node would run it (the last resort to learn a
        binary's version), or None when it cannot be run safely."""

    def install(self, payload: Payload) -> None: ...


def resolve(t: Target, path: str) -> str | None:
    """`path` with every symlink resolved inside the target (chroot semantics), or None when
    it does not exist."""
    pending = [p for p in PurePosixPath(path).parts if p != "/"]
    pending.reverse()
    current = PurePosixPath("/")
    hops = 0
    while pending:
        part = pending.pop()
        if part in ("", "."):
            continue
        if part == "..":
            current = current.parent
            continue
        candidate = current / part
        kind = t.kind(str(candidate))
        if kind is None:
            return None
        if kind == "link":
            hops += 1
            if hops > _MAX_LINKS:
                return None
            link = PurePosixPath(t.readlink(str(candidate)))
            if link.is_absolute():
                current = PurePosixPath("/")
            pending.extend(reversed([p for p in link.parts if p != "/"]))
            continue
        if pending and kind != "dir":
            return None
        current = candidate
    return str(current)


def is_file(t: Target, path: str) -> bool:
    r = resolve(t, path)
    return r is not None and t.kind(r) == "file"


def is_dir(t: Target, path: str) -> bool:
    r = resolve(t, path)
    return r is not None and t.kind(r) == "dir"


def which(t: Target, name: str, search: tuple[str, ...] = NODE_PATH) -> str | None:
    """The resolved path of executable `name` on the node's PATH."""
    for d in search:
        r = resolve(t, f"{d}/{name}")
        if r is not None and t.kind(r) == "file":
            return r
    return None


# --- --root DIR ------------------------------------------------------------------------------


class TreeTarget:
    """A directory tree on the build host (mkosi extra trees, Packer chroots, debootstrap).

    The tree is hostile ground (house style §16): every path is resolved inside it by
    `kubeinit.hostfs` (parents with chroot semantics; the final component itself is what
    `kind`/`readlink` look at, what a write replaces and what a removal removes, never a link's
    target), and every write, rename and removal goes through directory file descriptors
    opened without following links."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.description = f"directory {root}"

    def _p(self, path: str) -> Path:
        """`path` with its parents resolved inside the root; the last component as is."""
        return hostfs.chase_parent(self.root, path)

    def kind(self, path: str) -> FileKind | None:
        try:
            st = os.lstat(self._p(path))
        except (FileNotFoundError, NotADirectoryError):
            return None
        if stat.S_ISLNK(st.st_mode):
            return "link"
        if stat.S_ISDIR(st.st_mode):
            return "dir"
        if stat.S_ISREG(st.st_mode):
            return "file"
        return "other"

    def readlink(self, path: str) -> str:
        return os.readlink(self._p(path))

    def read(self, path: str, offset: int = 0, size: int = -1) -> bytes:
        # `path` is resolved (target.resolve): a link here now was swapped in, and is refused.
        with os.fdopen(hostfs.open_file(self._p(path)), "rb") as f:
            f.seek(offset)
            return f.read(size)

    def listdir(self, path: str) -> list[str]:
        return sorted(os.listdir(self._p(path)))

    def space(self, path: str) -> Space:
        p = self._p(path)
        while not p.exists():
            p = p.parent
        st = os.statvfs(p)
        return Space(st.f_bavail * st.f_frsize, f"dev-{os.stat(p).st_dev}")

    def version_output(self, path: str) -> str | None:
        # Never run a binary of the tree on the build host (house style §16): it would run as
        # root, with the host's files and network. A user namespace mapped to root is still
        # root on the host; a chroot can be left by whoever holds CAP_SYS_CHROOT in it. So the
        # version of a tree's binary comes from its ELF build information only (preflight).
        return None

    def install(self, payload: Payload) -> None:
        rest = list(payload)
        for owned in payload.replaced_dirs():
            inside, rest = Payload(tuple(rest)).split(owned)
            self._replace_dir(owned, inside)
        for e in rest:
            self._write(e, durable=True)

    def _write(self, e: Entry, *, durable: bool, at: Path | None = None) -> None:
        if at is not None:
            p = at
        elif e.kind in (Kind.PARENT, Kind.DIR):
            p = hostfs.chase(self.root, e.path)  # a linked directory is used as the node would
        else:
            p = self._p(e.path)  # a file replaces, a removal removes, a link itself
        chown = os.geteuid() == 0
        if e.kind is Kind.PARENT:
            hostfs.mkdir_all(p, 0o755)
        elif e.kind is Kind.DIR:
            with hostfs.dir_fd(p, create_mode=e.mode) as fd:
                os.fchmod(fd, e.mode)
                if chown:
                    os.fchown(fd, 0, 0)
        elif e.kind is Kind.FILE:
            if durable:
                write_file(p, e.content(), e.mode)
            else:
                _write_private(p, e)
            if chown:
                with hostfs.dir_fd(p.parent) as d:
                    os.chown(p.name, 0, 0, dir_fd=d, follow_symlinks=False)
        elif e.kind is Kind.SYMLINK:
            hostfs.symlink(e.link, p)
        elif e.kind is Kind.REMOVE:
            hostfs.unlink(p)  # a link is removed itself, never what it points at

    def _replace_dir(self, owned: str, entries: list[Entry]) -> None:
        """Build kubeinit's own directory next to its final place, make it durable with one
        sync (not one fsync per file: thousands of Python files), then swap it in with
        renames. Readers see the old directory or the complete new one."""
        final = self._p(owned)
        staging = final.parent / f".{final.name}.kubeinit-build.tmp"
        old = final.parent / f".{final.name}.kubeinit-build.old"
        for leftover in (staging, old):
            hostfs.rmtree(leftover)
        for e in entries:
            rel = PurePosixPath(e.path).relative_to(owned)
            self._write(e, durable=False, at=staging / rel if str(rel) != "." else staging)
        os.sync()
        if hostfs.lexists(final):
            hostfs.rename(final, old)  # a link there is moved aside itself, not followed
        hostfs.rename(staging, final)
        hostfs.rmtree(old)


def _write_private(path: Path, e: Entry) -> None:
    """A file in a directory nobody else sees yet (made durable by the caller's sync)."""
    fd = hostfs.open_file(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        if e.source is not None:
            with e.source.open("rb") as src:
                shutil.copyfileobj(src, f, 1 << 20)
        else:
            f.write(e.data)
        os.fchmod(f.fileno(), e.mode)


# --- --image FILE ----------------------------------------------------------------------------


class GuestTarget:
    """A disk image opened with libguestfs, its filesystems mounted as the guest mounts them."""

    def __init__(self, g: Any, description: str, os_root: str) -> None:
        self.g = g
        self.description = description
        self.os_root = os_root

    def kind(self, path: str) -> FileKind | None:
        try:
            st = self.g.lstatns(path)
        except RuntimeError:
            return None
        mode = int(st["st_mode"])
        if stat.S_ISLNK(mode):
            return "link"
        if stat.S_ISDIR(mode):
            return "dir"
        if stat.S_ISREG(mode):
            return "file"
        return "other"

    def readlink(self, path: str) -> str:
        return str(self.g.readlink(path))

    def read(self, path: str, offset: int = 0, size: int = -1) -> bytes:
        if size < 0:
            size = int(self.g.filesize(path)) - offset
        out = bytearray()
        chunk = 1 << 20  # below libguestfs' 4 MiB message limit
        while size > 0:
            data = bytes(self.g.pread(path, min(chunk, size), offset))
            if not data:
                break
            out += data
            offset += len(data)
            size -= len(data)
        return bytes(out)

    def listdir(self, path: str) -> list[str]:
        return sorted(str(n) for n in self.g.ls(path))

    def space(self, path: str) -> Space:
        p = PurePosixPath(path)
        while self.kind(str(p)) is None and str(p) != "/":
            p = p.parent
        st = self.g.statvfs(str(p))
        return Space(int(st["bavail"]) * int(st["frsize"]), f"fsid-{st['fsid']}")

    def version_output(self, path: str) -> str | None:
        # Inside the libguestfs appliance (a VM): the image's binary never runs on the host.
        try:
            return "\n".join(str(x) for x in self.g.command_lines([path, "--version"]))
        except RuntimeError as e:
            raise StateUnreadable(
                f"{self.description}: cannot run {path} --version in the"
                f" image: {str(e).splitlines()[0]}",
                hint="is the binary built for this machine's architecture?",
            ) from None

    def install(self, payload: Payload) -> None:
        g = self.g
        for owned in payload.replaced_dirs():
            g.rm_rf(owned)
        for e in payload.of_kind(Kind.PARENT):
            if not g.is_dir(e.path):
                g.mkdir_p(e.path)
        with tempfile.TemporaryDirectory(prefix="kubeinit-build.") as tmp:
            tar = Path(tmp) / "payload.tar"
            with tar.open("wb") as f:
                payload.write_tar(f)
            try:
                g.tar_in(str(tar), "/", xattrs=False, selinux=False, acls=False)
            except RuntimeError as err:
                raise PhaseFailed(
                    f"{self.description}: writing the payload failed: {str(err).splitlines()[0]}",
                    hint="is the image's filesystem full or read-only?",
                ) from None
        for removed in payload.of_kind(Kind.REMOVE):
            g.rm_f(removed.path)
