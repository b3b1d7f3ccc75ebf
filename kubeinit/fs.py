"""The one way kubeinit writes a file: temp file in the same directory, fsync, mode, rename.

A crash at any instant leaves either the old file or the complete new one (house style §8).
"""

from __future__ import annotations

import contextlib
import os
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
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
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


def ensure_dir(path: Path, mode: int) -> None:
    """Create `path` with `mode` if missing (like Go's os.MkdirAll: an existing dir keeps its mode)."""
    path.mkdir(parents=True, exist_ok=True, mode=mode)
