"""The typed, read-only context every phase reads (house style §3)."""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from kubeinit import paths
from kubeinit.config import Config
from kubeinit.identity import Identity


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
    notes: list[str] = field(default_factory=list, compare=False)

    def path(self, node_path: PurePosixPath | str) -> Path:
        """A node path (e.g. /etc/kubernetes/pki/ca.crt) inside this context's root."""
        return paths.under(self.root, node_path)

    @property
    def cert_dir(self) -> PurePosixPath:
        return PurePosixPath(self.config.cluster.certificates_dir)
