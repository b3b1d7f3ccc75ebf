"""STUB: being implemented."""

from __future__ import annotations

from firstboot.context import InitContext
from firstboot.phase import Phase


def _todo(ctx: InitContext) -> None:
    raise NotImplementedError


PHASE = Phase(name="kubeconfig", summary="Generate all kubeconfig files", children=(
    Phase(name="admin", summary="Generate a kubeconfig file for the admin to use and for kubeadm itself", run=_todo),
    Phase(name="super-admin", summary="Generate a kubeconfig file for the super-admin", run=_todo),
    Phase(name="kubelet", summary="Generate a kubeconfig file for the kubelet to use *only* for cluster bootstrapping purposes", run=_todo),
    Phase(name="controller-manager", summary="Generate a kubeconfig file for the controller manager to use", run=_todo),
    Phase(name="scheduler", summary="Generate a kubeconfig file for the scheduler to use", run=_todo),
))
