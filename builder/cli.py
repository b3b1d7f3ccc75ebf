"""`kubeinit-build`: not implemented yet (issue 4)."""

from __future__ import annotations

import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    print("kubeinit-build: error: the image builder is not implemented in this version\n"
          "hint: render a node into a directory with `kubeinit init --local-only --root DIR`",
          file=sys.stderr)
    return 2
