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
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kubeinit.config import (
    DEFAULT_CRI_SOCKET,
    MAX_CONFIG_BYTES,
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


# --- issue 9: strict input, no silent ignores ---------------------------------------------------

GOOD_TOKEN = "abcdef.0123456789abcdef"
ALIAS_BOMB = (
    "apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\n"
    'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    + "".join(
        f"{c}: &{c} [{','.join(['*' + p] * 9)}]\n"
        for p, c in zip("abcdefgh", "bcdefghi", strict=True)
    )
)


def test_alias_bomb_is_refused_at_parse_time() -> None:
    """Finding 6: a few hundred bytes of aliases (9 levels of 9: 9^9 strings; the issue's was
    553 bytes) passed parsing and hung the addon render."""
    t0 = time.monotonic()
    with pytest.raises(InvalidInput) as e:
        parse_config(ALIAS_BOMB, source=SOURCE)
    assert time.monotonic() - t0 < 1
    assert e.value.message == f"{SOURCE}: line 4: YAML aliases (*a) are not accepted"
    _one_line(e.value)


@pytest.mark.parametrize(
    "text",
    [
        CLUSTER + "x: &x {a: 1}\nnetworking: *x\n",
        CLUSTER + "base: &b {serviceSubnet: 10.96.0.0/12}\nnetworking:\n  <<: *b\n",
    ],
    ids=["alias", "merge-key"],
)
def test_every_alias_is_refused(text: str) -> None:
    with pytest.raises(InvalidInput, match="YAML aliases"):
        parse_config(text, source=SOURCE)


def test_an_anchor_without_alias_is_fine() -> None:
    config = parse_config(CLUSTER + "networking: &n\n  podSubnet: 10.244.0.0/16\n")
    assert config.cluster.networking.pod_subnet == "10.244.0.0/16"


@pytest.mark.parametrize(
    "text",
    ["[" * 200_000 + "]" * 200_000, "a:\n" + "".join("  " * i + "b:\n" for i in range(1, 200))],
    ids=["flow-200k", "block-200"],
)
def test_deep_nesting_is_one_error_line(text: str) -> None:
    """Finding 8: 200k-level nesting gave a RecursionError traceback."""
    with pytest.raises(InvalidInput) as e:
        parse_config(text, source=SOURCE)
    _one_line(e.value)
    assert "nest" in e.value.message


def test_a_200mb_config_is_refused_without_reading_it(tmp_path: Path) -> None:
    """Finding 6: a 200 MB config was accepted (56 s, 433 MB). Sparse: nothing is written."""
    big = tmp_path / "big.yaml"
    with big.open("wb") as f:
        f.truncate(200 * 2**20)
    t0 = time.monotonic()
    with pytest.raises(InvalidInput) as e:
        load_config(big)
    assert time.monotonic() - t0 < 1
    assert e.value.message == f"{big}: the configuration is larger than 1024 KiB"


def test_a_config_of_exactly_the_limit_is_read(tmp_path: Path) -> None:
    text = CLUSTER + "#" * (MAX_CONFIG_BYTES - len(CLUSTER) - 1) + "\n"
    assert len(text.encode()) == MAX_CONFIG_BYTES
    f = tmp_path / "c.yaml"
    f.write_text(text)
    assert load_config(f).release.version == "v1.37.2"
    f.write_text(text + "\n")
    with pytest.raises(InvalidInput, match="larger than"):
        load_config(f)


@pytest.mark.parametrize(
    ("extra", "fld"),
    [
        ({"certificateValidityPeriod": "99999999999999h"}, "certificateValidityPeriod"),
        (
            {"caCertificateValidityPeriod": "2562047h47m16.854775808s"},
            "caCertificateValidityPeriod",
        ),
    ],
    ids=["cert-validity", "ca-validity-one-ns-over"],
)
def test_duration_overflow_is_invalid_input(extra: dict[str, Any], fld: str) -> None:
    """Finding 8: certificateValidityPeriod 99999999999999h gave an OverflowError traceback.
    Go's ParseDuration refuses anything over 2562047h47m16.854775807s."""
    with pytest.raises(InvalidInput) as e:
        parse_config(_docs(cluster_extra=extra), source=SOURCE)
    _one_line(e.value)
    assert e.value.message.startswith(f"{SOURCE}: {fld}: ")
    assert "longest duration" in e.value.message


def test_the_longest_go_duration_is_accepted() -> None:
    config = parse_config(_docs(cluster_extra={"certificateValidityPeriod": "2562047h47m16s"}))
    assert config.cluster.certificate_validity_period == datetime.timedelta(
        hours=2562047, minutes=47, seconds=16
    )
    timeouts = parse_config(_docs(init_extra={"timeouts": {"kubernetesAPICall": "2562047h"}}))
    assert timeouts.init.timeouts.kubernetes_api_call.total_seconds() == 2562047 * 3600


@pytest.mark.parametrize(
    ("extra", "fld"),
    [
        ({"certificatesDir": "/etc/kubernetes/../../root"}, "certificatesDir"),
        ({"certificatesDir": "/../pki"}, "certificatesDir"),
        ({"etcd": {"local": {"dataDir": "/var/lib/etcd/.."}}}, "etcd.local.dataDir"),
        (
            {"etcd": {"external": {"endpoints": ["https://e:2379"], "caFile": "/a/../../ca"}}},
            "etcd.external.caFile",
        ),
    ],
    ids=["cert-dir-climbs", "cert-dir-above-root", "data-dir-trailing", "external-ca-file"],
)
def test_dotdot_in_node_dirs_is_invalid_input(extra: dict[str, Any], fld: str) -> None:
    """Finding 8: `..` in certificatesDir/dataDir gave "internal error" (exit 1)."""
    with pytest.raises(InvalidInput) as e:
        parse_config(_docs(cluster_extra=extra), source=SOURCE)
    _one_line(e.value)
    assert e.value.message.startswith(f"{SOURCE}: {fld}: ") and "'..'" in e.value.message


def test_image_pull_serial_false_is_refused_true_accepted() -> None:
    """Finding 7: imagePullSerial was accepted and silently not applied."""
    with pytest.raises(InvalidInput) as e:
        parse_config(
            _docs(init_extra={"nodeRegistration": {"imagePullSerial": False}}), source=SOURCE
        )
    assert "nodeRegistration.imagePullSerial" in e.value.message
    config = parse_config(_docs(init_extra={"nodeRegistration": {"imagePullSerial": True}}))
    assert config.init.node_registration.image_pull_serial is True


def test_timestamps_stay_strings_as_in_yaml_v2() -> None:
    """sigs.k8s.io/yaml reads an unquoted timestamp into interface{} as a string; PyYAML
    would make a datetime and str() it differently."""
    config = parse_config(
        _docs(init_extra={"bootstrapTokens": [{"description": "x"}]}).replace(
            "description: x", "description: 2030-01-02T03:04:05Z"
        )
    )
    assert config.init.bootstrap_tokens[0].description == "2030-01-02T03:04:05Z"


# --- bootstrapTokens[].expires against kubeadm --------------------------------------------------

EXPIRES = [
    "next tuesday",
    "2030-01-02T03:04:05Z",
    "2030-01-02T3:04:05Z",
    "2030-01-02t03:04:05z",
    "2030-01-02T03:04:05.123456789+02:00",
    "2030-01-02T03:04:05,5Z",
    "2030-01-02 03:04:05Z",
    "2030-01-02T03:04:05+0200",
    "2030-1-02T03:04:05Z",
    "2030-01-02T24:00:00Z",
    "2030-02-30T03:04:05Z",
    "2028-02-29T03:04:05Z",
    "2030-01-02T03:04:05",
    "12030-01-02T03:04:05Z",
    "",
]


def _expires_verdict(message: str) -> str:
    if "mutually exclusive" in message:
        return "well-formed"
    if "RFC 3339" in message or "parsing time" in message:
        return "malformed"
    return message


@pytest.mark.parametrize("expires", EXPIRES[:1] + EXPIRES[2:3])
def test_malformed_expires_is_refused_without_the_token(expires: str) -> None:
    """Finding 4: a malformed expires ("next tuesday") made a token that never expires."""
    with pytest.raises(InvalidInput) as e:
        parse_config(
            _docs(init_extra={"bootstrapTokens": [{"token": GOOD_TOKEN, "expires": expires}]}),
            source=SOURCE,
        )
    _one_line(e.value)
    assert GOOD_TOKEN.split(".")[1] not in e.value.message + e.value.hint
    if expires == "next tuesday":
        assert e.value.message == (
            f"{SOURCE}: bootstrapTokens[0].expires: 'next tuesday' is not an RFC 3339 time"
        )


@pytest.mark.real
def test_expires_is_judged_as_kubeadm_judges_it(k8s_bin: Path, tmp_path: Path) -> None:
    """kubeadm parses expires with metav1.Time (time.Parse RFC 3339) and, since it defaults
    ttl to 24h first, refuses every well-formed one as "mutually exclusive" with ttl: the oracle
    for both verdicts."""
    ours, theirs = {}, {}
    for expires in EXPIRES:
        text = _docs(init_extra={"bootstrapTokens": [{"token": GOOD_TOKEN, "expires": expires}]})
        with pytest.raises(InvalidInput) as e:
            parse_config(text, source=SOURCE)
        ours[expires] = _expires_verdict(e.value.message)
        f = tmp_path / "c.yaml"
        f.write_text(text)
        p = subprocess.run(
            [str(k8s_bin / "kubeadm"), "config", "validate", "--config", str(f)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert p.returncode != 0, p.stdout
        theirs[expires] = _expires_verdict(p.stderr)
    assert ours == theirs


# --- unknown KubeletConfiguration fields warn as kubeadm warns ---------------------------------

KUBELET_UNKNOWN = """\
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
zeta: 1
Alpha: 2
maxpods: 3
authentication:
  bogus: true
  webhook:
    cacheTTLx: 1s
tracing:
  bogus2: 1
shutdownGracePeriodByPodPriority:
- priority: 1
  extra: 2
logging:
  vmodule:
  - filePattern: x
    what: 1
evictionHard:
  custom: "1"
"""


def test_unknown_kubelet_fields_are_a_warning_not_silence() -> None:
    """Finding 7: unknown KubeletConfiguration fields were dropped without kubeadm's
    warning."""
    config = parse_config(CLUSTER + "---\n" + KUBELET_UNKNOWN, source=SOURCE)
    assert config.warnings == (
        f'{SOURCE}: KubeletConfiguration: strict decoding error: unknown field "Alpha",'
        ' unknown field "authentication.bogus", unknown field "authentication.webhook.cacheTTLx",'
        ' unknown field "logging.vmodule[0].what", unknown field "maxpods", unknown field'
        ' "shutdownGracePeriodByPodPriority[0].extra", unknown field "tracing.bogus2", unknown'
        ' field "zeta" (ignored, as kubeadm ignores them)',
    )
    assert (
        parse_config(CLUSTER + "---\n" + KUBELET_UNKNOWN.split("zeta", maxsplit=1)[0]).warnings
        == ()
    )


@pytest.mark.real
def test_unknown_kubelet_fields_match_kubeadms_warning(k8s_bin: Path, tmp_path: Path) -> None:
    f = tmp_path / "c.yaml"
    f.write_text(CLUSTER + "---\n" + KUBELET_UNKNOWN)
    p = subprocess.run(
        [str(k8s_bin / "kubeadm"), "config", "images", "list", "--config", str(f)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    theirs = re.search(r'Kind:"KubeletConfiguration"\}: (strict decoding error: .*)', p.stderr)
    assert theirs, p.stderr
    (ours,) = load_config(f).warnings
    assert theirs.group(1) in ours


# --- unknown KubeProxyConfiguration fields: kubeadm's warning, and dropped ---------------------

PROXY_UNKNOWN = """\
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
zeta: 1
Mode: ipvs
mode: nftables
iptables:
  bogus: 1
  masqueradeAll: true
clientConnection:
  qpsx: 2
  qps: 7
logging:
  vmodule:
  - filePattern: x
    verbosity: 2
    what: 1
  options:
    text:
      foo: 1
featureGates:
  AnyGate: true
detectLocal:
  x: 1
conntrack:
  tcpEstablishedTimeout: 1s
  zz: 2
"""
# The same document without the unknown fields.
PROXY_KNOWN = """\
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: nftables
iptables:
  masqueradeAll: true
clientConnection:
  qps: 7
logging:
  vmodule:
  - filePattern: x
    verbosity: 2
  options:
    text: {}
featureGates:
  AnyGate: true
detectLocal: {}
conntrack:
  tcpEstablishedTimeout: 1s
"""
PROXY_UNKNOWN_FIELDS = (
    'unknown field "Mode", unknown field "clientConnection.qpsx", unknown field "conntrack.zz",'
    ' unknown field "detectLocal.x", unknown field "iptables.bogus", unknown field'
    ' "logging.options.text.foo", unknown field "logging.vmodule[0].what", unknown field "zeta"'
)


def test_unknown_kube_proxy_fields_are_a_warning_not_silence() -> None:
    """Unknown KubeProxyConfiguration fields (top level and nested, case-sensitive as
    sigs.k8s.io/json) give kubeadm's warning; known fields and map keys do not."""
    config = parse_config(CLUSTER + "---\n" + PROXY_UNKNOWN, source=SOURCE)
    assert config.warnings == (
        f"{SOURCE}: KubeProxyConfiguration: strict decoding error: {PROXY_UNKNOWN_FIELDS}"
        " (ignored, as kubeadm ignores them)",
    )
    assert parse_config(CLUSTER + "---\n" + PROXY_KNOWN).warnings == ()


def _every_field(shape: dict[str, Any]) -> dict[str, Any]:
    """A document with every field `shape` knows (null, or a duration where Go's Duration
    refuses null) and an unknown `zzz` in every struct."""
    out: dict[str, Any] = {"zzz": 1}
    for name, kind in shape.items():
        if isinstance(kind, dict):
            out[name] = _every_field(kind)
        elif isinstance(kind, tuple):
            out[name] = _every_field(kind[1]) if kind[0] == "*" else [_every_field(kind[1])]
        else:
            out[name] = "1s" if kind.lstrip("*") in ("d", "fd") else None
    return out


def _kubeadm_warning(kubeadm: Path, text: str, tmp_path: Path) -> str:
    f = tmp_path / "c.yaml"
    f.write_text(text)
    p = subprocess.run(
        [str(kubeadm), "config", "images", "list", "--config", str(f)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert p.returncode == 0, p.stderr
    theirs = re.search(r'Kind:"KubeProxyConfiguration"\}: (strict decoding error: .*)', p.stderr)
    assert theirs, p.stderr
    return theirs.group(1)


@pytest.mark.real
@pytest.mark.parametrize("version", ["v1.37.2", "v1.36.3"])
def test_kube_proxy_fields_are_the_ones_kubeadm_knows(
    k8s_bin: Path, tmp_path: Path, version: str
) -> None:
    """The known-field list is kubeadm's: a document with every field kubeinit knows (at every
    depth) and an unknown one in each struct gets, from the real kubeadm, exactly the warning
    kubeinit gives (a field kubeinit knows and Go does not would be in kubeadm's list only).
    tests/firstboot/phases/test_addons.py checks the converse against types.go."""
    from kubeinit.api.addons import KUBE_PROXY_CONFIGURATION

    kubeadm = k8s_bin.parent / version / "kubeadm"
    assert kubeadm.is_file(), f"{kubeadm} missing: hack/k8s-binaries --version {version}"
    doc = {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        **_every_field(KUBE_PROXY_CONFIGURATION),
    }
    text = CLUSTER.replace("v1.37.2", version) + "---\n" + yaml.safe_dump(doc)
    theirs = _kubeadm_warning(kubeadm, text, tmp_path)
    (ours,) = parse_config(text).warnings
    assert theirs.count("unknown field") == 13, theirs  # the 12 structs and the top level
    assert ours == f"<config>: KubeProxyConfiguration: {theirs} (ignored, as kubeadm ignores them)"


@pytest.mark.real
def test_unknown_kube_proxy_fields_match_kubeadms_warning(k8s_bin: Path, tmp_path: Path) -> None:
    text = CLUSTER + "---\n" + PROXY_UNKNOWN
    assert _kubeadm_warning(k8s_bin / "kubeadm", text, tmp_path) == (
        "strict decoding error: " + PROXY_UNKNOWN_FIELDS
    )
