"""`kubeconfig`: admin.conf, super-admin.conf, kubelet.conf, controller-manager.conf and
scheduler.conf, as kubeadm writes them (kubeinit.kubeconfig), mode 0600.

Reuse follows kubeadm's createKubeConfigFileIfNotExists: an existing file is kept when it loads
and its current context trusts the cluster CA (a different server URL is only a warning); a file
made for another CA, or one that does not load, is an error naming it. With an external CA
(ca.crt without ca.key) nothing can be signed, so every file must already exist and trust the CA
(ValidateKubeconfigsForExternalCA). A new file is the image profile's template filled with the
node identity and the credentials made now (firstboot.templates), or rendered live. Each file is
one atomic write: a crash leaves the old state or the complete file, and a rerun makes whatever
is missing. The client certificate's NotBefore is the CA's NotBefore and its NotAfter the start
time plus certificateValidityPeriod (kubeadm's kubeconfig spec sets only NotAfter).
"""

from __future__ import annotations

from collections.abc import Callable

from firstboot.context import InitContext
from firstboot.phase import Phase
from kubeinit.errors import PhaseFailed

FILE_MODE = 0o600  # clientcmd.WriteToFile
DIR_MODE = 0o755


def _run(name: str) -> Callable[[InitContext], None]:
    def run(ctx: InitContext) -> None:
        from firstboot.phases.certs import key_pool, load_ca
        from firstboot.templates import FROM_PROFILE
        from kubeinit import kubeconfig, pki
        from kubeinit.fs import write_file

        spec = next(
            k for k in kubeconfig.kubeconfig_specs(ctx.config, ctx.identity) if k.name == name
        )
        path = ctx.path(spec.path)
        ca_spec = next(s for s in pki.cert_specs(ctx.config, ctx.identity) if s.name == "ca")
        ca_path = ctx.path(ctx.cert_dir / ca_spec.cert_file)
        if not ca_path.exists():
            raise PhaseFailed(
                f"the CA files do not exist: {ca_path}",
                hint="run `kubeinit init phase certs ca` to generate them",
            )
        ca_cert, ca_key = load_ca(ctx, ca_spec)
        if ca_key is None:  # external CA: the file must be provided, signed by this CA
            if not path.exists():
                raise PhaseFailed(
                    f"external CA mode: {path} must be provided",
                    hint="ca.key is absent, so kubeinit cannot sign a client"
                    " certificate; provide the kubeconfig file or ca.key",
                )
            bundle = pki.load_certs(ca_path)
            warning = kubeconfig.check_existing(path, bundle, spec.server, ctx.root)
            ctx.notes.append(f"external CA mode: using the provided {path.name}")
            if warning:
                ctx.notes.append(f"WARNING: {warning}")
            return
        if path.exists():
            warning = kubeconfig.check_existing(path, [ca_cert], spec.server, ctx.root)
            ctx.notes.append(f"using the existing {path.name}")
            if warning:
                ctx.notes.append(f"WARNING: {warning}")
            return
        key = key_pool(ctx).take()
        not_after = ctx.start_time + ctx.config.cluster.certificate_validity_period
        cert = pki.new_signed(
            spec.client_cert,
            key.public_key(),
            ca_cert=ca_cert,
            ca_key=ca_key,
            not_before=ca_cert.not_valid_before_utc,
            not_after=not_after,
        )
        pems = {
            "ca_pem": pki.encode_cert_pem(ca_cert),
            "client_cert_pem": pki.encode_cert_pem(cert),
            "client_key_pem": pki.encode_key_pem(key),
        }
        profile = ctx.profile if ctx.use_templates else None
        baked = profile.kubeconfigs.get(str(spec.path)) if profile else None
        if profile is not None and baked is not None:
            data = profile.fill_kubeconfig(baked, ctx.identity, **pems).encode()
        else:
            data = kubeconfig.render(
                server=spec.server,
                cluster_name=ctx.config.cluster.cluster_name,
                user=spec.client_name,
                **pems,
            )
        write_file(path, data, FILE_MODE, dir_mode=DIR_MODE)
        ctx.notes.append(f"wrote {path.name}" + (f" {FROM_PROFILE}" if baked else ""))

    return run


PHASE = Phase(
    name="kubeconfig",
    summary="Generate all kubeconfig files",
    children=(
        Phase(
            name="admin",
            summary="Generate a kubeconfig file for the admin to use and for kubeadm itself",
            run=_run("admin"),
        ),
        Phase(
            name="super-admin",
            summary="Generate a kubeconfig file for the super-admin",
            run=_run("super-admin"),
        ),
        Phase(
            name="kubelet",
            summary="Generate a kubeconfig file for the kubelet to use *only* for"
            " cluster bootstrapping purposes",
            run=_run("kubelet"),
        ),
        Phase(
            name="controller-manager",
            summary="Generate a kubeconfig file for the controller manager to use",
            run=_run("controller-manager"),
        ),
        Phase(
            name="scheduler",
            summary="Generate a kubeconfig file for the scheduler to use",
            run=_run("scheduler"),
        ),
    ),
)
