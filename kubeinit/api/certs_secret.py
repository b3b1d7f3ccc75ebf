"""upload-certs: the `kubeadm-certs` Secret, encrypted as kubeadm encrypts it.

Source: app/phases/copycerts/copycerts.go (UploadCerts, certsToTransfer, getDataFromDisk,
createShortLivedBootstrapToken, getSecretOwnerRef, createRBAC) and app/util/crypto/crypto.go
(EncryptBytes: AES-256-GCM, a random 12-byte nonce prepended to the sealed data).

The Secret is owned by a short-lived bootstrap token (ttl 2h, DefaultCertTokenDuration); when
the token-cleaner deletes the expired token the garbage collector deletes the Secret.
"""

from __future__ import annotations

import base64
import datetime
import os
from collections.abc import Callable, Mapping
from pathlib import PurePosixPath

from kubeinit.api import NODE_BOOTSTRAP_TOKEN_GROUP, NS_SYSTEM, Obj, group, meta, role, role_binding
from kubeinit.api.tokens import Token, generate_token
from kubeinit.config import Config

KUBEADM_CERTS = "kubeadm-certs"
KUBEADM_CERTS_ROLE = "kubeadm:kubeadm-certs"
PROXY_TOKEN_DESCRIPTION = "Proxy for managing TTL for the kubeadm-certs secret"
CERT_TOKEN_TTL = datetime.timedelta(hours=2)  # constants.DefaultCertTokenDuration
NONCE_SIZE = 12


def encrypt(plain: bytes, key_hex: str) -> bytes:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    nonce = os.urandom(NONCE_SIZE)
    return nonce + AESGCM(bytes.fromhex(key_hex)).encrypt(nonce, plain, None)


def decrypt(blob: bytes, key_hex: str) -> bytes:
    """DecryptBytes; raises cryptography's InvalidTag for a wrong key."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    if len(blob) < NONCE_SIZE:
        raise ValueError("size of data is less than the nonce")
    return AESGCM(bytes.fromhex(key_hex)).decrypt(blob[:NONCE_SIZE], blob[NONCE_SIZE:], None)


def certs_to_transfer(config: Config) -> dict[str, PurePosixPath]:
    """certsToTransfer: Secret key -> node path ("etcd/ca.crt" becomes "etcd-ca.crt")."""
    d = PurePosixPath(config.cluster.certificates_dir)
    names = ["ca.crt", "ca.key", "front-proxy-ca.crt", "front-proxy-ca.key", "sa.pub", "sa.key"]
    out = {n: d / n for n in names}
    ext = config.cluster.etcd.external
    if ext is None:
        out["etcd-ca.crt"] = d / "etcd/ca.crt"
        out["etcd-ca.key"] = d / "etcd/ca.key"
    else:
        out["external-etcd-ca.crt"] = PurePosixPath(ext.ca_file)
        out["external-etcd.crt"] = PurePosixPath(ext.cert_file)
        out["external-etcd.key"] = PurePosixPath(ext.key_file)
    return out


def proxy_token(now: datetime.datetime) -> Token:
    return Token(
        value=generate_token(),
        expires=(now + CERT_TOKEN_TTL).replace(microsecond=0),
        description=PROXY_TOKEN_DESCRIPTION,
        usages=(),
        groups=(),
    )


def kubeadm_certs_secret(
    config: Config,
    key_hex: str,
    read: Callable[[PurePosixPath], bytes | None],
    owner: Mapping[str, str],
) -> Obj:
    """The Secret. `read(path)` returns a file's bytes or None when it does not exist (kubeadm
    then stores an empty value). `owner` is the proxy token Secret's name and uid."""
    data: dict[str, str] = {}
    for name, path in certs_to_transfer(config).items():
        content = read(path)
        enc = encrypt(content, key_hex) if content is not None else b""
        data[name] = base64.b64encode(enc).decode()
    ref = {
        "apiVersion": "v1",
        "kind": "Secret",
        "name": owner["name"],
        "uid": owner["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": meta(KUBEADM_CERTS, NS_SYSTEM, ownerReferences=[ref]),
        "data": data,
    }


def kubeadm_certs_rbac() -> list[Obj]:
    return [
        role(KUBEADM_CERTS_ROLE, NS_SYSTEM, "secrets", KUBEADM_CERTS),
        role_binding(
            KUBEADM_CERTS_ROLE, NS_SYSTEM, KUBEADM_CERTS_ROLE, [group(NODE_BOOTSTRAP_TOKEN_GROUP)]
        ),
    ]
