"""A target root is hostile ground (house style §16): every path under a root is resolved with
chroot semantics, and every write, read and removal then walks that path without following
links.

Two halves, used together:

- `chase(root, path)` resolves `path` component by component *inside* `root`, as the node would
  see it after `chroot(root)`: an absolute link target starts again at the root, `..` stops at
  the root, a missing component ends the resolution (the rest is appended as written). The
  result is canonical: no component of it is a symbolic link. (systemd's `chase()` with
  `CHASE_PREFIX_ROOT`, mkosi's sandboxing, the builder's `target.resolve`.)
- `open_dir(path)` and the operations built on it (`read_bytes`, `unlink`, `rmtree`,
  `symlink`, `rename`, and `kubeinit.fs.write_file`) open a canonical path from `/` one
  component at a time with `O_NOFOLLOW` and act through directory file descriptors
  (`openat(2)`, `mkdirat(2)`, `renameat(2)`, `unlinkat(2)`). A link swapped into any
  component after `chase` resolved it is refused with a clear error instead of being followed.

Remaining window, documented: a *directory* renamed away between two `openat` steps moves the
walk with it (it stays inside whatever the directory became part of); only symbolic links can
make a walk leave the tree, and those are never followed. The root itself is the operator's
choice and is trusted (its own path may contain links).
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from kubeinit.errors import InvalidInput, StateUnreadable

_MAX_LINKS = 40  # the kernel's MAXSYMLINKS
_DIR_FLAGS = os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class LinkRefused(StateUnreadable):
    """A component of a resolved path turned into a symbolic link (or never was a directory)
    between resolution and use: the write or read is refused."""


def chase(root: Path, path: PurePosixPath | str) -> Path:
    """`path` (absolute on the node) resolved inside `root` with chroot semantics.

    `..` in `path` itself is refused (callers name node paths, which never need it); `..` in a
    link target is resolved and cannot climb above the root."""
    rel = PurePosixPath(path)
    if ".." in rel.parts:
        raise InvalidInput(
            f"path {path} escapes the root: '..' is not allowed",
            hint="give an absolute node path without '..' components",
        )
    base = Path(os.path.realpath(root))
    pending = [p for p in rel.parts if p not in ("/", ".", "")]
    pending.reverse()
    done: list[str] = []
    hops = 0
    missing = False
    while pending:
        part = pending.pop()
        if part in ("", "."):
            continue
        if part == "..":
            if done:
                done.pop()  # `done` holds no links: its parent is the real parent
            continue
        if missing:
            done.append(part)
            continue
        candidate = base.joinpath(*done, part)
        try:
            st = os.lstat(candidate)
        except (FileNotFoundError, NotADirectoryError):
            missing = True
            done.append(part)
            continue
        if stat.S_ISLNK(st.st_mode):
            hops += 1
            if hops > _MAX_LINKS:
                raise StateUnreadable(
                    f"{root}{rel if rel.is_absolute() else '/' + str(rel)}: too many levels of"
                    " symbolic links inside the root",
                    hint="a link loop in the target tree: fix or remove the links",
                )
            target = PurePosixPath(os.readlink(candidate))
            if target.is_absolute():
                done = []  # re-rooted: an absolute link points into the root, not the host
            pending.extend(reversed([p for p in target.parts if p != "/"]))
            continue
        done.append(part)
    return base.joinpath(*done)


def chase_parent(root: Path, path: PurePosixPath | str) -> Path:
    """`path` with its parents resolved inside `root` and its last component as is: what
    lstat(2), readlink(2), unlink(2) and a rename over it act on."""
    rel = PurePosixPath("/") / path
    if rel == PurePosixPath("/"):
        return chase(root, rel)
    if rel.name == "..":
        chase(root, rel)  # refused with the usual error
    return chase(root, rel.parent) / rel.name


def _refuse(path: Path, component: str) -> LinkRefused:
    return LinkRefused(
        f"{path}: {component} is a symbolic link or not a directory (it changed after the"
        " path was resolved inside the root)",
        hint="something is modifying the target tree while kubeinit runs: stop it and retry",
    )


def open_dir(path: Path, *, create_mode: int | None = None, parent_mode: int = 0o755) -> int:
    """A read-only file descriptor of directory `path` (absolute, canonical: as `chase`
    returns), opened from `/` one component at a time without following links. With
    `create_mode`, a missing `path` is created and then chmod-ed to exactly that mode, and
    missing parents to `parent_mode` (so the umask can neither widen nor narrow them);
    existing directories keep theirs. The caller closes it."""
    p = Path(path)
    if not p.is_absolute():
        p = Path(os.path.abspath(p))
    fd = os.open("/", os.O_PATH | _DIR_FLAGS)
    try:
        walked = Path("/")
        names = p.parts[1:]
        for i, name in enumerate(names):
            walked = walked / name
            try:
                nfd = os.open(name, os.O_PATH | _DIR_FLAGS, dir_fd=fd)
            except FileNotFoundError:
                if create_mode is None:
                    raise
                mode = create_mode if i == len(names) - 1 else parent_mode
                nfd = _mkdir_at(fd, name, mode, walked)
            except OSError as e:
                if e.errno in (errno.ELOOP, errno.ENOTDIR):
                    if _is_link_at(fd, name):
                        raise _refuse(p, str(walked)) from None
                    raise NotADirectoryError(
                        errno.ENOTDIR, "Not a directory", str(walked)
                    ) from None
                raise
            os.close(fd)
            fd = nfd
        out = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=fd)
    finally:
        os.close(fd)
    return out


def _mkdir_at(parent: int, name: str, mode: int, walked: Path) -> int:
    created = True
    try:
        os.mkdir(name, 0o700, dir_fd=parent)  # never wider than wanted, whatever the umask
    except FileExistsError:
        created = False  # made by someone else meanwhile: keep its mode
    try:
        nfd = os.open(name, os.O_RDONLY | _DIR_FLAGS, dir_fd=parent)
    except OSError as e:
        if e.errno in (errno.ELOOP, errno.ENOTDIR) and _is_link_at(parent, name):
            raise _refuse(walked, str(walked)) from None
        raise
    if created:
        os.fchmod(nfd, mode)
    return nfd


def _is_link_at(dir_fd: int, name: str) -> bool:
    try:
        return stat.S_ISLNK(os.lstat(name, dir_fd=dir_fd).st_mode)
    except OSError:
        return False


@contextlib.contextmanager
def dir_fd(
    path: Path, *, create_mode: int | None = None, parent_mode: int = 0o755
) -> Iterator[int]:
    fd = open_dir(path, create_mode=create_mode, parent_mode=parent_mode)
    try:
        yield fd
    finally:
        os.close(fd)


def mkdir_all(path: Path, mode: int) -> None:
    """Go's os.MkdirAll: every missing directory of `path`, parents included, created with
    exactly `mode`; existing ones keep theirs."""
    os.close(open_dir(path, create_mode=mode, parent_mode=mode))


def open_file(path: Path, flags: int = os.O_RDONLY, mode: int = 0o600) -> int:
    """`os.open` of a canonical path whose parents and final component are not links."""
    with dir_fd(path.parent) as d:
        try:
            return os.open(path.name, flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode, dir_fd=d)
        except OSError as e:
            if e.errno == errno.ELOOP:
                raise _refuse(path, str(path)) from None
            raise


def read_bytes(path: Path) -> bytes:
    fd = open_file(path)
    with os.fdopen(fd, "rb") as f:
        return f.read()


def read_text(path: Path) -> str:
    return read_bytes(path).decode()


def lexists(path: Path) -> bool:
    """Whether anything (a link included) is at `path`, its parents walked without links."""
    try:
        with dir_fd(path.parent) as d:
            os.lstat(path.name, dir_fd=d)
    except (FileNotFoundError, NotADirectoryError):
        return False
    return True


def unlink(path: Path, *, missing_ok: bool = True, durable: bool = True) -> bool:
    """Remove the file or link at `path` (a link itself, never its target). True if removed."""
    try:
        with dir_fd(path.parent) as d:
            os.unlink(path.name, dir_fd=d)
            if durable:
                os.fsync(d)
    except (FileNotFoundError, NotADirectoryError):
        if not missing_ok:
            raise
        return False
    return True


def rmtree(path: Path) -> None:
    """Remove the tree at `path`, if any, without following links anywhere in it
    (shutil.rmtree's fd-based walk, started from a directory fd)."""
    try:
        with dir_fd(path.parent) as d:
            try:
                st = os.lstat(path.name, dir_fd=d)
            except FileNotFoundError:
                return
            if stat.S_ISDIR(st.st_mode):
                shutil.rmtree(path.name, dir_fd=d)
            else:
                os.unlink(path.name, dir_fd=d)
    except (FileNotFoundError, NotADirectoryError):
        return


def rename(src: Path, dst: Path) -> None:
    """renameat(2) with both parents walked without links."""
    with dir_fd(src.parent) as s, dir_fd(dst.parent) as d:
        os.rename(src.name, dst.name, src_dir_fd=s, dst_dir_fd=d)
        os.fsync(d)


def symlink(target: str, path: Path, *, dir_mode: int = 0o755) -> None:
    """Atomically make `path` a symbolic link to `target` (renamed over whatever was there);
    the link's text is not followed here."""
    with dir_fd(path.parent, create_mode=dir_mode) as d:
        with contextlib.suppress(OSError):
            if os.readlink(path.name, dir_fd=d) == target:
                return
        tmp = f".{path.name}.kubeinit-link.tmp"
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp, dir_fd=d)
        os.symlink(target, tmp, dir_fd=d)
        os.rename(tmp, path.name, src_dir_fd=d, dst_dir_fd=d)
        os.fsync(d)
