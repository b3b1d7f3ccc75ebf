"""kubeadm's own `kubeadm.k8s.io/v1beta4` configuration: parsed once, defaulted, validated.

Only this module reads configuration files (house style §4). The dataclasses mirror
cmd/kubeadm/app/apis/kubeadm/v1beta4/types.go field for field; defaults follow v1beta4/defaults.go
and the dynamic defaulting in cmd/kubeadm/app/util/config/initconfiguration.go; validation follows
cmd/kubeadm/app/apis/kubeadm/validation/validation.go. Errors are `InvalidInput` with one line
naming the file, the field and what would be accepted.
"""

from __future__ import annotations

import dataclasses
import datetime
import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import yaml

from kubeinit import schema
from kubeinit.errors import InvalidInput
from kubeinit.redact import redact_keys, register_secrets
from kubeinit.schema import key
from kubeinit.versions import DEFAULT_IMAGE_REPOSITORY, Release, parse_version, release_for

KUBEADM_API = "kubeadm.k8s.io/v1beta4"
KUBELET_API = "kubelet.config.k8s.io/v1beta1"
KUBEPROXY_API = "kubeproxy.config.k8s.io/v1alpha1"
OLD_KUBEADM_APIS = ("kubeadm.k8s.io/v1beta1", "kubeadm.k8s.io/v1beta2", "kubeadm.k8s.io/v1beta3")

DEFAULT_CRI_SOCKET = "unix:///var/run/containerd/containerd.sock"
CONTROL_PLANE_TAINT_KEY = "node-role.kubernetes.io/control-plane"
DEFAULT_TOKEN_GROUP = "system:bootstrappers:kubeadm:default-node-token"

# constants.go
MINIMUM_ADDRESSES_IN_SERVICE_SUBNET = 10
MINIMUM_ADDRESSES_IN_POD_SUBNET = 254
MAXIMUM_BITS_FOR_SERVICE_SUBNET = 20
POD_SUBNET_NODE_MASK_MAX_DIFF = 16
CERTIFICATE_VALIDITY = datetime.timedelta(days=365)
CA_CERTIFICATE_VALIDITY = datetime.timedelta(days=3650)


class EncryptionAlgorithm(StrEnum):
    RSA_2048 = "RSA-2048"
    RSA_3072 = "RSA-3072"
    RSA_4096 = "RSA-4096"
    ECDSA_P256 = "ECDSA-P256"
    ECDSA_P384 = "ECDSA-P384"


class PullPolicy(StrEnum):
    ALWAYS = "Always"
    IF_NOT_PRESENT = "IfNotPresent"
    NEVER = "Never"


class TaintEffect(StrEnum):
    NO_SCHEDULE = "NoSchedule"
    PREFER_NO_SCHEDULE = "PreferNoSchedule"
    NO_EXECUTE = "NoExecute"


class PathType(StrEnum):
    UNSET = ""
    DIRECTORY_OR_CREATE = "DirectoryOrCreate"
    DIRECTORY = "Directory"
    FILE_OR_CREATE = "FileOrCreate"
    FILE = "File"
    SOCKET = "Socket"
    CHAR_DEVICE = "CharDevice"
    BLOCK_DEVICE = "BlockDevice"


# --- v1beta4 types -------------------------------------------------------------------------


@dataclass(frozen=True)
class Arg:
    name: str = ""
    value: str = field(default="", metadata={"always": True})


@dataclass(frozen=True)
class EnvVar:
    name: str = ""
    value: str = ""
    value_from: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class HostPathMount:
    name: str = ""
    host_path: str = ""
    mount_path: str = ""
    read_only: bool = False
    path_type: PathType = PathType.UNSET


@dataclass(frozen=True)
class ControlPlaneComponent:
    extra_args: tuple[Arg, ...] = ()
    extra_volumes: tuple[HostPathMount, ...] = ()
    extra_envs: tuple[EnvVar, ...] = ()


@dataclass(frozen=True)
class APIServer(ControlPlaneComponent):
    cert_sans: tuple[str, ...] = field(default=(), metadata=key("certSANs"))


@dataclass(frozen=True)
class LocalEtcd:
    image_repository: str = ""
    image_tag: str = ""
    data_dir: str = field(default="/var/lib/etcd", metadata={"always": True})
    extra_args: tuple[Arg, ...] = ()
    extra_envs: tuple[EnvVar, ...] = ()
    server_cert_sans: tuple[str, ...] = field(default=(), metadata=key("serverCertSANs"))
    peer_cert_sans: tuple[str, ...] = field(default=(), metadata=key("peerCertSANs"))


@dataclass(frozen=True)
class ExternalEtcd:
    endpoints: tuple[str, ...] = ()
    http_endpoints: tuple[str, ...] = field(default=(), metadata=key("httpEndpoints"))
    ca_file: str = field(default="", metadata=key("caFile"))
    cert_file: str = ""
    key_file: str = ""


@dataclass(frozen=True)
class Etcd:
    local: LocalEtcd | None = None
    external: ExternalEtcd | None = None


@dataclass(frozen=True)
class Networking:
    service_subnet: str = "10.96.0.0/12"
    pod_subnet: str = ""
    dns_domain: str = field(default="cluster.local", metadata=key("dnsDomain"))


@dataclass(frozen=True)
class DNS:
    image_repository: str = ""
    image_tag: str = ""
    disabled: bool = False


@dataclass(frozen=True)
class Proxy:
    disabled: bool = False


@dataclass(frozen=True)
class ClusterConfiguration:
    etcd: Etcd = Etcd()
    networking: Networking = Networking()
    kubernetes_version: str = ""
    control_plane_endpoint: str = ""
    api_server: APIServer = APIServer()
    controller_manager: ControlPlaneComponent = ControlPlaneComponent()
    scheduler: ControlPlaneComponent = ControlPlaneComponent()
    dns: DNS = field(default=DNS(), metadata=key("dns"))
    proxy: Proxy = Proxy()
    certificates_dir: str = "/etc/kubernetes/pki"
    image_repository: str = DEFAULT_IMAGE_REPOSITORY
    feature_gates: Mapping[str, bool] = field(default_factory=dict)
    cluster_name: str = "kubernetes"
    encryption_algorithm: EncryptionAlgorithm = EncryptionAlgorithm.RSA_2048
    certificate_validity_period: datetime.timedelta = CERTIFICATE_VALIDITY
    ca_certificate_validity_period: datetime.timedelta = field(
        default=CA_CERTIFICATE_VALIDITY, metadata=key("caCertificateValidityPeriod")
    )


@dataclass(frozen=True)
class Taint:
    key: str = ""
    value: str = ""
    effect: TaintEffect = TaintEffect.NO_SCHEDULE
    time_added: str = ""


@dataclass(frozen=True)
class NodeRegistration:
    name: str = ""
    cri_socket: str = field(default="", metadata=key("criSocket"))
    # None (absent) means kubeadm's default control-plane taint; () means no taints.
    taints: tuple[Taint, ...] | None = None
    kubelet_extra_args: tuple[Arg, ...] = ()
    ignore_preflight_errors: tuple[str, ...] = ()
    image_pull_policy: PullPolicy = PullPolicy.IF_NOT_PRESENT
    image_pull_serial: bool = True


@dataclass(frozen=True)
class APIEndpoint:
    advertise_address: str = ""
    bind_port: int = 6443


@dataclass(frozen=True)
class BootstrapToken:
    token: str = field(default="", repr=False)  # a secret: never in repr, logs or errors
    description: str = ""
    ttl: datetime.timedelta | None = None
    expires: str | None = None  # metav1.Time; "" is not absent (kubeadm refuses it)
    usages: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()


@dataclass(frozen=True)
class Patches:
    directory: str = ""


@dataclass(frozen=True)
class Timeouts:
    control_plane_component_health_check: datetime.timedelta = datetime.timedelta(minutes=4)
    kubelet_health_check: datetime.timedelta = datetime.timedelta(minutes=4)
    kubernetes_api_call: datetime.timedelta = field(
        default=datetime.timedelta(minutes=1), metadata=key("kubernetesAPICall")
    )
    etcd_api_call: datetime.timedelta = field(
        default=datetime.timedelta(minutes=2), metadata=key("etcdAPICall")
    )
    tls_bootstrap: datetime.timedelta = field(
        default=datetime.timedelta(minutes=5), metadata=key("tlsBootstrap")
    )
    discovery: datetime.timedelta = datetime.timedelta(minutes=5)
    upgrade_manifests: datetime.timedelta = datetime.timedelta(minutes=5)


@dataclass(frozen=True)
class InitConfiguration:
    bootstrap_tokens: tuple[BootstrapToken, ...] = ()
    dry_run: bool = False
    node_registration: NodeRegistration = NodeRegistration()
    local_api_endpoint: APIEndpoint = field(default=APIEndpoint(), metadata=key("localAPIEndpoint"))
    certificate_key: str = field(default="", repr=False)
    skip_phases: tuple[str, ...] = ()
    patches: Patches | None = None
    timeouts: Timeouts = Timeouts()


@dataclass(frozen=True)
class Config:
    """Everything a kubeadm config file says, defaulted and validated."""

    source: str
    init: InitConfiguration
    cluster: ClusterConfiguration
    release: Release
    kubelet: Mapping[str, Any] | None = None  # KubeletConfiguration document, as given
    kube_proxy: Mapping[str, Any] | None = None  # KubeProxyConfiguration document, as given
    # What kubeadm would warn about while loading this configuration (e.g. unknown
    # KubeletConfiguration or KubeProxyConfiguration fields); the CLIs print each as a
    # WARNING line.
    warnings: tuple[str, ...] = field(default=(), compare=False)

    @property
    def cert_dir(self) -> str:
        return self.cluster.certificates_dir

    @property
    def local_etcd(self) -> LocalEtcd | None:
        return self.cluster.etcd.local

    @property
    def taints(self) -> tuple[Taint, ...]:
        if self.init.node_registration.taints is None:
            return (Taint(key=CONTROL_PLANE_TAINT_KEY, effect=TaintEffect.NO_SCHEDULE),)
        return self.init.node_registration.taints


# --- loading --------------------------------------------------------------------------------


def load_config(path: Path | None) -> Config:
    """Read, default and validate a kubeadm config file (or the defaults when `path` is None)."""
    if path is None:
        return build_config({}, source="<defaults>")
    return parse_config(read_config_text(path), source=str(path))


# A kubeadm configuration is a few kilobytes; kubeinit refuses anything larger than this before
# parsing it (a 200 MB file took 56 s and 433 MB to refuse field by field). Nesting is bounded
# too: kubeadm's and the component configs' objects are at most ~8 levels deep.
MAX_CONFIG_BYTES = 1 << 20
MAX_YAML_DEPTH = 64


def read_config_text(path: Path, *, what: str = "") -> str:
    """The text of a configuration file, at most MAX_CONFIG_BYTES: every reader of a config
    file (kubeinit, kubeinit-build, first boot) goes through here and then `parse_config`."""
    name = what or str(path)
    try:
        with path.open("rb") as f:
            data = f.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        raise InvalidInput(
            f"{name}: no such file", hint="pass --config with a kubeadm v1beta4 config file"
        ) from None
    except OSError as e:
        raise InvalidInput(
            f"{name}: cannot read: {e.strerror or e}",
            hint="check the path and its permissions",
        ) from None
    _check_size(len(data), name)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InvalidInput(
            f"{name}: not UTF-8 text (byte {e.start})", hint="save the file as UTF-8"
        ) from None


def _check_size(size: int, source: str) -> None:
    if size > MAX_CONFIG_BYTES:
        raise InvalidInput(
            f"{source}: the configuration is larger than {MAX_CONFIG_BYTES // 1024} KiB",
            hint="a kubeadm configuration is a few KiB; check that this is the right file",
        )


class _StringTimestampLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """Safe loading with timestamps kept as the strings they are: sigs.k8s.io/yaml (yaml.v2
    into interface{}) reads `2030-01-02T03:04:05Z` as a string, and so does kubeadm."""


_StringTimestampLoader.add_constructor(
    "tag:yaml.org,2002:timestamp", yaml.constructor.SafeConstructor.construct_yaml_str
)


def load_yaml_documents(text: str, source: str) -> list[Any]:
    """The documents of a YAML stream, for every kubeinit input that is YAML (configuration
    files at build time and at first boot). Refuses aliases (a 553-byte alias bomb expands to
    gigabytes when the addon manifests are rendered), nesting deeper than MAX_YAML_DEPTH and
    texts over MAX_CONFIG_BYTES, each with one line naming the file."""
    _check_size(len(text.encode("utf-8", "surrogatepass")), source)
    # First pass over the events only (iterative, in C): no recursion for the deep, no node
    # graph for the aliased.
    depth = 0
    try:
        for event in yaml.parse(text, Loader=_StringTimestampLoader):
            line = f"line {event.start_mark.line + 1}" if event.start_mark else "?"
            if isinstance(event, yaml.AliasEvent):
                raise InvalidInput(
                    f"{source}: {line}: YAML aliases (*{event.anchor}) are not accepted",
                    hint="write the value out in full instead of using an anchor (&) and"
                    " an alias (*)",
                )
            if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
                depth += 1
                if depth > MAX_YAML_DEPTH:
                    raise InvalidInput(
                        f"{source}: {line}: nested deeper than {MAX_YAML_DEPTH} levels",
                        hint="a kubeadm configuration is a few levels deep; check the"
                        " indentation and brackets",
                    )
            elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                depth -= 1
        return [d for d in yaml.load_all(text, Loader=_StringTimestampLoader) if d is not None]
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise InvalidInput(
            f"{source}:{where}: malformed YAML: {problem}", hint="check indentation and quoting"
        ) from None
    except (ValueError, OverflowError, RecursionError) as e:
        # The constructors' own errors (e.g. a float too large, an invalid !!binary)
        raise InvalidInput(
            f"{source}: malformed YAML: {type(e).__name__}: {e}",
            hint="check the values' syntax",
        ) from None


GENERIC_HINT = (
    "see kubeadm's v1beta4 configuration reference; `kubeadm config print"
    " init-defaults` prints a valid file"
)


def parse_config(text: str, *, source: str = "<config>") -> Config:
    """Parse, default and validate; every InvalidInput carries a hint (one error line, one
    hint line)."""
    try:
        return _parse_config(text, source)
    except InvalidInput as e:
        # keys and values from the file may hold line breaks or control characters
        # and a certificate key pasted into the wrong field is still a certificate key
        raise InvalidInput(
            _printable(redact_keys(e.message)),
            hint=_printable(redact_keys(e.hint or GENERIC_HINT)),
        ) from None


def _printable(text: str) -> str:
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _parse_config(text: str, source: str) -> Config:
    docs = load_yaml_documents(text, source)
    register_secrets(_secret_values(docs))
    by_kind: dict[str, Mapping[str, Any]] = {}
    for i, doc in enumerate(docs):
        where = f"{source}: document {i + 1}"
        if not isinstance(doc, Mapping):
            raise InvalidInput(f"{where}: expected a mapping with apiVersion and kind")
        api, kind = doc.get("apiVersion"), doc.get("kind")
        expected = {
            "InitConfiguration": KUBEADM_API,
            "ClusterConfiguration": KUBEADM_API,
            "KubeletConfiguration": KUBELET_API,
            "KubeProxyConfiguration": KUBEPROXY_API,
        }
        if not isinstance(kind, str) or kind not in expected:
            raise InvalidInput(
                f"{where}: unknown kind {kind!r}",
                hint="accepted kinds: "
                + ", ".join(expected)
                + " (JoinConfiguration is for worker images, not control-plane init)",
            )
        if api != expected[kind]:
            hint = f"use apiVersion: {expected[kind]}"
            if api in OLD_KUBEADM_APIS:
                hint += " (convert older configs with `kubeadm config migrate`)"
            raise InvalidInput(f"{where}: {kind} has unsupported apiVersion {api!r}", hint=hint)
        if kind in by_kind:
            raise InvalidInput(
                f"{where}: a second {kind} document", hint="give each kind at most once"
            )
        by_kind[str(kind)] = doc
    return build_config(by_kind, source=source)


_SECRET_KEYS = frozenset(("token", "certificateKey"))


def _secret_values(node: Any, depth: int = 0) -> list[str]:
    """Every string under a `token` or `certificateKey` key, wherever it is: registered for
    masking before anything is checked, so not even a rejected one can be echoed."""
    out: list[str] = []
    if depth > MAX_YAML_DEPTH:
        return out
    if isinstance(node, Mapping):
        for k, v in node.items():
            out += _leaves(v, depth + 1) if k in _SECRET_KEYS else _secret_values(v, depth + 1)
    elif isinstance(node, list):
        for v in node:
            out += _secret_values(v, depth + 1)
    return out


def _leaves(node: Any, depth: int) -> list[str]:
    if depth > MAX_YAML_DEPTH:
        return []
    if isinstance(node, Mapping):
        return [
            x for k, v in node.items() for x in (*_leaves(k, depth + 1), *_leaves(v, depth + 1))
        ]
    if isinstance(node, list):
        return [x for v in node for x in _leaves(v, depth + 1)]
    return [] if node is None or isinstance(node, bool) else [str(node)]


def _body(doc: Mapping[str, Any] | None) -> dict[str, Any]:
    return {k: v for k, v in (doc or {}).items() if k not in ("apiVersion", "kind")}


def build_config(by_kind: Mapping[str, Mapping[str, Any]], *, source: str) -> Config:
    try:
        init = schema.decode(InitConfiguration, _body(by_kind.get("InitConfiguration")))
        cluster = schema.decode(ClusterConfiguration, _body(by_kind.get("ClusterConfiguration")))
    except schema.DecodeError as e:
        raise InvalidInput(f"{source}: {e.path}: {e.message}") from None
    init, cluster, release = _default(init, cluster, source)
    _validate(init, cluster, source, release)
    kubelet = by_kind.get("KubeletConfiguration")
    proxy = by_kind.get("KubeProxyConfiguration")
    warnings: list[str] = []
    if kubelet:
        from kubeinit.kubelet import check_document  # kubeinit.kubelet imports this module

        try:
            warnings += check_document(kubelet, release.minor)
        except InvalidInput as e:
            raise InvalidInput(f"{source}: {e.message}", hint=e.hint) from None
    if proxy:
        from kubeinit.api.addons import check_kube_proxy_document  # imports this module too

        warnings += check_kube_proxy_document(proxy)
    return Config(
        source=source,
        init=init,
        cluster=cluster,
        release=release,
        kubelet=dict(kubelet) if kubelet else None,
        kube_proxy=dict(proxy) if proxy else None,
        warnings=tuple(f"{source}: {w}" for w in warnings),
    )


def _default(
    init: InitConfiguration, cluster: ClusterConfiguration, source: str
) -> tuple[InitConfiguration, ClusterConfiguration, Release]:
    """kubeadm's static and dynamic defaulting that does not depend on the machine."""
    if cluster.etcd.local is None and cluster.etcd.external is None:
        cluster = dataclasses.replace(cluster, etcd=Etcd(local=LocalEtcd()))
    ext = cluster.etcd.external
    if ext is not None and not ext.http_endpoints and ext.endpoints:
        # SetDefaults_ExternalEtcd: httpEndpoints default to a copy of endpoints
        cluster = dataclasses.replace(
            cluster,
            etcd=dataclasses.replace(
                cluster.etcd, external=dataclasses.replace(ext, http_endpoints=ext.endpoints)
            ),
        )
    try:
        release = release_for(
            cluster.kubernetes_version or None, cluster.image_repository or DEFAULT_IMAGE_REPOSITORY
        )
    except InvalidInput as e:
        raise InvalidInput(f"{source}: {e.message}", hint=e.hint) from None
    cluster = dataclasses.replace(cluster, kubernetes_version=release.version)
    if init.local_api_endpoint.bind_port == 0:  # SetDefaults_APIEndpoint: 0 means unset
        init = dataclasses.replace(
            init,
            local_api_endpoint=dataclasses.replace(
                init.local_api_endpoint, bind_port=APIEndpoint.bind_port
            ),
        )
    nr = init.node_registration
    cri = nr.cri_socket
    if cri and "://" not in cri:
        cri = "unix://" + cri  # kubeadm prepends the scheme (with a warning)
    # kubeadm lower-cases the node name (SetNodeRegistrationDynamicDefaults)
    nr = dataclasses.replace(nr, name=nr.name.lower(), cri_socket=cri or DEFAULT_CRI_SOCKET)
    init = dataclasses.replace(init, node_registration=nr)
    # controlPlaneEndpoint without a port gets the local bindPort (SetClusterDynamicDefaults)
    cpe = cluster.control_plane_endpoint
    if cpe:
        host, port = split_host_port(cpe, field_name=f"{source}: controlPlaneEndpoint")
        if not port:
            cpe = join_host_port(host, init.local_api_endpoint.bind_port)
    cluster = dataclasses.replace(
        cluster,
        control_plane_endpoint=cpe,
        api_server=dataclasses.replace(
            cluster.api_server, cert_sans=tuple(s.lower() for s in cluster.api_server.cert_sans)
        ),
    )
    return init, cluster, release


# --- validation -----------------------------------------------------------------------------

_DNS1123_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_SUBDOMAIN = re.compile(rf"\A{_DNS1123_LABEL}(\.{_DNS1123_LABEL})*\Z")
_WILDCARD_SUBDOMAIN = re.compile(rf"\A\*\.{_DNS1123_LABEL}(\.{_DNS1123_LABEL})*\Z")
_TOKEN_RE = re.compile(r"\A[a-z0-9]{6}\.[a-z0-9]{16}\Z")
_BOOTSTRAP_GROUP = re.compile(r"\Asystem:bootstrappers:[a-z0-9:-]{0,255}[a-z0-9]\Z")
_TOKEN_USAGES = ("signing", "authentication")
_IMAGE_REPO = re.compile(
    r"\A(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*"
    r"(?::[0-9]+)?/)?[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*\Z"
)


def is_dns1123_subdomain(name: str) -> bool:
    return len(name) <= 253 and bool(_DNS1123_SUBDOMAIN.match(name))


def validate_node_name(name: str, where: str) -> None:
    if not name:
        raise InvalidInput(
            f"{where}: nodeRegistration.name is empty",
            hint="set nodeRegistration.name or give the machine a hostname",
        )
    if not is_dns1123_subdomain(name):
        raise InvalidInput(
            f"{where}: nodeRegistration.name: {name!r} is not a valid node name",
            hint="use lower-case letters, digits, '-' and '.', starting and ending with an"
            " alphanumeric character (RFC 1123 subdomain, at most 253 characters)",
        )


def validate_advertise_address(address: str, where: str) -> None:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        raise InvalidInput(
            f"{where}: localAPIEndpoint.advertiseAddress: {address!r} is not an IP address",
            hint="give the node's IPv4 or IPv6 address, e.g. 192.168.1.10",
        ) from None
    if ip.is_unspecified or ip.is_multicast:
        raise InvalidInput(
            f"{where}: localAPIEndpoint.advertiseAddress: {address} cannot be advertised",
            hint="give a unicast address of this node (not 0.0.0.0, :: or multicast)",
        )


def parse_cidrs(
    text: str, where: str, fld: str, min_addrs: int
) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    nets = []
    for part in text.split(","):
        try:
            # Go's net.ParseCIDR accepts host bits set; so does strict=False.
            nets.append(ipaddress.ip_network(part.strip(), strict=False))
        except ValueError:
            raise InvalidInput(
                f"{where}: {fld}: {text!r} is not a CIDR",
                hint="use a network like 10.96.0.0/12, or an IPv4 and an IPv6"
                " CIDR separated by a comma",
            ) from None
    if len(nets) > 2 or (len(nets) == 2 and nets[0].version == nets[1].version):
        raise InvalidInput(
            f"{where}: {fld}: {text!r}: expected one CIDR, or two of different"
            " IP families for dual-stack",
            hint="e.g. 10.244.0.0/16 or 10.244.0.0/16,fd00:10:244::/56",
        )
    for n in nets:
        if n.num_addresses < min_addrs:
            raise InvalidInput(
                f"{where}: {fld}: {n} has {n.num_addresses} addresses, the minimum is {min_addrs}",
                hint="use a larger subnet",
            )
    return nets


def _validate(
    init: InitConfiguration, cluster: ClusterConfiguration, where: str, release: Release
) -> None:
    nr = init.node_registration
    if nr.name:
        validate_node_name(nr.name, where)
    if not nr.cri_socket.startswith("unix://"):
        raise InvalidInput(
            f"{where}: nodeRegistration.criSocket: only the unix:// scheme is"
            f" supported, got {nr.cri_socket!r}",
            hint="e.g. unix:///var/run/containerd/containerd.sock",
        )
    for i, t in enumerate(init.bootstrap_tokens):
        p = f"bootstrapTokens[{i}]"
        if t.token and not _TOKEN_RE.match(t.token):
            # never echo the token itself
            raise InvalidInput(
                f"{where}: {p}.token: the bootstrap token is invalid",
                hint=r"a token matches [a-z0-9]{6}\.[a-z0-9]{16}",
            )
        for u in t.usages:
            if u not in _TOKEN_USAGES:
                raise InvalidInput(
                    f"{where}: {p}.usages: unknown usage {u!r}",
                    hint="accepted: " + ", ".join(_TOKEN_USAGES),
                )
        if t.groups and "authentication" not in t.usages and t.usages:
            raise InvalidInput(
                f"{where}: {p}.groups: token groups need the authentication usage",
                hint="add 'authentication' to usages",
            )
        for g in t.groups:
            if not _BOOTSTRAP_GROUP.match(g):
                raise InvalidInput(
                    f"{where}: {p}.groups: {g!r} is not a bootstrap group",
                    hint="groups must match system:bootstrappers:[a-z0-9:-]*",
                )
        if t.expires is not None:
            # metav1.Time: time.Parse(time.RFC3339, ...) when the document is decoded
            if parse_rfc3339(t.expires) is None:
                raise InvalidInput(
                    f"{where}: {p}.expires: {t.expires!r} is not an RFC 3339 time",
                    hint="e.g. 2030-01-02T15:04:05Z, or use ttl: 24h0m0s",
                )
            # SetDefaults_BootstrapToken gives every token a 24h ttl before validation, so
            # kubeadm refuses any expires in a configuration file: so does kubeinit.
            raise InvalidInput(
                f"{where}: {p}: ttl and expires are mutually exclusive (kubeadm defaults ttl to"
                " 24h0m0s, so it refuses expires in a configuration file)",
                hint="use ttl (e.g. ttl: 48h0m0s, or 0s for a token that never expires)",
            )
    if init.local_api_endpoint.advertise_address:
        validate_advertise_address(init.local_api_endpoint.advertise_address, where)
    if not 1 <= init.local_api_endpoint.bind_port <= 65535:
        raise InvalidInput(
            f"{where}: localAPIEndpoint.bindPort:"
            f" {init.local_api_endpoint.bind_port} is not a valid port",
            hint="use a port between 1 and 65535 (default 6443)",
        )
    if init.certificate_key:
        try:
            raw = bytes.fromhex(init.certificate_key)
        except ValueError:
            raw = b""
        if len(raw) != 32:
            raise InvalidInput(
                f"{where}: certificateKey: not a hex-encoded 32-byte AES key",
                hint="generate one with `kubeadm certs certificate-key`",
            )
    net = cluster.networking
    if not is_dns1123_subdomain(net.dns_domain):
        raise InvalidInput(
            f"{where}: networking.dnsDomain: {net.dns_domain!r} is not a valid DNS domain",
            hint="e.g. cluster.local",
        )
    service = parse_cidrs(
        net.service_subnet, where, "networking.serviceSubnet", MINIMUM_ADDRESSES_IN_SERVICE_SUBNET
    )
    for s in service:
        if s.max_prefixlen - s.prefixlen > MAXIMUM_BITS_FOR_SERVICE_SUBNET:
            raise InvalidInput(
                f"{where}: networking.serviceSubnet: {s} is too large; for {s.max_prefixlen}-bit"
                " addresses the mask must be >="
                f" {s.max_prefixlen - MAXIMUM_BITS_FOR_SERVICE_SUBNET}",
                hint="use e.g. 10.96.0.0/12",
            )
    if net.pod_subnet:
        pods = parse_cidrs(
            net.pod_subnet, where, "networking.podSubnet", MINIMUM_ADDRESSES_IN_POD_SUBNET
        )
        if arg_value(cluster.controller_manager.extra_args, "allocate-node-cidrs") != "false":
            for pod in pods:
                _check_node_mask(pod, cluster, where)
        for pod in pods:
            for s in service:
                if pod.version == s.version and pod.overlaps(s):
                    raise InvalidInput(
                        f"{where}: networking.podSubnet {pod} overlaps"
                        f" networking.serviceSubnet {s}",
                        hint="pods and services need disjoint ranges, e.g. 10.244.0.0/16 and"
                        " 10.96.0.0/12",
                    )
    for fld, comp in (
        ("apiServer", cluster.api_server),
        ("controllerManager", cluster.controller_manager),
        ("scheduler", cluster.scheduler),
    ):
        _validate_args(comp.extra_args, where, f"{fld}.extraArgs")
    _validate_args(nr.kubelet_extra_args, where, "nodeRegistration.kubeletExtraArgs")
    _validate_sans(cluster.api_server.cert_sans, where, "apiServer.certSANs")
    _validate_node_dir(cluster.certificates_dir, where, "certificatesDir", "/etc/kubernetes/pki")
    if not nr.image_pull_serial:
        # kubeadm pulls in parallel when false; kubeinit pulls nothing (the image's preloaded
        # archives are imported, one at a time), so false cannot be applied.
        raise InvalidInput(
            f"{where}: nodeRegistration.imagePullSerial: false is not supported: kubeinit"
            " imports the image's preloaded archives one at a time and never pulls",
            hint="remove imagePullSerial (true, the default, is what kubeinit does)",
        )
    # Refused here, when the configuration is read, and not first when the control-plane
    # phase renders (kubeinit.manifests checks again): nothing may be written before.
    if init.patches is not None and init.patches.directory:
        raise InvalidInput(
            f"{where}: patches.directory: kubeadm patches are not supported by kubeinit",
            hint="put the change into extraArgs, extraVolumes or extraEnvs instead",
        )
    if cluster.feature_gates.get("RootlessControlPlane"):
        raise InvalidInput(
            f"{where}: featureGates: RootlessControlPlane is not supported by kubeinit",
            hint="remove the gate; kubeadm's alpha rootless mode creates users at init time",
        )
    for gate in cluster.feature_gates:
        known = release.major_minor.feature_gates
        if gate not in known:
            raise InvalidInput(
                f"{where}: featureGates: {gate} is not a kubeadm feature gate",
                hint=f"kubeadm {release.version} knows: " + ", ".join(known),
            )
    if cluster.control_plane_endpoint:
        split_host_port(cluster.control_plane_endpoint, field_name=f"{where}: controlPlaneEndpoint")
    for fld, repo in (
        ("imageRepository", cluster.image_repository),
        ("dns.imageRepository", cluster.dns.image_repository),
        (
            "etcd.local.imageRepository",
            cluster.etcd.local.image_repository if cluster.etcd.local else "",
        ),
    ):
        if repo and not _IMAGE_REPO.match(repo):
            raise InvalidInput(
                f"{where}: {fld}: {repo!r} is not an image repository",
                hint="e.g. registry.k8s.io or registry.example.com:5000/k8s",
            )
    _validate_etcd(cluster.etcd, where)
    for fld, period in (
        ("certificateValidityPeriod", cluster.certificate_validity_period),
        ("caCertificateValidityPeriod", cluster.ca_certificate_validity_period),
    ):
        if period.total_seconds() <= 0:
            raise InvalidInput(
                f"{where}: {fld}: must be a positive duration", hint="e.g. 8760h0m0s"
            )


def _check_node_mask(
    pod: ipaddress.IPv4Network | ipaddress.IPv6Network, cluster: ClusterConfiguration, where: str
) -> None:
    flag = "node-cidr-mask-size-ipv6" if pod.version == 6 else "node-cidr-mask-size-ipv4"
    raw = arg_value(cluster.controller_manager.extra_args, flag)
    try:
        node_mask = int(raw) if raw else (64 if pod.version == 6 else 24)
    except ValueError:
        raise InvalidInput(
            f"{where}: controllerManager.extraArgs: {flag}={raw!r} is not an integer"
        ) from None
    if pod.prefixlen > node_mask:
        raise InvalidInput(
            f"{where}: networking.podSubnet: {pod} is smaller than one node's /{node_mask}",
            hint=f"use a pod subnet of /{node_mask} or larger",
        )
    if node_mask - pod.prefixlen > POD_SUBNET_NODE_MASK_MAX_DIFF:
        raise InvalidInput(
            f"{where}: networking.podSubnet: {pod}: mask and node mask"
            f" /{node_mask} differ by more than {POD_SUBNET_NODE_MASK_MAX_DIFF}",
            hint=f"set controllerManager.extraArgs {flag}",
        )


def _validate_node_dir(path: str, where: str, fld: str, example: str) -> None:
    """A directory kubeinit writes on the node: absolute (kubeadm's ValidateAbsolutePath) and,
    unlike kubeadm, without `..` components: kubeinit writes it under --root, and a path that
    climbs is refused rather than resolved."""
    if not path.startswith("/"):
        raise InvalidInput(
            f"{where}: {fld}: {path!r} is not an absolute path", hint=f"e.g. {example}"
        )
    if ".." in path.split("/"):
        raise InvalidInput(
            f"{where}: {fld}: {path!r} contains '..'",
            hint=f"give the path without '..', e.g. {example}",
        )
    if "\0" in path:
        raise InvalidInput(f"{where}: {fld}: {path!r} contains a NUL byte", hint=f"e.g. {example}")


_RFC3339 = re.compile(
    r"\A(\d{4})-(\d{2})-(\d{2})T(\d{1,2}):(\d{2}):(\d{2})(?:[.,](\d+))?"
    r"(Z|([+-])(\d{2}):(\d{2}))\Z"
)


def parse_rfc3339(text: str) -> datetime.datetime | None:
    """Go's time.Parse(time.RFC3339, text), which metav1.Time uses: None when Go refuses it.
    Go's fallback parser takes a one-digit hour and a fraction after ',' as well (checked
    against kubeadm in tests/kubeinit/test_config.py)."""
    m = _RFC3339.match(text)
    if not m:
        return None
    year, month, day, hour, minute, second = (int(g) for g in m.group(1, 2, 3, 4, 5, 6))
    if hour > 23 or minute > 59 or second > 59:
        return None
    try:
        t = datetime.datetime(year, month, day, hour, minute, second)
    except ValueError:
        return None
    offset = datetime.timedelta(0)
    if m.group(8) != "Z":
        oh, om = int(m.group(10)), int(m.group(11))
        if oh > 24 or om > 60:
            return None
        offset = datetime.timedelta(hours=oh, minutes=om) * (-1 if m.group(9) == "-" else 1)
    frac = m.group(7) or ""
    micro = int((frac + "000000")[:6]) if frac else 0
    try:
        return t.replace(microsecond=micro, tzinfo=datetime.timezone(offset))
    except ValueError:
        return None


def _validate_args(args: tuple[Arg, ...], where: str, fld: str) -> None:
    for i, a in enumerate(args):
        if not a.name:
            raise InvalidInput(
                f"{where}: {fld}[{i}]: argument has no name",
                hint="each entry needs name: and value:",
            )


def _validate_sans(sans: tuple[str, ...], where: str, fld: str) -> None:
    for san in sans:
        if is_dns1123_subdomain(san) or _WILDCARD_SUBDOMAIN.match(san):
            continue
        try:
            ipaddress.ip_address(san)
        except ValueError:
            raise InvalidInput(
                f"{where}: {fld}: {san!r} is not a valid IP address, DNS name or wildcard DNS name",
                hint="e.g. api.example.com or 10.0.0.5",
            ) from None


def _validate_etcd(etcd: Etcd, where: str) -> None:
    if etcd.local and etcd.external:
        raise InvalidInput(f"{where}: etcd: local and external are mutually exclusive")
    if etcd.local:
        _validate_node_dir(etcd.local.data_dir, where, "etcd.local.dataDir", "/var/lib/etcd")
        _validate_sans(etcd.local.server_cert_sans, where, "etcd.local.serverCertSANs")
        _validate_sans(etcd.local.peer_cert_sans, where, "etcd.local.peerCertSANs")
        _validate_args(etcd.local.extra_args, where, "etcd.local.extraArgs")
    if etcd.external:
        ext = etcd.external
        if not ext.endpoints:
            raise InvalidInput(
                f"{where}: etcd.external.endpoints: at least one endpoint is required"
            )
        for fld, path in (
            ("caFile", ext.ca_file),
            ("certFile", ext.cert_file),
            ("keyFile", ext.key_file),
        ):
            if path:  # kubeadm: ValidateAbsolutePath when set; kubeinit reads them under root
                _validate_node_dir(
                    path, where, f"etcd.external.{fld}", "/etc/kubernetes/pki/etcd/ca.crt"
                )
        if bool(ext.cert_file) != bool(ext.key_file):
            raise InvalidInput(f"{where}: etcd.external: set both certFile and keyFile, or neither")
        if ext.cert_file and not ext.ca_file:
            raise InvalidInput(f"{where}: etcd.external: certFile and keyFile need caFile")
        https = bool(ext.ca_file or ext.cert_file or ext.key_file)
        for url in ext.endpoints:
            if "://" not in url or (https and not url.startswith("https://")):
                raise InvalidInput(
                    f"{where}: etcd.external.endpoints: {url!r} must be an"
                    + (" https://" if https else "")
                    + " URL"
                )


def arg_value(args: tuple[Arg, ...], name: str) -> str | None:
    """The value of the last argument named `name` (kubeadm's GetArgValue with index -1)."""
    for a in reversed(args):
        if a.name == name:
            return a.value
    return None


def split_host_port(endpoint: str, *, field_name: str) -> tuple[str, str]:
    """kubeadm's ParseHostPort: host or host:port, IPv6 in brackets; port optional."""
    host, port = endpoint, ""
    if endpoint.startswith("["):
        close = endpoint.find("]")
        if close < 0:
            raise InvalidInput(f"{field_name}: {endpoint!r} is not a valid endpoint")
        host, rest = endpoint[1:close], endpoint[close + 1 :]
        if rest:
            if not rest.startswith(":"):
                raise InvalidInput(f"{field_name}: {endpoint!r} is not a valid endpoint")
            port = rest[1:]
    elif endpoint.count(":") == 1:
        host, port = endpoint.split(":")
    if port and (not port.isdigit() or not 0 < int(port) < 65536):
        raise InvalidInput(
            f"{field_name}: {endpoint!r} has an invalid port",
            hint="use host or host:port, e.g. api.example.com:6443",
        )
    if not host:
        raise InvalidInput(f"{field_name}: {endpoint!r} has no host")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if not is_dns1123_subdomain(host.lower()):
            raise InvalidInput(
                f"{field_name}: {endpoint!r} is not a valid endpoint",
                hint="use an IP address or DNS name, optionally with :port",
            ) from None
    return host, port


def join_host_port(host: str, port: int | str) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def parse_version_field(text: str) -> tuple[int, int]:
    return parse_version(text)
