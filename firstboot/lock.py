"""One `kubeinit init` at a time per root: an exclusive flock(2) on <root>/var/lib/kubeinit/lock.

Taken by `init`, `init phase` and `join-command --refresh`. Without it, two runs on one root
(the unit and an operator, or two operators) each see "no CA yet", each write one, and the
leaves of the first no longer verify against the CA that stays; one run's sweep of stale
temporary files deletes the other's file mid-write. A second run waits up to `timeout`
seconds (0: not at all), then exits 3 with a hint. The lock is released when the process
exits, however it exits (the kernel drops flocks with the last descriptor), so a crashed run
never leaves it held. Only the holder sweeps temporary files left by crashes.
"""

from __future__ import annotations

import contextlib
import fcntl
import math
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath

from kubeinit import hostfs, paths
from kubeinit.errors import InvalidInput, StateUnreadable
from kubeinit.fs import sweep_stale

DEFAULT_TIMEOUT = 60.0
_POLL = 0.1


@contextlib.contextmanager
def init_lock(
    root: Path,
    timeout: float = DEFAULT_TIMEOUT,
    *,
    sweep: tuple[PurePosixPath, ...] = (),
    on_wait: Callable[[str], None] | None = None,
) -> Iterator[None]:
    """Hold the init lock of `root` for the body; then sweep stale temporary files in
    kubeinit's directories (paths.WRITTEN_DIRS plus `sweep`)."""
    if not 0 <= timeout < math.inf:  # NaN too
        raise InvalidInput(
            f"--lock-timeout {timeout}: not a number of seconds",
            hint="give 0 (do not wait) or a positive number of seconds",
        )
    path = paths.under(root, paths.LOCK_FILE)
    with hostfs.dir_fd(path.parent, create_mode=0o700) as d:
        fd = os.open(
            path.name, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=d
        )
    try:
        deadline = time.monotonic() + max(timeout, 0.0)
        announced = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise StateUnreadable(
                        f"{path}: another kubeinit is running on this root"
                        + (f" (waited {timeout:g} s)" if timeout > 0 else ""),
                        hint="wait for it to finish (systemctl status kubeinit; kubeinit status),"
                        " or give it longer with --lock-timeout SECONDS",
                    ) from None
                if not announced and on_wait is not None:
                    on_wait(f"waiting up to {timeout:g} s for another kubeinit on this root")
                    announced = True
                time.sleep(_POLL)
        for d_path in (*paths.WRITTEN_DIRS, *sweep):
            sweep_stale(paths.under(root, d_path))
        yield
    finally:
        os.close(fd)
