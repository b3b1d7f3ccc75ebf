"""builder/build.py: a real build of the real base image, checked from outside.

One image build (the `built` fixture) serves every test here that looks at an image; tree
builds (`--root`, no appliance) check determinism and that both modes write the same files.
"""

from __future__ import annotations

import base64
import json
import os
import re
import stat
import subprocess
from pathlib import Path

import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from builder import archives
from builder.build import UNIT_SOURCE, unit_wanted_by
from kubeinit import manifests
from kubeinit import profile as prof
from kubeinit.config import load_config
from kubeinit.identity import Identity
from tests.builder.conftest import (
    CLUSTER_YAML,
    REPO,
    BaseImage,
    BuiltImage,
    RawImage,
    build,
    pinned_images,
    sha256,
    tmp_leftovers,
    to_raw,
)
from tests.builder.secrets import public_image_data, scan_image

pytestmark = [pytest.mark.real, pytest.mark.slow]

STEP = re.compile(r"^kubeinit-build: (?P<title>.+) \.\.\. (?P<secs>\d+\.\d\d) s$")
DIGEST = re.compile(r"Payload sha256 ([0-9a-f]{64})")


def test_each_step_is_one_line_with_its_duration(built: BuiltImage) -> None:
    titles = [m.group("title") for line in built.result.stderr.splitlines()
              if (m := STEP.match(line))]
    assert titles[0] == "check inputs"
    for expected in ("start the libguestfs appliance", "check the target system",
                     "render the profile", "enable kubeinit.service", "reset machine identity",
                     "check free space", "close the image"):
        assert expected in titles, titles
    assert any(t.startswith("write ") and t.endswith(" MiB)") for t in titles)
    assert titles[-1] == f"rename the new image to {built.output}"
    summary = built.result.stderr.splitlines()[-1]
    assert summary.startswith("kubeinit-build: wrote ") and str(built.output) in summary
    assert "7 images unpacked into /var/lib/containerd" in summary and DIGEST.search(summary)


def test_output_build_leaves_the_base_image_byte_for_byte(built: BuiltImage) -> None:
    assert sha256(built.base.qcow2) == built.base_sha_before
    assert sha256(built.output) != built.base_sha_before
    assert tmp_leftovers(built.output.parent) == []
    assert tmp_leftovers(built.base.qcow2.parent) == []


def test_output_is_a_consistent_qcow2(built: BuiltImage) -> None:
    check = subprocess.run(["qemu-img", "check", str(built.output)], capture_output=True,
                           text=True, check=False)
    assert check.returncode == 0, check.stdout + check.stderr


def _mode(raw: RawImage, path: str) -> int:
    out = raw.debugfs(f"stat {path}")
    m = re.search(r"Mode:\s+(\d+)", out)
    assert m, out
    return int(m.group(1), 8)


def test_runtime_unit_and_config_are_installed(image_root: Path, built_raw: RawImage) -> None:
    wrapper = image_root / "usr/bin/kubeinit"
    assert wrapper.read_bytes().startswith(b"#!/usr/bin/python3 -I\n")
    assert _mode(built_raw, "/usr/bin/kubeinit") == 0o755
    site = image_root / "usr/lib/kubeinit/python"
    assert (site / "firstboot/cli.py").is_file() and (site / "kubeinit/profile.py").is_file()
    assert not (site / "builder").exists()  # build-time code stays out of the image
    # cryptography's compiled core, for this image's CPython and architecture
    rust = list((site / "cryptography/hazmat/bindings").glob("_rust.*.so"))
    assert rust and rust[0].read_bytes()[:4] == b"\x7fELF"
    assert rust[0].read_bytes()[18] == 0x3E  # e_machine x86-64
    pyc = list((site / "kubeinit/__pycache__").glob("*.cpython-311.pyc"))
    assert pyc, "byte-compiled for the image's Python 3.11"
    assert (image_root / "usr/lib/systemd/system/kubeinit.service").read_bytes() == \
        UNIT_SOURCE.read_bytes()
    assert (image_root / "usr/lib/systemd/system-preset/90-kubeinit.preset").is_file()
    link = image_root / "etc/systemd/system/multi-user.target.wants/kubeinit.service"
    assert os.readlink(link) == "/usr/lib/systemd/system/kubeinit.service"
    config = image_root / "etc/kubeinit/config.yaml"
    assert config.read_bytes() == CLUSTER_YAML.read_bytes()
    assert _mode(built_raw, "/etc/kubeinit/config.yaml") == 0o600


def test_systemd_accepts_the_unit_inside_the_image(image_root: Path) -> None:
    verify = subprocess.run(["systemd-analyze", "verify", f"--root={image_root}",
                             "kubeinit.service"], capture_output=True, text=True, check=False)
    assert verify.returncode == 0, verify.stderr
    enabled = subprocess.run(["systemctl", f"--root={image_root}", "is-enabled",
                              "kubeinit.service"], capture_output=True, text=True, check=False)
    assert enabled.stdout.strip() == "enabled"
    assert unit_wanted_by(UNIT_SOURCE.read_text()) == ["multi-user.target"]


def test_each_clone_boots_as_a_new_machine(built_raw: RawImage) -> None:
    assert built_raw.cat("/etc/machine-id") == b""
    assert "File not found" in subprocess.run(
        ["debugfs", "-R", "stat /var/lib/systemd/random-seed", built_raw.device],
        capture_output=True, text=True, check=False).stderr


def test_profile_holds_the_pinned_release_with_placeholders(image_root: Path,
                                                           base_image: BaseImage) -> None:
    p = prof.load_profile(image_root)
    config = load_config(CLUSTER_YAML)
    assert p.kubernetes_version == "v1.37.2" and p.address_family == 4
    assert p.images == pinned_images()
    assert p.config == CLUSTER_YAML.read_text()
    assert set(p.static_pods) == {f"/etc/kubernetes/manifests/{c}.yaml" for c in (
        "etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler")}
    assert all(prof.ADVERTISE_ADDRESS in t for t in p.static_pods.values()
               if "scheduler" not in t and "controller-manager" not in t)
    # Filled in at boot, a template is exactly what the renderer writes for that node.
    node = Identity(node_name="node-a", advertise_address="10.1.2.3")
    live = manifests.render_static_pods(config, node, base_image.tree, environ={})
    for component, data in live.items():
        filled = p.fill(p.static_pods[str(manifests.manifest_path(component))], node)
        assert filled == data.decode(), component
    kubelet_conf = p.fill(p.kubeconfigs["/etc/kubernetes/kubelet.conf"], node)
    for placeholder in (prof.CA_DATA, prof.CLIENT_CERTIFICATE_DATA, prof.CLIENT_KEY_DATA):
        kubelet_conf = kubelet_conf.replace(placeholder, base64.b64encode(b"x").decode())
    doc = yaml.safe_load(kubelet_conf)
    assert doc["clusters"][0]["cluster"]["server"] == "https://10.1.2.3:6443"
    assert doc["users"][0]["name"] == "system:node:node-a"
    assert p.preflight.kubernetes_version == "v1.37.2"
    assert set(p.addons) == {"coredns", "kube-proxy"}
    proxy = list(yaml.safe_load_all(p.fill(p.addons["kube-proxy"], node)))
    assert [d["kind"] for d in proxy][:2] == ["ConfigMap", "DaemonSet"]
    assert "server: https://10.1.2.3:6443" in proxy[0]["data"]["kubeconfig.conf"]
    coredns = list(yaml.safe_load_all(p.addons["coredns"]))
    deployment = next(d for d in coredns if d["kind"] == "Deployment")
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] in p.images


def test_images_are_unpacked_into_containerds_store(image_root: Path, oci_dir: Path) -> None:
    """The base image's containerd is the build's minor with overlayfs: the images are in its
    store (tests/builder/test_containerd_store.py reads such a store with a real containerd),
    and no archive is copied."""
    p = prof.load_profile(image_root)
    assert p.preload == () and not (image_root / "usr/lib/kubeinit/images").exists()
    assert (p.image_store.mode, p.image_store.snapshotter) == ("unpacked", "overlayfs")
    want = archives.image_digests(archives.match_archives(oci_dir, pinned_images()))
    assert dict(p.image_store.images) == want and all(want.values())
    store = image_root / "var/lib/containerd"
    assert (store / "io.containerd.metadata.v1.bolt/meta.db").is_file()
    marker = json.loads((store / "kubeinit-build.json").read_text())
    assert marker["images"] == want and "registry.example.com/unrelated:v1" not in marker["images"]


def test_secret_scanner_finds_a_key_and_a_token(tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption())
    raw = tmp_path / "disk.raw"
    with raw.open("wb") as f:  # sparse: data at 1 GiB, as deep in an image as anything
        f.seek(1 << 30)
        f.write(b"\0" * 100 + key + b"\nkubeadm join --token abcdef.0123456789abcdef\n"
                + b"certificate-key " + b"a1" * 32 + b"\n")
    found = scan_image(raw)
    assert len(found.new_private_keys) == 1
    assert next(iter(found.new_private_keys)).startswith(b"-----BEGIN PRIVATE KEY-----")
    assert found.new_tokens == {b"abcdef.0123456789abcdef"}
    assert found.new_certificate_keys == {b"a1" * 32}


def test_no_private_key_or_token_in_the_whole_image(built: BuiltImage, built_raw: RawImage,
                                                     image_root: Path, oci_dir: Path,
                                                     tmp_path: Path) -> None:
    base_raw = to_raw(built.base.qcow2, tmp_path / "base.raw")
    # the python runtime is public code; the images' digests, chain IDs and layers are public
    # data (derived from the archives given to the build, not from what it wrote)
    found = scan_image(built_raw.raw, baseline=base_raw,
                       exclude_from=[image_root / "usr/lib/kubeinit/python",
                                     public_image_data(oci_dir, tmp_path / "public")])
    assert found.new_private_keys == set(), found.new_private_keys
    assert found.new_tokens == set(), found.new_tokens
    assert found.new_certificate_keys == set(), found.new_certificate_keys


def _written(root: Path, listing: str) -> dict[str, tuple[int, bytes]]:
    """Path -> (mode, content or link target) of every entry a dry run listed."""
    out: dict[str, tuple[int, bytes]] = {}
    for line in listing.splitlines():
        fields = line.split()
        path = next(f for f in fields if f.startswith("/")).rstrip("/")
        p = root / path.lstrip("/")
        if "remove" in fields:
            assert not p.exists()
            continue
        st = p.lstat()
        if stat.S_ISLNK(st.st_mode):
            out[path] = (0, os.readlink(p).encode())
        elif stat.S_ISDIR(st.st_mode):
            out[path] = (stat.S_IMODE(st.st_mode), b"")
        else:
            out[path] = (stat.S_IMODE(st.st_mode), p.read_bytes())
    return out


def test_two_builds_write_identical_trees(base_image: BaseImage, oci_dir: Path,
                                          tmp_path: Path) -> None:
    trees = []
    for name in ("a", "b"):
        root = tmp_path / name
        subprocess.run(["cp", "-al", str(base_image.tree), str(root)], check=True)
        args = ("--root", root, "--config", CLUSTER_YAML, "--images", oci_dir)
        dry = build(*args, "--dry-run")
        assert dry.rc == 0, dry.stderr
        real = build(*args)
        assert real.rc == 0, real.stderr
        trees.append((_written(root, dry.stdout), DIGEST.findall(real.stderr)))
    (a, digest_a), (b, digest_b) = trees
    assert len(a) > 1000 and a == b
    assert digest_a == digest_b


def test_tree_and_image_builds_write_the_same_files(built: BuiltImage, image_root: Path,
                                                    tree_copy: Path, oci_dir: Path) -> None:
    res = build("--root", tree_copy, "--config", CLUSTER_YAML, "--images", oci_dir)
    assert res.rc == 0, res.stderr
    assert DIGEST.findall(res.stderr) == DIGEST.findall(built.result.stderr)
    for rel in ("usr/lib/kubeinit", "etc/kubeinit"):
        a, b = tree_copy / rel, image_root / rel
        files_a = sorted(p.relative_to(a) for p in a.rglob("*"))
        assert files_a == sorted(p.relative_to(b) for p in b.rglob("*"))
        for f in files_a:
            if (a / f).is_file():
                assert (a / f).read_bytes() == (b / f).read_bytes(), f


def test_tree_build_runs_with_the_trees_own_python(tree_copy: Path) -> None:
    res = build("--root", tree_copy)
    assert res.rc == 0, res.stderr
    # chroot: only the tree's python3 (3.11) and libraries, nothing from the build host
    out = subprocess.run(["chroot", str(tree_copy), "/usr/bin/kubeinit", "phases"],
                         capture_output=True, text=True, check=False, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "certs/ca" in out.stdout.split()
    imports = subprocess.run(
        ["chroot", str(tree_copy), "/usr/bin/python3", "-I", "-c",
         "import sys; sys.path.insert(0, '/usr/lib/kubeinit/python');"
         " import cryptography, yaml, kubernetes.client, systemd.journal;"
         " from cryptography.hazmat.primitives.asymmetric import ec;"
         " ec.generate_private_key(ec.SECP256R1()); print(cryptography.__file__)"],
        capture_output=True, text=True, check=False, timeout=300)
    assert imports.returncode == 0, imports.stderr
    assert imports.stdout.startswith("/usr/lib/kubeinit/python/cryptography/")


def test_tree_build_leaves_the_shared_tree_alone(base_image: BaseImage, tree_copy: Path) -> None:
    machine_id = base_image.tree / "etc/machine-id"
    before = (machine_id.stat().st_ino, sorted(os.listdir(base_image.tree / "usr/lib")))
    res = build("--root", tree_copy)
    assert res.rc == 0, res.stderr
    assert (machine_id.stat().st_ino, sorted(os.listdir(base_image.tree / "usr/lib"))) == before
    assert not (base_image.tree / "usr/lib/kubeinit").exists()
    assert (tree_copy / "usr/lib/kubeinit/profile.json").is_file()


def test_rebuilding_a_tree_replaces_the_runtime_whole(tree_copy: Path) -> None:
    assert build("--root", tree_copy).rc == 0
    stale = tree_copy / "usr/lib/kubeinit/python/stale_module.py"
    stale.write_text("left over from an older build\n")
    res = build("--root", tree_copy)
    assert res.rc == 0, res.stderr
    assert not stale.exists()
    assert sorted(p.name for p in (tree_copy / "usr/lib").glob(".kubeinit*")) == []


def test_dry_run_changes_nothing(tree_copy: Path) -> None:
    before = sorted(str(p) for p in tree_copy.rglob("*"))
    res = build("--root", tree_copy, "--dry-run")
    assert res.rc == 0, res.stderr
    assert "/usr/lib/kubeinit/profile.json" in res.stdout
    assert "remove /var/lib/systemd/random-seed" in " ".join(res.stdout.split())
    assert sorted(str(p) for p in tree_copy.rglob("*")) == before


def test_repo_has_the_files_the_build_installs() -> None:
    assert (REPO / "builder/data/kubeinit").is_file()
    assert UNIT_SOURCE.is_file()
