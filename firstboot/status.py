"""`kubeinit status`: what first boot did, phase by phase, for an operator or a script.

Reads only kubeinit's own records under the root: the state journal, the completion stamp, the
failure marker and join.json. Every line passes through `kubeinit.redact` with the saved
secrets registered first, so neither the bootstrap token nor the certificate key can be shown.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from firstboot.phase import Phase
from firstboot.selection import leaves
from firstboot.state import State, done_stamp, failed_marker
from kubeinit import paths
from kubeinit.redact import redact_keys


def _register_saved_secrets(root: Path) -> None:
    """Load the saved secrets only so that redact() knows them; unreadable files are fine."""
    from firstboot.credentials import load_tokens, load_uploaded
    from kubeinit.errors import KubeinitError

    for load in (load_tokens, load_uploaded):
        with contextlib.suppress(KubeinitError, OSError, KeyError, ValueError):
            load(root)


def _join_summary(root: Path) -> dict[str, Any] | None:
    f = paths.under(root, paths.JOIN_INFO)
    try:
        data = json.loads(f.read_text())
    except (OSError, ValueError):
        return None
    return {
        "worker": str(paths.JOIN_COMMAND),
        "controlPlane": str(paths.JOIN_COMMAND_CONTROL_PLANE)
        if data.get("certificateKey")
        else None,
        "tokenExpires": data.get("tokenExpires"),
        "certificateKeyExpires": data.get("certificateKeyExpires"),
        "server": data.get("server"),
    }


def collect(root: Path, tree: Sequence[Phase]) -> dict[str, Any]:
    state = State.load(root)
    failure = None
    marker = failed_marker(root)
    if marker.exists():
        try:
            failure = json.loads(marker.read_text())
        except (OSError, ValueError):
            failure = {"phase": "?", "error": f"{marker} is unreadable", "hint": ""}
    rows = []
    for path, _ in leaves(tree):
        rec = state.phases.get(path)
        rows.append(
            {
                "phase": path,
                "result": rec.result if rec else "pending",
                "started": rec.started if rec else None,
                "duration": rec.duration if rec else None,
                "error": rec.error if rec else "",
                "hint": rec.hint if rec else "",
            }
        )
    stamp = done_stamp(root)
    finished = None
    if stamp.exists():
        try:
            finished = json.loads(stamp.read_text())
        except (OSError, ValueError):
            finished = {}
    return {
        "complete": stamp.exists(),
        "finished": finished,
        "failed": failure,
        "phases": rows,
        "join": _join_summary(root),
    }


def render_text(s: dict[str, Any]) -> str:
    if s["complete"]:
        head = "complete"
        if s["finished"] and s["finished"].get("finished"):
            head += f" (finished {s['finished']['finished']})"
    elif s["failed"]:
        head = f"failed in phase {s['failed'].get('phase')}"
    else:
        head = "not complete"
    out = [f"kubeinit: {head}"]
    for r in s["phases"]:
        dur = f"{r['duration']:.2f}s" if r["duration"] is not None else ""
        out.append(f"  {r['phase']:<44} {r['result']:<8} {dur:>8}")
        if r["error"]:
            out.append(f"      error: {r['error']}")
            if r["hint"]:
                out.append(f"      hint:  {r['hint']}")
    if s["failed"] and not any(r["error"] for r in s["phases"]):
        out.append(f"  error: {s['failed'].get('error')}")
        out.append(f"  hint:  {s['failed'].get('hint')}")
    j = s["join"]
    if j:
        out.append(f"join: {j['worker']} (token expires {j['tokenExpires'] or 'never'})")
        if j["controlPlane"]:
            out.append(
                f"      {j['controlPlane']} (uploaded certificates expire"
                f" {j['certificateKeyExpires']})"
            )
        out.append(
            "      print them with `kubeinit join-command`; renew with"
            " `kubeinit join-command --refresh`"
        )
    return "\n".join(out)


def show(root: Path, tree: Sequence[Phase], *, as_json: bool) -> bool:
    """Print the status; True when first boot is complete."""
    _register_saved_secrets(root)
    s = collect(root, tree)
    text = json.dumps(s, indent=2) if as_json else render_text(s)
    # redact_keys: a certificate key copied into an old journal's error text is masked too
    print(redact_keys(text))
    return bool(s["complete"])
