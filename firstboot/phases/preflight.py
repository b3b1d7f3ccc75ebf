"""STUB: being implemented."""

from __future__ import annotations

from firstboot.context import InitContext
from firstboot.phase import Phase


def _todo(ctx: InitContext) -> None:
    raise NotImplementedError


PHASE = Phase(name="preflight", summary="Run the pre-flight checks kubeadm runs for init", run=_todo)
