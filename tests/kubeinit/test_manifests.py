"""kubeinit/manifests.py and kubeinit/flags.py: the static Pods, parsed, against facts read in
kubeadm's source (cmd/kubeadm/app at v1.37.2, v1.36.3, v1.35.4):
phases/controlplane/{manifests,volumes}.go, phases/etcd/local.go, util/staticpod/utils.go,
util/arguments.go, util/env.go. Every expected value below is written out from that source,
never produced by kubeinit. The byte-for-byte comparison with the real kubeadm binary lives in
tests/oracle."""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from kubeinit import manifests
from kubeinit.config import Config, ExternalEtcd, load_config, parse_config
from kubeinit.errors import InvalidInput
from kubeinit.identity import Identity, resolve_identity
from tests.conftest import config_path

PKI = "/etc/kubernetes/pki"

# manifests.go getAPIServerCommand defaults, sorted by name (util/arguments.go), for
# tests/data/configs/default.yaml (advertise 192.0.2.10, bindPort 6443, defaults otherwise).
DEFAULT_APISERVER_COMMAND = [
    "kube-apiserver",
    "--advertise-address=192.0.2.10",
    "--allow-privileged=true",
    "--authorization-mode=Node,RBAC",
    f"--client-ca-file={PKI}/ca.crt",
    "--enable-admission-plugins=NodeRestriction",
    "--enable-bootstrap-token-auth=true",
    f"--etcd-cafile={PKI}/etcd/ca.crt",
    f"--etcd-certfile={PKI}/apiserver-etcd-client.crt",
    f"--etcd-keyfile={PKI}/apiserver-etcd-client.key",
    "--etcd-servers=https://127.0.0.1:2379",
    f"--kubelet-client-certificate={PKI}/apiserver-kubelet-client.crt",
    f"--kubelet-client-key={PKI}/apiserver-kubelet-client.key",
    "--kubelet-preferred-address-types=InternalIP,ExternalIP,Hostname",
    f"--proxy-client-cert-file={PKI}/front-proxy-client.crt",
    f"--proxy-client-key-file={PKI}/front-proxy-client.key",
    "--requestheader-allowed-names=front-proxy-client",
    f"--requestheader-client-ca-file={PKI}/front-proxy-ca.crt",
    "--requestheader-extra-headers-prefix=X-Remote-Extra-",
    "--requestheader-group-headers=X-Remote-Group",
    "--requestheader-username-headers=X-Remote-User",
    "--secure-port=6443",
    "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
    f"--service-account-key-file={PKI}/sa.pub",
    f"--service-account-signing-key-file={PKI}/sa.key",
    "--service-cluster-ip-range=10.96.0.0/12",
    f"--tls-cert-file={PKI}/apiserver.crt",
    f"--tls-private-key-file={PKI}/apiserver.key",
]
KCM_CONF = "/etc/kubernetes/controller-manager.conf"
DEFAULT_KCM_COMMAND = [
    "kube-controller-manager",
    f"--authentication-kubeconfig={KCM_CONF}",
    f"--authorization-kubeconfig={KCM_CONF}",
    "--bind-address=127.0.0.1",
    f"--client-ca-file={PKI}/ca.crt",
    "--cluster-name=kubernetes",
    f"--cluster-signing-cert-file={PKI}/ca.crt",
    f"--cluster-signing-key-file={PKI}/ca.key",
    "--controllers=*,bootstrapsigner,tokencleaner",
    f"--kubeconfig={KCM_CONF}",
    "--leader-elect=true",
    f"--requestheader-client-ca-file={PKI}/front-proxy-ca.crt",
    f"--root-ca-file={PKI}/ca.crt",
    f"--service-account-private-key-file={PKI}/sa.key",
    "--use-service-account-credentials=true",
]
SCHED_CONF = "/etc/kubernetes/scheduler.conf"
DEFAULT_SCHEDULER_COMMAND = [
    "kube-scheduler",
    f"--authentication-kubeconfig={SCHED_CONF}",
    f"--authorization-kubeconfig={SCHED_CONF}",
    "--bind-address=127.0.0.1",
    f"--kubeconfig={SCHED_CONF}",
    "--leader-elect=true",
]
DEFAULT_ETCD_COMMAND = [
    "etcd",
    "--advertise-client-urls=https://192.0.2.10:2379",
    f"--cert-file={PKI}/etcd/server.crt",
    "--client-cert-auth=true",
    "--data-dir=/var/lib/etcd",
    "--feature-gates=InitialCorruptCheck=true",
    "--initial-advertise-peer-urls=https://192.0.2.10:2380",
    "--initial-cluster=cp1=https://192.0.2.10:2380",
    f"--key-file={PKI}/etcd/server.key",
    "--listen-client-urls=https://127.0.0.1:2379,https://192.0.2.10:2379",
    "--listen-metrics-urls=http://127.0.0.1:2381",
    "--listen-peer-urls=https://192.0.2.10:2380",
    "--name=cp1",
    f"--peer-cert-file={PKI}/etcd/peer.crt",
    "--peer-client-cert-auth=true",
    f"--peer-key-file={PKI}/etcd/peer.key",
    f"--peer-trusted-ca-file={PKI}/etcd/ca.crt",
    "--snapshot-count=10000",
    f"--trusted-ca-file={PKI}/etcd/ca.crt",
    "--watch-progress-notify-interval=5s",
]

CLUSTER_HEAD = """\
apiVersion: kubeadm.k8s.io/v1beta4
kind: InitConfiguration
localAPIEndpoint:
  advertiseAddress: {address}
nodeRegistration:
  name: cp1
---
apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
kubernetesVersion: {version}
"""


def _config(body: str = "", *, address: str = "192.0.2.10", version: str = "v1.37.2") -> Config:
    return parse_config(CLUSTER_HEAD.format(address=address, version=version) + body)


def _named(name: str) -> tuple[Config, Identity]:
    config = load_config(config_path(name))
    return config, resolve_identity(config)


def _pods(
    config: Config, identity: Identity, root: Path, environ: dict[str, str] | None = None
) -> dict[str, dict[str, Any]]:
    rendered = manifests.render_static_pods(config, identity, root, environ or {})
    return {name: yaml.safe_load(data) for name, data in rendered.items()}


def _container(pod: dict[str, Any]) -> dict[str, Any]:
    (container,) = pod["spec"]["containers"]
    return container


def _ident(config: Config) -> Identity:
    return resolve_identity(config)


# --- flags ---------------------------------------------------------------------------------


def test_default_config_gives_kubeadms_default_commands(tmp_path: Path) -> None:
    pods = _pods(*_named("default"), tmp_path)
    assert _container(pods["kube-apiserver"])["command"] == DEFAULT_APISERVER_COMMAND
    assert _container(pods["kube-controller-manager"])["command"] == DEFAULT_KCM_COMMAND
    assert _container(pods["kube-scheduler"])["command"] == DEFAULT_SCHEDULER_COMMAND
    assert _container(pods["etcd"])["command"] == DEFAULT_ETCD_COMMAND


def test_pod_subnet_turns_on_node_cidr_allocation(tmp_path: Path) -> None:
    """custom-network.yaml: podSubnet 10.244.0.0/16, serviceSubnet 10.100.0.0/16, clusterName
    prod-east, dnsDomain k8s.example.internal, bindPort 8443."""
    pods = _pods(*_named("custom-network"), tmp_path)
    assert _container(pods["kube-controller-manager"])["command"] == [
        "kube-controller-manager",
        "--allocate-node-cidrs=true",
        f"--authentication-kubeconfig={KCM_CONF}",
        f"--authorization-kubeconfig={KCM_CONF}",
        "--bind-address=127.0.0.1",
        f"--client-ca-file={PKI}/ca.crt",
        "--cluster-cidr=10.244.0.0/16",
        "--cluster-name=prod-east",
        f"--cluster-signing-cert-file={PKI}/ca.crt",
        f"--cluster-signing-key-file={PKI}/ca.key",
        "--controllers=*,bootstrapsigner,tokencleaner",
        f"--kubeconfig={KCM_CONF}",
        "--leader-elect=true",
        f"--requestheader-client-ca-file={PKI}/front-proxy-ca.crt",
        f"--root-ca-file={PKI}/ca.crt",
        f"--service-account-private-key-file={PKI}/sa.key",
        "--service-cluster-ip-range=10.100.0.0/16",
        "--use-service-account-credentials=true",
    ]
    api = _container(pods["kube-apiserver"])["command"]
    assert "--secure-port=8443" in api
    assert "--service-cluster-ip-range=10.100.0.0/16" in api
    assert "--service-account-issuer=https://kubernetes.default.svc.k8s.example.internal" in api


def test_no_pod_subnet_means_no_cidr_flags(tmp_path: Path) -> None:
    kcm = _container(_pods(*_named("default"), tmp_path)["kube-controller-manager"])["command"]
    assert not [
        a
        for a in kcm
        if a.split("=")[0]
        in ("--allocate-node-cidrs", "--cluster-cidr", "--service-cluster-ip-range")
    ]


def test_extra_args_drop_the_default_and_follow_it_in_user_order(tmp_path: Path) -> None:
    """util/arguments.go: defaults sorted without every overridden name, then the user's
    arguments in the user's order (extra-sans-args.yaml)."""
    pods = _pods(*_named("extra-sans-args"), tmp_path)
    api = _container(pods["kube-apiserver"])["command"]
    overridden = ("--authorization-mode=", "--enable-admission-plugins=", "--advertise-address=")
    expected_head = [a for a in DEFAULT_APISERVER_COMMAND[1:] if not a.startswith(overridden)]
    assert api[1:] == [
        "--advertise-address=192.0.2.30",
        *expected_head,
        "--audit-log-maxage=7",
        "--authorization-mode=Node,RBAC,Webhook",
        "--enable-admission-plugins=NodeRestriction,PodSecurity",
    ]
    kcm = _container(pods["kube-controller-manager"])["command"]
    assert kcm[-2:] == ["--bind-address=0.0.0.0", "--node-monitor-grace-period=50s"]
    assert kcm.count("--bind-address=127.0.0.1") == 0
    assert _container(pods["kube-scheduler"])["command"][-1] == "--v=3"
    etcd = _container(pods["etcd"])["command"]
    assert etcd[-2:] == ["--quota-backend-bytes=8589934592", "--snapshot-count=5000"]
    assert "--snapshot-count=10000" not in etcd
    assert "--data-dir=/data/etcd" in etcd


def test_duplicate_extra_args_are_all_kept(tmp_path: Path) -> None:
    config = _config(
        "apiServer:\n  extraArgs:\n  - {name: feature-gates, value: A=true}\n"
        "  - {name: feature-gates, value: B=true}\n"
    )
    api = _container(_pods(config, _ident(config), tmp_path)["kube-apiserver"])["command"]
    assert api[-2:] == ["--feature-gates=A=true", "--feature-gates=B=true"]


def test_authorization_config_removes_authorization_mode(tmp_path: Path) -> None:
    config = _config(
        "apiServer:\n  extraArgs:\n  - {name: authorization-config, value: /etc/authz.yaml}\n"
    )
    api = _container(_pods(config, _ident(config), tmp_path)["kube-apiserver"])["command"]
    assert not [a for a in api if a.startswith("--authorization-mode")]
    assert api[-1] == "--authorization-config=/etc/authz.yaml"


def test_local_etcd_advertise_client_urls_become_etcd_servers(tmp_path: Path) -> None:
    config = _config(
        "etcd:\n  local:\n    extraArgs:\n"
        "    - {name: advertise-client-urls, value: 'https://10.0.0.9:2379'}\n"
    )
    api = _container(_pods(config, _ident(config), tmp_path)["kube-apiserver"])["command"]
    assert "--etcd-servers=https://10.0.0.9:2379" in api


def test_control_plane_endpoint_is_not_a_manifest_flag(tmp_path: Path) -> None:
    pods = _pods(*_named("control-plane-endpoint"), tmp_path)
    for pod in pods.values():
        assert "api.example.com" not in yaml.safe_dump(pod)
    api = _container(pods["kube-apiserver"])["command"]
    assert "--advertise-address=192.0.2.20" in api


def test_ipv6_advertise_address_uses_ipv6_loopback(tmp_path: Path) -> None:
    # kubeadm stores net.ParseIP(...).String(): lower case, compressed.
    config = _config(address="FD00:0:0::10")
    pods = _pods(config, _ident(config), tmp_path)
    api = _container(pods["kube-apiserver"])
    assert "--advertise-address=fd00::10" in api["command"]
    assert "--etcd-servers=https://[::1]:2379" in api["command"]
    assert api["livenessProbe"]["httpGet"]["host"] == "fd00::10"
    assert pods["kube-apiserver"]["metadata"]["annotations"] == {
        "kubeadm.kubernetes.io/kube-apiserver.advertise-address.endpoint": "[fd00::10]:6443"
    }
    etcd = _container(pods["etcd"])
    assert "--listen-client-urls=https://[::1]:2379,https://[fd00::10]:2379" in etcd["command"]
    assert "--listen-metrics-urls=http://[::1]:2381" in etcd["command"]
    assert "--initial-cluster=cp1=https://[fd00::10]:2380" in etcd["command"]
    assert etcd["livenessProbe"]["httpGet"]["host"] == "::1"
    assert pods["etcd"]["metadata"]["annotations"] == {
        "kubeadm.kubernetes.io/etcd.advertise-client-urls": "https://[fd00::10]:2379"
    }


def test_external_etcd_gives_apiserver_flags_volumes_and_no_etcd_pod(tmp_path: Path) -> None:
    config = _config(
        "etcd:\n  external:\n"
        "    endpoints: [https://10.0.0.1:2379, https://10.0.0.2:2379]\n"
        "    caFile: /etc/etcd/pki/ca.crt\n"
        "    certFile: /etc/etcd/pki/client/apiserver.crt\n"
        "    keyFile: /opt/keys/apiserver.key\n"
    )
    pods = _pods(config, _ident(config), tmp_path)
    assert "etcd" not in pods
    api = _container(pods["kube-apiserver"])
    assert "--etcd-servers=https://10.0.0.1:2379,https://10.0.0.2:2379" in api["command"]
    assert "--etcd-cafile=/etc/etcd/pki/ca.crt" in api["command"]
    assert "--etcd-certfile=/etc/etcd/pki/client/apiserver.crt" in api["command"]
    assert "--etcd-keyfile=/opt/keys/apiserver.key" in api["command"]
    # getEtcdCertVolumes: /etc/etcd/pki absorbs its child dir; sets.List sorts the rest.
    volumes = {v["name"]: v["hostPath"]["path"] for v in pods["kube-apiserver"]["spec"]["volumes"]}
    assert volumes["etcd-certs-0"] == "/etc/etcd/pki"
    assert volumes["etcd-certs-1"] == "/opt/keys"
    mounts = {m["name"]: m for m in api["volumeMounts"]}
    assert mounts["etcd-certs-0"] == {
        "name": "etcd-certs-0",
        "mountPath": "/etc/etcd/pki",
        "readOnly": True,
    }
    with pytest.raises(ValueError, match="external etcd"):
        manifests.render_etcd_pod(config, _ident(config))


def test_external_etcd_files_under_mounted_dirs_need_no_volume() -> None:
    ext = ExternalEtcd(
        endpoints=("https://e:2379",),
        ca_file="/etc/ssl/certs/etcd-ca.pem",
        cert_file=f"{PKI}/etcd-client.crt",
        key_file=f"{PKI}/etcd-client.key",
    )
    assert manifests.external_etcd_cert_dirs(ext, PKI) == []


def test_external_ca_empties_the_signing_flags(tmp_path: Path) -> None:
    """manifests.go: with ca.crt present and ca.key absent (UsingExternalCA), the KCM signing
    flags are passed empty so the csrsigning controller cannot start."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kubernetes")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    pki = tmp_path / "etc/kubernetes/pki"
    pki.mkdir(parents=True)
    (pki / "ca.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    config, identity = _named("default")
    kcm = _container(_pods(config, identity, tmp_path)["kube-controller-manager"])["command"]
    assert "--cluster-signing-cert-file=" in kcm
    assert "--cluster-signing-key-file=" in kcm
    (pki / "ca.key").write_text("present")
    kcm = _container(_pods(config, identity, tmp_path)["kube-controller-manager"])["command"]
    assert f"--cluster-signing-key-file={PKI}/ca.key" in kcm


# --- probes, ports, resources, annotations, the Pod wrapper -------------------------------------

# staticpod LivenessProbe/ReadinessProbe/StartupProbe: (initialDelay, timeout, failure, period);
# startup failureThreshold = ceil(controlPlaneComponentHealthCheck 4m / 10s) = 24.
LIVE = {"initialDelaySeconds": 10, "timeoutSeconds": 15, "failureThreshold": 8, "periodSeconds": 10}
READY = {"timeoutSeconds": 15, "failureThreshold": 3, "periodSeconds": 1}
START = {
    "initialDelaySeconds": 10,
    "timeoutSeconds": 15,
    "failureThreshold": 24,
    "periodSeconds": 10,
}
PROBES = {
    # component: (host, scheme, port, liveness path, readiness path or None, startup path)
    "kube-apiserver": ("192.0.2.10", "HTTPS", 6443, "/livez", "/readyz", "/livez"),
    "kube-controller-manager": ("127.0.0.1", "HTTPS", 10257, "/healthz", None, "/healthz"),
    "kube-scheduler": ("127.0.0.1", "HTTPS", 10259, "/livez", "/readyz", "/livez"),
    "etcd": ("127.0.0.1", "HTTP", 2381, "/livez", "/readyz", "/readyz"),
}


@pytest.mark.parametrize("component", list(PROBES))
def test_probes_use_the_named_probe_port(tmp_path: Path, component: str) -> None:
    host, scheme, port, live, ready, start = PROBES[component]
    container = _container(_pods(*_named("default"), tmp_path)[component])
    assert container["ports"] == [{"containerPort": port, "name": "probe-port", "protocol": "TCP"}]

    def get(path: str) -> dict[str, Any]:
        return {"host": host, "path": path, "port": "probe-port", "scheme": scheme}

    assert container["livenessProbe"] == {**LIVE, "httpGet": get(live)}
    assert container["startupProbe"] == {**START, "httpGet": get(start)}
    if ready is None:
        assert "readinessProbe" not in container
    else:
        assert container["readinessProbe"] == {**READY, "httpGet": get(ready)}


def test_probe_hosts_and_ports_follow_extra_args(tmp_path: Path) -> None:
    """staticpod: KCM/scheduler probe the --bind-address (empty host for 0.0.0.0 or ::); etcd
    the first --listen-metrics-urls (scheme, host, port); the startup threshold follows
    timeouts.controlPlaneComponentHealthCheck."""
    config = parse_config(
        CLUSTER_HEAD.format(address="192.0.2.10", version="v1.37.2").replace(
            "  name: cp1\n", "  name: cp1\ntimeouts:\n  controlPlaneComponentHealthCheck: 95s\n"
        )
        + "controllerManager:\n  extraArgs:\n  - {name: bind-address, value: '::'}\n"
        "scheduler:\n  extraArgs:\n  - {name: bind-address, value: 10.0.0.5}\n"
        "etcd:\n  local:\n    extraArgs:\n"
        "    - {name: listen-metrics-urls, value: 'https://[fd00::7]:12381,http://127.0.0.1:2381'}\n"
    )
    pods = _pods(config, _ident(config), tmp_path)
    kcm = _container(pods["kube-controller-manager"])
    assert "host" not in kcm["livenessProbe"]["httpGet"]
    assert kcm["startupProbe"]["failureThreshold"] == 10  # ceil(95 / 10)
    assert _container(pods["kube-scheduler"])["readinessProbe"]["httpGet"]["host"] == "10.0.0.5"
    etcd = _container(pods["etcd"])
    assert etcd["ports"][0]["containerPort"] == 12381
    assert etcd["livenessProbe"]["httpGet"] == {
        "host": "fd00::7",
        "path": "/livez",
        "port": "probe-port",
        "scheme": "HTTPS",
    }


def test_resources_priority_labels_and_security_context(tmp_path: Path) -> None:
    pods = _pods(*_named("default"), tmp_path)
    requests = {
        "kube-apiserver": {"cpu": "250m"},
        "kube-controller-manager": {"cpu": "200m"},
        "kube-scheduler": {"cpu": "100m"},
        "etcd": {"cpu": "100m", "memory": "100Mi"},
    }
    for name, pod in pods.items():
        assert pod["apiVersion"] == "v1" and pod["kind"] == "Pod"
        assert pod["metadata"]["name"] == name
        assert pod["metadata"]["namespace"] == "kube-system"
        assert pod["metadata"]["labels"] == {"component": name, "tier": "control-plane"}
        assert "creationTimestamp" not in pod["metadata"]  # omitzero since apimachinery v0.34
        spec = pod["spec"]
        assert spec["hostNetwork"] is True
        assert spec["priority"] == 2000001000
        assert spec["priorityClassName"] == "system-node-critical"
        assert spec["securityContext"] == {"seccompProfile": {"type": "RuntimeDefault"}}
        assert pod["status"] == {}
        container = _container(pod)
        assert container["name"] == name
        assert container["imagePullPolicy"] == "IfNotPresent"
        assert container["resources"] == {"requests": requests[name]}
        assert "env" not in container
        assert "securityContext" not in container
    assert "annotations" not in pods["kube-controller-manager"]["metadata"]
    assert "annotations" not in pods["kube-scheduler"]["metadata"]
    assert pods["kube-apiserver"]["metadata"]["annotations"] == {
        "kubeadm.kubernetes.io/kube-apiserver.advertise-address.endpoint": "192.0.2.10:6443"
    }
    assert pods["etcd"]["metadata"]["annotations"] == {
        "kubeadm.kubernetes.io/etcd.advertise-client-urls": "https://192.0.2.10:2379"
    }


def test_image_pull_policy_is_not_node_registrations(tmp_path: Path) -> None:
    """kubeadm hard-codes PullIfNotPresent in the manifests; nodeRegistration.imagePullPolicy
    only drives preflight's image pulls."""
    config = parse_config(
        CLUSTER_HEAD.format(address="192.0.2.10", version="v1.37.2").replace(
            "  name: cp1\n", "  name: cp1\n  imagePullPolicy: Never\n"
        )
    )
    for pod in _pods(config, _ident(config), tmp_path).values():
        assert _container(pod)["imagePullPolicy"] == "IfNotPresent"


# --- volumes -----------------------------------------------------------------------------------


def _volumes(pod: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {
        v["name"]: (v["hostPath"]["path"], v["hostPath"]["type"]) for v in pod["spec"]["volumes"]
    }


def _mounts(pod: dict[str, Any]) -> dict[str, tuple[str, bool]]:
    return {
        m["name"]: (m["mountPath"], m.get("readOnly", False))
        for m in _container(pod)["volumeMounts"]
    }


DOC = "DirectoryOrCreate"
FOC = "FileOrCreate"


def test_default_volumes_on_a_root_without_ca_trust_dirs(tmp_path: Path) -> None:
    pods = _pods(*_named("default"), tmp_path)
    assert _volumes(pods["kube-apiserver"]) == {
        "ca-certs": ("/etc/ssl/certs", DOC),
        "k8s-certs": (PKI, DOC),
    }
    assert _mounts(pods["kube-apiserver"]) == {
        "ca-certs": ("/etc/ssl/certs", True),
        "k8s-certs": (PKI, True),
    }
    assert _volumes(pods["kube-controller-manager"]) == {
        "ca-certs": ("/etc/ssl/certs", DOC),
        "k8s-certs": (PKI, DOC),
        "kubeconfig": (KCM_CONF, FOC),
    }
    assert _volumes(pods["kube-scheduler"]) == {"kubeconfig": (SCHED_CONF, FOC)}
    assert _mounts(pods["kube-scheduler"]) == {"kubeconfig": (SCHED_CONF, True)}
    assert _volumes(pods["etcd"]) == {
        "etcd-certs": (f"{PKI}/etcd", DOC),
        "etcd-data": ("/var/lib/etcd", DOC),
    }
    # local.go lists the mounts literally (data first), not sorted; both read-write
    assert _container(pods["etcd"])["volumeMounts"] == [
        {"mountPath": "/var/lib/etcd", "name": "etcd-data"},
        {"mountPath": f"{PKI}/etcd", "name": "etcd-certs"},
    ]
    for pod in pods.values():
        names = [v["name"] for v in pod["spec"]["volumes"]]
        assert names == sorted(names)


def test_ca_trust_dirs_that_exist_under_the_root_are_mounted(tmp_path: Path) -> None:
    """volumes.go isExtraVolumeMountNeeded: os.Stat on the target (symlinks resolved inside
    the root, as kubeadm --rootfs would see them)."""
    (tmp_path / "etc/ca-certificates").mkdir(parents=True)
    (tmp_path / "opt/trust").mkdir(parents=True)
    (tmp_path / "etc/pki").mkdir(parents=True)
    (tmp_path / "etc/pki/ca-trust").symlink_to("/opt/trust")  # absolute: resolved in the root
    (tmp_path / "etc/pki/tls").symlink_to("/nonexistent")  # dangling inside the root
    (tmp_path / "usr/local/share").mkdir(parents=True)
    (tmp_path / "usr/local/share/ca-certificates").write_text("a file counts too (os.Stat)")
    pods = _pods(*_named("default"), tmp_path)
    expected = {
        "etc-ca-certificates": "/etc/ca-certificates",
        "etc-pki-ca-trust": "/etc/pki/ca-trust",
        "usr-local-share-ca-certificates": "/usr/local/share/ca-certificates",
    }
    for component in ("kube-apiserver", "kube-controller-manager"):
        volumes, mounts = _volumes(pods[component]), _mounts(pods[component])
        for name, path in expected.items():
            assert volumes[name] == (path, DOC)
            assert mounts[name] == (path, True)
        assert "etc-pki-tls-certs" not in volumes
        assert "usr-share-ca-certificates" not in volumes
    assert "etc-ca-certificates" not in _volumes(pods["kube-scheduler"])


def test_extra_volumes_are_added_and_replace_defaults_by_name(tmp_path: Path) -> None:
    config = _config(
        "apiServer:\n  extraVolumes:\n"
        "  - {name: audit, hostPath: /var/log/audit, mountPath: /audit}\n"
        "  - {name: ca-certs, hostPath: /custom/certs, mountPath: /etc/ssl/certs,"
        " readOnly: true, pathType: Directory}\n"
    )
    pod = _pods(config, _ident(config), tmp_path)["kube-apiserver"]
    assert _volumes(pod)["audit"] == ("/var/log/audit", "")  # pathType unset: type ""
    assert _mounts(pod)["audit"] == ("/audit", False)
    assert _volumes(pod)["ca-certs"] == ("/custom/certs", "Directory")


def test_v1_35_mounts_the_flexvolume_dir_read_write(tmp_path: Path) -> None:
    """volumes.go at v1.35.4 (removed in v1.36): flexvolume-dir, honouring
    --flex-volume-plugin-dir."""
    config = _config(version="v1.35.4")
    pod = _pods(config, _ident(config), tmp_path)["kube-controller-manager"]
    flex = "/usr/libexec/kubernetes/kubelet-plugins/volume/exec"
    assert _volumes(pod)["flexvolume-dir"] == (flex, DOC)
    assert _mounts(pod)["flexvolume-dir"] == (flex, False)
    config = _config(
        "controllerManager:\n  extraArgs:\n  - {name: flex-volume-plugin-dir, value: /opt/flex}\n",
        version="v1.35.4",
    )
    pod = _pods(config, _ident(config), tmp_path)["kube-controller-manager"]
    assert _volumes(pod)["flexvolume-dir"] == ("/opt/flex", DOC)
    for version in ("v1.36.3", "v1.37.2"):
        config = _config(version=version)
        pod = _pods(config, _ident(config), tmp_path)["kube-controller-manager"]
        assert "flexvolume-dir" not in _volumes(pod)


# --- images and version differences ------------------------------------------------------------

# constants.go at each tag: SupportedEtcdVersion for the tag's own minor.
IMAGES = {
    "v1.37.2": "3.7.0-0",
    "v1.36.3": "3.6.8-0",
    "v1.35.4": "3.6.6-0",
}


@pytest.mark.parametrize("version", list(IMAGES))
def test_images_per_version(tmp_path: Path, version: str) -> None:
    config = _config(version=version)
    pods = _pods(config, _ident(config), tmp_path)
    for component in ("kube-apiserver", "kube-controller-manager", "kube-scheduler"):
        assert _container(pods[component])["image"] == f"registry.k8s.io/{component}:{version}"
    assert _container(pods["etcd"])["image"] == f"registry.k8s.io/etcd:{IMAGES[version]}"


def test_image_repository_and_etcd_overrides(tmp_path: Path) -> None:
    config = _config(
        "imageRepository: registry.example.com:5000/k8s\n"
        "etcd:\n  local:\n    imageRepository: quay.io/coreos\n    imageTag: v3.6.5\n"
    )
    pods = _pods(config, _ident(config), tmp_path)
    assert _container(pods["kube-apiserver"])["image"] == (
        "registry.example.com:5000/k8s/kube-apiserver:v1.37.2"
    )
    assert _container(pods["etcd"])["image"] == "quay.io/coreos/etcd:v3.6.5"
    config = _config("imageRepository: registry.example.com/k8s\n")
    pods = _pods(config, _ident(config), tmp_path)
    assert _container(pods["etcd"])["image"] == "registry.example.com/k8s/etcd:3.7.0-0"


@pytest.mark.parametrize(
    ("version", "tag", "legacy"),
    [
        ("v1.35.4", "", False),  # 3.6.6-0
        ("v1.35.4", "3.5.21-0", True),
        ("v1.35.4", "3.6.0-0", True),  # a pre-release of 3.6.0 sorts before 3.6.0
        ("v1.35.4", "not-semver", True),  # ParseSemantic fails: the else branch
        ("v1.36.3", "3.5.21-0", False),  # v1.36 dropped the 3.5 flag names
        ("v1.37.2", "3.5.21-0", False),
    ],
    ids=["v135-default", "v135-etcd35", "v135-prerelease", "v135-unparsable", "v136", "v137"],
)
def test_etcd_flag_names_follow_the_image_tag_in_v1_35(
    tmp_path: Path, version: str, tag: str, legacy: bool
) -> None:
    body = f"etcd:\n  local:\n    imageTag: {tag}\n" if tag else ""
    config = _config(body, version=version)
    command = _container(_pods(config, _ident(config), tmp_path)["etcd"])["command"]
    if legacy:
        assert "--experimental-initial-corrupt-check=true" in command
        assert "--experimental-watch-progress-notify-interval=5s" in command
        assert not [a for a in command if a.startswith("--feature-gates")]
    else:
        assert "--feature-gates=InitialCorruptCheck=true" in command
        assert "--watch-progress-notify-interval=5s" in command
        assert not [a for a in command if "experimental" in a]


# --- environment ---------------------------------------------------------------------------------


def test_proxy_variables_and_extra_envs(tmp_path: Path) -> None:
    """util/env.go: any *_proxy (any case) with a value; extraEnvs win by name; sorted by name.
    etcd gets only its own extraEnvs."""
    config = _config(
        "apiServer:\n  extraEnvs:\n"
        "  - {name: HTTPS_PROXY, value: 'http://override:3128'}\n"
        "  - {name: POD_IP, valueFrom: {fieldRef: {fieldPath: status.podIP}}}\n"
        "  - {name: EMPTY, value: ''}\n"
        "etcd:\n  local:\n    extraEnvs:\n    - {name: ETCD_X, value: '1'}\n"
    )
    environ = {
        "HTTP_PROXY": "http://p:3128",
        "HTTPS_PROXY": "http://p:3128",
        "no_proxy": "localhost",
        "ALL_PROXY": "",
        "PATH": "/bin",
        "proxy": "x",
    }
    pods = _pods(config, _ident(config), tmp_path, environ)
    assert _container(pods["kube-apiserver"])["env"] == [
        {"name": "EMPTY"},  # EnvVar.value is omitempty
        {"name": "HTTPS_PROXY", "value": "http://override:3128"},
        {"name": "HTTP_PROXY", "value": "http://p:3128"},
        {
            "name": "POD_IP",
            "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "status.podIP"}},
        },
        {"name": "no_proxy", "value": "localhost"},
    ]
    assert _container(pods["kube-scheduler"])["env"] == [
        {"name": "HTTPS_PROXY", "value": "http://p:3128"},
        {"name": "HTTP_PROXY", "value": "http://p:3128"},
        {"name": "no_proxy", "value": "localhost"},
    ]
    assert _container(pods["etcd"])["env"] == [{"name": "ETCD_X", "value": "1"}]


# --- serialisation -------------------------------------------------------------------------------


def test_text_is_kubeadms_json_to_yaml(tmp_path: Path) -> None:
    """Facts of sigs.k8s.io/yaml JSONToYAML + go.yaml.in/yaml/v2 as kubeadm writes: sorted keys,
    `status: {}`, sequences not indented under their key, values that would read back as
    another type double-quoted, `: ` forcing single quotes, long plain scalars folded at
    column 80."""
    config = _config(
        "apiServer:\n  extraArgs:\n"
        "  - {name: weird, value: 'yes'}\n"
        "  - {name: colon, value: 'a: b # c'}\n"
        "  - name: audit-policy-file\n"
        "    value: a very long value with spaces that will certainly need to be folded by"
        " the yaml emitter at column eighty\n"
    )
    text = manifests.render_control_plane_pod(
        "kube-apiserver", config, _ident(config), tmp_path, {}
    ).decode()
    assert text.startswith("apiVersion: v1\nkind: Pod\nmetadata:\n  annotations:\n")
    assert text.endswith("\nstatus: {}\n")
    assert "\n  containers:\n  - command:\n    - kube-apiserver\n" in text
    assert "\n    - --weird=yes\n" in text  # "--weird=yes" reads back as a string
    assert "\n    - '--colon=a: b # c'\n" in text
    assert (
        "\n    - --audit-policy-file=a very long value with spaces that will certainly need to\n"
        "      be folded by the yaml emitter at column eighty\n"
    ) in text
    assert "'[fd00" not in text
    ipv6 = _config(address="fd00::10")
    text6 = manifests.render_control_plane_pod(
        "kube-apiserver", ipv6, _ident(ipv6), tmp_path, {}
    ).decode()
    # A plain scalar may not start with '[': the emitter single-quotes it.
    assert "advertise-address.endpoint: '[fd00::10]:6443'\n" in text6


@pytest.mark.parametrize(
    ("config_body", "message"),
    [
        ("featureGates:\n  RootlessControlPlane: true\n", "RootlessControlPlane"),
    ],
    ids=["rootless"],
)
def test_unsupported_kubeadm_features_are_refused(
    tmp_path: Path, config_body: str, message: str
) -> None:
    """Refused when the configuration is read (before any phase writes), naming the field."""
    with pytest.raises(InvalidInput, match=message):
        _config(config_body)


def test_patches_are_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="patches"):
        parse_config(
            CLUSTER_HEAD.format(address="192.0.2.10", version="v1.37.2").replace(
                "  name: cp1\n", "  name: cp1\npatches:\n  directory: /etc/kubeinit/patches\n"
            )
        )
