"""bootstrap-token: the join token, the RBAC that TLS bootstrapping needs and `cluster-info`
(app/cmd/phases/init/bootstraptoken.go, in that order).

The tokens (InitConfiguration.bootstrapTokens, or kubeadm's one default token) are minted once
and saved (0600, /var/lib/kubeinit/bootstrap-tokens.json) before their Secrets are created, so a
resumed run re-creates the same Secrets instead of adding new ones. The token is never printed:
`kubeinit join-command` shows it on request.
"""

from __future__ import annotations

import base64
import datetime
from typing import Any

import yaml

from firstboot.context import InitContext
from firstboot.credentials import expired, load_tokens, save_tokens
from firstboot.phase import Phase
from kubeinit import hostfs, paths
from kubeinit.api import tokens as objects
from kubeinit.errors import PhaseFailed


def admin_cluster(ctx: InitContext) -> dict[str, Any]:
    """admin.conf's current cluster, as written (kubeadm's KubeConfigOriginal), with a
    certificate-authority file inlined (clientcmdapi.FlattenConfig)."""
    f = ctx.path(paths.ADMIN_CONF)
    try:
        cfg = yaml.safe_load(hostfs.read_text(f))
        ctx_name = cfg["current-context"]
        context = next(c["context"] for c in cfg["contexts"] if c["name"] == ctx_name)
        cluster = dict(
            next(c["cluster"] for c in cfg["clusters"] if c["name"] == context["cluster"])
        )
    except (OSError, yaml.YAMLError, KeyError, TypeError, StopIteration) as e:
        raise PhaseFailed(
            f"{f}: not a usable kubeconfig ({type(e).__name__})",
            hint="rerun `kubeinit init phase kubeconfig admin`",
        ) from None
    if "certificate-authority" in cluster and "certificate-authority-data" not in cluster:
        ca = hostfs.read_bytes(ctx.path(cluster.pop("certificate-authority")))
        cluster["certificate-authority-data"] = base64.b64encode(ca).decode()
    return cluster


def tokens(ctx: InitContext, now: datetime.datetime) -> list[objects.Token]:
    """The saved tokens while none of them has expired, else freshly minted (and saved)."""
    saved = load_tokens(ctx.root)
    if saved and not any(expired(t, now, datetime.timedelta(0)) for t in saved):
        return saved
    fresh = objects.tokens_from_config(ctx.config.init.bootstrap_tokens, now)
    save_tokens(ctx.root, fresh)
    return fresh


def run(ctx: InitContext) -> None:
    client = ctx.client()
    now = datetime.datetime.now(datetime.UTC)
    for t in tokens(ctx, now):
        client.create_or_update(objects.token_secret(t), ctx.api_timeout)
    for obj in objects.tls_bootstrap_rbac(ctx.config.release):
        client.create_or_update(obj, ctx.api_timeout)
    client.create_or_update(objects.cluster_info_configmap(admin_cluster(ctx)), ctx.api_timeout)
    for obj in objects.cluster_info_rbac():
        client.create_or_update(obj, ctx.api_timeout)


PHASE = Phase(
    name="bootstrap-token",
    summary="Generates bootstrap tokens used to join a node to a cluster",
    run=run,
    needs_api=True,
)
