"""STUB: being implemented."""

from __future__ import annotations

from firstboot.context import InitContext
from firstboot.phase import Phase


def _todo(ctx: InitContext) -> None:
    raise NotImplementedError


PHASE = Phase(name="control-plane", summary="Generate all static Pod manifest files necessary to establish the control plane", children=(
    Phase(name="apiserver", summary="Generates the kube-apiserver static Pod manifest", run=_todo),
    Phase(name="controller-manager", summary="Generates the kube-controller-manager static Pod manifest", run=_todo),
    Phase(name="scheduler", summary="Generates the kube-scheduler static Pod manifest", run=_todo),
))
