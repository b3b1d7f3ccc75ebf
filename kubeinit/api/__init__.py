"""Pure renderers of the API objects `kubeadm init` creates, as JSON-shaped dicts.

Each function takes configuration values and returns the object kubeadm v1.37 would send, field
for field (cmd/kubeadm/app/phases/{uploadconfig,uploadcerts,markcontrolplane,bootstraptoken,
kubelet,addons} and app/cmd/phases/init). Nothing here talks to a server, reads the environment
or writes a file: first boot sends these through `firstboot.apiclient`, tests compare them with
what real `kubeadm init --dry-run` prints. Secrets (tokens, the certificate key) are arguments,
never logged here.
"""

from __future__ import annotations

from typing import Any

Obj = dict[str, Any]

NS_SYSTEM = "kube-system"
NS_PUBLIC = "kube-public"
RBAC_API = "rbac.authorization.k8s.io/v1"
RBAC_GROUP = "rbac.authorization.k8s.io"

# cmd/kubeadm/app/constants/constants.go
NODE_BOOTSTRAP_TOKEN_GROUP = "system:bootstrappers:kubeadm:default-node-token"
NODES_GROUP = "system:nodes"
CLUSTER_ADMINS = "kubeadm:cluster-admins"


def meta(name: str, namespace: str | None = None, **extra: Any) -> Obj:
    m: Obj = {"name": name}
    if namespace:
        m["namespace"] = namespace
    m.update({k: v for k, v in extra.items() if v})
    return m


def role(name: str, namespace: str, resource: str, resource_name: str) -> Obj:
    """A Role granting `get` on one named object, as kubeadm writes all of its Roles."""
    return {
        "apiVersion": RBAC_API,
        "kind": "Role",
        "metadata": meta(name, namespace),
        "rules": [
            {
                "verbs": ["get"],
                "apiGroups": [""],
                "resources": [resource],
                "resourceNames": [resource_name],
            }
        ],
    }


def subject(kind: str, name: str, namespace: str = "") -> Obj:
    s: Obj = {"kind": kind, "name": name}
    if namespace:
        s["namespace"] = namespace
    return s


def role_binding(name: str, namespace: str, role_name: str, subjects: list[Obj]) -> Obj:
    return {
        "apiVersion": RBAC_API,
        "kind": "RoleBinding",
        "metadata": meta(name, namespace),
        "roleRef": {"apiGroup": RBAC_GROUP, "kind": "Role", "name": role_name},
        "subjects": subjects,
    }


def cluster_role_binding(name: str, cluster_role: str, subjects: list[Obj]) -> Obj:
    return {
        "apiVersion": RBAC_API,
        "kind": "ClusterRoleBinding",
        "metadata": meta(name),
        "roleRef": {"apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": cluster_role},
        "subjects": subjects,
    }


def group(name: str) -> Obj:
    return subject("Group", name)


def admin_cluster_role_binding() -> Obj:
    """`kubeadm:cluster-admins` -> cluster-admin, so admin.conf (O=kubeadm:cluster-admins)
    works (app/phases/kubeconfig/kubeconfig.go EnsureAdminClusterRoleBindingImpl)."""
    return cluster_role_binding(CLUSTER_ADMINS, "cluster-admin", [group(CLUSTER_ADMINS)])
