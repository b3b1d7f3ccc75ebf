"""The join commands, as `kubeadm init` prints them (app/cmd/util/join.go joinCommandTemplate),
and the files kubeinit keeps them in.

`/etc/kubeinit/join-command` (worker) and `/etc/kubeinit/join-command-control-plane` are shell
scripts (0600: they hold the token, and the certificate key) whose only command is the one
kubeadm prints; `/etc/kubeinit/join.json` (0600) holds the same facts machine-readably, with the
expiry times of the token and of the uploaded certificates.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from kubeinit.api.tokens import rfc3339

JOIN_SCHEMA = 1


def join_command(
    server_host_port: str,
    token: str,
    ca_hashes: Sequence[str],
    *,
    certificate_key: str | None = None,
    control_plane: bool = False,
) -> str:
    """joinCommandTemplate rendered exactly (a backslash-newline-tab between option groups)."""
    out = f"kubeadm join {server_host_port} --token {token} \\\n\t"
    out += "".join(f"--discovery-token-ca-cert-hash {h} " for h in ca_hashes)
    if control_plane:
        out += "\\\n\t--control-plane "
        if certificate_key:
            out += f"--certificate-key {certificate_key}"
    return out


@dataclass(frozen=True)
class JoinInfo:
    """What show-join-command writes. `token` and `certificate_key` are secrets."""

    server: str  # host:port, the admin.conf server without https://
    ca_cert_hashes: tuple[str, ...]
    token: str = field(repr=False)
    token_expires: datetime.datetime | None
    certificate_key: str = field(default="", repr=False)
    certificate_key_expires: datetime.datetime | None = None
    control_plane_endpoint: str = ""

    def worker_command(self) -> str:
        return join_command(self.server, self.token, self.ca_cert_hashes)

    def control_plane_command(self) -> str:
        return join_command(
            self.server,
            self.token,
            self.ca_cert_hashes,
            certificate_key=self.certificate_key,
            control_plane=True,
        )

    def to_json(self) -> str:
        def t(x: datetime.datetime | None) -> str | None:
            return rfc3339(x) if x else None

        data: dict[str, Any] = {
            "schema": JOIN_SCHEMA,
            "server": self.server,
            "caCertHashes": list(self.ca_cert_hashes),
            "controlPlaneEndpoint": self.control_plane_endpoint,
            "token": self.token,
            "tokenExpires": t(self.token_expires),
            "certificateKey": self.certificate_key,
            "certificateKeyExpires": t(self.certificate_key_expires),
        }
        return json.dumps(data, indent=2) + "\n"


def script(command: str, comment: Sequence[str]) -> str:
    head = "".join(f"# {line}\n" for line in comment)
    return f"#!/bin/sh\n{head}exec {command}\n"


def worker_script(info: JoinInfo) -> str:
    exp = rfc3339(info.token_expires) if info.token_expires else "never"
    return script(
        info.worker_command(),
        [
            "kubeinit: join a worker node to this cluster (run as root on the new node).",
            f"The bootstrap token expires {exp}; mint a new one with `kubeinit join-command"
            " --refresh`.",
            "Secret: anyone holding this file can join nodes to the cluster.",
        ],
    )


def control_plane_script(info: JoinInfo) -> str:
    exp = rfc3339(info.certificate_key_expires) if info.certificate_key_expires else "unknown"
    lines = [
        "kubeinit: join another control-plane node (run as root on the new node).",
        f"The uploaded certificates (kubeadm-certs) expire {exp}; re-upload with"
        " `kubeinit join-command --refresh`.",
        "Secret: the certificate key decrypts the cluster CA keys.",
    ]
    if not info.control_plane_endpoint:
        lines.append(
            "Note: the cluster has no controlPlaneEndpoint; kubeadm refuses a"
            " control-plane join until one is set."
        )
    return script(info.control_plane_command(), lines)
