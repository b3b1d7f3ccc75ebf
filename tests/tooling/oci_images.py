"""Control-plane container images built locally from the real binaries (test/demo tooling).

`hack/oci-images` writes one OCI image-layout archive per image that kubeadm's manifests of the
pinned release name (kubeinit/versions.py `Release.image`): kube-apiserver,
kube-controller-manager, kube-scheduler, kube-proxy, etcd, coredns and pause. Each archive is
what `ctr -n k8s.io images import` accepts (oci-layout, index.json naming the image with the
`io.containerd.image.name` annotation, blobs/sha256/...), so the rendered manifests need no
edits and nothing is ever pulled.

Layout follows the upstream images where a static Pod or a DaemonSet can tell:
  kube-*   binary in /usr/local/bin (kubeadm's manifests call it by name: `command:
           [kube-apiserver, ...]`, found through the image's PATH); a distroless-static-like
           base (/etc/passwd with root, nobody, nonroot 65532; /etc/group; nsswitch.conf; /tmp
           1777); user root. kube-apiserver carries cap_net_bind_service=ep, as the setcap step
           of build/server-image/kube-apiserver/Dockerfile. Upstream's entrypoint is /go-runner
           (kube-log-runner), which kubeadm's manifests never use (`command:` replaces it); here
           the entrypoint is the binary itself.
  kube-proxy  + the host's Debian iptables (nf_tables and legacy), nft and conntrack, with
           every shared library and xtables extension they load (closure from ldd), standing in
           for distroless-iptables. iptables/ip6tables(-save/-restore) are the nf_tables
           variants, Debian bookworm's default.
  etcd     etcd and etcdctl in /usr/local/bin (cluster/images/etcd/Dockerfile of v1.35); no
           /bin/sh (kubeadm's etcd probes are httpGet).
  coredns  /coredns with cap_net_bind_service=ep, entrypoint /coredns, user nonroot:nonroot
           (coredns' own Dockerfile: distroless static nonroot base).
  pause    kubernetes' own build/pause/linux/pause.c, compiled with the upstream Makefile's flags
           (-Os -Wall -Werror -static -DVERSION=v$TAG-$REV; REV is the Kubernetes tag here),
           stripped; /pause, user 65535:65535, entrypoint /pause, nothing else (FROM scratch).

Archives are deterministic: sorted entries, mtime 0, uid/gid 0 (but /home/nonroot), fixed
config timestamps, gzip without name or time; the same inputs give the same digests. Layers are
gzip by default: 139 MiB instead of 487 MiB for v1.37.2, and `ctr images import` of all seven
was cheaper too where it was measured (6.7 s wall and 4.9 s CPU of containerd and ctr, against
8.3 s and 7.7 s for plain tar; 632 against 979 MiB under containerd's root). Same digests need
the same zlib as well. `--uncompressed` writes plain tar layers (into <version>-tar/).

Cache: ${KUBEINIT_CACHE_DIR:-${XDG_CACHE_HOME:-~/.cache}/kubeinit}/images/<version>/, keyed per
image by the content hash of every input (binaries, host files, the compiled pause, this
recipe): a changed input rebuilds only the images made from it. A call whose inputs are
unchanged (same size, mtime and inode as recorded) returns at once. Prints the directory on the
last line of stdout; images.json there lists component, image name, archive, manifest digest.
"""

from __future__ import annotations

import argparse
import fcntl
import gzip
import hashlib
import io
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # run as hack/oci-images
    sys.path.insert(0, str(REPO))

from kubeinit.versions import Release, parse_version, release_for  # noqa: E402

SCHEMA = 1
COMPONENTS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kube-proxy",
              "etcd", "coredns", "pause")
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
CREATED = "1970-01-01T00:00:00Z"
NONROOT = 65532
# struct vfs_cap_data, revision 2 (linux/capability.h): magic_etc = VFS_CAP_REVISION_2 |
# VFS_CAP_FLAGS_EFFECTIVE, then {permitted, inheritable} for caps 0-31 and 32-63, little endian.
CAP_NET_BIND_SERVICE = 10
CAP_XATTR = "security.capability"


def file_caps(*caps: int) -> bytes:
    permitted = sum(1 << c for c in caps)
    return b"".join(v.to_bytes(4, "little") for v in (0x02000001, permitted, 0, 0, 0))


NET_BIND = ((CAP_XATTR, file_caps(CAP_NET_BIND_SERVICE)),)

MT_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_LAYER = "application/vnd.oci.image.layer.v1.tar"
MT_LAYER_GZ = "application/vnd.oci.image.layer.v1.tar+gzip"

# The host tools of the kube-proxy image (Debian packages iptables, nftables, conntrack).
IPTABLES_NFT = ("iptables", "iptables-save", "iptables-restore",
                "ip6tables", "ip6tables-save", "ip6tables-restore")
HOST_TOOLS = ("/usr/sbin/xtables-nft-multi", "/usr/sbin/xtables-legacy-multi", "/usr/sbin/nft",
              "/usr/sbin/conntrack")
XTABLES_DIR = "/usr/lib/x86_64-linux-gnu/xtables"  # iptables dlopens its extensions from here
HOST_DATA = ("/etc/protocols", "/etc/services", "/etc/ethertypes")  # netbase, iptables


class Failure(Exception):
    """One line for the operator, plus what to do."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.hint = hint


def log(msg: str) -> None:
    print(f"oci-images: {msg}", file=sys.stderr, flush=True)


# --- what goes into a layer ----------------------------------------------------------------

@dataclass(frozen=True)
class Entry:
    """One tar member: `path` inside the image, without a leading slash."""

    path: str
    kind: str  # "dir", "file" or "symlink"
    mode: int = 0o755
    source: Path | None = None  # file content from the host...
    data: bytes | None = None  # ...or given
    link: str = ""
    uid: int = 0
    gid: int = 0
    xattrs: tuple[tuple[str, bytes], ...] = ()


def dir_(path: str, mode: int = 0o755, uid: int = 0) -> Entry:
    return Entry(path, "dir", mode, uid=uid, gid=uid)


def data_(path: str, text: str, mode: int = 0o644) -> Entry:
    return Entry(path, "file", mode, data=text.encode())


def binary(path: str, source: Path, xattrs: tuple[tuple[str, bytes], ...] = ()) -> Entry:
    return Entry(path, "file", 0o755, source=source, xattrs=xattrs)


def with_parents(entries: Iterable[Entry]) -> tuple[Entry, ...]:
    """The entries plus every missing parent directory (root-owned 0755), sorted by path."""
    out = {e.path: e for e in entries}
    for path in list(out):
        parent = os.path.dirname(path)
        while parent and parent not in out:
            out[parent] = dir_(parent)
            parent = os.path.dirname(parent)
    return tuple(out[p] for p in sorted(out))


# distroless static (GoogleContainerTools/distroless base/static): the files a Go binary and
# the runtime's user lookup (`USER nonroot:nonroot`) read.
BASE = with_parents((
    data_("etc/passwd", "root:x:0:0:root:/root:/sbin/nologin\n"
          "nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n"
          f"nonroot:x:{NONROOT}:{NONROOT}:nonroot:/home/nonroot:/sbin/nologin\n"),
    data_("etc/group", "root:x:0:\nnobody:x:65534:\ntty:x:5:\nstaff:x:50:\n"
          f"nonroot:x:{NONROOT}:\n"),
    # Without it Go's resolver would ask DNS before /etc/hosts (glibc's default order).
    data_("etc/nsswitch.conf", "hosts: files dns\n"),
    dir_("home/nonroot", 0o700, uid=NONROOT),
    dir_("root", 0o700),
    dir_("tmp", 0o1777),
    dir_("usr/local/bin"),
))


def host_closure(paths: Iterable[str]) -> tuple[Entry, ...]:
    """Host files at the same paths in the image, with every symlink on the way (/lib ->
    usr/lib on a merged-/usr Debian) and the shared libraries each ELF file needs (ldd)."""
    out: dict[str, Entry] = {}

    def add(path: str) -> None:
        path = os.path.normpath(path)
        if path == "/":
            return
        parent, name = os.path.split(path)
        add(parent)
        host = os.path.join(os.path.realpath(parent), name)
        key = host.lstrip("/")
        if key in out:
            return
        st = os.lstat(host)
        if stat.S_ISLNK(st.st_mode):
            target = os.readlink(host)
            out[key] = Entry(key, "symlink", 0o777, link=target)
            add(os.path.join(os.path.dirname(host), target))
        elif stat.S_ISDIR(st.st_mode):
            out[key] = dir_(key, stat.S_IMODE(st.st_mode))
        elif stat.S_ISREG(st.st_mode):
            out[key] = Entry(key, "file", stat.S_IMODE(st.st_mode), source=Path(host))
        else:
            raise Failure(f"{host}: not a file, directory or symlink")

    for p in paths:
        add(p)
        for lib in shared_libraries(p):
            add(lib)
    return tuple(out[k] for k in sorted(out))


_LDD_PATH = re.compile(r"(/\S+) \(0x[0-9a-f]+\)$")


def shared_libraries(path: str) -> list[str]:
    """What the dynamic loader maps for `path` (ldd: the interpreter and every DT_NEEDED, as
    the host's ld.so.cache resolves them); empty for a non-ELF or static file."""
    if not os.path.isfile(path):
        return []
    with open(path, "rb") as f:
        if f.read(4) != b"\x7fELF":
            return []
    proc = subprocess.run(["ldd", path], capture_output=True, text=True,
                          env={"LC_ALL": "C", "PATH": "/usr/bin:/bin"}, check=False)
    if proc.returncode != 0:
        if "not a dynamic executable" in proc.stdout + proc.stderr:
            return []
        raise Failure(f"ldd {path} failed: {proc.stderr.strip()}")
    libs = []
    for line in proc.stdout.splitlines():
        if "not found" in line:
            raise Failure(f"{path}: {line.strip()}", hint="install the library's package")
        m = _LDD_PATH.search(line.strip())
        if m:
            libs.append(m.group(1))
    return libs


# --- the images ----------------------------------------------------------------------------

@dataclass(frozen=True)
class ImageSpec:
    component: str
    layers: tuple[tuple[Entry, ...], ...]
    entrypoint: tuple[str, ...] | None = None
    cmd: tuple[str, ...] | None = None
    user: str = ""
    ports: tuple[str, ...] = ()

    def config(self, diff_ids: list[str]) -> dict[str, Any]:
        conf: dict[str, Any] = {"Env": [PATH_ENV], "WorkingDir": "/"}
        if self.entrypoint:
            conf["Entrypoint"] = list(self.entrypoint)
        if self.cmd:
            conf["Cmd"] = list(self.cmd)
        if self.user:
            conf["User"] = self.user
        if self.ports:
            conf["ExposedPorts"] = {p: {} for p in self.ports}
        return {
            "architecture": "amd64", "os": "linux", "created": CREATED, "config": conf,
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": [{"created": CREATED, "created_by": f"kubeinit hack/oci-images layer {i}"}
                        for i in range(len(diff_ids))],
        }


def pause_source(version: str) -> Path:
    """kubernetes' build/pause of this version, from the Go module cache."""
    env = os.environ.get("GOMODCACHE")
    if not env and shutil.which("go"):
        env = subprocess.run(["go", "env", "GOMODCACHE"], capture_output=True, text=True,
                             check=False).stdout.strip()
    modcache = Path(env) if env else Path.home() / "go" / "pkg" / "mod"
    src = modcache / f"k8s.io/kubernetes@{version}" / "build" / "pause"
    if not (src / "linux" / "pause.c").is_file() and shutil.which("go"):
        # hack/k8s-binaries downloads it when it builds; with its binaries already cached (a
        # fresh machine given a binaries cache) nothing did: fetch the module from the proxy
        got = subprocess.run(["go", "mod", "download", "-json", f"k8s.io/kubernetes@{version}"],
                             capture_output=True, text=True, check=False, timeout=1800)
        if got.returncode == 0 and json.loads(got.stdout).get("Dir"):
            src = Path(json.loads(got.stdout)["Dir"]) / "build" / "pause"
    if not (src / "linux" / "pause.c").is_file():
        raise Failure(f"{src}/linux/pause.c is missing",
                      hint=f"go mod download k8s.io/kubernetes@{version} (hack/k8s-binaries does)")
    return src


def build_pause(release: Release, src: Path, out: Path) -> Path:
    """pause.c compiled as build/pause/Makefile does: gcc $(CFLAGS) then strip."""
    makefile = (src / "Makefile").read_text()
    m = re.search(r"^TAG \?= (\S+)$", makefile, re.M)
    tag = release.major_minor.pause_tag
    if not m or m.group(1) != tag:
        raise Failure(f"{src}/Makefile builds pause {m.group(1) if m else '?'}, but kubeadm "
                      f"{release.version} pins pause:{tag}")
    if not re.search(r"^CFLAGS = -Os -Wall -Werror -static -DVERSION=v\$\(TAG\)-\$\(REV\)$",
                     makefile, re.M):
        raise Failure(f"{src}/Makefile: CFLAGS changed; update build_pause to match it")
    gcc = shutil.which("gcc")
    if not gcc:
        raise Failure("gcc is not installed", hint="apt-get install gcc libc6-dev")
    out.parent.mkdir(parents=True, exist_ok=True)
    cmd = [gcc, "-Os", "-Wall", "-Werror", "-static", f"-DVERSION=v{tag}-{release.version}",
           "-o", str(out), str(src / "linux" / "pause.c")]
    for argv in (cmd, ["strip", str(out)]):
        proc = subprocess.run(argv, capture_output=True, text=True, check=False,
                              cwd=out.parent)
        if proc.returncode != 0:
            raise Failure(f"{' '.join(argv)} failed: {proc.stderr.strip()}",
                          hint="apt-get install gcc libc6-dev (static libc.a)")
    return out


def image_specs(release: Release, bins: Path, pause: Path) -> tuple[ImageSpec, ...]:
    def kube(name: str, caps: tuple[tuple[str, bytes], ...] = ()) -> tuple[Entry, ...]:
        return with_parents((binary(f"usr/local/bin/{name}", bins / name, caps),))

    missing = [p for p in (*HOST_TOOLS, XTABLES_DIR) if not os.path.exists(p)]
    if missing:
        raise Failure(f"{missing[0]} is missing (kube-proxy's image copies the host's tools)",
                      hint="apt-get install iptables nftables conntrack")
    for name in ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kube-proxy",
                 "etcd", "etcdctl", "coredns"):
        if not (bins / name).is_file():
            raise Failure(f"{bins}/{name} is missing",
                          hint=f"run hack/k8s-binaries --version {release.version}")
    iptables = host_closure((*HOST_TOOLS, XTABLES_DIR,
                             *(f"{XTABLES_DIR}/{n}" for n in sorted(os.listdir(XTABLES_DIR))),
                             *(p for p in HOST_DATA if os.path.exists(p))))
    links = [Entry(f"usr/sbin/{n}", "symlink", 0o777, link="xtables-nft-multi")
             for n in IPTABLES_NFT]
    links += [Entry(f"usr/sbin/{n.replace('tables', f'tables-{v}', 1)}", "symlink", 0o777,
                    link=f"xtables-{v}-multi")
              for v in ("nft", "legacy") for n in IPTABLES_NFT]
    specs = [
        ImageSpec("kube-apiserver", (BASE, kube("kube-apiserver", NET_BIND)),
                  entrypoint=("/usr/local/bin/kube-apiserver",)),
        ImageSpec("kube-controller-manager", (BASE, kube("kube-controller-manager")),
                  entrypoint=("/usr/local/bin/kube-controller-manager",)),
        ImageSpec("kube-scheduler", (BASE, kube("kube-scheduler")),
                  entrypoint=("/usr/local/bin/kube-scheduler",)),
        ImageSpec("kube-proxy", (BASE, with_parents((*iptables, *links)), kube("kube-proxy")),
                  entrypoint=("/usr/local/bin/kube-proxy",)),
        ImageSpec("etcd", (BASE, with_parents((binary("usr/local/bin/etcd", bins / "etcd"),
                                               binary("usr/local/bin/etcdctl",
                                                      bins / "etcdctl")))),
                  cmd=("/usr/local/bin/etcd",),
                  ports=("2379/tcp", "2380/tcp", "4001/tcp", "7001/tcp")),
        ImageSpec("coredns", (BASE, (binary("coredns", bins / "coredns", NET_BIND),)),
                  entrypoint=("/coredns",), user="nonroot:nonroot",
                  ports=("53/tcp", "53/udp")),
        ImageSpec("pause", ((binary("pause", pause),),), entrypoint=("/pause",),
                  user="65535:65535"),
    ]
    return tuple(specs)


# --- content hashes, memoised by stat -------------------------------------------------------

def stat_key(path: Path) -> list[int]:
    st = path.stat()
    return [st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns]


@dataclass
class Hasher:
    """sha256 of files, remembered by (size, mtime, inode, ctime) across calls."""

    memo_file: Path
    memo: dict[str, list[Any]] = field(default_factory=dict)
    used: dict[str, list[int]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        try:
            self.memo = json.loads(self.memo_file.read_text())
        except (OSError, ValueError):
            self.memo = {}

    def sha256(self, path: Path) -> str:
        key = stat_key(path)
        self.used[str(path)] = key
        known = self.memo.get(str(path))
        if known and known[0] == key:
            return str(known[1])
        h = hashlib.sha256()
        with path.open("rb") as f:
            while block := f.read(1 << 20):
                h.update(block)
        self.memo[str(path)] = [key, h.hexdigest()]
        return h.hexdigest()

    def save(self) -> None:
        write_atomic(self.memo_file, json.dumps(self.memo, sort_keys=True).encode())


def image_keys(specs: tuple[ImageSpec, ...], names: dict[str, str], gz: bool,
               hasher: Hasher) -> dict[str, str]:
    """component -> content hash of everything its archive is made from."""
    def entry(e: Entry) -> list[Any]:
        content = (hasher.sha256(e.source) if e.source is not None
                   else hashlib.sha256(e.data).hexdigest() if e.data is not None else "")
        return [e.path, e.kind, e.mode, e.uid, e.gid, e.link, content,
                [[k, v.hex()] for k, v in e.xattrs]]

    recipe = hasher.sha256(Path(__file__))
    keys = {}
    for s in specs:
        doc = {"schema": SCHEMA, "recipe": recipe, "gzip": gz, "name": names[s.component],
               "config": s.config([]),
               "layers": [[entry(e) for e in layer] for layer in s.layers]}
        keys[s.component] = hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()
    return keys


# --- writing blobs and archives -------------------------------------------------------------

class Sink(Protocol):
    def write(self, b: bytes, /) -> int: ...


class HashingWriter(io.RawIOBase):
    """A write-only file that hashes and counts what passes through to `inner`."""

    def __init__(self, inner: Sink) -> None:
        self.inner, self.hash, self.size = inner, hashlib.sha256(), 0

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        data = bytes(b)
        self.inner.write(data)
        self.hash.update(data)
        self.size += len(data)
        return len(data)

    def tell(self) -> int:
        return self.size


@dataclass(frozen=True)
class Blob:
    digest: str  # sha256:...
    size: int
    path: Path

    def descriptor(self, media_type: str) -> dict[str, Any]:
        return {"mediaType": media_type, "digest": self.digest, "size": self.size}


def tarinfo(e: Entry) -> tarfile.TarInfo:
    info = tarfile.TarInfo(e.path)
    info.mtime, info.uid, info.gid, info.mode = 0, e.uid, e.gid, e.mode
    info.uname = info.gname = ""
    if e.kind == "dir":
        info.type = tarfile.DIRTYPE
    elif e.kind == "symlink":
        info.type, info.linkname = tarfile.SYMTYPE, e.link
    if e.xattrs:
        # PAX SCHILY.xattr records, as GNU tar --xattrs and containerd's archive package use.
        info.pax_headers = {f"SCHILY.xattr.{k}": v.decode("ascii") for k, v in e.xattrs}
    return info


def write_layer(entries: tuple[Entry, ...], blobs: Path, gz: bool) -> tuple[Blob, str]:
    """The layer blob and its diff_id (digest of the uncompressed tar)."""
    fd, tmp = tempfile.mkstemp(dir=blobs, prefix=".layer-")
    with os.fdopen(fd, "wb") as f:
        outer = HashingWriter(f)
        gzf = gzip.GzipFile(filename="", mode="wb", fileobj=outer, mtime=0,
                            compresslevel=6) if gz else None
        inner = HashingWriter(gzf) if gzf else outer
        with tarfile.open(fileobj=inner, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for e in entries:
                info = tarinfo(e)
                if e.kind != "file":
                    tar.addfile(info)
                elif e.source is not None:
                    with e.source.open("rb") as src:
                        info.size = os.fstat(src.fileno()).st_size
                        tar.addfile(info, src)
                else:
                    assert e.data is not None
                    info.size = len(e.data)
                    tar.addfile(info, io.BytesIO(e.data))
        if gzf:
            gzf.close()
    blob = Blob("sha256:" + outer.hash.hexdigest(), outer.size,
                blobs / outer.hash.hexdigest())
    os.replace(tmp, blob.path)
    return blob, "sha256:" + inner.hash.hexdigest()


def write_json_blob(doc: dict[str, Any], blobs: Path) -> Blob:
    data = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
    digest = hashlib.sha256(data).hexdigest()
    (blobs / digest).write_bytes(data)
    return Blob("sha256:" + digest, len(data), blobs / digest)


def write_archive(path: Path, name: str, manifest: Blob, blobs: list[Blob]) -> None:
    """An OCI image layout as a tar (what `ctr images export` writes), entries sorted."""
    tag = name.rsplit(":", 1)[1]
    index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
             "manifests": [{**manifest.descriptor(MT_MANIFEST), "annotations": {
                 "io.containerd.image.name": name, "org.opencontainers.image.ref.name": tag}}]}
    files: dict[str, bytes | Path] = {
        "oci-layout": b'{"imageLayoutVersion":"1.0.0"}',
        "index.json": json.dumps(index, sort_keys=True, separators=(",", ":")).encode(),
    }
    for b in blobs:
        files[f"blobs/sha256/{b.digest.removeprefix('sha256:')}"] = b.path
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for d in ("blobs", "blobs/sha256"):
            tar.addfile(tarinfo(dir_(d)))
        for member, content in sorted(files.items()):
            info = tarinfo(Entry(member, "file", 0o644))
            if isinstance(content, Path):
                info.size = content.stat().st_size
                with content.open("rb") as f:
                    tar.addfile(info, f)
            else:
                info.size = len(content)
                tar.addfile(info, io.BytesIO(content))


def write_atomic(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def build(specs: tuple[ImageSpec, ...], names: dict[str, str], keys: dict[str, str],
          out: Path, gz: bool, reuse: dict[str, Path]) -> list[dict[str, Any]]:
    """Write every archive into `out`; an archive in `reuse` (same key, from the previous
    build) is hard-linked instead of rebuilt."""
    blobs = out / ".blobs"
    blobs.mkdir(parents=True)
    layers: dict[tuple[Entry, ...], tuple[Blob, str]] = {}
    images = []
    for s in specs:
        start = time.monotonic()
        archive = out / f"{s.component}.tar"
        if s.component in reuse:
            os.link(reuse[s.component], archive)
            digest = json.loads(_read_member(archive, "index.json"))["manifests"][0]["digest"]
            log(f"{archive.name}: unchanged")
        else:
            for layer in s.layers:
                if layer not in layers:  # the shared base layer is written once
                    layers[layer] = write_layer(layer, blobs, gz)
            config = write_json_blob(s.config([layers[x][1] for x in s.layers]), blobs)
            manifest = write_json_blob({
                "schemaVersion": 2, "mediaType": MT_MANIFEST,
                "config": config.descriptor(MT_CONFIG),
                "layers": [layers[x][0].descriptor(MT_LAYER_GZ if gz else MT_LAYER)
                           for x in s.layers]}, blobs)
            write_archive(archive, names[s.component], manifest,
                          [config, manifest, *(layers[x][0] for x in s.layers)])
            digest = manifest.digest
            log(f"{archive.name}: {names[s.component]} {archive.stat().st_size / 2**20:.1f} MiB"
                f" in {time.monotonic() - start:.1f} s")
        images.append({"component": s.component, "name": names[s.component],
                       "archive": archive.name, "digest": digest,
                       "size": archive.stat().st_size, "key": keys[s.component]})
    shutil.rmtree(blobs)
    return images


def _read_member(archive: Path, name: str) -> bytes:
    with tarfile.open(archive) as tar:
        f = tar.extractfile(name)
        assert f is not None
        return f.read()


# --- the cache ------------------------------------------------------------------------------

def cache_root() -> Path:
    base = os.environ.get("KUBEINIT_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "kubeinit")
    return Path(base)


def up_to_date(out: Path, args: dict[str, Any]) -> bool:
    """The fast path: the archives are there and no input changed since they were made."""
    try:
        inputs = json.loads((out / ".inputs.json").read_text())
        index = json.loads((out / "images.json").read_text())
        if inputs["args"] != args or index.get("schema") != SCHEMA:
            return False
        if any(stat_key(Path(p)) != k for p, k in inputs["stats"].items()):
            return False
        return all((out / i["archive"]).stat().st_size == i["size"] for i in index["images"])
    except (OSError, ValueError, KeyError, TypeError):
        return False


def make_images(version: str, bins: Path, gz: bool) -> Path:
    release = release_for(version)
    root = cache_root() / "images"
    out = root / (release.version + ("" if gz else "-tar"))
    args = {"version": release.version, "binaries": str(bins), "gzip": gz}
    root.mkdir(parents=True, exist_ok=True)
    with (root / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one writer at a time (test sessions, the demo)
        if up_to_date(out, args):
            log(f"cached: {out}")
            return out
        start = time.monotonic()
        hasher = Hasher(root / ".sha256-memo.json")
        src = pause_source(release.version)
        pause = build_pause(release, src, root / ".pause" / release.version / "pause")
        specs = image_specs(release, bins, pause)
        names = {s.component: release.image(s.component) for s in specs}
        assert tuple(names) == COMPONENTS
        keys = image_keys(specs, names, gz, hasher)
        # What decides whether the next call may skip all this: every input file, the inputs
        # of the pause compile, and the xtables directory (an extension added or removed).
        watch = [src / "linux" / "pause.c", src / "Makefile", Path(XTABLES_DIR),
                 Path("/usr/lib/x86_64-linux-gnu/libc.a"),
                 Path(os.path.realpath(shutil.which("gcc") or "gcc")),
                 REPO / "kubeinit" / "versions.py"]
        stats = {p: k for p, k in hasher.used.items() if p != str(pause)}
        stats.update({str(p): stat_key(p) for p in watch})
        inputs = json.dumps({"args": args, "stats": stats}, sort_keys=True, indent=1).encode()
        hasher.save()
        try:
            old_images = json.loads((out / "images.json").read_text())["images"]
        except (OSError, ValueError, KeyError):
            old_images = []
        reuse = {i["component"]: out / i["archive"] for i in old_images
                 if keys.get(i["component"]) == i.get("key") and (out / i["archive"]).is_file()}
        if set(reuse) == set(COMPONENTS) and len(old_images) == len(COMPONENTS):
            write_atomic(out / ".inputs.json", inputs)
            log(f"inputs unchanged (content): {out}")
            return out
        tmp = root / f".{out.name}.tmp-{os.getpid()}"
        old = root / f".{out.name}.old-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            images = build(specs, names, keys, tmp, gz, reuse)
            index = {"schema": SCHEMA, "kubernetes": release.version,
                     "layers": MT_LAYER_GZ if gz else MT_LAYER, "images": images}
            (tmp / "images.json").write_text(json.dumps(index, indent=2, sort_keys=True) + "\n")
            (tmp / ".inputs.json").write_bytes(inputs)
            if out.exists():
                out.rename(old)
            tmp.rename(out)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
            shutil.rmtree(old, ignore_errors=True)
        total = sum(i["size"] for i in images)
        log(f"{len(images)} archives, {total / 2**20:.0f} MiB, {len(images) - len(reuse)} built in"
            f" {time.monotonic() - start:.1f} s: {out}")
        return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="hack/oci-images", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", default=release_for().version,
                   help="Kubernetes version (default: the pinned one, %(default)s)")
    p.add_argument("--binaries", type=Path, metavar="DIR",
                   help="the binaries of hack/k8s-binaries (default: its cache directory)")
    p.add_argument("--uncompressed", action="store_true",
                   help="plain tar layers (default: gzip), in <version>-tar/")
    a = p.parse_args(argv)
    try:
        parse_version(a.version, field="--version")
        version = release_for(a.version).version
        bins = a.binaries or cache_root() / "binaries" / version
        out = make_images(version, bins.resolve(), not a.uncompressed)
    except Failure as e:
        print(f"oci-images: {e}" + (f"\n  hint: {e.hint}" if e.hint else ""), file=sys.stderr)
        return 1
    except Exception as e:  # InvalidInput from the version table
        hint = getattr(e, "hint", "")
        if not hint:
            raise
        print(f"oci-images: {e}\n  hint: {hint}", file=sys.stderr)
        return 2
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
