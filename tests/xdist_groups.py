"""pytest plugin, loaded by hack/test (`-p tests.xdist_groups`): under pytest-xdist with
`--dist loadgroup`, every test that needs one of the expensive session fixtures runs on the same
worker, so each fixture is set up once per run, not once per worker (two local control planes
would also fight over the same ports). Tests without such a fixture are spread freely.
"""

from __future__ import annotations

import pytest

# group name -> the session fixtures that put a test in it (fixturenames is the whole closure,
# so a test reaching `cluster` through another fixture is caught too); the first match wins
GROUPS: tuple[tuple[str, frozenset[str]], ...] = (
    ("local-cluster", frozenset({"cluster"})),  # tests/firstboot: hack/local-up, one per run
    ("image-build", frozenset({"built"})),  # tests/builder: one kubeinit-build of the base image
    ("oracle", frozenset({"oracle"})),  # tests/oracle: real kubeadm runs
    # tests/tooling/test_oci_images: hack/oci-images writes one cache, and a real containerd
    ("oci-images", frozenset({"images"})),
)


def group_of(fixturenames: set[str]) -> str | None:
    for name, fixtures in GROUPS:
        if fixtures & fixturenames:
            return name
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        group = group_of(set(getattr(item, "fixturenames", ())))
        if group is not None and item.get_closest_marker("xdist_group") is None:
            item.add_marker(pytest.mark.xdist_group(group))
