"""kubeinit/preload.py and the ImagePull check that uses it (kubeinit/preflight_net.py): the
image's preloaded archives imported into a real containerd (the pinned one from
hack/k8s-binaries, tests/tooling/containerd.py: own mount and network namespace, so nothing
could be pulled even if something tried), checked against the sha256 the profile records."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from builder import archives
from kubeinit import paths
from kubeinit import profile as prof
from kubeinit.errors import StateUnreadable
from kubeinit.preflight_net import (
    ALWAYS_WARNING,
    SANDBOX_WARNING,
    image_pull_check,
    runtime_sandbox_image,
)
from kubeinit.preload import (
    MODE_ARCHIVES,
    MODE_UNPACKED,
    NAMESPACE,
    PINNED_LABEL,
    ImageStore,
    Preload,
    import_archives,
    list_store,
    sha256_file,
    verify_store,
)
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


# --- verifying what first boot runs (imageStore: digests checked, nothing imported) ----------

def _store(preload: tuple[Preload, ...], root: Path, mode: str = MODE_ARCHIVES) -> ImageStore:
    """The imageStore kubeinit-build records: each image's digest from its archive."""
    digests = {p.image: archives.read_archive(paths.under(root, p.archive)).digests[p.image]
               for p in preload}
    return ImageStore(mode, digests, snapshotter="overlayfs" if mode == MODE_UNPACKED else "")


def test_the_store_is_verified_against_the_digests_the_build_recorded(
        runtime: Containerd, tmp_path: Path) -> None:
    root, preload = _node(tmp_path)
    store = _store(preload, root)
    assert verify_store(store, list_store(runtime.address)) == [
        f"the preloaded image {i} is not in containerd (namespace {NAMESPACE})"
        for i in sorted(IMAGES)]
    assert import_archives(runtime.endpoint, preload, root, _present(runtime)).errors == []
    assert verify_store(store, list_store(runtime.address)) == []
    apiserver, etcd, pause = IMAGES
    # another image under the name: what a tampered or replaced store looks like
    runtime.ctr("images", "tag", "--force", pause, apiserver)
    # a label removed: the kubelet's image GC could delete it
    runtime.ctr("images", "label", etcd, "io.cri-containerd.pinned=")
    stored = list_store(runtime.address)
    assert stored[apiserver].digest == stored[pause].digest != store.images[apiserver]
    assert verify_store(store, stored) == [  # in image name order
        f"the preloaded image {etcd} is not labelled {PINNED_LABEL}",
        f"containerd holds {apiserver} as {stored[pause].digest}, the image was built with"
        f" {store.images[apiserver]}: it was replaced or tampered with",
    ]
    _, errors = image_pull_check(runtime.endpoint, IMAGES, "IfNotPresent", store=store).check()
    assert len(errors) == 2 and "replaced or tampered with" in errors[1]
    assert "PullImage" not in runtime.log()


def test_an_unpacked_store_must_be_unpacked(runtime: Containerd, tmp_path: Path) -> None:
    root, preload = _node(tmp_path)
    for p in preload:
        runtime.ctr("images", "import", "--no-unpack", "--label", PINNED_LABEL,
                    str(paths.under(root, p.archive)))
    store = _store(preload, root, MODE_UNPACKED)
    assert verify_store(store, list_store(runtime.address, "overlayfs")) == [
        f"the preloaded image {i} is not unpacked for the overlayfs snapshotter in containerd"
        for i in sorted(IMAGES)]
    runtime.ctr("images", "rm", *IMAGES)
    for p in preload:
        runtime.ctr("images", "import", "--label", PINNED_LABEL, str(paths.under(root, p.archive)))
    assert verify_store(store, list_store(runtime.address, "overlayfs")) == []


def test_policy_never_still_imports_the_local_archives(runtime: Containerd,
                                                      tmp_path: Path) -> None:
    root, preload = _node(tmp_path)
    store = _store(preload, root)
    imported: list[str] = []
    # kubeadm's Never skips the presence checks: an image the profile does not preload
    # (etcd here) is not an error, but the archives are local (no pull) and are imported
    check = image_pull_check(runtime.endpoint, IMAGES, "Never", preload=preload[:1],
                             store=ImageStore(MODE_ARCHIVES, dict(list(store.images.items())[:1])),
                             root=root, imported=imported)
    assert check.check() == ([], [])
    assert imported == [preload[0].archive]
    assert _present(runtime)(IMAGES[0]) and not _present(runtime)(IMAGES[1])
    # nothing preloaded and policy Never: no CRI call at all, as kubeadm
    assert image_pull_check("unix:///nonexistent.sock", IMAGES, "Never").check() == ([], [])


def test_policy_always_pulls_nothing_and_says_so(runtime: Containerd, tmp_path: Path) -> None:
    root, preload = _node(tmp_path)
    warnings, errors = image_pull_check(runtime.endpoint, IMAGES, "Always", preload=preload,
                                        store=_store(preload, root), root=root).check()
    assert (warnings, errors) == ([ALWAYS_WARNING], [])
    assert "PullImage" not in runtime.log()


def test_the_profile_carries_the_image_store(tmp_path: Path) -> None:
    from tests.kubeinit.test_profile import _profile

    def _write(root: Path, text: str) -> None:
        path = paths.under(root, paths.PROFILE)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)

    p = dataclasses.replace(_profile(), image_store=ImageStore(
        MODE_UNPACKED, {PAUSE: "sha256:" + "a" * 64}, "overlayfs", "v2.3.7"))
    _write(tmp_path, p.to_json())
    back = prof.load_profile(tmp_path)
    assert back.image_store == p.image_store and back.image_store.images[PAUSE].endswith("a")
    data = json.loads(p.to_json())
    assert data["imageStore"]["mode"] == "unpacked"
    data["imageStore"]["mode"] = "zip"
    _write(tmp_path, json.dumps(data))
    with pytest.raises(StateUnreadable, match=r"imageStore\.mode 'zip' is not one of"):
        prof.load_profile(tmp_path)
    del data["imageStore"]  # a profile written before imageStore: presence checks only
    _write(tmp_path, json.dumps(data))
    assert prof.load_profile(tmp_path).image_store == ImageStore()
