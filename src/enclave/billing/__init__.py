"""Billing through Stripe: hosted Checkout and the customer portal (no card data ever
reaches Enclave), verified webhooks, and the plan limits they unlock."""
