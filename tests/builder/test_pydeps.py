"""builder/pydeps.py: dependencies for the target's platform, not the build host's."""

from __future__ import annotations

from builder import pydeps


def test_manylinux_ladder_for_a_glibc() -> None:
    tags = pydeps.platform_tags("x86_64", (2, 36))
    assert tags[0] == "manylinux_2_36_x86_64" and "manylinux_2_17_x86_64" in tags
    assert tags.index("manylinux_2_28_x86_64") < tags.index("manylinux_2_17_x86_64")
    assert {"manylinux2014_x86_64", "manylinux2010_x86_64", "manylinux1_x86_64"} <= set(tags)
    assert pydeps.platform_tags("aarch64", (2, 17))[0] == "manylinux_2_17_aarch64"
    assert "manylinux1_aarch64" in pydeps.platform_tags("aarch64", (2, 17))


def test_requirements_leave_out_what_the_image_provides() -> None:
    reqs = pydeps.requirements()
    names = {r.split(">")[0].split("=")[0].split("<")[0].strip().lower() for r in reqs}
    assert "systemd-python" not in names
    assert {"cryptography", "pyyaml"} <= names
    assert not any("extra" in r for r in reqs)
