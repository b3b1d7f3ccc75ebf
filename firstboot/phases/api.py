"""The phases that need a running API server (wait-control-plane onward).

Not implemented yet (issue 5): each fails with a clear message instead of pretending. Node-local
rendering uses `kubeinit init --local-only`, which never selects these.
"""

from __future__ import annotations

from firstboot.context import InitContext
from firstboot.phase import Phase
from kubeinit.errors import PhaseFailed


def _not_yet(name: str) -> Phase:
    def run(ctx: InitContext) -> None:
        raise PhaseFailed(f"phase {name} is not implemented in this kubeinit version",
                          hint="use --local-only to render the node-local phases")

    return Phase(name=name, summary=f"kubeadm's {name} phase (needs the API server)",
                 run=run, needs_api=True)


PHASES: tuple[Phase, ...] = tuple(
    _not_yet(n) for n in ("wait-control-plane", "upload-config", "upload-certs",
                          "mark-control-plane", "bootstrap-token", "kubelet-finalize", "addon",
                          "show-join-command"))
