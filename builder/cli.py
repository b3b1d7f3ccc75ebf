"""`kubeinit-build`: pre-render a version-pinned control-plane node into an OS image.

    kubeinit-build --image BASE.qcow2 [--output OUT.qcow2] [--config cluster.yaml]
                   [--kubernetes-version vX.Y.Z] [--images DIR [--no-unpack]] [--dry-run]
                   [--debug]
    kubeinit-build --root DIR [...]

Without --output the image is replaced, but only by a complete new file renamed over it at the
end; with --output the base image is not modified. --root writes into a directory tree (mkosi
extra trees or postinst scripts, Packer chroots, debootstrap trees).

Exit codes: 0 ok, 1 the build failed, 2 usage or invalid input (including a base image that
cannot run kubeinit), 3 an image that cannot be read.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

import yaml

from builder.accel import ENV as ACCEL_ENV
from builder.accel import parse_override
from builder.build import Summary, build_image
from builder.context import BuildContext, default_cache_dir
from builder.preflight import ImageCheckFailed
from kubeinit.config import (
    KUBEADM_API,
    Config,
    load_config,
    load_yaml_documents,
    parse_config,
    read_config_text,
)
from kubeinit.errors import ExitCode, InvalidInput, KubeinitError
from kubeinit.redact import redact, redact_keys
from kubeinit.versions import parse_version

PROG = "kubeinit-build"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        # One line and a hint, like every other error (no usage block); argv may hold a
        # secret given in the wrong place.
        message = _printable(redact_keys(message))
        print(f"{PROG}: error: {message}\nhint: {PROG} --help", file=sys.stderr)
        raise SystemExit(ExitCode.INVALID_INPUT)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog=PROG,
        description=__doc__.split("\n\n")[0],
        epilog="\n\n".join(__doc__.split("\n\n")[1:]),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--image", type=Path, help="base disk image (qcow2 or raw)")
    where.add_argument("--root", type=Path, help="directory tree to build into")
    p.add_argument(
        "--output", type=Path, help="write the new image here; the base image is left untouched"
    )
    p.add_argument("--config", type=Path, help="kubeadm v1beta4 configuration file")
    p.add_argument(
        "--kubernetes-version",
        help="Kubernetes version to pin (default: the newest in the version table)",
    )
    p.add_argument(
        "--images", type=Path, metavar="DIR", help="directory of OCI image archives to preload"
    )
    p.add_argument(
        "--no-unpack",
        action="store_true",
        help="copy the --images archives for first boot to import instead of unpacking them"
        " into the image's containerd store",
    )
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="check and render, list what would be written, change nothing",
    )
    p.add_argument("--debug", action="store_true", help="tracebacks and libguestfs logs")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _sigterm_raises()
    try:
        return _run(args)
    except KubeinitError as e:
        if isinstance(e, ImageCheckFailed):
            for f in e.findings:
                print(f"{PROG}: error: [{f.check}] {f.message}\n  hint: {f.hint}", file=sys.stderr)
        # one line each, whatever the message quotes from the input
        print(f"{PROG}: error: {_printable(redact(e.message))}", file=sys.stderr)
        if e.hint:
            print(f"hint: {_printable(redact(e.hint))}", file=sys.stderr)
        if args.debug:
            print(redact(traceback.format_exc()), file=sys.stderr, end="")
        return int(e.exit_code)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted; nothing was changed", file=sys.stderr)
        return ExitCode.PHASE_FAILED
    except Exception as e:  # a bug: still one line and a hint, the traceback only with --debug
        print(
            f"{PROG}: error: internal error: {_printable(redact(f'{type(e).__name__}: {e}'))}",
            file=sys.stderr,
        )
        print("hint: run again with --debug for a traceback and report it", file=sys.stderr)
        if args.debug:
            print(redact(traceback.format_exc()), file=sys.stderr, end="")
        return ExitCode.PHASE_FAILED


def _printable(text: str) -> str:
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _sigterm_raises() -> None:
    """SIGTERM unwinds like Ctrl-C, so the work copy is removed and the appliance stopped."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)


def _run(args: argparse.Namespace) -> int:
    if args.output is not None and args.image is None:
        raise InvalidInput(
            "--output is for --image builds", hint="--root writes into the tree itself"
        )
    config, text = load_build_config(args.config, args.kubernetes_version)
    for w in config.warnings:
        print(f"{PROG}: warning: {w}", file=sys.stderr)
    if config.init.dry_run:
        print(
            f"{PROG}: warning: {config.source}: dryRun: true: first boot of this image will only"
            " dry-run (as `kubeinit init --dry-run`: nothing is written on the node)",
            file=sys.stderr,
        )
    ctx = BuildContext(
        config=config,
        config_text=text,
        image=args.image,
        output=args.output,
        root=args.root,
        images_dir=args.images,
        unpack_images=not args.no_unpack,
        dry_run=args.dry_run,
        debug=args.debug,
        cache_dir=default_cache_dir(),
        accel=parse_override(os.environ.get(ACCEL_ENV)),
    )
    summary = build_image(ctx)
    _print_summary(ctx, summary)
    return ExitCode.OK


def load_build_config(path: Path | None, version: str | None) -> tuple[Config, str]:
    """The configuration and its effective text (what first boot will read). An explicit
    --kubernetes-version is written into the text, and must not contradict the file."""
    text = read_config_text(path, what=f"--config {path}") if path is not None else ""
    config = parse_config(text, source=str(path)) if path is not None else load_config(None)
    if version is None:
        return config, text
    parse_version(version, field="--kubernetes-version")
    docs = load_yaml_documents(text, str(path)) if text else []
    cluster = next(
        (d for d in docs if isinstance(d, dict) and d.get("kind") == "ClusterConfiguration"), None
    )
    if cluster is None:
        cluster = {"apiVersion": KUBEADM_API, "kind": "ClusterConfiguration"}
        docs.append(cluster)
    given = cluster.get("kubernetesVersion")
    if given and str(given).lstrip("v") != version.lstrip("v"):
        raise InvalidInput(
            f"--kubernetes-version {version} contradicts kubernetesVersion {given} in {path}",
            hint="give one of them",
        )
    cluster["kubernetesVersion"] = version if version.startswith("v") else f"v{version}"
    text = yaml.safe_dump_all(docs, sort_keys=False)
    return parse_config(text, source=str(path) if path else "--kubernetes-version"), text


def _print_summary(ctx: BuildContext, summary: Summary) -> None:
    facts = summary.facts
    if facts is None:
        return
    out = sys.stderr
    verb = "would write" if ctx.dry_run else "wrote"
    where = ctx.root if ctx.root is not None else ctx.final_image
    print(
        f"{PROG}: target: {summary.target}: Python {facts.python[0]}.{facts.python[1]},"
        f" kubelet {facts.kubelet_version}, {facts.runtime} {facts.runtime_version}",
        file=out,
    )
    for w in facts.warnings:
        print(f"{PROG}: warning: [{w.check}] {w.message}\n  hint: {w.hint}", file=out)
    print(f"{PROG}: images the manifests use: {', '.join(summary.images)}", file=out)
    for n in summary.notes:
        print(f"{PROG}: note: {n}", file=out)
    images = f", {summary.archives} image archives" if summary.archives else ""
    if summary.image_mode == "unpacked":
        images = f", {len(summary.images)} images unpacked into /var/lib/containerd"
    print(
        f"{PROG}: {verb} {summary.files} files ({summary.file_bytes / 2**20:.1f} MiB) into"
        f" {where}: the kubeinit {ctx.config.release.version} runtime in /usr/lib/kubeinit,"
        f" /usr/bin/kubeinit, kubeinit.service (enabled), the profile{images}; machine-id"
        f" reset. Payload sha256 {summary.digest}",
        file=out,
    )
