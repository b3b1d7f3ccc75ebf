"""kubeinit.pki against kubeadm: the real kubeadm binary's certificates are rebuilt byte for byte
from their own serial, times and keys; the certificate table is checked against the facts read
in kubeadm's source (phases/certs/certlist.go, util/pkiutil/pki_helpers.go)."""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import os
import subprocess
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.name import _ASN1Type
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from kubeinit import pki
from kubeinit.config import EncryptionAlgorithm, load_config, parse_config
from kubeinit.errors import PhaseFailed
from kubeinit.identity import Identity
from tests.conftest import config_path

SERVER, CLIENT = ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH
_KUBEADM_RUNS: dict[tuple[str, str], Path] = {}


def run_kubeadm(kubeadm: Path, config_text: str, base: Path, *, phases: tuple[str, ...] = (
        "certs all", "kubeconfig all"), cache: bool = True) -> Path:
    """Real kubeadm's `init phase certs all` and `init phase kubeconfig all` for a config, into
    a fresh directory (certificatesDir is pointed there; the host's /etc/kubernetes is never
    touched). Cached per config for the test session. Returns the directory: pki/ and *.conf."""
    key = (config_text, " ".join(phases))
    if cache and key in _KUBEADM_RUNS:
        return _KUBEADM_RUNS[key]
    out = base / f"kubeadm-{len(_KUBEADM_RUNS)}"
    while out.exists():
        out = out.with_name(out.name + "x")
    out.mkdir(parents=True)
    docs = [d for d in yaml.safe_load_all(config_text) if d]
    if not any(d["kind"] == "ClusterConfiguration" for d in docs):
        docs.append({"apiVersion": "kubeadm.k8s.io/v1beta4", "kind": "ClusterConfiguration"})
    for d in docs:
        if d["kind"] == "ClusterConfiguration":
            d["certificatesDir"] = str(out / "pki")
    (out / "config.yaml").write_text(yaml.safe_dump_all(docs))
    for phase in phases:
        argv = [str(kubeadm), "init", "phase", *phase.split(), "--config", str(out / "config.yaml")]
        if phase.startswith("kubeconfig"):
            argv += ["--kubeconfig-dir", str(out)]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
        assert proc.returncode == 0, proc.stderr
    _KUBEADM_RUNS[key] = out
    return out


def identity_of(config_name_or_text: str) -> tuple[object, Identity]:
    config = (parse_config(config_name_or_text) if "\n" in config_name_or_text
              else load_config(config_path(config_name_or_text)))
    ident = Identity(config.init.node_registration.name,
                     config.init.local_api_endpoint.advertise_address)
    return config, ident


@pytest.fixture(scope="module")
def kubeadm(k8s_bin: Path) -> Path:
    return k8s_bin / "kubeadm"


REBUILD_CONFIGS = ["default", "ecdsa", "extra-sans-args", "control-plane-endpoint",
                   "custom-network"]


@pytest.mark.real
@pytest.mark.parametrize("name", REBUILD_CONFIGS)
def test_rebuilds_kubeadms_certificates_byte_for_byte(kubeadm: Path, tmp_path_factory:
                                                      pytest.TempPathFactory, name: str) -> None:
    """Same inputs (serial, validity, public key, CA key) -> the same to-be-signed DER as Go's
    CreateCertificate; for RSA (deterministic PKCS#1 v1.5 signatures) the same certificate."""
    out = run_kubeadm(kubeadm, config_path(name).read_text(), tmp_path_factory.getbasetemp())
    config, ident = identity_of(name)
    specs = {s.name: s for s in pki.cert_specs(config, ident)}  # type: ignore[arg-type]
    assert len(specs) == 10
    for spec in specs.values():
        theirs = x509.load_pem_x509_certificate((out / "pki" / spec.cert_file).read_bytes())
        ca = specs[spec.ca_name] if spec.ca_name else spec
        ca_key = serialization.load_pem_private_key((out / "pki" / ca.key_file).read_bytes(),
                                                    None)
        issuer = (x509.load_pem_x509_certificate((out / "pki" / ca.cert_file).read_bytes())
                  if spec.ca_name else None)
        ours = pki.build_certificate(
            spec, theirs.public_key(), not_before=theirs.not_valid_before_utc,  # type: ignore[arg-type]
            not_after=theirs.not_valid_after_utc, serial=theirs.serial_number,
            signer=ca_key, issuer=issuer)  # type: ignore[arg-type]
        assert ours.tbs_certificate_bytes == theirs.tbs_certificate_bytes, spec.name
        if isinstance(ca_key, rsa.RSAPrivateKey):
            assert ours.public_bytes(serialization.Encoding.DER) == theirs.public_bytes(
                serialization.Encoding.DER), spec.name


@pytest.mark.real
@pytest.mark.parametrize("name", ["default", "ecdsa"])
def test_key_files_encode_as_kubeadms(kubeadm: Path, tmp_path_factory: pytest.TempPathFactory,
                                      name: str) -> None:
    """PKCS#1 / SEC 1 private keys and the PKIX sa.pub, exactly as client-go's keyutil."""
    out = run_kubeadm(kubeadm, config_path(name).read_text(), tmp_path_factory.getbasetemp())
    keys = sorted((out / "pki").rglob("*.key"))
    assert len(keys) == 11
    for path in keys:
        data = path.read_bytes()
        key = serialization.load_pem_private_key(data, None)
        assert pki.encode_key_pem(key) == data, path  # type: ignore[arg-type]
        assert pki.load_key(path).private_numbers() == key.private_numbers()  # type: ignore[union-attr]
    sa = serialization.load_pem_private_key((out / "pki/sa.key").read_bytes(), None)
    assert pki.encode_public_key_pem(sa.public_key()) == (out / "pki/sa.pub").read_bytes()  # type: ignore[arg-type]
    first_line = keys[0].read_text().splitlines()[0]
    assert first_line == ("-----BEGIN EC PRIVATE KEY-----" if name == "ecdsa"
                          else "-----BEGIN RSA PRIVATE KEY-----")


# --- the certificate table, from kubeadm's source --------------------------------------------

DEFAULT_TABLE = {
    # name: (file, CN, O, CA name, EKU)
    "ca": ("ca", "kubernetes", (), "", ()),
    "apiserver": ("apiserver", "kube-apiserver", (), "ca", (SERVER,)),
    "apiserver-kubelet-client": ("apiserver-kubelet-client", "kube-apiserver-kubelet-client",
                                 (), "ca", (CLIENT,)),
    "front-proxy-ca": ("front-proxy-ca", "front-proxy-ca", (), "", ()),
    "front-proxy-client": ("front-proxy-client", "front-proxy-client", (), "front-proxy-ca",
                           (CLIENT,)),
    "etcd-ca": ("etcd/ca", "etcd-ca", (), "", ()),
    "etcd-server": ("etcd/server", "cp1", (), "etcd-ca", (SERVER, CLIENT)),
    "etcd-peer": ("etcd/peer", "cp1", (), "etcd-ca", (SERVER, CLIENT)),
    "etcd-healthcheck-client": ("etcd/healthcheck-client", "kube-etcd-healthcheck-client", (),
                                "etcd-ca", (CLIENT,)),
    "apiserver-etcd-client": ("apiserver-etcd-client", "kube-apiserver-etcd-client", (),
                              "etcd-ca", (CLIENT,)),
}


def test_certificate_table_matches_kubeadm_source() -> None:
    config, ident = identity_of("default")
    specs = pki.cert_specs(config, ident)  # type: ignore[arg-type]
    assert [s.name for s in specs] == list(DEFAULT_TABLE)
    for spec in specs:
        base, cn, org, ca, eku = DEFAULT_TABLE[spec.name]
        assert (spec.base_name, spec.common_name, spec.organization, spec.ca_name) == (
            base, cn, org, ca), spec.name
        assert tuple({"server": SERVER, "client": CLIENT}[u] for u in spec.usages) == eku


def _ips(*texts: str) -> tuple[object, ...]:
    return tuple(ipaddress.ip_address(t) for t in texts)


SAN_CASES = {
    # config: {cert: (DNS names in certificate order, IPs in certificate order)}
    "default": {
        "apiserver": (["cp1", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
                       "kubernetes.default.svc.cluster.local"], _ips("10.96.0.1", "192.0.2.10")),
        "etcd-server": (["cp1", "localhost"], _ips("192.0.2.10", "127.0.0.1", "::1")),
        "etcd-peer": (["cp1", "localhost"], _ips("192.0.2.10", "127.0.0.1", "::1")),
    },
    "custom-network": {
        "apiserver": (["kubernetes", "kubernetes.default", "kubernetes.default.svc",
                       "kubernetes.default.svc.k8s.example.internal", "node-a.example.internal"],
                      _ips("10.100.0.1", "198.51.100.7")),
    },
    "control-plane-endpoint": {
        "apiserver": (["api.example.com", "cp-lb", "kubernetes", "kubernetes.default",
                       "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"],
                      _ips("10.96.0.1", "192.0.2.20")),
    },
    "extra-sans-args": {
        # certSANs lower-cased; DNS sorted; the advertise address given again in certSANs
        # appears once, at its first position; the endpoint's IP before the certSANs' IPs
        "apiserver": (["*.apps.example.com", "cp-extra", "extra.example.com", "kubernetes",
                       "kubernetes.default", "kubernetes.default.svc",
                       "kubernetes.default.svc.cluster.local"],
                      _ips("10.96.0.1", "192.0.2.30", "203.0.113.5", "203.0.113.99")),
        "etcd-server": (["cp-extra", "etcd.example.com", "localhost"],
                        _ips("192.0.2.30", "127.0.0.1", "::1", "192.0.2.31")),
        "etcd-peer": (["cp-extra", "etcd-peer.example.com", "localhost"],
                      _ips("192.0.2.30", "127.0.0.1", "::1")),
    },
}


@pytest.mark.parametrize(("name", "cert"), [(n, c) for n, v in SAN_CASES.items() for c in v])
def test_sans_in_kubeadms_order(name: str, cert: str) -> None:
    config, ident = identity_of(name)
    spec = {s.name: s for s in pki.cert_specs(config, ident)}[cert]  # type: ignore[arg-type]
    names = spec.alt_names.deduplicated()
    dns, ips = SAN_CASES[name][cert]
    assert list(names.dns) == dns
    assert names.ips == ips


def test_ipv4_mapped_and_duplicate_sans_collapse_like_go() -> None:
    names = pki.AltNames(dns=("b", "a", "b"), ips=(ipaddress.IPv4Address("10.0.0.1"),
                                                    pki.parse_ip("::ffff:10.0.0.1"),  # type: ignore[arg-type]
                                                    ipaddress.IPv6Address("::1")))
    assert names.deduplicated() == pki.AltNames(("a", "b"), (ipaddress.IPv4Address("10.0.0.1"),
                                                              ipaddress.IPv6Address("::1")))


def _version_config(version: str, extra: str = "") -> str:
    return f"""apiVersion: kubeadm.k8s.io/v1beta4
kind: InitConfiguration
localAPIEndpoint: {{advertiseAddress: 192.0.2.10}}
nodeRegistration: {{name: cp1}}
---
apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
kubernetesVersion: {version}
{extra}"""


@pytest.mark.parametrize(("version", "org"), [
    ("v1.35.4", ("kubeadm:cluster-admins",)), ("v1.36.3", ()), ("v1.37.2", ())])
def test_apiserver_kubelet_client_organization_by_version(version: str,
                                                          org: tuple[str, ...]) -> None:
    """certlist.go KubeadmCertKubeletClient: O=kubeadm:cluster-admins in v1.35.4, none since."""
    config, ident = identity_of(_version_config(version))
    spec = {s.name: s for s in pki.cert_specs(config, ident)}[  # type: ignore[arg-type]
        "apiserver-kubelet-client"]
    assert spec.organization == org


@pytest.mark.parametrize(("version", "gate", "algorithm"), [
    ("v1.36.3", "true", EncryptionAlgorithm.ECDSA_P256),
    ("v1.35.4", "false", EncryptionAlgorithm.RSA_2048),
    ("v1.36.3", None, EncryptionAlgorithm.RSA_4096),
])
def test_public_keys_ecdsa_gate_overrides_before_1_37(version: str, gate: str | None,
                                                      algorithm: EncryptionAlgorithm) -> None:
    """EncryptionAlgorithmType() (v1.35/v1.36 types.go): a set gate wins over the field."""
    extra = "encryptionAlgorithm: RSA-4096\n"
    if gate:
        extra += f"featureGates: {{PublicKeysECDSA: {gate}}}\n"
    config, _ = identity_of(_version_config(version, extra))
    assert pki.key_algorithm(config) == algorithm  # type: ignore[arg-type]


def test_external_etcd_has_no_etcd_certificates() -> None:
    text = _version_config("v1.37.2", "etcd:\n  external:\n    endpoints: [https://10.0.0.9:2379]\n")
    config, ident = identity_of(text)
    assert [s.name for s in pki.cert_specs(config, ident)] == [  # type: ignore[arg-type]
        "ca", "apiserver", "apiserver-kubelet-client", "front-proxy-ca", "front-proxy-client"]


# --- keys and certificates -------------------------------------------------------------------

@pytest.mark.parametrize(("algorithm", "kind", "size"), [
    (EncryptionAlgorithm.RSA_2048, rsa.RSAPrivateKey, 2048),
    (EncryptionAlgorithm.RSA_3072, rsa.RSAPrivateKey, 3072),
    (EncryptionAlgorithm.ECDSA_P256, ec.EllipticCurvePrivateKey, 256),
    (EncryptionAlgorithm.ECDSA_P384, ec.EllipticCurvePrivateKey, 384),
])
def test_key_algorithms(algorithm: EncryptionAlgorithm, kind: type, size: int) -> None:
    key = pki.generate_key(algorithm)
    assert isinstance(key, kind)
    assert key.key_size == size
    assert pki.key_matches_algorithm(key, algorithm)


def test_p384_ca_signs_with_sha384_and_rsa_with_sha256() -> None:
    start = datetime.datetime(2030, 1, 1, tzinfo=datetime.UTC)
    spec = pki.CertSpec("ca", "ca", "kubernetes")
    for algorithm, digest in ((EncryptionAlgorithm.ECDSA_P384, hashes.SHA384),
                              (EncryptionAlgorithm.ECDSA_P256, hashes.SHA256),
                              (EncryptionAlgorithm.RSA_2048, hashes.SHA256)):
        key = pki.generate_key(algorithm)
        cert = pki.new_ca(spec, key, not_before=start, not_after=start)
        assert isinstance(cert.signature_hash_algorithm, digest)


def test_subject_key_id_is_truncated_sha256_like_go_1_25() -> None:
    """Go >= 1.25 (x509sha256skid=1): SHA-256 of the subjectPublicKey bits, first 20 bytes;
    not cryptography's SHA-1 default."""
    key = pki.generate_key(EncryptionAlgorithm.ECDSA_P256)
    start = datetime.datetime(2030, 1, 1, tzinfo=datetime.UTC)
    cert = pki.new_ca(pki.CertSpec("ca", "ca", "kubernetes"), key, not_before=start,
                      not_after=start)
    skid = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    point = key.public_key().public_bytes(serialization.Encoding.X962,
                                          serialization.PublicFormat.UncompressedPoint)
    assert skid == hashlib.sha256(point).digest()[:20]
    assert skid != x509.SubjectKeyIdentifier.from_public_key(key.public_key()).digest


def test_serials_are_positive_63_bit() -> None:
    serials = {pki.random_serial() for _ in range(200)}
    assert len(serials) == 200
    assert all(1 <= s < 2**63 - 1 for s in serials)
    assert max(serials).bit_length() > 56  # uniform over 63 bits, not small numbers


def test_printable_string_where_go_chooses_it() -> None:
    """encoding/asn1: PrintableString unless a character is outside its set ('*', '@', '_')."""
    start = datetime.datetime(2030, 1, 1, tzinfo=datetime.UTC)
    key = pki.generate_key(EncryptionAlgorithm.ECDSA_P256)
    for cn, printable in (("system:node:cp1", True), ("a_b", False), ("x@y", False)):
        cert = pki.new_ca(pki.CertSpec("ca", "ca", cn), key, not_before=start, not_after=start)
        attr = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0]
        assert (attr._type == _ASN1Type.PrintableString) == printable, cn


def test_key_pool_hands_out_distinct_keys_and_leaves_no_children() -> None:
    pool = pki.KeyPool(EncryptionAlgorithm.RSA_2048, workers=2)
    pool.prefetch(4)
    keys = [pool.take() for _ in range(5)]  # one more than prefetched: made inline
    moduli = {k.public_key().public_numbers().n for k in keys}  # type: ignore[union-attr]
    assert len(moduli) == 5, "forked children must not share the random generator's state"
    assert all(k.key_size == 2048 for k in keys)
    pool.prefetch(3)
    pids = [j.pid for j in pool._queue if j.pid]
    assert pids
    pool.close()
    for pid in pids:
        with pytest.raises(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)


def test_missing_names_follows_go_verify_hostname() -> None:
    start = datetime.datetime.now(datetime.UTC)
    key = pki.generate_key(EncryptionAlgorithm.ECDSA_P256)
    spec = pki.CertSpec("x", "x", "x", ca_name="ca", usages=("server",), alt_names=pki.AltNames(
        ("*.apps.example.com", "Node1"), _ips("10.0.0.1")))  # type: ignore[arg-type]
    ca = pki.new_ca(pki.CertSpec("ca", "ca", "ca"), key, not_before=start, not_after=start)
    cert = pki.new_signed(spec, key.public_key(), ca_cert=ca, ca_key=key, not_before=start,
                          not_after=start)
    wanted = pki.AltNames(("a.apps.example.com", "node1", "*.apps.example.com",
                           "b.a.apps.example.com", "apps.example.com"),
                          _ips("10.0.0.1", "10.0.0.2"))  # type: ignore[arg-type]
    assert pki.missing_names(cert, wanted) == ["10.0.0.2", "b.a.apps.example.com",
                                               "apps.example.com"]


def test_chain_problem_reports_expiry_and_foreign_ca() -> None:
    now = datetime.datetime.now(datetime.UTC)
    key = pki.generate_key(EncryptionAlgorithm.ECDSA_P256)
    other = pki.generate_key(EncryptionAlgorithm.ECDSA_P256)
    day = datetime.timedelta(days=1)
    ca = pki.new_ca(pki.CertSpec("ca", "ca", "ca"), key, not_before=now - day,
                    not_after=now + day)
    foreign = pki.new_ca(pki.CertSpec("ca", "ca", "ca"), other, not_before=now - day,
                         not_after=now + day)
    leaf = pki.CertSpec("l", "l", "l", ca_name="ca", usages=("client",))
    good = pki.new_signed(leaf, key.public_key(), ca_cert=ca, ca_key=key, not_before=now - day,
                          not_after=now + day)
    expired = pki.new_signed(leaf, key.public_key(), ca_cert=ca, ca_key=key,
                             not_before=now - 2 * day, not_after=now - day)
    assert pki.chain_problem(good, [], ca, now) == ""
    assert "expired" in pki.chain_problem(expired, [], ca, now)
    assert "not signed by" in pki.chain_problem(good, [], foreign, now)


def test_unreadable_key_is_a_clear_error_without_key_material(tmp_path: Path) -> None:
    key = pki.generate_key(EncryptionAlgorithm.RSA_2048)
    pem = pki.encode_key_pem(key)
    broken = tmp_path / "apiserver.key"
    broken.write_bytes(pem[:200] + b"\n-----END RSA PRIVATE KEY-----\n")
    with pytest.raises(PhaseFailed) as err:
        pki.load_key(broken)
    assert str(broken) in err.value.message
    for line in pem.decode().splitlines()[1:3]:
        assert line[:20] not in err.value.message + err.value.hint
    garbage = tmp_path / "ca.crt"
    garbage.write_text("not a certificate\n")
    with pytest.raises(PhaseFailed, match="is not a PEM certificate file"):
        pki.load_cert(garbage)


def test_key_pool_without_fork_still_delivers(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_fork() -> int:
        raise BlockingIOError("fork: resource temporarily unavailable")
    monkeypatch.setattr(os, "fork", no_fork)
    pool = pki.KeyPool(EncryptionAlgorithm.RSA_2048, workers=2)
    pool.prefetch(2)
    keys = [pool.take(), pool.take()]
    assert all(isinstance(k, rsa.RSAPrivateKey) for k in keys)
    assert pool.pending() == 0
