"""The pricing page's plans: kept with billing, which sells them (``enclave.billing.plans``)."""

from enclave.billing.plans import DEFAULT_PLANS, SETTING, Limits, Plan, load_plans

__all__ = ["DEFAULT_PLANS", "SETTING", "Limits", "Plan", "load_plans"]
