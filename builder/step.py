"""Progress: one line per build step with its duration (house style §5, mkosi `complete_step`).

    with step("install payload"):
        ...

prints `kubeinit-build: install payload ... 1.84 s` when the block finishes, or `... failed
after 1.84 s` when it raises (the error itself is printed once, by the command line).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

PREFIX = "kubeinit-build:"


class Progress:
    """Where step lines go; the command line points it at stderr, tests at a buffer."""

    stream: TextIO = sys.stderr

    @classmethod
    def line(cls, text: str) -> None:
        print(f"{PREFIX} {text}", file=cls.stream, flush=True)


@contextmanager
def step(title: str) -> Iterator[None]:
    start = time.monotonic()
    try:
        yield
    except BaseException:
        Progress.line(f"{title} ... failed after {time.monotonic() - start:.2f} s")
        raise
    Progress.line(f"{title} ... {time.monotonic() - start:.2f} s")
