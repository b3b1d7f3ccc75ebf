"""builder/archives.py: image names come from inside the archives; none may be missing."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest

from builder import archives
from kubeinit.errors import InvalidInput
from tests.builder.conftest import make_oci_archive


def _docker_archive(path: Path, tags: list[str]) -> None:
    manifest = json.dumps([{"Config": "c.json", "RepoTags": tags, "Layers": []}]).encode()
    with tarfile.open(path, "w") as tar:
        info = tarfile.TarInfo("manifest.json")
        info.size = len(manifest)
        tar.addfile(info, io.BytesIO(manifest))


def test_names_come_from_index_json_and_docker_manifests(tmp_path: Path) -> None:
    make_oci_archive(tmp_path / "whatever-name.tar", "registry.k8s.io/pause:3.10.2")
    _docker_archive(tmp_path / "etcd.tar", ["registry.k8s.io/etcd:3.7.0-0"])
    assert archives.read_archive(tmp_path / "whatever-name.tar").images == {
        "registry.k8s.io/pause:3.10.2"}
    found = archives.match_archives(tmp_path, ("registry.k8s.io/etcd:3.7.0-0",
                                               "registry.k8s.io/pause:3.10.2"))
    assert found == {"registry.k8s.io/etcd:3.7.0-0": tmp_path / "etcd.tar",
                     "registry.k8s.io/pause:3.10.2": tmp_path / "whatever-name.tar"}
    assert archives.node_path(tmp_path / "etcd.tar") == "/usr/lib/kubeinit/images/etcd.tar"


def test_a_missing_image_is_named(tmp_path: Path) -> None:
    # the file name says pause, the archive holds another tag: the content decides
    make_oci_archive(tmp_path / "pause_3.10.2.tar", "registry.k8s.io/pause:3.9")
    with pytest.raises(InvalidInput, match=r"no archive of registry\.k8s\.io/pause:3\.10\.2"):
        archives.match_archives(tmp_path, ("registry.k8s.io/pause:3.10.2",))


def test_not_an_archive(tmp_path: Path) -> None:
    (tmp_path / "junk.tar").write_text("not a tar file")
    with pytest.raises(InvalidInput, match="not a readable image archive"):
        archives.match_archives(tmp_path, ("registry.k8s.io/pause:3.10.2",))


def test_digest(tmp_path: Path) -> None:
    f = tmp_path / "x"
    f.write_bytes(b"abc")
    assert archives.sha256_file(f) == (
        "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")


def test_digests_are_the_index_descriptors_containerd_records(tmp_path: Path) -> None:
    make_oci_archive(tmp_path / "a.tar", "registry.k8s.io/pause:3.10.2")
    _docker_archive(tmp_path / "d.tar", ["registry.k8s.io/etcd:3.7.0-0"])
    with tarfile.open(tmp_path / "a.tar") as tar:
        f = tar.extractfile("index.json")
        assert f is not None
        want = json.loads(f.read())["manifests"][0]["digest"]
    got = archives.image_digests({"registry.k8s.io/pause:3.10.2": tmp_path / "a.tar",
                                  "registry.k8s.io/etcd:3.7.0-0": tmp_path / "d.tar"})
    # a docker archive has no manifest digest before containerd makes one at import
    assert got == {"registry.k8s.io/pause:3.10.2": want, "registry.k8s.io/etcd:3.7.0-0": ""}
    assert want.startswith("sha256:") and len(want) == 71
