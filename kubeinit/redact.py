"""The one masking helper: bootstrap tokens and certificate keys never reach a log line, a
journal field, an error message, state.json, init.failed or a `--debug` traceback (house style
§9, issue 9).

Secrets are registered the moment kubeinit reads or mints them (`register_secret`); the config
parser registers every `token` and `certificateKey` value of a configuration before it checks
them, so a rejected one is masked too. `redact` replaces registered secrets, and also the
secret half of anything shaped like a bootstrap token (`abcdef.0123456789abcdef` becomes
`abcdef.<redacted>`: the token ID is public, as in kubeadm's own output), so a token that was
never registered still cannot be shown. `KubeinitError` redacts its message and hint when it is
made, so every consumer of an error (stderr, journal, state journal, failure marker) gets the
masked text; the CLIs redact formatted tracebacks.

This module imports nothing from kubeinit: `kubeinit.errors` and `kubeinit.run` both use it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

REDACTED = "<redacted>"
# cluster-bootstrap's BootstrapTokenPattern, not anchored: the 16-character secret part goes.
_TOKEN_SHAPE = re.compile(r"(?<![a-z0-9])([a-z0-9]{6})\.[a-z0-9]{16}(?![a-z0-9])")
# Shorter values are too likely to occur in ordinary text; a valid token secret has 16
# characters, a certificate key 64.
MIN_SECRET_LENGTH = 6

_secrets: set[str] = set()


def register_secret(value: str) -> None:
    """Never let `value` reach a log line, a journal field or an error message."""
    if isinstance(value, str) and len(value) >= MIN_SECRET_LENGTH:
        _secrets.add(value)


def register_secrets(values: Iterable[str]) -> None:
    for v in values:
        register_secret(v)


def redact(text: str) -> str:
    """`text` with every registered secret and every token-shaped secret masked."""
    for s in sorted(_secrets, key=len, reverse=True):
        if s in text:
            text = text.replace(s, REDACTED)
    return _TOKEN_SHAPE.sub(lambda m: f"{m.group(1)}.{REDACTED}", text)


_HEX_KEY = re.compile(r"(?<![0-9a-fA-F])[0-9a-fA-F]{64}(?![0-9a-fA-F])")


def redact_keys(text: str) -> str:
    """`redact`, and also anything shaped like a certificate key (64 hex digits): for text
    that holds no image digests, such as an argument parser's error about argv."""
    return _HEX_KEY.sub(REDACTED, redact(text))


def mask(text: str, secrets: Iterable[str] = ()) -> str:
    """`redact`, plus the given `secrets` (which are not registered): what kubeinit.run masks
    in a command line and its stderr."""
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, "***")
    return redact(text)
