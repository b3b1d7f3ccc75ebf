"""Bootstrap tokens, the TLS-bootstrap RBAC and `cluster-info`.

Sources: app/apis/bootstraptoken/v1/utils.go (BootstrapTokenToSecret, encodeTokenSecretData),
app/apis/bootstraptoken/v1/defaults.go, k8s.io/cluster-bootstrap/token/util (GenerateBootstrap
Token), app/phases/bootstraptoken/node/tlsbootstrap.go, app/phases/bootstraptoken/clusterinfo/
clusterinfo.go, app/util/pubkeypin (the CA hash).

A token is a secret: `BootstrapToken.__repr__` hides it and nothing here logs.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kubeinit.api import (
    NODE_BOOTSTRAP_TOKEN_GROUP,
    NODES_GROUP,
    NS_PUBLIC,
    NS_SYSTEM,
    RBAC_API,
    Obj,
    cluster_role_binding,
    group,
    meta,
    role,
    role_binding,
    subject,
)
from kubeinit.config import BootstrapToken as ConfigToken
from kubeinit.config import parse_rfc3339 as parse_config_rfc3339
from kubeinit.goyaml import dumps as dump
from kubeinit.versions import Release

TOKEN_RE = re.compile(r"\A([a-z0-9]{6})\.([a-z0-9]{16})\Z")
_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"
DEFAULT_TTL = datetime.timedelta(hours=24)
DEFAULT_USAGES = ("signing", "authentication")
SECRET_TYPE = "bootstrap.kubernetes.io/token"
CLUSTER_INFO = "cluster-info"
CLUSTER_INFO_ROLE = "kubeadm:bootstrap-signer-clusterinfo"
GET_NODES = "kubeadm:get-nodes"


@dataclass(frozen=True)
class Token:
    """A bootstrap token as kubeadm creates it. `value` never appears in repr."""

    value: str = field(repr=False)
    expires: datetime.datetime | None
    description: str = ""
    usages: tuple[str, ...] = DEFAULT_USAGES
    groups: tuple[str, ...] = (NODE_BOOTSTRAP_TOKEN_GROUP,)

    @property
    def id(self) -> str:
        return self.value.split(".", 1)[0]

    @property
    def secret(self) -> str:
        return self.value.split(".", 1)[1]

    @property
    def secret_name(self) -> str:
        return secret_name(self.id)

    def to_json(self) -> dict[str, Any]:
        return {
            "token": self.value,
            "expires": rfc3339(self.expires) if self.expires else None,
            "description": self.description,
            "usages": list(self.usages),
            "groups": list(self.groups),
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Token:
        exp = d.get("expires")
        return cls(
            value=str(d["token"]),
            expires=parse_rfc3339(exp) if exp else None,
            description=str(d.get("description", "")),
            usages=tuple(d.get("usages", DEFAULT_USAGES)),
            groups=tuple(d.get("groups", (NODE_BOOTSTRAP_TOKEN_GROUP,))),
        )


def secret_name(token_id: str) -> str:
    return f"bootstrap-token-{token_id}"


def generate_token() -> str:
    """cluster-bootstrap GenerateBootstrapToken: [a-z0-9]{6}.[a-z0-9]{16} from crypto/rand."""

    def pick(n: int) -> str:
        return "".join(secrets.choice(_ALPHABET) for _ in range(n))

    return f"{pick(6)}.{pick(16)}"


def generate_certificate_key() -> str:
    """copycerts.CreateCertificateKey: 32 random bytes, hex."""
    return secrets.token_hex(32)


def rfc3339(t: datetime.datetime) -> str:
    """Go's time.RFC3339 of a UTC time, whole seconds ("2026-01-02T03:04:05Z")."""
    return t.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_rfc3339(text: str) -> datetime.datetime:
    return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.UTC)


def tokens_from_config(configured: Iterable[ConfigToken], now: datetime.datetime) -> list[Token]:
    """kubeadm's defaulting of InitConfiguration.bootstrapTokens: one token when none is given;
    ttl 24h, usages [signing, authentication], the default node group; a random token string
    when none is set (SetBootstrapTokensDynamicDefaults). `expires` wins over `ttl`."""
    out = []
    for t in list(configured) or [ConfigToken()]:
        if t.expires:
            # parse_config refuses any `expires` (kubeadm does); a value that is not RFC 3339
            # must never become "never expires" (issue 9, finding 4).
            expires: datetime.datetime | None = parse_config_rfc3339(t.expires)
            if expires is None:
                raise ValueError("bootstrap token expires: not an RFC 3339 time")
        else:
            ttl = DEFAULT_TTL if t.ttl is None else t.ttl
            expires = (now + ttl).replace(microsecond=0) if ttl.total_seconds() > 0 else None
        out.append(
            Token(
                value=t.token or generate_token(),
                expires=expires,
                description=t.description,
                usages=t.usages or DEFAULT_USAGES,
                groups=t.groups or (NODE_BOOTSTRAP_TOKEN_GROUP,),
            )
        )
    return out


def _b64(s: str) -> str:
    return base64.b64encode(s.encode()).decode()


def token_secret(token: Token) -> Obj:
    """BootstrapTokenToSecret. Data values are base64 (the Secret's JSON form)."""
    data = {"token-id": token.id, "token-secret": token.secret}
    if token.description:
        data["description"] = token.description
    if token.expires is not None:
        data["expiration"] = rfc3339(token.expires)
    for u in token.usages:
        data[f"usage-bootstrap-{u}"] = "true"
    if token.groups:
        data["auth-extra-groups"] = ",".join(token.groups)
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": meta(token.secret_name, NS_SYSTEM),
        "type": SECRET_TYPE,
        "data": {k: _b64(v) for k, v in data.items()},
    }


def tls_bootstrap_rbac(release: Release) -> list[Obj]:
    """bootstrap-token's RBAC, in kubeadm's order (app/cmd/phases/init/bootstraptoken.go)."""
    bootstrappers = [group(NODE_BOOTSTRAP_TOKEN_GROUP)]
    out = [
        {
            "apiVersion": RBAC_API,
            "kind": "ClusterRole",
            "metadata": meta(GET_NODES),
            "rules": [{"verbs": ["get"], "apiGroups": [""], "resources": ["nodes"]}],
        },
        cluster_role_binding(GET_NODES, GET_NODES, bootstrappers),
        cluster_role_binding(
            "kubeadm:kubelet-bootstrap", "system:node-bootstrapper", bootstrappers
        ),
        cluster_role_binding(
            "kubeadm:node-autoapprove-bootstrap",
            "system:certificates.k8s.io:certificatesigningrequests:nodeclient",
            bootstrappers,
        ),
        cluster_role_binding(
            "kubeadm:node-autoapprove-certificate-rotation",
            "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient",
            [group(NODES_GROUP)],
        ),
    ]
    if not release.kubelet_client_has_org:
        # AllowAPIServerToAccessKubeletAPI (v1.36.0+; absent from v1.35.4): the
        # apiserver-kubelet-client certificate carries no organization any more
        # (kubernetes#138957) and is authorized through this binding instead.
        out.append(
            cluster_role_binding(
                "kubeadm:apiserver-kubelet-client",
                "system:kubelet-api-admin",
                [subject("User", "kube-apiserver-kubelet-client")],
            )
        )
    return out


def cluster_info_kubeconfig(cluster: Mapping[str, Any]) -> str:
    """The kubeconfig in `cluster-info`: admin.conf's current cluster, flattened, under the
    empty name, written by clientcmd.Write (contexts and users null)."""
    return dump(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"cluster": dict(cluster), "name": ""}],
            "contexts": None,
            "current-context": "",
            "users": None,
        }
    )


def cluster_info_configmap(cluster: Mapping[str, Any]) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": meta(CLUSTER_INFO, NS_PUBLIC),
        "data": {"kubeconfig": cluster_info_kubeconfig(cluster)},
    }


def cluster_info_rbac() -> list[Obj]:
    return [
        role(CLUSTER_INFO_ROLE, NS_PUBLIC, "configmaps", CLUSTER_INFO),
        role_binding(
            CLUSTER_INFO_ROLE, NS_PUBLIC, CLUSTER_INFO_ROLE, [subject("User", "system:anonymous")]
        ),
    ]


def ca_cert_hash(ca_pem: bytes) -> str:
    """pubkeypin.Hash: sha256 over the CA certificate's DER SubjectPublicKeyInfo."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    cert = x509.load_pem_x509_certificate(ca_pem)
    spki = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return "sha256:" + hashlib.sha256(spki).hexdigest()


def _b64url(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def detached_jws(content: str, token_id: str, token_secret: str) -> str:
    """cluster-bootstrap/token/jws ComputeDetachedSignature: HS256 keyed with the token secret.
    kubeinit never signs cluster-info (the controller-manager's bootstrapsigner does); tests use
    this to check that signature."""
    header = _b64url(json.dumps({"alg": "HS256", "kid": token_id}, separators=(",", ":")).encode())
    signing_input = f"{header}.{_b64url(content.encode())}".encode()
    sig = hmac.new(token_secret.encode(), signing_input, hashlib.sha256).digest()
    return f"{header}..{_b64url(sig)}"
