"""The kubeconfig phase: the five files as kubeadm writes them (compared with the real kubeadm's
files and read back by the real kubectl and openssl), their client certificates, and reuse."""

from __future__ import annotations

import base64
import datetime
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from firstboot.context import InitContext
from firstboot.phases import kubeconfig
from kubeinit import kubeconfig as kc
from kubeinit.errors import PhaseFailed
from tests.conftest import config_path
from tests.firstboot.phases.test_certs import IPV6, START, make_ctx, run_certs
from tests.kubeinit.test_pki import run_kubeadm

K8S = "etc/kubernetes"
FILES = ("admin.conf", "super-admin.conf", "kubelet.conf", "controller-manager.conf",
         "scheduler.conf")


def run_kubeconfig(ctx: InitContext, only: tuple[str, ...] = ()) -> None:
    for phase in kubeconfig.PHASE.children:
        if not only or phase.name in only:
            assert phase.run is not None
            phase.run(ctx)


def node(root: Path, ctx_config: str = "default", **kw: object) -> InitContext:
    ctx = make_ctx(root, ctx_config, **kw)  # type: ignore[arg-type]
    run_certs(ctx)
    run_kubeconfig(ctx)
    return ctx


@pytest.fixture(scope="module")
def default_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("kc-default")
    node(root)
    return root


def conf(root: Path, name: str) -> dict:  # type: ignore[type-arg]
    return yaml.safe_load((root / K8S / name).read_text())  # type: ignore[no-any-return]


def client_cert(doc: dict) -> x509.Certificate:  # type: ignore[type-arg]
    return x509.load_pem_x509_certificate(
        base64.b64decode(doc["users"][0]["user"]["client-certificate-data"]))


# from kubeadm's getKubeConfigSpecsBase (phases/kubeconfig/kubeconfig.go) and the init phase
# (kubelet.conf without controlPlaneEndpoint)
TABLE = {
    "admin.conf": ("kubernetes-admin", ["kubeadm:cluster-admins"], "cpe"),
    "super-admin.conf": ("kubernetes-super-admin", ["system:masters"], "cpe"),
    "kubelet.conf": ("system:node:cp-lb", ["system:nodes"], "local"),
    "controller-manager.conf": ("system:kube-controller-manager", [], "local"),
    "scheduler.conf": ("system:kube-scheduler", [], "local"),
}


@pytest.fixture(scope="module")
def cpe_node(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, InitContext]:
    root = tmp_path_factory.mktemp("kc-cpe")
    return root, node(root, "control-plane-endpoint")


@pytest.mark.parametrize("name", FILES)
def test_users_servers_and_client_certificates(cpe_node: tuple[Path, InitContext],
                                               name: str) -> None:
    tmp_path, ctx = cpe_node
    user, orgs, where = TABLE[name]
    doc = conf(tmp_path, name)
    server = {"cpe": "https://api.example.com:6443", "local": "https://192.0.2.20:6443"}[where]
    assert doc["clusters"] == [{"name": "kubernetes", "cluster": {
        "server": server, "certificate-authority-data": base64.b64encode(
            (tmp_path / K8S / "pki/ca.crt").read_bytes()).decode()}}]
    assert doc["contexts"] == [{"name": f"{user}@kubernetes",
                                "context": {"cluster": "kubernetes", "user": user}}]
    assert doc["current-context"] == f"{user}@kubernetes"
    assert [u["name"] for u in doc["users"]] == [user]
    assert "preferences" not in doc  # omitzero since client-go v0.34
    c = client_cert(doc)
    assert c.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == user
    assert [a.value for a in c.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)] == orgs
    ca = x509.load_pem_x509_certificate((tmp_path / K8S / "pki/ca.crt").read_bytes())
    c.verify_directly_issued_by(ca)
    assert list(c.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [
        ExtendedKeyUsageOID.CLIENT_AUTH]
    assert c.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    ku = c.extensions.get_extension_for_class(x509.KeyUsage).value
    assert (ku.digital_signature, ku.key_encipherment, ku.key_cert_sign) == (True, True, False)
    with pytest.raises(x509.ExtensionNotFound):
        c.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    # NotBefore falls back to the CA's (the spec sets only NotAfter)
    assert c.not_valid_before_utc == ca.not_valid_before_utc
    assert c.not_valid_after_utc == ctx.start_time + datetime.timedelta(days=365)
    key = serialization.load_pem_private_key(
        base64.b64decode(doc["users"][0]["user"]["client-key-data"]), None)
    assert isinstance(key, rsa.RSAPrivateKey) and key.key_size == 2048
    assert key.public_key().public_numbers() == c.public_key().public_numbers()  # type: ignore[union-attr]
    assert (tmp_path / K8S / name).stat().st_mode & 0o7777 == 0o600


def test_client_certificates_follow_an_older_ca(tmp_path: Path) -> None:
    run_certs(make_ctx(tmp_path, start=START))
    later = START + datetime.timedelta(days=30)
    run_kubeconfig(make_ctx(tmp_path, start=later), only=("admin",))
    c = client_cert(conf(tmp_path, "admin.conf"))
    assert c.not_valid_before_utc == START - datetime.timedelta(minutes=5)
    assert c.not_valid_after_utc == later + datetime.timedelta(days=365)


def test_ipv6_servers_are_bracketed(tmp_path: Path) -> None:
    node(tmp_path, IPV6)
    assert conf(tmp_path, "admin.conf")["clusters"][0]["cluster"]["server"] == \
        "https://[2001:db8::100]:6443"
    assert conf(tmp_path, "kubelet.conf")["clusters"][0]["cluster"]["server"] == \
        "https://[2001:db8::10]:6443"


def _masked(text: str) -> str:
    return re.sub(r"(-data: )\S+", r"\1DATA", text)


@pytest.mark.real
@pytest.mark.parametrize("name", ["default", "control-plane-endpoint", "custom-network",
                                  "extra-sans-args", "ecdsa", "ipv6"])
def test_same_files_as_real_kubeadm(k8s_bin: Path, tmp_path: Path,
                                    tmp_path_factory: pytest.TempPathFactory, name: str) -> None:
    """Same YAML text once the random base64 payloads are masked; same modes; the client
    certificates agree on everything but keys, serials and times."""
    text = IPV6 if name == "ipv6" else config_path(name).read_text()
    theirs = run_kubeadm(k8s_bin / "kubeadm", text, tmp_path_factory.getbasetemp())
    node(tmp_path, text if name == "ipv6" else name)
    for f in FILES:
        mine, real = tmp_path / K8S / f, theirs / f
        assert _masked(mine.read_text()) == _masked(real.read_text()), f
        assert mine.stat().st_mode == real.stat().st_mode
        a, b = client_cert(yaml.safe_load(mine.read_text())), client_cert(
            yaml.safe_load(real.read_text()))
        assert a.subject.public_bytes() == b.subject.public_bytes()
        assert [(e.oid, e.critical) for e in a.extensions] == [(e.oid, e.critical)
                                                               for e in b.extensions]
        assert type(a.public_key()) is type(b.public_key())


@pytest.mark.real
@pytest.mark.parametrize("cluster_name", ["kubernetes", "1234", "yes", "a: b", "ünï"])
def test_render_reproduces_kubeadms_bytes(k8s_bin: Path, tmp_path: Path,
                                          cluster_name: str) -> None:
    """Given kubeadm's own certificates and key, kubeinit's writer yields kubeadm's file byte for
    byte, including YAML quoting of odd cluster names."""
    text = config_path("default").read_text() + f"clusterName: {json.dumps(cluster_name)}\n"
    out = run_kubeadm(k8s_bin / "kubeadm", text, tmp_path,
                      phases=("certs ca", "kubeconfig controller-manager"))
    real = (out / "controller-manager.conf").read_bytes()
    doc = yaml.safe_load(real)
    user = doc["users"][0]["user"]
    ours = kc.render(server="https://192.0.2.10:6443", cluster_name=cluster_name,
                     user="system:kube-controller-manager",
                     ca_pem=(out / "pki/ca.crt").read_bytes(),
                     client_cert_pem=base64.b64decode(user["client-certificate-data"]),
                     client_key_pem=base64.b64decode(user["client-key-data"]))
    assert ours == real


@pytest.mark.real
@pytest.mark.parametrize("name", FILES)
def test_kubectl_and_openssl_read_every_file(k8s_bin: Path, tool: object,
                                             tmp_path_factory: pytest.TempPathFactory,
                                             name: str) -> None:
    """A loopback advertise address on a closed port: kubectl must get as far as connecting
    (refused), so every embedded certificate and key parsed. No traffic leaves the machine."""
    root = tmp_path_factory.getbasetemp() / "kc-loopback"
    if not root.exists():
        node(root, config_path("default").read_text().replace(
            "advertiseAddress: 192.0.2.10", "advertiseAddress: 127.0.0.1\n  bindPort: 1"))
    path = root / K8S / name
    kubectl = str(k8s_bin / "kubectl")
    view = subprocess.run([kubectl, "config", "view", "--raw", "-o", "json", "--kubeconfig",
                           str(path)], capture_output=True, text=True, check=True, timeout=30)
    viewed = {k: v for k, v in json.loads(view.stdout).items() if k != "preferences"}
    assert viewed == yaml.safe_load(path.read_text())
    version = subprocess.run([kubectl, "--kubeconfig", str(path), "version",
                              "--request-timeout=2s"], capture_output=True, text=True,
                             check=False, timeout=30)
    assert "Client Version: v1.37.2" in version.stdout
    assert "The connection to the server 127.0.0.1:1 was refused" in version.stderr, \
        version.stderr
    cert_file = path.with_suffix(".crt.pem")
    cert_file.write_bytes(base64.b64decode(
        yaml.safe_load(path.read_text())["users"][0]["user"]["client-certificate-data"]))
    out = subprocess.run([tool("openssl"), "verify", "-CAfile",  # type: ignore[operator]
                          str(root / K8S / "pki/ca.crt"), str(cert_file)],
                         capture_output=True, text=True, check=False)
    assert out.returncode == 0 and out.stdout.strip().endswith(": OK"), out.stdout + out.stderr


# --- reuse ------------------------------------------------------------------------------------

def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def test_rerun_keeps_the_files(default_root: Path, tmp_path: Path) -> None:
    root = _copy(default_root, tmp_path / "r")
    before = {f: (root / K8S / f).read_bytes() for f in FILES}
    ctx = make_ctx(root, start=START + datetime.timedelta(days=2))
    run_kubeconfig(ctx)
    assert {f: (root / K8S / f).read_bytes() for f in FILES} == before
    assert sum("using the existing" in n for n in ctx.notes) == 5


def test_other_server_url_is_kept_with_a_warning(default_root: Path, tmp_path: Path) -> None:
    root = _copy(default_root, tmp_path / "r")
    ctx = make_ctx(root, advertise="192.0.2.77")
    before = (root / K8S / "scheduler.conf").read_bytes()
    run_kubeconfig(ctx, only=("scheduler",))
    assert (root / K8S / "scheduler.conf").read_bytes() == before
    assert any("WARNING" in n and "https://192.0.2.77:6443" in n for n in ctx.notes)


def test_file_of_another_ca_is_an_error(default_root: Path, tmp_path: Path) -> None:
    root = _copy(default_root, tmp_path / "r")
    other = _copy(default_root, tmp_path / "other")
    for f in ("ca.crt", "ca.key"):
        (other / K8S / "pki" / f).unlink()
    run_certs(make_ctx(other), only=("ca",))
    shutil.copy(other / K8S / "pki/ca.crt", root / K8S / "pki/ca.crt")
    shutil.copy(other / K8S / "pki/ca.key", root / K8S / "pki/ca.key")
    with pytest.raises(PhaseFailed, match="does not contain a trusted CA"):
        run_kubeconfig(make_ctx(root), only=("admin",))


def test_unreadable_file_is_an_error(default_root: Path, tmp_path: Path) -> None:
    root = _copy(default_root, tmp_path / "r")
    (root / K8S / "kubelet.conf").write_text("clusters: [\n")
    with pytest.raises(PhaseFailed, match="failed to load kubeconfig file"):
        run_kubeconfig(make_ctx(root), only=("kubelet",))
    (root / K8S / "kubelet.conf").write_text("apiVersion: v1\nkind: Config\n")
    with pytest.raises(PhaseFailed, match="failed to find CurrentContext"):
        run_kubeconfig(make_ctx(root), only=("kubelet",))


def test_missing_ca_says_which_phase_to_run(tmp_path: Path) -> None:
    with pytest.raises(PhaseFailed) as err:
        run_kubeconfig(make_ctx(tmp_path), only=("admin",))
    assert "certs ca" in err.value.hint


def test_external_ca_uses_provided_files(default_root: Path, tmp_path: Path) -> None:
    root = _copy(default_root, tmp_path / "r")
    (root / K8S / "pki/ca.key").unlink()
    before = {f: (root / K8S / f).read_bytes() for f in FILES}
    ctx = make_ctx(root)
    run_kubeconfig(ctx)
    assert {f: (root / K8S / f).read_bytes() for f in FILES} == before
    (root / K8S / "super-admin.conf").unlink()
    with pytest.raises(PhaseFailed, match=r"external CA mode: .*super-admin\.conf must be"):
        run_kubeconfig(make_ctx(root), only=("super-admin",))


def test_ecdsa_client_keys(tmp_path: Path) -> None:
    node(tmp_path, "ecdsa")
    for f in FILES:
        key_pem = base64.b64decode(conf(tmp_path, f)["users"][0]["user"]["client-key-data"])
        assert key_pem.startswith(b"-----BEGIN EC PRIVATE KEY-----\n")
        key = serialization.load_pem_private_key(key_pem, None)
        assert isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1"
        c = client_cert(conf(tmp_path, f))
        assert c.not_valid_after_utc - START == datetime.timedelta(hours=2160)
