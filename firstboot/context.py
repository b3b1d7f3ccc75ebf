"""The typed, read-only context every phase reads (house style §3)."""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from kubeinit import paths
from kubeinit.config import Config, join_host_port
from kubeinit.identity import Identity

if TYPE_CHECKING:  # the kubernetes client is imported only when an API phase runs
    from firstboot.apiclient import Client
    from kubeinit.profile import Profile


@dataclass(frozen=True)
class InitContext:
    config: Config
    root: Path
    identity: Identity
    # One timestamp per process, as kubeadm's StartTimeUTC(): every certificate of one run
    # shares NotBefore = start - 5 min.
    start_time: datetime.datetime
    ignore_preflight_errors: frozenset[str] = frozenset()
    # True only when the root is / and systemd is PID 1: then kubelet-start may touch services.
    manage_services: bool = False
    # preflight's target ("node", "image"); "" lets the preflight phase choose by the root.
    preflight_target: str = ""
    # The image's profile (kubeinit-build), if any: preloaded images, the preflight inputs and
    # pre-rendered files. `use_templates`: its files fit this run (firstboot.templates).
    profile: Profile | None = None
    use_templates: bool = False
    notes: list[str] = field(default_factory=list, compare=False)
    # API clients, created on first use (kubeadm's initData.Client() singleton).
    _clients: dict[str, Client] = field(default_factory=dict, compare=False, repr=False)

    def path(self, node_path: PurePosixPath | str) -> Path:
        """A node path (e.g. /etc/kubernetes/pki/ca.crt) inside this context's root."""
        return paths.under(self.root, node_path)

    @property
    def cert_dir(self) -> PurePosixPath:
        return PurePosixPath(self.config.cluster.certificates_dir)

    @property
    def api_timeout(self) -> float:
        """timeouts.kubernetesAPICall: how long each idempotent API write keeps retrying."""
        return self.config.init.timeouts.kubernetes_api_call.total_seconds()

    @property
    def local_api_server(self) -> str:
        """https://<advertiseAddress>:<bindPort>: kubeadm points its own clients here
        (kubeconfigutil.PointKubeConfigToLocalAPIEndpoint), not at controlPlaneEndpoint."""
        return "https://" + join_host_port(
            self.identity.advertise_address, self.config.init.local_api_endpoint.bind_port
        )

    def kubeconfig_client(self, node_path: PurePosixPath | str, *, local: bool = True) -> Client:
        """A client with the identity of a kubeconfig under the root (not cached)."""
        from firstboot.apiclient import Client, load_kubeconfig

        creds = load_kubeconfig(self.path(node_path), self.root)
        return Client(creds, server=self.local_api_server if local else None)

    def admin_client(self) -> Client:
        """admin.conf's client, without ensuring its RBAC (for health checks)."""
        if "raw-admin" not in self._clients:
            self._clients["raw-admin"] = self.kubeconfig_client(paths.ADMIN_CONF)
        return self._clients["raw-admin"]

    def client(self) -> Client:
        """The client every API phase uses: admin.conf, after making sure the
        `kubeadm:cluster-admins` ClusterRoleBinding exists (created with super-admin.conf when
        admin.conf may not create it yet), exactly as kubeadm's initData.Client() does through
        EnsureAdminClusterRoleBinding."""
        if "admin" not in self._clients:
            from firstboot.apiclient import ensure_admin_binding

            admin = self.admin_client()
            super_conf = self.path(paths.SUPER_ADMIN_CONF)
            created = ensure_admin_binding(
                admin,
                lambda: (
                    self.kubeconfig_client(paths.SUPER_ADMIN_CONF) if super_conf.exists() else None
                ),
                self.api_timeout,
            )
            if created:
                self.notes.append(created)
            self._clients["admin"] = admin
        return self._clients["admin"]

    def close_clients(self) -> None:
        for c in {id(c): c for c in self._clients.values()}.values():
            c.close()
        self._clients.clear()
