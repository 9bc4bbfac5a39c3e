"""Public audience pages (no sign-in). Every route has a PUBLIC entry in
``access.endpoints``; the token routes are in the log policy's path patterns."""

from django.urls import path

from enclave.audience import views

urlpatterns = [
    path("preferences/<str:token>", views.preferences, name="preferences"),
    path("confirm/<str:token>", views.confirm, name="subscription-confirm"),
    path("unsubscribe/<str:token>", views.unsubscribe, name="unsubscribe"),
    path("subscribe/<str:public_id>", views.subscribe_form, name="subscribe-form"),
]
