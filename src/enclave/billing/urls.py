from django.urls import path

from enclave.billing import views, webhooks

urlpatterns = [
    path("app/billing/", views.billing, name="billing"),
    path("app/billing/checkout/", views.checkout, name="billing-checkout"),
    path("app/billing/portal/", views.portal, name="billing-portal"),
    # Stripe's webhook (enclave.billing.webhooks): signed by Stripe, served with billing on.
    path("webhooks/stripe/", webhooks.stripe_webhook, name="stripe-webhook"),
]
