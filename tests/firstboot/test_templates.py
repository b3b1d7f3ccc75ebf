"""firstboot/templates.py: first boot writes the image profile's pre-rendered files, filled with
the node identity, and they are what a live render for the same identity writes; where they
would not be (another configuration, another address family, proxy variables, odd names), it
renders live and says why. The profiles here are made by the builder's own renderer
(builder.render.render_profile), as kubeinit-build makes them."""

from __future__ import annotations

import base64
import datetime
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from builder.render import render_profile
from firstboot.templates import BootConfig, load_boot_config, templates_decision
from kubeinit import kubeconfig, kubelet, manifests, paths
from kubeinit import profile as prof
from kubeinit.config import load_config, parse_config
from kubeinit.identity import Identity, resolve_identity
from tests.conftest import REPO

ORACLE_CONFIGS = REPO / "tests" / "oracle" / "configs"
CONFIGS = sorted([*(REPO / "tests/data/configs").glob("*.yaml"), *ORACLE_CONFIGS.glob("*.yaml")])


def _facts_root(tmp_path: Path) -> Path:
    """A target with two of the CA-trust directories kubeadm mounts when they exist."""
    root = tmp_path / "facts"
    for d in ("etc/ssl/certs", "usr/share/ca-certificates"):
        (root / d).mkdir(parents=True)
    return root


def _identities(config_file: Path) -> list[Identity]:
    own = resolve_identity(load_config(config_file))
    if own.is_ipv6:
        return [own, Identity("node-b.example", "fd00:99::7")]
    return [own, Identity("node-b.example", "10.20.30.40")]


def _pem_cert() -> tuple[bytes, bytes]:
    """A self-signed certificate and its key, PEM: stand-ins for what the certs phase makes."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "t")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1).not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=1)).sign(key, hashes.SHA256()))
    return (cert.public_bytes(serialization.Encoding.PEM),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()))


@pytest.mark.parametrize("config_file", CONFIGS, ids=lambda p: p.stem)
def test_filled_templates_equal_a_live_render(config_file: Path, tmp_path: Path) -> None:
    text = config_file.read_text()
    config = parse_config(text, source=str(config_file))
    facts = _facts_root(tmp_path)
    profile = render_profile(config, text, facts)
    ca_pem, _ = _pem_cert()
    cert_pem, key_pem = _pem_cert()
    for ident in _identities(config_file):
        live_pods = manifests.render_static_pods(config, ident, facts, environ={})
        assert {str(manifests.manifest_path(c)) for c in live_pods} == set(profile.static_pods)
        for component, data in live_pods.items():
            filled = profile.fill(profile.static_pods[str(manifests.manifest_path(component))],
                                  ident)
            assert filled == data.decode(), (component, ident)
        live_kubelet = {str(k): v.decode() for k, v in kubelet.render_kubelet_files(
            config, ident, hostname=ident.node_name, systemd_resolved=False).items()}
        # kubeadm-flags.env depends on the machine's hostname: always rendered at boot
        assert set(profile.kubelet) == set(live_kubelet) - {str(paths.KUBELET_FLAGS_ENV)}
        for path, template in profile.kubelet.items():
            assert profile.fill(template, ident) == live_kubelet[path], (path, ident)
        for spec in kubeconfig.kubeconfig_specs(config, ident):
            live = kubeconfig.render(server=spec.server,
                                     cluster_name=config.cluster.cluster_name,
                                     user=spec.client_name, ca_pem=ca_pem,
                                     client_cert_pem=cert_pem, client_key_pem=key_pem)
            filled = profile.fill_kubeconfig(profile.kubeconfigs[str(spec.path)], ident,
                                             ca_pem=ca_pem, client_cert_pem=cert_pem,
                                             client_key_pem=key_pem)
            assert filled == live.decode(), (spec.name, ident)
            assert base64.b64encode(key_pem).decode() in filled
            assert not any(p in filled for p in prof.ALL_PLACEHOLDERS)


# --- first boot with a profile in the image ---------------------------------------------------

CLUSTER = """\
apiVersion: kubeadm.k8s.io/v1beta4
kind: InitConfiguration
localAPIEndpoint:
  advertiseAddress: 192.0.2.77
nodeRegistration:
  name: baked-node
---
apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
kubernetesVersion: v1.37.2
networking:
  podSubnet: 10.244.0.0/16
"""
MARK = "# kubeinit-test: this file came from the profile\n"


def _image_root(tmp_path: Path, name: str, *, config_text: str = CLUSTER,
                node_config: str | None = CLUSTER, mark: bool = False) -> Path:
    """A root laid out as kubeinit-build leaves an image: the profile and (by default) the
    configuration in /etc/kubeinit/config.yaml. With `mark`, every static Pod template starts
    with a comment, so a test can tell a template from a live render."""
    root = tmp_path / name
    (root / "etc/ssl/certs").mkdir(parents=True)
    config = parse_config(config_text)
    profile = render_profile(config, config_text, root)
    if mark:
        profile = prof.Profile(**{**profile.__dict__, "static_pods": {
            k: MARK + v for k, v in profile.static_pods.items()}})
    p = paths.under(root, paths.PROFILE)
    p.parent.mkdir(parents=True)
    p.write_text(profile.to_json())
    if node_config is not None:
        c = paths.under(root, paths.NODE_CONFIG)
        c.parent.mkdir(parents=True)
        c.write_text(node_config)
    return root


def _kubeinit(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    env["KUBEINIT_NO_JOURNAL"] = "1"
    return subprocess.run(
        [sys.executable, "-m", "firstboot", "init", "--local-only", "--root", str(root),
         "--skip-phases", "preflight", "--kernel-cmdline", "/dev/null", *args],
        capture_output=True, text=True, timeout=300, cwd=REPO, env=env, check=False)


def test_first_boot_writes_the_profile_files_and_they_match_a_live_render(
        tmp_path: Path) -> None:
    marked = _image_root(tmp_path, "marked", mark=True)
    out = _kubeinit(marked)
    assert out.returncode == 0, out.stderr
    assert ("profile: kubeinit" in out.stderr
            and "writing its pre-rendered files for node baked-node, 192.0.2.77" in out.stderr)
    for component in ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"):
        written = paths.under(marked, manifests.manifest_path(component)).read_text()
        assert written.startswith(MARK), component
    finished = {m.group(1): m.group(2) for m in
                re.finditer(r"^\[(\S+)\] finished in \S+(?: \((.*)\))?$", out.stderr, re.M)}
    from_profile = {phase for phase, note in finished.items()
                    if note and "from the image's profile" in note}
    assert from_profile == {"etcd/local", "control-plane/apiserver",
                            "control-plane/controller-manager", "control-plane/scheduler",
                            "kubelet-start", *(f"kubeconfig/{k}" for k in (
                                "admin", "super-admin", "kubelet", "controller-manager",
                                "scheduler"))}

    # the same run without a profile (live rendering) writes the same bytes
    baked = _image_root(tmp_path, "baked")
    live = tmp_path / "live"
    (live / "etc/ssl/certs").mkdir(parents=True)
    (tmp_path / "cluster.yaml").write_text(CLUSTER)
    assert _kubeinit(baked).returncode == 0
    assert _kubeinit(live, "--config", str(tmp_path / "cluster.yaml")).returncode == 0
    for node_path in (*(manifests.manifest_path(c) for c in
                        ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler")),
                      paths.KUBELET_CONFIG, paths.KUBELET_FLAGS_ENV):
        assert (paths.under(baked, node_path).read_bytes()
                == paths.under(live, node_path).read_bytes()), node_path
    for name in ("admin.conf", "kubelet.conf", "scheduler.conf"):
        a = paths.under(baked, f"/etc/kubernetes/{name}").read_text().splitlines()
        b = paths.under(live, f"/etc/kubernetes/{name}").read_text().splitlines()
        # the same file but for the credentials (made at boot, different on each node)
        assert [ln for ln in a if "-data:" not in ln] == [ln for ln in b if "-data:" not in ln]


def test_without_a_node_config_the_profile_is_the_configuration(tmp_path: Path) -> None:
    root = _image_root(tmp_path, "r", node_config=None, mark=True)
    out = _kubeinit(root)
    assert out.returncode == 0, out.stderr
    manifest = paths.under(root, manifests.manifest_path("etcd")).read_text()
    assert manifest.startswith(MARK) and "--name=baked-node" in manifest


def test_a_changed_node_config_renders_live_and_says_why(tmp_path: Path) -> None:
    changed = CLUSTER.replace("podSubnet: 10.244.0.0/16", "podSubnet: 10.48.0.0/16")
    root = _image_root(tmp_path, "r", node_config=changed, mark=True)
    out = _kubeinit(root)
    assert out.returncode == 0, out.stderr
    assert (f"rendering every file live ({paths.under(root, paths.NODE_CONFIG)} is not the"
            " configuration the image was built with)") in out.stderr
    assert "from the image's profile" not in out.stderr
    written = paths.under(root, manifests.manifest_path("kube-controller-manager")).read_text()
    assert not written.startswith(MARK) and "--cluster-cidr=10.48.0.0/16" in written


def _boot(root: Path) -> BootConfig:
    return load_boot_config(root, None)


@pytest.mark.parametrize(("ident", "environ", "why"), [
    (Identity("baked-node", "fd00::5"), {},
     "the profile's templates are for IPv4 nodes, this node advertises fd00::5"),
    (Identity("baked-node", "192.0.2.77"), {"HTTPS_PROXY": "http://proxy:3128"},
     "kubeinit's environment sets *_proxy variables, which the static Pods inherit"),
    (Identity("true", "192.0.2.77"), {}, "'true' needs quoting in YAML"),
], ids=["other-family", "proxy-environment", "yaml-keyword-node-name"])
def test_templates_are_not_used_where_a_live_render_would_differ(
        tmp_path: Path, ident: Identity, environ: dict[str, str], why: str) -> None:
    boot = _boot(_image_root(tmp_path, "r"))
    use, line = templates_decision(boot, ident, environ)
    assert not use and line.endswith(f"rendering every file live ({why})")
    use, line = templates_decision(boot, Identity("baked-node", "192.0.2.77"), {})
    assert use and "writing its pre-rendered files" in line


def test_identity_order_with_a_profile(tmp_path: Path) -> None:
    """kernel command line > systemd credentials > /etc/kubeinit/config.yaml > the profile's
    configuration > detection."""
    bare = CLUSTER.replace("  advertiseAddress: 192.0.2.77\n", "").replace(
        "  name: baked-node\n", "  name: from-node-config\n")
    boot = _boot(_image_root(tmp_path, "r", node_config=bare))
    assert boot.baked is not None
    ident = resolve_identity(boot.config, baked=boot.baked)
    assert (ident.node_name, ident.advertise_address) == ("from-node-config", "192.0.2.77")
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "kubeinit.node-name").write_text("from-credential\n")
    (creds / "kubeinit.advertise-address").write_text("192.0.2.88\n")
    cmdline = tmp_path / "cmdline"
    cmdline.write_text("ro kubeinit.advertise-address=192.0.2.99\n")
    ident = resolve_identity(boot.config, baked=boot.baked, credentials_dir=creds,
                             cmdline=cmdline)
    assert (ident.node_name, ident.advertise_address) == ("from-credential", "192.0.2.99")
    # no node config: the profile's configuration is the configuration, its identity applies
    boot = _boot(_image_root(tmp_path, "r2", node_config=None))
    assert boot.baked is None and boot.config.source.endswith("profile.json")
    ident = resolve_identity(boot.config, baked=boot.baked)
    assert (ident.node_name, ident.advertise_address) == ("baked-node", "192.0.2.77")


def test_an_unreadable_profile_stops_first_boot(tmp_path: Path) -> None:
    root = _image_root(tmp_path, "r")
    paths.under(root, paths.PROFILE).write_text('{"schema": 2}')
    out = _kubeinit(root)
    assert out.returncode == 3
    assert "kubeinit profile schema 2 is not supported" in out.stderr
    assert not paths.under(root, manifests.manifest_path("etcd")).exists()
