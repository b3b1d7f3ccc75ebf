"""kubeinit's structured journal records, read back from a REAL systemd-journald.

The session cluster's first boot ran inside a private mount namespace with its own journald
(tests/localcluster.py), so every native record kubeinit sent is in that journal; it is exported
with the real `journalctl -o json`. `systemd.journal.send` drops records silently when no
journald listens, so every assertion here is on what was read back.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from firstboot import log
from firstboot.phases import PHASES
from firstboot.selection import leaves
from tests.apiobjects import b64, token_secrets
from tests.firstboot.phases.test_wait_control_plane import _failing_root
from tests.localcluster import REPO, Journal, LocalCluster, in_journal_namespace

pytestmark = pytest.mark.real

DOC = REPO / "docs" / "journal.md"


def _secrets(cluster: LocalCluster) -> set[str]:
    """Every token, token secret and certificate key this cluster ever had."""
    out: set[str] = set()
    for t in token_secrets(cluster):
        secret = b64(t, "token-secret")
        out |= {secret, b64(t, "token-id") + "." + secret}
    state = cluster.root / "var/lib/kubeinit"
    for f in (state / "bootstrap-tokens.json", state / "uploaded-certs.json",
              cluster.root / "etc/kubeinit/join.json"):
        data = json.loads(f.read_text())
        for t in [*data.get("tokens", []), data.get("proxyToken") or {}]:
            if t.get("token"):
                out |= {t["token"], t["token"].split(".")[1]}
        for k in ("key", "certificateKey", "token"):
            if data.get(k):
                out.add(data[k])
    assert len(out) >= 4
    return out


def test_every_phase_and_completion_has_a_structured_record(cluster: LocalCluster) -> None:
    assert cluster.journal is not None
    recs = cluster.journal.records()
    finished = {r["KUBEINIT_PHASE"]: r for r in recs
                if r.get("MESSAGE_ID") == log.MESSAGE_ID_PHASE_FINISHED}
    assert sorted(finished) == sorted(p for p, _ in leaves(PHASES))
    for phase, r in finished.items():
        assert r["KUBEINIT_RESULT"] == "done", phase
        assert float(r["KUBEINIT_DURATION"]) >= 0, phase
        assert 0 <= float(r["KUBEINIT_CPU"]) <= float(r["KUBEINIT_DURATION"]) + 0.05, phase
        assert r["PRIORITY"] == "6" and r["_TRANSPORT"] == "journal"
    wait = float(finished["wait-control-plane"]["KUBEINIT_DURATION"])
    assert wait > float(finished["wait-control-plane"]["KUBEINIT_CPU"])
    (done,) = [r for r in recs if r.get("MESSAGE_ID") == log.MESSAGE_ID_INIT_COMPLETE]
    assert done["KUBEINIT_RESULT"] == "complete"
    assert float(done["KUBEINIT_DURATION"]) >= sum(
        float(r["KUBEINIT_DURATION"]) for r in finished.values()) - 0.5


def test_no_secret_reaches_the_journal_or_the_logs(cluster: LocalCluster) -> None:
    assert cluster.journal is not None
    exported = cluster.journal.export()
    texts = {"journal": exported, "local-up log": cluster.log.read_text(),
             "state": (cluster.root / "var/lib/kubeinit/state.json").read_text(),
             "status": cluster.kubeinit("status").stdout,
             "status --json": cluster.kubeinit("status", "--json").stdout}
    for secret in _secrets(cluster):
        for where, text in texts.items():
            assert secret not in text, f"a secret appears in the {where}"


def test_failed_phase_record(tmp_path: Path) -> None:
    """The API server never comes up: a `phase failed` record with the phase, the error and
    the hint, at error priority."""

    root, config = _failing_root(tmp_path, "4s")
    argv = in_journal_namespace(tmp_path / "journal", [
        sys.executable, "-m", "firstboot", "init", "--root", str(root), "--config", str(config),
        "--ignore-preflight-errors", "all"])
    res = subprocess.run(argv, capture_output=True, text=True, cwd=REPO, timeout=300,
                         check=False)
    assert res.returncode == 1, res.stderr
    recs = Journal(tmp_path / "journal").records()
    (failed,) = [r for r in recs if r.get("MESSAGE_ID") == log.MESSAGE_ID_PHASE_FAILED]
    assert failed["KUBEINIT_PHASE"] == "wait-control-plane"
    assert failed["KUBEINIT_RESULT"] == "failed"
    assert float(failed["KUBEINIT_DURATION"]) >= 4
    assert "control plane not healthy" in failed["KUBEINIT_ERROR"]
    assert "crictl" in failed["KUBEINIT_HINT"]
    assert failed["PRIORITY"] == "3"
    assert not [r for r in recs if r.get("MESSAGE_ID") == log.MESSAGE_ID_INIT_COMPLETE]


def test_refresh_record_carries_expiry_but_no_secret(cluster: LocalCluster,
                                                     tmp_path: Path) -> None:
    argv = in_journal_namespace(tmp_path / "journal", [
        sys.executable, "-m", "firstboot", "join-command", "--refresh", "--root",
        str(cluster.root)])
    res = subprocess.run(argv, capture_output=True, text=True, cwd=REPO, timeout=300,
                         check=False)
    assert res.returncode == 0, res.stderr
    journal = Journal(tmp_path / "journal")
    (rec,) = [r for r in journal.records()
              if r.get("MESSAGE_ID") == log.MESSAGE_ID_JOIN_REFRESHED]
    info = cluster.join_file()
    assert rec["KUBEINIT_TOKEN_EXPIRES"] == info["tokenExpires"]
    assert rec["KUBEINIT_CERTS_EXPIRE"] == info["certificateKeyExpires"]
    exported = journal.export()
    for secret in _secrets(cluster):
        assert secret not in exported
    assert info["token"] in res.stdout  # the operator asked for it: stdout only


def test_message_ids_are_documented() -> None:
    doc = DOC.read_text()
    for name in ("MESSAGE_ID_PHASE_FINISHED", "MESSAGE_ID_PHASE_FAILED",
                 "MESSAGE_ID_INIT_COMPLETE", "MESSAGE_ID_JOIN_REFRESHED"):
        mid = getattr(log, name)
        assert len(mid) == 32 and int(mid, 16)
        assert mid in doc, name
    for field in ("KUBEINIT_PHASE", "KUBEINIT_RESULT", "KUBEINIT_DURATION", "KUBEINIT_CPU",
                  "KUBEINIT_ERROR", "KUBEINIT_HINT"):
        assert field in doc


def test_redact_masks_registered_secrets() -> None:
    log.register_secret("abcdef.0123456789abcdef")
    assert log.redact("token abcdef.0123456789abcdef here") == "token <redacted> here"
