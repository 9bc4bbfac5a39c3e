"""Kubernetes manifests generated from the tier map: fresh, hardened, and no NetworkPolicy
allows a flow the map does not list. Offline validation and checkov run from .venv-k8s."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml

from enclave.config import PROJECT_ROOT
from enclave.deploy import k8s, tiermap

K8S_DIR = PROJECT_ROOT / "deploy" / "k8s"
K8S_VENV = PROJECT_ROOT / ".venv-k8s" / "bin"
needs_k8s_venv = pytest.mark.skipif(not (K8S_VENV / "checkov").exists(),
                                    reason="deployment scanners missing: run `make deploy-deps`")


def committed() -> list[dict]:
    docs = []
    for path in sorted(K8S_DIR.glob("*.yaml")):
        if path.name != "kustomization.yaml":
            docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


def selected(selector: dict) -> str:
    return selector["matchLabels"][k8s.SERVICE_LABEL]


def peer(entry: dict) -> str:
    if entry.get("ipBlock", {}).get("cidr") == "0.0.0.0/0":
        return "internet"
    return selected(entry["podSelector"])


def allowed_by_policies(docs: list[dict]) -> tuple[set, set]:
    """(source, target, port) triples opened on the ingress side and on the egress side."""
    ingress, egress = set(), set()
    for doc in docs:
        if doc["kind"] != "NetworkPolicy" or doc["metadata"]["name"] in ("default-deny",
                                                                         "allow-dns"):
            continue
        spec = doc["spec"]
        me = selected(spec["podSelector"])
        for rule in spec.get("ingress", []):
            ingress |= {(peer(p), me, port["port"]) for p in rule["from"] for port in rule["ports"]}
        for rule in spec.get("egress", []):
            egress |= {(me, peer(p), port["port"]) for p in rule["to"] for port in rule["ports"]}
    return ingress, egress


@pytest.fixture(scope="module")
def tmap():
    return tiermap.load()


class TestGenerated:
    def test_committed_manifests_match_the_tier_map(self, tmap):
        for name, text in k8s.manifests(tmap).items():
            stale = f"stale {name}: run `enclave deploy render k8s`"
            assert (K8S_DIR / name).read_text() == text, stale

    def test_kustomization_lists_every_manifest(self):
        kustomization = yaml.safe_load((K8S_DIR / "kustomization.yaml").read_text())
        assert set(kustomization["resources"]) == {
            p.name for p in K8S_DIR.glob("*.yaml")} - {"kustomization.yaml"}


class TestNetworkPolicies:
    def test_no_policy_allows_a_flow_not_in_the_map(self, tmap):
        ingress, egress = allowed_by_policies(committed())
        flows = {(f.source, f.target, p) for f in tmap.flows for p in f.ports}
        assert ingress == flows
        assert egress == {f for f in flows if f[0] != "internet"}

    def test_default_deny_covers_every_pod_both_ways(self):
        deny = next(d for d in committed() if d["metadata"]["name"] == "default-deny")
        assert deny["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}

    def test_dns_is_the_only_allowance_outside_the_map(self):
        dns = next(d for d in committed() if d["metadata"]["name"] == "allow-dns")
        (rule,) = dns["spec"]["egress"]
        assert {p["port"] for p in rule["ports"]} == {53}
        assert rule["to"][0]["podSelector"] == {"matchLabels": {"k8s-app": "kube-dns"}}

    def test_a_widened_policy_would_be_caught(self, tmap):
        docs = committed()
        rogue = next(d for d in docs if d["metadata"]["name"].endswith("to-postgres-ingress"))
        rogue["spec"]["ingress"][0]["from"].append({"podSelector": {"matchLabels": {
            k8s.SERVICE_LABEL: "nginx"}}})
        ingress, _ = allowed_by_policies(docs)
        assert ("nginx", "postgres", 5432) in ingress - {
            (f.source, f.target, p) for f in tmap.flows for p in f.ports}


class TestWorkloads:
    @pytest.mark.parametrize("name", sorted(k8s.WORKLOADS))
    def test_containers_are_non_root_read_only_and_capability_free(self, name):
        doc = next(d for d in committed() if d["kind"] == "Deployment"
                   and d["metadata"]["name"] == name)
        (container,) = doc["spec"]["template"]["spec"]["containers"]
        ctx = container["securityContext"]
        assert ctx["runAsNonRoot"] is True
        assert ctx["runAsUser"] >= 10000
        assert ctx["readOnlyRootFilesystem"] is True
        assert ctx["allowPrivilegeEscalation"] is False
        assert ctx["capabilities"] == {"drop": ["ALL"]}
        assert set(container["resources"]["limits"]) == {"cpu", "memory"}
        assert doc["spec"]["template"]["spec"]["automountServiceAccountToken"] is False

    @pytest.mark.parametrize("name", sorted(k8s.WORKLOADS))
    def test_secrets_come_only_from_the_secret_object(self, name):
        doc = next(d for d in committed() if d["kind"] == "Deployment"
                   and d["metadata"]["name"] == name)
        (container,) = doc["spec"]["template"]["spec"]["containers"]
        from_secret = {var["name"]: var["valueFrom"]["secretKeyRef"]["name"]
                       for var in container["env"] if "valueFrom" in var}
        assert from_secret == {"ENCLAVE_DATABASE_URL": k8s.SECRET,
                               "ENCLAVE_REDIS_URL": k8s.SECRET}
        for var in container["env"]:
            assert "://" not in var.get("value", "").replace("https://", "")
        assert not [d for d in committed() if d["kind"] == "Secret"]


def _run_in_scanner_netns(argv: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """Run a scanner without any network (checkov otherwise tries to reach its API)."""
    prefix = ["unshare", "-rn"] if os.geteuid() != 0 else ["unshare", "--net"]
    return subprocess.run([*prefix, *argv], cwd=cwd, capture_output=True, text=True,
                          timeout=600, check=False)


@pytest.mark.slow
@needs_k8s_venv
class TestScanners:
    def test_kubernetes_validate_accepts_every_manifest(self):
        files = [p.name for p in sorted(K8S_DIR.glob("*.yaml")) if p.name != "kustomization.yaml"]
        result = _run_in_scanner_netns(
            [str(K8S_VENV / "kubernetes-validate"), "--strict", "-k", "1.30.0", *files], K8S_DIR)
        assert result.returncode == 0, result.stdout + result.stderr

    def test_checkov_finds_nothing_in_the_manifests(self):
        result = _run_in_scanner_netns(
            [str(K8S_VENV / "checkov"), "--quiet", "--compact", "--skip-download", "-d", ".",
             "--framework", "kubernetes"], K8S_DIR)
        assert result.returncode == 0, result.stdout[-3000:]
        assert "Failed checks: 0" in result.stdout


class TestEdgeTrust:
    def test_web_pods_trust_forwarded_headers_only_from_loopback_and_the_edge(self, tmap):
        container = k8s.deployment(tmap, "web")["spec"]["template"]["spec"]["containers"][0]
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert env["ENCLAVE_TRUSTED_PROXIES"] == f"127.0.0.1/32,{k8s.EDGE_NETWORK}"
        command = container["command"]
        assert command[command.index("--forwarded-allow-ips") + 1] == k8s.EDGE_NETWORK

    def test_health_probe_runs_inside_the_pod_over_loopback(self, tmap):
        container = k8s.deployment(tmap, "web")["spec"]["template"]["spec"]["containers"][0]
        probe = container["livenessProbe"]
        assert "httpGet" not in probe
        assert "http://127.0.0.1:8000/healthz" in " ".join(probe["exec"]["command"])

    def test_readiness_probe_asks_readyz(self, tmap):
        container = k8s.deployment(tmap, "web")["spec"]["template"]["spec"]["containers"][0]
        command = " ".join(container["readinessProbe"]["exec"]["command"])
        assert "http://127.0.0.1:8000/readyz" in command
