"""Helpers for comparing API objects: kubeinit's, the live cluster's, and real kubeadm's.

kubeadm's `--dry-run` prints each object after decoding it into its Go type and encoding it
again, so Go's zero values show up (`status: {}`, `resources: {}`, `creationTimestamp: null`)
and `omitempty` fields set to false/"" vanish. `normalize` removes exactly those differences:
null, false, "", {} and [] are dropped everywhere, and `status` is ignored. Nothing else is.
"""

from __future__ import annotations

import base64
import datetime
import json
import shlex
import subprocess
import time
from pathlib import Path
from typing import Any

from firstboot.context import InitContext
from kubeinit.api.certs_secret import PROXY_TOKEN_DESCRIPTION, decrypt
from kubeinit.config import Config, load_config
from kubeinit.identity import detect_advertise_address, resolve_identity
from tests.conftest import ALL_CONFIGS
from tests.localcluster import LocalCluster, bin_dir

# Every test config; each is judged by the real kubeadm of its own minor (conftest.kubeadm_for).
API_CONFIGS = list(ALL_CONFIGS)

SERVER_FIELDS = ("uid", "resourceVersion", "creationTimestamp", "managedFields", "generation",
                 "selfLink")


def normalize(obj: Any, *, top: bool = True) -> Any:
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            if top and k == "status":
                continue
            n = normalize(v, top=False)
            if n in (None, False, "", {}, []):
                continue
            out[k] = n
        return out
    if isinstance(obj, list):
        return [normalize(v, top=False) for v in obj]
    return obj


def contains(live: Any, sent: Any, path: str = "") -> list[str]:
    """Where `sent` (normalized) is not part of `live`: the server kept every field sent."""
    problems: list[str] = []
    if isinstance(sent, dict):
        if not isinstance(live, dict):
            return [f"{path}: expected a mapping, got {live!r}"]
        for k, v in sent.items():
            if k not in live:
                problems.append(f"{path}.{k}: missing on the server")
            else:
                problems += contains(live[k], v, f"{path}.{k}")
    elif isinstance(sent, list):
        if not isinstance(live, list) or len(live) != len(sent):
            return [f"{path}: {live!r} != {sent!r}"]
        for i, (a, b) in enumerate(zip(live, sent, strict=True)):
            problems += contains(a, b, f"{path}[{i}]")
    elif live != sent:
        problems.append(f"{path}: server has {live!r}, sent {sent!r}")
    return problems


def live(cluster: LocalCluster, kind: str, namespace: str, name: str) -> dict[str, Any]:
    args = ["get", kind, name, "-o", "json"]
    if namespace:
        args += ["-n", namespace]
    out = subprocess.run([str(bin_dir() / "kubectl"), "--kubeconfig", str(cluster.admin_conf),
                          *args], capture_output=True, text=True, check=True, timeout=60)
    obj: dict[str, Any] = json.loads(out.stdout)
    return obj


def context_for(config: Config, root: Path = Path("/nonexistent")) -> InitContext:
    identity = resolve_identity(config)
    return InitContext(config=config, root=root, identity=identity,
                       start_time=datetime.datetime.now(datetime.UTC))


def context(cluster: LocalCluster) -> InitContext:
    return context_for(load_config(cluster.config), cluster.root)


def join_argv(cluster: LocalCluster, *, control_plane: bool = False) -> list[str]:
    """The command in /etc/kubeinit/join-command[-control-plane], as argv (the file is a shell
    script: comments, then `exec kubeadm join ...` with backslash-newline continuations)."""

    name = "join-command-control-plane" if control_plane else "join-command"
    text = (cluster.root / "etc/kubeinit" / name).read_text()
    body = " ".join(line for line in text.splitlines() if not line.startswith("#"))
    argv = shlex.split(body.replace("\\", " "))
    assert argv[:3] == ["exec", "kubeadm", "join"], argv
    return argv[1:]


def wait_for_jws(cluster: LocalCluster, token_id: str, timeout: float = 90) -> None:
    """Wait until the controller-manager's bootstrap signer signed cluster-info for the token.
    (A real join waits for it too; `kubeadm join --dry-run` instead swaps in a fake token when
    the signature is missing, app/discovery/token/token.go, and then waits forever.)"""

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if f"jws-kubeconfig-{token_id}" in live(cluster, "ConfigMap", "kube-public",
                                                 "cluster-info").get("data", {}):
            return
        time.sleep(1)
    raise AssertionError(f"cluster-info was not signed for token {token_id} in {timeout}s")


def kubeadm_join_dry_run(cluster: LocalCluster, workdir: Path, *, control_plane: bool = False,
                         node: str = "worker1") -> subprocess.CompletedProcess[str]:
    """Real `kubeadm join --dry-run` with the written command: discovery (cluster-info JWS and
    CA pin), then reading kubeadm-config/kubelet-config (and downloading the certificates for a
    control-plane join). Files go to `workdir` (KUBEADM_JOIN_DRYRUN_DIR), never the host."""

    argv = join_argv(cluster, control_plane=control_plane)
    wait_for_jws(cluster, argv[argv.index("--token") + 1].split(".")[0])
    argv[0] = str(bin_dir() / "kubeadm")
    argv += ["--dry-run", "--ignore-preflight-errors=all", "--node-name", node, "-v=1"]
    if control_plane:
        # the joining node's own address: kubeadm reads a loopback one as "pick from lo"
        argv += ["--apiserver-advertise-address", detect_advertise_address() or "192.0.2.2"]
    workdir.mkdir(parents=True, exist_ok=True)
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "KUBEADM_JOIN_DRYRUN_DIR": str(workdir)}
    return subprocess.run(argv, capture_output=True, text=True, timeout=180, env=env,
                          check=False)


def token_secrets(cluster: LocalCluster) -> list[dict[str, Any]]:
    items = json.loads(subprocess.run(
        [str(bin_dir() / "kubectl"), "--kubeconfig", str(cluster.admin_conf), "get", "secrets",
         "-n", "kube-system", "--field-selector", "type=bootstrap.kubernetes.io/token", "-o",
         "json"], capture_output=True, text=True, check=True, timeout=60).stdout)["items"]
    return list(items)


def b64(d: dict[str, Any], key: str) -> str:

    return base64.b64decode(d["data"][key]).decode()


def decrypted_certs(cluster: LocalCluster, key_hex: str) -> dict[str, bytes]:


    secret = live(cluster, "Secret", "kube-system", "kubeadm-certs")
    return {k: decrypt(base64.b64decode(v), key_hex) if v else b""
            for k, v in secret["data"].items()}


def check_first_boot(cluster: LocalCluster, workdir: Path) -> None:
    """What must hold after any (possibly resumed) first boot: completion stamp, one join token
    plus one kubeadm-certs proxy token and no other, kubeadm-certs decrypting with the saved key
    and owned by that proxy token, and real kubeadm join discovery passing."""

    assert (cluster.root / "var/lib/kubeinit/init.done").exists()
    info = cluster.join_file()
    tokens = token_secrets(cluster)
    proxies = [t for t in tokens if t["data"].get("description")
               and b64(t, "description") == PROXY_TOKEN_DESCRIPTION]
    joins = [t for t in tokens if t not in proxies]
    assert len(proxies) == 1, [t["metadata"]["name"] for t in proxies]
    assert [b64(t, "token-id") + "." + b64(t, "token-secret") for t in joins] == [info["token"]]
    secret = live(cluster, "Secret", "kube-system", "kubeadm-certs")
    (owner,) = secret["metadata"]["ownerReferences"]
    assert owner["name"] == proxies[0]["metadata"]["name"]
    assert owner["uid"] == proxies[0]["metadata"]["uid"]
    plain = decrypted_certs(cluster, info["certificateKey"])
    assert plain["ca.crt"] == (cluster.root / "etc/kubernetes/pki/ca.crt").read_bytes()
    res = kubeadm_join_dry_run(cluster, workdir)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "Cluster info signature and contents are valid" in res.stdout + res.stderr
