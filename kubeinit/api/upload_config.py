"""upload-config: the `kubeadm-config` and `kubelet-config` ConfigMaps and their RBAC.

Sources: app/phases/uploadconfig/uploadconfig.go (UploadConfiguration), app/phases/kubelet/
config.go (CreateConfigMap, createConfigMapRBACRules), app/componentconfigs/checksums.go
(SignConfigMap), and the v1beta4 types (app/apis/kubeadm/v1beta4/types.go) for which
ClusterConfiguration fields are `omitempty`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from kubeinit.api import (
    NODE_BOOTSTRAP_TOKEN_GROUP,
    NODES_GROUP,
    NS_SYSTEM,
    Obj,
    group,
    meta,
    role,
    role_binding,
)
from kubeinit.config import (
    KUBEADM_API,
    Arg,
    ClusterConfiguration,
    Config,
    ControlPlaneComponent,
    EnvVar,
    HostPathMount,
)
from kubeinit.goyaml import dumps as dump
from kubeinit.schema import format_duration

KUBEADM_CONFIG = "kubeadm-config"
KUBEADM_CONFIG_KEY = "ClusterConfiguration"
NODES_KUBEADM_CONFIG_ROLE = "kubeadm:nodes-kubeadm-config"
KUBELET_CONFIG = "kubelet-config"
KUBELET_CONFIG_KEY = "kubelet"
KUBELET_CONFIG_ROLE = "kubeadm:kubelet-config"
COMPONENT_CONFIG_HASH = "kubeadm.kubernetes.io/component-config.hash"


def _put(d: dict[str, Any], key: str, value: Any) -> None:
    """Go's `json:",omitempty"`: drop "", 0, false, nil, empty slices and maps."""
    if value not in ("", 0, False, None, [], {}, ()):
        d[key] = value


def _args(args: tuple[Arg, ...]) -> list[Obj]:
    return [{"name": a.name, "value": a.value} for a in args]


def _envs(envs: tuple[EnvVar, ...]) -> list[Obj]:
    out = []
    for e in envs:
        d: Obj = {"name": e.name}
        _put(d, "value", e.value)
        if e.value_from:
            d["valueFrom"] = dict(e.value_from)
        out.append(d)
    return out


def _volumes(vols: tuple[HostPathMount, ...]) -> list[Obj]:
    out = []
    for v in vols:
        d: Obj = {"name": v.name, "hostPath": v.host_path, "mountPath": v.mount_path}
        _put(d, "readOnly", v.read_only)
        _put(d, "pathType", str(v.path_type))
        out.append(d)
    return out


def _component(c: ControlPlaneComponent) -> Obj:
    d: Obj = {}
    _put(d, "extraArgs", _args(c.extra_args))
    _put(d, "extraVolumes", _volumes(c.extra_volumes))
    _put(d, "extraEnvs", _envs(c.extra_envs))
    return d


def addon_disabled(config: Config) -> tuple[bool, bool]:
    """(dns disabled, proxy disabled) after kubeadm's manageSkippedAddons (app/cmd/init.go):
    skipping the addon phases in the config marks the addons disabled, and the reverse."""
    skip = {s.strip().strip("/") for s in config.init.skip_phases}
    skip = {s[: -len("/all")] if s.endswith("/all") else s for s in skip}
    dns = config.cluster.dns.disabled or bool(skip & {"addon", "addon/coredns"})
    proxy = config.cluster.proxy.disabled or bool(skip & {"addon", "addon/kube-proxy"})
    return dns, proxy


def cluster_configuration(config: Config) -> Obj:
    """The v1beta4 ClusterConfiguration document kubeadm uploads (InitConfiguration fields and
    component configs are never uploaded)."""
    c: ClusterConfiguration = config.cluster
    dns_disabled, proxy_disabled = addon_disabled(config)
    doc: Obj = {"apiVersion": KUBEADM_API, "kind": "ClusterConfiguration"}
    etcd: Obj = {}
    if c.etcd.local is not None:
        le = c.etcd.local
        local: Obj = {}
        _put(local, "imageRepository", le.image_repository)
        _put(local, "imageTag", le.image_tag)
        local["dataDir"] = le.data_dir  # not omitempty
        _put(local, "extraArgs", _args(le.extra_args))
        _put(local, "extraEnvs", _envs(le.extra_envs))
        _put(local, "serverCertSANs", list(le.server_cert_sans))
        _put(local, "peerCertSANs", list(le.peer_cert_sans))
        etcd["local"] = local
    if c.etcd.external is not None:
        ex = c.etcd.external
        external: Obj = {"endpoints": list(ex.endpoints)}
        _put(external, "httpEndpoints", list(ex.http_endpoints))
        external.update(caFile=ex.ca_file, certFile=ex.cert_file, keyFile=ex.key_file)
        etcd["external"] = external
    doc["etcd"] = etcd
    net: Obj = {}
    _put(net, "serviceSubnet", c.networking.service_subnet)
    _put(net, "podSubnet", c.networking.pod_subnet)
    _put(net, "dnsDomain", c.networking.dns_domain)
    doc["networking"] = net
    _put(doc, "kubernetesVersion", c.kubernetes_version)
    _put(doc, "controlPlaneEndpoint", c.control_plane_endpoint)
    api = _component(c.api_server)
    _put(api, "certSANs", list(c.api_server.cert_sans))
    doc["apiServer"] = api
    doc["controllerManager"] = _component(c.controller_manager)
    doc["scheduler"] = _component(c.scheduler)
    dns: Obj = {}
    _put(dns, "imageRepository", c.dns.image_repository)
    _put(dns, "imageTag", c.dns.image_tag)
    _put(dns, "disabled", dns_disabled)
    doc["dns"] = dns
    proxy: Obj = {}
    _put(proxy, "disabled", proxy_disabled)
    doc["proxy"] = proxy
    _put(doc, "certificatesDir", c.certificates_dir)
    _put(doc, "imageRepository", c.image_repository)
    _put(doc, "featureGates", dict(c.feature_gates))
    _put(doc, "clusterName", c.cluster_name)
    _put(doc, "encryptionAlgorithm", str(c.encryption_algorithm))
    doc["certificateValidityPeriod"] = format_duration(c.certificate_validity_period)
    doc["caCertificateValidityPeriod"] = format_duration(c.ca_certificate_validity_period)
    return doc


def kubeadm_config_configmap(config: Config) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": meta(KUBEADM_CONFIG, NS_SYSTEM),
        "data": {KUBEADM_CONFIG_KEY: dump(cluster_configuration(config))},
    }


def kubeadm_config_rbac() -> list[Obj]:
    return [
        role(NODES_KUBEADM_CONFIG_ROLE, NS_SYSTEM, "configmaps", KUBEADM_CONFIG),
        role_binding(
            NODES_KUBEADM_CONFIG_ROLE,
            NS_SYSTEM,
            NODES_KUBEADM_CONFIG_ROLE,
            [group(NODE_BOOTSTRAP_TOKEN_GROUP), group(NODES_GROUP)],
        ),
    ]


def config_hash(data: Mapping[str, str]) -> str:
    """ChecksumForConfigMap: sha256 over the values in key order (no binaryData here)."""
    h = hashlib.sha256()
    for k in sorted(data):
        h.update(data[k].encode())
    return "sha256:" + h.hexdigest()


def signed(cm: Obj, user_supplied: bool) -> Obj:
    """SignConfigMap, applied by kubeadm only when the component config was not given by the
    user (the annotation marks kubeadm's own defaults)."""
    if not user_supplied:
        cm["metadata"].setdefault("annotations", {})[COMPONENT_CONFIG_HASH] = config_hash(
            cm["data"]
        )
    return cm


def kubelet_config_configmap(kubelet_yaml: str, *, user_supplied: bool) -> Obj:
    """`kubelet_yaml` is the marshalled KubeletConfiguration kubeadm keeps in memory (before the
    node-local resolvConf and instance-config patches the kubelet-start phase applies)."""
    cm = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": meta(KUBELET_CONFIG, NS_SYSTEM),
        "data": {KUBELET_CONFIG_KEY: kubelet_yaml},
    }
    return signed(cm, user_supplied)


def kubelet_config_rbac() -> list[Obj]:
    return [
        role(KUBELET_CONFIG_ROLE, NS_SYSTEM, "configmaps", KUBELET_CONFIG),
        role_binding(
            KUBELET_CONFIG_ROLE,
            NS_SYSTEM,
            KUBELET_CONFIG_ROLE,
            [group(NODES_GROUP), group(NODE_BOOTSTRAP_TOKEN_GROUP)],
        ),
    ]
