"""`kubelet-start`: write the kubelet's settings and (re)start it.

As kubeadm's cmd/phases/init/kubelet.go, in its order: stop the kubelet, write
/var/lib/kubelet/kubeadm-flags.env, instance-config.yaml (where the version uses it) and
config.yaml (all 0644, the directory 0700), then `systemctl daemon-reload` and
`systemctl restart kubelet`. config.yaml and instance-config.yaml are the image profile's
templates filled in when they apply (firstboot.templates); otherwise, and for kubeadm-flags.env
always, the files come from `kubeinit.kubelet`, which the builder uses to make the templates.

Services are touched only when `ctx.manage_services` (the root is the running system and
systemd is PID 1); otherwise the files are written and a note says the kubelet was not started.
Two host facts are read: the kernel hostname (kubeadm passes --hostname-override only when the
node name differs from it) and whether systemd-resolved is active on the target
(`kubeinit.kubelet.systemd_resolved_active`: asked live from systemd when services are managed,
else judged from the unit's enablement under the root).
"""

from __future__ import annotations

from pathlib import PurePosixPath

from firstboot.context import InitContext
from firstboot.phase import Phase


def run(ctx: InitContext) -> None:
    from kubeinit import kubelet, paths
    from kubeinit.errors import PhaseFailed
    from kubeinit.fs import mkdir_all, write_file
    from kubeinit.identity import detect_hostname
    from kubeinit.run import run as run_command

    live = ctx.manage_services
    resolved = kubelet.systemd_resolved_active(ctx.root, live=live)
    files = _from_profile(ctx, resolved)
    if files is None:
        files = kubelet.render_kubelet_files(
            ctx.config, ctx.identity, hostname=detect_hostname(), systemd_resolved=resolved
        )
    if live:
        # kubeadm TryStopKubelet: best effort, so no race while the files change.
        run_command([paths.SYSTEMCTL, "stop", paths.KUBELET], check=False)
    mkdir_all(ctx.path(paths.KUBELET_DIR), kubelet.KUBELET_DIR_MODE)
    for node_path, data in files.items():
        write_file(
            ctx.path(node_path), data, kubelet.KUBELET_FILE_MODE, dir_mode=kubelet.KUBELET_DIR_MODE
        )
    if not live:
        ctx.notes.append(
            "skipped starting the kubelet: services are managed only on the"
            " running system with systemd as PID 1"
        )
        return
    # kubeadm TryStartKubelet: daemon-reload, then restart. kubeadm only warns when this fails;
    # kubeinit stops here, because wait-control-plane cannot succeed without a kubelet.
    try:
        run_command([paths.SYSTEMCTL, "daemon-reload"])
        run_command([paths.SYSTEMCTL, "restart", paths.KUBELET])
    except PhaseFailed as e:
        raise PhaseFailed(
            f"could not start the kubelet: {e.message}",
            hint="check `systemctl status kubelet` and `journalctl -u kubelet`",
        ) from None


def _from_profile(ctx: InitContext, resolved: bool) -> dict[PurePosixPath, bytes] | None:
    """The kubelet files from the image's profile: its config.yaml and instance-config.yaml
    templates filled in, and kubeadm-flags.env (which depends on this machine's hostname)
    rendered now. None when the profile's files do not apply: no profile, or systemd-resolved
    is not in the state the builder saw (config.yaml's resolvConf depends on it)."""
    from firstboot.templates import FROM_PROFILE, template
    from kubeinit import kubelet, paths
    from kubeinit.identity import detect_hostname

    if not ctx.use_templates or ctx.profile is None:
        return None
    config = template(ctx, ctx.profile.kubelet, paths.KUBELET_CONFIG)
    if not config:
        return None
    user_set = "resolvConf" in (ctx.config.kubelet or {})
    if not user_set and resolved != (kubelet.RESOLVED_RESOLV_CONF in config):
        state = "active" if resolved else "not active"
        ctx.notes.append(
            f"systemd-resolved is {state}, unlike in the image when it was built:"
            " kubelet files rendered live"
        )
        return None
    out = {
        paths.KUBELET_FLAGS_ENV: kubelet.render_kubeadm_flags_env(
            ctx.config, ctx.identity, detect_hostname()
        )
    }
    instance = template(ctx, ctx.profile.kubelet, paths.KUBELET_INSTANCE_CONFIG)
    if instance:
        out[paths.KUBELET_INSTANCE_CONFIG] = instance.encode()
    out[paths.KUBELET_CONFIG] = config.encode()
    ctx.notes.append(FROM_PROFILE)
    return out


PHASE = Phase(
    name="kubelet-start", summary="Write kubelet settings and (re)start the kubelet", run=run
)
