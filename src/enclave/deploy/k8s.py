"""Kubernetes manifests (a kustomize base in ``deploy/k8s/``) generated from the tier map.

* Deployments ``web`` (gunicorn), ``worker`` and ``beat`` (Celery): non-root (uid 10001),
  read-only root filesystem, no privilege escalation, every capability dropped, seccomp
  RuntimeDefault, no service-account token, resource requests and limits, probes.
  Secrets (database and Redis URLs, Django key) come from the Secret ``enclave-secrets``
  — created by the operator or an external-secrets controller backed by a KMS, never
  baked into the image or this repository.
* NetworkPolicies: ``default-deny`` (ingress and egress for every pod), one
  ``allow-dns`` egress to kube-dns (the only allowance not in the map, needed to resolve
  service names), and for each flow of the map an ingress policy on the destination and,
  when the source runs in the cluster, an egress policy on the source.

Pods are matched by the labels ``enclave.dev/service`` and ``enclave.dev/tier``; the edge,
PostgreSQL, Redis and backup runner pods (or their operators) must carry the same labels.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from enclave.deploy.tiermap import INTERNET, Flow, TierMap

NAMESPACE = "enclave"
IMAGE = "registry.example.com/enclave/enclave@sha256:" + "0" * 64  # set with kustomize
SECRET = "enclave-secrets"  # noqa: S105 — the Secret object's name, not a secret
APP_UID = 10001
PUBLIC_URL = "https://enclave.example.com"
# The edge pods' addresses: only they may say a request arrived over HTTPS (X-Forwarded-
# Proto) and who the client is (X-Real-IP). Set to the cluster's pod CIDR with kustomize;
# the NetworkPolicies already let only edge pods reach gunicorn's port.
EDGE_NETWORK = "10.0.0.0/8"
# Deployment name → (tier-map service, container command).
WORKLOADS = {
    "web": ("gunicorn", ["gunicorn", "--bind", "0.0.0.0:8000", "--workers", "3",
                         "--forwarded-allow-ips", EDGE_NETWORK, "enclave.wsgi:application"]),
    "worker": ("celery-worker", ["celery", "-A", "enclave", "worker", "--loglevel", "INFO",
                                 "--without-mingle", "--without-gossip"]),
    "beat": ("celery-beat", ["celery", "-A", "enclave", "beat", "--loglevel", "INFO",
                             "--schedule", "/var/enclave/data/celerybeat-schedule"]),
}
SERVICE_LABEL, TIER_LABEL = "enclave.dev/service", "enclave.dev/tier"


def _labels(tmap: TierMap, service: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": "enclave", SERVICE_LABEL: service,
            TIER_LABEL: tmap.tier_of(service)}


def _meta(name: str, **extra) -> dict:
    return {"name": name, "namespace": NAMESPACE, **extra}


# From inside the pod (loopback is a trusted proxy by default): the kubelet's own
# address is not, so an httpGet probe claiming HTTPS would be refused as plain HTTP.
# Liveness asks /healthz (the process answers), readiness /readyz (database writable,
# migrations applied, keyring, Redis: enclave.server.health).
def _check(path: str) -> str:
    return ("import urllib.request as u; u.urlopen(u.Request('http://127.0.0.1:8000"
            f"{path}', headers={{'Host': '{PUBLIC_URL.removeprefix('https://')}', "
            "'X-Forwarded-Proto': 'https'}), timeout=4)")


HEALTH_CHECK, READY_CHECK = _check("/healthz"), _check("/readyz")


def _probe(service: str, *, ready: bool = False) -> dict:
    if service == "gunicorn":
        return {"exec": {"command": ["python", "-c", READY_CHECK if ready else HEALTH_CHECK]},
                "periodSeconds": 10, "timeoutSeconds": 5}
    if service == "celery-worker":
        return {"exec": {"command": ["celery", "-A", "enclave", "inspect", "ping", "-d",
                                     "celery@$(HOSTNAME)", "--timeout", "10"]},
                "periodSeconds": 60, "timeoutSeconds": 20}
    return {"exec": {"command": ["test", "-s", "/var/enclave/data/celerybeat-schedule"]},
            "initialDelaySeconds": 60, "periodSeconds": 60}


def deployment(tmap: TierMap, name: str) -> dict:
    service, command = WORKLOADS[name]
    labels = _labels(tmap, service)
    secret_env = [{"name": var, "valueFrom": {"secretKeyRef": {"name": SECRET, "key": key}}}
                  for var, key in (("ENCLAVE_DATABASE_URL", "database-url"),
                                   ("ENCLAVE_REDIS_URL", "redis-url"))]
    container = {
        "name": name,
        "image": IMAGE,
        "imagePullPolicy": "Always",
        "command": command,
        "env": [{"name": "ENCLAVE_ENV", "value": "production"},
                {"name": "ENCLAVE_BEHIND_PROXY", "value": "1"},
                {"name": "ENCLAVE_TRUSTED_PROXIES", "value": f"127.0.0.1/32,{EDGE_NETWORK}"},
                {"name": "ENCLAVE_PUBLIC_URL", "value": PUBLIC_URL},
                {"name": "ENCLAVE_VAR_DIR", "value": "/var/enclave"},
                {"name": "ENCLAVE_SECRET_KEY_FILE", "value": "/run/secrets/enclave/django-key"},
                *secret_env],
        "securityContext": {
            "runAsNonRoot": True, "runAsUser": APP_UID, "runAsGroup": APP_UID,
            "readOnlyRootFilesystem": True, "allowPrivilegeEscalation": False,
            "privileged": False, "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "resources": {"requests": {"cpu": "100m", "memory": "256Mi"},
                      "limits": {"cpu": "1", "memory": "512Mi"}},
        "livenessProbe": _probe(service),
        "readinessProbe": _probe(service, ready=True),
        # A private emptyDir, since the root filesystem is read-only.
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"},  # noqa: S108
                         {"name": "var", "mountPath": "/var/enclave"},
                         {"name": "secrets", "mountPath": "/run/secrets/enclave",
                          "readOnly": True}],
    }
    if service == "gunicorn":
        container["ports"] = [{"name": "http", "containerPort": 8000, "protocol": "TCP"}]
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": _meta(name, labels=labels, annotations={
            # Enclave reads its database and Redis URLs only from ENCLAVE_* variables (the
            # one config module); they come from the Secret, the Django key as a file.
            "checkov.io/skip1": "CKV_K8S_35=ENCLAVE_* URLs are read from the environment only"}),
        "spec": {
            "replicas": 2 if name == "web" else 1,
            "selector": {"matchLabels": {SERVICE_LABEL: service}},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "serviceAccountName": "enclave",
                    "automountServiceAccountToken": False,
                    "securityContext": {"runAsNonRoot": True, "runAsUser": APP_UID,
                                        "fsGroup": APP_UID,
                                        "seccompProfile": {"type": "RuntimeDefault"}},
                    "containers": [container],
                    "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}},
                                {"name": "var", "emptyDir": {"sizeLimit": "256Mi"}},
                                {"name": "secrets", "secret": {
                                    "secretName": SECRET, "defaultMode": 0o400,
                                    "items": [{"key": "django-secret-key",
                                               "path": "django-key"}]}}],
                },
            },
        },
    }


def _peer(tmap: TierMap, endpoint: str) -> dict:
    if endpoint == INTERNET:
        return {"ipBlock": {"cidr": "0.0.0.0/0"}}
    return {"podSelector": {"matchLabels": {SERVICE_LABEL: endpoint}}}


def _ports(flow: Flow) -> list[dict]:
    return [{"protocol": "TCP", "port": p} for p in flow.ports]


def _policy(name: str, selected: str, kind: str, rule: dict, flow: Flow) -> dict:
    label = f"{flow.source}->{flow.target}:{','.join(map(str, flow.ports))}"
    return {
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": _meta(name, annotations={"enclave.dev/flow": label,
                                             "enclave.dev/why": flow.why}),
        "spec": {"podSelector": {"matchLabels": {SERVICE_LABEL: selected}},
                 "policyTypes": [kind], kind.lower(): [rule]},
    }


def network_policies(tmap: TierMap) -> list[dict]:
    policies = [
        {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
         "metadata": _meta("default-deny"),
         "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}},
        {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
         "metadata": _meta("allow-dns", annotations={
             "enclave.dev/why": "resolve service names; the only allowance not in the map"}),
         "spec": {"podSelector": {}, "policyTypes": ["Egress"], "egress": [{
             "to": [{"namespaceSelector": {"matchLabels": {
                 "kubernetes.io/metadata.name": "kube-system"}},
                     "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}],
             "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]}]}},
    ]
    for flow in tmap.flows:
        base = f"allow-{flow.source}-to-{flow.target}"
        policies.append(_policy(f"{base}-ingress", flow.target, "Ingress",
                                {"from": [_peer(tmap, flow.source)], "ports": _ports(flow)},
                                flow))
        if flow.source != INTERNET:
            policies.append(_policy(f"{base}-egress", flow.source, "Egress",
                                    {"to": [_peer(tmap, flow.target)], "ports": _ports(flow)},
                                    flow))
    return policies


def support(tmap: TierMap) -> list[dict]:
    return [
        {"apiVersion": "v1", "kind": "Namespace",
         "metadata": {"name": NAMESPACE, "labels": {
             "pod-security.kubernetes.io/enforce": "restricted",
             "pod-security.kubernetes.io/enforce-version": "latest"}}},
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta("enclave"),
         "automountServiceAccountToken": False},
        {"apiVersion": "v1", "kind": "Service",
         "metadata": _meta("web", labels=_labels(tmap, "gunicorn")),
         "spec": {"type": "ClusterIP", "selector": {SERVICE_LABEL: "gunicorn"},
                  "ports": [{"name": "http", "port": 8000, "targetPort": 8000,
                             "protocol": "TCP"}]}},
    ]


HEADER = ("# Generated from deploy/tiers.toml by `enclave deploy render k8s`. Do not edit;\n"
          "# change the tier map and regenerate (a test fails when this file is stale).\n")


def manifests(tmap: TierMap) -> dict[str, str]:
    """File name → YAML text of the kustomize base."""
    def dump(docs: list[dict]) -> str:
        return HEADER + "---\n".join(yaml.safe_dump(d, sort_keys=False) for d in docs)

    files = {
        "namespace.yaml": dump(support(tmap)),
        **{f"deployment-{name}.yaml": dump([deployment(tmap, name)]) for name in WORKLOADS},
        "networkpolicies.yaml": dump(network_policies(tmap)),
    }
    kustomization = {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
                     "namespace": NAMESPACE, "resources": sorted(files)}
    files["kustomization.yaml"] = HEADER + yaml.safe_dump(kustomization, sort_keys=False)
    return files


def write(tmap: TierMap, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in manifests(tmap).items():
        (out / name).write_text(text, encoding="utf-8")
        written.append(out / name)
    return written
