"""AWS security groups (``deploy/aws/security_groups.tf``) generated from the tier map.

One security group per service of the map (tagged with its tier) — per service rather
than per tier so that, inside the data tier, Redis is not opened to the backup runner just
because PostgreSQL is. For each flow and port: an ingress rule on the destination's group
referencing the source's group (or 0.0.0.0/0 for the internet) and an egress rule on the
source's group. Groups carry no other rule; Terraform removes AWS's default allow-all
egress on groups it creates. The rest of deploy/aws/ is written by hand and attaches
these groups: ``nginx`` → the ALB (the edge on AWS), ``postgres`` → RDS, ``redis`` →
ElastiCache; the app, worker and backup groups are outputs for the compute layer.
"""

from __future__ import annotations

from pathlib import Path

from enclave.deploy.tiermap import INTERNET, Flow, TierMap

HEADER = ("# Generated from deploy/tiers.toml by `enclave deploy render aws`. Do not edit;\n"
          "# change the tier map and regenerate (a test fails when this file is stale).\n")
# Checkov checks that do not fit a rule, with the reason (rendered as inline skips).
SKIPS = {
    ("internet", 80): "CKV_AWS_260:port 80 on the ALB only answers with a redirect to HTTPS",
}


def ident(name: str) -> str:
    return name.replace("-", "_")


# Services whose group this module attaches (the others are outputs for the compute layer).
ATTACHED_HERE = {"nginx": "aws_lb.edge", "postgres": "aws_db_instance.postgres",
                 "redis": "aws_elasticache_replication_group.redis"}


def _group(tmap: TierMap, service: str) -> str:
    tier = tmap.tier_of(service)
    skip = ("" if service in ATTACHED_HERE else "  # checkov:skip=CKV2_AWS_5:attached by the "
            "compute layer (output security_group_ids)\n")
    return f'''resource "aws_security_group" "{ident(service)}" {{
{skip}  name        = "${{var.name}}-{service}"
  description = "{tier} tier: {service} (generated from the tier map)"
  vpc_id      = aws_vpc.main.id
  tags        = {{ Tier = "{tier}", Service = "{service}" }}
}}
'''


def _rule(direction: str, flow: Flow, port: int) -> str:
    owner, peer = (flow.target, flow.source) if direction == "ingress" else (
        flow.source, flow.target)
    name = f"{ident(flow.source)}_to_{ident(flow.target)}_{port}"
    attributes = [("security_group_id", f"aws_security_group.{ident(owner)}.id")]
    if peer == INTERNET:
        attributes.append(("cidr_ipv4", '"0.0.0.0/0"'))
    else:
        attributes.append(("referenced_security_group_id",
                           f"aws_security_group.{ident(peer)}.id"))
    attributes += [("ip_protocol", '"tcp"'), ("from_port", str(port)), ("to_port", str(port)),
                   ("description", f'"{flow.source} -> {flow.target}:{port}"')]
    # Aligned as `terraform fmt` aligns consecutive attributes (checked by a test).
    width = max(len(key) for key, _ in attributes)
    body = "\n".join(f"  {key.ljust(width)} = {value}" for key, value in attributes)
    skip = SKIPS.get((flow.source, port))
    skip_line = f"  # checkov:skip={skip}\n" if skip and direction == "ingress" else ""
    return f'''resource "aws_vpc_security_group_{direction}_rule" "{name}" {{
{skip_line}{body}
}}
'''


def render(tmap: TierMap) -> str:
    parts = [HEADER]
    parts += [_group(tmap, s.name) for s in tmap.services]
    for flow in tmap.flows:
        for port in flow.ports:
            parts.append(_rule("ingress", flow, port))
            if flow.source != INTERNET:
                parts.append(_rule("egress", flow, port))
    return "\n".join(parts)


def write(tmap: TierMap, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    path = out / "security_groups.tf"
    path.write_text(render(tmap), encoding="utf-8")
    return [path]
