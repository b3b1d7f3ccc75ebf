"""kubeinit.config: bad configurations are InvalidInput (exit 2) with one line naming the file
and the field; defaults are kubeadm's v1beta4 defaults, read from kubeadm's own source; the CLI
refuses a bad config without a traceback and without writing anything; and no input, however
mangled, makes the parser raise anything but InvalidInput (hypothesis)."""

from __future__ import annotations

import copy
import datetime
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kubeinit.config import (
    DEFAULT_CRI_SOCKET,
    EncryptionAlgorithm,
    PullPolicy,
    load_config,
    parse_config,
)
from kubeinit.errors import ExitCode, InvalidInput
from tests.conftest import REPO, config_path

KUBEADM_SRC = Path("/root/go/pkg/mod/k8s.io/kubernetes@v1.37.2/cmd/kubeadm/app")
SOURCE = "cfg.yaml"

INIT = """\
apiVersion: kubeadm.k8s.io/v1beta4
kind: InitConfiguration
localAPIEndpoint:
  advertiseAddress: 192.0.2.10
nodeRegistration:
  name: cp1
"""
CLUSTER = """\
apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
kubernetesVersion: v1.37.2
"""


def _docs(
    init_extra: dict[str, Any] | None = None, cluster_extra: dict[str, Any] | None = None
) -> str:
    init = yaml.safe_load(INIT)
    cluster = yaml.safe_load(CLUSTER)
    _merge(init, init_extra or {})
    _merge(cluster, cluster_extra or {})
    return yaml.safe_dump_all([init, cluster], sort_keys=False)


def _merge(into: dict[str, Any], extra: dict[str, Any]) -> None:
    for k, v in extra.items():
        if isinstance(v, dict) and isinstance(into.get(k), dict):
            _merge(into[k], v)
        else:
            into[k] = v


TOKEN = "abcdef.0123456789abcdeX"  # bad: upper-case character

# (id, config text, field the one-line error must name)
BAD: list[tuple[str, str, str]] = [
    ("unknown-api-version", INIT.replace("v1beta4", "v1beta9") + "---\n" + CLUSTER, "apiVersion"),
    ("old-api-version", INIT.replace("v1beta4", "v1beta3"), "apiVersion"),
    ("unknown-kind", INIT.replace("InitConfiguration", "JoinConfiguration"), "kind"),
    ("no-kind", "apiVersion: kubeadm.k8s.io/v1beta4\n", "kind"),
    ("not-a-mapping", "- a\n- b\n", "document 1"),
    ("duplicate-kind", INIT + "---\n" + INIT, "InitConfiguration"),
    ("malformed-yaml", "apiVersion: [unclosed\nkind: x\n", "line"),
    ("malformed-indent", "a:\n  b: 1\n c: 2\n", "line"),
    ("tab-indent", "apiVersion: v1\n\tkind: x\n", "line"),
    ("unknown-field", _docs(cluster_extra={"networkin": {}}), "networkin"),
    (
        "unknown-nested-field",
        _docs(cluster_extra={"networking": {"podCIDR": "10.0.0.0/8"}}),
        "networking.podCIDR",
    ),
    (
        "unknown-deep-field",
        _docs(cluster_extra={"etcd": {"local": {"dataDirectory": "/x"}}}),
        "etcd.local.dataDirectory",
    ),
    (
        "unknown-list-item-field",
        _docs(cluster_extra={"apiServer": {"extraArgs": [{"name": "v", "val": "2"}]}}),
        "apiServer.extraArgs[0].val",
    ),
    ("wrong-type", _docs(cluster_extra={"networking": "10.0.0.0/8"}), "networking"),
    (
        "pod-subnet-not-cidr",
        _docs(cluster_extra={"networking": {"podSubnet": "10.244.0.0"}}),
        "networking.podSubnet",
    ),
    (
        "pod-subnet-garbage",
        _docs(cluster_extra={"networking": {"podSubnet": "pods"}}),
        "networking.podSubnet",
    ),
    (
        "service-subnet-not-cidr",
        _docs(cluster_extra={"networking": {"serviceSubnet": "10.96.0.0/33"}}),
        "networking.serviceSubnet",
    ),
    (
        "overlapping-subnets",
        _docs(
            cluster_extra={
                "networking": {"podSubnet": "10.96.0.0/16", "serviceSubnet": "10.96.0.0/12"}
            }
        ),
        "networking.podSubnet",
    ),
    (
        "service-subnet-too-large",
        _docs(cluster_extra={"networking": {"serviceSubnet": "10.0.0.0/8"}}),
        "networking.serviceSubnet",
    ),
    (
        "service-subnet-v6-too-large",
        _docs(cluster_extra={"networking": {"serviceSubnet": "fd00::/64"}}),
        "networking.serviceSubnet",
    ),
    (
        "service-subnet-too-small",
        _docs(cluster_extra={"networking": {"serviceSubnet": "10.96.0.0/30"}}),
        "networking.serviceSubnet",
    ),
    (
        "two-v4-service-subnets",
        _docs(cluster_extra={"networking": {"serviceSubnet": "10.96.0.0/16,10.97.0.0/16"}}),
        "networking.serviceSubnet",
    ),
    (
        "pod-subnet-smaller-than-node-mask",
        _docs(cluster_extra={"networking": {"podSubnet": "10.244.0.0/25"}}),
        "networking.podSubnet",
    ),
    (
        "advertise-address-not-ip",
        _docs(init_extra={"localAPIEndpoint": {"advertiseAddress": "cp1.example.com"}}),
        "localAPIEndpoint.advertiseAddress",
    ),
    (
        "advertise-address-unspecified",
        _docs(init_extra={"localAPIEndpoint": {"advertiseAddress": "0.0.0.0"}}),
        "localAPIEndpoint.advertiseAddress",
    ),
    (
        "advertise-address-multicast",
        _docs(init_extra={"localAPIEndpoint": {"advertiseAddress": "224.0.0.1"}}),
        "localAPIEndpoint.advertiseAddress",
    ),
    (
        "unsupported-version",
        _docs(cluster_extra={"kubernetesVersion": "v1.30.0"}),
        "kubernetesVersion",
    ),
    ("future-version", _docs(cluster_extra={"kubernetesVersion": "v1.40.0"}), "kubernetesVersion"),
    ("version-label", _docs(cluster_extra={"kubernetesVersion": "stable-1"}), "kubernetesVersion"),
    ("version-number", _docs(cluster_extra={"kubernetesVersion": 1.37}), "kubernetesVersion"),
    (
        "validity-not-duration",
        _docs(cluster_extra={"certificateValidityPeriod": "1 year"}),
        "certificateValidityPeriod",
    ),
    (
        "validity-negative",
        _docs(cluster_extra={"certificateValidityPeriod": "-1h"}),
        "certificateValidityPeriod",
    ),
    (
        "validity-zero",
        _docs(cluster_extra={"certificateValidityPeriod": "0s"}),
        "certificateValidityPeriod",
    ),
    (
        "validity-days-unit",
        _docs(cluster_extra={"caCertificateValidityPeriod": "3650d"}),
        "caCertificateValidityPeriod",
    ),
    (
        "validity-integer",
        _docs(cluster_extra={"certificateValidityPeriod": 8760}),
        "certificateValidityPeriod",
    ),
    (
        "unknown-encryption",
        _docs(cluster_extra={"encryptionAlgorithm": "RSA-1024"}),
        "encryptionAlgorithm",
    ),
    (
        "encryption-lowercase",
        _docs(cluster_extra={"encryptionAlgorithm": "ecdsa-p256"}),
        "encryptionAlgorithm",
    ),
    (
        "node-name-underscore",
        _docs(init_extra={"nodeRegistration": {"name": "cp_1"}}),
        "nodeRegistration.name",
    ),
    (
        "node-name-too-long",
        _docs(init_extra={"nodeRegistration": {"name": "a" * 254}}),
        "nodeRegistration.name",
    ),
    (
        "bind-port-zero-is-default-but-negative",
        _docs(init_extra={"localAPIEndpoint": {"bindPort": -1}}),
        "localAPIEndpoint.bindPort",
    ),
    (
        "bind-port-too-large",
        _docs(init_extra={"localAPIEndpoint": {"bindPort": 65536}}),
        "localAPIEndpoint.bindPort",
    ),
    (
        "bind-port-string",
        _docs(init_extra={"localAPIEndpoint": {"bindPort": "https"}}),
        "localAPIEndpoint.bindPort",
    ),
    (
        "cri-socket-tcp",
        _docs(init_extra={"nodeRegistration": {"criSocket": "tcp://127.0.0.1:2375"}}),
        "nodeRegistration.criSocket",
    ),
    (
        "cri-socket-npipe",
        _docs(init_extra={"nodeRegistration": {"criSocket": "npipe:////./pipe/containerd"}}),
        "nodeRegistration.criSocket",
    ),
    (
        "bad-token",
        _docs(init_extra={"bootstrapTokens": [{"token": TOKEN}]}),
        "bootstrapTokens[0].token",
    ),
    (
        "token-without-dot",
        _docs(init_extra={"bootstrapTokens": [{"token": "abcdef0123456789abcdef"}]}),
        "bootstrapTokens[0].token",
    ),
    (
        "token-bad-usage",
        _docs(init_extra={"bootstrapTokens": [{"usages": ["root"]}]}),
        "bootstrapTokens[0].usages",
    ),
    (
        "cpe-bad-port",
        _docs(cluster_extra={"controlPlaneEndpoint": "api.example.com:99999"}),
        "controlPlaneEndpoint",
    ),
    (
        "cpe-not-a-host",
        _docs(cluster_extra={"controlPlaneEndpoint": "api_example!com"}),
        "controlPlaneEndpoint",
    ),
    (
        "cpe-empty-host",
        _docs(cluster_extra={"controlPlaneEndpoint": ":6443"}),
        "controlPlaneEndpoint",
    ),
    (
        "cpe-unclosed-ipv6",
        _docs(cluster_extra={"controlPlaneEndpoint": "[2001:db8::1:6443"}),
        "controlPlaneEndpoint",
    ),
    (
        "cpe-url",
        _docs(cluster_extra={"controlPlaneEndpoint": "https://api.example.com"}),
        "controlPlaneEndpoint",
    ),
    (
        "unknown-feature-gate",
        _docs(cluster_extra={"featureGates": {"NoSuchGate": True}}),
        "featureGates",
    ),
    ("relative-cert-dir", _docs(cluster_extra={"certificatesDir": "pki"}), "certificatesDir"),
    (
        "bad-dns-domain",
        _docs(cluster_extra={"networking": {"dnsDomain": "Cluster_Local"}}),
        "networking.dnsDomain",
    ),
    (
        "bad-image-pull-policy",
        _docs(init_extra={"nodeRegistration": {"imagePullPolicy": "Sometimes"}}),
        "nodeRegistration.imagePullPolicy",
    ),
    (
        "bad-cert-san",
        _docs(cluster_extra={"apiServer": {"certSANs": ["not a name"]}}),
        "apiServer.certSANs",
    ),
    (
        "local-and-external-etcd",
        _docs(cluster_extra={"etcd": {"local": {}, "external": {"endpoints": ["https://e:2379"]}}}),
        "etcd",
    ),
]


def _one_line(e: InvalidInput) -> None:
    assert e.exit_code == ExitCode.INVALID_INPUT
    assert "\n" not in e.message
    assert "\n" not in e.hint


@pytest.mark.parametrize(("text", "fld"), [(t, f) for _, t, f in BAD], ids=[i for i, _, _ in BAD])
def test_bad_config_is_invalid_input_naming_file_and_field(text: str, fld: str) -> None:
    with pytest.raises(InvalidInput) as e:
        parse_config(text, source=SOURCE)
    _one_line(e.value)
    assert e.value.message.startswith(f"{SOURCE}:"), e.value.message
    assert fld in e.value.message, e.value.message


def test_secrets_never_in_the_error() -> None:
    with pytest.raises(InvalidInput) as e:
        parse_config(_docs(init_extra={"bootstrapTokens": [{"token": TOKEN}]}), source=SOURCE)
    assert TOKEN not in e.value.message + e.value.hint
    assert TOKEN.split(".")[1] not in e.value.message + e.value.hint
    key = "ab" * 31 + "zz"  # 32 bytes of which the last is not hex
    with pytest.raises(InvalidInput) as e:
        parse_config(_docs(init_extra={"certificateKey": key}), source=SOURCE)
    assert "certificateKey" in e.value.message
    assert key not in e.value.message + e.value.hint


@pytest.mark.parametrize(
    "text",
    [
        _docs(init_extra={"localAPIEndpoint": {"bindPort": 0}}),  # 0 = default, as kubeadm
        _docs(init_extra={"nodeRegistration": {"criSocket": "/run/containerd/containerd.sock"}}),
        _docs(cluster_extra={"controlPlaneEndpoint": "[2001:db8::1]:6443"}),
        _docs(
            cluster_extra={
                "networking": {
                    "podSubnet": "10.244.0.0/16,fd00:10:244::/56",
                    "serviceSubnet": "10.96.0.0/16,fd00:10:96::/112",
                }
            }
        ),
        _docs(cluster_extra={"certificateValidityPeriod": "2160h0m0s"}),
        _docs(init_extra={"bootstrapTokens": [{"token": "abcdef.0123456789abcdef"}]}),
    ],
    ids=[
        "bind-port-0",
        "cri-socket-without-scheme",
        "cpe-ipv6",
        "dual-stack",
        "validity",
        "good-token",
    ],
)
def test_good_edge_cases_are_accepted(text: str) -> None:
    parse_config(text, source=SOURCE)


def test_missing_file_is_invalid_input(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput) as e:
        load_config(tmp_path / "nope.yaml")
    _one_line(e.value)
    assert str(tmp_path / "nope.yaml") in e.value.message


# --- defaults, against kubeadm's source ------------------------------------------------------


def _go_consts(path: Path) -> dict[str, str]:
    """`Name = value` lines of a Go file, value text as written."""
    out = {}
    for m in re.finditer(
        r'^\s*(\w+)\s*=\s*("[^"\n]*"|[^"\n]*?)\s*(?://.*)?$', path.read_text(), re.M
    ):
        out.setdefault(m.group(1), m.group(2))
    return out


_GO_UNITS = {"time.Hour": 3600, "time.Minute": 60, "time.Second": 1}


def _go_duration(expr: str) -> datetime.timedelta:
    """Evaluate `time.Hour * 24 * 365`-style constant expressions."""
    total = 1
    for part in (p.strip() for p in expr.split("*")):
        total *= _GO_UNITS[part] if part in _GO_UNITS else int(part)
    return datetime.timedelta(seconds=total)


def test_defaults_are_kubeadms_v1beta4_defaults() -> None:
    d = _go_consts(KUBEADM_SRC / "apis/kubeadm/v1beta4/defaults.go")
    c = _go_consts(KUBEADM_SRC / "constants/constants.go")
    types = (KUBEADM_SRC / "apis/kubeadm/v1beta4/types.go").read_text()
    cfg = parse_config(INIT, source=SOURCE)  # no ClusterConfiguration at all
    cl, init = cfg.cluster, cfg.init

    def s(v: str) -> str:
        return v.strip('"')

    assert cl.networking.service_subnet == s(d["DefaultServicesSubnet"])
    assert cl.networking.dns_domain == s(d["DefaultServiceDNSDomain"])
    assert cl.certificates_dir == s(d["DefaultCertificatesDir"])
    assert cl.image_repository == s(d["DefaultImageRepository"])
    assert cl.cluster_name == s(d["DefaultClusterName"])
    assert cl.etcd.local is not None and cl.etcd.external is None
    assert cl.etcd.local.data_dir == s(d["DefaultEtcdDataDir"])
    # DefaultEncryptionAlgorithm = EncryptionAlgorithmRSA2048 = "RSA-2048" (types.go)
    algo = re.search(
        rf'{d["DefaultEncryptionAlgorithm"]}\s+EncryptionAlgorithmType\s*=\s*"([^"]+)"', types
    )
    assert algo and cl.encryption_algorithm == EncryptionAlgorithm(algo.group(1))
    assert cl.certificate_validity_period == _go_duration(c["CertificateValidityPeriod"])
    assert cl.ca_certificate_validity_period == _go_duration(c["CACertificateValidityPeriod"])
    assert init.local_api_endpoint.bind_port == int(c["KubeAPIServerPort"])
    assert d["DefaultImagePullPolicy"] == "corev1.PullIfNotPresent"
    assert init.node_registration.image_pull_policy == PullPolicy.IF_NOT_PRESENT
    assert init.node_registration.image_pull_serial is True  # ptr.To(true)
    t = init.timeouts
    assert t.control_plane_component_health_check == _go_duration(
        c["ControlPlaneComponentHealthCheckTimeout"]
    )
    assert t.kubelet_health_check == _go_duration(c["KubeletHealthCheckTimeout"])
    assert t.kubernetes_api_call == _go_duration(c["KubernetesAPICallTimeout"])
    assert t.etcd_api_call == _go_duration(c["EtcdAPICallTimeout"])
    assert t.tls_bootstrap == _go_duration(c["TLSBootstrapTimeout"])
    assert t.discovery == _go_duration(c["DiscoveryTimeout"])
    assert t.upgrade_manifests == _go_duration(c["UpgradeManifestsTimeout"])
    # kubeadm's default CRI socket on Linux (constants_unix.go)
    unix = _go_consts(KUBEADM_SRC / "constants/constants_unix.go")
    default_cri = unix["DefaultCRISocket"]
    default_cri = unix.get(default_cri, default_cri)  # = CRISocketContainerd
    assert init.node_registration.cri_socket == s(default_cri) == DEFAULT_CRI_SOCKET
    # the default kubernetesVersion ("stable-1", resolved online) is pinned instead
    assert cl.kubernetes_version == "v1.37.2"


def test_node_name_is_lower_cased_as_kubeadm_does() -> None:
    # SetNodeRegistrationDynamicDefaults -> nodeutil.GetHostname lower-cases the name
    cfg = parse_config(_docs(init_extra={"nodeRegistration": {"name": "CP1.Example"}}))
    assert cfg.init.node_registration.name == "cp1.example"


def test_external_etcd_http_endpoints_default_to_endpoints() -> None:
    cfg = parse_config(
        _docs(
            cluster_extra={
                "etcd": {
                    "external": {"endpoints": ["https://10.0.0.1:2379", "https://10.0.0.2:2379"]}
                }
            }
        ),
        source=SOURCE,
    )
    assert cfg.cluster.etcd.external is not None
    assert cfg.cluster.etcd.external.http_endpoints == (
        "https://10.0.0.1:2379",
        "https://10.0.0.2:2379",
    )
    cfg = parse_config(
        _docs(
            cluster_extra={
                "etcd": {
                    "external": {
                        "endpoints": ["https://10.0.0.1:2379"],
                        "httpEndpoints": ["http://10.0.0.1:2381"],
                    }
                }
            }
        ),
        source=SOURCE,
    )
    assert cfg.cluster.etcd.external is not None
    assert cfg.cluster.etcd.external.http_endpoints == ("http://10.0.0.1:2381",)


# --- the CLI ---------------------------------------------------------------------------------


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "firstboot", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
        timeout=60,
        env={**os.environ, "KUBEINIT_NO_JOURNAL": "1"},
    )


def _assert_refused(res: subprocess.CompletedProcess[str], root: Path) -> None:
    assert res.returncode == ExitCode.INVALID_INPUT, res.stderr
    assert "Traceback" not in res.stderr + res.stdout
    lines = res.stderr.splitlines()
    assert len(lines) == 2, lines
    assert lines[0].startswith("kubeinit: error: ")
    assert lines[1].startswith("hint: ")
    assert list(root.rglob("*")) == [], "a refused config wrote files"


_CLI_CASES = (
    "unknown-kind",
    "malformed-yaml",
    "unknown-nested-field",
    "overlapping-subnets",
    "bad-token",
    "cpe-bad-port",
    "local-and-external-etcd",
    "wrong-type",
)


@pytest.mark.parametrize(
    ("text", "fld"),
    [(t, f) for i, t, f in BAD if i in _CLI_CASES],
    ids=[i for i, _, _ in BAD if i in _CLI_CASES],
)
def test_cli_refuses_a_bad_config_and_writes_nothing(tmp_path: Path, text: str, fld: str) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    root = tmp_path / "root"
    root.mkdir()
    res = _cli("init", "--config", str(bad), "--root", str(root))
    _assert_refused(res, root)
    assert str(bad) in res.stderr and fld in res.stderr


# --- property-based ---------------------------------------------------------------------------

_VALID = [
    yaml.safe_load(INIT),
    yaml.safe_load(config_path("extra-sans-args").read_text().split("---\n")[1]),
]
_VALID[1]["networking"] = {"podSubnet": "10.244.0.0/16"}


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*prefix, i))
    return out


_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**40), max_value=2**40),
    st.floats(allow_nan=True),
    st.text(max_size=30),
    st.sampled_from(
        [
            "",
            "v1.37.2",
            "10.0.0.0/8",
            "::",
            "unix://",
            "1h",
            "-",
            "a.b",
            "RSA-2048",
            "[",
            "*",
            "0",
            "null",
            "~",
            "1e9",
            "0x10",
            "stable-1",
        ]
    ),
)
_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)


@st.composite
def _mutated(draw: st.DrawFn) -> str:
    docs = copy.deepcopy(_VALID)
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        doc = docs[draw(st.integers(min_value=0, max_value=1))]
        path = draw(st.sampled_from(_paths(doc)[1:]))
        parent: Any = doc
        for p in path[:-1]:
            parent = parent[p]
        if draw(st.booleans()) and isinstance(parent, dict):
            parent[draw(st.sampled_from([path[-1], draw(st.text(min_size=1, max_size=8))]))] = draw(
                _values
            )
        elif isinstance(parent, dict) and draw(st.booleans()):
            del parent[path[-1]]
        else:
            parent[path[-1]] = draw(_values)
    return yaml.safe_dump_all(docs, sort_keys=False)


_garbage = st.one_of(
    st.text(max_size=200),
    st.text(alphabet=":-[]{}|>&*!%@`'\"#,? \n\t\\abc01", max_size=120),
    st.binary(max_size=100).map(lambda b: b.decode("latin-1")),
)

_SETTINGS = settings(
    max_examples=150, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)


@_SETTINGS
@given(_mutated())
def test_mutated_configs_raise_only_invalid_input(text: str) -> None:
    try:
        parse_config(text, source=SOURCE)
    except InvalidInput as e:
        _one_line(e)
        assert e.message.startswith(SOURCE)


@_SETTINGS
@given(_garbage)
def test_garbage_raises_only_invalid_input(text: str) -> None:
    try:
        parse_config(text, source=SOURCE)
    except InvalidInput as e:
        _one_line(e)


@settings(
    max_examples=12,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(st.one_of(_mutated(), _garbage))
def test_cli_never_writes_or_tracebacks_on_mutated_configs(
    tmp_path_factory: pytest.TempPathFactory, text: str
) -> None:
    tmp = tmp_path_factory.mktemp("prop")
    cfg, root = tmp / "c.yaml", tmp / "root"
    cfg.write_text(text, encoding="utf-8", errors="surrogateescape")
    root.mkdir()
    # Only the render-safe phases: a config that happens to be valid must not reach anything
    # that needs the machine; preflight is skipped so a valid config writes the state journal
    # only under root (allowed) -- the property is about refused configs.
    res = _cli("init", "--config", str(cfg), "--root", str(root), "phase", "preflight")
    assert "Traceback" not in res.stderr + res.stdout
    if res.returncode == ExitCode.INVALID_INPUT:
        assert list(root.rglob("*")) == [], "a refused config wrote files"
        assert len([ln for ln in res.stderr.splitlines() if ln.startswith("kubeinit: error:")]) == 1
    else:
        assert res.returncode in (ExitCode.OK, ExitCode.PHASE_FAILED), res.stderr
