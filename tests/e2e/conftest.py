"""The end-to-end test's image, built once per session (and cached across sessions by what it is
made of: tests/tooling/node_image.py): hack/base-image, hack/oci-images, then the real
`kubeinit-build --image --images` with tests/e2e/data/cluster.yaml; and what real `kubeadm init
--dry-run` would create in the API for the same cluster, to compare the booted node's objects
with (tests/apiobjects.py)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tests.oracle import sandbox
from tests.oracle.kubeadm_dryrun import objects_of, parse_output
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


# The node the image boots as, as first boot detects it (hostname and default-route address
# under QEMU's user networking); kubeadm is told the same, as `kubeadm init` on that node
# would detect it.
NODE_NAME = "kubeinit-node"
NODE_ADDRESS = vm.GUEST_ADDRESS


@pytest.fixture(scope="session")
def e2e_kubeadm_objects(k8s_bin: Path, tmp_path_factory: pytest.TempPathFactory
                        ) -> dict[tuple[str, str, str], dict[str, Any]]:
    """Real `kubeadm init --dry-run --upload-certs` for tests/e2e/data/cluster.yaml on the
    node the image boots as: every API object kubeadm would create, by (kind, ns, name)."""
    assert os.geteuid() == 0, "the kubeadm oracle needs root (mount namespace + overlay)"
    work = tmp_path_factory.mktemp("e2e-kubeadm")
    config = work / "config.yaml"
    config.write_text(CONFIG.read_text() + f"""---
apiVersion: kubeadm.k8s.io/v1beta4
kind: InitConfiguration
localAPIEndpoint:
  advertiseAddress: {NODE_ADDRESS}
nodeRegistration:
  name: {NODE_NAME}
""")
    cap = sandbox.run_kubeadm(k8s_bin / "kubeadm", config, work / "out", name="e2e",
                              dry_run=True, extra=("--skip-phases=preflight", "--upload-certs"))
    assert cap.ok, f"kubeadm init --dry-run failed:\n{cap.failures()}"
    actions, _, _, _ = parse_output(cap.runs[0].stdout)
    return objects_of(actions)
