"""Account pages: ``team`` (team and roles), ``audit`` (audit log), ``workspace`` (home,
account switch, invitations, security settings) and ``onboarding`` (one-time links)."""
