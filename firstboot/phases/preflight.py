"""kubeadm's `preflight` phase (cmd/kubeadm/app/cmd/phases/init/preflight.go).

The checks live in kubeinit.preflight. The target is explicit: `ctx.preflight_target` when set,
otherwise `node` for the root `/` (first boot on the machine itself) and `image` for any other
root (rendering into a directory, e.g. on a build host), where the checks of the live machine do
not apply. Either way the phase prints the target and every check it did not run.

With an image profile (kubeinit-build), the checks' inputs are the profile's (when its files
apply to this run, firstboot.templates). ImagePull is kubeinit's air-gapped pull
(kubeinit.preload): when the build unpacked the images into the image's containerd store it only
verifies them there (digest, content, unpacked, pinned: metadata reads, no import); in the
archive fallback it first imports the image's preloaded archives, then verifies the same way.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

from firstboot.context import InitContext
from firstboot.phase import Phase
from kubeinit.errors import InvalidInput
from kubeinit.preflight import Target, profile_for, run_preflight


def target_name(ctx: InitContext) -> str:
    if ctx.preflight_target:
        return ctx.preflight_target
    return "node" if ctx.root == Path("/") else "image"


def run(ctx: InitContext) -> None:
    try:
        target = Target(target_name(ctx))
    except ValueError:
        raise InvalidInput(
            f"preflight target {ctx.preflight_target!r} is not one of:"
            f" {', '.join(t.value for t in Target)}"
        ) from None
    out = sys.stderr
    print(
        f"[preflight] Running pre-flight checks (target {target.value}, root {ctx.root})",
        file=out,
        flush=True,
    )
    if ctx.use_templates and ctx.profile is not None:
        profile = dataclasses.replace(ctx.profile.preflight, target=target)
    else:
        profile = profile_for(ctx.config, target)
    preload = ctx.profile.preload if ctx.profile is not None else ()
    store = ctx.profile.image_store if ctx.profile is not None else None
    report = run_preflight(
        profile,
        ctx.identity,
        ctx.root,
        ignore=ctx.ignore_preflight_errors,
        out=out,
        preload=preload,
        store=store,
    )
    if report.imported:
        ctx.notes.append(f"imported {len(report.imported)} preloaded image archives")
    if report.not_applicable:
        print(
            f"[preflight] not applicable to target {target.value} (rendering into"
            f" {ctx.root}, not checking the node that will boot it): "
            + ", ".join(report.not_applicable),
            file=out,
            flush=True,
        )
        ctx.notes.append(
            f"{len(report.not_applicable)} checks not applicable to target {target.value}"
        )
    if report.warnings:
        ctx.notes.append(f"{len(report.warnings)} warnings")


PHASE = Phase(name="preflight", summary="Run pre-flight checks", run=run)
