"""Fixtures for the image builder: the real base image (hack/base-image: debootstrap bookworm,
systemd, the real kubelet and containerd 2.x, cached by recipe hash), tiny but real OCI image
archives, and ONE image build shared by the tests that inspect its result (an appliance launch
costs ~40 s under TCG).

Results are read without libguestfs: the output is converted to a sparse raw file and its root
partition is read with debugfs (e2fsprogs), so the builder's own access path is not used to
check itself.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import pytest

from kubeinit.config import load_config
from kubeinit.preflight import control_plane_images

REPO = Path(__file__).resolve().parents[2]
CLUSTER_YAML = Path(__file__).parent / "data" / "cluster.yaml"
SECTOR = 512


@dataclass(frozen=True)
class BaseImage:
    qcow2: Path
    tree: Path  # the same content as a directory: copy with `cp -al`, never write into it


@dataclass(frozen=True)
class Build:
    rc: int
    stdout: str
    stderr: str
    seconds: float


def build(*args: str | Path, timeout: float = 1800, env: dict[str, str] | None = None) -> Build:
    """Run the real command line (`python -m builder` = kubeinit-build)."""
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "builder", *map(str, args)], cwd=REPO,
                          capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})}, check=False)
    return Build(proc.returncode, proc.stdout, proc.stderr, time.monotonic() - start)


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def tmp_leftovers(directory: Path) -> list[Path]:
    return sorted(directory.glob(".*.kubeinit-build.*"))


@pytest.fixture(scope="session")
def base_image() -> BaseImage:
    out = subprocess.run([str(REPO / "hack" / "base-image")], capture_output=True, text=True,
                         timeout=3600, check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    qcow2 = Path(out.stdout.strip().splitlines()[-1])
    assert qcow2.is_file() and (qcow2.parent / "tree" / "usr/bin/kubelet").is_file()
    return BaseImage(qcow2, qcow2.parent / "tree")


@pytest.fixture
def tree_copy(base_image: BaseImage, tmp_path: Path) -> Path:
    """A private copy of the base tree, made of hard links (instant). The builder replaces
    files by rename, so the shared tree is never modified; `test_tree_build_leaves_the_shared_
    tree_alone` checks that."""
    dest = tmp_path / "root"
    subprocess.run(["cp", "-al", str(base_image.tree), str(dest)], check=True)
    return dest


# --- OCI archives ----------------------------------------------------------------------------

def _blob(files: dict[str, bytes], data: bytes) -> dict[str, object]:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    files[f"blobs/sha256/{digest.split(':')[1]}"] = data
    return {"digest": digest, "size": len(data)}


def make_oci_archive(path: Path, ref: str) -> None:
    """A small, complete OCI image layout archive (as `ctr images export` writes): one layer
    holding /image-name, a config, a manifest, index.json naming the image."""
    layer_buf = io.BytesIO()
    with tarfile.open(fileobj=layer_buf, mode="w", format=tarfile.GNU_FORMAT) as layer:
        body = ref.encode() + b"\n"
        info = tarfile.TarInfo("image-name")
        info.size, info.mtime, info.mode = len(body), 0, 0o644
        layer.addfile(info, io.BytesIO(body))
    files: dict[str, bytes] = {"oci-layout": b'{"imageLayoutVersion":"1.0.0"}'}
    layer_desc = _blob(files, layer_buf.getvalue())
    config = {"architecture": "amd64", "os": "linux",
              "rootfs": {"type": "layers", "diff_ids": [layer_desc["digest"]]},
              "config": {"Cmd": ["/image-name"]}}
    config_desc = _blob(files, json.dumps(config, sort_keys=True).encode())
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                           **config_desc},
                "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                            **layer_desc}]}
    manifest_desc = _blob(files, json.dumps(manifest, sort_keys=True).encode())
    index = {"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json", **manifest_desc,
        "annotations": {"io.containerd.image.name": ref,
                        "org.opencontainers.image.ref.name": ref.rsplit(":", 1)[1]}}]}
    files["index.json"] = json.dumps(index, sort_keys=True).encode()
    with tarfile.open(path, "w", format=tarfile.GNU_FORMAT) as tar:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            tar.addfile(info, io.BytesIO(data))


def pinned_images(config_path: Path | None = CLUSTER_YAML) -> tuple[str, ...]:
    return control_plane_images(load_config(config_path))


@pytest.fixture(scope="session")
def oci_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("oci")
    for ref in pinned_images():
        make_oci_archive(d / (ref.rsplit("/", 1)[1].replace(":", "_") + ".tar"), ref)
    # an archive of an image the manifests do not use: must stay out of the image
    make_oci_archive(d / "unrelated.tar", "registry.example.com/unrelated:v1")
    return d


# --- the shared image build ------------------------------------------------------------------

@dataclass(frozen=True)
class BuiltImage:
    base: BaseImage
    base_sha_before: str
    output: Path
    result: Build


@pytest.fixture(scope="session")
def built(base_image: BaseImage, oci_dir: Path,
          tmp_path_factory: pytest.TempPathFactory) -> BuiltImage:
    before = sha256(base_image.qcow2)
    out = tmp_path_factory.mktemp("built") / "node.qcow2"
    result = build("--image", base_image.qcow2, "--output", out, "--config", CLUSTER_YAML,
                   "--images", oci_dir)
    assert result.rc == 0, result.stderr[-4000:]
    return BuiltImage(base_image, before, out, result)


def to_raw(qcow2: Path, dest: Path) -> Path:
    subprocess.run(["qemu-img", "convert", "-f", "qcow2", "-O", "raw", str(qcow2), str(dest)],
                   check=True, timeout=900)
    return dest


def root_partition_offset(raw: Path) -> int:
    """Byte offset of the partition labelled `root` in the GPT of `raw` (parsed here, not
    with the builder's code)."""
    with raw.open("rb") as f:
        f.seek(SECTOR)
        header = f.read(92)
        assert header[:8] == b"EFI PART", "no GPT"
        entries_lba = int.from_bytes(header[72:80], "little")
        count = int.from_bytes(header[80:84], "little")
        size = int.from_bytes(header[84:88], "little")
        f.seek(entries_lba * SECTOR)
        table = f.read(count * size)
    for i in range(count):
        e = table[i * size:(i + 1) * size]
        name = e[56:128].decode("utf-16-le").rstrip("\0")
        if name == "root":
            return int.from_bytes(e[32:40], "little") * SECTOR
    raise AssertionError("no partition named root")


@dataclass(frozen=True)
class RawImage:
    raw: Path
    offset: int

    @property
    def device(self) -> str:
        return f"{self.raw}?offset={self.offset}"

    def debugfs(self, request: str) -> str:
        out = subprocess.run(["debugfs", "-R", request, self.device], capture_output=True,
                             text=True, check=True, timeout=300)
        return out.stdout

    def cat(self, path: str) -> bytes:
        out = subprocess.run(["debugfs", "-R", f"cat {path}", self.device],
                             capture_output=True, check=True, timeout=300)
        return out.stdout

    def rdump(self, path: str, dest: Path) -> None:
        dest.mkdir(parents=True, exist_ok=True)
        subprocess.run(["debugfs", "-R", f"rdump {path} {dest}", self.device],
                       capture_output=True, check=True, timeout=600)


@pytest.fixture(scope="session")
def built_raw(built: BuiltImage, tmp_path_factory: pytest.TempPathFactory) -> RawImage:
    raw = to_raw(built.output, tmp_path_factory.mktemp("raw") / "node.raw")
    return RawImage(raw, root_partition_offset(raw))


@pytest.fixture(scope="session")
def image_root(built_raw: RawImage, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What the build put in the image (and what systemd needs around it), copied out with
    debugfs into a directory laid out like the image's root."""
    root = tmp_path_factory.mktemp("image-root")
    for d in ("/etc", "/usr/lib/kubeinit", "/usr/lib/systemd", "/usr/bin", "/var/lib"):
        built_raw.rdump(d, root / PurePosixPath(d).parent.relative_to("/"))
    for link, target in (("lib", "usr/lib"), ("bin", "usr/bin"), ("sbin", "usr/sbin")):
        (root / link).symlink_to(target)
    return root
