"""Node identity: the name and advertise address that make one clone differ from another.

Resolved at boot, never at image build time (field lessons #6, #11). Each of the two values is
taken from the first source that sets it:

1. explicit overrides (`kubeinit init --node-name/--advertise-address`);
2. the kernel command line: `kubeinit.node-name=` and `kubeinit.advertise-address=`
   (/proc/cmdline, or the file given to `kubeinit init --kernel-cmdline`);
3. systemd credentials: files `kubeinit.node-name` and `kubeinit.advertise-address` in
   $CREDENTIALS_DIRECTORY (kubeinit.service has `ImportCredential=kubeinit.*`);
4. the configuration (/etc/kubeinit/config.yaml): nodeRegistration.name and
   localAPIEndpoint.advertiseAddress; then the same fields of the image profile's
   configuration, when the configuration came from elsewhere (firstboot.templates);
5. detection as kubeadm does it: the lower-cased hostname (nodeutil.GetHostname) and the first
   global unicast address of the interface carrying the default route
   (netutil.ChooseHostInterface), IPv4 preferred.

An invalid value from the kernel command line or a credential is an error (exit 2) naming the
source, never silently skipped: a clone must not come up with another clone's identity.
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
    out: list[str] = []
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
            res = fcntl.ioctl(s.fileno(), siocgifaddr, struct.pack("256s", iface.encode()[:15]))
        except OSError:
            return None
    return socket.inet_ntoa(res[20:24])


def detect_advertise_address(proc: Path = Path("/proc")) -> str | None:
    for iface in _default_route_interfaces(proc):
        addr = _ipv4_of(iface)
        if addr and ipaddress.ip_address(addr).is_global | ipaddress.ip_address(addr).is_private:
            return addr
    return None


KERNEL_NODE_NAME = "kubeinit.node-name"
KERNEL_ADVERTISE_ADDRESS = "kubeinit.advertise-address"


def kernel_cmdline_values(text: str) -> dict[str, str]:
    """`key=value` words of a kernel command line (double quotes group words, as the kernel's
    next_arg does); later words win, as for any kernel parameter read last."""
    out: dict[str, str] = {}
    word: list[str] = []
    words: list[str] = []
    quoted = False
    for ch in text:
        if ch == '"':
            quoted = not quoted
        elif ch.isspace() and not quoted:
            if word:
                words.append("".join(word))
            word = []
        else:
            word.append(ch)
    if word:
        words.append("".join(word))
    for w in words:
        key, sep, value = w.partition("=")
        if sep and key in (KERNEL_NODE_NAME, KERNEL_ADVERTISE_ADDRESS):
            out[key] = value
    return out


def _read_credentials(directory: Path | None) -> dict[str, tuple[str, str]]:
    """{key: (value, where)} from a systemd credentials directory."""
    out: dict[str, tuple[str, str]] = {}
    if directory is None:
        return out
    for key in (KERNEL_NODE_NAME, KERNEL_ADVERTISE_ADDRESS):
        f = directory / key
        try:
            out[key] = (f.read_text().strip(), f"systemd credential {f}")
        except FileNotFoundError:
            continue
        except (OSError, UnicodeDecodeError) as e:
            why = e.strerror if isinstance(e, OSError) else "not UTF-8 text"
            raise InvalidInput(
                f"systemd credential {f}: cannot read: {why}",
                hint="give the credential as a UTF-8 text file",
            ) from None
    return out


def _check(key: str, value: str, where: str) -> None:
    if key == KERNEL_NODE_NAME:
        try:
            validate_node_name(value, where)
        except InvalidInput as e:
            raise InvalidInput(
                f"{where}: {key}={value!r} is not a valid node name", hint=e.hint
            ) from None
        return
    try:
        validate_advertise_address(value, where)
    except InvalidInput as e:
        raise InvalidInput(
            f"{where}: {key}={value!r} is not a usable advertise address", hint=e.hint
        ) from None


def boot_overrides(
    *, cmdline: Path | None = None, credentials_dir: Path | None = None
) -> dict[str, tuple[str, str]]:
    """The identity the boot environment dictates: {key: (value, where)}, the kernel command
    line over systemd credentials. Values are validated here (InvalidInput, exit 2)."""
    found = _read_credentials(credentials_dir)
    if cmdline is not None:
        try:
            text = cmdline.read_text()
        except FileNotFoundError:
            text = ""
        except (OSError, UnicodeDecodeError) as e:
            why = e.strerror if isinstance(e, OSError) else "not UTF-8 text"
            raise InvalidInput(
                f"{cmdline}: cannot read the kernel command line: {why}",
                hint="--kernel-cmdline takes a text file like /proc/cmdline",
            ) from None
        for key, value in kernel_cmdline_values(text).items():
            found[key] = (value, f"kernel command line ({cmdline})")
    for key, (value, where) in found.items():
        _check(key, value, where)
    return found


def resolve_identity(
    config: Config,
    *,
    node_name: str | None = None,
    advertise_address: str | None = None,
    cmdline: Path | None = None,
    credentials_dir: Path | None = None,
    baked: Config | None = None,
) -> Identity:
    """Explicit overrides, the kernel command line, systemd credentials, the configuration,
    the image profile's configuration (`baked`, when the configuration came from elsewhere),
    then detection (see the module docstring)."""
    where = config.source
    boot = boot_overrides(cmdline=cmdline, credentials_dir=credentials_dir)
    node_name = node_name or boot.get(KERNEL_NODE_NAME, ("", ""))[0] or None
    advertise_address = advertise_address or boot.get(KERNEL_ADVERTISE_ADDRESS, ("", ""))[0] or None
    baked_name = baked.init.node_registration.name if baked else ""
    baked_address = baked.init.local_api_endpoint.advertise_address if baked else ""
    name = node_name or config.init.node_registration.name or baked_name or detect_hostname()
    validate_node_name(name, where)
    address = (
        advertise_address
        or config.init.local_api_endpoint.advertise_address
        or baked_address
        or detect_advertise_address()
    )
    if not address:
        raise InvalidInput(
            f"{where}: no advertise address: none configured and no default"
            " route to detect one from",
            hint="set localAPIEndpoint.advertiseAddress or"
            " kubeinit.advertise-address= on the kernel command line",
        )
    validate_advertise_address(address, where)
    return Identity(node_name=name, advertise_address=address)
