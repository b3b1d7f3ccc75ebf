"""upload-certs: the control-plane certificates, encrypted with the certificate key, in the
`kube-system/kubeadm-certs` Secret (app/cmd/phases/init/uploadcerts.go, app/phases/copycerts).

kubeinit always uploads (as `kubeadm init --upload-certs`), so that the control-plane join
command works for two hours; `kubeinit join-command --refresh` uploads again with a new key.

Resume: the certificate key and the short-lived token that owns the Secret are saved (0600)
before either reaches the API server, so a rerun after a crash reuses them; proxy tokens left by
earlier, interrupted or refreshed uploads no longer own anything and are deleted.
"""

from __future__ import annotations

import base64
import datetime
from pathlib import PurePosixPath

from firstboot.apiclient import ApiError, Client, collection_path, object_path
from firstboot.context import InitContext
from firstboot.credentials import UploadedCerts, expired, load_uploaded, save_uploaded
from firstboot.log import register_secret
from firstboot.phase import Phase
from kubeinit import hostfs
from kubeinit.api import NS_SYSTEM
from kubeinit.api import certs_secret as objects
from kubeinit.api.tokens import SECRET_TYPE, Token, generate_certificate_key, rfc3339, token_secret

# A saved proxy token this close to expiry is replaced rather than reused.
REUSE_MARGIN = datetime.timedelta(minutes=10)


def _ensure_token_secret(client: Client, token: Token, timeout: float) -> str:
    """Create the proxy token's Secret unless it exists; its uid (for the owner reference)."""
    path = object_path("Secret", token.secret_name, NS_SYSTEM)
    uid: dict[str, str] = {}

    def attempt() -> bool:
        current = client.get(path)
        if current is None:
            try:
                current = client.create(token_secret(token))
            except ApiError as e:
                if not e.already_exists:
                    raise
                return False
        uid["uid"] = current["metadata"]["uid"]
        return True

    client.poll(
        f"cannot create the bootstrap token {token.secret_name} for {objects.KUBEADM_CERTS}",
        attempt,
        timeout,
    )
    return uid["uid"]


def delete_stale_proxy_tokens(client: Client, keep: str) -> list[str]:
    """Delete the kubeadm-certs proxy tokens other than `keep`: they own nothing any more."""
    deleted = []
    secrets = client.request(
        "GET", collection_path("Secret", NS_SYSTEM), query={"fieldSelector": f"type={SECRET_TYPE}"}
    )
    for s in (secrets or {}).get("items") or []:
        name = s["metadata"]["name"]
        desc = base64.b64decode((s.get("data") or {}).get("description", "")).decode(
            errors="replace"
        )
        if (
            desc == objects.PROXY_TOKEN_DESCRIPTION
            and name != keep
            and client.delete("Secret", name, NS_SYSTEM)
        ):
            deleted.append(name)
    return deleted


def upload(ctx: InitContext, *, refresh: bool = False) -> UploadedCerts:
    """Upload (or re-upload with `refresh`) and return what was uploaded."""
    client = ctx.client()
    now = datetime.datetime.now(datetime.UTC)
    saved = None if refresh else load_uploaded(ctx.root)
    key = (
        ctx.config.init.certificate_key
        or (saved.key if saved else "")
        or generate_certificate_key()
    )
    register_secret(key)
    proxy = saved.proxy_token if saved else None
    if proxy is None or expired(proxy, now, REUSE_MARGIN):
        proxy = objects.proxy_token(now)
    # Saved before the API sees either: a crash from here on leaves nothing unknown behind.
    save_uploaded(ctx.root, UploadedCerts(key=key, proxy_token=proxy, uploaded=False))
    uid = _ensure_token_secret(client, proxy, ctx.api_timeout)

    def read(path: PurePosixPath) -> bytes | None:
        try:
            return hostfs.read_bytes(ctx.path(path))
        except FileNotFoundError:
            return None

    secret = objects.kubeadm_certs_secret(
        ctx.config, key, read, {"name": proxy.secret_name, "uid": uid}
    )
    client.create_or_update(secret, ctx.api_timeout)
    for obj in objects.kubeadm_certs_rbac():
        client.create_or_update(obj, ctx.api_timeout)
    stale = delete_stale_proxy_tokens(client, keep=proxy.secret_name)
    done = UploadedCerts(key=key, proxy_token=proxy, uploaded=True)
    save_uploaded(ctx.root, done)
    exp = rfc3339(done.expires) if done.expires else "never"
    note = f"{len(secret['data'])} files in {objects.KUBEADM_CERTS}, expires {exp}"
    if stale:
        note += f"; removed stale {', '.join(stale)}"
    ctx.notes.append(note)
    return done


def run(ctx: InitContext) -> None:
    upload(ctx)


PHASE = Phase(
    name="upload-certs",
    summary=f"Upload certificates to {objects.KUBEADM_CERTS}",
    run=run,
    needs_api=True,
)
