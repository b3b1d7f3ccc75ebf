"""builder/containerd_store.py: images unpacked into a containerd store at build time, with the
real containerd and ctr of hack/k8s-binaries, checked by starting another real containerd (with
its CRI plugin, as on the node: tests/tooling/containerd.py) on what was written.

The guard's inputs are real files: the image's containerd ELF is the real containerd 2.3.7
binary (hard-linked into the tree); the "other minor" is a copy of it whose Go build information
says v2.2.7 (three bytes changed: a stand-in for a containerd 2.2 binary, which is not built
here), read the way the builder reads any image binary, without running it.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import stat
import subprocess
import sys
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from builder import containerd_store as cs
from builder.target import TreeTarget
from kubeinit.preload import MODE_ARCHIVES, MODE_UNPACKED
from tests.builder.conftest import CLUSTER_YAML, REPO, build, make_oci_archive, pinned_images
from tests.tooling.containerd import Containerd

PAUSE = "registry.k8s.io/pause:3.10.2"
LAYERED = "registry.k8s.io/layered:v1"
BASE_CONFIG = (
    "version = 4\n"
    "[plugins.'io.containerd.cri.v1.images'.pinned_images]\n"
    f"  sandbox = '{PAUSE}'\n"
)
# VFS_CAP_REVISION_2, effective; permitted = CAP_NET_BIND_SERVICE (10): `setcap
# cap_net_bind_service=ep`, as kube-apiserver and coredns carry it in their images
NET_BIND_CAP = (0x02000001).to_bytes(4, "little") + (1 << 10).to_bytes(4, "little") + bytes(12)


@pytest.fixture
def bins(k8s_bin: Path) -> Path:
    for name in ("containerd", "ctr", "crictl", "runc"):
        assert (k8s_bin / name).is_file(), f"{name} missing from {k8s_bin}"
    return k8s_bin


def node_tree(root: Path, bins: Path, *, config: str | None = BASE_CONFIG,
              containerd: Path | None = None, with_containerd: bool = True) -> TreeTarget:
    """A tree holding what the guard reads: /usr/local/bin/containerd (hard link of a real
    binary) and /etc/containerd/config.toml."""
    (root / "usr/local/bin").mkdir(parents=True)
    if with_containerd:
        os.link(containerd or bins / "containerd", root / "usr/local/bin/containerd")
    if config is not None:
        (root / "etc/containerd").mkdir(parents=True)
        (root / "etc/containerd/config.toml").write_text(config)
    return TreeTarget(root)


def other_minor(bins: Path, dest: Path) -> Path:
    """The real containerd with v2.3.7 -> v2.2.7 in its embedded build information."""
    data = (bins / "containerd").read_bytes()
    marker = b"github.com/containerd/containerd/v2\tv2.3.7"
    assert data.count(marker) >= 1
    dest.write_bytes(data.replace(marker, marker.replace(b"v2.3.7", b"v2.2.7")))
    return dest


# --- the guard -------------------------------------------------------------------------------

GUARD_CASES = [
    ("same-minor-default-config", BASE_CONFIG, None, MODE_UNPACKED, ""),
    ("no-config-file-means-defaults", None, None, MODE_UNPACKED, ""),
    ("native-snapshotter", BASE_CONFIG + "[plugins.'io.containerd.cri.v1.images']\n"
     "  snapshotter = 'native'\n", None, MODE_ARCHIVES, "uses the native snapshotter"),
    ("v2-config-other-snapshotter", "version = 2\n[plugins.'io.containerd.grpc.v1.cri'.containerd]"
     "\n  snapshotter = 'zfs'\n", None, MODE_ARCHIVES, "uses the zfs snapshotter"),
    ("other-root", "version = 4\nroot = '/data/containerd'\n", None, MODE_ARCHIVES,
     "root is /data/containerd"),
    ("imports", "version = 4\nimports = ['/etc/containerd/conf.d/*.toml']\n", None,
     MODE_ARCHIVES, "imports other files"),
    ("not-toml", "version = = 4\n", None, MODE_ARCHIVES, "is not readable TOML"),
    ("other-minor", BASE_CONFIG, "other-minor", MODE_ARCHIVES,
     "the image's containerd is v2.2.7, the build host's is v2.3.7"),
    ("no-containerd", BASE_CONFIG, "none", MODE_ARCHIVES, "has no containerd"),
    ("not-a-go-binary", BASE_CONFIG, "shell", MODE_ARCHIVES, "cannot tell the version"),
]


@pytest.mark.real
@pytest.mark.parametrize(("config", "binary", "mode", "reason"),
                         [c[1:] for c in GUARD_CASES], ids=[c[0] for c in GUARD_CASES])
def test_guard_decides_from_the_images_own_containerd_and_config(
        bins: Path, tmp_path: Path, config: str | None, binary: str | None, mode: str,
        reason: str) -> None:
    exe: Path | None = None
    if binary == "other-minor":
        exe = other_minor(bins, tmp_path / "containerd-2.2")
    elif binary == "shell":
        exe = tmp_path / "containerd.sh"
        exe.write_text("#!/bin/sh\necho containerd v2.3.7\n")
    t = node_tree(tmp_path / "root", bins, config=config, containerd=exe,
                  with_containerd=binary != "none")
    d = cs.decide(t, "x86_64", cs.find_tools(bins), host_arch="x86_64")
    assert (d.mode, d.reason) == (mode, d.reason) and reason in d.reason
    if mode == MODE_UNPACKED:
        assert d.reason == "" and d.snapshotter == "overlayfs"


@pytest.mark.real
def test_guard_refuses_an_existing_store_another_arch_and_no_tools(bins: Path,
                                                                   tmp_path: Path) -> None:
    t = node_tree(tmp_path / "root", bins)
    tools = cs.find_tools(bins)
    assert tools is not None and tools.version == "v2.3.7"
    assert cs.decide(t, "x86_64", None, host_arch="x86_64").reason.startswith(
        "no containerd and ctr on the build host")
    assert "the image is aarch64, the build host x86_64" in cs.decide(
        t, "aarch64", tools, host_arch="x86_64").reason
    db = tmp_path / "root" / "var/lib/containerd" / cs.META_DB
    db.parent.mkdir(parents=True)
    db.write_bytes(b"")
    assert "already has a containerd store" in cs.decide(t, "x86_64", tools,
                                                          host_arch="x86_64").reason
    # unless it is kubeinit-build's own, from an earlier build of the same tree
    (db.parent.parent / cs.MARKER).write_text("{}")
    assert cs.decide(t, "x86_64", tools, host_arch="x86_64").mode == MODE_UNPACKED


# --- the store, made and read back by real containerds ---------------------------------------

def _layer(entries: list[tuple[str, bytes | None, dict[str, str]]]) -> bytes:
    """A layer tar: (name, file data or None for a directory, pax headers)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data, pax in entries:
            info = tarfile.TarInfo(name)
            info.mtime, info.pax_headers = 0, pax
            if data is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            else:
                info.size, info.mode = len(data), 0o755
                tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def layered_archive(path: Path, ref: str) -> None:
    """Two layers: the second deletes a file (whiteout `.wh.gone`) and makes /opq opaque
    (`.wh..wh..opq`); a file carries security.capability. Unpacked with overlayfs, containerd
    turns them into a 0/0 character device and `trusted.overlay.opaque=y`."""
    cap = NET_BIND_CAP.decode("latin-1")
    first = _layer([("bin", None, {}), ("bin/server", b"#!/bin/sh\n",
                                      {"SCHILY.xattr.security.capability": cap}),
                    ("gone", b"x", {}), ("opq", None, {}), ("opq/old", b"old", {})])
    second = _layer([(".wh.gone", b"", {}), ("opq", None, {}), ("opq/.wh..wh..opq", b"", {}),
                     ("opq/new", b"new", {})])
    blobs: dict[str, bytes] = {}

    def blob(data: bytes) -> dict[str, object]:
        d = hashlib.sha256(data).hexdigest()
        blobs[f"blobs/sha256/{d}"] = data
        return {"digest": f"sha256:{d}", "size": len(data)}

    layers = [blob(first), blob(second)]
    config = blob(json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {
        "type": "layers", "diff_ids": [x["digest"] for x in layers]}}).encode())
    manifest = blob(json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **config},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", **x}
                   for x in layers]}).encode())
    index = {"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json", **manifest,
        "annotations": {"io.containerd.image.name": ref}}]}
    files = {"oci-layout": b'{"imageLayoutVersion":"1.0.0"}', **blobs,
             "index.json": json.dumps(index).encode()}
    with tarfile.open(path, "w") as tar:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


@pytest.fixture
def made(bins: Path, tmp_path: Path) -> cs.Store:
    tools = cs.find_tools(bins)
    assert tools is not None
    make_oci_archive(tmp_path / "pause.tar", PAUSE)
    layered_archive(tmp_path / "layered.tar", LAYERED)
    return cs.make_store(tools, [tmp_path / "pause.tar", tmp_path / "layered.tar"],
                         [PAUSE, LAYERED], tmp_path / "scratch", arch="x86_64")


@pytest.fixture
def node_containerd(bins: Path, tmp_path: Path) -> Iterator[Callable[[Path], Containerd]]:
    """Starts a real containerd (CRI on, as on the node) whose root is a given store."""
    with contextlib.ExitStack() as stack:

        def start(store: Path) -> Containerd:
            scratch = tmp_path / "node"
            scratch.mkdir()
            (scratch / "root").symlink_to(store)
            return stack.enter_context(Containerd.start(bins, scratch, sandbox_image=PAUSE))

        yield start


@pytest.mark.real
def test_a_store_written_to_a_root_is_read_by_a_fresh_containerd_without_import(
        made: cs.Store, bins: Path, tmp_path: Path,
        node_containerd: Callable[[Path], Containerd]) -> None:
    assert set(made.images) == {PAUSE, LAYERED}
    assert sorted(p.name for p in made.tree.iterdir()) == [
        "io.containerd.content.v1.content", "io.containerd.metadata.v1.bolt",
        "io.containerd.snapshotter.v1.overlayfs", cs.MARKER]  # no instance UUID, task state
    assert json.loads((made.tree / cs.MARKER).read_text())["images"] == dict(made.images)
    root = tmp_path / "root"
    t = node_tree(root, bins)
    cs.write_store(t, made)
    store = root / "var/lib/containerd"
    assert stat.S_IMODE(store.stat().st_mode) == 0o711
    assert list(store.parent.glob(".*kubeinit-build*")) == []
    # overlayfs whiteout and opaque directory, and the file capability, survived the copy
    snaps = store / "io.containerd.snapshotter.v1.overlayfs" / "snapshots"
    whiteouts = [p for p in snaps.rglob("gone") if stat.S_ISCHR(p.lstat().st_mode)]
    assert len(whiteouts) == 1 and whiteouts[0].lstat().st_rdev == 0
    opaque = [p for p in snaps.glob("*/fs/opq") if (p / "new").exists()]
    assert len(opaque) == 1 and os.getxattr(opaque[0], "trusted.overlay.opaque") == b"y"
    servers = list(snaps.glob("*/fs/bin/server"))
    assert len(servers) == 1
    assert os.getxattr(servers[0], "security.capability") == NET_BIND_CAP

    # a second build of the same tree replaces kubeinit-build's store whole
    inode = (store / cs.META_DB).stat().st_ino
    cs.write_store(t, made)
    assert (store / cs.META_DB).stat().st_ino != inode
    assert sorted(p.name for p in store.parent.iterdir()) == ["containerd"]

    c = node_containerd(store)
    listed = json.loads(c.crictl("images", "-o", "json").stdout)["images"]
    assert {t: i["pinned"] for i in listed for t in i["repoTags"]} == {PAUSE: True,
                                                                       LAYERED: True}
    check = c.ctr("images", "check").stdout.splitlines()[1:]
    assert {ln.split()[0]: (ln.split()[3], ln.split()[-1]) for ln in check} == {
        PAUSE: ("complete", "true"), LAYERED: ("complete", "true")}
    ls = {ln.split()[0]: ln.split()[2] for ln in c.ctr("images", "ls").stdout.splitlines()[1:]}
    assert ls == dict(made.images)
    # what a container of the layered image sees: the whiteout and opaque dir applied
    out = c.ctr("snapshots", "ls").stdout
    assert out.count("Committed") == 3  # pause: 1 layer, layered: 2
    assert "import" not in c.log().lower() and "unpack" not in c.log().lower()


@pytest.mark.real
def test_a_failing_containerd_is_one_clear_error(bins: Path, tmp_path: Path) -> None:
    tools = cs.find_tools(bins)
    assert tools is not None
    bad = tmp_path / "bad.tar"
    bad.write_bytes(b"not a tar")
    from kubeinit.errors import PhaseFailed
    with pytest.raises(PhaseFailed) as e:
        cs.make_store(tools, [bad], [PAUSE], tmp_path / "scratch", arch="x86_64")
    assert e.value.message.startswith("unpacking the images with containerd v2.3.7 failed:")
    assert str(tmp_path / "scratch" / "containerd.log") in (e.value.hint or "")
    # containerd did not outlive the run: its PID namespace went with the script
    mark = str(tmp_path / "scratch").encode()
    left = [p for p in Path("/proc").iterdir() if p.name.isdigit()
            and mark in _cmdline(p)]
    assert left == []


def _cmdline(p: Path) -> bytes:
    try:
        return (p / "cmdline").read_bytes()
    except OSError:
        return b""


@pytest.mark.real
@pytest.mark.slow
def test_a_store_written_into_a_disk_image_keeps_whiteouts_and_xattrs(
        made: cs.Store, tmp_path: Path, tool: Callable[[str], str]) -> None:
    """--image: libguestfs tar_in, read back independently with debugfs (no libguestfs)."""
    from builder.accel import Accel
    from builder.guest import LAUNCH_TIMEOUT, bounded_launch, import_guestfs
    from builder.target import GuestTarget
    guestfs = import_guestfs()
    disk = tmp_path / "disk.raw"
    with disk.open("wb") as f:
        f.truncate(256 << 20)
    g = guestfs.GuestFS(python_return_dict=True)
    g.set_backend("direct")
    g.set_backend_settings(["force_tcg"])  # KVM is unreliable on the test machines
    g.add_drive_opts(str(disk), format="raw", readonly=False)
    bounded_launch(g, LAUNCH_TIMEOUT[Accel.TCG])  # never a wait without a bound
    try:
        g.mkfs("ext4", "/dev/sda")
        g.mount("/dev/sda", "/")
        cs.write_store(GuestTarget(g, "test disk", "/"), made)
        g.umount_all()
        g.shutdown()
    finally:
        g.close()
    debugfs = tool("debugfs")

    def dbg(request: str) -> str:
        return subprocess.run([debugfs, "-R", request, str(disk)], capture_output=True,
                              text=True, check=True, timeout=120).stdout

    snaps = "/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots"
    ids = [ln.split()[-1] for ln in dbg(f"ls -l {snaps}").splitlines() if ln.strip()]
    found = {"whiteout": False, "opaque": False, "cap": False}
    for i in ids:
        if not i.isdigit():
            continue
        listing = dbg(f"ls -l {snaps}/{i}/fs")
        if "gone" in listing:
            st = dbg(f"stat {snaps}/{i}/fs/gone")
            found["whiteout"] = ("Type: character special" in st
                                 and "Device major/minor number: 00:00" in st)
        if "opq" in listing and "new" in dbg(f"ls {snaps}/{i}/fs/opq"):
            found["opaque"] = "trusted.overlay.opaque" in dbg(f"ea_list {snaps}/{i}/fs/opq")
        if "bin" in listing:
            found["cap"] = "security.capability" in dbg(f"ea_list {snaps}/{i}/fs/bin/server")
    assert found == {"whiteout": True, "opaque": True, "cap": True}
    assert "0711" in dbg("stat /var/lib/containerd").split("Mode:")[1][:8]


# --- kubeinit-build --root on the real base tree ---------------------------------------------

def _profile_of(root: Path) -> dict[str, object]:
    return dict(json.loads((root / "usr/lib/kubeinit/profile.json").read_text()))


@pytest.mark.real
@pytest.mark.slow
def test_root_build_with_another_snapshotter_falls_back_to_archives(
        tree_copy: Path, oci_dir: Path) -> None:
    cfg = tree_copy / "etc/containerd/config.toml"
    text = cfg.read_text() + "\n[plugins.'io.containerd.cri.v1.images']\n  snapshotter = 'native'\n"
    cfg.unlink()  # a hard link into the shared base tree: never written in place
    cfg.write_text(text)
    res = build("--root", tree_copy, "--config", CLUSTER_YAML, "--images", oci_dir)
    assert res.rc == 0, res.stderr
    warning = ("kubeinit-build: warning: [image-store] the images are not unpacked at build"
               " time: the image's containerd uses the native snapshotter; kubeinit-build"
               " writes stores for overlayfs")
    assert warning in res.stderr.splitlines()
    profile = _profile_of(tree_copy)
    store = profile["imageStore"]
    assert isinstance(store, dict) and store["mode"] == "archives"
    assert "native snapshotter" in store["reason"]
    assert sorted(store["images"]) == sorted(pinned_images())
    preload = profile["preload"]
    assert isinstance(preload, list) and len(preload) == len(pinned_images())
    assert all((tree_copy / p["archive"].lstrip("/")).is_file() for p in preload)
    assert not (tree_copy / "var/lib/containerd").exists()


@pytest.mark.real
@pytest.mark.slow
def test_root_build_unpacks_into_the_trees_store(
        tree_copy: Path, oci_dir: Path, bins: Path,
        node_containerd: Callable[[Path], Containerd]) -> None:
    res = build("--root", tree_copy, "--config", CLUSTER_YAML, "--images", oci_dir)
    assert res.rc == 0, res.stderr
    assert any(ln.startswith(f"kubeinit-build: unpack {len(pinned_images())} images into"
                             " containerd's store (containerd v2.3.7, overlayfs")
               for ln in res.stderr.splitlines()), res.stderr
    assert "warning: [image-store]" not in res.stderr
    profile = _profile_of(tree_copy)
    assert profile["preload"] == []
    assert not (tree_copy / "usr/lib/kubeinit/images").exists()
    store = profile["imageStore"]
    assert isinstance(store, dict)
    assert (store["mode"], store["snapshotter"], store["containerd"]) == (
        "unpacked", "overlayfs", "v2.3.7")
    c = node_containerd(tree_copy / "var/lib/containerd")
    ls = {ln.split()[0]: ln.split()[2] for ln in c.ctr("images", "ls").stdout.splitlines()[1:]}
    assert ls == store["images"]
    listed = json.loads(c.crictl("images", "-o", "json").stdout)["images"]
    assert sorted(t for i in listed if i["pinned"] for t in i["repoTags"]) == sorted(
        pinned_images())


@pytest.fixture(scope="module")
def real_images(k8s_bin: Path) -> Path:
    """The real control-plane archives (hack/oci-images, cached by content)."""
    proc = subprocess.run([sys.executable, str(REPO / "hack" / "oci-images")],
                          capture_output=True, text=True, timeout=1800, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return Path(proc.stdout.strip().splitlines()[-1])


@pytest.mark.real
@pytest.mark.slow
def test_root_build_of_the_real_control_plane_images_runs_them_without_import(
        tree_copy: Path, real_images: Path, bins: Path,
        node_containerd: Callable[[Path], Containerd]) -> None:
    res = build("--root", tree_copy, "--config", CLUSTER_YAML, "--images", real_images)
    assert res.rc == 0, res.stderr
    profile = _profile_of(tree_copy)
    store = profile["imageStore"]
    assert isinstance(store, dict) and store["mode"] == "unpacked"
    names = json.loads((real_images / "images.json").read_text())["images"]
    assert set(store["images"]) == {e["name"] for e in names} == set(pinned_images())
    root = tree_copy / "var/lib/containerd"
    # kube-apiserver's cap_net_bind_service=ep (build/server-image's setcap) is in its snapshot
    caps = list(root.glob("io.containerd.snapshotter.v1.overlayfs/snapshots/*/fs/usr/local/bin"
                          "/kube-apiserver"))
    assert len(caps) == 1 and os.getxattr(caps[0], "security.capability") == NET_BIND_CAP
    c = node_containerd(root)
    listing = c.ctr("images", "check").stdout.splitlines()[1:]
    check = {ln.split()[0]: ln.split()[-1] for ln in listing}
    assert check == {name: "true" for name in pinned_images()}
    etcd = next(i for i in pinned_images() if "/etcd:" in i)
    ran = c.run(etcd, "etcd", "--version", cid="etcd-version")
    assert ran.returncode == 0 and "etcd Version: 3." in ran.stdout, ran.stderr
    apiserver = next(i for i in pinned_images() if "/kube-apiserver:" in i)
    ran = c.run(apiserver, "kube-apiserver", "--version", cid="apiserver-version")
    assert ran.returncode == 0 and "Kubernetes v1.37.2" in ran.stdout, ran.stderr
    log = c.log()
    assert "ImageCreate event" not in log and "PullImage" not in log
