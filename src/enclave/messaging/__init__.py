"""Email: templates (Liquid + MJML), and — as issue 15 lands — sender domains, broadcasts,
the outbox and its transports."""
