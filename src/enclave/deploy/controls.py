"""Network control: the tier firewalls hold, proven by the live reachability matrix."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings

from enclave.core.controls import Outcome, Probe, control, failed, not_applicable, passed


def state_dir() -> Path:
    return settings.CONFIG.var_dir / "tiers"


@control(
    "NET-1",
    claim="Local n-tier firewalls: every namespace→service-port connection matches the tier map",
    public="Servers sit in separate tiers with firewalls between and within them; data stores "
           "are reachable only by the servers that need them.",
)
def check_tier_matrix(probe: Probe) -> Outcome:
    from enclave.deploy import local, matrix

    try:
        state = local.load_state(state_dir())
    except local.DeployError as exc:
        return failed(str(exc))
    if state is None:
        return not_applicable(f"embedded mode: no n-tier deployment is up "
                              f"(no {local.state_path(state_dir())})")
    if state.status != "up":
        return failed(f"tiers {state.prefix} are recorded but not up (status {state.status})")
    result = matrix.run_matrix(state)
    summary = f"{len(result.cells)} probes from {len(result.sources)} namespaces"
    if result.ok:
        return passed(f"{summary}: exactly the {len(result.open_flows())} allowed "
                      f"connections opened (tiers {state.prefix})")
    diffs = "; ".join(f"{c.source}→{c.target}:{c.port} expected "
                      f"{'open' if c.expected else 'closed'}, observed {c.outcome}"
                      for c in result.differences[:5])
    return failed(f"{summary}: {len(result.differences)} difference(s): {diffs}")
