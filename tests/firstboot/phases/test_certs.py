"""The certs phase: kubeadm's files, field by field (expected values from kubeadm's source and
from the real kubeadm binary), checked by the real openssl, and the reuse / recovery rules."""

from __future__ import annotations

import datetime
import hashlib
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, SignatureAlgorithmOID

import kubeinit.fs
from firstboot.context import InitContext
from firstboot.phases import certs, kubeconfig
from kubeinit import pki
from kubeinit.config import Config, load_config, parse_config
from kubeinit.errors import PhaseFailed
from kubeinit.identity import Identity
from tests.conftest import REPO, config_path
from tests.kubeinit.test_pki import run_kubeadm

# kubeinit's start time (seconds precision, like the CLI's); an hour ago, so that certificates
# made "now" by a rerun are comparable and everything is inside its validity period.
START = datetime.datetime.now(datetime.UTC).replace(microsecond=0) - datetime.timedelta(hours=1)
PKI = "etc/kubernetes/pki"
LEAVES = {  # leaf file -> CA file (certlist.go CAName)
    "apiserver": "ca", "apiserver-kubelet-client": "ca", "front-proxy-client": "front-proxy-ca",
    "etcd/server": "etcd/ca", "etcd/peer": "etcd/ca", "etcd/healthcheck-client": "etcd/ca",
    "apiserver-etcd-client": "etcd/ca"}
CAS = ("ca", "front-proxy-ca", "etcd/ca")


def load(name_or_text: str) -> Config:
    return (parse_config(name_or_text) if "\n" in name_or_text
            else load_config(config_path(name_or_text)))


def make_ctx(root: Path, config: str | Config = "default", *, start: datetime.datetime = START,
             advertise: str | None = None) -> InitContext:
    cfg = load(config) if isinstance(config, str) else config
    ident = Identity(cfg.init.node_registration.name,
                     advertise or cfg.init.local_api_endpoint.advertise_address)
    return InitContext(config=cfg, root=root, identity=ident, start_time=start)


def run_certs(ctx: InitContext, only: tuple[str, ...] = ()) -> None:
    for phase in certs.PHASE.children:
        if not only or phase.name in only:
            assert phase.run is not None
            phase.run(ctx)


def cert(root: Path, base: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate((root / PKI / f"{base}.crt").read_bytes())


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and "kubeinit" not in p.parts}


@pytest.fixture(scope="module")
def default_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("default")
    run_certs(make_ctx(root))
    return root


# --- what is written -------------------------------------------------------------------------

def test_files_modes_and_pem_block_types(default_root: Path) -> None:
    pki_dir = default_root / PKI
    files = {str(p.relative_to(pki_dir)): p.stat().st_mode & 0o7777
             for p in pki_dir.rglob("*") if p.is_file()}
    expected = {f"{b}.crt": 0o644 for b in (*CAS, *LEAVES)}
    expected |= {f"{b}.key": 0o600 for b in (*CAS, *LEAVES)}
    expected |= {"sa.key": 0o600, "sa.pub": 0o600}  # sa.pub goes through keyutil.WriteKey
    assert files == expected
    for d in (pki_dir, pki_dir / "etcd"):
        assert d.stat().st_mode & 0o7777 == 0o755
    for name in files:
        first = (pki_dir / name).read_text().splitlines()[0]
        assert first == {"crt": "-----BEGIN CERTIFICATE-----",
                         "key": "-----BEGIN RSA PRIVATE KEY-----",
                         "pub": "-----BEGIN PUBLIC KEY-----"}[name.rsplit(".", 1)[1]], name
    sa = serialization.load_pem_private_key((pki_dir / "sa.key").read_bytes(), None)
    pub = serialization.load_pem_public_key((pki_dir / "sa.pub").read_bytes())
    assert pub.public_numbers() == sa.public_key().public_numbers()  # type: ignore[union-attr]


EXPECTED = {  # base name: (subject attributes in order, issuer CN, EKU)
    "ca": ([("CN", "kubernetes")], "kubernetes", None),
    "apiserver": ([("CN", "kube-apiserver")], "kubernetes", [ExtendedKeyUsageOID.SERVER_AUTH]),
    "apiserver-kubelet-client": ([("CN", "kube-apiserver-kubelet-client")], "kubernetes",
                                 [ExtendedKeyUsageOID.CLIENT_AUTH]),
    "front-proxy-ca": ([("CN", "front-proxy-ca")], "front-proxy-ca", None),
    "front-proxy-client": ([("CN", "front-proxy-client")], "front-proxy-ca",
                           [ExtendedKeyUsageOID.CLIENT_AUTH]),
    "etcd/ca": ([("CN", "etcd-ca")], "etcd-ca", None),
    "etcd/server": ([("CN", "cp1")], "etcd-ca",
                    [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
    "etcd/peer": ([("CN", "cp1")], "etcd-ca",
                  [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
    "etcd/healthcheck-client": ([("CN", "kube-etcd-healthcheck-client")], "etcd-ca",
                                [ExtendedKeyUsageOID.CLIENT_AUTH]),
    "apiserver-etcd-client": ([("CN", "kube-apiserver-etcd-client")], "etcd-ca",
                              [ExtendedKeyUsageOID.CLIENT_AUTH]),
}
SHORT = {NameOID.COMMON_NAME: "CN", NameOID.ORGANIZATION_NAME: "O"}


def _ext(c: x509.Certificate, kind: type) -> x509.Extension[x509.ExtensionType] | None:
    try:
        return c.extensions.get_extension_for_class(kind)
    except x509.ExtensionNotFound:
        return None


@pytest.mark.parametrize("base", list(EXPECTED))
def test_certificate_fields_default_config(default_root: Path, base: str) -> None:
    c = cert(default_root, base)
    subject, issuer_cn, eku = EXPECTED[base]
    is_ca = base in CAS
    assert c.version == x509.Version.v3
    assert [(SHORT[a.oid], a.value) for a in c.subject] == subject
    assert [(SHORT[a.oid], a.value) for a in c.issuer] == [("CN", issuer_cn)]
    assert c.signature_algorithm_oid == SignatureAlgorithmOID.RSA_WITH_SHA256
    key = c.public_key()
    assert isinstance(key, rsa.RSAPublicKey)
    assert (key.key_size, key.public_numbers().e) == (2048, 65537)
    # NotBefore = start - 5 min (CertificateBackdate); NotAfter = start + 1 y / 10 y
    assert c.not_valid_before_utc == START - datetime.timedelta(minutes=5)
    assert c.not_valid_after_utc == START + datetime.timedelta(days=3650 if is_ca else 365)
    assert 1 <= c.serial_number < 2**63 - 1
    ku = _ext(c, x509.KeyUsage)
    assert ku is not None and ku.critical
    assert isinstance(ku.value, x509.KeyUsage)
    assert (ku.value.digital_signature, ku.value.key_encipherment, ku.value.key_cert_sign,
            ku.value.content_commitment, ku.value.data_encipherment, ku.value.key_agreement,
            ku.value.crl_sign) == (True, True, is_ca, False, False, False, False)
    bc = _ext(c, x509.BasicConstraints)
    assert bc is not None and bc.critical
    assert bc.value == x509.BasicConstraints(ca=is_ca, path_length=None)
    got_eku = _ext(c, x509.ExtendedKeyUsage)
    assert (list(got_eku.value) if got_eku else None) == eku  # type: ignore[call-overload]
    assert got_eku is None or not got_eku.critical
    skid, akid = _ext(c, x509.SubjectKeyIdentifier), _ext(c, x509.AuthorityKeyIdentifier)
    if is_ca:
        bits = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)
        assert skid is not None
        assert skid.value.digest == hashlib.sha256(bits).digest()[:20]  # type: ignore[attr-defined]
        assert akid is None
        san = _ext(c, x509.SubjectAlternativeName)
        assert san is not None
        assert san.value.get_values_for_type(x509.DNSName) == [subject[0][1]]  # type: ignore[attr-defined]
    else:
        ca = cert(default_root, LEAVES[base])
        ca_skid = ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        assert skid is None
        assert akid is not None
        assert akid.value.key_identifier == ca_skid.digest  # type: ignore[attr-defined]
    # extension order of Go's buildCertExtensions
    order = [type(e.value).__name__ for e in c.extensions]
    assert order == [n for n in ("KeyUsage", "ExtendedKeyUsage", "BasicConstraints",
                                 "SubjectKeyIdentifier", "AuthorityKeyIdentifier",
                                 "SubjectAlternativeName") if n in order]


def test_sans_written_in_kubeadms_order(default_root: Path) -> None:
    san = cert(default_root, "apiserver").extensions.get_extension_for_class(
        x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == [
        "cp1", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
        "kubernetes.default.svc.cluster.local"]
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["10.96.0.1",
                                                                           "192.0.2.10"]
    etcd = cert(default_root, "etcd/peer").extensions.get_extension_for_class(
        x509.SubjectAlternativeName).value
    assert [str(ip) for ip in etcd.get_values_for_type(x509.IPAddress)] == [
        "192.0.2.10", "127.0.0.1", "::1"]


def test_ecdsa_config_keys_and_validity(tmp_path: Path) -> None:
    run_certs(make_ctx(tmp_path, "ecdsa"))
    for base in (*CAS, *LEAVES):
        c = cert(tmp_path, base)
        assert isinstance(c.public_key(), ec.EllipticCurvePublicKey)
        assert c.public_key().curve.name == "secp256r1"  # type: ignore[union-attr]
        assert c.signature_algorithm_oid == SignatureAlgorithmOID.ECDSA_WITH_SHA256
        hours = 43800 if base in CAS else 2160  # caCertificateValidityPeriod / certificate...
        assert c.not_valid_after_utc - START == datetime.timedelta(hours=hours)
        key_text = (tmp_path / PKI / f"{base}.key").read_text()
        assert key_text.startswith("-----BEGIN EC PRIVATE KEY-----\n")


@pytest.mark.real
@pytest.mark.parametrize("base", list(EXPECTED))
def test_every_certificate_verifies_with_openssl(default_root: Path, tool: object,
                                                 base: str) -> None:
    pki_dir = default_root / PKI
    ca = pki_dir / f"{LEAVES.get(base, base)}.crt"
    out = subprocess.run([tool("openssl"), "verify", "-CAfile", str(ca),  # type: ignore[operator]
                          str(pki_dir / f"{base}.crt")], capture_output=True, text=True,
                         check=False)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.strip().endswith(": OK")
    # and the key on disk belongs to the certificate (openssl's own view of both)
    modulus = [subprocess.run([tool("openssl"), kind, "-noout", "-modulus", "-in",  # type: ignore[operator]
                               str(pki_dir / f"{base}.{ext}")], capture_output=True, text=True,
                              check=True).stdout for kind, ext in (("x509", "crt"),
                                                                   ("rsa", "key"))]
    assert modulus[0] == modulus[1]


def _facts(c: x509.Certificate) -> dict[str, object]:
    """Everything kubeadm decides; not the random parts (serial, keys, signature, key ids)."""
    exts = []
    for e in c.extensions:
        value: object = e.value
        if isinstance(e.value, x509.SubjectKeyIdentifier | x509.AuthorityKeyIdentifier):
            value = "present"
        elif isinstance(e.value, x509.SubjectAlternativeName):
            value = ([str(v) for v in e.value.get_values_for_type(x509.DNSName)],
                     [str(v) for v in e.value.get_values_for_type(x509.IPAddress)])
        exts.append((e.oid.dotted_string, e.critical, value))
    key = c.public_key()
    return {"subject": c.subject.public_bytes(), "issuer": c.issuer.public_bytes(),
            "version": c.version, "sig": c.signature_algorithm_oid,
            "validity": c.not_valid_after_utc - c.not_valid_before_utc,
            "key": (type(key).__name__, key.key_size),  # type: ignore[union-attr]
            "extensions": exts}


@pytest.mark.real
@pytest.mark.parametrize("name", ["default", "ecdsa", "extra-sans-args", "custom-network",
                                  "control-plane-endpoint", "v1-36", "ipv6"])
def test_same_certificates_as_real_kubeadm(k8s_bin: Path, tmp_path: Path,
                                           tmp_path_factory: pytest.TempPathFactory,
                                           name: str) -> None:
    text = IPV6 if name == "ipv6" else config_path(name).read_text()
    theirs = run_kubeadm(k8s_bin / "kubeadm", text, tmp_path_factory.getbasetemp())
    run_certs(make_ctx(tmp_path, text if name == "ipv6" else name))
    ours = tmp_path / PKI
    names = sorted(str(p.relative_to(theirs / "pki")) for p in (theirs / "pki").rglob("*")
                   if p.is_file())
    assert sorted(str(p.relative_to(ours)) for p in ours.rglob("*") if p.is_file()) == names
    for crt in (n for n in names if n.endswith(".crt")):
        mine = x509.load_pem_x509_certificate((ours / crt).read_bytes())
        real = x509.load_pem_x509_certificate((theirs / "pki" / crt).read_bytes())
        assert _facts(mine) == _facts(real), crt
    for f in names:
        assert (ours / f).stat().st_mode == (theirs / "pki" / f).stat().st_mode, f


IPV6 = """apiVersion: kubeadm.k8s.io/v1beta4
kind: InitConfiguration
localAPIEndpoint: {advertiseAddress: "2001:db8::10"}
nodeRegistration: {name: cp6}
---
apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
kubernetesVersion: v1.37.2
networking: {serviceSubnet: "fd00:10:96::/112", podSubnet: "fd00:10:244::/56"}
controlPlaneEndpoint: "[2001:db8::100]:6443"
apiServer: {certSANs: ["2001:DB8::10", "::ffff:192.0.2.1"]}
"""


def test_apiserver_kubelet_client_carries_cluster_admins_in_1_35(tmp_path: Path) -> None:
    text = config_path("default").read_text().replace("v1.37.2", "v1.35.4")
    run_certs(make_ctx(tmp_path, text), only=("ca", "apiserver-kubelet-client"))
    c = cert(tmp_path, "apiserver-kubelet-client")
    assert [(SHORT[a.oid], a.value) for a in c.subject] == [
        ("O", "kubeadm:cluster-admins"), ("CN", "kube-apiserver-kubelet-client")]


def test_external_etcd_writes_no_etcd_files(tmp_path: Path) -> None:
    text = config_path("default").read_text() + (
        "etcd:\n  external:\n    endpoints: [https://etcd.example.com:2379]\n")
    ctx = make_ctx(tmp_path, text)
    run_certs(ctx)
    assert not (tmp_path / PKI / "etcd").exists()
    assert not (tmp_path / PKI / "apiserver-etcd-client.crt").exists()
    assert sum(1 for _ in (tmp_path / PKI).glob("*.crt")) == 5
    assert any("external etcd" in n for n in ctx.notes)


# --- reuse and recovery ----------------------------------------------------------------------

def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, symlinks=True)
    return dst


def test_rerun_reuses_everything_byte_for_byte(default_root: Path, tmp_path: Path) -> None:
    root = _copy(default_root, tmp_path / "r")
    before = snapshot(root)
    ctx = make_ctx(root, start=START + datetime.timedelta(days=1))
    run_certs(ctx)
    assert snapshot(root) == before
    assert any("using the existing ca certificate authority" in n for n in ctx.notes)


def test_external_ca_is_used_without_its_key(default_root: Path, tmp_path: Path) -> None:
    root = _copy(default_root, tmp_path / "r")
    (root / PKI / "ca.key").unlink()
    (root / PKI / "front-proxy-ca.key").unlink()
    before = snapshot(root)
    ctx = make_ctx(root)
    run_certs(ctx)
    assert snapshot(root) == before, "nothing may be written in external CA mode"
    assert not (root / PKI / "ca.key").exists()
    assert sum("external CA" in n for n in ctx.notes) == 2


def test_external_ca_without_a_leaf_fails_clearly(default_root: Path, tmp_path: Path) -> None:
    root = _copy(default_root, tmp_path / "r")
    (root / PKI / "ca.key").unlink()
    (root / PKI / "apiserver.crt").unlink()
    (root / PKI / "apiserver.key").unlink()
    with pytest.raises(PhaseFailed, match=r"external CA.*apiserver\.crt must be provided"):
        run_certs(make_ctx(root), only=("ca",))
    with pytest.raises(PhaseFailed, match="the ca CA has no key"):
        run_certs(make_ctx(root), only=("apiserver",))
    assert not (root / PKI / "apiserver.crt").exists()


def test_external_ca_needs_the_service_account_key(default_root: Path, tmp_path: Path) -> None:
    root = _copy(default_root, tmp_path / "r")
    (root / PKI / "ca.key").unlink()
    (root / PKI / "sa.key").unlink()
    (root / PKI / "sa.pub").unlink()
    with pytest.raises(PhaseFailed, match=r"sa\.key must be provided"):
        run_certs(make_ctx(root), only=("sa",))


def test_lone_leaf_key_gets_a_certificate_for_that_key(default_root: Path,
                                                       tmp_path: Path) -> None:
    """The one half pair a crash can leave (key written, certificate not)."""
    root = _copy(default_root, tmp_path / "r")
    key_before = (root / PKI / "apiserver.key").read_bytes()
    (root / PKI / "apiserver.crt").unlink()
    run_certs(make_ctx(root), only=("apiserver",))
    assert (root / PKI / "apiserver.key").read_bytes() == key_before
    key = serialization.load_pem_private_key(key_before, None)
    c = cert(root, "apiserver")
    assert c.public_key().public_numbers() == key.public_key().public_numbers()  # type: ignore[union-attr]
    c.verify_directly_issued_by(cert(root, "ca"))


def test_lone_ca_key_gets_a_new_certificate_and_old_leaves_still_chain(
        default_root: Path, tmp_path: Path) -> None:
    root = _copy(default_root, tmp_path / "r")
    ca_key = (root / PKI / "ca.key").read_bytes()
    old_leaf = (root / PKI / "apiserver.crt").read_bytes()
    (root / PKI / "ca.crt").unlink()
    ctx = make_ctx(root, start=START + datetime.timedelta(hours=1))
    run_certs(ctx)
    assert (root / PKI / "ca.key").read_bytes() == ca_key
    assert (root / PKI / "apiserver.crt").read_bytes() == old_leaf, "leaf reused"
    new_ca = cert(root, "ca")
    assert new_ca.not_valid_before_utc == START + datetime.timedelta(minutes=55)
    cert(root, "apiserver").verify_directly_issued_by(new_ca)


def test_certificate_without_key_is_an_error(default_root: Path, tmp_path: Path) -> None:
    root = _copy(default_root, tmp_path / "r")
    (root / PKI / "etcd/peer.key").unlink()
    with pytest.raises(PhaseFailed, match=r"peer\.crt exists but its key .*peer\.key does not"):
        run_certs(make_ctx(root), only=("etcd-peer",))


def test_corrupted_certificate_is_a_clear_error(default_root: Path, tmp_path: Path) -> None:
    root = _copy(default_root, tmp_path / "r")
    (root / PKI / "apiserver.crt").write_text("-----BEGIN CERTIFICATE-----\ngarbage\n")
    with pytest.raises(PhaseFailed, match=r"apiserver\.crt is not a PEM certificate file"):
        run_certs(make_ctx(root), only=("apiserver",))


def test_corrupted_ca_through_the_cli_is_one_line_no_traceback(default_root: Path,
                                                               tmp_path: Path) -> None:
    root = _copy(default_root, tmp_path / "r")
    (root / PKI / "ca.crt").write_bytes((root / PKI / "ca.crt").read_bytes()[:300])
    proc = subprocess.run(
        [sys.executable, "-m", "firstboot", "init", "phase", "certs", "ca", "--root", str(root),
         "--config", str(config_path("default"))], capture_output=True, text=True, cwd=REPO,
        check=False, timeout=60)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert "ca.crt is not a PEM certificate file" in proc.stderr


def test_mismatched_key_is_an_error(default_root: Path, tmp_path: Path) -> None:
    root = _copy(default_root, tmp_path / "r")
    shutil.copy(root / PKI / "front-proxy-client.key", root / PKI / "apiserver.key")
    with pytest.raises(PhaseFailed, match=r"apiserver\.key is not the key of"):
        run_certs(make_ctx(root), only=("apiserver",))


def test_certificate_for_another_address_is_not_reused(default_root: Path,
                                                       tmp_path: Path) -> None:
    root = _copy(default_root, tmp_path / "r")
    with pytest.raises(PhaseFailed, match=r"apiserver\.crt is not valid for 192\.0\.2\.99"):
        run_certs(make_ctx(root, advertise="192.0.2.99"), only=("apiserver",))


def test_expired_leaf_is_an_error(default_root: Path, tmp_path: Path) -> None:
    root = _copy(default_root, tmp_path / "r")
    spec = {s.name: s for s in pki.cert_specs(load("default"), Identity("cp1", "192.0.2.10"))}
    ca_cert, ca_key = cert(root, "ca"), pki.load_key(root / PKI / "ca.key")
    key = pki.load_key(root / PKI / "apiserver.key")
    long_ago = datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC)
    old = pki.new_signed(spec["apiserver"], key.public_key(), ca_cert=ca_cert, ca_key=ca_key,
                         not_before=long_ago, not_after=long_ago + datetime.timedelta(days=1))
    (root / PKI / "apiserver.crt").write_bytes(pki.encode_cert_pem(old))
    with pytest.raises(PhaseFailed, match="expired"):
        run_certs(make_ctx(root), only=("apiserver",))


def test_leaf_from_another_ca_is_an_error(default_root: Path, tmp_path: Path) -> None:
    root = _copy(default_root, tmp_path / "r")
    for ext in ("crt", "key"):
        shutil.copy(root / PKI / f"front-proxy-client.{ext}", root / PKI / f"apiserver.{ext}")
    with pytest.raises(PhaseFailed, match="not signed by the CA"):
        run_certs(make_ctx(root), only=("apiserver",))


def test_sa_pub_is_completed_and_checked(default_root: Path, tmp_path: Path) -> None:
    root = _copy(default_root, tmp_path / "r")
    pub = (root / PKI / "sa.pub").read_bytes()
    (root / PKI / "sa.pub").unlink()
    run_certs(make_ctx(root), only=("sa",))
    assert (root / PKI / "sa.pub").read_bytes() == pub
    assert (root / PKI / "sa.pub").stat().st_mode & 0o777 == 0o600
    other = pki.generate_key(load("default").cluster.encryption_algorithm)
    (root / PKI / "sa.pub").write_bytes(pki.encode_public_key_pem(other.public_key()))
    with pytest.raises(PhaseFailed, match=r"sa\.pub is not the public key of"):
        run_certs(make_ctx(root), only=("sa",))


class Crash(Exception):
    pass


def _crash_at(monkeypatch: pytest.MonkeyPatch, n: int) -> list[str]:
    """Make the n-th file write die before its rename (as a power cut after fsync would)."""
    real, written = kubeinit.fs.write_file, []

    def write_file(path: Path, data: bytes | str, mode: int, **kw: int) -> None:
        if len(written) + 1 == n:
            raise Crash(str(path))
        real(path, data, mode, **kw)
        written.append(path.name)
    monkeypatch.setattr(kubeinit.fs, "write_file", write_file)
    return written


def test_keys_are_written_before_their_certificates(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    written = _crash_at(monkeypatch, 10**6)
    run_certs(make_ctx(tmp_path, "ecdsa"))
    order = [w for w in written if w.endswith((".key", ".crt"))]
    for i in range(0, 20, 2):
        assert order[i].endswith(".key") and order[i + 1] == order[i][:-4] + ".crt", order
    assert written[-2:] == ["sa.key", "sa.pub"]


@pytest.mark.parametrize("n", range(1, 23))
def test_crash_at_any_write_then_rerun_completes(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch,
                                                 n: int) -> None:
    """22 writes in the certs phase; dying at any one of them and running again yields a
    complete, consistent PKI, and whatever CA existed before the crash is kept."""
    _crash_at(monkeypatch, n)
    with pytest.raises(Crash):
        run_certs(make_ctx(tmp_path, "ecdsa"))
    monkeypatch.undo()
    before = {ca: (tmp_path / PKI / f"{ca}.crt").read_bytes() for ca in CAS
              if (tmp_path / PKI / f"{ca}.crt").exists()}
    run_certs(make_ctx(tmp_path, "ecdsa"))
    for ca, data in before.items():
        assert (tmp_path / PKI / f"{ca}.crt").read_bytes() == data
    for base in (*CAS, *LEAVES):
        c = cert(tmp_path, base)
        key = pki.load_key(tmp_path / PKI / f"{base}.key")
        assert pki.same_public_key(key.public_key(), c.public_key()), base
        c.verify_directly_issued_by(cert(tmp_path, LEAVES.get(base, base)))
    sa = pki.load_key(tmp_path / PKI / "sa.key")
    assert pki.same_public_key(pki.load_public_key(tmp_path / PKI / "sa.pub"), sa.public_key())


# --- speed -----------------------------------------------------------------------------------

@pytest.mark.real
def test_certs_and_kubeconfig_are_faster_than_kubeadm(k8s_bin: Path, tmp_path: Path) -> None:
    """kubeadm makes its 16 keys one after another; kubeinit makes them in parallel."""
    text = config_path("default").read_text()
    t0 = time.perf_counter()
    run_kubeadm(k8s_bin / "kubeadm", text, tmp_path / "kubeadm", cache=False)
    kubeadm_s = time.perf_counter() - t0
    ctx = make_ctx(tmp_path / "ours", start=datetime.datetime.now(datetime.UTC))
    t0 = time.perf_counter()
    run_certs(ctx)
    for phase in kubeconfig.PHASE.children:
        assert phase.run is not None
        phase.run(ctx)
    ours_s = time.perf_counter() - t0
    print(f"certs+kubeconfig: kubeinit {ours_s:.2f} s, kubeadm {kubeadm_s:.2f} s")
    assert ours_s < kubeadm_s
