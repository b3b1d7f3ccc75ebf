"""kubeadm's certificates and keys, built the way kubeadm builds them.

Sources (read at k8s.io/kubernetes v1.37.2, diffed against v1.36.3 and v1.35.4):
cmd/kubeadm/app/phases/certs/certlist.go (the certificate table, validity), phases/certs/certs.go
(sa keys), util/pkiutil/pki_helpers.go (keys, templates, SANs), constants/constants.go; client-go
util/keyutil and util/cert (PEM block types); Go 1.26 crypto/x509 CreateCertificate (extension
order, key identifiers), with `godebug default=go1.25`/`go1.26` in kubernetes' go.mod at all three
pinned tags, i.e. x509sha256skid=1.

What comes out is what kubeadm's Go code produces from the same inputs, down to the DER of the
to-be-signed part (tests rebuild real kubeadm certificates byte for byte from their serial, times
and keys):

- Subject: O (if any) then CN, one RDN each, PrintableString when Go's asn1 would pick it, else
  UTF8String. Issuer = the CA's subject.
- Extensions in Go's order: KeyUsage (critical; DigitalSignature+KeyEncipherment, +CertSign for
  CAs), ExtKeyUsage (leaves), BasicConstraints (critical, CA true/false, no path length),
  SubjectKeyId (CAs only: the first 20 bytes of SHA-256 of the subjectPublicKey bits, RFC 7093),
  AuthorityKeyId (leaves: the issuer's SubjectKeyId, when it has one and the subjects differ),
  SubjectAltName (DNS names then IPs; a CA carries its CN as DNS name).
- SANs: kubeadm appends, then removes duplicates: DNS names become a *sorted* set, IPs keep the
  first occurrence of each (RemoveDuplicateAltNames).
- Serial: uniform in [1, 2^63-1). NotBefore: start time - 5 min; NotAfter: start time + the
  configured validity (leaves) or CA validity (CAs). Kubeconfig client certificates get the CA's
  NotBefore (NewSignedCert's fallback).
- Signature: SHA256-RSA for RSA CA keys, ECDSA with SHA-256/384 for P-256/P-384.
- Keys: RSA-2048/3072/4096 or ECDSA P-256/P-384, PEM "RSA PRIVATE KEY" (PKCS#1) or "EC PRIVATE
  KEY" (SEC 1); public keys PEM "PUBLIC KEY" (PKIX).

Keys come from kubeinit.keygen (re-exported here), which makes the RSA keys in parallel.
"""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.x509.name import _ASN1Type
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from kubeinit import hostfs
from kubeinit.config import Config, EncryptionAlgorithm, is_dns1123_subdomain
from kubeinit.errors import PhaseFailed
from kubeinit.identity import Identity
from kubeinit.keygen import KeyPool, PrivateKey, generate_key, key_matches_algorithm

__all__ = ["KeyPool", "PrivateKey", "generate_key", "key_matches_algorithm"]  # re-exported

PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey
IP = ipaddress.IPv4Address | ipaddress.IPv6Address
_E = TypeVar("_E", bound=x509.ExtensionType)

# constants.go
CERTIFICATE_BACKDATE = datetime.timedelta(minutes=5)
CLUSTER_ADMINS_GROUP = "kubeadm:cluster-admins"
MAX_SERIAL = 2**63 - 1  # math.MaxInt64

SERVER_AUTH = "server"
CLIENT_AUTH = "client"
_EKU = {SERVER_AUTH: ExtendedKeyUsageOID.SERVER_AUTH, CLIENT_AUTH: ExtendedKeyUsageOID.CLIENT_AUTH}
_WILDCARD_SUBDOMAIN = re.compile(
    r"\A\*\.[a-z0-9]([-a-z0-9]*[a-z0-9])?"
    r"(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\Z"
)


# --- what kubeadm makes --------------------------------------------------------------------


@dataclass(frozen=True)
class AltNames:
    dns: tuple[str, ...] = ()
    ips: tuple[IP, ...] = ()

    def deduplicated(self) -> AltNames:
        """pkiutil.RemoveDuplicateAltNames: DNS names as a sorted set, IPs first-seen order."""
        ips: list[IP] = []
        for ip in self.ips:
            if ip not in ips:
                ips.append(ip)
        return AltNames(dns=tuple(sorted(set(self.dns))), ips=tuple(ips))


@dataclass(frozen=True)
class CertSpec:
    """One kubeadm certificate (certlist.go's KubeadmCert after its config mutators ran)."""

    name: str  # the phase name, e.g. "etcd-server"
    base_name: str  # file name without suffix, relative to the certificates dir: "etcd/server"
    common_name: str
    organization: tuple[str, ...] = ()
    ca_name: str = ""  # the phase name of the signing CA; "" for a CA
    usages: tuple[str, ...] = ()  # SERVER_AUTH / CLIENT_AUTH, in kubeadm's order
    alt_names: AltNames = field(default_factory=AltNames)  # as kubeadm appends them

    @property
    def is_ca(self) -> bool:
        return not self.ca_name

    @property
    def cert_file(self) -> str:
        return f"{self.base_name}.crt"

    @property
    def key_file(self) -> str:
        return f"{self.base_name}.key"


def key_algorithm(config: Config) -> EncryptionAlgorithm:
    """ClusterConfiguration.EncryptionAlgorithmType(): up to v1.36 a PublicKeysECDSA feature
    gate that is set (true or false) overrides encryptionAlgorithm; v1.37 removed the gate."""
    gate = config.cluster.feature_gates.get("PublicKeysECDSA")
    if gate is not None and config.release.minor <= 36:
        return EncryptionAlgorithm.ECDSA_P256 if gate else EncryptionAlgorithm.RSA_2048
    return config.cluster.encryption_algorithm


def parse_ip(text: str) -> IP | None:
    """netutils.ParseIPSloppy, normalised as Go's net.IP: an IPv4-mapped IPv6 address is IPv4."""
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def _append_sans(names: AltNames, sans: Sequence[str]) -> AltNames:
    """appendSANsToAltNames: IPs, RFC 1123 names and wildcard names; anything else is dropped
    (kubeadm warns; configuration validation already rejects such entries)."""
    dns, ips = list(names.dns), list(names.ips)
    for san in sans:
        ip = parse_ip(san)
        if ip is not None:
            ips.append(ip)
        elif is_dns1123_subdomain(san) or _WILDCARD_SUBDOMAIN.match(san):
            dns.append(san)
    return AltNames(dns=tuple(dns), ips=tuple(ips))


def _split_host(endpoint: str) -> str:
    """The host of kubeadm's ParseHostPort (config validation has checked the endpoint)."""
    if endpoint.startswith("["):
        return endpoint[1 : endpoint.index("]")]
    if endpoint.count(":") == 1:
        return endpoint.split(":", maxsplit=1)[0]
    return endpoint


def service_vip(service_subnet: str) -> IP:
    """constants.GetAPIServerVirtualIP: the first address of the first service CIDR."""
    net = ipaddress.ip_network(service_subnet.split(",", maxsplit=1)[0].strip(), strict=False)
    return net.network_address + 1


def api_server_alt_names(config: Config, identity: Identity) -> AltNames:
    """pkiutil.GetAPIServerAltNames, before de-duplication."""
    cluster = config.cluster
    dns = [identity.node_name] if identity.node_name else []
    dns += ["kubernetes", "kubernetes.default", "kubernetes.default.svc"]
    if cluster.networking.dns_domain:
        dns.append(f"kubernetes.default.svc.{cluster.networking.dns_domain}")
    advertise = parse_ip(identity.advertise_address)
    assert advertise is not None, "the identity's advertise address was validated"
    names = AltNames(
        dns=tuple(dns), ips=(service_vip(cluster.networking.service_subnet), advertise)
    )
    if cluster.control_plane_endpoint:
        host = _split_host(cluster.control_plane_endpoint)
        ip = parse_ip(host)
        names = (
            AltNames(names.dns, (*names.ips, ip))
            if ip is not None
            else AltNames((*names.dns, host), names.ips)
        )
    return _append_sans(names, cluster.api_server.cert_sans)


def etcd_alt_names(identity: Identity, extra_sans: Sequence[str]) -> AltNames:
    """pkiutil.getAltNames for etcd/server (serverCertSANs) and etcd/peer (peerCertSANs)."""
    dns = (identity.node_name, "localhost") if identity.node_name else ("localhost",)
    advertise = parse_ip(identity.advertise_address)
    assert advertise is not None
    names = AltNames(
        dns=dns, ips=(advertise, ipaddress.IPv4Address("127.0.0.1"), ipaddress.IPv6Address("::1"))
    )
    return _append_sans(names, extra_sans)


def cert_specs(config: Config, identity: Identity) -> tuple[CertSpec, ...]:
    """certs.GetDefaultCertList (local etcd) or GetCertsWithoutEtcd, in kubeadm's order."""
    kubelet_client_org = (CLUSTER_ADMINS_GROUP,) if config.release.kubelet_client_has_org else ()
    specs = [
        CertSpec("ca", "ca", "kubernetes"),
        CertSpec(
            "apiserver",
            "apiserver",
            "kube-apiserver",
            ca_name="ca",
            usages=(SERVER_AUTH,),
            alt_names=api_server_alt_names(config, identity),
        ),
        CertSpec(
            "apiserver-kubelet-client",
            "apiserver-kubelet-client",
            "kube-apiserver-kubelet-client",
            organization=kubelet_client_org,
            ca_name="ca",
            usages=(CLIENT_AUTH,),
        ),
        CertSpec("front-proxy-ca", "front-proxy-ca", "front-proxy-ca"),
        CertSpec(
            "front-proxy-client",
            "front-proxy-client",
            "front-proxy-client",
            ca_name="front-proxy-ca",
            usages=(CLIENT_AUTH,),
        ),
    ]
    local = config.local_etcd
    if local is not None:
        specs += [
            CertSpec("etcd-ca", "etcd/ca", "etcd-ca"),
            # etcd 3.2+ wants ClientAuth on the server certificate too (certlist.go TODO)
            CertSpec(
                "etcd-server",
                "etcd/server",
                identity.node_name,
                ca_name="etcd-ca",
                usages=(SERVER_AUTH, CLIENT_AUTH),
                alt_names=etcd_alt_names(identity, local.server_cert_sans),
            ),
            CertSpec(
                "etcd-peer",
                "etcd/peer",
                identity.node_name,
                ca_name="etcd-ca",
                usages=(SERVER_AUTH, CLIENT_AUTH),
                alt_names=etcd_alt_names(identity, local.peer_cert_sans),
            ),
            CertSpec(
                "etcd-healthcheck-client",
                "etcd/healthcheck-client",
                "kube-etcd-healthcheck-client",
                ca_name="etcd-ca",
                usages=(CLIENT_AUTH,),
            ),
            CertSpec(
                "apiserver-etcd-client",
                "apiserver-etcd-client",
                "kube-apiserver-etcd-client",
                ca_name="etcd-ca",
                usages=(CLIENT_AUTH,),
            ),
        ]
    return tuple(specs)


def validity(
    spec: CertSpec, config: Config, start: datetime.datetime
) -> tuple[datetime.datetime, datetime.datetime]:
    """KubeadmCert.GetConfig: (NotBefore, NotAfter) for a certificate of the certs phase."""
    period = (
        config.cluster.ca_certificate_validity_period
        if spec.is_ca
        else config.cluster.certificate_validity_period
    )
    return start - CERTIFICATE_BACKDATE, start + period


# --- keys ----------------------------------------------------------------------------------


def encode_key_pem(key: PrivateKey) -> bytes:
    """keyutil.MarshalPrivateKeyToPEM: PKCS#1 for RSA, SEC 1 for ECDSA."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )


def encode_public_key_pem(key: PublicKey) -> bytes:
    """pkiutil.EncodePublicKeyPEM: PKIX in a PUBLIC KEY block."""
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def encode_cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def random_serial() -> int:
    """crypto/rand.Int(MaxInt64 - 1) + 1: uniform in [1, MaxInt64)."""
    return secrets.randbelow(MAX_SERIAL - 1) + 1


# --- certificates --------------------------------------------------------------------------


def _printable(text: str) -> bool:
    """encoding/asn1's choice for an untyped string (isPrintable, no '*' or '&')."""
    return all(c.isascii() and (c.isalnum() or c in " '()+,-./:=?") for c in text)


def _name(common_name: str, organization: Sequence[str]) -> x509.Name:
    """pkix.Name{CommonName, Organization}.ToRDNSequence(): O first, then CN."""

    def attr(oid: x509.ObjectIdentifier, value: str) -> x509.NameAttribute[str]:
        kind = _ASN1Type.PrintableString if _printable(value) else _ASN1Type.UTF8String
        return x509.NameAttribute(oid, value, _type=kind)

    rdns = []
    if organization:
        rdns.append(
            x509.RelativeDistinguishedName(
                [attr(NameOID.ORGANIZATION_NAME, o) for o in organization]
            )
        )
    rdns.append(x509.RelativeDistinguishedName([attr(NameOID.COMMON_NAME, common_name)]))
    return x509.Name(rdns)


def subject_key_id(key: PublicKey) -> bytes:
    """Go >= 1.25 CreateCertificate for a CA: SHA-256 of the subjectPublicKey bits, 20 bytes."""
    if isinstance(key, rsa.RSAPublicKey):
        bits = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)
    else:
        bits = key.public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
    return hashlib.sha256(bits).digest()[:20]


def _hash_for(signer: PrivateKey) -> hashes.SHA256 | hashes.SHA384 | hashes.SHA512:
    """x509.signingParamsForKey without an explicit SignatureAlgorithm."""
    if isinstance(signer, ec.EllipticCurvePrivateKey):
        if signer.curve.key_size == 384:
            return hashes.SHA384()
        if signer.curve.key_size == 521:
            return hashes.SHA512()
    return hashes.SHA256()


def build_certificate(
    spec: CertSpec,
    public_key: PublicKey,
    *,
    not_before: datetime.datetime,
    not_after: datetime.datetime,
    serial: int,
    signer: PrivateKey,
    issuer: x509.Certificate | None = None,
) -> x509.Certificate:
    """NewSelfSignedCACert (issuer None) or NewSignedCert, as Go's CreateCertificate encodes
    them. `serial`, times and keys are inputs so a certificate can be rebuilt exactly."""
    subject = _name(spec.common_name, spec.organization)
    issuer_name = subject if issuer is None else issuer.subject
    builder = (
        x509.CertificateBuilder()
        .serial_number(serial)
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(public_key)
        .not_valid_before(not_before)
        .not_valid_after(not_after)
    )
    builder = builder.add_extension(
        x509.KeyUsage(
            digital_signature=True,
            content_commitment=False,
            key_encipherment=True,
            data_encipherment=False,
            key_agreement=False,
            key_cert_sign=spec.is_ca,
            crl_sign=False,
            encipher_only=False,
            decipher_only=False,
        ),
        critical=True,
    )
    if spec.usages:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([_EKU[u] for u in spec.usages]), critical=False
        )
    builder = builder.add_extension(
        x509.BasicConstraints(ca=spec.is_ca, path_length=None), critical=True
    )
    if spec.is_ca:
        builder = builder.add_extension(
            x509.SubjectKeyIdentifier(subject_key_id(public_key)), critical=False
        )
    if issuer is not None and issuer.subject.public_bytes() != subject.public_bytes():
        skid = _extension(issuer, x509.SubjectKeyIdentifier)
        if skid is not None and skid.digest:
            builder = builder.add_extension(
                x509.AuthorityKeyIdentifier(
                    key_identifier=skid.digest,
                    authority_cert_issuer=None,
                    authority_cert_serial_number=None,
                ),
                critical=False,
            )
    names = (
        AltNames(dns=(spec.common_name,))
        if spec.is_ca and issuer is None
        else spec.alt_names.deduplicated()
    )
    general: list[x509.GeneralName] = [x509.DNSName(d) for d in names.dns]
    general += [x509.IPAddress(ip) for ip in names.ips]
    if general:
        builder = builder.add_extension(x509.SubjectAlternativeName(general), critical=False)
    return builder.sign(signer, _hash_for(signer))


def new_ca(
    spec: CertSpec, key: PrivateKey, *, not_before: datetime.datetime, not_after: datetime.datetime
) -> x509.Certificate:
    return build_certificate(
        spec,
        key.public_key(),
        not_before=not_before,
        not_after=not_after,
        serial=random_serial(),
        signer=key,
    )


def new_signed(
    spec: CertSpec,
    public_key: PublicKey,
    *,
    ca_cert: x509.Certificate,
    ca_key: PrivateKey,
    not_before: datetime.datetime,
    not_after: datetime.datetime,
) -> x509.Certificate:
    return build_certificate(
        spec,
        public_key,
        not_before=not_before,
        not_after=not_after,
        serial=random_serial(),
        signer=ca_key,
        issuer=ca_cert,
    )


def _extension(cert: x509.Certificate, kind: type[_E]) -> _E | None:
    try:
        return cert.extensions.get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return None


def is_ca(cert: x509.Certificate) -> bool:
    bc = _extension(cert, x509.BasicConstraints)
    return bc is not None and bc.ca


# --- reading and checking what is on disk --------------------------------------------------


def load_certs(path: Path) -> list[x509.Certificate]:
    """certutil.CertsFromFile: every CERTIFICATE block; the first is the certificate itself."""
    try:
        data = hostfs.read_bytes(path)
    except OSError as e:
        raise PhaseFailed(f"cannot read {path}: {e.strerror}") from None
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError:
        raise PhaseFailed(
            f"{path} is not a PEM certificate file", hint=f"replace or remove {path.name}"
        ) from None
    return certs


def load_cert(path: Path) -> x509.Certificate:
    return load_certs(path)[0]


def load_key(path: Path) -> PrivateKey:
    """keyutil.PrivateKeyFromFile restricted to RSA and ECDSA (TryLoadKeyFromDisk)."""
    try:
        data = hostfs.read_bytes(path)
    except OSError as e:
        raise PhaseFailed(f"cannot read {path}: {e.strerror}") from None
    try:
        # OpenSSL's RSA key check costs as much as making a key (~80 ms for 2048 bits); a
        # sign-and-verify round trip below catches an inconsistent key for ~1 ms instead.
        key = serialization.load_pem_private_key(
            data, password=None, unsafe_skip_rsa_key_validation=True
        )
    except (ValueError, TypeError):  # the parser's text could quote key material: not shown
        raise PhaseFailed(
            f"{path} is not an unencrypted PEM private key", hint=f"replace or remove {path.name}"
        ) from None
    except UnsupportedAlgorithm:
        raise PhaseFailed(
            f"{path}: unsupported private key", hint="kubeadm accepts RSA and ECDSA keys"
        ) from None
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise PhaseFailed(
            f"the private key file {path} is neither in RSA nor ECDSA format",
            hint="kubeadm accepts RSA and ECDSA keys",
        )
    if not _signs_consistently(key):
        raise PhaseFailed(
            f"{path} holds an inconsistent private key", hint=f"replace or remove {path.name}"
        )
    return key


def _signs_consistently(key: PrivateKey) -> bool:
    message = b"kubeinit key self-test"
    try:
        if isinstance(key, rsa.RSAPrivateKey):
            key.public_key().verify(
                key.sign(message, padding.PKCS1v15(), hashes.SHA256()),
                message,
                padding.PKCS1v15(),
                hashes.SHA256(),
            )
        else:
            key.public_key().verify(
                key.sign(message, ec.ECDSA(hashes.SHA256())), message, ec.ECDSA(hashes.SHA256())
            )
    except (InvalidSignature, ValueError):
        return False
    return True


def load_public_key(path: Path) -> PublicKey:
    try:
        key = serialization.load_pem_public_key(hostfs.read_bytes(path))
    except OSError as e:
        raise PhaseFailed(f"cannot read {path}: {e.strerror}") from None
    except (ValueError, TypeError):
        raise PhaseFailed(
            f"{path} is not a PEM public key", hint=f"replace or remove {path.name}"
        ) from None
    if not isinstance(key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey):
        raise PhaseFailed(f"{path} is neither an RSA nor an ECDSA public key")
    return key


def same_public_key(a: CertificatePublicKeyTypes, b: CertificatePublicKeyTypes) -> bool:
    der = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    return a.public_bytes(*der) == b.public_bytes(*der)


def period_problem(cert: x509.Certificate, now: datetime.datetime) -> str:
    """pkiutil.ValidateCertPeriod: '' when `now` is inside the validity period."""
    if now < cert.not_valid_before_utc:
        return f"not valid until {cert.not_valid_before_utc:%Y-%m-%d %H:%M:%S} UTC"
    if now > cert.not_valid_after_utc:
        return f"expired on {cert.not_valid_after_utc:%Y-%m-%d %H:%M:%S} UTC"
    return ""


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def chain_problem(
    cert: x509.Certificate,
    intermediates: Sequence[x509.Certificate],
    root: x509.Certificate,
    now: datetime.datetime,
) -> str:
    """pkiutil.VerifyCertChain (Go's Verify with ExtKeyUsageAny): '' when `cert` chains to
    `root`, through `intermediates`, with every certificate valid at `now`."""
    current, pool = cert, list(intermediates)
    for _ in range(len(intermediates) + 1):
        problem = period_problem(current, now)
        if problem:
            return f"certificate {current.subject.rfc4514_string()} {problem}"
        if _issued_by(current, root):
            problem = period_problem(root, now)
            return f"the CA certificate {problem}" if problem else ""
        parent = next((c for c in pool if is_ca(c) and _issued_by(current, c)), None)
        if parent is None:
            break
        pool.remove(parent)
        current = parent
    return f"not signed by the CA {root.subject.rfc4514_string()}"


def _matches_dns(pattern: str, host: str) -> bool:
    """crypto/x509 matchHostnames: a leftmost '*' label matches exactly one label."""
    p, h = pattern.lower().rstrip(".").split("."), host.lower().rstrip(".").split(".")
    if len(p) != len(h) or not h[0]:
        return False
    return all(a == b or (i == 0 and a == "*") for i, (a, b) in enumerate(zip(p, h, strict=True)))


def missing_names(cert: x509.Certificate, names: AltNames) -> list[str]:
    """validateCertificateWithConfig: the names of `names` that cert.VerifyHostname rejects."""
    san = _extension(cert, x509.SubjectAlternativeName)
    have_dns = san.get_values_for_type(x509.DNSName) if san else []
    have_ips = (
        {parse_ip(str(ip)) for ip in san.get_values_for_type(x509.IPAddress)} if san else set()
    )
    missing = [str(ip) for ip in names.ips if ip not in have_ips]
    for dns in names.dns:
        if "*" in dns:  # not a valid host name: Go compares it literally (matchExactly)
            ok = any(d.lower().rstrip(".") == dns.lower().rstrip(".") for d in have_dns)
        else:
            ok = any(_matches_dns(d, dns) for d in have_dns)
        if not ok:
            missing.append(dns)
    return missing
