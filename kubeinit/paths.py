"""Every path kubeinit writes on a node, relative to a root, and the tools it calls.

Writers take `root: Path` and join these relative paths (house style §7): first boot passes `/`,
the builder passes the image tree, tests pass a temporary directory. Paths that appear *inside*
generated files (manifest flags, kubeconfig paths) are absolute node paths and are never rebased.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

# kubeadm constants (cmd/kubeadm/app/constants/constants.go)
KUBERNETES_DIR = PurePosixPath("/etc/kubernetes")
MANIFESTS_DIR = KUBERNETES_DIR / "manifests"
DEFAULT_CERT_DIR = KUBERNETES_DIR / "pki"
ADMIN_CONF = KUBERNETES_DIR / "admin.conf"
SUPER_ADMIN_CONF = KUBERNETES_DIR / "super-admin.conf"
KUBELET_CONF = KUBERNETES_DIR / "kubelet.conf"
CONTROLLER_MANAGER_CONF = KUBERNETES_DIR / "controller-manager.conf"
SCHEDULER_CONF = KUBERNETES_DIR / "scheduler.conf"
KUBELET_DIR = PurePosixPath("/var/lib/kubelet")
KUBELET_CONFIG = KUBELET_DIR / "config.yaml"
KUBELET_FLAGS_ENV = KUBELET_DIR / "kubeadm-flags.env"
KUBELET_INSTANCE_CONFIG = KUBELET_DIR / "instance-config.yaml"
KUBELET_CLIENT_CURRENT = KUBELET_DIR / "pki" / "kubelet-client-current.pem"
DEFAULT_ETCD_DATA_DIR = PurePosixPath("/var/lib/etcd")
FLEXVOLUME_DIR = PurePosixPath("/usr/libexec/kubernetes/kubelet-plugins/volume/exec")

# kubeinit's own files
STATE_DIR = PurePosixPath("/var/lib/kubeinit")
STATE_FILE = STATE_DIR / "state.json"
DONE_STAMP = STATE_DIR / "init.done"
FAILED_MARKER = STATE_DIR / "init.failed"
ETC_DIR = PurePosixPath("/etc/kubeinit")
NODE_CONFIG = ETC_DIR / "config.yaml"
JOIN_COMMAND = ETC_DIR / "join-command"
JOIN_COMMAND_CONTROL_PLANE = ETC_DIR / "join-command-control-plane"
JOIN_INFO = ETC_DIR / "join.json"
# Secrets the API phases mint, kept (0600) so a crashed first boot resumes with the same ones.
BOOTSTRAP_TOKENS = STATE_DIR / "bootstrap-tokens.json"
UPLOADED_CERTS = STATE_DIR / "uploaded-certs.json"
LIB_DIR = PurePosixPath("/usr/lib/kubeinit")
PROFILE = LIB_DIR / "profile.json"
KERNEL_CMDLINE = PurePosixPath("/proc/cmdline")

# Tools. Looked up on PATH by the run helper; named here so tests and preflight agree.
SYSTEMCTL = "systemctl"
KUBELET = "kubelet"


def under(root: Path, path: PurePosixPath | str) -> Path:
    """`path` (absolute on the node) inside `root`. Refuses to escape the root."""
    rel = PurePosixPath(path)
    if rel.is_absolute():
        rel = rel.relative_to("/")
    if ".." in rel.parts:
        raise ValueError(f"path {path} escapes the root")
    return root / rel
