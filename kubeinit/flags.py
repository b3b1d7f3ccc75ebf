"""The command lines kubeadm gives the control-plane components, as pure functions.

Ported from kubeadm (k8s.io/kubernetes cmd/kubeadm/app, tags v1.35.4, v1.36.3, v1.37.2):
phases/controlplane/manifests.go (getAPIServerCommand, getControllerManagerCommand,
getSchedulerCommand), phases/etcd/local.go (getEtcdCommand), util/arguments.go (how extraArgs
merge with the defaults), apis/kubeadm/argument.go (SetArgValues, GetArgValue) and
images/images.go (the etcd image). `kubeinit.manifests` wraps these in Pods.

One host fact is read, under `root`: whether the cluster CA key is absent (external CA), which
empties the controller-manager's signing flags. `exists_on_target` answers "does this path
exist on the target" for a root that is not `/`, following symlinks inside the root.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Sequence
from pathlib import Path

from kubeinit import hostfs, paths
from kubeinit.config import Arg, Config, arg_value
from kubeinit.identity import Identity

KUBE_APISERVER = "kube-apiserver"
KUBE_CONTROLLER_MANAGER = "kube-controller-manager"
KUBE_SCHEDULER = "kube-scheduler"
ETCD = "etcd"
# constants.go
ETCD_CLIENT_PORT = 2379
ETCD_PEER_PORT = 2380
ETCD_METRICS_PORT = 2381
_AUTHZ_DEFAULT = "Node,RBAC"


# --- small Go equivalents ------------------------------------------------------------------------


def go_clean(path: str) -> str:
    """Go's path.Clean (what filepath.Join applies)."""
    if not path:
        return "."
    rooted = path.startswith("/")
    out: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if out and out[-1] != "..":
                out.pop()
            elif not rooted:
                out.append("..")
            continue
        out.append(part)
    joined = "/".join(out)
    return ("/" + joined) if rooted else (joined or ".")


def go_join(*parts: str) -> str:
    """Go's filepath.Join: empty elements dropped, the result cleaned."""
    return go_clean("/".join(p for p in parts if p))


def join_host_port(host: str, port: int | str) -> str:
    """net.JoinHostPort."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def advertise_ip(identity: Identity) -> str:
    """The advertise address as kubeadm stores it after SetAPIEndpointDynamicDefaults:
    net.ParseIP(...).String() (lower-case, compressed IPv6; IPv4-mapped IPv6 becomes IPv4)."""
    ip = ipaddress.ip_address(identity.advertise_address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ip)


def is_ipv6(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).version == 6
    except ValueError:
        return False


def arguments_to_command(base: Sequence[Arg], overrides: Sequence[Arg]) -> list[str]:
    """util/arguments.go ArgumentsToCommand (identical in effect at all three tags for v1beta4,
    which has no mergeMethod): the defaults sorted by name then value, minus every name the
    user overrides, then all user arguments in the user's order (duplicates kept)."""
    overridden = {a.name for a in overrides}
    kept = sorted((a for a in base if a.name not in overridden), key=lambda a: (a.name, a.value))
    return [f"--{a.name}={a.value}" for a in (*kept, *overrides)]


def set_arg(args: list[Arg], name: str, value: str) -> None:
    """kubeadmapi.SetArgValues(args, name, value, 1): replace the last one, or append."""
    for i in range(len(args) - 1, -1, -1):
        if args[i].name == name:
            args[i] = Arg(name=name, value=value)
            return
    args.append(Arg(name=name, value=value))


# --- host facts under the root -------------------------------------------------------------------


def _resolve_in_root(root: Path, node_path: str) -> Path | None:
    """The file `node_path` names on the target, following symlinks as if `root` were `/`
    (kubeadm runs on the node itself, or chrooted with --rootfs). None if it does not exist."""
    parts = [p for p in node_path.split("/") if p]
    current: list[str] = []
    hops = 0
    while parts:
        name = parts.pop(0)
        if name in ("", "."):
            continue
        if name == "..":
            if current:
                current.pop()
            continue
        candidate = root.joinpath(*current, name)
        if candidate.is_symlink():
            hops += 1
            if hops > 40:
                return None
            target = os.readlink(candidate)
            if target.startswith("/"):
                current = []
            parts = [p for p in target.split("/") if p] + parts
            continue
        if not candidate.exists():
            return None
        current.append(name)
    return root.joinpath(*current)


def exists_on_target(root: Path, node_path: str) -> bool:
    """os.Stat(node_path) succeeds on the target system."""
    return _resolve_in_root(root, node_path) is not None


def using_external_ca(root: Path, cert_dir: str) -> bool:
    """phases/certs UsingExternalCA as the controller-manager flags use it: ca.crt loads as a CA
    certificate and ca.key does not exist. Then kubeadm leaves the KCM signing flags empty so
    the csrsigning controller cannot start."""
    crt = _resolve_in_root(root, go_join(cert_dir, "ca.crt"))
    if crt is None or exists_on_target(root, go_join(cert_dir, "ca.key")):
        return False
    from cryptography import x509

    try:
        cert = x509.load_pem_x509_certificate(hostfs.read_bytes(crt))
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except (ValueError, OSError, x509.ExtensionNotFound):
        return False
    return bool(constraints.ca)


# --- flags ---------------------------------------------------------------------------------------


def apiserver_command(config: Config, identity: Identity) -> list[str]:
    """manifests.go getAPIServerCommand."""
    c = config.cluster
    pki = c.certificates_dir
    address = advertise_ip(identity)
    base = [
        Arg("advertise-address", address),
        Arg("enable-admission-plugins", "NodeRestriction"),
        Arg("service-cluster-ip-range", c.networking.service_subnet),
        Arg("service-account-key-file", go_join(pki, "sa.pub")),
        Arg("service-account-signing-key-file", go_join(pki, "sa.key")),
        Arg("service-account-issuer", f"https://kubernetes.default.svc.{c.networking.dns_domain}"),
        Arg("client-ca-file", go_join(pki, "ca.crt")),
        Arg("tls-cert-file", go_join(pki, "apiserver.crt")),
        Arg("tls-private-key-file", go_join(pki, "apiserver.key")),
        Arg("kubelet-client-certificate", go_join(pki, "apiserver-kubelet-client.crt")),
        Arg("kubelet-client-key", go_join(pki, "apiserver-kubelet-client.key")),
        Arg("enable-bootstrap-token-auth", "true"),
        Arg("secure-port", str(config.init.local_api_endpoint.bind_port)),
        Arg("allow-privileged", "true"),
        Arg("kubelet-preferred-address-types", "InternalIP,ExternalIP,Hostname"),
        Arg("requestheader-username-headers", "X-Remote-User"),
        Arg("requestheader-group-headers", "X-Remote-Group"),
        Arg("requestheader-extra-headers-prefix", "X-Remote-Extra-"),
        Arg("requestheader-client-ca-file", go_join(pki, "front-proxy-ca.crt")),
        Arg("requestheader-allowed-names", "front-proxy-client"),
        Arg("proxy-client-cert-file", go_join(pki, "front-proxy-client.crt")),
        Arg("proxy-client-key-file", go_join(pki, "front-proxy-client.key")),
    ]
    external = c.etcd.external
    if external is not None:
        set_arg(base, "etcd-servers", ",".join(external.endpoints))
        if external.ca_file:
            set_arg(base, "etcd-cafile", external.ca_file)
        if external.cert_file and external.key_file:
            set_arg(base, "etcd-certfile", external.cert_file)
            set_arg(base, "etcd-keyfile", external.key_file)
    else:
        loopback = "::1" if is_ipv6(address) else "127.0.0.1"
        set_arg(base, "etcd-servers", f"https://{join_host_port(loopback, ETCD_CLIENT_PORT)}")
        set_arg(base, "etcd-cafile", go_join(pki, "etcd/ca.crt"))
        set_arg(base, "etcd-certfile", go_join(pki, "apiserver-etcd-client.crt"))
        set_arg(base, "etcd-keyfile", go_join(pki, "apiserver-etcd-client.key"))
        if c.etcd.local is not None:
            # A user --advertise-client-urls for etcd replaces the default etcd-servers.
            urls = arg_value(c.etcd.local.extra_args, "advertise-client-urls")
            if urls is not None:
                set_arg(base, "etcd-servers", urls)
    extra = c.api_server.extra_args
    if arg_value(extra, "authorization-config") is None:
        # getAuthzModes only matters when the user gives authorization-mode, and then the
        # user's own argument replaces this one in the final command.
        set_arg(base, "authorization-mode", _AUTHZ_DEFAULT)
    return [KUBE_APISERVER, *arguments_to_command(base, extra)]


def controller_manager_command(config: Config, root: Path) -> list[str]:
    """manifests.go getControllerManagerCommand."""
    c = config.cluster
    pki = c.certificates_dir
    kubeconfig = str(paths.CONTROLLER_MANAGER_CONF)
    ca = go_join(pki, "ca.crt")
    base = [
        Arg("bind-address", "127.0.0.1"),
        Arg("leader-elect", "true"),
        Arg("kubeconfig", kubeconfig),
        Arg("authentication-kubeconfig", kubeconfig),
        Arg("authorization-kubeconfig", kubeconfig),
        Arg("client-ca-file", ca),
        Arg("requestheader-client-ca-file", go_join(pki, "front-proxy-ca.crt")),
        Arg("root-ca-file", ca),
        Arg("service-account-private-key-file", go_join(pki, "sa.key")),
        Arg("cluster-signing-cert-file", ca),
        Arg("cluster-signing-key-file", go_join(pki, "ca.key")),
        Arg("use-service-account-credentials", "true"),
        Arg("controllers", "*,bootstrapsigner,tokencleaner"),
    ]
    if using_external_ca(root, pki):
        set_arg(base, "cluster-signing-key-file", "")
        set_arg(base, "cluster-signing-cert-file", "")
    net = c.networking
    if net.pod_subnet:
        set_arg(base, "allocate-node-cidrs", "true")
        set_arg(base, "cluster-cidr", net.pod_subnet)
        if net.service_subnet:
            set_arg(base, "service-cluster-ip-range", net.service_subnet)
    if c.cluster_name:
        set_arg(base, "cluster-name", c.cluster_name)
    return [KUBE_CONTROLLER_MANAGER, *arguments_to_command(base, c.controller_manager.extra_args)]


def scheduler_command(config: Config) -> list[str]:
    """manifests.go getSchedulerCommand."""
    kubeconfig = str(paths.SCHEDULER_CONF)
    base = [
        Arg("bind-address", "127.0.0.1"),
        Arg("leader-elect", "true"),
        Arg("kubeconfig", kubeconfig),
        Arg("authentication-kubeconfig", kubeconfig),
        Arg("authorization-kubeconfig", kubeconfig),
    ]
    return [KUBE_SCHEDULER, *arguments_to_command(base, config.cluster.scheduler.extra_args)]


_SEMVER = re.compile(
    r"^\s*v?([0-9]+)\.([0-9]+)\.([0-9]+)"
    r"(?:-([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?\s*$"
)


def _etcd_tag_at_least_3_6(tag: str) -> bool:
    """version.ParseSemantic(tag).AtLeast(3.6.0), false when the tag does not parse (a
    pre-release such as 3.6.0-0 sorts before 3.6.0)."""
    m = _SEMVER.match(tag)
    if not m or any(len(g) > 1 and g.startswith("0") for g in m.group(1, 2, 3)):
        return False
    version = tuple(int(g) for g in m.group(1, 2, 3))
    if version != (3, 6, 0):
        return version > (3, 6, 0)
    return m.group(4) is None


def etcd_image(config: Config) -> str:
    """images.go GetEtcdImage with the etcd.local imageRepository/imageTag overrides."""
    local = config.cluster.etcd.local
    repo = (local.image_repository if local else "") or config.release.image_repository
    return f"{repo}/etcd:{etcd_image_tag(config)}"


def etcd_image_tag(config: Config) -> str:
    local = config.cluster.etcd.local
    return (local.image_tag if local else "") or config.release.major_minor.etcd_tag


def etcd_command(config: Config, identity: Identity) -> list[str]:
    """local.go getEtcdCommand for `init` (a one-member initial cluster)."""
    c = config.cluster
    local = c.etcd.local
    assert local is not None
    pki = c.certificates_dir
    address = advertise_ip(identity)
    loopback = "::1" if is_ipv6(address) else "127.0.0.1"
    client_url = f"https://{join_host_port(address, ETCD_CLIENT_PORT)}"
    peer_url = f"https://{join_host_port(address, ETCD_PEER_PORT)}"
    base = [
        Arg("name", identity.node_name),
        Arg(
            "listen-client-urls",
            f"https://{join_host_port(loopback, ETCD_CLIENT_PORT)},{client_url}",
        ),
        Arg("advertise-client-urls", client_url),
        Arg("listen-peer-urls", peer_url),
        Arg("initial-advertise-peer-urls", peer_url),
        Arg("data-dir", local.data_dir),
        Arg("cert-file", go_join(pki, "etcd/server.crt")),
        Arg("key-file", go_join(pki, "etcd/server.key")),
        Arg("trusted-ca-file", go_join(pki, "etcd/ca.crt")),
        Arg("client-cert-auth", "true"),
        Arg("peer-cert-file", go_join(pki, "etcd/peer.crt")),
        Arg("peer-key-file", go_join(pki, "etcd/peer.key")),
        Arg("peer-trusted-ca-file", go_join(pki, "etcd/ca.crt")),
        Arg("peer-client-cert-auth", "true"),
        Arg("snapshot-count", "10000"),
        Arg("listen-metrics-urls", f"http://{join_host_port(loopback, ETCD_METRICS_PORT)}"),
    ]
    minor = config.release.major_minor
    if minor.etcd_flags_by_image_tag and not _etcd_tag_at_least_3_6(etcd_image_tag(config)):
        base += [
            Arg("experimental-initial-corrupt-check", "true"),
            Arg("experimental-watch-progress-notify-interval", "5s"),
        ]
    else:
        base += [
            Arg("feature-gates", "InitialCorruptCheck=true"),
            Arg("watch-progress-notify-interval", "5s"),
        ]
    set_arg(base, "initial-cluster", f"{identity.node_name}={peer_url}")
    return [ETCD, *arguments_to_command(base, local.extra_args)]
