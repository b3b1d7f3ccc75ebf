"""`certs`: kubeadm's CAs, leaf certificates and service-account keys, reused when valid.

What is written is what kubeadm writes (kubeinit.pki); what happens to files that exist follows
kubeadm's init phases (cmd/kubeadm/app/cmd/phases/init/certs.go), made safe against a crash at
any instant and stricter where kubeadm would carry on into a broken control plane.

Crash safety. Every file is written atomically (kubeinit.fs.write_file), and a pair is always
written key first, certificate second; certificates signed by a CA are written only after that
CA's certificate. So a crash can leave exactly one kind of half pair: a key without its
certificate. That state is never the user's doing in kubeadm's model (kubeadm itself refuses
it), so it is recovered by signing a new certificate for the existing key: a lone CA key gets a
fresh self-signed CA certificate (nothing can have been signed by a CA whose certificate was
never written; and reusing the key keeps even an old leaf signed with it verifiable), a lone
leaf key gets a certificate from its CA. Keys are never replaced. The opposite half pair, a
certificate without its key, is never produced by a crash and keeps kubeadm's meaning:

- CA certificate without key = external CA (UsingExternalCA). The CA is used as it is, and every
  certificate it signs must already exist, have its key, and chain to it; otherwise the phase
  fails saying so (kubeadm checks this up front for the Kubernetes and front-proxy CAs).
  The service-account key pair must be provided too: kubeadm skips `sa` in this mode without
  checking, which leaves an API server that cannot start; kubeinit fails instead.
- Leaf certificate without key: an error naming the missing key (kubeadm's init phase would reuse
  the certificate without looking for the key and the component would fail later).

Reuse of a complete pair: a CA must be a CA and match its key. A leaf must match its key, chain
to its CA with every certificate inside its validity period (kubeadm's VerifyCertChain), and,
stricter than kubeadm's init phase but as kubeadm's CreatePKIAssets does, cover every SAN the
configuration asks for: an apiserver certificate minted for another address fails with a clear
message instead of being reused. Unreadable files are errors naming the file, never tracebacks,
and never quote key material. `sa`: an existing sa.key is reused; a missing sa.pub is derived
from it, an sa.pub of another key is an error.

Speed: the first sub-phase that needs a new key starts generating every key the certs and
kubeconfig phases will need (kubeinit.keygen.KeyPool, one forked child per key, one per CPU),
and each later sub-phase takes whichever key is ready first. Measured on the 2-core reference
machine (RSA-2048, default config, other load kept off with SCHED_FIFO): certs + kubeconfig in one
process 0.40-0.62 s; kubeadm v1.37.2 `init phase certs all` + `init phase kubeconfig all`
0.9-1.4 s. (cryptography holds the GIL while generating RSA keys: threads gain nothing.)
"""

from __future__ import annotations

import datetime
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING

from firstboot.context import InitContext
from firstboot.phase import Phase
from kubeinit.errors import PhaseFailed

if TYPE_CHECKING:
    from pathlib import Path

    from cryptography import x509

    from kubeinit.pki import CertSpec, KeyPool, PrivateKey

CERT_MODE = 0o644
KEY_MODE = 0o600
DIR_MODE = 0o755  # certutil.WriteCert / keyutil.WriteKey: os.MkdirAll(dir, 0755)

_pools: dict[int, tuple[weakref.ref[InitContext], KeyPool]] = {}


def _specs(ctx: InitContext) -> dict[str, CertSpec]:
    from kubeinit import pki

    return {s.name: s for s in pki.cert_specs(ctx.config, ctx.identity)}


def _file(ctx: InitContext, name: str) -> Path:
    return ctx.path(ctx.cert_dir / name)


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def key_pool(ctx: InitContext) -> KeyPool:
    """The context's key pool; created on first use with every key still to be made queued."""
    from kubeinit import pki

    entry = _pools.get(id(ctx))
    if entry is not None and entry[0]() is ctx:
        return entry[1]
    for key, (ref, old) in list(_pools.items()):  # pools of contexts that are gone
        if ref() is None or key == id(ctx):
            old.close()
            del _pools[key]
    pool = pki.KeyPool(pki.key_algorithm(ctx.config))
    pool.prefetch(_keys_to_make(ctx))
    _pools[id(ctx)] = (weakref.ref(ctx), pool)
    return pool


def _keys_to_make(ctx: InitContext) -> int:
    """How many new keys the certs and kubeconfig phases will need, judged from the disk."""
    from kubeinit import kubeconfig

    specs = _specs(ctx)
    external = {
        s.name
        for s in specs.values()
        if s.is_ca and _file(ctx, s.cert_file).exists() and not _file(ctx, s.key_file).exists()
    }
    count = sum(
        1
        for s in specs.values()
        if not _file(ctx, s.key_file).exists()
        and s.ca_name not in external
        and s.name not in external
    )
    if "ca" not in external:
        count += 0 if _file(ctx, "sa.key").exists() else 1
        count += sum(
            1
            for k in kubeconfig.kubeconfig_specs(ctx.config, ctx.identity)
            if not ctx.path(k.path).exists()
        )
    return count


def _write_pair(
    ctx: InitContext, spec: CertSpec, key: PrivateKey | None, cert: x509.Certificate
) -> None:
    """Key first (if new), certificate second: a crash leaves at most a lone key."""
    from kubeinit import pki
    from kubeinit.fs import write_file

    if key is not None:
        write_file(_file(ctx, spec.key_file), pki.encode_key_pem(key), KEY_MODE, dir_mode=DIR_MODE)
    write_file(_file(ctx, spec.cert_file), pki.encode_cert_pem(cert), CERT_MODE, dir_mode=DIR_MODE)


def load_ca(ctx: InitContext, spec: CertSpec) -> tuple[x509.Certificate, PrivateKey | None]:
    """The CA certificate and, unless it is external, its key; checked like kubeadm's
    LoadCertificateAuthority, plus that the key belongs to the certificate."""
    from kubeinit import pki

    crt, key_path = _file(ctx, spec.cert_file), _file(ctx, spec.key_file)
    if not crt.exists():
        raise PhaseFailed(
            f"the {spec.name} certificate {crt} does not exist",
            hint=f"run `kubeinit init phase certs {spec.name}` first",
        )
    cert = pki.load_cert(crt)
    if not pki.is_ca(cert):
        raise PhaseFailed(
            f"{crt} is not a certificate authority",
            hint="replace it with a CA certificate, or remove it and its key",
        )
    if not key_path.exists():
        return cert, None
    key = pki.load_key(key_path)
    if not pki.same_public_key(key.public_key(), cert.public_key()):
        raise PhaseFailed(
            f"{key_path} is not the key of {crt}",
            hint="restore the matching pair; kubeinit never replaces a CA",
        )
    return cert, key


def _check_leaf(ctx: InitContext, spec: CertSpec, ca_cert: x509.Certificate) -> str:
    """Validate an existing leaf pair; returns a note. Raises PhaseFailed when unusable."""
    from kubeinit import pki

    crt, key_path = _file(ctx, spec.cert_file), _file(ctx, spec.key_file)
    if not key_path.exists():
        raise PhaseFailed(
            f"{crt} exists but its key {key_path} does not",
            hint=f"restore {key_path.name}, or remove {crt.name} to have a new pair generated",
        )
    chain = pki.load_certs(crt)
    key = pki.load_key(key_path)
    if not pki.same_public_key(key.public_key(), chain[0].public_key()):
        raise PhaseFailed(
            f"{key_path} is not the key of {crt}",
            hint=f"remove both {crt.name} and {key_path.name} to have a new pair generated",
        )
    problem = pki.chain_problem(chain[0], chain[1:], ca_cert, _now())
    if problem:
        raise PhaseFailed(
            f"certificate {crt} cannot be used: {problem}",
            hint=f"remove {crt.name} and {key_path.name} to have them generated"
            f" again by the {spec.ca_name} CA",
        )
    missing = pki.missing_names(chain[0], spec.alt_names.deduplicated())
    if missing:
        raise PhaseFailed(
            f"certificate {crt} is not valid for {', '.join(missing)}",
            hint=f"it was made for another address or name: remove {crt.name} and"
            f" {key_path.name} to have them generated for this configuration",
        )
    return f"using the existing {spec.base_name} certificate and key"


def _run_ca(name: str) -> Callable[[InitContext], None]:
    def run(ctx: InitContext) -> None:
        from kubeinit import pki

        spec = _specs(ctx).get(name)
        if spec is None:  # the etcd CA with external etcd
            ctx.notes.append(f"external etcd: skipping the {name} certificate authority")
            return
        crt, key_path = _file(ctx, spec.cert_file), _file(ctx, spec.key_file)
        if crt.exists():
            cert, key = load_ca(ctx, spec)
            period = pki.period_problem(cert, _now())
            if period:
                ctx.notes.append(f"WARNING: {spec.base_name}.crt is {period}")
            if key is None:
                _check_external_ca(ctx, spec, cert)
                ctx.notes.append(
                    f"using the existing {spec.base_name} certificate authority"
                    " without its key (external CA)"
                )
            else:
                ctx.notes.append(f"using the existing {spec.base_name} certificate authority")
            return
        not_before, not_after = pki.validity(spec, ctx.config, ctx.start_time)
        if key_path.exists():  # a crash between the key and the certificate
            key = pki.load_key(key_path)
            _write_pair(
                ctx, spec, None, pki.new_ca(spec, key, not_before=not_before, not_after=not_after)
            )
            ctx.notes.append(f"completed {spec.base_name}: new certificate for the existing key")
            return
        key = key_pool(ctx).take()
        _write_pair(
            ctx, spec, key, pki.new_ca(spec, key, not_before=not_before, not_after=not_after)
        )
        ctx.notes.append(f"generated the {spec.base_name} certificate authority")

    return run


def _check_external_ca(ctx: InitContext, ca: CertSpec, ca_cert: x509.Certificate) -> None:
    """UsingExternalCA / UsingExternalFrontProxyCA: without the CA key nothing can be signed,
    so every certificate of this CA must be there and valid."""
    for leaf in _specs(ctx).values():
        if leaf.ca_name != ca.name:
            continue
        crt = _file(ctx, leaf.cert_file)
        if not crt.exists():
            raise PhaseFailed(
                f"invalid or incomplete external CA: {ca.base_name}.key is absent (external CA"
                f" mode), so {crt} must be provided",
                hint=f"provide {leaf.base_name}.crt and"
                f" .key signed by {ca.base_name}.crt, or provide {ca.base_name}.key",
            )
        _check_leaf(ctx, leaf, ca_cert)


def _run_leaf(name: str) -> Callable[[InitContext], None]:
    def run(ctx: InitContext) -> None:
        from kubeinit import pki

        specs = _specs(ctx)
        spec = specs.get(name)
        if spec is None:  # etcd certificates with external etcd
            ctx.notes.append(f"external etcd: skipping the {name} certificate")
            return
        ca_spec = specs[spec.ca_name]
        crt, key_path = _file(ctx, spec.cert_file), _file(ctx, spec.key_file)
        if crt.exists():
            ctx.notes.append(_check_leaf(ctx, spec, load_ca(ctx, ca_spec)[0]))
            return
        ca_cert, ca_key = load_ca(ctx, ca_spec)
        if ca_key is None:
            raise PhaseFailed(
                f"cannot create {crt}: the {ca_spec.name} CA has no key (external CA)",
                hint=f"provide {spec.base_name}.crt and .key signed by {ca_spec.base_name}.crt",
            )
        not_before, not_after = pki.validity(spec, ctx.config, ctx.start_time)
        reused = key_path.exists()  # a crash between the key and the certificate
        key = pki.load_key(key_path) if reused else key_pool(ctx).take()
        cert = pki.new_signed(
            spec,
            key.public_key(),
            ca_cert=ca_cert,
            ca_key=ca_key,
            not_before=not_before,
            not_after=not_after,
        )
        _write_pair(ctx, spec, None if reused else key, cert)
        ctx.notes.append(
            f"completed {spec.base_name}: new certificate for the existing key"
            if reused
            else f"generated {spec.base_name}"
        )

    return run


def run_sa(ctx: InitContext) -> None:
    """CreateServiceAccountKeyAndPublicKeyFiles: sa.key (reused if it loads) and sa.pub, both
    written through the key writer (0600)."""
    from kubeinit import pki
    from kubeinit.fs import write_file

    key_path, pub_path = _file(ctx, "sa.key"), _file(ctx, "sa.pub")
    if key_path.exists():
        key = pki.load_key(key_path)
        if not pub_path.exists():  # a crash between the two files
            write_file(
                pub_path, pki.encode_public_key_pem(key.public_key()), KEY_MODE, dir_mode=DIR_MODE
            )
            ctx.notes.append("completed sa: wrote sa.pub for the existing sa.key")
            return
        if not pki.same_public_key(pki.load_public_key(pub_path), key.public_key()):
            raise PhaseFailed(
                f"{pub_path} is not the public key of {key_path}",
                hint="remove sa.pub to have it derived from sa.key again",
            )
        ctx.notes.append("using the existing sa key")
        return
    if _file(ctx, "ca.crt").exists() and not _file(ctx, "ca.key").exists():
        raise PhaseFailed(
            f"external CA mode: {key_path} must be provided",
            hint="provide sa.key and sa.pub with the other certificates",
        )
    key = key_pool(ctx).take()
    write_file(key_path, pki.encode_key_pem(key), KEY_MODE, dir_mode=DIR_MODE)
    write_file(pub_path, pki.encode_public_key_pem(key.public_key()), KEY_MODE, dir_mode=DIR_MODE)
    ctx.notes.append("generated the sa key and public key")


PHASE = Phase(
    name="certs",
    summary="Certificate generation",
    children=(
        Phase(name="ca", summary="Generate the self-signed Kubernetes CA", run=_run_ca("ca")),
        Phase(
            name="apiserver",
            summary="Generate the certificate for serving the Kubernetes API",
            run=_run_leaf("apiserver"),
        ),
        Phase(
            name="apiserver-kubelet-client",
            summary="Generate the certificate for the API server to connect to kubelet",
            run=_run_leaf("apiserver-kubelet-client"),
        ),
        Phase(
            name="front-proxy-ca",
            summary="Generate the self-signed CA to provision identities for front proxy",
            run=_run_ca("front-proxy-ca"),
        ),
        Phase(
            name="front-proxy-client",
            summary="Generate the certificate for the front proxy client",
            run=_run_leaf("front-proxy-client"),
        ),
        Phase(
            name="etcd-ca",
            summary="Generate the self-signed CA to provision identities for etcd",
            run=_run_ca("etcd-ca"),
        ),
        Phase(
            name="etcd-server",
            summary="Generate the certificate for serving etcd",
            run=_run_leaf("etcd-server"),
        ),
        Phase(
            name="etcd-peer",
            summary="Generate the certificate for etcd nodes to communicate with each other",
            run=_run_leaf("etcd-peer"),
        ),
        Phase(
            name="etcd-healthcheck-client",
            summary="Generate the certificate for liveness probes to healthcheck etcd",
            run=_run_leaf("etcd-healthcheck-client"),
        ),
        Phase(
            name="apiserver-etcd-client",
            summary="Generate the certificate the apiserver uses to access etcd",
            run=_run_leaf("apiserver-etcd-client"),
        ),
        Phase(
            name="sa",
            summary="Generate a private key for signing service account tokens along"
            " with its public key",
            run=run_sa,
        ),
    ),
)
