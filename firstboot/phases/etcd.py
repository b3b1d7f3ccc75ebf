"""`etcd local`: the static Pod manifest for a single-member local etcd.

As kubeadm's cmd/phases/init/etcd.go: with local etcd, create the data directory (0700, as
etcdutil.CreateDataDirectory) and write /etc/kubernetes/manifests/etcd.yaml (0600, in a 0700
directory); with external etcd there is nothing to do. The manifest comes from
`kubeinit.manifests.render_etcd_pod`, shared with the image builder.
"""

from __future__ import annotations

from firstboot.context import InitContext
from firstboot.phase import Phase


def run_local(ctx: InitContext) -> None:
    from kubeinit import manifests, paths
    from kubeinit.fs import mkdir_all, write_file

    local = ctx.config.cluster.etcd.local
    if local is None:
        ctx.notes.append("external etcd: no local etcd manifest to write")
        return
    data = manifests.render_etcd_pod(ctx.config, ctx.identity)
    mkdir_all(ctx.path(local.data_dir), manifests.ETCD_DATA_DIR_MODE)
    mkdir_all(ctx.path(paths.MANIFESTS_DIR), manifests.MANIFESTS_DIR_MODE)
    write_file(
        ctx.path(manifests.manifest_path("etcd")),
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
