"""builder/pydeps.py: dependencies for the target's platform, not the build host's."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from builder import pydeps

REPO = Path(__file__).resolve().parents[2]


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


def test_pruned_site_still_runs_kubeinits_api_client(tmp_path: Path) -> None:
    """The pruned dependency tree (no kubernetes.aio, no aiohttp) is what a node imports: the
    image's Debian python3 (no venv, -I: nothing from the host's site-packages) must import
    kubeinit's API client layer and the kubernetes REST client from it."""
    cache = Path(os.environ.get("KUBEINIT_CACHE_DIR") or Path.home() / ".cache" / "kubeinit")
    notes: list[str] = []
    site = pydeps.site_packages(
        arch="x86_64", python=(3, 11), glibc=(2, 36), cache_dir=cache, notes=notes
    )
    for rel in pydeps.PRUNE:
        assert not (site / rel).exists(), rel
    assert (site / "kubernetes" / "client" / "rest.py").is_file()
    code = (
        "import sys; sys.path[:0] = [sys.argv[1], sys.argv[2]];"
        "import kubernetes.client.rest, kubernetes.client.exceptions;"
        "import firstboot.apiclient, firstboot.cli, cryptography.x509, yaml, jinja2;"
        "print(kubernetes.__file__)"
    )
    out = subprocess.run(
        ["/usr/bin/python3", "-I", "-c", code, str(site), str(REPO)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(str(site))
