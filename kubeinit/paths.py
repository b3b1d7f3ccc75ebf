"""Every path kubeinit writes on a node, relative to a root, and the tools it calls.

Writers take `root: Path` and join these relative paths (house style §7): first boot passes `/`,
the builder passes the image tree, tests pass a temporary directory. Paths that appear *inside*
generated files (manifest flags, kubeconfig paths) are absolute node paths and are never rebased.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from kubeinit import hostfs

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
# flock(2)ed by `kubeinit init`, `init phase` and `join-command --refresh` (firstboot.lock).
LOCK_FILE = STATE_DIR / "lock"
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

# Every directory first boot writes files into (the default certificatesDir): where the init
# lock's holder sweeps temporary files left by a crash, and what the confinement tests plant
# links in.
WRITTEN_DIRS = (
    KUBERNETES_DIR,
    MANIFESTS_DIR,
    DEFAULT_CERT_DIR,
    DEFAULT_CERT_DIR / "etcd",
    KUBELET_DIR,
    KUBELET_DIR / "pki",
    STATE_DIR,
    ETC_DIR,
)

# Tools. Looked up on PATH by the run helper; named here so tests and preflight agree.
SYSTEMCTL = "systemctl"
KUBELET = "kubelet"


def under(root: Path, path: PurePosixPath | str) -> Path:
    """`path` (absolute on the node) inside `root`, resolved with chroot semantics: a link in
    the tree is followed as the node would follow it, never out of the root (an absolute
    target starts again at the root, `..` stops there). `..` in `path` itself is refused
    (InvalidInput). The result has no links in it: `kubeinit.fs` and `kubeinit.hostfs` then
    walk it without following any (house style §16)."""
    return hostfs.chase(root, path)


def under_nofollow(root: Path, path: PurePosixPath | str) -> Path:
    """As `under`, but the last component is not resolved: for looking at a link itself."""
    return hostfs.chase_parent(root, path)
