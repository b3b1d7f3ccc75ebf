"""Every test that needs a real external component through a shared fixture carries the `real`
marker (issue 11: tests in tests/tooling needed built binaries without saying so, so
`-m "not real"` on a machine without them failed instead of deselecting them).

The whole suite is collected in a child pytest with this module loaded as a plugin
(`pytest_collection_finish` below writes each test's fixtures and markers), so the check sees
every test, whatever `-k` or `-m` this run was given.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# session fixtures that build or start real components (binaries, control plane, images, VMs)
REAL_FIXTURES = frozenset({"k8s_bin", "cluster", "base_image", "built", "oracle", "kubeadm_bin",
                           "e2e_build", "images", "runtime"})
REPORT_ENV = "KUBEINIT_MARKER_REPORT"


def pytest_collection_finish(session: pytest.Session) -> None:
    """Plugin hook (child pytest only): nodeid -> [fixtures, marker names]."""
    out = os.environ.get(REPORT_ENV)
    if not out:
        return
    Path(out).write_text(json.dumps({
        item.nodeid: [sorted(getattr(item, "fixturenames", ())),
                      sorted(m.name for m in item.iter_markers())]
        for item in session.items}))


def test_tests_using_real_components_are_marked_real(tmp_path: Path) -> None:
    report = tmp_path / "collected.json"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
         "-p", "tests.tooling.test_markers", "tests"],
        cwd=REPO, env={**os.environ, REPORT_ENV: str(report)}, capture_output=True, text=True,
        timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    collected = json.loads(report.read_text())
    assert len(collected) > 500, "the child pytest collected too little to judge"
    using = {n: m for n, (f, m) in collected.items() if REAL_FIXTURES & set(f)}
    assert any("test_oci_images" in n for n in using)  # the check sees what it must
    unmarked = sorted(n for n, markers in using.items() if "real" not in markers)
    assert not unmarked, f"tests needing real components without @pytest.mark.real: {unmarked}"
