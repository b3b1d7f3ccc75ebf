"""hack/oci-images: control-plane images from the real binaries, checked against what consumes
them — the builder's archive matcher, and a real containerd 2 (the one hack/k8s-binaries built,
run privately by tests/tooling/containerd.py) that imports them with the built `ctr`, lists them
through CRI with `crictl`, runs their binaries with the built runc and starts a CRI pod sandbox
from the pinned pause image with no network at all.

Expected values come from upstream, not from the tool: the image names from kubeadm's own
`config images list` table (kubeinit.versions is checked against the real kubeadm by
tests/oracle), entrypoints and users from the upstream Dockerfiles (kubernetes
build/server-image, build/pause, coredns), versions from the binaries themselves and the host's
own iptables/nft.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import tarfile
import time
from pathlib import Path
from typing import Any

import pytest

from builder.archives import match_archives
from kubeinit.config import load_config
from kubeinit.preflight import control_plane_images
from kubeinit.versions import release_for
from tests.tooling.containerd import CGROUP_PARENT, Containerd

# every test here needs the binaries hack/k8s-binaries built (and most a real containerd)
pytestmark = pytest.mark.real

REPO = Path(__file__).resolve().parents[2]
TOOL = REPO / "hack" / "oci-images"
RELEASE = release_for()
COMPONENTS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kube-proxy",
              "etcd", "coredns", "pause")
NAMES = {c: RELEASE.image(c) for c in COMPONENTS}
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# What the upstream images say (Dockerfiles of kubernetes build/server-image and build/pause,
# cluster/images/etcd of v1.35, coredns): where the binary is, the image user, and which
# binaries carry a file capability (setcap cap_net_bind_service=+ep).
UPSTREAM: dict[str, dict[str, Any]] = {
    "kube-apiserver": {"files": {"usr/local/bin/kube-apiserver": "kube-apiserver"},
                       "user": "", "uid": 0, "caps": {"usr/local/bin/kube-apiserver"}},
    "kube-controller-manager": {"files": {"usr/local/bin/kube-controller-manager":
                                          "kube-controller-manager"}, "user": "", "uid": 0},
    "kube-scheduler": {"files": {"usr/local/bin/kube-scheduler": "kube-scheduler"},
                       "user": "", "uid": 0},
    "kube-proxy": {"files": {"usr/local/bin/kube-proxy": "kube-proxy"}, "user": "", "uid": 0},
    "etcd": {"files": {"usr/local/bin/etcd": "etcd", "usr/local/bin/etcdctl": "etcdctl"},
             "user": "", "uid": 0},
    "coredns": {"files": {"coredns": "coredns"}, "user": "nonroot:nonroot", "uid": 65532,
                "entrypoint": ["/coredns"], "caps": {"coredns"}},
    "pause": {"files": {"pause": None}, "user": "65535:65535", "uid": 65535,
              "entrypoint": ["/pause"]},
}
CAP_NET_BIND_SERVICE = 10  # linux/capability.h
VFS_CAP_REVISION_2, VFS_CAP_FLAGS_EFFECTIVE = 0x02000000, 0x000001


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def run_tool(*args: str, cache: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    if cache is not None:
        env["KUBEINIT_CACHE_DIR"] = str(cache)
    return subprocess.run([str(TOOL), *args], capture_output=True, text=True, env=env,
                          timeout=900, check=False)


def binary_versions(bins: Path) -> dict[str, str]:
    """hack/k8s-binaries' record of the component versions it built."""
    lines = (bins / "VERSIONS").read_text().split()
    return dict(line.split("=", 1) for line in lines)


@pytest.fixture(scope="module")
def images(k8s_bin: Path) -> Path:
    for name in ("kube-controller-manager", "kube-scheduler", "kube-proxy", "etcdctl",
                 "coredns", "containerd", "ctr", "containerd-shim-runc-v2", "runc", "crictl"):
        assert (k8s_bin / name).is_file(), f"{name} missing from {k8s_bin}: run hack/k8s-binaries"
    start = time.monotonic()
    proc = run_tool()
    assert proc.returncode == 0, proc.stderr
    print(f"\nhack/oci-images: {time.monotonic() - start:.1f} s\n{proc.stderr}")
    return Path(proc.stdout.strip().splitlines()[-1])


class Archive:
    """An OCI image-layout archive, read with nothing but tarfile and json."""

    def __init__(self, path: Path) -> None:
        with tarfile.open(path) as tar:
            self.members = tar.getmembers()
            self.data: dict[str, bytes] = {}
            for m in self.members:
                f = tar.extractfile(m) if m.isfile() else None
                if f is not None:
                    self.data[m.name] = f.read()

    def read(self, name: str) -> bytes:
        return self.data[name]

    def json(self, name: str) -> Any:
        return json.loads(self.read(name))

    def blob(self, digest: str) -> bytes:
        algo, hexd = digest.split(":")
        data = self.read(f"blobs/{algo}/{hexd}")
        assert hashlib.sha256(data).hexdigest() == hexd, f"blob {digest} does not match digest"
        return data

    def manifest(self) -> dict[str, Any]:
        index = self.json("index.json")
        assert len(index["manifests"]) == 1
        return dict(json.loads(self.blob(index["manifests"][0]["digest"])))

    def config(self) -> dict[str, Any]:
        return dict(json.loads(self.blob(self.manifest()["config"]["digest"])))

    def layer_bytes(self) -> list[bytes]:
        """The uncompressed layer tars (what diff_ids are digests of)."""
        out = []
        for d in self.manifest()["layers"]:
            data = self.blob(d["digest"])
            if d["mediaType"] == "application/vnd.oci.image.layer.v1.tar+gzip":
                data = gzip.decompress(data)
            else:
                assert d["mediaType"] == "application/vnd.oci.image.layer.v1.tar"
            out.append(data)
        return out

    def layers(self) -> list[tarfile.TarFile]:
        return [tarfile.open(fileobj=io.BytesIO(b)) for b in self.layer_bytes()]


# --- the archives ------------------------------------------------------------------------------

def test_archives_name_exactly_the_pinned_images(images: Path) -> None:
    index = json.loads((images / "images.json").read_text())
    assert {i["name"] for i in index["images"]} == set(NAMES.values())
    # the builder's own matcher (kubeinit-build --images DIR) finds every image the default
    # configuration's manifests use, each in the archive named after its component
    wanted = control_plane_images(load_config(None))
    assert set(wanted) == set(NAMES.values())
    found = match_archives(images, wanted)
    assert {name: p.name for name, p in found.items()} == {
        n: f"{c}.tar" for c, n in NAMES.items()}
    assert sorted(p.name for p in images.glob("*.tar")) == sorted(f"{c}.tar" for c in COMPONENTS)


@pytest.mark.parametrize("component", COMPONENTS)
def test_archive_is_a_deterministic_oci_layout(images: Path, component: str) -> None:
    a = Archive(images / f"{component}.tar")
    names = [m.name for m in a.members]
    assert names == sorted(names)
    assert all(m.mtime == 0 and m.uid == 0 and m.gid == 0 for m in a.members)
    assert a.json("oci-layout") == {"imageLayoutVersion": "1.0.0"}
    desc = a.json("index.json")["manifests"][0]
    assert desc["annotations"]["io.containerd.image.name"] == NAMES[component]
    assert desc["annotations"]["org.opencontainers.image.ref.name"] == \
        NAMES[component].rsplit(":", 1)[1]
    config = a.config()
    assert (config["architecture"], config["os"]) == ("amd64", "linux")
    layers = a.manifest()["layers"]
    assert {d["mediaType"] for d in layers} == {"application/vnd.oci.image.layer.v1.tar+gzip"}
    for d in layers:  # gzip header: no file name, no time (RFC 1952), so digests are stable
        head = a.blob(d["digest"])[:10]
        assert head[:3] == b"\x1f\x8b\x08" and head[3] == 0 and head[4:8] == b"\0\0\0\0"
    diff_ids = ["sha256:" + hashlib.sha256(b).hexdigest() for b in a.layer_bytes()]
    assert config["rootfs"] == {"type": "layers", "diff_ids": diff_ids}
    for layer in a.layers():
        members = layer.getmembers()
        paths = [m.name for m in members]
        assert paths == sorted(paths), "layer entries are not sorted"
        seen: set[str] = set()
        for m in members:
            assert m.mtime == 0, m.name
            assert (m.uid, m.gid) == ((65532, 65532) if m.name == "home/nonroot" else (0, 0))
            parent = os.path.dirname(m.name)
            assert not parent or parent in seen, f"{m.name} comes before its directory"
            seen.add(m.name)


@pytest.mark.parametrize("component", COMPONENTS)
def test_image_holds_the_real_binaries_where_upstream_puts_them(
        images: Path, k8s_bin: Path, component: str) -> None:
    up = UPSTREAM[component]
    a = Archive(images / f"{component}.tar")
    conf = a.config()["config"]
    assert conf.get("User", "") == up["user"]
    assert PATH_ENV in conf["Env"]
    if "entrypoint" in up:
        assert conf["Entrypoint"] == up["entrypoint"]
    files: dict[str, tarfile.TarInfo] = {}
    contents: dict[str, str] = {}
    for layer in a.layers():
        for m in layer.getmembers():
            files[m.name] = m
            if m.name in up["files"]:
                f = layer.extractfile(m)
                assert f is not None
                contents[m.name] = hashlib.sha256(f.read()).hexdigest()
    for path, source in up["files"].items():
        assert files[path].isfile() and files[path].mode == 0o755, path
        if source is not None:  # the very bytes hack/k8s-binaries built
            assert contents[path] == sha256_file(k8s_bin / source), path
    # file capabilities exactly where upstream sets them, as a kernel vfs_cap_data revision 2
    for name, m in files.items():
        raw = m.pax_headers.get("SCHILY.xattr.security.capability")
        if name not in up.get("caps", set()):
            assert raw is None, f"{name} has a file capability upstream does not set"
            continue
        assert raw is not None, f"{name} lacks cap_net_bind_service"
        data = raw.encode("utf-8", "surrogateescape")
        magic, perm0, inh0, perm1, inh1 = (int.from_bytes(data[i:i + 4], "little")
                                          for i in range(0, 20, 4))
        assert len(data) == 20
        assert magic == VFS_CAP_REVISION_2 | VFS_CAP_FLAGS_EFFECTIVE
        assert (perm0, inh0, perm1, inh1) == (1 << CAP_NET_BIND_SERVICE, 0, 0, 0)
    if component == "pause":  # FROM scratch: the one static binary, nothing else
        assert [n for n, m in files.items() if not m.isdir()] == ["pause"]


def test_kube_proxy_image_has_every_library_its_tools_load(images: Path) -> None:
    """Each ELF file's DT_NEEDED libraries resolve inside the image (read from the ELF dynamic
    section with readelf, not with the tool's ldd)."""
    a = Archive(images / "kube-proxy.tar")
    files: dict[str, tarfile.TarInfo] = {}
    layers = a.layers()
    for layer in layers:
        files.update({m.name: m for m in layer.getmembers()})

    def resolve(path: str, depth: int = 0) -> str:
        assert depth < 20, path
        parts = path.strip("/").split("/")
        for i in range(1, len(parts) + 1):
            head = "/".join(parts[:i])
            m = files.get(head)
            assert m is not None, f"/{head} missing from the kube-proxy image"
            if m.issym():
                target = m.linkname if m.linkname.startswith("/") else \
                    os.path.join(os.path.dirname("/" + head), m.linkname)
                return resolve(os.path.normpath("/".join([target, *parts[i:]])), depth + 1)
        return "/" + "/".join(parts)

    elf = [n for n, m in files.items() if m.isfile() and (
        n.startswith("usr/sbin/") or n.endswith(".so") or ".so." in n)]
    assert {"usr/sbin/xtables-nft-multi", "usr/sbin/nft", "usr/sbin/conntrack"} <= set(elf)
    assert any("xtables/libxt_comment.so" in n for n in elf)
    for name in elf:
        host = Path("/" + name)
        out = subprocess.run(["readelf", "-d", "-l", str(host)], capture_output=True,
                             text=True, check=True).stdout
        interp = re.findall(r"\[Requesting program interpreter: (\S+)\]", out)
        needed = re.findall(r"\(NEEDED\)\s+Shared library: \[(\S+)\]", out)
        for path in interp:
            resolve(path)
        for lib in needed:
            resolve(f"/lib/x86_64-linux-gnu/{lib}")


def test_missing_binary_is_one_clear_error(k8s_bin: Path, tmp_path: Path) -> None:
    bins = tmp_path / "bins"
    bins.mkdir()
    for p in k8s_bin.iterdir():
        if p.name != "kube-scheduler":
            (bins / p.name).symlink_to(p)
    proc = run_tool("--binaries", str(bins), cache=tmp_path / "cache")
    assert proc.returncode == 1
    assert f"{bins}/kube-scheduler is missing" in proc.stderr
    assert f"hint: run hack/k8s-binaries --version {RELEASE.version}" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "cache" / "images" / RELEASE.version).exists()


@pytest.mark.slow
def test_same_inputs_same_digests_and_the_cache_follows_content(
        images: Path, k8s_bin: Path, tmp_path: Path) -> None:
    # the same binaries under another path, at another time: byte-identical archives
    bins = tmp_path / "bins"
    bins.mkdir()
    for p in k8s_bin.iterdir():
        if p.name == "etcdctl":
            shutil.copy2(p, bins / p.name)
        else:
            (bins / p.name).symlink_to(p)
    cache = tmp_path / "cache"
    first = run_tool("--binaries", str(bins), cache=cache)
    assert first.returncode == 0, first.stderr
    out = Path(first.stdout.strip().splitlines()[-1])
    assert out == cache / "images" / RELEASE.version
    digests = {c: sha256_file(out / f"{c}.tar") for c in COMPONENTS}
    assert digests == {c: sha256_file(images / f"{c}.tar") for c in COMPONENTS}
    inode = (out / "etcd.tar").stat().st_ino

    # unchanged inputs: returns at once, nothing rewritten
    start = time.monotonic()
    again = run_tool("--binaries", str(bins), cache=cache)
    took = time.monotonic() - start
    assert again.returncode == 0 and again.stdout == first.stdout
    assert "cached" in again.stderr and took < 2.0, (took, again.stderr)
    assert (out / "etcd.tar").stat().st_ino == inode

    # a new mtime but the same bytes: recognised by content, nothing rebuilt
    os.utime(bins / "etcdctl")
    touched = run_tool("--binaries", str(bins), cache=cache)
    assert touched.returncode == 0 and "inputs unchanged (content)" in touched.stderr
    assert (out / "etcd.tar").stat().st_ino == inode

    # other bytes: only the image holding that binary is rebuilt; the others are kept as they
    # are (the same files)
    inodes = {c: (out / f"{c}.tar").stat().st_ino for c in COMPONENTS}
    with (bins / "etcdctl").open("ab") as f:
        f.write(b"\0")
    changed = run_tool("--binaries", str(bins), cache=cache)
    assert changed.returncode == 0, changed.stderr
    after = {c: sha256_file(out / f"{c}.tar") for c in COMPONENTS}
    assert [c for c in COMPONENTS if after[c] != digests[c]] == ["etcd"]
    assert [c for c in COMPONENTS if (out / f"{c}.tar").stat().st_ino != inodes[c]] == ["etcd"]
    index = json.loads((out / "images.json").read_text())
    assert {i["component"]: i["size"] for i in index["images"]} == {
        c: (out / f"{c}.tar").stat().st_size for c in COMPONENTS}


# --- a real containerd -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def runtime(images: Path, k8s_bin: Path, tmp_path_factory: pytest.TempPathFactory):
    # a short path: containerd's sockets must fit in sun_path (108 bytes)
    scratch = Path(tmp_path_factory.mktemp("ctd"))
    with Containerd.start(k8s_bin, scratch, sandbox_image=NAMES["pause"]) as c:
        timings = {}
        for comp in COMPONENTS:
            start = time.monotonic()
            c.ctr("images", "import", str(images / f"{comp}.tar"))
            timings[comp] = time.monotonic() - start
        total = sum(timings.values())
        print("\nctr images import: " + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items())
              + f"; total {total:.1f} s")
        yield c


def test_ctr_imports_exactly_the_pinned_names(runtime: Containerd, images: Path) -> None:
    listed = runtime.ctr("images", "ls", "-q").stdout.split()
    # CRI adds a reference by image ID (the config digest) next to each name
    named = {n for n in listed if not n.startswith("sha256:")}
    assert named == set(NAMES.values())
    config_ids = {"sha256:" + Archive(images / f"{c}.tar").manifest()["config"]["digest"][7:]
                  for c in COMPONENTS}
    assert {n for n in listed if n.startswith("sha256:")} == config_ids
    assert runtime.ctr("images", "ls", "-q", ns="default").stdout.split() == []


def test_crictl_lists_the_pinned_images(runtime: Containerd) -> None:
    out = json.loads(runtime.crictl("images", "-o", "json").stdout)
    tags = {t for img in out["images"] for t in img["repoTags"]}
    assert tags == set(NAMES.values())
    pinned = {t for img in out["images"] if img.get("pinned") for t in img["repoTags"]}
    assert pinned == {NAMES["pause"]}  # containerd pins its sandbox image


def _expected_runs(bins: Path) -> list[tuple[str, list[str], str]]:
    v = binary_versions(bins)
    host = {t: subprocess.run([t, "--version"], capture_output=True, text=True,
                              check=True).stdout.strip()
            for t in ("iptables", "nft", "conntrack")}
    legacy = subprocess.run(["iptables-legacy", "--version"], capture_output=True, text=True,
                            check=True).stdout.strip()
    k8s = f"Kubernetes {RELEASE.version}"
    return [
        ("kube-apiserver", ["kube-apiserver", "--version"], k8s),
        ("kube-controller-manager", ["kube-controller-manager", "--version"], k8s),
        ("kube-scheduler", ["kube-scheduler", "--version"], k8s),
        ("kube-proxy", ["kube-proxy", "--version"], k8s),
        ("etcd", ["etcd", "--version"], f"etcd Version: {v['etcd'].lstrip('v')}"),
        ("etcd", ["etcdctl", "version"], f"etcdctl version: {v['etcd'].lstrip('v')}"),
        ("coredns", ["/coredns", "-version"], f"CoreDNS-{v['coredns'].lstrip('v')}"),
        ("pause", ["/pause", "-v"], f"pause.c v{RELEASE.major_minor.pause_tag}-"),
        ("kube-proxy", ["iptables", "--version"], host["iptables"]),
        ("kube-proxy", ["iptables-legacy", "--version"], legacy),
        ("kube-proxy", ["nft", "--version"], host["nft"]),
        ("kube-proxy", ["conntrack", "--version"], host["conntrack"]),
    ]


def test_binaries_run_from_their_images(runtime: Containerd, k8s_bin: Path) -> None:
    """`ctr run` with the built runc: each command found through the image's PATH (kubeadm's
    manifests name the binary, not its path)."""
    failures = []
    for i, (comp, argv, want) in enumerate(_expected_runs(k8s_bin)):
        proc = runtime.run(NAMES[comp], *argv, cid=f"run-{i}")
        if proc.returncode != 0 or want not in proc.stdout + proc.stderr:
            failures.append(f"{comp} {argv}: rc {proc.returncode}, wanted {want!r}:\n"
                            f"{proc.stdout}{proc.stderr}")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("component", COMPONENTS)
def test_container_user_is_the_upstream_one(runtime: Containerd, component: str) -> None:
    cid = f"user-{component}"
    runtime.ctr("containers", "create", NAMES[component], cid)
    try:
        info = json.loads(runtime.ctr("containers", "info", cid).stdout)
    finally:
        runtime.ctr("containers", "rm", cid, check=False)
    user = info["Spec"]["process"]["user"]
    uid = UPSTREAM[component]["uid"]
    assert (user["uid"], user["gid"]) == (uid, uid)


def test_file_capability_survives_import(runtime: Containerd) -> None:
    """Read back with the host's getcap (libcap) from the image's rootfs as containerd mounts
    it. containerd 2.3's mount manager makes the overlay mount in containerd's own mount
    namespace, so getcap runs there (nsenter)."""
    mnt = runtime.scratch / "mnt"
    mnt.mkdir(exist_ok=True)
    runtime.ctr("images", "mount", NAMES["kube-apiserver"], str(mnt))
    try:
        ns = ["nsenter", "--target", str(runtime.proc.pid), "--mount"]
        mountinfo = subprocess.run([*ns, "cat", "/proc/self/mountinfo"], capture_output=True,
                                   text=True, check=True).stdout
        overlays = [f[4] for f in (ln.split() for ln in mountinfo.splitlines())
                    if f[f.index("-") + 1] == "overlay"
                    and f[4].startswith(f"{runtime.scratch}/")]
        assert len(overlays) == 1, overlays
        binary = f"{overlays[0]}/usr/local/bin/kube-apiserver"
        caps = subprocess.run([*ns, "getcap", binary], capture_output=True, text=True,
                              check=True).stdout
    finally:
        runtime.ctr("images", "unmount", "--rm", str(mnt), check=False)
    assert caps.split() == [binary, "cap_net_bind_service=ep"]


def test_kube_proxy_image_programs_iptables_and_nftables(runtime: Containerd) -> None:
    """The rule shapes kube-proxy writes (comment, statistic, DNAT: xtables extensions loaded
    with dlopen), applied by the image's iptables-restore in containerd's private network
    namespace (--net-host there is not the host's), read back with iptables-save and nft."""
    rules = runtime.scratch / "rules"
    rules.write_text("""*nat
:KUBE-SVC-TEST - [0:0]
:KUBE-SEP-TEST - [0:0]
-A KUBE-SVC-TEST -m comment --comment "default/test -> 10.0.0.1:80" -m statistic --mode random --probability 0.50000000000 -j KUBE-SEP-TEST
-A KUBE-SEP-TEST -m comment --comment default/test -s 10.0.0.1/32 -j MARK --set-xmark 0x4000/0x4000
-A KUBE-SEP-TEST -m comment --comment default/test -m tcp -p tcp -j DNAT --to-destination 10.0.0.1:80
COMMIT
*filter
:KUBE-FORWARD - [0:0]
-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP
-A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark 0x4000/0x4000 -j ACCEPT
COMMIT
""")  # noqa: E501 (iptables-restore input, as kube-proxy writes it)
    flags = ("--privileged", "--net-host",
             "--mount", f"type=bind,src={rules},dst=/rules,options=rbind:ro")
    kp = NAMES["kube-proxy"]
    restore = runtime.run(kp, "iptables-restore", "/rules", cid="ipt-restore", flags=flags)
    assert restore.returncode == 0, restore.stderr
    saved = runtime.run(kp, "iptables-save", cid="ipt-save", flags=flags)
    assert saved.returncode == 0, saved.stderr
    for rule in ("--probability 0.50000000000 -j KUBE-SEP-TEST",
                 "-j MARK --set-xmark 0x4000/0x4000", "-j DNAT --to-destination 10.0.0.1:80",
                 "-m conntrack --ctstate INVALID -j DROP",
                 "-m mark --mark 0x4000/0x4000 -j ACCEPT"):
        assert rule in saved.stdout, saved.stdout
    nft = runtime.run(kp, "nft", "list", "table", "ip", "nat", cid="nft-list", flags=flags)
    assert nft.returncode == 0, nft.stderr
    assert "chain KUBE-SVC-TEST" in nft.stdout


def test_cri_pod_runs_offline_from_the_preloaded_images(
        runtime: Containerd, k8s_bin: Path, images: Path) -> None:
    """A host-network pod sandbox (as every static Pod is) from the pinned pause image, and the
    control-plane containers in it started by name as kubeadm's manifests do; nothing pulled.
    Then the control: without the pause image the same request does try to pull, and the log
    shows it, so the 'no pull' check can fail."""
    s = runtime.scratch
    pod = {"metadata": {"name": "oci-test", "namespace": "kube-system", "uid": "oci-test-1",
                        "attempt": 0},
           "log_directory": str(s / "pods"),
           "linux": {"cgroup_parent": f"/{CGROUP_PARENT}",
                     "security_context": {"namespace_options": {"network": 2}}}}
    (s / "pods").mkdir(exist_ok=True)
    (s / "pod.json").write_text(json.dumps(pod))
    pod_id = runtime.crictl("runp", str(s / "pod.json")).stdout.strip()
    status = json.loads(runtime.crictl("inspectp", pod_id).stdout)["status"]
    assert status["state"] == "SANDBOX_READY"

    v = binary_versions(k8s_bin)
    k8s = f"Kubernetes {RELEASE.version}"
    for comp, want in (("kube-apiserver", k8s), ("kube-controller-manager", k8s),
                       ("kube-scheduler", k8s), ("etcd", f"etcd Version: {v['etcd'][1:]}")):
        spec = {"metadata": {"name": comp}, "image": {"image": NAMES[comp]},
                "command": [comp, "--version"], "log_path": f"{comp}.log"}
        (s / f"{comp}.json").write_text(json.dumps(spec))
        cid = runtime.crictl("create", pod_id, str(s / f"{comp}.json"),
                             str(s / "pod.json")).stdout.strip()
        runtime.crictl("start", cid)
        deadline = time.monotonic() + 60
        while True:
            st = json.loads(runtime.crictl("inspect", cid).stdout)["status"]
            if st["state"] == "CONTAINER_EXITED" or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert (st["state"], st["exitCode"]) == ("CONTAINER_EXITED", 0), st
        logs = runtime.crictl("logs", cid)
        assert want in logs.stdout + logs.stderr
    runtime.crictl("stopp", pod_id)
    runtime.crictl("rmp", pod_id)
    log = runtime.log()
    assert "PullImage" not in log, [ln for ln in log.splitlines() if "PullImage" in ln]

    # the control: take the pause image away and ask again
    runtime.ctr("images", "rm", NAMES["pause"])
    try:
        denied = runtime.crictl("runp", str(s / "pod.json"), check=False)
        assert denied.returncode != 0
        pulls = [ln for ln in runtime.log().splitlines() if "PullImage" in ln]
        assert any(NAMES["pause"] in ln for ln in pulls), pulls
    finally:
        runtime.ctr("images", "import", str(images / "pause.tar"))


def test_uncompressed_layers_import_and_run(runtime: Containerd, k8s_bin: Path,
                                            images: Path) -> None:
    """`--uncompressed`: the same images with plain tar layers, same image IDs (diff_ids and
    config are the same; only the layer blobs differ)."""
    proc = run_tool("--uncompressed")
    assert proc.returncode == 0, proc.stderr
    plain = Path(proc.stdout.strip().splitlines()[-1])
    assert plain.name == f"{RELEASE.version}-tar"
    a = Archive(plain / "etcd.tar")
    assert {d["mediaType"] for d in a.manifest()["layers"]} == {
        "application/vnd.oci.image.layer.v1.tar"}
    start = time.monotonic()
    runtime.ctr("images", "import", str(plain / "etcd.tar"), ns="plain")
    print(f"\nctr images import (plain tar) etcd: {time.monotonic() - start:.1f} s")
    gz = Archive(images / "etcd.tar")
    assert a.manifest()["config"]["digest"] == gz.manifest()["config"]["digest"]
    assert a.layer_bytes() == gz.layer_bytes()
    assert runtime.ctr("images", "ls", "-q", ns="plain").stdout.split() == [NAMES["etcd"]]
    out = runtime.ctr("run", "--rm", "--fifo-dir", str(runtime.scratch / "fifo"), "--cgroup", "",
                      NAMES["etcd"], "plain-etcd", "etcd", "--version", ns="plain")
    assert f"etcd Version: {binary_versions(k8s_bin)['etcd'][1:]}" in out.stdout
