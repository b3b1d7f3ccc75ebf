"""The secrets the API phases mint, persisted so that a resumed first boot reuses them.

kubeadm keeps the bootstrap tokens and the certificate key in memory for one run. kubeinit's
phases can be interrupted and resumed by another process (house style §8), so each secret is
written to a 0600 file under /var/lib/kubeinit *before* it is sent to the API server: a crash at
any point leaves a token the next run knows (and reuses), never an orphan it cannot name.

Every secret read or minted here is registered with `firstboot.log.register_secret`.
"""

from __future__ import annotations

import datetime
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from firstboot.log import register_secret
from kubeinit import hostfs, paths
from kubeinit.api.tokens import Token, parse_rfc3339, rfc3339
from kubeinit.errors import StateUnreadable
from kubeinit.fs import write_file

SCHEMA = 1


def _read(path: Path) -> dict[str, Any] | None:
    if not path.exists():
        return None
    try:
        data = json.loads(hostfs.read_text(path))
        if data.get("schema") != SCHEMA:
            raise ValueError(f"schema {data.get('schema')!r} is not {SCHEMA}")
        return dict(data)
    except (OSError, ValueError, AttributeError) as e:
        raise StateUnreadable(
            f"{path}: unreadable ({type(e).__name__})",
            hint="remove it to mint new secrets on the next run",
        ) from None


def _write(path: Path, data: dict[str, Any]) -> None:
    write_file(path, json.dumps({"schema": SCHEMA, **data}, indent=2) + "\n", 0o600, dir_mode=0o700)


def _register(t: Token) -> Token:
    register_secret(t.value)
    register_secret(t.secret)
    return t


def load_tokens(root: Path) -> list[Token]:
    data = _read(paths.under(root, paths.BOOTSTRAP_TOKENS))
    return [_register(Token.from_json(t)) for t in (data or {}).get("tokens", [])]


def save_tokens(root: Path, tokens: list[Token]) -> None:
    for t in tokens:
        _register(t)
    _write(paths.under(root, paths.BOOTSTRAP_TOKENS), {"tokens": [t.to_json() for t in tokens]})


@dataclass(frozen=True)
class UploadedCerts:
    """The certificate key and the short-lived token that owns the kubeadm-certs Secret."""

    key: str
    proxy_token: Token | None
    uploaded: bool = False  # the Secret was written with `key`

    @property
    def expires(self) -> datetime.datetime | None:
        return self.proxy_token.expires if self.proxy_token else None


def load_uploaded(root: Path) -> UploadedCerts | None:
    data = _read(paths.under(root, paths.UPLOADED_CERTS))
    if data is None:
        return None
    key = str(data["key"])
    register_secret(key)
    proxy = data.get("proxyToken")
    return UploadedCerts(
        key=key,
        proxy_token=_register(Token.from_json(proxy)) if proxy else None,
        uploaded=bool(data.get("uploaded")),
    )


def save_uploaded(root: Path, u: UploadedCerts) -> None:
    register_secret(u.key)
    if u.proxy_token:
        _register(u.proxy_token)
    _write(
        paths.under(root, paths.UPLOADED_CERTS),
        {
            "key": u.key,
            "proxyToken": u.proxy_token.to_json() if u.proxy_token else None,
            "uploaded": u.uploaded,
            "expires": rfc3339(u.expires) if u.expires else None,
        },
    )


def expired(t: Token, now: datetime.datetime, margin: datetime.timedelta) -> bool:
    return t.expires is not None and t.expires - margin <= now


__all__ = [
    "UploadedCerts",
    "expired",
    "load_tokens",
    "load_uploaded",
    "parse_rfc3339",
    "save_tokens",
    "save_uploaded",
]
