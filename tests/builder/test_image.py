"""builder/image.py: which files count as images; the work copy next to the output."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
from pathlib import Path

import pytest

from builder.image import WorkCopy, check_image_file, remove_stale
from kubeinit.errors import InvalidInput, StateUnreadable

pytestmark = pytest.mark.real
REPO = Path(__file__).resolve().parents[2]


def test_raw_needs_a_partition_table_or_filesystem(tmp_path: Path) -> None:
    disk = tmp_path / "disk.raw"
    with disk.open("wb") as f:
        f.truncate(8 << 20)
        f.seek(510)
        f.write(b"\x55\xaa")
    assert check_image_file(disk).format == "raw"
    zeros = tmp_path / "zeros.raw"
    zeros.write_bytes(b"\0" * 4096)
    with pytest.raises(StateUnreadable, match="not a disk image"):
        check_image_file(zeros)


def test_backing_files_and_other_formats_are_refused(tmp_path: Path) -> None:
    base = tmp_path / "base.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(base), "64M"], check=True)
    top = tmp_path / "top.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(base), "-F", "qcow2",
                    str(top)], check=True)
    with pytest.raises(InvalidInput, match="backing file"):
        check_image_file(top)
    vdi = tmp_path / "disk.vdi"
    subprocess.run(["qemu-img", "create", "-q", "-f", "vdi", str(vdi), "64M"], check=True)
    with pytest.raises(InvalidInput, match="'vdi' is not supported"):
        check_image_file(vdi)


def test_qcow2_with_an_external_data_file_is_refused(tmp_path: Path) -> None:
    """Issue 9 finding 5: the work copy would still read and write a host file of the image
    author's choosing."""
    host_file = tmp_path / "host-data.raw"
    img = tmp_path / "disk.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-o",
                    f"data_file={host_file}", str(img), "64M"], check=True)
    assert host_file.exists()
    with pytest.raises(InvalidInput, match=r"external file \(.*host-data.raw\)") as e:
        check_image_file(img)
    assert "qemu-img convert" in e.value.hint
    # through the real command line: exit 2, one error line and a hint, nothing written
    before = host_file.read_bytes()
    res = subprocess.run([sys.executable, "-m", "builder", "--image", str(img), "--output",
                          str(tmp_path / "out.qcow2")], cwd=REPO, capture_output=True,
                         text=True, timeout=120, check=False)
    assert res.returncode == 2, res.stderr
    assert "external file" in res.stderr and "hint:" in res.stderr
    assert "Traceback" not in res.stderr
    assert not (tmp_path / "out.qcow2").exists() and host_file.read_bytes() == before


def test_a_protocol_looking_file_name_is_read_as_a_file(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """A file named like a qemu protocol is passed as an absolute path: qemu opens that file,
    it does not connect where the name says."""
    monkeypatch.chdir(tmp_path)
    name = "nbd:127.0.0.1:9"  # as a relative name, qemu would dial an NBD server
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "./" + name, "64M"], check=True)
    info = check_image_file(Path(name))
    assert info.format == "qcow2" and info.path == tmp_path / name


def test_work_copy_commit_and_stale_cleanup(tmp_path: Path) -> None:
    src = tmp_path / "src.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(src), "64M"], check=True)
    os.chmod(src, 0o640)
    final = tmp_path / "out.qcow2"
    stale = tmp_path / ".out.qcow2.kubeinit-build.1.tmp"
    stale.write_text("left by a killed build")
    busy = tmp_path / ".out.qcow2.kubeinit-build.2.tmp"
    busy.write_text("a build still running")
    fd = os.open(busy, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        work = WorkCopy(check_image_file(src), final)
        work.create()
        assert not stale.exists() and busy.exists()  # only unlocked leftovers go
        assert not final.exists() and work.path.read_bytes() == src.read_bytes()
        work.commit()
        assert final.read_bytes() == src.read_bytes() and not work.path.exists()
        assert final.stat().st_mode & 0o777 == 0o640
    finally:
        os.close(fd)
    assert remove_stale(final) == [busy]
