"""kubeinit.preflight against kubeadm v1.37.2's preflight package: names, order, errors versus
warnings, and each check on controlled inputs. Expected values are read from kubeadm's source
(cmd/kubeadm/app/preflight/checks.go, checks_linux.go, utils.go, system-validators v1.12.1) or
taken from the real kubeadm binary (`kubeadm config images list`, and its preflight output in
the oracle test at the end)."""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kubeinit.config import Config, load_config, parse_config
from kubeinit.errors import ExitCode, PhaseFailed, StateUnreadable
from kubeinit.identity import Identity
from kubeinit.preflight import (
    LIVE,
    Profile,
    Target,
    control_plane_images,
    init_node_checks,
    profile_for,
    raise_for,
    run_checks,
    run_preflight,
)
from kubeinit.preflight_checks import (
    Check,
    Host,
    Outcome,
    dir_available,
    file_available,
    file_content,
    hostname_check,
    kubelet_version_check,
    kubernetes_version_check,
    mem,
    num_cpu,
    port_open,
    service_check,
    swap,
)
from kubeinit.preflight_net import (
    cri_check,
    cri_version_check,
    external_etcd_version_check,
    http_proxy_check,
    http_proxy_cidr_check,
    https_proxy_for,
    image_pull_check,
)
from kubeinit.preflight_system import system_verification_check
from tests.conftest import ALL_CONFIGS, REPO, config_path

CP1 = Identity(node_name="cp1", advertise_address="192.0.2.10")
ALL_PHASES_BUT_PREFLIGHT = (
    "certs,kubeconfig,etcd,control-plane,kubelet-start,wait-control-plane,upload-config,"
    "upload-certs,mark-control-plane,bootstrap-token,kubelet-finalize,addon,show-join-command"
)


def _config(name: str = "default") -> Config:
    return load_config(config_path(name))


def _names(checks: list[Check]) -> list[str]:
    return [c.name for c in checks]


def _only(check: Check) -> Outcome:
    return check.check()


@pytest.fixture
def kubelet_on_path(k8s_bin: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The real kubelet of the pinned version first on PATH (kubeinit.run passes PATH on)."""
    assert (k8s_bin / "kubelet").is_file(), f"kubelet missing from {k8s_bin}"
    monkeypatch.setenv("PATH", f"{k8s_bin}:{os.environ['PATH']}")
    return k8s_bin / "kubelet"


# --- the profile ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ALL_CONFIGS)
@pytest.mark.parametrize("target", list(Target), ids=lambda t: t.value)
def test_profile_round_trips_through_json(name: str, target: Target) -> None:
    profile = profile_for(_config(name), target)
    text = profile.to_json()
    assert Profile.from_json(text) == profile
    assert '"schema": 1' in text


@pytest.mark.parametrize(
    "text",
    [
        '{"schema": 2, "preflight": {}}',
        '{"preflight": {}}',
        "not json",
        "[]",
        '{"schema": 1, "preflight": {"target": "node", "bogus": 1}}',
        '{"schema": 1, "preflight": {"target": "nowhere"}}',
    ],
    ids=["newer-schema", "no-schema", "not-json", "not-an-object", "unknown-field", "bad-enum"],
)
def test_profile_from_json_rejects_what_it_cannot_read(text: str) -> None:
    with pytest.raises(StateUnreadable) as e:
        Profile.from_json(text, source="profile.json")
    assert e.value.exit_code == ExitCode.STATE_UNREADABLE
    assert e.value.message.startswith("profile.json: ")
    assert "\n" not in e.value.message


def test_profile_follows_the_config() -> None:
    cfg = _config("extra-sans-args")
    p = profile_for(cfg, Target.NODE)
    assert p.local_etcd_data_dir == "/data/etcd"
    assert p.controller_manager_bind_address == "0.0.0.0"  # extraArgs bind-address
    assert p.kubeadm_version == p.kubernetes_version == "v1.37.2"
    assert not profile_for(_config("v1-36"), Target.NODE).port_addresses  # 1.36: no addresses
    assert p.port_addresses
    assert profile_for(_config("custom-network"), Target.NODE).pod_subnets == ("10.244.0.0/16",)
    assert p.pod_subnets == ("",)  # strings.Split("", ",") is [""]: one empty CIDR check


@pytest.mark.real
@pytest.mark.parametrize(
    "extra",
    [
        "",
        "imageRepository: registry.example.com:5000/k8s\n",
        "dns:\n  imageRepository: dns.example.com\n  imageTag: v9.9.9\n",
        "dns:\n  disabled: true\nproxy:\n  disabled: true\n",
        "etcd:\n  local:\n    imageRepository: etcd.example.com\n    imageTag: 3.5.0-0\n",
        "etcd:\n  external:\n    endpoints: [https://10.0.0.1:2379]\n",
    ],
    ids=[
        "defaults",
        "own-registry",
        "dns-override",
        "addons-disabled",
        "etcd-override",
        "external-etcd",
    ],
)
def test_images_are_kubeadm_config_images_list(k8s_bin: Path, tmp_path: Path, extra: str) -> None:
    text = config_path("default").read_text() + extra
    cfg_file = tmp_path / "c.yaml"
    cfg_file.write_text(text)
    out = subprocess.run(
        [str(k8s_bin / "kubeadm"), "config", "images", "list", "--config", str(cfg_file)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    assert list(control_plane_images(parse_config(text))) == out


# --- names and order -----------------------------------------------------------------------

# InitNodeChecks + addCommonChecks + addIPv4Checks + the local-etcd checks, read from
# cmd/kubeadm/app/preflight/checks.go (v1.37.2) for the default configuration.
DEFAULT_ORDER = [
    "NumCPU",
    "Mem",
    "KubernetesVersion",
    "Firewalld",
    "Port-6443",
    "Port-10259",
    "Port-10257",
    "FileAvailable--etc-kubernetes-manifests-kube-apiserver.yaml",
    "FileAvailable--etc-kubernetes-manifests-kube-controller-manager.yaml",
    "FileAvailable--etc-kubernetes-manifests-kube-scheduler.yaml",
    "FileAvailable--etc-kubernetes-manifests-etcd.yaml",
    "HTTPProxy",
    "HTTPProxyCIDR",
    "HTTPProxyCIDR",
    "CRI",
    "ContainerRuntimeVersion",
    "Swap",
    "FileExisting-losetup",
    "FileExisting-mount",
    "FileExisting-cp",
    "SystemVerification",
    "Hostname",
    "KubeletVersion",
    "Service-kubelet",
    "Port-10250",
    "FileContent--proc-sys-net-ipv4-ip_forward",
    "Port-2379",
    "Port-2380",
    "DirAvailable--var-lib-etcd",
]


def test_default_checks_are_kubeadms_in_kubeadms_order(tmp_path: Path) -> None:
    checks = init_node_checks(profile_for(_config(), Target.NODE), CP1, tmp_path)
    assert _names(checks) == DEFAULT_ORDER


@pytest.mark.parametrize(
    ("cluster_yaml", "identity", "present", "absent"),
    [
        (
            "networking:\n  serviceSubnet: fd00:10:96::/112\n",
            Identity("cp1", "2001:db8::10"),
            ["FileContent--proc-sys-net-ipv6-conf-default-forwarding"],
            ["FileContent--proc-sys-net-ipv4-ip_forward"],
        ),
        (
            "networking:\n  podSubnet: 10.244.0.0/16,fd00:10:244::/56\n",
            CP1,
            [
                "FileContent--proc-sys-net-ipv4-ip_forward",
                "FileContent--proc-sys-net-ipv6-conf-default-forwarding",
            ],
            [],
        ),
        (
            "etcd:\n  external:\n    endpoints: [https://10.0.0.1:2379]\n"
            "    caFile: /etc/etcd/ca.crt\n    certFile: /etc/etcd/c.crt\n"
            "    keyFile: /etc/etcd/c.key\n",
            CP1,
            ["ExternalEtcdVersion", "ExternalEtcdClientCertificates"],
            ["Port-2379", "Port-2380", "DirAvailable--var-lib-etcd"],
        ),
        (
            "etcd:\n  local:\n    dataDir: /data/etcd\n",
            CP1,
            ["DirAvailable--data-etcd"],
            ["DirAvailable--var-lib-etcd"],
        ),
    ],
    ids=["ipv6-only", "dual-stack", "external-etcd", "custom-etcd-dir"],
)
def test_checks_depend_on_the_config(
    tmp_path: Path, cluster_yaml: str, identity: Identity, present: list[str], absent: list[str]
) -> None:
    text = (
        config_path("default")
        .read_text()
        .replace("advertiseAddress: 192.0.2.10", f"advertiseAddress: {identity.advertise_address}")
    )
    cfg = parse_config(text + cluster_yaml)
    names = _names(init_node_checks(profile_for(cfg, Target.NODE), identity, tmp_path))
    for n in present:
        assert n in names
    for n in absent:
        assert n not in names
    if "ExternalEtcdClientCertificates" in present:
        assert names.count("ExternalEtcdClientCertificates") == 3
        # external etcd: the version check comes right after the IPv4 content check
        assert (
            names.index("ExternalEtcdVersion")
            == names.index("FileContent--proc-sys-net-ipv4-ip_forward") + 1
        )


# --- files under the root ------------------------------------------------------------------


def _write(root: Path, node_path: str, data: str = "x") -> Path:
    p = root / node_path.lstrip("/")
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(data)
    return p


@pytest.mark.parametrize(
    ("setup", "errors"),
    [
        (lambda r: None, []),
        (lambda r: _write(r, "/etc/kubernetes/manifests/etcd.yaml"), ["{p} already exists"]),
        (lambda r: (r / "etc/kubernetes/manifests").mkdir(parents=True), []),
        (
            lambda r: (
                (r / "etc/kubernetes/manifests").mkdir(parents=True),
                (r / "etc/kubernetes/manifests/etcd.yaml").symlink_to("/nonexistent"),
            ),
            [],
        ),
    ],
    ids=[
        "absent-passes",
        "existing-manifest-errors",
        "empty-dir-passes",
        "dangling-symlink-passes",
    ],
)
def test_file_available(tmp_path: Path, setup, errors: list[str]) -> None:
    setup(tmp_path)
    check = file_available("/etc/kubernetes/manifests/etcd.yaml", tmp_path)
    assert check.name == "FileAvailable--etc-kubernetes-manifests-etcd.yaml"
    p = tmp_path / "etc/kubernetes/manifests/etcd.yaml"
    assert _only(check) == ([], [e.format(p=p) for e in errors])


@pytest.mark.parametrize(
    ("setup", "errors"),
    [
        (lambda r: None, []),
        (lambda r: (r / "var/lib/etcd").mkdir(parents=True), []),
        (lambda r: _write(r, "/var/lib/etcd/member/snap/db"), ["{p} is not empty"]),
        (lambda r: _write(r, "/var/lib/etcd/.hidden"), ["{p} is not empty"]),
    ],
    ids=["absent-passes", "empty-passes", "etcd-data-errors", "hidden-file-errors"],
)
def test_dir_available(tmp_path: Path, setup, errors: list[str]) -> None:
    setup(tmp_path)
    check = dir_available("/var/lib/etcd", tmp_path)
    assert check.name == "DirAvailable--var-lib-etcd"
    assert _only(check) == ([], [e.format(p=tmp_path / "var/lib/etcd") for e in errors])


@pytest.mark.parametrize(
    ("content", "errors"),
    [
        ("1", []),
        ("1\n", []),  # kubeadm reads len("1") bytes only
        ("0\n", ["{p} contents are not set to 1"]),
        (None, ["{p} does not exist"]),
    ],
    ids=["one", "one-newline", "zero-errors", "missing-errors"],
)
def test_file_content(tmp_path: Path, content: str | None, errors: list[str]) -> None:
    node = "/proc/sys/net/ipv4/ip_forward"
    if content is not None:
        _write(tmp_path, node, content)
    check = file_content(node, b"1", tmp_path)
    assert check.name == "FileContent--proc-sys-net-ipv4-ip_forward"
    assert _only(check) == ([], [e.format(p=tmp_path / node.lstrip("/")) for e in errors])


# --- the live machine -----------------------------------------------------------------------


def _listener(host: str = "127.0.0.1") -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((host, 0))
    s.listen(1)
    return s


def test_port_bound_by_the_test_is_an_error_and_free_again_after() -> None:
    s = _listener()
    port = s.getsockname()[1]
    try:
        assert port_open(port).name == f"Port-{port}"
        assert _only(port_open(port)) == ([], [f"Port {port} is in use"])
        assert _only(port_open(port, "127.0.0.1")) == ([], [f"Port {port} is in use"])
    finally:
        s.close()
    assert _only(port_open(port)) == ([], [])


def test_bind_port_from_the_config_is_checked(tmp_path: Path) -> None:
    s = _listener()
    port = s.getsockname()[1]
    try:
        text = (
            config_path("default")
            .read_text()
            .replace(
                "advertiseAddress: 192.0.2.10", f"advertiseAddress: 192.0.2.10\n  bindPort: {port}"
            )
        )
        profile = profile_for(parse_config(text), Target.NODE)
        checks = [c for c in init_node_checks(profile, CP1, tmp_path) if c.name.startswith("Port")]
        report = run_checks(checks, target=Target.NODE, ignore=(), out=io.StringIO())
        assert (f"Port-{port}", f"Port {port} is in use") in report.errors
    finally:
        s.close()


def test_num_cpu_and_mem() -> None:
    n = len(os.sched_getaffinity(0))
    assert _only(num_cpu(n)) == ([], [])
    assert _only(num_cpu(n + 1)) == (
        [],
        [f"the number of available CPUs {n} is less than the required {n + 1}"],
    )
    assert _only(mem(1, LIVE)) == ([], [])


@pytest.mark.parametrize(
    ("meminfo", "errors"),
    [
        (
            "MemTotal:        1048576 kB\nMemFree: 1 kB\n",
            ["the system RAM (1024 MB) is less than the minimum 1700 MB"],
        ),
        ("MemTotal:        1740800 kB\n", []),  # exactly 1700 MB
        (
            "MemTotal:        1740799 kB\n",
            ["the system RAM (1699 MB) is less than the minimum 1700 MB"],
        ),
    ],
    ids=["1GiB-errors", "1700MB-passes", "just-below-errors"],
)
def test_mem_on_a_prepared_host(tmp_path: Path, meminfo: str, errors: list[str]) -> None:
    _write(tmp_path, "/proc/meminfo", meminfo)
    assert _only(mem(1700, Host(tmp_path))) == ([], errors)


@pytest.mark.parametrize(
    ("swaps", "warns"),
    [
        (None, 0),
        ("Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n", 0),
        ("Filename\tType\tSize\tUsed\tPriority\n/swapfile file 1024 0 -2\n", 1),
    ],
    ids=["no-proc-swaps", "no-swap", "swap-on-warns"],
)
def test_swap_is_a_warning_never_an_error(tmp_path: Path, swaps: str | None, warns: int) -> None:
    if swaps is not None:
        _write(tmp_path, "/proc/swaps", swaps)
    w, e = _only(swap(Host(tmp_path)))
    assert e == []
    assert len(w) == warns
    if warns:
        assert w[0].startswith("swap is supported for cgroup v2 only.")


@pytest.mark.parametrize(
    ("k8s", "warns"),
    [("v1.37.2", 0), ("v1.37.9", 0), ("v1.38.0-alpha.0", 1), ("v1.38.0", 1), ("v1.36.3", 0)],
    ids=["same", "newer-patch", "next-minor-prerelease", "next-minor", "older-minor"],
)
def test_kubernetes_version_check(k8s: str, warns: int) -> None:
    w, e = _only(kubernetes_version_check("v1.37.2", k8s))
    assert e == []
    assert len(w) == warns
    if warns:
        assert w[0].endswith("Kubeadm version: 1.37.x")


@pytest.mark.real
@pytest.mark.parametrize(
    ("kubeadm", "k8s", "error"),
    [
        ("v1.37.2", "v1.37.2", ""),
        ("v1.37.2", "v1.36.3", "the kubelet version is higher than the control plane version"),
        ("v1.41.0", "v1.41.0", 'Kubelet version "1.37.2" is lower than kubeadm can support'),
        ("v1.40.0", "v1.40.0", ""),  # MinimumKubeletVersion is three minors back
    ],
    ids=["match", "kubelet-newer-than-control-plane", "kubelet-too-old", "three-minors-skew"],
)
def test_kubelet_version_with_the_real_kubelet(
    kubelet_on_path: Path, kubeadm: str, k8s: str, error: str
) -> None:
    w, e = _only(kubelet_version_check(kubeadm, k8s))
    assert w == []
    if error:
        assert len(e) == 1 and e[0].startswith(error)
    else:
        assert e == []


def test_kubelet_version_without_a_kubelet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    assert _only(kubelet_version_check("v1.37.2", "v1.37.2")) == (
        [],
        [
            "couldn't get kubelet version: cannot execute 'kubelet --version': executable file not"
            " found in $PATH"
        ],
    )


def test_kubelet_version_output_that_does_not_parse(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A FAKE kubelet: a real one never prints this; it stands for a broken or foreign binary.
    fake = tmp_path / "kubelet"
    fake.write_text("#!/bin/sh\necho 'Kubernetes version one'\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")
    _, e = _only(kubelet_version_check("v1.37.2", "v1.37.2"))
    assert e == [
        "couldn't get kubelet version: Unable to parse output from Kubelet:"
        ' "Kubernetes version one"'
    ]


def test_hostname_check() -> None:
    assert _only(hostname_check("localhost")) == ([], [])
    w, e = _only(hostname_check("no-such-host.invalid"))
    assert e == []
    assert w[0] == 'hostname "no-such-host.invalid" could not be reached'
    assert w[1].startswith('hostname "no-such-host.invalid": lookup no-such-host.invalid')
    long = "a" * 64
    w, _ = _only(hostname_check(long))
    assert w[0] == f'invalid node name format "{long}": name part must be no more than 63 bytes'


@pytest.mark.parametrize(
    ("env", "host", "proxied"),
    [
        ({}, "192.0.2.10", False),
        ({"HTTPS_PROXY": "http://proxy:3128"}, "192.0.2.10", True),
        ({"https_proxy": "proxy:3128"}, "192.0.2.10", True),
        ({"HTTP_PROXY": "http://proxy:3128"}, "192.0.2.10", False),  # https only
        ({"HTTPS_PROXY": "http://proxy:3128", "NO_PROXY": "192.0.2.0/24"}, "192.0.2.10", False),
        ({"HTTPS_PROXY": "http://proxy:3128", "no_proxy": "192.0.2.10"}, "192.0.2.10", False),
        ({"HTTPS_PROXY": "http://proxy:3128", "NO_PROXY": "*"}, "192.0.2.10", False),
        ({"HTTPS_PROXY": "http://proxy:3128", "NO_PROXY": "192.0.2.11"}, "192.0.2.10", True),
        ({"HTTPS_PROXY": "http://proxy:3128"}, "127.0.0.1", False),  # loopback never proxied
        (
            {"HTTPS_PROXY": "http://proxy:3128", "NO_PROXY": ".example.com"},
            "api.example.com",
            False,
        ),
        ({"HTTPS_PROXY": "http://proxy:3128", "NO_PROXY": "example.com"}, "example.com", False),
        ({"HTTPS_PROXY": "http://proxy:3128", "NO_PROXY": "example.com"}, "badexample.com", True),
    ],
    ids=[
        "no-proxy-env",
        "https-proxy",
        "lowercase-no-scheme",
        "http-proxy-only",
        "no-proxy-cidr",
        "no-proxy-ip",
        "no-proxy-star",
        "other-ip",
        "loopback",
        "domain-suffix",
        "domain-exact",
        "domain-not-suffix",
    ],
)
def test_https_proxy_for(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], host: str, proxied: bool
) -> None:
    for k in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(k, raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    assert (https_proxy_for(host, "443") is not None) is proxied


def test_proxy_checks_warn(monkeypatch: pytest.MonkeyPatch) -> None:
    for k in ("NO_PROXY", "no_proxy", "https_proxy"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy:3128")
    assert _only(http_proxy_check("192.0.2.10")) == (
        [
            'Connection to "https://192.0.2.10" uses proxy "http://proxy:3128". If that is not'
            " intended, adjust your proxy settings"
        ],
        [],
    )
    w, e = _only(http_proxy_cidr_check("10.96.0.0/12"))
    assert e == [] and w[0].startswith('connection to "10.96.0.0/12" uses proxy')
    monkeypatch.setenv("NO_PROXY", "10.96.0.0/12,192.0.2.10")
    assert _only(http_proxy_cidr_check("10.96.0.0/12")) == ([], [])
    assert _only(http_proxy_check("192.0.2.10")) == ([], [])
    assert _only(http_proxy_cidr_check("")) == ([], [])


def test_services_without_an_init_system(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no systemctl: kubeadm's GetInitSystem fails
    assert _only(service_check("kubelet")) == (
        ["no supported init system detected, skipping checking for services"],
        [],
    )


# --- SystemVerification on prepared hosts ----------------------------------------------------

_KCONFIG_NAMES = """
    NAMESPACES NET_NS PID_NS IPC_NS UTS_NS CPUSETS MEMCG INET EXT4_FS PROC_FS
    NETFILTER_XT_TARGET_REDIRECT NETFILTER_XT_MATCH_COMMENT FAIR_GROUP_SCHED CGROUPS CGROUP_BPF
    CGROUP_PIDS CGROUP_SCHED CGROUP_CPUACCT CGROUP_DEVICE CGROUP_FREEZER OVERLAY_FS AUFS_FS
    BLK_DEV_DM CFS_BANDWIDTH SECCOMP SECCOMP_FILTER CGROUP_HUGETLB
"""
KCONFIG_OK = (
    "".join(f"CONFIG_{n}=y\n" for n in _KCONFIG_NAMES.split()) + "# CONFIG_FOO is not set\n"
)


NO_FREEZER = "missing required cgroups: freezer"
V1_ALL = "cpu cpuacct cpuset devices freezer memory pids hugetlb blkio"


def _host(
    root: Path,
    *,
    release: str = "6.1.0-56-amd64",
    ostype: str = "Linux",
    kconfig: str = KCONFIG_OK,
    v2: bool = True,
    controllers: str = "cpuset cpu io memory hugetlb pids rdma misc",
) -> Host:
    _write(root, "/proc/sys/kernel/osrelease", release + "\n")
    _write(root, "/proc/sys/kernel/ostype", ostype + "\n")
    _write(root, f"/boot/config-{release}", kconfig)
    if v2:
        _write(root, "/proc/mounts", "cgroup2 /sys/fs/cgroup cgroup2 rw,nosuid 0 0\n")
        _write(root, "/sys/fs/cgroup/cgroup.controllers", controllers + "\n")
    else:
        _write(
            root,
            "/proc/mounts",
            "tmpfs /sys/fs/cgroup tmpfs rw 0 0\n"
            "cgroup /sys/fs/cgroup/memory cgroup rw,memory 0 0\n",
        )
        (root / "sys/fs/cgroup/memory").mkdir(parents=True)
        _write(
            root,
            "/proc/cgroups",
            "#subsys_name\thierarchy\tnum_cgroups\tenabled\n"
            + "".join(f"{c}\t1\t1\t1\n" for c in controllers.split()),
        )
    return Host(root)


@pytest.mark.real
@pytest.mark.parametrize(
    ("host_args", "warns", "errors"),
    [
        # A plain directory is no cgroupfs: the child made by the freezer probe has no
        # cgroup.freeze, so the freezer counts as missing (a required v2 controller).
        ({}, [], [NO_FREEZER]),
        (
            {"controllers": "cpuset cpu memory pids"},
            ["missing optional cgroups: hugetlb io"],
            [NO_FREEZER],
        ),
        ({"release": "4.19.0"}, ["kernel release 4.19.0 is unsupported."], [NO_FREEZER]),
        ({"ostype": "FreeBSD"}, [], ["unsupported operating system: FreeBSD", NO_FREEZER]),
        (
            {"kconfig": KCONFIG_OK.replace("CONFIG_MEMCG=y", "CONFIG_MEMCG=n")},
            [],
            ["unexpected kernel config: CONFIG_MEMCG", NO_FREEZER],
        ),
        (
            {"kconfig": KCONFIG_OK.replace("CONFIG_NETFILTER_XT_TARGET_REDIRECT=y\n", "")},
            [],
            ["unexpected kernel config: CONFIG_IP_NF_TARGET_REDIRECT", NO_FREEZER],
        ),  # the last alias tried
        (
            {"kconfig": KCONFIG_OK.replace("CONFIG_SECCOMP=y", "CONFIG_SECCOMP=n")},
            [],
            [NO_FREEZER],
        ),
        (
            {
                "v2": False,
                "kconfig": KCONFIG_OK.replace("CONFIG_CGROUP_DEVICE=y", ""),
                "controllers": V1_ALL,
            },
            [],
            ["unexpected kernel config: CONFIG_CGROUP_DEVICE", "cgroups v1 support is deprecated"],
        ),
        (
            {
                "v2": False,
                "controllers": "cpu cpuacct cpuset devices freezer memory pids hugetlb blkio",
            },
            [],
            ["cgroups v1 support is deprecated"],
        ),
        (
            {"v2": False, "controllers": "cpu cpuacct cpuset devices memory hugetlb blkio"},
            [],
            ["missing required cgroups: freezer pids"],
        ),
    ],
    ids=[
        "v2-without-freezer",
        "v2-optional-missing-warns",
        "old-kernel-warns",
        "not-linux",
        "memcg-disabled",
        "redirect-alias",
        "optional-seccomp-only-reported",
        "v1-needs-cgroup-device-config",
        "cgroup-v1-is-an-error-for-kubelet-1.35+",
        "missing-required-replaces-v1-error",
    ],
)
def test_system_verification(
    kubelet_on_path: Path,
    tmp_path: Path,
    host_args: dict[str, object],
    warns: list[str],
    errors: list[str],
) -> None:
    host = _host(tmp_path, **host_args)  # type: ignore[arg-type]
    w, e = _only(system_verification_check(host))
    assert len(e) == len(errors), e
    for got, want in zip(e, errors, strict=True):
        assert got.startswith(want)
    for want in warns:
        assert any(x.startswith(want) for x in w), w
    # the freezer probe removed its directory again
    assert not list((tmp_path / "sys/fs/cgroup").glob("freezer-test*"))


# --- running, ignoring, failing -------------------------------------------------------------


def _fixed(name: str, warnings: list[str], errors: list[str], live: bool = False) -> Check:
    return Check(name, lambda: (list(warnings), list(errors)), live=live)


@pytest.mark.parametrize(
    ("ignore", "n_errors", "n_warnings"),
    [
        ((), 2, 1),
        (("Port-6443",), 1, 2),
        (("port-6443",), 1, 2),  # case-insensitive
        (("PORT-6443", "FileAvailable--etc-kubernetes-manifests-etcd.yaml"), 0, 3),
        (("all",), 0, 3),
        (("ALL",), 0, 3),
        (("NoSuchCheck",), 2, 1),  # unknown names are fine, as in kubeadm
    ],
    ids=["none", "one", "lower-case", "both", "all", "ALL", "unknown-name"],
)
def test_ignore_turns_errors_into_warnings(
    ignore: tuple[str, ...], n_errors: int, n_warnings: int
) -> None:
    checks = [
        _fixed("Port-6443", [], ["Port 6443 is in use"]),
        _fixed("Swap", ["swap is on"], []),
        _fixed("FileAvailable--etc-kubernetes-manifests-etcd.yaml", [], ["exists"]),
    ]
    out = io.StringIO()
    report = run_checks(checks, target=Target.NODE, ignore=ignore, out=out)
    assert (len(report.errors), len(report.warnings)) == (n_errors, n_warnings)
    assert out.getvalue().count("[ERROR ") == n_errors
    assert out.getvalue().count("[WARNING ") == n_warnings
    if n_errors:
        with pytest.raises(PhaseFailed) as e:
            raise_for(report)
        names = [n for n, _ in report.errors]
        assert "\n" not in e.value.message
        for n in names:
            assert n in e.value.message
        assert e.value.hint == "fix them or pass --ignore-preflight-errors=" + ",".join(names)
    else:
        raise_for(report)


def test_image_target_runs_only_file_and_config_checks(tmp_path: Path) -> None:
    profile = profile_for(_config(), Target.IMAGE)
    out = io.StringIO()
    report = run_preflight(profile, CP1, tmp_path, out=out)
    assert report.ran == [
        "KubernetesVersion",
        "FileAvailable--etc-kubernetes-manifests-kube-apiserver.yaml",
        "FileAvailable--etc-kubernetes-manifests-kube-controller-manager.yaml",
        "FileAvailable--etc-kubernetes-manifests-kube-scheduler.yaml",
        "FileAvailable--etc-kubernetes-manifests-etcd.yaml",
        "DirAvailable--var-lib-etcd",
    ]
    assert report.not_applicable == [
        "IsPrivilegedUser",
        *(n for n in dict.fromkeys(DEFAULT_ORDER) if n not in report.ran),
        "ImagePull",
    ]
    assert report.errors == report.warnings == []
    _write(tmp_path, "/var/lib/etcd/member/wal/0.wal")
    with pytest.raises(PhaseFailed) as e:
        run_preflight(profile, CP1, tmp_path, out=out)
    assert "DirAvailable--var-lib-etcd" in e.value.message


def test_node_target_fails_on_this_machine_and_all_makes_it_pass(tmp_path: Path) -> None:
    profile = profile_for(_config(), Target.NODE)
    _write(tmp_path, "/etc/kubernetes/manifests/kube-apiserver.yaml")
    out = io.StringIO()
    with pytest.raises(PhaseFailed) as e:
        run_preflight(profile, CP1, tmp_path, out=out)
    assert "FileAvailable--etc-kubernetes-manifests-kube-apiserver.yaml" in e.value.message
    report = run_preflight(profile, CP1, tmp_path, out=io.StringIO(), ignore=["all"])
    assert report.errors == []
    assert (
        "FileAvailable--etc-kubernetes-manifests-kube-apiserver.yaml",
        f"{tmp_path}/etc/kubernetes/manifests/kube-apiserver.yaml already exists",
    ) in report.warnings
    assert "ImagePull" in report.ran  # the third stage ran because the second passed


def test_not_root_fails_fast_before_the_node_checks(tmp_path: Path) -> None:
    script = textwrap.dedent(f"""
        import io, sys
        from pathlib import Path
        from kubeinit.config import load_config
        from kubeinit.errors import PhaseFailed
        from kubeinit.identity import Identity
        from kubeinit.preflight import Target, profile_for, run_preflight
        p = profile_for(load_config(Path({str(config_path("default"))!r})), Target.NODE)
        try:
            run_preflight(p, Identity("cp1", "192.0.2.10"), Path({str(tmp_path)!r}),
                          out=sys.stdout)
        except PhaseFailed as e:
            print("FAILED:", e.message)
    """)
    res = subprocess.run(
        [
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            sys.executable,
            "-c",
            script,
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines() == [
        "[preflight] [ERROR IsPrivilegedUser]: user is not running as root",
        "FAILED: 1 preflight check failed: [IsPrivilegedUser] user is not running as root",
    ]


# --- the oracle: real kubeadm's preflight on this machine -----------------------------------

_LINE = re.compile(r"^\s*(?:\[preflight\] )?\[(WARNING|ERROR) ([^\]]+)\]: (.*)$")


@pytest.mark.real
@pytest.mark.slow
def test_same_checks_fire_as_real_kubeadm(k8s_bin: Path, tmp_path: Path) -> None:
    """Real kubeadm v1.37.2 runs `init --dry-run` (preflight only, every error ignored) in an
    empty network namespace without an init system (hack/kubeadm-oracle); kubeinit runs its
    checks in an empty network namespace with systemctl, kubelet and crictl off PATH. The
    checks that fire, their order, and kubeadm's wording must agree."""
    out = tmp_path / "oracle"
    subprocess.run(
        [
            str(REPO / "hack/kubeadm-oracle"),
            "--kubeadm",
            str(k8s_bin / "kubeadm"),
            "--config",
            str(config_path("default")),
            "--out",
            str(out),
            "--dry-run",
            "--",
            "--ignore-preflight-errors=all",
            f"--skip-phases={ALL_PHASES_BUT_PREFLIGHT}",
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    theirs = [
        m.groups()[1:] for ln in (out / "0.err").read_text().splitlines() if (m := _LINE.match(ln))
    ]
    assert theirs, "kubeadm printed no preflight warnings"

    bindir = tmp_path / "bin"
    bindir.mkdir()
    for tool in ("losetup", "mount", "cp", "modprobe"):
        found = subprocess.run(
            ["sh", "-c", f"command -v {tool}"], capture_output=True, text=True, check=True
        ).stdout.strip()
        (bindir / tool).symlink_to(found)
    root = tmp_path / "root"
    root.mkdir()
    # FileContent reads <root>/proc/sys: this netns's. A bind mount, not a link: links under a
    # root are resolved inside it (an absolute /proc link would point at <root>/proc itself).
    (root / "proc").mkdir()
    script = textwrap.dedent(f"""
        import io, sys
        from pathlib import Path
        from kubeinit.config import load_config
        from kubeinit.identity import Identity
        from kubeinit.preflight import Target, profile_for, run_preflight
        p = profile_for(load_config(Path({str(config_path("default"))!r})), Target.NODE)
        # the dry run skips the image stage: stop before it, as kubeadm --dry-run does
        from kubeinit import preflight
        checks = preflight.init_node_checks(p, Identity("cp1", "192.0.2.10"), Path({str(root)!r}))
        preflight.run_checks(checks, target=Target.NODE, ignore=["all"], out=sys.stdout)
    """)
    res = subprocess.run(
        [
            shutil.which("unshare") or "unshare",
            "--net",
            "--mount",
            "--",
            "/bin/sh",
            "-c",
            '/bin/mount --bind /proc "$0" && exec "$@"',
            str(root / "proc"),
            sys.executable,
            "-c",
            script,
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=True,
        env={"PATH": str(bindir), "PYTHONPATH": str(REPO), "LANG": "C.UTF-8"},
    )
    ours = [m.groups()[1:] for ln in res.stdout.splitlines() if (m := _LINE.match(ln))]
    assert [n for n, _ in ours] == [n for n, _ in theirs]
    # Same wording, except where the cause is told by a different client (gRPC versus
    # crictl; Go's resolver versus getaddrinfo) or the path is under kubeinit's root.
    for (name, text), (_, kubeadm) in zip(ours, theirs, strict=True):
        mine = text.replace(str(root), "")
        if name in ("CRI", "ContainerRuntimeVersion"):
            prefix = "could not connect to the container runtime: "
            assert mine.startswith(prefix) and kubeadm.startswith(prefix)
        elif name == "Hostname" and kubeadm.startswith('hostname "cp1": lookup cp1'):
            assert mine.startswith('hostname "cp1": lookup cp1')
        else:
            assert mine == kubeadm, name


# --- the container runtime: a real containerd, images imported with its own ctr --------------


def _docker_archive(path: Path, tags: list[str]) -> None:
    """A minimal docker-archive image (one tiny layer) carrying `tags`: stands in for the
    preloaded archives; the CRI only needs the names to resolve."""

    def tar(files: dict[str, bytes]) -> bytes:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as t:
            for name, data in files.items():
                info = tarfile.TarInfo(name)
                info.size = len(data)
                t.addfile(info, io.BytesIO(data))
        return buf.getvalue()

    layer = tar({"hello": b"hi\n"})
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {},
            "rootfs": {
                "type": "layers",
                "diff_ids": ["sha256:" + hashlib.sha256(layer).hexdigest()],
            },
        }
    )
    manifest = json.dumps([{"Config": "config.json", "RepoTags": tags, "Layers": ["l.tar"]}])
    path.write_bytes(
        tar({"manifest.json": manifest.encode(), "config.json": config.encode(), "l.tar": layer})
    )


@pytest.fixture
def containerd(k8s_bin: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A real containerd (the pinned one from hack/k8s-binaries) on a private socket, with
    crictl and ctr on PATH. Yields the CRI endpoint."""
    for tool in ("containerd", "crictl", "ctr"):
        assert (k8s_bin / tool).is_file(), f"{tool} missing from {k8s_bin}"
    monkeypatch.setenv("PATH", f"{k8s_bin}:{os.environ['PATH']}")
    d = Path(tempfile.mkdtemp(prefix="ctrd.", dir="/tmp"))  # unix sockets: short paths
    sock = d / "c.sock"
    (d / "config.toml").write_text(
        textwrap.dedent(f"""\
        version = 3
        root = "{d}/root"
        state = "{d}/state"
        [grpc]
          address = "{sock}"
        [ttrpc]
          address = "{sock}.ttrpc"
        [plugins.'io.containerd.cri.v1.images']
          snapshotter = "native"
        """)
    )
    log = (d / "log").open("w")
    proc = subprocess.Popen(
        [str(k8s_bin / "containerd"), "--config", str(d / "config.toml")],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        endpoint = f"unix://{sock}"
        while (
            subprocess.run(
                [str(k8s_bin / "crictl"), "-r", endpoint, "-i", endpoint, "info", "-q"],
                capture_output=True,
                check=False,
            ).returncode
            != 0
        ):
            assert proc.poll() is None, (d / "log").read_text()
            assert time.monotonic() < deadline, "containerd did not come up"
            time.sleep(0.2)
        yield endpoint
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()
        shutil.rmtree(d, ignore_errors=True)


def _import(k8s_bin: Path, endpoint: str, tmp_path: Path, tags: list[str]) -> None:
    archive = tmp_path / "images.tar"
    _docker_archive(archive, tags)
    subprocess.run(
        [
            str(k8s_bin / "ctr"),
            "-a",
            endpoint.removeprefix("unix://"),
            "-n",
            "k8s.io",
            "images",
            "import",
            "--no-unpack",
            str(archive),
        ],
        check=True,
        capture_output=True,
    )


@pytest.mark.real
def test_cri_checks_against_a_real_containerd(containerd: str) -> None:
    assert _only(cri_check(containerd)) == ([], [])
    # containerd 2.x implements RuntimeConfig: no warning
    assert _only(cri_version_check(containerd)) == ([], [])


@pytest.mark.real
def test_image_pull_lists_missing_images_and_passes_once_preloaded(
    containerd: str, k8s_bin: Path, tmp_path: Path
) -> None:
    images = list(control_plane_images(_config()))
    check = image_pull_check(containerd, images, "IfNotPresent")
    _, e = _only(check)
    assert len(e) == 1 and e[0].startswith(f"{len(images)} of {len(images)} images are missing")
    assert all(i in e[0] for i in images)
    _import(k8s_bin, containerd, tmp_path, images[:-2])
    _, e = _only(check)
    assert e == [
        f"2 of {len(images)} images are missing from the container runtime (they are"
        " preloaded into the image, never pulled): " + ", ".join(images[-2:])
    ]
    _import(k8s_bin, containerd, tmp_path, images[-2:])
    assert _only(check) == ([], [])


@pytest.mark.real
def test_cri_unreachable_is_an_error_and_never_policy_skips(
    k8s_bin: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", f"{k8s_bin}:{os.environ['PATH']}")
    endpoint = f"unix://{tmp_path}/none.sock"
    _, e = _only(cri_check(endpoint))
    assert len(e) == 1 and e[0].startswith("could not connect to the container runtime: ")
    _, e = _only(image_pull_check(endpoint, ["registry.k8s.io/pause:3.10.2"], "IfNotPresent"))
    assert len(e) == 1 and e[0].startswith("could not connect to the container runtime: ")
    # kubeadm returns before touching the runtime with imagePullPolicy Never
    assert _only(image_pull_check(endpoint, ["registry.k8s.io/pause:3.10.2"], "Never")) == ([], [])
    monkeypatch.setenv("PATH", str(tmp_path))
    _, e = _only(cri_check(endpoint))
    assert e == [
        "could not connect to the container runtime: crictl: executable file not found in $PATH"
    ]


# --- external etcd: real etcd servers ------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _etcd_version_outcome(etcd: str, tmp_path: Path) -> Outcome:
    client, peer = _free_port(), _free_port()
    url = f"http://127.0.0.1:{client}"
    proc = subprocess.Popen(
        [
            etcd,
            "--data-dir",
            str(tmp_path / "etcd"),
            "--listen-client-urls",
            url,
            "--advertise-client-urls",
            url,
            "--listen-peer-urls",
            f"http://127.0.0.1:{peer}",
            "--initial-advertise-peer-urls",
            f"http://127.0.0.1:{peer}",
            "--initial-cluster",
            f"default=http://127.0.0.1:{peer}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", client)) == 0:
                    break
            assert proc.poll() is None and time.monotonic() < deadline, "etcd did not start"
            time.sleep(0.1)
        return _only(external_etcd_version_check([url], tmp_path, retries=3, interval=0.5))
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.mark.real
def test_external_etcd_older_than_kubeadm_supports(tool, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    w, e = _etcd_version_outcome(tool("etcd"), tmp_path)  # Debian's etcd-server 3.4
    assert w == []
    assert len(e) == 1 and e[0].startswith(
        "this version of kubeadm only supports external etcd version >= 3.5.24-0. Current"
        " version: 3.4."
    )


@pytest.mark.real
def test_external_etcd_of_the_pinned_version_passes(k8s_bin: Path, tmp_path: Path) -> None:
    assert _etcd_version_outcome(str(k8s_bin / "etcd"), tmp_path) == ([], [])


def test_external_etcd_unreachable(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{_free_port()}"
    w, e = _only(external_etcd_version_check([url], tmp_path, retries=1, interval=0.1))
    assert w == [] and len(e) == 1 and e[0].startswith(f'Get "{url}/version": ')
    missing = external_etcd_version_check([url], tmp_path, ca_file="/etc/etcd/ca.crt")
    _, e = _only(missing)
    assert e[0].startswith(f"couldn't load external etcd's server certificate {tmp_path}/etc/etcd")
