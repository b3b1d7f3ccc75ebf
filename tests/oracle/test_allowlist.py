"""The allow-list is well-formed: every entry has an id, fields and a reason, and the
matching rules excuse exactly what they name."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.oracle.compare import Allowlist, Difference


def test_allowlist_loads_and_every_entry_has_a_reason() -> None:
    a = Allowlist.load()
    assert a.entries
    assert all(len(e.reason) > 20 for e in a.entries)


def test_raw_values_are_excused_but_their_properties_are_not() -> None:
    a = Allowlist.load()
    art = "/etc/kubernetes/pki/apiserver.crt"
    excused = [Difference("default", art, f, 1, 2) for f in
               ("serial", "not_before", "public_key.sha256", "ski", "aki.keyid")]
    judged = [Difference("default", art, f, 1, 2) for f in
              ("serial.in_kubeadm_range", "valid_from", "valid_until", "ski.method",
               "aki.keyid_is_issuer_ski", "san", "subject")]
    bad, ok = a.split(excused + judged)
    assert ok == excused
    assert bad == judged


@pytest.mark.parametrize("text, message", [
    ("entries:\n- id: x\n  fields: [a]\n", "needs a reason"),
    ("entries:\n- id: x\n  fields: [a]\n  reason: r\n  typo: 1\n", "unknown keys"),
    ("entries:\n- id: x\n  reason: because\n", "needs an id and a list of fields"),
])
def test_malformed_entries_are_rejected(tmp_path: Path, text: str, message: str) -> None:
    p = tmp_path / "allowlist.yaml"
    p.write_text(text)
    with pytest.raises(ValueError, match=message):
        Allowlist.load(p)
