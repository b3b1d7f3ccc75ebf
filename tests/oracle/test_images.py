"""The images kubeinit pulls, checks and preloads (kubeinit.preflight.control_plane_images)
against `kubeadm config images list --config F` of the real kubeadm."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from kubeinit.config import load_config
from kubeinit.preflight import control_plane_images
from tests.oracle.oracle import CONFIGS, config_file
from tests.oracle.sandbox import CLEAN_ENV, judge_for

pytestmark = [pytest.mark.real]


@pytest.mark.parametrize("config", CONFIGS)
def test_image_list_matches_kubeadm(kubeadm_bin: Path, config: str) -> None:
    # no network: kubeadm must not resolve a version label online
    cfg = config_file(config)
    out = subprocess.run(["unshare", "--net", "--", str(judge_for(cfg, kubeadm_bin)), "config",
                          "images", "list", "--config", str(cfg)], env=CLEAN_ENV,
                         capture_output=True, text=True, check=False, timeout=60)
    assert out.returncode == 0, out.stderr
    assert list(control_plane_images(load_config(cfg))) == out.stdout.split()
