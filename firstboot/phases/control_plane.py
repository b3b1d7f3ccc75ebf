"""`control-plane`: the static Pod manifests of kube-apiserver, kube-controller-manager and
kube-scheduler.

As kubeadm's cmd/phases/init/controlplane.go: one sub-phase per component, each writing
/etc/kubernetes/manifests/<component>.yaml (0600, in a 0700 directory). Each manifest is the
image profile's template filled with the node identity (firstboot.templates), or rendered live by
`kubeinit.manifests.render_control_plane_pod`, which the image builder uses to make those
templates; live rendering reads the target root (CA-trust directories, external CA) and
kubeinit's own environment (kubeadm copies its *_proxy variables into the Pods).
"""

from __future__ import annotations

import os
from collections.abc import Callable

from firstboot.context import InitContext
from firstboot.phase import Phase


def _writer(component: str) -> Callable[[InitContext], None]:
    def run(ctx: InitContext) -> None:
        from firstboot.templates import FROM_PROFILE, template
        from kubeinit import manifests, paths
        from kubeinit.fs import mkdir_all, write_file

        path = manifests.manifest_path(component)
        baked = template(ctx, ctx.profile.static_pods, path) if ctx.profile else ""
        if baked:
            ctx.notes.append(FROM_PROFILE)
            data = baked.encode()
        else:
            data = manifests.render_control_plane_pod(
                component, ctx.config, ctx.identity, ctx.root, os.environ
            )
        mkdir_all(ctx.path(paths.MANIFESTS_DIR), manifests.MANIFESTS_DIR_MODE)
        write_file(
            ctx.path(path),
            data,
            manifests.MANIFEST_MODE,
            dir_mode=manifests.MANIFESTS_DIR_MODE,
        )

    run.__name__ = run.__qualname__ = f"write_{component.replace('-', '_')}"
    return run


PHASE = Phase(
    name="control-plane",
    summary="Generate all static Pod manifest files necessary to establish the control plane",
    children=(
        Phase(
            name="apiserver",
            summary="Generates the kube-apiserver static Pod manifest",
            run=_writer("kube-apiserver"),
        ),
        Phase(
            name="controller-manager",
            summary="Generates the kube-controller-manager static Pod manifest",
            run=_writer("kube-controller-manager"),
        ),
        Phase(
            name="scheduler",
            summary="Generates the kube-scheduler static Pod manifest",
            run=_writer("kube-scheduler"),
        ),
    ),
)
