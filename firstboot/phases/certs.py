"""STUB: being implemented."""

from __future__ import annotations

from firstboot.context import InitContext
from firstboot.phase import Phase


def _todo(ctx: InitContext) -> None:
    raise NotImplementedError


PHASE = Phase(name="certs", summary="Certificate generation", children=(
    Phase(name="ca", summary="Generate the self-signed Kubernetes CA", run=_todo),
    Phase(name="apiserver", summary="Generate the certificate for serving the Kubernetes API", run=_todo),
    Phase(name="apiserver-kubelet-client", summary="Generate the certificate for the API server to connect to kubelet", run=_todo),
    Phase(name="front-proxy-ca", summary="Generate the self-signed CA to provision identities for front proxy", run=_todo),
    Phase(name="front-proxy-client", summary="Generate the certificate for the front proxy client", run=_todo),
    Phase(name="etcd-ca", summary="Generate the self-signed CA to provision identities for etcd", run=_todo),
    Phase(name="etcd-server", summary="Generate the certificate for serving etcd", run=_todo),
    Phase(name="etcd-peer", summary="Generate the certificate for etcd nodes to communicate with each other", run=_todo),
    Phase(name="etcd-healthcheck-client", summary="Generate the certificate for liveness probes to healthcheck etcd", run=_todo),
    Phase(name="apiserver-etcd-client", summary="Generate the certificate the apiserver uses to access etcd", run=_todo),
    Phase(name="sa", summary="Generate a private key for signing service account tokens along with its public key", run=_todo),
))
