"""`etcd local`: the static Pod manifest for a single-member local etcd.

As kubeadm's cmd/phases/init/etcd.go: with local etcd, create the data directory (0700, as
etcdutil.CreateDataDirectory) and write /etc/kubernetes/manifests/etcd.yaml (0600, in a 0700
directory); with external etcd there is nothing to do. The manifest is the image profile's
template filled with the node identity (firstboot.templates), or rendered live by
`kubeinit.manifests.render_etcd_pod`, which the image builder uses to make that template.
"""

from __future__ import annotations

from firstboot.context import InitContext
from firstboot.phase import Phase


def run_local(ctx: InitContext) -> None:
    from firstboot.templates import FROM_PROFILE, template
    from kubeinit import manifests, paths
    from kubeinit.fs import mkdir_all, write_file

    local = ctx.config.cluster.etcd.local
    if local is None:
        ctx.notes.append("external etcd: no local etcd manifest to write")
        return
    path = manifests.manifest_path("etcd")
    baked = template(ctx, ctx.profile.static_pods, path) if ctx.profile else ""
    if baked:
        ctx.notes.append(FROM_PROFILE)
    data = baked.encode() if baked else manifests.render_etcd_pod(ctx.config, ctx.identity)
    mkdir_all(ctx.path(local.data_dir), manifests.ETCD_DATA_DIR_MODE)
    mkdir_all(ctx.path(paths.MANIFESTS_DIR), manifests.MANIFESTS_DIR_MODE)
    write_file(
        ctx.path(path),
        data,
        manifests.MANIFEST_MODE,
        dir_mode=manifests.MANIFESTS_DIR_MODE,
    )


PHASE = Phase(
    name="etcd",
    summary="Generate static Pod manifest file for local etcd",
    children=(
        Phase(
            name="local",
            summary="Generate the static Pod manifest file for a local, single-node local etcd"
            " instance",
            run=run_local,
        ),
    ),
)
