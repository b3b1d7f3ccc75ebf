"""kubeinit/preload.py and the ImagePull check that uses it (kubeinit/preflight_net.py): the
image's preloaded archives imported into a real containerd (the pinned one from
hack/k8s-binaries, tests/tooling/containerd.py: own mount and network namespace, so nothing
could be pulled even if something tried), checked against the sha256 the profile records."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from kubeinit import paths
from kubeinit.preflight_net import SANDBOX_WARNING, image_pull_check, runtime_sandbox_image
from kubeinit.preload import NAMESPACE, Preload, import_archives, sha256_file
from tests.builder.conftest import make_oci_archive
from tests.tooling.containerd import Containerd

PAUSE = "registry.k8s.io/pause:3.10.2"
IMAGES = ("registry.k8s.io/kube-apiserver:v1.37.2", "registry.k8s.io/etcd:3.7.0-0", PAUSE)

pytestmark = pytest.mark.real


@pytest.fixture
def runtime(k8s_bin: Path, monkeypatch: pytest.MonkeyPatch,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[Containerd]:
    monkeypatch.setenv("PATH", f"{k8s_bin}:{os.environ['PATH']}")  # ctr, crictl, containerd
    scratch = Path(tmp_path_factory.mktemp("ctd"))
    with Containerd.start(k8s_bin, scratch, sandbox_image=PAUSE) as c:
        yield c


def _node(tmp_path: Path) -> tuple[Path, tuple[Preload, ...]]:
    """A node root holding one archive per image where kubeinit-build puts them, and the
    profile's preload entries for them."""
    root = tmp_path / "root"
    out = []
    for image in IMAGES:
        name = image.rsplit("/", 1)[1].split(":")[0] + ".tar"
        node_path = f"/usr/lib/kubeinit/images/{name}"
        archive = paths.under(root, node_path)
        archive.parent.mkdir(parents=True, exist_ok=True)
        make_oci_archive(archive, image)
        out.append(Preload(image, node_path, sha256_file(archive)))
    return root, tuple(out)


def _present(c: Containerd):
    return lambda image: c.crictl("inspecti", image, check=False).returncode == 0


def test_archives_are_imported_pinned_into_k8s_io_once(runtime: Containerd,
                                                       tmp_path: Path) -> None:
    root, preload = _node(tmp_path)
    assert not any(_present(runtime)(i) for i in IMAGES)
    lines: list[str] = []
    report = import_archives(runtime.endpoint, preload, root, _present(runtime), lines.append)
    assert report.errors == []
    assert report.imported == [p.archive for p in preload]
    assert len(lines) == len(IMAGES) and all(f"namespace {NAMESPACE}" in ln for ln in lines)
    listed = json.loads(runtime.crictl("images", "-o", "json").stdout)["images"]
    by_tag = {t: img for img in listed for t in img["repoTags"]}
    assert set(by_tag) == set(IMAGES)
    # pinned: the kubelet's image garbage collector never removes what this node cannot pull
    assert all(by_tag[i]["pinned"] for i in IMAGES)
    assert runtime.ctr("images", "ls", "-q", ns="default").stdout.split() == []
    again = import_archives(runtime.endpoint, preload, root, _present(runtime))
    assert again.imported == [] and again.already_present == [p.archive for p in preload]
    assert "PullImage" not in runtime.log()


def test_an_archive_that_is_not_the_built_one_is_refused(runtime: Containerd,
                                                         tmp_path: Path) -> None:
    root, preload = _node(tmp_path)
    swapped = paths.under(root, preload[0].archive)
    make_oci_archive(swapped, "registry.k8s.io/kube-apiserver:v9.9.9")
    report = import_archives(runtime.endpoint, preload, root, _present(runtime))
    assert report.imported == [p.archive for p in preload[1:]]
    assert report.errors == [
        f"the preloaded archive {swapped} has {sha256_file(swapped)}, the image was built with"
        f" {preload[0].digest}: it is damaged or was replaced"]
    assert not _present(runtime)(IMAGES[0])
    paths.under(root, preload[1].archive).unlink()
    runtime.ctr("images", "rm", IMAGES[1])
    missing = import_archives(runtime.endpoint, preload[1:2], root, _present(runtime))
    assert len(missing.errors) == 1
    assert missing.errors[0].startswith("cannot read the preloaded archive")


def test_image_pull_imports_then_checks_presence(runtime: Containerd, tmp_path: Path) -> None:
    root, preload = _node(tmp_path)
    bare = image_pull_check(runtime.endpoint, IMAGES, "IfNotPresent")
    assert bare.check()[1][0].startswith(f"{len(IMAGES)} of {len(IMAGES)} images are missing")
    imported: list[str] = []
    check = image_pull_check(runtime.endpoint, IMAGES, "IfNotPresent", preload=preload[:2],
                             root=root, imported=imported)
    warnings, errors = check.check()
    assert warnings == []
    # the archive of the last image is not in the profile: reported, never pulled
    assert errors == [f"1 of {len(IMAGES)} images are missing from the container runtime (they"
                      f" are preloaded into the image, never pulled): {PAUSE}"]
    assert imported == [p.archive for p in preload[:2]]
    full = image_pull_check(runtime.endpoint, IMAGES, "IfNotPresent", preload=preload,
                            root=root, sandbox_image=PAUSE)
    assert full.check() == ([], [])
    assert "PullImage" not in runtime.log()


def test_the_runtime_sandbox_image_is_read_from_containerd_config(runtime: Containerd,
                                                                   tmp_path: Path) -> None:
    root = tmp_path / "root"
    # no config file: containerd's own default
    assert runtime_sandbox_image(runtime.endpoint, root) == "registry.k8s.io/pause:3.10.2"
    cfg = paths.under(root, "/etc/containerd/config.toml")
    cfg.parent.mkdir(parents=True)
    shutil.copy(runtime.scratch / "config.toml", cfg)
    text = cfg.read_text().replace(f"sandbox = '{PAUSE}'", "sandbox = 'registry.k8s.io/pause:3.9'")
    cfg.write_text(text)
    assert runtime_sandbox_image(runtime.endpoint, root) == "registry.k8s.io/pause:3.9"
    same_root, preload = _node(tmp_path)  # the archives, next to that config
    assert same_root == root
    warnings, errors = image_pull_check(runtime.endpoint, IMAGES, "IfNotPresent",
                                        preload=preload, root=root,
                                        sandbox_image=PAUSE).check()
    assert warnings == [SANDBOX_WARNING.format(cri="registry.k8s.io/pause:3.9", want=PAUSE)]
    assert errors == ['the sandbox image "registry.k8s.io/pause:3.9" of the container runtime'
                      " is not in the runtime: every Pod sandbox would pull it"]
