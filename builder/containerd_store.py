"""The control-plane images, already imported and unpacked into the image's containerd store
(issue 13): first boot imports nothing.

The real containerd and ctr of the pinned release (hack/k8s-binaries, never the image's own
binaries: nothing of the target runs on the build host) import the `--images` archives into a
scratch root, in namespace `k8s.io` where the CRI plugin finds images, unpack them with the
snapshotter the image's containerd uses, and label them as a CRI pull and containerd's own
sandbox-image pinning do (`io.cri-containerd.image=managed`, `io.cri-containerd.pinned=pinned`:
containerd internal/cri/labels; the kubelet's image garbage collector never removes a pinned
image). containerd runs as a plain process confined to its own PID, mount and network
namespaces (builder/data/unpack-images.sh), is stopped with SIGTERM so its bolt databases are
closed, and the three directories that hold images are copied to the image's containerd root:

    io.containerd.content.v1.content       blobs (compressed layers, configs, manifests)
    io.containerd.metadata.v1.bolt         meta.db: namespaces, images, content and snapshot
                                           records (keys, never absolute paths)
    io.containerd.snapshotter.v1.overlayfs the unpacked layers + the snapshotter's metadata.db

Everything else containerd makes (the introspection UUID of the instance, task and sandbox
state) is left out: each clone makes its own. A `kubeinit-build.json` beside them says the store
is kubeinit-build's (what it holds), so rebuilding the same tree replaces it whole.

The compatibility guard (`decide`): the store is only written when the image's containerd
(version read from its ELF Go build information, builder.elfinfo) has the same major.minor as
the one that wrote it, its configuration (/etc/containerd/config.toml, no `imports`) says the
default root and a snapshotter kubeinit-build can write (overlayfs), the image is of the build
host's architecture and holds no containerd store yet. Otherwise the build warns and falls back
to copying the archives, which first boot imports (kubeinit.preload); never a node without its
images. The profile records which (`imageStore.mode`).

Writing: `--root` copies the tree with `cp -a` (owners, modes, xattrs such as
security.capability and trusted.overlay.*, overlayfs whiteouts as 0/0 character devices) into a
staging directory beside /var/lib/containerd and renames it into place; `--image` makes a tar
with every xattr (GNU tar --xattrs --xattrs-include='*') and extracts it with libguestfs'
tar_in(xattrs=True), which passes the same options in the appliance, then reads back every
non-`user.` xattr and every whiteout to check they survived.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import stat
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from builder import elfinfo
from builder.target import GuestTarget, Target, TreeTarget, resolve, which
from kubeinit import paths
from kubeinit.errors import PhaseFailed
from kubeinit.preload import MODE_ARCHIVES, MODE_UNPACKED, NAMESPACE, PINNED_LABEL
from kubeinit.run import run

CONTAINERD_ROOT = "/var/lib/containerd"  # containerd's defaults.DefaultRootDir
CONTAINERD_CONFIG = "/etc/containerd/config.toml"
DEFAULT_SNAPSHOTTER = "overlayfs"  # defaults.DefaultSnapshotter on Linux
WRITABLE_SNAPSHOTTERS = ("overlayfs",)
MANAGED_LABEL = "io.cri-containerd.image=managed"
CONTAINERD_MODULES = ("github.com/containerd/containerd/v2", "github.com/containerd/containerd")
STORE_PARTS = (
    "io.containerd.content.v1.content",
    "io.containerd.metadata.v1.bolt",
    "io.containerd.snapshotter.v1.{snapshotter}",
)
META_DB = "io.containerd.metadata.v1.bolt/meta.db"
# Written next to the store: it is kubeinit-build's, so a rebuild of the same tree replaces it
# whole (a store with anything else in it is never touched). containerd ignores the file.
MARKER = "kubeinit-build.json"
SCRIPT = Path(__file__).resolve().parent / "data" / "unpack-images.sh"
UNPACK_TIMEOUT = 1800.0
# Debian/uname machine -> OCI architecture
OCI_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "ppc64le": "ppc64le", "s390x": "s390x",
            "riscv64": "riscv64"}  # fmt: skip


@dataclass(frozen=True)
class Tools:
    """The build host's containerd and ctr (hack/k8s-binaries)."""

    containerd: Path
    ctr: Path
    version: str  # "v2.3.7", from the binary's Go build information


@dataclass(frozen=True)
class ImageRuntime:
    """What the image's containerd will use, read from its files (nothing of it is run)."""

    binary: str
    version: str  # "" when it cannot be told
    root: str
    snapshotter: str
    problems: tuple[str, ...] = ()  # configuration kubeinit-build cannot write a store for


@dataclass(frozen=True)
class Decision:
    mode: str  # MODE_UNPACKED or MODE_ARCHIVES
    reason: str  # why archives ("" for unpacked)
    snapshotter: str = DEFAULT_SNAPSHOTTER
    tools: Tools | None = None
    runtime: ImageRuntime | None = None


@dataclass(frozen=True)
class Store:
    """A containerd store made on the build host, ready to be copied into the image."""

    tree: Path  # holds the STORE_PARTS directories
    images: Mapping[str, str]  # image -> the digest containerd records for it
    snapshotter: str
    containerd: str
    disk_bytes: int
    xattrs: Mapping[str, Mapping[str, bytes]] = field(default_factory=dict)  # not user.*
    whiteouts: tuple[str, ...] = ()  # relative paths of 0/0 character devices


# --- the guard -------------------------------------------------------------------------------


def major_minor(version: str) -> tuple[int, int] | None:
    v = elfinfo.semver(version)
    return (v[0], v[1]) if v else None


def _go_version(read: elfinfo.Reader) -> str:
    try:
        elf = elfinfo.read_elf(read)
    except (elfinfo.NotElf, OSError, IndexError, ValueError):
        return ""
    info = elfinfo.go_buildinfo(read, elf)
    if info is None:
        return ""
    return elfinfo.module_version(info, *CONTAINERD_MODULES) or ""


def find_tools(bin_dir: Path) -> Tools | None:
    containerd, ctr = bin_dir / "containerd", bin_dir / "ctr"
    if not (containerd.is_file() and ctr.is_file()):
        return None
    with containerd.open("rb") as f:

        def read(offset: int, size: int) -> bytes:
            f.seek(offset)
            return f.read(size)

        version = _go_version(read)
    return Tools(containerd, ctr, version)


def _dig(data: object, *keys: str) -> object:
    for k in keys:
        if not isinstance(data, dict):
            return None
        data = data.get(k)
    return data


def image_runtime(t: Target) -> ImageRuntime | None:
    """The image's containerd: its version (ELF build information) and the root and
    snapshotter its configuration gives the CRI plugin. None when there is no containerd."""
    binary = which(t, "containerd")
    if binary is None:
        return None
    version = _go_version(lambda offset, size: t.read(binary, offset, size))
    problems: list[str] = []
    config: dict[str, object] = {}
    real = resolve(t, CONTAINERD_CONFIG)
    if real is not None and t.kind(real) == "file":
        try:
            config = tomllib.loads(t.read(real).decode("utf-8"))
        except (UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
            problems.append(f"{CONTAINERD_CONFIG} is not readable TOML ({e})")
    if config.get("imports"):
        problems.append(
            f"{CONTAINERD_CONFIG} imports other files (imports = {config['imports']!r}),"
            " which kubeinit-build does not follow"
        )
    version_key = config.get("version", 1)
    if version_key in (2,):  # containerd 1.x layout, still read by 2.x
        snapshotter = _dig(
            config, "plugins", "io.containerd.grpc.v1.cri", "containerd", "snapshotter"
        )
    else:
        snapshotter = _dig(config, "plugins", "io.containerd.cri.v1.images", "snapshotter")
    if _dig(config, "plugins", "io.containerd.snapshotter.v1.overlayfs", "root_path"):
        problems.append("the overlayfs snapshotter has its own root_path")
    disabled = config.get("disabled_plugins") or []
    if isinstance(disabled, list) and any("snapshotter" in str(p) for p in disabled):
        problems.append(f"snapshotter plugins are disabled ({disabled!r})")
    return ImageRuntime(
        binary=binary,
        version=version,
        root=str(config.get("root") or CONTAINERD_ROOT),
        snapshotter=str(snapshotter or DEFAULT_SNAPSHOTTER),
        problems=tuple(problems),
    )


def decide(t: Target, arch: str, tools: Tools | None, *, host_arch: str = "") -> Decision:
    """Unpacked into the image's store, or (with the reason) archives imported at first
    boot."""
    host_arch = host_arch or platform.machine()

    def archives(reason: str, runtime: ImageRuntime | None = None) -> Decision:
        return Decision(MODE_ARCHIVES, reason, tools=tools, runtime=runtime)

    runtime = image_runtime(t)
    if runtime is None:
        return archives("the image has no containerd on the node's PATH")
    if tools is None:
        return archives(
            "no containerd and ctr on the build host to unpack with (run hack/k8s-binaries)",
            runtime,
        )
    theirs, ours = major_minor(runtime.version), major_minor(tools.version)
    if theirs is None:
        return archives(f"cannot tell the version of the image's {runtime.binary}", runtime)
    if ours is None:
        return archives(f"cannot tell the version of the build host's {tools.containerd}", runtime)
    if theirs != ours:
        return archives(
            f"the image's containerd is {runtime.version}, the build host's is {tools.version}:"
            " a store is only written for the same major.minor",
            runtime,
        )
    if runtime.problems:
        return archives(runtime.problems[0], runtime)
    if runtime.root != CONTAINERD_ROOT:
        return archives(
            f"the image's containerd root is {runtime.root}, not {CONTAINERD_ROOT}", runtime
        )
    if runtime.snapshotter not in WRITABLE_SNAPSHOTTERS:
        return archives(
            f"the image's containerd uses the {runtime.snapshotter} snapshotter;"
            f" kubeinit-build writes stores for {', '.join(WRITABLE_SNAPSHOTTERS)}",
            runtime,
        )
    if arch != host_arch or arch not in OCI_ARCH:
        return archives(f"the image is {arch}, the build host {host_arch}", runtime)
    earlier_build = resolve(t, f"{CONTAINERD_ROOT}/{MARKER}") is not None
    if resolve(t, f"{CONTAINERD_ROOT}/{META_DB}") is not None and not earlier_build:
        return archives(
            f"the image already has a containerd store ({CONTAINERD_ROOT}/{META_DB});"
            " kubeinit-build does not merge into it",
            runtime,
        )
    return Decision(MODE_UNPACKED, "", runtime.snapshotter, tools, runtime)


# --- making the store on the build host ------------------------------------------------------


def scratch_config(scratch: Path) -> str:
    """containerd's configuration for the scratch run: its own root, state and socket; no CRI,
    NRI or snapshotters other than the one used (nothing here runs containers)."""
    disabled = [
        "io.containerd.grpc.v1.cri",
        "io.containerd.cri.v1.runtime",
        "io.containerd.cri.v1.images",
        "io.containerd.podsandbox.controller.v1.podsandbox",
        "io.containerd.nri.v1.nri",
        *(
            f"io.containerd.snapshotter.v1.{s}"
            for s in ("btrfs", "zfs", "devmapper", "blockfile", "erofs", "native")
        ),
    ]
    quoted = ", ".join(f"'{p}'" for p in disabled)
    return (
        "version = 3\n"
        f"root = '{scratch}/root'\n"
        f"state = '{scratch}/state'\n"
        f"disabled_plugins = [{quoted}]\n\n"
        f"[grpc]\n  address = '{scratch}/containerd.sock'\n\n"
        f"[ttrpc]\n  address = '{scratch}/containerd.sock.ttrpc'\n"
    )


@dataclass(frozen=True)
class Listed:
    digest: str
    labels: Mapping[str, str]
    complete: bool = False
    unpacked: bool = False


def parse_listing(text: str) -> dict[str, Listed]:
    """The script's output: `ctr images check` and `ctr images ls` tables (tabwriter columns;
    SIZE and STATUS hold spaces, so only the first three and the last column are read)."""
    sections: dict[str, list[str]] = {}
    current = ""
    for line in text.splitlines():
        if line.startswith("--- "):
            current = line[4:].strip()
            continue
        if current and line.strip():
            sections.setdefault(current, []).append(line)
    checked: dict[str, tuple[bool, bool]] = {}
    for line in sections.get("images check", [])[1:]:
        f = line.split()
        if len(f) >= 5:
            checked[f[0]] = (f[3] == "complete", f[-1] == "true")
    out: dict[str, Listed] = {}
    for line in sections.get("images ls", [])[1:]:
        f = line.split()
        if len(f) < 4:
            continue
        labels = {}
        if f[-1] != "-":
            for kv in f[-1].split(","):
                k, _, v = kv.partition("=")
                labels[k] = v
        complete, unpacked = checked.get(f[0], (False, False))
        out[f[0]] = Listed(f[2], labels, complete, unpacked)
    return out


def make_store(
    tools: Tools,
    archives: Sequence[Path],
    images: Sequence[str],
    scratch: Path,
    *,
    arch: str,
    snapshotter: str = DEFAULT_SNAPSHOTTER,
    expect: Mapping[str, str] | None = None,
) -> Store:
    """Import and unpack `archives` with the real containerd in a confined scratch root;
    check that every one of `images` is there, complete, unpacked, pinned and (when `expect`
    knows it) under the digest its archive's index.json gives."""
    scratch.mkdir(parents=True, exist_ok=True)
    config = scratch / "config.toml"
    config.write_text(scratch_config(scratch))
    log = scratch / "containerd.log"
    res = run(
        [
            "unshare",
            "--pid",
            "--mount",
            "--net",
            "--fork",
            "--kill-child",
            "--propagation",
            "private",
            "--",
            "/bin/sh",
            SCRIPT,
            tools.containerd.parent,
            config,
            scratch / "containerd.sock",
            f"linux/{OCI_ARCH[arch]}",
            snapshotter,
            log,
            *archives,
        ],
        timeout=UNPACK_TIMEOUT,
        check=False,
    )
    if res.returncode != 0:
        last = (res.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise PhaseFailed(
            f"unpacking the images with containerd {tools.version} failed: {last}",
            hint=f"see {log}; or build with the archives imported at first boot"
            " (the guard's fallback) by removing the containerd this build uses",
        )
    listed = parse_listing(res.stdout)
    problems = []
    for image in images:
        got = listed.get(image)
        pinned = PINNED_LABEL.partition("=")
        if got is None:
            problems.append(f"{image} is not in the store")
        elif not (got.complete and got.unpacked):
            problems.append(f"{image} is not complete and unpacked ({snapshotter})")
        elif got.labels.get(pinned[0]) != pinned[2]:
            problems.append(f"{image} is not labelled {PINNED_LABEL}")
        elif expect and expect.get(image) and expect[image] != got.digest:
            problems.append(f"{image} is {got.digest}, its archive says {expect[image]}")
    if problems:
        raise PhaseFailed(
            f"containerd {tools.version} did not store the images as expected: {problems[0]}"
            + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""),
            hint=f"see {log}",
        )
    root = scratch / "root"
    parts = [p.format(snapshotter=snapshotter) for p in STORE_PARTS]
    for entry in list(root.iterdir()):
        if entry.name not in parts:
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
    marker = {"containerd": tools.version, "snapshotter": snapshotter,
              "images": {i: listed[i].digest for i in sorted(images)}}  # fmt: skip
    (root / MARKER).write_text(json.dumps(marker, indent=2, sort_keys=True) + "\n")
    xattrs, whiteouts, size = _survey(root)
    return Store(
        tree=root,
        images={i: listed[i].digest for i in images},
        snapshotter=snapshotter,
        containerd=tools.version,
        disk_bytes=size,
        xattrs=xattrs,
        whiteouts=tuple(whiteouts),
    )


def _survey(root: Path) -> tuple[dict[str, dict[str, bytes]], list[str], int]:
    """Every xattr outside the user namespace, every whiteout, and the bytes on disk."""
    xattrs: dict[str, dict[str, bytes]] = {}
    whiteouts: list[str] = []
    size = 0
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [*dirnames, *filenames]:
            p = Path(dirpath) / name
            st = os.lstat(p)
            rel = p.relative_to(root).as_posix()
            size += st.st_blocks * 512
            if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
                whiteouts.append(rel)
            if stat.S_ISLNK(st.st_mode):
                continue
            found = {
                k: os.getxattr(p, k, follow_symlinks=False)
                for k in os.listxattr(p, follow_symlinks=False)
                if not k.startswith("user.")
            }
            if found:
                xattrs[rel] = found
    return xattrs, sorted(whiteouts), size


# --- writing it into the target --------------------------------------------------------------


def write_store(t: Target, store: Store) -> None:
    """Copy the store to the image's containerd root (which `decide` found without one)."""
    if isinstance(t, TreeTarget):
        _write_tree(t, store)
    elif isinstance(t, GuestTarget):
        _write_guest(t, store)
    else:
        raise TypeError(f"unknown target {t!r}")


def _write_tree(t: TreeTarget, store: Store) -> None:
    parent = PurePosixPath(CONTAINERD_ROOT).parent
    real_parent = resolve(t, str(parent))
    if real_parent is None:
        t_parent = paths.under(t.root, parent)
        t_parent.mkdir(parents=True, exist_ok=True, mode=0o755)
        real_parent = str(parent)
    final = paths.under(t.root, f"{real_parent}/{PurePosixPath(CONTAINERD_ROOT).name}")
    staging = final.parent / f".{final.name}.kubeinit-build.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    # cp -a: owners, modes, times, hard links, device nodes and every xattr (as root)
    run(["cp", "-a", "--no-target-directory", store.tree, staging], timeout=UNPACK_TIMEOUT)
    os.chmod(staging, 0o711)  # containerd's own mode for its root
    os.sync()
    old = final.parent / f".{final.name}.kubeinit-build.old"
    if final.is_dir() and not final.is_symlink():
        if (final / MARKER).is_file():  # kubeinit-build's own store of an earlier build
            os.rename(final, old)
        elif any(final.iterdir()):
            raise PhaseFailed(
                f"{final} is not empty (another containerd store appeared while the build ran)",
                hint="build from a tree that no containerd uses",
            )
        else:
            final.rmdir()
    os.rename(staging, final)
    shutil.rmtree(old, ignore_errors=True)
    fd = os.open(final.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_guest(t: GuestTarget, store: Store) -> None:
    g = t.g
    tar = store.tree.parent / "store.tar"
    run(
        [
            "tar",
            "--create",
            "--file",
            tar,
            "--xattrs",
            "--xattrs-include=*",
            "--numeric-owner",
            "--sort=name",
            "-C",
            store.tree,
            ".",
        ],
        timeout=UNPACK_TIMEOUT,
    )
    try:
        if g.is_file(f"{CONTAINERD_ROOT}/{MARKER}"):  # kubeinit-build's own, of an earlier build
            g.rm_rf(CONTAINERD_ROOT)
        g.mkdir_p(CONTAINERD_ROOT)
        g.tar_in(str(tar), CONTAINERD_ROOT, xattrs=True, selinux=False, acls=False)
        g.chmod(0o711, CONTAINERD_ROOT)  # containerd's mode for its root (tar set the scratch's)
    except RuntimeError as err:
        raise PhaseFailed(
            f"{t.description}: writing containerd's store failed: {str(err).splitlines()[0]}",
            hint="is the image's filesystem full or read-only?",
        ) from None
    finally:
        tar.unlink(missing_ok=True)
    lost = []
    for rel, want in sorted(store.xattrs.items()):
        node = f"{CONTAINERD_ROOT}/{rel}"
        have = {str(x["attrname"]): bytes(x["attrval"]) for x in g.lgetxattrs(node)}
        lost += [f"{node} {k}" for k, v in want.items() if have.get(k) != v]
    for rel in store.whiteouts:
        st = g.lstatns(f"{CONTAINERD_ROOT}/{rel}")
        if not stat.S_ISCHR(int(st["st_mode"])) or int(st["st_rdev"]) != 0:
            lost.append(f"{CONTAINERD_ROOT}/{rel} (whiteout)")
    if lost:
        raise PhaseFailed(
            f"{t.description}: containerd's store lost {len(lost)} attributes in the copy,"
            f" first {lost[0]}",
            hint="the libguestfs appliance's tar must support --xattrs",
        )


__all__ = [
    "NAMESPACE",
    "Decision",
    "ImageRuntime",
    "Store",
    "Tools",
    "decide",
    "find_tools",
    "make_store",
    "write_store",
]
