"""kubeinit/kubelet.py: config.yaml, kubeadm-flags.env and instance-config.yaml against kubeadm
(cmd/kubeadm/app at v1.37.2, v1.36.3, v1.35.4: componentconfigs/kubelet.go and kubelet_unix.go,
phases/kubelet/{config,flags}.go, cmd/phases/init/kubelet.go) and against the Go libraries
kubeadm serialises with (time.Duration.String, resource.Quantity, strconv.Quote). Expected
values are written out from those sources or copied from the real kubeadm's output, never
produced by kubeinit."""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

from kubeinit import kubelet
from kubeinit.config import Config, load_config, parse_config
from kubeinit.errors import InvalidInput
from kubeinit.identity import Identity, resolve_identity
from tests.conftest import config_path

# What `kubeadm init phase kubelet-start --config tests/data/configs/default.yaml` wrote with
# kubeadm v1.37.2 (systemd-resolved not active): zero-valued Durations and structs included.
KUBEADM_DEFAULT_CONFIG_YAML = """\
apiVersion: kubelet.config.k8s.io/v1beta1
authentication:
  anonymous:
    enabled: false
  webhook:
    cacheTTL: 0s
    enabled: true
  x509:
    clientCAFile: /etc/kubernetes/pki/ca.crt
authorization:
  mode: Webhook
  webhook:
    cacheAuthorizedTTL: 0s
    cacheUnauthorizedTTL: 0s
cgroupDriver: systemd
clusterDNS:
- 10.96.0.10
clusterDomain: cluster.local
containerRuntimeEndpoint: unix:///var/run/containerd/containerd.sock
cpuManagerReconcilePeriod: 0s
crashLoopBackOff: {}
evictionPressureTransitionPeriod: 0s
fileCheckFrequency: 0s
healthzBindAddress: 127.0.0.1
healthzPort: 10248
httpCheckFrequency: 0s
imageMaximumGCAge: 0s
imageMinimumGCAge: 0s
kind: KubeletConfiguration
logging:
  flushFrequency: 0
  options:
    json:
      infoBufferSize: "0"
    text:
      infoBufferSize: "0"
  verbosity: 0
memorySwap: {}
nodeStatusReportFrequency: 0s
nodeStatusUpdateFrequency: 0s
rotateCertificates: true
runtimeRequestTimeout: 0s
shutdownGracePeriod: 0s
shutdownGracePeriodCriticalPods: 0s
staticPodPath: /etc/kubernetes/manifests
streamingConnectionIdleTimeout: 0s
syncFrequency: 0s
volumeStatsAggPeriod: 0s
"""

HEAD = """\
apiVersion: kubeadm.k8s.io/v1beta4
kind: InitConfiguration
localAPIEndpoint:
  advertiseAddress: 192.0.2.10
nodeRegistration:
  name: cp1
{node}---
apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
kubernetesVersion: {version}
{cluster}"""


def _config(
    *, node: str = "", cluster: str = "", kubelet_doc: str = "", version: str = "v1.37.2"
) -> Config:
    text = HEAD.format(node=node, cluster=cluster, version=version)
    if kubelet_doc:
        text += "---\napiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n"
        text += kubelet_doc
    return parse_config(text)


def _load(data: bytes) -> dict[str, Any]:
    doc = yaml.safe_load(data)
    assert isinstance(doc, dict)
    return doc


def _identity(config: Config) -> Identity:
    return resolve_identity(config)


# --- config.yaml ---------------------------------------------------------------------------------


def test_default_config_yaml_is_kubeadms_text() -> None:
    config = load_config(config_path("default"))
    data = kubelet.render_kubelet_config(config, systemd_resolved=False)
    assert data.decode() == KUBEADM_DEFAULT_CONFIG_YAML


def test_resolv_conf_only_when_systemd_resolved_is_active() -> None:
    """componentconfigs/kubelet_unix.go mutateResolverConfig; a user value is kept."""
    config = load_config(config_path("default"))
    doc = _load(kubelet.render_kubelet_config(config, systemd_resolved=True))
    assert doc["resolvConf"] == "/run/systemd/resolve/resolv.conf"
    assert "resolvConf" not in _load(kubelet.render_kubelet_config(config, systemd_resolved=False))
    config = _config(kubelet_doc="resolvConf: /etc/resolv.conf\n")
    doc = _load(kubelet.render_kubelet_config(config, systemd_resolved=True))
    assert doc["resolvConf"] == "/etc/resolv.conf"
    config = _config(kubelet_doc='resolvConf: ""\n')  # a pointer to "": kept as given
    assert _load(kubelet.render_kubelet_config(config, systemd_resolved=True))["resolvConf"] == ""


@pytest.mark.parametrize(
    ("subnet", "dns"),
    [
        ("10.96.0.0/12", "10.96.0.10"),
        ("10.100.0.0/16", "10.100.0.10"),
        ("10.100.0.5/16", "10.100.0.10"),  # host bits dropped (net.ParseCIDR)
        ("fd00:10:96::/112,10.96.0.0/16", "fd00:10:96::a"),  # the first subnet's family
    ],
    ids=["default", "custom", "host-bits", "dual-stack-ipv6-first"],
)
def test_cluster_dns_is_the_tenth_service_address(subnet: str, dns: str) -> None:
    config = _config(cluster=f"networking:\n  serviceSubnet: {subnet}\n")
    assert _load(kubelet.render_kubelet_config(config, systemd_resolved=False))["clusterDNS"] == [
        dns
    ]


def test_cluster_domain_and_ca_follow_the_cluster_configuration() -> None:
    config = load_config(config_path("custom-network"))
    doc = _load(kubelet.render_kubelet_config(config, systemd_resolved=False))
    assert doc["clusterDomain"] == "k8s.example.internal"
    assert doc["clusterDNS"] == ["10.100.0.10"]
    config = _config(cluster="certificatesDir: /pki//x/\n")
    doc = _load(kubelet.render_kubelet_config(config, systemd_resolved=False))
    assert doc["authentication"]["x509"]["clientCAFile"] == "/pki/x/ca.crt"  # filepath.Join


def test_user_kubelet_configuration_is_decoded_defaulted_and_reencoded() -> None:
    """kubeadm decodes the document into the Go type (unknown fields dropped, durations and
    quantities re-printed, zero omitempty scalars gone), then Default() fills only unset fields
    and forces rotateCertificates. Output compared with what kubeadm v1.37.2 wrote for it."""
    config = _config(
        node="  criSocket: unix:///run/crio/crio.sock\n",
        kubelet_doc="""\
maxPods: 50
syncFrequency: 90s
evictionHard:
  memory.available: 200Mi
cgroupDriver: cgroupfs
unknownField: 1
clusterDNS: [1.2.3.4]
authentication:
  webhook:
    cacheTTL: 1h
featureGates:
  Foo: true
logging:
  format: json
  verbosity: 3
systemReserved:
  memory: 1024Mi
reservedMemory:
- numaNode: 0
  limits:
    memory: 1024Mi
readOnlyPort: 10255
containerRuntimeEndpoint: unix:///foo.sock
rotateCertificates: false
failSwapOn: false
podsPerCore: 0
healthzPort: 0
""",
    )
    doc = _load(kubelet.render_kubelet_config(config, systemd_resolved=False))
    assert "unknownField" not in doc
    assert doc["syncFrequency"] == "1m30s"
    assert doc["authentication"]["webhook"] == {"cacheTTL": "1h0m0s", "enabled": True}
    assert doc["cgroupDriver"] == "cgroupfs"
    assert doc["clusterDNS"] == ["1.2.3.4"]
    assert doc["maxPods"] == 50
    assert doc["readOnlyPort"] == 10255  # kubeadm only warns
    assert doc["evictionHard"] == {"memory.available": "200Mi"}
    assert doc["systemReserved"] == {"memory": "1024Mi"}  # map[string]string: as given
    assert doc["reservedMemory"] == [{"limits": {"memory": "1Gi"}, "numaNode": 0}]  # Quantity
    assert doc["featureGates"] == {"Foo": True}
    assert doc["logging"]["format"] == "json" and doc["logging"]["verbosity"] == 3
    assert doc["rotateCertificates"] is True
    assert doc["failSwapOn"] is False  # *bool: kept
    assert doc["healthzPort"] == 0  # *int32 set: not defaulted
    assert "podsPerCore" not in doc  # int32 omitempty
    # the instance-config patch wins over the user's containerRuntimeEndpoint
    assert doc["containerRuntimeEndpoint"] == "unix:///run/crio/crio.sock"


def test_explicit_empty_cluster_dns_is_not_defaulted() -> None:
    """kubeletConfig.Default checks ClusterDNS == nil; [] is not nil and is then omitted."""
    config = _config(kubelet_doc="clusterDNS: []\n")
    assert "clusterDNS" not in _load(kubelet.render_kubelet_config(config, systemd_resolved=False))


def test_fields_newer_than_the_version_are_dropped() -> None:
    """k8s.io/kubelet v0.35.4 has no tlsCurvePreferences/defaultPodSysctls, v0.36.3 no
    defaultPodSysctls: kubeadm of that version drops them as unknown."""
    doc_text = "tlsCurvePreferences: [23]\ndefaultPodSysctls: {a: b}\n"
    for version, present in (
        ("v1.35.4", set()),
        ("v1.36.3", {"tlsCurvePreferences"}),
        ("v1.37.2", {"tlsCurvePreferences", "defaultPodSysctls"}),
    ):
        config = _config(kubelet_doc=doc_text, version=version)
        doc = _load(kubelet.render_kubelet_config(config, systemd_resolved=False))
        assert {"tlsCurvePreferences", "defaultPodSysctls"} & set(doc) == present, version


@pytest.mark.parametrize(
    ("doc_text", "field"),
    [
        ("maxPods: '50'\n", "maxPods"),
        ("syncFrequency: 10\n", "syncFrequency"),
        ("syncFrequency: 10x\n", "syncFrequency"),
        ("failSwapOn: 'no'\n", "failSwapOn"),
        ("authentication: []\n", "authentication"),
    ],
    ids=["int-as-string", "duration-as-number", "bad-duration", "bool-as-string", "not-a-map"],
)
def test_wrongly_typed_kubelet_fields_are_invalid_input(doc_text: str, field: str) -> None:
    """Refused when the configuration is loaded (as kubeadm's LoadInitConfigurationFromFile
    does), not first when the kubelet-start phase renders config.yaml."""
    with pytest.raises(InvalidInput, match=field):
        _config(kubelet_doc=doc_text)


# --- instance-config.yaml and the NodeLocalCRISocket versions ------------------------------------


def test_instance_config_is_one_quoted_line() -> None:
    """WriteInstanceConfigToDisk: fmt.Sprintf("containerRuntimeEndpoint: %q\\n", socket)."""
    config = _config(node="  criSocket: /var/run/crio/crio.sock\n")  # kubeadm adds unix://
    assert kubelet.render_instance_config(config) == (
        b'containerRuntimeEndpoint: "unix:///var/run/crio/crio.sock"\n'
    )


@pytest.mark.parametrize(
    ("version", "gate", "node_local"),
    [
        ("v1.37.2", None, True),  # gate removed: always
        ("v1.36.3", None, True),  # GA, locked on
        ("v1.35.4", None, True),  # Beta, default on
        ("v1.35.4", False, False),  # switched off
    ],
    ids=["v137", "v136", "v135", "v135-gate-off"],
)
def test_cri_socket_placement_per_version(
    version: str, gate: bool | None, node_local: bool
) -> None:
    cluster = "" if gate is None else f"featureGates:\n  NodeLocalCRISocket: {str(gate).lower()}\n"
    config = _config(cluster=cluster, version=version)
    files = kubelet.render_kubelet_files(
        config, _identity(config), hostname="cp1", systemd_resolved=False
    )
    doc = _load(files[PurePosixPath("/var/lib/kubelet/config.yaml")])
    flags_env = files[PurePosixPath("/var/lib/kubelet/kubeadm-flags.env")]
    socket = "unix:///var/run/containerd/containerd.sock"
    if node_local:
        assert PurePosixPath("/var/lib/kubelet/instance-config.yaml") in files
        assert doc["containerRuntimeEndpoint"] == socket
        assert flags_env == b'KUBELET_KUBEADM_ARGS=""\n'
    else:
        assert PurePosixPath("/var/lib/kubelet/instance-config.yaml") not in files
        assert (
            doc["containerRuntimeEndpoint"] == ""
        )  # json:"containerRuntimeEndpoint": no omitempty
        assert (
            flags_env == f'KUBELET_KUBEADM_ARGS="--container-runtime-endpoint={socket}"\n'.encode()
        )


# --- kubeadm-flags.env --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hostname", "expected"),
    [("cp1", ""), ("other-host", "--hostname-override=cp1")],
    ids=["name-is-hostname", "name-differs"],
)
def test_hostname_override_only_when_the_name_differs(hostname: str, expected: str) -> None:
    config = load_config(config_path("default"))
    data = kubelet.render_kubeadm_flags_env(config, _identity(config), hostname)
    assert data == f'KUBELET_KUBEADM_ARGS="{expected}"\n'.encode()


def test_kubelet_extra_args_follow_in_user_order_and_are_go_quoted() -> None:
    config = _config(
        node="""\
  kubeletExtraArgs:
  - {name: v, value: "2"}
  - {name: node-labels, value: 'a="q",b=\\x'}
  - {name: hostname-override, value: my-host}
"""
    )
    data = kubelet.render_kubeadm_flags_env(config, _identity(config), "cp1")
    # GetNodeNameAndHostname: the extra arg names the node, so the override differs from the
    # hostname; the user's own argument replaces kubeadm's and keeps the user's position.
    assert data == (
        b'KUBELET_KUBEADM_ARGS="--v=2 --node-labels=a=\\"q\\",b=\\\\x'
        b' --hostname-override=my-host"\n'
    )


def test_extra_sans_args_config_flags() -> None:
    config = load_config(config_path("extra-sans-args"))
    data = kubelet.render_kubeadm_flags_env(config, _identity(config), "cp-extra")
    assert data == b'KUBELET_KUBEADM_ARGS="--node-labels=tier=control --v=2"\n'


def test_files_and_order() -> None:
    config = load_config(config_path("default"))
    files = kubelet.render_kubelet_files(
        config, _identity(config), hostname="cp1", systemd_resolved=False
    )
    # cmd/phases/init/kubelet.go writes them in this order; the modes are 0644 in a 0700 dir.
    assert [str(p) for p in files] == [
        "/var/lib/kubelet/kubeadm-flags.env",
        "/var/lib/kubelet/instance-config.yaml",
        "/var/lib/kubelet/config.yaml",
    ]
    assert (kubelet.KUBELET_FILE_MODE, kubelet.KUBELET_DIR_MODE) == (0o644, 0o700)


# --- Go value formats ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "printed"),
    [
        ("0", "0s"),
        ("90s", "1m30s"),
        ("1h", "1h0m0s"),
        ("1.5h", "1h30m0s"),
        ("300ms", "300ms"),
        ("1500ns", "1.5µs"),
        ("2.000001s", "2.000001s"),
        ("1h1m1.5s", "1h1m1.5s"),
        ("-5s", "-5s"),
        ("+2m", "2m0s"),
        ("1us", "1µs"),
    ],
)
def test_go_durations(text: str, printed: str) -> None:
    """time.ParseDuration then Duration.String() (Go's own examples and rules)."""
    assert kubelet.go_duration(kubelet.parse_go_duration(text)) == printed


@pytest.mark.parametrize("text", ["", "1", "1x", "h", ".s", "1h-2m"])
def test_go_rejects_these_durations(text: str) -> None:
    with pytest.raises(ValueError):
        kubelet.parse_go_duration(text)


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("1024Mi", "1Gi"),
        ("1.5Gi", "1536Mi"),
        ("0.5", "500m"),
        ("1500m", "1500m"),
        ("2000", "2k"),
        ("1500", "1500"),
        ("100Mi", "100Mi"),
        ("1023Ki", "1023Ki"),
        ("512", "512"),
        ("0", "0"),
        ("0.1n", "1n"),  # rounded up to the smallest unit
        ("12e6", "12e6"),  # DecimalExponent stays exponent
        ("0.001e0", "1e-3"),
        ("1000M", "1G"),
        (".001Ki", "1024m"),
        (".000000000001Ki", "2n"),
        ("1080000000n", "1080m"),
        ("-1024Mi", "-1Gi"),
    ],
)
def test_quantities_are_canonicalised(text: str, canonical: str) -> None:
    """apimachinery resource.Quantity String(): entries of quantity_test.go's TestQuantityString
    and TestQuantityParseEmit tables."""
    assert kubelet.canonical_quantity(text) == canonical


# --- systemd-resolved on a root that is not running ---------------------------------------------


def test_systemd_resolved_is_judged_from_its_enablement_under_the_root(tmp_path: Path) -> None:
    assert kubelet.systemd_resolved_active(tmp_path, live=False) is False
    wants = tmp_path / "etc/systemd/system/sysinit.target.wants"
    wants.mkdir(parents=True)
    (wants / "systemd-resolved.service").symlink_to(
        "/usr/lib/systemd/system/systemd-resolved.service"
    )
    assert kubelet.systemd_resolved_active(tmp_path, live=False) is True
    (tmp_path / "etc/systemd/system/systemd-resolved.service").symlink_to("/dev/null")
    assert kubelet.systemd_resolved_active(tmp_path, live=False) is False  # masked


def test_systemd_resolved_enabled_by_the_vendor_preset_tree(tmp_path: Path) -> None:
    wants = tmp_path / "usr/lib/systemd/system/multi-user.target.wants"
    wants.mkdir(parents=True)
    (wants / "systemd-resolved.service").symlink_to("../systemd-resolved.service")
    assert kubelet.systemd_resolved_active(tmp_path, live=False) is True
