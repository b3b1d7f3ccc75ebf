"""A phase is a value (house style §1). The ordered tree lives in `firstboot.phases`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from firstboot.context import InitContext


@dataclass(frozen=True)
class Phase:
    name: str
    summary: str
    run: Callable[[InitContext], None] | None = None
    children: tuple[Phase, ...] = ()
    # Phases that need the API server are skipped by `kubeinit init --local-only` and by the
    # builder's rendering; node-local ones can run into any root.
    needs_api: bool = False
    # A wait rather than a write (wait-control-plane): it leaves nothing behind, and what it
    # waited for may not have survived a restart. A resumed run runs it again, even when the
    # state journal records it as done, before any later phase that still has to run.
    rerun_on_resume: bool = False

    def __post_init__(self) -> None:
        if (self.run is None) == (not self.children):
            raise ValueError(f"phase {self.name}: give either run or children, not both")
