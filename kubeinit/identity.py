"""Node identity: the name and advertise address that make one clone differ from another.

Resolved at boot, never at image build time (field lessons #6, #11). The order of precedence is
explicit configuration first, then detection as kubeadm does it: the lower-cased hostname
(nodeutil.GetHostname) and the first global unicast address of the interface carrying the
default route (netutil.ChooseHostInterface), IPv4 preferred.
"""

from __future__ import annotations

import fcntl
import ipaddress
import socket
import struct
from dataclasses import dataclass
from pathlib import Path

from kubeinit.config import Config, validate_advertise_address, validate_node_name
from kubeinit.errors import InvalidInput


@dataclass(frozen=True)
class Identity:
    node_name: str
    advertise_address: str

    @property
    def is_ipv6(self) -> bool:
        return ipaddress.ip_address(self.advertise_address).version == 6

    @property
    def loopback(self) -> str:
        """kubeadm uses ::1 for local endpoints when the advertise address is IPv6."""
        return "::1" if self.is_ipv6 else "127.0.0.1"


def url_host(address: str) -> str:
    return f"[{address}]" if ":" in address else address


def detect_hostname() -> str:
    return socket.gethostname().strip().lower()


def _default_route_interfaces(proc: Path) -> list[str]:
    out = []
    try:
        lines = (proc / "net/route").read_text().splitlines()[1:]
    except OSError:
        return out
    for line in lines:
        fields = line.split()
        if len(fields) >= 8 and fields[1] == "00000000" and fields[7] == "00000000":
            out.append(fields[0])
    return out


def _ipv4_of(iface: str) -> str | None:
    siocgifaddr = 0x8915
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            res = fcntl.ioctl(s.fileno(), siocgifaddr,
                              struct.pack("256s", iface.encode()[:15]))
        except OSError:
            return None
    return socket.inet_ntoa(res[20:24])


def detect_advertise_address(proc: Path = Path("/proc")) -> str | None:
    for iface in _default_route_interfaces(proc):
        addr = _ipv4_of(iface)
        if addr and ipaddress.ip_address(addr).is_global | ipaddress.ip_address(addr).is_private:
            return addr
    return None


def resolve_identity(config: Config, *, node_name: str | None = None,
                     advertise_address: str | None = None) -> Identity:
    """Explicit overrides, then the config file, then detection."""
    where = config.source
    name = node_name or config.init.node_registration.name or detect_hostname()
    validate_node_name(name, where)
    address = (advertise_address or config.init.local_api_endpoint.advertise_address
               or detect_advertise_address())
    if not address:
        raise InvalidInput(f"{where}: no advertise address: none configured and no default"
                           " route to detect one from",
                           hint="set localAPIEndpoint.advertiseAddress or"
                           " kubeinit.advertise-address= on the kernel command line")
    validate_advertise_address(address, where)
    return Identity(node_name=name, advertise_address=address)
