"""Outgoing webhooks: endpoints an account subscribes to its event types, signed per
the Standard Webhooks specification, delivered in order per endpoint with retries."""
