"""Turn rendered files into facts: flat {field path: comparable value} maps.

Both sides go through the same extraction, so a difference in a fact is a difference in output.
Values that are random per run (key material, serial numbers, wall-clock timestamps) are kept
as raw facts, which allowlist.yaml explains, and are also reduced to the property kubeadm's
source guarantees (serial range, NotBefore/NotAfter relative to the run, SKI method, "key
matches certificate"), which must be equal.

Field path syntax: `a.b` for mapping keys, `list[name]` for list items that carry a `name`
(containers, volumes, clusters, users, ...), `list[3]` for other items, `command[--flag]` for
command-line flags, and `path~order` for the order of keys/items/flags at `path` (compared on
the entries both sides have, so a missing entry is reported once, not twice).
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import re
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtensionOID

Facts = dict[str, Any]
ORDER = "~order"
MAX_SERIAL = 2**63 - 1  # pki_helpers.go: cryptorand.Int(MaxInt64-1) + 1, i.e. [1, MaxInt64)


# ---------------------------------------------------------------- generic structure


def _flag_key(arg: str) -> str:
    return arg.split("=", 1)[0]


def _is_flag_list(items: list[Any]) -> bool:
    return bool(items) and all(isinstance(i, str) for i in items) and any(
        i.startswith("--") for i in items)


def flatten(value: Any, path: str = "", out: Facts | None = None) -> Facts:
    """Every leaf of a parsed YAML/JSON document as a fact, plus the order of keys and items."""
    out = {} if out is None else out
    if isinstance(value, Mapping):
        if not value:
            out[path] = {}
        keys = [str(k) for k in value]
        if len(keys) > 1:
            out[path + ORDER] = keys
        for k, v in value.items():
            flatten(v, f"{path}.{k}" if path else str(k), out)
    elif isinstance(value, list):
        if not value:
            out[path] = []
        elif all(isinstance(i, Mapping) and isinstance(i.get("name"), str) for i in value) and len(
                {i["name"] for i in value}) == len(value):
            out[path + ORDER] = [i["name"] for i in value]
            for i in value:
                flatten(i, f"{path}[{i['name']}]", out)
        elif _is_flag_list(value):
            flags(value, path, out)
        elif all(not isinstance(i, Mapping | list) for i in value):
            out[path] = list(value)
        else:
            for n, i in enumerate(value):
                flatten(i, f"{path}[{n}]", out)
    else:
        out[path] = value
    return out


def flags(argv: Iterable[str], path: str, out: Facts) -> Facts:
    """A command line: each flag's value keyed by flag name (the set view) and the full
    sequence (the order view). Positional words keep their index."""
    seq = []
    seen: dict[str, int] = {}
    for n, arg in enumerate(argv):
        if arg.startswith("--"):
            name = _flag_key(arg)
            seen[name] = seen.get(name, 0) + 1
            key = name if seen[name] == 1 else f"{name}#{seen[name]}"
            out[f"{path}[{key}]"] = arg.split("=", 1)[1] if "=" in arg else True
            seq.append(key)
        else:
            out[f"{path}[{n}]"] = arg
            seq.append(f"[{n}]")
    out[path + ORDER] = seq
    return out


def prefixed(prefix: str, facts: Facts) -> Facts:
    return {f"{prefix}.{k}" if k else prefix: v for k, v in facts.items()}


# ---------------------------------------------------------------- files and modes


def tree_facts(root: Path, trees: Iterable[str], *, ignore: Iterable[str] = ()) -> Facts:
    """`node path -> "file 0600 0:0"` for everything under `trees` (and the trees themselves)."""
    skip = {p.rstrip("/") for p in ignore}
    out: Facts = {}
    for tree in trees:
        top = root / tree.lstrip("/")
        if not top.exists() and not top.is_symlink():
            continue
        for p in [top, *sorted(top.rglob("*"))]:
            node = "/" + str(p.relative_to(root))
            if node in skip:
                continue
            out[node] = describe_inode(p)
    return out


def describe_inode(p: Path) -> str:
    st = p.lstat()
    owner = f"{st.st_uid}:{st.st_gid}"
    mode = f"{stat.S_IMODE(st.st_mode):04o}"
    if stat.S_ISLNK(st.st_mode):
        return f"symlink -> {p.readlink()}"
    kind = "dir" if stat.S_ISDIR(st.st_mode) else "file" if stat.S_ISREG(st.st_mode) else "other"
    return f"{kind} {mode} {owner}"


# ---------------------------------------------------------------- time relative to the run


def go_duration(seconds: float) -> str:
    """Go's time.Duration.String() for whole seconds ("8760h0m0s", "5m0s", "-1m30s")."""
    s = round(seconds)
    sign = "-" if s < 0 else ""
    s = abs(s)
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    if h:
        return f"{sign}{h}h{m}m{sec}s"
    if m:
        return f"{sign}{m}m{sec}s"
    return f"{sign}{sec}s"


@dataclass(frozen=True)
class Window:
    """The wall-clock span of the process(es) that rendered a tree. kubeadm takes one start time
    per process (app/util/starttime.go); x509 times have whole seconds."""

    start: datetime.datetime
    end: datetime.datetime

    def relative(self, t: datetime.datetime) -> str:
        """`t` as "start+X" / "start-X", X rounded to the minute: exact enough to tell a 5 min
        backdate or a validity period apart, immune to a process taking a few seconds."""
        base = self.start.replace(microsecond=0)
        delta = (t - base).total_seconds()
        if base <= t <= self.end:
            return "start"
        rounded = round(delta / 60) * 60
        return f"start{'+' if rounded >= 0 else '-'}{go_duration(abs(rounded))}"


# ---------------------------------------------------------------- keys and certificates


def _pubkey_facts(key: Any) -> Facts:
    if isinstance(key, rsa.RSAPublicKey):
        return {"algorithm": "RSA", "size": key.key_size, "exponent": key.public_numbers().e}
    if isinstance(key, ec.EllipticCurvePublicKey):
        return {"algorithm": "ECDSA", "curve": key.curve.name}
    return {"algorithm": type(key).__name__}


def spki_sha256(key: Any) -> str:
    der = key.public_bytes(serialization.Encoding.DER,
                           serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


def _ski_method(cert: x509.Certificate, ski: bytes) -> str:
    """Which rule produced the SubjectKeyId (Go 1.25+ uses truncated SHA-256, older SHA-1;
    both hash the subjectPublicKey BIT STRING, RFC 5280 4.2.1.2 / RFC 7093)."""
    bits = x509.SubjectKeyIdentifier.from_public_key(cert.public_key()).digest  # SHA-1 of bits
    if ski == bits:
        return "sha1(subjectPublicKey)"
    raw = cert.public_key().public_bytes(serialization.Encoding.DER,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)
    # The BIT STRING content is the tail of the SPKI after the algorithm identifier; hash the
    # same bytes the SHA-1 method hashes by recomputing from the DER structure.
    spk = _subject_public_key_bits(raw)
    if ski == hashlib.sha256(spk).digest()[:20]:
        return "sha256(subjectPublicKey)[:20]"
    return f"other ({len(ski)} bytes)"


def _der_len(buf: bytes, i: int) -> tuple[int, int]:
    first = buf[i]
    if first < 0x80:
        return first, i + 1
    n = first & 0x7F
    return int.from_bytes(buf[i + 1:i + 1 + n], "big"), i + 1 + n


def _subject_public_key_bits(spki_der: bytes) -> bytes:
    """The subjectPublicKey BIT STRING contents (without the unused-bits byte)."""
    _, i = _der_len(spki_der, 1)  # outer SEQUENCE
    alg_len, j = _der_len(spki_der, i + 1)  # AlgorithmIdentifier SEQUENCE
    k = j + alg_len
    assert spki_der[k] == 0x03, "SubjectPublicKeyInfo without a BIT STRING"
    bs_len, m = _der_len(spki_der, k + 1)
    return spki_der[m + 1:m + bs_len]


def _ext_name(ext: x509.Extension[Any]) -> str:
    return ext.oid._name if ext.oid._name != "Unknown OID" else ext.oid.dotted_string


def _key_usage(ku: x509.KeyUsage) -> list[str]:
    names = ["digital_signature", "content_commitment", "key_encipherment", "data_encipherment",
             "key_agreement", "key_cert_sign", "crl_sign"]
    used = [n for n in names if getattr(ku, n)]
    if ku.key_agreement:
        used += [n for n in ("encipher_only", "decipher_only") if getattr(ku, n)]
    return used


def _san_entries(san: x509.SubjectAlternativeName) -> list[str]:
    out = []
    for g in san:
        if isinstance(g, x509.DNSName):
            out.append(f"DNS:{g.value}")
        elif isinstance(g, x509.IPAddress):
            out.append(f"IP:{g.value}")
        else:
            out.append(f"{type(g).__name__}:{g.value}")
    return out


@dataclass(frozen=True)
class Authority:
    """A CA certificate found in the same tree, for chain checks."""

    path: str
    cert: x509.Certificate


def find_authorities(root: Path, trees: Iterable[str]) -> list[Authority]:
    out = []
    for tree in trees:
        top = root / tree.lstrip("/")
        for p in sorted(top.rglob("*.crt")) if top.is_dir() else []:
            cert = x509.load_pem_x509_certificate(p.read_bytes())
            try:
                bc = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
            except x509.ExtensionNotFound:
                continue
            if bc.ca:
                out.append(Authority(path="/" + str(p.relative_to(root)), cert=cert))
    return out


def _issuer_of(cert: x509.Certificate, cas: list[Authority]) -> tuple[str, Authority | None]:
    if cert.issuer == cert.subject:
        try:
            cert.verify_directly_issued_by(cert)
        except (InvalidSignature, ValueError, TypeError) as e:
            return f"self-signed, signature INVALID ({type(e).__name__})", None
        return "self-signed", None
    candidates = [a for a in cas if a.cert.subject == cert.issuer]
    for a in candidates:
        try:
            cert.verify_directly_issued_by(a.cert)
        except (InvalidSignature, ValueError, TypeError):
            continue
        return f"signed by {a.path}", a
    if candidates:
        return f"signature does not verify against {candidates[0].path}", None
    return "issuer not found in the tree", None


def cert_facts(cert: x509.Certificate, *, cas: list[Authority], window: Window) -> Facts:
    f: Facts = {
        "version": cert.version.name,
        "subject": cert.subject.rfc4514_string(),
        "subject.attributes": [f"{a.oid._name}={a.value!s}" for a in cert.subject],
        "issuer": cert.issuer.rfc4514_string(),
        "signature_algorithm": cert.signature_algorithm_oid._name,
        "serial": cert.serial_number,
        "serial.in_kubeadm_range": 1 <= cert.serial_number < MAX_SERIAL,
        "not_before": cert.not_valid_before_utc.isoformat(),
        "not_after": cert.not_valid_after_utc.isoformat(),
        "valid_from": window.relative(cert.not_valid_before_utc),
        "valid_until": window.relative(cert.not_valid_after_utc),
        "public_key.sha256": spki_sha256(cert.public_key()),
    }
    f.update(prefixed("public_key", _pubkey_facts(cert.public_key())))
    chain, issuer = _issuer_of(cert, cas)
    f["chain"] = chain
    if issuer is not None:
        f["valid_from.equals_issuer_valid_from"] = (
            cert.not_valid_before_utc == issuer.cert.not_valid_before_utc)
    f["extensions" + ORDER] = [_ext_name(e) for e in cert.extensions]
    issuer_ski = None
    if issuer is not None:
        try:
            issuer_ski = issuer.cert.extensions.get_extension_for_class(
                x509.SubjectKeyIdentifier).value.digest
        except x509.ExtensionNotFound:
            issuer_ski = None
    for ext in cert.extensions:
        name = _ext_name(ext)
        f[f"extensions.{name}.critical"] = ext.critical
        v = ext.value
        if isinstance(v, x509.KeyUsage):
            f["key_usage"] = _key_usage(v)
        elif isinstance(v, x509.ExtendedKeyUsage):
            f["ext_key_usage"] = [u._name for u in v]
        elif isinstance(v, x509.BasicConstraints):
            f["basic_constraints.ca"] = v.ca
            f["basic_constraints.path_length"] = v.path_length
        elif isinstance(v, x509.SubjectAlternativeName):
            f["san"] = _san_entries(v)
        elif isinstance(v, x509.SubjectKeyIdentifier):
            f["ski"] = v.digest.hex()
            f["ski.method"] = _ski_method(cert, v.digest)
        elif isinstance(v, x509.AuthorityKeyIdentifier):
            f["aki.keyid"] = v.key_identifier.hex() if v.key_identifier else None
            f["aki.has_issuer_and_serial"] = v.authority_cert_issuer is not None
            if ext.oid == ExtensionOID.AUTHORITY_KEY_IDENTIFIER and issuer_ski is not None:
                f["aki.keyid_is_issuer_ski"] = v.key_identifier == issuer_ski
            elif cert.issuer == cert.subject:
                f["aki.keyid_is_own_ski"] = v.key_identifier == _own_ski(cert)
        else:
            f[f"extensions.{name}.value"] = repr(v)
    return f


def _own_ski(cert: x509.Certificate) -> bytes | None:
    try:
        return cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    except x509.ExtensionNotFound:
        return None


PEM_RE = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----\r?\n.*?-----END \1-----\r?\n?", re.S)


def pem_types(data: bytes) -> list[str]:
    return [m.group(1).decode() for m in PEM_RE.finditer(data)]


def private_key_facts(data: bytes, *, public_keys: Mapping[str, Any]) -> Facts:
    """A private key's type and size, never its value; `public_keys` maps a label (a file path or
    a kubeconfig field) to a public key the private key must pair with."""
    key = serialization.load_pem_private_key(data, password=None)
    f: Facts = {"pem.blocks": pem_types(data), "pem.trailing_newline": data.endswith(b"\n")}
    f.update(prefixed("key", _pubkey_facts(key.public_key())))
    own = spki_sha256(key.public_key())
    f["public_key.sha256"] = own
    f["pairs_with"] = sorted(label for label, pub in public_keys.items()
                             if spki_sha256(pub) == own)
    return f


def public_key_file_facts(data: bytes) -> Facts:
    key = serialization.load_pem_public_key(data)
    f: Facts = {"pem.blocks": pem_types(data), "public_key.sha256": spki_sha256(key)}
    f.update(prefixed("key", _pubkey_facts(key)))
    return f


def cert_file_facts(data: bytes, *, cas: list[Authority], window: Window) -> Facts:
    f: Facts = {"pem.blocks": pem_types(data)}
    f.update(cert_facts(x509.load_pem_x509_certificate(data), cas=cas, window=window))
    return f


# ---------------------------------------------------------------- kubeconfig


def kubeconfig_facts(data: bytes, *, cas: list[Authority], window: Window) -> Facts:
    """The parsed kubeconfig with embedded certificates and keys replaced by their facts."""
    doc = yaml.safe_load(data)
    ca_files = {a.path: a.cert.public_bytes(serialization.Encoding.PEM) for a in cas}
    embedded: Facts = {}
    clients = {}
    for c in doc.get("clusters") or []:
        cd = (c.get("cluster") or {})
        if "certificate-authority-data" in cd:
            pem = base64.b64decode(cd["certificate-authority-data"])
            cd["certificate-authority-data"] = "<decoded below>"
            path = f"clusters[{c.get('name')}].cluster.certificate-authority-data"
            embedded[path + ".same_bytes_as"] = sorted(
                p for p, b in ca_files.items() if b == pem)
            embedded.update(prefixed(path, cert_file_facts(pem, cas=cas, window=window)))
    for u in doc.get("users") or []:
        ud = (u.get("user") or {})
        base = f"users[{u.get('name')}].user"
        if "client-certificate-data" in ud:
            pem = base64.b64decode(ud["client-certificate-data"])
            ud["client-certificate-data"] = "<decoded below>"
            cert = x509.load_pem_x509_certificate(pem)
            clients[f"{base}.client-certificate-data"] = cert.public_key()
            embedded.update(prefixed(f"{base}.client-certificate-data",
                                     cert_file_facts(pem, cas=cas, window=window)))
        if "client-key-data" in ud:
            pem = base64.b64decode(ud["client-key-data"])
            ud["client-key-data"] = "<decoded below>"
            embedded.update(prefixed(f"{base}.client-key-data",
                                     private_key_facts(pem, public_keys=clients)))
    f = flatten(doc)
    f.update(embedded)
    return f


# ---------------------------------------------------------------- text formats


def yaml_facts(data: bytes) -> Facts:
    """A YAML document: every field, the key order, and the exact text."""
    docs = list(yaml.safe_load_all(data))
    f = flatten(docs[0] if len(docs) == 1 else docs)
    f["text"] = data.decode()
    return f


ENV_RE = re.compile(r'\AKUBELET_KUBEADM_ARGS=("(?:[^"\\]|\\.)*")\n\Z')


def kubelet_flags_env_facts(data: bytes) -> Facts:
    """kubeadm-flags.env: one line `KUBELET_KUBEADM_ARGS=%q` (app/phases/kubelet/flags.go:71)."""
    text = data.decode()
    f: Facts = {"text": text}
    m = ENV_RE.match(text)
    f["format"] = "KUBELET_KUBEADM_ARGS=<Go %q string>\\n" if m else "unrecognised"
    if m:
        value = json.loads(m.group(1))  # Go %q of ASCII equals a JSON string
        args = value.split(" ") if value else []
        flags(args, "args", f)
    return f


def file_facts(path: Path, node_path: str, *, cas: list[Authority],
               window: Window, public_keys: Mapping[str, Any]) -> Facts:
    """Facts for one rendered file, by kind (decided from kubeadm's node path)."""
    data = path.read_bytes()
    name = node_path.rsplit("/", 1)[-1]
    if name.endswith(".crt"):
        return cert_file_facts(data, cas=cas, window=window)
    if name.endswith(".key"):
        return private_key_facts(data, public_keys=public_keys)
    if name.endswith(".pub"):
        return public_key_file_facts(data)
    if name.endswith(".conf"):
        return kubeconfig_facts(data, cas=cas, window=window)
    if name == "kubeadm-flags.env":
        return kubelet_flags_env_facts(data)
    if name.endswith(".yaml"):
        return yaml_facts(data)
    return {"text": data.decode(errors="replace")}


def public_keys_in(root: Path, trees: Iterable[str]) -> dict[str, Any]:
    """Every certificate's and .pub file's public key in the tree, by node path."""
    out: dict[str, Any] = {}
    for tree in trees:
        top = root / tree.lstrip("/")
        if not top.is_dir():
            continue
        for p in sorted(top.rglob("*")):
            node = "/" + str(p.relative_to(root))
            if p.suffix == ".crt":
                out[node] = x509.load_pem_x509_certificate(p.read_bytes()).public_key()
            elif p.suffix == ".pub":
                out[node] = serialization.load_pem_public_key(p.read_bytes())
    return out

