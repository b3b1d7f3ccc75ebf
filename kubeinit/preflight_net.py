"""Pre-flight checks that talk to something: proxy settings (HTTPProxy, HTTPProxyCIDR), the
container runtime through crictl (CRI, ContainerRuntimeVersion, ImagePull, which imports the
image's preloaded archives with containerd's `ctr` first) and an external etcd
(ExternalEtcdVersion). kubeadm speaks CRI gRPC itself; kubeinit runs `crictl` through
kubeinit.run, with the endpoint given explicitly (no /etc/crictl.yaml is read).
"""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kubeinit import paths
from kubeinit.errors import PhaseFailed
from kubeinit.preflight_checks import Check, CheckError, Outcome, Version
from kubeinit.preload import (
    ImageStore,
    Preload,
    containerd_address,
    import_archives,
    list_store,
    verify_store,
)
from kubeinit.run import run

if TYPE_CHECKING:
    import ssl

CRICTL = "crictl"
CONTAINERD = "containerd"
CONTAINERD_CONFIG = "/etc/containerd/config.toml"  # containerd's default --config
CRI_TIMEOUT = "10s"
MIN_EXTERNAL_ETCD_VERSION = "3.5.24-0"  # constants.go MinExternalEtcdVersion

# --- proxies (Go's httpproxy.FromEnvironment plus apimachinery's NO_PROXY CIDRs) --------------


def _env_any(*names: str) -> str:
    for n in names:
        if os.environ.get(n):
            return os.environ[n]
    return ""


def _split_host_port(text: str) -> tuple[str, str] | None:
    """Go's net.SplitHostPort, for NO_PROXY entries."""
    if text.startswith("["):
        close = text.find("]")
        if close < 0 or not text[close + 1 :].startswith(":"):
            return None
        return text[1:close], text[close + 2 :]
    if text.count(":") != 1:
        return None
    host, port = text.split(":")
    return host, port


def https_proxy_for(host: str, port: str) -> str | None:
    """The proxy an https request to host:port would use (golang.org/x/net/http/httpproxy
    FromEnvironment, as Go's http.ProxyFromEnvironment), or None."""
    proxy = _env_any("HTTPS_PROXY", "https_proxy")
    if not proxy:
        return None
    if "://" not in proxy:
        proxy = "http://" + proxy
    if host == "localhost":
        return None
    try:
        ip: ipaddress.IPv4Address | ipaddress.IPv6Address | None = ipaddress.ip_address(host)
    except ValueError:
        ip = None
    if ip is not None and ip.is_loopback:
        return None
    h = host.strip().lower()
    for rule in (r.strip().lower() for r in _env_any("NO_PROXY", "no_proxy").split(",")):
        if not rule:
            continue
        if rule == "*":
            return None
        if "/" in rule:
            try:
                if ip is not None and ip in ipaddress.ip_network(rule, strict=False):
                    return None
                continue
            except ValueError:
                pass
        split = _split_host_port(rule)
        rule_host, rule_port = split if split is not None else (rule, "")
        if not rule_host:
            continue
        try:
            rule_ip = ipaddress.ip_address(rule_host)
        except ValueError:
            rule_ip = None
        if rule_ip is not None:
            if ip is not None and rule_ip == ip and rule_port in ("", port):
                return None
            continue
        if rule_host.startswith("*."):
            rule_host = rule_host[1:]
        match_host = not rule_host.startswith(".")
        if match_host:
            rule_host = "." + rule_host
        if (h.endswith(rule_host) or (match_host and h == rule_host[1:])) and rule_port in (
            "",
            port,
        ):
            return None
    return proxy


def http_proxy_check(host: str) -> Check:
    def check() -> Outcome:
        shown = f"https://[{host}]:1234" if ":" in host else f"https://{host}"
        proxy = https_proxy_for(host, "1234" if ":" in host else "443")
        if proxy:
            return [
                f'Connection to "{shown}" uses proxy "{proxy}". If that is not intended,'
                " adjust your proxy settings"
            ], []
        return [], []

    return Check("HTTPProxy", check, live=True)


def http_proxy_cidr_check(cidr: str) -> Check:
    def check() -> Outcome:
        if not cidr:
            return [], []
        try:
            net = ipaddress.ip_network(cidr, strict=False)
        except ValueError as e:
            return [], [f'error parsing CIDR "{cidr}": {e}']
        test_ip = net.network_address + 1
        proxy = https_proxy_for(str(test_ip), "1234")
        if proxy:
            return [
                f'connection to "{cidr}" uses proxy "{proxy}". This may lead to'
                " malfunctional cluster setup. Make sure that Pod and Services IP ranges"
                " specified correctly as exceptions in proxy configuration"
            ], []
        return [], []

    return Check("HTTPProxyCIDR", check, live=True)


# --- the container runtime, through crictl --------------------------------------------------


def crictl(cri_socket: str, *args: str) -> tuple[int, str, str]:
    """Run crictl against `cri_socket`; (returncode, stdout, stderr). Raises CheckError when
    crictl itself cannot be run."""
    argv = [
        CRICTL,
        "--runtime-endpoint",
        cri_socket,
        "--image-endpoint",
        cri_socket,
        "--timeout",
        CRI_TIMEOUT,
        *args,
    ]
    if shutil.which(CRICTL) is None:
        raise CheckError(f"{CRICTL}: executable file not found in $PATH")
    try:
        res = run(argv, check=False, timeout=120)
    except PhaseFailed as e:
        raise CheckError(e.message) from None
    return res.returncode, res.stdout, res.stderr


def _last_line(text: str) -> str:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1].strip() if lines else ""


def cri_status(cri_socket: str) -> dict[str, Any]:
    """The CRI Status (crictl info -q). Raises CheckError if the runtime cannot be reached."""
    try:
        rc, out, err = crictl(cri_socket, "info", "-q")
    except CheckError as e:
        raise CheckError(f"could not connect to the container runtime: {e}") from None
    if rc != 0:
        raise CheckError(f"could not connect to the container runtime: {_last_line(err)}")
    try:
        data = json.loads(out)
        return dict(data)
    except (ValueError, TypeError):
        raise CheckError("container runtime is not running: crictl info printed no JSON") from None


def cri_check(cri_socket: str) -> Check:
    def check() -> Outcome:
        try:
            status = cri_status(cri_socket)
        except CheckError as e:
            return [], [str(e)]
        for cond in (status.get("status") or {}).get("conditions") or []:
            if cond.get("type") == "RuntimeReady" and not cond.get("status"):
                return [], [
                    f'container runtime condition "RuntimeReady" is not true. reason:'
                    f" {cond.get('reason', '')}, message: {cond.get('message', '')}"
                ]
        return [], []

    return Check("CRI", check, live=True)


def cri_version_check(cri_socket: str) -> Check:
    def check() -> Outcome:
        try:
            cri_status(cri_socket)
            rc, _, err = crictl(cri_socket, "runtime-config")
        except CheckError as e:
            return [], [str(e)]
        if rc == 0:
            return [], []
        if "code = Unimplemented" in err:
            return [
                "You must update your container runtime to a version that supports the CRI"
                " method RuntimeConfig. Falling back to using cgroupDriver from kubelet"
                " config will be removed in 1.38. For more information, see"
                " https://git.k8s.io/enhancements/keps/sig-node/4033-group-driver-detection"
                "-over-cri"
            ], []
        return [], [
            "could not check if the runtime config is available: failed to call"
            f" RuntimeConfig gRPC method: {_last_line(err)}"
        ]

    return Check("ContainerRuntimeVersion", check, live=True)


SANDBOX_WARNING = (
    'detected that the sandbox image "{cri}" of the container runtime is inconsistent with that'
    ' used by kubeadm. It is recommended to use "{want}" as the CRI sandbox image.'
)


def runtime_sandbox_image(cri_socket: str, root: Path = Path("/")) -> str:
    """The container runtime's sandbox (pause) image, or "" when it cannot be told.

    kubeadm reads `sandboxImage` from the config in the CRI's verbose status
    (util/runtime/runtime.go SandboxImage). containerd 2.x no longer puts it there (its image
    settings, `pinned_images.sandbox`, are not in the CRI status), so kubeinit then asks
    containerd for the effective configuration of <root>/etc/containerd/config.toml
    (`containerd --config FILE config dump`; containerd's defaults when there is no file)."""
    import tomllib

    # The configuration file's own setting first: reading a file costs nothing, while each
    # command below starts a large Go binary (about a second each under emulation). Only a
    # file that pulls in others (`imports`) or says nothing needs containerd to tell.
    try:
        text = paths.under(root, CONTAINERD_CONFIG).read_text(encoding="utf-8")
        own = tomllib.loads(text)
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        own = {}
    pinned = own.get("plugins", {}).get("io.containerd.cri.v1.images", {}).get("pinned_images")
    if not own.get("imports") and isinstance(pinned, dict) and pinned.get("sandbox"):
        return str(pinned["sandbox"])
    try:
        rc, out, _ = crictl(cri_socket, "info")
        info = json.loads(out) if rc == 0 else {}
    except (CheckError, ValueError):
        info = {}
    config = info.get("config") if isinstance(info, dict) else None
    if isinstance(config, dict) and config.get("sandboxImage"):
        return str(config["sandboxImage"])
    if shutil.which(CONTAINERD) is None:
        return ""
    try:
        res = run(
            [CONTAINERD, "--config", paths.under(root, CONTAINERD_CONFIG), "config", "dump"],
            check=False,
            timeout=60,
        )
        dump = tomllib.loads(res.stdout) if res.returncode == 0 else {}
    except (PhaseFailed, tomllib.TOMLDecodeError):
        return ""
    plugins = dump.get("plugins", {})
    images = plugins.get("io.containerd.cri.v1.images", {})
    sandbox = images.get("pinned_images", {}).get("sandbox", "")
    if not sandbox:  # containerd 1.x (config version 2)
        sandbox = plugins.get("io.containerd.grpc.v1.cri", {}).get("sandbox_image", "")
    return str(sandbox)


def cri_image_tags(cri_socket: str) -> dict[str, bool]:
    """Every repo tag the CRI lists, and whether it reports it pinned (one `crictl images -o
    json`: the kubelet's view; the kubelet's image GC never removes a pinned image)."""
    rc, out, err = crictl(cri_socket, "images", "-o", "json")
    if rc != 0:
        raise CheckError(f"could not list the container runtime's images: {_last_line(err)}")
    try:
        listed = json.loads(out).get("images") or []
    except (ValueError, AttributeError):
        raise CheckError("could not list the container runtime's images: not JSON") from None
    return {
        str(t): bool(img.get("pinned"))
        for img in listed
        if isinstance(img, dict)
        for t in img.get("repoTags") or ()
    }


ALWAYS_WARNING = (
    "imagePullPolicy Always: a kubeinit node pulls nothing; the images preloaded into this"
    " image were verified and are used instead"
)


def image_pull_check(
    cri_socket: str,
    images: Sequence[str],
    pull_policy: str,
    *,
    preload: Sequence[Preload] = (),
    store: ImageStore | None = None,
    root: Path = Path("/"),
    sandbox_image: str = "",
    log: Callable[[str], None] | None = None,
    imported: list[str] | None = None,
) -> Check:
    """kubeadm's ImagePull, air-gapped: nothing is ever pulled. The image's preloaded archives
    (`preload`, kubeinit.preload: archive mode) holding an image the runtime lacks are imported
    into containerd's `k8s.io` namespace; the images of `store` (the profile's imageStore) are
    verified against containerd's records (digest, content, unpacked, pinned); then every image
    of the release must be in the CRI, and the runtime's sandbox image should be the pinned
    pause image (`sandbox_image`): a warning as in kubeadm when it is another one, an error when
    that other one is not in the runtime either (every pod sandbox would pull it). Archives
    imported are appended to `imported`.

    Pull policies: Never skips the presence checks as kubeadm does, but the preloaded archives
    are still imported (they are local: no pull) and verified, so the kubelet finds them;
    Always is IfNotPresent plus a warning (there is nothing to pull from)."""
    verify = store is not None and bool(store.images)

    def check() -> Outcome:
        if pull_policy == "Never" and not preload and not verify:
            return [], []  # kubeadm skips all images with policy Never, before any CRI call
        try:
            tags = cri_image_tags(cri_socket)
        except CheckError as e:
            try:  # kubeadm's own words for a runtime that does not answer
                cri_status(cri_socket)
            except CheckError as down:
                return [], [str(down)]
            return [], [str(e)]
        errors: list[str] = []
        warnings: list[str] = []
        if pull_policy == "Always":
            warnings.append(ALWAYS_WARNING)

        if preload:
            try:
                report = import_archives(cri_socket, preload, root, tags.__contains__, log)
            except CheckError as e:
                return [], [str(e)]
            if log is not None and report.already_present:
                log(
                    f"{len(report.already_present)} preloaded archives already in the"
                    " container runtime"
                )
            if imported is not None:
                imported.extend(report.imported)
            errors += report.errors
            if report.imported:
                try:
                    tags = cri_image_tags(cri_socket)
                except CheckError as e:
                    return [], [*errors, str(e)]
        if verify:
            assert store is not None
            address = containerd_address(cri_socket)
            if address is None:
                errors.append(
                    f"cannot verify the preloaded images: {cri_socket} is not a unix socket"
                )
            else:
                try:
                    # labels: the CRI's own pinned flag (above) is the one the kubelet reads
                    stored = list_store(address, store.snapshotter, pinned=tags)
                except PhaseFailed as e:
                    return [], [*errors, f"cannot read containerd's images: {e.message}"]
                errors += verify_store(store, stored)
                if log is not None and not errors:
                    log(f"{len(store.images)} preloaded images verified in containerd")
        if pull_policy == "Never":
            return warnings, errors
        missing = [image for image in images if image not in tags]
        if missing:
            errors.append(
                f"{len(missing)} of {len(images)} images are missing from the"
                " container runtime (they are preloaded into the image, never pulled):"
                " " + ", ".join(missing)
            )
        if sandbox_image:
            cri = runtime_sandbox_image(cri_socket, root)
            if cri and cri != sandbox_image:
                warnings.append(SANDBOX_WARNING.format(cri=cri, want=sandbox_image))
                if cri not in tags:
                    errors.append(
                        f'the sandbox image "{cri}" of the container runtime is not in the'
                        " runtime: every Pod sandbox would pull it"
                    )
        return warnings, errors

    return Check("ImagePull", check, live=True)


# --- external etcd --------------------------------------------------------------------------


def external_etcd_version_check(
    http_endpoints: Sequence[str],
    root: Path,
    *,
    ca_file: str = "",
    cert_file: str = "",
    key_file: str = "",
    retries: int = 3,
    interval: float = 5.0,
) -> Check:
    """ExternalEtcdVersionCheck: GET <endpoint>/version of each httpEndpoint; the TLS files are
    read under `root`."""

    def check() -> Outcome:
        import ssl

        if not http_endpoints:
            return [], []
        ctx: ssl.SSLContext | None = None
        if ca_file:
            ca = paths.under(root, ca_file)
            try:
                ctx = ssl.create_default_context(cafile=str(ca))
            except (OSError, ssl.SSLError) as e:
                return [], [f"couldn't load external etcd's server certificate {ca}: {e}"]
        if cert_file and key_file:
            cert, key = paths.under(root, cert_file), paths.under(root, key_file)
            try:
                ctx = ctx or ssl.create_default_context()
                ctx.load_cert_chain(str(cert), str(key))
            except (OSError, ssl.SSLError) as e:
                return [], [
                    f"couldn't load external etcd's certificate and key pair {cert}, {key}: {e}"
                ]
        errors = []
        minimum = Version.parse(MIN_EXTERNAL_ETCD_VERSION)
        for endpoint in http_endpoints:
            url = endpoint + "/version"
            try:
                body = _get_with_retries(url, ctx, retries, interval)
                server = str(json.loads(body).get("etcdserver", ""))
            except (OSError, ValueError, AttributeError) as e:
                errors.append(str(e))
                continue
            try:
                version = Version.parse(server)
            except ValueError:
                errors.append(f'couldn\'t parse external etcd version "{server}"')
                continue
            if version.less_than(minimum):
                errors.append(
                    "this version of kubeadm only supports external etcd version >="
                    f" {MIN_EXTERNAL_ETCD_VERSION}. Current version: {server}"
                )
        return [], errors

    return Check("ExternalEtcdVersion", check, live=True)


def _get_with_retries(url: str, ctx: ssl.SSLContext | None, retries: int, interval: float) -> bytes:
    """getEtcdVersionResponse: 1 + `retries` attempts, `interval` apart, on network errors and
    5xx answers; proxies from the environment, as Go's transport."""
    import urllib.error
    import urllib.request

    last: Exception = OSError("no attempt")
    handlers: list[Any] = [urllib.request.HTTPSHandler(context=ctx)] if ctx else []
    opener = urllib.request.build_opener(*handlers)
    for attempt in range(retries + 1):
        if attempt:
            time.sleep(interval)
        try:
            with opener.open(url, timeout=10) as resp:
                data: bytes = resp.read()
                return data
        except urllib.error.HTTPError as e:
            if not 500 <= e.code <= 599:
                return bytes(e.read())
            last = OSError(f"server responded with non-successful status: {e.code} {e.reason}")
        except OSError as e:
            last = e
    raise OSError(f'Get "{url}": {last}')
