"""kubeadm's kubeconfig files: who they name, where they point, and the YAML clientcmd writes.

Sources (k8s.io/kubernetes v1.37.2, same at v1.36.3 and v1.35.4 for what is used here):
cmd/kubeadm/app/phases/kubeconfig/kubeconfig.go (getKubeConfigSpecsBase, validateKubeConfig),
cmd/kubeadm/app/cmd/phases/init/kubeconfig.go (kubelet.conf drops controlPlaneEndpoint),
app/util/kubeconfig/kubeconfig.go (CreateBasic: context "<user>@<cluster>"), app/util/endpoint.go
(server URLs); client-go tools/clientcmd (Write: JSON, then sigs.k8s.io/yaml JSONToYAML with
go.yaml.in/yaml/v2, so keys are sorted at every level; `preferences` is omitzero in client-go
v0.35-v0.37 and never written).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import yaml
from cryptography import x509

from kubeinit import goyaml, hostfs, paths
from kubeinit.config import Config, join_host_port, split_host_port
from kubeinit.errors import PhaseFailed
from kubeinit.identity import Identity
from kubeinit.pki import CLIENT_AUTH, CLUSTER_ADMINS_GROUP, CertSpec, parse_ip


@dataclass(frozen=True)
class KubeconfigSpec:
    name: str  # the phase name
    path: PurePosixPath  # node path
    client_name: str  # user name = client certificate CN
    organizations: tuple[str, ...]
    server: str

    @property
    def client_cert(self) -> CertSpec:
        """newClientCertConfigFromKubeConfigSpec: clientAuth only, no SANs."""
        return CertSpec(
            name=self.name,
            base_name="",
            common_name=self.client_name,
            organization=self.organizations,
            ca_name="ca",
            usages=(CLIENT_AUTH,),
        )


def local_endpoint(config: Config, identity: Identity) -> str:
    """GetLocalAPIEndpoint: https://<advertise address as Go prints it>:<bindPort>."""
    ip = parse_ip(identity.advertise_address)
    host = str(ip) if ip is not None else identity.advertise_address
    return f"https://{join_host_port(host, config.init.local_api_endpoint.bind_port)}"


def control_plane_endpoint(config: Config, identity: Identity) -> str:
    """GetControlPlaneEndpoint: controlPlaneEndpoint (port defaulting to bindPort) if set."""
    cpe = config.cluster.control_plane_endpoint
    if not cpe:
        return local_endpoint(config, identity)
    host, port = split_host_port(cpe, field_name="controlPlaneEndpoint")
    return f"https://{join_host_port(host, port or config.init.local_api_endpoint.bind_port)}"


def kubeconfig_specs(config: Config, identity: Identity) -> tuple[KubeconfigSpec, ...]:
    """The five files of `kubeadm init phase kubeconfig`, in phase order. kubelet.conf points at
    the local API server: the init phase clears controlPlaneEndpoint for it."""
    cpe = control_plane_endpoint(config, identity)
    local = local_endpoint(config, identity)
    return (
        KubeconfigSpec("admin", paths.ADMIN_CONF, "kubernetes-admin", (CLUSTER_ADMINS_GROUP,), cpe),
        KubeconfigSpec(
            "super-admin",
            paths.SUPER_ADMIN_CONF,
            "kubernetes-super-admin",
            ("system:masters",),
            cpe,
        ),
        KubeconfigSpec(
            "kubelet",
            paths.KUBELET_CONF,
            f"system:node:{identity.node_name}",
            ("system:nodes",),
            local,
        ),
        KubeconfigSpec(
            "controller-manager",
            paths.CONTROLLER_MANAGER_CONF,
            "system:kube-controller-manager",
            (),
            local,
        ),
        KubeconfigSpec("scheduler", paths.SCHEDULER_CONF, "system:kube-scheduler", (), local),
    )


# --- writing -------------------------------------------------------------------------------


def render(
    *,
    server: str,
    cluster_name: str,
    user: str,
    ca_pem: bytes,
    client_cert_pem: bytes,
    client_key_pem: bytes,
) -> bytes:
    """kubeconfigutil.CreateWithCerts serialised by clientcmd.Write: the v1 Config as JSON
    (byte slices base64, empty fields and `preferences` omitted), then YAML via JSONToYAML."""
    context = f"{user}@{cluster_name}"

    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode()

    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": cluster_name,
                "cluster": {"server": server, "certificate-authority-data": b64(ca_pem)},
            }
        ],
        "contexts": [{"name": context, "context": {"cluster": cluster_name, "user": user}}],
        "current-context": context,
        "users": [
            {
                "name": user,
                "user": {
                    "client-certificate-data": b64(client_cert_pem),
                    "client-key-data": b64(client_key_pem),
                },
            }
        ],
    }
    return goyaml.dumps(doc).encode()


# --- reading -------------------------------------------------------------------------------


def _named(doc: dict[str, Any], key: str, inner: str) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for item in doc.get(key) or []:
        if not isinstance(item, dict) or not isinstance(item.get(inner) or {}, dict):
            raise ValueError(f"{key}: malformed entry")
        out[str(item.get("name", ""))] = item.get(inner) or {}
    return out


def check_existing(
    path: Path, expected_cas: list[x509.Certificate], expected_server: str, root: Path
) -> str:
    """kubeconfig.validateKubeConfig for a file that exists: it must load, its current context
    and that context's cluster must exist, and the first CA certificate it trusts must be one of
    `expected_cas`. Returns a warning ('' if none) when only the server URL differs; raises
    PhaseFailed otherwise. The client credentials are not checked (neither does kubeadm)."""
    try:
        doc = yaml.safe_load(hostfs.read_bytes(path))
        if not isinstance(doc, dict):
            raise ValueError("not a mapping")
        contexts = _named(doc, "contexts", "context")
        clusters = _named(doc, "clusters", "cluster")
    except (OSError, yaml.YAMLError, ValueError):
        raise PhaseFailed(
            f"failed to load kubeconfig file {path} that already exists on disk",
            hint=f"remove {path.name} to have it generated again",
        ) from None
    current = contexts.get(str(doc.get("current-context") or ""))
    if current is None:
        raise PhaseFailed(
            f"failed to find CurrentContext in Contexts of the kubeconfig file {path}",
            hint=f"remove {path.name} to have it generated again",
        )
    cluster = clusters.get(str(current.get("cluster") or ""))
    if cluster is None:
        raise PhaseFailed(
            f"failed to find the given CurrentContext Cluster in Clusters of the"
            f" kubeconfig file {path}",
            hint=f"remove {path.name} to have it generated again",
        )
    ca_data = b""
    try:
        ca_data = base64.b64decode(
            str(cluster.get("certificate-authority-data") or ""), validate=True
        ).strip()
        if not ca_data and cluster.get("certificate-authority"):
            ca_data = hostfs.read_bytes(paths.under(root, str(cluster["certificate-authority"])))
        current_ca = x509.load_pem_x509_certificates(ca_data)[0]
    except (ValueError, OSError):
        raise PhaseFailed(
            f"the kubeconfig file {path} contains an invalid CA cert",
            hint=f"remove {path.name} to have it generated again",
        ) from None
    if not any(current_ca == ca for ca in expected_cas):
        raise PhaseFailed(
            f"a kubeconfig file {path} exists but does not contain a trusted CA in its current"
            f" context's cluster",
            hint=f"it was made for another cluster: remove {path.name}"
            " to have it generated for this CA, or restore the matching CA",
        )
    server = str(cluster.get("server") or "")
    if server != expected_server:
        return (
            f"{path.name} exists already but has an unexpected API Server URL: expected:"
            f" {expected_server}, got: {server}"
        )
    return ""
