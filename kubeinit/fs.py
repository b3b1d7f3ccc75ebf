"""The one way kubeinit writes a file: temp file in the same directory, fsync, mode, rename.

A crash at any instant leaves either the old file or the complete new one (house style §8).
"""

from __future__ import annotations

import contextlib
import os
import signal
import tempfile
from pathlib import Path


def write_file(path: Path, data: bytes | str, mode: int, *, dir_mode: int = 0o755) -> None:
    """Atomically replace `path` with `data`, created with permission bits `mode`.

    Missing parent directories are created with `dir_mode`. The data never exists on disk with
    broader permissions than `mode`: the temporary file is created 0600 and chmod-ed before the
    rename.
    """
    if isinstance(data, str):
        data = data.encode()
    path.parent.mkdir(parents=True, exist_ok=True, mode=dir_mode)
    for stale in path.parent.glob(f".{path.name}.*.tmp"):  # left by a crash mid-write
        stale.unlink(missing_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        _fault_point()
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)


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
    `mode` (minus the umask); existing ones keep theirs. (`Path.mkdir(parents=True)` would
    create the parents with the default mode instead.)"""
    missing = []
    current = path
    while not current.exists() and not current.is_symlink():
        missing.append(current)
        current = current.parent
    for d in reversed(missing):
        d.mkdir(mode=mode, exist_ok=True)
