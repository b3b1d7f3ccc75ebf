"""builder/elfinfo.py against the real binaries of the base image."""

from __future__ import annotations

from pathlib import Path

import pytest

from builder import elfinfo
from tests.builder.conftest import BaseImage

pytestmark = pytest.mark.real


def _reader(path: Path) -> elfinfo.Reader:
    def read(offset: int, size: int) -> bytes:
        with path.open("rb") as f:
            f.seek(offset)
            return f.read(size)
    return read


@pytest.mark.parametrize(("binary", "module", "version"), [
    ("usr/bin/kubelet", "k8s.io/kubernetes", "v1.37.2"),
    ("usr/local/bin/containerd", "github.com/containerd/containerd/v2", "v2.3.7"),
], ids=["kubelet", "containerd"])
def test_go_build_info_names_the_release(base_image: BaseImage, binary: str, module: str,
                                         version: str) -> None:
    read = _reader(base_image.tree / binary)
    elf = elfinfo.read_elf(read)
    assert elf.arch == "x86_64" and ".go.buildinfo" in elf.sections
    info = elfinfo.go_buildinfo(read, elf)
    assert info is not None and info.go_version.startswith("go1.")
    assert elfinfo.module_version(info, module) == version


def test_a_c_program_has_no_go_build_info(base_image: BaseImage) -> None:
    read = _reader(base_image.tree / "usr/bin/python3.11")
    elf = elfinfo.read_elf(read)
    assert elf.arch == "x86_64"
    assert elfinfo.go_buildinfo(read, elf) is None


def test_not_elf(tmp_path: Path) -> None:
    f = tmp_path / "script"
    f.write_text("#!/bin/sh\necho hi\n")
    with pytest.raises(elfinfo.NotElf):
        elfinfo.read_elf(_reader(f))


@pytest.mark.parametrize(("text", "want"), [
    ("Kubernetes v1.37.2", (1, 37, 2)),
    ("containerd github.com/containerd/containerd/v2 v2.3.7 abc", (2, 3, 7)),
    ("1.7.24~ds1", (1, 7, 24)),
    ("no version here", None),
], ids=["kubelet", "containerd", "debian", "none"])
def test_semver(text: str, want: tuple[int, int, int] | None) -> None:
    assert elfinfo.semver(text) == want
