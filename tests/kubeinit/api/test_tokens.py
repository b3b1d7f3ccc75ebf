"""kubeinit/api/tokens.py: a configured `expires` becomes the token's expiration exactly, or
an error; never a token that does not expire (issue 9, finding 4)."""

from __future__ import annotations

import datetime

import pytest

from kubeinit.api.tokens import tokens_from_config
from kubeinit.config import BootstrapToken

NOW = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)


@pytest.mark.parametrize(
    "expires",
    ["next tuesday", "2030-01-02", "2030-01-02T03:04:05", "2030-01-02 03:04:05Z", ""],
    ids=["words", "date-only", "no-zone", "space-not-T", "empty"],
)
def test_an_unparseable_expires_raises_instead_of_never_expiring(expires: str) -> None:
    token = BootstrapToken(token="abcdef.0123456789abcdef", expires=expires)
    if expires == "":  # "" is not absent for kubeadm, but it is for this defaulting: ttl 24h
        (t,) = tokens_from_config([token], NOW)
        assert t.expires == NOW + datetime.timedelta(hours=24)
        return
    with pytest.raises(ValueError, match="not an RFC 3339 time") as e:
        tokens_from_config([token], NOW)
    assert "0123456789abcdef" not in str(e.value)


@pytest.mark.parametrize(
    ("expires", "utc"),
    [
        ("2030-01-02T03:04:05Z", "2030-01-02T03:04:05+00:00"),
        ("2030-01-02T03:04:05+02:00", "2030-01-02T01:04:05+00:00"),
    ],
    ids=["zulu", "offset"],
)
def test_an_rfc3339_expires_is_the_expiration(expires: str, utc: str) -> None:
    (t,) = tokens_from_config([BootstrapToken(expires=expires)], NOW)
    assert t.expires is not None
    assert t.expires.astimezone(datetime.UTC).isoformat() == utc
