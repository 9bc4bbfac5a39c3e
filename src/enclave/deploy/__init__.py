"""The n-tier deployment: one tier map (``deploy/tiers.toml``) and everything generated
from it — nftables rules, the local network-namespace deployment and its reachability
matrix, Kubernetes manifests and AWS security groups. See docs/deployment.md."""
