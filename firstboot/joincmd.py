"""`kubeinit join-command [--control-plane] [--refresh]` on a running control-plane node.

Without --refresh it prints the command first boot wrote (the operator asked for the secret, so
it goes to stdout and nowhere else). With --refresh it first mints a new bootstrap token (as
`kubeadm token create`), uploads the certificates again under a new certificate key (as
`kubeadm init phase upload-certs --upload-certs`), and rewrites /etc/kubeinit/join-command,
join-command-control-plane and join.json. Tokens minted earlier stay valid until they expire.
"""

from __future__ import annotations

import datetime
import json

from firstboot.context import InitContext
from firstboot.credentials import save_tokens
from firstboot.log import Reporter, register_secret
from kubeinit import hostfs, paths
from kubeinit.api.tokens import parse_rfc3339, rfc3339, token_secret, tokens_from_config
from kubeinit.errors import PhaseFailed, StateUnreadable


def refresh(ctx: InitContext, reporter: Reporter) -> None:
    from firstboot.phases.show_join_command import write_join_files
    from firstboot.phases.upload_certs import upload

    client = ctx.client()
    now = datetime.datetime.now(datetime.UTC)
    fresh = tokens_from_config(ctx.config.init.bootstrap_tokens, now)
    # Saved first: a crash after the API call leaves a token kubeinit knows about. Tokens
    # minted before stay valid in the cluster until they expire.
    save_tokens(ctx.root, fresh)
    for t in fresh:
        client.create_or_update(token_secret(t), ctx.api_timeout)
    uploaded = upload(ctx, refresh=True)
    ctx.notes.clear()
    info = write_join_files(ctx)
    reporter.join_refreshed(
        rfc3339(info.token_expires) if info.token_expires else "never",
        rfc3339(uploaded.expires) if uploaded.expires else "never",
    )


def show(ctx: InitContext, *, control_plane: bool) -> str:
    """The saved command, or an error saying how to get a valid one."""
    info_file = ctx.path(paths.JOIN_INFO)
    try:
        info = json.loads(hostfs.read_text(info_file))
    except FileNotFoundError:
        raise StateUnreadable(
            f"{info_file} does not exist: first boot has not written the join commands yet",
            hint="see `kubeinit status`",
        ) from None
    except (OSError, ValueError) as e:
        raise StateUnreadable(
            f"{info_file}: unreadable ({type(e).__name__})",
            hint="rewrite it with `kubeinit join-command --refresh`",
        ) from None
    if not isinstance(info, dict):
        raise StateUnreadable(
            f"{info_file}: not a JSON object",
            hint="rewrite it with `kubeinit join-command --refresh`",
        )
    for key in ("token", "certificateKey"):
        if info.get(key):
            register_secret(str(info[key]))
    now = datetime.datetime.now(datetime.UTC)
    expiry_key = "certificateKeyExpires" if control_plane else "tokenExpires"
    if control_plane and not info.get("certificateKey"):
        raise PhaseFailed(
            "no certificates were uploaded for a control-plane join",
            hint="kubeinit join-command --control-plane --refresh",
        )
    for key in ("tokenExpires", expiry_key):
        if not info.get(key):
            continue
        try:
            expires = parse_rfc3339(str(info[key]))
        except ValueError:
            raise StateUnreadable(
                f"{info_file}: {key}: not an RFC 3339 time",
                hint="rewrite it with `kubeinit join-command --refresh`",
            ) from None
        if expires <= now:
            what = "bootstrap token" if key == "tokenExpires" else "uploaded certificates"
            raise PhaseFailed(
                f"the {what} expired at {info[key]}",
                hint="kubeinit join-command --refresh"
                + (" --control-plane" if control_plane else ""),
            )
    f = ctx.path(paths.JOIN_COMMAND_CONTROL_PLANE if control_plane else paths.JOIN_COMMAND)
    try:
        lines = hostfs.read_text(f).splitlines()
    except OSError as e:
        raise StateUnreadable(
            f"{f}: {e.strerror}", hint="kubeinit join-command --refresh"
        ) from None
    body = "\n".join(line for line in lines if not line.startswith("#"))
    return body.removeprefix("exec ").rstrip() + "\n"
