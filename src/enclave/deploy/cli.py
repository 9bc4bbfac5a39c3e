"""``enclave deploy``: validate the tier map, run the local n-tier deployment, print the matrix.

Thin: parse, call :mod:`enclave.deploy`, print. Failures are one line on stderr with a
non-zero exit: 1 a difference or a failed bring-up, 2 a bad tier map or nothing is up.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from enclave.deploy.tiermap import DEFAULT_MAP, TierMapError


def add_deploy_parser(sub) -> argparse.ArgumentParser:
    deploy = sub.add_parser("deploy", help="the n-tier deployment generated from deploy/tiers.toml")
    dsub = deploy.add_subparsers(dest="deploy_command", required=True)
    p = dsub.add_parser("check", help="validate the tier map")
    p.add_argument("--map", type=Path, default=DEFAULT_MAP, help="tier map (TOML)")
    p.set_defaults(deploy_func=cmd_check)
    p = dsub.add_parser("render", help="write files generated from the tier map")
    p.add_argument("what", choices=["k8s", "aws"], help="Kubernetes manifests or AWS Terraform")
    p.add_argument("--map", type=Path, default=DEFAULT_MAP, help="tier map (TOML)")
    p.add_argument("--out", type=Path, help="output directory (default: deploy/<what>)")
    p.set_defaults(deploy_func=cmd_render)

    local = dsub.add_parser("local", help="network namespaces on this machine (root)")
    lsub = local.add_subparsers(dest="local_command", required=True)
    for name, func, text in (("up", cmd_up, "create the tiers and start the services"),
                             ("down", cmd_down, "remove everything `up` created"),
                             ("matrix", cmd_matrix, "probe every namespace → service port")):
        p = lsub.add_parser(name, help=text)
        p.add_argument("--state-dir", type=Path,
                       help="where the state file lives (default: $ENCLAVE_VAR_DIR/tiers)")
        if name == "up":
            p.add_argument("--map", type=Path, default=DEFAULT_MAP, help="tier map (TOML)")
        if name == "matrix":
            p.add_argument("--json", action="store_true", help="machine-readable output")
        p.set_defaults(deploy_func=func)
    return deploy


def run(args: argparse.Namespace) -> int:
    from enclave.deploy.local import DeployError

    try:
        return args.deploy_func(args)
    except TierMapError as exc:
        print(f"enclave: tier map refused: {exc}", file=sys.stderr)
        return 2
    except DeployError as exc:
        print(f"enclave: {exc}", file=sys.stderr)
        return 1


def _state_dir(args: argparse.Namespace) -> Path:
    if args.state_dir:
        return args.state_dir
    from enclave import config

    return config.load().var_dir / "tiers"


def cmd_check(args: argparse.Namespace) -> int:
    from enclave.deploy import tiermap

    tmap = tiermap.load(args.map)
    print(f"{args.map}: valid — {len(tmap.services)} services, {len(tmap.flows)} flows, "
          f"{sum(len(f.ports) for f in tmap.flows)} allowed ports")
    for flow in tmap.flows:
        print(f"  {flow.source} ({tmap.tier_of(flow.source)}) → {flow.target} "
              f"({tmap.tier_of(flow.target)}): {', '.join(map(str, flow.ports))}")
    return 0


def cmd_render(args: argparse.Namespace) -> int:
    from enclave.config import PROJECT_ROOT
    from enclave.deploy import tiermap

    tmap = tiermap.load(args.map)
    out = args.out or PROJECT_ROOT / "deploy" / args.what
    if args.what == "k8s":
        from enclave.deploy.k8s import write
    else:
        from enclave.deploy.aws import write
    for path in write(tmap, out):
        print(path)
    return 0


def cmd_up(args: argparse.Namespace) -> int:
    from enclave.deploy import local, tiermap

    state = local.up(tiermap.load(args.map), _state_dir(args))
    tmap = state.tier_map
    print(f"tiers up: prefix {state.prefix}, {len(state.namespaces)} namespaces, "
          f"state {state.path}")
    print(f"edge: https://{state.public_host}/ at {tmap.address('nginx')} "
          f"(reachable only from namespace {state.ns('internet')}; CA {state.ca_file})")
    print(f"try:  ip netns exec {state.ns('internet')} curl --cacert {state.ca_file} "
          f"--resolve {state.public_host}:443:{tmap.address('nginx')} "
          f"https://{state.public_host}/api/v1/health")
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    from enclave.deploy import local

    removed = local.down(_state_dir(args))
    print(f"removed {len(removed)} things:")
    for item in removed:
        print(f"  {item}")
    return 0


def cmd_matrix(args: argparse.Namespace) -> int:
    from enclave.deploy import local, matrix

    state = local.load_state(_state_dir(args))
    if state is None:
        print("enclave: no local tiers are up; run `make tiers` first", file=sys.stderr)
        return 2
    result = matrix.run_matrix(state)
    print(result.as_json() if args.json else result.as_table())
    return 0 if result.ok else 1
