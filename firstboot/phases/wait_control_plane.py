"""wait-control-plane: wait for the kubelet, then for the control-plane components.

Mirrors app/cmd/phases/init/waitcontrolplane.go and app/util/apiclient/wait.go:
1. the kubelet's healthz (`http://<healthzBindAddress>:<healthzPort>/healthz` from the
   KubeletConfiguration; skipped when the port is 0), for timeouts.kubeletHealthCheck;
2. kube-apiserver `/livez` (through admin.conf's client), kube-controller-manager `/healthz` and
   kube-scheduler `/livez` (HTTPS, unverified), at the address and port read from the
   static Pod manifests as kubeadm reads them, for timeouts.controlPlaneComponentHealthCheck;
3. the `kubeadm:cluster-admins` ClusterRoleBinding, which kubeadm creates when this phase first
   builds its API client (initData.Client -> EnsureAdminClusterRoleBinding). kubeinit does it
   after the health checks, so a slow API server is reported as such rather than as an RBAC
   failure.

A resumed first boot (after a crash or a power cut) runs this phase again before any API phase
still to run, even when the state journal records it as done: after a reboot the kubelet is
only starting the static Pods again, and the API phases' own retries (timeouts.
kubernetesAPICall, 1 min) are not meant to cover a control plane's start.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from firstboot.context import InitContext
from firstboot.phase import Phase
from kubeinit import hostfs, paths
from kubeinit.config import join_host_port
from kubeinit.errors import PhaseFailed
from kubeinit.schema import format_duration

POLL_INTERVAL = 0.5  # constants.KubernetesAPICallRetryInterval
PROBE_TIMEOUT = 2.0
DEFAULT_KUBELET_HEALTHZ = ("127.0.0.1", 10248)


@dataclass(frozen=True)
class Component:
    name: str
    address_port: str
    endpoint: str

    @property
    def url(self) -> str:
        return f"https://{self.address_port}/{self.endpoint}"


def arg_values(pod: Mapping[str, Any] | None, name: str, args: tuple[str, str]) -> list[str]:
    """getControlPlaneComponentAddressAndPort: the values of `args` in the container whose
    command starts with `name` (later flags win, as kubeadm's loop overwrites)."""
    values = ["", ""]
    if pod is None:
        raise PhaseFailed(
            f"no static Pod manifest for {name}", hint="rerun `kubeinit init phase control-plane`"
        )
    containers = (pod.get("spec") or {}).get("containers") or []
    container = next((c for c in containers if (c.get("command") or [None])[0] == name), None)
    if container is None:
        raise PhaseFailed(f"the {name} Pod has no container command starting with {name!r}")
    for word in container.get("command") or []:
        line = str(word).strip()
        for i, arg in enumerate(args):
            if not (line.startswith("--" + arg) or line.startswith("-" + arg)):
                continue
            _, sep, value = line.partition("=")
            if not sep:
                _, _, value = line.partition(" ")
            values[i] = value
    return values


def control_plane_components(
    pods: Mapping[str, Mapping[str, Any] | None], advertise_address: str
) -> list[Component]:
    """getControlPlaneComponents."""
    table = (
        (
            "kube-apiserver",
            ("advertise-address", "secure-port"),
            advertise_address,
            "6443",
            "livez",
        ),
        (
            "kube-controller-manager",
            ("bind-address", "secure-port"),
            "127.0.0.1",
            "10257",
            "healthz",
        ),
        ("kube-scheduler", ("bind-address", "secure-port"), "127.0.0.1", "10259", "livez"),
    )
    out = []
    for name, args, addr, port, endpoint in table:
        a, p = arg_values(pods.get(name), name, args)
        out.append(Component(name, join_host_port(a or addr, p or port), endpoint))
    return out


def read_manifests(ctx: InitContext) -> dict[str, Mapping[str, Any] | None]:
    import yaml

    pods: dict[str, Mapping[str, Any] | None] = {}
    for name in ("kube-apiserver", "kube-controller-manager", "kube-scheduler"):
        f = ctx.path(paths.MANIFESTS_DIR / f"{name}.yaml")
        try:
            pods[name] = yaml.safe_load(hostfs.read_text(f))
        except FileNotFoundError:
            pods[name] = None
        except (OSError, yaml.YAMLError) as e:
            raise PhaseFailed(
                f"{f}: cannot read the static Pod manifest: {type(e).__name__}",
                hint="rerun `kubeinit init phase control-plane`",
            ) from None
    return pods


def kubelet_healthz(ctx: InitContext) -> tuple[str, int]:
    kc = ctx.config.kubelet or {}
    addr = str(kc.get("healthzBindAddress") or DEFAULT_KUBELET_HEALTHZ[0])
    port = kc.get("healthzPort")
    return addr, DEFAULT_KUBELET_HEALTHZ[1] if port is None else int(port)


def _http_ok(url: str, *, insecure_tls: bool) -> str | None:
    """None when `url` answers 200, else the reason."""
    import ssl
    import urllib.error
    import urllib.request

    context = ssl.create_default_context()
    if insecure_tls:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    # no proxy from the environment, as kubeadm's http.Transport{} (Proxy: nil)
    opener = urllib.request.build_opener(
        urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=context)
    )
    try:
        with opener.open(url, timeout=PROBE_TIMEOUT) as resp:
            return None if resp.status == 200 else f"status {resp.status}"
    except urllib.error.HTTPError as e:
        return f"status {e.code}"
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        return f"{reason}"


def wait_for(
    checks: Mapping[str, Callable[[], str | None]],
    timeout: float,
    on_healthy: Callable[[str, float], None],
) -> dict[str, str]:
    """Poll every pending check every 500 ms until all pass or `timeout`; return the last error
    of each check that never passed."""
    start = time.monotonic()
    pending = dict(checks)
    last: dict[str, str] = {}
    while pending:
        for name, check in list(pending.items()):
            err = check()
            if err is None:
                del pending[name]
                last.pop(name, None)
                on_healthy(name, time.monotonic() - start)
            else:
                last[name] = err
        if not pending or time.monotonic() - start >= timeout:
            break
        time.sleep(POLL_INTERVAL)
    return {n: last.get(n, "timed out") for n in pending}


def _crictl_hint(ctx: InitContext) -> str:
    sock = ctx.config.init.node_registration.cri_socket
    return (
        f"list the control-plane containers with `crictl --runtime-endpoint {sock} ps -a |"
        f" grep kube | grep -v pause`, read one with `crictl --runtime-endpoint {sock} logs"
        " CONTAINERID`, and check the kubelet with `journalctl -u kubelet`"
    )


def run(ctx: InitContext) -> None:
    timeouts = ctx.config.init.timeouts
    addr, port = kubelet_healthz(ctx)
    if port == 0:
        ctx.notes.append("kubelet check skipped: healthzPort is 0")
    else:
        url = f"http://{join_host_port(addr, port)}/healthz"
        failed = wait_for(
            {"kubelet": lambda: _http_ok(url, insecure_tls=False)},
            timeouts.kubelet_health_check.total_seconds(),
            lambda n, t: None,
        )
        if failed:
            raise PhaseFailed(
                f"the kubelet is not healthy after"
                f" {format_duration(timeouts.kubelet_health_check)}: 'curl -sSL {url}'"
                f" returned {failed['kubelet']}",
                hint="the kubelet is not running or is misconfigured: check `systemctl status"
                " kubelet` and `journalctl -xeu kubelet`",
            )

    components = control_plane_components(read_manifests(ctx), ctx.identity.advertise_address)
    admin = ctx.admin_client()

    def apiserver_livez() -> str | None:
        from firstboot.apiclient import ApiError

        try:
            admin.request("GET", "/livez", timeout=PROBE_TIMEOUT)
        except ApiError as e:
            return e.message
        return None

    def https_ok(url: str) -> Callable[[], str | None]:
        return lambda: _http_ok(url, insecure_tls=True)

    checks: dict[str, Callable[[], str | None]] = {
        c.name: apiserver_livez if c.name == "kube-apiserver" else https_ok(c.url)
        for c in components
    }
    healthy: list[str] = []
    failed = wait_for(
        checks,
        timeouts.control_plane_component_health_check.total_seconds(),
        lambda n, t: healthy.append(f"{n} {t:.1f}s"),
    )
    if failed:
        by_name = {c.name: c for c in components}
        detail = "; ".join(f"{n} at {by_name[n].url}: {err}" for n, err in failed.items())
        raise PhaseFailed(
            f"control plane not healthy after"
            f" {format_duration(timeouts.control_plane_component_health_check)}: {detail}",
            hint=_crictl_hint(ctx),
        )
    ctx.notes.append("healthy: " + ", ".join(healthy))
    ctx.client()  # ensures the kubeadm:cluster-admins binding (kubeadm's Client())


PHASE = Phase(
    name="wait-control-plane",
    summary="Wait for the control plane to start",
    run=run,
    needs_api=True,
    rerun_on_resume=True,
)
