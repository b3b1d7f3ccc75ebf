"""addon/coredns and addon/kube-proxy: kubeadm's own templates, filled as kubeadm fills them.

The YAML below is copied from app/phases/addons/dns/manifests.go and app/phases/addons/proxy/
manifests.go of Kubernetes v1.37.2 (Go template actions replaced by `$name` placeholders);
kubeadm decodes the filled template into the typed object, so parsing it to a dict gives the
object kubeadm sends. The KubeProxyConfiguration is kubeadm's component config
(app/componentconfigs/kubeproxy.go Default) marshalled in full, zero values included, as the
v1alpha1 Go struct (k8s.io/kube-proxy@v0.37.2/config/v1alpha1/types.go) serializes.
"""

from __future__ import annotations

import copy
import ipaddress
from collections.abc import Mapping
from string import Template
from typing import Any

import yaml

from kubeinit.api import (
    NODE_BOOTSTRAP_TOKEN_GROUP,
    NS_SYSTEM,
    Obj,
    cluster_role_binding,
    group,
    meta,
    role,
    role_binding,
    subject,
)
from kubeinit.api.upload_config import signed
from kubeinit.config import (
    CONTROL_PLANE_TAINT_KEY,
    KUBEPROXY_API,
    Config,
    join_host_port,
    split_host_port,
)
from kubeinit.goyaml import dumps as dump
from kubeinit.kubelet import (
    KUBELET_CONFIGURATION,
    drop_unknown,
    strict_decoding_warnings,
    unknown_fields,
)
from kubeinit.versions import DEFAULT_IMAGE_REPOSITORY

COREDNS_REPLICAS = 2
KUBE_PROXY_CONFIGMAP = "kube-proxy"
KUBE_PROXY_CONFIGMAP_KEY = "config.conf"
KUBE_PROXY_KUBECONFIG = "/var/lib/kube-proxy/kubeconfig.conf"

COREDNS_SERVICE = """
apiVersion: v1
kind: Service
metadata:
  labels:
    k8s-app: kube-dns
    kubernetes.io/cluster-service: "true"
    kubernetes.io/name: "CoreDNS"
  name: kube-dns
  namespace: kube-system
  annotations:
    prometheus.io/port: "9153"
    prometheus.io/scrape: "true"
  # Without this resourceVersion value, an update of the Service between versions will yield:
  #   Service "kube-dns" is invalid: metadata.resourceVersion: Invalid value: "":
  #   must be specified for an update
  resourceVersion: "0"
spec:
  clusterIP: $DNSIP
  ports:
  - name: dns
    port: 53
    protocol: UDP
    targetPort: 53
  - name: dns-tcp
    port: 53
    protocol: TCP
    targetPort: 53
  - name: metrics
    port: 9153
    protocol: TCP
    targetPort: 9153
  selector:
    k8s-app: kube-dns
"""

COREDNS_DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: $DeploymentName
  namespace: kube-system
  labels:
    k8s-app: kube-dns
spec:
  replicas: $Replicas
  strategy:
    type: RollingUpdate
    rollingUpdate:
      maxUnavailable: 1
  selector:
    matchLabels:
      k8s-app: kube-dns
  template:
    metadata:
      labels:
        k8s-app: kube-dns
    spec:
      priorityClassName: system-cluster-critical
      serviceAccountName: coredns
      affinity:
        podAntiAffinity:
          preferredDuringSchedulingIgnoredDuringExecution:
          - weight: 100
            podAffinityTerm:
              labelSelector:
                matchExpressions:
                - key: k8s-app
                  operator: In
                  values: ["kube-dns"]
              topologyKey: kubernetes.io/hostname
      tolerations:
      - key: CriticalAddonsOnly
        operator: Exists
      - key: $ControlPlaneTaintKey
        effect: NoSchedule
      nodeSelector:
        kubernetes.io/os: linux
      containers:
      - name: coredns
        image: $Image
        imagePullPolicy: IfNotPresent
        resources:
          limits:
            memory: 170Mi
          requests:
            cpu: 100m
            memory: 70Mi
        args: [ "-conf", "/etc/coredns/Corefile" ]
        volumeMounts:
        - name: config-volume
          mountPath: /etc/coredns
          readOnly: true
        ports:
        - containerPort: 53
          name: dns
          protocol: UDP
        - containerPort: 53
          name: dns-tcp
          protocol: TCP
        - containerPort: 9153
          name: metrics
          protocol: TCP
        - containerPort: 8080
          name: liveness-probe
          protocol: TCP
        - containerPort: 8181
          name: readiness-probe
          protocol: TCP
        livenessProbe:
          httpGet:
            path: /health
            port: liveness-probe
            scheme: HTTP
          initialDelaySeconds: 60
          timeoutSeconds: 5
          successThreshold: 1
          failureThreshold: 5
        readinessProbe:
          httpGet:
            path: /ready
            port: readiness-probe
            scheme: HTTP
        securityContext:
          allowPrivilegeEscalation: false
          capabilities:
            add:
            - NET_BIND_SERVICE
            drop:
            - ALL
          readOnlyRootFilesystem: true
      dnsPolicy: Default
      volumes:
        - name: config-volume
          configMap:
            name: coredns
            items:
            - key: Corefile
              path: Corefile
"""

# The Corefile's `cache` block depends on {{- if .DNSDomain }}; rendered in corefile().
COREDNS_CONFIGMAP = """
apiVersion: v1
kind: ConfigMap
metadata:
  name: coredns
  namespace: kube-system
data:
  Corefile: |
$Corefile"""

COREDNS_CLUSTER_ROLE = """
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: system:coredns
rules:
- apiGroups:
  - ""
  resources:
  - endpoints
  - services
  - pods
  - namespaces
  verbs:
  - list
  - watch
- apiGroups:
  - discovery.k8s.io
  resources:
  - endpointslices
  verbs:
  - list
  - watch
"""

COREDNS_CLUSTER_ROLE_BINDING = """
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: system:coredns
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: system:coredns
subjects:
- kind: ServiceAccount
  name: coredns
  namespace: kube-system
"""

COREDNS_SERVICE_ACCOUNT = """
apiVersion: v1
kind: ServiceAccount
metadata:
  name: coredns
  namespace: kube-system
"""

KUBE_PROXY_KUBECONFIG_TEMPLATE = """apiVersion: v1
kind: Config
clusters:
- cluster:
    certificate-authority: /var/run/secrets/kubernetes.io/serviceaccount/ca.crt
    server: $ControlPlaneEndpoint
  name: default
contexts:
- context:
    cluster: default
    namespace: default
    user: default
  name: default
current-context: default
users:
- name: default
  user:
    tokenFile: /var/run/secrets/kubernetes.io/serviceaccount/token"""

KUBE_PROXY_DAEMONSET = """
apiVersion: apps/v1
kind: DaemonSet
metadata:
  labels:
    k8s-app: kube-proxy
  name: kube-proxy
  namespace: kube-system
spec:
  selector:
    matchLabels:
      k8s-app: kube-proxy
  updateStrategy:
    type: RollingUpdate
  template:
    metadata:
      labels:
        k8s-app: kube-proxy
    spec:
      priorityClassName: system-node-critical
      containers:
      - name: kube-proxy
        image: $Image
        imagePullPolicy: IfNotPresent
        command:
        - /usr/local/bin/kube-proxy
        - --config=/var/lib/kube-proxy/$ProxyConfigMapKey
        - --hostname-override=$$(NODE_NAME)
        securityContext:
          privileged: true
        volumeMounts:
        - mountPath: /var/lib/kube-proxy
          name: kube-proxy
        - mountPath: /run/xtables.lock
          name: xtables-lock
          readOnly: false
        - mountPath: /lib/modules
          name: lib-modules
          readOnly: true
        env:
          - name: NODE_NAME
            valueFrom:
              fieldRef:
                fieldPath: spec.nodeName
      hostNetwork: true
      serviceAccountName: kube-proxy
      volumes:
      - name: kube-proxy
        configMap:
          name: $ProxyConfigMap
      - name: xtables-lock
        hostPath:
          path: /run/xtables.lock
          type: FileOrCreate
      - name: lib-modules
        hostPath:
          path: /lib/modules
      tolerations:
      - operator: Exists
      nodeSelector:
        kubernetes.io/os: linux
"""


def _load(template: str, **values: Any) -> Obj:
    obj = yaml.safe_load(Template(template).substitute(**values))
    assert isinstance(obj, dict)
    return obj


def dns_ip(service_subnet: str) -> str:
    """constants.GetDNSIP: the 10th address of the first service subnet."""
    net = ipaddress.ip_network(service_subnet.split(",", maxsplit=1)[0].strip(), strict=False)
    return str(net.network_address + 10)


def coredns_image(config: Config) -> str:
    """images.GetDNSImage: dns.imageRepository overrides; the default registry gets the
    `coredns/` path segment; dns.imageTag overrides the version table's tag."""
    c = config.cluster
    repo = c.dns.image_repository or c.image_repository
    if repo == DEFAULT_IMAGE_REPOSITORY:
        repo = f"{repo}/coredns"
    tag = c.dns.image_tag or config.release.major_minor.coredns_tag
    return f"{repo}/coredns:{tag}"


def corefile(dns_domain: str) -> str:
    cache = "    cache 30"
    if dns_domain:
        cache += (
            f" {{\n       disable success {dns_domain}\n       disable denial {dns_domain}\n    }}"
        )
    return (
        ".:53 {\n    errors\n    health {\n       lameduck 5s\n    }\n    ready\n"
        f"    kubernetes {dns_domain} in-addr.arpa ip6.arpa {{\n       pods insecure\n"
        "       fallthrough in-addr.arpa ip6.arpa\n       ttl 30\n    }\n"
        "    prometheus :9153\n    forward . /etc/resolv.conf {\n"
        f"       max_concurrent 1000\n    }}\n{cache}\n    loop\n    reload\n"
        "    loadbalance\n}\n"
    )


def coredns_objects(config: Config, replicas: int = COREDNS_REPLICAS) -> dict[str, Obj]:
    """Everything EnsureDNSAddon creates, keyed by kind: ConfigMap, ClusterRole,
    ClusterRoleBinding, ServiceAccount, Deployment, Service (kubeadm's creation order)."""
    indented = "".join(
        "    " + line + "\n" if line else "\n"
        for line in corefile(config.cluster.networking.dns_domain).splitlines()
    )
    return {
        "ConfigMap": _load(COREDNS_CONFIGMAP, Corefile=indented),
        "ClusterRole": _load(COREDNS_CLUSTER_ROLE),
        "ClusterRoleBinding": _load(COREDNS_CLUSTER_ROLE_BINDING),
        "ServiceAccount": _load(COREDNS_SERVICE_ACCOUNT),
        "Deployment": _load(
            COREDNS_DEPLOYMENT,
            DeploymentName="coredns",
            Image=coredns_image(config),
            Replicas=replicas,
            ControlPlaneTaintKey=CONTROL_PLANE_TAINT_KEY,
        ),
        "Service": _load(COREDNS_SERVICE, DNSIP=dns_ip(config.cluster.networking.service_subnet)),
    }


# --- kube-proxy ------------------------------------------------------------------------------


# The fields of KubeProxyConfiguration v1alpha1, in kubeinit.kubelet's shape notation (only the
# nesting matters here: it says which fields are unknown). k8s.io/kube-proxy config/v1alpha1
# types.go, the same at v0.36.3 and v0.37.2, with component-base's ClientConnectionConfiguration
# and logs LoggingConfiguration (the kubelet's `logging` type); tests/firstboot/phases/
# test_addons.py holds it to the Go source.
_D = "d"
KUBE_PROXY_CONFIGURATION: dict[str, Any] = {
    "featureGates": "{b}",
    "clientConnection": {
        "kubeconfig": "s!",
        "acceptContentTypes": "s!",
        "contentType": "s!",
        "qps": "f!",
        "burst": "i!",
    },
    "logging": KUBELET_CONFIGURATION["logging"],
    "hostnameOverride": "s!",
    "bindAddress": "s!",
    "healthzBindAddress": "s!",
    "metricsBindAddress": "s!",
    "bindAddressHardFail": "b!",
    "enableProfiling": "b!",
    "showHiddenMetricsForVersion": "s!",
    "mode": "s!",
    "iptables": {
        "masqueradeBit": "*i",
        "masqueradeAll": "b!",
        "localhostNodePorts": "*b",
        "syncPeriod": _D,
        "minSyncPeriod": _D,
    },
    "ipvs": {
        "syncPeriod": _D,
        "minSyncPeriod": _D,
        "scheduler": "s!",
        "excludeCIDRs": "[s]",
        "strictARP": "b!",
        "tcpTimeout": _D,
        "tcpFinTimeout": _D,
        "udpTimeout": _D,
    },
    "nftables": {
        "masqueradeBit": "*i",
        "masqueradeAll": "b!",
        "syncPeriod": _D,
        "minSyncPeriod": _D,
    },
    "winkernel": {
        "networkName": "s!",
        "sourceVip": "s!",
        "enableDSR": "b!",
        "rootHnsEndpointName": "s!",
        "forwardHealthCheckVip": "b!",
    },
    "detectLocalMode": "s!",
    "detectLocal": {"bridgeInterface": "s!", "interfaceNamePrefix": "s!"},
    "clusterCIDR": "s!",
    "nodePortAddresses": "[s]",
    "oomScoreAdj": "*i",
    "conntrack": {
        "maxPerCore": "*i",
        "min": "*i",
        "tcpEstablishedTimeout": "*d",
        "tcpCloseWaitTimeout": "*d",
        "tcpBeLiberal": "b!",
        "udpTimeout": _D,
        "udpStreamTimeout": _D,
    },
    "configSyncPeriod": _D,
    "portRange": "s!",
    "windowsRunAsService": "b",
}


def check_kube_proxy_document(given: Mapping[str, Any]) -> list[str]:
    """kubeadm's warning for the unknown fields of a KubeProxyConfiguration document (it warns
    and drops them, as for a KubeletConfiguration: componentconfigs/configset.go)."""
    unknown = unknown_fields(given, shape=KUBE_PROXY_CONFIGURATION)
    return strict_decoding_warnings("KubeProxyConfiguration", unknown)


def _zero_kube_proxy_configuration() -> Obj:
    """Every field of KubeProxyConfiguration v1alpha1 (1.37) at its Go zero value, as
    encoding/json writes it (pointers null, Durations "0s", non-omitempty strings "")."""
    d0 = "0s"
    return {
        "apiVersion": KUBEPROXY_API,
        "kind": "KubeProxyConfiguration",
        "clientConnection": {
            "acceptContentTypes": "",
            "burst": 0,
            "contentType": "",
            "kubeconfig": "",
            "qps": 0,
        },
        "logging": {
            "flushFrequency": 0,
            "options": {"json": {"infoBufferSize": "0"}, "text": {"infoBufferSize": "0"}},
            "verbosity": 0,
        },
        "hostnameOverride": "",
        "bindAddress": "",
        "healthzBindAddress": "",
        "metricsBindAddress": "",
        "bindAddressHardFail": False,
        "enableProfiling": False,
        "showHiddenMetricsForVersion": "",
        "mode": "",
        "iptables": {
            "masqueradeBit": None,
            "masqueradeAll": False,
            "localhostNodePorts": None,
            "syncPeriod": d0,
            "minSyncPeriod": d0,
        },
        "ipvs": {
            "syncPeriod": d0,
            "minSyncPeriod": d0,
            "scheduler": "",
            "excludeCIDRs": None,
            "strictARP": False,
            "tcpTimeout": d0,
            "tcpFinTimeout": d0,
            "udpTimeout": d0,
        },
        "nftables": {
            "masqueradeBit": None,
            "masqueradeAll": False,
            "syncPeriod": d0,
            "minSyncPeriod": d0,
        },
        "winkernel": {
            "networkName": "",
            "sourceVip": "",
            "enableDSR": False,
            "rootHnsEndpointName": "",
            "forwardHealthCheckVip": False,
        },
        "detectLocalMode": "",
        "detectLocal": {"bridgeInterface": "", "interfaceNamePrefix": ""},
        "clusterCIDR": "",
        "nodePortAddresses": None,
        "oomScoreAdj": None,
        "conntrack": {
            "maxPerCore": None,
            "min": None,
            "tcpEstablishedTimeout": None,
            "tcpCloseWaitTimeout": None,
            "tcpBeLiberal": False,
            "udpTimeout": d0,
            "udpStreamTimeout": d0,
        },
        "configSyncPeriod": d0,
        "portRange": "",
    }


def _merge(base: Obj, over: Mapping[str, Any]) -> Obj:
    for k, v in over.items():
        if isinstance(v, Mapping) and isinstance(base.get(k), dict):
            _merge(base[k], v)
        else:
            base[k] = copy.deepcopy(v)
    return base


def kube_proxy_configuration(config: Config, advertise_address: str) -> Obj:
    """kubeadm's KubeProxyConfiguration: the user's document, without the fields the Go type
    does not have, over the zero struct, then kubeProxyConfig.Default (bindAddress by the
    advertise address family, clusterCIDR from the pod subnet, the in-pod kubeconfig path, and
    from v1.37 mode iptables)."""
    given = drop_unknown(KUBE_PROXY_CONFIGURATION, config.kube_proxy or {})
    cfg = _merge(
        _zero_kube_proxy_configuration(),
        {k: v for k, v in given.items() if k not in ("apiVersion", "kind")},
    )
    if not cfg.get("bindAddress"):
        v4 = ipaddress.ip_address(advertise_address).version == 4
        cfg["bindAddress"] = "0.0.0.0" if v4 else "::"
    if not cfg.get("clusterCIDR") and config.cluster.networking.pod_subnet:
        cfg["clusterCIDR"] = config.cluster.networking.pod_subnet
    if not cfg["clientConnection"].get("kubeconfig"):
        cfg["clientConnection"]["kubeconfig"] = KUBE_PROXY_KUBECONFIG
    if not cfg.get("mode") and config.release.minor >= 37:
        cfg["mode"] = "iptables"  # defaulted by kubeadm since v1.37; v1.35/v1.36 leave ""
    if not cfg.get("featureGates"):
        cfg.pop("featureGates", None)  # omitempty
    if not cfg.get("windowsRunAsService"):
        cfg.pop("windowsRunAsService", None)  # omitempty
    return cfg


def control_plane_url(config: Config, advertise_address: str) -> str:
    """util.GetControlPlaneEndpoint: controlPlaneEndpoint (port defaulted to bindPort) or the
    local advertise address and bindPort."""
    port = config.init.local_api_endpoint.bind_port
    if config.cluster.control_plane_endpoint:
        host, p = split_host_port(
            config.cluster.control_plane_endpoint, field_name="controlPlaneEndpoint"
        )
        return "https://" + join_host_port(host, p or port)
    return "https://" + join_host_port(advertise_address, port)


def proxy_env(environ: Mapping[str, str]) -> list[Obj]:
    """GetProxyEnvVars + MergeKubeadmEnvVars: kubeadm's own *_proxy variables, sorted."""
    found = {k: v for k, v in environ.items() if k.lower().endswith("_proxy") and v}
    return [{"name": k, "value": found[k]} for k in sorted(found)]


def kube_proxy_objects(
    config: Config, advertise_address: str, environ: Mapping[str, str] | None = None
) -> dict[str, Obj]:
    """Everything EnsureProxyAddon creates: ConfigMap, DaemonSet, ServiceAccount,
    ClusterRoleBinding, Role, RoleBinding (kubeadm's creation order)."""
    proxy_yaml = dump(kube_proxy_configuration(config, advertise_address))
    cm: Obj = {
        "kind": "ConfigMap",
        "apiVersion": "v1",
        "metadata": {
            "name": KUBE_PROXY_CONFIGMAP,
            "namespace": NS_SYSTEM,
            "labels": {"app": "kube-proxy"},
        },
        "data": {
            "kubeconfig.conf": Template(KUBE_PROXY_KUBECONFIG_TEMPLATE).substitute(
                ControlPlaneEndpoint=control_plane_url(config, advertise_address)
            ),
            # the template's `|-` block drops the final newline
            KUBE_PROXY_CONFIGMAP_KEY: proxy_yaml.rstrip("\n"),
        },
    }
    signed(cm, user_supplied=config.kube_proxy is not None)
    ds = _load(
        KUBE_PROXY_DAEMONSET,
        Image=config.release.image("kube-proxy"),
        ProxyConfigMap=KUBE_PROXY_CONFIGMAP,
        ProxyConfigMapKey=KUBE_PROXY_CONFIGMAP_KEY,
    )
    ds["spec"]["template"]["spec"]["containers"][0]["env"].extend(proxy_env(environ or {}))
    return {
        "ConfigMap": cm,
        "DaemonSet": ds,
        "ServiceAccount": {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": meta("kube-proxy", NS_SYSTEM),
        },
        "ClusterRoleBinding": cluster_role_binding(
            "kubeadm:node-proxier",
            "system:node-proxier",
            [subject("ServiceAccount", "kube-proxy", NS_SYSTEM)],
        ),
        "Role": role("kube-proxy", NS_SYSTEM, "configmaps", KUBE_PROXY_CONFIGMAP),
        "RoleBinding": role_binding(
            "kube-proxy", NS_SYSTEM, "kube-proxy", [group(NODE_BOOTSTRAP_TOKEN_GROUP)]
        ),
    }
