"""The one way kubeinit writes a file: temp file in the same directory, fsync, mode, rename.

A crash at any instant leaves either the old file or the complete new one (house style §8).
Every step goes through a directory file descriptor opened without following links
(`kubeinit.hostfs`): paths come from `paths.under`, which resolved them inside the root, and a
link swapped in afterwards is refused, not followed out of the root (house style §16).
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import signal
from pathlib import Path

from kubeinit import hostfs


def write_file(path: Path, data: bytes | str, mode: int, *, dir_mode: int = 0o755) -> None:
    """Atomically replace `path` with `data`, created with permission bits `mode`.

    Missing parent directories are created with exactly `dir_mode` (whatever the umask). The
    data never exists on disk with broader permissions than `mode`: the temporary file is
    created 0600 and chmod-ed before the rename. `path` must be canonical (as `paths.under`
    returns it): a symbolic link in any parent, or as the temporary name, is refused.
    Leftover temporary files of crashed runs are removed by `sweep_stale`, which only the
    holder of the init lock calls (another run's temporary file is not a leftover).
    """
    if isinstance(data, str):
        data = data.encode()
    with hostfs.dir_fd(path.parent, create_mode=dir_mode) as d:
        tmp = f".{path.name}.{secrets.token_hex(4)}.tmp"
        fd = os.open(
            tmp,
            os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
            0o600,
            dir_fd=d,
        )
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
                os.fchmod(f.fileno(), mode)
            _fault_point()
            os.rename(tmp, path.name, src_dir_fd=d, dst_dir_fd=d)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp, dir_fd=d)
            raise
        os.fsync(d)


# write_file's temporary names (and tempfile.mkstemp's, from older kubeinits)
_TEMP_NAME = re.compile(r"\..+\.[A-Za-z0-9_]{8}\.tmp")


def sweep_stale(directory: Path) -> list[str]:
    """Remove `.<name>.<random>.tmp` files left in `directory` by a crash mid-write. Only for
    the holder of the init lock (firstboot.lock): otherwise it could be another run's file."""
    removed: list[str] = []
    try:
        with hostfs.dir_fd(directory) as d:
            for name in os.listdir(d):
                if _TEMP_NAME.fullmatch(name):
                    with contextlib.suppress(FileNotFoundError, IsADirectoryError):
                        os.unlink(name, dir_fd=d)
                        removed.append(name)
            if removed:
                os.fsync(d)
    except (FileNotFoundError, NotADirectoryError):
        pass
    return removed


def fsync_dir(path: Path) -> None:
    """Make a rename in `path` durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


_writes = 0


def _fault_point() -> None:
    """Crash tests set KUBEINIT_FAULT_STOP_AT_WRITE=N: the process stops itself (SIGSTOP) with
    the N-th file fsynced under its temporary name but not yet renamed, and the test SIGKILLs
    it there. Costs one environment lookup per write otherwise."""
    global _writes  # noqa: PLW0603 - a process-wide counter is the point
    target = os.environ.get("KUBEINIT_FAULT_STOP_AT_WRITE")
    if target is None:
        return
    _writes += 1
    if _writes == int(target):
        os.kill(os.getpid(), signal.SIGSTOP)


def mkdir_all(path: Path, mode: int) -> None:
    """Go's os.MkdirAll(path, mode): every missing directory, parents included, is created with
    `mode` (exactly: chmod-ed after creation, so the umask cannot widen it); existing ones keep
    theirs. `path` must be canonical (as `paths.under` returns it)."""
    hostfs.mkdir_all(path, mode)
