"""STUB: being implemented."""

from __future__ import annotations

from firstboot.context import InitContext
from firstboot.phase import Phase


def _todo(ctx: InitContext) -> None:
    raise NotImplementedError


PHASE = Phase(name="etcd", summary="Generate static Pod manifest file for local etcd", children=(
    Phase(name="local", summary="Generate the static Pod manifest file for a local, single-node local etcd instance", run=_todo),
))
