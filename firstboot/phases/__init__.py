"""The one ordered tree of `kubeinit init` phases, mirroring kubeadm's
(cmd/kubeadm/app/cmd/init.go: AppendPhase order). No self-registration: this tuple is the order.
"""

from __future__ import annotations

from firstboot.phase import Phase
from firstboot.phases import (
    addons,
    bootstrap_token,
    certs,
    control_plane,
    etcd,
    kubeconfig,
    kubelet_finalize,
    kubelet_start,
    mark_control_plane,
    preflight,
    show_join_command,
    upload_certs,
    upload_config,
    wait_control_plane,
)

PHASES: tuple[Phase, ...] = (
    preflight.PHASE,
    certs.PHASE,
    kubeconfig.PHASE,
    etcd.PHASE,
    control_plane.PHASE,
    kubelet_start.PHASE,
    wait_control_plane.PHASE,
    upload_config.PHASE,
    upload_certs.PHASE,
    mark_control_plane.PHASE,
    bootstrap_token.PHASE,
    kubelet_finalize.PHASE,
    addons.PHASE,
    show_join_command.PHASE,
)
