"""The kubelet files kubeadm's `kubelet-start` phase writes, as pure functions.

/var/lib/kubelet/config.yaml, kubeadm-flags.env and instance-config.yaml, ported from kubeadm
(k8s.io/kubernetes cmd/kubeadm/app at v1.35.4, v1.36.3, v1.37.2): componentconfigs/kubelet.go
(Default), componentconfigs/kubelet_unix.go (Mutate: resolvConf), phases/kubelet/config.go
(marshal, instance-config patch, modes), phases/kubelet/flags.go (kubeadm-flags.env) and
cmd/phases/init/kubelet.go (order, which files per version).

config.yaml is the user's KubeletConfiguration document decoded into the Go type and encoded
again, so this module carries the shape of that type (k8s.io/kubelet config/v1beta1 and
component-base logs/tracing at v0.37.2): unknown fields disappear, durations are re-printed by
Go (`90s` becomes `1m30s`), zero-valued `omitempty` scalars vanish, non-pointer structs always
appear, and resource quantities are canonicalised (`1024Mi` becomes `1Gi`).

Host facts are inputs: `hostname` (the kernel hostname kubeadm compares the node name with) and
`systemd_resolved` (whether systemd-resolved is active on the target); `systemd_resolved_active`
computes the latter for a root.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from fractions import Fraction
from pathlib import Path, PurePosixPath
from typing import Any

from kubeinit import goyaml, paths, schema
from kubeinit.config import Arg, Config
from kubeinit.errors import InvalidInput
from kubeinit.flags import arguments_to_command, go_join
from kubeinit.identity import Identity
from kubeinit.run import run

KUBELET_API = "kubelet.config.k8s.io/v1beta1"
ENV_VARIABLE = "KUBELET_KUBEADM_ARGS"  # constants.KubeletEnvFileVariableName
RESOLVED_RESOLV_CONF = "/run/systemd/resolve/resolv.conf"  # kubeletSystemdResolverConfig
HEALTHZ_PORT = 10248
# phases/kubelet: os.MkdirAll(kubeletDir, 0700), os.WriteFile(..., 0644) for all three files.
KUBELET_DIR_MODE = 0o700
KUBELET_FILE_MODE = 0o644

# --- the shape of KubeletConfiguration -----------------------------------------------------------
# Kinds: "s" string, "i" integer, "b" bool, "f" float (each omitempty unless suffixed "!");
# "*s"/"*i"/"*b"/"*f" pointers (kept when given, even when zero); "d" metav1.Duration (a struct:
# always written, "0s" when unset); "*d" pointer duration; "[s]"/"[i]" lists and "{s}"/"{b}"/
# "{[s]}" maps (omitempty); "{q}" a ResourceList; "q" a QuantityValue (always written); "fd"
# logs TimeOrMetaDuration; "raw" kept as given; a dict: a struct (always written); ("*", dict):
# pointer to struct; ("[]", dict): list of structs (omitempty).
_WEBHOOK_AUTHN = {"enabled": "*b", "cacheTTL": "d"}
_AUTHN = {"x509": {"clientCAFile": "s"}, "webhook": _WEBHOOK_AUTHN, "anonymous": {"enabled": "*b"}}
_AUTHZ = {"mode": "s", "webhook": {"cacheAuthorizedTTL": "d", "cacheUnauthorizedTTL": "d"}}
_OUTPUT_ROUTING = {"splitStream": "b", "infoBufferSize": "q"}
_LOGGING = {
    "format": "s",
    "flushFrequency": "fd",
    "verbosity": "i!",
    "vmodule": ("[]", {"filePattern": "s!", "verbosity": "i!"}),
    "options": {"text": _OUTPUT_ROUTING, "json": _OUTPUT_ROUTING},
}
KUBELET_CONFIGURATION: dict[str, Any] = {
    "enableServer": "*b",
    "staticPodPath": "s",
    "podLogsDir": "s",
    "syncFrequency": "d",
    "fileCheckFrequency": "d",
    "httpCheckFrequency": "d",
    "staticPodURL": "s",
    "staticPodURLHeader": "{[s]}",
    "address": "s",
    "port": "i",
    "readOnlyPort": "i",
    "tlsCertFile": "s",
    "tlsPrivateKeyFile": "s",
    "tlsCipherSuites": "[s]",
    "tlsCurvePreferences": "[i]",
    "tlsMinVersion": "s",
    "rotateCertificates": "b",
    "serverTLSBootstrap": "b",
    "authentication": _AUTHN,
    "authorization": _AUTHZ,
    "registryPullQPS": "*i",
    "registryBurst": "i",
    "imagePullCredentialsVerificationPolicy": "s",
    "preloadedImagesVerificationAllowlist": "[s]",
    "eventRecordQPS": "*i",
    "eventBurst": "i",
    "enableDebuggingHandlers": "*b",
    "enableContentionProfiling": "b",
    "healthzPort": "*i",
    "healthzBindAddress": "s",
    "oomScoreAdj": "*i",
    "clusterDomain": "s",
    "clusterDNS": "[s]",
    "streamingConnectionIdleTimeout": "d",
    "nodeStatusUpdateFrequency": "d",
    "nodeStatusReportFrequency": "d",
    "nodeLeaseDurationSeconds": "i",
    "imageMinimumGCAge": "d",
    "imageMaximumGCAge": "d",
    "imageGCHighThresholdPercent": "*i",
    "imageGCLowThresholdPercent": "*i",
    "volumeStatsAggPeriod": "d",
    "kubeletCgroups": "s",
    "systemCgroups": "s",
    "cgroupRoot": "s",
    "cgroupsPerQOS": "*b",
    "cgroupDriver": "s",
    "cpuManagerPolicy": "s",
    "singleProcessOOMKill": "*b",
    "cpuManagerPolicyOptions": "{s}",
    "cpuManagerReconcilePeriod": "d",
    "memoryManagerPolicy": "s",
    "topologyManagerPolicy": "s",
    "topologyManagerScope": "s",
    "topologyManagerPolicyOptions": "{s}",
    "qosReserved": "{s}",
    "runtimeRequestTimeout": "d",
    "hairpinMode": "s",
    "maxPods": "i",
    "podCIDR": "s",
    "podPidsLimit": "*i",
    "resolvConf": "*s",
    "runOnce": "b",
    "cpuCFSQuota": "*b",
    "cpuCFSQuotaPeriod": "*d",
    "nodeStatusMaxImages": "*i",
    "maxOpenFiles": "i",
    "contentType": "s",
    "kubeAPIQPS": "*i",
    "kubeAPIBurst": "i",
    "serializeImagePulls": "*b",
    "maxParallelImagePulls": "*i",
    "evictionHard": "{s}",
    "evictionSoft": "{s}",
    "evictionSoftGracePeriod": "{s}",
    "evictionPressureTransitionPeriod": "d",
    "evictionMaxPodGracePeriod": "i",
    "evictionMinimumReclaim": "{s}",
    "mergeDefaultEvictionSettings": "*b",
    "podsPerCore": "i",
    "enableControllerAttachDetach": "*b",
    "protectKernelDefaults": "b",
    "makeIPTablesUtilChains": "*b",
    "iptablesMasqueradeBit": "*i",
    "iptablesDropBit": "*i",
    "featureGates": "{b}",
    "failSwapOn": "*b",
    "memorySwap": {"swapBehavior": "s"},
    "containerLogMaxSize": "s",
    "containerLogMaxFiles": "*i",
    "containerLogMaxWorkers": "*i",
    "containerLogMonitorInterval": "*d",
    "configMapAndSecretChangeDetectionStrategy": "s",
    "systemReserved": "{s}",
    "kubeReserved": "{s}",
    "reservedSystemCPUs": "s",
    "showHiddenMetricsForVersion": "s",
    "systemReservedCgroup": "s",
    "kubeReservedCgroup": "s",
    "enforceNodeAllocatable": "[s]",
    "allowedUnsafeSysctls": "[s]",
    "defaultPodSysctls": "{s}",
    "volumePluginDir": "s",
    "providerID": "s",
    "kernelMemcgNotification": "b",
    "logging": _LOGGING,
    "enableSystemLogHandler": "*b",
    "enableSystemLogQuery": "*b",
    "shutdownGracePeriod": "d",
    "shutdownGracePeriodCriticalPods": "d",
    "shutdownGracePeriodByPodPriority": (
        "[]",
        {"priority": "i!", "shutdownGracePeriodSeconds": "i!"},
    ),
    "crashLoopBackOff": {"maxContainerRestartPeriod": "*d"},
    "reservedMemory": ("[]", {"numaNode": "i!", "limits": "{q}!"}),
    "enableProfilingHandler": "*b",
    "enableDebugFlagsHandler": "*b",
    "seccompDefault": "*b",
    "memoryThrottlingFactor": "*f",
    "memoryReservationPolicy": "s",
    "registerWithTaints": "raw",
    "registerNode": "*b",
    "tracing": ("*", {"endpoint": "*s", "samplingRatePerMillion": "*i"}),
    "localStorageCapacityIsolation": "*b",
    "containerRuntimeEndpoint": "s!",
    "imageServiceEndpoint": "s",
    "failCgroupV1": "*b",
    "userNamespaces": ("*", {"idsPerPod": "*i"}),
}
# Fields newer than some supported minors (k8s.io/kubelet types.go at v0.35.4 / v0.36.3 lack
# them, so kubeadm of those versions drops them like any unknown field).
FIELD_SINCE_MINOR = {
    "tlsCurvePreferences": 36,
    "memoryReservationPolicy": 36,
    "defaultPodSysctls": 37,
}


# --- Go value formats ----------------------------------------------------------------------------

_DURATION_UNITS = {
    "ns": 1,
    "us": 10**3,
    "µs": 10**3,
    "μs": 10**3,
    "ms": 10**6,
    "s": 10**9,
    "m": 60 * 10**9,
    "h": 3600 * 10**9,
}
_DURATION_PART = re.compile(r"([0-9]*(?:\.[0-9]*)?)(ns|us|µs|μs|ms|s|m|h)")


def parse_go_duration(text: str) -> int:
    """time.ParseDuration, in nanoseconds. ValueError when Go would reject it."""
    s = text
    neg = s.startswith("-")
    s = s[1:] if s[:1] in "+-" else s
    if s == "0":
        return 0
    if not s:
        raise ValueError(text)
    total, pos = Fraction(0), 0
    while pos < len(s):
        m = _DURATION_PART.match(s, pos)
        if not m or m.group(1) in ("", "."):
            raise ValueError(text)
        total += Fraction(m.group(1)) * _DURATION_UNITS[m.group(2)]
        pos = m.end()
    ns = int(total)  # Go truncates sub-nanosecond fractions
    if ns >= 2**63:
        raise ValueError(text)
    return -ns if neg else ns


def go_duration(ns: int) -> str:
    """time.Duration.String()."""
    if ns == 0:
        return "0s"
    sign, u = ("-", -ns) if ns < 0 else ("", ns)
    if u < 10**9:
        for unit, size in (("ns", 1), ("µs", 10**3), ("ms", 10**6)):
            if u < size * 1000:
                return sign + _trim_fraction(Fraction(u, size)) + unit
    secs = Fraction(u % (60 * 10**9), 10**9)
    minutes_total = u // (60 * 10**9)
    out = _trim_fraction(secs) + "s"
    if minutes_total:
        hours, minutes = divmod(minutes_total, 60)
        out = f"{minutes}m" + out
        if hours:
            out = f"{hours}h" + out
    return sign + out


def _trim_fraction(value: Fraction) -> str:
    whole = value.numerator // value.denominator
    frac = value - whole
    if not frac:
        return str(whole)
    digits = f"{int(frac * 10**9):09d}".rstrip("0")
    return f"{whole}.{digits}"


_QUANTITY = re.compile(
    r"^([+-]?)([0-9]*)(?:\.([0-9]*))?(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?[0-9]+)?$"
)
_BIN = {"Ki": 1, "Mi": 2, "Gi": 3, "Ti": 4, "Pi": 5, "Ei": 6}
_DEC = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_DEC_SUFFIX = {v: k for k, v in _DEC.items()}


def canonical_quantity(text: str) -> str:
    """apimachinery resource.Quantity: parse, round up to nano, print canonically."""
    m = _QUANTITY.match(text.strip())
    if not m or not (m.group(2) or m.group(3)):
        raise ValueError(text)
    sign, whole, frac, suffix = m.group(1), m.group(2) or "0", m.group(3) or "", m.group(4) or ""
    value = Fraction(int(whole + frac), 10 ** len(frac))
    if suffix in _BIN:
        fmt, value = "bin", value * 1024 ** _BIN[suffix]
    elif suffix[:1] in ("e", "E"):
        fmt, value = "exp", value * Fraction(10) ** int(suffix[1:])
    else:
        fmt, value = "si", value * Fraction(10) ** _DEC[suffix]
    if value:
        value = Fraction(-((-value * 10**9).__floor__()), 10**9)  # round up to 1n
    if sign == "-":
        value = -value
    if value == 0:
        return "0"
    if fmt == "bin" and (abs(value) < 1024 or value.denominator != 1):
        fmt = "si"
    if fmt == "bin":
        n, exp = int(value), 0
        while n % 1024 == 0 and exp < 6:
            n, exp = n // 1024, exp + 1
        return f"{n}{'' if exp == 0 else list(_BIN)[exp - 1]}"
    exp = -9
    n = int(value * 10**9)
    while n % 10 == 0:
        n, exp = n // 10, exp + 1
    while exp % 3:
        n, exp = n * 10, exp - 1
    if fmt == "si" and exp in _DEC_SUFFIX:
        return f"{n}{_DEC_SUFFIX[exp]}"
    return f"{n}" if exp == 0 else f"{n}e{exp}"


# --- decoding the user's KubeletConfiguration into the Go type's shape ---------------------------


def _type_error(path: str, want: str, value: Any) -> InvalidInput:
    return InvalidInput(
        f"KubeletConfiguration: {path}: expected {want}, got {type(value).__name__}"
        f" {schema.shown(value)}",
        hint="fix the field's type (see the KubeletConfiguration v1beta1 reference)",
    )


def _scalar(kind: str, value: Any, path: str) -> Any:
    base = kind.lstrip("*").rstrip("!")
    if base == "s":
        if not isinstance(value, str):
            raise _type_error(path, "a string", value)
        return value
    if base == "b":
        if not isinstance(value, bool):
            raise _type_error(path, "true or false", value)
        return value
    if base == "i":
        if isinstance(value, bool) or not isinstance(value, int):
            raise _type_error(path, "an integer", value)
        return value
    if base == "f":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _type_error(path, "a number", value)
        return value
    if base == "d":
        if not isinstance(value, str):
            raise _type_error(path, "a duration string like 1m30s", value)
        try:
            return go_duration(parse_go_duration(value))
        except ValueError:
            raise _type_error(path, "a duration string like 1m30s", value) from None
    if base == "q":
        try:
            return canonical_quantity(str(value))
        except ValueError:
            raise _type_error(path, "a resource quantity like 100Mi", value) from None
    raise AssertionError(kind)


def _zero(kind: str) -> bool:
    return kind in ("s", "i", "b", "f")


def _decode(
    schema: Mapping[str, Any], given: Mapping[str, Any], path: str, minor: int | None = None
) -> dict[str, Any]:
    """The JSON that `json.Unmarshal` into the Go struct followed by `json.Marshal` gives."""
    out: dict[str, Any] = {}
    for name, kind in schema.items():
        if minor is not None and minor < FIELD_SINCE_MINOR.get(name, 0):
            continue
        value = given.get(name)
        where = f"{path}{name}"
        if isinstance(kind, dict):  # struct: always written
            if value is not None and not isinstance(value, Mapping):
                raise _type_error(where, "a mapping", value)
            out[name] = _decode(kind, value or {}, where + ".")
            continue
        if isinstance(kind, tuple):
            wrapper, sub = kind
            if value is None:
                continue
            if wrapper == "*":
                if not isinstance(value, Mapping):
                    raise _type_error(where, "a mapping", value)
                out[name] = _decode(sub, value, where + ".")
            else:
                if not isinstance(value, list):
                    raise _type_error(where, "a list", value)
                for i, v in enumerate(value):
                    if not isinstance(v, Mapping):
                        raise _type_error(f"{where}[{i}]", "a mapping", v)
                if value:
                    out[name] = [_decode(sub, v, f"{where}[{i}].") for i, v in enumerate(value)]
            continue
        if kind == "d":  # metav1.Duration is a struct: "0s" when unset
            out[name] = "0s" if value is None else _scalar("d", value, where)
        elif kind == "q":  # QuantityValue is a struct, too
            out[name] = "0" if value is None else _scalar("q", value, where)
        elif kind == "fd":  # TimeOrMetaDuration: a string stays a string, a number stays one
            if value is None or (isinstance(value, int) and not isinstance(value, bool)):
                out[name] = value or 0
            else:
                out[name] = _scalar("d", value, where)
        elif value is None:
            if kind.endswith("!"):  # not omitempty: the zero value is written
                out[name] = {"s!": "", "i!": 0}.get(kind)
        elif kind == "raw":
            out[name] = value
        elif kind.startswith(("[", "{")):
            out_value = _collection(kind.rstrip("!"), value, where)
            if out_value or kind.endswith("!"):
                out[name] = out_value
        else:
            scalar = _scalar(kind, value, where)
            if not (_zero(kind) and not scalar):
                out[name] = scalar
    return out


def _collection(kind: str, value: Any, path: str) -> Any:
    inner = kind[1:-1]
    if kind.startswith("["):
        if not isinstance(value, list):
            raise _type_error(path, "a list", value)
        return [_scalar(inner, v, f"{path}[{i}]") for i, v in enumerate(value)]
    if not isinstance(value, Mapping):
        raise _type_error(path, "a mapping", value)
    if inner == "[s]":
        return {str(k): _collection("[s]", v, f"{path}.{k}") for k, v in value.items()}
    return {str(k): _scalar(inner, v, f"{path}.{k}") for k, v in value.items()}


def unknown_fields(
    given: Mapping[str, Any],
    minor: int | None = None,
    *,
    shape: Mapping[str, Any] = KUBELET_CONFIGURATION,
) -> list[str]:
    """The fields of a component config document (a KubeletConfiguration unless `shape` says
    otherwise) that the Go type does not have, as the JSON paths of sigs.k8s.io/json's strict
    decoding (`authentication.bogus`), sorted as it sorts them: kubeadm warns about them and
    decodes the rest (componentconfigs/configset.go)."""
    out: list[str] = []
    _unknown(shape, given, "", minor, out)
    return sorted(out)


def strict_decoding_warnings(kind: str, unknown: list[str]) -> list[str]:
    """kubeadm's warning for a component config with unknown fields (configset.go prints
    strict.VerifyUnmarshalStrict's error), as one line; none when nothing is unknown."""
    if not unknown:
        return []
    fields = ", ".join(f"unknown field {goyaml.go_quote(f)}" for f in unknown)
    return [f"{kind}: strict decoding error: {fields} (ignored, as kubeadm ignores them)"]


def drop_unknown(shape: Mapping[str, Any], given: Mapping[str, Any]) -> dict[str, Any]:
    """`given` without the fields `unknown_fields` reports (at any depth), as the Go decoder
    leaves them out; `apiVersion` and `kind` stay."""
    unknown = set(unknown_fields(given, shape=shape))
    return _without(given, "", unknown)


def _without(given: Mapping[str, Any], path: str, unknown: set[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in given.items():
        where = f"{path}{name}"
        if where in unknown:
            continue
        if isinstance(value, Mapping):
            out[name] = _without(value, where + ".", unknown)
        elif isinstance(value, list):
            out[name] = [
                _without(v, f"{where}[{i}].", unknown) if isinstance(v, Mapping) else v
                for i, v in enumerate(value)
            ]
        else:
            out[name] = value
    return out


def _unknown(
    schema: Mapping[str, Any], given: Any, path: str, minor: int | None, out: list[str]
) -> None:
    if not isinstance(given, Mapping):
        return
    for name, value in given.items():
        kind = schema.get(name) if isinstance(name, str) else None
        if name in ("apiVersion", "kind") and not path:
            continue
        if kind is None or (minor is not None and minor < FIELD_SINCE_MINOR.get(name, 0)):
            out.append(f"{path}{name}")
            continue
        if isinstance(kind, dict):
            _unknown(kind, value, f"{path}{name}.", None, out)
        elif isinstance(kind, tuple):
            wrapper, sub = kind
            if wrapper == "*":
                _unknown(sub, value, f"{path}{name}.", None, out)
            elif isinstance(value, list):
                for i, v in enumerate(value):
                    _unknown(sub, v, f"{path}{name}[{i}].", None, out)


def check_document(given: Mapping[str, Any], minor: int) -> list[str]:
    """Decode a KubeletConfiguration document as kubeadm does when it loads the configuration:
    a value of the wrong type is an error (InvalidInput); unknown fields are returned as
    kubeadm's warning lines ("strict decoding error: unknown field ...")."""
    _decode(KUBELET_CONFIGURATION, given, "", minor)
    return strict_decoding_warnings("KubeletConfiguration", unknown_fields(given, minor))


# --- the three files -----------------------------------------------------------------------------


def cluster_dns(service_subnet: str) -> str:
    """constants.GetDNSIP: the 10th address of the first service subnet."""
    net = ipaddress.ip_network(service_subnet.split(",", 1)[0].strip(), strict=False)
    return str(net.network_address + 10)


def kubelet_configuration(config: Config, *, systemd_resolved: bool) -> dict[str, Any]:
    """The KubeletConfiguration kubeadm marshals for this node: the user's document decoded,
    componentconfigs kubeletConfig.Default applied to unset fields, then Mutate (resolvConf)."""
    given = dict(config.kubelet or {})
    kc = _decode(KUBELET_CONFIGURATION, given, "", config.release.minor)
    c = config.cluster
    kc.setdefault("staticPodPath", str(paths.MANIFESTS_DIR))
    if given.get("clusterDNS") is None:  # nil only: an explicit [] stays (and is omitted)
        kc["clusterDNS"] = [cluster_dns(c.networking.service_subnet)]
    kc.setdefault("clusterDomain", c.networking.dns_domain)
    authn = kc["authentication"]
    authn["x509"].setdefault("clientCAFile", go_join(c.certificates_dir, "ca.crt"))
    authn["anonymous"].setdefault("enabled", False)
    kc["authorization"].setdefault("mode", "Webhook")
    authn["webhook"].setdefault("enabled", True)
    kc.setdefault("healthzBindAddress", "127.0.0.1")
    kc.setdefault("healthzPort", HEALTHZ_PORT)
    kc["rotateCertificates"] = True  # kubeadm cannot tell an unset bool from false: forced
    kc.setdefault("cgroupDriver", "systemd")
    if systemd_resolved:
        kc.setdefault("resolvConf", RESOLVED_RESOLV_CONF)
    return {"apiVersion": KUBELET_API, "kind": "KubeletConfiguration", **kc}


def node_local_cri_socket(config: Config) -> bool:
    """Whether this version writes the CRI socket to instance-config.yaml (NodeLocalCRISocket)."""
    minor = config.release.major_minor
    if not minor.node_local_cri_socket:
        return False
    if minor.node_local_cri_socket_gate:
        return config.cluster.feature_gates.get("NodeLocalCRISocket", True)
    return True


def render_instance_config(config: Config) -> bytes | None:
    """instance-config.yaml (WriteInstanceConfigToDisk: one line, the socket Go-%q-quoted), or
    None where this version/gate does not write it."""
    if not node_local_cri_socket(config):
        return None
    socket = config.init.node_registration.cri_socket
    return f"containerRuntimeEndpoint: {goyaml.go_quote(socket)}\n".encode()


def render_kubelet_config(config: Config, *, systemd_resolved: bool) -> bytes:
    """config.yaml: the marshalled KubeletConfiguration with instance-config.yaml applied as a
    strategic-merge patch (it sets containerRuntimeEndpoint) where the version writes it."""
    kc = kubelet_configuration(config, systemd_resolved=systemd_resolved)
    if node_local_cri_socket(config):
        kc["containerRuntimeEndpoint"] = config.init.node_registration.cri_socket
    return goyaml.dumps(kc).encode()


def kubelet_flags(config: Config, identity: Identity, hostname: str) -> list[str]:
    """flags.go buildKubeletArgs merged with nodeRegistration.kubeletExtraArgs. On init no
    --register-with-taints (mark-control-plane taints the Node instead)."""
    nr = config.init.node_registration
    base = []
    if not node_local_cri_socket(config):
        base.append(Arg("container-runtime-endpoint", nr.cri_socket))
    # GetNodeNameAndHostname: a hostname-override in kubeletExtraArgs names the node too.
    node_name = identity.node_name
    for arg in nr.kubelet_extra_args:
        if arg.name == "hostname-override":
            node_name = arg.value
    if node_name != hostname:
        base.append(Arg("hostname-override", node_name))
    return arguments_to_command(base, nr.kubelet_extra_args)


def render_kubeadm_flags_env(config: Config, identity: Identity, hostname: str) -> bytes:
    """kubeadm-flags.env: KUBELET_KUBEADM_ARGS=<%q of the flags joined by spaces>."""
    flags = " ".join(kubelet_flags(config, identity, hostname))
    return f"{ENV_VARIABLE}={goyaml.go_quote(flags)}\n".encode()


def render_kubelet_files(
    config: Config, identity: Identity, *, hostname: str, systemd_resolved: bool
) -> dict[PurePosixPath, bytes]:
    """The files `kubeadm init phase kubelet-start` writes, in kubeadm's order, by node path."""
    out = {paths.KUBELET_FLAGS_ENV: render_kubeadm_flags_env(config, identity, hostname)}
    instance = render_instance_config(config)
    if instance is not None:
        out[paths.KUBELET_INSTANCE_CONFIG] = instance
    out[paths.KUBELET_CONFIG] = render_kubelet_config(config, systemd_resolved=systemd_resolved)
    return out


# --- host fact: is systemd-resolved active on the target? ----------------------------------

_UNIT_DIRS = ("etc/systemd/system", "usr/lib/systemd/system", "lib/systemd/system")
_RESOLVED_UNIT = "systemd-resolved.service"


def systemd_resolved_active(root: Path, *, live: bool) -> bool:
    """kubeadm asks `systemctl is-active systemd-resolved` (active or activating counts;
    componentconfigs/kubelet_unix.go, util/initsystem). With `live` (the root is the running
    system and systemd is PID 1) kubeinit asks the same. Otherwise the target is an image
    tree or a directory that is not running: there the service counts as active when it will
    be started at boot, i.e. a `*.wants/` symlink for it exists under the root and the unit is
    not masked in /etc. That is the state kubeadm would see on the booted node."""
    if live:
        result = run(["systemctl", "is-active", "systemd-resolved"], check=False)
        return result.stdout.strip() in ("active", "activating")
    masked = paths.under_nofollow(root, "/etc/systemd/system/systemd-resolved.service")
    if masked.is_symlink() and str(masked.readlink()) == "/dev/null":
        return False
    for unit_dir in _UNIT_DIRS:
        base = paths.under(root, unit_dir)
        if not base.is_dir():
            continue
        for wants in base.glob("*.wants"):
            link = wants / _RESOLVED_UNIT
            if link.is_symlink() or link.exists():  # the target may resolve only on the node
                return True
    return False
