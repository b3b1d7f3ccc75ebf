"""The build, as a recipe read top to bottom (house style §5).

    build_image(ctx)
      check_inputs        the base image file, the output directory, --images
      open_target         copy the image next to the output and launch the appliance once
                          (or take the --root tree)
      check_target        offline preflight of the system in it: nothing written yet
      render_profile      static Pods, addons, kubeconfig templates, kubelet files, preflight
      install_runtime     /usr/lib/kubeinit/python (+ deps for the target), /usr/bin/kubeinit
      install_unit        units/kubeinit.service (+ the preset from packaging/)
      enable_unit         the wants symlink `systemctl enable` would make
      unpack_images       --images into the image's containerd store, with the real containerd
                          (builder/containerd_store.py), or, when its guard says the image's
                          containerd could not read that store, the archives for first boot
      install_images      --images archives (archive fallback only)
      write_profile       /usr/lib/kubeinit/profile.json (+ /etc/kubeinit/config.yaml)
      write_first_boot    empty /etc/machine-id, no random seed: each clone boots first
      check_free_space    the target's filesystems have room for all of it
      write_payload       everything above, in one go (+ the containerd store)
      (close + rename)    the new image replaces the output only when complete

Every step returns payload entries or facts; only `write_payload` writes into the target.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from builder import archives, guest, pydeps
from builder import containerd_store as cstore
from builder.context import BuildContext
from builder.image import ImageFile, WorkCopy, check_image_file
from builder.payload import Entry, Kind, Payload
from builder.preflight import Facts, Finding, check_space, check_target
from builder.render import check_config_has_no_secrets, mirror_facts, render_profile
from builder.step import Progress, step
from builder.target import Target, TreeTarget, resolve
from kubeinit import paths
from kubeinit import profile as prof
from kubeinit.errors import InvalidInput
from kubeinit.preflight import control_plane_images
from kubeinit.preload import MODE_ARCHIVES, MODE_UNPACKED, ImageStore

REPO = Path(__file__).resolve().parent.parent
UNIT_SOURCE = REPO / "units" / "kubeinit.service"
PRESET_DIR = REPO / "packaging"
WRAPPER = Path(__file__).resolve().parent / "data" / "kubeinit"
RUNTIME_PACKAGES = ("kubeinit", "firstboot")
UNIT_NAME = "kubeinit.service"
PRESET_NODE_DIR = "/usr/lib/systemd/system-preset"


@dataclass
class Summary:
    target: str = ""
    facts: Facts | None = None
    files: int = 0
    file_bytes: int = 0
    archives: int = 0
    image_mode: str = ""  # profile imageStore.mode: unpacked, archives or "" (no --images)
    store_bytes: int = 0
    images: tuple[str, ...] = ()
    digest: str = ""
    notes: list[str] = field(default_factory=list)


def build_image(ctx: BuildContext) -> Summary:
    summary = Summary()
    source, wanted_archives = check_inputs(ctx)
    with open_target(ctx, source) as target:
        summary.target = target.description
        facts = check_target_system(ctx, target)
        summary.facts = facts
        with tempfile.TemporaryDirectory(prefix="kubeinit-build.") as scratch:
            profile = render_node_profile(ctx, target, Path(scratch), wanted_archives)
            summary.images = profile.images
            profile, store = unpack_images(
                ctx, target, facts, profile, wanted_archives, Path(scratch), summary
            )
            payload = Payload.of(
                [
                    *install_runtime(ctx, facts, Path(scratch), summary.notes),
                    *install_unit(ctx, facts),
                    *enable_unit(ctx, target),
                    *install_images(ctx, profile),
                    *write_profile(ctx, profile),
                    *write_first_boot(ctx, target),
                ]
            )
            summary.files = len(payload.of_kind(Kind.FILE))
            summary.file_bytes = payload.file_bytes
            summary.archives = len(profile.preload)
            check_free_space(ctx, target, payload, store)
            summary.digest = write_payload(ctx, target, payload, store)
    return summary


# --- steps -----------------------------------------------------------------------------------


def check_inputs(ctx: BuildContext) -> tuple[ImageFile | None, dict[str, Path]]:
    """Everything about the inputs that can be known without opening the image."""
    with step("check inputs"):
        check_config_has_no_secrets(ctx.config, ctx.config_text)
        wanted: dict[str, Path] = {}
        if ctx.images_dir is not None:
            wanted = archives.match_archives(ctx.images_dir, control_plane_images(ctx.config))
        if ctx.root is not None:
            if not ctx.root.is_dir():
                raise InvalidInput(
                    f"--root {ctx.root}: no such directory",
                    hint="give the root of an OS tree (it must hold /usr, /etc)",
                )
            return None, wanted
        assert ctx.image is not None
        source = check_image_file(ctx.image)
        out_dir = ctx.final_image.parent
        if ctx.output is not None and ctx.output.is_dir():
            raise InvalidInput(
                f"--output {ctx.output}: is a directory", hint="give the path of the new image file"
            )
        if not ctx.dry_run:
            if not out_dir.is_dir():
                raise InvalidInput(
                    f"{out_dir}: no such directory", hint="create the output directory first"
                )
            free = shutil.disk_usage(out_dir).free
            extra = sum(p.stat().st_size for p in set(wanted.values())) + (256 << 20)
            if free < source.actual_size + extra:
                raise InvalidInput(
                    f"{out_dir} has {free >> 20} MiB free; the new image needs"
                    f" about {(source.actual_size + extra) >> 20} MiB",
                    hint="free space or choose another --output directory",
                )
        return source, wanted


@contextlib.contextmanager
def open_target(ctx: BuildContext, source: ImageFile | None) -> Iterator[Target]:
    """The target for the whole build. For an image: a complete copy next to the output,
    renamed over it only after everything was written and the appliance shut down cleanly."""
    if ctx.root is not None:
        yield TreeTarget(ctx.root)
        return
    assert source is not None
    if ctx.dry_run:
        with step("open image (read-only)"):
            target = guest.open_image(
                source.path,
                source.format,
                cache_dir=ctx.cache_dir,
                accel=ctx.accel,
                readonly=True,
                debug=ctx.debug,
            )
        try:
            yield target
        finally:
            guest.close(target.g)
        return
    work = WorkCopy(source, ctx.final_image)
    try:
        with step(f"copy {source.path.name} to a new file next to {ctx.final_image.name}"):
            work.create()
        with step("start the libguestfs appliance"):
            target = guest.open_image(
                work.path,
                source.format,
                cache_dir=ctx.cache_dir,
                accel=ctx.accel,
                debug=ctx.debug,
                display=source.path.name,
            )
        try:
            yield target
        except BaseException:
            with contextlib.suppress(Exception):
                guest.close(target.g)
            raise
        with step("close the image"):
            guest.close(target.g)
        with step(f"rename the new image to {ctx.final_image}"):
            work.commit()
    except BaseException:
        work.discard()
        raise


def check_target_system(ctx: BuildContext, target: Target) -> Facts:
    with step("check the target system"):
        return check_target(target, ctx.config)


def render_node_profile(
    ctx: BuildContext, target: Target, scratch: Path, wanted_archives: dict[str, Path]
) -> prof.Profile:
    with step("render the profile"):
        if ctx.root is not None:
            facts_root = ctx.root
        else:
            facts_root = mirror_facts(target, scratch / "facts", ctx.config)
        preload = tuple(
            prof.Preload(
                image=image, archive=archives.node_path(path), digest=archives.sha256_file(path)
            )
            for image, path in sorted(wanted_archives.items())
        )
        return render_profile(ctx.config, ctx.config_text, facts_root, preload)


def install_runtime(
    ctx: BuildContext, facts: Facts, scratch: Path, notes: list[str]
) -> list[Entry]:
    """kubeinit and its dependencies for the target's Python, plus /usr/bin/kubeinit."""
    with step(
        f"prepare the Python runtime (Python {facts.python[0]}.{facts.python[1]}, {facts.arch})"
    ):
        site = pydeps.site_packages(
            arch=facts.arch,
            python=facts.python,
            glibc=facts.glibc,
            cache_dir=ctx.cache_dir,
            notes=notes,
        )
        own = scratch / "kubeinit-python"
        for pkg in RUNTIME_PACKAGES:
            src = REPO / pkg
            shutil.copytree(src, own / pkg, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        compiler = shutil.which(f"python{facts.python[0]}.{facts.python[1]}")
        if compiler:
            pydeps.compile_tree(own, compiler, pydeps.NODE_SITE)
        entries = [
            Entry("/usr/lib/kubeinit", Kind.DIR, 0o755, replace=True),
            Entry(pydeps.NODE_SITE, Kind.DIR, 0o755),
            *_tree_entries(site, pydeps.NODE_SITE, skip={".complete"}),
            *_tree_entries(own, pydeps.NODE_SITE),
            Entry("/usr/bin", Kind.PARENT),
            Entry("/usr/bin/kubeinit", Kind.FILE, 0o755, data=WRAPPER.read_bytes()),
        ]
        return entries


def install_unit(ctx: BuildContext, facts: Facts) -> list[Entry]:
    with step("install kubeinit.service"):
        if not UNIT_SOURCE.is_file():
            raise InvalidInput(
                f"{UNIT_SOURCE}: kubeinit's unit file is missing",
                hint="run kubeinit-build from a complete kubeinit checkout",
            )
        entries = [
            Entry(facts.unit_dir, Kind.PARENT),
            Entry(f"{facts.unit_dir}/{UNIT_NAME}", Kind.FILE, 0o644, data=UNIT_SOURCE.read_bytes()),
        ]
        for preset in sorted(PRESET_DIR.glob("*.preset")):
            entries += [
                Entry(PRESET_NODE_DIR, Kind.PARENT),
                Entry(
                    f"{PRESET_NODE_DIR}/{preset.name}", Kind.FILE, 0o644, data=preset.read_bytes()
                ),
            ]
        return entries


def enable_unit(ctx: BuildContext, target: Target) -> list[Entry]:
    """What `systemctl enable kubeinit.service` does: a symlink in each WantedBy= target's
    .wants directory. The preset says the same for `systemctl preset`; the symlink makes it
    true without depending on when (or whether) the distribution applies presets."""
    with step("enable kubeinit.service"):
        wanted_by = unit_wanted_by(UNIT_SOURCE.read_text())
        if not wanted_by:
            raise InvalidInput(
                f"{UNIT_SOURCE}: no WantedBy= in [Install]",
                hint="the unit must say which target pulls it in",
            )
        unit_dir = (
            "/usr/lib/systemd/system"
            if resolve(target, "/usr/lib/systemd/system")
            else "/lib/systemd/system"
        )
        entries = [Entry("/etc/systemd/system", Kind.PARENT)]
        for t in wanted_by:
            wants = f"/etc/systemd/system/{t}.wants"
            entries += [
                Entry(wants, Kind.PARENT),
                Entry(f"{wants}/{UNIT_NAME}", Kind.SYMLINK, link=f"{unit_dir}/{UNIT_NAME}"),
            ]
        return entries


def unit_wanted_by(text: str) -> list[str]:
    """The WantedBy= targets of a unit's [Install] section (systemd.unit(5))."""
    out: list[str] = []
    section = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            continue
        if section == "Install" and line.startswith("WantedBy="):
            value = line.partition("=")[2].split()
            out = [] if not value else out + value
    return out


def unpack_images(
    ctx: BuildContext,
    target: Target,
    facts: Facts,
    profile: prof.Profile,
    wanted: dict[str, Path],
    scratch: Path,
    summary: Summary,
) -> tuple[prof.Profile, cstore.Store | None]:
    """The images imported and unpacked into the image's containerd store (first boot imports
    nothing), or, with a warning saying why, the archives for first boot to import."""
    if not wanted:
        return profile, None
    tools = cstore.find_tools(ctx.cache_dir / "binaries" / ctx.config.release.version)
    decision = cstore.decide(target, facts.arch, tools)
    if not ctx.unpack_images:
        decision = cstore.Decision(MODE_ARCHIVES, "--no-unpack")
    digests = archives.image_digests(wanted)
    summary.image_mode = decision.mode
    if decision.mode == MODE_ARCHIVES and not ctx.unpack_images:
        store = ImageStore(MODE_ARCHIVES, digests, reason=decision.reason)
        return dataclasses.replace(profile, image_store=store), None
    if decision.mode == MODE_ARCHIVES:
        finding = Finding(
            "image-store",
            f"the images are not unpacked at build time: {decision.reason}",
            "first boot imports the archives instead (about 100 s under TCG); give the image"
            " a containerd of the build's major.minor with the default root and overlayfs",
            fatal=False,
        )
        Progress.line(f"warning: [{finding.check}] {finding.message}")
        if summary.facts is not None:
            summary.facts = dataclasses.replace(
                summary.facts, warnings=(*summary.facts.warnings, finding)
            )
        store = ImageStore(MODE_ARCHIVES, digests, reason=decision.reason)
        return dataclasses.replace(profile, image_store=store), None
    assert decision.tools is not None
    what = (
        f"{len(wanted)} images into containerd's store (containerd {decision.tools.version},"
        f" {decision.snapshotter}, namespace {cstore.NAMESPACE}, pinned)"
    )
    if ctx.dry_run:
        Progress.line(f"dry run: would unpack {what}")
        unpacked = ImageStore(MODE_UNPACKED, digests, decision.snapshotter, decision.tools.version)
        return dataclasses.replace(profile, preload=(), image_store=unpacked), None
    with step(f"unpack {what}"):
        made = cstore.make_store(
            decision.tools,
            sorted(set(wanted.values())),
            sorted(wanted),
            scratch / "containerd",
            arch=facts.arch,
            snapshotter=decision.snapshotter,
            expect=digests,
        )
    summary.store_bytes = made.disk_bytes
    summary.notes.append(
        f"images unpacked into {cstore.CONTAINERD_ROOT} ({made.disk_bytes / 2**20:.0f} MiB on"
        f" disk, containerd {made.containerd}, {made.snapshotter}): first boot imports nothing"
    )
    unpacked = ImageStore(MODE_UNPACKED, made.images, made.snapshotter, made.containerd)
    return dataclasses.replace(profile, preload=(), image_store=unpacked), made


def install_images(ctx: BuildContext, profile: prof.Profile) -> list[Entry]:
    if not profile.preload:
        return []
    with step(f"add {len(profile.preload)} image archives"):
        assert ctx.images_dir is not None
        entries = [Entry(archives.NODE_DIR, Kind.DIR, 0o755)]
        for p in profile.preload:
            src = ctx.images_dir / Path(p.archive).name
            entries.append(Entry(p.archive, Kind.FILE, 0o644, source=src))
        return entries


def write_profile(ctx: BuildContext, profile: prof.Profile) -> list[Entry]:
    with step("write the profile"):
        profile = dataclasses.replace(profile, built=build_time())
        # No more readable than the configuration it carries (/etc/kubeinit/config.yaml is
        # 0600); first boot reads it as root.
        mode = 0o600 if ctx.config_text else 0o644
        entries = [Entry(str(paths.PROFILE), Kind.FILE, mode, data=profile.to_json().encode())]
        if ctx.config_text:
            # Where `kubeinit init` looks for the configuration; same bytes as the profile's.
            entries += [
                Entry(str(paths.ETC_DIR), Kind.DIR, 0o755),
                Entry(str(paths.NODE_CONFIG), Kind.FILE, 0o600, data=ctx.config_text.encode()),
            ]
        return entries


def build_time() -> str:
    """The profile's `built` (RFC 3339, UTC): SOURCE_DATE_EPOCH when set, so a reproducible
    build stays byte-identical, else the newest file of the kubeinit this build ships. First
    boot's clock must not be behind it (firstboot.timegate)."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    if epoch.isdigit():
        seconds = int(epoch)
    else:
        pkg = Path(prof.__file__).resolve().parents[1]
        seconds = int(
            max(
                p.stat().st_mtime for d in ("kubeinit", "firstboot") for p in (pkg / d).glob("*.py")
            )
        )
    return datetime.datetime.fromtimestamp(seconds, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# What makes a machine unique and must not be shared by clones (virt-sysprep's
# ssh-hostkeys, machine-id and random-seed operations; systemd-creds(1) host key). Nothing is
# regenerated here: sshd-keygen / ssh's postinst and systemd make new ones on first boot.
CLONE_SECRETS = ("/var/lib/systemd/random-seed", "/var/lib/systemd/credential.secret")
SSH_DIR = "/etc/ssh"


def write_first_boot(ctx: BuildContext, target: Target) -> list[Entry]:
    """Each clone must boot as a new machine: an empty /etc/machine-id (systemd then generates
    one and runs first-boot units, machine-id(5)), no saved random seed, no systemd credential
    host key and no SSH host keys."""
    with step("reset machine identity"):
        entries = [
            Entry("/etc/machine-id", Kind.FILE, 0o444, data=b""),
            *(Entry(p, Kind.REMOVE) for p in CLONE_SECRETS),
        ]
        if target.kind("/var/lib/dbus/machine-id") == "file":
            entries.append(Entry("/var/lib/dbus/machine-id", Kind.REMOVE))
        ssh = resolve(target, SSH_DIR)  # inside the target, links included
        if ssh is not None and target.kind(ssh) == "dir":
            entries += [
                Entry(f"{ssh.rstrip('/')}/{name}", Kind.REMOVE)
                for name in target.listdir(ssh)
                if name.startswith("ssh_host_")
            ]
        return entries


def check_free_space(
    ctx: BuildContext, target: Target, payload: Payload, store: cstore.Store | None
) -> None:
    with step("check free space"):
        needs: dict[str, int] = {}
        for e in payload.of_kind(Kind.FILE, Kind.DIR, Kind.SYMLINK):
            top = "/etc" if e.path.startswith("/etc/") else "/usr/lib"
            needs[top] = needs.get(top, 0) + Payload((e,)).disk_bytes()
        if store is not None:
            parent = str(Path(cstore.CONTAINERD_ROOT).parent)
            needs[parent] = needs.get(parent, 0) + store.disk_bytes
        check_space(target, needs)


def write_payload(
    ctx: BuildContext, target: Target, payload: Payload, store: cstore.Store | None
) -> str:
    """The only step that writes into the target: the payload, then the containerd store
    (unpacked images), which is not a payload of plain files (device nodes, xattrs, owners).
    Returns the payload's sha256."""
    digest = payload_digest(payload)
    if ctx.dry_run:
        Progress.line(
            f"dry run: would write {len(payload.entries)} entries"
            f" ({payload.file_bytes / 2**20:.1f} MiB), payload sha256 {digest}"
        )
        for line in payload.listing():
            print(line)
        return digest
    with step(
        f"write {len(payload.of_kind(Kind.FILE))} files ({payload.file_bytes / 2**20:.1f} MiB)"
    ):
        target.install(payload)
    if store is not None:
        with step(
            f"write containerd's store ({len(store.images)} images,"
            f" {store.disk_bytes / 2**20:.0f} MiB) to {cstore.CONTAINERD_ROOT}"
        ):
            cstore.write_store(target, store)
    return digest


def payload_digest(payload: Payload) -> str:
    with open(os.devnull, "wb") as null:
        return payload.write_tar(null)


def _tree_entries(
    src: Path, node_dir: str, skip: frozenset[str] | set[str] = frozenset()
) -> list[Entry]:
    """Entries for everything under `src`, placed under `node_dir`; modes normalised."""
    out: list[Entry] = []
    for dirpath, dirnames, filenames in os.walk(src):
        dirnames.sort()
        rel = Path(dirpath).relative_to(src)
        base = node_dir if str(rel) == "." else f"{node_dir}/{rel.as_posix()}"
        if str(rel) != ".":
            out.append(Entry(base, Kind.DIR, 0o755))
        for name in sorted(filenames):
            if str(rel) == "." and name in skip:
                continue
            p = Path(dirpath) / name
            if p.is_symlink():
                out.append(Entry(f"{base}/{name}", Kind.SYMLINK, link=os.readlink(p)))
                continue
            mode = 0o755 if p.stat().st_mode & 0o111 else 0o644
            out.append(Entry(f"{base}/{name}", Kind.FILE, mode, source=p))
    return out
