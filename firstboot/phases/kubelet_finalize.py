"""kubelet-finalize: point kubelet.conf at the kubelet's rotating client certificate
(app/cmd/phases/init/kubeletfinalize.go, sub-phase enable-client-cert-rotation).

If /var/lib/kubelet/pki/kubelet-client-current.pem (or the kubeletExtraArgs --cert-dir) exists,
the embedded client certificate and key of kubelet.conf are replaced by that file, and the
kubelet is restarted (only when kubeinit manages services: root / with systemd as PID 1).

kubeadm's phase does not call the API server, but it reads what the kubelet wrote after joining
the control plane, so it is marked as needing it: `--local-only` must not run (and record as
done) a phase whose input does not exist yet.
"""

from __future__ import annotations

from pathlib import PurePosixPath

import yaml

from firstboot.context import InitContext
from firstboot.phase import Phase
from kubeinit import goyaml, hostfs, paths
from kubeinit.config import arg_value
from kubeinit.errors import PhaseFailed
from kubeinit.fs import write_file
from kubeinit.run import run as run_cmd


def rotatable_kubeconfig(text: str, pem_path: str, where: str) -> str:
    """kubelet.conf with the current user's client certificate and key pointing at
    `pem_path`, written as clientcmd.WriteToFile writes it."""
    cfg = yaml.safe_load(text)
    current = cfg.get("current-context")
    if not current:
        raise PhaseFailed(f"the file {where} does not have current context set")
    context = next((c["context"] for c in cfg.get("contexts") or [] if c["name"] == current), None)
    if context is None:
        raise PhaseFailed(
            f"the file {where} is not a valid kubeconfig: {current!r} set as"
            " current-context, but not found in context list"
        )
    user_name = context.get("user")
    if not user_name:
        raise PhaseFailed(
            f"the file {where} is not a valid kubeconfig: empty username for current context"
        )
    user = next((u for u in cfg.get("users") or [] if u["name"] == user_name), None)
    if user is None:
        raise PhaseFailed(
            f"the file {where} does not contain authentication for user {user_name!r}"
        )
    info = user.setdefault("user", {})
    info.pop("client-certificate-data", None)
    info.pop("client-key-data", None)
    info["client-certificate"] = pem_path
    info["client-key"] = pem_path
    return goyaml.dumps(cfg)


def run_enable_client_cert_rotation(ctx: InitContext) -> None:
    nr = ctx.config.init.node_registration
    pki = arg_value(nr.kubelet_extra_args, "cert-dir") or str(paths.KUBELET_DIR / "pki")
    pem = PurePosixPath(pki) / "kubelet-client-current.pem"
    if not ctx.path(pem).exists():
        ctx.notes.append(f"{pem} not found: client certificate rotation not enabled")
        return
    conf = ctx.path(paths.KUBELET_CONF)
    try:
        text = hostfs.read_text(conf)
    except OSError as e:
        raise PhaseFailed(f"could not load {paths.KUBELET_CONF}: {e.strerror}") from None
    write_file(conf, rotatable_kubeconfig(text, str(pem), str(paths.KUBELET_CONF)), 0o600)
    ctx.notes.append(f"{paths.KUBELET_CONF} now uses {pem}")
    if ctx.manage_services:
        # kubeletphase.TryRestartKubelet: a failure is a warning, not an error
        res = run_cmd([paths.SYSTEMCTL, "restart", "kubelet"], check=False)
        if res.returncode != 0:
            ctx.notes.append("could not restart the kubelet; restart it by hand")


PHASE = Phase(
    name="kubelet-finalize",
    summary="Updates settings relevant to the kubelet after TLS bootstrap",
    needs_api=True,
    children=(
        Phase(
            name="enable-client-cert-rotation",
            summary="Enable kubelet client certificate rotation",
            run=run_enable_client_cert_rotation,
            needs_api=True,
        ),
    ),
)
