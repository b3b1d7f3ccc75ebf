"""A small typed client for the API phases, on the kubernetes Python client's REST layer.

Objects are plain JSON dicts (the renderers in `kubeinit.api` produce them), sent through
`kubernetes.client.rest.RESTClientObject`; the generated model classes are never imported
(importing `CoreV1Api` alone costs ~1 s of CPU, this ~0.2 s). The retry helpers follow kubeadm's
app/util/apiclient/idempotency.go: poll every 500 ms until the kubernetesAPICall timeout.

Credentials come from a kubeconfig. Embedded client keys are handed to OpenSSL through an
anonymous memory file (memfd), so no copy of a private key ever lands on disk. Every error
message passes through `firstboot.log.redact`, so a token echoed by the server never reaches a
log line or the state journal.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import time
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from firstboot.log import current_phase, redact
from kubeinit import hostfs, paths
from kubeinit.errors import PhaseFailed

RETRY_INTERVAL = 0.5  # constants.KubernetesAPICallRetryInterval
REQUEST_TIMEOUT = 10.0

Obj = dict[str, Any]

# kind -> (API path prefix, plural, namespaced)
_RESOURCES: dict[str, tuple[str, str, bool]] = {
    "ConfigMap": ("/api/v1", "configmaps", True),
    "Secret": ("/api/v1", "secrets", True),
    "ServiceAccount": ("/api/v1", "serviceaccounts", True),
    "Service": ("/api/v1", "services", True),
    "Node": ("/api/v1", "nodes", False),
    "Namespace": ("/api/v1", "namespaces", False),
    "Role": ("/apis/rbac.authorization.k8s.io/v1", "roles", True),
    "RoleBinding": ("/apis/rbac.authorization.k8s.io/v1", "rolebindings", True),
    "ClusterRole": ("/apis/rbac.authorization.k8s.io/v1", "clusterroles", False),
    "ClusterRoleBinding": ("/apis/rbac.authorization.k8s.io/v1", "clusterrolebindings", False),
    "Deployment": ("/apis/apps/v1", "deployments", True),
    "DaemonSet": ("/apis/apps/v1", "daemonsets", True),
    "CertificateSigningRequest": (
        "/apis/certificates.k8s.io/v1",
        "certificatesigningrequests",
        False,
    ),
}


def collection_path(kind: str, namespace: str | None = None) -> str:
    prefix, plural, namespaced = _RESOURCES[kind]
    if namespaced:
        return f"{prefix}/namespaces/{namespace}/{plural}"
    return f"{prefix}/{plural}"


def object_path(kind: str, name: str, namespace: str | None = None) -> str:
    return f"{collection_path(kind, namespace)}/{urllib.parse.quote(name)}"


def path_of(obj: Mapping[str, Any]) -> str:
    m = obj["metadata"]
    return object_path(obj["kind"], m["name"], m.get("namespace"))


def describe(obj: Mapping[str, Any]) -> str:
    m = obj["metadata"]
    ns = f"{m['namespace']}/" if m.get("namespace") else ""
    return f"{obj['kind']} {ns}{m['name']}"


class ApiError(Exception):
    """A failed API call. `status` 0 means the server was not reached."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        self.status = status
        self.reason = reason
        self.message = redact(message)
        super().__init__(self.message)

    @property
    def not_found(self) -> bool:
        return self.status == 404

    @property
    def already_exists(self) -> bool:
        return self.status == 409 and self.reason == "AlreadyExists"

    @property
    def forbidden(self) -> bool:
        return self.status == 403

    @property
    def invalid(self) -> bool:
        return self.status == 422


@dataclass(frozen=True)
class Credentials:
    server: str
    ca_pem: bytes
    cert_pem: bytes | None = None
    key_pem: bytes | None = None
    token: str | None = None


def load_kubeconfig(path: Path, root: Path) -> Credentials:
    """The current context's cluster and user of a kubeconfig (data or node paths under root).
    Errors never quote file contents."""
    try:
        cfg = yaml.safe_load(hostfs.read_text(path))
        ctx_name = cfg["current-context"]
        ctx = next(c["context"] for c in cfg["contexts"] if c["name"] == ctx_name)
        cluster = next(c["cluster"] for c in cfg["clusters"] if c["name"] == ctx["cluster"])
        user = next(u["user"] for u in cfg["users"] if u["name"] == ctx["user"])
    except (OSError, yaml.YAMLError, KeyError, TypeError, StopIteration) as e:
        raise PhaseFailed(
            f"{path}: not a usable kubeconfig ({type(e).__name__})",
            hint="rerun the kubeconfig phase: kubeinit init phase kubeconfig",
        ) from None

    def blob(data_key: str, file_key: str, holder: Mapping[str, Any]) -> bytes | None:
        if holder.get(data_key):
            return base64.b64decode(holder[data_key])
        if holder.get(file_key):
            return hostfs.read_bytes(paths.under(root, holder[file_key]))
        return None

    ca = blob("certificate-authority-data", "certificate-authority", cluster)
    if ca is None:
        raise PhaseFailed(f"{path}: the cluster has no certificate authority")
    return Credentials(
        server=cluster["server"],
        ca_pem=ca,
        cert_pem=blob("client-certificate-data", "client-certificate", user),
        key_pem=blob("client-key-data", "client-key", user),
        token=user.get("token"),
    )


def _memfd(name: str, data: bytes) -> int:
    fd = os.memfd_create(name, os.MFD_CLOEXEC)
    os.write(fd, data)
    return fd


_api_writes: dict[str, int] = {}


def _fault_point() -> None:
    """Crash tests set KUBEINIT_FAULT_STOP_AT_API_WRITE=N (or PHASE:N): the process stops
    itself (SIGSTOP) right after the N-th successful mutating API call of the process (or of
    that phase), and the test SIGKILLs it there. One environment lookup per write otherwise."""
    target = os.environ.get("KUBEINIT_FAULT_STOP_AT_API_WRITE")
    if target is None:
        return
    phase, _, n = target.rpartition(":")
    if phase and phase != current_phase():
        return
    _api_writes[phase] = _api_writes.get(phase, 0) + 1
    if _api_writes[phase] == int(n):
        os.kill(os.getpid(), signal.SIGSTOP)


class Client:
    """JSON requests to one API server with one identity."""

    def __init__(
        self, creds: Credentials, *, server: str | None = None, timeout: float = REQUEST_TIMEOUT
    ) -> None:
        from kubernetes.client.configuration import Configuration
        from kubernetes.client.rest import RESTClientObject

        self.server = (server or creds.server).rstrip("/")
        self.timeout = timeout
        self._fds: list[int] = []
        cfg = Configuration()
        cfg.host = self.server
        cfg.ca_cert_data = creds.ca_pem.decode()
        cfg.verify_ssl = True
        cfg.retries = False  # retries are ours (kubeadm's poll loops), never hidden ones
        if creds.cert_pem and creds.key_pem:
            cert_fd = _memfd("kubeinit-client-cert", creds.cert_pem)
            key_fd = _memfd("kubeinit-client-key", creds.key_pem)
            self._fds += [cert_fd, key_fd]
            cfg.cert_file = f"/proc/self/fd/{cert_fd}"
            cfg.key_file = f"/proc/self/fd/{key_fd}"
        self._headers = {"Accept": "application/json", "User-Agent": "kubeinit"}
        if creds.token:
            self._headers["Authorization"] = f"Bearer {creds.token}"
        self._rest: Any = RESTClientObject(cfg)

    def close(self) -> None:
        self._rest.close()
        for fd in self._fds:
            os.close(fd)
        self._fds.clear()

    # --- raw requests ----------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        content_type: str = "application/json",
        query: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> Any:
        """One request; the decoded JSON response. Raises ApiError."""
        import urllib3
        from kubernetes.client.exceptions import ApiException

        url = self.server + path
        if query:
            url += "?" + urllib.parse.urlencode(query)
        headers = dict(self._headers)
        if body is not None:
            headers["Content-Type"] = content_type
        try:
            resp = self._rest.request(
                method,
                url,
                headers=headers,
                body=body if body is not None else None,
                _request_timeout=timeout or self.timeout,
            )
            raw = resp.read()
        except (urllib3.exceptions.HTTPError, ApiException, OSError) as e:
            reason = getattr(e, "reason", None) or e
            raise ApiError(0, "Unreachable", f"{method} {self.server}{path}: {reason}") from None
        text = raw.decode(errors="replace") if raw else ""
        if not 200 <= resp.status < 300:
            reason, message = "", text.strip()[:500]
            try:
                status = json.loads(text)
                reason, message = status.get("reason", ""), status.get("message", message)
            except ValueError:
                pass
            raise ApiError(resp.status, reason, f"{method} {path}: {resp.status} {message}")
        if method != "GET":
            _fault_point()
        if not text:
            return None
        try:
            return json.loads(text)
        except ValueError:
            return text

    def get(self, path: str) -> Obj | None:
        try:
            out = self.request("GET", path)
        except ApiError as e:
            if e.not_found:
                return None
            raise
        return out if isinstance(out, dict) else None

    def create(self, obj: Obj) -> Obj:
        m = obj["metadata"]
        out = self.request("POST", collection_path(obj["kind"], m.get("namespace")), obj)
        return out if isinstance(out, dict) else {}

    def update(self, obj: Obj) -> Obj:
        out = self.request("PUT", path_of(obj), obj)
        return out if isinstance(out, dict) else {}

    def delete(self, kind: str, name: str, namespace: str | None = None) -> bool:
        """True if deleted, False if it did not exist."""
        try:
            self.request("DELETE", object_path(kind, name, namespace))
        except ApiError as e:
            if e.not_found:
                return False
            raise
        return True

    def patch(self, kind: str, name: str, patch: Obj, namespace: str | None = None) -> Obj:
        out = self.request(
            "PATCH",
            object_path(kind, name, namespace),
            patch,
            content_type="application/strategic-merge-patch+json",
        )
        return out if isinstance(out, dict) else {}

    def list(
        self,
        kind: str,
        namespace: str | None = None,
        *,
        label_selector: str = "",
        field_selector: str = "",
    ) -> list[Obj]:
        q = {
            k: v
            for k, v in (("labelSelector", label_selector), ("fieldSelector", field_selector))
            if v
        }
        out = self.request("GET", collection_path(kind, namespace), query=q or None)
        return list(out.get("items") or []) if isinstance(out, dict) else []

    # --- kubeadm's idempotent helpers (apiclient/idempotency.go) ---------------------------

    def poll(self, what: str, attempt: Callable[[], bool], timeout: float) -> None:
        """Call `attempt` every 500 ms until it returns True; ApiErrors are retried. On timeout
        raise PhaseFailed naming `what` and the last error."""
        deadline = time.monotonic() + timeout
        last: str = "timed out"
        while True:
            try:
                if attempt():
                    return
            except ApiError as e:
                last = e.message
            if time.monotonic() >= deadline:
                raise PhaseFailed(
                    f"{what}: {last}",
                    hint="check the API server: kubectl --kubeconfig"
                    " /etc/kubernetes/admin.conf get --raw /readyz",
                )
            time.sleep(RETRY_INTERVAL)

    def create_or_update(self, obj: Obj, timeout: float) -> None:
        """CreateOrUpdate: create; on AlreadyExists replace the object whole."""

        def attempt() -> bool:
            try:
                self.create(obj)
            except ApiError as e:
                if not e.already_exists:
                    raise
                self.update(obj)
            return True

        self.poll(f"cannot create or update {describe(obj)}", attempt, timeout)

    def create_or_mutate(self, obj: Obj, mutate: Callable[[Obj], None], timeout: float) -> None:
        """CreateOrMutate: create; on AlreadyExists get, mutate, update."""

        def attempt() -> bool:
            try:
                self.create(obj)
            except ApiError as e:
                if not e.already_exists:
                    raise
                current = self.get(path_of(obj))
                if current is None:
                    return False
                mutate(current)
                self.update(current)
            return True

        self.poll(f"cannot create or mutate {describe(obj)}", attempt, timeout)

    def create_or_retain(self, obj: Obj, timeout: float) -> None:
        """CreateOrRetain: create only if it does not exist."""

        def attempt() -> bool:
            if self.get(path_of(obj)) is None:
                self.create(obj)
            return True

        self.poll(f"cannot create {describe(obj)}", attempt, timeout)


def ensure_admin_binding(
    admin: Client, super_admin: Callable[[], Client | None], timeout: float
) -> str:
    """EnsureAdminClusterRoleBindingImpl (app/phases/kubeconfig/kubeconfig.go): try to create
    the `kubeadm:cluster-admins` binding as admin.conf; Forbidden means admin.conf has no rights
    yet, so create it as super-admin.conf (system:masters). Returns a note for the operator
    ("" when it already existed)."""
    from kubeinit.api import admin_cluster_role_binding

    crb = admin_cluster_role_binding()
    outcome: dict[str, str] = {}

    def as_admin() -> bool:
        try:
            admin.create(crb)
            outcome["result"] = "created ClusterRoleBinding kubeadm:cluster-admins"
        except ApiError as e:
            if e.forbidden:
                outcome["result"] = "forbidden"
            elif e.already_exists:
                outcome["result"] = ""
            else:
                raise
        return True

    admin.poll("cannot create the ClusterRoleBinding kubeadm:cluster-admins", as_admin, timeout)
    if outcome["result"] != "forbidden":
        return outcome["result"]
    sa = super_admin()
    if sa is None:
        raise PhaseFailed(
            "the ClusterRoleBinding kubeadm:cluster-admins is missing but there is"
            " no super-admin.conf to create it",
            hint="rerun `kubeinit init phase kubeconfig super-admin`",
        )
    try:

        def as_super() -> bool:
            try:
                sa.create(crb)
            except ApiError as e:
                if not e.already_exists:
                    raise
            return True

        sa.poll(
            "cannot create the ClusterRoleBinding kubeadm:cluster-admins with super-admin.conf",
            as_super,
            timeout,
        )
    finally:
        sa.close()
    return "created ClusterRoleBinding kubeadm:cluster-admins with super-admin.conf"
