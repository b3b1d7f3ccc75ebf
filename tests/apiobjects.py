"""Helpers for comparing API objects: kubeinit's, the live cluster's, and real kubeadm's.

Objects are compared as the real API server stores them, never after dropping values by shape.
`as_stored` sends each object to a real kube-apiserver as a create with `dryRun=All` and strict
field validation (nothing is persisted; an unknown field is an error) and returns what the
server would store: decoded into its Go type, defaulted, encoded again. That is the one honest
way to make kubeadm's dry-run print (Go zero values such as `creationTimestamp: null`,
`status: {}`, `resources: {}`) and kubeinit's dicts comparable: a field that means the same
either way comes back the same from the server, while a missing `allowPrivilegeEscalation:
false`, an empty string in a ConfigMap or a dropped volume source that defaulting does not
restore still differs. The only things removed from what the server returns are the values it
assigns to every new object (SERVER_FIELDS); every other difference must be excused by an
entry of tests/oracle/allowlist.yaml (artifacts `api:*`, `live:*`) that says why.
"""

from __future__ import annotations

import base64
import copy
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
from tests.oracle.compare import ABSENT, Allowlist, Difference, judge

# Every test config; each is judged by the real kubeadm of its own minor (conftest.kubeadm_for).
API_CONFIGS = list(ALL_CONFIGS)

# What the server assigns to every object it creates, per object and per moment: identity and
# bookkeeping, not content. Removed from both sides of every comparison, nothing else is.
SERVER_FIELDS = ("uid", "resourceVersion", "creationTimestamp", "managedFields")
# Dry-run creates go under a scratch name: the real objects may exist already (a dry-run
# create of an existing name fails with AlreadyExists). No defaulting depends on the name.
SCRATCH_SUFFIX = "-kubeinit-cmp"


def _kubectl_json(admin_conf: Path, *args: str, stdin: str | None = None,
                  kubectl: Path | None = None,
                  wrap: list[str] | None = None) -> list[dict[str, Any]]:
    """The JSON documents kubectl printed (one per object for `create -f` of a List)."""
    argv = [str(kubectl or bin_dir() / "kubectl"), "--kubeconfig", str(admin_conf), *args]
    res = subprocess.run([*(wrap or []), *argv], input=stdin, capture_output=True, text=True,
                         timeout=120, check=False)
    assert res.returncode == 0, f"kubectl {' '.join(args)}: {res.stderr.strip()[-2000:]}"
    out, pos, dec = [], 0, json.JSONDecoder()
    text = res.stdout
    while pos < len(text):
        if text[pos].isspace():
            pos += 1
            continue
        doc, pos = dec.raw_decode(text, pos)
        out += doc["items"] if doc.get("kind") == "List" else [doc]
    return out


def strip_server_fields(obj: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(obj)
    for k in SERVER_FIELDS:
        out.get("metadata", {}).pop(k, None)
    return out


def as_stored(admin_conf: Path, objs: list[dict[str, Any]], *, kubectl: Path | None = None,
              wrap: list[str] | None = None) -> list[dict[str, Any]]:
    """Each object as the real API server behind `admin_conf` would store it on create (see
    the module docstring); in the same order, under its own name again. `wrap` prefixes the
    kubectl command (e.g. to enter a VM's network namespace)."""
    if not objs:
        return []
    items = []
    for obj in objs:
        item = copy.deepcopy(obj)
        meta = item["metadata"]
        meta["name"] += SCRATCH_SUFFIX
        # kubeadm's dry-run tracker prints resourceVersion "0"; a real create must not carry
        # one (the server rejects it), and kubeadm's real client sends none
        meta.pop("resourceVersion", None)
        items.append(item)
    doc = json.dumps({"apiVersion": "v1", "kind": "List", "items": items})
    stored = _kubectl_json(admin_conf, "create", "--dry-run=server", "--validate=strict",
                           "-o", "json", "-f", "-", stdin=doc, kubectl=kubectl, wrap=wrap)
    assert len(stored) == len(objs), (len(stored), len(objs))
    out = []
    for obj in stored:
        o = strip_server_fields(obj)
        assert o["metadata"]["name"].endswith(SCRATCH_SUFFIX), o["metadata"]
        o["metadata"]["name"] = o["metadata"]["name"].removesuffix(SCRATCH_SUFFIX)
        out.append(o)
    return out


def key_of(obj: dict[str, Any]) -> str:
    meta = obj["metadata"]
    return f"{obj['kind']}/{meta.get('namespace', '')}/{meta['name']}"


def diff_objects(config: str, artifact: str, kubeadm: Any, kubeinit: Any,
                 path: str = "") -> list[Difference]:
    """Every leaf where the two differ, as oracle Differences (field = the dotted path, list
    items as [i]). Nothing is skipped: absent, null, false, "" and {} are all values."""
    if isinstance(kubeadm, dict) and isinstance(kubeinit, dict):
        out = []
        for k in sorted(set(kubeadm) | set(kubeinit)):
            sub = f"{path}.{k}" if path else str(k)
            out += diff_objects(config, artifact, kubeadm.get(k, ABSENT),
                                kubeinit.get(k, ABSENT), sub)
        return out
    if isinstance(kubeadm, list) and isinstance(kubeinit, list):
        out = []
        for i in range(max(len(kubeadm), len(kubeinit))):
            out += diff_objects(config, artifact,
                                kubeadm[i] if i < len(kubeadm) else ABSENT,
                                kubeinit[i] if i < len(kubeinit) else ABSENT, f"{path}[{i}]")
        return out
    if kubeadm is ABSENT or kubeinit is ABSENT or (
            json.dumps(kubeadm, sort_keys=True) != json.dumps(kubeinit, sort_keys=True)):
        return [Difference(config, artifact, path, kubeadm, kubeinit)]
    return []


_ALLOWLIST: list[Allowlist] = []


def allowlist() -> Allowlist:
    if not _ALLOWLIST:
        _ALLOWLIST.append(Allowlist.load())
    return _ALLOWLIST[0]


def judge_pairs(config: str, pairs: list[tuple[dict[str, Any], dict[str, Any]]], *,
                prefix: str = "api") -> None:
    """Fail with every difference between (kubeadm's, kubeinit's) objects that no allow-list
    entry for `<prefix>:<kind>/<namespace>/<name>` (kubeadm's key) excuses."""
    diffs = []
    for want, got in pairs:
        diffs += diff_objects(config, f"{prefix}:{key_of(want)}", want, got)
    judge(allowlist(), diffs)


def compare_as_stored(admin_conf: Path, config: str,
                      pairs: list[tuple[dict[str, Any], dict[str, Any]]], *,
                      kubectl: Path | None = None, wrap: list[str] | None = None) -> None:
    """(kubeadm's, kubeinit's) objects, both as the server would store them, judged."""
    want = as_stored(admin_conf, [a for a, _ in pairs], kubectl=kubectl, wrap=wrap)
    got = as_stored(admin_conf, [b for _, b in pairs], kubectl=kubectl, wrap=wrap)
    judge_pairs(config, list(zip(want, got, strict=True)))


def kubeadm_certs_for_server(obj: dict[str, Any]) -> dict[str, Any]:
    """kubeadm's dry-run kubeadm-certs with what a real server would refuse filled in: the
    dry-run prints each encrypted value as null and the owner's uid as "" (the allow-list entry
    api-kubeadm-certs-ciphertext excuses exactly these values)."""
    out = copy.deepcopy(obj)
    out["data"] = {k: base64.b64encode(b"dry-run").decode() for k in out["data"]}
    for ref in out["metadata"].get("ownerReferences", []):
        ref["uid"] = "00000000-0000-0000-0000-000000000000"
    return out


def compare_live(cluster: LocalCluster, config: str, kubeadm_objs: list[dict[str, Any]], *,
                 names: list[str] | None = None) -> None:
    """The live objects kubeinit created equal kubeadm's as the server would store them, but
    for what the cluster's controllers changed since (allow-list entries `live:*`). The live
    objects are read by kubeadm's names, or by `names` (for randomly named token Secrets)."""
    want = as_stored(cluster.admin_conf, kubeadm_objs)
    got = [strip_server_fields(live(cluster, w["kind"], w["metadata"].get("namespace", ""),
                                    names[i] if names else w["metadata"]["name"]))
           for i, w in enumerate(want)]
    judge_pairs(config, list(zip(want, got, strict=True)), prefix="live")


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
