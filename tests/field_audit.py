"""The v1beta4 field audit (issue 9, "no silent ignores"): every field of InitConfiguration and
ClusterConfiguration that kubeinit accepts is applied as kubeadm init applies it, refused with
one line naming it, or one that `kubeadm init` itself does not use (join, upgrade and reset
settings that share the type). tests/kubeinit/test_field_audit.py holds this table to the
dataclasses in kubeinit/config.py and to kubeadm's own types.go; docs/bad-input.md shows it.
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Any

APPLIED = "applied"
REFUSED = "refused"
INIT_UNUSED = "not used by kubeadm init"


def _component(prefix: str, where: str) -> dict[str, tuple[str, str]]:
    return {
        f"{prefix}.extraArgs": (APPLIED, f"kubeinit.flags ({where} command line)"),
        f"{prefix}.extraArgs[].name": (APPLIED, "kubeinit.flags"),
        f"{prefix}.extraArgs[].value": (APPLIED, "kubeinit.flags"),
        f"{prefix}.extraVolumes": (APPLIED, "kubeinit.manifests (hostPath volumes)"),
        f"{prefix}.extraVolumes[].name": (APPLIED, "kubeinit.manifests"),
        f"{prefix}.extraVolumes[].hostPath": (APPLIED, "kubeinit.manifests"),
        f"{prefix}.extraVolumes[].mountPath": (APPLIED, "kubeinit.manifests"),
        f"{prefix}.extraVolumes[].readOnly": (APPLIED, "kubeinit.manifests"),
        f"{prefix}.extraVolumes[].pathType": (APPLIED, "kubeinit.manifests"),
        f"{prefix}.extraEnvs": (APPLIED, "kubeinit.manifests (container env)"),
        f"{prefix}.extraEnvs[].name": (APPLIED, "kubeinit.manifests"),
        f"{prefix}.extraEnvs[].value": (APPLIED, "kubeinit.manifests"),
        f"{prefix}.extraEnvs[].valueFrom": (APPLIED, "kubeinit.manifests"),
    }


INIT = "InitConfiguration"
CLUSTER = "ClusterConfiguration"
AUDIT: dict[str, tuple[str, str]] = {
    f"{INIT}.bootstrapTokens": (APPLIED, "bootstrap-token phase (kubeinit.api.tokens)"),
    f"{INIT}.bootstrapTokens[].token": (APPLIED, "kubeinit.api.tokens; never echoed"),
    f"{INIT}.bootstrapTokens[].description": (APPLIED, "kubeinit.api.tokens"),
    f"{INIT}.bootstrapTokens[].ttl": (APPLIED, "kubeinit.api.tokens (default 24h, 0s = never)"),
    f"{INIT}.bootstrapTokens[].expires": (
        REFUSED,
        "malformed: not an RFC 3339 time; well-formed: 'ttl and expires are mutually"
        " exclusive', as kubeadm (it defaults ttl first)",
    ),
    f"{INIT}.bootstrapTokens[].usages": (APPLIED, "kubeinit.api.tokens"),
    f"{INIT}.bootstrapTokens[].groups": (APPLIED, "kubeinit.api.tokens"),
    f"{INIT}.dryRun": (APPLIED, "true: a dry run, exactly as --dry-run (firstboot.cli)"),
    f"{INIT}.nodeRegistration": (APPLIED, "kubeinit.identity, kubeinit.kubelet"),
    f"{INIT}.nodeRegistration.name": (APPLIED, "kubeinit.identity"),
    f"{INIT}.nodeRegistration.criSocket": (APPLIED, "kubeinit.kubelet, preflight"),
    f"{INIT}.nodeRegistration.taints": (APPLIED, "mark-control-plane phase (kubeinit.api.mark)"),
    f"{INIT}.nodeRegistration.taints[].key": (APPLIED, "kubeinit.api.mark"),
    f"{INIT}.nodeRegistration.taints[].value": (APPLIED, "kubeinit.api.mark"),
    f"{INIT}.nodeRegistration.taints[].effect": (APPLIED, "kubeinit.api.mark"),
    f"{INIT}.nodeRegistration.taints[].timeAdded": (APPLIED, "kubeinit.api.mark"),
    f"{INIT}.nodeRegistration.kubeletExtraArgs": (APPLIED, "kubeadm-flags.env (kubeinit.kubelet)"),
    f"{INIT}.nodeRegistration.kubeletExtraArgs[].name": (APPLIED, "kubeinit.kubelet"),
    f"{INIT}.nodeRegistration.kubeletExtraArgs[].value": (APPLIED, "kubeinit.kubelet"),
    f"{INIT}.nodeRegistration.ignorePreflightErrors": (APPLIED, "preflight (firstboot.cli)"),
    f"{INIT}.nodeRegistration.imagePullPolicy": (
        APPLIED,
        "preflight's ImagePull check with the image's preloaded archives (kubeinit.preflight,"
        " kubeinit.preload); nothing is ever pulled",
    ),
    f"{INIT}.nodeRegistration.imagePullSerial": (
        REFUSED,
        "false (parallel pulls) is refused: kubeinit imports preloaded archives one at a time;"
        " true is the default and what happens",
    ),
    f"{INIT}.localAPIEndpoint": (APPLIED, "kubeinit.identity, kubeinit.manifests"),
    f"{INIT}.localAPIEndpoint.advertiseAddress": (APPLIED, "kubeinit.identity"),
    f"{INIT}.localAPIEndpoint.bindPort": (APPLIED, "kubeinit.flags, kubeinit.manifests"),
    f"{INIT}.certificateKey": (APPLIED, "upload-certs phase; never echoed"),
    f"{INIT}.skipPhases": (APPLIED, "firstboot.cli (as --skip-phases)"),
    f"{INIT}.patches": (REFUSED, "patches.directory: kubeadm patches are not supported"),
    f"{INIT}.patches.directory": (REFUSED, "kubeadm patches are not supported"),
    f"{INIT}.timeouts": (APPLIED, "see each timeout"),
    f"{INIT}.timeouts.controlPlaneComponentHealthCheck": (
        APPLIED,
        "startup probes (kubeinit.manifests), wait-control-plane",
    ),
    f"{INIT}.timeouts.kubeletHealthCheck": (APPLIED, "wait-control-plane"),
    f"{INIT}.timeouts.kubernetesAPICall": (APPLIED, "every API write's retry bound"),
    f"{INIT}.timeouts.etcdAPICall": (INIT_UNUSED, "etcd member calls happen on join and reset"),
    f"{INIT}.timeouts.tlsBootstrap": (INIT_UNUSED, "kubeadm join"),
    f"{INIT}.timeouts.discovery": (INIT_UNUSED, "kubeadm join"),
    f"{INIT}.timeouts.upgradeManifests": (INIT_UNUSED, "kubeadm upgrade"),
    f"{CLUSTER}.etcd": (APPLIED, "etcd phase, apiserver flags"),
    f"{CLUSTER}.etcd.local": (APPLIED, "etcd static Pod (kubeinit.manifests)"),
    f"{CLUSTER}.etcd.local.imageRepository": (APPLIED, "kubeinit.manifests"),
    f"{CLUSTER}.etcd.local.imageTag": (APPLIED, "kubeinit.manifests"),
    f"{CLUSTER}.etcd.local.dataDir": (APPLIED, "etcd static Pod; '..' refused"),
    f"{CLUSTER}.etcd.local.extraArgs": (APPLIED, "kubeinit.flags (etcd command line)"),
    f"{CLUSTER}.etcd.local.extraArgs[].name": (APPLIED, "kubeinit.flags"),
    f"{CLUSTER}.etcd.local.extraArgs[].value": (APPLIED, "kubeinit.flags"),
    f"{CLUSTER}.etcd.local.extraEnvs": (APPLIED, "kubeinit.manifests"),
    f"{CLUSTER}.etcd.local.extraEnvs[].name": (APPLIED, "kubeinit.manifests"),
    f"{CLUSTER}.etcd.local.extraEnvs[].value": (APPLIED, "kubeinit.manifests"),
    f"{CLUSTER}.etcd.local.extraEnvs[].valueFrom": (APPLIED, "kubeinit.manifests"),
    f"{CLUSTER}.etcd.local.serverCertSANs": (APPLIED, "certs phase (kubeinit.pki)"),
    f"{CLUSTER}.etcd.local.peerCertSANs": (APPLIED, "certs phase (kubeinit.pki)"),
    f"{CLUSTER}.etcd.external": (APPLIED, "apiserver flags, preflight"),
    f"{CLUSTER}.etcd.external.endpoints": (APPLIED, "kubeinit.flags"),
    f"{CLUSTER}.etcd.external.httpEndpoints": (APPLIED, "preflight, upload-config"),
    f"{CLUSTER}.etcd.external.caFile": (APPLIED, "kubeinit.flags, volumes; '..' refused"),
    f"{CLUSTER}.etcd.external.certFile": (APPLIED, "kubeinit.flags, volumes; '..' refused"),
    f"{CLUSTER}.etcd.external.keyFile": (APPLIED, "kubeinit.flags, volumes; '..' refused"),
    f"{CLUSTER}.networking": (APPLIED, "see each field"),
    f"{CLUSTER}.networking.serviceSubnet": (APPLIED, "flags, certificates, cluster DNS"),
    f"{CLUSTER}.networking.podSubnet": (APPLIED, "controller-manager flags, kube-proxy"),
    f"{CLUSTER}.networking.dnsDomain": (APPLIED, "certificates, kubelet, CoreDNS"),
    f"{CLUSTER}.kubernetesVersion": (APPLIED, "kubeinit.versions (v1.35 to v1.37)"),
    f"{CLUSTER}.controlPlaneEndpoint": (APPLIED, "kubeconfigs, certificates"),
    f"{CLUSTER}.apiServer": (APPLIED, "see each field"),
    **_component(f"{CLUSTER}.apiServer", "kube-apiserver"),
    f"{CLUSTER}.apiServer.certSANs": (APPLIED, "certs phase (kubeinit.pki)"),
    f"{CLUSTER}.controllerManager": (APPLIED, "see each field"),
    **_component(f"{CLUSTER}.controllerManager", "kube-controller-manager"),
    f"{CLUSTER}.scheduler": (APPLIED, "see each field"),
    **_component(f"{CLUSTER}.scheduler", "kube-scheduler"),
    f"{CLUSTER}.dns": (APPLIED, "addon/coredns"),
    f"{CLUSTER}.dns.imageRepository": (APPLIED, "addon/coredns"),
    f"{CLUSTER}.dns.imageTag": (APPLIED, "addon/coredns"),
    f"{CLUSTER}.dns.disabled": (APPLIED, "addon/coredns skipped"),
    f"{CLUSTER}.proxy": (APPLIED, "addon/kube-proxy"),
    f"{CLUSTER}.proxy.disabled": (APPLIED, "addon/kube-proxy skipped"),
    f"{CLUSTER}.certificatesDir": (APPLIED, "every certificate path; '..' refused"),
    f"{CLUSTER}.imageRepository": (APPLIED, "kubeinit.versions (every image)"),
    f"{CLUSTER}.featureGates": (
        APPLIED,
        "kubeinit.versions per minor; unknown gates and RootlessControlPlane refused",
    ),
    f"{CLUSTER}.clusterName": (APPLIED, "kubeconfigs, controller-manager flags"),
    f"{CLUSTER}.encryptionAlgorithm": (APPLIED, "kubeinit.pki"),
    f"{CLUSTER}.certificateValidityPeriod": (APPLIED, "kubeinit.pki; over 2562047h refused as Go"),
    f"{CLUSTER}.caCertificateValidityPeriod": (
        APPLIED,
        "kubeinit.pki; over 2562047h refused as Go",
    ),
}


def accepted_paths() -> list[str]:
    """Every field path the decoder in kubeinit/config.py accepts."""
    from kubeinit import config, schema

    out: list[str] = []

    def walk(tp: Any, path: str) -> None:
        hints = typing.get_type_hints(tp)
        for f in dataclasses.fields(tp):
            p = f"{path}.{schema.yaml_key(f)}"
            out.append(p)
            inner, is_list = _inner(hints[f.name])
            if inner is not None:
                walk(inner, p + ("[]" if is_list else ""))

    walk(config.InitConfiguration, INIT)
    walk(config.ClusterConfiguration, CLUSTER)
    return out


def _inner(tp: Any) -> tuple[Any, bool]:
    """(the dataclass inside `tp`, whether it is a list of them), or (None, False)."""
    if dataclasses.is_dataclass(tp):
        return tp, False
    if typing.get_origin(tp) is tuple:
        item = typing.get_args(tp)[0]
        return (item, True) if dataclasses.is_dataclass(item) else (None, False)
    for a in typing.get_args(tp):  # X | None
        if a is not type(None):
            return _inner(a)
    return None, False


def counts() -> dict[str, int]:
    out = {APPLIED: 0, REFUSED: 0, INIT_UNUSED: 0}
    for status, _ in AUDIT.values():
        out[status] += 1
    return out


def render_audit() -> str:
    c = counts()
    lines = [
        "## kubeadm v1beta4 fields: applied or refused",
        "",
        f"Every field of InitConfiguration and ClusterConfiguration ({len(AUDIT)} paths):"
        f" {c[APPLIED]} applied as kubeadm init applies them, {c[REFUSED]} refused with one line"
        f" naming the field, {c[INIT_UNUSED]} that kubeadm init does not use either (accepted and"
        " validated, as kubeadm does). Unknown fields are refused (exit 2). A"
        " KubeletConfiguration is decoded into the kubelet's type: a value of the wrong type is"
        " exit 2, unknown fields give kubeadm's warning (`strict decoding error: unknown field"
        ' "..."`) and are dropped, as kubeadm drops them.',
        "",
        "| field | | how |",
        "|---|---|---|",
    ]
    for path, (status, how) in AUDIT.items():
        lines.append(f"| `{path}` | {status} | {how} |")
    return "\n".join(lines) + "\n"
