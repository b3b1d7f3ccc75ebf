"""The typed, read-only description of one build, made once from the command line."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from builder.accel import Accel
from kubeinit.config import Config


def default_cache_dir() -> Path:
    """${KUBEINIT_CACHE_DIR:-${XDG_CACHE_HOME:-~/.cache}/kubeinit}, as hack/k8s-binaries."""
    if os.environ.get("KUBEINIT_CACHE_DIR"):
        return Path(os.environ["KUBEINIT_CACHE_DIR"])
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "kubeinit"


@dataclass(frozen=True)
class BuildContext:
    config: Config
    config_text: str  # the effective configuration file ("" = kubeadm's defaults)
    image: Path | None = None  # --image: the base image
    output: Path | None = None  # --output: where the new image goes (else: over --image)
    root: Path | None = None  # --root: a directory tree
    images_dir: Path | None = None  # --images: OCI archives to preload
    unpack_images: bool = True  # --no-unpack: archives imported at first boot, never a store
    dry_run: bool = False
    debug: bool = False
    cache_dir: Path = Path("/nonexistent")
    accel: Accel | None = None  # KUBEINIT_ACCEL: forced accelerator; None = probe (builder.accel)

    @property
    def final_image(self) -> Path:
        assert self.image is not None
        return self.output or self.image
