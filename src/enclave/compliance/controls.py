"""POL-1: the security policies exist, are approved, and are reviewed every 12 months."""

from __future__ import annotations

from enclave.compliance import policies
from enclave.core import clock
from enclave.core.controls import Outcome, Probe, control, failed, passed


@control("POL-1", claim="Every required security policy (ENCLAVE_POLICIES_DIR) is approved "
         "and was reviewed within the last 12 months",
         public="Security policies are written down, approved and reviewed every year")
def check_policies(probe: Probe) -> Outcome:
    today = clock.now().date()
    wrong, found = policies.problems(today)
    if wrong:
        return failed("; ".join(wrong))
    due = min(p.review_by for p in found)
    return passed(f"{len(found)} policies approved and reviewed within 12 months; next "
                  f"review due {due}")
