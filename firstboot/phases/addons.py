"""addon: CoreDNS and kube-proxy (app/cmd/phases/init/addons.go, app/phases/addons/{dns,proxy}).

Both skip themselves when disabled in the ClusterConfiguration (dns.disabled, proxy.disabled) or
through skipPhases, as kubeadm's manageSkippedAddons arranges.

CoreDNS on a resumed or repeated run follows EnsureDNSAddon: the Deployment keeps its replica
count; the Corefile is replaced only while it is kubeadm's own, otherwise retained (kubeadm
would also migrate a Corefile from an older CoreDNS version; first boot never has one).
"""

from __future__ import annotations

import os

from firstboot.apiclient import ApiError, Client, object_path
from firstboot.context import InitContext
from firstboot.phase import Phase
from kubeinit.api import NS_SYSTEM, Obj
from kubeinit.api.addons import coredns_objects, corefile, kube_proxy_objects
from kubeinit.api.upload_config import addon_disabled
from kubeinit.errors import PhaseFailed


def _deployed_replicas(client: Client) -> int | None:
    items = client.list("Deployment", NS_SYSTEM, label_selector="k8s-app=kube-dns")
    if len(items) > 1:
        raise PhaseFailed(
            f"multiple DNS addon deployments found: "
            f"{', '.join(i['metadata']['name'] for i in items)}",
            hint="keep one Deployment labelled k8s-app=kube-dns",
        )
    if items:
        replicas = items[0].get("spec", {}).get("replicas")
        return int(replicas) if replicas is not None else None
    return None


def _create_service(client: Client, svc: Obj, timeout: float) -> None:
    """createDNSService: create; on AlreadyExists or Invalid, update."""

    def attempt() -> bool:
        try:
            client.create(svc)
        except ApiError as e:
            if not (e.already_exists or e.invalid):
                raise
            client.update(svc)
        return True

    client.poll("cannot create the DNS Service kube-system/kube-dns", attempt, timeout)


def run_coredns(ctx: InitContext) -> None:
    if addon_disabled(ctx.config)[0]:
        ctx.notes.append("skipped: CoreDNS is disabled")
        return
    client = ctx.client()
    replicas = _deployed_replicas(client)
    objs = coredns_objects(ctx.config, replicas if replicas is not None else 2)
    t = ctx.api_timeout
    current = client.get(object_path("ConfigMap", "coredns", NS_SYSTEM))
    current_corefile = ((current or {}).get("data") or {}).get("Corefile", "")
    if not current_corefile or current_corefile == corefile(
        ctx.config.cluster.networking.dns_domain
    ):
        client.create_or_update(objs["ConfigMap"], t)
    else:
        client.create_or_retain(objs["ConfigMap"], t)
        ctx.notes.append("kept the existing, modified Corefile")
    for kind in ("ClusterRole", "ClusterRoleBinding", "ServiceAccount", "Deployment"):
        client.create_or_update(objs[kind], t)
    _create_service(client, objs["Service"], t)


def run_kube_proxy(ctx: InitContext) -> None:
    if addon_disabled(ctx.config)[1]:
        ctx.notes.append("skipped: kube-proxy is disabled")
        return
    client = ctx.client()
    # kubeadm copies its own *_proxy environment into the DaemonSet (GetProxyEnvVars)
    objs = kube_proxy_objects(ctx.config, ctx.identity.advertise_address, dict(os.environ))
    for kind in (
        "ConfigMap",
        "DaemonSet",
        "ServiceAccount",
        "ClusterRoleBinding",
        "Role",
        "RoleBinding",
    ):
        client.create_or_update(objs[kind], ctx.api_timeout)


PHASE = Phase(
    name="addon",
    summary="Install required addons for passing conformance tests",
    needs_api=True,
    children=(
        Phase(
            name="coredns",
            summary="Install the CoreDNS addon to a Kubernetes cluster",
            run=run_coredns,
            needs_api=True,
        ),
        Phase(
            name="kube-proxy",
            summary="Install the kube-proxy addon to a Kubernetes cluster",
            run=run_kube_proxy,
            needs_api=True,
        ),
    ),
)
