"""The one ordered tree of `kubeinit init` phases, mirroring kubeadm's
(cmd/kubeadm/app/cmd/init.go: AppendPhase order). No self-registration: this tuple is the order.
"""

from __future__ import annotations

from firstboot.phase import Phase
from firstboot.phases import (
    api,
    certs,
    control_plane,
    etcd,
    kubeconfig,
    kubelet_start,
    preflight,
)

PHASES: tuple[Phase, ...] = (
    preflight.PHASE,
    certs.PHASE,
    kubeconfig.PHASE,
    etcd.PHASE,
    control_plane.PHASE,
    kubelet_start.PHASE,
    *api.PHASES,
)
