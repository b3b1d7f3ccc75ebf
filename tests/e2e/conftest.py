"""The end-to-end test's image, built once per session (and cached across sessions by what it is
made of: tests/tooling/node_image.py): hack/base-image, hack/oci-images, then the real
`kubeinit-build --image --images` with tests/e2e/data/cluster.yaml."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.tooling import vm
from tests.tooling.node_image import NodeImage, build_node_image

CONFIG = Path(__file__).parent / "data" / "cluster.yaml"


@pytest.fixture(scope="session")
def e2e_build() -> NodeImage:
    missing = vm.have_tools()
    assert not missing, f"missing {', '.join(missing)}: run hack/install-deps"
    assert os.geteuid() == 0, "the end-to-end test builds images as root (debootstrap)"
    return build_node_image(CONFIG)


@pytest.fixture(scope="session")
def e2e_image(e2e_build: NodeImage) -> Path:
    return e2e_build.image


@pytest.fixture(scope="session")
def e2e_accel() -> str:
    return vm.accel()
