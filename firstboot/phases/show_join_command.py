"""show-join-command: write the join commands (app/cmd/phases/init/showjoincommand.go).

kubeadm prints them, token and certificate key included. kubeinit runs unattended and its output
goes to the journal, so it writes them instead (0600) and prints only where they are:
/etc/kubeinit/join-command (worker), /etc/kubeinit/join-command-control-plane and
/etc/kubeinit/join.json (the same facts and the expiry times). `kubeinit join-command` prints
them on request.

The server and the CA hashes come from admin.conf, as kubeadm's getJoinCommand takes them; the
token is the first bootstrap token (kubeadm prints one command per token).
"""

from __future__ import annotations

import base64

import yaml

from firstboot.context import InitContext
from firstboot.credentials import load_tokens, load_uploaded
from firstboot.phase import Phase
from kubeinit import hostfs, paths
from kubeinit.api.join import JoinInfo, control_plane_script, worker_script
from kubeinit.api.tokens import ca_cert_hash, rfc3339
from kubeinit.errors import PhaseFailed
from kubeinit.fs import write_file


def join_info(ctx: InitContext) -> JoinInfo:
    tokens = load_tokens(ctx.root)
    if not tokens:
        raise PhaseFailed(
            "no bootstrap token: the bootstrap-token phase has not run",
            hint="run `kubeinit init phase bootstrap-token` first",
        )
    uploaded = load_uploaded(ctx.root)
    f = ctx.path(paths.ADMIN_CONF)
    try:
        cfg = yaml.safe_load(hostfs.read_text(f))
        context = next(c["context"] for c in cfg["contexts"] if c["name"] == cfg["current-context"])
        cluster = next(c["cluster"] for c in cfg["clusters"] if c["name"] == context["cluster"])
        if "certificate-authority-data" in cluster:
            ca = base64.b64decode(cluster["certificate-authority-data"])
        else:
            ca = hostfs.read_bytes(ctx.path(cluster["certificate-authority"]))
    except (OSError, yaml.YAMLError, KeyError, TypeError, StopIteration) as e:
        raise PhaseFailed(f"{f}: not a usable kubeconfig ({type(e).__name__})") from None
    hashes = tuple(ca_cert_hash(block) for block in _pem_blocks(ca))
    return JoinInfo(
        server=str(cluster["server"]).replace("https://", ""),
        ca_cert_hashes=hashes,
        token=tokens[0].value,
        token_expires=tokens[0].expires,
        certificate_key=uploaded.key if uploaded and uploaded.uploaded else "",
        certificate_key_expires=uploaded.expires if uploaded and uploaded.uploaded else None,
        control_plane_endpoint=ctx.config.cluster.control_plane_endpoint,
    )


def _pem_blocks(data: bytes) -> list[bytes]:
    end = b"-----END CERTIFICATE-----"
    return [part + end + b"\n" for part in data.split(end) if b"-----BEGIN" in part]


def write_join_files(ctx: InitContext) -> JoinInfo:
    info = join_info(ctx)
    write_file(ctx.path(paths.JOIN_COMMAND), worker_script(info), 0o600)
    if info.certificate_key:
        write_file(ctx.path(paths.JOIN_COMMAND_CONTROL_PLANE), control_plane_script(info), 0o600)
    write_file(ctx.path(paths.JOIN_INFO), info.to_json(), 0o600)
    return info


def run(ctx: InitContext) -> None:
    info = write_join_files(ctx)
    exp = rfc3339(info.token_expires) if info.token_expires else "never"
    written = [str(paths.JOIN_COMMAND)]
    if info.certificate_key:
        written.append(str(paths.JOIN_COMMAND_CONTROL_PLANE))
    ctx.notes.append(
        f"wrote {', '.join(written)} (token expires {exp}); print them with `kubeinit join-command`"
    )


PHASE = Phase(
    name="show-join-command",
    summary="Show the join command for control-plane and worker node",
    run=run,
    needs_api=True,
)
