"""Do not mint certificates with a clock from the past.

A node without a battery-backed RTC boots with a clock far behind (often 1970 or the
filesystem's last mount time); systemd's time-sync.target does not wait for a synchronised
clock. Certificates minted then are "not yet valid" or expire early once the clock jumps.
So before the first phase that mints certificates, the runner compares the clock with the
image's build time (the profile's `built`, else the newest file of this kubeinit): if the
clock is behind, it waits a bounded time for systemd-timesyncd or chrony to synchronise, then
fails with a hint. The clock, the sync probe and the sleep are injected (`Clock`), so a test
sets the time without touching the machine's.
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from kubeinit.errors import KubeinitError, PhaseFailed
from kubeinit.run import run

# systemd-timesyncd touches this file once it has synchronised (systemd-timesyncd.service(8)).
TIMESYNCD_SYNCHRONIZED = Path("/run/systemd/timesync/synchronized")
DEFAULT_WAIT = 90.0  # seconds; well inside the unit's TimeoutStartSec
POLL = 2.0


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def ntp_synchronized() -> bool:
    """Whether the kernel clock is NTP-synchronised: timesyncd's stamp, else timedated's
    NTPSynchronized (which also covers chrony and ntpd, through adjtimex)."""
    if TIMESYNCD_SYNCHRONIZED.exists():
        return True
    try:
        res = run(
            ["timedatectl", "show", "-p", "NTPSynchronized", "--value"], check=False, timeout=10
        )
    except KubeinitError:  # no timedatectl, or no D-Bus/timedated (not booted with systemd)
        return False
    return res.returncode == 0 and res.stdout.strip() == "yes"


@dataclass(frozen=True)
class Clock:
    now: Callable[[], datetime.datetime] = _now
    synchronized: Callable[[], bool] = ntp_synchronized
    sleep: Callable[[float], None] = time.sleep
    wait: float = DEFAULT_WAIT
    poll: float = POLL


def shipped_time() -> datetime.datetime:
    """The newest file of this kubeinit (installed by kubeinit-build at build time)."""
    pkg = Path(__file__).resolve().parents[1]
    newest = max(
        p.stat().st_mtime for d in ("kubeinit", "firstboot") for p in (pkg / d).glob("*.py")
    )
    return datetime.datetime.fromtimestamp(int(newest), datetime.UTC)


def parse_built(text: str) -> datetime.datetime | None:
    if not text:
        return None
    try:
        t = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return t if t.tzinfo is not None else t.replace(tzinfo=datetime.UTC)


def check_clock(
    built: datetime.datetime, clock: Clock, say: Callable[[str], None]
) -> datetime.datetime | None:
    """None when the clock is not behind `built`. Otherwise waits up to `clock.wait` seconds
    for a synchronised clock and returns the new time, or raises PhaseFailed."""
    now = clock.now()
    if now >= built:
        return None
    say(
        f"the clock ({_fmt(now)}) is behind this image's build time ({_fmt(built)}):"
        f" waiting up to {clock.wait:g} s for time synchronisation before minting certificates"
    )
    waited = 0.0
    while True:
        synced = clock.synchronized()
        now = clock.now()
        if now >= built:
            return now
        if synced:
            # A synchronised clock is right even if the build host's clock was not.
            say(
                f"the clock is NTP-synchronised but behind the build time {_fmt(built)}:"
                " trusting it"
            )
            return now
        if waited >= clock.wait:
            raise PhaseFailed(
                f"the clock ({_fmt(now)}) is behind this image's build time ({_fmt(built)}) and"
                f" did not synchronise within {clock.wait:g} s: certificates minted now would"
                " not be valid yet, or expire early once the clock jumps",
                hint="give the node time: check NTP (timedatectl timesync-status; systemd-timesyncd"
                " or chrony must reach a server) or set the RTC, then start kubeinit again",
            )
        step = min(clock.poll, clock.wait - waited) or clock.poll
        clock.sleep(step)
        waited += step


def _fmt(t: datetime.datetime) -> str:
    return t.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
