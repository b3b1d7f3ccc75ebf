"""builder/cli.py: bad input gets one clear error line, a hint and a fixed exit code, and leaves
every file as it was; a build killed with SIGKILL leaves the original image intact."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.builder.conftest import (
    CLUSTER_YAML,
    REPO,
    BaseImage,
    build,
    make_oci_archive,
    pinned_images,
    sha256,
    tmp_leftovers,
)

pytestmark = [pytest.mark.real]


@dataclass
class Case:
    args: list[str | Path]
    exit_code: int
    error: str  # a fragment of the error line
    watched: list[Path]  # files that must be byte-for-byte unchanged
    absent: list[Path]  # paths that must not exist afterwards


Setup = Callable[[Path, BaseImage], Case]


def _text_file(tmp: Path, base: BaseImage) -> Case:
    f = tmp / "notes.qcow2"
    f.write_text("this is not a disk image\n" * 100)
    return Case(["--image", f, "--output", tmp / "out.qcow2"], 3, "not a disk image", [f],
                [tmp / "out.qcow2"])


def _missing_file(tmp: Path, base: BaseImage) -> Case:
    return Case(["--image", tmp / "nope.qcow2"], 2, "no such file", [], [tmp / "nope.qcow2"])


def _truncated(tmp: Path, base: BaseImage) -> Case:
    f = tmp / "cut.qcow2"
    with base.qcow2.open("rb") as src, f.open("wb") as dst:
        dst.write(src.read(100 << 20))
    return Case(["--image", f], 3, "the qcow2 image is", [f], [])


def _corrupt(tmp: Path, base: BaseImage) -> Case:
    f = tmp / "corrupt.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(f), "1G"], check=True)
    with f.open("r+b") as fh:  # the L1 table offset (QCowHeader.l1_table_offset)
        fh.seek(40)
        fh.write(b"\xff" * 8)
    return Case(["--image", f], 3, "not a readable disk image", [f], [])


def _invalid_config(tmp: Path, base: BaseImage) -> Case:
    cfg = tmp / "bad.yaml"
    cfg.write_text("apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\n"
                   "networking:\n  serviceSubnet: 10.96.0.0/33\n")
    return Case(["--image", base.qcow2, "--output", tmp / "o.qcow2", "--config", cfg], 2,
                "serviceSubnet", [base.qcow2], [tmp / "o.qcow2"])


def _token_in_config(tmp: Path, base: BaseImage) -> Case:
    cfg = tmp / "token.yaml"
    cfg.write_text("apiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration\n"
                   "bootstrapTokens:\n- token: abcdef.0123456789abcdef\n")
    root = tmp / "root"
    root.mkdir()
    return Case(["--root", root, "--config", cfg], 2, "every clone of the image would share it",
                [cfg], [root / "usr"])


def _images_missing_one(tmp: Path, base: BaseImage) -> Case:
    d = tmp / "images"
    d.mkdir()
    wanted = pinned_images()
    for ref in wanted[:-1]:
        make_oci_archive(d / (ref.rsplit("/", 1)[1].replace(":", "_") + ".tar"), ref)
    return Case(["--image", base.qcow2, "--output", tmp / "o.qcow2", "--config", CLUSTER_YAML,
                 "--images", d], 2, f"has no archive of {wanted[-1]}", [base.qcow2],
                [tmp / "o.qcow2"])


def _output_without_image(tmp: Path, base: BaseImage) -> Case:
    return Case(["--root", tmp, "--output", tmp / "o.qcow2"], 2, "--output is for --image",
                [], [tmp / "o.qcow2"])


def _kubelet_of_another_minor(tmp: Path, base: BaseImage) -> Case:
    root = tmp / "root"
    subprocess.run(["cp", "-al", str(base.tree), str(root)], check=True)
    return Case(["--root", root, "--kubernetes-version", "v1.36.3"], 2,
                "[kubelet]", [root / "etc/machine-id"], [root / "usr/lib/kubeinit"])


def _no_systemd(tmp: Path, base: BaseImage) -> Case:
    root = tmp / "root"
    subprocess.run(["cp", "-al", str(base.tree), str(root)], check=True)
    (root / "usr/lib/systemd/systemd").unlink()  # a hard link: the shared tree keeps its copy
    return Case(["--root", root], 2, "[systemd]", [root / "etc/machine-id"],
                [root / "usr/lib/kubeinit"])


CASES: dict[str, Setup] = {
    "missing image file": _missing_file,
    "file that is not a disk image": _text_file,
    "truncated qcow2": _truncated,
    "corrupt qcow2 header": _corrupt,
    "invalid cluster config": _invalid_config,
    "bootstrap token in the config": _token_in_config,
    "images dir missing an image": _images_missing_one,
    "output with a tree": _output_without_image,
    "kubelet of another minor": _kubelet_of_another_minor,
    "tree without systemd": _no_systemd,
}


def _assert_clear_error(stderr: str, fragment: str) -> None:
    assert "Traceback" not in stderr, stderr
    lines = stderr.strip().splitlines()
    errors = [ln for ln in lines if ln.startswith("kubeinit-build: error:")]
    assert errors and fragment in "\n".join(errors), stderr
    assert lines[-1].startswith("hint: "), stderr
    assert lines[-2].startswith("kubeinit-build: error:"), stderr


@pytest.mark.parametrize("name", list(CASES), ids=list(CASES))
def test_bad_input_is_one_error_with_a_hint_and_changes_nothing(
        name: str, tmp_path: Path, base_image: BaseImage) -> None:
    case = CASES[name](tmp_path, base_image)
    before = {p: sha256(p) for p in case.watched}
    res = build(*case.args, timeout=600)
    assert res.rc == case.exit_code, res.stderr
    _assert_clear_error(res.stderr, case.error)
    assert {p: sha256(p) for p in case.watched} == before
    for p in case.absent:
        assert not p.exists(), p
    assert tmp_leftovers(tmp_path) == [] and tmp_leftovers(base_image.qcow2.parent) == []


def test_unwritable_output_directory(tmp_path: Path, base_image: BaseImage) -> None:
    # root writes anywhere mode bits allow nothing; an immutable directory stops root too
    locked = tmp_path / "locked"
    locked.mkdir()
    subprocess.run(["chattr", "+i", str(locked)], check=True)
    try:
        before = sha256(base_image.qcow2)
        res = build("--image", base_image.qcow2, "--output", locked / "o.qcow2")
        assert res.rc == 2, res.stderr
        _assert_clear_error(res.stderr, f"cannot write to {locked}")
        assert os.listdir(locked) == []
        assert sha256(base_image.qcow2) == before
    finally:
        subprocess.run(["chattr", "-i", str(locked)], check=True)


@pytest.fixture
def small_filesystem(tmp_path: Path, base_image: BaseImage) -> Iterator[Path]:
    """The base tree seen through an overlay whose writable layer is a 16 MiB tmpfs: a real
    filesystem that is nearly full, without copying the tree."""
    upper = tmp_path / "upper"
    upper.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(upper)], check=True)
    (upper / "data").mkdir()
    (upper / "work").mkdir()
    root = tmp_path / "root"
    root.mkdir()
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o",
                    f"lowerdir={base_image.tree},upperdir={upper}/data,workdir={upper}/work",
                    str(root)], check=True)
    try:
        yield root
    finally:
        subprocess.run(["umount", str(root)], check=True)
        subprocess.run(["umount", str(upper)], check=True)


def test_full_filesystem(small_filesystem: Path) -> None:
    res = build("--root", small_filesystem)
    assert res.rc == 2, res.stderr
    _assert_clear_error(res.stderr, "[free-space]")
    assert not (small_filesystem / "usr/lib/kubeinit").exists()
    assert (small_filesystem / "etc/machine-id").stat().st_size == 0


@pytest.mark.slow
def test_image_with_no_linux(tmp_path: Path) -> None:
    empty = tmp_path / "empty.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(empty), "256M"], check=True)
    before = sha256(empty)
    res = build("--image", empty)
    assert res.rc == 3, res.stderr
    _assert_clear_error(res.stderr, "no Linux operating system found")
    assert sha256(empty) == before and tmp_leftovers(tmp_path) == []


@pytest.mark.slow
def test_sigkill_mid_build_leaves_the_image_intact_then_a_rebuild_succeeds(
        tmp_path: Path, base_image: BaseImage) -> None:
    image = tmp_path / "node.qcow2"
    subprocess.run(["cp", str(base_image.qcow2), str(image)], check=True)
    before, inode = sha256(image), image.stat().st_ino
    proc = subprocess.Popen([sys.executable, "-m", "builder", "--image", str(image)], cwd=REPO,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    assert proc.stderr is not None
    seen = []
    for line in proc.stderr:  # kill while the payload is being written into the copy
        seen.append(line)
        if line.startswith("kubeinit-build: check free space"):
            time.sleep(2)
            break
    assert proc.poll() is None, "".join(seen)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 30  # libguestfs' recovery process stops the appliance
    while _session_processes(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.5)
    left = _session_processes(proc.pid)
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    assert left == [], "the appliance outlived the killed build"
    assert sha256(image) == before and image.stat().st_ino == inode
    assert len(tmp_leftovers(tmp_path)) == 1  # the abandoned work copy
    check = subprocess.run(["qemu-img", "check", str(image)], capture_output=True, check=False)
    assert check.returncode == 0

    res = build("--image", image)  # in place, this time to the end
    assert res.rc == 0, res.stderr
    assert tmp_leftovers(tmp_path) == []  # the next build removed the leftover
    assert image.stat().st_ino != inode and sha256(image) != before  # replaced by rename


def _session_processes(sid: int) -> list[int]:
    out = subprocess.run(["ps", "-e", "-o", "pid=,sid="], capture_output=True, text=True,
                         check=True).stdout
    return [int(pid) for pid, s in (ln.split() for ln in out.splitlines()) if int(s) == sid]


@pytest.mark.slow
def test_image_dry_run_lists_the_payload_and_writes_nothing(tmp_path: Path,
                                                           base_image: BaseImage) -> None:
    before = sha256(base_image.qcow2)
    res = build("--image", base_image.qcow2, "--output", tmp_path / "o.qcow2", "--dry-run")
    assert res.rc == 0, res.stderr
    assert "/usr/lib/kubeinit/profile.json" in res.stdout
    assert "/usr/lib/kubeinit/python/kubeinit/profile.py" in res.stdout
    assert "would write" in res.stderr.splitlines()[-1]
    assert sha256(base_image.qcow2) == before
    assert not (tmp_path / "o.qcow2").exists() and tmp_leftovers(tmp_path) == []
