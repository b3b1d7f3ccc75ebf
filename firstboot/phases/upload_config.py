"""upload-config: the kubeadm ClusterConfiguration and the kubelet component config, each in a
ConfigMap readable by joining nodes (app/cmd/phases/init/uploadconfig.go).

Sub-phases as kubeadm's: `kubeadm` (uploadconfig.UploadConfiguration: CreateOrMutate of the
ConfigMap, then its Role and RoleBinding) and `kubelet` (kubelet.CreateConfigMap: CreateOrUpdate,
signed with the component-config hash unless the user supplied a KubeletConfiguration).
"""

from __future__ import annotations

from typing import Any

from firstboot.context import InitContext
from firstboot.phase import Phase
from kubeinit.api import upload_config as objects


def run_kubeadm(ctx: InitContext) -> None:
    client = ctx.client()
    cm = objects.kubeadm_config_configmap(ctx.config)
    data = cm["data"][objects.KUBEADM_CONFIG_KEY]

    def mutate(current: dict[str, Any]) -> None:
        current.setdefault("data", {})[objects.KUBEADM_CONFIG_KEY] = data

    client.create_or_mutate(cm, mutate, ctx.api_timeout)
    for obj in objects.kubeadm_config_rbac():
        client.create_or_update(obj, ctx.api_timeout)


def kubelet_yaml(ctx: InitContext) -> str:
    """The KubeletConfiguration as kubeadm holds it in memory: defaulted, without the
    instance-config.yaml patch. From v1.37 also without Mutate's node-local resolvConf
    (phases/kubelet/config.go WriteConfigToDisk mutates a deep copy); up to v1.36 kubelet-start
    mutated the shared object, so the uploaded copy carries resolvConf when systemd-resolved
    is active on this node."""
    from kubeinit import goyaml
    from kubeinit.kubelet import (
        kubelet_configuration,
        systemd_resolved_active,
    )

    resolved = ctx.config.release.minor <= 36 and systemd_resolved_active(
        ctx.root, live=ctx.manage_services
    )
    return goyaml.dumps(kubelet_configuration(ctx.config, systemd_resolved=resolved))


def run_kubelet(ctx: InitContext) -> None:
    client = ctx.client()
    cm = objects.kubelet_config_configmap(
        kubelet_yaml(ctx), user_supplied=ctx.config.kubelet is not None
    )
    client.create_or_update(cm, ctx.api_timeout)
    for obj in objects.kubelet_config_rbac():
        client.create_or_update(obj, ctx.api_timeout)


PHASE = Phase(
    name="upload-config",
    summary="Upload the kubeadm and kubelet configuration to a ConfigMap",
    needs_api=True,
    children=(
        Phase(
            name="kubeadm",
            summary="Upload the kubeadm ClusterConfiguration to a ConfigMap",
            run=run_kubeadm,
            needs_api=True,
        ),
        Phase(
            name="kubelet",
            summary="Upload the kubelet component config to a ConfigMap",
            run=run_kubelet,
            needs_api=True,
        ),
    ),
)
