from django.urls import path

from enclave.website import views

urlpatterns = [
    path("", views.landing, name="landing"),
    path("pricing", views.pricing, name="pricing"),
    path("security", views.security, name="security"),
    path(".well-known/security.txt", views.security_txt, name="security-txt"),
]
